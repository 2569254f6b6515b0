"""The hyperparameter map: samples-to-solve over a grid of learning rate × hidden size (× seeds), trained in
parallel processes by core.sweep.run_sweep, drawn as a heatmap that fills in as cells finish.

The sweep runs in a SweepRunner (a QThread) that only waits on the worker processes; its progress reaches the
panel by queued signals, so the window stays responsive. Cancel sets run_sweep's cancel flag: queued cells are
dropped, running ones stop at their next chunk, and every worker process has exited when the thread ends.
"""

from __future__ import annotations

import math
import os
import threading
import time

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRectF, QSettings, QThread, Signal, Slot
from PySide6.QtGui import QCursor
from PySide6.QtWidgets import (
    QFileDialog,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QSizePolicy,
    QSpinBox,
    QToolTip,
    QVBoxLayout,
    QWidget,
)

from core import sweep
from core.sweep import CellResult, SweepResult
from core.trainer import MAX_HIDDEN, ConfigError, TrainConfig
from explorer.panels import GraphicsLayoutWidget, SteadyLabel, configure_pyqtgraph, outward_ticks, panel_title

DEFAULT_LEARNING_RATES = "0.03, 0.1, 0.3, 1"
DEFAULT_HIDDEN_SIZES = "4, 8, 16, 32"
DEFAULT_SEEDS = 3
DEFAULT_MAX_SAMPLES = 20_000
MAX_VALUES = 12  # per axis: the cells must stay big enough to read
MAX_LEARNING_RATE = 1e4  # what TrainConfig accepts
UNSOLVED_COLOR = (205, 205, 205, 255)  # cells where the median seed did not solve within the budget
CELL_TEXT_LIMIT = 144  # above this many cells the numbers inside them are left out (they would not fit)
SETTINGS_PREFIX = "sweep/"
READOUT_HINT = "bright = fast · grey ✗ = not solved within the budget · n/m = seeds solved / run · point at a cell"


def parse_values(text: str, kind: type, low: float, high: float) -> tuple[list, str]:
    """Comma- or space-separated numbers of `kind` within [low, high], sorted and without repeats:
    (values, "") or ([], what is wrong)."""
    parts = [part for part in text.replace(",", " ").split() if part]
    if not parts:
        return [], "give at least one value"
    values = []
    for part in parts:
        try:
            value = kind(part)
        except ValueError:
            return [], f"“{part}” is not a {'whole number' if kind is int else 'number'}"
        if not (isinstance(value, int) or math.isfinite(value)) or not low <= value <= high:
            return [], f"{part} is outside {low:g} … {high:g}"
        values.append(value)
    values = sorted(set(values))
    if len(values) > MAX_VALUES:
        return [], f"at most {MAX_VALUES} values"
    return values, ""


def short_count(samples: float) -> str:
    """7100 -> '7.1k', 950 -> '950', 1,250,000 -> '1.2M'."""
    if samples >= 1e6:
        return f"{samples / 1e6:.2g}M"
    if samples >= 1e3:
        return f"{samples / 1e3:.2g}k" if samples < 1e4 else f"{samples / 1e3:.0f}k"
    return f"{samples:.0f}"


def cell_index(result: SweepResult, cell: CellResult) -> tuple[int, int, int]:
    """Where a finished cell belongs in the result's (learning rate, hidden size, seed) grid."""
    config = cell.config
    return (result.learning_rates.index(config.learning_rate), result.hidden_sizes.index(config.hidden_size),
            result.seeds.index(config.seed))


