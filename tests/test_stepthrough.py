"""The step-through panel: the numbers it shows come from core's forward and backward for the typed addition."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import types

import numpy as np
import pytest
from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtGui import QKeySequence, QShortcut
from PySide6.QtWidgets import QVBoxLayout, QWidget

from core import carry, lstm, probe, task
from core.trainer import TrainConfig, Trainer
from explorer.panels import walkthrough
from explorer.panels.walkthrough import UNIT_COLUMNS, WalkthroughPanel
from explorer.walkthrough_install import TAB_TITLE, install

# The offscreen platform says this whenever a top-level widget is shown; it is not about the panel.
pytestmark = pytest.mark.qt_log_ignore("This plugin does not support propagateSizeHints")

USER = Qt.ItemDataRole.UserRole
DISPLAY = Qt.ItemDataRole.DisplayRole


@pytest.fixture
def trainer(learning_lstm: Trainer) -> Trainer:
    """Part-way through learning: gates and gradients are far from trivial. Shared by the tests: read only."""
    return learning_lstm


def snapshot_of(trainer: Trainer, analyses: dict | None = None, **overrides: object) -> types.SimpleNamespace:
    fields = dict(samples_seen=trainer.samples_seen, config=trainer.config, params=trainer.params.copy(),
                  analyses=analyses or {}, unit_scale=None)
    fields.update(overrides)
    return types.SimpleNamespace(**fields)


@pytest.fixture
def panel(qtbot, trainer: Trainer) -> WalkthroughPanel:
    widget = WalkthroughPanel()
    qtbot.addWidget(widget)
    widget.resize(1500, 420)
    widget.update_from(snapshot_of(trainer))
    return widget


@pytest.fixture
def trace_calls(monkeypatch) -> list[tuple]:
    """Count calls of core.probe.trace (the model run) while still running it."""
    calls: list[tuple] = []
    real_trace = probe.trace

    def counting_trace(*args, **kwargs):
        calls.append(args)
        return real_trace(*args, **kwargs)

    monkeypatch.setattr(probe, "trace", counting_trace)
    return calls


def forward_and_backward(params: lstm.Params, a: int, b: int, n_bits: int):
    """core's own forward cache and backward record for one addition, independent of the panel."""
    x, y = task.make_batch(np.array([a]), np.array([b]), n_bits)
    probs, cache = lstm.forward(params, x)
    d_hidden = np.empty((n_bits, 1, params.hidden_size))
    d_cell = np.empty_like(d_hidden)
    lstm.backward(params, cache, y, record=(d_hidden, d_cell))
    return probs[:, 0, 0], cache, d_hidden[:, 0], d_cell[:, 0]


def shown_table(panel: WalkthroughPanel) -> tuple[np.ndarray, list[list[str]]]:
    """The unit table's values (UserRole) and texts (DisplayRole), (H, 8)."""
    model = panel.unit_model
    values = np.array([[model.data(model.index(r, c), USER) for c in range(model.columnCount())]
                       for r in range(model.rowCount())])
    texts = [[model.data(model.index(r, c), DISPLAY) for c in range(model.columnCount())]
             for r in range(model.rowCount())]
    return values, texts


def bit_row(panel: WalkthroughPanel, key: str) -> str:
    """A row of the written addition as shown, left to right."""
    return "".join(cell.text() for cell in reversed(panel.bit_cells[key]))


def test_opens_on_the_notebook_example_at_step_3(panel: WalkthroughPanel, trainer: Trainer) -> None:
    assert panel.operands == (45, 67) and panel.step == 3
    assert (panel.field_a.text(), panel.field_b.text()) == ("45", "67")
    assert bit_row(panel, "a") == task.to_binary_string(45, 8)  # MSB on the left, as written
    assert bit_row(panel, "b") == task.to_binary_string(67, 8)
    assert bit_row(panel, "sum") == task.to_binary_string(112, 8)
    predicted = int(task.decode(forward_and_backward(trainer.params, 45, 67, 8)[0][:, None])[0])
    assert bit_row(panel, "predicted") == task.to_binary_string(predicted, 8)
    assert panel.decimal_labels["sum"].text() == "= 112"
    assert f"Weights from sample {trainer.samples_seen:,}" == panel.weights_label.text()
    assert "step 0 is the rightmost" in panel.reading_note.text()
    highlighted = [step for step, cell in enumerate(panel.bit_cells["a"]) if "background" in cell.styleSheet()]
    assert highlighted == [3]


