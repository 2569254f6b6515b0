"""The story of the run: every event (core.story's and the trainer's own: first sum right, half and 90 % of sums
right, a unit becoming the carry, solved, no longer solved, diverged and rolled back, each setting changed) as a
sentence beside its sample, oldest first. A click shows every view at the weights of that point (the scrubber's)."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QBrush, QColor, QFont
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHeaderView,
    QLabel,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from core import story
from explorer.panels import make_title
from explorer.snapshot import Snapshot
from explorer.views import TabView, ViewContext

TITLE = "Story"
TOOLTIP = "What happened in this run, in order; click an event to see the weights at that point in every view"
KIND_COLORS = {"progress": "#2e7d32", "carry": "#7b1fa2", "solved": "#1565c0", "unsolved": "#b45f06",
               "diverged": "#c62828", "setting": "#555555"}
KIND_NAMES = {"progress": "progress", "carry": "carry", "solved": "solved", "unsolved": "unsolved",
              "diverged": "diverged", "setting": "setting"}
VIEWED_BACKGROUND = QColor("#fde7c8")


class StoryPanel(QWidget):
    """The events as a table: sample, kind, what happened. Draws snapshot.events; asks for a point by sigViewAt."""

    sigViewAt = Signal(object)  # int samples

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.events: tuple[tuple[int, str], ...] = ()
        self.viewing = -1
        self.heading = QLabel("What happened in this run")
        make_title(self.heading)
        self.note = QLabel("Click an event to see the weights at that point in every view (the scrubber under the "
                           "curves does the same); “Back to now” returns.")
        self.note.setWordWrap(True)
        self.table = QTableWidget(0, 3)
        self.table.setHorizontalHeaderLabels(["sample", "kind", "what happened"])
        self.table.verticalHeader().hide()
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setWordWrap(False)
        self.table.setTextElideMode(Qt.TextElideMode.ElideRight)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(2, QHeaderView.ResizeMode.Stretch)
        self.table.verticalHeader().setDefaultSectionSize(self.fontMetrics().height() + 6)
        self.table.cellClicked.connect(self._on_clicked)
        self.empty = QLabel("Nothing has happened yet: press Play (Space) to train.")
        self.empty.setStyleSheet("color: #666;")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 4, 6, 4)
        layout.addWidget(self.heading)
        layout.addWidget(self.note)
        layout.addWidget(self.empty)
        layout.addWidget(self.table, 1)

    def update_from(self, snapshot: Snapshot) -> None:
        if snapshot.events != self.events:
            self.events = snapshot.events
            self._fill()
        if snapshot.viewing != self.viewing:
            self.viewing = snapshot.viewing
            self._mark_viewed()

    def _fill(self) -> None:
        self.table.setRowCount(len(self.events))
        bold = QFont(self.font())
        bold.setBold(True)
        for row, (samples, text) in enumerate(self.events):
            kind = story.kind(text)
            color = QBrush(QColor(KIND_COLORS[kind]))
            cells = (f"{samples:,}", f"● {KIND_NAMES[kind]}", story.sentence(text))
            for column, value in enumerate(cells):
                item = QTableWidgetItem(value)
                item.setToolTip(f"At sample {samples:,}: {text}. Click to see the weights at this point.")
                if column == 0:
                    item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                if column == 1:
                    item.setForeground(color)
                if kind in ("solved", "carry") and column == 2:
                    item.setFont(bold)
                self.table.setItem(row, column, item)
        self.empty.setVisible(not self.events)
        self.table.setVisible(bool(self.events))
        self._mark_viewed()
        if self.events:
            self.table.scrollToBottom()

    def _mark_viewed(self) -> None:
        """The events at the point being viewed are tinted."""
        for row, (samples, _) in enumerate(self.events):
            tint = QBrush(VIEWED_BACKGROUND) if samples == self.viewing else QBrush()
            for column in range(3):
                item = self.table.item(row, column)
                if item is not None:
                    item.setBackground(tint)

    def _on_clicked(self, row: int, _column: int) -> None:
        if 0 <= row < len(self.events):
            self.sigViewAt.emit(int(self.events[row][0]))


def view(context: ViewContext) -> TabView:
    panel = StoryPanel()
    panel.sigViewAt.connect(context.controller.view_at)
    return TabView(TITLE, panel, TOOLTIP, cover=False)
