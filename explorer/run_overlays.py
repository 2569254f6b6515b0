"""Earlier runs on the training curves: when a run is replaced (Reset, or a loaded session) its loss and accuracy
curves stay on the plots as faded lines, with a legend naming each one's settings, so the next run can be
compared with it. At most MAX_RUNS are kept; "Clear runs" removes them all.

A live hyperparameter change does not start a new run: the curve carries on, with a marker where it changed.
"""

from __future__ import annotations

import dataclasses
import html
import re
from dataclasses import dataclass

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QObject, Qt, Signal, Slot
from PySide6.QtGui import QColor
from PySide6.QtWidgets import QHBoxLayout, QLabel, QPushButton, QSizePolicy, QWidget

from core.trainer import ConfigError, TrainConfig
from explorer.panels.curves import LOG_FLOOR, CurvesPanel, moving_average, short_event
from explorer.snapshot import Snapshot

MAX_RUNS = 8
# Not the current run's blue, orange and green, so an earlier run is never mistaken for it.
RUN_COLORS = ("#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf", "#d62728", "#393b79")
FADED_ALPHA = 150  # of 255
LINE_WIDTH = 1.5
# A live change as core.trainer records it: "learning rate 0.1 -> 0.3".
CHANGE = re.compile(r"^(?P<name>[a-z ]+) (?P<old>\S+) -> (?P<new>\S+)$")


def run_description(config: TrainConfig, events: tuple[tuple[int, str], ...] | list) -> str:
    """The settings a run started with and each live change after, e.g. 'H16 lr 0.1 sgd seed 0, then lr 0.1→0.3
    at 2,000': the final settings alone would misname a run that changed on the way."""
    changes = []
    for samples, text in events:
        match = CHANGE.match(text)
        if match and match["name"].replace(" ", "_") in TrainConfig.LIVE:
            changes.append((samples, match["name"].replace(" ", "_"), match["old"], text))
    start = config
    for _, name, old, _ in reversed(changes):  # undo each change, latest first
        kind = type(getattr(TrainConfig(), name))
        try:
            start = dataclasses.replace(start, **{name: kind(old)})
        except (TypeError, ValueError, ConfigError):
            return config.describe()  # not a change this version wrote: name the final settings
    text = start.describe()
    if changes:
        text += ", then " + ", ".join(f"{short_event(change)} at {samples:,}" for samples, _, _, change in changes)
    return text


@dataclass
class EarlierRun:
    """A finished run's curves and what to call it."""

    number: int  # counts runs in this window, from 1
    label: str  # its settings and their changes (run_description)
    history: np.ndarray  # (N, 4) samples, loss, bit error, accuracy
    solved_at: tuple[int, float] | None
    samples_seen: int
    color: str

    def legend_text(self) -> str:
        if self.solved_at is not None:
            samples, seconds = self.solved_at
            outcome = f"solved at {samples:,} ({seconds:.1f} s)"
        else:
            outcome = f"not solved in {self.samples_seen:,}"
        return f"run {self.number}: {self.label} · {outcome}"


def faded_pen(color: str) -> pg.QtGui.QPen:
    faded = QColor(color)
    faded.setAlpha(FADED_ALPHA)
    return pg.mkPen(faded, width=LINE_WIDTH)


