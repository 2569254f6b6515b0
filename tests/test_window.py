"""The main window, offscreen: building, training from the toolbar, controls reaching the worker, reset
confirmation, tabs, the screenshot command, the desktop entry and the no-display message."""

from __future__ import annotations

import html
import re

import numpy as np
import pyqtgraph as pg
import pytest
from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QImage
from PySide6.QtWidgets import QLabel, QMessageBox

import core
from core.trainer import TrainConfig, Trainer
from explorer import app, desktop, display
from explorer.main_window import MainWindow
from explorer.panels.controls import lr_to_position, position_to_lr
from explorer.panels.heatmaps import HEATMAPS, WRONG_COLOR, bit_rows_html
from explorer.views import TabView

WAIT_MS = 30_000


@pytest.fixture
def window(qtbot):
    win = MainWindow(Trainer(TrainConfig(learning_rate=0.001)), restore_layout=False)
    qtbot.addWidget(win)
    win.show()
    qtbot.waitUntil(lambda: win.latest_snapshot is not None, timeout=WAIT_MS)
    yield win
    win.close()
    assert win.stop_training_thread(), "closing the window stops the training thread"


def samples_shown(win: MainWindow) -> int:
    return int(win.samples_label.text().split()[-1].replace(",", ""))


def test_window_builds_with_title_panels_and_status(qtbot, window):
    assert window.windowTitle() == "LSTM Adder Explorer — Untitled"
    window.set_session_name("run-1")
    assert window.windowTitle() == "LSTM Adder Explorer — run-1"
    assert not window.windowIcon().isNull()
    qtbot.waitUntil(lambda: window.heatmaps.maps["f"].values.shape == (16, 8), timeout=WAIT_MS)
    assert window.heatmaps.maps["c"].values.shape == (16, 8)
    assert window.curves.loss_plot.getAxis("bottom").labelText == "samples seen"
    assert window.heatmaps.maps["c"].plot.getAxis("bottom").labelText == "bit position (LSB → MSB)"  # (under both rows)
    assert "45" in window.heatmaps.bit_rows.text and "67" in window.heatmaps.bit_rows.text
    assert window.state_label.text().strip() == "paused"
    assert samples_shown(window) == 0


def test_play_action_trains_and_space_pauses(qtbot, window):
    window.play_action.trigger()
    qtbot.waitUntil(lambda: samples_shown(window) > 0, timeout=WAIT_MS)
    qtbot.waitUntil(lambda: window.state_label.text().strip() == "training", timeout=WAIT_MS)
    assert window.play_action.text() == "Pause"
    assert "accuracy" in window.accuracy_label.text() and "samples/s" in window.rate_label.text()
    drawn = []
    window.sigSnapshot.connect(drawn.append)
    qtbot.waitUntil(lambda: len(drawn) >= 3, timeout=WAIT_MS)  # redraws keep coming while it trains
    assert drawn[-1].samples_seen > drawn[0].samples_seen
    qtbot.keyClick(window, Qt.Key.Key_Space)
    qtbot.waitUntil(lambda: window.state_label.text().strip() == "paused", timeout=WAIT_MS)
    assert window.play_action.text() == "Play"


def test_step_trains_one_sample(qtbot, window):
    window.step_action.trigger()
    qtbot.waitUntil(lambda: samples_shown(window) == 1, timeout=WAIT_MS)
    qtbot.keyClick(window, Qt.Key.Key_Right)
    qtbot.waitUntil(lambda: samples_shown(window) == 2, timeout=WAIT_MS)


def test_typed_learning_rate_reaches_the_worker_and_bad_text_is_refused(qtbot, window):
    controls = window.controls
    controls.lr_edit.setText("0.25")
    controls.lr_edit.editingFinished.emit()
    qtbot.waitUntil(lambda: window.worker.trainer.config.learning_rate == 0.25, timeout=WAIT_MS)
    assert controls.lr.value() == lr_to_position(0.25)
    controls.lr_edit.setText("fast")
    controls.lr_edit.editingFinished.emit()
    assert not controls.lr_error.isHidden() and "not a number" in controls.lr_error.text()
    window.controller.refresh()  # a round trip through the worker: nothing else was queued
    before = window.latest_snapshot
    qtbot.waitUntil(lambda: window.latest_snapshot is not before, timeout=WAIT_MS)
    assert window.worker.trainer.config.learning_rate == 0.25


