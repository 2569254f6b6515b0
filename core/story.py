"""A story of the run: what happened and when, as events a learner can read.

The trainer records some events itself (History.events): solved, no longer solved, solved again, diverged and
rolled back, each setting changed. A Story, attached to a trainer as a check hook, adds the others at the check
where they happen, into the same list (so the curves mark them and sessions keep them):

    first held-out sum right        the first check at which any of the held-out sums is right
    half / 90 % of held-out sums    the first check with held-out accuracy >= 50 % / >= 90 %
    unit k became the carry         the first carry check where unit k's |corr(c_t, carry)| or |corr(h_t, carry)|
                                    is at least CARRY_THRESHOLD, over CARRY_PAIRS fixed pairs (carry_screen)
    solved with no carry unit       at the check that first solves, when no unit got there: the closest one

The carry checks cost about a millisecond, so they run at fixed sample counts (carry_due): every check up to 2,000
samples, every 1,000 samples up to 20,000, every 10,000 after. Everything here depends only on the weights at the
checks, so the story is a pure function of the run's settings.

A single unit is one way to hold the carry: the default run solves with its best unit near |corr| 0.83, holding
the carry spread over units (a linear readout of [c, h] reads it: core.probe_carry, in the "solved" event).
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

import numpy as np

from core import models, task
from core.trainer import CHECK_EVERY, Trainer

CARRY_THRESHOLD = 0.9  # |corr| with the true carry at which a unit is said to have become the carry
CARRY_PAIRS = 256  # fixed random operand pairs the carry checks use (T steps each)
ACCURACY_MARKS = (0.5, 0.9)

FIRST_RIGHT = "first held-out sum right"
CARRY = "became the carry"
NO_CARRY_UNIT = "solved with no single carry unit"
_MARK_TEXT = {0.5: "half the held-out sums right", 0.9: "90 % of held-out sums right"}

KINDS = ("progress", "carry", "solved", "unsolved", "diverged", "setting")


def carry_due(samples: int) -> bool:
    """Whether the check at `samples` looks for carry units: check k = samples // CHECK_EVERY is one if k <= 20,
    or k <= 200 and k is a multiple of 10, or k is a multiple of 100."""
    k = samples // CHECK_EVERY
    return k <= 20 or (k <= 200 and k % 10 == 0) or k % 100 == 0


@functools.lru_cache(maxsize=8)
def _carry_pairs(n_bits: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The fixed pairs of the carry checks, and the carry out of every step of each (T * N,) step-major."""
    a, b = task.sample_operands(np.random.default_rng([n_bits, 2015]), CARRY_PAIRS, n_bits)
    _, carry_out = task.carries(a, b, n_bits)
    carry = carry_out.ravel().astype(np.float64)
    for array in (a, b, carry):
        array.flags.writeable = False
    return a, b, carry


def _correlation(states: np.ndarray, target: np.ndarray) -> np.ndarray:
    """(N, H) against (N,) -> (H,) Pearson correlation, 0 where a unit does not vary (as core.carry)."""
    deviation = states - states.mean(axis=0)
    centred = target - target.mean()
    spread = np.sqrt((deviation * deviation).sum(axis=0) * float(centred @ centred))
    varies = spread > 1e-12 * max(1.0, float(np.abs(states).max(initial=0.0)))
    return np.where(varies, (centred @ deviation) / np.where(varies, spread, 1.0), 0.0)


@dataclass(frozen=True)
class CarryScreen:
    """Each unit's correlation with the carry out of each step, over the fixed pairs."""

    cell_corr: np.ndarray | None  # (H,) None for a model without a cell
    hidden_corr: np.ndarray  # (H,)

    @property
    def strongest(self) -> np.ndarray:
        """(H,) the larger of |corr(c, carry)| and |corr(h, carry)|."""
        hidden = np.abs(self.hidden_corr)
        return hidden if self.cell_corr is None else np.maximum(np.abs(self.cell_corr), hidden)

    def describe(self, unit: int) -> str:
        """'|corr(c, carry)| = 0.91': the state (c or h) that tracks the carry best."""
        use_cell = self.cell_corr is not None and abs(self.cell_corr[unit]) >= abs(self.hidden_corr[unit])
        value = self.cell_corr[unit] if use_cell else self.hidden_corr[unit]  # type: ignore[index]
        return f"|corr({'c' if use_cell else 'h'}, carry)| = {abs(value):.2f}"


def carry_screen(params: object, n_bits: int) -> CarryScreen:
    """Correlate every unit's c_t and h_t with the true carry out of step t, over the CARRY_PAIRS fixed pairs."""
    a, b, carry = _carry_pairs(n_bits)
    x, _ = task.make_batch(a, b, n_bits, params.dtype)  # type: ignore[attr-defined]
    _, cache = models.fast(params).forward(params, x)
    H = params.hidden_size  # type: ignore[attr-defined]
    hidden = cache.hidden[1:].reshape(-1, H).astype(np.float64)  # (T * N, H) the state after each step
    cell = getattr(cache, "cell", None)
    cell_corr = None if cell is None else _correlation(cell[1:].reshape(-1, H).astype(np.float64), carry)
    return CarryScreen(cell_corr, _correlation(hidden, carry))


