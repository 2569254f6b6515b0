"""The focus: the one addition the window looks at, traced bit by bit, with the numbers derived from the trace.

A FocusTrace is what every view of that addition draws (heatmaps, bit rows, step-through, backward plot). It is
computed where the weights are (the training thread), so the window only formats it:

    grad_hidden_norm[t] = ||dL/dh_t||          # (T,) L2 norm over units
    grad_cell_norm[t]   = ||dL/dc_t||          # (T,) the LSTM only
    top_units[t]        = argsort(-|dL/dc_t|)[:k]   # the units the answer depends on most at step t
                                                    # (|dL/dh_t| for a model without a cell)

"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from core import probe
from core.probe import Trace

TOP_UNITS = 3  # units named per step as carrying the most gradient


@dataclass(frozen=True, eq=False)
class FocusTrace:
    """One addition traced through the weights after `samples_seen` samples, and its per-step gradient summary."""

    trace: Trace
    samples_seen: int  # training samples behind the weights traced
    grad_hidden_norm: np.ndarray  # (T,) ||dL/dh_t||
    grad_cell_norm: np.ndarray | None  # (T,) ||dL/dc_t||; None without a cell (the plain RNN)
    top_units: np.ndarray  # (T, k) int, largest |dL/dc_t| (or |dL/dh_t|) first

    @property
    def operands(self) -> tuple[int, int]:
        return self.trace.a, self.trace.b


def derive(trace: Trace, samples_seen: int = -1, top: int = TOP_UNITS) -> FocusTrace:
    """The gradient norms and top units of a trace."""
    grad_hidden_norm = np.linalg.norm(trace.grad_hidden, axis=1)  # (T,)
    grad_cell_norm = None if trace.grad_cell is None else np.linalg.norm(trace.grad_cell, axis=1)
    gradient = trace.grad_cell if trace.grad_cell is not None else trace.grad_hidden  # (T, H)
    k = min(top, gradient.shape[1])
    top_units = np.argsort(-np.abs(gradient), axis=1, kind="stable")[:, :k]  # (T, k)
    return FocusTrace(trace, int(samples_seen), grad_hidden_norm, grad_cell_norm, top_units.astype(np.int64))


def trace_focus(params: object, a: int, b: int, n_bits: int, unit_scale: np.ndarray | None = None,
                samples_seen: int = -1) -> FocusTrace:
    """Trace a + b through params (operands checked; unit_scale (H,) knocks units out) and derive its numbers."""
    return derive(probe.trace(params, a, b, n_bits, unit_scale), samples_seen)