def test_learning_rate_slider_is_logarithmic_from_1e_4_to_10():
    assert position_to_lr(0) == pytest.approx(1e-4)
    assert position_to_lr(500) == pytest.approx(10.0)
    assert position_to_lr(lr_to_position(0.1)) == pytest.approx(0.1)
    assert position_to_lr(250) == pytest.approx(10 ** -1.5, rel=1e-2)


def test_slider_drag_is_coalesced_and_reaches_the_running_trainer(qtbot, window):
    window.play_action.trigger()
    qtbot.waitUntil(lambda: samples_shown(window) > 0, timeout=WAIT_MS)
    slider = window.controls.lr
    slider.setSliderDown(True)
    for k in range(1000):  # 1,000 rapid control changes, as a drag would make
        slider.setValue(1 + (k * 7) % 400)
    slider.setValue(lr_to_position(0.02))
    slider.setSliderDown(False)  # released
    qtbot.waitUntil(lambda: window.latest_snapshot.config.learning_rate == 0.02, timeout=WAIT_MS)
    changes = [text for _, text in window.latest_snapshot.events if text.startswith("learning rate")]
    assert changes == ["learning rate 0.001 -> 0.02"], "the drag went to the worker as one change"
    assert window.worker.trainer.samples_seen > 0 and window.state_label.text().strip() == "training"


def test_hidden_size_applies_on_release_once_and_says_what_a_shrink_drops(qtbot, window):
    window.play_action.trigger()
    qtbot.waitUntil(lambda: samples_shown(window) > 0, timeout=WAIT_MS)
    controls = window.controls
    slider = controls.hidden
    slider.setSliderDown(True)  # a drag from 16 down to 1 and up to 24 ...
    for value in (*range(16, 0, -1), *range(1, 25)):
        slider.setValue(value)
        if value == 8:
            assert "drops units 8–15" in controls.hidden_note.text() and not controls.hidden_note.isHidden()
    qtbot.wait(300)
    assert window.latest_snapshot.config.hidden_size == 16, "nothing applied while the slider is held"
    slider.setSliderDown(False)  # ... applies one value, once, on release
    qtbot.waitUntil(lambda: window.worker.trainer.config.hidden_size == 24, timeout=WAIT_MS)
    qtbot.waitUntil(lambda: window.latest_snapshot.config.hidden_size == 24, timeout=WAIT_MS)
    resizes = [text for _, text in window.latest_snapshot.events if text.startswith("hidden size")]
    assert resizes == ["hidden size 16 -> 24"], "no value the drag passed was applied"
    assert controls.hidden_note.isHidden()
    slider.setFocus()  # keys: one change after a short pause, not one per key press
    for _ in range(4):
        qtbot.keyClick(slider, Qt.Key.Key_Left)
    qtbot.waitUntil(lambda: window.latest_snapshot.config.hidden_size == 20, timeout=WAIT_MS)
    resizes = [text for _, text in window.latest_snapshot.events if text.startswith("hidden size")]
    assert resizes == ["hidden size 16 -> 24", "hidden size 24 -> 20"]


def test_optimizer_batch_and_clip_controls_reach_the_worker(qtbot, window):
    controls = window.controls
    controls.optimizer.setCurrentIndex(controls.optimizer.findData("adam"))
    controls.batch.setValue(8)
    controls.clip_on.setChecked(True)
    controls.clip.setValue(2.5)
    qtbot.waitUntil(lambda: window.worker.trainer.config.optimizer == "adam"
                    and window.worker.trainer.config.batch_size == 8
                    and window.worker.trainer.config.clip_norm == 2.5, timeout=WAIT_MS)


