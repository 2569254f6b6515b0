"""The code beside the numbers: the model's reference forward and backward (core/lstm.py, or core/rnn.py for the
RNN) as source, with the focus addition's values at the focus step written beside each line, for one unit or for
every unit. One line is the one being explained: it is highlighted, and the step-through's step follows it as it
moves (forward over the steps, then backward over them in reverse, as the code runs).

The recording (core.codeview) is made in the training thread from the same weights and addition as the focus trace
the other views draw (snapshot.code); this only writes its numbers into the table.
"""

from __future__ import annotations

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QBrush, QColor, QFont, QHideEvent, QResizeEvent, QShowEvent
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QSizePolicy,
    QSpinBox,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from core import codeview
from core.codeview import CodeTrace, Listing
from explorer.controller import Focus
from explorer.panels import make_title
from explorer.snapshot import Snapshot
from explorer.views import TabView, ViewContext

TITLE = "Code"
TOOLTIP = ("The reference code of the model, forward and backward, with the numbers of the addition in the step-"
           "through written beside each line, at its step")
PLAY_INTERVAL_MS = 450  # one line per this many milliseconds while playing
CURRENT_BACKGROUND = QColor("#ffe08a")
STEP_BACKGROUND = QColor("#f3f6fb")  # the lines that run at the step shown
HEADER_BACKGROUND = QColor("#e5e7eb")
VALUE_COLOR = QColor("#1d4ed8")
LATER_COLOR = QColor("#9ca3af")  # values of lines that run after the highlighted one
NOT_RUN = "(not run)"
COLUMNS = ("line", "code", "at this step")


def monospace() -> QFont:
    font = QFont("monospace")
    font.setStyleHint(QFont.StyleHint.Monospace)
    return font