@pytest.mark.parametrize("operands", [(45, 67), (127, 127), (0, 0), (1, 126)])
def test_unit_table_equals_the_forward_cache(panel: WalkthroughPanel, trainer: Trainer, operands) -> None:
    a, b = operands
    panel.set_operands(a, b)
    probs, cache, _, d_cell = forward_and_backward(trainer.params, a, b, 8)
    H = trainer.params.hidden_size
    for t in (0, 3, 7):
        panel.set_step(t)
        values, texts = shown_table(panel)
        expected = np.column_stack([cache.gate(g)[t, 0] for g in lstm.GATES]
                                   + [cache.cell[t, 0], cache.cell[t + 1, 0], cache.hidden[t + 1, 0], d_cell[t]])
        assert values.shape == (H, len(UNIT_COLUMNS))
        np.testing.assert_allclose(values, expected, rtol=1e-12, atol=1e-15)
        shown = np.array([[float(text) for text in row] for row in texts])  # what a user reads, rounded
        np.testing.assert_allclose(shown[:, :-1], expected[:, :-1], atol=0.0051)
        np.testing.assert_allclose(shown[:, -1], expected[:, -1], rtol=0.051, atol=1e-300)
        output = panel.detail_labels["output"].text()
        assert output.startswith(f"p = {probs[t]:.4f} → ")
        assert output.startswith(f"p = {probs[t]:.4f} → {int(probs[t] >= 0.5)} ")
        bits_a, bits_b = task.encode(np.array([a]), 8)[:, 0], task.encode(np.array([b]), 8)[:, 0]
        assert f"= {int(bits_a[t])}," in panel.detail_labels["inputs"].text()
        assert panel.detail_labels["inputs"].text().endswith(f"= {int(bits_b[t])}")
        carry_in, carry_out = task.carries(np.array([a]), np.array([b]), 8)
        assert panel.detail_labels["carry"].text().startswith(f"in {int(carry_in[t, 0])} → out {int(carry_out[t, 0])}")
        predicted_bits = (probs[: t + 1] >= 0.5).astype(int)
        so_far = int(sum(bit << k for k, bit in enumerate(predicted_bits)))
        binary = "".join(str(bit) for bit in predicted_bits[::-1])
        assert panel.detail_labels["so_far"].text().startswith(f"{binary} = {so_far} ")


