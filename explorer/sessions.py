"""Sessions in the main window: File ▸ Open… / Open Recent / Save / Save As… / Export, the session name and a •
for unsaved progress in the title, a question before closing or replacing a session with unsaved progress,
drag-and-drop of a session file, a notice with remedies when training diverges, and an Export… menu on a
right click in any plot.

Saving reads the trainer in the training thread: a TrainerFileAgent living there writes the file between two
chunks (training goes on), and reports back through a signal; the GUI thread never touches the running
trainer. Opening reads and checks the file in the GUI thread (it is quick) and hands the new trainer to the
worker only when the whole file was good, so a bad file changes nothing.
"""

from __future__ import annotations

import dataclasses
import functools
import os
from collections.abc import Callable
from pathlib import Path

import pyqtgraph as pg
from PySide6.QtCore import QEvent, QObject, Qt, QThread, QTimer, Signal, Slot
from PySide6.QtGui import QAction, QCloseEvent, QDropEvent, QGuiApplication, QKeySequence
from PySide6.QtWidgets import (
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QMenu,
    QMessageBox,
    QPushButton,
    QSizePolicy,
    QToolBar,
    QWidget,
)

from core.session import SessionError, load_session
from core.trainer import TrainConfig
from explorer import session_actions as actions
from explorer.display import WINDOWLESS_PLATFORMS
from explorer.session_actions import JobResult
from explorer.snapshot import Snapshot

UNTITLED_ASK_SECONDS = 60.0  # an untitled session asks before it is closed only after this much unsaved training
SESSION_FILTER = "Training sessions (*.npz)"
MIN_SUGGESTED_LR = 1e-4  # the divergence notice never suggests a learning rate below this
SUGGESTED_CLIP = 1.0


def can_ask_user() -> bool:
    """False where no one can see a dialog (offscreen rendering, scripts), so nothing waits for an answer."""
    return QGuiApplication.platformName() not in WINDOWLESS_PLATFORMS


def progress_of(snapshot: Snapshot | None) -> tuple[int, TrainConfig | None]:
    """What makes a session differ from its saved file: samples trained and settings."""
    return (0, None) if snapshot is None else (snapshot.samples_seen, snapshot.config)