class Story:
    """A check hook that adds the events of the module docstring to the trainer's history."""

    def __init__(self) -> None:
        self.first_right = False
        self.marks_passed: set[float] = set()
        self.carry_units: set[int] = set()

    def attach(self, trainer: Trainer) -> Story:
        """Listen to trainer's checks; what its history already tells (a session continued) is not told again."""
        for _, text in trainer.history.events:
            self.first_right |= text.startswith(FIRST_RIGHT)
            self.marks_passed |= {mark for mark, said in _MARK_TEXT.items() if text.startswith(said)}
            unit = _carry_unit(text)
            if unit is not None:
                self.carry_units.add(unit)
        accuracy = trainer.history.column("accuracy")
        if np.any(accuracy > 0) and not self.first_right:
            # A run trained without a story (a session from before it): what it passed is not news, and a unit that
            # carries already did not just become the carry.
            self.first_right = True
            self.marks_passed |= {mark for mark in ACCURACY_MARKS if np.any(accuracy >= mark)}
            screen = carry_screen(trainer.params, trainer.config.n_bits)
            self.carry_units |= {int(unit) for unit in np.flatnonzero(screen.strongest >= CARRY_THRESHOLD)}
        if self not in trainer.check_hooks:
            trainer.check_hooks.append(self)
        return self

    def __call__(self, trainer: Trainer) -> None:
        samples, accuracy = trainer.samples_seen, trainer.accuracy
        said = trainer.history.add_event
        heldout = len(trainer.heldout_a)
        if not self.first_right and accuracy > 0:  # (NaN, when the trainer does not measure it, is not)
            self.first_right = True
            said(samples, f"{FIRST_RIGHT} ({round(accuracy * heldout):,} of {heldout:,})")
        for mark in ACCURACY_MARKS:
            if mark not in self.marks_passed and accuracy >= mark:
                self.marks_passed.add(mark)
                said(samples, f"{_MARK_TEXT[mark]} ({100 * accuracy:.1f} %)")
        solved_here = trainer.solved_at is not None and trainer.solved_at[0] == samples
        if not (carry_due(samples) or (solved_here and not self.carry_units)):
            return
        screen = carry_screen(trainer.params, trainer.config.n_bits)
        strongest = screen.strongest
        for unit in np.argsort(-strongest, kind="stable"):
            if strongest[unit] < CARRY_THRESHOLD:
                break
            if int(unit) not in self.carry_units:
                self.carry_units.add(int(unit))
                said(samples, f"unit {unit} {CARRY}: {screen.describe(int(unit))} over {CARRY_PAIRS} fixed pairs")
        if solved_here and not self.carry_units:
            best = int(np.argmax(strongest))
            said(samples, f"{NO_CARRY_UNIT}: the closest, unit {best}, has {screen.describe(best)} "
                          f"(< {CARRY_THRESHOLD:g}) over {CARRY_PAIRS} fixed pairs")


def _carry_unit(text: str) -> int | None:
    found = re.match(rf"unit (\d+) {CARRY}", text)
    return int(found.group(1)) if found else None


# ---- reading the events --------------------------------------------------------------------------------------------
def kind(text: str) -> str:
    """Which of KINDS an event (ours or the trainer's) is."""
    if text.startswith((FIRST_RIGHT, *_MARK_TEXT.values())):
        return "progress"
    if _carry_unit(text) is not None or text.startswith(NO_CARRY_UNIT):
        return "carry"
    if text.startswith("diverged"):
        return "diverged"
    if text.startswith("no longer solved"):
        return "unsolved"
    if text.startswith("solved"):
        return "solved"
    return "setting"


def short_label(text: str) -> str | None:
    """A label for a marker on the curves, for the events this module adds (None for the trainer's)."""
    if text.startswith(FIRST_RIGHT):
        return "first sum right"
    for mark, said in _MARK_TEXT.items():
        if text.startswith(said):
            return f"{100 * mark:.0f} % right"
    unit = _carry_unit(text)
    if unit is not None:
        return f"carry: unit {unit}"
    if text.startswith(NO_CARRY_UNIT):
        return "no carry unit"
    return None


def sentence(text: str) -> str:
    """An event as a sentence for the story's log."""
    if text.startswith("solved: every sum right"):
        rest = text.removeprefix("solved: every sum right").removeprefix("; ")
        return "Solved: every sum is right." + (f" {rest[0].upper()}{rest[1:]}." if rest else "")
    if text == "solved again":
        return "Solved again: every sum is right once more."
    if text == "no longer solved":
        return "No longer solved: a sum that was right is wrong again."
    if text.startswith("diverged"):
        return f"Training {text} (the weights of the last check restored)."
    found = re.match(r"(.+?) (\S+) -> (\S+)$", text)
    if found and kind(text) == "setting":
        return f"Changed {found.group(1)} from {found.group(2)} to {found.group(3)}."
    return f"{text[0].upper()}{text[1:]}."
