"""Experiments in the window, offscreen: pause when solved (with the trainer's own samples- and time-to-solve),
earlier runs kept as faded curves, the plain RNN as a model kind, and the hyperparameter sweep tab."""

from __future__ import annotations

import csv
import dataclasses
import multiprocessing

import numpy as np
import pytest
from PySide6.QtCore import QSettings

from core import sweep
from core.trainer import TrainConfig, Trainer
from explorer import experiments_install
from explorer.main_window import APPLICATION, ORGANIZATION, MainWindow, install_views
from explorer.panels.sweep import SweepPanel, parse_values, short_count
from explorer.run_overlays import MAX_RUNS

WAIT_MS = 60_000


def pretrained(config: TrainConfig, samples: int) -> Trainer:
    """A trainer that has seen `samples` samples (in chunks of 100) and is not solved yet."""
    trainer = Trainer(config)
    while trainer.samples_seen < samples:
        trainer.step(100)
    assert not trainer.solved, "the test needs a run that still has to solve"
    return trainer


def open_window(qtbot, trainer: Trainer, all_views: bool = False) -> MainWindow:
    window = MainWindow(trainer, restore_layout=False)
    qtbot.addWidget(window)
    if all_views:
        install_views(window)
    else:
        experiments_install.install(window)
    window.show()
    qtbot.waitUntil(lambda: window.latest_snapshot is not None, timeout=WAIT_MS)
    return window


def close_window(window: MainWindow) -> None:
    window.close()
    assert window.stop_training_thread()


@pytest.fixture
def settings():
    """The app's settings, with the auto-stop choice restored afterwards (other tests expect the default)."""
    store = QSettings(ORGANIZATION, APPLICATION)
    store.remove(experiments_install.AUTO_STOP_KEY)
    yield store
    store.remove(experiments_install.AUTO_STOP_KEY)


# ---- pause when solved ----------------------------------------------------------------------------------------
def test_training_pauses_when_solved_and_reports_the_trainers_count(qtbot, settings, learning_lstm_copy):
    start = learning_lstm_copy  # most sums right already: what is tested is the pause, not the learning
    started_at = start.samples_seen
    window = open_window(qtbot, start)
    try:
        experiments = window.experiments
        assert experiments.auto_stop.action.isChecked(), "on by default"
        assert experiments.auto_stop.action in window.training_menu.actions()
        window.request_play()
        qtbot.waitUntil(lambda: window.latest_snapshot.state == "solved", timeout=WAIT_MS)
        trainer = window.worker.trainer  # paused now: the worker no longer touches it
        solved_at = trainer.solved_at
        assert solved_at is not None and solved_at[0] > started_at
        assert trainer.samples_seen == solved_at[0], "paused at the end of the chunk that solved it"
        assert trainer.exhaustive_accuracy() == 1.0
        assert window.latest_snapshot.solved_at == solved_at
        label = experiments.solved.label
        qtbot.waitUntil(label.isVisible, timeout=WAIT_MS)
        assert label.text() == f"solved after {solved_at[0]:,} samples in {solved_at[1]:.1f} s of training"
        qtbot.waitUntil(lambda: f"{solved_at[0]:,} samples" in window.statusBar().currentMessage(), timeout=WAIT_MS)
        assert window.play_action.text() == "Play"
    finally:
        close_window(window)


def test_auto_stop_off_trains_on_past_solved_and_is_remembered(qtbot, settings, learning_lstm_copy):
    window = open_window(qtbot, learning_lstm_copy)
    try:
        action = window.experiments.auto_stop.action
        action.setChecked(False)
        assert settings.value(experiments_install.AUTO_STOP_KEY) in (False, "false")
        qtbot.waitUntil(lambda: not window.worker.pause_when_solved, timeout=WAIT_MS)
        window.request_play()
        qtbot.waitUntil(lambda: window.latest_snapshot.solved_at is not None, timeout=WAIT_MS)
        solved_samples = window.latest_snapshot.solved_at[0]
        qtbot.waitUntil(lambda: window.latest_snapshot.samples_seen > solved_samples, timeout=WAIT_MS)
        assert window.latest_snapshot.state == "training"
        qtbot.waitUntil(lambda: window.experiments.solved.label.isVisible(), timeout=WAIT_MS)
        window.request_pause()
    finally:
        close_window(window)
    again = open_window(qtbot, Trainer(TrainConfig()))
    try:
        assert not again.experiments.auto_stop.action.isChecked(), "the choice is remembered"
        qtbot.waitUntil(lambda: not again.worker.pause_when_solved, timeout=WAIT_MS)
    finally:
        close_window(again)


