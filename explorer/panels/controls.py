"""Hyperparameter controls. Live ones apply while training: a slider drag sends one change, when it is released
(the hidden size: a shrink says first which units it would drop); keys send one after a short pause. A typed value
out of range is refused with a message, never changed into another one. The others need a reset and say so."""

from __future__ import annotations

import math

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QSlider,
    QVBoxLayout,
    QWidget,
)

from core import task
from core.trainer import MAX_BATCH, PRESET_LABELS, TrainConfig, preset, preset_of
from explorer.panels.inputs import CheckedDoubleSpinBox, CheckedSpinBox
from explorer.snapshot import Snapshot

HIDDEN_MAX = 128
LR_MIN_LOG, LR_MAX_LOG = -4.0, 1.0  # learning-rate slider spans 1e-4 … 10
LR_STEPS = 500  # slider positions: 100 per decade
DEBOUNCE_MS = 120  # keys on a slider send one change after this pause ...
HIDDEN_DEBOUNCE_MS = 700  # ... and on the hidden size this one (each change resizes the model)
WARNING_STYLE = "color: #b45f06"
OPTIMIZER_LABELS = {"sgd": "SGD", "momentum": "SGD + momentum", "adam": "Adam"}
INIT_LABELS = {"seed": "normal (notebook)", "pytorch": "uniform ±1/√H (PyTorch)", "uniform": "uniform ±1 (tutorial)"}
MODEL_LABELS = {"lstm": "LSTM", "rnn": "plain RNN"}
RESET_FIELDS = ("seed", "n_bits", "init", "dtype", "model", "loss", "activation", "bias")
CUSTOM = "your own settings"  # the preset box's entry when no preset is chosen


def lr_to_position(learning_rate: float) -> int:
    fraction = (math.log10(learning_rate) - LR_MIN_LOG) / (LR_MAX_LOG - LR_MIN_LOG)
    return round(min(1.0, max(0.0, fraction)) * LR_STEPS)


def position_to_lr(position: int) -> float:
    exponent = LR_MIN_LOG + (LR_MAX_LOG - LR_MIN_LOG) * position / LR_STEPS
    return float(f"{10 ** exponent:.3g}")  # three significant digits, as shown


def parse_learning_rate(text: str) -> tuple[float | None, str]:
    """(value, "") or (None, what is wrong): a number in the slider's range, 0.0001 … 10."""
    try:
        value = float(text.strip())
    except ValueError:
        return None, f"“{text.strip()}” is not a number"
    low, high = 10**LR_MIN_LOG, 10**LR_MAX_LOG
    if not math.isfinite(value) or not low <= value <= high:
        return None, f"{text.strip()} is outside {low:g} … {high:g}"
    return value, ""


