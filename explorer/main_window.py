"""The main window: transport toolbar, hyperparameters on the left, curves and heatmaps in the middle, more
views in tabs below, status bar. It owns the training thread; panels only ever see snapshots."""

from __future__ import annotations

import collections
import gc
import importlib
import math
import os
import pkgutil
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path

import numpy as np
import shiboken6
from pyqtgraph.util.garbage_collector import GarbageCollector
from PySide6.QtCore import QByteArray, QSettings, Qt, QThread, QTimer, Signal
from PySide6.QtGui import (
    QAction,
    QCloseEvent,
    QDragEnterEvent,
    QDragMoveEvent,
    QDropEvent,
    QIcon,
    QKeySequence,
    QPixmap,
)
from PySide6.QtWidgets import (
    QDockWidget,
    QFrame,
    QLabel,
    QMainWindow,
    QMessageBox,
    QScrollArea,
    QSlider,
    QSplitter,
    QStyle,
    QTabWidget,
    QWidget,
)

import core
from core.trainer import ConfigError, TrainConfig, Trainer
from explorer import resources
from explorer.panels import configure_pyqtgraph, painting_seconds
from explorer.panels.controls import ControlsPanel
from explorer.panels.curves import CurvesPanel
from explorer.panels.heatmaps import HeatmapPanel
from explorer.snapshot import Snapshot
from explorer.worker import TrainingWorker, shutdown, start_in_thread

TITLE = "LSTM Adder Explorer"
ORGANIZATION = "LSTM Adder Explorer"  # QSettings organisation and application names
APPLICATION = "lstm-explorer"
REDRAW_MS = 16  # the stages of a frame that could not be drawn at once follow at this interval
STAGE_SLICE_S = 0.004  # stages of a frame are drawn back to back in one event while together they took less
DRAW_SHARE = 0.15  # drawing (updates and painting plots) may take about this share of the time; the interpreter
# it holds meanwhile is the one the training thread needs
MAX_FRAME_RATE = 15.0  # frames a second at most: smooth to watch, and each one costs training a little
BUDGET_FRAMES = 4  # DRAW_SHARE holds over this many recent frames, so one slow frame (the curves redrawn, say)
# does not hold up the next one
TABS_SHARE = 0.28  # height of the tab area when the first view arrives, as a share of the window's
SPEED_STEPS = 100  # speed slider positions; the fraction of full speed is 10^(-4 (1 - position / 100))
SPEED_DECADES = 4.0
STATE_COLORS = {"training": "#2e7d32", "paused": "#616161", "solved": "#1565c0", "diverged": "#c62828"}
TRACE_STATUS_ENV = "LSTM_EXPLORER_TRACE_STATUS"  # when set, state changes are printed to stdout (for scripts)

# Modules named explorer.<something>_install with install(window) add views (tabs); these come first, in this
# order, and any others after them alphabetically.
VIEW_INSTALLERS = ("explorer.walkthrough_install", "explorer.insights_install")

SHORTCUTS = (
    ("Space", "Play / pause training"),
    ("→ (Right)", "Train one sample (one batch) and pause"),
    ("Ctrl+R", "Reset: new weights with the settings shown (asks first)"),
    ("Ctrl+O", "Open a saved session (or drop an .npz file on the window)"),
    ("Ctrl+S / Ctrl+Shift+S", "Save the session / save it under a new name"),
    ("Ctrl+Q", "Quit (asks first about unsaved progress of a saved session or a long run)"),
    ("F1", "This list"),
)


def app_icon() -> QIcon:
    """The application icon from the packaged SVG."""
    data = resources.read_bytes("icon.svg")
    pixmap = QPixmap()
    pixmap.loadFromData(data, "SVG")
    return QIcon(pixmap)


