"""A linear probe for the carry: how well the carry out of each step can be read from the whole state [c_t, h_t].

The carry finder (core.carry) asks whether one unit tracks the carry. A model can hold it spread over several
units instead, so this asks the question of the whole state: a logistic regression from the state after step t
(c_t and h_t of every unit; h_t alone for a model without a cell) to the true carry out of step t, fitted by
Newton's method on a random 2,048 of the operand pairs and scored on all the others.

Reading the result: the carry out of step t is a threshold of the bits seen so far, and most carries are decided
by the last one or two bit pairs, which even an untrained network's state holds. So the overall accuracy is high
for any model (measured: 97.9 % for the untrained seed-0 LSTM, 99.9 % with PyTorch's small initial weights).
What tells a model that carries from one that does not is the accuracy by *carry chain*: the number of steps the
carry has been passed along unchanged (bits 0 + 1 or 1 + 0) since the last pair that decided it (0 + 0 or 1 + 1).
Chain 0 is decided by the step's own bits; a long chain has to be remembered (measured at 8 bits, chains of 4 or
more: 80 % for the untrained seed-0 LSTM, 100 % for the solved one).
Unit weights are the fitted coefficients on standardised features, combined over c and h: which units the
readout leans on.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from core import models, task

LONG_CHAIN = 4  # a carry passed along at least this many steps counts as remembered over a long chain
RIDGE = 1e-4  # L2 penalty (per row, on standardised features): keeps separable data's weights finite
NEWTON_STEPS = 30
FIT_PAIRS = 2048  # pairs the probe is fitted on (T of them each: 16,384 rows at 8 bits for 2H + 1 weights)
_CHUNK = 4096  # pairs per forward


@dataclass(frozen=True, eq=False)
class CarryProbe:
    """How well a linear readout of the state recovers the carry, overall and by carry-chain length."""

    accuracy: float  # on the held-out pairs: share of (pair, step) whose carry out the probe reads right
    chain_accuracy: np.ndarray  # (n_bits,) accuracy where the carry was passed along k steps (k = 0 .. n_bits - 1)
    chain_count: np.ndarray  # (n_bits,) held-out (pair, step) values with chain k
    long_chain_accuracy: float  # chains of LONG_CHAIN steps or more (NaN when there are none)
    majority: float  # accuracy of always guessing the commoner carry value: the floor
    unit_weight: np.ndarray  # (H,) size of the readout's weights on each unit (c and h together), standardised
    best_units: np.ndarray  # (H,) units by unit_weight, largest first
    features: str  # "c and h", or "h" for a model without a cell
    n_pairs: int  # pairs used: FIT_PAIRS (at most half) to fit, the rest to score
    n_bits: int
    exhaustive: bool
    samples_seen: int = -1

    def summary(self, units: int = 3) -> str:
        """'a linear readout of [c, h] gets 100.00 % of carries right (chains of 4+ steps: 100.0 %); units 3, 7, 12
        weigh most'."""
        long = "" if np.isnan(self.long_chain_accuracy) else (
            f" (chains of {LONG_CHAIN}+ steps: {100 * self.long_chain_accuracy:.1f} %)")
        names = ", ".join(str(int(u)) for u in self.best_units[:units])
        state = "[c, h]" if self.features == "c and h" else "h"
        return (f"a linear readout of {state} gets {100 * self.accuracy:.2f} % of carries right{long}; "
                f"units {names} weigh most")


def chain_lengths(bits_a: np.ndarray, bits_b: np.ndarray) -> np.ndarray:
    """(T, B) bits LSB first -> (T, B) int: steps the carry out of each position has been passed along unchanged.

    0 where the position's own bits decide it (0 + 0 kills, 1 + 1 makes a carry); k where the last k positions,
    this one included, were 0 + 1 or 1 + 0 (each passes its carry in on). A chain from the first bit carries the
    initial 0.
    """
    propagates = np.asarray(bits_a) != np.asarray(bits_b)
    lengths = np.zeros(propagates.shape, np.int64)
    run = np.zeros(propagates.shape[1:], np.int64)
    for t in range(len(propagates)):
        run = np.where(propagates[t], run + 1, 0)
        lengths[t] = run
    return lengths


def state_features(params: object, a: np.ndarray, b: np.ndarray, n_bits: int,
                   unit_scale: np.ndarray | None = None) -> tuple[np.ndarray, str]:
    """The state after every step for the pairs: (T * N, 2H) [c_t, h_t] (or (T * N, H) h_t), rows step-major."""
    model = models.fast(params)
    blocks, names = [], "h"
    for start in range(0, len(a), _CHUNK):
        x, _ = task.make_batch(a[start : start + _CHUNK], b[start : start + _CHUNK], n_bits, params.dtype)
        _, cache = model.forward(params, x, unit_scale)
        cell = getattr(cache, "cell", None)
        parts = [cache.hidden[1:]] if cell is None else [cell[1:], cache.hidden[1:]]  # (T, n, H) each
        names = "h" if cell is None else "c and h"
        blocks.append(np.concatenate(parts, axis=2).astype(np.float64))
    return np.concatenate(blocks, axis=1).reshape(-1, blocks[0].shape[2]), names


