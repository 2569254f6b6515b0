"""Plug the step-through panel into the main window: a bottom tab, heatmap highlights, and the carry finder
running in the training thread while the panel is on screen."""

from __future__ import annotations

import threading
import weakref

import numpy as np
from PySide6.QtCore import QEvent, QObject, QThread

from core import carry
from explorer.panels.walkthrough import CARRY_ANALYSIS, WalkthroughPanel

TAB_TITLE = "Step through"
CARRY_PERIOD_SECONDS = 2.0  # the carry finder runs a forward over all 16,384 pairs: often enough to follow training


class CarryWhileShown(QObject):
    """carry.from_trainer as a worker analysis that computes only while the panel is shown.

    Hidden, it hands back its previous result (the training loop pays nothing), unless the trainer is a new one
    (a reset or a loaded session), whose old result would describe other weights. `shown` is set and cleared in
    the GUI thread and read in the worker thread.
    """

    def __init__(self, panel: WalkthroughPanel) -> None:
        super().__init__(panel)
        self.shown = threading.Event()
        if panel.isVisible():
            self.shown.set()
        self._trainer: weakref.ref | None = None
        self._last: carry.CarryUnits | None = None
        panel.installEventFilter(self)

    def __call__(self, trainer: object, unit_scale: np.ndarray | None) -> carry.CarryUnits:
        same_trainer = self._trainer is not None and self._trainer() is trainer
        if same_trainer and self._last is not None and not self.shown.is_set():
            return self._last
        self._last = carry.from_trainer(trainer, unit_scale)
        self._trainer = weakref.ref(trainer)
        return self._last

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if event.type() == QEvent.Type.Show:
            self.shown.set()
        elif event.type() == QEvent.Type.Hide:
            self.shown.clear()
        return False


def install(window: object) -> WalkthroughPanel:
    """Add the walkthrough tab to window and wire it; returns the panel (also set as window.walkthrough).

    Uses window.add_tab, window.heatmaps.highlight_step / highlight_units, window.worker.add_analysis,
    window.latest_snapshot and, when present, window.request_refresh. The window calls panel.update_from(snapshot)
    while the tab is visible.
    """
    panel = WalkthroughPanel()
    window.add_tab(panel, TAB_TITLE,  # type: ignore[attr-defined]
                   tooltip="Type two numbers and step through how the model adds them, bit by bit: every gate, the "
                           "cell, the output and the gradient; and which unit holds the carry")
    if getattr(window, "walkthrough", None) is None:
        window.walkthrough = panel  # type: ignore[attr-defined]  # other views open additions here
    heatmaps = window.heatmaps  # type: ignore[attr-defined]
    panel.sigStepChanged.connect(heatmaps.highlight_step)
    panel.sigCarryUnits.connect(heatmaps.highlight_units)

    worker = window.worker  # type: ignore[attr-defined]
    analysis = CarryWhileShown(panel)
    # Runs in the worker thread; while training, only when the panel is on screen (then it also outlines the
    # carry units in the heatmaps).
    worker.add_analysis(CARRY_ANALYSIS, analysis, CARRY_PERIOD_SECONDS, wanted=analysis.shown.is_set)
    refresh = getattr(window, "request_refresh", None)

    def refresh_if_running() -> None:
        # Before its thread starts the worker runs every analysis anyway; afterwards it may be paused, and a
        # refresh has it compute the carry finder now instead of after the next training chunk.
        if refresh is not None and isinstance(worker, QObject) and worker.thread() is not QThread.currentThread():
            refresh()

    refresh_if_running()
    panel.sigShown.connect(refresh_if_running)  # a result from before the tab was hidden may be stale
    snapshot = window.latest_snapshot  # type: ignore[attr-defined]
    if snapshot is not None:
        panel.update_from(snapshot)
    return panel
