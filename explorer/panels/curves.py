"""Training curves: loss per addition and average bit error, and held-out exact-sum accuracy, against samples seen;
a marker at every event (a setting changed, solved, no longer solved, diverged)."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QCheckBox, QHBoxLayout, QLabel, QSizePolicy, QSlider, QVBoxLayout, QWidget

from core import story
from explorer.panels import GraphicsLayoutWidget, configure_pyqtgraph, outward_ticks, panel_title
from explorer.snapshot import Snapshot

LOSS_COLOR = "#1f77b4"
BIT_ERROR_COLOR = "#ff7f0e"
ACCURACY_COLOR = "#2ca02c"
EVENT_COLOR = (110, 110, 110)
DIVERGED_COLOR = (214, 39, 40)
SOLVED_COLOR = (44, 160, 44)
UNSOLVED_COLOR = (230, 120, 0)
PROGRESS_COLOR = (46, 125, 50)  # the story's events (core.story): sums right, a carry unit
CARRY_COLOR = (123, 31, 162)
LOG_FLOOR = 1e-6  # log-y cannot show zero; values are drawn no lower than this
SOLVED_STYLE = "color: #1b5e20; font-weight: bold;"
UNSOLVED_STYLE = "color: #b45f06; font-weight: bold;"


def solved_text(solved_at: tuple[int, float]) -> str:
    samples, seconds = solved_at
    return f"solved after {samples:,} samples in {seconds:.1f} s of training"


def solved_short(solved_at: tuple[int, float]) -> str:
    samples, seconds = solved_at
    return f"solved at {samples:,} ({seconds:.1f} s)"


def nice_ceiling(value: float) -> float:
    """The smallest of 1, 2, 2.5, 5 times a power of ten that is at least value (> 0)."""
    exponent = np.floor(np.log10(value))
    for step in (1.0, 2.0, 2.5, 5.0, 10.0):
        if step * 10**exponent >= value:
            return float(step * 10**exponent)
    return float(10 ** (exponent + 1))


def moving_average(values: np.ndarray, window: int) -> np.ndarray:
    """Trailing mean over up to `window` points (fewer at the start), same length as values."""
    if window <= 1 or len(values) < 2:
        return values
    sums = np.cumsum(np.concatenate(([0.0], values)))
    ends = np.arange(1, len(values) + 1)
    starts = np.maximum(0, ends - window)
    return (sums[ends] - sums[starts]) / (ends - starts)


class CurvesPanel(QWidget):
    """Three linked plots: loss per addition, average bit error, exact-sum accuracy in %; markers at each event."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        configure_pyqtgraph()
        self._history = np.zeros((0, 4))
        self._history_key: tuple = ()
        self._events_drawn: list[tuple[int, str]] = []
        self._event_lines: list[tuple[pg.PlotItem, pg.InfiniteLine]] = []
        # The view follows the run in steps (so axes are not regenerated every frame) until the user pans or
        # zooms; the A button in a plot's corner resumes following.
        self._follow = True
        self._x_limit = 0.0
        self._y_range: tuple[float, float] | None = None
        self.extra_x_extent = 0.0  # samples that other curves drawn here (earlier runs) reach: kept in view too

        self.smoothing = QSlider(Qt.Orientation.Horizontal)
        self.smoothing.setRange(1, 100)
        self.smoothing.setValue(1)
        self.smoothing.setFixedWidth(120)
        self.smoothing.setToolTip("Average each curve over this many recent points (1 = raw)")
        self.smoothing_value = QLabel()
        self.smoothing_value.setMinimumWidth(60)
        self.log_y = QCheckBox("log y")
        self.log_y.setToolTip("Logarithmic scale for the loss and the bit error")
        self.solved_label = QLabel()  # when every sum was first right, and whether they still are
        self.solved_label.setToolTip("Counted by the trainer at its check (every 100 samples) that first found every "
                                     "sum right; the time is time spent training (not evaluating or drawing)")
        self.solved_label.hide()
        self._solved_shown: tuple | None = None
        self.readout = QLabel("Hover to read values.")
        self.readout.setToolTip("Exact (unsmoothed) values at the sample count under the mouse pointer")
        self.readout.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.smoothing.valueChanged.connect(self._on_smoothing)
        self.log_y.toggled.connect(self._on_log_y)

        header = QHBoxLayout()
        header.addWidget(panel_title("Training curves"))
        legend = QLabel(f"<span style='color:{LOSS_COLOR}'>━ loss</span>&nbsp; "
                        f"<span style='color:{BIT_ERROR_COLOR}'>━ bit error</span>&nbsp; "
                        f"<span style='color:{ACCURACY_COLOR}'>━ sums right</span>")
        legend.setToolTip("Loss per addition: binary cross-entropy summed over the sum's bits (what training "
                          "minimises). Bit error: mean |true bit − p| per bit. Sums right: the share of 1,024 fixed "
                          "held-out additions whose whole sum is right.")
        header.addSpacing(8)
        header.addWidget(legend)
        header.addSpacing(12)
        header.addWidget(QLabel("smoothing"))
        header.addWidget(self.smoothing)
        header.addWidget(self.smoothing_value)
        header.addWidget(self.log_y)
        header.addSpacing(12)
        header.addWidget(self.solved_label)
        header.addWidget(self.readout, 1)

        self.view = GraphicsLayoutWidget()
        self.view.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Ignored)
        self.view.setMinimumHeight(120)
        self.loss_plot = self.view.addPlot(row=0, col=0)
        self.error_plot = self.view.addPlot(row=0, col=1)
        self.accuracy_plot = self.view.addPlot(row=0, col=2)
        self.plots = (self.loss_plot, self.error_plot, self.accuracy_plot)
        label_style = {"font-size": "8pt"}  # the plots may be short: their names must still fit beside them
        for plot, name, color in ((self.loss_plot, "loss per addition", LOSS_COLOR),
                                  (self.error_plot, "bit error |y − p|", BIT_ERROR_COLOR),
                                  (self.accuracy_plot, "sums right (%)", ACCURACY_COLOR)):
            plot.setLabel("left", name, color=color, **label_style)
            plot.setLabel("bottom", "samples seen", **label_style)
            plot.getAxis("bottom").enableAutoSIPrefix(False)
            plot.getAxis("left").enableAutoSIPrefix(False)
            outward_ticks(plot)  # and no grid: both would repaint the axes with every new point
            plot.setMenuEnabled(False)
        for plot in (self.error_plot, self.accuracy_plot):
            plot.setXLink(self.loss_plot)
        self.error_plot.setYRange(0, 0.5, padding=0.03)
        self.error_plot.getAxis("left").setTickSpacing(0.25, 0.05)
        self.accuracy_plot.setYRange(0, 100, padding=0.03)
        self.accuracy_plot.getAxis("left").setTickSpacing(50, 10)  # the plots are short: few labels
        for plot in self.plots:
            plot.getViewBox().disableAutoRange()
            plot.getViewBox().sigRangeChangedManually.connect(self._stop_following)
        self.error_plot.getViewBox().setLimits(yMin=-0.05, yMax=1.05)
        self.accuracy_plot.getViewBox().setLimits(yMin=-5, yMax=105)
        self.loss_curve = self.loss_plot.plot(pen=pg.mkPen(LOSS_COLOR, width=2))
        self.bit_error_curve = self.error_plot.plot(pen=pg.mkPen(BIT_ERROR_COLOR, width=2))
        for curve in (self.loss_curve, self.bit_error_curve):
            curve.setClipToView(True)
        self.accuracy_curve = self.accuracy_plot.plot(pen=pg.mkPen(ACCURACY_COLOR, width=2))
        self.crosshairs = []
        for plot in self.plots:
            line = pg.InfiniteLine(angle=90, pen=pg.mkPen((150, 150, 150), style=Qt.PenStyle.DotLine))
            line.hide()
            plot.addItem(line, ignoreBounds=True)
            self.crosshairs.append(line)
        self.view.scene().sigMouseMoved.connect(self._on_mouse_moved)
        self.view.setToolTip("Loss per addition: binary cross-entropy summed over the sum's bits (what training "
                             "minimises). Bit error: mean |true bit − p| per bit.\n"
                             "Drag to pan, wheel to zoom; the A button in a corner fits the view again.")

        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.setSpacing(2)
        layout.addLayout(header)
        layout.addWidget(self.view, 1)
        self._on_smoothing(self.smoothing.value())

    # ---- public API -----------------------------------------------------------------------------------------
    def update_from(self, snapshot: Snapshot) -> None:
        history = snapshot.history
        key = (len(history), tuple(history[-1]) if len(history) else ())
        if key != self._history_key:
            self._history_key = key
            self._history = history
            self._draw_curves()
        if list(snapshot.events) != self._events_drawn:
            self._draw_events(list(snapshot.events))
        solved = (snapshot.solved_at, snapshot.solved_now)
        if solved != self._solved_shown:
            self._solved_shown = solved
            self.solved_label.setVisible(snapshot.solved_at is not None)
            if snapshot.solved_at is not None:
                again = "" if snapshot.solved_now else " · no longer solved"
                self.solved_label.setText(solved_short(snapshot.solved_at) + again)
                self.solved_label.setToolTip(f"Every sum right: {solved_text(snapshot.solved_at)}{again}.\n"
                                             "Counted by the trainer at its check (every 100 samples) that first "
                                             "found every sum right; the time is time spent training.")
                self.solved_label.setStyleSheet(SOLVED_STYLE if snapshot.solved_now else UNSOLVED_STYLE)

    def set_extra_x_extent(self, samples: float) -> None:
        """Keep samples 0 … samples in view as well (curves of earlier runs), and fit the view again."""
        self.extra_x_extent = float(samples)
        self._x_limit = 0.0
        self._draw_curves()

    # ---- drawing --------------------------------------------------------------------------------------------
    def _draw_curves(self) -> None:
        history = self._history
        window = self.smoothing.value()
        samples = history[:, 0]
        loss = moving_average(history[:, 1], window)
        bit_error = moving_average(history[:, 2], window)
        if self.log_y.isChecked():
            loss, bit_error = np.maximum(loss, LOG_FLOOR), np.maximum(bit_error, LOG_FLOOR)
        self.loss_curve.setData(samples, loss)
        self.bit_error_curve.setData(samples, bit_error)
        self.accuracy_curve.setData(samples, 100.0 * history[:, 3])  # accuracy is exact, never smoothed
        self._follow_run(samples, loss, bit_error)

    def _follow_run(self, samples: np.ndarray, loss: np.ndarray, bit_error: np.ndarray) -> None:
        """Keep the whole run in view, with ranges that change in steps."""
        boxes = [plot.getViewBox() for plot in self.plots]
        if any(any(box.autoRangeEnabled()) for box in boxes):  # the user pressed A: follow the run again
            for box in boxes:
                box.disableAutoRange()
            self.accuracy_plot.setYRange(0, 100, padding=0.03)
            self.accuracy_plot.getAxis("left").setTickSpacing(50, 10)
            self._follow, self._x_limit, self._y_range = True, 0.0, None
        if not self._follow or not len(samples):
            return
        last = max(float(samples[-1]), self.extra_x_extent, 1.0)
        if last > self._x_limit or self._x_limit > 4 * last:  # grew past the edge, or a reset started afresh
            self._x_limit = nice_ceiling(1.2 * last)
            self.loss_plot.setXRange(0, self._x_limit, padding=0.01)
        ranges = []
        for values in (loss, bit_error):
            finite = values[np.isfinite(values)]
            if not len(finite):
                return
            if self.log_y.isChecked():  # whole decades; in log mode the view works in log10 units
                low, high = np.floor(np.log10(finite.min())), np.ceil(np.log10(finite.max()))
                ranges.append((float(low), float(max(high, low + 1))))
            else:
                ranges.append((0.0, nice_ceiling(max(float(finite.max()), 1e-3))))
        if ranges != self._y_range:
            self._y_range = ranges
            for plot, y_range in zip((self.loss_plot, self.error_plot), ranges, strict=True):
                plot.setYRange(*y_range, padding=0.02)
                if self.log_y.isChecked():
                    plot.getAxis("left").setTickSpacing()  # automatic: one label per decade fits
                else:  # the plot is short: three labels, 0, half and top
                    plot.getAxis("left").setTickSpacing(y_range[1] / 2, y_range[1] / 10)

    def _stop_following(self) -> None:
        """The user panned or zoomed: leave the view alone, with automatic ticks for any range."""
        self._follow = False
        for plot in self.plots:
            plot.getAxis("left").setTickSpacing()

    def _draw_events(self, events: list[tuple[int, str]]) -> None:
        """Vertical markers with labels; rebuilt only when the list changes (a new event, or a reset)."""
        if events[: len(self._events_drawn)] != self._events_drawn:
            for plot, line in self._event_lines:
                plot.removeItem(line)
            self._event_lines = []
            self._events_drawn = []
        marks = [(samples, text, event_color(text)) for samples, text in events[len(self._events_drawn):]]
        for samples, text, color in marks:
            slot = len(self._event_lines) // len(self.plots)
            for plot in self.plots:
                labelled = plot is self.loss_plot
                line = pg.InfiniteLine(pos=samples, angle=90, movable=False, pen=pg.mkPen(color, width=1),
                                       label=short_event(text) if labelled else None,
                                       labelOpts={"position": 0.93 - 0.3 * (slot % 3), "color": color,
                                                  "fill": (255, 255, 255, 200), "anchors": [(0, 0.5), (0, 0.5)]})
                line.setToolTip(f"{text} at sample {samples:,}")
                plot.addItem(line, ignoreBounds=True)
                self._event_lines.append((plot, line))
        self._events_drawn = list(events)

    def _on_smoothing(self, value: int) -> None:
        self.smoothing_value.setText("off" if value == 1 else f"{value} points")
        self._draw_curves()

    def _on_log_y(self, checked: bool) -> None:
        self.loss_plot.setLogMode(y=checked)
        self.error_plot.setLogMode(y=checked)
        self._y_range = None
        self._draw_curves()

    def _on_mouse_moved(self, position) -> None:
        history = self._history
        for plot in self.plots:
            box = plot.getViewBox()
            if len(history) and box.sceneBoundingRect().contains(position):
                x = box.mapSceneToView(position).x()
                index = int(np.clip(np.searchsorted(history[:, 0], x), 0, len(history) - 1))
                if index > 0 and abs(history[index - 1, 0] - x) < abs(history[index, 0] - x):
                    index -= 1
                samples, loss, bit_error, accuracy = history[index]
                self.readout.setText(f"at {int(samples):,} samples: loss {loss:.4f}, bit error {bit_error:.4f}, "
                                     f"accuracy {100 * accuracy:.1f} %")
                for other in self.crosshairs:
                    other.setPos(samples)
                    other.show()
                return
        for line in self.crosshairs:
            line.hide()


def event_color(text: str) -> tuple[int, int, int]:
    kind = story.kind(text)
    if kind in ("progress", "carry"):
        return PROGRESS_COLOR if kind == "progress" else CARRY_COLOR
    if text.startswith("diverged"):
        return DIVERGED_COLOR
    if text.startswith("no longer solved"):
        return UNSOLVED_COLOR
    if text.startswith("solved"):
        return SOLVED_COLOR
    return EVENT_COLOR


def short_event(text: str) -> str:
    """A compact marker label: 'learning rate 0.1 -> 0.3' becomes 'lr 0.1→0.3'."""
    label = story.short_label(text)  # the story's own events: '90 % right', 'carry: unit 7'
    if label is not None:
        return label
    if text.startswith("solved:"):
        return "solved"
    if text == "no longer solved":
        return "unsolved"
    if text == "solved again":
        return "re-solved"
    if text.startswith("diverged"):
        return "diverged"
    for long, short in (("learning rate", "lr"), ("hidden size", "H"), ("batch size", "batch"),
                        ("clip norm", "clip"), (" -> ", "→")):
        text = text.replace(long, short)
    return text
