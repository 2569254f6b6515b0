"""Inside the LSTM for one probe addition: gates i, f, g, o, cell c and hidden h as unit × bit-position heatmaps,
p(sum bit) per position, and the addition written out as bits."""

from __future__ import annotations

import html

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRectF, Qt, QTimer, Signal
from PySide6.QtGui import QCursor, QGuiApplication, QPen
from PySide6.QtWidgets import (
    QDoubleSpinBox,
    QGraphicsItem,
    QGraphicsRectItem,
    QHBoxLayout,
    QLabel,
    QSizePolicy,
    QSpinBox,
    QToolTip,
    QVBoxLayout,
    QWidget,
)

from core import task
from explorer.panels import (
    BIT_AXIS_LABEL,
    SteadyLabel,
    bit_ticks,
    configure_pyqtgraph,
    make_title,
    outward_ticks,
    unit_tick_spacing,
)
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
NO_GATES_NOTE = ("The plain RNN has no gates and no cell state: its only memory is the hidden state h, squashed by "
                 "tanh and mixed by the same weights at every bit.\nThe curves above, the step-through, the error "
                 "grid and the length test still show how well it adds; choose the LSTM and Reset to look at gates.")
STATE_ROW = ("c", "h")
HIGHLIGHT_COLOR = (220, 30, 30)
WRONG_COLOR = "#d62728"
RIGHT_COLOR = "#2c7fb8"


class _Heatmap:
    """One PlotItem holding an ImageItem (units × bit positions), its colorbar and highlight marks."""

    def __init__(self, plot: pg.PlotItem, title: str, colormap: str, levels: tuple[float, float],
                 unit_label: bool = True) -> None:
        self.plot = plot
        self.values = np.zeros((1, 1))  # (H, T) as drawn, for the hover readout
        plot.setTitle(title, size="10pt")
        plot.setLabel("bottom", BIT_AXIS_LABEL)
        if unit_label:  # the first plot of a row names the shared unit axis
            plot.setLabel("left", "unit")
        plot.setMouseEnabled(False, False)
        plot.setMenuEnabled(False)
        plot.hideButtons()
        outward_ticks(plot)
        plot.invertY(True)  # unit 0 at the top, as in a matrix
        self.image = pg.ImageItem(axisOrder="row-major")
        plot.addItem(self.image)
        self.colorbar = pg.ColorBarItem(values=levels, colorMap=pg.colormap.get(colormap), interactive=False,
                                        width=12)
        self.colorbar.setImageItem(self.image, insert_in=plot)
        self.colorbar.setCacheMode(QGraphicsItem.CacheMode.DeviceCoordinateCache)  # static: draw it once
        self.step_mark = QGraphicsRectItem()
        pen = QPen(pg.mkColor(*HIGHLIGHT_COLOR))
        pen.setWidth(2)
        pen.setCosmetic(True)
        self.step_mark.setPen(pen)
        self.step_mark.setZValue(10)
        self.step_mark.hide()
        plot.addItem(self.step_mark)
        self.unit_marks = pg.PlotDataItem(pen=pg.mkPen(HIGHLIGHT_COLOR, width=2), connect="pairs")
        self.unit_marks.setZValue(10)
        plot.addItem(self.unit_marks)
        self.shape = (0, 0)

    def set_values(self, values: np.ndarray) -> bool:
        """values (H, T); the range and ticks change only when the shape does (then returns True)."""
        self.values = values
        self.image.setImage(values, autoLevels=False)
        if values.shape != self.shape:
            self.shape = values.shape
            units, steps = values.shape
            self.image.setRect(QRectF(-0.5, -0.5, steps, units))
            self.plot.setRange(xRange=(-0.5, steps - 0.5), yRange=(-0.5, units - 0.5), padding=0)
            self.plot.getAxis("bottom").setTicks(bit_ticks(steps))
            major, minor = unit_tick_spacing(units)
            self.plot.getAxis("left").setTickSpacing(major, minor)
            return True
        return False

    def mark_step(self, t: int | None) -> None:
        units, steps = self.shape
        if t is None or not 0 <= t < steps:
            self.step_mark.hide()
            return
        self.step_mark.setRect(QRectF(t - 0.5, -0.5, 1, units))
        self.step_mark.show()

    def mark_units(self, units: list[int]) -> None:
        rows, steps = self.shape
        chosen = [u for u in units if 0 <= u < rows]
        if not chosen:
            self.unit_marks.setData([], [])
            return
        xs, ys = [], []
        for u in chosen:  # a box around each row: top and bottom edges as line pairs
            for y in (u - 0.5, u + 0.5):
                xs += [-0.5, steps - 0.5]
                ys += [y, y]
        self.unit_marks.setData(xs, ys)


class _SteadyTextItem(pg.LabelItem):
    """Rich text in the plot grid that keeps its size when the text changes: a LabelItem normally resizes to its
    text, which lays out (and repaints) every plot in the grid again."""

    def updateMin(self) -> None:
        pass