class DivergenceNotice(QToolBar):
    """A bar under the toolbar, shown while training is stopped by a divergence: what happened, what to try,
    and buttons that apply the remedies (the user then presses Play)."""

    sigChange = Signal(object)  # live hyperparameter changes, as for MainWindow.request_config_change

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Divergence notice", parent)
        self.setObjectName("divergenceNotice")
        self.setMovable(False)
        self.setFloatable(False)
        self.toggleViewAction().setVisible(False)  # not one of the toolbars the user switches on and off
        self.setStyleSheet("QToolBar#divergenceNotice { background: #fdecea; border: 1px solid #e6a19b; }")
        self.text = QLabel()
        self.text.setTextFormat(Qt.TextFormat.PlainText)
        # Two fixed lines, clipped in a narrow window (the tooltip has them whole): a wrapping label would make
        # the bar's height depend on its width, which a toolbar does not handle.
        self.text.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.text.setStyleSheet("color: #7f1d1d;")
        self.lower_lr = QPushButton()
        self.lower_lr.setToolTip("Divide the learning rate by 10; press Play to continue")
        self.clip = QPushButton()
        self.clip.setToolTip("Limit the size of each update by clipping the gradient's norm; press Play to continue")
        self.dismiss = QPushButton("Dismiss")
        self.lower_lr.clicked.connect(self._lower_lr)
        self.clip.clicked.connect(self._clip)
        self.dismiss.clicked.connect(self.hide)
        box = QWidget()
        layout = QHBoxLayout(box)
        layout.setContentsMargins(8, 2, 8, 2)
        layout.addWidget(QLabel("⚠"))
        layout.addWidget(self.text, 1)
        for button in (self.lower_lr, self.clip, self.dismiss):
            layout.addWidget(button)
        self.addWidget(box)
        self._config: TrainConfig | None = None
        self._shown_for: int | None = None  # the divergence (its sample count) this notice was opened for
        self.hide()

    def update_from(self, snapshot: Snapshot) -> None:
        """Shown while the state is diverged (and not dismissed for this divergence); hidden otherwise."""
        if snapshot.state != "diverged":
            self._shown_for = None
            self.hide()
            return
        at = max((samples for samples, text in snapshot.events if text.startswith("diverged")),
                 default=snapshot.samples_seen)
        config = snapshot.config
        if at == self._shown_for and config == self._config:
            return  # nothing new (and a dismissed notice stays dismissed)
        first = at != self._shown_for
        self._shown_for, self._config = at, config
        clipping = (f"tighter gradient clipping (now {config.clip_norm:g})" if config.clip_norm else
                    "gradient clipping (now off)")
        self.text.setText(f"Training diverged at sample {at:,}: the loss blew up. Training paused and the last good "
                          f"weights were restored.\nTry a lower learning rate (now {config.learning_rate:g}) or "
                          f"{clipping}, then press Play.")
        self.text.setToolTip(self.text.text())
        lower = self._lower(config.learning_rate)
        self.lower_lr.setText(f"Learning rate → {lower:g}")
        self.lower_lr.setEnabled(lower < config.learning_rate)
        target = self._clip_target(config)
        self.clip.setText(f"Clip gradients at {target:g}")
        self.clip.setEnabled(target < config.clip_norm or not config.clip_norm)
        if first:
            self.show()

    @staticmethod
    def _lower(learning_rate: float) -> float:
        return max(MIN_SUGGESTED_LR, float(f"{learning_rate / 10:.3g}"))

    @staticmethod
    def _clip_target(config: TrainConfig) -> float:
        return SUGGESTED_CLIP if not config.clip_norm else float(f"{config.clip_norm / 2:.3g}")

    def _lower_lr(self) -> None:
        if self._config is not None:
            self.sigChange.emit({"learning_rate": self._lower(self._config.learning_rate)})

    def _clip(self) -> None:
        if self._config is not None:
            self.sigChange.emit({"clip_norm": self._clip_target(self._config)})