# ---- earlier runs ---------------------------------------------------------------------------------------------
def test_reset_keeps_the_finished_run_as_a_faded_overlay_and_clear_removes_it(qtbot):
    first_config = TrainConfig(hidden_size=12, learning_rate=0.2, seed=3)
    trainer = pretrained(first_config, 600)
    history = trainer.history.array()
    window = open_window(qtbot, trainer)
    try:
        overlays = window.experiments.overlays
        assert overlays.runs == [] and overlays.strip.isHidden()
        window.request_reset(TrainConfig(learning_rate=0.7, seed=1))
        qtbot.waitUntil(lambda: len(overlays.runs) == 1, timeout=WAIT_MS)
        qtbot.waitUntil(lambda: window.latest_snapshot.config.learning_rate == 0.7, timeout=WAIT_MS)
        run = overlays.runs[0]
        assert np.array_equal(run.history, history)
        (entry,) = overlays.legend_entries()
        assert entry == f"run 1: {first_config.describe()} · not solved in 600"
        assert "H12&nbsp;lr&nbsp;0.2&nbsp;sgd&nbsp;seed&nbsp;3" in overlays.legend.text()
        assert overlays.strip.isVisible()
        loss_item, accuracy_item = overlays._items[0]
        assert loss_item in window.curves.loss_plot.listDataItems()
        assert accuracy_item in window.curves.accuracy_plot.listDataItems()
        x, y = accuracy_item.getData()
        assert np.array_equal(x, history[:, 0]) and np.allclose(y, 100 * history[:, 3])
        assert loss_item.opts["pen"].color().alpha() < 255, "faded"
        assert window.curves.extra_x_extent == 600, "the view keeps the earlier run in sight"

        window.request_reset(TrainConfig())  # the new run has not trained: nothing to keep
        qtbot.waitUntil(lambda: window.latest_snapshot.config.learning_rate == 0.1, timeout=WAIT_MS)
        assert len(overlays.runs) == 1
        assert window.experiments.clear_runs_action.isEnabled()

        overlays.clear_button.click()
        assert overlays.runs == [] and overlays.legend_entries() == []
        assert loss_item not in window.curves.loss_plot.listDataItems()
        assert accuracy_item not in window.curves.accuracy_plot.listDataItems()
        assert overlays.strip.isHidden()
        assert not window.experiments.clear_runs_action.isEnabled()
    finally:
        close_window(window)


def test_at_most_eight_runs_are_kept_and_the_oldest_go_first(qtbot):
    window = open_window(qtbot, Trainer(TrainConfig()))
    try:
        overlays = window.experiments.overlays
        history = np.array([[100.0, 0.7, 0.5, 0.0], [200.0, 0.6, 0.4, 0.5]])
        for seed in range(MAX_RUNS + 2):
            overlays.add_run(TrainConfig(seed=seed).describe(), history, (200, 0.1) if seed % 2 else None, 200)
        assert len(overlays.runs) == MAX_RUNS
        assert [run.number for run in overlays.runs] == list(range(3, MAX_RUNS + 3))
        newest = f"run {MAX_RUNS + 2}: {TrainConfig(seed=9).describe()} · solved at 200 (0.1 s)"
        assert overlays.legend_entries()[-1] == newest
        assert len(window.curves.loss_plot.listDataItems()) == 2 + MAX_RUNS  # loss and bit error of the current run
        assert len(overlays.solved_marks.data) == sum(1 for run in overlays.runs if run.solved_at)
        window.experiments.clear_runs_action.trigger()
        assert overlays.runs == [] and len(window.curves.loss_plot.listDataItems()) == 2
    finally:
        close_window(window)


