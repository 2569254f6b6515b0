"""Inside the model for the focus addition: gates i, f, g, o, cell c and hidden h as unit × bit-position heatmaps
(h only for the plain RNN), p(sum bit) per position, and the addition written out as bits. The focus step is marked
in every one, and the carry finder's units beside the heatmap rows."""

from __future__ import annotations

import html

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRectF, QSizeF, Qt, QTimer, Signal
from PySide6.QtGui import QBrush, QCursor, QGuiApplication, QImage, QPainterPath, QPen, QPixmap, QPolygonF
from PySide6.QtWidgets import (
    QDoubleSpinBox,
    QGraphicsEllipseItem,
    QGraphicsItem,
    QGraphicsPathItem,
    QGraphicsPixmapItem,
    QGraphicsRectItem,
    QHBoxLayout,
    QLabel,
    QSizePolicy,
    QToolTip,
    QVBoxLayout,
    QWidget,
)

from core import task
from core.insights import Measured
from explorer.panels import (
    BIT_AXIS_LABEL,
    GraphicsLayoutWidget,
    SteadyLabel,
    bit_ticks,
    configure_pyqtgraph,
    make_title,
    outward_ticks,
    unclipped,
    unit_tick_spacing,
)
from explorer.panels.inputs import CheckedSpinBox
from explorer.snapshot import Snapshot

# name -> (title, colormap, levels). The sigmoid gates i, f, o are in [0, 1]: sequential map. g = tanh(.) is in
# [-1, 1], signed like c and h: diverging map. c is unbounded, shown in a fixed (adjustable) range.
HEATMAPS: dict[str, tuple[str, str, tuple[float, float]]] = {
    "i": ("i · input gate", "viridis", (0.0, 1.0)),
    "f": ("f · forget gate", "viridis", (0.0, 1.0)),
    "g": ("g · cell candidate", "CET-D1", (-1.0, 1.0)),
    "o": ("o · output gate", "viridis", (0.0, 1.0)),
    "c": ("c · cell state", "CET-D1", (-2.0, 2.0)),
    "h": ("h · hidden state", "CET-D1", (-1.0, 1.0)),
}
GATE_ROW = ("i", "f", "g", "o")
NO_GATES_TOOLTIP = ("The plain RNN has no gates and no cell state: its only memory is the hidden state h, squashed "
                    "by tanh and mixed by the same weights at every bit.\nChoose the LSTM and Reset to look at gates.")
STATE_ROW = ("c", "h")
HIGHLIGHT_COLOR = (220, 30, 30)
CARRY_COLOR = "#d62728"
MARK_COLUMN = 0.55  # width (in bit columns) of the strip left of each heatmap where carry units are marked
CARRY_ANALYSIS = "carry"  # the carry finder's result in snapshot.analyses (see panels.stepthrough)
UNLIMITED = 16_777_215.0  # Qt's largest widget size (QWIDGETSIZE_MAX)
WRONG_COLOR = "#d62728"
RIGHT_COLOR = "#2c7fb8"
BAR_WIDTH = 0.7  # of a bit position
TRUE_BIT_SIZE = 8  # pixels across the circle marking a true bit


def argb_lookup_table(colormap: pg.ColorMap, n_colors: int = 256) -> np.ndarray:
    """(n_colors,) uint32 0xAARRGGBB: the colormap as opaque pixels, for QImage.Format_ARGB32."""
    rgb = colormap.getLookupTable(nPts=n_colors, alpha=False).astype(np.uint32)
    return (0xFF000000 | (rgb[:, 0] << 16) | (rgb[:, 1] << 8) | rgb[:, 2]).astype(np.uint32)


def colour_image(values: np.ndarray, levels: tuple[float, float], lut: np.ndarray) -> QImage:
    """values (rows, columns) coloured through lut between levels (beyond them: the end colours), as an image
    with one pixel per value. The same mapping as pyqtgraph's ImageItem with these levels and colormap."""
    low, high = levels
    scaled = (np.asarray(values, dtype=np.float64) - low) * (len(lut) / (high - low))
    with np.errstate(invalid="ignore"):  # a NaN becomes some integer, clipped to an end colour below
        index = scaled.astype(np.intp)
    pixels = np.ascontiguousarray(lut[np.clip(index, 0, len(lut) - 1)])
    rows, columns = pixels.shape
    return QImage(pixels.tobytes(), columns, rows, 4 * columns, QImage.Format.Format_ARGB32).copy()