class RunOverlays(QObject):
    """Keeps up to MAX_RUNS earlier runs drawn on a CurvesPanel: loss on the left plot, accuracy on the right, and
    a legend strip with a Clear button under the plots."""

    sigChanged = Signal(int)  # number of earlier runs shown

    def __init__(self, curves: CurvesPanel, parent: QObject | None = None) -> None:
        super().__init__(parent if parent is not None else curves)
        self.curves = curves
        self.runs: list[EarlierRun] = []
        self._items: list[tuple[pg.PlotDataItem, pg.PlotDataItem]] = []  # (loss, accuracy) per run
        self._count = 0
        self.solved_marks = pg.ScatterPlotItem(symbol="o", size=7)  # where each earlier run solved
        self.solved_marks.setZValue(-1)
        curves.accuracy_plot.addItem(self.solved_marks)

        self.legend = QLabel()
        self.legend.setWordWrap(True)
        self.legend.setTextFormat(Qt.TextFormat.RichText)
        self.legend.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.legend.setToolTip("Earlier runs, faded: their loss (left) and accuracy (right); a dot marks where one "
                               "solved. The bright curves are the current run.")
        self.clear_button = QPushButton("Clear runs")
        self.clear_button.setToolTip("Remove the earlier runs' curves")
        self.clear_button.clicked.connect(self.clear)
        self.strip = QWidget()
        strip_layout = QHBoxLayout(self.strip)
        strip_layout.setContentsMargins(0, 0, 0, 0)
        strip_layout.addWidget(self.legend, 1)
        strip_layout.addWidget(self.clear_button, 0, Qt.AlignmentFlag.AlignTop)
        self.strip.hide()
        curves.layout().addWidget(self.strip)
        curves.smoothing.valueChanged.connect(self._redraw)
        curves.log_y.toggled.connect(self._redraw)

    # ---- public API -----------------------------------------------------------------------------------------
    @Slot(object)
    def add_snapshot(self, snapshot: Snapshot) -> None:
        """Keep the run this (final) snapshot shows; nothing if it never trained."""
        if snapshot.samples_seen <= 0 or not len(snapshot.history):
            return
        self.add_run(run_description(snapshot.config, snapshot.events), snapshot.history, snapshot.solved_at,
                     snapshot.samples_seen)

    def add_run(self, label: str, history: np.ndarray, solved_at: tuple[int, float] | None = None,
                samples_seen: int | None = None) -> EarlierRun:
        """Draw a run's history (N, 4) faded; the oldest run goes when there are more than MAX_RUNS."""
        self._count += 1
        history = np.array(history, dtype=np.float64).reshape(-1, 4)
        samples = int(samples_seen if samples_seen is not None else (history[-1, 0] if len(history) else 0))
        color = RUN_COLORS[(self._count - 1) % len(RUN_COLORS)]
        run = EarlierRun(self._count, label, history, solved_at, samples, color)
        while len(self.runs) >= MAX_RUNS:
            self._remove(0)
        pen = faded_pen(run.color)
        loss = self.curves.loss_plot.plot(pen=pen)
        accuracy = self.curves.accuracy_plot.plot(pen=pen)
        for item in (loss, accuracy):
            item.setZValue(-1)  # under the current run
            item.setClipToView(True)
        self.runs.append(run)
        self._items.append((loss, accuracy))
        self._draw(len(self.runs) - 1)
        self._changed()
        return run

    def clear(self) -> None:
        """Remove every earlier run."""
        while self.runs:
            self._remove(0)
        self._changed()

    def legend_entries(self) -> list[str]:
        """The legend's lines as plain text, oldest first."""
        return [run.legend_text() for run in self.runs]

    # ---- drawing --------------------------------------------------------------------------------------------
    def _draw(self, index: int) -> None:
        run = self.runs[index]
        loss_item, accuracy_item = self._items[index]
        history = run.history
        loss = moving_average(history[:, 1], self.curves.smoothing.value())
        if self.curves.log_y.isChecked():
            loss = np.maximum(loss, LOG_FLOOR)
        loss_item.setData(history[:, 0], loss)
        accuracy_item.setData(history[:, 0], 100.0 * history[:, 3])

    def _redraw(self) -> None:
        for index in range(len(self.runs)):
            self._draw(index)

    def _remove(self, index: int) -> None:
        loss_item, accuracy_item = self._items.pop(index)
        self.curves.loss_plot.removeItem(loss_item)
        self.curves.accuracy_plot.removeItem(accuracy_item)
        self.runs.pop(index)

    def _changed(self) -> None:
        solved = [run for run in self.runs if run.solved_at is not None]
        self.solved_marks.setData([run.solved_at[0] for run in solved], [100.0] * len(solved),
                                  brush=[pg.mkBrush(run.color) for run in solved],
                                  pen=[pg.mkPen("w") for _ in solved])
        # Non-breaking spaces inside an entry: the strip wraps between runs, never within one.
        entries = [f"<span style='color:{run.color}'>━━</span>&nbsp;"
                   + html.escape(run.legend_text()).replace(" ", "&nbsp;") for run in self.runs]
        self.legend.setText("<span style='color:#555'>Earlier runs (faded):</span>&nbsp; "
                            + " &nbsp;&nbsp; ".join(entries))
        self.strip.setVisible(bool(self.runs))
        self.curves.set_extra_x_extent(max((run.history[-1, 0] for run in self.runs), default=0.0))
        self.sigChanged.emit(len(self.runs))