def test_backward_view_equals_core_backward(panel: WalkthroughPanel, trainer: Trainer) -> None:
    panel.set_operands(93, 58)
    probs, _, d_hidden, d_cell = forward_and_backward(trainer.params, 93, 58, 8)
    y = task.encode(np.array([93 + 58]), 8)[:, 0]
    step_loss = -(y * np.log(probs) + (1 - y) * np.log(1 - probs))
    norms_h, norms_c = np.linalg.norm(d_hidden, axis=1), np.linalg.norm(d_cell, axis=1)
    np.testing.assert_allclose(panel.backward_values["grad_hidden_norm"], norms_h, rtol=1e-12)
    np.testing.assert_allclose(panel.backward_values["grad_cell_norm"], norms_c, rtol=1e-12)
    np.testing.assert_allclose(panel.backward_values["loss"], step_loss, rtol=1e-9)
    for curve, expected in ((panel.grad_h_curve, norms_h), (panel.grad_c_curve, norms_c),
                            (panel.loss_curve, step_loss)):
        x, plotted = curve.getOriginalDataset()
        np.testing.assert_array_equal(x, np.arange(8))
        np.testing.assert_allclose(plotted, np.maximum(expected, 1e-12), rtol=1e-9)
    # The view is fixed (not refitted with every trace) but always shows every value and every bit.
    (left, right), (low, high) = panel.backward_plot.getPlotItem().getViewBox().viewRange()  # y in log10
    assert left < 0 and right > 7
    for values in panel.backward_values.values():
        assert low <= np.log10(np.maximum(values, 1e-12)).min() and np.log10(values).max() <= high
    for t in (1, 6):
        panel.set_step(t)
        assert panel.detail_labels["gradient"].text() == f"{norms_h[t]:.2e},  {norms_c[t]:.2e}"
        top = list(np.argsort(-np.abs(d_cell[t]))[:3])
        assert panel.top_gradient_units() == top
        assert panel.detail_labels["top_units"].text().startswith(f"units {top[0]}, {top[1]}, {top[2]} ")
        assert all("∇" in panel.unit_model.headerData(u, Qt.Orientation.Vertical, DISPLAY) for u in top)
        assert panel.step_line.value() == t


BAD_OPERANDS = ["-1", "128", "abc", "", "   ", str(10**100), "12.5", "1e3", "0x80", "9" * 5000]


@pytest.mark.parametrize("bad", BAD_OPERANDS)
def test_bad_operand_shows_a_message_and_runs_nothing(panel: WalkthroughPanel, trace_calls, bad: str) -> None:
    panel.show()
    panel.field_b.setText(bad)
    assert trace_calls == []
    assert panel.trace is None and panel.operands is None
    assert panel.operand_error.isVisible()
    message = panel.operand_error.text()
    assert message.startswith("⚠ b") and len(message) < 200  # names the field; a huge number is cut short
    assert "d00000" in panel.field_b.styleSheet()
    assert panel.unit_model.rowCount() == 0 and panel.backward_values == {}
    panel.next_step()  # stepping and playing with nothing to show must not fail or run anything
    panel.play()
    assert not panel.playing
    panel.field_b.setText("67")
    assert len(trace_calls) == 1 and panel.trace is not None and not panel.operand_error.isVisible()


def test_bad_operands_through_set_operands(panel: WalkthroughPanel, trace_calls) -> None:
    for a, b in ((-3, 5), (5, 128), (2**70, 1)):
        panel.set_operands(a, b)
        assert panel.trace is None and panel.operand_error.text()
    assert trace_calls == []
    panel.set_operands(127, 127)
    assert len(trace_calls) == 1 and panel.trace.predicted_bits.shape == (8,)


def test_same_weights_again_do_not_rerun_the_model(panel: WalkthroughPanel, trainer: Trainer, trace_calls) -> None:
    panel.update_from(snapshot_of(trainer))  # a fresh copy of the same numbers, e.g. while paused
    panel.set_operands(45, 67)  # the operands shown already
    assert trace_calls == []


def test_new_weights_retrace_and_say_which_sample(qtbot, panel: WalkthroughPanel, trace_calls) -> None:
    other = Trainer(TrainConfig(seed=5))
    other.step(300)
    panel.update_from(snapshot_of(other))
    qtbot.waitUntil(lambda: len(trace_calls) == 1, timeout=5000)  # at once, or after the short throttle
    assert panel.weights_label.text() == f"Weights from sample {other.samples_seen:,}"
    probs, *_ = forward_and_backward(other.params, 45, 67, 8)
    np.testing.assert_allclose(panel.trace.probs, probs, rtol=1e-12)