def test_reset_asks_when_there_is_progress_and_respects_the_answer(qtbot, window, monkeypatch):
    asked = []

    def answer_with(choice):
        def question(*args, **kwargs):
            asked.append(args[2] if len(args) > 2 else "")
            return choice
        return question

    window.step_action.trigger()
    window.step_action.trigger()
    qtbot.waitUntil(lambda: samples_shown(window) == 2, timeout=WAIT_MS)
    monkeypatch.setattr(QMessageBox, "question", answer_with(QMessageBox.StandardButton.No))
    assert window.confirm_reset() is False
    assert asked and "2 samples" in asked[0]
    window.controller.refresh()
    before = window.latest_snapshot
    qtbot.waitUntil(lambda: window.latest_snapshot is not before, timeout=WAIT_MS)
    assert window.latest_snapshot.samples_seen == 2, "No keeps the training"

    window.controls.seed.setValue(7)
    assert "seed 0 → 7" in window.controls.reset_note.text()
    monkeypatch.setattr(QMessageBox, "question", answer_with(QMessageBox.StandardButton.Yes))
    window.reset_action.trigger()
    qtbot.waitUntil(lambda: window.latest_snapshot.config.seed == 7, timeout=WAIT_MS)
    assert window.latest_snapshot.samples_seen == 0
    assert window.latest_snapshot.config.learning_rate == 0.001, "live settings shown are kept"
    qtbot.waitUntil(lambda: "Press Reset" not in window.controls.reset_note.text(), timeout=WAIT_MS)


def test_reset_without_progress_does_not_ask(qtbot, window, monkeypatch):
    def question(*args, **kwargs):
        raise AssertionError("nothing to lose: no question")

    monkeypatch.setattr(QMessageBox, "question", question)
    window.controls.n_bits.setValue(6)
    assert window.confirm_reset()
    qtbot.waitUntil(lambda: window.latest_snapshot.config.n_bits == 6, timeout=WAIT_MS)
    qtbot.waitUntil(lambda: window.heatmaps.maps["i"].values.shape == (16, 6), timeout=WAIT_MS)
    assert window.latest_snapshot.probe_operands == (45 % 32, 67 % 32)
    assert window.controller.focus.operands == (45 % 32, 67 % 32), "the focus follows the wrapped operands"


class CountingView(QLabel):
    def __init__(self) -> None:
        super().__init__("a view")
        self.seen = []

    def update_from(self, snapshot) -> None:
        self.seen.append(snapshot.samples_seen)


def counting(title: str, view: CountingView):
    """A view factory as the registry lists them: one function of the context."""
    return lambda context: TabView(title, view, f"{title} tooltip")


def test_a_new_view_is_one_function_and_gets_snapshots_only_while_visible(qtbot, window):
    first, second = CountingView(), CountingView()
    assert window.tabs_dock.isHidden()
    assert window.add_views((counting("Error grid", first), counting("Saturation", second))) == ["Error grid",
                                                                                                   "Saturation"]
    assert not window.tabs_dock.isHidden()
    assert window.tabs.tabToolTip(0) == "Error grid tooltip"
    assert first.seen, "the visible tab is filled at once"
    assert second.seen == []
    assert window.select_tab("satur")
    assert second.seen, "a tab becoming visible gets the latest snapshot"
    assert not window.select_tab("no such tab")
    shown_first = len(first.seen)
    window.step_action.trigger()
    qtbot.waitUntil(lambda: second.seen[-1] == 1, timeout=WAIT_MS)
    assert len(first.seen) == shown_first, "hidden tabs are not redrawn"


def test_heatmap_marks_the_step_and_the_carry_units_beside_their_rows(window):
    heatmaps = window.heatmaps
    assert all(m.step_mark.isVisible() for m in heatmaps.maps.values()), "the focus step is always marked"
    heatmaps.highlight_step(3)
    assert heatmaps.maps["o"].step_mark.rect().center().x() == pytest.approx(3.0)
    assert "#ffd8d8" in heatmaps.bit_rows.text
    heatmaps.highlight_units([2, 5])
    marks = heatmaps.maps["c"].unit_marks
    assert marks.isVisible()
    box = marks.path().boundingRect()  # in data coordinates: x is the bit position, y the unit
    assert box.right() <= -0.5, "beside the rows, left of the image: never over the values"
    assert box.top() < 2 < 5 < box.bottom() and box.height() < 5
    assert heatmaps.maps["c"].plot.getViewBox().viewRange()[0][0] < box.left(), "inside the plot's view"
    heatmaps.highlight_step(None)
    heatmaps.highlight_units([])
    assert not any(m.step_mark.isVisible() for m in heatmaps.maps.values())
    assert not marks.isVisible()


