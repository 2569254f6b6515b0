"""The insight panels show core's numbers, and the installed tabs drive the training worker."""

from __future__ import annotations

import types

import numpy as np
import pytest
from PySide6.QtCore import QPointF, Qt
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication, QLabel

from core import insights, lstm, rnn
from core.insights import Measured
from core.trainer import TrainConfig, Trainer, evaluate
from explorer import insights_install
from explorer.panels import error_grid, gradients, knockout, length, saturation
from explorer.panels.error_grid import ErrorGridPanel
from explorer.panels.gradients import GradientsPanel
from explorer.panels.knockout import KnockoutPanel
from explorer.panels.length import LengthPanel
from explorer.panels.saturation import SaturationPanel

# The offscreen platform says this whenever a top-level widget is shown; it is not about the panels.
pytestmark = pytest.mark.qt_log_ignore("This plugin does not support propagateSizeHints")


@pytest.fixture
def trainer(learning_lstm: Trainer) -> Trainer:
    """Part-way through learning: some sums still wrong. Shared by the tests: read only."""
    return learning_lstm


def snapshot_of(trainer: Trainer, analyses: dict | None = None, **overrides: object) -> types.SimpleNamespace:
    fields = dict(samples_seen=trainer.samples_seen, config=trainer.config, params=trainer.params.copy(),
                  analyses=analyses or {}, unit_scale=None, state="paused")
    fields.update(overrides)
    return types.SimpleNamespace(**fields)


def shown(qtbot, widget, width: int = 1100, height: int = 420):
    qtbot.addWidget(widget)
    widget.resize(width, height)
    widget.show()
    qtbot.waitExposed(widget)
    return widget


def cell_position(view, a: int, b: int):
    """Widget position (in the GraphicsView's viewport) of the centre of grid cell (a, b)."""
    box = view.plot.getViewBox()
    scene_point = box.mapViewToScene(QPointF(a + 0.5, b + 0.5))
    return view.view.mapFromScene(scene_point)


# ---- error grid ---------------------------------------------------------------------------------------------------
def test_error_grid_panel_draws_the_grid_and_reads_and_opens_a_cell(qtbot, trainer: Trainer) -> None:
    grid = insights.error_grid(trainer.params, 8)
    panel = shown(qtbot, ErrorGridPanel(), height=520)
    panel.update_from(snapshot_of(trainer, {error_grid.ANALYSIS: Measured(trainer.samples_seen, grid)}))
    np.testing.assert_array_equal(panel.grid_view.image.image, grid.wrong_image)
    assert tuple(panel.grid_view.image.getLevels()) == (-0.5, 8.5)  # fixed levels: one colour per count
    right = int(np.sum(grid.wrong_bits == 0))
    assert f"{right:,} sums right ({100 * grid.accuracy:.1f} %)" in panel.title.text()
    assert f"at {trainer.samples_seen:,} samples" in panel.title.text()

    b, a = (int(v) for v in np.argwhere(grid.wrong_image > 0)[0])
    pixel = panel.grid_view.image.mapFromView(QPointF(a + 0.5, b + 0.5))  # (column, row) of the drawn image
    assert (int(pixel.x()), int(pixel.y())) == (a, b)  # the cell drawn at (a, b) is wrong_image[b, a]
    position = cell_position(panel.grid_view, a, b)
    QTest.mouseMove(panel.grid_view.view.viewport(), position)
    qtbot.waitUntil(lambda: f"a = {a}, b = {b}" in panel.grid_view.readout.text(), timeout=5000)
    predicted = int(grid.predicted_image[b, a])
    text = panel.grid_view.readout.text()
    assert f"true sum {a + b}" in text and f"predicted {predicted}" in text
    assert f"{int(grid.wrong_image[b, a])} wrong bit" in text
    with qtbot.waitSignal(panel.sigPairClicked, timeout=5000) as clicked:
        QTest.mouseClick(panel.grid_view.view.viewport(), Qt.MouseButton.LeftButton, pos=position)
    assert clicked.args == [a, b]


