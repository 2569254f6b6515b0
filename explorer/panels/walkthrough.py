"""Step through one addition bit by bit: inputs, carries, every gate of every unit, the cell and hidden state,
the output, and the gradient flowing back, read from core.probe.trace for the operands the user types.

The trace is a single batch-of-one forward and backward, recomputed only when the weights or the operands change
(and at most a few times a second while training). Everything shown is formatted from that Trace; nothing is
computed while painting. The carry finder's result arrives from the worker as snapshot.analyses["carry"].
"""

from __future__ import annotations

import re
import time

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QEvent, QObject, Qt, QTimer, Signal
from PySide6.QtGui import QColor, QFont, QHideEvent, QKeyEvent, QShowEvent, QStandardItem, QStandardItemModel
from PySide6.QtWidgets import (
    QFormLayout,
    QFrame,
    QGraphicsItem,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPushButton,
    QSizePolicy,
    QSplitter,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from core import carry, lstm, probe, task
from core.probe import Trace
from explorer.panels import PlotWidget

CARRY_ANALYSIS = "carry"  # key of the carry finder's result in snapshot.analyses
DEFAULT_OPERANDS = (45, 67)  # the original notebook's example
DEFAULT_STEP = 3
DEFAULT_BITS = 8
PLAY_INTERVAL_MS = 600  # one bit per this many milliseconds while playing
MIN_RETRACE_SECONDS = 2.5  # new weights while training re-trace at most this often (each costs the GUI ~0.1 s)
TOP_GRADIENT_UNITS = 3

HIGHLIGHT_STYLE = "background: #ffe08a; color: #000000;"
WRONG_STYLE = "color: #d00000; font-weight: bold;"
FUTURE_STYLE = "color: #9a9a9a;"
ERROR_STYLE = "color: #d00000;"
INVALID_FIELD_STYLE = "QLineEdit { border: 2px solid #d00000; }"


def _subscript(number: int) -> str:
    return str(number).translate(str.maketrans("0123456789", "₀₁₂₃₄₅₆₇₈₉"))


def _short_message(text: str) -> str:
    """A TaskError message with absurdly long numbers cut down (10**100 typed in a field)."""
    return re.sub(r"\d{16,}", lambda m: f"{m.group()[:6]}… ({len(m.group())} digits)", text)


# ---- the per-unit table at the current step -------------------------------------------------------------------
UNIT_COLUMNS: tuple[tuple[str, str], ...] = (
    ("i", "input gate i_t = sigmoid(z_i), 0..1: how much of the candidate g is written into the cell"),
    ("f", "forget gate f_t = sigmoid(z_f), 0..1: how much of the old cell c_{t-1} is kept"),
    ("g", "candidate g_t = tanh(z_g), -1..1: the value that may be written into the cell"),
    ("o", "output gate o_t = sigmoid(z_o), 0..1: how much of tanh(c_t) is shown as h_t"),
    ("c prev", "cell state c_{t-1} before this step (0 before step 0)"),
    ("c", "cell state c_t = f·c_{t-1} + i·g after this step"),
    ("h", "hidden state h_t = o·tanh(c_t): what the output layer and the next step see"),
    ("∂L/∂c", "gradient of the loss L (mean over all bits) with respect to this unit's c_t: how much the loss "
              "would change if c_t changed; large = this unit matters for the answer here"),
)
GRADIENT_COLUMN = len(UNIT_COLUMNS) - 1
SIGMOID_COLUMNS = (0, 1, 3)  # i, f, o lie in 0..1


_ALIGN_RIGHT = int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)