class ControlsPanel(QWidget):
    """Left panel. Emits sigLiveChange({name: value}) for live settings; reset_config() collects the rest."""

    sigLiveChange = Signal(object)  # dict of TrainConfig.LIVE names -> values
    sigRefused = Signal(str)  # a typed value out of range, refused: what and why

    def __init__(self, config: TrainConfig | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        config = config or TrainConfig()
        self._config = config  # the trainer's settings as last seen in a snapshot
        self._pending: dict[str, object] = {}  # live changes waiting for the debounce timer
        self._debounce = QTimer(self, singleShot=True, interval=DEBOUNCE_MS)
        self._debounce.timeout.connect(self._send_pending)
        self._hidden_timer = QTimer(self, singleShot=True, interval=HIDDEN_DEBOUNCE_MS)
        self._hidden_timer.timeout.connect(self._send_hidden)

        # live settings
        self.hidden = QSlider(Qt.Orientation.Horizontal)
        self.hidden.setRange(1, HIDDEN_MAX)
        self.hidden.setToolTip("Number of LSTM units. Changing it keeps what was learned: existing units keep their "
                               "weights, new units start near zero, removed units are dropped.")
        self.hidden_value = QLabel()
        self.hidden_note = QLabel()  # what a change would do, while it waits for the release
        self.hidden_note.setWordWrap(True)
        self.hidden_note.setStyleSheet(WARNING_STYLE)
        self.hidden_note.hide()
        self.hidden.valueChanged.connect(self._on_hidden)
        self.hidden.sliderReleased.connect(self._send_hidden)

        self.lr = QSlider(Qt.Orientation.Horizontal)
        self.lr.setRange(0, LR_STEPS)
        self.lr.setToolTip("Learning rate on a log scale from 0.0001 to 10. Applies at the next step.")
        self.lr_edit = QLineEdit()
        self.lr_edit.setFixedWidth(64)
        self.lr_edit.setToolTip("Type a learning rate (0.0001 … 10) and press Enter")
        self.lr_error = QLabel()
        self.lr_error.setStyleSheet("color: #c62828")
        self.lr_error.setWordWrap(True)
        self.lr_error.hide()
        self.lr.valueChanged.connect(self._on_lr_slider)
        self.lr.sliderReleased.connect(self._send_pending)
        self.lr_edit.editingFinished.connect(self._on_lr_typed)

        self.optimizer = QComboBox()
        for name, label in OPTIMIZER_LABELS.items():
            self.optimizer.addItem(label, name)
        self.optimizer.setToolTip("How gradients change the weights. Switching starts the new optimizer's state "
                                  "afresh but keeps the weights.")
        self.optimizer.currentIndexChanged.connect(self._on_optimizer)

        self.batch = CheckedSpinBox("batch size", 1, MAX_BATCH)
        self.batch.setToolTip("Samples per weight update; 1 = online learning, one addition at a time, as the "
                              "original notebook")
        self.batch.valueChanged.connect(self._on_batch)

        self.clip_on = QCheckBox("clip at")
        self.clip_on.setToolTip("Scale gradients down when their global L2 norm exceeds this value")
        self.clip = CheckedDoubleSpinBox("gradient clip", 0.01, 1000.0)
        self.clip.setValue(1.0)
        self.clip.setToolTip("Largest global gradient norm allowed when clipping is on")
        self.clip_on.toggled.connect(self._on_clip)
        self.clip.valueChanged.connect(self._on_clip)

        # settings that need a reset
        self.seed = CheckedSpinBox("seed", 0, 2**31 - 1)
        self.seed.setToolTip("Seeds the initial weights and the training samples. Applies on Reset.")
        self.n_bits = CheckedSpinBox("bits", task.MIN_BITS, task.MAX_BITS)
        self.n_bits.setToolTip("Bits per number (sequence length); operands are below 2^(bits−1). Applies on Reset.")
        self.init = QComboBox()
        for name, label in INIT_LABELS.items():
            self.init.addItem(label, name)
        self.init.setToolTip("How the initial weights are drawn. Applies on Reset.")
        self.dtype = QComboBox()
        self.dtype.addItems(["float64", "float32"])
        self.dtype.setToolTip("Floating-point precision of weights and arithmetic (float32 is faster at large "
                              "batches). Applies on Reset.")
        self.model = QComboBox()
        for name, label in MODEL_LABELS.items():
            self.model.addItem(label, name)
        self.model.setToolTip("LSTM, or a plain RNN as a baseline (no gates, no cell: its memory is h alone). "
                              "Applies on Reset.")
        self.preset = QComboBox()  # named settings (core.trainer.PRESETS), applied on Reset over the controls
        self.preset.addItem(CUSTOM, "")
        for name, label in PRESET_LABELS.items():
            self.preset.addItem(label, name)
        self.preset.setToolTip("Named settings, applied on Reset: the LSTM's defaults; the Notebook LSTM (the "
                               "original notebook's squared-error loss); the Tutorial RNN (the classic tutorial's 16 "
                               "sigmoid units, no biases, U(−1, 1) weights, squared error, lr 0.1, online). They set "
                               "the model, its loss and units, and every live setting; seed, bits and precision "
                               "stay.")
        self._preset_chosen = False  # the box holds a choice for the next Reset, not the run's settings
        self.preset.currentIndexChanged.connect(self._on_preset)
        self.reset_note = QLabel()
        self.reset_note.setWordWrap(True)
        self.reset_note.setStyleSheet(WARNING_STYLE)
        self.refused = QLabel()  # the last typed value refused, and why
        self.refused.setWordWrap(True)
        self.refused.setStyleSheet("color: #c62828")
        self.refused.hide()
        for box in (self.batch, self.clip, self.seed, self.n_bits):
            box.sigRefused.connect(self._refuse)
        for widget in (self.seed, self.n_bits):
            widget.valueChanged.connect(self._show_reset_note)
        for widget in (self.init, self.dtype, self.model):
            widget.currentIndexChanged.connect(self._show_reset_note)
        for widget in (self.init, self.model):  # choosing one of a preset's settings by hand leaves the preset
            widget.currentIndexChanged.connect(self._leave_preset)

        self._layout()
        self._show_config(config, everything=True)

    def _layout(self) -> None:
        live = QGroupBox("Live — applies while training")
        form = QFormLayout(live)
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        form.addRow("hidden units", _row(self.hidden, self.hidden_value))
        form.addRow("", self.hidden_note)
        form.addRow("learning rate", _row(self.lr, self.lr_edit))
        form.addRow("", self.lr_error)
        form.addRow("optimizer", self.optimizer)
        form.addRow("batch size", self.batch)
        form.addRow("gradient clip", _row(self.clip_on, self.clip))
        self.hidden_value.setMinimumWidth(28)
        self.hidden_value.setToolTip(self.hidden.toolTip())

        reset = QGroupBox("Needs a reset — applied on Reset (Ctrl+R)")
        reset_form = QFormLayout(reset)
        reset_form.addRow("preset", self.preset)
        reset_form.addRow("model", self.model)
        reset_form.addRow("seed", self.seed)
        reset_form.addRow("bits", self.n_bits)
        reset_form.addRow("initial weights", self.init)
        reset_form.addRow("precision", self.dtype)
        reset_form.addRow(self.reset_note)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.addWidget(self.refused)
        layout.addWidget(live)
        layout.addWidget(reset)
        layout.addStretch(1)

    # ---- public API -----------------------------------------------------------------------------------------
    def update_from(self, snapshot: Snapshot) -> None:
        """Follow the trainer's settings (a reset, a loaded session, a refused change), but never undo what the
        user is still editing."""
        config = snapshot.config
        if config != self._config:
            everything = any(getattr(config, name) != getattr(self._config, name) for name in RESET_FIELDS)
            self._config = config
            self._show_config(config, everything)

    def resync(self) -> None:
        """Show the trainer's settings again (after a change was refused)."""
        self._pending.clear()
        self._debounce.stop()
        self._hidden_timer.stop()
        self._show_config(self._config, everything=False)

    def reset_config(self, base: TrainConfig | None = None) -> TrainConfig:
        """The settings a Reset should use: base (default: the trainer's current settings) with every control's
        value, then the chosen preset's settings. Raises ConfigError if one is out of range."""
        base = base or self._config
        model = self.model.currentData()
        rnn_only = {} if model == "rnn" else {"activation": "tanh", "bias": True}  # the LSTM has neither setting
        config = base.replace(
            hidden_size=self.hidden.value(), learning_rate=self._current_lr(), optimizer=self.optimizer.currentData(),
            batch_size=self.batch.value(), clip_norm=self.clip.value() if self.clip_on.isChecked() else 0.0,
            seed=self.seed.value(), n_bits=self.n_bits.value(), init=self.init.currentData(),
            dtype=self.dtype.currentText(), model=model, **rnn_only,
        )
        name = self.preset.currentData() if self._preset_chosen else ""  # else the box just names the run's
        return preset(name, config) if name else config

    def pending_reset_changes(self) -> list[str]:
        """Needs-reset settings that differ from the trainer's, as text ('seed 0 → 3')."""
        wanted = {"seed": self.seed.value(), "n_bits": self.n_bits.value(), "init": self.init.currentData(),
                  "dtype": self.dtype.currentText(), "model": self.model.currentData()}
        changes = [f"{name.replace('_', ' ')} {getattr(self._config, name)} → {value}"
                   for name, value in wanted.items() if getattr(self._config, name) != value]
        name = self.preset.currentData() if self._preset_chosen else ""
        if name and preset_of(self._config) != name:
            changes.insert(0, f"preset → {self.preset.currentText()}")
        return changes

    # ---- showing settings -----------------------------------------------------------------------------------
    def _show_config(self, config: TrainConfig, everything: bool) -> None:
        editing = (self._debounce.isActive() or self._hidden_timer.isActive() or self.hidden.isSliderDown()
                   or self.lr.isSliderDown())
        widgets = [self.hidden, self.lr, self.lr_edit, self.optimizer, self.batch, self.clip_on, self.clip,
                   self.seed, self.n_bits, self.init, self.dtype, self.model, self.preset]
        for widget in widgets:
            widget.blockSignals(True)
        try:
            if not editing:
                self.hidden.setValue(min(config.hidden_size, HIDDEN_MAX))
                self.lr.setValue(lr_to_position(config.learning_rate))
                if not self.lr_edit.hasFocus():
                    self.lr_edit.setText(f"{config.learning_rate:g}")
                self.optimizer.setCurrentIndex(max(0, self.optimizer.findData(config.optimizer)))
                if not self.batch.hasFocus():
                    self.batch.setValue(config.batch_size)
                self.clip_on.setChecked(config.clip_norm > 0)
                if config.clip_norm > 0 and not self.clip.hasFocus():
                    self.clip.setValue(config.clip_norm)
            if everything:
                self.seed.setValue(config.seed)
                self.n_bits.setValue(config.n_bits)
                self.init.setCurrentIndex(max(0, self.init.findData(config.init)))
                self.dtype.setCurrentText(config.dtype)
                self.model.setCurrentIndex(max(0, self.model.findData(config.model)))
            if everything or not self._preset_chosen:  # the run's preset, unless one is chosen for the next Reset
                self.preset.setCurrentIndex(max(0, self.preset.findData(preset_of(config) or "")))
                self._preset_chosen = False
        finally:
            for widget in widgets:
                widget.blockSignals(False)
        self.hidden_value.setText(str(self.hidden.value()))
        if not editing:
            self.hidden_note.hide()
        self.clip.setEnabled(self.clip_on.isChecked())
        self._show_reset_note()

    def _show_reset_note(self) -> None:
        changes = self.pending_reset_changes()
        self.reset_note.setText(f"Changed: {', '.join(changes)}. Press Reset to apply." if changes else
                                "These take effect when training starts afresh.")

    def _on_preset(self) -> None:
        self._preset_chosen = True
        self._show_reset_note()

    def _leave_preset(self) -> None:
        """A setting changed by hand: a Reset uses it, not a preset's."""
        if self.preset.currentIndex() != 0:
            self.preset.setCurrentIndex(0)

    # ---- live changes ---------------------------------------------------------------------------------------
    def _queue(self, name: str, value: object, at_once: bool = False) -> None:
        self._leave_preset()
        self._pending[name] = value
        self.refused.hide()
        if at_once:
            self._send_pending()
        else:
            self._debounce.start()

    def _send_pending(self) -> None:
        self._debounce.stop()
        changes = dict(self._pending)  # even values equal to the last snapshot's: an earlier change may be in flight
        self._pending.clear()
        if changes:
            self.sigLiveChange.emit(changes)

    def _on_hidden(self, value: int) -> None:
        """Shows what the change would do; it is sent on release (a drag) or after a pause (keys, wheel)."""
        self.hidden_value.setText(str(value))
        current = self._config.hidden_size
        if value < current:
            dropped = f"unit {value}" if value == current - 1 else f"units {value}–{current - 1}"
            self.hidden_note.setText(f"{current} → {value}: drops {dropped} and what they learned "
                                     "(Ctrl+Z brings them back)")
        elif value > current:
            self.hidden_note.setText(f"{current} → {value}: adds {value - current} new unit"
                                     f"{'s' if value - current > 1 else ''} (starting near zero)")
        self.hidden_note.setVisible(value != current)
        if not self.hidden.isSliderDown():
            self._hidden_timer.start()

    def _send_hidden(self) -> None:
        self._hidden_timer.stop()
        self.hidden_note.hide()
        if self.hidden.value() != self._config.hidden_size:
            self._queue("hidden_size", self.hidden.value(), at_once=True)

    def _refuse(self, message: str) -> None:
        self.refused.setText(f"⚠ {message[0].upper()}{message[1:]}.")
        self.refused.show()
        self.sigRefused.emit(message)

    def _on_lr_slider(self, position: int) -> None:
        value = position_to_lr(position)
        self.lr_edit.setText(f"{value:g}")
        self.lr_error.hide()
        self._queue("learning_rate", value)

    def _on_lr_typed(self) -> None:
        value, problem = parse_learning_rate(self.lr_edit.text())
        if value is None:
            self.lr_error.setText(f"Learning rate not changed: {problem}.")
            self.lr_error.show()
            self.sigRefused.emit(f"learning rate not changed: {problem}")
            return
        self.lr_error.hide()
        self.lr.blockSignals(True)
        self.lr.setValue(lr_to_position(value))
        self.lr.blockSignals(False)
        self._queue("learning_rate", value, at_once=True)

    def _current_lr(self) -> float:
        value, _ = parse_learning_rate(self.lr_edit.text())
        return value if value is not None else self._config.learning_rate

    def _on_optimizer(self) -> None:
        self._queue("optimizer", self.optimizer.currentData(), at_once=True)

    def _on_batch(self, value: int) -> None:
        self._queue("batch_size", value)

    def _on_clip(self) -> None:
        self.clip.setEnabled(self.clip_on.isChecked())
        self._queue("clip_norm", self.clip.value() if self.clip_on.isChecked() else 0.0)


def _row(*widgets: QWidget) -> QWidget:
    box = QWidget()
    layout = QHBoxLayout(box)
    layout.setContentsMargins(0, 0, 0, 0)
    for widget in widgets:
        layout.addWidget(widget)
    return box