class HeatmapPanel(QWidget):
    """Gates, cell and hidden state of every unit at every bit position for the probe addition."""

    sigProbeRequested = Signal(int, int)  # the user picked another probe addition

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        configure_pyqtgraph()
        self._snapshot: Snapshot | None = None
        self._step: int | None = None
        self._units: list[int] = []
        self._bit_rows_key: tuple | None = None

        self.title = SteadyLabel("Inside the LSTM")  # new text every frame: must not relayout the plots
        make_title(self.title.label)
        self.title.setFixedHeight(self.title.label.sizeHint().height() + 4)
        self.probe_a = QSpinBox()
        self.probe_b = QSpinBox()
        for box, which in ((self.probe_a, "first"), (self.probe_b, "second")):
            box.setRange(0, task.operand_limit(8) - 1)
            box.setToolTip(f"The {which} operand of the probe addition traced in these heatmaps")
            box.setKeyboardTracking(False)
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
        header.addWidget(QLabel("probe"))
        header.addWidget(self.probe_a)
        header.addWidget(QLabel("+"))
        header.addWidget(self.probe_b)
        header.addSpacing(12)
        header.addWidget(QLabel("c colour range"))
        header.addWidget(self.cell_range)

        # One scene for all plots (one paint per frame, not seven): gates on the first row; cell, hidden,
        # output and the bits on the second.
        self.view = pg.GraphicsLayoutWidget()
        self.view.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Ignored)
        self.view.setMinimumHeight(240)
        self.view.ci.setSpacing(4)
        self.maps: dict[str, _Heatmap] = {}
        for row, names in enumerate((GATE_ROW, STATE_ROW)):
            for col, name in enumerate(names):
                # enableMenu=False also saves building a context menu per plot at start-up
                self.maps[name] = _Heatmap(self.view.addPlot(row=row, col=col, enableMenu=False), *HEATMAPS[name],
                                           unit_label=col == 0)
        self.prob_plot = self.view.addPlot(row=1, col=len(STATE_ROW), enableMenu=False)
        self._setup_prob_plot()
        self.bit_rows = _SteadyTextItem(justify="left")
        self.bit_rows.setMinimumSize(230, 0)
        self.bit_rows.setToolTip("The probe addition as bits, written MSB first as people write numbers;"
                                 " wrong predicted bits are red")
        self.view.addItem(self.bit_rows, row=1, col=len(STATE_ROW) + 1)
        for col in range(len(GATE_ROW)):
            self.view.ci.layout.setColumnStretchFactor(col, 1)
        for row in range(2):
            self.view.ci.layout.setRowStretchFactor(row, 1)
        self.view.scene().sigMouseMoved.connect(self._read_value)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.setSpacing(2)
        layout.addLayout(header)
        layout.addWidget(self.view, 1)
        self.no_gates_note = QLabel(NO_GATES_NOTE)  # shown instead of the plots for a model without gates
        self.no_gates_note.setWordWrap(True)
        self.no_gates_note.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.no_gates_note.hide()
        layout.addWidget(self.no_gates_note, 1)
        self._show_nothing()

    # ---- building -------------------------------------------------------------------------------------------
    def _setup_prob_plot(self) -> None:
        plot = self.prob_plot
        plot.setTitle("p(sum bit = 1) · ○ true bit", size="10pt")
        plot.setLabel("bottom", BIT_AXIS_LABEL)
        plot.setLabel("left", "probability")
        outward_ticks(plot)
        plot.setMouseEnabled(False, False)
        plot.setMenuEnabled(False)
        plot.hideButtons()
        plot.setYRange(-0.08, 1.1, padding=0)
        plot.addItem(pg.InfiniteLine(0.5, angle=0, pen=pg.mkPen((120, 120, 120), style=Qt.PenStyle.DashLine)))
        self.prob_bars = pg.BarGraphItem(x=[0], height=[0], width=0.7, brush=RIGHT_COLOR)
        plot.addItem(self.prob_bars)
        self.true_bits = pg.ScatterPlotItem(symbol="o", size=8, pen=pg.mkPen("k", width=1.5), brush=pg.mkBrush("w"))
        self.true_bits.setZValue(5)
        plot.addItem(self.true_bits)
        self.prob_step_mark = pg.LinearRegionItem((0, 0), movable=False, brush=(220, 30, 30, 40),
                                                  pen=pg.mkPen(HIGHLIGHT_COLOR))
        self.prob_step_mark.hide()
        plot.addItem(self.prob_step_mark)
        self._prob_steps = 0
        self._prob_wrong: tuple[bool, ...] = ()
        self.prob_values = np.zeros(0)

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
        if self.view.isHidden() != (trace is None):
            self.view.setHidden(trace is None)
            self.no_gates_note.setHidden(trace is not None)
        if trace is None:
            self.title.setText("Inside the model: the plain RNN has no gates or cell to show"
                               if snapshot.config.model == "rnn" else "Inside the model: no gates to show")
            return
        if not self._probe_timer.isActive() and not (self.probe_a.hasFocus() or self.probe_b.hasFocus()):
            for box, value in ((self.probe_a, trace.a), (self.probe_b, trace.b)):
                if box.value() != value:
                    box.blockSignals(True)
                    box.setValue(value)
                    box.blockSignals(False)
        verdict = "right" if trace.predicted == trace.true_sum else "wrong"
        self.title.setText(f"Inside the LSTM: {trace.a} + {trace.b} = {trace.true_sum}, predicted {trace.predicted}"
                           f" ({verdict})")
        reshaped = False
        for name, values in trace.gates().items():
            reshaped |= self.maps[name].set_values(values.T)  # (T, H) -> (H, T): units down, bit positions across
        reshaped |= self.maps["c"].set_values(trace.cell[1:].T)
        reshaped |= self.maps["h"].set_values(trace.hidden[1:].T)
        self._update_probs(trace)
        self._update_bit_rows(trace)
        if reshaped:  # the marks are drawn in data coordinates: place them again for the new shape
            self.highlight_units(self._units)
            self.highlight_step(self._step)

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
        if self._snapshot is not None and self._snapshot.probe is not None:
            self._update_bit_rows(self._snapshot.probe)

    def highlight_units(self, units: list[int]) -> None:
        """Outline these unit rows in every heatmap; [] clears."""
        self._units = [int(u) for u in units]
        for heatmap in self.maps.values():
            heatmap.mark_units(self._units)

    # ---- drawing helpers ------------------------------------------------------------------------------------
    def _update_probs(self, trace) -> None:
        steps = trace.n_bits
        x = np.arange(steps)
        wrong = tuple(bool(w) for w in trace.wrong_bits)
        self.prob_values = trace.probs
        if wrong != self._prob_wrong or steps != self._prob_steps:  # colours only change with right/wrong
            self._prob_wrong = wrong
            brushes = [pg.mkBrush(WRONG_COLOR if w else RIGHT_COLOR) for w in wrong]
            self.prob_bars.setOpts(x=x, height=trace.probs, width=0.7, brushes=brushes)
            self.true_bits.setData(x, trace.bits_sum.astype(float))
        else:
            self.prob_bars.setOpts(height=trace.probs)
        if steps != self._prob_steps:
            self._prob_steps = steps
            self.prob_plot.setXRange(-0.6, steps - 0.4, padding=0)
            self.prob_plot.getAxis("bottom").setTicks(bit_ticks(steps))

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
        self.maps["c"].colorbar.setLevels((-value, value))

    def _read_value(self, position) -> None:
        """Show the value under the mouse (position in scene coordinates) beside the pointer."""
        text = ""
        for name, heatmap in self.maps.items():
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
            if 0 <= step < len(self.prob_values) and self._snapshot is not None and self._snapshot.probe:
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

    predicted_bits and true_bits are (T,) LSB first.
    """
    def cells(bits: np.ndarray, wrong: np.ndarray | None = None) -> str:
        out = []
        for t in reversed(range(n_bits)):  # MSB first
            style = "padding:0 3px;"
            if step == t:
                style += "background:#ffd8d8;"
            text = str(int(bits[t]))
            if wrong is not None and wrong[t]:
                text = f"<b><font color='{WRONG_COLOR}'>{text}</font></b>"
            out.append(f"<td align='center' style='{style}'>{text}</td>")
        return "".join(out)

    predicted_bits = np.asarray(predicted_bits)
    true_bits = np.asarray(true_bits)
    wrong = predicted_bits != true_bits
    predicted = int(task.decode(predicted_bits[:, None].astype(float))[0])
    rows = [
        ("a", a, cells(task.encode(np.array([a]), n_bits)[:, 0])),
        ("b", b, cells(task.encode(np.array([b]), n_bits)[:, 0])),
        ("a + b", a + b, cells(true_bits)),
        ("predicted", predicted, cells(predicted_bits, wrong)),
    ]
    header = "".join(f"<td align='center' style='padding:0 3px;color:#777'>{t}</td>" for t in reversed(range(n_bits)))
    body = "".join(f"<tr><td style='padding-right:6px'>{html.escape(name)}</td>{bits}"
                   f"<td style='padding-left:6px'>= {value}</td></tr>" for name, value, bits in rows)
    n_wrong = int(wrong.sum())
    verdict = ("<font color='#2ca02c'>all bits right</font>" if n_wrong == 0
               else f"<font color='{WRONG_COLOR}'>{n_wrong} wrong bit{'s' if n_wrong > 1 else ''} (red)</font>")
    return (
        "<div style='font-size:9pt'><b>The probe addition in bits</b><br>"
        "<span style='color:#555'>read MSB … LSB, as written<br>(heatmap columns: LSB → MSB)</span>"
        "<table style='font-family:monospace' cellspacing='0'>"
        f"<tr><td style='color:#777'>bit</td>{header}<td></td></tr>{body}</table>{verdict}</div>"
    )
