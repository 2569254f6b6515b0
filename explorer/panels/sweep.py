"""The sweep tab: samples to solve over a grid of any settings (core.sweep), in local processes or on a Dask cluster,
drawn as two maps over any two of its axes: the median samples to solve and how many runs solved.

The sweep runs in a SweepRunner (a QThread) that only waits on the cells; its progress reaches the panel by queued
signals, so the window stays responsive. Cancel sets run_sweep's cancel flag: queued cells are dropped, running
ones stop at their next check, and no cell is left running when the thread ends. The maps are drawn from the
results only (their axes, values and labels): typing another grid changes nothing on them until it runs.
Pointing at a map cell lists every run pooled in it; clicking it opens one of those runs in the window, replayed
from its settings to where the sweep stopped it (a run is a pure function of its settings and engine).

`save_map` draws the same maps to a PNG offscreen, for `lstm-explorer sweep --plot`.
"""

from __future__ import annotations

import math
import os
import sys
import threading
import time

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPointF, QRectF, QSettings, Qt, QThread, QTimer, Signal, Slot
from PySide6.QtGui import QAction, QCursor, QImage
from PySide6.QtWidgets import (
    QApplication,
    QComboBox,
    QFileDialog,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMenu,
    QProgressBar,
    QPushButton,
    QSizePolicy,
    QSpinBox,
    QToolTip,
    QVBoxLayout,
    QWidget,
)

from core import engine as engine_module
from core import sweep, sweep_csv
from core.sweep import CellResult, MapSummary, SweepResult
from core.sweep_grid import AXIS_KINDS, Grid, GridError, Index, format_value, parse_grid
from core.trainer import CHECK_EVERY, ConfigError, TrainConfig, Trainer
from explorer.panels import GraphicsLayoutWidget, SteadyLabel, configure_pyqtgraph, outward_ticks, panel_title

DEFAULT_GRID = "lr=0.01,0.03,0.1,0.3,1 hidden=4,8,16,32 seed=0:3"
UNSOLVED_COLOR = (205, 205, 205, 255)  # map cells whose median run did not solve within the budget
CELL_TEXT_LIMIT = 144  # above this many map cells the numbers inside them are left out (they would not fit)
TOOLTIP_RUNS = 40  # runs listed when pointing at a map cell; more are counted, not listed
SETTINGS_PREFIX = "sweep/"
NO_AXIS = "—"  # the "up" choice for a single row
READOUT_HINT = ("bright = fast · grey ✗ = median run not solved within the budget · point at a cell for every run, "
                "click to open one")
AXES_HELP = ("Axes: " + ", ".join(kind.name for kind in AXIS_KINDS) + ". Values a,b,c; whole numbers also "
             "start:stop (stop excluded). One value sets it for every cell; settings not named come from the "
             "current run.")
MAP_REDRAW_MS = 250  # while a sweep runs, the maps are redrawn at most this often (a summary pools every run)
FIGURE_SIZE = (1100, 470)  # the PNG of --plot, in points (drawn at FIGURE_SCALE pixels per point)
FIGURE_SCALE = 2


def short_count(samples: float) -> str:
    """7100 -> '7.1k', 950 -> '950', 1,250,000 -> '1.2M'."""
    if samples >= 1e6:
        return f"{samples / 1e6:.2g}M"
    if samples >= 1e3:
        return f"{samples / 1e3:.2g}k" if samples < 1e4 else f"{samples / 1e3:.0f}k"
    return f"{samples:.0f}"


def run_outcome(cell: CellResult) -> str:
    """'solved at 1,200 samples (0.4 s)', 'diverged at 300 samples', 'not solved (93 % of sums right)'."""
    if cell.solved:
        return f"solved at {cell.samples_to_solve:,} samples ({cell.seconds_to_solve:.1f} s)"
    if cell.diverged:
        return f"diverged at {cell.samples_seen:,} samples"
    return f"not solved in {cell.samples_seen:,} samples ({100 * cell.accuracy:.0f} % of sums right)"


def run_name(grid: Grid, cell: CellResult, leave_out: tuple[str | None, ...] = ()) -> str:
    """The cell's values on the axes that vary, but those left out: 'adam · seed 3'."""
    parts = [f"{axis.name} {format_value(axis.kind, getattr(cell.config, axis.kind.field))}"
             for axis in grid.axes if len(axis) > 1 and axis.name not in leave_out]
    return " · ".join(parts) or "the run"


