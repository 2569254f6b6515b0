"""The insight panels show core's numbers; as views of the window they drive the worker through the controller, and
their analyses run only while someone looks."""

from __future__ import annotations

import types

import numpy as np
import pytest
from PySide6.QtCore import QPointF, Qt
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QLabel

from core import insights, lstm, rnn
from core.insights import Measured
from core.trainer import TrainConfig, Trainer, evaluate
from explorer.analyses import Analysis, AnalysisBook, Weights
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
                  analyses=analyses or {}, unit_scale=None, state="paused", knockout_undo=False)
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
    assert ticks == ["8 (trained)", *(str(int(w)) for w in result.widths[1:])]
    for label, accuracy in zip(panel._labels, result.accuracy, strict=True):
        assert f"{100 * accuracy:.1f} %" in label.textItem.toPlainText()
    top = panel.plot.getViewBox().sceneBoundingRect().top()
    for label in panel._labels:  # every label inside the plot, however tall its bar
        assert label.sceneBoundingRect().top() >= top - 1
    assert f"{100 * result.accuracy[-1]:.1f} % of {int(result.widths[-1])}-bit sums right" in panel.title.text()
    assert "fixed random pairs" in panel.note.text()
    # each width's 95 % interval as whiskers around its bar
    np.testing.assert_allclose(panel.intervals.opts["y"] + panel.intervals.opts["top"], 100 * result.high)
    np.testing.assert_allclose(panel.intervals.opts["y"] - panel.intervals.opts["bottom"], 100 * result.low)


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
    result = Measured(0, saturation.compute(rnn_trainer, None))
    panel = shown(qtbot, SaturationPanel())
    panel.update_from(snapshot_of(rnn_trainer, {saturation.ANALYSIS: result}))
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
    damaged = knockout_snapshot(trainer, mask)
    damaged.knockout_undo = True  # the worker keeps the history
    panel.update_from(damaged)
    knocked = evaluate(trainer.params, 8, unit_scale=mask).accuracy
    assert knocked < intact
    assert "Knocked out" in panel.knocked_label.text() and "unit 2 ·" in panel.knocked_label.text()
    assert f"{100 * knocked:.1f} %" in panel.knocked_label.text()
    assert f"{100 * intact:.1f} %" in panel.intact_label.text()  # side by side, the intact number stays
    assert panel.grid_view.grid.knocked_out == (2,)  # the small error grid shows the damaged model
    assert panel._buttons[2].isChecked() and panel.undo_button.isEnabled()

    # Undo asks the worker; the panel then shows the mask the worker applies: intact, and its accuracy exactly.
    with qtbot.waitSignal(panel.sigUndo, timeout=2000):
        qtbot.mouseClick(panel.undo_button, Qt.MouseButton.LeftButton)
    after = knockout_snapshot(trainer, None)
    panel.update_from(after)
    assert after.analyses[knockout.ANALYSIS].value.knocked_accuracy == intact
    assert not panel._buttons[2].isChecked() and not panel.undo_button.isEnabled()


def test_knockout_changes_are_sent_as_masks(qtbot, trainer: Trainer) -> None:
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
    assert sent[2][3] == -1.0 and sent[1][3] == 0.0 and sent[3] is None


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


# ---- when analyses run --------------------------------------------------------------------------------------------
def weights_of(trainer: Trainer, generation: int = 0, mask=None, training: bool = True) -> Weights:
    return Weights(trainer.params.copy(), trainer.config, trainer.samples_seen, generation, mask, "numpy", training)


def test_an_analysis_runs_only_when_the_answer_can_differ_and_someone_looks() -> None:
    calls: list[tuple[int, object]] = []

    def compute(weights, unit_scale):
        calls.append((weights.samples_seen, unit_scale))
        return len(calls)

    book = AnalysisBook()
    book.register(Analysis("watched", compute, period_s=1000.0))
    own = Trainer(TrainConfig(seed=4))
    book.offer(weights_of(own))
    assert book.next_job() == (None, float("inf")), "nobody looks: nothing to run, ever"
    book.set_visible({"watched"}, 1)
    assert book.next_job()[0] == "watched"  # shown: at once
    assert book.run("watched") == "" and book.results()["watched"].value == 1
    assert book.pending(weights_of(own)) == frozenset()
    assert book.next_job()[0] is None  # same weights, same mask: the result is exact already
    own.step(10)
    book.offer(weights_of(own))
    name, wait = book.next_job()
    assert name is None and 0 < wait <= 1000.0  # training moved the weights: wait for the period
    book.offer(weights_of(own, training=False))
    assert book.next_job()[0] == "watched"  # paused (a step): at once
    book.run("watched")
    mask = np.where(np.arange(16) == 1, 0.0, 1.0)
    book.offer(weights_of(own, mask=mask))
    assert "watched" in book.pending(weights_of(own, mask=mask)) and book.next_job()[0] == "watched"  # a mask
    book.run("watched")
    assert calls[-1][1] is mask
    book.clear()  # a new trainer: the old result would describe other weights
    assert "watched" in book.pending(weights_of(own, generation=1)) and "watched" not in book.results()
    book.set_visible(set(), 2)
    book.offer(weights_of(own, generation=1))
    assert book.next_job()[0] is None, "hidden again: nothing runs, even with no result"