def test_error_grid_panel_summarises_a_sample_beyond_8_bits(qtbot, trainer: Trainer) -> None:
    grid = insights.error_grid(trainer.params, 12)
    panel = shown(qtbot, ErrorGridPanel())
    panel.update_from(snapshot_of(trainer, {error_grid.ANALYSIS: Measured(trainer.samples_seen, grid)}))
    assert panel.pages.currentWidget() is panel.summary_view
    assert "4,194,304 pairs, too many to draw" in panel.title.text()
    assert f"{100 * grid.accuracy:.1f} % right" in panel.title.text()
    np.testing.assert_allclose(panel.histogram_bars.opts["height"], 100 * grid.histogram() / grid.histogram().sum())
    np.testing.assert_allclose(panel.position_bars.opts["height"], 100 * grid.position_error)


# ---- length -------------------------------------------------------------------------------------------------------
def test_length_panel_shows_accuracy_per_width(qtbot, trainer: Trainer) -> None:
    result = insights.length_generalisation(trainer.params, 8)
    panel = shown(qtbot, LengthPanel())
    panel.update_from(snapshot_of(trainer, {length.ANALYSIS: Measured(trainer.samples_seen, result)}))
    np.testing.assert_allclose(panel.bars.opts["height"], 100 * result.accuracy)
    ticks = [text for _, text in panel.plot.getAxis("bottom")._tickLevels[0]]
    assert ticks == ["8 (trained)", "12", "16", "24", "32"]
    for label, accuracy in zip(panel._labels, result.accuracy, strict=True):
        assert f"{100 * accuracy:.1f} %" in label.textItem.toPlainText()
    assert f"{100 * result.accuracy[-1]:.1f} % of 32-bit sums right" in panel.title.text()
    assert "2,000 fixed random pairs" in panel.note.text()


# ---- saturation ---------------------------------------------------------------------------------------------------
def test_saturation_panel_plots_one_point_per_unit_and_gate(qtbot, trainer: Trainer) -> None:
    result = insights.gate_saturation(trainer.params, 8)
    panel = shown(qtbot, SaturationPanel())
    panel.update_from(snapshot_of(trainer, {saturation.ANALYSIS: Measured(trainer.samples_seen, result)}))
    for k, gate in enumerate(lstm.GATES):
        x, y = panel.scatters[gate].getData()
        np.testing.assert_array_equal(x, result.low[k])
        np.testing.assert_array_equal(y, result.high[k])
    assert panel.describe("f", 2) == (f"unit 2, f forget gate: shut {100 * result.low[1, 2]:.1f} % of the time "
                                      f"(< 0.1), open {100 * result.high[1, 2]:.1f} % (> 0.9)")
    assert "(< -0.9)" in panel.describe("g", 0)
    assert "512 fixed additions" in panel.title.text()


def test_saturation_panel_explains_a_model_without_gates(qtbot) -> None:
    rnn_trainer = Trainer(TrainConfig(model="rnn"))
    assert isinstance(rnn_trainer.params, rnn.Params)
    analysis = insights_install.LiveAnalysis(insights_install.compute_saturation, insights_install.threading.Event())
    panel = shown(qtbot, SaturationPanel())
    panel.update_from(snapshot_of(rnn_trainer, {saturation.ANALYSIS: analysis(rnn_trainer, None)}))
    assert "no gates" in panel.title.text()


# ---- gradients ----------------------------------------------------------------------------------------------------
def test_gradients_panel_shows_norms_per_bit_and_update_sizes(qtbot, trainer: Trainer) -> None:
    result = insights.gradient_norms(trainer.params, 8)
    panel = shown(qtbot, GradientsPanel())
    panel.update_from(snapshot_of(trainer, {gradients.ANALYSIS: Measured(trainer.samples_seen, result)},
                                  config=trainer.config.replace(clip_norm=0.2)))
    np.testing.assert_array_equal(panel.hidden_curve.yData, result.hidden)
    np.testing.assert_array_equal(panel.cell_curve.yData, result.cell)
    assert f"median {np.median(result.batch_norms):.3g}" in panel.update_sizes.text()
    assert f"shrinks {100 * result.clipped_fraction(0.2):.0f} % of updates" in panel.update_sizes.text()
    assert panel.clip.value() == pytest.approx(0.2)  # follows the trainer's setting