class SessionController(QObject):
    """The File menu's sessions and exports for one MainWindow (see the module docstring)."""

    sigJobDone = Signal(object)  # JobResult of a save or export, after the window has acted on it
    sigOpened = Signal(object)  # Path of a session just opened (its trainer is on its way to the worker)
    _ask_job = Signal(int, str, str)  # to the agent in the training thread: job id, kind, path

    def __init__(self, window: QWidget) -> None:
        super().__init__(window)
        self.window = window
        self.path: Path | None = None  # the session's file, None while untitled
        self.remember_hyperparameters = False  # store the settings on close (the interactive app turns it on)
        self._latest: Snapshot | None = window.latest_snapshot
        self._clean = progress_of(self._latest)  # progress when last saved or opened
        self._clean_seconds = self._latest.training_seconds if self._latest is not None else 0.0
        self._awaiting: tuple | None = None  # progress of a trainer sent to the worker whose snapshot is due
        self._title_key: tuple | None = None
        self._jobs: dict[int, Callable[[], None] | None] = {}  # running file jobs: what to do after each
        self._job_ids = 0
        self._quitting = False  # the Quit action is closing the window: the user asked
        self._saved_for_close = False
        self._closed = False
        self._hooked_scenes: set[int] = set()
        self.plot_menu: QMenu | None = None  # the last Export… menu opened on a plot

        self.agent = actions.TrainerFileAgent(window.worker)
        thread = window.worker.thread()
        if thread is not QThread.currentThread():
            self.agent.moveToThread(thread)  # its jobs then run between the worker's chunks
        self._ask_job.connect(self.agent.run)
        self.agent.sigDone.connect(self._on_job_done)
        window.sigSnapshotReceived.connect(self._on_snapshot)

        self.notice = DivergenceNotice(window)
        self.notice.sigChange.connect(window.controller.change)
        window.addToolBarBreak(Qt.ToolBarArea.TopToolBarArea)
        window.addToolBar(Qt.ToolBarArea.TopToolBarArea, self.notice)
        self.notice.hide()

        self._build_menu()
        window.setAcceptDrops(True)
        window.add_close_guard(self._on_close)
        window.set_drop_handler(self._on_drag)
        window.tabs.currentChanged.connect(self.hook_plot_menus)
        self.hook_plot_menus()
        QTimer.singleShot(0, self, self.hook_plot_menus)  # and the plots of views installed after this
        self._update_title()

    # ---- menu -----------------------------------------------------------------------------------------------
    def _build_menu(self) -> None:
        window, menu = self.window, self.window.file_menu
        actions_before = menu.actions()
        anchor = window.quit_action
        index = actions_before.index(anchor) if anchor in actions_before else -1
        if index > 0 and actions_before[index - 1].isSeparator():
            anchor = actions_before[index - 1]

        def action(text: str, shortcut: str | None, tip: str, slot: Callable[[], object]) -> QAction:
            made = QAction(text, window)
            if shortcut:
                made.setShortcut(QKeySequence(shortcut))
            made.setToolTip(tip)
            made.setStatusTip(tip)
            made.triggered.connect(lambda _checked=False: slot())
            return made

        self.open_action = action("&Open…", "Ctrl+O", "Open a saved training session (Ctrl+O)", self.open_dialog)
        self.recent_menu = QMenu("Open &Recent", menu)
        self.recent_menu.setToolTipsVisible(True)
        self.recent_menu.aboutToShow.connect(self.rebuild_recent_menu)
        self.save_action = action("&Save", "Ctrl+S", "Save the training session (Ctrl+S)", self.save)
        self.save_as_action = action("Save &As…", "Ctrl+Shift+S", "Save the training session under a new name "
                                     "(Ctrl+Shift+S)", self.save_as)
        self.export_menu = QMenu("&Export", menu)
        self.export_menu.setToolTipsVisible(True)
        self.export_weights_action = action(
            "Weights for &PyTorch (.npz)…", None, "The model's weights as a PyTorch state_dict for nn.LSTM + "
            "nn.Linear (see the README)", self.export_weights)
        self.export_curves_action = action("&Curves as CSV…", None, "Samples, loss, bit error, accuracy and "
                                           "events, one line each", self.export_curves)
        self.export_png_action = action("&Window as PNG…", None, "A picture of the whole window; right-click a "
                                        "plot to export just that plot", self.export_window_png)
        for made in (self.export_weights_action, self.export_curves_action, self.export_png_action):
            self.export_menu.addAction(made)
        menu.insertAction(anchor, self.open_action)
        menu.insertMenu(anchor, self.recent_menu)
        menu.insertSeparator(anchor)
        menu.insertAction(anchor, self.save_action)
        menu.insertAction(anchor, self.save_as_action)
        menu.insertSeparator(anchor)
        menu.insertMenu(anchor, self.export_menu)
        self.rebuild_recent_menu(report=False)

    def rebuild_recent_menu(self, report: bool = True) -> None:
        """Fill Open Recent from the settings, dropping files that are gone (and saying so)."""
        kept, removed = actions.prune_recent()
        if removed and report:
            names = ", ".join(path.name for path in removed)
            self.window.status_message(f"Removed from Open Recent, no longer there: {names}", 8000)
        self.recent_menu.clear()
        for number, path in enumerate(kept, start=1):
            entry = self.recent_menu.addAction(f"&{number} {path.name}")
            entry.setToolTip(str(path))
            entry.setData(str(path))
            entry.triggered.connect(functools.partial(self._open_recent, path))
        if not kept:
            self.recent_menu.addAction("No recent sessions").setEnabled(False)
        self.recent_menu.addSeparator()
        clear = self.recent_menu.addAction("Clear the list")
        clear.setEnabled(bool(kept))
        clear.triggered.connect(self._clear_recent)

    def _open_recent(self, path: Path, _checked: bool = False) -> None:
        self.open_file(path)

    def _clear_recent(self) -> None:
        actions.forget_recent()
        self.rebuild_recent_menu(report=False)

    # ---- state ----------------------------------------------------------------------------------------------
    @property
    def dirty(self) -> bool:
        """True when the session has progress (training, changed settings, a reset) not in its file."""
        return self._awaiting is None and progress_of(self._latest) != self._clean

    @property
    def unsaved_training_seconds(self) -> float:
        if not self.dirty or self._latest is None:
            return 0.0
        return max(0.0, self._latest.training_seconds - self._clean_seconds)

    @Slot(object)
    def _on_snapshot(self, snapshot: Snapshot) -> None:
        if self._awaiting is not None:  # snapshots of the replaced trainer may still be on their way
            if progress_of(snapshot) != self._awaiting:
                return
            self._awaiting = None
        self._latest = snapshot
        self.notice.update_from(snapshot)
        self._update_title()

    def _update_title(self) -> None:
        name = self.path.stem if self.path is not None else None
        key = (name, self.dirty)
        if key == self._title_key:
            return
        self._title_key = key
        self.window.set_session_name(name)
        if key[1]:
            self.window.setWindowTitle(f"{self.window.windowTitle()} •")

    def _should_ask(self) -> bool:
        """Ask before losing unsaved progress of a session that has a file, or a long untitled run."""
        if not self.dirty or not can_ask_user():
            return False
        return self.path is not None or self.unsaved_training_seconds >= UNTITLED_ASK_SECONDS

    def _settle_unsaved(self, doing: str, then: Callable[[], object]) -> bool:
        """True to go on now. Otherwise the user cancelled, or chose Save and `then` runs once it is saved."""
        if not self._should_ask():
            return True
        name = self.path.name if self.path is not None else "the untitled session"
        samples = self._latest.samples_seen if self._latest is not None else 0
        answer = QMessageBox.question(
            self.window, "Save the training session?",
            f"{name} has progress that is not saved ({samples:,} samples trained now).\n\n"
            f"Save it before {doing}?",
            QMessageBox.StandardButton.Save | QMessageBox.StandardButton.Discard | QMessageBox.StandardButton.Cancel,
            QMessageBox.StandardButton.Save)
        if answer == QMessageBox.StandardButton.Discard:
            return True
        if answer == QMessageBox.StandardButton.Save:
            self.save(then=then)
        return False

    # ---- open -----------------------------------------------------------------------------------------------
    def open_dialog(self) -> bool:
        name, _ = QFileDialog.getOpenFileName(self.window, "Open a training session", str(actions.last_folder()),
                                              f"{SESSION_FILTER};;All files (*)")
        return bool(name) and self.open_file(Path(name))

    def open_file(self, path: str | Path) -> bool:
        """Load a session file and continue from it. A bad file: one dialog, and the current session stays."""
        path = Path(path).absolute()
        if not self._settle_unsaved(f"opening {path.name}", lambda: self.open_file(path)):
            return False
        try:
            trainer = load_session(path)
        except SessionError as error:
            problem = str(error)
        except Exception as error:  # whatever the file does, the user gets one clear answer
            problem = f"{path} could not be opened: {type(error).__name__}: {error}"
        else:
            problem = ""
        if problem:
            if not os.path.lexists(path) and path in actions.recent_files():  # (False for a name too long)
                actions.forget_recent([path])
                self.rebuild_recent_menu(report=False)
            QMessageBox.critical(self.window, "Cannot open the session", problem)
            return False
        # Read what the title needs now: once sent, the trainer belongs to the training thread.
        progress = (trainer.samples_seen, dataclasses.replace(trainer.config))
        self.window.controls.resync()  # a live change still waiting must not land on the loaded session
        self._awaiting = self._clean = progress
        self._clean_seconds = float(trainer.training_seconds)
        self.path = path
        self.window.load_trainer(trainer)
        actions.remember_recent(path)
        actions.remember_folder(path)
        self.rebuild_recent_menu(report=False)
        self._update_title()
        self.window.status_message(f"Opened {path.name}: {progress[0]:,} samples trained", 8000)
        self.sigOpened.emit(path)
        return True

    # ---- save and export ------------------------------------------------------------------------------------
    def save(self, then: Callable[[], object] | None = None) -> bool:
        """Save to the session's file (Save As when untitled); True if a save started."""
        if self.path is None:
            return self.save_as(then)
        self._start_job("session", self.path, then)
        return True

    def save_as(self, then: Callable[[], object] | None = None) -> bool:
        name = self.path.name if self.path is not None else "session.npz"
        path = self._ask_save_path("Save the training session", name, SESSION_FILTER, ".npz")
        if path is None:
            return False
        self._start_job("session", path, then)
        return True

    def save_to(self, path: str | Path, then: Callable[[], object] | None = None) -> None:
        """Save the session to path without asking (it becomes the session's file when the save succeeds)."""
        self._start_job("session", Path(path).absolute(), then)

    def export_weights(self, path: str | Path | None = None) -> None:
        """The weights (and settings) as an .npz with PyTorch's state_dict keys."""
        path = Path(path) if path else self._ask_save_path("Export weights for PyTorch", f"{self._stem()}-weights.npz",
                                                           "NumPy archives (*.npz)", ".npz")
        if path is not None:
            self._start_job("weights", path.absolute(), None)

    def export_curves(self, path: str | Path | None = None) -> None:
        path = Path(path) if path else self._ask_save_path("Export the training curves", f"{self._stem()}-curves.csv",
                                                           "CSV files (*.csv)", ".csv")
        if path is not None:
            self._start_job("curves", path.absolute(), None)

    def export_window_png(self, path: str | Path | None = None) -> bool:
        path = Path(path) if path else self._ask_save_path("Save a picture of the window", f"{self._stem()}.png",
                                                           "PNG images (*.png)", ".png")
        if path is None:
            return False
        picture = self.window.grab()

        def write(temp: Path) -> None:
            if not picture.save(str(temp), "PNG"):
                raise OSError(f"the image could not be written to {temp.parent}")

        try:
            actions.write_atomic(path.absolute(), write)
        except SessionError as error:
            QMessageBox.critical(self.window, "Cannot save the picture", str(error))
            return False
        self.window.status_message(f"Saved a picture of the window to {path.name}", 6000)
        return True

    def _stem(self) -> str:
        return self.path.stem if self.path is not None else "session"

    def _ask_save_path(self, title: str, name: str, file_filter: str, suffix: str) -> Path | None:
        chosen, _ = QFileDialog.getSaveFileName(self.window, title, str(actions.last_folder() / name), file_filter)
        if not chosen:
            return None
        path = Path(chosen)
        if path.suffix.lower() != suffix:
            path = path.with_name(path.name + suffix)
        actions.remember_folder(path)
        return path

    def _start_job(self, kind: str, path: Path, then: Callable[[], object] | None) -> None:
        self._job_ids += 1
        self._jobs[self._job_ids] = then
        thread = self.agent.thread()  # the training thread (None once it has ended and been deleted)
        if thread is not None and thread is not QThread.currentThread() and thread.isRunning():
            self._ask_job.emit(self._job_ids, kind, str(path))
        else:  # the training thread has stopped: nothing else uses the trainer now
            self._on_job_done(self._job_ids, actions.run_job(kind, path, self.window.worker.trainer))

    @Slot(int, object)
    def _on_job_done(self, job_id: int, result: JobResult) -> None:
        then = self._jobs.pop(job_id, None)
        titles = {"session": "Cannot save the session", "weights": "Cannot export the weights",
                  "curves": "Cannot export the curves"}
        if result.error is not None:
            QMessageBox.critical(self.window, titles[result.kind], result.error)
            self.sigJobDone.emit(result)
            return
        if result.kind == "session":
            self.path = result.path
            self._clean = (result.samples_seen, result.config)
            self._clean_seconds = result.training_seconds
            actions.remember_recent(result.path)
            self.rebuild_recent_menu(report=False)
            self.window.status_message(f"Saved {result.path.name} ({result.samples_seen:,} samples trained)", 6000)
            self._update_title()
        elif result.kind == "weights":
            self.window.status_message(f"Exported the weights to {result.path.name} (PyTorch state_dict keys)", 6000)
        else:
            self.window.status_message(f"Exported the training curves to {result.path.name}", 6000)
        self.sigJobDone.emit(result)
        if then is not None:
            then()

    # ---- closing, dropping ----------------------------------------------------------------------------------
    def quit(self) -> None:
        """File ▸ Quit / Ctrl+Q: close, asking first about unsaved progress."""
        self._quitting = True
        try:
            self.window.close()
        finally:
            self._quitting = False

    def _on_close(self, event: QCloseEvent) -> bool:
        """True (and the event ignored) keeps the window open."""
        if self._closed:
            return False
        asked_by_user = event.spontaneous() or self._quitting
        if asked_by_user and not self._saved_for_close and not self._settle_unsaved("closing",
                                                                                    self._close_after_save):
            event.ignore()
            return True
        self._closed = True
        if self.remember_hyperparameters and self._latest is not None:
            actions.store_hyperparameters(self._latest.config)
        self.notice.hide()  # a notice is for this run: the saved layout should not bring it back
        return False

    def _close_after_save(self) -> None:
        self._saved_for_close = True
        self.window.close()

    def _on_drag(self, event: QDropEvent) -> None:
        path, problem = actions.dropped_session(event.mimeData())
        if path is None:
            event.ignore()
            if event.type() != QEvent.Type.DragMove:
                self.window.status_message(problem, 6000)
            return
        event.acceptProposedAction()
        if event.type() == QEvent.Type.Drop:  # opened after the drop returns, so a dialog does not hold up the drag
            QTimer.singleShot(0, self, functools.partial(self.open_file, path))

    # ---- plots ----------------------------------------------------------------------------------------------
    def hook_plot_menus(self, *_args: object) -> None:
        """Give every plot in the window pyqtgraph's Export… on a right click (PNG, SVG, CSV, Matplotlib...)
        where the plot has no context menu of its own."""
        for view in self.window.findChildren(pg.GraphicsView):
            scene = view.scene()
            if scene is None or id(scene) in self._hooked_scenes:
                continue
            self._hooked_scenes.add(id(scene))
            scene.sigMouseClicked.connect(functools.partial(self._on_plot_click, view))

    def _on_plot_click(self, view: pg.GraphicsView, event: object) -> None:
        if event.button() != Qt.MouseButton.RightButton or event.isAccepted():
            return  # a plot with its own menu already showed it (with Export… in it)
        scene = view.scene()
        items = scene.items(event.scenePos())
        scene.contextMenuItem = items[0] if items else None  # the export dialog preselects this plot
        menu = QMenu(view)
        menu.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        menu.addActions(scene.contextMenu)
        menu.popup(event.screenPos().toPoint())
        self.plot_menu = menu


def start_interactive(controller: SessionController, startup_session: Path | None) -> None:
    """For the app a person runs (not screenshots or benchmarks): open the session named on the command line,
    and remember the hyperparameters on close for the next start."""
    controller.remember_hyperparameters = True
    if startup_session is not None:
        controller.open_file(startup_session)