def test_keys_move_the_step_even_where_right_is_a_window_shortcut(qtbot, trainer: Trainer) -> None:
    window = QWidget()
    qtbot.addWidget(window)
    shortcut_fired = []
    shortcut = QShortcut(QKeySequence(Qt.Key.Key_Right), window)  # the window's "step training" key
    shortcut.activated.connect(lambda: shortcut_fired.append(True))
    panel = WalkthroughPanel()
    QVBoxLayout(window).addWidget(panel)
    panel.update_from(snapshot_of(trainer))
    window.show()
    qtbot.waitExposed(window)
    panel.setFocus()
    qtbot.waitUntil(panel.hasFocus)
    qtbot.keyClick(panel, Qt.Key.Key_Right)
    assert panel.step == 4
    qtbot.keyClick(panel, Qt.Key.Key_Right)
    qtbot.keyClick(panel, Qt.Key.Key_Left)
    assert panel.step == 4
    qtbot.keyClick(panel, Qt.Key.Key_Home)
    assert panel.step == 0
    qtbot.keyClick(panel, Qt.Key.Key_Left)
    assert panel.step == 0  # clamped
    assert shortcut_fired == []
    panel.next_button.setFocus()  # after clicking a button the keys still step
    qtbot.keyClick(panel.next_button, Qt.Key.Key_Right)
    assert panel.step == 1
    panel.field_a.setFocus()  # in a text field the arrows move the cursor instead
    panel.field_a.setCursorPosition(0)
    qtbot.keyClick(panel.field_a, Qt.Key.Key_Right)
    assert panel.step == 1 and panel.field_a.cursorPosition() == 1


def test_steps_tell_the_heatmaps(qtbot, panel: WalkthroughPanel) -> None:
    steps: list[object] = []
    panel.sigStepChanged.connect(steps.append)
    panel.show()
    qtbot.waitExposed(panel)
    panel.next_step()
    panel.home()
    assert steps[-2:] == [4, 0]
    panel.hide()
    assert steps[-1] is None  # the tab is closed: no column stays highlighted


def test_play_walks_to_the_last_bit_and_stops(qtbot, panel: WalkthroughPanel) -> None:
    panel.show()
    panel._play_timer.setInterval(30)  # the walk is tested, not its pace (PLAY_INTERVAL_MS, 0.6 s a bit)
    panel.set_step(7)
    seen: list[object] = []
    panel.sigStepChanged.connect(seen.append)
    panel.play()  # from the end it starts over at step 0
    assert panel.playing and panel.play_button.text() == "Pause"
    qtbot.waitUntil(lambda: panel.step == 7 and not panel.playing, timeout=15_000)
    assert seen == list(range(8))
    assert panel.play_button.text() == "▶ Play" and not panel.play_button.isChecked()


def test_carry_finder_result_is_named_and_highlighted(panel: WalkthroughPanel, trainer: Trainer) -> None:
    H = trainer.params.hidden_size
    cell_corr, hidden_corr = np.zeros(H), np.zeros(H)
    cell_corr[[7, 2, 11]] = [0.97, -0.85, 0.5]
    hidden_corr[[7, 2, 11]] = [0.9, -0.6, 0.55]
    found = carry.CarryUnits(cell_corr, hidden_corr, np.argsort(-np.maximum(abs(cell_corr), abs(hidden_corr))),
                             16_384, 8, True, samples_seen=1234)
    highlighted: list[object] = []
    panel.show()
    panel.sigCarryUnits.connect(highlighted.append)
    panel.update_from(snapshot_of(trainer, analyses={walkthrough.CARRY_ANALYSIS: found}))
    assert highlighted == [[7, 2]]  # |corr| >= 0.8, best first; unit 11 is not a carrier
    panel.hide()
    assert highlighted[-1] == []  # the tab is closed: the heatmaps outline no unit
    panel.show()
    assert highlighted[-1] == [7, 2]
    text = panel.carry_label.text()
    for unit, cell_shown, hidden_shown in ((7, "+0.97", "+0.90"), (2, "-0.85", "-0.60"), (11, "+0.50", "+0.55")):
        row = text[text.index(f"unit {unit}<"):].split("</tr>")[0]
        assert f">{cell_shown}<" in row and f">{hidden_shown}<" in row
        assert (f"◆ unit {unit}<" in text) == (unit in (7, 2))
        assert found.describe(unit) in panel.carry_label.toolTip()
    assert "all 16,384 pairs" in text and "sample 1,234" in text
    header = panel.unit_model.headerData(7, Qt.Orientation.Vertical, DISPLAY)
    assert "◆" in header and "◆" not in panel.unit_model.headerData(11, Qt.Orientation.Vertical, DISPLAY)
    font = Qt.ItemDataRole.FontRole
    assert panel.unit_model.headerData(7, Qt.Orientation.Vertical, font).bold()  # carriers stand out
    assert panel.unit_model.headerData(11, Qt.Orientation.Vertical, font) is None
    assert "carry finder: unit 7" in panel.unit_model.headerData(7, Qt.Orientation.Vertical,
                                                                 Qt.ItemDataRole.ToolTipRole)


