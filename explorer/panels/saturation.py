"""Gate saturation (Karpathy, Johnson & Fei-Fei 2015, "Visualizing and understanding recurrent networks"):
for every unit and gate, how often the gate is nearly shut (left-saturated) and how often nearly open
(right-saturated), over a fixed set of additions. Gates that harden into switches move to the edges.
"""

from __future__ import annotations

import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QHBoxLayout, QLabel, QSizePolicy, QVBoxLayout, QWidget

from core import insights, lstm
from core.insights import SATURATION_THRESHOLDS, Measured, Saturation
from core.trainer import Trainer
from explorer.analyses import Analysis
from explorer.panels import GraphicsLayoutWidget, configure_pyqtgraph, panel_title
from explorer.panels.error_grid import describe_knockout
from explorer.views import TabView, ViewContext

TITLE = "Saturation"
TOOLTIP = "How often each gate is shut (< 0.1) or open (> 0.9): gates hardening into switches"
ANALYSIS = "saturation"  # snapshot.analyses key: a Measured holding a Saturation (None for a model without gates)
GATE_COLORS = {"i": "#1f77b4", "f": "#ff7f0e", "g": "#2ca02c", "o": "#d62728"}
GATE_NAMES = {"i": "i input gate", "f": "f forget gate", "g": "g cell candidate (tanh)", "o": "o output gate"}


class SaturationPanel(QWidget):
    """Scatter: x = fraction of time left-saturated, y = fraction right-saturated, one point per unit and gate."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        configure_pyqtgraph()
        self.result: Saturation | None = None
        self.title = panel_title("Gate saturation: waiting for the first measurement…")
        self.title.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.readout = QLabel("Point at a dot to see its unit and gate.")
        self.readout.setToolTip("The unit and gate of the dot under the mouse pointer")
        self.note = QLabel(
            "One dot per gate and unit. i, f, o: shut below 0.1, open above 0.9; g is a tanh in (−1, 1): shut below "
            "−0.9, open above 0.9. Near the origin: rarely saturated; on the dashed line: always, a switch.")
        self.note.setWordWrap(True)
        self.note.setToolTip("Karpathy, Johnson & Fei-Fei 2015, \"Visualizing and understanding recurrent "
                             "networks\": left- and right-saturation of LSTM gates")
        self.view = GraphicsLayoutWidget()
        self.view.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Ignored)
        self.view.setMinimumHeight(120)
        self.plot = self.view.addPlot()
        # Axis labels are HTML: "<" must be written as &lt;.
        self.plot.setLabel("bottom", "fraction of time left-saturated, shut (&lt; 0.1; g &lt; −0.9)")
        self.plot.setLabel("left", "open (&gt; 0.9)", **{"font-size": "8pt"})  # (short: the plot may be short)
        self.plot.setMenuEnabled(False)
        self.plot.setMouseEnabled(False, False)
        self.plot.hideButtons()
        self.plot.showGrid(x=True, y=True, alpha=0.2)
        for axis in ("bottom", "left"):
            self.plot.getAxis(axis).enableAutoSIPrefix(False)
        self.plot.setRange(xRange=(0, 1), yRange=(0, 1), padding=0.03)
        self.plot.getAxis("left").setTicks([[(v, f"{v:g}") for v in (0.0, 0.5, 1.0)], []])
        diagonal = pg.PlotDataItem([0, 1], [1, 0], pen=pg.mkPen((150, 150, 150), style=Qt.PenStyle.DashLine))
        self.plot.addItem(diagonal)
        # The legend is the plot title in the gates' colours: a legend box would cover dots in a short plot.
        keys = "&nbsp;&nbsp;&nbsp;".join(f"<span style='color:{GATE_COLORS[g]}'>● {GATE_NAMES[g]}</span>"
                                         for g in lstm.GATES)
        self.plot.setTitle(f"{keys}&nbsp;&nbsp;&nbsp;<span style='color:#969696'>- - always saturated</span>",
                           size="9pt")
        self.scatters: dict[str, pg.ScatterPlotItem] = {}
        for gate in lstm.GATES:
            scatter = pg.ScatterPlotItem(size=9, pen=pg.mkPen("w", width=0.5), brush=pg.mkBrush(GATE_COLORS[gate]),
                                         hoverable=True, hoverSize=13, name=GATE_NAMES[gate])
            scatter.sigHovered.connect(self._on_hovered)
            self.plot.addItem(scatter)
            self.scatters[gate] = scatter
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.setSpacing(2)
        header = QHBoxLayout()
        header.addWidget(self.title, 1)
        header.addWidget(self.readout)
        layout.addLayout(header)
        layout.addWidget(self.view, 1)
        layout.addWidget(self.note)

    def update_from(self, snapshot: object) -> None:
        analyses = getattr(snapshot, "analyses", {})
        if ANALYSIS not in analyses:
            return
        measured = analyses[ANALYSIS]
        if not (isinstance(measured, Measured) and isinstance(measured.value, Saturation)):
            self.title.setText("Gate saturation: this model has no gates (a plain RNN)")
            for scatter in self.scatters.values():
                scatter.setData([], [])
            return
        result = self.result = measured.value
        for k, gate in enumerate(lstm.GATES):
            units = list(range(result.low.shape[1]))
            self.scatters[gate].setData(result.low[k], result.high[k], data=[(gate, u) for u in units])
        self.title.setText(f"Gate saturation of {result.low.shape[1]} units over {result.n_values:,} steps "
                           f"({result.n_values // result.n_bits:,} fixed additions) · at {measured.samples_seen:,} "
                           f"samples{describe_knockout(result.knocked_out)}")

    def describe(self, gate: str, unit: int) -> str:
        """'unit 3, f forget gate: shut 42.0 % of the time (< 0.1), open 13.0 % (> 0.9)'."""
        k = lstm.GATES.index(gate)
        low, high = SATURATION_THRESHOLDS[gate]
        return (f"unit {unit}, {GATE_NAMES[gate]}: shut {100 * self.result.low[k, unit]:.1f} % of the time "
                f"(< {low:g}), open {100 * self.result.high[k, unit]:.1f} % (> {high:g})")

    def _on_hovered(self, _scatter, points, _event) -> None:
        if len(points) and self.result is not None:
            gate, unit = points[0].data()
            self.readout.setText(self.describe(gate, unit))


def compute(trainer: Trainer, unit_scale: object) -> Saturation | None:
    if not insights.has_gates(trainer.params):
        return None
    return insights.gate_saturation(trainer.params, trainer.config.n_bits, unit_scale)


ANALYSES = (Analysis(ANALYSIS, compute, period_s=1.0),)


def view(context: ViewContext) -> TabView:
    return TabView(TITLE, SaturationPanel(), TOOLTIP, ANALYSES)