class CodePanel(QWidget):
    """Draws snapshot.code at the focus step; asks for step changes (sigStep) as the highlighted line moves."""

    sigStep = Signal(int)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.code: CodeTrace | None = None
        self.step = 3
        self.cursor = -1  # the executed statement highlighted (its position in code.executed)
        self.rows: dict[tuple[str, int], int] = {}  # (function, line in listing) -> table row
        self._listings: tuple[Listing, ...] = ()
        self._drawn: tuple | None = None
        self._current_rows: set[int] = set()
        self._scrolled: tuple[int, int, int] | None = None  # (row, table height, scroll range) last scrolled to
        self.on_visible = lambda _on: None  # set by view(): tells the controller whether recordings are wanted

        self.heading = QLabel("Reference code")
        make_title(self.heading)
        self.where = QLabel()
        self.where.setTextFormat(Qt.TextFormat.PlainText)
        self.where.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.unit = QSpinBox()
        self.unit.setPrefix("unit ")
        self.unit.setRange(0, 15)
        self.unit.setToolTip("The unit whose numbers are written beside the lines (gate lines show its i, f, g, o)")
        self.unit.valueChanged.connect(self._redraw)
        self.every = QCheckBox("every unit")
        self.every.setToolTip("Write every unit's number as a vector instead of one unit's")
        self.every.toggled.connect(self._on_every)
        self.prev_button = QPushButton("◀ line")
        self.prev_button.setToolTip("The line that ran before the highlighted one")
        self.prev_button.clicked.connect(lambda: self.move(-1))
        self.next_button = QPushButton("line ▶")
        self.next_button.setToolTip("The line that ran after the highlighted one: forward over the steps, then the "
                                    "backward pass over them in reverse")
        self.next_button.clicked.connect(lambda: self.move(1))
        self.play_button = QPushButton("▶ Play lines")
        self.play_button.setCheckable(True)
        self.play_button.setToolTip(f"Walk through the lines as they run, one every {PLAY_INTERVAL_MS} ms")
        self.play_button.toggled.connect(self._on_play)
        self.backward_button = QPushButton("Backward pass")
        self.backward_button.setToolTip("Jump to the backward pass at this step (or back to the forward pass)")
        self.backward_button.clicked.connect(self._toggle_pass)
        self._timer = QTimer(self, interval=PLAY_INTERVAL_MS)
        self._timer.timeout.connect(self._play_tick)

        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.verticalHeader().hide()
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
        self.table.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.table.setWordWrap(False)
        self.table.setShowGrid(False)
        self.table.setFont(monospace())
        self.table.verticalHeader().setDefaultSectionSize(self.table.fontMetrics().height() + 2)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.Interactive)
        header.setSectionResizeMode(2, QHeaderView.ResizeMode.Stretch)
        self._code_width = self.table.fontMetrics().horizontalAdvance("x" * 84)  # the longest line, once built
        self.table.cellClicked.connect(self._on_clicked)
        self.explained = QLabel()
        self.explained.setTextFormat(Qt.TextFormat.PlainText)
        self.explained.setFont(monospace())
        self.explained.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.explained.setToolTip("The highlighted line, at the step shown, with every value it assigned")

        bar = QHBoxLayout()
        bar.setContentsMargins(0, 0, 0, 0)
        bar.addWidget(self.heading)
        bar.addSpacing(8)
        for widget in (self.unit, self.every, self.prev_button, self.next_button, self.play_button,
                       self.backward_button):
            bar.addWidget(widget)
        bar.addSpacing(8)
        bar.addWidget(self.where, 1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.setSpacing(3)
        layout.addLayout(bar)
        layout.addWidget(self.table, 1)
        layout.addWidget(self.explained)
        self._show_waiting()

    # ---- what is drawn ----------------------------------------------------------------------------------------
    def update_from(self, snapshot: Snapshot) -> None:
        code = snapshot.code
        if code is None:
            self._show_waiting()
            return
        if code is not self.code:
            previous = self._current()
            self.code = code
            self.unit.setMaximum(code.hidden_size - 1)
            if code.listings != self._listings:
                self._build(code)
            self.step = min(self.step, code.n_bits - 1)
            self.cursor = self._find(previous) if previous is not None else -1
            if self.cursor < 0 or self.code.executed[self.cursor].step not in (None, self.step):
                self.cursor = self._first_of_step("forward")
        self._redraw()
        self._scroll_to_current()  # (the table may have been laid out since)

    def focus_changed(self, focus: Focus) -> None:
        """The step-through moved to another step: the highlight goes to that step's first line (in the same pass)."""
        if focus.step == self.step:
            return
        self.step = focus.step
        if self.code is not None:
            current = self._current()
            function = current[0] if current is not None else "forward"
            self.cursor = self._first_of_step(function)
        self._redraw()

    def _show_waiting(self) -> None:
        if self.code is None:
            self.where.setText("recording the addition through the code…")

    def _build(self, code: CodeTrace) -> None:
        """One row per source line of forward and backward, under a heading row each."""
        self._listings = code.listings
        self.rows = {}
        rows: list[tuple[str, str, str, int | None]] = []  # (kind, line number, text, listing line)
        for listing in code.listings:
            path = listing.module.replace(".", "/") + ".py"
            rows.append(("heading", "", f"{listing.function}() — {path}, line {listing.first_line}", None))
            for number, text in enumerate(listing.lines, 1):
                self.rows[(listing.function, number)] = len(rows)
                rows.append(("code", str(listing.first_line + number - 1), text, number))
        self.table.setRowCount(len(rows))
        metrics = self.table.fontMetrics()
        self._code_width = max(metrics.horizontalAdvance(text) for _, _, text, _ in rows) + 16
        self._fit_columns()
        heading_font = monospace()
        heading_font.setBold(True)
        docstrings = {self.rows[(listing.function, line)] for listing in code.listings
                      for line in codeview.docstring_lines(listing)}
        for row, (kind, number, text, _) in enumerate(rows):
            self.table.setRowHidden(row, row in docstrings)  # (the docstrings are in the file; here, the code)
            number_item, code_item, value_item = QTableWidgetItem(number), QTableWidgetItem(text), QTableWidgetItem()
            number_item.setForeground(QBrush(LATER_COLOR))
            number_item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            code_item.setToolTip(text.strip())
            if kind == "heading":
                for item in (number_item, code_item, value_item):
                    item.setBackground(QBrush(HEADER_BACKGROUND))
                    item.setFont(heading_font)
            for column, item in enumerate((number_item, code_item, value_item)):
                self.table.setItem(row, column, item)
        self._drawn = None

    def _redraw(self) -> None:
        code = self.code
        if code is None:
            return
        unit = None if self.every.isChecked() else min(self.unit.value(), code.hidden_size - 1)
        key = (id(code), self.step, unit, self.cursor)
        if key == self._drawn:
            return
        self._drawn = key
        step = self.step
        self.table.horizontalHeaderItem(2).setText(f"at step {step}" + ("" if unit is None else f", unit {unit}"))
        weights = f"weights of sample {code.samples_seen:,}" if code.samples_seen >= 0 else "these weights"
        self.where.setText(f"{code.a} + {code.b}, step {step} (bit {step}) · {weights} · "
                           + ("every unit" if unit is None else f"unit {unit}") + " · grey: runs after the highlight")
        highlighted = self.code.executed[self.cursor] if 0 <= self.cursor < len(code.executed) else None
        for listing in code.listings:
            for statement in listing.statements:
                row = self.rows[(listing.function, statement.line)]
                found = code.at(listing.function, statement.line, step)
                item = self.table.item(row, 2)
                if found is None:
                    text, color = (NOT_RUN if statement.targets or statement.returns else ""), LATER_COLOR
                else:
                    position, executed = found
                    text = codeview.annotation(executed, statement, step, code.hidden_size, code.n_bits, unit)
                    color = LATER_COLOR if position > self.cursor else VALUE_COLOR
                if item.text() != text:
                    item.setText(text)
                    item.setToolTip(text)
                item.setForeground(QBrush(color))
        current_rows = set()
        if highlighted is not None:
            listing = code.listing(highlighted.function)
            statement = listing.by_line[highlighted.line]
            current_rows = {self.rows[(listing.function, line)] for line in range(statement.line, statement.end + 1)}
        step_rows = {self.rows[(e.function, e.line)] for e in code.executed if e.step == step}
        for row in range(self.table.rowCount()):
            if self.table.item(row, 0).text() == "":
                continue  # a heading row
            background = CURRENT_BACKGROUND if row in current_rows else STEP_BACKGROUND if row in step_rows else None
            for column in range(len(COLUMNS)):
                self.table.item(row, column).setBackground(QBrush(background) if background else QBrush())
        self._current_rows = current_rows
        self._scroll_to_current()
        self._explain(highlighted, unit)
        in_backward = highlighted is not None and highlighted.function == "backward"
        self.backward_button.setText("Forward pass" if in_backward else "Backward pass")
        self.prev_button.setEnabled(self.cursor > 0)
        self.next_button.setEnabled(self.cursor < len(code.executed) - 1)

    def _fit_columns(self) -> None:
        """The code as wide as its longest line, up to 60 % of the table (the rest for the numbers)."""
        self.table.setColumnWidth(1, min(self._code_width, int(0.6 * self.table.viewport().width())))

    def _scroll_to_current(self) -> None:
        """The highlighted line in the middle of the table (again when the table's height changed)."""
        key = (min(self._current_rows, default=-1), self.table.viewport().height(),
               self.table.verticalScrollBar().maximum())
        if self._current_rows and key != self._scrolled:
            self._scrolled = key
            self.table.scrollToItem(self.table.item(key[0], 1), QAbstractItemView.ScrollHint.PositionAtCenter)

    def _explain(self, executed: codeview.Executed | None, unit: int | None) -> None:
        if executed is None or self.code is None:
            self.explained.setText("")
            return
        listing = self.code.listing(executed.function)
        statement = listing.by_line[executed.line]
        text = listing.lines[statement.line - 1].strip()
        where = f"{executed.function}, step {executed.step}" if executed.step is not None else executed.function
        value = codeview.annotation(executed, statement, self.step, self.code.hidden_size, self.code.n_bits, unit)
        self.explained.setText(f"▶ {where}: {text}" + (f"   →   {value}" if value else ""))

    # ---- the highlighted line -----------------------------------------------------------------------------------
    def _current(self) -> tuple[str, int, int | None] | None:
        if self.code is None or not 0 <= self.cursor < len(self.code.executed):
            return None
        executed = self.code.executed[self.cursor]
        return executed.function, executed.line, executed.step

    def _find(self, where: tuple[str, int, int | None]) -> int:
        return self.code.index.get(where, -1) if self.code is not None else -1

    def _first_of_step(self, function: str) -> int:
        if self.code is None:
            return -1
        found = self.code.first_of_step(function, self.step)
        return found if found is not None else 0

    def move(self, delta: int) -> None:
        """Highlight the line that ran `delta` statements later (earlier, when negative); the step follows it."""
        if self.code is None:
            return
        self.cursor = max(0, min(len(self.code.executed) - 1, self.cursor + delta))
        step = self.code.executed[self.cursor].step
        if step is not None and step != self.step:
            self.step = step
            self.sigStep.emit(step)
        self._redraw()

    def _toggle_pass(self) -> None:
        current = self._current()
        function = "forward" if current is not None and current[0] == "backward" else "backward"
        self.cursor = self._first_of_step(function)
        self._redraw()

    def _on_clicked(self, row: int, _column: int) -> None:
        """A click on a line that ran at this step highlights it."""
        if self.code is None:
            return
        for (function, line), at in self.rows.items():
            if at == row:
                statement = self.code.listing(function).by_line.get(line)
                found = self.code.at(function, statement.line, self.step) if statement is not None else None
                if found is not None:
                    self.cursor = found[0]
                    self._redraw()
                return

    def _on_every(self, on: bool) -> None:
        self.unit.setEnabled(not on)
        self._redraw()

    def _on_play(self, on: bool) -> None:
        self.play_button.setText("Pause" if on else "▶ Play lines")
        if on:
            self._timer.start()
        else:
            self._timer.stop()

    def _play_tick(self) -> None:
        if self.code is None or self.cursor >= len(self.code.executed) - 1:
            self.play_button.setChecked(False)
        else:
            self.move(1)

    # ---- on screen or not -----------------------------------------------------------------------------------------
    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        self.on_visible(True)
        QTimer.singleShot(0, self, self._scroll_to_current)

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        self._fit_columns()
        QTimer.singleShot(0, self, self._scroll_to_current)

    def hideEvent(self, event: QHideEvent) -> None:
        self.play_button.setChecked(False)
        self.on_visible(False)
        super().hideEvent(event)


def view(context: ViewContext) -> TabView:
    panel = CodePanel()
    controller = context.controller
    panel.on_visible = controller.want_code
    panel.sigStep.connect(controller.set_step)
    return TabView(TITLE, panel, TOOLTIP, cover=False, on_focus=panel.focus_changed,
                   extra={"ready": lambda snapshot: snapshot.code is not None})
