"""Carry finder: which units' cell state c_t (or hidden state h_t) tracks the carry of the addition.

At step t the model has read bits 0..t of a and b; the carry it must remember for step t+1 is the carry
*out of* step t, which is the same number as the carry *into* step t+1. So the state after step t
(c_t = cache.cell[t+1], h_t = cache.hidden[t+1]) is compared with carry_out[t] from core.task.carries.

For every unit the Pearson correlation between its state and that carry is pooled over all T steps and all
operand pairs (all 4**(n_bits-1) when task.all_pairs allows it, else a fixed random sample). A unit whose state
never changes (zero variance, e.g. a knocked-out unit) gets correlation 0 rather than NaN. Models without a cell
(the plain RNN) are correlated through h alone.

A single unit is only one way to hold the carry: beside the correlations, a linear probe (core.probe_carry) reads
it from the whole state [c_t, h_t]. Over 20 seeds at the defaults the best single unit's |corr| ranges widely
while the probe reads every carry of every solved model (README, "Learning").
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from core import models, task
from core.lstm import Params
from core.probe_carry import CarryProbe, probe_carry

STATES = ("cell", "hidden")
CARRY_THRESHOLD = 0.8  # a unit with |corr| at least this is said to carry the carry
_CHUNK = 4096  # pairs per forward, to bound memory at large hidden sizes
_SAMPLED_PAIRS = 4096  # pairs used when there are too many to list
PROBE_PAIRS = 4096  # random pairs for the linear probe beside the correlations (2,048 fit it, the rest score it)


@dataclass(frozen=True, eq=False)
class CarryUnits:
    """Per-unit correlation of c_t and h_t with the true carry out of step t, pooled over steps and pairs."""

    cell_corr: np.ndarray | None  # (H,) corr(c_t of unit k, carry out of step t); None for models without a cell
    hidden_corr: np.ndarray  # (H,) corr(h_t of unit k, carry out of step t)
    best_units: np.ndarray  # (H,) unit indices, strongest |corr| (of c or h, whichever is larger) first
    n_pairs: int  # operand pairs the correlations are pooled over (times n_bits steps each)
    n_bits: int
    exhaustive: bool  # True when every operand pair was used
    samples_seen: int = -1  # training samples behind the weights, when known
    probe: CarryProbe | None = None  # the linear probe on the whole state, when asked for

    @property
    def strongest(self) -> np.ndarray:
        """(H,) the larger of |corr(c, carry)| and |corr(h, carry)| per unit."""
        return _strongest(self.cell_corr, self.hidden_corr)

    def carriers(self, threshold: float = CARRY_THRESHOLD, limit: int = 3) -> list[int]:
        """Up to `limit` units, best first, whose strongest |corr| is at least threshold."""
        strongest = self.strongest
        return [int(u) for u in self.best_units[:limit] if strongest[u] >= threshold]

    def describe(self, unit: int) -> str:
        """'unit 7: corr(c, carry) = +0.97, corr(h, carry) = +0.95'."""
        cell = "" if self.cell_corr is None else f"corr(c, carry) = {self.cell_corr[unit]:+.2f}, "
        return f"unit {unit}: {cell}corr(h, carry) = {self.hidden_corr[unit]:+.2f}"


def _strongest(cell_corr: np.ndarray | None, hidden_corr: np.ndarray) -> np.ndarray:
    hidden = np.abs(hidden_corr)
    return hidden if cell_corr is None else np.maximum(np.abs(cell_corr), hidden)


class _Moments:
    """Running means and co-moments of X (N, H) against y (N,), merged chunk by chunk (Chan et al.)."""

    def __init__(self, hidden_size: int) -> None:
        self.count = 0
        self.mean_x = np.zeros(hidden_size)
        self.mean_y = 0.0
        self.m2_x = np.zeros(hidden_size)  # sum of squared deviations of x
        self.m2_y = 0.0
        self.cross = np.zeros(hidden_size)  # sum of (x - mean_x)(y - mean_y)

    def add(self, x: np.ndarray, y: np.ndarray) -> None:
        n = y.shape[0]
        mean_x, mean_y = x.mean(axis=0), float(y.mean())
        dx, dy = x - mean_x, y - mean_y  # (n, H), (n,)
        m2_x, m2_y, cross = (dx * dx).sum(axis=0), float(dy @ dy), dy @ dx
        total = self.count + n
        delta_x, delta_y = mean_x - self.mean_x, mean_y - self.mean_y
        weight = self.count * n / total
        self.m2_x += m2_x + delta_x * delta_x * weight
        self.m2_y += m2_y + delta_y * delta_y * weight
        self.cross += cross + delta_x * delta_y * weight
        self.mean_x += delta_x * (n / total)
        self.mean_y += delta_y * (n / total)
        self.count = total

    def correlation(self) -> np.ndarray:
        """(H,) Pearson correlation; 0 where x or y (numerically) does not vary."""
        scale_x = np.maximum(np.abs(self.mean_x), 1.0)
        varies = self.m2_x > (1e-12 * scale_x) ** 2 * self.count  # std above 1e-12 relative: not constant
        if self.m2_y <= 0.0:
            return np.zeros_like(self.cross)
        denominator = np.sqrt(np.where(varies, self.m2_x, 1.0) * self.m2_y)
        return np.where(varies, self.cross / denominator, 0.0)


def find_carry_units(params: Params, n_bits: int, unit_scale: np.ndarray | None = None,
                     rng: np.random.Generator | None = None, samples_seen: int = -1,
                     probe_pairs: int = 0) -> CarryUnits:
    """Correlate every unit's c_t and h_t with the true carry out of step t over all pairs (or a sample); with
    probe_pairs > 0, also fit the linear probe on that many random pairs (core.probe_carry)."""
    model = models.of(params)
    rng = rng if rng is not None else np.random.default_rng(12345)
    a, b, exhaustive = task.evaluation_pairs(n_bits, rng, _SAMPLED_PAIRS)
    H = params.hidden_size
    moments: dict[str, _Moments] = {}
    for start in range(0, len(a), _CHUNK):
        a_chunk, b_chunk = a[start : start + _CHUNK], b[start : start + _CHUNK]
        x, _ = task.make_batch(a_chunk, b_chunk, n_bits, params.dtype)
        _, cache = model.forward(params, x, unit_scale)
        _, carry_out = task.carries(a_chunk, b_chunk, n_bits)  # (T, B)
        carry = carry_out.ravel()  # (T*B,)
        for name in STATES:
            states = getattr(cache, name, None)  # (T+1, B, H); a plain RNN has no cell
            if states is not None:
                after_step = states[1:].reshape(-1, H).astype(np.float64)  # state after step t, (T*B, H)
                moments.setdefault(name, _Moments(H)).add(after_step, carry)
    if "hidden" not in moments:
        raise ValueError(f"model {type(params).__module__} has no hidden state to correlate with the carry")
    cell_corr = moments["cell"].correlation() if "cell" in moments else None
    hidden_corr = moments["hidden"].correlation()
    best = np.argsort(-_strongest(cell_corr, hidden_corr), kind="stable")
    probe = probe_carry(params, n_bits, unit_scale, probe_pairs, samples_seen=samples_seen) if probe_pairs else None
    return CarryUnits(cell_corr, hidden_corr, best, len(a), n_bits, exhaustive, samples_seen, probe)


def from_trainer(trainer: object, unit_scale: np.ndarray | None = None) -> CarryUnits:
    """find_carry_units for a Trainer's current weights, with the linear probe: the shape the window's background
    analyses take."""
    return find_carry_units(trainer.params, trainer.config.n_bits, unit_scale,  # type: ignore[attr-defined]
                            samples_seen=int(trainer.samples_seen),  # type: ignore[attr-defined]
                            probe_pairs=PROBE_PAIRS)
