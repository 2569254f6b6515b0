"""What a run, an evaluation, a file or an option may cost, checked before the cost is paid.

Every budget here is explicit: a number a user can be told. Memory is estimated from the sizes that drive it
(hidden units, bits, batch, held-out pairs, parallel workers) and compared with what this process may still use
(the memory the system has available, and this process's own limits); a run that would not fit is refused with a
message naming both numbers, instead of ending minutes later in a MemoryError.

The estimates are upper bounds of what the NumPy and compiled engines allocate (tests/test_hostile.py measures a
run's peak against its estimate), not exact figures.
"""

from __future__ import annotations

import math
import os

try:
    import resource
except ImportError:  # Windows has no resource module, and no such per-process limits
    resource = None

from core.engine import PREDICT_CHUNK as EVAL_CHUNK
from core.task import EXHAUSTIVE_LIMIT

MAX_SAMPLES = 2**53  # samples seen, trained or asked for: exact as float64 (history rows store sample counts so)
MAX_EVENTS = 500  # hyperparameter-change markers a session keeps (History keeps the last 500)
MAX_TEXT_CHARS = 1 << 17  # a text member of a file (config, rng state, 500 events as JSON)
MAX_MEMBERS = 64  # arrays in a saved file: a session has about 30
MAX_HELDOUT = 16_384  # held-out pairs checked every CHECK_EVERY samples (a file may not ask for more)
MAX_SWEEP_CELLS = 100_000  # cells in one sweep: at a second each, more than a day on two cores
SHOWN_CHARS = 40  # an echoed value is cut to about this many characters
PROCESS_BYTES = 200 * 2**20  # a Python process with NumPy and the core imported (a sweep worker), resident
STATE_BYTES = {"sgd": 0, "momentum": 1, "adam": 2}  # optimizer state arrays, each the size of the weights
EVAL_SAMPLES = 4096  # pairs sampled when there are too many to try all (core.trainer.evaluate's default)
CHECK_EVERY = 100  # core.trainer.CHECK_EVERY (a test keeps them equal; the trainer imports this module)


class LimitError(ValueError):
    """A size beyond what this machine or the app allows; the message names the size and the limit."""


# ---- showing values in messages ------------------------------------------------------------------------------------
def shown(value: object, limit: int = SHOWN_CHARS) -> str:
    """repr(value) cut to about `limit` characters, so an echoed value never floods a one-line message."""
    text = value if isinstance(value, str) else str(value)
    text = repr(text) if isinstance(value, str) else text
    return text if len(text) <= limit else text[: limit - 1] + "…"


def shown_path(path: object, limit: int = 3 * SHOWN_CHARS) -> str:
    """A path for a message: its end (the file name) kept when it is long."""
    text = os.fspath(path) if isinstance(path, (str, os.PathLike)) else str(path)
    return text if len(text) <= limit else "…" + text[-(limit - 1):]


def size_text(n_bytes: float) -> str:
    """2.1 GB, 340 MB, 12 kB: decimal units, as a user reads them."""
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n_bytes >= scale:
            return f"{n_bytes / scale:.1f} {unit}"
    return f"{int(n_bytes)} bytes"


# ---- machine -----------------------------------------------------------------------------------------------------
def cpu_count() -> int:
    """Cores this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def _status_kb(field: str, source: str) -> int | None:
    try:
        with open(source, encoding="ascii") as lines:
            for line in lines:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return None


def memory_available() -> int:
    """Bytes this process may still allocate: the system's available memory, and no more than its own address
    space and data limits (resource.setrlimit) leave."""
    available_kb = _status_kb("MemAvailable", "/proc/meminfo")
    available = available_kb * 1024 if available_kb is not None else _physical_memory()
    kinds = () if resource is None else ((resource.RLIMIT_AS, "VmSize"), (resource.RLIMIT_DATA, "VmData"))
    for limit_kind, used_field in kinds:
        soft, _ = resource.getrlimit(limit_kind)
        if soft != resource.RLIM_INFINITY:
            used_kb = _status_kb(used_field, "/proc/self/status") or 0
            available = min(available, max(0, soft - used_kb * 1024))
    return int(available)


def _physical_memory() -> int:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return 2**62  # unknown: do not refuse on a guess


# ---- memory estimates --------------------------------------------------------------------------------------------
def parameter_count(hidden_size: int, input_size: int = 2, output_size: int = 1) -> int:
    """Weights of an LSTM with a linear head (the largest model kind): 4H(I + H + 1) + O(H + 1)."""
    return 4 * hidden_size * (input_size + hidden_size + 1) + output_size * (hidden_size + 1)


def _item(dtype: object) -> int:
    return 4 if str(dtype) == "float32" else 8


def _activation_bytes(hidden_size: int, n_bits: int, samples: int, itemsize: int) -> int:
    """Forward cache and backward scratch of `samples` sequences: per step and sample the four gates before and
    after their activation, the cell, its tanh, h and the step's inputs, and the gradients of as many."""
    return n_bits * samples * (24 * hidden_size + 16) * itemsize


