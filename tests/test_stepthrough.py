"""The step-through: small widgets drawing the focus trace (core.focus, computed outside the GUI thread) at the focus
step; its fields, buttons and keys ask the controller for another addition or step."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import dataclasses
import types

import numpy as np
import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QKeySequence, QShortcut
from PySide6.QtWidgets import QVBoxLayout, QWidget

from core import carry, focus, lstm, rnn, task
from core.insights import Measured
from core.trainer import TrainConfig, Trainer
from explorer.controller import Focus
from explorer.panels import stepthrough
from explorer.panels.stepthrough import CARRY_ANALYSIS, StepThroughPanel, long_carry_example
from explorer.panels.unit_table import LSTM_COLUMNS, RNN_COLUMNS

# The offscreen platform says this whenever a top-level widget is shown; it is not about the panel.
pytestmark = pytest.mark.qt_log_ignore("This plugin does not support propagateSizeHints")

USER = Qt.ItemDataRole.UserRole
DISPLAY = Qt.ItemDataRole.DisplayRole


@pytest.fixture
def trainer(learning_lstm: Trainer) -> Trainer:
    """Part-way through learning: gates and gradients are far from trivial. Shared by the tests: read only."""
    return learning_lstm


def snapshot_of(trainer: Trainer, a: int = 45, b: int = 67, analyses: dict | None = None, pending=frozenset(),
                **overrides: object) -> types.SimpleNamespace:
    fields = dict(samples_seen=trainer.samples_seen, config=trainer.config, params=trainer.params.copy(),
                  analyses=analyses or {}, unit_scale=None, pending=frozenset(pending),
                  focus=focus.trace_focus(trainer.params, a, b, trainer.config.n_bits,
                                          samples_seen=trainer.samples_seen))
    fields.update(overrides)
    return types.SimpleNamespace(**fields)


class Asked:
    """Records what the panel asks the controller for."""

    def __init__(self, panel: StepThroughPanel) -> None:
        self.operands: list[tuple[int, int]] = []
        self.steps: list[int] = []
        self.moves: list[int] = []
        self.examples: list[tuple[int, int, int]] = []
        panel.sigOperands.connect(lambda a, b: self.operands.append((a, b)))
        panel.sigStep.connect(self.steps.append)
        panel.sigMove.connect(self.moves.append)
        panel.sigExample.connect(lambda a, b, t: self.examples.append((a, b, t)))


@pytest.fixture
def panel(qtbot, trainer: Trainer) -> StepThroughPanel:
    widget = StepThroughPanel()
    qtbot.addWidget(widget)
    widget.resize(1400, 420)
    widget.focus_changed(Focus(45, 67, 3))
    widget.update_from(snapshot_of(trainer))
    return widget


def forward_and_backward(params: lstm.Params, a: int, b: int, n_bits: int):
    """core's own forward cache and backward record for one addition, independent of the panel."""
    x, y = task.make_batch(np.array([a]), np.array([b]), n_bits)
    probs, cache = lstm.forward(params, x)
    d_hidden = np.empty((n_bits, 1, params.hidden_size))
    d_cell = np.empty_like(d_hidden)
    lstm.backward(params, cache, y, record=(d_hidden, d_cell))
    return probs[:, 0, 0], cache, d_hidden[:, 0], d_cell[:, 0]


def shown_table(panel: StepThroughPanel) -> tuple[np.ndarray, list[list[str]]]:
    """The unit table's values (UserRole) and texts (DisplayRole), (H, columns)."""
    model = panel.units.model
    values = np.array([[model.data(model.index(r, c), USER) for c in range(model.columnCount())]
                       for r in range(model.rowCount())])
    texts = [[model.data(model.index(r, c), DISPLAY) for c in range(model.columnCount())]
             for r in range(model.rowCount())]
    return values, texts


def bit_row(panel: StepThroughPanel, key: str) -> str:
    """A row of the written addition as shown, left to right."""
    return "".join(cell.text() for cell in reversed(panel.bits.cells[key]))