class UnitTableModel(QStandardItemModel):
    """Rows are units, columns are i, f, g, o, c_{t-1}, c_t, h_t, dL/dc_t at one step. Qt.UserRole gives the float.

    Every cell's text, colour, value and tooltip are stored in Qt's own items when the values change, so the table
    paints without calling back into Python: a Python model is asked for several roles of every cell on each paint,
    and each of those calls has to take the interpreter from the training thread (a few ms each while it trains).
    """

    def __init__(self) -> None:
        super().__init__(0, len(UNIT_COLUMNS))
        self._values = np.zeros((0, len(UNIT_COLUMNS)))  # (H, 8)
        self._step = 0
        self._carriers: dict[int, str] = {}  # unit -> what the carry finder says about it
        self._top_gradient: list[int] = []
        self._bold = QFont()
        self._bold.setBold(True)
        for column, (name, _meaning) in enumerate(UNIT_COLUMNS):
            self.setHorizontalHeaderItem(column, QStandardItem(name))
        self._update_column_headers()

    def set_values(self, values: np.ndarray, step: int, top_gradient: list[int]) -> None:
        """values (H, 8) for step `step`; the rows of top_gradient are marked."""
        values = np.array(values, dtype=np.float64)
        if values.shape[0] != self._values.shape[0]:
            self._resize(values.shape[0])
        self._values = values
        self._step = step
        self._top_gradient = list(top_gradient)
        gradients = np.abs(values[:, GRADIENT_COLUMN])
        gradient_scale = float(gradients.max()) if gradients.size and gradients.max() > 0 else 1.0
        # One dataChanged for the whole table instead of one per cell and role.
        self.blockSignals(True)
        try:
            for unit, row in enumerate(values.tolist()):
                for column, value in enumerate(row):
                    item = self.item(unit, column)
                    item.setData(self._text(column, value), Qt.ItemDataRole.DisplayRole)
                    item.setData(self._background(column, value, gradient_scale), Qt.ItemDataRole.BackgroundRole)
                    item.setData(value, Qt.ItemDataRole.UserRole)
                    name, meaning = UNIT_COLUMNS[column]
                    item.setData(f"unit {unit}, step {step}: {name} = {value:.6g}\n{meaning}",
                                 Qt.ItemDataRole.ToolTipRole)
            self._update_column_headers()
            self._update_row_headers()
        finally:
            self.blockSignals(False)
        if values.size:
            self.dataChanged.emit(self.index(0, 0), self.index(self.rowCount() - 1, self.columnCount() - 1))
            self.headerDataChanged.emit(Qt.Orientation.Horizontal, 0, self.columnCount() - 1)
            self.headerDataChanged.emit(Qt.Orientation.Vertical, 0, self.rowCount() - 1)

    def set_carriers(self, carriers: dict[int, str]) -> None:
        self._carriers = dict(carriers)
        self._update_row_headers()

    def clear(self) -> None:
        self._values = np.zeros((0, len(UNIT_COLUMNS)))
        self.setRowCount(0)

    def value(self, unit: int, column: int) -> float:
        return float(self._values[unit, column])

    # ---- the items ----
    def _resize(self, rows: int) -> None:
        old = self.rowCount()
        self.setRowCount(rows)
        for unit in range(old, rows):
            for column in range(len(UNIT_COLUMNS)):
                item = QStandardItem()
                item.setEditable(False)
                item.setData(_ALIGN_RIGHT, Qt.ItemDataRole.TextAlignmentRole)
                self.setItem(unit, column, item)
            self.setVerticalHeaderItem(unit, QStandardItem(str(unit)))

    def _update_column_headers(self) -> None:
        for column, (_name, meaning) in enumerate(UNIT_COLUMNS):
            self.horizontalHeaderItem(column).setToolTip(f"{meaning} (at step {self._step})")

    def _update_row_headers(self) -> None:
        for unit in range(self.rowCount()):
            header = self.verticalHeaderItem(unit)
            carrier, top = unit in self._carriers, unit in self._top_gradient
            header.setText(f"{unit}" + (" ◆" if carrier else "") + (" ∇" if top else ""))
            lines = [f"LSTM unit {unit}"]
            if carrier:
                lines.append(f"carry finder: {self._carriers[unit]}")
            if top:
                lines.append(f"∇: one of the {TOP_GRADIENT_UNITS} units with the largest |∂L/∂c| at this step")
            header.setToolTip("\n".join(lines))
            header.setData(self._bold if carrier else None, Qt.ItemDataRole.FontRole)

    @staticmethod
    def _text(column: int, value: float) -> str:
        if column == GRADIENT_COLUMN:
            return f"{value:+.1e}".replace("e-0", "e-").replace("e+0", "e+")  # +3.6e-3: narrower column
        return f"{value:.2f}" if column in SIGMOID_COLUMNS else f"{value:+.2f}"

    @staticmethod
    def _background(column: int, value: float, gradient_scale: float) -> QColor:
        if column in SIGMOID_COLUMNS:
            return QColor(40, 140, 90, int(170 * min(max(value, 0.0), 1.0)))
        if column == GRADIENT_COLUMN:
            return QColor(150, 60, 200, int(170 * min(abs(value) / gradient_scale, 1.0)))
        strength = int(170 * min(abs(value), 1.0))  # g, c, h: orange positive, blue negative
        return QColor(230, 120, 30, strength) if value >= 0 else QColor(40, 110, 220, strength)