# ---- the plain RNN ----------------------------------------------------------------------------------------------
def test_plain_rnn_chosen_in_the_controls_trains_with_every_view_and_shows_its_hidden_state(qtbot):
    window = open_window(qtbot, Trainer(TrainConfig()), all_views=True)
    errors: list[str] = []
    window.worker.sigError.connect(errors.append)
    try:
        controls = window.controls
        assert controls.model.currentData() == "lstm"
        controls.model.setCurrentIndex(controls.model.findData("rnn"))
        assert "model lstm → rnn" in controls.reset_note.text()
        assert window.confirm_reset(), "nothing trained yet, so no question is asked"
        qtbot.waitUntil(lambda: window.latest_snapshot.config.model == "rnn", timeout=WAIT_MS)
        assert window.worker.trainer.config.model == "rnn"
        heatmaps = window.heatmaps
        qtbot.waitUntil(lambda: "plain RNN" in heatmaps.title.text(), timeout=WAIT_MS)
        assert "no gates" in heatmaps.title.text()
        trace = window.latest_snapshot.probe  # the RNN's own trace: h only
        assert not trace.gated and trace.cell is None
        assert [name for name, heatmap in heatmaps.maps.items() if heatmap.plot.isVisible()] == ["h"]
        np.testing.assert_array_equal(heatmaps.maps["h"].values, trace.hidden[1:].T)
        assert not heatmaps.cell_range.isVisible(), "no cell, so no colour range for it"
        gate_row, hidden = heatmaps.maps["i"].plot, heatmaps.maps["h"].plot
        # (the layout settles at Qt's next layout pass) the hidden gate row leaves no empty band; h takes its room
        qtbot.waitUntil(lambda: gate_row.size().height() == 0 and hidden.size().height() > 150, timeout=WAIT_MS)
        window.request_play()
        for index in range(window.tabs.count()):  # every view draws an RNN snapshot while it trains
            window.tabs.setCurrentIndex(index)
            shown = window.latest_snapshot.serial
            qtbot.waitUntil(lambda shown=shown: window.latest_snapshot.serial > shown + 2, timeout=WAIT_MS)
        qtbot.waitUntil(lambda: window.latest_snapshot.samples_seen >= 200, timeout=WAIT_MS)
        window.request_pause()
        window.request_refresh()  # every analysis once more on the RNN's weights
        wanted = set(window.worker.analysis_names())
        qtbot.waitUntil(lambda: wanted <= set(window.latest_snapshot.analyses), timeout=WAIT_MS)
        assert window.select_tab("Saturation")  # a view draws while on screen, and catches up when shown
        qtbot.waitUntil(lambda: window.insights.saturation.title.text().startswith(
            "Gate saturation: this model has no gates"), timeout=WAIT_MS)
        window.request_reset(dataclasses.replace(window.latest_snapshot.config, model="lstm"))  # back to gates
        qtbot.waitUntil(lambda: heatmaps.title.text().startswith("Inside the LSTM"), timeout=WAIT_MS)
        assert all(heatmap.plot.isVisible() for heatmap in heatmaps.maps.values())
        assert heatmaps.cell_range.isVisible()
        qtbot.waitUntil(lambda: gate_row.size().height() > 50, timeout=WAIT_MS)  # the gate row has its room again
        assert errors == []
    finally:
        close_window(window)


# ---- the sweep --------------------------------------------------------------------------------------------------
def test_grid_values_are_parsed_sorted_and_checked():
    assert parse_values("0.3, 0.1 0.3", float, 1e-12, 1e4) == ([0.1, 0.3], "")
    assert parse_values("16,4", int, 1, 4096) == ([4, 16], "")
    assert parse_values("", float, 1e-12, 1e4)[1] == "give at least one value"
    assert "not a whole number" in parse_values("4.5", int, 1, 4096)[1]
    assert "outside" in parse_values("0", float, 1e-12, 1e4)[1]
    assert "outside" in parse_values("nan", float, 1e-12, 1e4)[1]
    assert [short_count(n) for n in (950, 7100, 15_000, 1_250_000)] == ["950", "7.1k", "15k", "1.2M"]


@pytest.fixture
def panel(qtbot):
    widget = SweepPanel()
    qtbot.addWidget(widget)
    widget.setMinimumSize(1000, 320)  # a fixed minimum, as the main window has: Qt then never re-derives it
    widget.resize(1000, 320)
    widget.show()
    yield widget
    assert widget.shutdown(), "the sweep thread ended"


