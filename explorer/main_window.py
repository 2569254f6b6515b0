"""The main window: transport toolbar, hyperparameters on the left, curves and heatmaps in the middle, the views of
TAB_VIEWS in tabs below, status bar. It owns the training thread and the controller; views only see snapshots."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import shiboken6
from PySide6.QtCore import QByteArray, QEvent, QObject, Qt, QThread, QTimer, Signal
from PySide6.QtGui import (
    QAction,
    QActionGroup,
    QCloseEvent,
    QDragEnterEvent,
    QDragMoveEvent,
    QDropEvent,
    QIcon,
    QKeyEvent,
    QKeySequence,
    QPixmap,
    QShowEvent,
)
from PySide6.QtWidgets import (
    QAbstractButton,
    QAbstractItemView,
    QAbstractSlider,
    QAbstractSpinBox,
    QComboBox,
    QDockWidget,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMainWindow,
    QMessageBox,
    QPushButton,
    QScrollArea,
    QSlider,
    QSplitter,
    QStyle,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

import core
from core.trainer import ConfigError, TrainConfig, Trainer
from explorer import engine_prep, pacing, resources, settings
from explorer.controller import Controller, Focus
from explorer.panels import (
    codeview,
    configure_pyqtgraph,
    error_grid,
    gradients,
    knockout,
    length,
    saturation,
    stepthrough,
    story,
    sweep_tab,
)
from explorer.panels.controls import ControlsPanel
from explorer.panels.curves import CurvesPanel
from explorer.panels.heatmaps import HeatmapPanel
from explorer.panels.scrubber import ScrubberBar
from explorer.run_overlays import RunOverlays
from explorer.sessions import SessionController
from explorer.snapshot import Snapshot
from explorer.views import TabHost, View, ViewContext
from explorer.worker import TrainingWorker, shutdown, start_in_thread

TITLE = "LSTM Adder Explorer"

# The views in the tab area, in this order: one module each, with view(context) -> View.
TAB_VIEWS: tuple[Callable[[ViewContext], View], ...] = (
    stepthrough.view,
    codeview.view,
    story.view,
    error_grid.view,
    length.view,
    saturation.view,
    gradients.view,
    knockout.view,
    sweep_tab.view,
)

LAYOUT_VERSION = 2  # a layout saved by an older version (other docks, other tabs) is not restored
TABS_SHARE = 0.32  # height of the tab area, as a share of the window's, until the user moves it
TAB_FRAME_RATE = 6.0  # frames a second at most of the view in the tab area while training (the heatmaps and the
# curves draw at the window's full frame rate)
SPLIT = [1000, 1400]  # curves and heatmaps: 42 % and 58 % of the middle, until the user moves it
SPEED_STEPS = 100  # speed slider positions; the fraction of full speed is 10^(-4 (1 - position / 100))
SPEED_DECADES = 4.0
STATE_COLORS = {"training": "#2e7d32", "paused": "#616161", "solved": "#1565c0", "diverged": "#c62828"}
TRACE_STATUS_ENV = "LSTM_EXPLORER_TRACE_STATUS"  # when set, state changes are printed to stdout (for scripts)
ENGINE_LABELS = {"auto": "Automatic: compiled when ready, NumPy until then", "numpy": "NumPy",
                 "compiled": "Compiled (numba)"}
HINT = "Press <b>Space</b> to train · step through one addition, bit by bit, in the <b>Step through</b> tab below"

# (name, what it shows, settings)
PRESETS: tuple[tuple[str, str, TrainConfig], ...] = (
    ("Notebook defaults", "the original notebook: 16 units, online SGD at lr 0.1, seed 0", TrainConfig()),
    ("Learning rate too high", "lr 5: watch the loss jump about and training diverge (then the fixes it offers)",
     TrainConfig(learning_rate=5.0)),
    ("One unit", "a single LSTM unit: can one cell hold the carry?", TrainConfig(hidden_size=1)),
    ("Plain RNN", "the plain tanh RNN of the classic tutorial: no gates, no cell", TrainConfig(model="rnn")),
    ("Adam, batch 16", "Adam at lr 0.01 on batches of 16 additions",
     TrainConfig(optimizer="adam", learning_rate=0.01, batch_size=16)),
)

SHORTCUTS = (
    ("Space", "Play / pause training (when no text field or button has the keyboard)"),
    ("→ (Right)", "Train one sample (one batch) and pause — unless a slider, field or the step-through has the "
                  "keyboard: then it moves that"),
    ("← / → / Home in Step through", "Move through the bits of the addition"),
    ("Ctrl+Z", "Undo the last live change (a hyperparameter, or a knockout)"),
    ("Ctrl+R", "Reset: new weights with the settings shown (asks first)"),
    ("Ctrl+O", "Open a saved session (or drop an .npz file on the window)"),
    ("Ctrl+S / Ctrl+Shift+S", "Save the session / save it under a new name"),
    ("Ctrl+Q", "Quit (asks first about unsaved progress of a saved session or a long run)"),
    ("F1", "This list"),
)


def app_icon() -> QIcon:
    """The application icon from the packaged SVG."""
    pixmap = QPixmap()
    pixmap.loadFromData(resources.read_bytes("icon.svg"), "SVG")
    return QIcon(pixmap)


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


# Keys a focused control keeps for itself instead of the window's shortcuts (→ is "train one step" only when no
# control wants it).
_NAVIGATION = {Qt.Key.Key_Left, Qt.Key.Key_Right, Qt.Key.Key_Up, Qt.Key.Key_Down, Qt.Key.Key_Home, Qt.Key.Key_End,
               Qt.Key.Key_PageUp, Qt.Key.Key_PageDown}
_KEPT_KEYS: tuple[tuple[type, set], ...] = (
    (QAbstractSlider, _NAVIGATION),
    (QAbstractSpinBox, _NAVIGATION | {Qt.Key.Key_Space}),
    (QLineEdit, _NAVIGATION | {Qt.Key.Key_Space}),
    (QComboBox, _NAVIGATION | {Qt.Key.Key_Space}),
    (QAbstractItemView, _NAVIGATION),
    (QAbstractButton, {Qt.Key.Key_Space}),
)


class KeyGuard(QObject):
    """Installed on every input control: the keys it uses go to it, not to a window shortcut, while it has the
    keyboard. (Qt gives a shortcut priority unless the focused widget claims the key.)"""

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if event.type() == QEvent.Type.ShortcutOverride and isinstance(event, QKeyEvent):
            modifiers = event.modifiers() & ~Qt.KeyboardModifier.KeypadModifier
            if modifiers == Qt.KeyboardModifier.NoModifier and Qt.Key(event.key()) in kept_keys(watched):
                event.accept()
        return False


def kept_keys(widget: QObject) -> set:
    for kind, keys in _KEPT_KEYS:
        if isinstance(widget, kind):
            return keys
    return set()


class MainWindow(QMainWindow):
    """Owns the TrainingWorker, its thread and the controller; draws every view from the latest snapshot."""

    sigSnapshot = Signal(object)  # the snapshot just drawn, in the GUI thread
    sigSnapshotReceived = Signal(object)  # every snapshot from the worker as it arrives, in the GUI thread

    def __init__(self, trainer: Trainer | None = None, config: TrainConfig | None = None, *,
                 session_name: str | None = None, restore_layout: bool = True, pause_when_solved: bool = True,
                 engine: str = "numpy", parent: QWidget | None = None) -> None:
        super().__init__(parent)
        configure_pyqtgraph()
        self.setObjectName("mainWindow")
        self.setWindowIcon(app_icon())
        self.startup_session: Path | None = None  # a session file named on the command line, opened later
        self._latest: Snapshot | None = None
        self._state = "paused"
        self._traced_state: str | None = None
        self._trace_status = bool(os.environ.get(TRACE_STATUS_ENV))
        self._closed = False
        self._layout_restored = False
        self._close_guards: list[Callable[[QCloseEvent], bool]] = []
        self._shown = False  # showEvent has run once
        self._drop_handler: Callable[[QDropEvent], None] | None = None
        self._solved_reported: tuple[int, float] | None = None
        self._engine_note = ""
        self.views: dict[str, View] = {}
        self.hosts: list[TabHost] = []
        self._visible: frozenset[str] | None = None
        self._tab_drawn_at = -1.0
        self._tab_host: TabHost | None = None
        self._guarded: set[int] = set()
        self._key_guard = KeyGuard(self)

        stored_auto_stop = settings.flag(settings.PAUSE_WHEN_SOLVED, pause_when_solved)
        # NumPy until the compiled engine is prepared in another process (see set_engine): nothing compiles here.
        self.worker = TrainingWorker(trainer if trainer is not None else Trainer(config, engine="numpy"),
                                     pause_when_solved=stored_auto_stop)
        self.controller = Controller(self.worker, self)
        self.controls = ControlsPanel(self.worker.trainer.config)
        self.curves = CurvesPanel()
        self.scrubber = ScrubberBar(self.curves)  # under the curves: every view at an earlier point of the run
        self.curves.layout().addWidget(self.scrubber)
        self.heatmaps = HeatmapPanel()
        self.overlays = RunOverlays(self.curves)
        self.tabs = QTabWidget()
        self.tabs.setDocumentMode(True)
        self.tabs.currentChanged.connect(self._on_tab_changed)
        self.context = ViewContext(self.controller, self.status_message, self.select_tab, self.load_trainer)

        self._build_layout()
        self._build_actions(stored_auto_stop)
        self._build_status_bar()
        self._connect()
        self.set_session_name(session_name)
        # An explicit minimum keeps Qt from re-deriving it from the layout after every text change.
        self.setMinimumSize(640, 480)
        self.resize(1280, 800)
        if restore_layout:
            self._restore_layout()

        # What a frame draws, in stages: the status, controls and curves; the heatmaps; the view in front.
        self.pacer = pacing.FramePacer(((self._show_status, self.controls.update_from, self.curves.update_from,
                                         self.scrubber.update_from),
                                 (self.heatmaps.update_from,), (self._draw_tab,)),
                                on_drawn=self.sigSnapshot.emit, parent=self)
        # The first picture is drawn here, before the worker thread starts (so the trainer is not shared yet):
        # the window's first paint then already shows the model.
        self._on_snapshot(self.worker.snapshot_now())
        self.pacer.draw_now()
        self._thread: QThread | None = start_in_thread(self.worker)
        self.sessions = SessionController(self)  # after the thread starts: its file jobs run in that thread
        self.quit_action.triggered.connect(self.sessions.quit)  # Quit asks first; a close by program never does
        self.engine = engine_prep.EnginePreparer(self)
        self.engine.sigReady.connect(self._engine_ready)
        self.engine.sigFailed.connect(self._engine_failed)
        self.set_engine(engine)
        self._guard_keys()

    # ---- building -------------------------------------------------------------------------------------------
    def _build_layout(self) -> None:
        self.hint = QWidget()  # the first-launch hint, above the curves
        self.hint.setObjectName("firstLaunchHint")
        self.hint.setStyleSheet("QWidget#firstLaunchHint { background: #e8f1fb; border: 1px solid #9cc3e8; }")
        hint_layout = QHBoxLayout(self.hint)
        hint_layout.setContentsMargins(8, 1, 4, 1)
        self.hint_text = QLabel(HINT)
        self.hint_text.setWordWrap(True)
        hint_layout.addWidget(self.hint_text, 1)
        hint_close = QPushButton("Got it")
        hint_close.setToolTip("Hide this hint for good (Help ▸ Keyboard shortcuts has the keys)")
        hint_close.clicked.connect(self.dismiss_hint)
        hint_close.setFixedHeight(hint_close.sizeHint().height() - 6)
        hint_layout.addWidget(hint_close)

        middle = QWidget()
        middle_layout = QVBoxLayout(middle)
        middle_layout.setContentsMargins(0, 0, 0, 0)
        middle_layout.setSpacing(0)
        middle_layout.addWidget(self.hint)
        self.hint.setVisible(not settings.flag(settings.HINT_SEEN, False))  # (once it has a parent)
        self.splitter = QSplitter(Qt.Orientation.Vertical)
        self.splitter.setObjectName("centralSplitter")
        self.splitter.addWidget(self.curves)
        self.splitter.addWidget(self.heatmaps)
        self.splitter.setStretchFactor(0, 4)
        self.splitter.setStretchFactor(1, 5)
        self.splitter.setSizes(SPLIT)
        self.splitter.setChildrenCollapsible(False)
        middle_layout.addWidget(self.splitter, 1)
        self.setCentralWidget(middle)

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
        self.tabs_dock.hide()  # shown once the views are added
        self.tabs_dock.visibilityChanged.connect(self._on_tabs_visibility)

    def _build_actions(self, auto_stop: bool) -> None:
        style = self.style()

        def action(text: str, shortcut: str | QKeySequence | None, tip: str, slot: Callable[[], object],
                   icon: QStyle.StandardPixmap | None = None) -> QAction:
            made = QAction(text, self)
            if icon is not None:
                made.setIcon(style.standardIcon(icon))
            if shortcut is not None:
                made.setShortcut(QKeySequence(shortcut))
            made.setToolTip(tip)
            made.triggered.connect(lambda _checked=False: slot())
            return made

        self.play_action = action("Play", Qt.Key.Key_Space, "Start training (Space)", self.toggle_play,
                                  QStyle.StandardPixmap.SP_MediaPlay)
        self.step_action = action("Step", Qt.Key.Key_Right, "Train one sample (one batch at larger batch sizes) and "
                                  "pause (→)", self.request_step, QStyle.StandardPixmap.SP_MediaSeekForward)
        self.reset_action = action("Reset", "Ctrl+R", "Start again with new weights and the settings shown (Ctrl+R)",
                                   self.confirm_reset, QStyle.StandardPixmap.SP_BrowserReload)
        self.undo_action = action("Undo", QKeySequence.StandardKey.Undo, "Undo the last live change: a "
                                  "hyperparameter or a knockout (Ctrl+Z)", self.controller.undo)
        self.undo_action.setEnabled(False)
        self.quit_action = action("Quit", "Ctrl+Q", "Stop training and close (Ctrl+Q)", lambda: None)
        self.auto_stop_action = QAction("Pause when solved", self)
        self.auto_stop_action.setCheckable(True)
        self.auto_stop_action.setChecked(auto_stop)
        self.auto_stop_action.setToolTip("Pause training as soon as every sum is right, and report how many samples "
                                         "and how much training time it took")
        self.auto_stop_action.toggled.connect(self._on_auto_stop)
        self.clear_runs_action = action("Clear earlier runs", None, "Remove the faded curves of earlier runs",
                                        self.overlays.clear)
        self.clear_runs_action.setEnabled(False)
        self.overlays.sigChanged.connect(lambda count: self.clear_runs_action.setEnabled(count > 0))
        self._show_play_state("paused")

        toolbar = self.addToolBar("Transport")
        toolbar.setObjectName("transportToolbar")
        toolbar.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        toolbar.setMovable(False)
        for made in (self.play_action, self.step_action, self.reset_action, self.auto_stop_action):
            toolbar.addAction(made)
        toolbar.addSeparator()
        self.speed = QSlider(Qt.Orientation.Horizontal)
        self.speed.setRange(0, SPEED_STEPS)
        self.speed.setValue(SPEED_STEPS)
        self.speed.setFixedWidth(140)
        self.speed.setToolTip("Training speed: full speed on the right, slow motion to the left "
                              "(down to a few single updates a second, so each one can be watched)")
        self.speed_label = QLabel(speed_text(1.0))
        self.speed_label.setMinimumWidth(self.speed_label.fontMetrics().horizontalAdvance("0.012 % speed") + 6)
        self._speed_timer = QTimer(self, singleShot=True, interval=100)
        self._speed_timer.timeout.connect(self._send_speed)
        self.speed.valueChanged.connect(self._on_speed)
        toolbar.addWidget(QLabel(" speed "))
        toolbar.addWidget(self.speed)
        toolbar.addWidget(self.speed_label)
        self.toolbar = toolbar

        menu = self.menuBar()
        self.file_menu = menu.addMenu("&File")
        self.file_menu.addSeparator()
        self.file_menu.addAction(self.quit_action)
        edit_menu = menu.addMenu("&Edit")
        edit_menu.addAction(self.undo_action)
        self.training_menu = menu.addMenu("&Training")
        for made in (self.play_action, self.step_action, self.reset_action):
            self.training_menu.addAction(made)
        self.training_menu.addSeparator()
        self.training_menu.addAction(self.auto_stop_action)
        self.training_menu.addAction(self.clear_runs_action)
        self.training_menu.addAction(action("Hyperparameter sweep…", None, "Show the Sweep tab: samples to solve "
                                            "over learning rate × hidden size", lambda: self.select_tab("Sweep")))
        self.engine_menu = self.training_menu.addMenu("Engine")
        self.engine_actions = QActionGroup(self)
        for name, label in ENGINE_LABELS.items():
            made = self.engine_menu.addAction(label)
            made.setCheckable(True)
            made.setData(name)
            self.engine_actions.addAction(made)
        self.engine_actions.triggered.connect(lambda chosen: self.set_engine(chosen.data(), remember=True))
        presets = menu.addMenu("&Presets")
        for name, what, config in PRESETS:
            made = presets.addAction(name)
            made.setToolTip(what)
            made.setStatusTip(what)
            made.triggered.connect(lambda _checked=False, n=name, w=what, c=config: self.apply_preset(n, w, c))
        presets.setToolTipsVisible(True)
        presets.addSeparator()
        presets.addAction(action("Restore defaults", None, "The notebook's settings, full speed, pause when solved, "
                                 "the default layout and the first-launch hint", self.restore_defaults))
        self.presets_menu = presets
        self.view_menu = menu.addMenu("&View")
        self.view_menu.addAction(self.controls_dock.toggleViewAction())
        self.view_menu.addAction(self.tabs_dock.toggleViewAction())
        self.view_menu.addAction(action("Reset layout", None, "Docks and splitters as at first launch",
                                        self.reset_layout))
        help_menu = menu.addMenu("&Help")
        help_menu.addAction(action("Keyboard shortcuts", Qt.Key.Key_F1, "Every key the window knows",
                                   self.show_shortcuts))
        help_menu.addAction(action("Show the first-launch hint", None, "", lambda: self.hint.show()))
        help_menu.addAction(action(f"About {TITLE}", None, "", self.show_about))

    def _build_status_bar(self) -> None:
        bar = self.statusBar()
        self.engine_label = QLabel()
        self.engine_label.setToolTip("Which engine trains: NumPy, or the compiled (numba) kernels, which train "
                                     "without holding the interpreter (Training ▸ Engine)")
        self.samples_label = QLabel()
        self.samples_label.setToolTip("Training samples (additions) seen so far")
        self.rate_label = QLabel()
        self.rate_label.setToolTip("Samples trained per second of wall-clock time lately (0 while paused)")
        self.accuracy_label = QLabel()
        self.accuracy_label.setToolTip("Share of the fixed held-out additions whose whole sum is right, at the last "
                                       "check (every 100 samples)")
        self.state_label = QLabel()
        self.state_label.setToolTip("training, paused, solved (every sum right) or diverged (paused, weights "
                                    "restored); \"· solved\" while every sum is right")
        # Fixed sizes: a label whose size may change makes the window lay out again with every new text.
        widest = {self.engine_label: "engine NumPy · preparing the compiled engine (first run only)",
                  self.samples_label: "samples 000,000,000", self.rate_label: "000,000,000 samples/s",
                  self.accuracy_label: "accuracy 100.0 %", self.state_label: " training · solved "}
        for label, text in widest.items():
            metrics = label.fontMetrics()
            label.setFixedSize(metrics.horizontalAdvance(text) + 16, metrics.height() + 6)
            label.setAlignment(Qt.AlignmentFlag.AlignCenter)
            bar.addPermanentWidget(label)
        bar.insertPermanentWidget(0, self.scrubber.memory_label)  # the memory the weights kept for scrubbing take

    def _connect(self) -> None:
        worker, controller = self.worker, self.controller
        worker.sigSnapshot.connect(self._on_snapshot)
        worker.sigError.connect(self._on_worker_error)
        worker.sigStateChanged.connect(self._on_state_changed)
        worker.sigEngine.connect(self._on_engine)
        worker.sigRunEnded.connect(self.overlays.add_snapshot)
        controller.sigRefused.connect(lambda text: self.status_message(f"⚠ {text}", 8000))
        controller.sigFocusChanged.connect(self._on_focus)
        self.controls.sigLiveChange.connect(self._on_live_change)
        self.controls.sigRefused.connect(lambda text: self.status_message(f"⚠ Refused: {text}", 8000))
        self.heatmaps.sigProbeRequested.connect(self.controller.set_focus)
        self.heatmaps.sigRefused.connect(lambda text: self.status_message(f"⚠ Refused: {text}", 8000))
        self.scrubber.sigViewAt.connect(self.controller.view_at)

    # ---- views ----------------------------------------------------------------------------------------------
    def add_views(self, factories: tuple[Callable[[ViewContext], View], ...] = TAB_VIEWS) -> list[str]:
        """Make the views in the tab area (once the window is on screen, so that it appears sooner); returns their
        titles. A view that fails to build is reported, not fatal."""
        added = []
        for factory in factories:
            try:
                view = factory(self.context)
            except Exception:  # a broken view must not keep the window from opening
                import traceback

                print(f"lstm-explorer: a view could not be added ({factory.__module__}):\n{traceback.format_exc()}",
                      file=sys.stderr)
                self.status_message(f"A view could not be added ({factory.__module__}); see the terminal.", 15000)
                continue
            if view.title in self.views:
                continue
            self.views[view.title] = view
            for analysis in view.analyses:
                self.worker.add_analysis(analysis)
            host = TabHost(view)
            self.hosts.append(host)
            index = self.tabs.addTab(host, view.title)
            self.tabs.setTabToolTip(index, view.tooltip)
            added.append(view.title)
        if added:
            first = not self.tabs_dock.isVisible() and not self._layout_restored
            self.tabs_dock.show()
            if first:
                self.resizeDocks([self.tabs_dock], [round(TABS_SHARE * self.height())], Qt.Orientation.Vertical)
            focus = self.controller.focus
            for title in added:
                self.views[title].focus_changed(focus)
            self._guard_keys()
            self._update_visible()
            if self._latest is not None:
                self._draw_tab(self._latest)
        return added

    def view(self, title: str) -> View | None:
        return self.views.get(title)

    def current_host(self) -> TabHost | None:
        host = self.tabs.currentWidget()
        return host if isinstance(host, TabHost) else None

    def tab_view(self, index: int) -> QWidget | None:
        """The widget of the view in tab `index`."""
        host = self.tabs.widget(index)
        return host.view.widget if isinstance(host, TabHost) else None

    def select_tab(self, title_substring: str) -> bool:
        """Show the first tab whose title contains the text (any case); False if none does."""
        wanted = title_substring.casefold()
        for index in range(self.tabs.count()):
            if wanted in self.tabs.tabText(index).casefold():
                self.tabs_dock.show()
                self.tabs_dock.raise_()
                self.tabs.setCurrentIndex(index)
                return True
        return False

    def _visible_host(self) -> TabHost | None:
        if not self.tabs_dock.isVisible() or self.isMinimized():
            return None
        return self.current_host()

    def _update_visible(self) -> None:
        """Tell the worker which analyses have a view on screen (only those compute while training)."""
        host = self._visible_host()
        names = frozenset(a.name for a in host.view.analyses) if host is not None else frozenset()
        if names != self._visible:
            newly = host is not None and not (host.names <= (self._visible or frozenset()))
            self._visible = names
            serial = self.controller.set_visible(names)
            if newly:
                host.shown_serial = serial

    def _draw_tab(self, snapshot: Snapshot) -> None:
        """The view in front. While training it draws at most TAB_FRAME_RATE times a second (a table or a grid
        redrawn every frame would take the frames of the heatmaps and the curves); any other snapshot, at once."""
        host = self._visible_host()
        if host is None:
            return
        now = time.monotonic()
        if snapshot.state == "training" and now - self._tab_drawn_at < 1 / TAB_FRAME_RATE and host is self._tab_host:
            return
        self._tab_drawn_at, self._tab_host = now, host
        host.draw(snapshot)

    def _on_tab_changed(self, _index: int) -> None:
        self._update_visible()
        if self._latest is not None:
            self._draw_tab(self._latest)

    def _on_tabs_visibility(self, _visible: bool) -> None:
        self._on_tab_changed(self.tabs.currentIndex())

    def _on_focus(self, focus: Focus) -> None:
        self.heatmaps.focus_changed(focus)
        for view in self.views.values():
            view.focus_changed(focus)

    def _guard_keys(self) -> None:
        """Give the input controls their keys (see KeyGuard); widgets made later get it when views are added."""
        for widget in self.findChildren(QWidget):
            if id(widget) not in self._guarded and kept_keys(widget):
                widget.installEventFilter(self._key_guard)
                self._guarded.add(id(widget))

    # ---- public API -----------------------------------------------------------------------------------------
    @property
    def latest_snapshot(self) -> Snapshot | None:
        return self._latest

    def add_close_guard(self, guard: Callable[[QCloseEvent], bool]) -> None:
        """guard(event) is asked when the window is to close, the most recently added first; True keeps it open."""
        self._close_guards.append(guard)

    def set_drop_handler(self, handler: Callable[[QDropEvent], None] | None) -> None:
        """handler(event) gets the drag enter, drag move and drop events of files dragged onto the window."""
        self._drop_handler = handler

    def status_message(self, text: str, timeout_ms: int = 5000) -> None:
        self.statusBar().showMessage(text, timeout_ms)

    def set_session_name(self, name: str | None) -> None:
        self.setWindowTitle(f"{TITLE} — {name or 'Untitled'}")

    def request_play(self) -> None:
        self._state = "training"
        self._show_play_state("training")
        self.dismiss_hint()
        self.controller.play()

    def request_pause(self) -> None:
        self._state = "paused"
        self._show_play_state("paused")
        self.controller.pause()

    def toggle_play(self) -> None:
        if self._state == "training":
            self.request_pause()
        else:
            self.request_play()

    def request_step(self) -> None:
        self._state = "paused"
        self._show_play_state("paused")
        self.controller.step()

    def request_reset(self, config: TrainConfig, message: str = "") -> None:
        """Reset without asking (confirm_reset asks first)."""
        self._state = "paused"
        self._show_play_state("paused")
        self.controller.reset(config, message)

    def request_config_change(self, changes: dict) -> bool:
        """Live hyperparameter changes, e.g. {"learning_rate": 0.3}: checked, then sent (undoable with Ctrl+Z)."""
        return self.controller.change(changes)

    def load_trainer(self, trainer: Trainer) -> None:
        """Continue from another trainer (a loaded session); paused."""
        self._state = "paused"
        self._show_play_state("paused")
        self.controller.load(trainer)

    def set_engine(self, name: str, remember: bool = False) -> None:
        """numpy, compiled or auto (compiled once prepared, NumPy until then). The compiled engine is prepared in
        another process first, so the window never waits for numba to compile."""
        if remember:
            settings.store().setValue(settings.ENGINE, name)
        for made in self.engine_actions.actions():
            made.setChecked(made.data() == name)
        self.engine.stop()
        self._engine_wanted = name
        if name == "numpy" or not engine_prep.numba_installed():
            if name != "numpy":
                self._engine_note = "compiled engine unavailable (numba is not installed)"
            else:
                self._engine_note = ""
            self.controller.set_engine("numpy")
        else:
            self._engine_note = engine_prep.PREPARING
            self.engine.start()
        self._show_engine(self._latest.engine if self._latest is not None else "numpy")

    def dismiss_hint(self) -> None:
        if self.hint.isVisible():
            self.hint.hide()
            settings.store().setValue(settings.HINT_SEEN, True)

    def apply_preset(self, name: str, what: str, config: TrainConfig) -> bool:
        """Start again with a preset's settings (asks first when there is training to lose)."""
        if not self._may_lose_progress(f"Start “{name}”?"):
            return False
        self.request_reset(config, f"Preset “{name}”: {what}. Press Space to train.")
        return True

    def restore_defaults(self) -> bool:
        """The notebook's settings, full speed, pause when solved, the default layout and the hint."""
        if not self.apply_preset("Notebook defaults", PRESETS[0][1], TrainConfig()):
            return False
        self.speed.setValue(SPEED_STEPS)
        self.auto_stop_action.setChecked(True)
        self.controller.set_focus(*Focus(45, 67, 3).operands, 3)
        self.reset_layout()
        settings.store().setValue(settings.HINT_SEEN, False)
        self.hint.show()
        return True

    # ---- user actions ---------------------------------------------------------------------------------------
    def confirm_reset(self) -> bool:
        """Reset with the settings in the controls; asks first when there is training to lose."""
        try:
            config = self.controls.reset_config()
        except ConfigError as error:
            self.status_message(f"Reset refused: {error}", 8000)
            return False
        if not self._may_lose_progress("Reset training?"):
            return False
        self.request_reset(config)
        return True

    def _may_lose_progress(self, question: str) -> bool:
        samples = self._latest.samples_seen if self._latest is not None else 0
        if samples <= 0:
            return True
        answer = QMessageBox.question(
            self, question, f"Start again with new weights?\n\nThe {samples:,} samples of training so far will be "
            "lost (the curves stay, faded, to compare).",
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No, QMessageBox.StandardButton.No)
        return answer == QMessageBox.StandardButton.Yes

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
        self.splitter.setSizes(SPLIT)
        self.resizeDocks([self.tabs_dock], [round(TABS_SHARE * self.height())], Qt.Orientation.Vertical)

    # ---- snapshots and redraws ------------------------------------------------------------------------------
    def _on_snapshot(self, snapshot: Snapshot) -> None:
        """Every snapshot: the controller and listeners follow it (cheap); the views draw the latest one when a
        frame is due."""
        self._latest = snapshot
        self.controller.follow(snapshot)
        self.undo_action.setEnabled(bool(snapshot.undo_text))
        self.undo_action.setText(f"Undo {snapshot.undo_text}" if snapshot.undo_text else "Undo")
        if snapshot.message:
            self.status_message(snapshot.message, 10000 if snapshot.state in ("solved", "diverged") else 5000)
        self._report_solved(snapshot)
        if self._trace_status and snapshot.state != self._traced_state:
            self._traced_state = snapshot.state
            print(f"state {snapshot.state} samples {snapshot.samples_seen}", flush=True)
        self.sigSnapshotReceived.emit(snapshot)
        if not self._closed and hasattr(self, "pacer"):
            self.pacer.offer(snapshot)

    def redraw_now(self) -> None:
        """Draw the latest snapshot completely at once (normally frames are paced)."""
        self.pacer.draw_now()

    def _report_solved(self, snapshot: Snapshot) -> None:
        solved_at = snapshot.solved_at
        if solved_at != self._solved_reported:
            first = self._solved_reported is None and solved_at is not None
            self._solved_reported = solved_at
            if first and snapshot.state == "training":  # (when it paused, the worker's own message says so)
                samples, seconds = solved_at
                self.status_message(f"Every sum right after {samples:,} samples ({seconds:.1f} s of training); "
                                    "training goes on.", 10000)

    def _show_status(self, snapshot: Snapshot) -> None:
        self.samples_label.setText(f"samples {snapshot.samples_seen:,}")
        rate = snapshot.samples_per_second
        self.rate_label.setText(f"{rate:,.0f} samples/s" if rate >= 10 or rate == 0 else f"{rate:.2g} samples/s")
        self.accuracy_label.setText(f"accuracy {100 * snapshot.accuracy:.1f} %")
        self._show_state(snapshot.state, snapshot.solved_now)
        self._show_engine(snapshot.engine)

    def _show_state(self, state: str, solved_now: bool = False) -> None:
        text = f"{state} · solved" if solved_now and state in ("training", "paused") else state
        if self.state_label.text() == f" {text} ":
            return
        self.state_label.setText(f" {text} ")
        self.state_label.setStyleSheet(f"color: white; background: {STATE_COLORS[state]}; border-radius: 3px;"
                                       " font-weight: bold;")

    def _show_engine(self, engine: str) -> None:
        self.pacer.draw_share = pacing.DRAW_SHARE_COMPILED if engine == "compiled" else pacing.DRAW_SHARE
        name = "compiled" if engine == "compiled" else "NumPy"
        note = self._engine_note if engine != "compiled" else ""
        text = f"engine {name}" + (f" · {note}" if note else "")
        if self.engine_label.text() != text:
            self.engine_label.setText(text)

    def _show_play_state(self, state: str) -> None:
        playing = state == "training"
        pixmap = QStyle.StandardPixmap.SP_MediaPause if playing else QStyle.StandardPixmap.SP_MediaPlay
        self.play_action.setIcon(self.style().standardIcon(pixmap))
        self.play_action.setText("Pause" if playing else "Play")
        self.play_action.setToolTip(("Pause training" if playing else "Start training") + " (Space)")

    def _on_state_changed(self, state: str) -> None:
        """The worker's word on its state wins over what the buttons assumed (it may pause by itself)."""
        self._state = state
        self._show_play_state(state)

    def _on_worker_error(self, text: str) -> None:
        self.status_message(f"⚠ {text}", 10000)
        self.controls.resync()

    def _on_live_change(self, changes: dict) -> None:
        if not self.controller.change(changes):
            self.controls.resync()

    def _on_engine(self, engine: str) -> None:
        if engine == "compiled":
            self._engine_note = ""
        self._show_engine(engine)

    def _engine_ready(self) -> None:
        if self._engine_wanted in ("auto", "compiled"):
            self._engine_note = "loading the compiled engine"
            self._show_engine("numpy")
            self.controller.set_engine("compiled")

    def _engine_failed(self, why: str) -> None:
        self._engine_note = "compiled engine unavailable"
        self.engine_label.setToolTip(f"The compiled engine could not be prepared: {why}. NumPy trains instead.")
        self._show_engine("numpy")
        self.status_message(f"The compiled engine could not be prepared ({why}); training uses NumPy.", 10000)

    def _on_auto_stop(self, on: bool) -> None:
        settings.store().setValue(settings.PAUSE_WHEN_SOLVED, bool(on))
        self.controller.set_auto_stop(on)

    def _on_speed(self, position: int) -> None:
        self.speed_label.setText(speed_text(speed_fraction(position)))
        self._speed_timer.start()

    def _send_speed(self) -> None:
        self.controller.set_speed(speed_fraction(self.speed.value()))

    # ---- settings and shutdown ------------------------------------------------------------------------------
    def _restore_layout(self) -> None:
        store = settings.store()
        if str(store.value(settings.LAYOUT_VERSION)) != str(LAYOUT_VERSION):
            return
        geometry = store.value(settings.GEOMETRY)
        if isinstance(geometry, QByteArray) and not geometry.isEmpty():
            self.restoreGeometry(geometry)
        state = store.value(settings.STATE)
        if isinstance(state, QByteArray) and not state.isEmpty():
            self._layout_restored = self.restoreState(state)
        splitter = store.value(settings.SPLITTER)
        if isinstance(splitter, QByteArray) and not splitter.isEmpty():
            self.splitter.restoreState(splitter)

    def save_layout(self) -> None:
        store = settings.store()
        store.setValue(settings.LAYOUT_VERSION, LAYOUT_VERSION)
        store.setValue(settings.GEOMETRY, self.saveGeometry())
        store.setValue(settings.STATE, self.saveState())
        store.setValue(settings.SPLITTER, self.splitter.saveState())

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

    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        if not self._shown:
            # Qt gives the keyboard to the first control in the tab order, which keeps Space for itself: at launch
            # the window holds it, so Space trains (as the hint says) until the user picks a control.
            self._shown = True
            self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
            QTimer.singleShot(0, self, self.setFocus)

    def changeEvent(self, event: QEvent) -> None:
        super().changeEvent(event)
        if event.type() == QEvent.Type.WindowStateChange and hasattr(self, "hosts"):
            self._update_visible()  # minimised: nothing is on screen

    def closeEvent(self, event: QCloseEvent) -> None:
        for guard in reversed(self._close_guards):
            if guard(event):
                event.ignore()
                return
        if not self._closed:
            self._closed = True
            self.pacer.stop()
            self.engine.stop()
            for view in self.views.values():
                view.shutdown()
            self.save_layout()
            self.hide()  # gone at once; the threads stop between two chunks
            self.stop_training_thread()
            if self._trace_status:
                samples = self._latest.samples_seen if self._latest is not None else 0
                print(f"closed samples {samples}", flush=True)
        super().closeEvent(event)