class _Heatmap:
    """One PlotItem holding an image (units × bit positions), its colorbar and highlight marks.

    The image is a plain QGraphicsPixmapItem coloured here, not a pyqtgraph ImageItem: painting it runs no
    Python (an ImageItem re-colours its data in Python on every paint), so the window paints it without taking
    the interpreter from the training thread.
    """

    def __init__(self, plot: pg.PlotItem, title: str, colormap: str, levels: tuple[float, float],
                 unit_label: bool = True, bit_label: bool = True) -> None:
        self.plot = plot
        self.values = np.zeros((1, 1))  # (H, T) as drawn, for the hover readout
        self.levels = levels
        self._colormap = pg.colormap.get(colormap)
        self._lut = argb_lookup_table(self._colormap)
        plot.setTitle(title, size="9pt")
        if bit_label:  # (the gate row shares the bit axis label of the row below: the room goes to the images)
            plot.setLabel("bottom", BIT_AXIS_LABEL, **{"font-size": "8pt"})
        if unit_label:  # the first plot of a row names the shared unit axis
            plot.setLabel("left", "unit", **{"font-size": "8pt"})
        plot.setMouseEnabled(False, False)
        plot.setMenuEnabled(False)
        plot.hideButtons()
        outward_ticks(plot)
        unclipped(plot)  # the image fills the range shown exactly; the marks lie on it
        plot.invertY(True)  # unit 0 at the top, as in a matrix
        self.image = QGraphicsPixmapItem()
        self.image.setShapeMode(QGraphicsPixmapItem.ShapeMode.BoundingRectShape)
        self.image.setOffset(-0.5, -0.5)  # pixel (u, t) covers unit u ± 0.5 and bit t ± 0.5
        plot.addItem(self.image, ignoreBounds=True)
        self.colorbar = pg.ColorBarItem(values=levels, colorMap=self._colormap, interactive=False, width=12)
        plot.layout.addItem(self.colorbar, 2, 5)  # right of the plot, where ColorBarItem.setImageItem puts it
        plot.layout.setColumnFixedWidth(4, 5)
        self._label_colorbar(levels)
        # Static: drawn once into pixmaps (the bar's frame and scale are axes of their own). A view draws nothing
        # itself here, so Qt need not call its paint (in Python) on every frame either.
        for item in (self.colorbar, *(self.colorbar.getAxis(side) for side in ("left", "right", "top", "bottom"))):
            item.setCacheMode(QGraphicsItem.CacheMode.DeviceCoordinateCache)
        for box in (plot.getViewBox(), self.colorbar.getViewBox()):
            box.setFlag(QGraphicsItem.GraphicsItemFlag.ItemHasNoContents)
        self.step_mark = QGraphicsRectItem()
        pen = QPen(pg.mkColor(*HIGHLIGHT_COLOR))
        pen.setWidth(2)
        pen.setCosmetic(True)
        self.step_mark.setPen(pen)
        self.step_mark.setZValue(10)
        self.step_mark.hide()
        plot.addItem(self.step_mark)
        # Carry units: triangles in a strip left of the image, pointing at their rows (beside them, never over the
        # values). A plain Qt path: painted without running Python.
        self.unit_marks = QGraphicsPathItem()
        self.unit_marks.setBrush(QBrush(pg.mkColor(CARRY_COLOR)))
        self.unit_marks.setPen(QPen(Qt.PenStyle.NoPen))
        self.unit_marks.setZValue(10)
        self.unit_marks.hide()
        plot.addItem(self.unit_marks, ignoreBounds=True)
        for side in ("left", "bottom"):
            plot.getAxis(side).enableAutoSIPrefix(False)  # unit numbers, not "unit (x0.001)"
        self.shape = (0, 0)

    def set_values(self, values: np.ndarray) -> bool:
        """values (H, T); the range and ticks change only when the shape does (then returns True)."""
        self.values = values
        self._draw_image()
        if values.shape != self.shape:
            self.shape = values.shape
            units, steps = values.shape
            self.plot.setRange(xRange=(-0.5 - MARK_COLUMN, steps - 0.5), yRange=(-0.5, units - 0.5), padding=0)
            self.plot.getAxis("bottom").setTicks(bit_ticks(steps))
            self.fit_unit_ticks()
            return True
        return False

    def fit_unit_ticks(self) -> None:
        """Whole-unit ticks, as many as the image's height has room for (one label per ~14 pixels, at least the
        first and the last unit)."""
        units = self.shape[0]
        if not units:
            return
        room = max(2, min(5, int(self.plot.getViewBox().height() // 14)))
        major, _ = unit_tick_spacing(units)
        values = list(range(0, units, int(major)))
        while len(values) > room and len(values) > 2:
            values = values[::2]
        if units - 1 not in values and len(values) < room:
            values.append(units - 1)
        key = tuple(values)
        if key != getattr(self, "_unit_ticks", None):
            self._unit_ticks = key
            self.plot.getAxis("left").setTicks([[(float(u), str(u)) for u in values], []])

    def set_levels(self, levels: tuple[float, float]) -> None:
        """Colour range of the image and its colorbar."""
        self.levels = levels
        self.colorbar.setLevels(levels)
        self._label_colorbar(levels)
        self._draw_image()

    def _label_colorbar(self, levels: tuple[float, float]) -> None:
        """Three labels on the bar (its ends and middle): the automatic five or six crowd each other on a bar
        this short."""
        low, high = levels
        values = (low, (low + high) / 2, high)
        self.colorbar.getAxis("right").setTicks([[(v, f"{v:.3g}") for v in values], []])

    def _draw_image(self) -> None:
        self.image.setPixmap(QPixmap.fromImage(colour_image(self.values, self.levels, self._lut)))

    def mark_step(self, t: int | None) -> None:
        units, steps = self.shape
        if t is None or not 0 <= t < steps:
            self.step_mark.hide()
            return
        self.step_mark.setRect(QRectF(t - 0.5, -0.5, 1, units))
        self.step_mark.show()

    def mark_units(self, units: list[int]) -> None:
        rows, _steps = self.shape
        chosen = [u for u in units if 0 <= u < rows]
        if not chosen:
            self.unit_marks.hide()
            return
        path = QPainterPath()
        left, tip = -0.5 - 0.9 * MARK_COLUMN, -0.5 - 0.1 * MARK_COLUMN
        half = min(0.45, max(0.3, 0.04 * rows))  # at many units a row is thin: the mark may spill over a neighbour
        for u in chosen:
            path.addPolygon(QPolygonF([pg.QtCore.QPointF(left, u - half), pg.QtCore.QPointF(tip, u),
                                       pg.QtCore.QPointF(left, u + half)]))
            path.closeSubpath()
        self.unit_marks.setPath(path)
        self.unit_marks.setToolTip("carry unit" + ("s " if len(chosen) > 1 else " ")
                                   + ", ".join(str(u) for u in chosen) + " (carry finder, in the Step through tab)")
        self.unit_marks.show()


class _SteadyTextItem(pg.LabelItem):
    """Rich text in the plot grid that keeps its size when the text changes: a LabelItem normally resizes to its
    text, which lays out (and repaints) every plot in the grid again."""

    def updateMin(self) -> None:
        pass


class HeatmapPanel(QWidget):
    """Gates, cell and hidden state of every unit at every bit position for the focus addition."""

    sigProbeRequested = Signal(int, int)  # the user typed another addition to look at
    sigRefused = Signal(str)  # an operand typed out of range, refused: why

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        configure_pyqtgraph()
        self._snapshot: Snapshot | None = None
        self._step: int | None = 3
        self._units: list[int] = []
        self._carry_result: object = None
        self._bit_rows_key: tuple | None = None

        self.title = SteadyLabel("Inside the LSTM")  # new text every frame: must not relayout the plots
        make_title(self.title.label)
        self.title.setFixedHeight(self.title.label.sizeHint().height() + 4)
        self.probe_a = CheckedSpinBox("the first operand", 0, task.operand_limit(8) - 1)
        self.probe_b = CheckedSpinBox("the second operand", 0, task.operand_limit(8) - 1)
        for box, which in ((self.probe_a, "first"), (self.probe_b, "second")):
            box.setToolTip(f"The {which} operand of the addition in focus: traced in these heatmaps and in the "
                           "step-through")
            box.sigRefused.connect(self.sigRefused)
        self.probe_a.setValue(45)
        self.probe_b.setValue(67)
        self._probe_timer = QTimer(self, singleShot=True, interval=150)
        self._probe_timer.timeout.connect(self._send_probe)
        self.probe_a.valueChanged.connect(self._probe_timer.start)
        self.probe_b.valueChanged.connect(self._probe_timer.start)
        self.cell_range = QDoubleSpinBox()
        self.cell_range.setRange(0.25, 20.0)
        self.cell_range.setSingleStep(0.25)
        self.cell_range.setValue(2.0)
        self.cell_range.setPrefix("± ")
        self.cell_range.setToolTip("Colour range of the cell-state heatmap c: values beyond it show the end colour")
        self.cell_range.valueChanged.connect(self._set_cell_range)
        self.readout = ""  # the value under the mouse, shown as a tooltip beside the pointer

        header = QHBoxLayout()
        header.addWidget(self.title, 1)
        header.addSpacing(12)
        header.addWidget(QLabel("addition"))
        header.addWidget(self.probe_a)
        header.addWidget(QLabel("+"))
        header.addWidget(self.probe_b)
        header.addSpacing(12)
        self.cell_range_label = QLabel("c colour range")
        header.addWidget(self.cell_range_label)
        header.addWidget(self.cell_range)

        # One scene for all plots (one paint per frame, not seven): gates on the first row; cell, hidden,
        # output and the bits on the second.
        self.view = GraphicsLayoutWidget()
        self.view.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Ignored)
        self.view.setMinimumHeight(200)  # two rows of 16 units still readable; the curves keep their room
        self.view.ci.setSpacing(4)
        self.maps: dict[str, _Heatmap] = {}
        for row, names in enumerate((GATE_ROW, STATE_ROW)):
            for col, name in enumerate(names):
                # enableMenu=False also saves building a context menu per plot at start-up
                self.maps[name] = _Heatmap(self.view.addPlot(row=row, col=col, enableMenu=False), *HEATMAPS[name],
                                           unit_label=col == 0, bit_label=row == 1)
        self.prob_plot = self.view.addPlot(row=1, col=len(STATE_ROW), enableMenu=False)
        self._setup_prob_plot()
        self.bit_rows = _SteadyTextItem(justify="left")
        self.bit_rows.setMinimumSize(230, 0)
        self.bit_rows.setToolTip("The addition in focus as bits, written MSB first as people write numbers;"
                                 " wrong predicted bits are red")
        # Next to the bars that change with every snapshot: as a cached pixmap the text is laid out and drawn
        # again only when it changes.
        self.bit_rows.item.setCacheMode(QGraphicsItem.CacheMode.DeviceCoordinateCache)
        self.view.addItem(self.bit_rows, row=1, col=len(STATE_ROW) + 1)
        for col in range(len(GATE_ROW)):
            self.view.ci.layout.setColumnStretchFactor(col, 1)
        for row in range(2):
            self.view.ci.layout.setRowStretchFactor(row, 1)
        self.view.scene().sigMouseMoved.connect(self._read_value)
        for heatmap in self.maps.values():  # room for unit labels changes with the height of the images
            heatmap.plot.getViewBox().sigResized.connect(heatmap.fit_unit_ticks)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.setSpacing(2)
        layout.addLayout(header)
        layout.addWidget(self.view, 1)
        self._gated = True  # the gates and the cell are shown (the LSTM); only h for the plain RNN
        self._show_nothing()

    # ---- building -------------------------------------------------------------------------------------------
    def _setup_prob_plot(self) -> None:
        plot = self.prob_plot
        plot.setTitle("p(sum bit = 1) · ○ true bit", size="9pt")
        plot.setLabel("bottom", BIT_AXIS_LABEL, **{"font-size": "8pt"})
        plot.setLabel("left", "probability", **{"font-size": "8pt"})
        outward_ticks(plot)
        plot.setMouseEnabled(False, False)
        plot.setMenuEnabled(False)
        plot.hideButtons()
        plot.setYRange(-0.08, 1.1, padding=0)
        unclipped(plot)  # bars reach 1 at most, the lines and the step mark span only the range shown
        half = pg.InfiniteLine(0.5, angle=0, pen=pg.mkPen((120, 120, 120), style=Qt.PenStyle.DashLine))
        plot.addItem(half)
        # Bars and true-bit circles are plain Qt items, one per bit: the scene paints them without running any
        # Python (pyqtgraph's bar and scatter items compute their bounds and draw in Python on every paint).
        self.prob_bars: list[QGraphicsRectItem] = []
        self.true_bits: list[QGraphicsEllipseItem] = []
        self.prob_step_mark = pg.LinearRegionItem((0, 0), movable=False, brush=(220, 30, 30, 40),
                                                  pen=pg.mkPen(HIGHLIGHT_COLOR))
        self.prob_step_mark.hide()
        plot.addItem(self.prob_step_mark)
        # These rarely change but overlap the bars, so each new picture would paint them again in Python: kept
        # as cached pixmaps, they are redrawn only when they change.
        for item in (half, self.prob_step_mark):
            item.setCacheMode(QGraphicsItem.CacheMode.DeviceCoordinateCache)
        self._prob_steps = 0
        self._prob_wrong: tuple[bool, ...] = ()
        self._true_bits_shown: tuple[int, ...] = ()
        self.prob_values = np.zeros(0)

    def _show_gated(self, gated: bool) -> None:
        """The gate row and the cell for the LSTM; for the plain RNN only h (with the unit axis named on it)."""
        if gated == self._gated:
            return
        self._gated = gated
        for name in (*GATE_ROW, "c"):
            plot = self.maps[name].plot
            plot.setVisible(gated)
            # A hidden item keeps its place in the grid: with no room at all, its row and column close up.
            plot.setMaximumSize(QSizeF(UNLIMITED, UNLIMITED) if gated else QSizeF(0, 0))
        unit_axis = self.maps["h"].plot.getAxis("left")
        unit_axis.setLabel("unit")
        unit_axis.showLabel(not gated)
        for widget in (self.cell_range_label, self.cell_range):
            widget.setVisible(gated)
        self.title.setToolTip("" if gated else NO_GATES_TOOLTIP)

    def _show_nothing(self) -> None:
        self.bit_rows.setText("<i>waiting for the first snapshot…</i>", color="k")

    # ---- public API -----------------------------------------------------------------------------------------
    def update_from(self, snapshot: Snapshot) -> None:
        self._snapshot = snapshot
        trace = snapshot.probe
        limit = task.operand_limit(snapshot.n_bits)
        if self.probe_a.maximum() != limit - 1:
            for box in (self.probe_a, self.probe_b):
                box.blockSignals(True)
                box.setMaximum(limit - 1)
                box.blockSignals(False)
        self._show_gated(trace.gated)
        if not self._probe_timer.isActive() and not (self.probe_a.hasFocus() or self.probe_b.hasFocus()):
            for box, value in ((self.probe_a, trace.a), (self.probe_b, trace.b)):
                if box.value() != value:
                    box.blockSignals(True)
                    box.setValue(value)
                    box.blockSignals(False)
        self._show_title(trace)
        reshaped = False
        for name, values in trace.gates().items():
            reshaped |= self.maps[name].set_values(values.T)  # (T, H) -> (H, T): units down, bit positions across
        if trace.cell is not None:
            reshaped |= self.maps["c"].set_values(trace.cell[1:].T)
        reshaped |= self.maps["h"].set_values(trace.hidden[1:].T)
        self._update_probs(trace)
        self._update_bit_rows(trace)
        result = snapshot.analyses.get(CARRY_ANALYSIS)
        units = self._units
        if result is not self._carry_result or reshaped:
            self._carry_result = result
            current = CARRY_ANALYSIS not in snapshot.pending and isinstance(result, Measured)
            units = result.value.carriers() if current else []
        if reshaped or units != self._units:  # the marks are drawn in data coordinates: again for a new shape
            self.highlight_units(units)
        if reshaped:
            self.highlight_step(self._step)

    def focus_changed(self, focus: object) -> None:
        """The focus step moved: marked at once (new operands come with the next snapshot's trace)."""
        if focus.step != self._step:
            self.highlight_step(focus.step)
            if self._snapshot is not None:
                self._show_title(self._snapshot.probe)

    def _show_title(self, trace: object) -> None:
        verdict = "right" if trace.predicted == trace.true_sum else "wrong"
        model = "the LSTM" if trace.gated else "the plain RNN (no gates, no cell: h is all it keeps)"
        step = f" · step {self._step} marked" if self._step is not None else ""
        self.title.setText(f"Inside {model}: {trace.a} + {trace.b} = {trace.true_sum}, predicted {trace.predicted}"
                           f" ({verdict}){step}")

    def highlight_step(self, t: int | None) -> None:
        """Mark bit column t (LSB = 0) in every heatmap, the output plot and the bit rows; None clears it."""
        self._step = t
        for heatmap in self.maps.values():
            heatmap.mark_step(t)
        if t is None or not 0 <= t < self._prob_steps:
            self.prob_step_mark.hide()
        else:
            self.prob_step_mark.setRegion((t - 0.5, t + 0.5))
            self.prob_step_mark.show()
        if self._snapshot is not None:
            self._update_bit_rows(self._snapshot.probe)

    def highlight_units(self, units: list[int]) -> None:
        """Mark these unit rows (beside them) in every heatmap; [] clears."""
        self._units = [int(u) for u in units]
        for heatmap in self.maps.values():
            heatmap.mark_units(self._units)

    # ---- drawing helpers ------------------------------------------------------------------------------------
    def _update_probs(self, trace) -> None:
        steps = trace.n_bits
        self.prob_values = trace.probs
        if steps != self._prob_steps:
            self._make_prob_items(steps)
        wrong = tuple(bool(w) for w in trace.wrong_bits)
        if wrong != self._prob_wrong:  # colours only change with right/wrong
            self._prob_wrong = wrong
            for bar, is_wrong in zip(self.prob_bars, wrong, strict=True):
                bar.setBrush(pg.mkBrush(WRONG_COLOR if is_wrong else RIGHT_COLOR))
        for t, (bar, p) in enumerate(zip(self.prob_bars, trace.probs.tolist(), strict=True)):
            bar.setRect(QRectF(t - BAR_WIDTH / 2, 0.0, BAR_WIDTH, p))
        bits = tuple(int(bit) for bit in trace.bits_sum)
        if bits != self._true_bits_shown:
            self._true_bits_shown = bits
            for t, (dot, bit) in enumerate(zip(self.true_bits, bits, strict=True)):
                dot.setPos(t, bit)

    def _make_prob_items(self, steps: int) -> None:
        """One bar and one true-bit circle per bit position."""
        plot = self.prob_plot
        for item in (*self.prob_bars, *self.true_bits):
            plot.removeItem(item)
        edge = QPen(pg.mkColor("k"))
        edge.setCosmetic(True)
        ring = QPen(pg.mkColor("k"))
        ring.setWidthF(1.5)
        self.prob_bars, self.true_bits = [], []
        for _ in range(steps):
            bar = QGraphicsRectItem()
            bar.setPen(edge)
            plot.addItem(bar, ignoreBounds=True)
            self.prob_bars.append(bar)
            radius = TRUE_BIT_SIZE / 2
            dot = QGraphicsEllipseItem(-radius, -radius, TRUE_BIT_SIZE, TRUE_BIT_SIZE)
            dot.setFlag(QGraphicsItem.GraphicsItemFlag.ItemIgnoresTransformations)  # a circle in pixels
            dot.setPen(ring)
            dot.setBrush(pg.mkBrush("w"))
            dot.setZValue(5)
            plot.addItem(dot, ignoreBounds=True)
            self.true_bits.append(dot)
        self._prob_steps = steps
        self._prob_wrong = ()
        self._true_bits_shown = ()
        plot.setXRange(-0.6, steps - 0.4, padding=0)
        plot.getAxis("bottom").setTicks(bit_ticks(steps))

    def _update_bit_rows(self, trace) -> None:
        key = (trace.a, trace.b, trace.predicted, tuple(trace.wrong_bits), self._step, trace.n_bits)
        if key == self._bit_rows_key:
            return
        self._bit_rows_key = key
        self.bit_rows.setText(bit_rows_html(trace.a, trace.b, trace.predicted_bits, trace.bits_sum,
                                            trace.n_bits, self._step), color="k")

    def _send_probe(self) -> None:
        self.sigProbeRequested.emit(self.probe_a.value(), self.probe_b.value())

    def _set_cell_range(self, value: float) -> None:
        self.maps["c"].set_levels((-value, value))

    def _read_value(self, position) -> None:
        """Show the value under the mouse (position in scene coordinates) beside the pointer."""
        text = ""
        for name, heatmap in self.maps.items():
            if not heatmap.plot.isVisible():
                continue
            box = heatmap.plot.getViewBox()
            if box.sceneBoundingRect().contains(position):
                point = box.mapSceneToView(position)
                unit, step = round(point.y()), round(point.x())
                values = heatmap.values
                if 0 <= unit < values.shape[0] and 0 <= step < values.shape[1]:
                    text = f"{HEATMAPS[name][0]}\nunit {unit}, bit {step}: {values[unit, step]:+.4f}"
                break
        box = self.prob_plot.getViewBox()
        if not text and box.sceneBoundingRect().contains(position):
            step = round(box.mapSceneToView(position).x())
            if 0 <= step < len(self.prob_values) and self._snapshot is not None:
                true_bit = int(self._snapshot.probe.bits_sum[step])
                text = f"bit {step}: p(sum bit = 1) = {self.prob_values[step]:.4f}\ntrue bit {true_bit}"
        self.readout = text
        if QGuiApplication.platformName() in ("offscreen", "minimal"):
            return  # nothing on screen to show a tooltip on (and those platforms warn when asked to)
        if text:
            QToolTip.showText(QCursor.pos(), text, self.view)
        else:
            QToolTip.hideText()


def bit_rows_html(a: int, b: int, predicted_bits: np.ndarray, true_bits: np.ndarray, n_bits: int,
                  step: int | None = None) -> str:
    """The addition as rows of bits, MSB first (as written), wrong predicted bits red, column `step` shaded.

    predicted_bits and true_bits are (T,) LSB first. The rows are preformatted monospace text rather than an
    HTML table: Qt lays a table out again on every change, about ten times the cost, and the predicted row
    changes often while the model trains.
    """
    width = len(str(n_bits - 1))  # characters per column: bit numbers can have two digits

    def cells(texts: list[str], wrong: np.ndarray | None = None, shade: bool = True) -> str:
        out = []
        for t in reversed(range(n_bits)):  # MSB first
            text = texts[t].rjust(width)
            if wrong is not None and wrong[t]:
                text = f"<b><font color='{WRONG_COLOR}'>{text}</font></b>"
            if shade and step == t:
                text = f"<span style='background:#ffd8d8'>{text}</span>"
            out.append(text)
        return " ".join(out)

    def bits_text(bits: np.ndarray) -> list[str]:
        return [str(int(bit)) for bit in bits]

    predicted_bits = np.asarray(predicted_bits)
    true_bits = np.asarray(true_bits)
    wrong = predicted_bits != true_bits
    predicted = int(task.decode(predicted_bits[:, None].astype(float))[0])
    rows = [
        ("a", a, cells(bits_text(task.encode(np.array([a]), n_bits)[:, 0]))),
        ("b", b, cells(bits_text(task.encode(np.array([b]), n_bits)[:, 0]))),
        ("a + b", a + b, cells(bits_text(true_bits))),
        ("predicted", predicted, cells(bits_text(predicted_bits), wrong)),
    ]
    label_width = max(len(name) for name, _, _ in rows) + 1
    numbers = cells([str(t) for t in range(n_bits)], shade=False)
    header = f"<span style='color:#777'>{'bit'.ljust(label_width)}{numbers}</span>"
    body = "\n".join(f"{html.escape(name.ljust(label_width))}{bits} = {value}" for name, value, bits in rows)
    n_wrong = int(wrong.sum())
    verdict = ("<font color='#2ca02c'>all bits right</font>" if n_wrong == 0
               else f"<font color='{WRONG_COLOR}'>{n_wrong} wrong bit{'s' if n_wrong > 1 else ''} (red)</font>")
    return (
        f"<div style='font-size:9pt'><b>The addition in bits</b> · {verdict}<br>"
        "<span style='color:#555'>MSB … LSB, as written</span>"
        f"<pre style='margin:2px 0'>{header}\n{body}</pre></div>"
    )