def test_sweep_runs_a_small_grid_whose_cells_equal_single_runs(qtbot, panel, tmp_path):
    panel.learning_rates.setText("0.5, 0.3")
    panel.hidden_sizes.setText("16")
    panel.seeds.setValue(1)
    panel.max_samples.setValue(2500)  # lr 0.5 solves within it, lr 0.3 does not (seed 0)
    panel.workers.setValue(2)
    progress: list[int] = []
    panel.progress.valueChanged.connect(progress.append)
    with qtbot.waitSignal(panel.sigFinished, timeout=WAIT_MS) as finished:
        assert panel.start()
        assert not panel.start_button.isEnabled() and panel.cancel_button.isEnabled()
    result = finished.args[0]
    qtbot.waitUntil(lambda: not panel.running, timeout=WAIT_MS)
    assert not result.cancelled and len(result.cells) == 2
    assert progress[-2:] == [1, 2], "the bar moved once per finished cell"
    assert panel.start_button.isEnabled() and not panel.cancel_button.isEnabled()

    for (i, _, _), cell in result.cells.items():
        alone = sweep.run_cell(TrainConfig(learning_rate=result.learning_rates[i], hidden_size=16, seed=0), 2500)
        assert (cell.samples_to_solve, cell.samples_seen, cell.accuracy, cell.loss, cell.diverged) == (
            alone.samples_to_solve, alone.samples_seen, alone.accuracy, alone.loss, alone.diverged)
    medians = result.median_samples_to_solve()
    assert result.learning_rates == (0.3, 0.5)
    assert np.isinf(medians[0, 0]) and np.isfinite(medians[1, 0])

    heatmap = panel.map
    drawn = heatmap.image.image  # (hidden, lr) log10 medians; the unsolved cell is transparent
    assert np.isnan(drawn[0, 0]) and drawn[0, 1] == pytest.approx(np.log10(medians[1, 0]))
    assert tuple(heatmap.unsolved.image[0, 0]) != (0, 0, 0, 0), "the unsolved cell is marked grey"
    assert heatmap._texts[0][0].textItem.toPlainText() == "✗"
    assert heatmap._texts[0][1].textItem.toPlainText() == short_count(medians[1, 0])
    assert f"median {medians[1, 0]:,.0f} samples to solve" in heatmap.cell_text(1, 0)
    assert "not solved" in heatmap.cell_text(0, 0)

    path = tmp_path / "sweep.csv"
    assert panel.export_csv(path) == 2
    with open(path, newline="", encoding="utf-8") as stream:
        rows = list(csv.DictReader(stream))
    assert [row["learning_rate"] for row in rows] == ["0.3", "0.5"]
    assert rows[1]["samples_to_solve"] == str(result.cells[(1, 0, 0)].samples_to_solve)


def test_cancel_mid_sweep_leaves_no_processes_and_no_thread(qtbot, panel):
    panel.learning_rates.setText("0.01, 0.02")  # too slow to solve: the cells would run for minutes
    panel.hidden_sizes.setText("4")
    panel.seeds.setValue(3)
    panel.max_samples.setValue(5_000_000)
    panel.workers.setValue(2)
    assert panel.start()
    qtbot.waitUntil(lambda: len(multiprocessing.active_children()) > 0, timeout=WAIT_MS)
    runner = panel.runner
    with qtbot.waitSignal(runner.finished, timeout=WAIT_MS), \
            qtbot.waitSignal(panel.sigFinished, timeout=WAIT_MS) as done:
        panel.cancel()
        assert "Cancelling" in panel.status.text()
    assert done.args[0].cancelled
    qtbot.waitUntil(lambda: not panel.running, timeout=WAIT_MS)
    assert multiprocessing.active_children() == []
    assert panel.start_button.isEnabled()
    assert "Cancelled" in panel.status.text()


def test_closing_the_window_stops_a_running_sweep(qtbot):
    window = open_window(qtbot, Trainer(TrainConfig()))
    sweep_panel = window.experiments.sweep
    assert window.select_tab("Sweep")
    sweep_panel.learning_rates.setText("0.01")
    sweep_panel.hidden_sizes.setText("4")
    sweep_panel.seeds.setValue(2)
    sweep_panel.max_samples.setValue(5_000_000)
    sweep_panel.workers.setValue(1)
    assert sweep_panel.start()
    qtbot.waitUntil(lambda: len(multiprocessing.active_children()) > 0, timeout=WAIT_MS)
    close_window(window)
    assert not sweep_panel.running
    assert multiprocessing.active_children() == []


def test_bad_grid_is_refused_with_a_reason(panel):
    panel.learning_rates.setText("0.1, fast")
    assert not panel.start()
    assert "“fast” is not a number" in panel.error.text() and panel.error.isVisible()
    assert not panel.running


def test_sweep_colour_bar_draws_a_label_at_both_ends(qtbot):
    from PySide6.QtGui import QPainter, QPicture

    from explorer.panels.sweep import SweepMap

    view = SweepMap()
    qtbot.addWidget(view)
    view.setFixedSize(640, 360)  # (a fixed size: no size-hint updates for the offscreen platform to warn about)
    result = sweep.SweepResult((0.1, 1.0), (4, 8), (0,), 10_000)
    result.cells[(0, 0, 0)] = sweep.CellResult(TrainConfig(), 300, 0.1, 300, 0.1, 1.0, 0.1, False)
    view.show_result(result)
    view.show()
    qtbot.waitExposed(view)
    axis = view.colorbar.axis
    picture = QPicture()
    painter = QPainter(picture)
    if axis.style["tickFont"] is not None:
        painter.setFont(axis.style["tickFont"])
    _, _, texts = axis.generateDrawSpecs(painter)  # what the bar's axis paints (it leaves out what does not fit)
    painter.end()
    assert [text for _, _, text in texts] == ["100", "1k", "10k"], "the budget (10,000 samples) labels the top end"