def evaluation_bytes(hidden_size: int, n_bits: int, dtype: object = "float64", pairs: int | None = None) -> int:
    """Peak extra memory of evaluating a model at n_bits: every pair when there are few enough, else sampled ones,
    in chunks of EVAL_CHUNK; or `pairs` given pairs (the held-out check)."""
    if pairs is None:
        every = 4 ** (n_bits - 1)
        pairs = every if every <= EXHAUSTIVE_LIMIT else EVAL_SAMPLES
    item = _item(dtype)
    chunk = min(pairs, EVAL_CHUNK)
    per_pair = n_bits * 8 * 6 + 64  # probabilities, true bits, wrong bits, decoded sums: (T, N) arrays of each
    return (_activation_bytes(hidden_size, n_bits, chunk, item) // 2 + pairs * per_pair
            + 2 * parameter_count(hidden_size) * item)


def training_bytes(hidden_size: int, n_bits: int, batch_size: int, heldout_size: int, dtype: object = "float64",
                   optimizer: str = "adam") -> int:
    """Peak memory of a Trainer with these settings, training and checking: weights, their gradients and
    rollback copy, the optimizer state and its copy, one update's activations, a chunk's samples, the check."""
    item = _item(dtype)
    weights = parameter_count(hidden_size) * item
    states = STATE_BYTES.get(optimizer, 2)
    kept = weights * (6 + 2 * states)  # params, rollback, grads, engine scratch, two transient copies; states twice
    update = _activation_bytes(hidden_size, n_bits, batch_size, item)
    chunk = (CHECK_EVERY + batch_size) * (n_bits * (3 * item + 8 * 3) + 64)  # samples, encoded bits, probabilities
    check = max(evaluation_bytes(hidden_size, n_bits, dtype), evaluation_bytes(hidden_size, n_bits, dtype,
                                                                               heldout_size))
    return int(kept + update + chunk + check)


def config_training_bytes(config: object) -> int:
    """training_bytes for a TrainConfig."""
    return training_bytes(config.hidden_size, config.n_bits, config.batch_size, config.heldout_size, config.dtype,
                          config.optimizer)


def check_memory(what: str, needed: int, processes: int = 1) -> None:
    """Raise LimitError when `needed` bytes (per process, `processes` of them) would not fit in memory."""
    total = needed * processes + (processes - 1) * PROCESS_BYTES if processes > 1 else needed
    available = memory_available()
    if total > available:
        each = f" ({processes} processes, {size_text(needed)} each)" if processes > 1 else ""
        raise LimitError(f"{what} needs about {size_text(total)} of memory{each}, but only {size_text(available)} "
                         "is available here: use fewer hidden units, bits, a smaller batch or fewer workers")


def check_training(config: object, processes: int = 1) -> None:
    """Refuse a run whose settings would not fit in memory (LimitError names the size and the limit)."""
    check_memory(f"training with {config.hidden_size} hidden units, {config.n_bits} bits, batch "
                 f"{config.batch_size}", config_training_bytes(config), processes)


def check_sweep(configs: object, workers: int) -> None:
    """Refuse a sweep whose largest cell, run in `workers` processes at once, would not fit in memory."""
    largest = max(configs, key=config_training_bytes, default=None)
    if largest is not None:
        check_memory(f"a sweep with cells of up to {largest.hidden_size} hidden units, {largest.n_bits} bits, batch "
                     f"{largest.batch_size}", config_training_bytes(largest), max(1, workers))


def check_evaluation(hidden_size: int, n_bits: int, dtype: object = "float64") -> None:
    """Refuse an evaluation that would not fit in memory."""
    check_memory(f"evaluating {hidden_size} hidden units at {n_bits} bits",
                 evaluation_bytes(hidden_size, n_bits, dtype) + 2 * parameter_count(hidden_size) * _item(dtype))


def check_streaming_evaluation(hidden_size: int, n_bits: int, dtype: object = "float64",
                               chunk: int = EVAL_CHUNK) -> None:
    """Refuse an evaluation that steps `chunk` pairs at a time through n_bits keeping only the state (core.length):
    the weights twice, each step's gates and state for the chunk, and the chunk's bits."""
    item = _item(dtype)
    needed = (2 * parameter_count(hidden_size) * item + chunk * (12 * hidden_size + 16) * item
              + chunk * n_bits * 8 * 8)
    check_memory(f"evaluating {hidden_size} hidden units at {n_bits} bits", needed)


# ---- counts ------------------------------------------------------------------------------------------------------
def check_count(name: str, value: object, low: int = 1, high: int = MAX_SAMPLES) -> int:
    """value as an int in [low, high], or LimitError naming the option."""
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise LimitError(f"{name} must be a whole number from {low:,} to {high:,}, got {shown(value)}")
    return value


def check_seconds(name: str, value: object, low: float = 0.0, high: float = 7 * 24 * 3600.0) -> float:
    """value as a finite number of seconds in (low, high], or LimitError naming the option."""
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if not ok or not low < value <= high:
        raise LimitError(f"{name} must be a number of seconds above {low:g} and at most {high:g}, got "
                         f"{shown(value)}")
    return float(value)
