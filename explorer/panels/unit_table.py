"""Every unit at one bit step: a table of the gates, the cell and hidden state and the gradient, from a Trace."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QFont, QStandardItem, QStandardItemModel
from PySide6.QtWidgets import QGroupBox, QHeaderView, QLabel, QTableView, QVBoxLayout, QWidget

from core.focus import FocusTrace

# (header, meaning) per column; the LSTM's and the plain RNN's.
LSTM_COLUMNS: tuple[tuple[str, str], ...] = (
    ("i", "input gate i_t = sigmoid(z_i), 0..1: how much of the candidate g is written into the cell"),
    ("f", "forget gate f_t = sigmoid(z_f), 0..1: how much of the old cell c_{t-1} is kept"),
    ("g", "candidate g_t = tanh(z_g), -1..1: the value that may be written into the cell"),
    ("o", "output gate o_t = sigmoid(z_o), 0..1: how much of tanh(c_t) is shown as h_t"),
    ("c prev", "cell state c_{t-1} before this step (0 before step 0)"),
    ("c", "cell state c_t = f·c_{t-1} + i·g after this step"),
    ("h", "hidden state h_t = o·tanh(c_t): what the output layer and the next step see"),
    ("∂L/∂c", "gradient of the loss L (summed over the bits) with respect to this unit's c_t: how much the loss "
              "would change if c_t changed; large = this unit matters for the answer here"),
)
RNN_COLUMNS: tuple[tuple[str, str], ...] = (
    ("h prev", "hidden state h_{t-1} before this step (0 before step 0)"),
    ("h", "hidden state h_t = tanh(W_ih x_t + W_hh h_{t-1} + b): the plain RNN's only memory"),
    ("∂L/∂h", "gradient of the loss L (summed over the bits) with respect to this unit's h_t"),
)
LSTM_SIGMOID_COLUMNS = (0, 1, 3)  # i, f, o lie in 0..1
ROW_HEIGHT = 19
_ALIGN_RIGHT = int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)


def unit_values(focus: FocusTrace, step: int) -> np.ndarray:
    """(H, columns) the table's numbers at `step`: LSTM_COLUMNS for a gated model, RNN_COLUMNS otherwise."""
    trace, t = focus.trace, step
    if trace.gated:
        return np.column_stack([
            trace.input_gate[t], trace.forget_gate[t], trace.cell_candidate[t], trace.output_gate[t],
            trace.cell[t], trace.cell[t + 1], trace.hidden[t + 1], trace.grad_cell[t],
        ])  # c before is cell[t] = c_{t-1}, c after is cell[t+1] = c_t
    return np.column_stack([trace.hidden[t], trace.hidden[t + 1], trace.grad_hidden[t]])