def test_draws_the_focus_at_its_step(panel: StepThroughPanel, trainer: Trainer) -> None:
    assert (panel.addition.field_a.text(), panel.addition.field_b.text()) == ("45", "67")
    assert bit_row(panel, "a") == task.to_binary_string(45, 8)  # MSB on the left, as written
    assert bit_row(panel, "b") == task.to_binary_string(67, 8)
    assert bit_row(panel, "sum") == task.to_binary_string(112, 8)
    predicted = int(task.decode(forward_and_backward(trainer.params, 45, 67, 8)[0][:, None])[0])
    assert bit_row(panel, "predicted") == task.to_binary_string(predicted, 8)
    assert panel.bits.decimals["sum"].text() == "= 112"
    assert panel.weights_label.text() == f"Weights from sample {trainer.samples_seen:,}"
    assert "step 0 is the rightmost" in panel.reading_note.text()
    highlighted = [step for step, cell in enumerate(panel.bits.cells["a"]) if "background" in cell.styleSheet()]
    assert highlighted == [3]
    assert panel.steps.label.text() == "step 3 of 0…7"


@pytest.mark.parametrize("operands", [(45, 67), (127, 127), (0, 0), (1, 126)])
def test_unit_table_and_details_equal_the_forward_cache(panel, trainer: Trainer, operands) -> None:
    a, b = operands
    panel.update_from(snapshot_of(trainer, a, b))
    probs, cache, _, d_cell = forward_and_backward(trainer.params, a, b, 8)
    H = trainer.params.hidden_size
    for t in (0, 3, 7):
        panel.focus_changed(Focus(a, b, t))
        values, texts = shown_table(panel)
        expected = np.column_stack([cache.gate(g)[t, 0] for g in lstm.GATES]
                                   + [cache.cell[t, 0], cache.cell[t + 1, 0], cache.hidden[t + 1, 0], d_cell[t]])
        assert values.shape == (H, len(LSTM_COLUMNS))
        np.testing.assert_allclose(values, expected, rtol=1e-12, atol=1e-15)
        shown = np.array([[float(text) for text in row] for row in texts])  # what a user reads, rounded
        np.testing.assert_allclose(shown[:, :-1], expected[:, :-1], atol=0.0051)
        np.testing.assert_allclose(shown[:, -1], expected[:, -1], rtol=0.051, atol=1e-300)
        labels = panel.details.labels
        assert labels["output"].text().startswith(f"p = {probs[t]:.4f} → {int(probs[t] >= 0.5)} ")
        bits_a, bits_b = task.encode(np.array([a]), 8)[:, 0], task.encode(np.array([b]), 8)[:, 0]
        assert f"= {int(bits_a[t])}," in labels["inputs"].text()
        assert labels["inputs"].text().endswith(f"= {int(bits_b[t])}")
        carry_in, carry_out = task.carries(np.array([a]), np.array([b]), 8)
        assert labels["carry"].text().startswith(f"in {int(carry_in[t, 0])} → out {int(carry_out[t, 0])}")
        predicted_bits = (probs[: t + 1] >= 0.5).astype(int)
        so_far = int(sum(bit << k for k, bit in enumerate(predicted_bits)))
        binary = "".join(str(bit) for bit in predicted_bits[::-1])
        assert labels["so_far"].text().startswith(f"{binary} = {so_far} ")


