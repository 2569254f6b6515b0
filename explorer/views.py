"""Views: what a view is (the View protocol), what it may use (ViewContext), and the frame the window puts around
each one in the tab area (TabHost: scrolling, and "computing…" until its first result for the current weights).

A view is one module with a function `view(context) -> View`; the main window lists those functions (TAB_VIEWS) and
lays the views out. Views never reach into the window: they draw snapshots, and change things through the
controller in their context.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFrame, QGridLayout, QLabel, QScrollArea, QWidget

from explorer.analyses import Analysis
from explorer.controller import Controller, Focus
from explorer.snapshot import Snapshot


class View(Protocol):
    """A view in the tab area."""

    title: str
    tooltip: str
    widget: QWidget
    analyses: Sequence[Analysis]  # what it needs computed on the current weights (while it is on screen)
    cover: bool  # covered by "computing…" until its analyses have results (False: it says so itself)

    def update_from(self, snapshot: Snapshot) -> None:
        """Draw the snapshot: only copy numbers into widgets (no model math)."""

    def focus_changed(self, focus: Focus) -> None:
        """The focus (addition, step) changed; views of one addition mark the step at once."""

    def shutdown(self) -> None:
        """The window closes: stop whatever the view runs by itself."""


STEP_THROUGH = "Step through"  # the title of the view that walks through the focus addition


@dataclass
class ViewContext:
    """What a view may use."""

    controller: Controller
    status: Callable[[str, int], None]  # a message in the status bar for so many milliseconds
    show_view: Callable[[str], bool]  # bring the view with this title to the front
    load_trainer: Callable[[object], None]  # continue from another Trainer (a run opened from elsewhere)

    def look_at(self, a: int, b: int) -> None:
        """Make a + b the focus and show it step by step."""
        if self.controller.set_focus(a, b):
            self.show_view(STEP_THROUGH)
            self.status(f"{a} + {b}: shown step by step, and in the heatmaps", 4000)


@dataclass
class TabView:
    """A View made of a widget with update_from(snapshot), plus what the window needs to know about it."""

    title: str
    widget: QWidget
    tooltip: str = ""
    analyses: Sequence[Analysis] = ()
    cover: bool = True
    on_focus: Callable[[Focus], None] | None = None
    on_shutdown: Callable[[], None] | None = None
    extra: dict = field(default_factory=dict)  # named parts, for tests and for other views

    def update_from(self, snapshot: Snapshot) -> None:
        self.widget.update_from(snapshot)

    def focus_changed(self, focus: Focus) -> None:
        if self.on_focus is not None:
            self.on_focus(focus)

    def shutdown(self) -> None:
        if self.on_shutdown is not None:
            self.on_shutdown()


COVER_STYLE = "QLabel#computingCover { background: rgba(255, 255, 255, 225); color: #333; font-size: 13pt; }"


class TabHost(QWidget):
    """A view in the tab area: scrolls when taller than the area, and is covered by "computing…" while any of its
    analyses has no result for the weights on screen yet (never stale numbers shown as current)."""

    def __init__(self, view: View, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.view = view
        # (an on-request check has its own "checking…"; a view that is more than its analyses says it itself)
        self.names = frozenset(analysis.name for analysis in view.analyses if not analysis.on_request) \
            if view.cover else frozenset()
        self.shown_serial = 0  # visibility serial when this view last came on screen
        self.scroll = QScrollArea()
        self.scroll.setWidget(view.widget)
        self.scroll.setWidgetResizable(True)
        self.scroll.setFrameShape(QFrame.Shape.NoFrame)
        self.cover = QLabel("computing…")
        self.cover.setObjectName("computingCover")
        self.cover.setStyleSheet(COVER_STYLE)
        self.cover.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.cover.setToolTip("This view's numbers are being computed for the current weights (in the training "
                              "thread); they appear in a moment.")
        self.cover.hide()
        layout = QGridLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.scroll, 0, 0)
        layout.addWidget(self.cover, 0, 0)

    def computing(self, snapshot: Snapshot) -> bool:
        """Whether the snapshot lacks a current result of this view's analyses."""
        if not self.names:
            return False
        if snapshot.visibility_serial < self.shown_serial:
            return True  # the worker has not heard yet that this view is on screen
        return bool(self.names & snapshot.pending) or not self.names <= set(snapshot.analyses)

    def draw(self, snapshot: Snapshot) -> None:
        computing = self.computing(snapshot)
        if computing:
            weights_of = snapshot.viewing if snapshot.viewing >= 0 else snapshot.samples_seen  # (the scrubber's)
            samples = f" for the weights after {weights_of:,} samples" if weights_of else ""
            self.cover.setText(f"computing…{samples}")
        if self.cover.isVisible() != computing:
            self.cover.setVisible(computing)
            if computing:
                self.cover.raise_()
        if not computing or self.names <= set(snapshot.analyses):
            self.view.update_from(snapshot)
