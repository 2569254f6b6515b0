"""The training scrubber: a slider under the curves over the points where the run's weights were kept
(core.timeline). Moving it, or clicking the curves, shows every view of the weights (heatmaps, step-through, error
grid, carry finder, code view) at that point while training goes on, marked on the curves and in words ("viewing
sample 1,200 — training continues"); "Back to now" returns to the latest weights. The memory the kept weights take
is shown in the status bar (memory_label). The worker does the work: this only asks (sigViewAt) and draws."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import QHBoxLayout, QLabel, QPushButton, QSlider, QWidget

from explorer.panels.curves import CurvesPanel
from explorer.snapshot import Snapshot

VIEWING_COLOR = "#b45309"
VIEWING_STYLE = f"color: white; background: {VIEWING_COLOR}; border-radius: 3px; padding: 0 6px; font-weight: bold;"
NOW_STYLE = "color: #374151;"
SEND_MS = 60  # while the slider is dragged, the point asked for is sent at most this often


def viewing_text(viewing: int, state: str) -> str:
    """'viewing sample 1,200 — training continues' (or 'is paused')."""
    going = "training continues" if state == "training" else "training is paused"
    return f"viewing sample {viewing:,} — {going}"


class ScrubberBar(QWidget):
    """A slider over the kept points (the last position is now), what is shown, and Back to now."""

    sigViewAt = Signal(object)  # int: show the point kept nearest this sample; None: the latest weights

    def __init__(self, curves: CurvesPanel | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.samples = np.zeros(0, np.int64)  # the kept points' samples
        self.viewing = -1  # what the latest snapshot shows: a point's sample, or -1 for now
        self._wanted: int | None = None  # the slider position waiting to be sent
        self._drawn: tuple | None = None

        self.title = QLabel("Weights from")
        self.title.setToolTip("Scrub back through training: the weights were kept at points along the run (every "
                              "check at first, fewer as training goes on), and every view can show any of them")
        self.slider = QSlider(Qt.Orientation.Horizontal)
        self.slider.setRange(0, 0)
        self.slider.setToolTip("Drag to show the weights of an earlier point of training in every view (heatmaps, "
                               "step-through, error grid, carry finder, code); the right end is now. Or click the "
                               "curves. Training goes on meanwhile.")
        self.slider.valueChanged.connect(self._on_slider)
        self.label = QLabel()
        self.label.setTextFormat(Qt.TextFormat.PlainText)
        self.label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.label.setFixedWidth(self.label.fontMetrics().horizontalAdvance(viewing_text(10**7, "paused")) + 24)
        self.now_button = QPushButton("Back to now")
        self.now_button.setToolTip("Show the latest weights again in every view")
        self.now_button.clicked.connect(lambda: self.sigViewAt.emit(None))
        self.now_button.setEnabled(False)
        self.memory_label = QLabel()  # for the status bar
        self.memory_label.setToolTip("The weights kept to scrub back to: how many points, and the memory they take "
                                     "of the budget (points thin out evenly as the run grows, so it never exceeds it)")
        self._send_timer = QTimer(self, singleShot=True, interval=SEND_MS)
        self._send_timer.timeout.connect(self._send)

        layout = QHBoxLayout(self)
        layout.setContentsMargins(4, 0, 4, 0)
        layout.addWidget(self.title)
        layout.addWidget(self.slider, 1)
        layout.addWidget(self.label)
        layout.addWidget(self.now_button)

        self.markers: list[pg.InfiniteLine] = []
        if curves is not None:
            for plot in curves.plots:
                labelled = plot is curves.error_plot  # (the loss plot carries the events' labels)
                line = pg.InfiniteLine(angle=90, movable=False, pen=pg.mkPen(VIEWING_COLOR, width=2,
                                                                          style=Qt.PenStyle.DashLine),
                                       label="viewing" if labelled else None,
                                       labelOpts={"position": 0.9, "color": VIEWING_COLOR,
                                                  "fill": (255, 255, 255, 220), "anchors": [(0, 0.5), (0, 0.5)]})
                line.hide()
                plot.addItem(line, ignoreBounds=True)
                self.markers.append(line)
            self._curves = curves
            curves.view.scene().sigMouseClicked.connect(self._on_curves_clicked)
        self._show(-1, "paused")

    # ---- drawing ----------------------------------------------------------------------------------------------
    def update_from(self, snapshot: Snapshot) -> None:
        summary = snapshot.timeline
        samples = summary.samples if summary is not None else np.zeros(0, np.int64)
        if len(samples) != len(self.samples) or not np.array_equal(samples, self.samples):
            self.samples = samples
            self._set_range()
        if summary is not None:
            text = summary.describe()
            if self.memory_label.text() != text:
                self.memory_label.setText(text)
        key = (snapshot.viewing, snapshot.state, len(samples))
        if key != self._drawn:
            self._drawn = key
            self._show(snapshot.viewing, snapshot.state)

    def _set_range(self) -> None:
        self.slider.blockSignals(True)
        self.slider.setRange(0, len(self.samples))  # position len(samples) is now
        self.slider.setEnabled(len(self.samples) > 0)
        self._place()
        self.slider.blockSignals(False)

    def _place(self) -> None:
        """The slider at the point shown (or at now), unless the user is dragging it."""
        if self.slider.isSliderDown() or self._send_timer.isActive():
            return
        position = len(self.samples)
        if self.viewing >= 0 and len(self.samples):
            position = int(np.argmin(np.abs(self.samples - self.viewing)))
        self.slider.blockSignals(True)
        self.slider.setValue(position)
        self.slider.blockSignals(False)

    def _show(self, viewing: int, state: str) -> None:
        self.viewing = viewing
        self._place()
        past = viewing >= 0
        self.now_button.setEnabled(past)
        if past:
            self.label.setText(viewing_text(viewing, state))
            self.label.setStyleSheet(VIEWING_STYLE)
        else:
            self.label.setText("now: the latest weights" + (" (training)" if state == "training" else ""))
            self.label.setStyleSheet(NOW_STYLE)
        for line in self.markers:
            line.setVisible(past)
            if past:
                line.setValue(viewing)
        for line in self.markers:
            if past and getattr(line, "label", None) is not None:
                line.label.setFormat(f"viewing {viewing:,}")

    # ---- asking -----------------------------------------------------------------------------------------------
    def _on_slider(self, position: int) -> None:
        self._wanted = position
        if not self._send_timer.isActive():
            self._send_timer.start()

    def _send(self) -> None:
        position, self._wanted = self._wanted, None
        if position is None:
            return
        if position >= len(self.samples):
            self.sigViewAt.emit(None)
        else:
            self.sigViewAt.emit(int(self.samples[position]))

    def view(self, samples: int | None) -> None:
        """Ask to show the point kept nearest samples (None: now)."""
        self.sigViewAt.emit(samples)

    def _on_curves_clicked(self, event) -> None:
        """A left click in a plot of the curves shows the weights kept nearest the samples under it."""
        if event.button() != Qt.MouseButton.LeftButton or event.double() or event.isAccepted() \
                or not len(self.samples):
            return  # (a click an item took, such as a plot's auto-range button, is not a scrub)
        for plot in self._curves.plots:
            box = plot.getViewBox()
            if box.sceneBoundingRect().contains(event.scenePos()):
                samples = box.mapSceneToView(event.scenePos()).x()
                if samples >= self.samples[-1] + (self.samples[-1] - self.samples[0]) * 0.01:
                    self.sigViewAt.emit(None)  # right of the last point kept: now
                else:
                    self.sigViewAt.emit(int(max(0.0, samples)))
                return