def install_views(window: MainWindow) -> list[str]:
    """Run every view installer on window; returns the modules installed. One failing is reported, not fatal."""
    import explorer

    found = {f"explorer.{info.name}" for info in pkgutil.iter_modules(explorer.__path__)
             if info.name.endswith("_install")}
    ordered = [name for name in VIEW_INSTALLERS if name in found] + sorted(found - set(VIEW_INSTALLERS))
    installed = []
    for name in ordered:
        try:
            importlib.import_module(name).install(window)
        except Exception:  # a broken view must not keep the window from opening
            print(f"lstm-explorer: the view from {name} could not be added:\n{traceback.format_exc()}",
                  file=sys.stderr)
            window.status_message(f"A view could not be added ({name}); see the terminal for details.", 15000)
            continue
        installed.append(name)
    return installed


_garbage_collector: GarbageCollector | None = None


def collect_garbage_in_gui_thread(interval_s: float = 1.0) -> None:
    """Turn Python's automatic garbage collection off and collect from a timer in this (the GUI) thread instead.

    Left automatic, a collection runs in whichever thread happens to allocate at the wrong moment, most often the
    training thread, and Qt objects in the garbage would then be deleted there, or in the middle of Qt delivering
    one of their own events: either can crash. Calling it again does nothing."""
    global _garbage_collector
    if _garbage_collector is None:
        _garbage_collector = GarbageCollector(interval=interval_s)
        gc.freeze()  # what exists by now (the modules) stays for good: out of sight, a full collection is quicker


def dispose(window: MainWindow) -> None:
    """Close the window (stopping its training thread) and delete it now, outside any event handler.

    Left to Python, a closed window lives on in reference cycles (its signals hold its bound methods) until the
    cyclic garbage collector runs, and that may happen inside Qt's delivery of one of the window's own pending
    events: deleting a widget while Qt delivers an event to it crashes the process."""
    if not shiboken6.isValid(window):
        return
    window.close()
    window.stop_training_thread()
    shiboken6.delete(window)


def speed_fraction(position: int) -> float:
    return float(10 ** (-SPEED_DECADES * (1 - position / SPEED_STEPS)))


def speed_text(fraction: float) -> str:
    return "full speed" if fraction >= 1 else f"{100 * fraction:.2g} % speed"


