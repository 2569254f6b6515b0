"""Length generalisation to 1,024 bits: exact-sum accuracy with a confidence interval, error per bit position and
error by carry-chain length, for weights trained at a few bits.

Operands wider than 62 bits do not fit in an int64, so here they are bit arrays: one uint8 row per operand, least
significant bit first, the top bit 0 (as in core.task, the sum then fits in n_bits). The model runs step by step
over chunks of pairs keeping only its state (h, and c for the LSTM) and each step's output: memory grows with the
chunk, not with the width. The step is the reference's (core.lstm, core.rnn) and is tested equal to it.

Intervals are Wilson score intervals (95 %): sums of different pairs are independent, so the interval on the share
of sums right is exact in its assumptions; so is the one on one bit position's error rate across pairs.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from core import models, task
from core.lstm import sigmoid
from core.probe_carry import chain_lengths

MAX_EVAL_BITS = 1024
Z_95 = 1.959963984540054  # the standard normal's 97.5 % quantile
CHUNK_PAIRS = 4096  # pairs run through the model together
DEFAULT_PAIRS = 2000  # sampled pairs per width when the pairs cannot all be listed
MAX_PAIRS = 10_000_000  # sampled pairs per width at most (time, not memory, is the limit: pairs come in chunks)


class LengthError(task.TaskError):
    """A width or a number of pairs outside what evaluation supports."""


def check_eval_bits(n_bits: object) -> int:
    """n_bits as an int in MIN_BITS..MAX_EVAL_BITS, or LengthError."""
    if isinstance(n_bits, bool) or not isinstance(n_bits, (int, np.integer)):
        raise LengthError(f"bits must be a whole number, got {n_bits!r}")
    if not task.MIN_BITS <= n_bits <= MAX_EVAL_BITS:
        raise LengthError(f"bits must be between {task.MIN_BITS} and {MAX_EVAL_BITS} for evaluation, got {n_bits}")
    return int(n_bits)


def wilson(successes: int | np.ndarray, trials: int | np.ndarray, z: float = Z_95) -> tuple[np.ndarray, np.ndarray]:
    """The Wilson score interval (low, high) for a proportion successes / trials (each may be an array)."""
    k, n = np.asarray(successes, np.float64), np.asarray(trials, np.float64)
    n_safe = np.maximum(n, 1.0)
    p = k / n_safe
    centre = (p + z * z / (2 * n_safe)) / (1 + z * z / n_safe)
    half = z * np.sqrt(p * (1 - p) / n_safe + z * z / (4 * n_safe * n_safe)) / (1 + z * z / n_safe)
    low = np.where(k > 0, np.clip(centre - half, 0.0, 1.0), 0.0)  # exact ends where rounding would leave 1e-18
    high = np.where(k < n, np.clip(centre + half, 0.0, 1.0), 1.0)
    return np.where(n > 0, low, 0.0), np.where(n > 0, high, 1.0)


# ---- operands as bits --------------------------------------------------------------------------------------------
def sample_bits(rng: np.random.Generator, n_pairs: int, n_bits: int) -> tuple[np.ndarray, np.ndarray]:
    """n_pairs random operand pairs, each operand uniform over [0, 2**(n_bits-1)): two (n_pairs, n_bits) uint8
    arrays, least significant bit first, the top bit 0."""
    n_bits = check_eval_bits(n_bits)
    bits = rng.integers(0, 2, size=(2, n_pairs, n_bits), dtype=np.uint8)
    bits[:, :, -1] = 0
    return bits[0], bits[1]


def to_bits(values: np.ndarray, n_bits: int) -> np.ndarray:
    """Non-negative integers (N,) -> (N, n_bits) uint8 bits, least significant first (int64: bits 63 and up are 0)."""
    values = np.asarray(values, np.int64)
    width = min(n_bits, 63)
    bits = np.zeros((len(values), n_bits), np.uint8)
    bits[:, :width] = (values[:, None] >> np.arange(width, dtype=np.int64)) & 1
    return bits


def add_bits(bits_a: np.ndarray, bits_b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The sum's bits (N, T) uint8 and the carry into each position (N, T) uint8, by ripple-carry addition."""
    total = np.empty_like(bits_a)
    carry_in = np.empty_like(bits_a)
    carry = np.zeros(len(bits_a), np.uint8)
    for t in range(bits_a.shape[1]):
        carry_in[:, t] = carry
        column = bits_a[:, t] + bits_b[:, t] + carry  # 0..3
        total[:, t] = column & 1
        carry = column >> 1
    return total, carry_in