def test_gradient_clip_control_sends_the_change(qtbot, trainer: Trainer) -> None:
    panel = shown(qtbot, GradientsPanel())
    panel.update_from(snapshot_of(trainer))
    with qtbot.waitSignal(panel.sigClipChanged, timeout=2000) as sent:
        panel.clip.setValue(0.75)
    assert sent.args == [{"clip_norm": 0.75}]
    panel.update_from(snapshot_of(trainer))  # the trainer has not applied it yet: the control keeps 0.75
    assert panel.clip.value() == pytest.approx(0.75)
    panel.update_from(snapshot_of(trainer, config=trainer.config.replace(clip_norm=0.75)))
    panel.update_from(snapshot_of(trainer, config=trainer.config.replace(clip_norm=2.0)))  # changed elsewhere
    assert panel.clip.value() == pytest.approx(2.0)


def test_gradient_check_button_asks_and_shows_the_verdict(qtbot, trainer: Trainer) -> None:
    panel = shown(qtbot, GradientsPanel())
    with qtbot.waitSignal(panel.sigCheckRequested, timeout=2000) as asked:
        qtbot.mouseClick(panel.check_button, Qt.MouseButton.LeftButton)
    assert asked.args == [1] and not panel.check_button.isEnabled()
    check = insights.gradient_check(trainer.params, 8)
    panel.update_from(snapshot_of(trainer, {gradients.CHECK_ANALYSIS: Measured(trainer.samples_seen, check, 1)}))
    assert panel.check_button.isEnabled()
    text = panel.check_result.text()
    assert "OK" in text and f"{check.max_relative_error:.1e}" in text and "115 weights" in text


# ---- knockout -----------------------------------------------------------------------------------------------------
def knockout_snapshot(trainer: Trainer, unit_scale: np.ndarray | None) -> types.SimpleNamespace:
    """What the worker would send after applying unit_scale."""
    result = insights.knockout_effect(trainer.params, 8, unit_scale, sweep_samples=256)
    grid = insights.error_grid(trainer.params, 8, unit_scale)
    return snapshot_of(trainer, {knockout.ANALYSIS: Measured(trainer.samples_seen, result),
                                 error_grid.ANALYSIS: Measured(trainer.samples_seen, grid)}, unit_scale=unit_scale)