def test_backward_view_equals_core_backward(panel: StepThroughPanel, trainer: Trainer) -> None:
    panel.update_from(snapshot_of(trainer, 93, 58))
    probs, _, d_hidden, d_cell = forward_and_backward(trainer.params, 93, 58, 8)
    y = task.encode(np.array([93 + 58]), 8)[:, 0]
    step_loss = -(y * np.log(probs) + (1 - y) * np.log(1 - probs))
    norms_h, norms_c = np.linalg.norm(d_hidden, axis=1), np.linalg.norm(d_cell, axis=1)
    backward = panel.backward
    np.testing.assert_allclose(backward.values["grad_hidden_norm"], norms_h, rtol=1e-12)
    np.testing.assert_allclose(backward.values["grad_cell_norm"], norms_c, rtol=1e-12)
    np.testing.assert_allclose(backward.values["loss"], step_loss, rtol=1e-9)
    for curve, expected in ((backward.grad_h_curve, norms_h), (backward.grad_c_curve, norms_c),
                            (backward.loss_curve, step_loss)):
        x, plotted = curve.getOriginalDataset()
        np.testing.assert_array_equal(x, np.arange(8))
        np.testing.assert_allclose(plotted, np.maximum(expected, 1e-12), rtol=1e-9)
    # The view is fixed (not refitted with every trace) but always shows every value and every bit.
    (left, right), (low, high) = backward.plot.getViewBox().viewRange()  # y in log10
    assert left < 0 and right > 7
    for values in backward.values.values():
        assert low <= np.log10(np.maximum(values, 1e-12)).min() and np.log10(values).max() <= high
    ticks = backward.plot.getAxis("left")._tickLevels[0]
    assert 2 <= len(ticks) <= 5, "one readable label per decade or fewer"
    for t in (1, 6):
        panel.focus_changed(Focus(93, 58, t))
        assert panel.details.labels["gradient"].text() == f"‖∂L/∂h‖ {norms_h[t]:.2e},  ‖∂L/∂c‖ {norms_c[t]:.2e}"
        top = list(np.argsort(-np.abs(d_cell[t]), kind="stable")[:3])
        assert panel.details.labels["top_units"].text().startswith(f"units {top[0]}, {top[1]}, {top[2]} ")
        model = panel.units.model
        assert all("∇" in model.headerData(u, Qt.Orientation.Vertical, DISPLAY) for u in top)
        assert backward.step_line.value() == t


BAD_OPERANDS = ["-1", "128", "abc", "", "   ", str(10**100), "12.5", "1e3", "0x80", "9" * 5000]


@pytest.mark.parametrize("bad", BAD_OPERANDS)
def test_a_bad_operand_is_refused_with_a_message_and_asks_for_nothing(panel, bad: str) -> None:
    asked = Asked(panel)
    panel.show()
    panel.addition.field_b.setFocus()
    panel.addition.field_b.setText(bad)
    panel.addition.field_b.textEdited.emit(bad)
    assert asked.operands == []
    message = panel.addition.error.text()
    assert message.startswith("⚠ b") and len(message) < 200  # names the field; a huge number is cut short
    assert "d00000" in panel.addition.field_b.styleSheet()
    assert bit_row(panel, "a") == task.to_binary_string(45, 8), "the focus shown stays as it was"
    panel.addition.field_b.setText("66")
    panel.addition.field_b.textEdited.emit("66")
    assert asked.operands == [(45, 66)] and panel.addition.error.text() == ""


def test_typing_moves_the_focus_and_a_new_trace_redraws(panel, trainer: Trainer, qtbot) -> None:
    asked = Asked(panel)
    qtbot.keyClicks(panel.addition.field_a, "1")  # "451" does not fit: refused
    assert asked.operands == []
    panel.addition.field_a.clear()
    qtbot.keyClicks(panel.addition.field_a, "100")
    assert asked.operands[-1] == (100, 67)
    panel.focus_changed(Focus(100, 67, 3))
    panel.update_from(snapshot_of(trainer, 100, 67))
    assert panel.bits.decimals["sum"].text() == "= 167"


def test_random_and_the_long_carry_example_ask_for_operands_in_range(panel) -> None:
    asked = Asked(panel)
    for _ in range(20):
        panel.addition.random_button.click()
    assert len(asked.operands) == 20 and all(0 <= a < 128 and 0 <= b < 128 for a, b in asked.operands)
    panel.carry.example_button.click()
    a, b, step = asked.examples[0]
    _, carry_out = task.carries(np.array([a]), np.array([b]), 8)
    assert carry_out[step, 0] == 1 and carry_out[step:step + 3, 0].sum() >= 3, "a carry that runs on"
    rng = np.random.default_rng(0)
    for _ in range(5):
        a, b, step = long_carry_example(8, rng)
        assert 0 <= a < 128 and 0 <= b < 128 and 0 <= step < 8