class UnitTableModel(QStandardItemModel):
    """Rows are units, columns the model's (see LSTM_COLUMNS, RNN_COLUMNS) at one step. UserRole gives the float.

    Every cell's text, colour, value and tooltip are stored in Qt's own items when the values change, so the table
    paints without calling back into Python (each such call would take the interpreter from the training thread).
    """

    def __init__(self) -> None:
        super().__init__(0, 0)
        self.columns: tuple[tuple[str, str], ...] = ()
        self._values = np.zeros((0, 0))
        self._step = 0
        self._tips_for: tuple[int, int] | None = None  # the shape the cells' tooltips were written for
        self._carriers: dict[int, str] = {}  # unit -> what the carry finder says about it
        self._top_gradient: list[int] = []
        self._bold = QFont()
        self._bold.setBold(True)
        self._set_columns(LSTM_COLUMNS)

    @property
    def gradient_column(self) -> int:
        return len(self.columns) - 1

    def set_values(self, values: np.ndarray, step: int, top_gradient: list[int], gated: bool = True) -> None:
        """values (H, columns) at step `step`; the rows of top_gradient are marked."""
        columns = LSTM_COLUMNS if gated else RNN_COLUMNS
        if columns != self.columns:
            self._set_columns(columns)
        values = np.array(values, dtype=np.float64)
        if values.shape[0] != self._values.shape[0] or values.shape[1] != len(columns):
            self._resize(values.shape[0])
        self._values = values
        self._top_gradient = list(top_gradient)
        gradients = np.abs(values[:, self.gradient_column])
        gradient_scale = float(gradients.max()) if gradients.size and gradients.max() > 0 else 1.0
        new_step = step != self._step or self._tips_for != values.shape
        self._step = step
        self.blockSignals(True)  # one dataChanged for the whole table instead of one per cell and role
        try:
            for unit, row in enumerate(values.tolist()):
                for column, value in enumerate(row):
                    item = self.item(unit, column)
                    item.setData(self._text(column, value), Qt.ItemDataRole.DisplayRole)
                    item.setData(self._background(column, value, gradient_scale), Qt.ItemDataRole.BackgroundRole)
                    item.setData(value, Qt.ItemDataRole.UserRole)
                    if new_step:  # (what a cell is changes with the step, not with every new weight)
                        name, meaning = self.columns[column]
                        item.setData(f"unit {unit}, step {step}: {name}\n{meaning}", Qt.ItemDataRole.ToolTipRole)
            if new_step:
                self._tips_for = values.shape
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
        self._values = np.zeros((0, len(self.columns)))
        self.setRowCount(0)

    def value(self, unit: int, column: int) -> float:
        return float(self._values[unit, column])

    def _set_columns(self, columns: tuple[tuple[str, str], ...]) -> None:
        self.columns = columns
        self.setRowCount(0)
        self.setColumnCount(len(columns))
        for column, (name, _meaning) in enumerate(columns):
            self.setHorizontalHeaderItem(column, QStandardItem(name))
        self._values = np.zeros((0, len(columns)))
        self._update_column_headers()

    def _resize(self, rows: int) -> None:
        self._tips_for = None
        self.setRowCount(0)
        self.setRowCount(rows)
        for unit in range(rows):
            for column in range(len(self.columns)):
                item = QStandardItem()
                item.setEditable(False)
                item.setData(_ALIGN_RIGHT, Qt.ItemDataRole.TextAlignmentRole)
                self.setItem(unit, column, item)
            self.setVerticalHeaderItem(unit, QStandardItem(str(unit)))

    def _update_column_headers(self) -> None:
        for column, (_name, meaning) in enumerate(self.columns):
            self.horizontalHeaderItem(column).setToolTip(f"{meaning} (at step {self._step})")

    def _update_row_headers(self) -> None:
        for unit in range(self.rowCount()):
            header = self.verticalHeaderItem(unit)
            carrier, top = unit in self._carriers, unit in self._top_gradient
            header.setText(f"{unit}" + (" ◆" if carrier else "") + (" ∇" if top else ""))
            lines = [f"unit {unit}"]
            if carrier:
                lines.append(f"carry finder: {self._carriers[unit]}")
            if top:
                lines.append(f"∇: one of the {len(self._top_gradient)} units with the largest gradient at this step")
            header.setToolTip("\n".join(lines))
            header.setData(self._bold if carrier else None, Qt.ItemDataRole.FontRole)

    def _text(self, column: int, value: float) -> str:
        if column == self.gradient_column:
            return f"{value:+.1e}".replace("e-0", "e-").replace("e+0", "e+")  # +3.6e-3: narrower column
        sigmoid = self.columns is LSTM_COLUMNS and column in LSTM_SIGMOID_COLUMNS
        return f"{value:.2f}" if sigmoid else f"{value:+.2f}"

    def _background(self, column: int, value: float, gradient_scale: float) -> QColor:
        if self.columns is LSTM_COLUMNS and column in LSTM_SIGMOID_COLUMNS:
            return QColor(40, 140, 90, int(170 * min(max(value, 0.0), 1.0)))
        if column == self.gradient_column:
            return QColor(150, 60, 200, int(170 * min(abs(value) / gradient_scale, 1.0)))
        strength = int(170 * min(abs(value), 1.0))  # g, c, h: orange positive, blue negative
        return QColor(230, 120, 30, strength) if value >= 0 else QColor(40, 110, 220, strength)


class UnitTable(QGroupBox):
    """The table, its legend, and a title naming the step."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Every unit at step 3", parent)
        self.setToolTip("Gates, cell and hidden state and loss gradient of every unit at the current step. Hover a "
                        "header or a number for what it is.")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        self.model = UnitTableModel()
        self.table = QTableView()
        self.table.setModel(self.model)
        self.table.setFocusPolicy(Qt.FocusPolicy.NoFocus)  # arrow keys step bits, not table cells
        self.table.setSelectionMode(QTableView.SelectionMode.NoSelection)
        # Columns are sized to their contents once per model size, not on every update: ResizeToContents asks
        # every cell for its size hint on each change (~30 ms of the GUI thread per update).
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        self.table.horizontalHeader().setMinimumSectionSize(20)
        self.table.verticalHeader().setDefaultSectionSize(ROW_HEIGHT)
        self.table.verticalHeader().setToolTip("Unit number; ◆ = the carry finder's carry unit, ∇ = most gradient "
                                               "at this step")
        self.table.setToolTip(self.toolTip())
        small = self.table.font()
        small.setPointSizeF(small.pointSizeF() * 0.9)
        self.table.setFont(small)
        self._sized: tuple[int, int] = (-1, -1)
        layout.addWidget(self.table, 1)
        self.legend = QLabel()
        self.legend.setWordWrap(True)
        self.legend.setToolTip("How the table is coloured")
        self.legend.setFont(small)
        layout.addWidget(self.legend)

    def show_step(self, focus: FocusTrace, step: int) -> None:
        trace = focus.trace
        self.setTitle(f"Every unit at step {step}")
        top = [int(u) for u in focus.top_units[step]]
        self.model.set_values(unit_values(focus, step), step, top, gated=trace.gated)
        shape = (self.model.rowCount(), self.model.columnCount())
        if shape != self._sized:
            self._sized = shape
            self.table.resizeColumnsToContents()
            self.legend.setText(
                "rows: units · green: gate open (1) … shut (0) · orange +, blue −: g, c, h · purple: |∂L/∂c| · "
                "◆ carry unit · ∇ most gradient" if trace.gated else
                "rows: units · orange +, blue −: h · purple: |∂L/∂h| · ◆ carry unit · ∇ most gradient")
