"""The weights of a run at its checks, kept within a memory budget: what the window scrubs back through.

At every check (core.trainer.CHECK_EVERY samples) the trainer calls the timeline, which keeps a copy of the weights
when the check opens a new block of `stride` checks. Check k is the one at samples_seen // CHECK_EVERY = k, so
the points kept are the first check of each block:

    kept  <=>  k // stride  >  (k of the last point kept) // stride

When the copies outgrow the budget the stride doubles and only the first point of each new (twice as long) block
stays, so the points thin out evenly over the whole run and the first (the initial weights, sample 0) always stays.
Which points are kept depends only on the checks, so a timeline is a pure function of the run's settings, however
the samples were split into chunks. A point holds the hidden size it was taken at (a live resize changes it).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from core.limits import size_text
from core.trainer import CHECK_EVERY, Trainer

DEFAULT_BUDGET = 8_000_000  # bytes of weight copies the window keeps (the window's memory may grow ~20 MB at most)
MAX_BUDGET = 64 * 2**20  # the largest budget a timeline (or a saved session's) may have
POINT_OVERHEAD = 256  # bytes a point costs beside its weights: the Point, the array's header, its list slot
MIN_POINTS = 8  # weights so large that fewer than this many copies fit are not kept at all
MAX_POINTS = MAX_BUDGET // POINT_OVERHEAD  # a bound on the number of points, for files


@dataclass(frozen=True, eq=False, slots=True)
class Point:
    """The weights after `samples` samples, as the flat buffer of a Params of `hidden_size` units (read-only)."""

    samples: int
    hidden_size: int
    flat: np.ndarray

    @property
    def check(self) -> int:
        """The index of the check it was taken at (samples // CHECK_EVERY)."""
        return self.samples // CHECK_EVERY

    @property
    def nbytes(self) -> int:
        return int(self.flat.nbytes) + POINT_OVERHEAD


@dataclass(frozen=True, eq=False)
class Summary:
    """What the window shows of a timeline: where its points are and what they cost."""

    samples: np.ndarray  # (N,) int64, increasing
    nbytes: int
    budget: int
    stride: int  # checks per kept point
    note: str = ""  # why nothing is kept, when nothing is

    def describe(self) -> str:
        """'weights kept at 412 points · 3.9 MB of 8 MB'."""
        if self.note:
            return self.note
        count = len(self.samples)
        return f"weights kept at {count:,} point{'s' if count != 1 else ''} · {size_text(self.nbytes)} of " \
               f"{size_text(self.budget)}"


class Timeline:
    """The weights at the run's checks, thinned to stay within budget bytes; a check hook of a Trainer."""

    def __init__(self, budget: int = DEFAULT_BUDGET) -> None:
        if not 0 < budget <= MAX_BUDGET:
            raise ValueError(f"a timeline's budget must be from 1 byte to {size_text(MAX_BUDGET)}, got {budget}")
        self.budget = int(budget)
        self.points: list[Point] = []
        self.stride = 1  # checks per block; one point is kept per block
        self.nbytes = 0
        self.note = ""  # set when the weights are too large to keep

    # ---- recording ----------------------------------------------------------------------------------------------
    def attach(self, trainer: Trainer) -> Timeline:
        """Record trainer's checks from now on (and its weights now, when the timeline is empty); returns self."""
        if self not in trainer.check_hooks:
            trainer.check_hooks.append(self)
        if not self.points:
            self.record(trainer.samples_seen, trainer.params)
        return self

    def __call__(self, trainer: Trainer) -> None:
        self.record(trainer.samples_seen, trainer.params)

    def record(self, samples: int, params: object) -> None:
        """The weights after `samples` samples, if their check opens a new block (see the module docstring)."""
        samples = int(samples)
        while self.points and self.points[-1].samples > samples:  # the run went back (a rollback): forget after it
            self.nbytes -= self.points.pop().nbytes
        flat = params.flat  # type: ignore[attr-defined]
        size = int(flat.nbytes) + POINT_OVERHEAD
        if size * MIN_POINTS > self.budget:
            self.note = (f"weights not kept: one copy takes {size_text(size)}, too much for the "
                         f"{size_text(self.budget)} budget")
            return
        self.note = ""
        if self.points and samples // CHECK_EVERY // self.stride <= self.points[-1].check // self.stride:
            return
        copy = flat.copy()
        copy.flags.writeable = False
        self.points.append(Point(samples, int(params.hidden_size), copy))  # type: ignore[attr-defined]
        self.nbytes += size
        while self.nbytes > self.budget and len(self.points) > 1:
            self._thin()

    def _thin(self) -> None:
        """Double the stride: keep the first point of each new block."""
        self.stride *= 2
        kept: list[Point] = []
        for point in self.points:
            if not kept or point.check // self.stride > kept[-1].check // self.stride:
                kept.append(point)
        self.points = kept
        self.nbytes = sum(point.nbytes for point in kept)

    # ---- reading ------------------------------------------------------------------------------------------------
    def samples(self) -> np.ndarray:
        return np.array([point.samples for point in self.points], dtype=np.int64)

    def at(self, samples: int) -> Point | None:
        """The point at exactly `samples`, or None."""
        index = int(np.searchsorted(self.samples(), samples))
        if index < len(self.points) and self.points[index].samples == samples:
            return self.points[index]
        return None

    def nearest(self, samples: int) -> Point | None:
        """The point closest to `samples` (the earlier one on a tie), or None when there are none."""
        if not self.points:
            return None
        kept = self.samples()
        index = int(np.searchsorted(kept, samples))
        candidates = [i for i in (index - 1, index) if 0 <= i < len(kept)]
        return self.points[min(candidates, key=lambda i: (abs(int(kept[i]) - samples), i))]

    def params_at(self, point: Point, like: object) -> object:
        """A Params of point's weights (a copy) with the options (loss, activation, bias) of `like`."""
        model_params = type(like)
        params = model_params.from_flat(np.array(point.flat), point.hidden_size, like.input_size,  # type: ignore
                                        like.output_size)  # type: ignore[attr-defined]
        for option in ("loss", "activation", "use_bias"):
            if hasattr(like, option):
                setattr(params, option, getattr(like, option))
        return params

    def summary(self) -> Summary:
        return Summary(self.samples(), self.nbytes, self.budget, self.stride, self.note)

    # ---- files (core.session) -----------------------------------------------------------------------------------
    def to_arrays(self) -> dict[str, np.ndarray]:
        """timeline.points (N, 2) samples and hidden size, timeline.flat (all weights in order), timeline.stride."""
        points = np.array([[p.samples, p.hidden_size] for p in self.points], dtype=np.int64).reshape(-1, 2)
        flats = [p.flat for p in self.points]
        flat = np.concatenate(flats) if flats else np.empty(0)
        return {"timeline.points": points, "timeline.flat": flat, "timeline.stride": np.array(self.stride, np.int64)}

    @classmethod
    def from_arrays(cls, points: np.ndarray, flat: np.ndarray, stride: int, sizes: Mapping[int, int],
                    budget: int = DEFAULT_BUDGET) -> Timeline:
        """Rebuild from to_arrays' members, already checked (core.session); sizes maps a hidden size to its number
        of weights. Thinned to fit the budget."""
        timeline = cls(budget)
        timeline.stride = int(stride)
        offset = 0
        for samples, hidden_size in points.tolist():
            size = sizes[int(hidden_size)]
            piece = np.array(flat[offset : offset + size])
            piece.flags.writeable = False
            timeline.points.append(Point(int(samples), int(hidden_size), piece))
            offset += size
        timeline.nbytes = sum(point.nbytes for point in timeline.points)
        while timeline.nbytes > timeline.budget and len(timeline.points) > 1:
            timeline._thin()
        return timeline


def of(trainer: Trainer) -> Timeline | None:
    """The timeline recording trainer's checks, if one is attached."""
    return next((hook for hook in trainer.check_hooks if isinstance(hook, Timeline)), None)