def test_keys_move_the_step_even_where_right_is_a_window_shortcut(qtbot, trainer: Trainer) -> None:
    window = QWidget()
    qtbot.addWidget(window)
    shortcut_fired = []
    shortcut = QShortcut(QKeySequence(Qt.Key.Key_Right), window)  # the window's "step training" key
    shortcut.activated.connect(lambda: shortcut_fired.append(True))
    panel = StepThroughPanel()
    asked = Asked(panel)
    QVBoxLayout(window).addWidget(panel)
    panel.update_from(snapshot_of(trainer))
    window.show()
    qtbot.waitExposed(window)
    panel.setFocus()
    qtbot.waitUntil(panel.hasFocus)
    qtbot.keyClick(panel, Qt.Key.Key_Right)
    qtbot.keyClick(panel, Qt.Key.Key_Left)
    qtbot.keyClick(panel, Qt.Key.Key_Home)
    assert asked.moves == [1, -1] and asked.steps == [0]
    assert shortcut_fired == []
    panel.steps.next_button.setFocus()  # after clicking a button the keys still step
    qtbot.keyClick(panel.steps.next_button, Qt.Key.Key_Right)
    assert asked.moves == [1, -1, 1] and shortcut_fired == []
    field = panel.addition.field_a  # in a text field the arrows move the cursor instead
    field.setFocus()
    field.setCursorPosition(0)
    qtbot.keyClick(field, Qt.Key.Key_Right)
    assert asked.moves == [1, -1, 1] and field.cursorPosition() == 1


def test_buttons_ask_for_steps_and_play_walks_to_the_last_bit(qtbot, panel) -> None:
    asked = Asked(panel)
    panel.show()
    panel.steps.next_button.click()
    panel.steps.prev_button.click()
    panel.steps.home_button.click()
    assert asked.moves == [1, -1] and asked.steps == [0]
    panel.steps._timer.setInterval(20)  # the walk is tested, not its pace (PLAY_INTERVAL_MS, 0.6 s a bit)
    panel.sigMove.connect(lambda d: panel.focus_changed(Focus(45, 67, panel.step + d)))  # as the controller does
    panel.focus_changed(Focus(45, 67, 0))
    panel.steps.play()
    assert panel.steps.playing and panel.steps.play_button.text() == "Pause"
    qtbot.waitUntil(lambda: panel.step == 7 and not panel.steps.playing, timeout=15_000)
    assert panel.steps.play_button.text() == "▶ Play"


def test_stepping_does_not_move_the_layout(qtbot, panel, trainer: Trainer) -> None:
    panel.show()
    qtbot.waitExposed(panel)
    geometry = {name: label.geometry() for name, label in panel.details.labels.items()}
    table = panel.units.geometry()
    for a, b, t in ((127, 127, 7), (0, 0, 0), (93, 58, 5)):
        panel.update_from(snapshot_of(trainer, a, b))
        panel.focus_changed(Focus(a, b, t))
        qtbot.wait(10)
        assert {name: label.geometry() for name, label in panel.details.labels.items()} == geometry
        assert panel.units.geometry() == table


