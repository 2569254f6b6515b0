"""Plug the experiment tools into the main window: pause when solved (with samples- and time-to-solve), earlier
runs kept as faded curves, and the hyperparameter sweep tab.

- Training ▸ Pause when solved (also on the toolbar; on by default, remembered): the worker stops at the end of the
  chunk in which every sum first comes out right, so the counts are the trainer's own (Trainer.solved_at).
- When a run is replaced (Reset, or a loaded session) its curves stay as faded overlays; Training ▸ Clear earlier
  runs (or the button under the curves) removes them.
- The Sweep tab maps samples-to-solve over learning rate × hidden size in parallel processes.
"""

from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtCore import QObject, QSettings, Signal, Slot
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QLabel, QToolBar

from explorer.panels.sweep import SweepPanel
from explorer.run_overlays import RunOverlays
from explorer.snapshot import Snapshot

AUTO_STOP_KEY = "training/pause_when_solved"
SWEEP_TAB = "Sweep"
SOLVED_STYLE = "color: #1b5e20; font-weight: bold;"


def solved_text(solved_at: tuple[int, float]) -> str:
    samples, seconds = solved_at
    return f"solved after {samples:,} samples in {seconds:.1f} s of training"


class AutoStop(QObject):
    """The checkable 'Pause when solved' action and its link to the worker (a queued signal)."""

    sigSetAutoStop = Signal(bool)

    def __init__(self, window: object, settings: QSettings) -> None:
        super().__init__(window)
        self._settings = settings
        stored = settings.value(AUTO_STOP_KEY)
        on = window.worker.pause_when_solved if stored is None else str(stored).lower() in ("true", "1")
        self.action = QAction("Pause when solved", window)
        self.action.setCheckable(True)
        self.action.setChecked(on)
        self.action.setToolTip("Pause training as soon as every sum is right, and report how many samples and how "
                               "much training time it took")
        self.sigSetAutoStop.connect(window.worker.set_auto_stop)
        self.action.toggled.connect(self._on_toggled)
        self.sigSetAutoStop.emit(on)

    def _on_toggled(self, on: bool) -> None:
        self._settings.setValue(AUTO_STOP_KEY, bool(on))
        self.sigSetAutoStop.emit(bool(on))


class SolvedReport(QObject):
    """A label in the curves' header: 'solved after 7,100 samples in 3.2 s of training' (from the trainer's
    solved_at), and a status message when training went on past it."""

    def __init__(self, window: object) -> None:
        super().__init__(window)
        self._window = window
        self._shown: tuple[int, float] | None = None
        self.label = QLabel()
        self.label.setStyleSheet(SOLVED_STYLE)
        self.label.setToolTip("Counted at the end of the first training chunk after which all sums were right; "
                              "the time is time spent training (evaluation not included)")
        self.label.hide()
        curves = window.curves
        header = curves.layout().itemAt(0).layout()
        header.insertWidget(max(0, header.indexOf(curves.readout)), self.label)

    @Slot(object)
    def update_from(self, snapshot: Snapshot) -> None:
        """Every snapshot from the worker comes here (a cheap comparison), so the report never waits for a frame."""
        solved_at = snapshot.solved_at
        if solved_at == self._shown:
            return
        first = self._shown is None
        self._shown = solved_at
        self.label.setVisible(solved_at is not None)
        if solved_at is None:
            return
        self.label.setText(solved_text(solved_at))
        if first and snapshot.state == "training":  # (when it paused, the worker's own message says so)
            self._window.status_message(f"Every sum right: {solved_text(solved_at)}; training goes on.", 10000)


def stop_sweep_on_close(window: object, panel: SweepPanel) -> None:
    """Stop the sweep (and its processes) when the window closes."""

    def guard(_event: object) -> bool:
        panel.shutdown()
        return False  # never keeps the window open

    window.add_close_guard(guard)


@dataclass
class Experiments:
    """What install() added, for tests and other views."""

    auto_stop: AutoStop
    solved: SolvedReport
    overlays: RunOverlays
    sweep: SweepPanel
    clear_runs_action: QAction
    sweep_action: QAction


def install(window: object) -> Experiments:
    """Add the experiment tools to window; returns them (also kept as window.experiments).

    Uses window.worker (pause_when_solved, set_auto_stop, sigRunEnded), sigSnapshotReceived, add_close_guard,
    curves, training_menu, reset_action, add_tab, select_tab, latest_snapshot and status_message.
    """
    from explorer.main_window import APPLICATION, ORGANIZATION

    settings = QSettings(ORGANIZATION, APPLICATION)
    auto_stop = AutoStop(window, settings)
    solved = SolvedReport(window)
    overlays = RunOverlays(window.curves)
    window.worker.sigRunEnded.connect(overlays.add_snapshot)

    panel = SweepPanel(settings)
    window.add_tab(panel, SWEEP_TAB, tooltip="Samples to solve over a grid of learning rates × hidden sizes, trained "
                                             "in parallel processes")
    stop_sweep_on_close(window, panel)

    menu = window.training_menu
    menu.addSeparator()
    menu.addAction(auto_stop.action)
    clear_runs = QAction("Clear earlier runs", window)
    clear_runs.setToolTip("Remove the faded curves of earlier runs")
    clear_runs.setEnabled(False)
    clear_runs.triggered.connect(overlays.clear)
    overlays.sigChanged.connect(lambda count: clear_runs.setEnabled(count > 0))
    menu.addAction(clear_runs)
    sweep_action = QAction("Hyperparameter sweep…", window)
    sweep_action.setToolTip("Show the Sweep tab: samples to solve over learning rate × hidden size")
    sweep_action.triggered.connect(lambda: window.select_tab(SWEEP_TAB))
    menu.addAction(sweep_action)

    toolbar = window.findChild(QToolBar, "transportToolbar")
    if toolbar is not None:
        actions = toolbar.actions()
        after_reset = actions.index(window.reset_action) + 1 if window.reset_action in actions else len(actions)
        if after_reset < len(actions):
            toolbar.insertAction(actions[after_reset], auto_stop.action)
        else:
            toolbar.addAction(auto_stop.action)

    window.sigSnapshotReceived.connect(solved.update_from)
    snapshot = window.latest_snapshot
    if snapshot is not None:
        solved.update_from(snapshot)
        panel.update_from(snapshot)
    experiments = Experiments(auto_stop, solved, overlays, panel, clear_runs, sweep_action)
    window.experiments = experiments
    return experiments
