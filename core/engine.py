"""The engines that train and evaluate: `numpy` (core.lstm_fast / core.rnn) and `compiled` (core.kernels, numba).

Both do the same arithmetic on the same samples: train a run of updates (forward, backward through time,
clipping, the optimizer's step) and predict the sum bits of many pairs. The compiled one runs whole chunks in
machine code without holding the interpreter lock; the NumPy one runs anywhere.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from core import models, task
from core.optim import Optimizer, clip_by_global_norm

ENGINES = ("numpy", "compiled")
DEFAULT = "auto"  # what an unnamed engine means: compiled where numba is installed
PREDICT_CHUNK = 4096  # pairs per forward in predict, to bound memory


class EngineError(ValueError):
    """An engine name that is not known, or the compiled engine asked for where it cannot run."""


def compiled_available() -> bool:
    """True when the compiled engine can be imported (numba installed)."""
    try:
        from core import kernels
    except ImportError:
        return False
    return bool(getattr(kernels, "AVAILABLE", False))


def resolve(name: str | None) -> str:
    """"auto": compiled where available, else numpy; None: DEFAULT. An explicit name is checked."""
    if name is None:
        name = DEFAULT
    if name == "auto":
        return "compiled" if compiled_available() else "numpy"
    if name not in ENGINES:
        raise EngineError(f"engine must be auto, {' or '.join(ENGINES)}, got {name!r}")
    if name == "compiled" and not compiled_available():
        raise EngineError("the compiled engine needs numba, which is not installed here (pip install numba); "
                          "use --engine numpy")
    return name


@dataclass
class Updates:
    """What a run of updates did."""

    updates: int  # updates applied (fewer than asked when one would have diverged)
    diverged: bool
    probs: np.ndarray  # (T, updates * batch) each sample's p(sum bit) before its update
    losses: np.ndarray  # (updates,) each update's loss (per addition: summed over bits, mean over the batch)


def train(engine: str, params: object, optimizer: Optimizer, clip_norm: float, a: np.ndarray, b: np.ndarray,
          n_bits: int, batch_size: int, max_loss: float, workspace: object = None) -> Updates:
    """Train on the pairs a, b (len a multiple of batch_size) in order, batch_size per update, in place.

    An update whose loss is not finite or above max_loss, or whose gradient norm is not finite, is not applied
    and ends the run (diverged)."""
    if engine == "compiled":
        from core import kernels

        out = kernels.train_chunk(models.name_of(params), params, optimizer, clip_norm, a, b, n_bits, batch_size,
                                  max_loss)
        return Updates(out.updates, out.diverged, out.probs, out.losses)
    model = models.fast(params)
    n_updates = len(a) // batch_size
    x_all, y_all = task.make_batch(a, b, n_bits, params.dtype)  # (T, N, 2): encoding per sample costs at batch 1
    probs_all = np.empty((n_bits, len(a)), params.dtype)
    losses = np.empty(n_updates)
    for k in range(n_updates):
        rows = slice(k * batch_size, (k + 1) * batch_size)
        probs, cache = model.forward(params, x_all[:, rows], workspace=workspace)
        loss, grads = model.backward(params, cache, y_all[:, rows], workspace=workspace)
        norm = clip_by_global_norm(grads, clip_norm)
        if not (np.isfinite(loss) and np.isfinite(norm)) or loss > max_loss:
            return Updates(k, True, probs_all[:, : k * batch_size], losses[:k])
        optimizer.step(params, grads)
        probs_all[:, rows] = probs[:, :, 0]
        losses[k] = loss
    return Updates(n_updates, False, probs_all, losses)


def predict(engine: str, params: object, a: np.ndarray, b: np.ndarray, n_bits: int,
            unit_scale: np.ndarray | None = None) -> np.ndarray:
    """Output probabilities (T, N) float64 for the pairs; unit_scale (H,) scales each unit's state (knockout)."""
    if engine == "compiled":
        from core import kernels

        return kernels.predict(params, a, b, n_bits, unit_scale)
    model = models.fast(params)
    out = np.empty((n_bits, len(a)))
    for start in range(0, len(a), PREDICT_CHUNK):
        x, _ = task.make_batch(a[start : start + PREDICT_CHUNK], b[start : start + PREDICT_CHUNK], n_bits,
                               params.dtype)
        probs, _ = model.forward(params, x, unit_scale)
        out[:, start : start + PREDICT_CHUNK] = probs[:, :, 0]
    return out