class MainWindow(QMainWindow):
    """Owns the TrainingWorker and its thread; redraws every panel from the latest snapshot."""

    sigSnapshot = Signal(object)  # the snapshot just drawn, in the GUI thread
    sigSnapshotReceived = Signal(object)  # every snapshot from the worker as it arrives, in the GUI thread
    # To the worker (queued: it lives in another thread).
    _ask_play = Signal()
    _ask_pause = Signal()
    _ask_step = Signal()
    _ask_reset = Signal(object)
    _ask_update_config = Signal(object)
    _ask_speed = Signal(float)
    _ask_probe = Signal(int, int)
    _ask_unit_scale = Signal(object)
    _ask_refresh = Signal()
    _ask_load_trainer = Signal(object)

    def __init__(self, trainer: Trainer | None = None, config: TrainConfig | None = None, *,
                 session_name: str | None = None, restore_layout: bool = True, pause_when_solved: bool = True,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        configure_pyqtgraph()
        self.setObjectName("mainWindow")
        self.setWindowIcon(app_icon())
        self.startup_session: Path | None = None  # a session file named on the command line, opened later
        self._session_name = session_name
        self._latest: Snapshot | None = None
        self._drawn: Snapshot | None = None
        self._state = "paused"
        self._traced_state: str | None = None
        self._trace_status = bool(os.environ.get(TRACE_STATUS_ENV))
        self._closed = False
        self._layout_restored = False
        self._close_guards: list[Callable[[QCloseEvent], bool]] = []
        self._drop_handler: Callable[[QDropEvent], None] | None = None

        self.worker = TrainingWorker(trainer if trainer is not None else Trainer(config),
                                     pause_when_solved=pause_when_solved)
        self.controls = ControlsPanel(self.worker.trainer.config)
        self.curves = CurvesPanel()
        self.heatmaps = HeatmapPanel()
        self.tabs = QTabWidget()
        self.tabs.setDocumentMode(True)
        self.tabs.currentChanged.connect(self._on_tab_changed)

        self._build_layout()
        self._build_actions()
        self._build_status_bar()
        self._connect_worker()
        self.set_session_name(session_name)
        # An explicit minimum keeps Qt from re-deriving it from the layout after every text change (which some
        # platform plugins report as an unsupported size-hint update).
        self.setMinimumSize(640, 480)
        self.resize(1280, 800)
        if restore_layout:
            self._restore_layout()

        # What a frame draws, in stages (see _redraw).
        self._stages = ((self.controls.update_from, self.curves.update_from), (self.heatmaps.update_from,),
                        (self._draw_tab,))
        self._stage = len(self._stages)  # the stage to draw next; all drawn
        self._staging_seconds = 0.0  # thread time spent in frame stages
        # (time.monotonic(), drawing seconds so far) at the start of each of the last BUDGET_FRAMES frames
        self._frame_starts: collections.deque[tuple[float, float]] = collections.deque(maxlen=BUDGET_FRAMES)
        self._drawn_first = True
        # Runs only while a frame is unfinished or waiting for its turn: an idle window takes no timer events
        # (each one would take the interpreter from the training thread for nothing).
        self._redraw_timer = QTimer(self)
        self._redraw_timer.setSingleShot(True)
        self._redraw_timer.timeout.connect(self._redraw)
        # The first picture is drawn here, before the worker thread starts (so the trainer is not shared yet):
        # the window's first paint then already shows the model.
        self._latest = self.worker.snapshot_now()
        self.redraw_now()
        self._thread: QThread | None = start_in_thread(self.worker)

    # ---- building -------------------------------------------------------------------------------------------
    def _build_layout(self) -> None:
        self.splitter = QSplitter(Qt.Orientation.Vertical)
        self.splitter.setObjectName("centralSplitter")
        self.splitter.addWidget(self.curves)
        self.splitter.addWidget(self.heatmaps)
        self.splitter.setStretchFactor(0, 2)
        self.splitter.setStretchFactor(1, 3)
        self.splitter.setSizes([1000, 2000])  # proportions: curves get 1/3 of the height, heatmaps 2/3
        self.splitter.setChildrenCollapsible(False)
        self.setCentralWidget(self.splitter)

        scroll = QScrollArea()
        scroll.setWidget(self.controls)
        scroll.setWidgetResizable(True)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.controls_dock = QDockWidget("Hyperparameters", self)
        self.controls_dock.setObjectName("controlsDock")
        self.controls_dock.setWidget(scroll)
        self.controls_dock.setMinimumWidth(self.controls.minimumSizeHint().width() + 12)
        self.addDockWidget(Qt.DockWidgetArea.LeftDockWidgetArea, self.controls_dock)

        self.tabs_dock = QDockWidget("More views", self)
        self.tabs_dock.setObjectName("tabsDock")
        self.tabs_dock.setWidget(self.tabs)
        self.addDockWidget(Qt.DockWidgetArea.BottomDockWidgetArea, self.tabs_dock)
        self.tabs_dock.hide()  # shown once a view is added
        self.tabs_dock.visibilityChanged.connect(self._on_tabs_visibility)

    def _build_actions(self) -> None:
        style = self.style()
        self.play_action = QAction(style.standardIcon(QStyle.StandardPixmap.SP_MediaPlay), "Play", self)
        self.play_action.setShortcut(QKeySequence(Qt.Key.Key_Space))
        self.play_action.triggered.connect(self.toggle_play)
        self.step_action = QAction(style.standardIcon(QStyle.StandardPixmap.SP_MediaSeekForward), "Step", self)
        self.step_action.setShortcut(QKeySequence(Qt.Key.Key_Right))
        self.step_action.setToolTip("Train one sample (one batch at larger batch sizes) and pause (→)")
        self.step_action.triggered.connect(self.request_step)
        self.reset_action = QAction(style.standardIcon(QStyle.StandardPixmap.SP_BrowserReload), "Reset", self)
        self.reset_action.setShortcut(QKeySequence("Ctrl+R"))
        self.reset_action.setToolTip("Start again with new weights and the settings shown (Ctrl+R)")
        self.reset_action.triggered.connect(self.confirm_reset)
        self.quit_action = QAction("Quit", self)
        self.quit_action.setShortcut(QKeySequence("Ctrl+Q"))
        self.quit_action.setToolTip("Stop training and close (Ctrl+Q)")
        self.quit_action.triggered.connect(self.close)
        self._show_play_state("paused")

        toolbar = self.addToolBar("Transport")
        toolbar.setObjectName("transportToolbar")
        toolbar.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        toolbar.setMovable(False)
        toolbar.addAction(self.play_action)
        toolbar.addAction(self.step_action)
        toolbar.addAction(self.reset_action)
        toolbar.addSeparator()
        self.speed = QSlider(Qt.Orientation.Horizontal)
        self.speed.setRange(0, SPEED_STEPS)
        self.speed.setValue(SPEED_STEPS)
        self.speed.setFixedWidth(160)
        self.speed.setToolTip("Training speed: full speed on the right, slow motion to the left "
                              "(down to a few single updates a second, so each one can be watched)")
        self.speed_label = QLabel(speed_text(1.0))
        self.speed_label.setMinimumWidth(90)
        self._speed_timer = QTimer(self, singleShot=True, interval=100)
        self._speed_timer.timeout.connect(self._send_speed)
        self.speed.valueChanged.connect(self._on_speed)
        toolbar.addWidget(QLabel(" speed "))
        toolbar.addWidget(self.speed)
        toolbar.addWidget(self.speed_label)

        menu = self.menuBar()
        self.file_menu = menu.addMenu("&File")
        self.file_menu.addSeparator()
        self.file_menu.addAction(self.quit_action)
        self.training_menu = menu.addMenu("&Training")
        for action in (self.play_action, self.step_action, self.reset_action):
            self.training_menu.addAction(action)
        self.view_menu = menu.addMenu("&View")
        self.view_menu.addAction(self.controls_dock.toggleViewAction())
        self.view_menu.addAction(self.tabs_dock.toggleViewAction())
        layout_action = self.view_menu.addAction("Reset layout")
        layout_action.triggered.connect(self.reset_layout)
        help_menu = menu.addMenu("&Help")
        shortcuts = help_menu.addAction("Keyboard shortcuts")
        shortcuts.setShortcut(QKeySequence(Qt.Key.Key_F1))
        shortcuts.triggered.connect(self.show_shortcuts)
        about = help_menu.addAction(f"About {TITLE}")
        about.triggered.connect(self.show_about)

    def _build_status_bar(self) -> None:
        bar = self.statusBar()
        self.samples_label = QLabel()
        self.samples_label.setToolTip("Training samples (additions) seen so far")
        self.rate_label = QLabel()
        self.rate_label.setToolTip("Training throughput of the latest chunk")
        self.accuracy_label = QLabel()
        self.accuracy_label.setToolTip("Share of the fixed held-out additions whose whole sum is right")
        self.state_label = QLabel()
        self.state_label.setToolTip("training, paused, solved (every sum right) or diverged (paused, weights "
                                    "restored)")
        # Fixed sizes: a label whose size may change makes the window lay out again with every new text.
        widest = {self.samples_label: "samples 000,000,000", self.rate_label: "000,000,000 samples/s",
                  self.accuracy_label: "accuracy 100.0 %", self.state_label: " training (solved) "}
        for label, text in widest.items():
            metrics = label.fontMetrics()
            label.setFixedSize(metrics.horizontalAdvance(text) + 20, metrics.height() + 6)
            label.setAlignment(Qt.AlignmentFlag.AlignCenter)
            bar.addPermanentWidget(label)
        self._show_status(None)

    def _connect_worker(self) -> None:
        worker = self.worker
        worker.sigSnapshot.connect(self._on_snapshot)
        worker.sigError.connect(self._on_worker_error)
        worker.sigStateChanged.connect(self._on_state_changed)
        self._ask_play.connect(worker.play)
        self._ask_pause.connect(worker.pause)
        self._ask_step.connect(worker.step_once)
        self._ask_reset.connect(worker.reset)
        self._ask_update_config.connect(worker.update_config)
        self._ask_speed.connect(worker.set_speed)
        self._ask_probe.connect(worker.set_probe)
        self._ask_unit_scale.connect(worker.set_unit_scale)
        self._ask_refresh.connect(worker.refresh)
        self._ask_load_trainer.connect(worker.load_trainer)
        self.controls.sigLiveChange.connect(self.request_config_change)
        self.heatmaps.sigProbeRequested.connect(self.request_probe)

    # ---- public API for panels ------------------------------------------------------------------------------
    @property
    def latest_snapshot(self) -> Snapshot | None:
        return self._latest

    def add_close_guard(self, guard: Callable[[QCloseEvent], bool]) -> None:
        """guard(event) is asked when the window is to close, the most recently added first; True keeps it open
        (the event is ignored). A method instead of an event filter: a filter on the window would run Python for
        every event the window gets (each paint, each queued snapshot), not just for the close."""
        self._close_guards.append(guard)

    def set_drop_handler(self, handler: Callable[[QDropEvent], None] | None) -> None:
        """handler(event) gets the drag enter, drag move and drop events of files dragged onto the window."""
        self._drop_handler = handler

    def add_tab(self, widget: QWidget, title: str, tooltip: str = "") -> None:
        """Add a view to the tab area below; it gets update_from(snapshot) while it is the visible tab."""
        scroll = QScrollArea()  # a view taller than the tab area scrolls instead of squeezing the heatmaps
        scroll.setWidget(widget)
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        first = self.tabs.count() == 0
        index = self.tabs.addTab(scroll, title)
        if tooltip:
            self.tabs.setTabToolTip(index, tooltip)
        self.tabs_dock.show()
        if first and not self._layout_restored:
            self.resizeDocks([self.tabs_dock], [round(TABS_SHARE * self.height())], Qt.Orientation.Vertical)
        if index == self.tabs.currentIndex():
            self._on_tab_changed(index)

    def tab_view(self, index: int) -> QWidget | None:
        """The view added as tab index (inside its scroll area)."""
        scroll = self.tabs.widget(index)
        return scroll.widget() if isinstance(scroll, QScrollArea) else scroll

    def select_tab(self, title_substring: str) -> bool:
        """Show the first tab whose title contains the text (any case); False if none does."""
        wanted = title_substring.casefold()
        for index in range(self.tabs.count()):
            if wanted in self.tabs.tabText(index).casefold():
                self.tabs_dock.show()
                self.tabs.setCurrentIndex(index)
                return True
        return False

    def status_message(self, text: str, timeout_ms: int = 5000) -> None:
        self.statusBar().showMessage(text, timeout_ms)

    def set_session_name(self, name: str | None) -> None:
        self._session_name = name
        self.setWindowTitle(f"{TITLE} — {name or 'Untitled'}")

    def request_play(self) -> None:
        self._state = "training"
        self._show_play_state("training")
        self._ask_play.emit()

    def request_pause(self) -> None:
        self._state = "paused"
        self._show_play_state("paused")
        self._ask_pause.emit()

    def toggle_play(self) -> None:
        if self._state == "training":
            self.request_pause()
        else:
            self.request_play()

    def request_step(self) -> None:
        self._state = "paused"
        self._show_play_state("paused")
        self._ask_step.emit()

    def request_reset(self, config: TrainConfig) -> None:
        """Reset without asking (confirm_reset asks first)."""
        self._state = "paused"
        self._show_play_state("paused")
        self._ask_reset.emit(config)

    def request_config_change(self, changes: dict) -> None:
        """Live hyperparameter changes, e.g. {"learning_rate": 0.3}; refused ones come back as a status message."""
        self._ask_update_config.emit(dict(changes))

    def request_speed(self, fraction: float) -> None:
        self._ask_speed.emit(float(fraction))

    def request_probe(self, a: int, b: int) -> None:
        self._ask_probe.emit(int(a), int(b))

    def request_unit_scale(self, unit_scale: np.ndarray | None) -> None:
        """Knock units out (0) or scale them in the analyses and the probe; None restores all."""
        self._ask_unit_scale.emit(None if unit_scale is None else np.array(unit_scale, dtype=np.float64))

    def request_refresh(self) -> None:
        self._ask_refresh.emit()

    def request_load_trainer(self, trainer: Trainer) -> None:
        self._state = "paused"
        self._show_play_state("paused")
        self._ask_load_trainer.emit(trainer)

    # ---- user actions ---------------------------------------------------------------------------------------
    def confirm_reset(self) -> bool:
        """Reset with the settings in the controls; asks first when there is training to lose."""
        try:
            config = self.controls.reset_config()
        except ConfigError as error:
            self.status_message(f"Reset refused: {error}", 8000)
            return False
        samples = self._latest.samples_seen if self._latest is not None else 0
        if samples > 0:
            answer = QMessageBox.question(
                self, "Reset training?",
                f"Start again with new weights?\n\nThe {samples:,} samples of training so far will be lost.",
                QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No, QMessageBox.StandardButton.No)
            if answer != QMessageBox.StandardButton.Yes:
                return False
        self.request_reset(config)
        return True

    def show_shortcuts(self) -> None:
        rows = "".join(f"<tr><td><b>{key}</b></td><td style='padding-left:16px'>{what}</td></tr>"
                       for key, what in SHORTCUTS)
        QMessageBox.information(self, "Keyboard shortcuts", f"<table>{rows}</table>")

    def show_about(self) -> None:
        QMessageBox.about(
            self, f"About {TITLE}",
            f"<h3>{TITLE} {core.__version__}</h3>"
            "<p>Watch a small LSTM, written in NumPy, learn to add two binary numbers bit by bit — "
            "and look inside it while it learns.</p>"
            f"<p>Python {sys.version.split()[0]} · NumPy {np.__version__}</p>")

    def reset_layout(self) -> None:
        self.controls_dock.show()
        self.addDockWidget(Qt.DockWidgetArea.LeftDockWidgetArea, self.controls_dock)
        self.controls_dock.setFloating(False)
        self.addDockWidget(Qt.DockWidgetArea.BottomDockWidgetArea, self.tabs_dock)
        self.tabs_dock.setFloating(False)
        self.tabs_dock.setVisible(self.tabs.count() > 0)
        self.splitter.setSizes([1000, 2000])

    # ---- snapshots and redraws ------------------------------------------------------------------------------
    def _on_snapshot(self, snapshot: Snapshot) -> None:
        """Every snapshot: the status bar follows it and sigSnapshotReceived passes it on (one call into Python
        per snapshot, whoever listens); the views draw the latest one when a frame is due."""
        self._latest = snapshot  # older ones not drawn yet are simply dropped
        self._show_status(snapshot)
        self.sigSnapshotReceived.emit(snapshot)
        if not self._closed and not self._redraw_timer.isActive():  # (else a frame is under way or waits)
            self._redraw()

    def redraw_now(self) -> None:
        """Draw the latest snapshot completely at once (normally the redraw timer does it in steps)."""
        snapshot = self._latest
        if snapshot is not None:
            self._show_status(snapshot)
            for stage in range(len(self._stages)):
                self._draw_stage(stage, snapshot)
            self.curves.flush()
            self._drawn, self._stage = snapshot, len(self._stages)

    def _redraw(self) -> None:
        """Draw the latest snapshot if a frame is due, in stages: stages follow each other in one event while
        they take less than STAGE_SLICE_S together, else the rest comes REDRAW_MS later, so no single event
        keeps the window busy long. A frame starts only when the recent frames' drawing (updates and painting)
        is at most DRAW_SHARE of the time since they began, and at most MAX_FRAME_RATE times a second, so slow
        drawing lowers the frame rate instead of starving training of the interpreter. The timer is started
        only for work that is left."""
        started = time.perf_counter()
        if self._stage >= len(self._stages):
            wait = self._frame_wait()
            if wait is None:
                return  # nothing new to draw
            if wait > 0:
                self._redraw_timer.start(max(REDRAW_MS, math.ceil(1000 * wait)))
                return
            self._frame_starts.append((time.monotonic(), self._drawing_seconds()))
            self._drawn, self._drawn_first, self._stage = self._latest, False, 0
        while self._stage < len(self._stages):
            self._draw_stage(self._stage, self._drawn)
            self._stage += 1
            if self._stage < len(self._stages) and time.perf_counter() - started > STAGE_SLICE_S:
                self._redraw_timer.start(REDRAW_MS)  # the rest after the window has painted and seen its input
                return
        if self._latest is not self._drawn:  # a newer snapshot came while this frame was drawn in stages
            self._redraw_timer.start(REDRAW_MS)

    def _frame_wait(self) -> float | None:
        """Seconds until a new frame may start (0: now), or None when the latest snapshot is drawn already."""
        if self._latest is None or self._latest is self._drawn:
            return None
        if self._drawn_first or not self._frame_starts:
            return 0.0  # the first frame is never held back
        now = time.monotonic()
        oldest, drawing_then = self._frame_starts[0]
        drawing = self._drawing_seconds() - drawing_then  # updates and paints of the recent frames
        since_last = now - self._frame_starts[-1][0]
        return max(0.0, drawing / DRAW_SHARE - (now - oldest), 1 / MAX_FRAME_RATE - since_last)

    def _drawing_seconds(self) -> float:
        """GUI-thread time spent drawing so far: frame stages and the plots' paint events. Only this counts
        against DRAW_SHARE: other work of the thread (plain widgets painting, waiting for events) does not hold
        the interpreter the training thread needs."""
        return self._staging_seconds + painting_seconds()

    def _draw_stage(self, stage: int, snapshot: Snapshot) -> None:
        started = time.thread_time()
        for draw in self._stages[stage]:
            draw(snapshot)
        self._staging_seconds += time.thread_time() - started

    def _draw_tab(self, snapshot: Snapshot) -> None:
        tab = self.tab_view(self.tabs.currentIndex())
        if tab is not None and self.tabs_dock.isVisible() and hasattr(tab, "update_from"):
            tab.update_from(snapshot)
        self.sigSnapshot.emit(snapshot)

    def _show_status(self, snapshot: Snapshot | None) -> None:
        if snapshot is None:
            self.samples_label.setText("samples 0")
            self.rate_label.setText("– samples/s")
            self.accuracy_label.setText("accuracy –")
            self._show_state("paused")
            return
        self.samples_label.setText(f"samples {snapshot.samples_seen:,}")
        self.rate_label.setText(f"{snapshot.samples_per_second:,.0f} samples/s")
        self.accuracy_label.setText(f"accuracy {100 * snapshot.accuracy:.1f} %")
        self._show_state(snapshot.state, snapshot.solved)
        if snapshot.message:
            self.status_message(snapshot.message, 10000 if snapshot.state in ("solved", "diverged") else 5000)
        if self._trace_status and snapshot.state != self._traced_state:
            self._traced_state = snapshot.state
            print(f"state {snapshot.state} samples {snapshot.samples_seen}", flush=True)

    def _show_state(self, state: str, solved: bool = False) -> None:
        text = state if not (solved and state == "training") else "training (solved)"
        if self.state_label.text() == f" {text} ":
            return
        self.state_label.setText(f" {text} ")
        self.state_label.setStyleSheet(f"color: white; background: {STATE_COLORS[state]}; border-radius: 3px;"
                                       " font-weight: bold;")

    def _show_play_state(self, state: str) -> None:
        playing = state == "training"
        style = self.style()
        pixmap = QStyle.StandardPixmap.SP_MediaPause if playing else QStyle.StandardPixmap.SP_MediaPlay
        self.play_action.setIcon(style.standardIcon(pixmap))
        self.play_action.setText("Pause" if playing else "Play")
        self.play_action.setToolTip(("Pause training" if playing else "Start training") + " (Space)")

    def _on_state_changed(self, state: str) -> None:
        """The worker's word on its state wins over what the buttons assumed (it may pause by itself)."""
        self._state = state
        self._show_play_state(state)

    def _on_worker_error(self, text: str) -> None:
        self.status_message(f"⚠ {text}", 10000)
        self.controls.resync()

    def _on_tab_changed(self, index: int) -> None:
        tab = self.tab_view(index)
        if tab is not None and self._latest is not None and hasattr(tab, "update_from"):
            tab.update_from(self._latest)

    def _on_tabs_visibility(self, visible: bool) -> None:
        if visible:
            self._on_tab_changed(self.tabs.currentIndex())

    def _on_speed(self, position: int) -> None:
        self.speed_label.setText(speed_text(speed_fraction(position)))
        self._speed_timer.start()

    def _send_speed(self) -> None:
        self.request_speed(speed_fraction(self.speed.value()))

    # ---- settings and shutdown ------------------------------------------------------------------------------
    def _settings(self) -> QSettings:
        return QSettings(ORGANIZATION, APPLICATION)

    def _restore_layout(self) -> None:
        settings = self._settings()
        geometry = settings.value("window/geometry")
        if isinstance(geometry, QByteArray) and not geometry.isEmpty():
            self.restoreGeometry(geometry)
        state = settings.value("window/state")
        if isinstance(state, QByteArray) and not state.isEmpty():
            self._layout_restored = self.restoreState(state)
        splitter = settings.value("window/splitter")
        if isinstance(splitter, QByteArray) and not splitter.isEmpty():
            self.splitter.restoreState(splitter)

    def save_layout(self) -> None:
        settings = self._settings()
        settings.setValue("window/geometry", self.saveGeometry())
        settings.setValue("window/state", self.saveState())
        settings.setValue("window/splitter", self.splitter.saveState())

    def stop_training_thread(self, timeout_ms: int = 2000) -> bool:
        """Stop the worker and its thread (flag, quit, wait); True if it ended in time. Safe to call twice."""
        if self._thread is None:
            return True
        ended = shutdown(self.worker, self._thread, timeout_ms)
        if ended:
            self._thread = None
        return ended

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        self._handle_drop(event)

    def dragMoveEvent(self, event: QDragMoveEvent) -> None:
        self._handle_drop(event)

    def dropEvent(self, event: QDropEvent) -> None:
        self._handle_drop(event)

    def _handle_drop(self, event: QDropEvent) -> None:
        if self._drop_handler is None:
            event.ignore()
        else:
            self._drop_handler(event)

    def closeEvent(self, event: QCloseEvent) -> None:
        for guard in reversed(self._close_guards):
            if guard(event):
                event.ignore()
                return
        if not self._closed:
            self._closed = True
            self._redraw_timer.stop()
            self.save_layout()
            self.stop_training_thread()
            if self._trace_status:
                samples = self._latest.samples_seen if self._latest is not None else 0
                print(f"closed samples {samples}", flush=True)
        super().closeEvent(event)
