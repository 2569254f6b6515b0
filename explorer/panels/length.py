"""Length generalisation: exact-sum accuracy of the current weights on longer numbers than it was trained on.

An LSTM that learned the carry algorithm adds 32-bit numbers as well as 8-bit ones; one that memorised the
training width does not.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtWidgets import QLabel, QSizePolicy, QVBoxLayout, QWidget

from core import insights
from core.insights import LengthResult, Measured
from core.trainer import Trainer
from explorer.analyses import Analysis
from explorer.panels import GraphicsLayoutWidget, configure_pyqtgraph, panel_title
from explorer.panels.error_grid import describe_knockout
from explorer.views import TabView, ViewContext

ANALYSIS = "length"  # snapshot.analyses key: a Measured holding a LengthResult
TITLE = "Length"
TOOLTIP = "Exact-sum accuracy on longer numbers than the model was trained on: did it learn to carry?"
TRAINED_COLOR = "#1f77b4"
LONGER_COLOR = "#ff7f0e"
BIT_ACCURACY_COLOR = "#555555"


class LengthPanel(QWidget):
    """Bars: exact-sum accuracy (%) per bit width, the trained width in blue; each labelled with its value and
    the share of single bits right."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        configure_pyqtgraph()
        self.result: LengthResult | None = None
        self._labels: list[pg.TextItem] = []
        self.title = panel_title("Length generalisation: waiting for the first measurement…")
        self.title.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.note = QLabel()
        self.note.setWordWrap(True)
        self.view = GraphicsLayoutWidget()
        self.view.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Ignored)
        self.view.setMinimumHeight(120)
        self.view.setToolTip("Does the LSTM learn the algorithm? The same weights add longer numbers: one step "
                             "per bit, so a model that learned to carry works at any length.")
        self.plot = self.view.addPlot()
        self.plot.setLabel("bottom", "number of bits added (sequence length; each width doubles the last)")
        self.plot.setLabel("left", "sums exactly right (%)")
        self.plot.setMenuEnabled(False)
        self.plot.setMouseEnabled(False, False)
        self.plot.hideButtons()
        self.plot.showGrid(y=True, alpha=0.2)
        for axis in ("bottom", "left"):
            self.plot.getAxis(axis).enableAutoSIPrefix(False)
        self.plot.setYRange(0, 105, padding=0)
        self.plot.getAxis("left").setTicks([[(float(v), str(v)) for v in range(0, 101, 20)], []])
        self.bars = pg.BarGraphItem(x=[0], height=[0], width=0.6, brush=LONGER_COLOR)
        self.plot.addItem(self.bars)
        # The 95 % interval of each width's accuracy (the longer widths are measured on sampled pairs).
        self.intervals = pg.ErrorBarItem(x=np.zeros(1), y=np.zeros(1), top=np.zeros(1), bottom=np.zeros(1),
                                         beam=0.15, pen=pg.mkPen("#222222", width=1.5))
        self.plot.addItem(self.intervals)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.setSpacing(2)
        layout.addWidget(self.title)
        layout.addWidget(self.view, 1)
        layout.addWidget(self.note)

    def update_from(self, snapshot: object) -> None:
        measured = getattr(snapshot, "analyses", {}).get(ANALYSIS)
        if not (isinstance(measured, Measured) and isinstance(measured.value, LengthResult)):
            return
        result = self.result = measured.value
        positions = np.arange(len(result.widths))
        trained = result.widths == result.trained_bits
        accuracy = 100.0 * result.accuracy
        self.bars.setOpts(x=positions, height=accuracy, width=0.6,
                          brushes=[pg.mkBrush(TRAINED_COLOR if t else LONGER_COLOR) for t in trained])
        ticks = [(float(p), f"{w}{' (trained)' if t else ''}")
                 for p, w, t in zip(positions, result.widths, trained, strict=True)]
        self.plot.getAxis("bottom").setTicks([ticks, []])
        self.intervals.setData(x=positions.astype(float), y=accuracy, top=100.0 * result.high - accuracy,
                               bottom=accuracy - 100.0 * result.low)
        self.plot.setXRange(-0.6, len(positions) - 0.4, padding=0)
        while len(self._labels) < len(positions):  # one value label per bar; made once, then reused
            label = pg.TextItem(anchor=(0.5, 1.0), color="k")
            self.plot.addItem(label)
            self._labels.append(label)
        for k, label in enumerate(self._labels):
            label.setVisible(k < len(positions))
            if k < len(positions):
                # Inside a tall bar (in white), above a short one: a label above a bar near 100 % would leave the
                # plot however short the plot is.
                inside = accuracy[k] > 45.0
                main, small = ("white", "white") if inside else ("black", BIT_ACCURACY_COLOR)
                label.setHtml(f"<p align='center' style='margin:0; color:{main}'><b>{accuracy[k]:.1f} %</b><br>"
                              f"<span style='color:{small};font-size:8pt'>bits {100 * result.bit_accuracy[k]:.1f} %"
                              "</span></p>")
                document = label.textItem.document()
                document.setTextWidth(-1)
                document.setTextWidth(document.idealWidth())  # a fixed width is what lets the lines centre
                label.setAnchor((0.5, 0.0) if inside else (0.5, 1.0))
                label.updateTextPos()
                label.setPos(float(positions[k]), float(accuracy[k]) - 1.0 if inside else float(accuracy[k]) + 1.0)
        longest = int(result.widths[-1])
        at_longest = accuracy[-1]
        self.title.setText(f"Length generalisation: trained on {result.trained_bits} bits, "
                           f"{at_longest:.1f} % of {longest}-bit sums right · at {measured.samples_seen:,} samples"
                           f"{describe_knockout(result.knocked_out)}")
        kinds = [f"all {n:,} pairs at {w} bits" if e else None
                 for w, n, e in zip(result.widths, result.n_pairs, result.exhaustive, strict=True)]
        sampled = sorted({int(n) for n, e in zip(result.n_pairs, result.exhaustive, strict=True) if not e})
        text = "; ".join(k for k in kinds if k)
        if sampled:
            text += ("; " if text else "") + f"{', '.join(f'{n:,}' for n in sampled)} fixed random pairs at each " \
                                             "longer width (the same pairs every time)"
        self.note.setText(f"Blue: the width it trains on; orange: longer numbers, never seen in training; whiskers: "
                          f"95 % interval. Measured on {text}. Grey under each value: share of single output bits "
                          "right.")


def compute(trainer: Trainer, unit_scale: np.ndarray | None) -> LengthResult:
    return insights.length_generalisation(trainer.params, trainer.config.n_bits, unit_scale=unit_scale)


ANALYSES = (Analysis(ANALYSIS, compute, period_s=2.0),)


def view(context: ViewContext) -> TabView:
    return TabView(TITLE, LengthPanel(), TOOLTIP, ANALYSES)