def test_unit_axes_have_whole_unit_ticks(qtbot):
    for hidden in (1, 3, 16, 128):
        win = MainWindow(Trainer(TrainConfig(hidden_size=hidden)), restore_layout=False)
        qtbot.addWidget(win)
        try:
            axis = win.heatmaps.maps["h"].plot.getAxis("left")
            ticks = [value for value, _ in axis._tickLevels[0]]
            assert ticks and all(float(t).is_integer() and 0 <= t < hidden for t in ticks)
            assert axis.autoSIPrefixScale == 1.0 and "x0" not in axis.labelString()
        finally:
            win.close()


def test_about_shows_the_version(window, monkeypatch):
    shown = []
    monkeypatch.setattr(QMessageBox, "about", lambda parent, title, text: shown.append(text))
    window.show_about()
    assert core.__version__ in shown[0]


def test_layout_is_remembered(qtbot, isolated_qsettings):
    first = MainWindow(Trainer(TrainConfig()), restore_layout=False)
    qtbot.addWidget(first)
    first.resize(700, 520)  # within the offscreen screen (800x600): restoring clamps to the screen
    first.controls_dock.hide()
    first.close()
    assert first.stop_training_thread()
    second = MainWindow(Trainer(TrainConfig()))
    qtbot.addWidget(second)
    try:
        assert (second.size().width(), second.size().height()) == (700, 520)
        assert second.controls_dock.isHidden()
    finally:
        second.close()
        assert second.stop_training_thread()


def test_screenshot_command_writes_a_png_of_the_asked_size(qtbot, tmp_path, capsys):
    path = tmp_path / "shots" / "window.png"
    assert app.run(["--screenshot", str(path), "--train", "40", "--size", "1000x700"]) == 0
    image = QImage(str(path))
    assert (image.width(), image.height()) == (1000, 700)
    colours = {image.pixel(x, y) for x in range(0, 1000, 37) for y in range(0, 700, 23)}
    assert len(colours) > 20, "the picture has content, not a blank window"
    assert "40 samples trained" in capsys.readouterr().out


def test_window_options_are_checked(capsys):
    assert app.run(["--train", "10"]) == 2
    assert "--train needs --screenshot" in capsys.readouterr().err
    assert app.run(["--size", "big"]) == 2
    assert app.run(["--version"]) == 0
    assert core.__version__ in capsys.readouterr().out


def test_no_display_gives_one_clear_message(monkeypatch, capsys):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    monkeypatch.setenv("QT_QPA_PLATFORM", "xcb")
    assert app.run([]) == 1
    message = capsys.readouterr().err
    assert "no display" in message
    assert "libxcb-cursor0" in message and "--screenshot" in message and "QT_QPA_PLATFORM=offscreen" in message


def test_missing_library_is_named(monkeypatch):
    monkeypatch.setenv("DISPLAY", ":0")
    monkeypatch.setenv("QT_QPA_PLATFORM", "xcb")
    monkeypatch.setattr(display, "XCB_LIBRARIES", {"libnot-installed-here.so.7": "libnot-installed-here7"})
    problem = display.display_problem()
    assert problem is not None and "libnot-installed-here7" in problem