class SweepRunner(QThread):
    """Runs core.sweep.run_sweep in its own thread; reports through signals only."""

    sigCellDone = Signal(int, int, object, object)  # done, total, index, CellResult
    sigSweepDone = Signal(object)  # the SweepResult (cancelled=True if cancelled)
    sigFailed = Signal(str)

    def __init__(self, grid: Grid, max_samples: int, workers: int, scheduler: str = "",
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("sweep")
        self.arguments = dict(grid=grid, max_samples=max_samples, workers=workers, scheduler=scheduler or None)
        self._cancel = threading.Event()

    def cancel(self) -> None:
        """Ask the sweep to stop; callable from any thread. The thread ends once no cell runs any more."""
        self._cancel.set()

    @property
    def cancelling(self) -> bool:
        return self._cancel.is_set()

    def run(self) -> None:  # in the new thread
        try:
            result = sweep.run_sweep(**self.arguments, engine="auto", progress=self._report, cancel=self._cancel)
        except Exception as error:  # reported to the user; the sweep is over either way
            self.sigFailed.emit(str(error) if isinstance(error, sweep.SweepError) else
                                f"{type(error).__name__}: {error}")
            return
        self.sigSweepDone.emit(result)

    def _report(self, done: int, total: int, index: Index, cell: CellResult) -> None:
        self.sigCellDone.emit(done, total, index, cell)


class RunReplayer(QThread):
    """Replays one sweep cell into a Trainer (core.sweep.replay) off the GUI thread."""

    sigReady = Signal(object)  # the Trainer, at the point where the sweep stopped the cell

    def __init__(self, cell: CellResult, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("sweep replay")
        self.cell = cell
        self._cancel = threading.Event()

    def cancel(self) -> None:
        self._cancel.set()

    def run(self) -> None:  # in the new thread
        trainer = sweep.replay(self.cell, self._cancel.is_set)
        if trainer is not None:
            self.sigReady.emit(trainer)


class _Heatmap:
    """One map: an image over (y, x) with fixed levels, a colour bar, an optional grey layer, text per cell."""

    def __init__(self, plot: pg.PlotItem, title: str, colormap: pg.ColorMap, levels: tuple[float, float],
                 bar_label: str) -> None:
        self.plot = plot
        plot.setTitle(title, size="10pt")
        for name in ("bottom", "left"):
            plot.getAxis(name).enableAutoSIPrefix(False)  # the ticks are labels, not coordinates
        plot.setMouseEnabled(False, False)
        plot.setMenuEnabled(False)
        plot.hideButtons()
        outward_ticks(plot)
        self.grey = pg.ImageItem(axisOrder="row-major")  # under cells marked unsolved
        self.grey.setZValue(-1)
        plot.addItem(self.grey)
        self.image = pg.ImageItem(axisOrder="row-major")  # NaN (not run, unsolved) is transparent
        plot.addItem(self.image)
        self.levels = levels
        self.colorbar = pg.ColorBarItem(values=levels, colorMap=colormap, interactive=False, width=12,
                                        label=bar_label)
        self.colorbar.setImageItem(self.image, insert_in=plot)
        self.texts: list[list[pg.TextItem]] = []
        self.shape = (0, 0)

    def clear(self) -> None:
        """No map: no cells, no ticks."""
        self.image.clear()
        self.grey.clear()
        for row in self.texts:
            for text in row:
                self.plot.removeItem(text)
        self.texts = []
        self.shape = (0, 0)
        for name in ("bottom", "left"):
            self.plot.getAxis(name).setTicks([[], []])
            self.plot.setLabel(name, "")
        self.plot.setRange(xRange=(-0.5, 0.5), yRange=(-0.5, 0.5), padding=0)

    def set_levels(self, levels: tuple[float, float], ticks: list[tuple[float, str]]) -> None:
        if levels != self.levels:
            self.levels = levels
            self.colorbar.setLevels(levels)
        self.colorbar.axis.setTicks([ticks, []])

    def set_axes(self, summary: MapSummary, x_label: str, y_label: str) -> None:
        """Axes, ticks and one text item per cell, from the summary's own labels."""
        ny, nx = summary.median.shape
        self.plot.setLabel("bottom", x_label)
        self.plot.setLabel("left", y_label)
        self.plot.getAxis("bottom").setTicks([list(enumerate(summary.x_labels)), []])
        self.plot.getAxis("left").setTicks([list(enumerate(summary.y_labels)), []])
        self.plot.setRange(xRange=(-0.5, nx - 0.5), yRange=(-0.5, ny - 0.5), padding=0)
        if (ny, nx) == self.shape:
            return
        for row in self.texts:
            for text in row:
                self.plot.removeItem(text)
        self.texts = []
        self.shape = (ny, nx)
        if nx * ny > CELL_TEXT_LIMIT:
            return
        for j in range(ny):
            row = []
            for i in range(nx):
                text = pg.TextItem("", anchor=(0.5, 0.5))
                text.setPos(i, j)
                self.plot.addItem(text)
                row.append(text)
            self.texts.append(row)

    def draw(self, values: np.ndarray, grey: np.ndarray) -> None:
        """values (y, x) in the colour levels' units, NaN where there is no colour; grey (y, x) bool."""
        ny, nx = values.shape
        if np.all(np.isnan(values)):
            self.image.clear()
        else:
            self.image.setImage(values, autoLevels=False, levels=self.levels)
            self.image.setRect(QRectF(-0.5, -0.5, nx, ny))
        rgba = np.zeros((ny, nx, 4), dtype=np.uint8)
        rgba[grey] = UNSOLVED_COLOR
        self.grey.setImage(rgba, autoLevels=False)
        self.grey.setRect(QRectF(-0.5, -0.5, nx, ny))

    def write(self, j: int, i: int, text: str, dark_background: bool) -> None:
        if self.texts:
            self.texts[j][i].setText(text, color=(255, 255, 255) if dark_background else (0, 0, 0))

    def cell_at(self, scene_position: QPointF) -> tuple[int, int] | None:
        """(i, j) of the map cell under a scene position, or None outside the map."""
        box = self.plot.getViewBox()
        if not box.sceneBoundingRect().contains(scene_position):
            return None
        point = box.mapSceneToView(scene_position)
        i, j = round(point.x()), round(point.y())
        ny, nx = self.shape
        return (i, j) if 0 <= i < nx and 0 <= j < ny else None


class SweepMap(QWidget):
    """Two maps over the same two axes: median samples to solve (log colour, bright = fast) and solve rate."""

    sigCellClicked = Signal(object)  # list of the CellResults pooled in the clicked map cell

    def __init__(self, parent: QWidget | None = None, figure: bool = False) -> None:
        super().__init__(parent)
        configure_pyqtgraph()
        self.result: SweepResult | None = None
        self.summary: MapSummary | None = None
        self.axes: tuple[str, str | None] | None = None
        self.view = GraphicsLayoutWidget()
        self.view.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Ignored)
        self.view.setMinimumHeight(150)
        self.title = self.view.addLabel("", row=0, col=0, colspan=2, size="9pt")
        fast_bright = pg.colormap.get("viridis")
        fast_bright.reverse()  # bright = few samples = fast
        self.median = _Heatmap(self.view.addPlot(row=1, col=0), "Median samples to solve (every sum right)",
                               fast_bright, (2.0, 4.0), "samples")
        self.rate = _Heatmap(self.view.addPlot(row=1, col=1), "Runs solved within the budget",
                             pg.colormap.get("CET-L12"), (0.0, 1.0), "runs solved")
        self.rate.set_levels((0.0, 1.0), [(0.0, "0 %"), (0.5, "50 %"), (1.0, "100 %")])
        self.hint = pg.TextItem("", anchor=(0.5, 0.5), color=(90, 90, 90))  # while the map is empty
        self.median.plot.addItem(self.hint, ignoreBounds=True)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(2)
        layout.addWidget(self.view, 1)
        self.readout: SteadyLabel | None = None
        if not figure:
            self.readout = SteadyLabel(READOUT_HINT)
            self.readout.setToolTip("The map cell under the mouse pointer: every run pooled in it")
            layout.addWidget(self.readout)
            self.view.scene().sigMouseMoved.connect(self._on_mouse_moved)
            self.view.scene().sigMouseClicked.connect(self._on_mouse_clicked)
        self.show_result(None)

    # ---- drawing --------------------------------------------------------------------------------------------
    def show_result(self, result: SweepResult | None, x: str | None = None, y: str | None = None,
                    keep_axes: bool = True) -> None:
        """Draw result (possibly still filling in) over axes x (across) and y (up; None: one row). Without x,
        the axes shown so far stay if the result has them (keep_axes), else its default axes are used."""
        self.result = result
        if result is None:
            self.summary = None
            for heatmap in (self.median, self.rate):
                heatmap.clear()
            low, high = math.log10(CHECK_EVERY), math.log10(sweep.DEFAULT_MAX_SAMPLES)
            self.median.set_levels((low, high), _log_ticks(low, high))
            self.title.setText("")
            self.hint.setText("Type a grid, then press Start")
            self.hint.setPos(0, 0)
            return
        if x is None:
            names = result.grid.names()
            kept = self.axes if keep_axes else None
            if kept is not None and kept[0] in names and (kept[1] is None or kept[1] in names):
                x, y = kept
            else:
                x, y = result.default_map_axes()
        self.axes = (x, y)
        summary = result.summary(x, y)
        self.summary = summary
        grid = result.grid
        x_label = grid.axis(x).label
        y_label = grid.axis(y).label if y is not None else ""
        low = math.log10(min(CHECK_EVERY, result.max_samples))
        high = max(math.log10(max(result.max_samples, 10)), low + 1)
        self.median.set_levels((low, high), _log_ticks(low, high))
        for heatmap in (self.median, self.rate):
            heatmap.set_axes(summary, x_label, y_label)
        median = summary.median
        with np.errstate(divide="ignore", invalid="ignore"):
            logs = np.where(np.isfinite(median), np.log10(np.maximum(median, 1.0)), np.nan)
        self.median.draw(logs, np.isinf(median))
        rate = summary.solve_rate
        self.rate.draw(rate, np.zeros(rate.shape, dtype=bool))
        for j in range(median.shape[0]):
            for i in range(median.shape[1]):
                self._write_cell(summary, j, i, logs[j, i], low, high)
        self.title.setText(self._title(result, summary))
        ny, nx = median.shape
        self.hint.setText("" if result.cells else "Press Start: every cell trains until all sums are right")
        self.hint.setPos((nx - 1) / 2, (ny - 1) / 2)

    def _write_cell(self, summary: MapSummary, j: int, i: int, log: float, low: float, high: float) -> None:
        ran, solved = summary.ran[j, i], summary.solved[j, i]
        if not ran:
            self.median.write(j, i, "", False)
            self.rate.write(j, i, "", False)
            return
        median = summary.median[j, i]
        if np.isinf(median):
            self.median.write(j, i, "✗", False)
        else:
            shade = (log - low) / (high - low)  # 0 bright (fast) … 1 dark (slow)
            self.median.write(j, i, short_count(median), shade > 0.55)
        self.rate.write(j, i, f"{solved}/{ran}", solved / ran > 0.6)

    @staticmethod
    def _title(result: SweepResult, summary: MapSummary) -> str:
        grid = result.grid
        names = {"lstm": "LSTM", "rnn": "plain RNN"}
        kinds = grid.axis("model").values if "model" in grid.names() else (grid.base.model,)
        model = " and ".join(names.get(kind, kind) for kind in kinds)
        engine = f" · {result.engine} engine" if result.engine else ""
        done = f"{len(result.cells):,} of {result.total:,} runs" if len(result.cells) < result.total else \
            f"{result.total:,} runs"
        return (f"{model}, each cell pools {summary.pooled} · budget {result.max_samples:,} samples{engine} · "
                f"{done}")

    # ---- reading it -----------------------------------------------------------------------------------------
    def runs_at(self, i: int, j: int) -> list[CellResult]:
        """The finished runs pooled in map cell (i across, j up)."""
        summary = self.summary
        if summary is None or not (0 <= j < len(summary.runs) and 0 <= i < len(summary.runs[j])):
            return []
        return list(summary.runs[j][i])

    def cell_text(self, i: int, j: int) -> str:
        """What pointing at map cell (i across, j up) shows: where, the median, the solve rate, every run."""
        summary, result = self.summary, self.result
        if summary is None or result is None or not (0 <= j < summary.median.shape[0]
                                                     and 0 <= i < summary.median.shape[1]):
            return ""
        grid = result.grid
        where = f"{grid.axis(summary.x).label} {summary.x_labels[i]}"
        if summary.y is not None:
            where += f" · {grid.axis(summary.y).label} {summary.y_labels[j]}"
        runs = summary.runs[j][i]
        if not runs:
            return f"{where}: not run yet"
        median = summary.median[j, i]
        head = (f"median {median:,.0f} samples to solve" if np.isfinite(median)
                else f"median run not solved within {result.max_samples:,} samples")
        diverged = f", {summary.diverged[j, i]} diverged" if summary.diverged[j, i] else ""
        lines = [f"{where}: {head}; {summary.solved[j, i]} of {len(runs)} runs solved{diverged}"]
        leave_out = (summary.x, summary.y)
        lines += [f"{run_name(grid, cell, leave_out)}: {run_outcome(cell)}" for cell in runs[:TOOLTIP_RUNS]]
        if len(runs) > TOOLTIP_RUNS:
            lines.append(f"… and {len(runs) - TOOLTIP_RUNS} more")
        return "\n".join(lines)

    def _cell_at(self, scene_position: QPointF) -> tuple[int, int] | None:
        for heatmap in (self.median, self.rate):
            cell = heatmap.cell_at(scene_position)
            if cell is not None:
                return cell
        return None

    def _on_mouse_moved(self, position: QPointF) -> None:
        cell = self._cell_at(position) if self.result is not None else None
        text = self.cell_text(*cell) if cell is not None else ""
        if self.readout is not None:
            self.readout.setText(text.split("\n")[0] if text else READOUT_HINT)
        if text:
            QToolTip.showText(QCursor.pos(), text + "\n\nClick to open a run in the window", self.view)
        else:
            QToolTip.hideText()

    def _on_mouse_clicked(self, event: object) -> None:
        if event.button() != Qt.MouseButton.LeftButton or self.result is None:
            return
        cell = self._cell_at(event.scenePos())
        if cell is not None:
            runs = self.runs_at(*cell)
            if runs:
                self.sigCellClicked.emit(runs)

    def scene_position(self, i: int, j: int) -> QPointF:
        """Where map cell (i across, j up) of the median map is, in scene coordinates (for tests, menus)."""
        return self.median.plot.getViewBox().mapViewToScene(QPointF(i, j))


def _log_ticks(low: float, high: float) -> list[tuple[float, str]]:
    """Powers of ten between the ends, and the top end (the budget) labelled: short labels, as in the cells, so
    they fit a narrow bar."""
    ticks = [(float(k), short_count(10 ** k)) for k in range(math.ceil(low), math.floor(high) + 1)]
    if not ticks or ticks[-1][0] < high - 0.15:
        ticks.append((high, short_count(10 ** high)))
    return ticks


class SweepPanel(QWidget):
    """Grid, budget, where to run; Start / Cancel / Export CSV / Open CSV; progress; the maps and their axes.

    Public surface for the window: running, update_from(snapshot), set_base_config, start(), cancel(),
    shutdown(), export_csv(path), open_csv(path), sigFinished (a sweep ended), sigOpenRun (a Trainer replayed
    from a clicked map cell, for the window to load)."""

    sigFinished = Signal(object)  # the SweepResult, when a sweep ends (finished or cancelled)
    sigOpenRun = Signal(object)  # a Trainer: one run of the sweep, replayed to where the sweep stopped it

    def __init__(self, settings: QSettings | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._settings = settings
        self._base = TrainConfig()
        self.runner: SweepRunner | None = None
        self.replayer: RunReplayer | None = None
        self.result: SweepResult | None = None
        self.run_menu: QMenu | None = None
        self._started = 0.0
        self._redraw = QTimer(self)
        self._redraw.setSingleShot(True)
        self._redraw.setInterval(MAP_REDRAW_MS)
        self._redraw.timeout.connect(self._draw_map)

        self.grid_text = QLineEdit(DEFAULT_GRID)
        self.grid_text.setToolTip(AXES_HELP)
        self.grid_note = QLabel()
        self.grid_note.setWordWrap(True)
        self.max_samples = QSpinBox()
        self.max_samples.setRange(1, 100_000_000)
        self.max_samples.setSingleStep(1000)
        self.max_samples.setGroupSeparatorShown(True)
        self.max_samples.setValue(sweep.DEFAULT_MAX_SAMPLES)
        self.max_samples.setToolTip("Training budget per run: a run not solved by then counts as unsolved")
        self.workers = QSpinBox()
        cpus = os.cpu_count() or 1
        self.workers.setRange(1, max(1, 4 * cpus))
        self.workers.setValue(cpus)
        self.workers.setToolTip(f"Processes training runs at the same time (this computer has {cpus} CPUs)")
        self.scheduler = QLineEdit()
        self.scheduler.setPlaceholderText("tcp://host:8786 · empty: this computer's processes")
        self.scheduler.setToolTip("The address of a Dask scheduler (tcp://host:8786) to run the cells on its "
                                  "workers, which need lstm-explorer installed; needs dask.distributed here too: "
                                  'pip install "lstm-explorer[cluster]"')
        self.base_label = QLabel()
        self.base_label.setStyleSheet("color: #555")
        self.error = QLabel()
        self.error.setStyleSheet("color: #c62828")
        self.error.setWordWrap(True)
        self.error.hide()

        self.start_button = QPushButton("Start")
        self.start_button.setToolTip("Train every cell of the grid")
        self.start_button.clicked.connect(self.start)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setToolTip("Stop the sweep: running cells stop at once, the rest are dropped")
        self.cancel_button.clicked.connect(self.cancel)
        self.cancel_button.setEnabled(False)
        self.export_button = QPushButton("Export CSV…")
        self.export_button.setToolTip("One row per run: every setting, samples and seconds to solve, accuracy")
        self.export_button.clicked.connect(self._ask_export)
        self.export_button.setEnabled(False)
        self.open_button = QPushButton("Open CSV…")
        self.open_button.setToolTip("Show a sweep saved as CSV (from Export, or `lstm-explorer sweep --out`)")
        self.open_button.clicked.connect(self._ask_open)
        self.progress = QProgressBar()
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        self.progress.setFormat("no sweep yet")
        self.status = SteadyLabel("", lines=2)
        self.status.label.setWordWrap(True)
        self.across = QComboBox()
        self.across.setToolTip("The setting across the maps")
        self.up = QComboBox()
        self.up.setToolTip("The setting up the maps; every other setting is pooled in each cell")
        self.map = SweepMap()
        self.map.sigCellClicked.connect(self._on_map_clicked)

        self._restore_settings()
        self._layout()
        self._show_base()
        self._check_grid()
        self._fill_axis_choices()
        self.grid_text.textChanged.connect(self._check_grid)
        self.scheduler.textChanged.connect(self._on_scheduler_changed)
        self._on_scheduler_changed()
        self.across.activated.connect(self._on_axes_chosen)
        self.up.activated.connect(self._on_axes_chosen)

    def _layout(self) -> None:
        # Compact: the tab area is wide and short.
        grid = QGridLayout()
        grid.setContentsMargins(0, 0, 0, 0)
        grid.setVerticalSpacing(3)
        heading = QHBoxLayout()
        heading.addWidget(panel_title("Hyperparameter sweep"))
        heading.addStretch(1)
        heading.addWidget(self.base_label)
        grid.addLayout(heading, 0, 0, 1, 4)
        grid.addWidget(QLabel("grid"), 1, 0)
        grid.addWidget(self.grid_text, 1, 1, 1, 3)
        grid.addWidget(self.grid_note, 2, 1, 1, 3)
        grid.addWidget(QLabel("budget"), 3, 0)
        grid.addWidget(self.max_samples, 3, 1)
        grid.addWidget(QLabel("processes"), 3, 2)
        grid.addWidget(self.workers, 3, 3)
        grid.addWidget(QLabel("Dask at"), 4, 0)
        grid.addWidget(self.scheduler, 4, 1, 1, 3)
        buttons = QHBoxLayout()
        buttons.setContentsMargins(0, 0, 0, 0)
        for button in (self.start_button, self.cancel_button, self.export_button, self.open_button):
            buttons.addWidget(button)
        grid.addLayout(buttons, 5, 0, 1, 4)
        grid.addWidget(self.progress, 6, 0, 1, 4)
        grid.addWidget(self.status, 7, 0, 1, 4)
        grid.addWidget(self.error, 8, 0, 1, 4)
        grid.setRowStretch(9, 1)
        grid.setColumnStretch(1, 1)
        holder = QWidget()
        holder.setLayout(grid)
        holder.setFixedWidth(470)
        choices = QHBoxLayout()
        choices.setContentsMargins(0, 0, 0, 0)
        choices.addStretch(1)
        for label, combo in (("across", self.across), ("up", self.up)):
            choices.addWidget(QLabel(label))
            choices.addWidget(combo)
        right = QVBoxLayout()
        right.setContentsMargins(0, 0, 0, 0)
        right.setSpacing(2)
        right.addLayout(choices)
        right.addWidget(self.map, 1)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(holder)
        layout.addLayout(right, 1)

    # ---- public API -----------------------------------------------------------------------------------------
    @property
    def running(self) -> bool:
        return self.runner is not None

    def update_from(self, snapshot: object) -> None:
        """Follow the current run's settings: the settings the grid does not name come from them."""
        config = getattr(snapshot, "config", None)
        if isinstance(config, TrainConfig) and config != self._base:
            self.set_base_config(config)

    def set_base_config(self, config: TrainConfig) -> None:
        self._base = config
        self._show_base()
        self._check_grid()

    def grid(self) -> Grid | None:
        """The grid as typed, over the current run's settings; None after showing what is wrong."""
        try:
            return parse_grid(self.grid_text.text(), self._sweep_base())
        except ConfigError as error:
            self._show_error(f"Grid: {error}")
            return None

    def start(self) -> bool:
        """Start a sweep with the settings shown; False (with the reason shown) if they are not valid."""
        if self.runner is not None:
            return False
        grid = self.grid()
        if grid is None:
            return False
        self.error.hide()
        self._save_settings()
        max_samples = self.max_samples.value()
        scheduler = self.scheduler.text().strip()
        self.result = SweepResult(grid, max_samples, engine_module.resolve("auto"))  # as run_sweep resolves it
        total = grid.size
        self.progress.setRange(0, total)
        self.progress.setValue(0)
        self.progress.setFormat("%v / %m runs")
        workers = min(self.workers.value(), total)
        where = (f"on the Dask cluster at {scheduler}" if scheduler else
                 f"in {workers} process{'es' if workers > 1 else ''}")
        self.status.setText(f"Starting {total:,} runs {where}…")
        self.map.show_result(self.result)
        self._fill_axis_choices()
        runner = SweepRunner(grid, max_samples, workers, scheduler, parent=self)
        runner.sigCellDone.connect(self._on_cell_done)
        runner.sigSweepDone.connect(self._on_sweep_done)
        runner.sigFailed.connect(self._on_failed)
        runner.finished.connect(self._on_thread_finished)
        self.runner = runner
        self._started = time.monotonic()
        self._set_running(True)
        runner.start()
        return True

    def cancel(self) -> None:
        """Stop the running sweep; the thread ends (and the buttons come back) once no cell runs any more."""
        if self.runner is not None and not self.runner.cancelling:
            self.runner.cancel()
            self.cancel_button.setEnabled(False)
            self.status.setText("Cancelling: stopping the running cells…")

    def shutdown(self, timeout_ms: int = 10_000) -> bool:
        """Cancel and wait for the threads (for closing the window); True if nothing is left running."""
        ended = True
        replayer, self.replayer = self.replayer, None
        if replayer is not None:
            replayer.cancel()
            ended = replayer.wait(timeout_ms)
        runner = self.runner
        if runner is not None:
            runner.cancel()
            if runner.wait(timeout_ms):
                self._on_thread_finished()
            else:
                ended = False
        return ended

    def export_csv(self, path: str | os.PathLike[str]) -> int:
        """Write the runs finished so far as CSV (core.sweep_csv's columns); returns the number of rows."""
        if self.result is None:
            raise ValueError("no sweep to export")
        sweep_csv.write_csv(self.result, path)
        return len(self.result.cells)

    def open_csv(self, path: str | os.PathLike[str]) -> SweepResult:
        """Show the sweep in a CSV (raises SweepCsvError or OSError); not while a sweep runs."""
        if self.runner is not None:
            raise RuntimeError("a sweep is running")
        result = sweep_csv.read_result(path)
        self.result = result
        self.map.show_result(result, keep_axes=False)
        self._fill_axis_choices()
        self.progress.setRange(0, result.total)
        self.progress.setValue(len(result.cells))
        self.progress.setFormat("%v / %m runs")
        self.export_button.setEnabled(True)
        self.error.hide()
        self.status.setText(f"{len(result.cells):,} runs from {os.path.basename(os.fspath(path))}: "
                            f"{result.grid.describe()}")
        return result

    def set_map_axes(self, x: str, y: str | None) -> None:
        """Show the maps over axes x (across) and y (up, None: one row)."""
        if self.result is not None:
            self.map.show_result(self.result, x, y)
            self._fill_axis_choices()

    def open_run(self, cell: CellResult) -> None:
        """Replay one run of the sweep (off the GUI thread); sigOpenRun brings it to the window."""
        if self.replayer is not None:
            self.replayer.cancel()
        replayer = RunReplayer(cell, parent=self)
        replayer.sigReady.connect(self._on_run_ready)
        replayer.finished.connect(lambda: self._on_replay_finished(replayer))
        self.replayer = replayer
        self.status.setText(f"Opening {self._run_label(cell)}: replaying its {cell.samples_seen:,} samples…")
        replayer.start()

    # ---- sweep events (queued from the runner's thread) -----------------------------------------------------
    @Slot(int, int, object, object)
    def _on_cell_done(self, done: int, total: int, index: Index, cell: CellResult) -> None:
        if self.result is None:
            return
        self.result.cells[index] = cell
        self.progress.setValue(done)
        self.export_button.setEnabled(True)
        elapsed = time.monotonic() - self._started
        remaining = elapsed / done * (total - done)
        if not self.runner or not self.runner.cancelling:
            self.status.setText(f"{done:,} of {total:,} runs, about {remaining:.0f} s left\n"
                                f"last: {self._run_label(cell)}: {run_outcome(cell)}")
        if not self._redraw.isActive():
            self._redraw.start()

    def _draw_map(self) -> None:
        if self.result is not None:
            self.map.show_result(self.result)

    @Slot(object)
    def _on_sweep_done(self, result: SweepResult) -> None:
        self._redraw.stop()
        self.result = result
        self.map.show_result(result)
        self.progress.setValue(len(result.cells))
        self.export_button.setEnabled(bool(result.cells))
        if result.cancelled:
            self.status.setText(f"Cancelled after {result.wall_seconds:.1f} s: {len(result.cells):,} of "
                                f"{result.total:,} runs finished.")
        else:
            self.status.setText(f"Done: {result.total:,} runs in {result.wall_seconds:.1f} s "
                                f"({result.engine} engine). {self._best(result)}")
        self.sigFinished.emit(result)

    @Slot(str)
    def _on_failed(self, message: str) -> None:
        self.status.setText("The sweep failed.")
        self._show_error(f"The sweep failed: {message}")

    @Slot()
    def _on_thread_finished(self) -> None:
        runner, self.runner = self.runner, None
        if runner is not None:
            runner.deleteLater()
        self._set_running(False)

    # ---- opening a run ----------------------------------------------------------------------------------------
    @Slot(object)
    def _on_map_clicked(self, runs: list[CellResult]) -> None:
        if len(runs) == 1:
            self.open_run(runs[0])
            return
        self.run_menu = self.make_run_menu(runs)
        self.run_menu.popup(QCursor.pos())

    def make_run_menu(self, runs: list[CellResult]) -> QMenu:
        """A menu with one entry per run; choosing one opens it."""
        menu = QMenu(self)
        menu.setToolTipsVisible(True)
        grid = self.result.grid if self.result is not None else None
        leave_out = self.map.axes or ()
        for cell in runs:
            name = run_name(grid, cell, leave_out) if grid is not None else cell.config.describe()
            action = QAction(f"{name}: {run_outcome(cell)}", menu)
            action.triggered.connect(lambda _checked=False, cell=cell: self.open_run(cell))
            menu.addAction(action)
        return menu

    @Slot(object)
    def _on_run_ready(self, trainer: Trainer) -> None:
        solved = f", solved at {trainer.solved_at[0]:,}" if trainer.solved_at else ""
        self.status.setText(f"Opened {trainer.config.describe()} in the window: {trainer.samples_seen:,} "
                            f"samples{solved}.")
        self.sigOpenRun.emit(trainer)

    def _on_replay_finished(self, replayer: RunReplayer) -> None:
        if self.replayer is replayer:
            self.replayer = None
        replayer.deleteLater()

    # ---- helpers --------------------------------------------------------------------------------------------
    def _run_label(self, cell: CellResult) -> str:
        grid = self.result.grid if self.result is not None else None
        return run_name(grid, cell) if grid is not None else cell.config.describe()

    def _sweep_base(self) -> TrainConfig:
        return self._base.replace()  # a validated copy

    def _check_grid(self) -> None:
        """Say, as the grid is typed, how many runs it makes or what is wrong with it (the maps do not change)."""
        try:
            grid = parse_grid(self.grid_text.text(), self._sweep_base())
        except ConfigError as error:
            self.grid_note.setStyleSheet("color: #c62828")
            self.grid_note.setText(str(error))
            return
        self.grid_note.setStyleSheet("color: #555")
        sizes = " × ".join(f"{len(axis)} {axis.name}" for axis in grid.axes if len(axis) > 1) or "one cell"
        self.grid_note.setText(f"{sizes} = {grid.size:,} runs")

    def _fill_axis_choices(self) -> None:
        """The axis menus list the shown result's axes (not the typed grid's)."""
        result = self.result
        names = result.grid.names() if result is not None else []
        x, y = self.map.axes if self.map.axes is not None else (None, None)
        for combo, chosen, extra in ((self.across, x, []), (self.up, y, [NO_AXIS])):
            combo.blockSignals(True)
            combo.clear()
            for name in names + extra:
                combo.addItem(name if name == NO_AXIS else result.grid.axis(name).label, name)
            combo.setCurrentIndex(max(0, combo.findData(chosen if chosen is not None else NO_AXIS)))
            combo.setEnabled(bool(names))
            combo.blockSignals(False)

    def _on_axes_chosen(self) -> None:
        x, y = self.across.currentData(), self.up.currentData()
        if x is None:
            return
        if y == NO_AXIS:
            y = None
        if y == x:  # the other menu takes the axis this one had
            previous = self.map.axes or (None, None)
            if self.sender() is self.across:
                y = previous[0] if previous[0] != x else None
            else:
                x = previous[1] if previous[1] is not None and previous[1] != y else x
                if x == y:
                    y = None
        self.set_map_axes(x, y)

    def _on_scheduler_changed(self) -> None:
        self.workers.setEnabled(not self.running and not self.scheduler.text().strip())

    def _best(self, result: SweepResult) -> str:
        summary = self.map.summary
        if summary is None or not np.any(np.isfinite(summary.median)):
            return "No cell's median run solved within the budget."
        j, i = np.unravel_index(np.nanargmin(np.where(np.isfinite(summary.median), summary.median, np.nan)),
                                summary.median.shape)
        where = f"{result.grid.axis(summary.x).label} {summary.x_labels[i]}"
        if summary.y is not None:
            where += f", {result.grid.axis(summary.y).label} {summary.y_labels[j]}"
        return f"Fastest: {where}, median {summary.median[j, i]:,.0f} samples."

    def _set_running(self, running: bool) -> None:
        self.start_button.setEnabled(not running)
        self.cancel_button.setEnabled(running)
        self.open_button.setEnabled(not running)
        for widget in (self.grid_text, self.max_samples, self.scheduler):
            widget.setEnabled(not running)
        self._on_scheduler_changed()

    def _show_error(self, text: str) -> None:
        self.error.setText(text)
        self.error.show()

    def _show_base(self) -> None:
        base = self._base
        model = "plain RNN" if base.model == "rnn" else "LSTM"
        clip = f", clip {base.clip_norm:g}" if base.clip_norm else ""
        self.base_label.setText(f"{model} · {base.optimizer} · batch {base.batch_size} · {base.n_bits} bits")
        self.base_label.setToolTip(
            "Settings the grid does not name are taken from the current run when Start is pressed:\n"
            f"{model}, optimizer {base.optimizer}, batch {base.batch_size}{clip}, {base.n_bits} bits, "
            f"{base.init} initial weights, {base.dtype}")

    def _ask_export(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Export sweep as CSV", "sweep.csv", "CSV files (*.csv)")
        if not path:
            return
        try:
            rows = self.export_csv(path)
        except OSError as error:
            self._show_error(f"Could not write {path}: {error.strerror or error}")
            return
        self.status.setText(f"Wrote {rows} rows to {os.path.basename(path)}.")

    def _ask_open(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open a sweep's CSV", "", "CSV files (*.csv)")
        if not path:
            return
        try:
            self.open_csv(path)
        except (OSError, ValueError, GridError) as error:
            self._show_error(f"Could not open {os.path.basename(path)}: {error}")

    def _restore_settings(self) -> None:
        settings = self._settings
        if settings is None:
            return
        for key, line in (("grid", self.grid_text), ("scheduler", self.scheduler)):
            value = settings.value(SETTINGS_PREFIX + key)
            if isinstance(value, str):
                line.setText(value if value.strip() or key == "scheduler" else line.text())
        for key, box in (("max_samples", self.max_samples), ("workers", self.workers)):
            value = settings.value(SETTINGS_PREFIX + key)
            try:
                if value is not None:
                    box.setValue(int(value))
            except (TypeError, ValueError):
                continue

    def _save_settings(self) -> None:
        settings = self._settings
        if settings is None:
            return
        settings.setValue(SETTINGS_PREFIX + "grid", self.grid_text.text())
        settings.setValue(SETTINGS_PREFIX + "scheduler", self.scheduler.text())
        for key, box in (("max_samples", self.max_samples), ("workers", self.workers)):
            settings.setValue(SETTINGS_PREFIX + key, box.value())


# ---- the figure ------------------------------------------------------------------------------------------------
def save_map(result: SweepResult, path: str | os.PathLike[str], x: str | None = None, y: str | None = None) -> None:
    """Draw the maps of result over axes x and y (default: result.default_map_axes) to a PNG, offscreen.

    Uses the running QApplication, or starts one on Qt's offscreen platform (no display needed)."""
    app = QApplication.instance()
    if app is None:
        app = QApplication([sys.argv[0] if sys.argv else "lstm-explorer", "-platform", "offscreen"])
    if x is None:
        x, y = result.default_map_axes()
    figure = SweepMap(figure=True)
    figure.setAttribute(Qt.WidgetAttribute.WA_DontShowOnScreen, True)
    figure.setFixedSize(*FIGURE_SIZE)
    figure.show_result(result, x, y)
    figure.show()
    app.processEvents()  # lays the plots out at the fixed size
    image = QImage(FIGURE_SIZE[0] * FIGURE_SCALE, FIGURE_SIZE[1] * FIGURE_SCALE, QImage.Format.Format_ARGB32)
    image.setDevicePixelRatio(FIGURE_SCALE)
    image.fill(Qt.GlobalColor.white)
    try:
        figure.render(image)
    finally:
        figure.close()
        figure.deleteLater()
    if not image.save(os.fspath(path), "PNG"):
        raise OSError(f"could not write {os.fspath(path)}")
