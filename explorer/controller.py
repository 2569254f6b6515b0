"""The window's controller: every command to the training worker goes through here, and the focus lives here.

The worker lives in another thread, so commands are queued signals (never a direct call). The focus is the one
addition the window looks at and the bit step within it: the focus fields, the step-through, a click in the error
grid, "Random" and the carry finder all change it here, the worker traces it, and every view of one addition draws
that trace (snapshot.focus) at this step.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
from PySide6.QtCore import QObject, Signal

from core import task
from core.trainer import ConfigError, TrainConfig, Trainer
from explorer.snapshot import DEFAULT_FOCUS, Snapshot, focus_operands_for
from explorer.worker import TrainingWorker

DEFAULT_STEP = 3


@dataclass(frozen=True)
class Focus:
    """The addition a + b being looked at, and the bit step t within it (LSB = 0)."""

    a: int
    b: int
    step: int

    @property
    def operands(self) -> tuple[int, int]:
        return self.a, self.b


class Controller(QObject):
    """Commands to the worker (queued), the focus, and the latest snapshot they are checked against."""

    sigFocusChanged = Signal(object)  # Focus, whenever its operands or step change
    sigRefused = Signal(str)  # a command refused before it was sent, with why
    # To the worker (queued: it lives in another thread).
    _play = Signal()
    _pause = Signal()
    _step = Signal()
    _reset = Signal(object, str)
    _load = Signal(object)
    _update = Signal(object)
    _undo = Signal(str)
    _speed = Signal(float)
    _focus = Signal(int, int)
    _unit_scale = Signal(object)
    _visible = Signal(object, int)
    _request = Signal(str, int)
    _refresh = Signal()
    _engine = Signal(str)
    _auto_stop = Signal(bool)
    _view_at = Signal(int)
    _code_view = Signal(bool)

    def __init__(self, worker: TrainingWorker, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.worker = worker
        self.latest: Snapshot | None = None
        self.focus = Focus(*DEFAULT_FOCUS, DEFAULT_STEP)
        self.visibility_serial = 0
        for signal, slot in ((self._play, worker.play), (self._pause, worker.pause), (self._step, worker.step_once),
                             (self._reset, worker.reset_with_message), (self._load, worker.load_trainer),
                             (self._update, worker.update_config), (self._undo, worker.undo),
                             (self._speed, worker.set_speed), (self._focus, worker.set_focus),
                             (self._unit_scale, worker.set_unit_scale), (self._visible, worker.set_visible),
                             (self._request, worker.request_analysis), (self._refresh, worker.refresh),
                             (self._engine, worker.set_engine), (self._auto_stop, worker.set_auto_stop),
                             (self._view_at, worker.view_at), (self._code_view, worker.set_code_view)):
            signal.connect(slot)

    # ---- training -------------------------------------------------------------------------------------------
    def play(self) -> None:
        self._play.emit()

    def pause(self) -> None:
        self._pause.emit()

    def step(self) -> None:
        self._step.emit()

    def reset(self, config: TrainConfig, message: str = "") -> None:
        """Start afresh with config; message (if any) is what the status bar says once it has."""
        self._reset.emit(config, message)

    def load(self, trainer: Trainer) -> None:
        self._load.emit(trainer)

    def change(self, changes: dict) -> bool:
        """Live hyperparameter changes, e.g. {"learning_rate": 0.3}; checked first, refused with a message
        (sigRefused) when a value is out of range."""
        changes = dict(changes)
        not_live = sorted(set(changes) - set(TrainConfig.LIVE))
        if not_live:
            self.sigRefused.emit(f"Not changed: {', '.join(n.replace('_', ' ') for n in not_live)} can only change "
                                 "with a reset")
            return False
        if self.latest is not None:
            try:
                self.latest.config.replace(**changes)
            except (ConfigError, TypeError) as error:
                self.sigRefused.emit(f"Not changed: {error}")
                return False
        self._update.emit(changes)
        return True

    def undo(self, kind: str = "") -> None:
        """Take back the last live change: "settings", "knockout", or "" for whichever came last."""
        self._undo.emit(kind)

    def set_speed(self, fraction: float) -> None:
        self._speed.emit(float(fraction))

    def set_auto_stop(self, on: bool) -> None:
        self._auto_stop.emit(bool(on))

    def set_engine(self, name: str) -> None:
        self._engine.emit(name)

    # ---- the focus ------------------------------------------------------------------------------------------
    def set_focus(self, a: int, b: int, step: int | None = None) -> bool:
        """Look at a + b (at `step`, or the same step); False, with a message, when they do not fit the model."""
        n_bits = self.latest.n_bits if self.latest is not None else task.MAX_BITS
        try:
            a = task.check_operand(a, n_bits, "first operand")
            b = task.check_operand(b, n_bits, "second operand")
        except task.TaskError as error:
            self.sigRefused.emit(str(error))
            return False
        new = Focus(a, b, self._clamp(self.focus.step if step is None else step))
        if new.operands != self.focus.operands:
            self._focus.emit(a, b)
        self._set(new)
        return True

    def set_step(self, step: int) -> None:
        self._set(dataclasses.replace(self.focus, step=self._clamp(step)))

    def move_step(self, delta: int) -> None:
        self.set_step(self.focus.step + delta)

    def follow(self, snapshot: Snapshot) -> None:
        """Every snapshot: the focus follows what the worker traced when it had to change it (a reset to fewer bits
        wraps the operands into range), and the step stays within the bits."""
        self.latest = snapshot
        traced = snapshot.focus.operands
        wrapped = focus_operands_for(snapshot.n_bits, self.focus.operands)
        operands = traced if traced == wrapped else self.focus.operands  # (else an older trace, still on its way)
        self._set(Focus(*operands, self._clamp(self.focus.step)))

    def _clamp(self, step: int) -> int:
        n_bits = self.latest.focus.trace.n_bits if self.latest is not None else task.MAX_BITS
        return int(min(max(int(step), 0), n_bits - 1))

    def _set(self, focus: Focus) -> None:
        if focus != self.focus:
            self.focus = focus
            self.sigFocusChanged.emit(focus)

    # ---- views ----------------------------------------------------------------------------------------------
    def set_unit_scale(self, unit_scale: np.ndarray | None) -> None:
        """Knock units out (0) or scale them in the analyses and the focus; None restores all."""
        self._unit_scale.emit(None if unit_scale is None else np.array(unit_scale, dtype=np.float64))

    def set_visible(self, analyses: frozenset[str]) -> int:
        """The analyses whose views are on screen now; returns the serial of this change."""
        self.visibility_serial += 1
        self._visible.emit(frozenset(analyses), self.visibility_serial)
        return self.visibility_serial

    def request(self, name: str, number: int) -> None:
        """Ask for an on-request analysis (the gradient check); its result carries the request's number."""
        self._request.emit(name, int(number))

    def refresh(self) -> None:
        self._refresh.emit()

    # ---- the weights shown ------------------------------------------------------------------------------------
    def view_at(self, samples: int | None) -> None:
        """Show every view of the weights at the point kept nearest `samples` (None: the latest again); training
        goes on (or stays paused) meanwhile. Snapshots say which point they show (viewing)."""
        self._view_at.emit(-1 if samples is None else max(0, int(samples)))

    def want_code(self, on: bool) -> None:
        """The code view is on screen (on) or not: snapshots carry the focus recorded through the code, or not."""
        self._code_view.emit(bool(on))