def test_desktop_entry_install_and_uninstall(monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    assert app.run(["--install-desktop"]) == 0
    entry = tmp_path / "applications" / "lstm-explorer.desktop"
    icon = tmp_path / "icons" / "hicolor" / "scalable" / "apps" / "lstm-explorer.svg"
    text = entry.read_text()
    assert "Name=LSTM Adder Explorer" in text and "Icon=lstm-explorer" in text and "\nExec=" in text
    assert icon.read_bytes().startswith(b"<svg")
    assert app.run(["--uninstall-desktop"]) == 0
    assert not entry.exists() and not icon.exists()
    assert app.run(["--uninstall-desktop"]) == 0
    assert "nothing to remove" in capsys.readouterr().out


def test_desktop_exec_quotes_paths_with_spaces():
    assert desktop._quote("/opt/my apps/lstm-explorer") == '"/opt/my apps/lstm-explorer"'
    assert desktop._quote("/usr/bin/lstm-explorer") == "/usr/bin/lstm-explorer"


def test_unit_scale_request_reaches_the_snapshot(qtbot, window):
    mask = np.ones(16)
    mask[:8] = 0.0
    window.controller.set_unit_scale(mask)
    qtbot.waitUntil(lambda: window.latest_snapshot.unit_scale is not None, timeout=WAIT_MS)
    probe = window.latest_snapshot.probe
    assert np.all(probe.hidden[1:, :8] == 0.0), "knocked-out units are silent in the probe"


def test_curves_smoothing_log_scale_and_hover_readout(qtbot, window):
    window.request_play()
    qtbot.waitUntil(lambda: len(window.latest_snapshot.history) >= 4, timeout=WAIT_MS)  # a point per 100 samples
    window.request_pause()
    window.request_config_change({"learning_rate": 0.002})
    qtbot.waitUntil(lambda: window.latest_snapshot.state == "paused"
                    and window.latest_snapshot.config.learning_rate == 0.002, timeout=WAIT_MS)
    window.redraw_now()
    curves = window.curves
    raw = curves.loss_curve.yData.copy()
    np.testing.assert_allclose(raw, window.latest_snapshot.history[:, 1])
    curves.smoothing.setValue(3)
    smoothed = curves.loss_curve.yData
    assert smoothed[-1] == pytest.approx(raw[-3:].mean())
    curves.log_y.setChecked(True)  # no warning (log of zero) and the view follows in decades
    assert curves.loss_plot.getAxis("left").logMode
    events = window.latest_snapshot.events  # the learning-rate change, and the story's (first sum right...)
    assert len(curves._event_lines) == 3 * len(events), "one marker per plot for each event"
    assert sum(text.startswith("learning rate") for _, text in events) == 1
    assert "loss per addition" in curves.loss_plot.getAxis("left").labelText
    box = curves.loss_plot.getViewBox()
    curves.view.scene().sigMouseMoved.emit(box.sceneBoundingRect().center())
    assert curves.readout.text().startswith("at ") and "loss" in curves.readout.text()


def test_heatmap_hover_reads_the_value_under_the_pointer(window):
    heatmaps = window.heatmaps
    gate = heatmaps.maps["f"]
    box = gate.plot.getViewBox()
    position = box.mapViewToScene(QPointF(2.0, 5.0))  # bit 2, unit 5
    heatmaps.view.scene().sigMouseMoved.emit(position)
    assert "unit 5, bit 2" in heatmaps.readout
    assert f"{gate.values[5, 2]:+.4f}" in heatmaps.readout
    np.testing.assert_allclose(gate.values, window.latest_snapshot.probe.forget_gate.T)


def test_screenshot_of_a_missing_tab_is_refused(tmp_path, capsys):
    assert app.run(["--screenshot", str(tmp_path / "x.png"), "--tab", "no such view"]) == 2
    assert "no tab called 'no such view'" in capsys.readouterr().err
    assert not (tmp_path / "x.png").exists()


def test_a_view_in_a_hidden_dock_is_not_drawn_but_catches_up_when_shown(qtbot, window):
    view = CountingView()
    window.add_views((counting("Counting", view),))
    assert view.seen and set(view.seen) == {0}, "the visible tab is filled at once"
    shown = len(view.seen)
    drawn = []
    window.sigSnapshot.connect(drawn.append)
    window.tabs_dock.hide()
    window.step_action.trigger()
    qtbot.waitUntil(lambda: bool(drawn) and drawn[-1].samples_seen == 1, timeout=WAIT_MS)  # a frame was drawn
    assert len(view.seen) == shown, "the dock is hidden: its view is not redrawn"
    window.tabs_dock.show()
    assert view.seen[-1] == 1, "shown again: the latest snapshot at once"


def test_the_latest_snapshot_is_drawn_when_training_stops(qtbot, window):
    drawn = []
    window.sigSnapshot.connect(drawn.append)
    window.play_action.trigger()
    qtbot.waitUntil(lambda: len(drawn) >= 3, timeout=WAIT_MS)
    window.request_pause()
    qtbot.waitUntil(lambda: window.latest_snapshot.state == "paused", timeout=WAIT_MS)
    # Frames are paced while training, but the last snapshot is never left undrawn.
    qtbot.waitUntil(lambda: drawn[-1] is window.latest_snapshot, timeout=WAIT_MS)
    assert samples_shown(window) == window.latest_snapshot.samples_seen
    np.testing.assert_array_equal(window.heatmaps.maps["h"].values, window.latest_snapshot.probe.hidden[1:].T)


def test_heatmap_images_show_each_value_in_its_colour(window):
    heatmaps = window.heatmaps
    for name, (_title, colormap, levels) in HEATMAPS.items():
        heatmap = heatmaps.maps[name]
        units, steps = heatmap.values.shape
        image = heatmap.image.pixmap().toImage()
        assert (image.width(), image.height()) == (steps, units)  # one pixel per unit and bit position
        box, drawn = heatmap.plot.getViewBox(), heatmap.image.sceneBoundingRect()  # pixel (u, t): unit u, bit t
        expected = QRectF(box.mapViewToScene(QPointF(-0.5, -0.5)), box.mapViewToScene(QPointF(steps - 0.5,
                                                                                           units - 0.5)))
        for corner in ("topLeft", "bottomRight"):
            expected_point = getattr(expected.normalized(), corner)()
            assert getattr(drawn, corner)().toTuple() == pytest.approx(expected_point.toTuple()), name
        lut = pg.colormap.get(colormap).getLookupTable(nPts=256, alpha=False)
        low, high = levels
        for unit, step in ((0, 0), (units // 2, steps // 2), (units - 1, steps - 1)):
            index = int(np.clip((heatmap.values[unit, step] - low) * 256 / (high - low), 0, 255))
            assert QColor(image.pixel(step, unit)).getRgb()[:3] == tuple(int(c) for c in lut[index]), name
    cell = heatmaps.maps["c"]
    heatmaps.cell_range.setValue(0.25)  # a narrower colour range: values beyond it take the end colours
    image = cell.image.pixmap().toImage()
    lut = pg.colormap.get("CET-D1").getLookupTable(nPts=256, alpha=False)
    unit, step = np.unravel_index(np.argmax(cell.values), cell.values.shape)
    assert cell.values[unit, step] > 0.25
    assert QColor(image.pixel(int(step), int(unit))).getRgb()[:3] == tuple(int(c) for c in lut[255])
    assert tuple(cell.colorbar.levels()) == (-0.25, 0.25)
    major, minor = cell.colorbar.getAxis("right")._tickLevels  # (what setTicks stored; pyqtgraph has no getter)
    assert major == [(-0.25, "-0.25"), (0.0, "0"), (0.25, "0.25")] and minor == []  # the ends and the middle


def test_output_bars_and_true_bits_follow_the_probe(window):
    heatmaps, trace = window.heatmaps, window.latest_snapshot.probe
    np.testing.assert_allclose([bar.rect().height() for bar in heatmaps.prob_bars], trace.probs)
    assert [bar.rect().center().x() for bar in heatmaps.prob_bars] == pytest.approx(list(range(trace.n_bits)))
    wrong = [bar.brush().color().name() == "#d62728" for bar in heatmaps.prob_bars]
    assert wrong == [bool(w) for w in trace.wrong_bits]
    assert [(dot.pos().x(), dot.pos().y()) for dot in heatmaps.true_bits] == [
        (float(t), float(bit)) for t, bit in enumerate(trace.bits_sum)]


def test_bit_rows_are_written_msb_first_with_wrong_bits_and_the_step_marked():
    predicted, true = np.array([0, 0, 0, 0, 1, 0, 1, 0]), np.array([0, 0, 0, 0, 1, 1, 1, 0])  # LSB first
    text = bit_rows_html(45, 67, predicted, true, 8, step=3)
    rows = html.unescape(re.sub(r"<[^>]+>", "", text.split("<pre")[1].split("</pre>")[0].split(">", 1)[1]))
    assert rows.split("\n") == [
        "bit       7 6 5 4 3 2 1 0",
        "a         0 0 1 0 1 1 0 1 = 45",
        "b         0 1 0 0 0 0 1 1 = 67",
        "a + b     0 1 1 1 0 0 0 0 = 112",
        "predicted 0 1 0 1 0 0 0 0 = 80",
    ]
    assert f"<font color='{WRONG_COLOR}'>0</font>" in text and "1 wrong bit" in text
    assert text.count("background:#ffd8d8") == 4, "column 3 shaded in the four rows of bits"
    wide = bit_rows_html(45, 67, np.zeros(12, int), np.zeros(12, int), 12)
    rows = html.unescape(re.sub(r"<[^>]+>", "", wide.split("<pre")[1].split(">", 1)[1]))
    header, first = rows.split("\n")[:2]
    assert header.endswith("11 10  9  8  7  6  5  4  3  2  1  0") and first.index("=") == len(header) + 1
