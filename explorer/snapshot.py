"""Snapshot: a frozen picture of the training run, built in the worker thread from copied arrays.

The GUI keeps only the latest one and draws from it; nothing in it is shared with the live Trainer, so the
worker can keep training while the GUI reads it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import numpy as np

from core import focus, probe, task
from core.focus import FocusTrace
from core.trainer import TrainConfig, Trainer

STATES = ("training", "paused", "solved", "diverged")
DEFAULT_FOCUS = (45, 67)  # the original notebook's example addition
DEFAULT_PROBE = DEFAULT_FOCUS


@dataclass(frozen=True, eq=False)
class Snapshot:
    """Everything the views show at one moment. Arrays are copies owned by the snapshot."""

    samples_seen: int
    samples_per_second: float  # samples trained per second of wall-clock time lately; 0 while not training
    loss: float  # mean loss per addition of the last chunk (nan before any training)
    bit_error: float  # mean |y - p| of the last chunk
    accuracy: float  # exact-sum accuracy on the held-out pairs at the last check
    state: str  # one of STATES
    message: str  # what just happened, for the status bar ("" when nothing new)
    config: TrainConfig  # a copy of the trainer's settings
    params: Any  # a copy of the model's Params (any model kind)
    history: np.ndarray  # (N, 4) samples, loss, bit_error, accuracy
    events: tuple[tuple[int, str], ...]  # (samples seen, what changed): settings, solved, divergence
    focus: FocusTrace  # the focus addition traced through these weights, and its gradient summary
    analyses: Mapping[str, object] = field(default_factory=lambda: MappingProxyType({}))  # name -> Measured
    pending: frozenset[str] = frozenset()  # analyses whose result is not (yet) for the current weights
    visibility_serial: int = 0  # the last visibility change of the views the worker had heard of
    solved_at: tuple[int, float] | None = None  # (samples, training seconds) when every sum was first right
    solved_now: bool = False  # every sum right at the last check
    training_seconds: float = 0.0
    unit_scale: np.ndarray | None = None  # (H,) knockout mask the analyses and the focus used, or None
    last_sample: tuple[int, int, int] | None = None  # the last training sample a, b and the model's answer
    serial: int = 0  # counts snapshots of one worker, so views can tell a new one from one already drawn
    generation: int = 0  # counts the trainers of one worker: a reset or a loaded session starts a new one
    engine: str = "numpy"  # the engine training now
    undo_text: str = ""  # what Ctrl+Z would undo ("" when nothing)
    knockout_undo: bool = False  # a knockout change can be undone
    speed: float = 1.0  # the fraction of full speed training runs at (slow motion below 1)
    viewing: int = -1  # the sample of the timeline's point whose weights params, focus and analyses are; -1: now
    timeline: Any = None  # core.timeline.Summary: where the weights were kept, and what they cost
    code: Any = None  # core.codeview.CodeTrace of the focus, when the code view is on screen (else None)

    @property
    def n_bits(self) -> int:
        return self.config.n_bits

    @property
    def hidden_size(self) -> int:
        return int(self.config.hidden_size)

    @property
    def probe(self) -> probe.Trace:
        """The focus addition's trace (gates, cell, hidden, output, gradients per step)."""
        return self.focus.trace

    @property
    def probe_operands(self) -> tuple[int, int]:
        return self.focus.operands

    @property
    def solved(self) -> bool:
        """Every sum right at the last check (it clears when the model un-learns)."""
        return self.solved_now


def focus_operands_for(n_bits: int, wanted: tuple[int, int]) -> tuple[int, int]:
    """The wanted operands if they fit n_bits, else the same numbers wrapped into range."""
    limit = task.operand_limit(n_bits)
    return wanted[0] % limit, wanted[1] % limit


def mask_for(params: Any, unit_scale: np.ndarray | None) -> np.ndarray | None:
    """unit_scale if it matches the model's hidden size, else None (a resize made it stale)."""
    if unit_scale is None or unit_scale.shape != (params.hidden_size,):
        return None
    return unit_scale


def trace_focus(params: Any, n_bits: int, operands: tuple[int, int], unit_scale: np.ndarray | None = None,
                samples_seen: int = -1) -> FocusTrace:
    """The focus addition traced through the model (the LSTM, or the plain RNN: h only)."""
    a, b = focus_operands_for(n_bits, operands)
    return focus.trace_focus(params, a, b, n_bits, mask_for(params, unit_scale), samples_seen)


def take(trainer: Trainer, *, state: str, message: str = "", focus_operands: tuple[int, int] = DEFAULT_FOCUS,
         unit_scale: np.ndarray | None = None, analyses: Mapping[str, object] | None = None,
         last_chunk: tuple[float, float] = (float("nan"), float("nan")), samples_per_second: float = 0.0,
         shown: tuple[Any, int] | None = None, **extra: Any) -> Snapshot:
    """Copy what the views need out of a trainer. Call it in the thread that owns the trainer.

    last_chunk is (loss, bit_error) of the most recent chunk; shown, if given, is (params, samples): earlier weights
    to show instead of the trainer's (a point of its timeline); extra sets the other Snapshot fields.
    """
    if state not in STATES:
        raise ValueError(f"state must be one of {', '.join(STATES)}, got {state!r}")
    params = trainer.params.copy() if shown is None else shown[0]
    weights_of = int(trainer.samples_seen) if shown is None else int(shown[1])
    mask = None if unit_scale is None else np.array(unit_scale, dtype=np.float64)
    mask = mask_for(params, mask)
    return Snapshot(
        samples_seen=int(trainer.samples_seen),
        samples_per_second=float(samples_per_second),
        loss=float(last_chunk[0]),
        bit_error=float(last_chunk[1]),
        accuracy=float(trainer.accuracy),
        state=state,
        message=message,
        config=dataclasses.replace(trainer.config),
        params=params,
        history=trainer.history.array(),
        events=tuple(trainer.history.events),
        focus=trace_focus(params, trainer.config.n_bits, focus_operands, mask, weights_of),
        analyses=MappingProxyType(dict(analyses or {})),
        solved_at=trainer.solved_at,
        solved_now=bool(trainer.solved_now),
        training_seconds=float(trainer.training_seconds),
        unit_scale=mask,
        engine=str(trainer.engine),
        **extra,
    )