def fit_logistic(features: np.ndarray, target: np.ndarray, ridge: float = RIDGE,
                 steps: int = NEWTON_STEPS) -> np.ndarray:
    """Logistic regression by Newton's method: weights (F + 1,) with the intercept last, for features (N, F) and a
    0/1 target (N,), minimising the mean log-loss plus ridge / 2 * |w|^2 (the intercept unpenalised)."""
    design = np.column_stack([features, np.ones(len(features))])
    weights = np.zeros(design.shape[1])
    penalty = np.full(design.shape[1], ridge)
    penalty[-1] = 0.0
    for _ in range(steps):
        p = 0.5 * np.tanh(0.5 * (design @ weights)) + 0.5
        gradient = design.T @ (p - target) / len(target) + penalty * weights
        curvature = (design * (p * (1.0 - p))[:, None]).T @ design / len(target) + np.diag(penalty)
        step = np.linalg.solve(curvature + 1e-12 * np.eye(len(weights)), gradient)
        weights -= step
        if np.max(np.abs(step)) < 1e-9:
            break
    return weights


def probe_carry(params: object, n_bits: int, unit_scale: np.ndarray | None = None, n_pairs: int | None = None,
                seed: int = 20150605, samples_seen: int = -1) -> CarryProbe:
    """Fit the probe on FIT_PAIRS of the pairs (at most half) and score it on the others: all 4**(n_bits-1) pairs
    when n_pairs is None and that is at most task.EXHAUSTIVE_LIMIT, else n_pairs (default 4,096) random ones."""
    rng = np.random.default_rng([seed, n_bits, 8])
    limit = task.operand_limit(n_bits)
    wanted = n_pairs if n_pairs is not None else task.EXHAUSTIVE_LIMIT
    exhaustive = limit * limit <= min(wanted, task.EXHAUSTIVE_LIMIT)
    a, b = task.all_pairs(n_bits) if exhaustive else task.sample_operands(rng, n_pairs or 4096, n_bits)
    features, names = state_features(params, a, b, n_bits, unit_scale)  # (T * N, F)
    _, carry_out = task.carries(a, b, n_bits)  # (T, N)
    chains = chain_lengths(task.encode(a, n_bits), task.encode(b, n_bits))  # (T, N)
    fit_half = np.zeros(len(a), bool)
    fit_half[rng.permutation(len(a))[: min(FIT_PAIRS, len(a) // 2)]] = True
    fit_rows = np.tile(fit_half, n_bits)  # rows are step-major: row t * N + k is pair k at step t
    target, chain = carry_out.ravel(), chains.ravel()

    mean = features[fit_rows].mean(axis=0)
    spread = features[fit_rows].std(axis=0)
    varies = spread > 1e-12 * np.maximum(1.0, np.abs(mean))  # a constant feature (a silenced unit) carries nothing
    standard = np.where(varies, (features - mean) / np.where(varies, spread, 1.0), 0.0)
    weights = fit_logistic(standard[fit_rows], target[fit_rows])
    right = ((standard[~fit_rows] @ weights[:-1] + weights[-1] > 0) == (target[~fit_rows] > 0.5))
    held_chain = chain[~fit_rows]
    counts = np.bincount(held_chain, minlength=n_bits)[:n_bits]
    hits = np.bincount(held_chain, weights=right, minlength=n_bits)[:n_bits]
    with np.errstate(invalid="ignore", divide="ignore"):
        chain_accuracy = np.where(counts > 0, hits / np.maximum(counts, 1), np.nan)
    long = held_chain >= LONG_CHAIN
    H = params.hidden_size  # type: ignore[attr-defined]
    per_unit = weights[:-1].reshape(-1, H)  # (2, H) rows c, h (or (1, H) h)
    unit_weight = np.sqrt((per_unit**2).sum(axis=0))
    held_target = target[~fit_rows]
    return CarryProbe(
        accuracy=float(right.mean()),
        chain_accuracy=chain_accuracy,
        chain_count=counts,
        long_chain_accuracy=float(right[long].mean()) if long.any() else float("nan"),
        majority=float(max(held_target.mean(), 1.0 - held_target.mean())),
        unit_weight=unit_weight,
        best_units=np.argsort(-unit_weight, kind="stable"),
        features=names,
        n_pairs=len(a),
        n_bits=n_bits,
        exhaustive=exhaustive,
        samples_seen=samples_seen,
    )


def from_trainer(trainer: object, unit_scale: np.ndarray | None = None, n_pairs: int | None = None) -> CarryProbe:
    """probe_carry for a Trainer's current weights."""
    return probe_carry(trainer.params, trainer.config.n_bits, unit_scale, n_pairs,  # type: ignore[attr-defined]
                       samples_seen=int(trainer.samples_seen))  # type: ignore[attr-defined]
