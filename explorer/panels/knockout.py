"""Knockout: silence units (their cell state c and hidden state h set to 0 after every step) and watch what
breaks. The knockout applies to evaluation only: accuracy, the error grid, the heatmaps and the step-through
show the damaged model, while training continues on the intact weights. Undo (here, or Ctrl+Z) walks back: the
training thread keeps the knockout and its history, this panel shows and edits it.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QDoubleSpinBox,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from core import insights
from core.insights import Knockout, Measured
from core.trainer import Trainer
from explorer.analyses import Analysis
from explorer.panels import GraphicsLayoutWidget, configure_pyqtgraph, error_grid, panel_title
from explorer.panels.error_grid import ErrorGridView, describe_knockout, grid_of
from explorer.views import TabView, ViewContext

ANALYSIS = "knockout"  # snapshot.analyses key: a Measured holding a Knockout
TAB_TITLE = "Knockout"
TOOLTIP = "Silence units and watch accuracy, the error grid and the step-through break"
TITLE = "Knockout, for evaluation only: training continues on the intact weights"
EVALUATION_ONLY = ("A knocked-out unit's cell state c and hidden state h are set to 0 (or multiplied by the factor "
                   "below) after every step. This applies to evaluation only: accuracy, the error grid, the heatmaps "
                   "and the step-through show the damaged model, while training continues on the intact weights.")
BUTTONS_PER_ROW = 8
CONFIRM_SNAPSHOTS = 90  # snapshots to wait for the trainer to confirm a mask before trusting its word again
INTACT_COLOR = "#1f77b4"
KNOCKED_COLOR = "#d62728"
BAR_COLOR = "#9ab7d3"


class KnockoutState:
    """Which units are knocked out and the factor their c and h are multiplied by (0 = silenced)."""

    def __init__(self, units: frozenset[int] = frozenset(), factor: float = 0.0) -> None:
        self.units = frozenset(int(u) for u in units)
        self.factor = float(factor)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, KnockoutState) and (self.units, self.factor) == (other.units, other.factor)

    def __hash__(self) -> int:
        return hash((self.units, self.factor))

    def unit_scale(self, hidden_size: int) -> np.ndarray | None:
        """(H,) mask for the worker: factor at knocked units, 1 elsewhere; None when nothing is knocked out."""
        units = [u for u in self.units if u < hidden_size]
        if not units or self.factor == 1.0:
            return None
        scale = np.ones(hidden_size)
        scale[units] = self.factor
        return scale


def same_mask(first: np.ndarray | None, second: np.ndarray | None) -> bool:
    if first is None or second is None:
        return first is None and second is None
    return first.shape == second.shape and bool(np.array_equal(first, second))


class KnockoutPanel(QWidget):
    """Unit buttons, undo, accuracy intact vs knocked out, accuracy per single-unit knockout, a small error grid."""

    sigUnitScale = Signal(object)  # (H,) mask or None: for the worker's set_unit_scale
    sigPairClicked = Signal(int, int)  # a cell of the small error grid: open it in the step-through
    sigUndo = Signal()  # take back the last knockout change (the training thread keeps the history)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        configure_pyqtgraph()
        self.state = KnockoutState()
        self.can_undo = False  # the training thread has a knockout change to take back
        self.hidden_size = 0
        self.result: Knockout | None = None
        self._awaiting: tuple[np.ndarray | None, int] | None = None  # (mask sent, snapshots seen since)
        self._buttons: list[QToolButton] = []
        self._drawn_result: object = None

        self.title = panel_title(TITLE)
        self.title.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.title.setToolTip(EVALUATION_ONLY)
        self.measured_at = QLabel()
        self.measured_at.setToolTip("Training samples the weights had seen when these numbers were measured")

        # Left: the units.
        self.unit_grid = QGridLayout()
        self.unit_grid.setSpacing(2)
        self.unit_grid.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
        units_box = QWidget()
        units_box.setLayout(self.unit_grid)
        scroll = QScrollArea()
        scroll.setWidget(units_box)
        scroll.setWidgetResizable(True)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        scroll.setMinimumHeight(60)
        self.factor = QDoubleSpinBox()
        self.factor.setRange(-2.0, 0.95)
        self.factor.setSingleStep(0.25)
        self.factor.setDecimals(2)
        self.factor.setValue(0.0)
        self.factor.setPrefix("× ")
        self.factor.setKeyboardTracking(False)
        self.factor.setToolTip("What c and h of the chosen units are multiplied by after every step: 0 knocks "
                               "them out, 0.5 weakens them, −1 inverts them")
        self.factor.valueChanged.connect(self._on_factor)
        self.undo_button = QPushButton("Undo")
        self.undo_button.setToolTip("Back to the previous knockout (Ctrl+Z undoes the last change of any kind)")
        self.undo_button.clicked.connect(self.undo)
        self.restore_button = QPushButton("Restore all")
        self.restore_button.setToolTip("Bring every unit back (Undo returns to this knockout)")
        self.restore_button.clicked.connect(self.restore_all)
        factor_label = QLabel("c, h")
        factor_label.setToolTip(self.factor.toolTip())
        button_row = QHBoxLayout()
        button_row.addWidget(factor_label)
        button_row.addWidget(self.factor)
        button_row.addWidget(self.undo_button)
        button_row.addWidget(self.restore_button)
        left = QVBoxLayout()
        left.setContentsMargins(0, 0, 0, 0)
        left.addWidget(QLabel("<b>Units</b>: click to knock out, again to restore"))
        left.addWidget(scroll, 1)
        left.addLayout(button_row)
        left_box = QWidget()
        left_box.setLayout(left)
        left_box.setFixedWidth(310)

        # Middle: accuracy side by side, and the effect of each unit alone.
        self.intact_label = QLabel()
        self.knocked_label = QLabel()
        for label in (self.intact_label, self.knocked_label):
            label.setTextFormat(Qt.TextFormat.RichText)
            label.setAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter)
            label.setMinimumWidth(210)
        self.intact_label.setToolTip("Exact-sum accuracy of the intact weights over every pair")
        self.knocked_label.setToolTip("The same pairs with the chosen units knocked out")
        accuracy_column = QVBoxLayout()
        accuracy_column.addStretch(1)
        accuracy_column.addWidget(self.intact_label)
        accuracy_column.addSpacing(10)
        accuracy_column.addWidget(self.knocked_label)
        accuracy_column.addStretch(1)
        self.sweep_view = GraphicsLayoutWidget()
        self.sweep_view.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Ignored)
        self.sweep_view.setMinimumHeight(80)
        self.sweep_view.setToolTip("Exact-sum accuracy with only that one unit knocked out: the lowest bars are the "
                                   "units the model cannot do without (often the one holding the carry)")
        self.sweep_plot = self.sweep_view.addPlot()
        # A short title: pyqtgraph will not shrink a plot below the width of its title.
        self.sweep_plot.setTitle("sums right with only this unit out", size="9pt")
        self.sweep_plot.setLabel("bottom", "unit")
        self.sweep_plot.setLabel("left", "sums right (%)")
        self.sweep_plot.setMenuEnabled(False)
        self.sweep_plot.setMouseEnabled(False, False)
        self.sweep_plot.hideButtons()
        self.sweep_plot.setYRange(0, 100, padding=0.02)
        self.sweep_plot.showGrid(y=True, alpha=0.2)
        for axis in ("bottom", "left"):
            self.sweep_plot.getAxis(axis).enableAutoSIPrefix(False)
        self.sweep_bars = pg.BarGraphItem(x=[0], height=[0], width=0.8, brush=BAR_COLOR)
        self.sweep_plot.addItem(self.sweep_bars)
        middle = QHBoxLayout()
        middle.addLayout(accuracy_column)
        middle.addWidget(self.sweep_view, 1)

        # Right: the error grid of the knocked-out model.
        self.grid_view = ErrorGridView(compact=True)
        self.grid_view.sigPairClicked.connect(self.sigPairClicked)
        self.grid_view.setMinimumWidth(280)

        body = QHBoxLayout()
        body.addWidget(left_box)
        body.addLayout(middle, 3)
        body.addWidget(self.grid_view, 2)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.setSpacing(2)
        header = QHBoxLayout()
        header.addWidget(self.title, 1)
        header.addWidget(self.measured_at)
        layout.addLayout(header)
        layout.addLayout(body, 1)
        self._show_accuracy(None)
        self._sync_controls()

    # ---- public API -----------------------------------------------------------------------------------------
    def update_from(self, snapshot: object) -> None:
        hidden = int(snapshot.config.hidden_size)
        if hidden != self.hidden_size:
            self._set_hidden_size(hidden)
        self._follow_trainer(getattr(snapshot, "unit_scale", None))
        self.can_undo = bool(getattr(snapshot, "knockout_undo", False))
        self.undo_button.setEnabled(self.can_undo)
        analyses = getattr(snapshot, "analyses", {})
        measured = analyses.get(ANALYSIS)
        if isinstance(measured, Measured) and isinstance(measured.value, Knockout) and measured is not \
                self._drawn_result:
            self._drawn_result = measured
            self._show_result(measured.value, measured.samples_seen)
        grid, _ = grid_of(snapshot)
        self.grid_view.setVisible(grid is None or grid.exhaustive)
        if grid is not None and grid.exhaustive:
            self.grid_view.show_grid(grid)
            self.grid_view.mark_focus(snapshot.focus.operands if hasattr(snapshot, "focus") else None)

    def toggle(self, unit: int) -> None:
        """Knock unit out, or bring it back if it is out."""
        units = set(self.state.units)
        units.symmetric_difference_update({int(unit)})
        self._apply(KnockoutState(frozenset(units), self.state.factor))

    def restore_all(self) -> None:
        if self.state.units:
            self._apply(KnockoutState(frozenset(), self.state.factor))

    def undo(self) -> None:
        """Back to the knockout before the last change: asked of the training thread, which keeps the history; this
        panel then follows the mask it applies."""
        self._awaiting = None
        self.sigUndo.emit()

    def unit_scale(self) -> np.ndarray | None:
        return self.state.unit_scale(self.hidden_size)

    # ---- state ----------------------------------------------------------------------------------------------
    def _apply(self, state: KnockoutState) -> None:
        if state == self.state:
            return
        self.state = state
        self._send()

    def _send(self) -> None:
        mask = self.unit_scale()
        self._awaiting = (mask, 0)
        self._sync_controls()
        self.sigUnitScale.emit(mask)

    def _follow_trainer(self, applied: np.ndarray | None) -> None:
        """Adopt the trainer's mask when it changed it by itself (a reset or a loaded session clears it)."""
        mine = self.unit_scale()
        if self._awaiting is not None:
            sent, waited = self._awaiting
            if same_mask(applied, sent) or waited >= CONFIRM_SNAPSHOTS:
                self._awaiting = None
            else:
                self._awaiting = (sent, waited + 1)
            return
        if same_mask(applied, mine):
            return
        if applied is None or applied.shape != (self.hidden_size,):
            if applied is None and self.state.units:  # new weights or an undo: every unit is back
                self.state = KnockoutState(frozenset(), self.state.factor)
                self._sync_controls()
            elif mine is not None:  # stale shape after a resize: send ours again
                self._send()
            return
        knocked = frozenset(int(u) for u in np.flatnonzero(applied != 1.0))
        factors = set(applied[list(knocked)].tolist())
        self.state = KnockoutState(knocked, factors.pop() if len(factors) == 1 else 0.0)
        self._sync_controls()

    def _set_hidden_size(self, hidden: int) -> None:
        """Rebuild the unit buttons; units beyond the new size leave the knockout, and the mask is resent."""
        had_mask = self.unit_scale() is not None
        self.hidden_size = hidden
        for button in self._buttons:
            self.unit_grid.removeWidget(button)
            button.deleteLater()
        self._buttons = []
        for unit in range(hidden):
            button = QToolButton()
            button.setText(str(unit))
            button.setCheckable(True)
            button.setMinimumWidth(30)
            button.setStyleSheet(f"QToolButton:checked {{ background: {KNOCKED_COLOR}; color: white; "
                                 "font-weight: bold; }")
            button.setToolTip(f"unit {unit}: click to knock it out (or bring it back)")
            button.toggled.connect(lambda _checked, u=unit: self.toggle(u))
            self.unit_grid.addWidget(button, unit // BUTTONS_PER_ROW, unit % BUTTONS_PER_ROW)
            self._buttons.append(button)
        kept = frozenset(u for u in self.state.units if u < hidden)
        if kept != self.state.units:
            self.state = KnockoutState(kept, self.state.factor)
        if had_mask or kept:
            self._send()
        self._sync_controls()

    # ---- drawing --------------------------------------------------------------------------------------------
    def _sync_controls(self) -> None:
        for unit, button in enumerate(self._buttons):
            if button.isChecked() != (unit in self.state.units):
                button.blockSignals(True)
                button.setChecked(unit in self.state.units)
                button.blockSignals(False)
        if abs(self.factor.value() - self.state.factor) > 1e-12:
            self.factor.blockSignals(True)
            self.factor.setValue(self.state.factor)
            self.factor.blockSignals(False)
        self.undo_button.setEnabled(self.can_undo)
        self.restore_button.setEnabled(bool(self.state.units))
        self._color_bars()

    def _on_factor(self, value: float) -> None:
        self._apply(KnockoutState(self.state.units, value))

    def _show_result(self, result: Knockout, samples: int) -> None:
        self.result = result
        self._show_accuracy(result)
        units = np.arange(len(result.single_unit_accuracy))
        self.sweep_bars.setOpts(x=units, height=100.0 * result.single_unit_accuracy, width=0.8)
        self._color_bars()
        self.sweep_plot.setXRange(-0.6, len(units) - 0.4, padding=0)
        for unit, button in enumerate(self._buttons[: len(units)]):
            button.setToolTip(f"unit {unit}: with only this unit knocked out, "
                              f"{100 * result.single_unit_accuracy[unit]:.1f} % of sums are right. Click to knock "
                              "it out (or bring it back).")
        worst = int(np.argmin(result.single_unit_accuracy))
        left = 100 * result.single_unit_accuracy[worst]
        self.measured_at.setText(f"knocking out unit {worst} alone leaves {left:.0f} % of sums right · at "
                                 f"{samples:,} samples")
        self.sweep_view.setToolTip(f"Exact-sum accuracy on {result.sweep_pairs:,} fixed random pairs with only that "
                                   "one unit knocked out: the lowest bars are the units the model cannot do without "
                                   "(often the one holding the carry)")

    def _show_accuracy(self, result: Knockout | None) -> None:
        if result is None:
            self.intact_label.setText("<b>Intact</b><br>–")
            self.knocked_label.setText("<b>Knocked out</b><br>–")
            return
        pairs = f"all {result.n_pairs:,} pairs" if result.exhaustive else f"{result.n_pairs:,} pairs"
        self.intact_label.setText(
            f"<span style='color:{INTACT_COLOR}'><b>Intact</b> <span style='font-size:16pt'><b>"
            f"{100 * result.intact_accuracy:.1f} %</b></span></span><br>sums right ({pairs}) · bits "
            f"{100 * result.intact_bit_accuracy:.1f} %")
        if result.knocked_out:
            which = describe_knockout(result.knocked_out).removeprefix(" · ").removesuffix(" knocked out")
            factor = "" if result.unit_scale is None or result.unit_scale[result.knocked_out[0]] == 0 else \
                f" × {result.unit_scale[result.knocked_out[0]]:g}"
            self.knocked_label.setText(
                f"<span style='color:{KNOCKED_COLOR}'><b>Knocked out</b> <span style='font-size:16pt'><b>"
                f"{100 * result.knocked_accuracy:.1f} %</b></span></span><br>{which}{factor} · bits "
                f"{100 * result.knocked_bit_accuracy:.1f} %")
        else:
            self.knocked_label.setText("<b>Knocked out</b> <span style='font-size:16pt'>–</span><br>"
                                       "click a unit on the left")

    def _color_bars(self) -> None:
        if self.result is None:
            return
        count = len(self.result.single_unit_accuracy)
        self.sweep_bars.setOpts(brushes=[pg.mkBrush(KNOCKED_COLOR if u in self.state.units else BAR_COLOR)
                                         for u in range(count)])


def compute(trainer: Trainer, unit_scale: np.ndarray | None) -> Knockout:
    return insights.knockout_effect(trainer.params, trainer.config.n_bits, unit_scale)


# The small error grid of the knocked-out model is the error grid's analysis.
ANALYSES = (Analysis(ANALYSIS, compute, period_s=2.0), *error_grid.ANALYSES)


def view(context: ViewContext) -> TabView:
    panel = KnockoutPanel()
    controller = context.controller
    panel.sigUnitScale.connect(controller.set_unit_scale)
    panel.sigUnitScale.connect(lambda mask: context.status(
        "all units intact" if mask is None else
        f"knocked out for evaluation: units {', '.join(str(u) for u in np.flatnonzero(mask != 1.0))} "
        "(training continues on the intact weights)", 4000))
    panel.sigUndo.connect(lambda: controller.undo("knockout"))
    panel.sigPairClicked.connect(context.look_at)
    return TabView(TAB_TITLE, panel, TOOLTIP, ANALYSES)
