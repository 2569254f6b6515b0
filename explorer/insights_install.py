"""Plug the insight views into the main window: five tabs (Error grid, Length, Saturation, Gradients, Knockout)
and their computations, which run in the training thread as worker analyses.

Each analysis computes only while one of its views is on screen (or the model was replaced), and hands back
its last result otherwise, so hidden tabs cost the training loop nothing. The gradient check runs when its
button asks, in the training thread too.
"""

from __future__ import annotations

import math
import threading
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from PySide6.QtCore import QEvent, QObject
from PySide6.QtWidgets import QWidget

from core import insights
from core.insights import Measured
from core.trainer import Trainer
from explorer.panels import error_grid, gradients, knockout, length, saturation
from explorer.panels.error_grid import ErrorGridPanel
from explorer.panels.gradients import GradientsPanel
from explorer.panels.knockout import KnockoutPanel
from explorer.panels.length import LengthPanel
from explorer.panels.saturation import SaturationPanel

Compute = Callable[[Trainer, "np.ndarray | None"], object]

# Seconds between recomputations while training, for the view on screen. The error grid is one forward over
# 16,384 pairs; length adds 8,000 longer ones; the knockout also runs one forward per unit.
PERIODS = {
    error_grid.ANALYSIS: 1.0,
    length.ANALYSIS: 2.0,
    saturation.ANALYSIS: 1.0,
    gradients.ANALYSIS: 1.0,
    knockout.ANALYSIS: 2.0,
    gradients.CHECK_ANALYSIS: 0.0,  # looks at every chunk whether the button asked; computes only then
}
TABS = (
    ("Error grid", "Every operand pair coloured by its number of wrong bits; click a pair to step through it"),
    ("Length", "Exact-sum accuracy on longer numbers than the model was trained on: did it learn to carry?"),
    ("Saturation", "How often each gate is shut (< 0.1) or open (> 0.9): gates hardening into switches"),
    ("Gradients", "Gradient norm per bit position, gradient clipping, and a finite-difference gradient check"),
    ("Knockout", "Silence units and watch accuracy, the error grid and the step-through break"),
)


class VisibilityFlag(QObject):
    """A threading.Event that is set while any of the watched widgets is shown (read in the worker thread);
    on_shown, if given, is called (in the GUI thread) after a watched widget has been shown."""

    def __init__(self, *widgets: QWidget, on_shown: Callable[[], None] | None = None) -> None:
        super().__init__(widgets[0])
        self.visible = threading.Event()
        self.on_shown = on_shown
        self._shown: set[int] = set()
        for widget in widgets:
            widget.installEventFilter(self)
            if widget.isVisible():
                self._shown.add(id(widget))
        self._update()

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if event.type() == QEvent.Type.Show:
            self._shown.add(id(watched))
            self._update()
            if self.on_shown is not None and not event.spontaneous():
                self.on_shown()
        elif event.type() == QEvent.Type.Hide:
            self._shown.discard(id(watched))
            self._update()
        return False

    def _update(self) -> None:
        if self._shown:
            self.visible.set()
        else:
            self.visible.clear()


class LiveAnalysis:
    """compute(trainer, unit_scale) wrapped as a worker analysis returning Measured results.

    It computes again only when the answer could differ and someone looks:
    - the same weights, mask and settings as last time: the last result (it is exact);
    - none of its views visible: the last result, unless the trainer is a new one (a reset or a loaded session);
    - only the weights moved on (training): at most every BUDGET times as long as the last computation took, so
      a slow view never takes more than about 1/BUDGET of the training thread;
    - a new mask, hidden size or trainer: at once (a knockout shows its damage without waiting).
    """

    BUDGET = 8.0

    def __init__(self, compute: Compute, visible: threading.Event, settings: tuple[str, ...] = ()) -> None:
        self.compute = compute
        self.visible = visible
        self.settings = settings  # TrainConfig fields the result depends on besides the weights and n_bits
        self._trainer: weakref.ref | None = None
        self._key: tuple | None = None
        self._last: Measured | None = None
        self._started = -math.inf  # time.monotonic() when the last computation started
        self._seconds = 0.0  # how long it took

    def __call__(self, trainer: Trainer, unit_scale: np.ndarray | None) -> Measured | None:
        same_trainer = self._trainer is not None and self._trainer() is trainer
        config = trainer.config
        mask = None if unit_scale is None else unit_scale.tobytes()
        setup = (config.n_bits, trainer.params.hidden_size, mask, *(getattr(config, s) for s in self.settings))
        key = (setup, hash(trainer.params.flat.tobytes()))
        if same_trainer and self._last is not None:
            if key == self._key or not self.visible.is_set():
                return self._last
            weights_only = self._key is not None and setup == self._key[0]
            if weights_only and time.monotonic() - self._started < self.BUDGET * self._seconds:
                return self._last
        self._started = time.monotonic()
        value = self.compute(trainer, unit_scale)
        self._seconds = time.monotonic() - self._started
        self._trainer = weakref.ref(trainer)
        self._key = key
        self._last = Measured(trainer.samples_seen, value)
        return self._last