# ---- the model, step by step -------------------------------------------------------------------------------------
def probabilities(params: object, bits_a: np.ndarray, bits_b: np.ndarray,
                  unit_scale: np.ndarray | None = None) -> np.ndarray:
    """p(sum bit t = 1) for every pair, (T, N) float64: the reference forward's equations from a zero state, keeping
    only the state between steps (equal to it to rounding)."""
    out = np.empty((bits_a.shape[1], len(bits_a)))
    for start in range(0, len(bits_a), CHUNK_PAIRS):
        rows = slice(start, start + CHUNK_PAIRS)
        for t, p in enumerate(_outputs(params, bits_a[rows], bits_b[rows], unit_scale)):
            out[t, rows] = p
    return out


def _outputs(params: object, bits_a: np.ndarray, bits_b: np.ndarray, unit_scale: np.ndarray | None):
    """Yield p(sum bit t = 1) (B,) for t = 0, 1, ... for one chunk of B pairs.

    The state is kept as columns (units, B), and for the LSTM the gates are computed as core.lstm_fast does: rows
    reordered i, f, o, g with the sigmoid rows halved, so one tanh gives all four (sigmoid(z) = 1/2 + tanh(z/2)/2).
    """
    dtype = params.dtype
    H = params.hidden_size
    gated = models.name_of(params) == "lstm"
    rows = _stored_rows(H) if gated else np.arange(H)
    halve = np.ones(len(rows), dtype)
    if gated:
        halve[: 3 * H] = 0.5
    elif params.activation == "sigmoid":
        halve[:] = 0.5
    # The input x_t is one of four bit pairs: project all four once (x W_ih^T + b), then step t picks its column.
    codes = (bits_a.astype(np.intp) + 2 * bits_b.astype(np.intp)).T  # (T, B) in 0..3
    inputs = np.array([[0, 0], [1, 0], [0, 1], [1, 1]], dtype)
    projected = np.ascontiguousarray(((inputs @ params.weight_ih.T + params.bias)[:, rows] * halve).T)  # (4H, 4)
    w_hh = np.ascontiguousarray(params.weight_hh[rows] * halve[:, None])  # (4H, H) or (H, H)
    w_out, b_out = params.weight_out, params.bias_out[:, None]
    scale = None if unit_scale is None else np.asarray(unit_scale, dtype)[:, None]
    h = np.zeros((H, len(bits_a)), dtype)
    c = np.zeros_like(h)
    c_tanh = np.empty_like(h)
    squash_all = not gated and params.activation == "tanh"
    for code in codes:
        z = w_hh @ h  # (4H, B) or (H, B)
        z += projected[:, code]
        np.tanh(z, out=z)
        if gated:
            z[: 3 * H] *= 0.5
            z[: 3 * H] += 0.5  # i, f, o as sigmoids; g = tanh
            c *= z[H : 2 * H]  # c = f * c_{t-1} + i * g
            c += z[:H] * z[3 * H :]
            if scale is not None:
                c *= scale
            np.tanh(c, out=c_tanh)
            h = z[2 * H : 3 * H] * c_tanh  # h = o * tanh(c)
        else:
            h = z
            if not squash_all:
                h *= 0.5
                h += 0.5  # sigmoid units
        if scale is not None:
            h *= scale
        yield sigmoid(w_out @ h + b_out)[0]


@functools.lru_cache(maxsize=64)
def _stored_rows(hidden_size: int) -> np.ndarray:
    """Row indices taking the LSTM weights' i, f, g, o blocks to i, f, o, g (the three sigmoid gates together)."""
    return np.concatenate([np.arange(k * hidden_size, (k + 1) * hidden_size) for k in (0, 1, 3, 2)])


# ---- evaluation at one width -------------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class WidthResult:
    """How a model adds n_bits-bit numbers: sums right (with an interval), errors per position and by carry chain."""

    n_bits: int
    n_pairs: int
    exhaustive: bool
    right: int  # sums with every bit right
    low: float  # Wilson 95 % interval on right / n_pairs
    high: float
    position_wrong: np.ndarray  # (T,) pairs with output bit t wrong, LSB first
    chain_wrong: np.ndarray  # (K,) wrong output bits whose carry in had been passed along k steps
    chain_count: np.ndarray  # (K,) output bits with that chain, k = 0 .. K-1 (K = n_bits)

    @property
    def accuracy(self) -> float:
        return self.right / self.n_pairs

    @property
    def bit_accuracy(self) -> float:
        return 1.0 - float(self.position_wrong.sum()) / (self.n_pairs * self.n_bits)

    @property
    def position_error(self) -> np.ndarray:
        """(T,) share of pairs with output bit t wrong."""
        return self.position_wrong / self.n_pairs

    def position_interval(self) -> tuple[np.ndarray, np.ndarray]:
        """Wilson 95 % intervals (low, high), each (T,), on position_error."""
        return wilson(self.position_wrong, self.n_pairs)

    def band_error(self, first: int, last: int) -> tuple[float, int, int]:
        """(error rate, wrong bits, bits) over output positions first..last."""
        wrong = int(self.position_wrong[first : last + 1].sum())
        bits = self.n_pairs * (last + 1 - first)
        return wrong / bits, wrong, bits

    def chain_error(self) -> np.ndarray:
        """(K,) error rate of output bits by the chain of their carry in (NaN where there are none)."""
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(self.chain_count > 0, self.chain_wrong / np.maximum(self.chain_count, 1), np.nan)