# ---- the panel ------------------------------------------------------------------------------------------------
class WalkthroughPanel(QWidget):
    """Type a + b, then walk through the model's computation bit by bit (forward and backward)."""

    sigStepChanged = Signal(object)  # int step, or None when the panel is hidden
    sigCarryUnits = Signal(object)  # list[int]: units the carry finder names, best first
    sigShown = Signal()  # the panel came on screen (a tab switch, not a window restore)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setToolTip("Step through one addition: ← / → move one bit, Home goes to step 0 (click here first)")
        self._n_bits = DEFAULT_BITS
        self._operands: tuple[int, int] | None = None  # the valid operands typed, or None
        self._params: object | None = None  # weights of the latest snapshot
        self._params_samples = -1  # samples seen when those weights were taken
        self._unit_scale: np.ndarray | None = None
        self._trace: Trace | None = None
        self._traced_key: tuple | None = None  # (params object, operands, n_bits) the trace was made from
        self._last_trace_time = -np.inf
        self._step = DEFAULT_STEP
        self._carry: carry.CarryUnits | None = None
        self._carry_result: object | None = None  # the analyses entry last shown, to skip redrawing it
        self._rng = np.random.default_rng()
        self.backward_values: dict[str, np.ndarray] = {}  # what the backward plot shows, per step (T,) each
        self._backward_view: tuple | None = None  # (n_bits, y range) the backward plot is set to

        self._retrace_timer = QTimer(self)
        self._retrace_timer.setSingleShot(True)
        self._retrace_timer.timeout.connect(self._retrace)
        self._play_timer = QTimer(self)
        self._play_timer.setInterval(PLAY_INTERVAL_MS)
        self._play_timer.timeout.connect(self._play_tick)

        self._build()
        self._set_bits_grid(self._n_bits)
        self.set_operands(*DEFAULT_OPERANDS)

    # ---- layout -----------------------------------------------------------------------------------------------
    def _build(self) -> None:
        outer = QHBoxLayout(self)
        outer.setContentsMargins(4, 4, 4, 4)
        splitter = QSplitter(Qt.Orientation.Horizontal)
        outer.addWidget(splitter)
        splitter.addWidget(self._build_addition())
        middle = QWidget()
        middle_layout = QVBoxLayout(middle)
        middle_layout.setContentsMargins(0, 0, 0, 0)
        middle_layout.addWidget(self._build_step_details())
        middle_layout.addWidget(self._build_carry_finder())
        middle_layout.addStretch(1)
        splitter.addWidget(middle)
        splitter.addWidget(self._build_units())
        splitter.addWidget(self._build_backward())
        splitter.setSizes([330, 285, 430, 235])
        self.setMinimumHeight(270)  # the bit rows, the step details and the carry finder stay readable
        for index in range(4):
            splitter.setCollapsible(index, False)

    def _build_addition(self) -> QWidget:
        box = QWidget()
        layout = QVBoxLayout(box)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(4)

        self.weights_label = QLabel("Waiting for the model's weights…")
        self.weights_label.setToolTip("Which weights this walkthrough uses: the latest ones, taken after this many "
                                      "training samples. It follows training live.")
        layout.addWidget(self.weights_label)

        fields = QHBoxLayout()
        self.field_a = QLineEdit()
        self.field_b = QLineEdit()
        for name, field in (("a", self.field_a), ("b", self.field_b)):
            field.setMaximumWidth(90)
            field.textChanged.connect(self._on_operand_edited)
            label = QLabel(f"{name} =")
            label.setToolTip(f"the {'first' if name == 'a' else 'second'} number to add")
            fields.addWidget(label)
            fields.addWidget(field)
            if name == "a":
                plus = QLabel("+")
                fields.addWidget(plus)
        self.random_button = QPushButton("Random")
        self.random_button.setToolTip("Pick two random numbers that fit the model's bit width")
        self.random_button.clicked.connect(self.pick_random)
        fields.addWidget(self.random_button)
        fields.addStretch(1)
        layout.addLayout(fields)

        self.operand_error = QLabel("")
        self.operand_error.setStyleSheet(ERROR_STYLE)
        self.operand_error.setWordWrap(True)
        self.operand_error.setToolTip("Why the numbers typed cannot be added by this model; nothing runs until fixed")
        self.operand_error.hide()
        layout.addWidget(self.operand_error)

        self.bits_frame = QFrame()
        self.bits_frame.setFrameShape(QFrame.Shape.StyledPanel)
        self.bits_grid = QGridLayout(self.bits_frame)
        self.bits_grid.setHorizontalSpacing(0)
        self.bits_grid.setVerticalSpacing(1)
        self.bits_grid.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.bits_frame)

        self.reading_note = QLabel("Bits read MSB … LSB, left to right; step 0 is the rightmost "
                                   "(the model reads it first).")
        self.reading_note.setWordWrap(True)
        self.reading_note.setToolTip("The model reads the least significant bit first, so its step t is bit t, "
                                     "counted from the right. Heatmaps run the other way: step 0 on the left.")
        note_font = self.reading_note.font()
        note_font.setItalic(True)
        self.reading_note.setFont(note_font)
        layout.addWidget(self.reading_note)

        controls = QHBoxLayout()
        self.home_button = QPushButton("Home")
        self.home_button.setToolTip("Go to step 0, the rightmost bit (key: Home)")
        self.home_button.clicked.connect(self.home)
        self.prev_button = QPushButton("◀ Prev")
        self.prev_button.setToolTip("One bit back (key: ← while this panel has focus)")
        self.prev_button.clicked.connect(self.previous_step)
        self.play_button = QPushButton("▶ Play")
        self.play_button.setCheckable(True)
        self.play_button.setToolTip(f"Walk through the bits one every {PLAY_INTERVAL_MS / 1000:g} s; "
                                    "starts over from step 0 at the end")
        self.play_button.toggled.connect(self._on_play_toggled)
        self.next_button = QPushButton("Next ▶")
        self.next_button.setToolTip("One bit forward (key: → while this panel has focus)")
        self.next_button.clicked.connect(self.next_step)
        for button in (self.home_button, self.prev_button, self.play_button, self.random_button, self.next_button):
            button.installEventFilter(self)  # a focused button would move focus on ←/→; here they step bits
        for button in (self.home_button, self.prev_button, self.play_button, self.next_button):
            controls.addWidget(button)
        controls.addStretch(1)
        layout.addLayout(controls)
        layout.addStretch(1)
        return box

    def _build_step_details(self) -> QWidget:
        self.details_box = QGroupBox("At step 3")
        self.details_box.setToolTip("What the model computes while reading one bit position")
        form = QFormLayout(self.details_box)
        form.setContentsMargins(6, 4, 6, 4)
        form.setVerticalSpacing(1)
        rows = (
            ("step", "Step", "Which bit the model is reading: step t reads bit t, worth 2^t"),
            ("inputs", "Input bits", "The bit of a and the bit of b fed to the model at this step"),
            ("carry", "True carry", "The carry of written addition: into this bit (from the bit to its right) and "
                                    "out of it (to the next bit). The model is never told it; it must remember it."),
            ("output", "Output", "p = the model's probability that this bit of the sum is 1; it predicts 1 when "
                                 "p ≥ 0.5. Compared with the true bit of a + b."),
            ("so_far", "Result so far", "The bits predicted up to this step, written MSB … LSB, and their value in "
                                        "decimal; in brackets the true sum's bits so far"),
            ("loss", "Loss here", "Binary cross-entropy at this bit: −log p if the true bit is 1, −log(1−p) if 0; "
                                  "in brackets the mean over all bits, L"),
            ("gradient", "‖∂L/∂h‖, ‖∂L/∂c‖", "Size (L2 norm over units) of ∂L/∂h_t and of ∂L/∂c_t at this step, where "
                                             "L is the mean loss over all bits: how strongly this step's state "
                                             "affects the loss, through this bit and every later one"),
            ("top_units", "Most gradient", f"The {TOP_GRADIENT_UNITS} units with the largest |∂L/∂c_t| at this "
                                           "step: the cells the answer depends on most here"),
        )
        self.detail_labels: dict[str, QLabel] = {}
        for key, title, tooltip in rows:
            title_label = QLabel(title + ":")
            title_label.setToolTip(tooltip)
            value_label = QLabel("–")
            value_label.setToolTip(tooltip)
            value_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
            form.addRow(title_label, value_label)
            self.detail_labels[key] = value_label
        return self.details_box

    def _build_carry_finder(self) -> QWidget:
        box = QGroupBox("Carry finder: which unit holds the carry?")
        box.setToolTip(
            "Over all operand pairs: the correlation of each unit's cell state c_t and hidden state h_t with the "
            "true carry out of bit t. ±1 means the unit holds the carry. Units with |corr| ≥ "
            f"{carry.CARRY_THRESHOLD:g} are marked ◆ and outlined in the heatmaps.")
        layout = QVBoxLayout(box)
        layout.setContentsMargins(6, 2, 6, 2)
        self.carry_label = QLabel("Waiting for the first result (it runs in the background)…")
        self.carry_label.setWordWrap(True)
        self.carry_label.setToolTip(box.toolTip())
        self.carry_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        layout.addWidget(self.carry_label)
        return box

    def _build_units(self) -> QWidget:
        box = QGroupBox("Every unit at step 3")
        self.units_box = box
        box.setToolTip("Gates, cell and hidden state and loss gradient of every LSTM unit at the current step. "
                       "Hover a header or a number for what it is.")
        layout = QVBoxLayout(box)
        layout.setContentsMargins(4, 4, 4, 4)
        self.unit_model = UnitTableModel()
        self.unit_table = QTableView()
        self.unit_table.setModel(self.unit_model)
        self.unit_table.setFocusPolicy(Qt.FocusPolicy.NoFocus)  # arrow keys step bits, not table cells
        self.unit_table.setSelectionMode(QTableView.SelectionMode.NoSelection)
        # Columns are sized to their contents once per model size, not on every update: ResizeToContents asks
        # every cell for its size hint on each change, which made a table update cost ~30 ms of the GUI thread.
        self.unit_table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        self._sized_rows = -1
        self.unit_table.verticalHeader().setDefaultSectionSize(19)
        self.unit_table.verticalHeader().setToolTip("LSTM unit number; ◆ = the carry finder's carry unit, "
                                                    "∇ = most gradient at this step")
        self.unit_table.setToolTip(box.toolTip())
        table_font = self.unit_table.font()
        table_font.setPointSizeF(table_font.pointSizeF() * 0.9)
        self.unit_table.setFont(table_font)
        self.unit_table.horizontalHeader().setMinimumSectionSize(20)
        layout.addWidget(self.unit_table)
        legend = QLabel("rows: units · green: gate open (1) … shut (0) · orange +, blue −: g, c, h · "
                        "purple: |∂L/∂c| · ◆ carry unit (carry finder) · ∇ most gradient")
        legend.setWordWrap(True)
        legend.setToolTip("How the table is coloured")
        small = legend.font()
        small.setPointSizeF(small.pointSizeF() * 0.9)
        legend.setFont(small)
        layout.addWidget(legend)
        return box

    def _build_backward(self) -> QWidget:
        box = QWidget()
        layout = QVBoxLayout(box)
        layout.setContentsMargins(0, 0, 0, 0)
        self.backward_plot = PlotWidget()
        self.backward_plot.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        plot = self.backward_plot.getPlotItem()
        plot.setLabel("bottom", "step t (bit position, LSB = 0)")
        plot.setLogMode(x=False, y=True)
        plot.showGrid(x=True, y=True, alpha=0.25)
        plot.setMouseEnabled(x=False, y=False)
        plot.hideButtons()
        self.backward_title = QLabel(
            "<b>Backward</b> per bit, log scale: <span style='color:#d62728'>● loss at bit t</span> "
            "<span style='color:#1f77b4'>■ ‖∂L/∂h<sub>t</sub>‖</span> "
            "<span style='color:#9467bd'>▲ ‖∂L/∂c<sub>t</sub>‖</span>")
        self.backward_title.setWordWrap(True)
        self.backward_plot.setToolTip(
            "For this addition, per bit position t: the loss at that bit, and the size of the gradients ‖∂L/∂h_t‖ "
            "and ‖∂L/∂c_t‖ (L = mean loss over all bits). Gradient flows from later bits back to earlier ones "
            "through c; the dashed line is the current step.")
        self.loss_curve = plot.plot(name="loss at bit t", pen=pg.mkPen("#d62728", width=2), symbol="o",
                                    symbolSize=5, symbolBrush="#d62728")
        self.grad_h_curve = plot.plot(name="‖∂L/∂h_t‖", pen=pg.mkPen("#1f77b4", width=2), symbol="s",
                                      symbolSize=5, symbolBrush="#1f77b4")
        self.grad_c_curve = plot.plot(name="‖∂L/∂c_t‖", pen=pg.mkPen("#9467bd", width=2), symbol="t",
                                      symbolSize=6, symbolBrush="#9467bd")
        self.step_line = pg.InfiniteLine(angle=90, movable=False, pen=pg.mkPen("#e0a000", width=2,
                                                                               style=Qt.PenStyle.DashLine))
        plot.addItem(self.step_line)
        # The grid is drawn by the axes across the whole plot: kept as cached pixmaps, they are drawn again only
        # when the range changes, not with every new trace (in Python, while training waits for the interpreter).
        for item in (plot.getAxis("left"), plot.getAxis("bottom"), self.step_line):
            item.setCacheMode(QGraphicsItem.CacheMode.DeviceCoordinateCache)
        self.backward_title.setToolTip(self.backward_plot.toolTip())
        layout.addWidget(self.backward_title)
        layout.addWidget(self.backward_plot, 3)

        box.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        return box

    def _set_bits_grid(self, n_bits: int) -> None:
        """(Re)build the bit rows for n_bits columns: header, carry, a, b, a + b, predicted, then the decimal."""
        while self.bits_grid.count():
            item = self.bits_grid.takeAt(0)
            if item.widget() is not None:
                item.widget().deleteLater()
        mono = QFont("monospace")
        mono.setStyleHint(QFont.StyleHint.Monospace)
        rows = (
            ("step", "step", "Step t at which the model reads this bit (bit t is worth 2^t)"),
            ("carry", "carry in", "True carry into each bit, from the bit to its right (as written above a sum)"),
            ("a", "a", "Bits of a"),
            ("b", "b", "Bits of b"),
            ("sum", "a + b", "Bits of the true sum"),
            ("predicted", "model", "Bits the model predicts (p ≥ 0.5 → 1); red = wrong; grey = not reached yet"),
        )
        self.bit_cells: dict[str, list[QLabel]] = {}
        self.decimal_labels: dict[str, QLabel] = {}
        for row, (key, title, tooltip) in enumerate(rows):
            title_label = QLabel(title)
            title_label.setToolTip(tooltip)
            title_label.setContentsMargins(0, 0, 8, 0)
            self.bits_grid.addWidget(title_label, row, 0)
            cells = []
            for column in range(n_bits):
                step = n_bits - 1 - column  # MSB on the left, step 0 (LSB) on the right
                cell = QLabel("")
                cell.setFont(mono)
                cell.setAlignment(Qt.AlignmentFlag.AlignCenter)
                cell.setMinimumWidth(18)
                cell.setToolTip(f"{tooltip}; this column is bit {step}, read at step {step}")
                self.bits_grid.addWidget(cell, row, column + 1)
                cells.append(cell)
            self.bit_cells[key] = cells[::-1]  # indexed by step
            decimal = QLabel("")
            decimal.setFont(mono)
            decimal.setContentsMargins(10, 0, 0, 0)
            decimal.setToolTip(f"{tooltip}, in decimal")
            self.bits_grid.addWidget(decimal, row, n_bits + 1)
            self.decimal_labels[key] = decimal
        for step, cell in enumerate(self.bit_cells["step"]):
            cell.setText(str(step))
            small = cell.font()
            small.setPointSizeF(small.pointSizeF() * 0.8)
            cell.setFont(small)
        self.decimal_labels["step"].setText("decimal")
        self.bits_grid.setColumnStretch(n_bits + 2, 1)

    # ---- public API -------------------------------------------------------------------------------------------
    @property
    def step(self) -> int:
        return self._step

    @property
    def n_bits(self) -> int:
        return self._n_bits

    @property
    def trace(self) -> Trace | None:
        """The trace shown, or None while the operands are invalid or no weights arrived yet."""
        return self._trace

    @property
    def operands(self) -> tuple[int, int] | None:
        return self._operands

    def set_operands(self, a: int, b: int) -> None:
        """Type a and b into the fields (validated as if typed; invalid values show a message and run nothing)."""
        for field, value in ((self.field_a, a), (self.field_b, b)):
            field.blockSignals(True)
            field.setText(str(value))
            field.blockSignals(False)
        self._on_operand_edited()

    def pick_random(self) -> None:
        limit = task.operand_limit(self._n_bits)
        a, b = (int(v) for v in self._rng.integers(0, limit, size=2))
        self.set_operands(a, b)

    def set_step(self, step: int) -> None:
        """Show step `step` (clamped to 0..n_bits-1) and tell the heatmaps."""
        step = int(min(max(step, 0), self._n_bits - 1))
        self._step = step
        self._show_step()
        if self.isVisible():  # while hidden the heatmaps show no step (see hideEvent)
            self.sigStepChanged.emit(step)

    def next_step(self) -> None:
        self.set_step(self._step + 1)

    def previous_step(self) -> None:
        self.set_step(self._step - 1)

    def home(self) -> None:
        self.set_step(0)

    def play(self, on: bool = True) -> None:
        self.play_button.setChecked(on)

    @property
    def playing(self) -> bool:
        return self._play_timer.isActive()

    def update_from(self, snapshot: object) -> None:
        """Take the latest weights (re-tracing when they changed) and the carry finder's latest result."""
        n_bits = int(snapshot.config.n_bits)  # type: ignore[attr-defined]
        if n_bits != self._n_bits:
            self._n_bits = n_bits
            self._step = min(self._step, n_bits - 1)
            self._set_bits_grid(n_bits)
            self._on_operand_edited()  # the allowed range changed
        params = snapshot.params  # type: ignore[attr-defined]
        unit_scale = getattr(snapshot, "unit_scale", None)
        if params is not self._params and not self._same_weights(params, unit_scale):
            reshaped = not self._same_shape(params)
            self._params = params
            self._unit_scale = unit_scale
            self._params_samples = int(snapshot.samples_seen)  # type: ignore[attr-defined]
            if reshaped:  # another model or hidden size: the trace shown is of a model that is gone
                self._retrace()
            else:
                self._request_retrace()
        elif params is not self._params:  # same numbers in a new copy: keep the trace, follow the sample count
            self._params = params
            self._params_samples = int(snapshot.samples_seen)  # type: ignore[attr-defined]
            if self._traced_key is not None:
                self._traced_key = (params, *self._traced_key[1:])
            self._show_weights_source()
        analyses = getattr(snapshot, "analyses", None) or {}
        result = analyses.get(CARRY_ANALYSIS)
        if result is not self._carry_result:
            self._carry_result = result
            self._show_carry(result if isinstance(result, carry.CarryUnits) else None)

    # ---- reacting -----------------------------------------------------------------------------------------------
    def _same_shape(self, params: object) -> bool:
        old = self._params
        if old is None or type(old) is not type(params):
            return False
        old_flat, new_flat = getattr(old, "flat", None), getattr(params, "flat", None)
        return old_flat is not None and new_flat is not None and old_flat.shape == new_flat.shape

    def _same_weights(self, params: object, unit_scale: np.ndarray | None) -> bool:
        if not self._same_shape(params):
            return False
        old_flat, new_flat = self._params.flat, params.flat  # type: ignore[attr-defined]
        same_scale = (unit_scale is None and self._unit_scale is None) or (
            unit_scale is not None and self._unit_scale is not None and np.array_equal(unit_scale, self._unit_scale))
        return same_scale and np.array_equal(old_flat, new_flat)

    def _on_operand_edited(self) -> None:
        """Validate both fields; run the model only when both hold a number the model can add."""
        operands, messages = [], []
        for name, field in (("a", self.field_a), ("b", self.field_b)):
            try:
                operands.append(task.check_operand(field.text(), self._n_bits, name))
                field.setStyleSheet("")
            except task.TaskError as error:
                messages.append(_short_message(str(error)))
                field.setStyleSheet(INVALID_FIELD_STYLE)
        limit = task.operand_limit(self._n_bits)
        for field in (self.field_a, self.field_b):
            field.setPlaceholderText(f"0–{limit - 1}")
            field.setToolTip(f"A whole number from 0 to {limit - 1} (the model has {self._n_bits} bits, and the sum "
                             "must fit). Decimal, or 0b… binary.")
        if messages:
            self.operand_error.setText("⚠ " + "\n⚠ ".join(messages))
            self.operand_error.show()
            self._operands = None
            self._trace = None
            self._traced_key = None
            self._retrace_timer.stop()
            self.play(False)
            self._show_trace()
            return
        self.operand_error.hide()
        self._operands = (operands[0], operands[1])
        self._retrace()  # the user is waiting for this one: no throttling (a no-op when nothing changed)

    def _request_retrace(self) -> None:
        """New weights: re-trace now, or a little later if the last trace was very recent."""
        wait = MIN_RETRACE_SECONDS - (time.monotonic() - self._last_trace_time)
        if wait <= 0:
            self._retrace()
        elif not self._retrace_timer.isActive():
            self._retrace_timer.start(int(wait * 1000) + 1)

    def _retrace(self) -> None:
        self._retrace_timer.stop()
        self._show_weights_source()
        if self._operands is None or self._params is None:
            self._trace = None
            self._show_trace()
            return
        key = (self._params, self._operands, self._n_bits)
        if key == self._traced_key:
            return
        if not isinstance(self._params, lstm.Params):
            self._trace = None
            self._traced_key = key
            self._show_trace(f"This model ({type(self._params).__module__.rsplit('.', 1)[-1]}) has no gates or cell "
                             "to step through; switch the model to the LSTM.")
            return
        unit_scale = self._unit_scale
        if unit_scale is not None and unit_scale.shape != (self._params.hidden_size,):
            unit_scale = None
        a, b = self._operands
        self._trace = probe.trace(self._params, a, b, self._n_bits, unit_scale)
        self._traced_key = key
        self._last_trace_time = time.monotonic()
        self._show_trace()

    def _on_play_toggled(self, on: bool) -> None:
        if on and self._trace is None:
            self.play_button.setChecked(False)
            return
        self.play_button.setText("Pause" if on else "▶ Play")
        if on:
            if self._step >= self._n_bits - 1:
                self.set_step(0)
            self._play_timer.start()
        else:
            self._play_timer.stop()

    def _play_tick(self) -> None:
        self.next_step()
        if self._step >= self._n_bits - 1:
            self.play(False)

    # ---- keys: ← / → / Home step through bits while the panel (not a text field) has focus ---------------------
    _STEP_KEYS = (Qt.Key.Key_Left, Qt.Key.Key_Right, Qt.Key.Key_Home)

    def event(self, event: QEvent) -> bool:
        # The window binds → to "step training"; accepting the override makes the key a plain key press here.
        if (event.type() == QEvent.Type.ShortcutOverride and isinstance(event, QKeyEvent)
                and event.key() in self._STEP_KEYS and event.modifiers() == Qt.KeyboardModifier.NoModifier):
            event.accept()
            return True
        return super().event(event)

    def keyPressEvent(self, event: QKeyEvent) -> None:
        if not self._step_key(event):
            super().keyPressEvent(event)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if event.type() == QEvent.Type.KeyPress and isinstance(event, QKeyEvent):
            return self._step_key(event)
        return super().eventFilter(watched, event)

    def _step_key(self, event: QKeyEvent) -> bool:
        """Handle ← / → / Home; True when the key was one of them."""
        if event.modifiers() != Qt.KeyboardModifier.NoModifier:
            return False
        actions = {Qt.Key.Key_Left: self.previous_step, Qt.Key.Key_Right: self.next_step, Qt.Key.Key_Home: self.home}
        action = actions.get(Qt.Key(event.key()))
        if action is None:
            return False
        action()
        event.accept()
        return True

    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        # The heatmaps mark the step and the carry units only while this panel is on screen.
        self.sigStepChanged.emit(self._step)
        self.sigCarryUnits.emit(self._carry.carriers() if self._carry is not None else [])
        if not event.spontaneous():
            self.sigShown.emit()

    def hideEvent(self, event: QHideEvent) -> None:
        self.play(False)
        self.sigStepChanged.emit(None)
        self.sigCarryUnits.emit([])
        super().hideEvent(event)

    # ---- showing ------------------------------------------------------------------------------------------------
    def _show_weights_source(self) -> None:
        if self._params is None:
            self.weights_label.setText("Waiting for the model's weights…")
        else:
            self.weights_label.setText(f"Weights from sample {self._params_samples:,}")

    def _show_trace(self, message: str = "") -> None:
        """Fill everything that depends on the whole addition, then the current step."""
        trace = self._trace
        if trace is None:
            for key, cells in self.bit_cells.items():
                for cell in cells if key != "step" else ():
                    cell.setText("·")
            for key, label in self.decimal_labels.items():
                if key != "step":
                    label.setText("")
            for curve in (self.loss_curve, self.grad_h_curve, self.grad_c_curve):
                curve.setData([], [])
            self.backward_values = {}
            self.unit_model.clear()
            if not message:
                message = ("Enter two valid numbers above." if self._operands is None
                           else "Waiting for the model's weights…")
            for label in self.detail_labels.values():
                label.setText("–")
            self.detail_labels["step"].setText(message)
            return
        rows = {"carry": trace.carry_in, "a": trace.bits_a, "b": trace.bits_b, "sum": trace.bits_sum,
                "predicted": trace.predicted_bits}
        for key, bits in rows.items():
            for cell, bit in zip(self.bit_cells[key], bits, strict=True):
                cell.setText(str(int(bit)))
        correct = trace.predicted == trace.true_sum
        self.decimal_labels["carry"].setText("")
        self.decimal_labels["a"].setText(f"= {trace.a}")
        self.decimal_labels["b"].setText(f"= {trace.b}")
        self.decimal_labels["sum"].setText(f"= {trace.true_sum}")
        self.decimal_labels["predicted"].setText(f"= {trace.predicted} {'✓' if correct else '✗ wrong'}")
        self.decimal_labels["predicted"].setStyleSheet("" if correct else WRONG_STYLE)
        steps = np.arange(trace.n_bits)
        floor = 1e-12  # log axis: a zero would be -inf
        self.backward_values = {
            "loss": trace.step_loss,  # (T,)
            "grad_hidden_norm": np.linalg.norm(trace.grad_hidden, axis=1),  # (T,) ||dL/dh_t||
            "grad_cell_norm": np.linalg.norm(trace.grad_cell, axis=1),  # (T,) ||dL/dc_t||
        }
        shown = [np.maximum(values, floor) for values in self.backward_values.values()]
        for curve, values in zip((self.loss_curve, self.grad_h_curve, self.grad_c_curve), shown, strict=True):
            curve.setData(steps, values)
        self._fit_backward_plot(trace.n_bits, np.concatenate(shown))
        self._show_step()

    def _fit_backward_plot(self, n_bits: int, values: np.ndarray) -> None:
        """Set the backward plot's view to whole decades around the values, and only when that changes:
        automatic ranging would fit (and redraw the axes and grid) again with every new trace."""
        logs = np.log10(values[np.isfinite(values)])
        y_range = (float(np.floor(logs.min())), float(np.ceil(logs.max()))) if logs.size else (0.0, 1.0)
        view = (n_bits, y_range)
        if view == self._backward_view:
            return
        self._backward_view = view
        plot = self.backward_plot.getPlotItem()
        plot.setXRange(-0.3, n_bits - 0.7, padding=0)
        plot.setYRange(*y_range, padding=0.04)  # in log10 units: the y axis is logarithmic

    def _show_step(self) -> None:
        """Everything that depends on the current step; only formatting, no model math."""
        t = self._step
        self.details_box.setTitle(f"At step {t}")
        self.units_box.setTitle(f"Every unit at step {t}")
        self.step_line.setValue(t)
        trace = self._trace
        for key, cells in self.bit_cells.items():
            for step, cell in enumerate(cells):
                style = HIGHLIGHT_STYLE if step == t else ""
                if key == "predicted" and trace is not None:
                    if step > t:
                        style += FUTURE_STYLE
                    elif trace.wrong_bits[step]:
                        style += WRONG_STYLE
                if cell.styleSheet() != style:  # setting a style sheet restyles the label even when unchanged
                    cell.setStyleSheet(style)
        if trace is None:
            return
        labels = self.detail_labels
        T = trace.n_bits
        labels["step"].setText(f"{t} of 0…{T - 1}: bit {t}, worth 2{_superscript(t)} = {1 << t:,}")
        sub = _subscript(t)
        labels["inputs"].setText(f"a{sub} = {trace.bits_a[t]},  b{sub} = {trace.bits_b[t]}")
        column_total = int(trace.bits_a[t] + trace.bits_b[t] + trace.carry_in[t])
        labels["carry"].setText(f"in {trace.carry_in[t]} → out {trace.carry_out[t]}   "
                                f"({trace.bits_a[t]} + {trace.bits_b[t]} + {trace.carry_in[t]} = {column_total})")
        predicted, true_bit = int(trace.predicted_bits[t]), int(trace.bits_sum[t])
        verdict = "✓" if predicted == true_bit else "✗ wrong"
        labels["output"].setText(f"p = {trace.probs[t]:.4f} → {predicted}  (true {true_bit}) {verdict}")
        labels["output"].setStyleSheet("" if predicted == true_bit else WRONG_STYLE)
        bits_so_far = trace.predicted_bits[: t + 1]
        value_so_far = int(np.sum(bits_so_far << np.arange(t + 1)))
        true_so_far = (trace.a + trace.b) & ((1 << (t + 1)) - 1)
        binary = "".join(str(int(bit)) for bit in bits_so_far[::-1])
        labels["so_far"].setText(f"{binary} = {value_so_far}  (true {task.to_binary_string(true_so_far, t + 1)} = "
                                 f"{true_so_far})")
        labels["loss"].setText(f"{trace.step_loss[t]:.4g}  (L = {trace.step_loss.mean():.4g})")
        grad_h, grad_c = float(np.linalg.norm(trace.grad_hidden[t])), float(np.linalg.norm(trace.grad_cell[t]))
        labels["gradient"].setText(f"{grad_h:.2e},  {grad_c:.2e}")
        top = self.top_gradient_units()
        labels["top_units"].setText("units " + ", ".join(str(u) for u in top) + "  (∇ in the table)")

        values = np.column_stack([
            trace.input_gate[t], trace.forget_gate[t], trace.cell_candidate[t], trace.output_gate[t],
            trace.cell[t], trace.cell[t + 1], trace.hidden[t + 1], trace.grad_cell[t],
        ])  # (H, 8): c before is cell[t] = c_{t-1}, c after is cell[t+1] = c_t
        self.unit_model.set_values(values, t, top)
        if self._sized_rows != len(values):
            self._sized_rows = len(values)
            self.unit_table.resizeColumnsToContents()

    def top_gradient_units(self) -> list[int]:
        """The units with the largest |dL/dc_t| at the current step, largest first."""
        if self._trace is None:
            return []
        magnitudes = np.abs(self._trace.grad_cell[self._step])
        order = np.argsort(-magnitudes, kind="stable")[:TOP_GRADIENT_UNITS]
        return [int(u) for u in order]

    def _show_carry(self, found: carry.CarryUnits | None) -> None:
        hidden_size = getattr(self._params, "hidden_size", None)
        if found is not None and hidden_size is not None and found.hidden_corr.shape != (hidden_size,):
            found = None  # computed before a change of hidden size; a new result is on its way
        self._carry = found
        if found is None:
            self.carry_label.setText("Waiting for a result (it runs in the background)…")
            self.unit_model.set_carriers({})
            if self.isVisible():
                self.sigCarryUnits.emit([])
            return
        pairs = f"all {found.n_pairs:,} pairs" if found.exhaustive else f"{found.n_pairs:,} random pairs"
        when = f", weights from sample {found.samples_seen:,}" if found.samples_seen >= 0 else ""
        carriers = found.carriers()
        cell = "<th align=right>&nbsp;corr(c, carry)</th>" if found.cell_corr is not None else ""
        rows = [f"<tr><th align=left>unit</th>{cell}<th align=right>&nbsp;corr(h, carry)</th></tr>"]
        for unit in (int(u) for u in found.best_units[:3]):
            name = f"◆ unit {unit}" if unit in carriers else f"&nbsp;&nbsp;&nbsp;unit {unit}"
            cell = f"<td align=right>{found.cell_corr[unit]:+.2f}</td>" if found.cell_corr is not None else ""
            rows.append(f"<tr><td>{name}</td>{cell}<td align=right>{found.hidden_corr[unit]:+.2f}</td></tr>")
        verdict = ("" if carriers else f"<br>No unit reaches |corr| ≥ {carry.CARRY_THRESHOLD:g} yet: the carry "
                   "is not held by a single unit.")
        self.carry_label.setText(f"<table cellspacing=0>{''.join(rows)}</table>"
                                 f"<small>over {pairs}{when}</small>{verdict}")
        self.carry_label.setToolTip("\n".join([self.carry_label.parentWidget().toolTip(), ""]
                                              + [found.describe(int(u)) for u in found.best_units[:5]]))
        self.unit_model.set_carriers({u: found.describe(u) for u in carriers})
        if self.isVisible():  # while hidden the heatmaps outline nothing (see hideEvent)
            self.sigCarryUnits.emit(carriers)


def _superscript(number: int) -> str:
    return str(number).translate(str.maketrans("0123456789", "⁰¹²³⁴⁵⁶⁷⁸⁹"))