def test_a_view_shown_again_is_pending_until_a_new_result(trainer: Trainer) -> None:
    book = AnalysisBook()
    book.register(error_grid.ANALYSES[0])
    book.set_visible({error_grid.ANALYSIS}, 1)
    book.offer(weights_of(trainer))
    book.run(error_grid.ANALYSIS)
    assert book.pending(weights_of(trainer)) == frozenset()
    book.set_visible(set(), 2)
    book.set_visible({error_grid.ANALYSIS}, 3)  # its tab is shown again
    assert error_grid.ANALYSIS in book.pending(weights_of(trainer)), "its view says computing… until then"
    assert book.next_job()[0] is None, "the same weights: the result is exact, no need to compute it again"
    assert book.pending(weights_of(trainer)) == frozenset()


def test_gradient_check_runs_once_per_request(trainer: Trainer) -> None:
    book = AnalysisBook()
    for spec in gradients.ANALYSES:
        book.register(spec)
    book.offer(weights_of(trainer))
    assert book.next_job()[0] is None
    book.request(gradients.CHECK_ANALYSIS, 1)
    assert book.next_job()[0] == gradients.CHECK_ANALYSIS, "asked: runs even while its view is hidden"
    book.run(gradients.CHECK_ANALYSIS)
    first = book.results()[gradients.CHECK_ANALYSIS]
    assert first.request == 1 and first.value.ok
    assert book.next_job()[0] is None  # no new request: nothing recomputed


def test_a_broken_analysis_is_switched_off(trainer: Trainer) -> None:
    book = AnalysisBook()
    book.register(Analysis("broken", lambda weights, mask: 1 / 0))
    book.set_visible({"broken"}, 1)
    book.offer(weights_of(trainer))
    assert "ZeroDivisionError" in book.run("broken")
    assert book.next_job()[0] is None and "broken" not in book.pending(weights_of(trainer))


# ---- as views of the main window ----------------------------------------------------------------------------------
def latest(window, name: str):
    snapshot = window.latest_snapshot
    return None if snapshot is None else snapshot.analyses.get(name)


def current(window, name: str) -> bool:
    snapshot = window.latest_snapshot
    return snapshot is not None and name in snapshot.analyses and name not in snapshot.pending


