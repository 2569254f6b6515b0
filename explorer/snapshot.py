"""Snapshot: a frozen picture of the training run, built in the worker thread from copied arrays.

The GUI keeps only the latest one and draws from it; nothing in it is shared with the live Trainer, so the
worker can keep training while the GUI reads it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import numpy as np

from core import probe, task
from core.trainer import TrainConfig, Trainer

STATES = ("training", "paused", "solved", "diverged")
DEFAULT_PROBE = (45, 67)  # the original notebook's example addition


@dataclass(frozen=True, eq=False)
class Snapshot:
    """Everything the views show at one moment. Arrays are copies owned by the snapshot."""

    samples_seen: int
    samples_per_second: float  # throughput of the last training chunk
    loss: float  # mean loss of the last chunk (nan before any training)
    bit_error: float  # mean |y - p| of the last chunk
    accuracy: float  # exact-sum accuracy on the held-out pairs
    state: str  # one of STATES
    message: str  # what just happened, for the status bar ("" when nothing new)
    config: TrainConfig  # a copy of the trainer's settings
    params: Any  # a copy of the model's Params (any model kind)
    history: np.ndarray  # (N, 4) samples, loss, bit_error, accuracy
    events: tuple[tuple[int, str], ...]  # (samples seen, what changed): hyperparameter changes, divergence
    probe: probe.Trace  # the probe addition traced bit by bit (no gates or cell for the plain RNN)
    analyses: Mapping[str, object] = field(default_factory=lambda: MappingProxyType({}))
    solved_at: tuple[int, float] | None = None  # (samples, training seconds) when every sum was first right
    training_seconds: float = 0.0
    probe_operands: tuple[int, int] = DEFAULT_PROBE
    unit_scale: np.ndarray | None = None  # (H,) knockout mask the analyses and the probe used, or None
    last_sample: tuple[int, int, int] | None = None  # the last training sample a, b and the model's answer
    serial: int = 0  # counts snapshots of one worker, so views can tell a new one from one already drawn

    @property
    def n_bits(self) -> int:
        return self.config.n_bits

    @property
    def hidden_size(self) -> int:
        return int(self.config.hidden_size)

    @property
    def solved(self) -> bool:
        return self.solved_at is not None


def probe_operands_for(n_bits: int, wanted: tuple[int, int]) -> tuple[int, int]:
    """The wanted probe operands if they fit n_bits, else the same numbers wrapped into range."""
    limit = task.operand_limit(n_bits)
    return wanted[0] % limit, wanted[1] % limit


def mask_for(params: Any, unit_scale: np.ndarray | None) -> np.ndarray | None:
    """unit_scale if it matches the model's hidden size, else None (a resize made it stale)."""
    if unit_scale is None or unit_scale.shape != (params.hidden_size,):
        return None
    return unit_scale


def trace_probe(params: Any, n_bits: int, operands: tuple[int, int],
                unit_scale: np.ndarray | None = None) -> probe.Trace:
    """The probe addition traced through the model (the LSTM, or the plain RNN: h only)."""
    a, b = probe_operands_for(n_bits, operands)
    return probe.trace(params, a, b, n_bits, mask_for(params, unit_scale))


def take(trainer: Trainer, *, state: str, message: str = "", probe_operands: tuple[int, int] = DEFAULT_PROBE,
         unit_scale: np.ndarray | None = None, analyses: Mapping[str, object] | None = None,
         last_chunk: tuple[float, float] = (float("nan"), float("nan")),
         last_sample: tuple[int, int, int] | None = None, serial: int = 0) -> Snapshot:
    """Copy what the views need out of a trainer. Call it in the thread that owns the trainer.

    last_chunk is (loss, bit_error) of the most recent chunk.
    """
    if state not in STATES:
        raise ValueError(f"state must be one of {', '.join(STATES)}, got {state!r}")
    params = trainer.params.copy()
    mask = None if unit_scale is None else np.array(unit_scale, dtype=np.float64)
    return Snapshot(
        samples_seen=int(trainer.samples_seen),
        samples_per_second=float(trainer.samples_per_second),
        loss=float(last_chunk[0]),
        bit_error=float(last_chunk[1]),
        accuracy=float(trainer.accuracy),
        state=state,
        message=message,
        config=dataclasses.replace(trainer.config),
        params=params,
        history=trainer.history.array(),
        events=tuple(trainer.history.events),
        probe=trace_probe(params, trainer.config.n_bits, probe_operands, mask),
        analyses=MappingProxyType(dict(analyses or {})),
        solved_at=trainer.solved_at,
        training_seconds=float(trainer.training_seconds),
        probe_operands=probe_operands_for(trainer.config.n_bits, probe_operands),
        unit_scale=mask,
        last_sample=last_sample,
        serial=serial,
    )