def test_real_carry_finder_result_is_shown(panel: WalkthroughPanel, trainer: Trainer) -> None:
    found = carry.from_trainer(trainer)
    panel.update_from(snapshot_of(trainer, analyses={walkthrough.CARRY_ANALYSIS: found}))
    best = int(found.best_units[0])
    assert f"unit {best}<" in panel.carry_label.text() and found.describe(best) in panel.carry_label.toolTip()


def test_fewer_bits_revalidate_the_operands(panel: WalkthroughPanel, trainer: Trainer, trace_calls) -> None:
    narrow = dataclass_replace(trainer.config, n_bits=4)
    panel.update_from(snapshot_of(trainer, config=narrow))
    assert len(panel.bit_cells["a"]) == 4 and panel.step == 3
    assert panel.trace is None and "0 to 7" in panel.operand_error.text()  # 45 does not fit in 4 bits
    assert trace_calls == []
    panel.set_operands(5, 6)
    assert panel.trace.n_bits == 4 and bit_row(panel, "sum") == "1011"


def test_a_model_without_gates_is_explained(panel: WalkthroughPanel, trace_calls) -> None:
    from core import rnn

    params = rnn.init_params(4, np.random.default_rng(0))
    config = TrainConfig(model="rnn", hidden_size=4)
    panel.update_from(types.SimpleNamespace(samples_seen=10, config=config, params=params, analyses={},
                                            unit_scale=None))
    assert trace_calls == [] and panel.trace is None
    assert "no gates" in panel.detail_labels["step"].text()


def test_every_control_and_number_says_what_it_is(panel: WalkthroughPanel) -> None:
    for widget in (panel.field_a, panel.field_b, panel.random_button, panel.home_button, panel.prev_button,
                   panel.play_button, panel.next_button, panel.backward_plot, panel.carry_label, panel.weights_label):
        assert widget.toolTip(), widget
    for label in panel.detail_labels.values():
        assert label.toolTip()
    for cells in panel.bit_cells.values():
        assert all(cell.toolTip() for cell in cells)
    model = panel.unit_model
    for column in range(model.columnCount()):
        assert model.headerData(column, Qt.Orientation.Horizontal, Qt.ItemDataRole.ToolTipRole)
        assert model.data(model.index(0, column), Qt.ItemDataRole.ToolTipRole)


def test_random_picks_operands_in_range(panel: WalkthroughPanel) -> None:
    for _ in range(20):
        panel.random_button.click()
        a, b = panel.operands
        assert 0 <= a < 128 and 0 <= b < 128
        assert panel.trace.a == a and panel.trace.b == b


def dataclass_replace(config: TrainConfig, **changes: object) -> TrainConfig:
    import dataclasses

    return dataclasses.replace(config, **changes)


# ---- installing into a window ---------------------------------------------------------------------------------
class FakeHeatmaps(QObject):
    def __init__(self) -> None:
        super().__init__()
        self.steps: list[object] = []
        self.units: list[list[int]] = []

    def highlight_step(self, t: object) -> None:
        self.steps.append(t)

    def highlight_units(self, units: list[int]) -> None:
        self.units.append(list(units))


