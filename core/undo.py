"""Taking back a shrink of the hidden size: the units it discarded come back as they were.

Shrinking H -> H' drops units H'..H-1: their rows in every gate block, their columns in the recurrent and output
weights. Growing back with resize_hidden would start them afresh; restore_units fills them from the weights saved
before the shrink instead, while the kept units keep whatever they learned since.
"""

from __future__ import annotations

from core import models
from core.trainer import Trainer


def restore_units(current: object, saved: object) -> object:
    """Weights with saved's hidden size: current's units as they are now, everything a shrink from saved to current
    discarded as it is in saved. current and saved are Params of one model kind; saved has more units."""
    if type(saved) is not type(current) or saved.hidden_size <= current.hidden_size:
        raise ValueError("saved must be the same kind of model with more units than current")
    return models.of(current).resize_hidden(current, saved.hidden_size, saved.flat.astype(current.dtype, copy=True))


def grow_back(trainer: Trainer, saved: object) -> list[str]:
    """Grow trainer's model to saved's hidden size with the discarded units restored (a live change, recorded like
    any other; the optimizer's state for the restored units starts at zero). Returns what changed, as text."""
    restored = restore_units(trainer.params, saved)
    described = trainer.update(hidden_size=saved.hidden_size)
    trainer.params.flat[:] = restored.flat
    trainer.history.add_event(trainer.samples_seen, "discarded units restored")
    trainer.rollback_point = trainer._rollback_point()  # the restored weights are where a divergence returns to
    return described
