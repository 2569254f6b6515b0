"""Binary addition as a sequence task.

Two operands a, b in [0, 2**(n_bits-1)) are fed least significant bit first, one bit of each per step;
the target at step t is bit t of a + b. With T = n_bits steps the sum always fits.

    x: (T, B, 2) bits of a and b        y: (T, B, 1) bits of a + b
"""

from __future__ import annotations

import functools

import numpy as np

MIN_BITS = 2
MAX_BITS = 32
EXHAUSTIVE_LIMIT = 1 << 16  # at most this many pairs are evaluated exhaustively; beyond it they are sampled


class TaskError(ValueError):
    """An operand or bit width the task cannot represent."""


def check_bits(n_bits: int) -> int:
    """Return n_bits as an int, or raise TaskError when it is outside MIN_BITS..MAX_BITS."""
    if isinstance(n_bits, bool) or not isinstance(n_bits, (int, np.integer)):
        raise TaskError(f"bits must be an integer, got {n_bits!r}")
    if not MIN_BITS <= n_bits <= MAX_BITS:
        raise TaskError(f"bits must be between {MIN_BITS} and {MAX_BITS}, got {n_bits}")
    return int(n_bits)


def operand_limit(n_bits: int) -> int:
    """Operands are in [0, operand_limit) so that their sum fits in n_bits."""
    return 1 << (check_bits(n_bits) - 1)


def check_operand(value: object, n_bits: int, name: str = "operand") -> int:
    """Return value as an int in [0, 2**(n_bits-1)), or raise TaskError saying what is wrong."""
    limit = operand_limit(n_bits)
    if isinstance(value, str):
        text = value.strip()
        if not text:
            raise TaskError(f"{name} is empty: enter a whole number from 0 to {limit - 1}")
        try:
            value = int(text, 0) if text.lower().startswith(("0b", "0x")) else int(text)
        except ValueError:
            raise TaskError(f"{name} {text[:40]!r} is not a whole number (0 to {limit - 1})") from None
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TaskError(f"{name} must be a whole number, got {value!r}")
    if not 0 <= value < limit:
        raise TaskError(f"{name} {value} is out of range: with {n_bits} bits it must be 0 to {limit - 1}")
    return int(value)


_SHIFTS = np.arange(MAX_BITS, dtype=np.int64)


def encode(values: np.ndarray, n_bits: int) -> np.ndarray:
    """Integers (B,) -> bits (n_bits, B) float64, least significant bit first."""
    values = np.asarray(values, dtype=np.int64)
    return ((values[None, :] >> _SHIFTS[:n_bits, None]) & 1).astype(np.float64)


def decode(bits: np.ndarray) -> np.ndarray:
    """Bits (T, B) LSB first, any values >= 0.5 counting as 1 -> integers (B,) int64."""
    bits = np.asarray(bits)
    weights = np.int64(1) << _SHIFTS[: bits.shape[0]]
    return ((bits >= 0.5).astype(np.int64) * weights[:, None]).sum(axis=0)


def to_binary_string(value: int, n_bits: int) -> str:
    """The bits of value as people write them: most significant bit first."""
    return format(int(value), f"0{n_bits}b")


@functools.lru_cache(maxsize=8)
def _bit_table(n_bits: int, dtype: type) -> np.ndarray:
    """Row v holds the n_bits bits of v, LSB first, for every v < 2**n_bits: (2**n_bits, n_bits)."""
    return np.ascontiguousarray(encode(np.arange(1 << n_bits), n_bits).T.astype(dtype))


def make_batch(a: np.ndarray, b: np.ndarray, n_bits: int, dtype: type = np.float64) -> tuple[np.ndarray, np.ndarray]:
    """Operands a, b (B,) -> x (T, B, 2), y (T, B, 1) for T = n_bits."""
    a = np.asarray(a, dtype=np.int64)
    b = np.asarray(b, dtype=np.int64)
    x = np.empty((n_bits, a.shape[0], 2), dtype)  # (T, B, 2)
    y = np.empty((n_bits, a.shape[0], 1), dtype)  # (T, B, 1)
    if n_bits <= 16:  # a lookup table is cheaper than shifting bits, which matters at batch size 1
        table = _bit_table(n_bits, dtype)
        x[:, :, 0] = table[a].T
        x[:, :, 1] = table[b].T
        y[:, :, 0] = table[a + b].T
    else:
        x[:, :, 0] = encode(a, n_bits)
        x[:, :, 1] = encode(b, n_bits)
        y[:, :, 0] = encode(a + b, n_bits)
    return x, y


def sample_operands(rng: np.random.Generator, batch_size: int, n_bits: int) -> tuple[np.ndarray, np.ndarray]:
    """Draw batch_size pairs uniformly from [0, 2**(n_bits-1))**2.

    Pairs are consecutive draws (a_0, b_0, a_1, b_1, ...), so drawing 10 pairs at once or in any split gives the
    same pairs: a run does not depend on how training was chunked.
    """
    limit = operand_limit(n_bits)
    pairs = rng.integers(0, limit, size=(batch_size, 2), dtype=np.int64)
    return pairs[:, 0], pairs[:, 1]


def all_pairs(n_bits: int) -> tuple[np.ndarray, np.ndarray]:
    """Every operand pair (a varies slowest): 4**(n_bits-1) of them; refused beyond EXHAUSTIVE_LIMIT."""
    limit = operand_limit(n_bits)
    if limit * limit > EXHAUSTIVE_LIMIT:
        raise TaskError(f"{limit * limit:,} pairs at {n_bits} bits are too many to list; sample them instead")
    a, b = np.divmod(np.arange(limit * limit, dtype=np.int64), limit)
    return a, b


def evaluation_pairs(
    n_bits: int, rng: np.random.Generator, n_samples: int = 4096
) -> tuple[np.ndarray, np.ndarray, bool]:
    """All pairs when there are at most EXHAUSTIVE_LIMIT, else n_samples sampled ones; the flag says exhaustive."""
    limit = operand_limit(n_bits)
    if limit * limit <= EXHAUSTIVE_LIMIT:
        return (*all_pairs(n_bits), True)
    return (*sample_operands(rng, n_samples, n_bits), False)


def carries(a: np.ndarray, b: np.ndarray, n_bits: int) -> tuple[np.ndarray, np.ndarray]:
    """True carry into and out of each bit position, both (T, B) float64."""
    bits_a, bits_b = encode(a, n_bits), encode(b, n_bits)
    carry_in = np.zeros_like(bits_a)
    carry_out = np.zeros_like(bits_a)
    carry = np.zeros(bits_a.shape[1])
    for t in range(n_bits):
        carry_in[t] = carry
        carry = ((bits_a[t] + bits_b[t] + carry) >= 2).astype(np.float64)
        carry_out[t] = carry
    return carry_in, carry_out