class FakeWindow(QObject):
    """Just the window API install() may use."""

    sigSnapshot = Signal(object)

    def __init__(self, snapshot: object) -> None:
        super().__init__()
        self.tabs: list[tuple[QWidget, str, str]] = []
        self.heatmaps = FakeHeatmaps()
        self.analyses: dict[str, tuple] = {}
        self.wanted: dict[str, object] = {}

        def add_analysis(name: str, fn: object, period: float, wanted: object = None) -> None:
            self.analyses[name] = (fn, period)
            self.wanted[name] = wanted

        self.worker = types.SimpleNamespace(add_analysis=add_analysis)
        self.latest_snapshot = snapshot

    def add_tab(self, widget: QWidget, title: str, tooltip: str = "") -> None:
        self.tabs.append((widget, title, tooltip))


def test_install_wires_tab_heatmaps_and_carry_analysis(qtbot, trainer: Trainer) -> None:
    window = FakeWindow(snapshot_of(trainer))
    panel = install(window)
    qtbot.addWidget(panel)
    assert window.tabs[0][0] is panel and window.tabs[0][1] == TAB_TITLE and window.tabs[0][2]
    assert window.walkthrough is panel  # where other views open an addition
    assert panel.trace is not None and panel.trace.a == 45  # drew the window's latest snapshot at once
    fn, period = window.analyses[walkthrough.CARRY_ANALYSIS]
    assert 0 < period <= 5
    wanted = window.wanted[walkthrough.CARRY_ANALYSIS]
    assert not wanted(), "hidden: the worker skips it while training"
    panel.show()
    assert wanted(), "on screen: computed while training too"
    panel.hide()
    assert not wanted()
    result = fn(trainer, None)  # what the worker thread will run
    assert isinstance(result, carry.CarryUnits) and result.samples_seen == trainer.samples_seen
    assert fn(trainer, None) is result  # the panel is hidden: the last result again, nothing computed
    other = Trainer(TrainConfig(seed=3))
    assert fn(other, None).samples_seen == 0  # but a new trainer's weights are never described by an old result
    panel.show()
    fresh = fn(trainer, None)
    assert fresh is not result and fresh.samples_seen == trainer.samples_seen  # shown: computed every time
    result = fresh
    panel.set_step(5)
    assert window.heatmaps.steps[-1] == 5
    panel.update_from(snapshot_of(trainer, analyses={walkthrough.CARRY_ANALYSIS: result}))
    assert window.heatmaps.units[-1] == result.carriers()


def test_installs_into_the_main_window(qtbot) -> None:
    from explorer.main_window import MainWindow

    window = MainWindow(trainer=Trainer(), restore_layout=False)
    qtbot.addWidget(window)
    try:
        panel = install(window)
        window.resize(1400, 900)
        window.show()
        qtbot.waitExposed(window)
        assert window.select_tab("Step")
        assert window.tab_view(window.tabs.currentIndex()) is panel
        assert panel.isVisible() and window.walkthrough is panel
        window.request_refresh()  # paused: the worker runs its analyses once and sends a snapshot
        qtbot.waitUntil(lambda: window.latest_snapshot is not None
                        and walkthrough.CARRY_ANALYSIS in window.latest_snapshot.analyses, timeout=30_000)
        window.redraw_now()
        assert panel.trace is not None and (panel.trace.a, panel.trace.b) == (45, 67)
        assert panel.weights_label.text() == "Weights from sample 0"
        found = window.latest_snapshot.analyses[walkthrough.CARRY_ANALYSIS]
        assert found.describe(int(found.best_units[0])) in panel.carry_label.toolTip()
        panel.set_step(5)
        assert tuple(window.heatmaps.prob_step_mark.getRegion()) == (4.5, 5.5)  # column 5 marked
    finally:
        window.close()