def test_carry_finder_result_is_named_and_marked(panel: StepThroughPanel, trainer: Trainer) -> None:
    H = trainer.params.hidden_size
    cell_corr, hidden_corr = np.zeros(H), np.zeros(H)
    cell_corr[[7, 2, 11]] = [0.97, -0.85, 0.5]
    hidden_corr[[7, 2, 11]] = [0.9, -0.6, 0.55]
    found = carry.CarryUnits(cell_corr, hidden_corr, np.argsort(-np.maximum(abs(cell_corr), abs(hidden_corr))),
                             16_384, 8, True, samples_seen=1234)
    named: list[object] = []
    panel.sigCarryUnits.connect(named.append)
    panel.update_from(snapshot_of(trainer, analyses={CARRY_ANALYSIS: Measured(1234, found)},
                                  pending={CARRY_ANALYSIS}))
    assert "computing" in panel.carry.label.text(), "a result for other weights is not shown as current"
    panel.update_from(snapshot_of(trainer, analyses={CARRY_ANALYSIS: Measured(1234, found)}))
    assert named[-1] == [7, 2]  # |corr| >= 0.8, best first; unit 11 is not a carrier
    text = panel.carry.label.text()  # one line: the carriers, best first, and the runner-up
    assert "◆ unit 7 (c +0.97, h +0.90), ◆ unit 2 (c -0.85, h -0.60)" in text
    assert "next: unit 11 (c +0.50, h +0.55)" in text and "◆ unit 11" not in text
    assert "all 16,384 pairs" in text and "sample 1,234" in text
    tip = panel.carry.label.toolTip()  # the table of the best three, and each one described
    for unit, cell_shown, hidden_shown in ((7, "+0.97", "+0.90"), (2, "-0.85", "-0.60"), (11, "+0.50", "+0.55")):
        row = tip[tip.index(f"unit {unit}<"):].split("</tr>")[0]
        assert f"&nbsp;{cell_shown}<" in row and f"&nbsp;{hidden_shown}<" in row
        assert found.describe(unit) in tip
    model = panel.units.model
    assert "◆" in model.headerData(7, Qt.Orientation.Vertical, DISPLAY)
    assert "◆" not in model.headerData(11, Qt.Orientation.Vertical, DISPLAY)
    assert model.headerData(7, Qt.Orientation.Vertical, Qt.ItemDataRole.FontRole).bold()  # carriers stand out


def test_fewer_bits_rebuild_the_rows_and_clamp_the_step(panel: StepThroughPanel, trainer: Trainer) -> None:
    narrow = dataclasses.replace(trainer.config, n_bits=4)
    panel.update_from(snapshot_of(trainer, 5, 6, config=narrow,
                                  focus=focus.trace_focus(trainer.params, 5, 6, 4)))
    assert len(panel.bits.cells["a"]) == 4 and panel.step == 3
    assert bit_row(panel, "sum") == "1011"
    panel.addition.field_a.setText("45")
    assert panel.addition.operands() is None and "0 to 7" in panel.addition.error.text()


def test_the_plain_rnn_is_stepped_through_too(qtbot) -> None:
    params = rnn.init_params(4, np.random.default_rng(0))
    trace = focus.trace_focus(params, 45, 67, 8, samples_seen=10)
    panel = StepThroughPanel()
    qtbot.addWidget(panel)
    panel.update_from(types.SimpleNamespace(samples_seen=10, config=TrainConfig(model="rnn", hidden_size=4),
                                            params=params, analyses={}, pending=frozenset(), focus=trace))
    panel.focus_changed(Focus(45, 67, 2))
    values, _ = shown_table(panel)
    assert [name for name, _ in panel.units.model.columns] == [name for name, _ in RNN_COLUMNS]
    np.testing.assert_allclose(values[:, 0], trace.trace.hidden[2])
    np.testing.assert_allclose(values[:, 1], trace.trace.hidden[3])
    np.testing.assert_allclose(values[:, 2], trace.trace.grad_hidden[2])
    assert panel.details.labels["gradient"].text() == f"‖∂L/∂h‖ {trace.grad_hidden_norm[2]:.2e}"
    assert not panel.backward.grad_c_curve.isVisible()


def test_every_control_and_number_says_what_it_is(panel: StepThroughPanel) -> None:
    for widget in (panel.addition.field_a, panel.addition.field_b, panel.addition.random_button,
                   panel.steps.home_button, panel.steps.prev_button, panel.steps.play_button,
                   panel.steps.next_button, panel.backward.plot_widget, panel.carry.label, panel.weights_label,
                   panel.carry.example_button):
        assert widget.toolTip(), widget
    for label in panel.details.labels.values():
        assert label.toolTip()
    for cells in panel.bits.cells.values():
        assert all(cell.toolTip() for cell in cells)
    model = panel.units.model
    for column in range(model.columnCount()):
        assert model.headerData(column, Qt.Orientation.Horizontal, Qt.ItemDataRole.ToolTipRole)
        assert model.data(model.index(0, column), Qt.ItemDataRole.ToolTipRole)


def test_the_view_names_its_analysis_and_says_computing_itself() -> None:
    assert [a.name for a in stepthrough.ANALYSES] == [CARRY_ANALYSIS]
    assert 0 < stepthrough.ANALYSES[0].period_s <= 5
