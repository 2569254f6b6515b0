"""Experiments in the window, offscreen: pause when solved (with the trainer's own samples- and time-to-solve),
earlier runs kept as faded curves, and the plain RNN as a model kind. The sweep tab: tests/test_sweep_panel.py."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from core.trainer import TrainConfig, Trainer
from explorer import settings as stored
from explorer.main_window import MainWindow
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
        window.add_views()
    window.show()
    qtbot.waitUntil(lambda: window.latest_snapshot is not None, timeout=WAIT_MS)
    return window


def close_window(window: MainWindow) -> None:
    window.close()
    assert window.stop_training_thread()


@pytest.fixture
def settings():
    """The app's settings, with the auto-stop choice restored afterwards (other tests expect the default)."""
    store = stored.store()
    store.remove(stored.PAUSE_WHEN_SOLVED)
    yield store
    store.remove(stored.PAUSE_WHEN_SOLVED)


# ---- pause when solved ----------------------------------------------------------------------------------------
def test_training_pauses_when_solved_and_reports_the_trainers_count(qtbot, settings, learning_lstm_copy):
    start = learning_lstm_copy  # most sums right already: what is tested is the pause, not the learning
    started_at = start.samples_seen
    window = open_window(qtbot, start)
    try:
        assert window.auto_stop_action.isChecked(), "on by default"
        assert window.auto_stop_action in window.training_menu.actions()
        window.request_play()
        qtbot.waitUntil(lambda: window.latest_snapshot.state == "solved", timeout=WAIT_MS)
        trainer = window.worker.trainer  # paused now: the worker no longer touches it
        solved_at = trainer.solved_at
        assert solved_at is not None and solved_at[0] > started_at
        assert trainer.samples_seen == solved_at[0], "paused at the end of the chunk that solved it"
        assert trainer.exhaustive_accuracy() == 1.0
        assert window.latest_snapshot.solved_at == solved_at
        label = window.curves.solved_label
        qtbot.waitUntil(label.isVisible, timeout=WAIT_MS)
        assert label.text() == f"solved at {solved_at[0]:,} ({solved_at[1]:.1f} s)"
        assert f"solved after {solved_at[0]:,} samples in {solved_at[1]:.1f} s of training" in label.toolTip()
        qtbot.waitUntil(lambda: f"{solved_at[0]:,} samples" in window.statusBar().currentMessage(), timeout=WAIT_MS)
        assert window.play_action.text() == "Play"
    finally:
        close_window(window)


def test_auto_stop_off_trains_on_past_solved_and_is_remembered(qtbot, settings, learning_lstm_copy):
    window = open_window(qtbot, learning_lstm_copy)
    try:
        action = window.auto_stop_action
        action.setChecked(False)
        assert settings.value(stored.PAUSE_WHEN_SOLVED) in (False, "false")
        qtbot.waitUntil(lambda: not window.worker.pause_when_solved, timeout=WAIT_MS)
        window.request_play()
        qtbot.waitUntil(lambda: window.latest_snapshot.solved_at is not None, timeout=WAIT_MS)
        solved_samples = window.latest_snapshot.solved_at[0]
        qtbot.waitUntil(lambda: window.latest_snapshot.samples_seen > solved_samples, timeout=WAIT_MS)
        assert window.latest_snapshot.state == "training"
        qtbot.waitUntil(lambda: window.curves.solved_label.isVisible(), timeout=WAIT_MS)
        window.request_pause()
    finally:
        close_window(window)
    again = open_window(qtbot, Trainer(TrainConfig()))
    try:
        assert not again.auto_stop_action.isChecked(), "the choice is remembered"
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
        overlays = window.overlays
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
        assert window.clear_runs_action.isEnabled()

        overlays.clear_button.click()
        assert overlays.runs == [] and overlays.legend_entries() == []
        assert loss_item not in window.curves.loss_plot.listDataItems()
        assert accuracy_item not in window.curves.accuracy_plot.listDataItems()
        assert overlays.strip.isHidden()
        assert not window.clear_runs_action.isEnabled()
    finally:
        close_window(window)


def test_at_most_eight_runs_are_kept_and_the_oldest_go_first(qtbot):
    window = open_window(qtbot, Trainer(TrainConfig()))
    try:
        overlays = window.overlays
        history = np.array([[100.0, 0.7, 0.5, 0.0], [200.0, 0.6, 0.4, 0.5]])
        for seed in range(MAX_RUNS + 2):
            overlays.add_run(TrainConfig(seed=seed).describe(), history, (200, 0.1) if seed % 2 else None, 200)
        assert len(overlays.runs) == MAX_RUNS
        assert [run.number for run in overlays.runs] == list(range(3, MAX_RUNS + 3))
        newest = f"run {MAX_RUNS + 2}: {TrainConfig(seed=9).describe()} · solved at 200 (0.1 s)"
        assert overlays.legend_entries()[-1] == newest
        assert len(window.curves.loss_plot.listDataItems()) == 1 + MAX_RUNS  # the current run's loss
        assert len(overlays.solved_marks.data) == sum(1 for run in overlays.runs if run.solved_at)
        window.clear_runs_action.trigger()
        assert overlays.runs == [] and len(window.curves.loss_plot.listDataItems()) == 1
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
        for index in range(window.tabs.count()):  # every analysis on the RNN's weights, each while it is shown
            window.tabs.setCurrentIndex(index)
            host = window.current_host()
            qtbot.waitUntil(lambda host=host: not host.computing(window.latest_snapshot), timeout=WAIT_MS)
        assert window.select_tab("Saturation")  # a view draws while on screen, and catches up when shown
        qtbot.waitUntil(lambda: window.view("Saturation").widget.title.text().startswith(
            "Gate saturation: this model has no gates"), timeout=WAIT_MS)
        window.request_reset(dataclasses.replace(window.latest_snapshot.config, model="lstm"))  # back to gates
        qtbot.waitUntil(lambda: heatmaps.title.text().startswith("Inside the LSTM"), timeout=WAIT_MS)
        assert all(heatmap.plot.isVisible() for heatmap in heatmaps.maps.values())
        assert heatmaps.cell_range.isVisible()
        qtbot.waitUntil(lambda: gate_row.size().height() > 50, timeout=WAIT_MS)  # the gate row has its room again
        assert errors == []
    finally:
        close_window(window)

