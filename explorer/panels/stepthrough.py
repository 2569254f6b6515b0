"""Step through the focus addition bit by bit: inputs, carries, every unit at the step, the output, and the
gradient flowing back, drawn from the focus trace (snapshot.focus) at the focus step.

A few small widgets, each drawing a FocusTrace at a step: AdditionBar (which addition), StepBar (which step),
BitRows (the addition in bits), StepDetails (the step in words), UnitTable (every unit), BackwardPlot (loss and
gradient per bit) and CarryFinder (which unit holds the carry). The trace and its numbers are computed in the
training thread (core.focus); nothing here runs the model. Works for the LSTM and the plain RNN.
"""

from __future__ import annotations

import re
import time

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QEvent, QObject, Qt, QTimer, Signal
from PySide6.QtGui import QFont, QHideEvent, QKeyEvent
from PySide6.QtWidgets import (
    QFormLayout,
    QFrame,
    QGraphicsItem,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from core import carry, task
from core.focus import FocusTrace
from core.insights import Measured
from explorer.analyses import Analysis
from explorer.controller import Focus
from explorer.panels import PlotWidget, SteadyLabel
from explorer.panels.unit_table import UnitTable
from explorer.views import STEP_THROUGH, TabView, ViewContext

CARRY_ANALYSIS = "carry"  # snapshot.analyses key: a Measured holding carry.CarryUnits
TOOLTIP = ("Type two numbers and step through how the model adds them, bit by bit: every gate, the cell, the "
           "output and the gradient; and which unit holds the carry")
PLAY_INTERVAL_MS = 600  # one bit per this many milliseconds while playing
TABLE_INTERVAL_S = 0.5  # while training, the unit table (128 numbers) follows new weights at most this often
HIGHLIGHT_STYLE = "background: #ffe08a; color: #000000;"
WRONG_STYLE = "color: #d00000; font-weight: bold;"
FUTURE_STYLE = "color: #9a9a9a;"
ERROR_STYLE = "color: #d00000;"
INVALID_FIELD_STYLE = "QLineEdit { border: 2px solid #d00000; }"
LOSS_COLOR, GRAD_H_COLOR, GRAD_C_COLOR = "#d62728", "#1f77b4", "#9467bd"
LOG_FLOOR = 1e-12  # a log axis cannot show zero
COMPUTING = "computing… (over every pair, in the background)"


def _subscript(number: int) -> str:
    return str(number).translate(str.maketrans("0123456789", "₀₁₂₃₄₅₆₇₈₉"))


def _superscript(number: int) -> str:
    return str(number).translate(str.maketrans("0123456789", "⁰¹²³⁴⁵⁶⁷⁸⁹"))


def _short_message(text: str) -> str:
    """A TaskError message with absurdly long numbers cut down (10**100 typed in a field)."""
    return re.sub(r"\d{16,}", lambda m: f"{m.group()[:6]}… ({len(m.group())} digits)", text)


def long_carry_example(n_bits: int, rng: np.random.Generator) -> tuple[int, int, int]:
    """An addition whose carry runs through many bits, and the step where the run starts: (a, b, step)."""
    limit = task.operand_limit(n_bits)
    best = (0, 0, 0, -1)
    for _ in range(64):
        a, b = (int(v) for v in rng.integers(0, limit, size=2))
        _, carry_out = task.carries(np.array([a]), np.array([b]), n_bits)
        bits = carry_out[:, 0].astype(int).tolist()
        run, start, longest, longest_start = 0, 0, 0, 0
        for t, bit in enumerate(bits):
            run, start = (run + 1, start if run else t) if bit else (0, t + 1)
            if run > longest:
                longest, longest_start = run, start
        if longest > best[3]:
            best = (a, b, longest_start, longest)
    return best[0], best[1], best[2]


# ---- which addition --------------------------------------------------------------------------------------------
class AdditionBar(QWidget):
    """a + b fields (checked as typed: nothing runs until both fit the model) and Random."""

    sigOperands = Signal(int, int)  # both fields hold operands the model can add

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.n_bits = 8
        self.rng = np.random.default_rng()
        self.field_a, self.field_b = QLineEdit(), QLineEdit()
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        for name, field in (("a", self.field_a), ("b", self.field_b)):
            field.setFixedWidth(64)
            field.textEdited.connect(self._on_edited)
            label = QLabel(f"{name} =")
            label.setToolTip(f"the {'first' if name == 'a' else 'second'} number to add")
            layout.addWidget(label)
            layout.addWidget(field)
            if name == "a":
                layout.addWidget(QLabel("+"))
        self.random_button = QPushButton("Random")
        self.random_button.setToolTip("Pick two random numbers that fit the model's bit width")
        self.random_button.clicked.connect(self.pick_random)
        layout.addWidget(self.random_button)
        self.error = SteadyLabel(lines=1)  # a message must not push the rest of the panel down
        self.error.label.setStyleSheet(ERROR_STYLE)
        self.error.setToolTip("Why the numbers typed cannot be added by this model; nothing changes until fixed")
        self.error.setMinimumWidth(200)
        layout.addWidget(self.error, 1)
        self._set_hints()

    def show_operands(self, a: int, b: int) -> None:
        """The focus changed: show its operands (a field with a half-typed mistake keeps it)."""
        for field, value in ((self.field_a, a), (self.field_b, b)):
            if not (field.hasFocus() and field.styleSheet()):
                field.setText(str(value))
                field.setStyleSheet("")
        if not (self.field_a.styleSheet() or self.field_b.styleSheet()):
            self.error.setText("")

    def set_bits(self, n_bits: int) -> None:
        if n_bits != self.n_bits:
            self.n_bits = n_bits
            self._set_hints()

    def operands(self) -> tuple[int, int] | None:
        """The operands typed, or None (with the reason shown) when either does not fit the model."""
        values, messages = [], []
        for name, field in (("a", self.field_a), ("b", self.field_b)):
            try:
                values.append(task.check_operand(field.text(), self.n_bits, name))
                field.setStyleSheet("")
            except task.TaskError as error:
                messages.append(_short_message(str(error)))
                field.setStyleSheet(INVALID_FIELD_STYLE)
        self.error.setText("⚠ " + "; ".join(messages) if messages else "")
        self.error.setToolTip("\n".join(messages))
        return None if messages else (values[0], values[1])

    def pick_random(self) -> None:
        limit = task.operand_limit(self.n_bits)
        a, b = (int(v) for v in self.rng.integers(0, limit, size=2))
        self.field_a.setText(str(a))
        self.field_b.setText(str(b))
        self._on_edited()

    def _on_edited(self) -> None:
        operands = self.operands()
        if operands is not None:
            self.sigOperands.emit(*operands)

    def _set_hints(self) -> None:
        limit = task.operand_limit(self.n_bits)
        for field in (self.field_a, self.field_b):
            field.setPlaceholderText(f"0–{limit - 1}")
            field.setToolTip(f"A whole number from 0 to {limit - 1} (the model has {self.n_bits} bits, and the sum "
                             "must fit). Decimal, or 0b… binary.")


# ---- which step ------------------------------------------------------------------------------------------------
class StepBar(QWidget):
    """Home, Prev, Play, Next and the step shown."""

    sigStep = Signal(int)  # go to this step
    sigMove = Signal(int)  # move this many steps

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.step, self.n_bits = 0, 8
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        self.home_button = QPushButton("Home")
        self.home_button.setToolTip("Go to step 0, the rightmost bit (key: Home)")
        self.home_button.clicked.connect(lambda: self.sigStep.emit(0))
        self.prev_button = QPushButton("◀ Prev")
        self.prev_button.setToolTip("One bit back (key: ← while this panel has focus)")
        self.prev_button.clicked.connect(lambda: self.sigMove.emit(-1))
        self.play_button = QPushButton("▶ Play")
        self.play_button.setCheckable(True)
        self.play_button.setToolTip(f"Walk through the bits, one every {PLAY_INTERVAL_MS / 1000:g} s; starts over "
                                    "from step 0 at the end")
        self.play_button.toggled.connect(self._on_play)
        self.next_button = QPushButton("Next ▶")
        self.next_button.setToolTip("One bit forward (key: → while this panel has focus)")
        self.next_button.clicked.connect(lambda: self.sigMove.emit(1))
        self.label = QLabel()
        self.label.setMinimumWidth(self.label.fontMetrics().horizontalAdvance("step 00 of 0…00") + 8)
        for widget in (self.home_button, self.prev_button, self.play_button, self.next_button, self.label):
            layout.addWidget(widget)
        self._timer = QTimer(self, interval=PLAY_INTERVAL_MS)
        self._timer.timeout.connect(self._play_tick)
        self.show_step(0, 8)

    def show_step(self, step: int, n_bits: int) -> None:
        self.step, self.n_bits = step, n_bits
        self.label.setText(f"step {step} of 0…{n_bits - 1}")
        self.prev_button.setEnabled(step > 0)
        self.next_button.setEnabled(step < n_bits - 1)
        if self.playing and step >= n_bits - 1:
            self.play(False)  # at the last bit

    @property
    def playing(self) -> bool:
        return self._timer.isActive()

    def play(self, on: bool = True) -> None:
        self.play_button.setChecked(on)

    def _on_play(self, on: bool) -> None:
        self.play_button.setText("Pause" if on else "▶ Play")
        if on:
            if self.step >= self.n_bits - 1:
                self.sigStep.emit(0)
            self._timer.start()
        else:
            self._timer.stop()

    def _play_tick(self) -> None:
        if self.step >= self.n_bits - 1:
            self.play(False)
        else:
            self.sigMove.emit(1)


# ---- the addition in bits ------------------------------------------------------------------------------------
BIT_ROWS = (
    ("step", "step", "Step t at which the model reads this bit (bit t is worth 2^t)"),
    ("carry", "carry in", "True carry into each bit, from the bit to its right (as written above a sum)"),
    ("a", "a", "Bits of a"),
    ("b", "b", "Bits of b"),
    ("sum", "a + b", "Bits of the true sum"),
    ("predicted", "model", "Bits the model predicts (p ≥ 0.5 → 1); red = wrong; grey = not reached yet"),
)


class BitRows(QFrame):
    """The addition as written (MSB … LSB, left to right), the step's column highlighted."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.grid = QGridLayout(self)
        self.grid.setHorizontalSpacing(0)
        self.grid.setVerticalSpacing(1)
        self.grid.setContentsMargins(4, 4, 4, 4)
        self.n_bits = 0
        self.cells: dict[str, list[QLabel]] = {}
        self.decimals: dict[str, QLabel] = {}
        self._build(8)

    def _build(self, n_bits: int) -> None:
        while self.grid.count():
            item = self.grid.takeAt(0)
            if item.widget() is not None:
                item.widget().deleteLater()
        mono = QFont("monospace")
        mono.setStyleHint(QFont.StyleHint.Monospace)
        self.cells, self.decimals = {}, {}
        for row, (key, title, tooltip) in enumerate(BIT_ROWS):
            title_label = QLabel(title)
            title_label.setToolTip(tooltip)
            title_label.setContentsMargins(0, 0, 8, 0)
            self.grid.addWidget(title_label, row, 0)
            cells = []
            for column in range(n_bits):
                step = n_bits - 1 - column  # MSB on the left, step 0 (LSB) on the right
                cell = QLabel("")
                cell.setFont(mono)
                cell.setAlignment(Qt.AlignmentFlag.AlignCenter)
                cell.setFixedWidth(18)
                cell.setToolTip(f"{tooltip}; this column is bit {step}, read at step {step}")
                self.grid.addWidget(cell, row, column + 1)
                cells.append(cell)
            self.cells[key] = cells[::-1]  # indexed by step
            decimal = QLabel("")
            decimal.setFont(mono)
            decimal.setContentsMargins(10, 0, 0, 0)
            decimal.setMinimumWidth(decimal.fontMetrics().horizontalAdvance("= 00000 ✗ wrong") + 12)
            decimal.setToolTip(f"{tooltip}, in decimal")
            self.grid.addWidget(decimal, row, n_bits + 1)
            self.decimals[key] = decimal
        small = QFont(mono)
        small.setPointSizeF(small.pointSizeF() * 0.8)
        for step, cell in enumerate(self.cells["step"]):
            cell.setText(str(step))
            cell.setFont(small)
        self.decimals["step"].setText("decimal")
        self.grid.setColumnStretch(n_bits + 2, 1)
        self.n_bits = n_bits

    def show_step(self, focus: FocusTrace, step: int) -> None:
        trace = focus.trace
        if trace.n_bits != self.n_bits:
            self._build(trace.n_bits)
        rows = {"carry": trace.carry_in, "a": trace.bits_a, "b": trace.bits_b, "sum": trace.bits_sum,
                "predicted": trace.predicted_bits}
        for key, bits in rows.items():
            for cell, bit in zip(self.cells[key], bits, strict=True):
                cell.setText(str(int(bit)))
        correct = trace.predicted == trace.true_sum
        self.decimals["a"].setText(f"= {trace.a}")
        self.decimals["b"].setText(f"= {trace.b}")
        self.decimals["sum"].setText(f"= {trace.true_sum}")
        self.decimals["predicted"].setText(f"= {trace.predicted} {'✓' if correct else '✗ wrong'}")
        self.decimals["predicted"].setStyleSheet("" if correct else WRONG_STYLE)
        for key, cells in self.cells.items():
            for t, cell in enumerate(cells):
                style = HIGHLIGHT_STYLE if t == step else ""
                if key == "predicted":
                    if t > step:
                        style += FUTURE_STYLE
                    elif trace.wrong_bits[t]:
                        style += WRONG_STYLE
                if cell.styleSheet() != style:  # setting a style sheet restyles the label even when unchanged
                    cell.setStyleSheet(style)


# ---- the step in words ---------------------------------------------------------------------------------------
DETAIL_ROWS = (
    ("step", "Step", "Which bit the model is reading: step t reads bit t, worth 2^t"),
    ("inputs", "Input bits", "The bit of a and the bit of b fed to the model at this step"),
    ("carry", "True carry", "The carry of written addition: into this bit (from the bit to its right) and out of it "
                            "(to the next bit). The model is never told it; it must remember it."),
    ("output", "Output", "p = the model's probability that this bit of the sum is 1; it predicts 1 when p ≥ 0.5. "
                         "Compared with the true bit of a + b."),
    ("so_far", "Result so far", "The bits predicted up to this step, written MSB … LSB, and their value in decimal; "
                                "in brackets the true sum's bits so far"),
    ("loss", "Loss here", "Binary cross-entropy at this bit: −log p if the true bit is 1, −log(1−p) if 0; in brackets "
                          "the loss of the whole addition, L, the sum over its bits"),
    ("gradient", "Gradient", "Size (L2 norm over units) of ∂L/∂h_t (and ∂L/∂c_t for the LSTM) at this step: how "
                             "strongly this step's state affects the loss, through this bit and every later one"),
    ("top_units", "Most gradient", "The units with the largest |∂L/∂c_t| (|∂L/∂h_t| without a cell) at this step: "
                                   "the ones the answer depends on most here"),
)


class StepDetails(QGroupBox):
    """What happens at the step, in words and numbers."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("At step 3", parent)
        self.setToolTip("What the model computes while reading one bit position")
        form = QFormLayout(self)
        form.setContentsMargins(6, 4, 6, 4)
        form.setVerticalSpacing(1)
        self.labels: dict[str, SteadyLabel] = {}
        for key, title, tooltip in DETAIL_ROWS:
            title_label = QLabel(title + ":")
            title_label.setToolTip(tooltip)
            value = SteadyLabel("–")  # new text at every step must not move the rest of the panel
            value.setToolTip(tooltip)
            value.setMinimumWidth(value.label.fontMetrics().horizontalAdvance("0" * 30))
            value.label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
            form.addRow(title_label, value)
            self.labels[key] = value

    def show_step(self, focus: FocusTrace, step: int) -> None:
        trace, t, labels = focus.trace, step, self.labels
        self.setTitle(f"At step {t}")
        labels["step"].setText(f"{t} of 0…{trace.n_bits - 1}: bit {t}, worth 2{_superscript(t)} = {1 << t:,}")
        sub = _subscript(t)
        labels["inputs"].setText(f"a{sub} = {trace.bits_a[t]},  b{sub} = {trace.bits_b[t]}")
        column_total = int(trace.bits_a[t] + trace.bits_b[t] + trace.carry_in[t])
        labels["carry"].setText(f"in {trace.carry_in[t]} → out {trace.carry_out[t]}   "
                                f"({trace.bits_a[t]} + {trace.bits_b[t]} + {trace.carry_in[t]} = {column_total})")
        predicted, true_bit = int(trace.predicted_bits[t]), int(trace.bits_sum[t])
        verdict = "✓" if predicted == true_bit else "✗ wrong"
        labels["output"].setText(f"p = {trace.probs[t]:.4f} → {predicted}  (true {true_bit}) {verdict}")
        labels["output"].label.setStyleSheet("" if predicted == true_bit else WRONG_STYLE)
        bits_so_far = trace.predicted_bits[: t + 1]
        value_so_far = int(np.sum(bits_so_far << np.arange(t + 1)))
        true_so_far = (trace.a + trace.b) & ((1 << (t + 1)) - 1)
        binary = "".join(str(int(bit)) for bit in bits_so_far[::-1])
        labels["so_far"].setText(f"{binary} = {value_so_far}  (true {task.to_binary_string(true_so_far, t + 1)} = "
                                 f"{true_so_far})")
        labels["loss"].setText(f"{trace.step_loss[t]:.4g}  (L = {trace.step_loss.sum():.4g})")
        if focus.grad_cell_norm is not None:
            labels["gradient"].setText(f"‖∂L/∂h‖ {focus.grad_hidden_norm[t]:.2e},  ‖∂L/∂c‖ "
                                       f"{focus.grad_cell_norm[t]:.2e}")
        else:
            labels["gradient"].setText(f"‖∂L/∂h‖ {focus.grad_hidden_norm[t]:.2e}")
        labels["top_units"].setText("units " + ", ".join(str(int(u)) for u in focus.top_units[t])
                                    + "  (∇ in the table)")

    def clear(self, message: str) -> None:
        for label in self.labels.values():
            label.setText("–")
        self.labels["step"].setText(message)


# ---- loss and gradient per bit --------------------------------------------------------------------------------
class BackwardPlot(QWidget):
    """Per bit, log scale: the loss at that bit, ‖∂L/∂h_t‖ and ‖∂L/∂c_t‖; the step as a dashed line."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.values: dict[str, np.ndarray] = {}  # what is drawn, per step (T,) each
        self._view: tuple | None = None  # (n_bits, y range) the plot is set to
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        self.title = QLabel(
            f"<b>Backward</b> per bit: <span style='color:{LOSS_COLOR}'>━ loss at bit t</span> "
            f"<span style='color:{GRAD_H_COLOR}'>╍ ‖∂L/∂h<sub>t</sub>‖</span> "
            f"<span style='color:{GRAD_C_COLOR}'>┈ ‖∂L/∂c<sub>t</sub>‖</span>")
        self.title.setWordWrap(True)
        self.plot_widget = PlotWidget()
        self.plot_widget.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.plot_widget.setMinimumHeight(120)
        plot = self.plot = self.plot_widget.getPlotItem()
        plot.setLabel("bottom", "step t (bit, LSB = 0)")
        plot.setLabel("left", "size (log scale)")
        plot.setLogMode(x=False, y=True)
        plot.showGrid(x=True, y=True, alpha=0.25)
        plot.setMouseEnabled(x=False, y=False)
        plot.setMenuEnabled(False)
        plot.hideButtons()
        self.plot_widget.setToolTip(
            "For this addition, per bit position t: the loss at that bit, and the size of the gradients ‖∂L/∂h_t‖ "
            "and ‖∂L/∂c_t‖ (L = the loss of the whole addition). Gradient flows from later bits back to earlier ones;"
            " the dashed line is the current step.")
        self.title.setToolTip(self.plot_widget.toolTip())
        # Lines told apart by colour and dash, without symbols: pyqtgraph draws symbols in Python at every paint.
        self.loss_curve = plot.plot(pen=pg.mkPen(LOSS_COLOR, width=2))
        self.grad_h_curve = plot.plot(pen=pg.mkPen(GRAD_H_COLOR, width=2, style=Qt.PenStyle.DashLine))
        self.grad_c_curve = plot.plot(pen=pg.mkPen(GRAD_C_COLOR, width=2, style=Qt.PenStyle.DotLine))
        self.step_line = pg.InfiniteLine(angle=90, movable=False, pen=pg.mkPen("#e0a000", width=2,
                                                                               style=Qt.PenStyle.DashLine))
        plot.addItem(self.step_line)
        # Axes (and the grid they draw) as cached pixmaps: redrawn when the range changes, not with every trace.
        for item in (plot.getAxis("left"), plot.getAxis("bottom"), self.step_line):
            item.setCacheMode(QGraphicsItem.CacheMode.DeviceCoordinateCache)
        layout.addWidget(self.title)
        layout.addWidget(self.plot_widget, 1)

    def show_trace(self, focus: FocusTrace) -> None:
        trace = focus.trace
        steps = np.arange(trace.n_bits)
        self.values = {"loss": trace.step_loss, "grad_hidden_norm": focus.grad_hidden_norm}
        if focus.grad_cell_norm is not None:
            self.values["grad_cell_norm"] = focus.grad_cell_norm
        shown = {key: np.maximum(values, LOG_FLOOR) for key, values in self.values.items()}
        self.loss_curve.setData(steps, shown["loss"])
        self.grad_h_curve.setData(steps, shown["grad_hidden_norm"])
        if "grad_cell_norm" in shown:
            self.grad_c_curve.setData(steps, shown["grad_cell_norm"])
        else:
            self.grad_c_curve.setData([], [])
        self.grad_c_curve.setVisible("grad_cell_norm" in shown)
        self._fit(trace.n_bits, np.concatenate(list(shown.values())))

    def mark(self, step: int) -> None:
        self.step_line.setValue(step)

    def _fit(self, n_bits: int, values: np.ndarray) -> None:
        """Whole decades around the values, with one labelled tick per decade (at most five), set only when that
        changes: automatic ranging would fit (and redraw the axes) again with every new trace."""
        logs = np.log10(values[np.isfinite(values)])
        low, high = (int(np.floor(logs.min())), int(np.ceil(logs.max()))) if logs.size else (0, 1)
        high = max(high, low + 1)
        view = (n_bits, low, high)
        if view == self._view:
            return
        self._view = view
        self.plot.setXRange(-0.3, n_bits - 0.7, padding=0)
        self.plot.setYRange(low, high, padding=0.04)  # in log10 units: the y axis is logarithmic
        every = max(1, -(-(high - low) // 4))
        ticks = [(float(k), f"1e{k}" if k not in (0, 1, -1) else {0: "1", 1: "10", -1: "0.1"}[k])
                 for k in range(low, high + 1, every)]
        self.plot.getAxis("left").setTicks([ticks, []])
        self.plot.getAxis("bottom").setTicks([[(float(t), str(t)) for t in range(0, n_bits, max(1, n_bits // 16))],
                                              []])


# ---- which unit holds the carry ------------------------------------------------------------------------------
class CarryFinder(QWidget):
    """One line: the carry finder's result (correlation of every unit's c and h with the true carry over all pairs)
    naming the units that hold the carry, the best three in its tooltip; and an example addition whose carry runs
    through many bits."""

    sigExample = Signal(int, int, int)  # a, b and the step to look at

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.help = (
            "Carry finder: over all operand pairs, the correlation of each unit's cell state c_t and hidden state h_t "
            "with the true carry out of bit t. ±1 means the unit holds the carry. Units with |corr| ≥ "
            f"{carry.CARRY_THRESHOLD:g} are marked ◆ in the table and beside the heatmap rows.")
        self.setToolTip(self.help)
        self.n_bits = 8
        self.rng = np.random.default_rng()
        self.result: carry.CarryUnits | None = None
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        title = QLabel("<b>Which unit holds the carry?</b>")
        title.setToolTip(self.help)
        self.label = SteadyLabel(COMPUTING)  # one line: the rest of the panel never moves
        self.label.label.setTextFormat(Qt.TextFormat.RichText)
        self.label.setToolTip(self.help)
        self.example_button = QPushButton("Show a long carry")
        self.example_button.setToolTip("Look at an addition whose carry runs through many bits, at the step where "
                                       "the run starts: watch the carry unit hold it")
        self.example_button.clicked.connect(self._example)
        layout.addWidget(title)
        layout.addWidget(self.label, 1)
        layout.addWidget(self.example_button)

    def show_result(self, found: carry.CarryUnits | None, hidden_size: int | None) -> list[int]:
        """Show a result (None: computing); returns the carry units it names."""
        if found is not None and hidden_size is not None and found.hidden_corr.shape != (hidden_size,):
            found = None  # computed before a change of hidden size; a new result is on its way
        self.result = found
        if found is None:
            self.label.setText(COMPUTING)
            self.label.setToolTip(self.help)
            return []
        pairs = f"all {found.n_pairs:,} pairs" if found.exhaustive else f"{found.n_pairs:,} random pairs"
        when = f", weights of sample {found.samples_seen:,}" if found.samples_seen >= 0 else ""
        short_when = f", sample {found.samples_seen:,}" if found.samples_seen >= 0 else ""
        carriers = found.carriers()

        def named(unit: int) -> str:
            cell = f"c {found.cell_corr[unit]:+.2f}, " if found.cell_corr is not None else ""
            mark = "◆ " if unit in carriers else ""
            return f"{mark}unit {unit} ({cell}h {found.hidden_corr[unit]:+.2f})"

        best = [int(u) for u in found.best_units[:3]]
        if carriers:
            verdict = f"<b>{', '.join(named(u) for u in carriers)}</b>"
            others = [u for u in best if u not in carriers][:1]
            if others:
                verdict += f"; next: {named(others[0])}"
        else:
            verdict = (f"no unit reaches |corr| ≥ {carry.CARRY_THRESHOLD:g} yet; closest: "
                       + ", ".join(named(u) for u in best[:2]))
        probe = found.probe  # the whole state read at once by a linear probe (core.probe_carry)
        readout = "" if probe is None else (f" · a linear readout of {'[c, h]' if probe.features == 'c and h' else 'h'}"
                                            f" gets <b>{100 * probe.accuracy:.2f} %</b> of carries right")
        self.label.setText(f"{verdict}{readout} <span style='color:#555'>· {pairs}{short_when}</span>")
        rows = "".join(f"<tr><td>{'◆ ' if u in carriers else ''}unit {u}</td>"
                       + (f"<td align=right>&nbsp;{found.cell_corr[u]:+.2f}</td>" if found.cell_corr is not None
                          else "")
                       + f"<td align=right>&nbsp;{found.hidden_corr[u]:+.2f}</td></tr>" for u in best)
        header = "<tr><th align=left>unit</th>" + ("<th>&nbsp;corr(c, carry)</th>" if found.cell_corr is not None
                                                   else "") + "<th>&nbsp;corr(h, carry)</th></tr>"
        probe_note = ""
        if probe is not None:
            probe_note = (f"<p>Linear probe (fitted on part of {probe.n_pairs:,} random pairs, scored on the rest): "
                          f"{probe.summary()}.</p>")
        self.label.setToolTip(f"<p>{self.help}</p><p>Correlations over {pairs}{when}.</p>"
                              f"<table>{header}{rows}</table><p>"
                              + "<br>".join(found.describe(int(u)) for u in found.best_units[:5]) + "</p>"
                              + probe_note)
        return carriers

    def _example(self) -> None:
        self.sigExample.emit(*long_carry_example(self.n_bits, self.rng))


# ---- the panel -----------------------------------------------------------------------------------------------
class StepThroughPanel(QWidget):
    """The focus addition, bit by bit. Draws snapshot.focus at the focus step; asks for changes by signals."""

    sigOperands = Signal(int, int)  # look at this addition
    sigStep = Signal(int)  # go to this step
    sigMove = Signal(int)  # move this many steps
    sigExample = Signal(int, int, int)  # look at this addition at this step
    sigCarryUnits = Signal(object)  # list[int]: the units the carry finder names, best first

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setToolTip("Step through one addition: ← / → move one bit, Home goes to step 0 (click here first)")
        self.focus: FocusTrace | None = None  # drawn
        self.step = 3
        self.carriers: list[int] = []
        self._drawn: tuple | None = None  # (focus, step) drawn last
        self._carry_result: object = None
        self._training = False
        self._table_drawn: tuple[object, int, float] = (None, -1, -1.0)  # (focus, step, time) of the table

        self.addition = AdditionBar()
        self.addition.sigOperands.connect(self.sigOperands)
        self.steps = StepBar()
        self.steps.sigStep.connect(self.sigStep)
        self.steps.sigMove.connect(self.sigMove)
        self.weights_label = QLabel("Waiting for the model's weights…")
        self.weights_label.setToolTip("Which weights this addition is traced through: the latest, taken after this "
                                      "many training samples. It follows training live.")
        self.bits = BitRows()
        self.reading_note = QLabel("Bits read MSB … LSB, left to right; step 0 is the rightmost (read first).")
        self.reading_note.setWordWrap(True)
        note_font = self.reading_note.font()
        note_font.setItalic(True)
        self.reading_note.setFont(note_font)
        self.details = StepDetails()
        self.units = UnitTable()
        self.backward = BackwardPlot()
        self.carry = CarryFinder()
        self.carry.sigExample.connect(self.sigExample)
        for button in (self.addition.random_button, self.steps.home_button, self.steps.prev_button,
                       self.steps.play_button, self.steps.next_button, self.carry.example_button):
            button.installEventFilter(self)  # a focused button would move focus on ←/→: here they step bits

        top = QHBoxLayout()  # the controls first, above the fold at any window size
        top.setContentsMargins(0, 0, 0, 0)
        top.addWidget(self.addition, 3)
        top.addSpacing(12)
        top.addWidget(self.steps)
        top.addSpacing(12)
        top.addWidget(self.weights_label, 1)
        left = QWidget()
        left_layout = QVBoxLayout(left)
        left_layout.setContentsMargins(0, 0, 0, 0)
        left_layout.addWidget(self.bits)
        left_layout.addWidget(self.reading_note)
        left_layout.addStretch(1)
        self.splitter = QSplitter(Qt.Orientation.Horizontal)
        for index, widget in enumerate((left, self.details, self.units, self.backward)):
            self.splitter.addWidget(widget)
            self.splitter.setCollapsible(index, False)
        self.splitter.setSizes([300, 340, 330, 300])
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.setSpacing(4)
        layout.addLayout(top)
        layout.addWidget(self.carry)
        layout.addWidget(self.splitter, 1)

    # ---- drawing ----------------------------------------------------------------------------------------------
    def update_from(self, snapshot: object) -> None:
        focus: FocusTrace = snapshot.focus  # type: ignore[attr-defined]
        self._training = getattr(snapshot, "state", "") == "training"
        n_bits = focus.trace.n_bits
        self.addition.set_bits(n_bits)
        self.carry.n_bits = n_bits
        self.step = min(self.step, n_bits - 1)
        self.weights_label.setText(f"Weights from sample {focus.samples_seen:,}")
        result = snapshot.analyses.get(CARRY_ANALYSIS)  # type: ignore[attr-defined]
        if CARRY_ANALYSIS in snapshot.pending:  # type: ignore[attr-defined]
            result = None  # a result for other weights (another model, or from before the tab was shown)
        if result is not self._carry_result:
            self._carry_result = result
            found = result.value if isinstance(result, Measured) else None
            carriers = self.carry.show_result(found, getattr(snapshot.params, "hidden_size", None))
            self.units.model.set_carriers({u: found.describe(u) for u in carriers} if found is not None else {})
            if carriers != self.carriers:
                self.carriers = carriers
                self.sigCarryUnits.emit(carriers)
        if focus is not self.focus:
            self.focus = focus
            self.addition.show_operands(*focus.operands)
            self.backward.show_trace(focus)
            self._draw_step()

    def focus_changed(self, focus: Focus) -> None:
        """The focus moved: a new step is drawn at once (new operands arrive with the next snapshot's trace)."""
        self.addition.show_operands(*focus.operands)
        if focus.step != self.step:
            self.step = focus.step
            self._draw_step()

    def _draw_step(self) -> None:
        focus, step = self.focus, self.step
        if focus is None:
            return
        step = min(step, focus.trace.n_bits - 1)
        if (focus, step) == self._drawn:
            return
        self._drawn = (focus, step)
        self.steps.show_step(step, focus.trace.n_bits)
        self.bits.show_step(focus, step)
        self.details.show_step(focus, step)
        table_focus, table_step, table_time = self._table_drawn
        now = time.monotonic()
        if not (self._training and step == table_step and table_focus is not None
                and now - table_time < TABLE_INTERVAL_S):
            self._table_drawn = (focus, step, now)
            self.units.show_step(focus, step)
        self.backward.mark(step)

    # ---- keys: ← / → / Home step through bits while the panel (not a text field) has focus ---------------------
    _STEP_KEYS = (Qt.Key.Key_Left, Qt.Key.Key_Right, Qt.Key.Key_Home)

    def event(self, event: QEvent) -> bool:
        # The window binds → to "train one step"; accepting the override makes the key a plain key press here.
        if (event.type() == QEvent.Type.ShortcutOverride and isinstance(event, QKeyEvent)
                and event.key() in self._STEP_KEYS and event.modifiers() == Qt.KeyboardModifier.NoModifier):
            event.accept()
            return True
        return super().event(event)

    def keyPressEvent(self, event: QKeyEvent) -> None:
        if not self._step_key(event):
            super().keyPressEvent(event)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if event.type() == QEvent.Type.ShortcutOverride and isinstance(event, QKeyEvent) \
                and event.key() in self._STEP_KEYS and event.modifiers() == Qt.KeyboardModifier.NoModifier:
            event.accept()
            return True
        if event.type() == QEvent.Type.KeyPress and isinstance(event, QKeyEvent):
            return self._step_key(event)
        return super().eventFilter(watched, event)

    def _step_key(self, event: QKeyEvent) -> bool:
        """Handle ← / → / Home; True when the key was one of them."""
        if event.modifiers() != Qt.KeyboardModifier.NoModifier:
            return False
        key = Qt.Key(event.key())
        if key == Qt.Key.Key_Home:
            self.sigStep.emit(0)
        elif key in (Qt.Key.Key_Left, Qt.Key.Key_Right):
            self.sigMove.emit(-1 if key == Qt.Key.Key_Left else 1)
        else:
            return False
        event.accept()
        return True

    def hideEvent(self, event: QHideEvent) -> None:
        self.steps.play(False)
        super().hideEvent(event)


def compute_carry(trainer: object, unit_scale: np.ndarray | None) -> carry.CarryUnits:
    return carry.from_trainer(trainer, unit_scale)


# The carry finder runs a forward over all 16,384 pairs: every 2 s is often enough to follow training.
ANALYSES = (Analysis(CARRY_ANALYSIS, compute_carry, period_s=2.0),)


def view(context: ViewContext) -> TabView:
    panel = StepThroughPanel()
    controller = context.controller
    panel.sigOperands.connect(controller.set_focus)
    panel.sigStep.connect(controller.set_step)
    panel.sigMove.connect(controller.move_step)
    panel.sigExample.connect(lambda a, b, step: controller.set_focus(a, b, step))
    return TabView(STEP_THROUGH, panel, TOOLTIP, ANALYSES, cover=False, on_focus=panel.focus_changed)