class SweepRunner(QThread):
    """Runs core.sweep.run_sweep in its own thread; reports through signals only."""

    sigCellDone = Signal(int, int, object)  # done, total, CellResult
    sigSweepDone = Signal(object)  # the SweepResult (cancelled=True if cancelled)
    sigFailed = Signal(str)

    def __init__(self, learning_rates: list[float], hidden_sizes: list[int], seeds: list[int],
                 base_config: TrainConfig, max_samples: int, workers: int, chunk: int = sweep.DEFAULT_CHUNK,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("sweep")
        self.arguments = dict(learning_rates=learning_rates, hidden_sizes=hidden_sizes, seeds=seeds,
                              base_config=base_config, max_samples=max_samples, workers=workers, chunk=chunk)
        self._cancel = threading.Event()

    def cancel(self) -> None:
        """Ask the sweep to stop; callable from any thread. The thread ends once every process has exited."""
        self._cancel.set()

    @property
    def cancelling(self) -> bool:
        return self._cancel.is_set()

    def run(self) -> None:  # in the new thread
        try:
            result = sweep.run_sweep(**self.arguments, progress=self._report, cancel=self._cancel)
        except Exception as error:  # reported to the user; the sweep is over either way
            self.sigFailed.emit(f"{type(error).__name__}: {error}")
            return
        self.sigSweepDone.emit(result)

    def _report(self, done: int, total: int, cell: CellResult) -> None:
        self.sigCellDone.emit(done, total, cell)


class SweepMap(QWidget):
    """The heatmap: learning rate across, hidden size up, colour = log median samples to solve."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        configure_pyqtgraph()
        self.result: SweepResult | None = None
        self._shape: tuple[int, int] = (0, 0)
        self._texts: list[list[pg.TextItem]] = []
        self._levels = (2.0, math.log10(DEFAULT_MAX_SAMPLES))
        self.view = GraphicsLayoutWidget()
        self.view.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Ignored)
        self.view.setMinimumHeight(150)
        self.plot = self.view.addPlot(enableMenu=False)
        self.plot.setTitle("Median samples to solve (every sum right)", size="10pt")
        self.plot.setLabel("bottom", "learning rate")
        self.plot.setLabel("left", "hidden units")
        for name in ("bottom", "left"):
            self.plot.getAxis(name).enableAutoSIPrefix(False)  # the ticks are labels, not coordinates
        self.plot.setMouseEnabled(False, False)
        self.plot.hideButtons()
        outward_ticks(self.plot)
        self.unsolved = pg.ImageItem(axisOrder="row-major")  # grey under cells whose median did not solve
        self.unsolved.setZValue(-1)
        self.plot.addItem(self.unsolved)
        self.image = pg.ImageItem(axisOrder="row-major")  # log10 median; NaN (not run, unsolved) is transparent
        self.plot.addItem(self.image)
        colormap = pg.colormap.get("viridis")
        colormap.reverse()  # bright = few samples = fast
        self.colorbar = pg.ColorBarItem(values=self._levels, colorMap=colormap, interactive=False, width=12,
                                        label="samples")
        self.colorbar.setImageItem(self.image, insert_in=self.plot)
        self.hint = pg.TextItem("", anchor=(0.5, 0.5), color=(90, 90, 90))  # what to do while the map is empty
        self.plot.addItem(self.hint, ignoreBounds=True)
        self.readout = SteadyLabel(READOUT_HINT)
        self.readout.setToolTip("The cell under the mouse pointer: every seed's samples-to-solve")
        self.view.scene().sigMouseMoved.connect(self._on_mouse_moved)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(2)
        layout.addWidget(self.view, 1)
        layout.addWidget(self.readout)
        self._set_colorbar_ticks()

    def show_result(self, result: SweepResult | None) -> None:
        """Draw result (which may be partly filled while the sweep runs); None clears the map."""
        self.result = result
        if result is None:
            self.image.clear()
            self.unsolved.clear()
            self._reshape(0, 0)
            self.hint.setText("Type learning rates and hidden sizes, then press Start")
            self.hint.setPos(0, 0)
            return
        levels = (math.log10(min(sweep.DEFAULT_CHUNK, result.max_samples)), math.log10(max(result.max_samples, 10)))
        if levels[1] <= levels[0]:
            levels = (levels[0], levels[0] + 1)
        if levels != self._levels:
            self._levels = levels
            self.colorbar.setLevels(levels)
            self._set_colorbar_ticks()
        n_lr, n_hidden = len(result.learning_rates), len(result.hidden_sizes)
        if (n_lr, n_hidden) != self._shape:
            self._reshape(n_lr, n_hidden)
        medians = result.median_samples_to_solve().T  # (hidden, lr): hidden sizes up, learning rates across
        with np.errstate(divide="ignore"):
            logs = np.where(np.isfinite(medians), np.log10(np.maximum(medians, 1.0)), np.nan)
        if np.all(np.isnan(logs)):
            self.image.clear()
        else:
            self.image.setImage(logs, autoLevels=False, levels=levels)
            self.image.setRect(QRectF(-0.5, -0.5, n_lr, n_hidden))
        self.hint.setText("" if result.cells else "Press Start: every cell trains until all sums are right")
        self.hint.setPos((n_lr - 1) / 2, (n_hidden - 1) / 2)
        grey = np.zeros((*medians.shape, 4), dtype=np.uint8)
        grey[np.isinf(medians)] = UNSOLVED_COLOR
        self.unsolved.setImage(grey, autoLevels=False)
        self.unsolved.setRect(QRectF(-0.5, -0.5, n_lr, n_hidden))
        self._write_cells(result, medians, logs)

    def _reshape(self, n_lr: int, n_hidden: int) -> None:
        """New axes and one text item per cell (only when the grid's shape changes)."""
        for row in self._texts:
            for text in row:
                self.plot.removeItem(text)
        self._texts = []
        self._shape = (n_lr, n_hidden)
        if not n_lr or not n_hidden:
            return
        result = self.result
        self.plot.setRange(xRange=(-0.5, n_lr - 0.5), yRange=(-0.5, n_hidden - 0.5), padding=0)
        self.plot.getAxis("bottom").setTicks([[(i, f"{lr:g}") for i, lr in enumerate(result.learning_rates)], []])
        self.plot.getAxis("left").setTicks([[(j, str(h)) for j, h in enumerate(result.hidden_sizes)], []])
        if n_lr * n_hidden > CELL_TEXT_LIMIT:
            return
        for j in range(n_hidden):
            row = []
            for i in range(n_lr):
                text = pg.TextItem("", anchor=(0.5, 0.5))
                text.setPos(i, j)
                self.plot.addItem(text)
                row.append(text)
            self._texts.append(row)

    def _write_cells(self, result: SweepResult, medians: np.ndarray, logs: np.ndarray) -> None:
        if not self._texts:
            return
        solved = result.solved_fraction().T
        samples = result.samples_to_solve()
        low, high = self._levels
        for j, row in enumerate(self._texts):
            for i, text in enumerate(row):
                ran = int(np.count_nonzero(~np.isnan(samples[i, j])))
                if not ran:
                    text.setText("")
                    continue
                seeds = len(result.seeds)
                count = f"{round(solved[j, i] * ran)}/{ran}" if seeds > 1 else ""
                if np.isinf(medians[j, i]):
                    text.setText(f"✗ {count}".strip(), color=(90, 90, 90))
                    continue
                shade = (logs[j, i] - low) / (high - low)  # 0 bright (fast) … 1 dark (slow)
                text.setText(f"{short_count(medians[j, i])} {count}".strip(),
                             color=(255, 255, 255) if shade > 0.55 else (0, 0, 0))

    def _set_colorbar_ticks(self) -> None:
        low, high = self._levels
        # Short labels, as in the cells: a bar this narrow has no room for "10,000" (pyqtgraph drops such a label).
        ticks = [(float(k), short_count(10 ** k)) for k in range(math.ceil(low), math.floor(high) + 1)]
        if not ticks or ticks[-1][0] < high - 0.15:
            ticks.append((high, short_count(10 ** high)))
        self.colorbar.axis.setTicks([ticks, []])

    def cell_text(self, i: int, j: int) -> str:
        """What the readout says about learning rate index i and hidden size index j."""
        result = self.result
        if result is None or not (0 <= i < len(result.learning_rates) and 0 <= j < len(result.hidden_sizes)):
            return ""
        where = f"lr {result.learning_rates[i]:g} · {result.hidden_sizes[j]} hidden units"
        cells = [result.cells.get((i, j, k)) for k in range(len(result.seeds))]
        done = [cell for cell in cells if cell is not None]
        if not done:
            return f"{where}: not run yet"
        median = result.median_samples_to_solve()[i, j]
        head = (f"median {median:,.0f} samples to solve" if np.isfinite(median)
                else f"median not solved within {result.max_samples:,} samples")
        per_seed = []
        for cell in done:
            seed = f"seed {cell.config.seed}: "
            if cell.solved:
                per_seed.append(f"{seed}{cell.samples_to_solve:,} ({cell.seconds_to_solve:.1f} s)")
            elif cell.diverged:
                per_seed.append(f"{seed}diverged")
            else:
                per_seed.append(f"{seed}not solved ({100 * cell.accuracy:.0f} % right)")
        return f"{where}: {head}\n" + "; ".join(per_seed)

    def _on_mouse_moved(self, position) -> None:
        box = self.plot.getViewBox()
        text = ""
        if self.result is not None and box.sceneBoundingRect().contains(position):
            point = box.mapSceneToView(position)
            text = self.cell_text(round(point.x()), round(point.y()))
        self.readout.setText(text.replace("\n", " — ") if text else READOUT_HINT)
        if text:
            QToolTip.showText(QCursor.pos(), text, self.view)
        else:
            QToolTip.hideText()


class SweepPanel(QWidget):
    """Grid settings, Start / Cancel / Export CSV, a progress bar, and the map."""

    sigFinished = Signal(object)  # the SweepResult, when a sweep ends (finished or cancelled)

    def __init__(self, settings: QSettings | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._settings = settings
        self._base = TrainConfig()
        self.runner: SweepRunner | None = None
        self.result: SweepResult | None = None
        self._started = 0.0

        self.learning_rates = QLineEdit(DEFAULT_LEARNING_RATES)
        self.learning_rates.setToolTip("Learning rates to try, separated by commas or spaces")
        self.hidden_sizes = QLineEdit(DEFAULT_HIDDEN_SIZES)
        self.hidden_sizes.setToolTip(f"Hidden sizes to try (1 … {MAX_HIDDEN}), separated by commas or spaces")
        self.seeds = QSpinBox()
        self.seeds.setRange(1, 50)
        self.seeds.setValue(DEFAULT_SEEDS)
        self.seeds.setToolTip("Seeds 0 … N−1 per cell: each seed draws other initial weights and samples; the map "
                              "shows the median")
        self.max_samples = QSpinBox()
        self.max_samples.setRange(100, 10_000_000)
        self.max_samples.setSingleStep(1000)
        self.max_samples.setGroupSeparatorShown(True)
        self.max_samples.setValue(DEFAULT_MAX_SAMPLES)
        self.max_samples.setToolTip("Training budget per cell: a run not solved by then counts as unsolved")
        self.workers = QSpinBox()
        cpus = os.cpu_count() or 1
        self.workers.setRange(1, max(1, 4 * cpus))
        self.workers.setValue(cpus)
        self.workers.setToolTip(f"Processes training cells at the same time (this computer has {cpus} CPUs)")
        self.base_label = QLabel()
        self.base_label.setStyleSheet("color: #555")
        self.error = QLabel()
        self.error.setStyleSheet("color: #c62828")
        self.error.setWordWrap(True)
        self.error.hide()

        self.start_button = QPushButton("Start")
        self.start_button.setToolTip("Train every cell of the grid in parallel processes")
        self.start_button.clicked.connect(self.start)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setToolTip("Stop the sweep: running cells stop at once, the rest are dropped")
        self.cancel_button.clicked.connect(self.cancel)
        self.cancel_button.setEnabled(False)
        self.export_button = QPushButton("Export CSV…")
        self.export_button.setToolTip("One row per cell: settings, samples and seconds to solve, accuracy")
        self.export_button.clicked.connect(self._ask_export)
        self.export_button.setEnabled(False)
        self.progress = QProgressBar()
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        self.progress.setFormat("no sweep yet")
        self.status = SteadyLabel("", lines=2)
        self.status.label.setWordWrap(True)
        self.map = SweepMap()

        self._restore_settings()
        self._layout()
        self._show_base()
        self._preview()
        self.learning_rates.textChanged.connect(self._preview)
        self.hidden_sizes.textChanged.connect(self._preview)
        self.seeds.valueChanged.connect(self._preview)
        self.max_samples.valueChanged.connect(self._preview)

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
        rows = (("learning rates", self.learning_rates, "seeds", self.seeds),
                ("hidden sizes", self.hidden_sizes, "max samples", self.max_samples))
        for row, (label, field, second_label, second_field) in enumerate(rows, start=1):
            grid.addWidget(QLabel(label), row, 0)
            grid.addWidget(field, row, 1)
            grid.addWidget(QLabel(second_label), row, 2)
            grid.addWidget(second_field, row, 3)
        buttons = QHBoxLayout()
        buttons.setContentsMargins(0, 0, 0, 0)
        for button in (self.start_button, self.cancel_button, self.export_button):
            buttons.addWidget(button)
        grid.addLayout(buttons, 3, 0, 1, 2)
        grid.addWidget(QLabel("processes"), 3, 2)
        grid.addWidget(self.workers, 3, 3)
        grid.addWidget(self.progress, 4, 0, 1, 4)
        grid.addWidget(self.status, 5, 0, 1, 4)
        grid.addWidget(self.error, 6, 0, 1, 4)
        grid.setRowStretch(7, 1)
        grid.setColumnStretch(1, 1)
        holder = QWidget()
        holder.setLayout(grid)
        holder.setFixedWidth(470)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(holder)
        layout.addWidget(self.map, 1)

    # ---- public API -----------------------------------------------------------------------------------------
    @property
    def running(self) -> bool:
        return self.runner is not None

    def update_from(self, snapshot: object) -> None:
        """Follow the current run's settings, which the next sweep starts from."""
        config = getattr(snapshot, "config", None)
        if isinstance(config, TrainConfig) and config != self._base:
            self._base = config
            self._show_base()

    def set_base_config(self, config: TrainConfig) -> None:
        self._base = config
        self._show_base()

    def grid(self) -> tuple[list[float], list[int], list[int]] | None:
        """(learning rates, hidden sizes, seeds) as typed, or None after showing what is wrong."""
        learning_rates, problem = parse_values(self.learning_rates.text(), float, 1e-12, MAX_LEARNING_RATE)
        if problem:
            self._show_error(f"Learning rates: {problem}.")
            return None
        hidden_sizes, problem = parse_values(self.hidden_sizes.text(), int, 1, MAX_HIDDEN)
        if problem:
            self._show_error(f"Hidden sizes: {problem}.")
            return None
        return learning_rates, hidden_sizes, list(range(self.seeds.value()))

    def start(self) -> bool:
        """Start a sweep with the settings shown; False (with the reason shown) if they are not valid."""
        if self.runner is not None:
            return False
        grid = self.grid()
        if grid is None:
            return False
        learning_rates, hidden_sizes, seeds = grid
        base = self._sweep_base()
        try:
            sweep.grid_cells(learning_rates, hidden_sizes, seeds, base)  # every config checked before starting
        except ConfigError as error:
            self._show_error(str(error))
            return False
        self.error.hide()
        self._save_settings()
        max_samples = self.max_samples.value()
        self.result = SweepResult(tuple(learning_rates), tuple(hidden_sizes), tuple(seeds), max_samples)
        total = self.result.total
        self.progress.setRange(0, total)
        self.progress.setValue(0)
        self.progress.setFormat("%v / %m cells")
        workers = min(self.workers.value(), total)
        self.status.setText(f"Starting {workers} process{'es' if workers > 1 else ''} for {total} cells…")
        self.map.show_result(self.result)
        runner = SweepRunner(learning_rates, hidden_sizes, seeds, base, max_samples, workers, parent=self)
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
        """Stop the running sweep; the thread ends (and the buttons come back) once its processes have exited."""
        if self.runner is not None and not self.runner.cancelling:
            self.runner.cancel()
            self.cancel_button.setEnabled(False)
            self.status.setText("Cancelling: stopping the running cells…")

    def shutdown(self, timeout_ms: int = 10_000) -> bool:
        """Cancel and wait for the thread (for closing the window); True if nothing is left running."""
        runner = self.runner
        if runner is None:
            return True
        runner.cancel()
        ended = runner.wait(timeout_ms)
        if ended:
            self._on_thread_finished()
        return ended

    def export_csv(self, path: str | os.PathLike[str]) -> int:
        """Write the cells finished so far as CSV (core.sweep's columns); returns the number of rows."""
        if self.result is None:
            raise ValueError("no sweep to export")
        sweep.write_csv(self.result, path)
        return len(self.result.cells)

    # ---- sweep events (queued from the runner's thread) -----------------------------------------------------
    @Slot(int, int, object)
    def _on_cell_done(self, done: int, total: int, cell: CellResult) -> None:
        if self.result is None:
            return
        self.result.cells[cell_index(self.result, cell)] = cell
        self.progress.setValue(done)
        self.export_button.setEnabled(True)
        elapsed = time.monotonic() - self._started
        remaining = elapsed / done * (total - done)
        config = cell.config
        outcome = (f"solved at {cell.samples_to_solve:,}" if cell.solved else
                   "diverged" if cell.diverged else "not solved")
        if not self.runner or not self.runner.cancelling:
            self.status.setText(f"{done} of {total} cells, about {remaining:.0f} s left\n"
                                f"last: lr {config.learning_rate:g}, H{config.hidden_size}, seed {config.seed}: "
                                f"{outcome}")
        self.map.show_result(self.result)

    @Slot(object)
    def _on_sweep_done(self, result: SweepResult) -> None:
        self.result = result
        self.map.show_result(result)
        self.progress.setValue(len(result.cells))
        self.export_button.setEnabled(bool(result.cells))
        elapsed = time.monotonic() - self._started
        if result.cancelled:
            self.status.setText(f"Cancelled after {elapsed:.1f} s: {len(result.cells)} of {result.total} cells "
                                "finished.")
        else:
            self.status.setText(f"Done: {result.total} cells in {elapsed:.1f} s. {self._best(result)}")
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

    # ---- helpers --------------------------------------------------------------------------------------------
    def _preview(self) -> None:
        """Until a sweep has results, the map shows the grid as typed (empty cells), so its shape is clear."""
        if self.runner is not None or (self.result is not None and self.result.cells):
            return
        learning_rates, problem = parse_values(self.learning_rates.text(), float, 1e-12, MAX_LEARNING_RATE)
        hidden_sizes, other_problem = parse_values(self.hidden_sizes.text(), int, 1, MAX_HIDDEN)
        if problem or other_problem:
            self.map.show_result(None)
            return
        self.map.show_result(SweepResult(tuple(learning_rates), tuple(hidden_sizes), tuple(range(self.seeds.value())),
                                         self.max_samples.value()))

    def _sweep_base(self) -> TrainConfig:
        return self._base.replace()  # a validated copy

    def _best(self, result: SweepResult) -> str:
        medians = result.median_samples_to_solve()
        if not np.any(np.isfinite(medians)):
            return "No cell solved within the budget."
        i, j = np.unravel_index(np.nanargmin(np.where(np.isfinite(medians), medians, np.nan)), medians.shape)
        return (f"Fastest: lr {result.learning_rates[i]:g}, {result.hidden_sizes[j]} units, median "
                f"{medians[i, j]:,.0f} samples.")

    def _set_running(self, running: bool) -> None:
        self.start_button.setEnabled(not running)
        self.cancel_button.setEnabled(running)
        for widget in (self.learning_rates, self.hidden_sizes, self.seeds, self.max_samples, self.workers):
            widget.setEnabled(not running)

    def _show_error(self, text: str) -> None:
        self.error.setText(text)
        self.error.show()

    def _show_base(self) -> None:
        base = self._base
        model = "plain RNN" if base.model == "rnn" else "LSTM"
        clip = f", clip {base.clip_norm:g}" if base.clip_norm else ""
        self.base_label.setText(f"{model} · {base.optimizer} · batch {base.batch_size} · {base.n_bits} bits")
        self.base_label.setToolTip(
            "The sweep varies learning rate, hidden size and seed; everything else is taken from the current run "
            f"when Start is pressed:\n{model}, optimizer {base.optimizer}, batch {base.batch_size}{clip}, "
            f"{base.n_bits} bits, {base.init} initial weights, {base.dtype}")

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

    def _restore_settings(self) -> None:
        settings = self._settings
        if settings is None:
            return
        for key, line in (("learning_rates", self.learning_rates), ("hidden_sizes", self.hidden_sizes)):
            value = settings.value(SETTINGS_PREFIX + key)
            if isinstance(value, str) and value.strip():
                line.setText(value)
        for key, box in (("seeds", self.seeds), ("max_samples", self.max_samples), ("workers", self.workers)):
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
        settings.setValue(SETTINGS_PREFIX + "learning_rates", self.learning_rates.text())
        settings.setValue(SETTINGS_PREFIX + "hidden_sizes", self.hidden_sizes.text())
        for key, box in (("seeds", self.seeds), ("max_samples", self.max_samples), ("workers", self.workers)):
            settings.setValue(SETTINGS_PREFIX + key, box.value())