def test_knockout_clicks_undo_and_accuracy_side_by_side(qtbot, trainer: Trainer) -> None:
    panel = shown(qtbot, KnockoutPanel())
    panel.update_from(knockout_snapshot(trainer, None))
    assert len(panel._buttons) == 16 and not panel.undo_button.isEnabled()
    intact = evaluate(trainer.params, 8).accuracy
    assert f"{100 * intact:.1f} %" in panel.intact_label.text()

    with qtbot.waitSignal(panel.sigUnitScale, timeout=2000) as sent:
        qtbot.mouseClick(panel._buttons[2], Qt.MouseButton.LeftButton)
    mask = sent.args[0]
    np.testing.assert_array_equal(mask, np.where(np.arange(16) == 2, 0.0, 1.0))
    panel.update_from(knockout_snapshot(trainer, mask))
    knocked = evaluate(trainer.params, 8, unit_scale=mask).accuracy
    assert knocked < intact
    assert "Knocked out" in panel.knocked_label.text() and "unit 2 ·" in panel.knocked_label.text()
    assert f"{100 * knocked:.1f} %" in panel.knocked_label.text()
    assert f"{100 * intact:.1f} %" in panel.intact_label.text()  # side by side, the intact number stays
    assert panel.grid_view.grid.knocked_out == (2,)  # the small error grid shows the damaged model
    assert panel._buttons[2].isChecked()

    # Ctrl+Z within the panel restores the intact model; the accuracy it then shows is the intact one exactly.
    panel.activateWindow()
    qtbot.waitUntil(lambda: QApplication.activeWindow() is panel, timeout=5000)  # shortcuts need the active window
    panel._buttons[0].setFocus()
    with qtbot.waitSignal(panel.sigUnitScale, timeout=2000) as undone:
        QTest.keyClick(panel._buttons[0], Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert undone.args == [None]
    after = knockout_snapshot(trainer, None)
    panel.update_from(after)
    assert after.analyses[knockout.ANALYSIS].value.knocked_accuracy == intact
    assert not panel._buttons[2].isChecked() and not panel.undo_button.isEnabled()


def test_knockout_undo_walks_back_a_stack_of_states(qtbot, trainer: Trainer) -> None:
    panel = shown(qtbot, KnockoutPanel())
    panel.update_from(snapshot_of(trainer))
    sent: list[np.ndarray | None] = []
    panel.sigUnitScale.connect(sent.append)
    panel.toggle(3)
    panel.toggle(5)
    panel.factor.setValue(-1.0)  # invert both instead of silencing them
    panel.restore_all()
    expected = [[3], [3, 5], [3, 5], []]
    assert [list(np.flatnonzero(m != 1)) if m is not None else [] for m in sent] == expected
    assert sent[2][3] == -1.0 and sent[1][3] == 0.0
    for _ in range(4):
        panel.undo()
    assert [None if m is None else list(np.flatnonzero(m != 1)) for m in sent[4:]] == [[3, 5], [3, 5], [3], None]
    assert sent[4][5] == -1.0 and sent[5][5] == 0.0
    assert panel.state.units == frozenset() and not panel.undo_button.isEnabled()


def test_knockout_follows_a_reset_and_a_resize(qtbot, trainer: Trainer) -> None:
    panel = shown(qtbot, KnockoutPanel())
    panel.update_from(snapshot_of(trainer))
    sent: list[np.ndarray | None] = []
    panel.sigUnitScale.connect(sent.append)
    panel.toggle(3)
    panel.toggle(12)
    panel.update_from(snapshot_of(trainer, unit_scale=sent[-1]))  # the worker confirms
    resized = snapshot_of(trainer, config=trainer.config.replace(hidden_size=8), unit_scale=sent[-1])
    panel.update_from(resized)  # unit 12 is gone; the mask is resent at the new size
    assert len(panel._buttons) == 8 and panel.state.units == frozenset({3})
    np.testing.assert_array_equal(sent[-1], np.where(np.arange(8) == 3, 0.0, 1.0))
    panel.update_from(snapshot_of(trainer, config=resized.config, unit_scale=sent[-1]))
    panel.update_from(snapshot_of(trainer, config=resized.config, unit_scale=None))  # a reset cleared it
    assert panel.state.units == frozenset() and not any(b.isChecked() for b in panel._buttons)
    assert not panel.undo_button.isEnabled()


def test_knockout_says_it_applies_to_evaluation_only(qtbot) -> None:
    panel = shown(qtbot, KnockoutPanel())
    texts = " ".join(label.text() for label in panel.findChildren(QLabel))
    assert "evaluation only" in texts and "training continues on the intact weights" in texts


# ---- analyses as the worker runs them -----------------------------------------------------------------------------
def test_views_compute_only_when_the_answer_can_differ_and_someone_looks() -> None:
    calls: list[tuple[int, object]] = []

    def compute(current: Trainer, unit_scale):
        calls.append((current.samples_seen, unit_scale))
        return len(calls)

    own = Trainer(TrainConfig(seed=4))
    visible = insights_install.threading.Event()
    analysis = insights_install.LiveAnalysis(compute, visible)
    first = analysis(own, None)
    assert first.value == 1 and first.samples_seen == 0  # the first result is always computed
    own.step(10)
    assert analysis(own, None) is first  # hidden: the last result, nothing computed
    visible.set()
    assert analysis(own, None).value == 2 and calls[-1][0] == 10  # on screen, new weights: computed
    assert analysis(own, None).value == 2  # same weights, same mask: the result is exact already
    analysis.BUDGET = 1e9  # as if the computation were very slow
    own.step(10)
    assert analysis(own, None).value == 2  # only the weights moved: wait for the budget
    mask = np.where(np.arange(16) == 1, 0.0, 1.0)
    assert analysis(own, mask).value == 3  # a new mask: at once
    visible.clear()
    other = Trainer(TrainConfig(seed=3))
    assert analysis(other, None).value == 4  # a new trainer: the old result would describe other weights


def test_gradient_check_runs_once_per_request(trainer: Trainer) -> None:
    checker = insights_install.GradientCheckOnRequest()
    assert checker(trainer, None) is None
    checker.request(1)
    first = checker(trainer, None)
    assert first.request == 1 and first.value.ok
    assert checker(trainer, None) is first  # no new request: the same answer, nothing recomputed


# ---- installed in the main window ---------------------------------------------------------------------------------
class StepThrough(QLabel):
    """Stands in for the step-through panel: records the additions it is asked to show."""

    def __init__(self) -> None:
        super().__init__("step through")
        self.opened: list[tuple[int, int]] = []

    def set_operands(self, a: int, b: int) -> None:
        self.opened.append((a, b))


def latest(window, name: str):
    snapshot = window.latest_snapshot
    return None if snapshot is None else snapshot.analyses.get(name)


def test_install_adds_the_tabs_and_drives_the_worker(qtbot, trainer: Trainer, learning_lstm_copy: Trainer) -> None:
    from explorer.main_window import MainWindow

    own = learning_lstm_copy  # the same weights as the fixture's, owned by the window's worker from now on
    window = MainWindow(trainer=own, restore_layout=False)
    qtbot.addWidget(window)
    try:
        step_through = StepThrough()
        window.add_tab(step_through, "Step through")
        window.walkthrough = step_through
        views = insights_install.install(window)
        window.resize(1280, 800)
        window.show()
        qtbot.waitExposed(window)
        titles = [window.tabs.tabText(i) for i in range(window.tabs.count())]
        assert titles == ["Step through", "Error grid", "Length", "Saturation", "Gradients", "Knockout"]

        # Error grid: computed in the worker on the window's weights; a click opens the pair step by step.
        assert window.select_tab("Error grid")
        qtbot.waitUntil(lambda: isinstance(latest(window, error_grid.ANALYSIS), Measured), timeout=60_000)
        window.redraw_now()
        snapshot = window.latest_snapshot
        grid = snapshot.analyses[error_grid.ANALYSIS].value
        assert grid.accuracy == evaluate(snapshot.params, 8).accuracy == evaluate(trainer.params, 8).accuracy
        np.testing.assert_array_equal(views.error_grid.grid_view.image.image, grid.wrong_image)
        views.error_grid.sigPairClicked.emit(3, 4)
        assert step_through.opened == [(3, 4)] and window.tabs.tabText(window.tabs.currentIndex()) == "Step through"

        # Knockout: evaluation only, shown at once; undo restores the intact accuracy exactly.
        assert window.select_tab("Knockout")
        assert views.analyses[error_grid.ANALYSIS].visible.is_set()  # the small grid needs the grid computed
        assert not views.analyses[length.ANALYSIS].visible.is_set()
        qtbot.waitUntil(lambda: isinstance(latest(window, knockout.ANALYSIS), Measured), timeout=60_000)
        window.redraw_now()
        intact = latest(window, knockout.ANALYSIS).value.intact_accuracy
        views.knockout.toggle(2)
        qtbot.waitUntil(lambda: latest(window, knockout.ANALYSIS).value.knocked_out == (2,)
                        and latest(window, error_grid.ANALYSIS).value.knocked_out == (2,), timeout=60_000)
        mask = np.where(np.arange(16) == 2, 0.0, 1.0)
        result = latest(window, knockout.ANALYSIS).value
        assert result.knocked_accuracy == evaluate(trainer.params, 8, unit_scale=mask).accuracy < intact
        assert result.intact_accuracy == intact  # training weights untouched
        np.testing.assert_array_equal(window.latest_snapshot.unit_scale, mask)  # heatmaps and step-through too
        window.redraw_now()
        assert "unit 2 ·" in views.knockout.knocked_label.text()
        views.knockout.undo()
        qtbot.waitUntil(lambda: latest(window, knockout.ANALYSIS).value.knocked_out == (), timeout=60_000)
        assert latest(window, knockout.ANALYSIS).value.knocked_accuracy == intact

        # Gradients: the clip control reaches the trainer; the gradient check runs in the worker on request.
        assert window.select_tab("Gradients")
        views.gradients.clip.setValue(0.5)
        qtbot.waitUntil(lambda: window.latest_snapshot.config.clip_norm == 0.5, timeout=30_000)
        qtbot.mouseClick(views.gradients.check_button, Qt.MouseButton.LeftButton)
        qtbot.waitUntil(lambda: getattr(latest(window, gradients.CHECK_ANALYSIS), "request", 0) == 1,
                        timeout=60_000)
        window.redraw_now()
        assert latest(window, gradients.CHECK_ANALYSIS).value.ok
        assert "OK" in views.gradients.check_result.text() and views.gradients.check_button.isEnabled()
        assert np.array_equal(latest(window, gradients.ANALYSIS).value.hidden,
                              insights.gradient_norms(trainer.params, 8).hidden)

        # Length and saturation: the values of the window's weights.
        assert window.select_tab("Length")
        qtbot.waitUntil(lambda: isinstance(latest(window, length.ANALYSIS), Measured), timeout=60_000)
        np.testing.assert_array_equal(latest(window, length.ANALYSIS).value.accuracy,
                                      insights.length_generalisation(trainer.params, 8).accuracy)
        assert window.select_tab("Saturation")
        qtbot.waitUntil(lambda: isinstance(latest(window, saturation.ANALYSIS), Measured), timeout=60_000)
        np.testing.assert_array_equal(latest(window, saturation.ANALYSIS).value.high,
                                      insights.gate_saturation(trainer.params, 8).high)
    finally:
        window.close()


def test_hidden_insight_views_compute_nothing_while_training(qtbot) -> None:
    from explorer.main_window import MainWindow

    window = MainWindow(trainer=Trainer(TrainConfig(seed=0, learning_rate=0.001)), restore_layout=False)
    qtbot.addWidget(window)
    try:
        step_through = StepThrough()
        window.add_tab(step_through, "Step through")  # the tab on screen; every insight view is hidden
        window.walkthrough = step_through
        views = insights_install.install(window)
        window.resize(1280, 800)
        window.show()
        qtbot.waitExposed(window)
        names = [error_grid.ANALYSIS, length.ANALYSIS, saturation.ANALYSIS, gradients.ANALYSIS, knockout.ANALYSIS]
        qtbot.waitUntil(lambda: all(isinstance(latest(window, name), Measured) for name in names), timeout=60_000)
        computed: dict[str, list[int]] = {name: [] for name in names}
        for name in names:
            analysis = views.analyses[name]

            def counting(trainer: Trainer, unit_scale, real=analysis.compute, name=name):
                computed[name].append(trainer.samples_seen)
                return real(trainer, unit_scale)

            analysis.compute = counting
        snapshots: list[object] = []
        window.sigSnapshotReceived.connect(snapshots.append)
        window.request_play()
        qtbot.waitUntil(lambda: window.latest_snapshot.state == "training", timeout=30_000)
        window.request_refresh()  # while training, even a refresh leaves hidden views alone
        qtbot.waitUntil(lambda: len(snapshots) >= 10 and snapshots[-1].samples_seen > 0, timeout=60_000)
        assert computed == {name: [] for name in names}, "nothing computed for views nobody sees"
        assert window.select_tab("Length")  # shown: computed on the weights being trained
        qtbot.waitUntil(lambda: latest(window, length.ANALYSIS).samples_seen > 0, timeout=60_000)
        assert computed[length.ANALYSIS]
        assert all(computed[name] == [] for name in names if name != length.ANALYSIS)
    finally:
        window.close()
