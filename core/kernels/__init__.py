"""Compiled training and evaluation (numba, nogil): whole chunks of updates in machine code, equal to core.lstm
and core.rnn (the references) to ~1e-15 in float64.

    train_chunk(model, params, optimizer, clip_norm, a, b, n_bits, batch_size, max_loss) -> ChunkOut
    predict(params, a, b, n_bits, unit_scale=None) -> probs (T, N) float64
    loss_and_grads(params, a, b, n_bits) -> (loss, grads flat)       (for tests)
    warm_up()                                                          (compile, or load from the cache)

The kernels release the interpreter lock, so a training thread leaves the GUI thread free. Importing this package
never fails: without numba AVAILABLE is False (UNAVAILABLE_REASON says why) and the functions raise RuntimeError.
Compiled code is cached on disk beside the package, or in the user's cache folder when the package's folder is
not writable (an installed package): see _configure_cache. The kernels themselves are in compiled.py.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass

import numpy as np

from core import lstm, rnn, task
from core.optim import SGD, Adam, Momentum, Optimizer


def _user_cache_dir() -> str:
    home = os.path.expanduser("~")
    if sys.platform == "win32":
        base = os.environ.get("LOCALAPPDATA") or os.path.join(home, "AppData", "Local")
    elif sys.platform == "darwin":
        base = os.path.join(home, "Library", "Caches")
    else:
        base = os.environ.get("XDG_CACHE_HOME") or os.path.join(home, ".cache")
    return os.path.join(base, "lstm-explorer", "numba")


def _configure_cache() -> None:
    """numba caches next to the module (in __pycache__); where that folder is not writable, in the user's cache
    folder instead. NUMBA_CACHE_DIR set by the user wins. Runs before numba is imported."""
    here = os.path.dirname(os.path.abspath(__file__))
    pycache = os.path.join(here, "__pycache__")
    if os.access(pycache if os.path.isdir(pycache) else here, os.W_OK):
        return
    os.environ.setdefault("NUMBA_CACHE_DIR", _user_cache_dir())
    if "numba" in sys.modules:  # imported earlier: numba read its settings then
        config = sys.modules["numba"].config
        if not config.CACHE_DIR:
            config.CACHE_DIR = os.environ["NUMBA_CACHE_DIR"]


_configure_cache()
try:
    from core.kernels import compiled
except ImportError as error:  # numba missing, or too old for this NumPy
    compiled = None
    AVAILABLE = False
    UNAVAILABLE_REASON = f"numba could not be imported: {error}"
else:
    AVAILABLE = True
    UNAVAILABLE_REASON = ""

MODELS = ("lstm", "rnn")
_PARAMS = {"lstm": lstm.Params, "rnn": rnn.Params}


@dataclass(frozen=True)
class ChunkOut:
    """What train_chunk did."""

    updates: int  # updates applied: fewer than len(a) // batch_size when one would have diverged
    diverged: bool  # an update was refused (loss or gradient norm not finite, or loss above max_loss)
    probs: np.ndarray  # (T, updates * batch_size) float64: each sample's p(sum bit = 1) before its update
    losses: np.ndarray  # (updates,) each update's loss (the model's loss summed over the bits, averaged over the batch)
    grad_norms: np.ndarray  # (updates,) each update's global gradient norm before clipping
    rejected_loss: float  # the refused update's loss and gradient norm (NaN when none was refused)
    rejected_norm: float


def train_chunk(model: str, params: lstm.Params | rnn.Params, optimizer: Optimizer, clip_norm: float | None,
                a: np.ndarray, b: np.ndarray, n_bits: int, batch_size: int, max_loss: float) -> ChunkOut:
    """Train on the pairs (a[k], b[k]) in order, batch_size consecutive pairs per update: forward, BPTT, the model's
    loss (params.loss; the RNN's units and biases as its params say), clipping to clip_norm (0 or None: off), the
    optimizer's step. Updates params.flat and the optimizer's state
    in place (allocating the state as zeros if it has none); len(a) // batch_size updates, a remainder is unused.
    Stops before an update whose loss is not finite or above max_loss, or whose gradient norm is not finite."""
    kernel = _kernel(model, "train", params)
    n_bits = task.check_bits(n_bits)
    a, b = _operands(a, b)
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise ValueError(f"batch size must be a whole number of at least 1, got {batch_size!r}")
    flat = params.flat
    if not (flat.flags.c_contiguous and flat.flags.writeable):
        raise ValueError("params.flat must be a writeable contiguous array (it is updated in place)")
    options = _options(params)
    hyper = np.zeros(compiled.N_HYPER)
    hyper[compiled.HYPER_LR] = optimizer.learning_rate
    hyper[compiled.HYPER_CLIP] = clip_norm or 0.0
    hyper[compiled.HYPER_MAX_LOSS] = max_loss
    state_1, state_2, adam_steps = _optimizer_state(optimizer, flat, options, hyper)

    n_updates = len(a) // int(batch_size)
    probs = np.empty((n_bits, n_updates * batch_size))
    losses, norms = np.empty(n_updates), np.empty(n_updates)
    done, diverged = kernel(flat, params.hidden_size, a, b, n_bits, int(batch_size), options, hyper,
                            state_1, state_2, adam_steps, probs, losses, norms)
    if isinstance(optimizer, Adam):
        optimizer.steps += done
    rejected = (losses[done], norms[done]) if diverged else (float("nan"), float("nan"))
    return ChunkOut(done, bool(diverged), probs[:, : done * batch_size], losses[:done], norms[:done],
                    float(rejected[0]), float(rejected[1]))


def predict(params: lstm.Params | rnn.Params, a: np.ndarray, b: np.ndarray, n_bits: int,
            unit_scale: np.ndarray | None = None) -> np.ndarray:
    """p(sum bit t = 1) for the pairs (a[k], b[k]): (T, N) float64, computed in the params' precision.
    unit_scale (H,), if given, multiplies each unit's state after every step (LSTM: c_t and h_t; RNN: h_t).
    Pairs that share their low bits share the steps that read them (each computed once); a pair's result does not
    depend on the other pairs, to the bit."""
    kernel = _kernel(_model_of(params), "predict", params)
    n_bits = task.check_bits(n_bits)
    a, b = _operands(a, b)
    H = params.hidden_size
    scale = np.ones(H, params.dtype) if unit_scale is None else np.array(unit_scale, dtype=params.dtype)
    if scale.shape != (H,):
        raise ValueError(f"unit_scale must have shape ({H},), got {scale.shape}")
    out = np.empty((n_bits, len(a)))
    kernel(_weights(params), H, a, b, n_bits, _options(params), scale, out)
    return out


def loss_and_grads(params: lstm.Params | rnn.Params, a: np.ndarray, b: np.ndarray,
                   n_bits: int) -> tuple[float, np.ndarray]:
    """The loss of the pairs as one batch and its gradient, laid out as params.flat."""
    kernel = _kernel(_model_of(params), "loss_grad", params)
    a, b = _operands(a, b)
    grads = np.empty_like(params.flat)
    loss = kernel(_weights(params), params.hidden_size, a, b, task.check_bits(n_bits), _options(params), grads)
    return float(loss), grads


def warm_up() -> None:
    """Compile (or load from the on-disk cache) every kernel the app calls: training and prediction of each model
    in float64 and float32. The first call in a fresh install compiles (tens of seconds); later ones load."""
    for model in MODELS:
        module = lstm if model == "lstm" else rnn
        for dtype in (np.float64, np.float32):
            params = module.init_params(2, np.random.default_rng(0), dtype=dtype)
            pairs = np.zeros(2, np.int64)
            train_chunk(model, params, SGD(0.0), 0.0, pairs, pairs, 2, 1, float("inf"))
            predict(params, pairs, pairs, 2)


# ---- argument checks ---------------------------------------------------------------------------------------------
def _model_of(params: object) -> str:
    for name, cls in _PARAMS.items():
        if isinstance(params, cls):
            return name
    raise TypeError(f"not the parameters of a known model: {type(params).__name__}")


def _kernel(model: str, what: str, params: object):
    if not AVAILABLE:
        raise RuntimeError(f"the compiled kernels are not available: {UNAVAILABLE_REASON}")
    if model not in _PARAMS:
        raise ValueError(f"unknown model {model!r}: choose one of {', '.join(MODELS)}")
    if not isinstance(params, _PARAMS[model]):
        raise TypeError(f"model {model!r} needs {model}.Params, got {type(params).__name__}")
    if params.dtype not in (np.float64, np.float32):
        raise TypeError(f"the kernels work in float64 or float32, not {params.dtype}")
    if (params.input_size, params.output_size) != (2, 1):
        raise ValueError(f"the kernels compute the addition task's 2 inputs and 1 output, not "
                         f"{params.input_size} and {params.output_size}")
    return getattr(compiled, f"{model}_{what}")


def _weights(params: lstm.Params | rnn.Params) -> np.ndarray:
    """params.flat, copied if it is read-only or not contiguous: another array type would compile another version
    of a kernel (seconds, in the middle of the app) for arrays the kernel only reads."""
    flat = params.flat
    return flat if flat.flags.c_contiguous and flat.flags.writeable else np.array(flat, order="C")


def _options(params: lstm.Params | rnn.Params) -> np.ndarray:
    """The model's options as the kernels' codes: its loss, the RNN's units, whether it has biases."""
    options = np.zeros(compiled.N_OPTIONS, np.int64)
    loss, activation = getattr(params, "loss", "bce"), getattr(params, "activation", "tanh")
    codes = {"bce": compiled.BCE_CODE, "squared": compiled.SQUARED_CODE}
    if loss not in codes:
        raise ValueError(f"no compiled version of the {loss!r} loss")
    options[compiled.OPTION_LOSS] = codes[loss]
    codes = {"tanh": compiled.TANH_CODE, "sigmoid": compiled.SIGMOID_CODE}
    if activation not in codes:
        raise ValueError(f"no compiled version of {activation!r} units")
    options[compiled.OPTION_ACTIVATION] = codes[activation]
    options[compiled.OPTION_BIAS] = compiled.BIAS_CODE if getattr(params, "use_bias", True) else compiled.NO_BIAS_CODE
    return options


def _operands(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """As contiguous writeable int64 arrays: another array type would compile another version of a kernel."""
    arrays = []
    for values in (a, b):
        values = np.ascontiguousarray(values, dtype=np.int64)
        if values.ndim != 1:
            raise ValueError(f"operands must be 1-D arrays, got shape {values.shape}")
        arrays.append(values if values.flags.writeable else values.copy())
    if arrays[0].shape != arrays[1].shape:
        raise ValueError(f"a and b differ in length: {len(arrays[0])} and {len(arrays[1])}")
    if len(arrays[0]) and (min(arrays[0].min(), arrays[1].min()) < 0):
        raise ValueError("operands must not be negative")
    return arrays[0], arrays[1]


def _optimizer_state(optimizer: Optimizer, flat: np.ndarray, options: np.ndarray,
                     hyper: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    """Fill the optimizer's code and numbers in; its state arrays (created as zeros where missing, as core.optim
    would) in the params' precision, attached to the optimizer so the kernel's in-place updates are its state."""
    empty = np.zeros(0, flat.dtype)
    if isinstance(optimizer, SGD):
        options[compiled.OPTION_OPTIMIZER] = compiled.SGD_CODE
        return empty, empty, 0
    if isinstance(optimizer, Momentum):
        options[compiled.OPTION_OPTIMIZER] = compiled.MOMENTUM_CODE
        hyper[compiled.HYPER_MOMENTUM] = optimizer.momentum
        optimizer.velocity = _state_array(optimizer.velocity, flat)  # zeros: v = mu 0 + g is torch's first step
        return optimizer.velocity, empty, 0
    if isinstance(optimizer, Adam):
        options[compiled.OPTION_OPTIMIZER] = compiled.ADAM_CODE
        hyper[compiled.HYPER_BETA1] = optimizer.beta1
        hyper[compiled.HYPER_BETA2] = optimizer.beta2
        hyper[compiled.HYPER_EPS] = optimizer.eps
        if optimizer.first is None or optimizer.first.shape != flat.shape:
            optimizer.first, optimizer.second, optimizer.steps = None, None, 0
        optimizer.first = _state_array(optimizer.first, flat)
        optimizer.second = _state_array(optimizer.second, flat)
        return optimizer.first, optimizer.second, int(optimizer.steps)
    raise TypeError(f"no compiled version of optimizer {type(optimizer).__name__}")


def _state_array(state: np.ndarray | None, flat: np.ndarray) -> np.ndarray:
    if state is None or state.shape != flat.shape:
        return np.zeros_like(flat)
    if state.dtype != flat.dtype or not state.flags.c_contiguous or not state.flags.writeable:
        return np.array(state, dtype=flat.dtype)
    return state
