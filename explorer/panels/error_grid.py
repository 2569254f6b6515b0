"""The exhaustive error grid: every operand pair a, b (128 × 128 at 8 bits) coloured by how many bits of the
predicted sum are wrong. Hover reads a pair; a click opens it in the step-through panel.

Beyond 8 bits there are too many pairs to draw; the panel then summarises a fixed random sample instead.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRectF, Qt, Signal
from PySide6.QtGui import QPen
from PySide6.QtWidgets import QGraphicsRectItem, QHBoxLayout, QLabel, QSizePolicy, QStackedWidget, QVBoxLayout, QWidget

from core import insights, task
from core.insights import GRID_MAX_BITS, ErrorGrid, Measured
from core.trainer import Trainer
from explorer.analyses import Analysis
from explorer.panels import BIT_AXIS_LABEL, GraphicsLayoutWidget, bit_ticks, configure_pyqtgraph, panel_title
from explorer.views import TabView, ViewContext

ANALYSIS = "error_grid"  # snapshot.analyses key: a Measured holding an ErrorGrid
TITLE = "Error grid"
TOOLTIP = "Every operand pair coloured by its number of wrong bits; click a pair to step through it"
FOCUS_COLOR = "#00a0ff"
RIGHT_COLOR = "#dcebdc"  # every bit right: a pale green, so the mistakes stand out
WRONG_BAR_COLOR = "#d62728"


def wrong_bits_colormap(n_bits: int) -> pg.ColorMap:
    """A stepped map with one colour per count 0..n_bits: pale green for 0, then yellow through dark purple."""
    magma = pg.colormap.get("magma")
    counts = n_bits + 1
    colors = [pg.mkColor(RIGHT_COLOR)]
    colors += [magma.map(0.9 - 0.75 * (k - 1) / max(1, n_bits - 1), mode="qcolor") for k in range(1, counts)]
    positions, stepped = [], []
    for k, color in enumerate(colors):  # each colour fills [k, k+1) / counts: hard steps, no blending
        positions += [k / counts, (k + 1) / counts]
        stepped += [color, color]
    return pg.ColorMap(positions, stepped)


def describe_knockout(units: tuple[int, ...]) -> str:
    if not units:
        return ""
    listed = ", ".join(str(u) for u in units[:8]) + ("…" if len(units) > 8 else "")
    return f" · units {listed} knocked out" if len(units) > 1 else f" · unit {listed} knocked out"


def grid_of(snapshot: object) -> tuple[ErrorGrid | None, int]:
    """(the error grid in a snapshot's analyses or None, samples seen when it was computed)."""
    measured = getattr(snapshot, "analyses", {}).get(ANALYSIS)
    if isinstance(measured, Measured) and isinstance(measured.value, ErrorGrid):
        return measured.value, measured.samples_seen
    return None, 0


class ErrorGridView(QWidget):
    """The grid itself: an image of wrong-bit counts (a across, b up), a stepped colorbar and a hover line."""

    sigPairClicked = Signal(int, int)  # a, b of the cell clicked

    def __init__(self, compact: bool = False, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        configure_pyqtgraph()
        self.grid: ErrorGrid | None = None
        self._shape_key: tuple[int, bool] = (0, False)
        self.view = GraphicsLayoutWidget()
        self.view.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Ignored)
        self.view.setMinimumHeight(120)
        self.plot = self.view.addPlot()
        self.plot.setLabel("bottom", "a (first operand)")
        self.plot.setLabel("left", "b (second operand)")
        self.plot.setMenuEnabled(False)
        self.plot.hideButtons()
        # Cells are not kept square: the tab is wide and short, and square cells would leave most of it empty.
        self.plot.enableAutoRange(enable=False)
        self.image = pg.ImageItem(axisOrder="row-major")
        self.plot.addItem(self.image)
        self.colorbar = pg.ColorBarItem(values=(-0.5, 8.5), colorMap=wrong_bits_colormap(8), interactive=False,
                                        width=12, label="wrong bits")
        self.colorbar.setImageItem(self.image, insert_in=self.plot)
        self.focus_mark = QGraphicsRectItem()  # the focus addition's cell
        pen = QPen(pg.mkColor(FOCUS_COLOR))
        pen.setWidth(2)
        pen.setCosmetic(True)
        self.focus_mark.setPen(pen)
        self.focus_mark.setZValue(10)
        self.focus_mark.setToolTip("The addition in focus: shown in the heatmaps and the step-through")
        self.focus_mark.hide()
        self.plot.addItem(self.focus_mark, ignoreBounds=True)
        self.readout = QLabel("Point at a cell to read its addition; click it to step through it.")
        self.readout.setWordWrap(True)
        self.readout.setToolTip("The addition under the mouse pointer; sums in bits read MSB first, as written")
        self.view.setToolTip("Every operand pair: a across, b up. Light cells: every bit of a + b right; darker: "
                             "more wrong bits.\nWheel to zoom, drag to pan; click a cell to step through it.")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(2)
        layout.addWidget(self.view, 1)
        layout.addWidget(self.readout)
        if compact:
            self.plot.setLabel("bottom", "a")
            self.plot.setLabel("left", "b")
        self.view.scene().sigMouseMoved.connect(self._on_mouse_moved)
        self.view.scene().sigMouseClicked.connect(self._on_mouse_clicked)

    def show_grid(self, grid: ErrorGrid) -> None:
        """Draw an exhaustive grid (wrong_image set); levels and ticks change only with the bit width."""
        self.grid = grid
        self.image.setImage(grid.wrong_image, autoLevels=False)
        key = (grid.n_bits, grid.exhaustive)
        if key != self._shape_key:
            self._shape_key = key
            side = grid.side
            self.image.setRect(QRectF(0, 0, side, side))  # cell (a, b) covers [a, a+1) x [b, b+1)
            self.colorbar.setColorMap(wrong_bits_colormap(grid.n_bits))
            self.colorbar.setLevels((-0.5, grid.n_bits + 0.5))
            every = max(1, (grid.n_bits + 1) // 9 + 1)
            self.colorbar.axis.setTicks([[(float(k), str(k)) for k in range(0, grid.n_bits + 1, every)], []])
            self.plot.getViewBox().setLimits(xMin=-side * 0.05, xMax=side * 1.05, yMin=-side * 0.05,
                                             yMax=side * 1.05)
            self.plot.setRange(xRange=(0, side), yRange=(0, side), padding=0.02)
            # Ticks at multiples of a power of two: carries show up as bands at 16, 32, 64...
            step = max(1, side // 8)
            ticks = [[(float(v), str(v)) for v in range(0, side + 1, step)], []]
            self.plot.getAxis("bottom").setTicks(ticks)
            self.plot.getAxis("left").setTicks(ticks)

    def mark_focus(self, operands: tuple[int, int] | None) -> None:
        """Outline the cell of the focus addition (None: no mark)."""
        if operands is None or self.grid is None or not all(0 <= v < self.grid.side for v in operands):
            self.focus_mark.hide()
            return
        a, b = operands
        self.focus_mark.setRect(QRectF(a - 0.5, b - 0.5, 2, 2))  # a little larger than the cell: visible at any zoom
        self.focus_mark.show()

    def pair_at(self, scene_position) -> tuple[int, int] | None:
        """(a, b) of the cell under a scene position, or None outside the grid."""
        if self.grid is None or self.grid.wrong_image is None:
            return None
        box = self.plot.getViewBox()
        if not box.sceneBoundingRect().contains(scene_position):
            return None
        point = box.mapSceneToView(scene_position)
        a, b = int(np.floor(point.x())), int(np.floor(point.y()))
        side = self.grid.side
        return (a, b) if 0 <= a < side and 0 <= b < side else None

    def describe_pair(self, a: int, b: int) -> str:
        """'45 + 67 = 112, predicted 96: 2 wrong bits' with the sums in bits (MSB first)."""
        grid = self.grid
        n_bits = grid.n_bits
        predicted = int(grid.predicted_image[b, a])
        wrong = int(grid.wrong_image[b, a])
        true_bits, predicted_bits = task.to_binary_string(a + b, n_bits), task.to_binary_string(predicted, n_bits)
        verdict = "right" if wrong == 0 else f"{wrong} wrong bit{'s' if wrong > 1 else ''}"
        return (f"a = {a}, b = {b}: true sum {a + b} ({true_bits}), predicted {predicted} ({predicted_bits}) — "
                f"{verdict}. Click to step through it.")

    def _on_mouse_moved(self, scene_position) -> None:
        pair = self.pair_at(scene_position)
        if pair is not None:
            self.readout.setText(self.describe_pair(*pair))

    def _on_mouse_clicked(self, event) -> None:
        if event.button() != Qt.MouseButton.LeftButton:
            return
        pair = self.pair_at(event.scenePos())
        if pair is not None:
            event.accept()
            self.sigPairClicked.emit(*pair)


class ErrorGridPanel(QWidget):
    """Tab: the error grid at the trained width, or a sampled summary when there are too many pairs."""

    sigPairClicked = Signal(int, int)  # a, b: open this addition in the step-through panel

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        configure_pyqtgraph()
        self.title = panel_title("Error grid: waiting for the first measurement…")
        self.title.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.title.setToolTip("Exact-sum accuracy over every operand pair, measured on the current weights")
        self.grid_view = ErrorGridView()
        self.grid_view.sigPairClicked.connect(self.sigPairClicked)

        # The summary page for widths with too many pairs to draw.
        self.summary_view = GraphicsLayoutWidget()
        self.summary_view.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Ignored)
        self.histogram_plot = self.summary_view.addPlot(row=0, col=0)
        self.histogram_plot.setTitle("How many bits of the sum are wrong", size="10pt")
        self.histogram_plot.setLabel("bottom", "wrong bits in the sum")
        self.histogram_plot.setLabel("left", "share of sampled pairs (%)")
        self.histogram_bars = pg.BarGraphItem(x=[0], height=[0], width=0.8, brush=WRONG_BAR_COLOR)
        self.histogram_plot.addItem(self.histogram_bars)
        self.position_plot = self.summary_view.addPlot(row=0, col=1)
        self.position_plot.setTitle("Where the wrong bits are", size="10pt")
        self.position_plot.setLabel("bottom", BIT_AXIS_LABEL)
        self.position_plot.setLabel("left", "pairs with this bit wrong (%)")
        self.position_bars = pg.BarGraphItem(x=[0], height=[0], width=0.8, brush=WRONG_BAR_COLOR)
        self.position_plot.addItem(self.position_bars)
        for plot in (self.histogram_plot, self.position_plot, self.grid_view.plot):
            for axis in ("bottom", "left"):
                plot.getAxis(axis).enableAutoSIPrefix(False)
        for plot in (self.histogram_plot, self.position_plot):
            plot.setMenuEnabled(False)
            plot.setMouseEnabled(False, False)
            plot.hideButtons()
            plot.showGrid(y=True, alpha=0.2)

        self.pages = QStackedWidget()
        self.pages.addWidget(self.grid_view)
        self.pages.addWidget(self.summary_view)
        header = QHBoxLayout()
        header.addWidget(self.title, 1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.setSpacing(2)
        layout.addLayout(header)
        layout.addWidget(self.pages, 1)

    def update_from(self, snapshot: object) -> None:
        grid, samples = grid_of(snapshot)
        if grid is None:
            return
        right = int(np.count_nonzero(grid.wrong_bits == 0))
        pairs = len(grid.wrong_bits)
        knocked = describe_knockout(grid.knocked_out)
        if grid.exhaustive:
            self.pages.setCurrentWidget(self.grid_view)
            self.title.setText(f"Error grid, all {pairs:,} pairs at {grid.n_bits} bits: {right:,} sums right "
                               f"({100 * grid.accuracy:.1f} %) · at {samples:,} samples{knocked}")
            self.grid_view.show_grid(grid)
            self.grid_view.mark_focus(snapshot.focus.operands if hasattr(snapshot, "focus") else None)
            return
        self.pages.setCurrentWidget(self.summary_view)
        total = task.operand_limit(grid.n_bits) ** 2
        self.title.setText(f"At {grid.n_bits} bits there are {total:,} pairs, too many to draw (the grid stops at "
                           f"{GRID_MAX_BITS} bits): {pairs:,} fixed random pairs, {100 * grid.accuracy:.1f} % right"
                           f" · at {samples:,} samples{knocked}")
        counts = np.arange(grid.n_bits + 1)
        self.histogram_bars.setOpts(x=counts, height=100.0 * grid.histogram() / pairs, width=0.8)
        self.histogram_bars.setOpts(brushes=[pg.mkBrush("#2ca02c" if k == 0 else WRONG_BAR_COLOR) for k in counts])
        self.position_bars.setOpts(x=np.arange(grid.n_bits), height=100.0 * grid.position_error, width=0.8)
        self.histogram_plot.getAxis("bottom").setTicks(bit_ticks(grid.n_bits + 1))
        self.position_plot.getAxis("bottom").setTicks(bit_ticks(grid.n_bits))
        self.histogram_plot.setRange(xRange=(-0.6, grid.n_bits + 0.6), yRange=(0, 100), padding=0.02)
        self.position_plot.setRange(xRange=(-0.6, grid.n_bits - 0.4),
                                    yRange=(0, max(1.0, 100.0 * float(grid.position_error.max()))), padding=0.05)


def compute(trainer: Trainer, unit_scale: np.ndarray | None) -> ErrorGrid:
    return insights.error_grid(trainer.params, trainer.config.n_bits, unit_scale)


ANALYSES = (Analysis(ANALYSIS, compute, period_s=1.0),)


def view(context: ViewContext) -> TabView:
    panel = ErrorGridPanel()
    panel.sigPairClicked.connect(context.look_at)
    return TabView(TITLE, panel, TOOLTIP, ANALYSES)