def evaluate_width(params: object, n_bits: int, n_pairs: int | None = None, rng: np.random.Generator | None = None,
                   unit_scale: np.ndarray | None = None) -> WidthResult:
    """Every pair when n_pairs is None and they number at most task.EXHAUSTIVE_LIMIT, else n_pairs (default
    DEFAULT_PAIRS) random pairs drawn from rng (default: fixed per width)."""
    n_bits = check_eval_bits(n_bits)
    exhaustive = n_pairs is None and 4 ** (n_bits - 1) <= task.EXHAUSTIVE_LIMIT
    if exhaustive:
        a, b = task.all_pairs(n_bits)
        count = len(a)
    else:
        count = DEFAULT_PAIRS if n_pairs is None else n_pairs
        if isinstance(count, bool) or not isinstance(count, (int, np.integer)) or not 1 <= count <= MAX_PAIRS:
            raise LengthError(f"pairs must be a whole number from 1 to {MAX_PAIRS:,}, got {count!r}")
        rng = rng if rng is not None else np.random.default_rng([20150605, n_bits])
    position_wrong = np.zeros(n_bits, np.int64)
    chain_wrong = np.zeros(n_bits, np.int64)
    chain_count = np.zeros(n_bits, np.int64)
    right = 0
    for start in range(0, count, CHUNK_PAIRS):  # pairs are made a chunk at a time: memory does not grow with them
        size = min(CHUNK_PAIRS, count - start)
        if exhaustive:
            chunk_a, chunk_b = to_bits(a[start : start + size], n_bits), to_bits(b[start : start + size], n_bits)
        else:
            chunk_a, chunk_b = sample_bits(rng, size, n_bits)
        total, _ = add_bits(chunk_a, chunk_b)
        # The carry into bit t was passed along chain[t-1] steps (the chain of the carry out of bit t - 1).
        chains = chain_lengths(chunk_a.T, chunk_b.T)  # (T, B)
        chain_in = np.vstack([np.zeros((1, len(chunk_a)), np.int64), chains[:-1]])
        wrong_any = np.zeros(len(chunk_a), bool)
        for t, p in enumerate(_outputs(params, chunk_a, chunk_b, unit_scale)):
            wrong = (p >= 0.5) != (total[:, t] == 1)
            wrong_any |= wrong
            position_wrong[t] += np.count_nonzero(wrong)
            chain_wrong += np.bincount(chain_in[t], weights=wrong, minlength=n_bits).astype(np.int64)
            chain_count += np.bincount(chain_in[t], minlength=n_bits)
        right += int(np.count_nonzero(~wrong_any))
    low, high = wilson(right, count)
    return WidthResult(n_bits, int(count), exhaustive, right, float(low), float(high), position_wrong, chain_wrong,
                       chain_count)


def position_bands(n_bits: int, trained_bits: int) -> list[tuple[int, int]]:
    """Output positions grouped for a summary: the trained ones, then bands doubling in width (8-15, 16-31, ...)."""
    bands = [(0, min(trained_bits, n_bits) - 1)]
    first = trained_bits
    while first < n_bits:
        last = min(n_bits, max(2 * first, first + 1)) - 1
        bands.append((first, last))
        first = last + 1
    return bands


def chain_bands(n_bits: int) -> list[tuple[int, int]]:
    """Carry-chain lengths grouped for a summary: 0, 1, 2-3, 4-7, 8-15, ..."""
    bands = [(0, 0)]
    first = 1
    while first < n_bits:
        bands.append((first, min(2 * first, n_bits) - 1))
        first *= 2
    return bands


def describe_rate(wrong: int, total: int) -> str:
    """'2.1e-03 (13 of 6,144)' or '0 (0 of 6,144; below 6.0e-04 at 95 %)'."""
    if total == 0:
        return "no bits"
    if wrong == 0:
        return f"0 (0 of {total:,}; below {float(wilson(0, total)[1]):.1e} at 95 %)"
    return f"{wrong / total:.1e} ({wrong:,} of {total:,})"


def percent_interval(result: WidthResult) -> str:
    """'93.15 % (95 % interval 92.0-94.2 %)'."""
    digits = 2 if result.n_pairs >= 10_000 else 1
    return (f"{100 * result.accuracy:.2f} % (95 % interval {100 * result.low:.{digits}f}-"
            f"{100 * result.high:.{digits}f} %)")
