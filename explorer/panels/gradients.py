"""Gradients along the sequence: how strongly the loss pushes the hidden state h_t and the cell state c_t at each
bit position, the size of whole updates next to the gradient-clipping control, and a finite-difference
check of backward on the current weights.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QDoubleSpinBox,
    QFrame,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from core import insights
from core.insights import GradientCheck, GradientNorms, Measured
from core.trainer import Trainer
from explorer.analyses import Analysis
from explorer.panels import BIT_AXIS_LABEL, GraphicsLayoutWidget, bit_ticks, configure_pyqtgraph, panel_title
from explorer.views import TabView, ViewContext

TITLE = "Gradients"
TOOLTIP = "Gradient norm per bit position, gradient clipping, and a finite-difference gradient check"
ANALYSIS = "gradients"  # snapshot.analyses key: a Measured holding GradientNorms
CHECK_ANALYSIS = "gradient_check"  # a Measured holding a GradientCheck, its request number the button press
HIDDEN_COLOR = "#1f77b4"
CELL_COLOR = "#ff7f0e"
OK_COLOR = "#2ca02c"
BAD_COLOR = "#d62728"
LOG_FLOOR = 1e-12  # log-y cannot show zero


def log_ticks(low: float, high: float) -> list[list[tuple[float, str]]]:
    """Ticks at 1, 2 and 5 times powers of ten between low and high, for a log axis (positions are log10)."""
    low, high = max(low, LOG_FLOOR), max(high, LOG_FLOOR)
    values = [m * 10.0**k for k in range(int(np.floor(np.log10(low))) - 1, int(np.ceil(np.log10(high))) + 1)
              for m in (1, 2, 5)]
    shown = [v for v in values if low / 2.5 <= v <= high * 2.5]
    return [[(float(np.log10(v)), f"{v:.3g}") for v in shown], []]


class GradientsPanel(QWidget):
    """Line plot of gradient norm per bit position, clip control and update-size readout, gradient check."""

    sigClipChanged = Signal(object)  # {"clip_norm": value} for the worker's update_config
    sigCheckRequested = Signal(int)  # request number: run a gradient check on the current weights

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        configure_pyqtgraph()
        self.result: GradientNorms | None = None
        self.check: GradientCheck | None = None
        self._requests = 0  # gradient checks asked for
        self._answered = 0  # the latest request a result has come back for
        self._clip_sent: float | None = None

        self.title = panel_title("Gradient per bit position: waiting for the first measurement…")
        self.title.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.log_y = QCheckBox("log y")
        self.log_y.setChecked(True)
        self.log_y.setToolTip("Logarithmic gradient axis: vanishing gradients show as a steady slope")
        self.log_y.toggled.connect(self._on_log_y)
        self.view = GraphicsLayoutWidget()
        self.view.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Ignored)
        self.view.setMinimumHeight(120)
        self.view.setToolTip("‖∂loss/∂h_t‖ and ‖∂loss/∂c_t‖ for one addition's loss (its mean cross-entropy over "
                             "all bits), averaged over 256 fixed random additions.\nBackprop runs from the MSB "
                             "(right) back to the LSB (left): the early bits collect gradient from every later one.")
        self.plot = self.view.addPlot()
        self.plot.setLabel("bottom", BIT_AXIS_LABEL)
        self.plot.setLabel("left", "gradient norm")
        self.plot.setMenuEnabled(False)
        self.plot.setMouseEnabled(False, False)
        self.plot.hideButtons()
        self.plot.showGrid(x=True, y=True, alpha=0.2)
        self.plot.setLogMode(y=True)
        self.plot.getAxis("left").enableAutoSIPrefix(False)
        # The legend is the plot title in the curves' colours: inside the plot it would cover a curve.
        self.plot.setTitle(f"<span style='color:{HIDDEN_COLOR}'>● ‖∂loss/∂h_t‖ hidden state</span>&nbsp;&nbsp;&nbsp;"
                           f"<span style='color:{CELL_COLOR}'>■ ‖∂loss/∂c_t‖ cell state</span>", size="10pt")
        self.hidden_curve = self.plot.plot(pen=pg.mkPen(HIDDEN_COLOR, width=2), symbol="o", symbolSize=6,
                                           symbolBrush=HIDDEN_COLOR)
        self.cell_curve = self.plot.plot(pen=pg.mkPen(CELL_COLOR, width=2), symbol="s", symbolSize=6,
                                         symbolBrush=CELL_COLOR)

        # Right-hand column: clipping and the gradient check.
        self.clip = QDoubleSpinBox()
        self.clip.setRange(0.0, 1000.0)
        self.clip.setDecimals(2)
        self.clip.setSingleStep(0.1)
        self.clip.setSpecialValueText("off")
        self.clip.setKeyboardTracking(False)
        self.clip.setToolTip("Clip each update's gradient to this global L2 norm (0 = off). Applies from the next "
                             "training step, without a reset.")
        self.clip.valueChanged.connect(self._on_clip)
        self.update_sizes = QLabel("–")
        self.update_sizes.setWordWrap(True)
        self.update_sizes.setToolTip("Global L2 norm of the parameter gradient of training batches at the current "
                                     "batch size (up to 32 fixed random batches), before clipping")
        self.check_button = QPushButton("Check now")
        self.check_button.setToolTip("Compare backward with central finite differences of the loss on a float64 "
                                     "copy of the current weights: 50 random weights and every bias, 4 additions")
        self.check_button.clicked.connect(self.request_check)
        self.check_result = QLabel("Finite differences against backward on the current weights: not run yet.")
        self.check_result.setWordWrap(True)
        self.check_result.setTextFormat(pg.QtCore.Qt.TextFormat.RichText)

        clip_row = QHBoxLayout()
        clip_row.addWidget(QLabel("<b>Gradient clip</b> (global norm)"))
        clip_row.addWidget(self.clip)
        check_row = QHBoxLayout()
        check_row.addWidget(QLabel("<b>Gradient check</b>"))
        check_row.addWidget(self.check_button)
        side = QVBoxLayout()
        side.setContentsMargins(0, 0, 0, 0)
        side.addLayout(clip_row)
        side.addWidget(self.update_sizes)
        line = QFrame()
        line.setFrameShape(QFrame.Shape.HLine)
        side.addWidget(line)
        side.addLayout(check_row)
        side.addWidget(self.check_result)
        side.addStretch(1)
        side_box = QWidget()
        side_box.setLayout(side)
        side_box.setFixedWidth(380)

        header = QHBoxLayout()
        header.addWidget(self.title, 1)
        header.addWidget(self.log_y)
        body = QHBoxLayout()
        body.addWidget(self.view, 1)
        body.addWidget(side_box)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.setSpacing(2)
        layout.addLayout(header)
        layout.addLayout(body, 1)

    # ---- public API -----------------------------------------------------------------------------------------
    def update_from(self, snapshot: object) -> None:
        config = getattr(snapshot, "config", None)
        if config is not None and not self.clip.hasFocus():
            self._show_clip(float(config.clip_norm))
        analyses = getattr(snapshot, "analyses", {})
        measured = analyses.get(ANALYSIS)
        if isinstance(measured, Measured) and isinstance(measured.value, GradientNorms):
            self._show_norms(measured.value, measured.samples_seen, config)
        checked = analyses.get(CHECK_ANALYSIS)
        if isinstance(checked, Measured) and isinstance(checked.value, GradientCheck):
            self._show_check(checked)

    def request_check(self) -> int:
        """Ask for a gradient check (sigCheckRequested); returns the request number its result will carry."""
        self._requests += 1
        self.check_button.setEnabled(False)
        self.check_result.setText("checking…")
        self.sigCheckRequested.emit(self._requests)
        return self._requests

    # ---- drawing --------------------------------------------------------------------------------------------
    def _show_norms(self, result: GradientNorms, samples: int, config: object) -> None:
        self.result = result
        steps = len(result.hidden)
        positions = np.arange(steps)
        floor = LOG_FLOOR if self.log_y.isChecked() else 0.0
        self.hidden_curve.setData(positions, np.maximum(result.hidden, floor))
        if result.cell is None:
            self.cell_curve.setData([], [])
        else:
            self.cell_curve.setData(positions, np.maximum(result.cell, floor))
        self.plot.getAxis("bottom").setTicks(bit_ticks(steps))
        self.plot.setXRange(-0.3, steps - 0.7, padding=0)
        self._set_y_ticks()
        ratio = result.hidden[0] / result.hidden[-1] if result.hidden[-1] > 0 else float("inf")
        self.title.setText(f"Gradient reaching each bit position, averaged over {result.n_samples} fixed additions: "
                           f"LSB gets {ratio:.2g}× the MSB's · at {samples:,} samples")
        norms = result.batch_norms
        clip = float(getattr(config, "clip_norm", 0.0) or 0.0)
        batch = "one addition" if result.batch_size == 1 else f"a batch of {result.batch_size}"
        text = (f"Gradient norm of an update ({batch}, before clipping): median {np.median(norms):.3g}, "
                f"90th percentile {np.percentile(norms, 90):.3g}, largest {norms.max():.3g}.")
        if clip > 0:
            text += f" Clipping at {clip:g} shrinks {100 * result.clipped_fraction(clip):.0f} % of updates."
        else:
            text += " Clipping is off."
        self.update_sizes.setText(text)

    def _show_check(self, checked: Measured) -> None:
        result = checked.value
        self.check = result
        if checked.request >= self._requests:
            self.check_button.setEnabled(True)
        if checked.request == self._answered:
            return
        self._answered = checked.request
        color = OK_COLOR if result.ok else BAD_COLOR
        self.check_result.setText(
            f"<span style='color:{color}'><b>{'OK' if result.ok else 'MISMATCH'}</b></span>: max relative error "
            f"<b>{result.max_relative_error:.1e}</b> (OK below 1e-6), worst at {result.worst}. "
            f"{result.n_checked} weights ({result.n_checked - result.n_biases} random + all {result.n_biases} "
            f"biases), {result.batch_size} additions, float64, at {checked.samples_seen:,} samples.")

    def _show_clip(self, value: float) -> None:
        if self._clip_sent is not None and abs(value - self._clip_sent) > 1e-12:
            return  # our own change is still on its way to the trainer
        self._clip_sent = None
        if abs(self.clip.value() - value) > 1e-12:
            self.clip.blockSignals(True)
            self.clip.setValue(value)
            self.clip.blockSignals(False)

    def _on_clip(self, value: float) -> None:
        self._clip_sent = float(value)
        self.sigClipChanged.emit({"clip_norm": float(value)})

    def _set_y_ticks(self) -> None:
        """Log axis: 1-2-5 ticks (pyqtgraph's own label every minor tick when the range is under a decade)."""
        axis = self.plot.getAxis("left")
        if not self.log_y.isChecked() or self.result is None:
            axis.setTicks(None)
            return
        values = self.result.hidden if self.result.cell is None else np.concatenate([self.result.hidden,
                                                                                      self.result.cell])
        axis.setTicks(log_ticks(float(values.min()), float(values.max())))

    def _on_log_y(self, checked: bool) -> None:
        self.plot.setLogMode(y=checked)
        self._set_y_ticks()
        if self.result is not None:
            floor = LOG_FLOOR if checked else 0.0
            self.hidden_curve.setData(np.arange(len(self.result.hidden)), np.maximum(self.result.hidden, floor))
            if self.result.cell is not None:
                self.cell_curve.setData(np.arange(len(self.result.cell)), np.maximum(self.result.cell, floor))
        self.plot.enableAutoRange(axis="y")


def compute(trainer: Trainer, unit_scale: np.ndarray | None) -> GradientNorms:
    # Gradients are about training, which runs on the intact weights: the knockout mask does not apply.
    return insights.gradient_norms(trainer.params, trainer.config.n_bits, batch_size=trainer.config.batch_size)


def compute_check(trainer: Trainer, unit_scale: np.ndarray | None) -> GradientCheck:
    return insights.gradient_check(trainer.params, trainer.config.n_bits)


ANALYSES = (Analysis(ANALYSIS, compute, period_s=1.0, settings=("batch_size",)),
            Analysis(CHECK_ANALYSIS, compute_check, period_s=0.0, on_request=True))


def view(context: ViewContext) -> TabView:
    panel = GradientsPanel()
    panel.sigClipChanged.connect(context.controller.change)
    panel.sigCheckRequested.connect(lambda number: context.controller.request(CHECK_ANALYSIS, number))
    return TabView(TITLE, panel, TOOLTIP, ANALYSES)