def test_views_drive_the_worker_through_the_controller(qtbot, trainer: Trainer, learning_lstm_copy: Trainer) -> None:
    from explorer.main_window import MainWindow

    own = learning_lstm_copy  # the same weights as the fixture's, owned by the window's worker from now on
    window = MainWindow(trainer=own, restore_layout=False)
    qtbot.addWidget(window)
    try:
        window.add_views()
        window.resize(1280, 800)
        window.show()
        qtbot.waitExposed(window)
        titles = [window.tabs.tabText(i) for i in range(window.tabs.count())]
        assert titles == ["Step through", "Code", "Story", "Error grid", "Length", "Saturation", "Gradients",
                          "Knockout", "Sweep"]

        # Error grid: computed on the window's weights; a click makes the pair the focus and shows it step by step.
        assert window.select_tab("Error grid")
        host = window.current_host()
        assert host.cover.isVisible() or current(window, error_grid.ANALYSIS)  # "computing…", never stale numbers
        qtbot.waitUntil(lambda: current(window, error_grid.ANALYSIS), timeout=60_000)
        window.redraw_now()
        assert not host.cover.isVisible()
        snapshot = window.latest_snapshot
        grid = snapshot.analyses[error_grid.ANALYSIS].value
        assert grid.accuracy == evaluate(snapshot.params, 8).accuracy == evaluate(trainer.params, 8).accuracy
        panel = window.view("Error grid").widget
        np.testing.assert_array_equal(panel.grid_view.image.image, grid.wrong_image)
        panel.sigPairClicked.emit(3, 4)
        assert window.controller.focus.operands == (3, 4)
        assert window.tabs.tabText(window.tabs.currentIndex()) == "Step through"
        qtbot.waitUntil(lambda: window.latest_snapshot.focus.operands == (3, 4), timeout=30_000)

        # Knockout: evaluation only; undo (through the worker's history) restores the intact accuracy exactly.
        assert window.select_tab("Knockout")
        views = window.view("Knockout").widget
        qtbot.waitUntil(lambda: current(window, knockout.ANALYSIS) and current(window, error_grid.ANALYSIS),
                        timeout=60_000)
        window.redraw_now()
        assert views.grid_view.focus_mark.isVisible(), "the small grid marks the focus addition too"
        intact = latest(window, knockout.ANALYSIS).value.intact_accuracy
        views.toggle(2)
        qtbot.waitUntil(lambda: latest(window, knockout.ANALYSIS).value.knocked_out == (2,)
                        and latest(window, error_grid.ANALYSIS).value.knocked_out == (2,)
                        and current(window, knockout.ANALYSIS), timeout=60_000)
        mask = np.where(np.arange(16) == 2, 0.0, 1.0)
        result = latest(window, knockout.ANALYSIS).value
        assert result.knocked_accuracy == evaluate(trainer.params, 8, unit_scale=mask).accuracy < intact
        assert result.intact_accuracy == intact  # training weights untouched
        np.testing.assert_array_equal(window.latest_snapshot.unit_scale, mask)  # heatmaps and step-through too
        window.redraw_now()
        assert "unit 2 ·" in views.knocked_label.text()
        views.undo()
        qtbot.waitUntil(lambda: latest(window, knockout.ANALYSIS).value.knocked_out == ()
                        and current(window, knockout.ANALYSIS), timeout=60_000)
        assert latest(window, knockout.ANALYSIS).value.knocked_accuracy == intact

        # Gradients: the clip control reaches the trainer; the gradient check runs on request.
        assert window.select_tab("Gradients")
        views = window.view("Gradients").widget
        views.clip.setValue(0.5)
        qtbot.waitUntil(lambda: window.latest_snapshot.config.clip_norm == 0.5, timeout=30_000)
        qtbot.mouseClick(views.check_button, Qt.MouseButton.LeftButton)
        qtbot.waitUntil(lambda: getattr(latest(window, gradients.CHECK_ANALYSIS), "request", 0) == 1,
                        timeout=60_000)
        window.redraw_now()
        assert latest(window, gradients.CHECK_ANALYSIS).value.ok
        assert "OK" in views.check_result.text() and views.check_button.isEnabled()
        qtbot.waitUntil(lambda: current(window, gradients.ANALYSIS), timeout=60_000)
        assert np.array_equal(latest(window, gradients.ANALYSIS).value.hidden,
                              insights.gradient_norms(trainer.params, 8).hidden)

        # Length and saturation: the values of the window's weights.
        assert window.select_tab("Length")
        qtbot.waitUntil(lambda: current(window, length.ANALYSIS), timeout=60_000)
        np.testing.assert_array_equal(latest(window, length.ANALYSIS).value.accuracy,
                                      insights.length_generalisation(trainer.params, 8).accuracy)
        assert window.select_tab("Saturation")
        qtbot.waitUntil(lambda: current(window, saturation.ANALYSIS), timeout=60_000)
        np.testing.assert_array_equal(latest(window, saturation.ANALYSIS).value.high,
                                      insights.gate_saturation(trainer.params, 8).high)
    finally:
        window.close()


def test_hidden_views_compute_nothing_while_training(qtbot, monkeypatch) -> None:
    from explorer.main_window import MainWindow

    names = [error_grid.ANALYSIS, length.ANALYSIS, saturation.ANALYSIS, gradients.ANALYSIS, knockout.ANALYSIS]
    computed: dict[str, list[int]] = {name: [] for name in names}
    modules = {error_grid.ANALYSIS: error_grid, length.ANALYSIS: length, saturation.ANALYSIS: saturation,
               gradients.ANALYSIS: gradients, knockout.ANALYSIS: knockout}
    for name, module in modules.items():
        spec = module.ANALYSES[0]

        def counting(weights, unit_scale, real=spec.compute, name=name):
            computed[name].append(weights.samples_seen)
            return real(weights, unit_scale)

        specs = tuple(Analysis(s.name, counting, s.period_s, s.settings, s.on_request) if s is spec else s
                      for s in module.ANALYSES)
        monkeypatch.setattr(module, "ANALYSES", specs)
    window = MainWindow(trainer=Trainer(TrainConfig(seed=0, learning_rate=0.001)), restore_layout=False)
    qtbot.addWidget(window)
    try:
        window.add_views()
        window.resize(1280, 800)
        window.show()
        qtbot.waitExposed(window)
        assert window.select_tab("Step through")  # on screen; every insight view is hidden
        snapshots: list[object] = []
        window.sigSnapshotReceived.connect(snapshots.append)
        window.request_play()
        qtbot.waitUntil(lambda: window.latest_snapshot.state == "training", timeout=30_000)
        window.controller.refresh()  # even a refresh leaves hidden views alone
        qtbot.waitUntil(lambda: len(snapshots) >= 10 and snapshots[-1].samples_seen > 0, timeout=60_000)
        assert computed == {name: [] for name in names}, "nothing computed for views nobody sees"
        assert window.select_tab("Length")  # shown: computed on the weights being trained
        qtbot.waitUntil(lambda: current(window, length.ANALYSIS), timeout=60_000)
        assert computed[length.ANALYSIS] and latest(window, length.ANALYSIS).samples_seen > 0
        assert all(computed[name] == [] for name in names if name != length.ANALYSIS)
    finally:
        window.close()
