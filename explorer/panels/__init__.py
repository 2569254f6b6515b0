"""One module per view. Each panel is a QWidget with update_from(snapshot), which only copies numbers into
existing plot items (no heavy math while painting)."""

from __future__ import annotations

import time

import pyqtgraph as pg
from PySide6.QtGui import QPaintEvent, QResizeEvent
from PySide6.QtWidgets import QGraphicsItem, QLabel, QSizePolicy, QWidget

BIT_AXIS_LABEL = "bit position (LSB → MSB)"

_configured = False


def configure_pyqtgraph() -> None:
    """Light plots with dark text, matching the rest of the window; once per process."""
    global _configured
    if not _configured:
        pg.setConfigOptions(background="w", foreground="k", antialias=False, imageAxisOrder="row-major")
        _configured = True


class _PaintClock:
    """GUI-thread time spent painting plots. A plot's items are drawn by Python, which holds the interpreter the
    training thread needs, so the window counts this time as drawing when it paces its frames."""

    seconds = 0.0


def painting_seconds() -> float:
    """Thread time spent in paint events of the plots made with the classes below, since the start."""
    return _PaintClock.seconds


class _TimedPaint:
    def paintEvent(self, event: QPaintEvent) -> None:
        started = time.thread_time()
        try:
            super().paintEvent(event)  # type: ignore[misc]
        finally:
            _PaintClock.seconds += time.thread_time() - started


class GraphicsLayoutWidget(_TimedPaint, pg.GraphicsLayoutWidget):
    """pg.GraphicsLayoutWidget whose painting time is counted (see painting_seconds)."""


class PlotWidget(_TimedPaint, pg.PlotWidget):
    """pg.PlotWidget whose painting time is counted (see painting_seconds)."""


class SteadyLabel(QWidget):
    """A label for text that changes every frame. A plain QLabel asks its parent to lay out again on each new
    text (a panel full of plots then resizes them all); this one has a fixed size inside a holder, so it never
    does. The holder is `lines` lines of text high (any height, with lines=None) and takes any width."""

    def __init__(self, text: str = "", lines: int | None = 1, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.label = QLabel(text, self)
        if lines is None:
            self.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Ignored)
        else:
            self.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Fixed)
            self.setFixedHeight(self.label.fontMetrics().lineSpacing() * lines + 6)

    def setText(self, text: str) -> None:
        if text != self.label.text():
            self.label.setText(text)

    def text(self) -> str:
        return self.label.text()

    def resizeEvent(self, event: QResizeEvent) -> None:
        self.label.setFixedSize(event.size())
        super().resizeEvent(event)


def outward_ticks(plot: pg.PlotItem) -> None:
    """Ticks outside the plot area, and axes and title kept as cached pixmaps. pyqtgraph's default inward
    ticks make each axis overlap the data, so every data update repaints the axes too (in Python), which
    costs more than the data itself; a cached axis is redrawn only when it changes."""
    for name in ("left", "bottom", "right", "top"):
        axis = plot.getAxis(name)
        axis.setStyle(tickLength=4)
        axis.setCacheMode(QGraphicsItem.CacheMode.DeviceCoordinateCache)
    plot.titleLabel.setCacheMode(QGraphicsItem.CacheMode.DeviceCoordinateCache)


def unclipped(plot: pg.PlotItem) -> None:
    """Let the plot's view stop clipping its items, for plots whose items all lie inside the range shown. A
    clipping view is asked for its bounds (in Python) whenever an item in it changes, apart from painting, and
    each such call has to take the interpreter from the training thread."""
    plot.getViewBox().setFlag(QGraphicsItem.GraphicsItemFlag.ItemClipsChildrenToShape, False)


def panel_title(text: str, parent: QWidget | None = None) -> QLabel:
    """A bold heading for a panel."""
    label = QLabel(text, parent)
    make_title(label)
    return label


def make_title(label: QLabel) -> None:
    label.setObjectName("panelTitle")
    font = label.font()
    font.setBold(True)
    font.setPointSizeF(font.pointSizeF() * 1.1)
    label.setFont(font)


def bit_ticks(n_bits: int, max_labels: int = 16) -> list[list[tuple[float, str]]]:
    """Ticks 0..T-1 for a bit-position axis, every k-th labelled when there are many."""
    every = max(1, -(-n_bits // max_labels))
    return [[(float(t), str(t)) for t in range(0, n_bits, every)], []]


def unit_tick_spacing(hidden_size: int) -> tuple[float, float]:
    """(major, minor) tick spacing for a unit axis: whole units, at most ~4 labels (the rows are short)."""
    for step in (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000):
        if hidden_size / step <= 4:
            return float(step), float(step)
    return 2000.0, 2000.0
