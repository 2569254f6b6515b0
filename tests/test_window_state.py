"""The window shows one addition, one truth, live: the focus shared by every view, honest status (samples/s, solved,
no stale views), the safe input model (keys to the focused control, one change per drag, Ctrl+Z, refused values),
the engine in the status bar, and the start that teaches (hint, presets, restore defaults)."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QMessageBox

from core.session import load_session, save_session
from core.trainer import TrainConfig, Trainer
from explorer import engine_prep, settings
from explorer.main_window import PRESETS, MainWindow
from explorer.panels.curves import UNSOLVED_COLOR

pytestmark = pytest.mark.qt_log_ignore("This plugin does not support propagateSizeHints")

WAIT_MS = 60_000
PREPARE_MS = 300_000


@pytest.fixture
def window(qtbot):
    win = MainWindow(Trainer(TrainConfig(learning_rate=0.001)), restore_layout=False)
    qtbot.addWidget(win)
    win.add_views()
    win.resize(1280, 800)
    win.show()
    qtbot.waitExposed(win)
    yield win
    win.close()


def snapshot_after(qtbot, win: MainWindow, condition, timeout: int = WAIT_MS) -> object:
    qtbot.waitUntil(lambda: win.latest_snapshot is not None and condition(win.latest_snapshot), timeout=timeout)
    win.redraw_now()
    return win.latest_snapshot


# ---- one focus --------------------------------------------------------------------------------------------------
def test_the_focus_is_one_addition_and_one_step_shown_by_every_view(qtbot, window):
    step_through = window.view("Step through").widget
    assert window.select_tab("Step through")
    fields = step_through.addition
    fields.field_a.setText("100")
    fields.field_a.textEdited.emit("100")
    fields.field_b.setText("27")
    fields.field_b.textEdited.emit("27")
    assert window.controller.focus.operands == (100, 27)
    snapshot = snapshot_after(qtbot, window, lambda s: s.focus.operands == (100, 27))
    trace = snapshot.focus.trace
    assert "100 + 27 = 127" in window.heatmaps.title.text(), "the heatmaps trace the step-through's addition"
    np.testing.assert_array_equal(window.heatmaps.maps["h"].values, trace.hidden[1:].T)
    assert step_through.bits.decimals["sum"].text() == "= 127"
    assert (window.heatmaps.probe_a.value(), window.heatmaps.probe_b.value()) == (100, 27)

    window.controller.set_step(6)  # → in the step-through, or its buttons: the step is the focus's too
    assert step_through.step == 6 and step_through.backward.step_line.value() == 6
    assert window.heatmaps.maps["f"].step_mark.rect().center().x() == pytest.approx(6.0)
    assert "step 6" in window.heatmaps.title.text()

    window.heatmaps.probe_a.setValue(96)  # the heatmaps' own fields change the same focus
    window.heatmaps.probe_b.setValue(61)
    qtbot.waitUntil(lambda: window.controller.focus.operands == (96, 61), timeout=WAIT_MS)
    snapshot_after(qtbot, window, lambda s: s.focus.operands == (96, 61))
    assert step_through.bits.decimals["sum"].text() == "= 157" and step_through.step == 6

    assert window.select_tab("Error grid")  # a click there: the focus, shown step by step
    grid = window.view("Error grid").widget
    snapshot_after(qtbot, window, lambda s: "error_grid" in s.analyses and "error_grid" not in s.pending)
    assert grid.grid_view.focus_mark.isVisible()
    assert grid.grid_view.focus_mark.rect().center().toTuple() == pytest.approx((96.5, 61.5))
    grid.sigPairClicked.emit(12, 34)
    assert window.tabs.tabText(window.tabs.currentIndex()) == "Step through"
    snapshot_after(qtbot, window, lambda s: s.focus.operands == (12, 34))
    assert "12 + 34 = 46" in window.heatmaps.title.text()
    assert (fields.field_a.text(), fields.field_b.text()) == ("12", "34")

    step_through.carry.example_button.click()  # the carry finder's example moves it too, step and all
    a, b = window.controller.focus.operands
    snapshot_after(qtbot, window, lambda s: s.focus.operands == (a, b))
    assert step_through.bits.decimals["a"].text() == f"= {a}"
    assert window.heatmaps.maps["i"].step_mark.rect().center().x() == pytest.approx(window.controller.focus.step)


def test_the_focus_follows_training_weights(qtbot, window):
    window.request_play()
    snapshot = snapshot_after(qtbot, window, lambda s: s.samples_seen > 300)
    assert snapshot.focus.samples_seen == snapshot.samples_seen, "traced from the weights of the same moment"
    np.testing.assert_allclose(snapshot.focus.trace.probs, snapshot.probe.probs)
    window.request_pause()


# ---- honest, current state --------------------------------------------------------------------------------------
def test_samples_per_second_is_zero_while_paused_and_real_in_slow_motion(qtbot, window):
    assert window.rate_label.text() == "0 samples/s"
    window.speed.setValue(30)  # 10^(-2.8) of full speed: a few updates a second at most
    snapshot_after(qtbot, window, lambda s: s.speed < 0.01)  # the worker has it
    window.request_play()
    snapshot = snapshot_after(qtbot, window, lambda s: s.state == "training" and s.samples_per_second > 0)
    assert snapshot.samples_per_second < 50, "slow motion shows its real pace, not a chunk's"
    assert window.rate_label.text() == f"{snapshot.samples_per_second:.2g} samples/s" \
        or window.rate_label.text() == f"{snapshot.samples_per_second:,.0f} samples/s"
    window.request_pause()
    snapshot_after(qtbot, window, lambda s: s.state == "paused")
    assert window.rate_label.text() == "0 samples/s"


def test_solved_clears_when_the_model_unlearns_and_the_curves_mark_it(qtbot, tmp_path, solved_lstm_copy):
    win = MainWindow(solved_lstm_copy, restore_layout=False, pause_when_solved=False)
    qtbot.addWidget(win)
    try:
        win.auto_stop_action.setChecked(False)
        win.show()
        snapshot_after(qtbot, win, lambda s: s.solved_now)
        assert win.state_label.text().strip() == "paused · solved"
        assert "solved at" in win.curves.solved_label.text()
        win.request_config_change({"learning_rate": 2.0})  # far too high: it forgets
        win.request_play()
        snapshot = snapshot_after(qtbot, win, lambda s: not s.solved_now and s.solved_at is not None)
        win.request_pause()
        assert "solved" not in win.state_label.text()
        assert "no longer solved" in win.curves.solved_label.text()
        lost = [samples for samples, text in snapshot.events if text == "no longer solved"]
        assert lost, "the trainer recorded when it stopped being solved"
        marks = [line for plot, line in win.curves._event_lines if plot is win.curves.loss_plot
                 and line.label is not None and line.label.toPlainText() == "unsolved"]
        assert marks and marks[0].value() == lost[0]
        assert marks[0].pen.color().getRgb()[:3] == UNSOLVED_COLOR
    finally:
        win.close()


def test_opening_a_saved_point_of_the_same_run_adds_no_earlier_run(qtbot, window, tmp_path):
    window.request_play()
    snapshot_after(qtbot, window, lambda s: s.samples_seen >= 300)
    window.request_pause()
    snapshot_after(qtbot, window, lambda s: s.state == "paused")
    path = tmp_path / "run.npz"
    with qtbot.waitSignal(window.sessions.sigJobDone, timeout=WAIT_MS):
        window.sessions.save_to(path)
    window.request_play()
    snapshot_after(qtbot, window, lambda s: s.samples_seen >= load_session(path).samples_seen + 200)
    window.request_pause()
    assert window.sessions.open_file(path)
    snapshot_after(qtbot, window, lambda s: s.samples_seen == load_session(path).samples_seen)
    assert window.overlays.runs == [], "the run continues from its saved point: no faded duplicate"
    other = Trainer(TrainConfig(seed=5))
    other.step(200)
    save_session(tmp_path / "other.npz", other)
    assert window.sessions.open_file(tmp_path / "other.npz")
    qtbot.waitUntil(lambda: len(window.overlays.runs) == 1, timeout=WAIT_MS)


def test_a_changed_setting_is_named_in_the_run_legend(qtbot, window, monkeypatch):
    window.request_play()
    snapshot_after(qtbot, window, lambda s: s.samples_seen >= 200)
    assert window.request_config_change({"learning_rate": 0.01})
    snapshot_after(qtbot, window, lambda s: s.config.learning_rate == 0.01 and s.samples_seen >= 400)
    monkeypatch.setattr(QMessageBox, "question", lambda *args, **kwargs: QMessageBox.StandardButton.Yes)
    assert window.confirm_reset()
    qtbot.waitUntil(lambda: len(window.overlays.runs) == 1, timeout=WAIT_MS)
    (entry,) = window.overlays.legend_entries()
    assert entry.startswith("run 1: H16 lr 0.001 sgd seed 0, then lr 0.001→0.01 at ")


# ---- the safe input model -----------------------------------------------------------------------------------------
def test_right_goes_to_the_focused_control_not_to_step(qtbot, window):
    slider = window.controls.hidden
    slider.setFocus()
    qtbot.waitUntil(slider.hasFocus, timeout=WAIT_MS)
    qtbot.keyClick(slider, Qt.Key.Key_Right)
    assert slider.value() == 17, "the slider moved"
    qtbot.wait(200)
    assert window.latest_snapshot.samples_seen == 0, "and no training step was taken"
    for control in (window.controls.lr, window.speed, window.controls.batch, window.controls.optimizer):
        control.setFocus()
        qtbot.waitUntil(control.hasFocus, timeout=WAIT_MS)
        qtbot.keyClick(control, Qt.Key.Key_Right)
    qtbot.wait(200)
    assert window.latest_snapshot.samples_seen == 0
    window.controls.setFocus()  # (a panel, not an input): → is "train one step" again
    window.activateWindow()
    window.centralWidget().setFocus()
    qtbot.keyClick(window.centralWidget(), Qt.Key.Key_Right)
    snapshot_after(qtbot, window, lambda s: s.samples_seen == 1)


def test_ctrl_z_undoes_the_last_live_change(qtbot, window):
    assert not window.undo_action.isEnabled()
    window.controls.lr_edit.setText("0.05")
    window.controls.lr_edit.editingFinished.emit()
    snapshot_after(qtbot, window, lambda s: s.config.learning_rate == 0.05)
    assert window.undo_action.isEnabled() and "0.05 → 0.001" in window.undo_action.text()
    window.centralWidget().setFocus()
    qtbot.keyClick(window.centralWidget(), Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    snapshot_after(qtbot, window, lambda s: s.config.learning_rate == 0.001)
    assert window.controls.lr_edit.text() == "0.001", "the control shows the undone value"
    assert not window.undo_action.isEnabled()


@pytest.mark.parametrize(("field", "typed", "says"), [
    ("n_bits", "100", "bits must be a whole number from 2 to"),
    ("seed", "-5", "seed must be a whole number from 0"),
    ("batch", "0", "batch size must be a whole number from 1"),
])
def test_an_out_of_range_value_is_refused_with_a_message(qtbot, window, field, typed, says):
    box = getattr(window.controls, field)
    before = box.value()
    box.setFocus()
    qtbot.waitUntil(box.hasFocus, timeout=WAIT_MS)
    box.lineEdit().selectAll()
    qtbot.keyClicks(box, typed)
    assert box.text().endswith(typed), "typed as is, not silently changed on the way"
    with qtbot.waitSignal(window.controls.sigRefused, timeout=WAIT_MS) as refused:
        qtbot.keyClick(box, Qt.Key.Key_Return)
    assert says in refused.args[0] and typed in refused.args[0]
    assert box.value() == before, "nothing else applied in its place"
    assert not window.controls.refused.isHidden() and says in window.controls.refused.text().lower()
    assert "Refused" in window.statusBar().currentMessage()


def test_a_learning_rate_outside_the_sliders_range_is_refused(qtbot, window):
    controls = window.controls
    controls.lr_edit.setText("1e-9")
    controls.lr_edit.editingFinished.emit()
    assert not controls.lr_error.isHidden() and "outside 0.0001 … 10" in controls.lr_error.text()
    window.controller.refresh()
    before = window.latest_snapshot
    qtbot.waitUntil(lambda: window.latest_snapshot is not before, timeout=WAIT_MS)
    assert window.latest_snapshot.config.learning_rate == 0.001


def test_a_change_the_trainer_would_refuse_is_refused_before_it_is_sent(qtbot, window):
    refused = []
    window.controller.sigRefused.connect(refused.append)
    assert not window.request_config_change({"hidden_size": 0})
    assert refused and "hidden size" in refused[0]
    assert not window.request_config_change({"seed": 3})
    assert "reset" in refused[-1]


# ---- the engine ---------------------------------------------------------------------------------------------------
def test_the_status_bar_names_the_engine_and_the_preparation(qtbot, window, monkeypatch):
    assert window.engine_label.text() == "engine NumPy"
    monkeypatch.setattr(engine_prep, "numba_installed", lambda: True)
    window.engine.start = lambda code=None: None  # prepared by hand below, not by a real process
    window.set_engine("auto")
    assert window.engine_label.text() == "engine NumPy · preparing the compiled engine (first run only)"
    window.engine.sigFailed.emit("no compiler here")
    assert window.engine_label.text() == "engine NumPy · compiled engine unavailable"
    assert "no compiler here" in window.engine_label.toolTip()
    checked = [action.data() for action in window.engine_actions.actions() if action.isChecked()]
    assert checked == ["auto"]


def test_the_compiled_engine_is_prepared_in_another_process_and_then_trains(qtbot):
    pytest.importorskip("numba")
    from core import kernels

    if not kernels.AVAILABLE:
        pytest.skip(kernels.UNAVAILABLE_REASON)
    # (no pause when solved: this run solves at 80,300 samples, and a pause there would end the 1,000 samples
    # asked of the compiled engine below, however the preparation's time falls)
    win = MainWindow(Trainer(TrainConfig(learning_rate=0.001)), restore_layout=False, engine="auto",
                     pause_when_solved=False)
    qtbot.addWidget(win)
    try:
        win.show()
        assert win.engine.running, "a process prepares the kernels; the window does not wait for it"
        assert "preparing the compiled engine" in win.engine_label.text()
        win.request_play()
        snapshot_after(qtbot, win, lambda s: s.samples_seen > 0 and s.engine == "numpy")  # NumPy meanwhile
        # (the other process loads the kernels from the cache, or compiles them: minutes on a busy machine)
        snapshot_after(qtbot, win, lambda s: s.engine == "compiled", timeout=PREPARE_MS)
        qtbot.waitUntil(lambda: win.engine_label.text() == "engine compiled", timeout=WAIT_MS)
        seen = win.latest_snapshot.samples_seen
        snapshot_after(qtbot, win, lambda s: s.samples_seen > seen + 1000)
        win.request_pause()
    finally:
        win.close()


# ---- a start that teaches -----------------------------------------------------------------------------------------
def test_the_first_launch_hint_shows_once(qtbot):
    settings.store().remove(settings.HINT_SEEN)
    first = MainWindow(Trainer(), restore_layout=False)
    qtbot.addWidget(first)
    try:
        first.show()
        assert first.hint.isVisible() and "Space" in first.hint_text.text() and "Step through" in first.hint_text.text()
        first.request_play()  # pressing Space (Play) is what it asked for: it goes
        assert not first.hint.isVisible()
        first.request_pause()
    finally:
        first.close()
    second = MainWindow(Trainer(), restore_layout=False)
    qtbot.addWidget(second)
    try:
        second.show()
        assert not second.hint.isVisible(), "seen once: not again"
    finally:
        second.close()
        settings.store().remove(settings.HINT_SEEN)


def test_presets_start_again_with_their_settings(qtbot, window, monkeypatch):
    names = [action.text() for action in window.presets_menu.actions() if not action.isSeparator()]
    assert names == ["Notebook defaults", "Learning rate too high", "One unit", "Plain RNN", "Adam, batch 16",
                     "Restore defaults"]
    for name, _what, config in PRESETS[1:]:
        window.apply_preset(name, _what, config)  # nothing trained: no question
        snapshot = snapshot_after(qtbot, window, lambda s, c=config: s.config == c)
        assert snapshot.samples_seen == 0
        assert name in window.statusBar().currentMessage()
        qtbot.waitUntil(lambda c=config: window.controls.reset_config() == c, timeout=WAIT_MS)
    snapshot_after(qtbot, window, lambda s: s.config.optimizer == "adam")
    window.step_action.trigger()
    snapshot_after(qtbot, window, lambda s: s.samples_seen == 16)
    asked = []
    monkeypatch.setattr(QMessageBox, "question", lambda *args, **kwargs: asked.append(args) or
                        QMessageBox.StandardButton.Yes)
    window.speed.setValue(10)
    window.auto_stop_action.setChecked(False)
    assert window.restore_defaults()
    assert asked, "training would be lost: it asks first"
    snapshot_after(qtbot, window, lambda s: s.config == TrainConfig())
    assert window.speed.value() == 100 and window.auto_stop_action.isChecked() and window.hint.isVisible()