class GradientCheckOnRequest:
    """The gradient check as a worker analysis: computes when a request is newer than the last one answered."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._requested = 0
        self._answered = 0
        self._last: Measured | None = None

    def request(self, number: int) -> None:
        """Called in the GUI thread: the next analysis run (in the worker thread) answers request `number`."""
        with self._lock:
            self._requested = max(self._requested, int(number))

    def __call__(self, trainer: Trainer, unit_scale: np.ndarray | None) -> Measured | None:
        with self._lock:
            wanted = self._requested
        if wanted > self._answered:
            check = insights.gradient_check(trainer.params, trainer.config.n_bits)
            self._answered = wanted
            self._last = Measured(trainer.samples_seen, check, request=wanted)
        return self._last


# ---- the computations, as the worker calls them (trainer, unit_scale) -----------------------------------------------
def compute_error_grid(trainer: Trainer, unit_scale: np.ndarray | None) -> insights.ErrorGrid:
    return insights.error_grid(trainer.params, trainer.config.n_bits, unit_scale)


def compute_length(trainer: Trainer, unit_scale: np.ndarray | None) -> insights.LengthResult:
    return insights.length_generalisation(trainer.params, trainer.config.n_bits, unit_scale=unit_scale)


def compute_saturation(trainer: Trainer, unit_scale: np.ndarray | None) -> insights.Saturation | None:
    if not insights.has_gates(trainer.params):
        return None
    return insights.gate_saturation(trainer.params, trainer.config.n_bits, unit_scale)


def compute_gradients(trainer: Trainer, unit_scale: np.ndarray | None) -> insights.GradientNorms:
    # Gradients are about training, which runs on the intact weights: the knockout mask does not apply.
    return insights.gradient_norms(trainer.params, trainer.config.n_bits, batch_size=trainer.config.batch_size)


def compute_knockout(trainer: Trainer, unit_scale: np.ndarray | None) -> insights.Knockout:
    return insights.knockout_effect(trainer.params, trainer.config.n_bits, unit_scale)


@dataclass
class InsightViews:
    """What install() added, for tests and for whoever wants to reach a panel."""

    error_grid: ErrorGridPanel
    length: LengthPanel
    saturation: SaturationPanel
    gradients: GradientsPanel
    knockout: KnockoutPanel
    analyses: dict[str, object]
    gradient_check: GradientCheckOnRequest


def open_in_walkthrough(window: object, a: int, b: int) -> None:
    """Show a + b in the step-through panel (or, without one, as the heatmaps' probe)."""
    walkthrough = getattr(window, "walkthrough", None)
    if walkthrough is not None:
        walkthrough.set_operands(a, b)
        window.select_tab("Step")
    else:
        window.request_probe(a, b)
    window.status_message(f"{a} + {b}: shown step by step", 4000)


def install(window: object) -> InsightViews:
    """Add the insight tabs to window and register their computations with its worker; returns the panels (also
    kept as window.insights).

    Uses window.add_tab, select_tab, latest_snapshot, status_message, request_unit_scale, request_config_change,
    request_refresh, request_probe (without a walkthrough) and worker.add_analysis.
    """
    panels = (ErrorGridPanel(), LengthPanel(), SaturationPanel(), GradientsPanel(), KnockoutPanel())
    grid_panel, length_panel, saturation_panel, gradients_panel, knockout_panel = panels
    for panel, (title, tooltip) in zip(panels, TABS, strict=True):
        window.add_tab(panel, title, tooltip=tooltip)

    def on_shown() -> None:
        # A tab coming into view may hold a result computed before it was hidden: recompute at once.
        window.request_refresh()

    # The knockout tab shows a small error grid too, so the grid is computed while either tab is on screen.
    flags = {
        error_grid.ANALYSIS: VisibilityFlag(grid_panel, knockout_panel, on_shown=on_shown),
        length.ANALYSIS: VisibilityFlag(length_panel, on_shown=on_shown),
        saturation.ANALYSIS: VisibilityFlag(saturation_panel, on_shown=on_shown),
        gradients.ANALYSIS: VisibilityFlag(gradients_panel, on_shown=on_shown),
        knockout.ANALYSIS: VisibilityFlag(knockout_panel),  # the error grid's flag already refreshes for it
    }
    computes = {
        error_grid.ANALYSIS: compute_error_grid,
        length.ANALYSIS: compute_length,
        saturation.ANALYSIS: compute_saturation,
        gradients.ANALYSIS: compute_gradients,
        knockout.ANALYSIS: compute_knockout,
    }
    analyses: dict[str, object] = {name: LiveAnalysis(compute, flags[name].visible,
                                                      ("batch_size",) if name == gradients.ANALYSIS else ())
                                   for name, compute in computes.items()}
    checker = GradientCheckOnRequest()
    analyses[gradients.CHECK_ANALYSIS] = checker
    for name, analysis in analyses.items():
        # While training, the worker runs an analysis only while one of its views is on screen.
        wanted = flags[name].visible.is_set if name in flags else None
        window.worker.add_analysis(name, analysis, PERIODS[name], wanted=wanted)
    window.request_refresh()  # the worker may have sent its first picture before these were registered

    def on_check(number: int) -> None:
        checker.request(number)
        snapshot = window.latest_snapshot
        if snapshot is None or snapshot.state != "training":
            window.request_refresh()  # training runs the analyses after its next chunk anyway

    grid_panel.sigPairClicked.connect(lambda a, b: open_in_walkthrough(window, a, b))
    knockout_panel.sigPairClicked.connect(lambda a, b: open_in_walkthrough(window, a, b))
    knockout_panel.sigUnitScale.connect(window.request_unit_scale)
    knockout_panel.sigUnitScale.connect(lambda mask: window.status_message(
        "all units intact" if mask is None else
        f"knocked out for evaluation: units {', '.join(str(u) for u in np.flatnonzero(mask != 1.0))} "
        "(training continues on the intact weights)", 4000))
    gradients_panel.sigClipChanged.connect(window.request_config_change)
    gradients_panel.sigCheckRequested.connect(on_check)
    snapshot = window.latest_snapshot
    if snapshot is not None:
        for panel in panels:
            panel.update_from(snapshot)
    views = InsightViews(grid_panel, length_panel, saturation_panel, gradients_panel, knockout_panel, analyses,
                         checker)
    window.insights = views
    return views
