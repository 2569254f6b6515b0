"""The window's teaching views: the scrubber moves every view to the weights kept at an earlier point (exactly the
weights of a run stopped there), the code view writes the focus trace's numbers beside the lines, and the story lists
the run's events, a click scrubbing there."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import numpy as np
import pytest

from core import codeview, probe, timeline
from core.trainer import TrainConfig, Trainer
from explorer.main_window import MainWindow
from explorer.panels.scrubber import viewing_text
from explorer.worker import record_history

pytestmark = pytest.mark.qt_log_ignore("This plugin does not support propagateSizeHints")

WAIT_MS = 20_000
TRAINED = 1500
EARLY = 400  # before the run is solved (1,200 samples at seed 0)


def _run(samples: int, **settings: object) -> Trainer:
    trainer = Trainer(TrainConfig(**settings), engine="numpy")
    record_history(trainer)  # as the window does: the weights at every check, and the story
    trainer.step(samples)
    return trainer


@pytest.fixture(scope="module")
def stopped_early() -> Trainer:
    return _run(EARLY)


@pytest.fixture
def window(qtbot):
    win = MainWindow(_run(TRAINED), restore_layout=False)
    qtbot.addWidget(win)
    win.resize(1280, 800)
    win.add_views()
    win.show()
    qtbot.waitUntil(lambda: win.latest_snapshot is not None, timeout=WAIT_MS)
    yield win
    win.close()
    assert win.stop_training_thread()


def _fresh(qtbot, win: MainWindow, done) -> object:
    """The first snapshot drawn for which done(snapshot) holds."""
    qtbot.waitUntil(lambda: win.latest_snapshot is not None and done(win.latest_snapshot), timeout=WAIT_MS)
    win.redraw_now()
    return win.latest_snapshot


def test_scrubbing_shows_every_view_at_exactly_the_weights_of_a_run_stopped_there(qtbot, window, stopped_early):
    window.select_tab("Step through")
    window.scrubber.view(EARLY)
    shown = _fresh(qtbot, window, lambda s: s.viewing == EARLY and "carry" in s.analyses
                   and "carry" not in s.pending)
    np.testing.assert_array_equal(shown.params.flat, stopped_early.params.flat)  # every bit
    assert shown.samples_seen == TRAINED  # the run itself is where it was
    trace = probe.trace(stopped_early.params, 45, 67, 8)
    np.testing.assert_array_equal(shown.focus.trace.forget_gate, trace.forget_gate)
    np.testing.assert_array_equal(window.heatmaps.maps["f"].values, trace.forget_gate.T)  # unit x bit, as drawn
    panel = window.views["Step through"].widget
    assert panel.weights_label.text() == f"Weights from sample {EARLY:,}"
    assert shown.analyses["carry"].value.samples_seen == EARLY  # the carry finder ran on the weights viewed
    assert f"sample {EARLY:,}" in panel.carry.label.text()
    assert window.scrubber.label.text() == viewing_text(EARLY, "paused") == "viewing sample 400 — training is paused"
    assert all(line.isVisible() and line.value() == EARLY for line in window.scrubber.markers)
    assert window.scrubber.slider.value() == list(shown.timeline.samples).index(EARLY)

    window.select_tab("Error grid")  # an analysis computed once the view is on screen: on the weights viewed too
    shown = _fresh(qtbot, window, lambda s: "error_grid" in s.analyses and "error_grid" not in s.pending)
    assert shown.analyses["error_grid"].samples_seen == EARLY

    window.request_play()  # training goes on underneath; the views stay at the point viewed
    shown = _fresh(qtbot, window, lambda s: s.samples_seen > TRAINED + 200 and s.state == "training")
    assert shown.viewing == EARLY and np.array_equal(shown.params.flat, stopped_early.params.flat)
    assert window.scrubber.label.text() == "viewing sample 400 — training continues"
    window.request_pause()

    window.scrubber.now_button.click()  # Back to now
    shown = _fresh(qtbot, window, lambda s: s.viewing == -1 and s.state == "paused")
    assert not any(line.isVisible() for line in window.scrubber.markers)
    assert shown.focus.samples_seen == shown.samples_seen and not window.scrubber.now_button.isEnabled()


def test_the_slider_runs_over_the_points_kept_and_its_end_is_now(qtbot, window):
    shown = _fresh(qtbot, window, lambda s: s.timeline is not None)
    kept = list(shown.timeline.samples)
    assert kept == list(range(0, TRAINED + 1, 100)) and window.scrubber.slider.maximum() == len(kept)
    assert window.scrubber.slider.value() == len(kept)  # now
    window.scrubber.slider.setValue(kept.index(700))  # (as a drag does)
    shown = _fresh(qtbot, window, lambda s: s.viewing == 700)
    np.testing.assert_array_equal(shown.params.flat, _run(700).params.flat)
    assert window.scrubber.memory_label.text() == shown.timeline.describe()
    assert window.scrubber.memory_label.text().startswith(f"weights kept at {len(kept)} points")


def test_the_code_view_writes_the_focus_traces_numbers_beside_each_line(qtbot, window):
    window.select_tab("Code")
    shown = _fresh(qtbot, window, lambda s: s.code is not None)
    panel = window.views["Code"].widget
    code, trace = shown.code, shown.focus.trace  # the trace the heatmaps and the step-through draw
    assert (code.a, code.b, code.samples_seen) == (45, 67, shown.focus.samples_seen)
    panel.unit.setValue(12)
    step = window.controller.focus.step
    forward = code.listing("forward")
    rows: dict[tuple[str, ...], int] = {}
    for statement in forward.statements:  # (the first line assigning a name: c and h are masked after, in turn)
        rows.setdefault(statement.targets, panel.rows[("forward", statement.line)])
    for name, values in (("i", trace.input_gate), ("f", trace.forget_gate), ("c", trace.cell[1:]),
                         ("h", trace.hidden[1:])):
        assert panel.table.item(rows[(name,)], 2).text() == f"unit 12: {codeview.number(values[step, 12])}"
    backward = code.listing("backward")
    dc_row = panel.rows[("backward", next(s.line for s in backward.statements if s.targets == ("dc",)))]
    assert panel.table.item(dc_row, 2).text() == f"unit 12: {codeview.number(trace.grad_cell[step, 12])}"
    # every line of both functions that ran at this step says what the recording says
    for listing in code.listings:
        for statement in listing.statements:
            found = code.at(listing.function, statement.line, step)
            if found is not None:
                text = codeview.annotation(found[1], statement, step, code.hidden_size, code.n_bits, 12)
                assert panel.table.item(panel.rows[(listing.function, statement.line)], 2).text() == text

    panel.every.setChecked(True)  # every unit: the vector
    assert panel.table.item(rows[("i",)], 2).text() == codeview.vector(trace.input_gate[step])


def test_the_highlighted_line_and_the_step_move_together(qtbot, window):
    window.select_tab("Code")
    _fresh(qtbot, window, lambda s: s.code is not None)
    panel = window.views["Code"].widget
    window.controller.set_step(5)  # the step-through moved: the highlight goes to step 5's loop
    executed = panel.code.executed[panel.cursor]
    assert (executed.function, executed.step) == ("forward", 5)
    assert panel.explained.text().startswith("▶ forward, step 5: for t in range(T):")
    while panel.code.executed[panel.cursor].step == 5:  # line ▶ through the step: the focus follows into step 6
        panel.next_button.click()
    assert window.controller.focus.step == 6 and panel.code.executed[panel.cursor].step == 6
    panel.backward_button.click()  # the backward pass runs the steps in reverse: 6 is after 7 there
    executed = panel.code.executed[panel.cursor]
    assert (executed.function, executed.step) == ("backward", 6)
    panel.next_button.click()
    while panel.code.executed[panel.cursor].step == 6:
        panel.next_button.click()
    assert window.controller.focus.step == 5  # backward: from step 6 to step 5


def test_the_code_view_follows_the_scrubber(qtbot, window, stopped_early):
    window.select_tab("Code")
    window.scrubber.view(EARLY)
    shown = _fresh(qtbot, window, lambda s: s.viewing == EARLY and s.code is not None
                   and s.code.samples_seen == EARLY)
    panel = window.views["Code"].widget
    assert f"weights of sample {EARLY:,}" in panel.where.text()
    expected = codeview.record(stopped_early.params, 45, 67, 8)
    for ours, theirs in zip(shown.code.executed, expected.executed, strict=True):
        assert ours.values.__repr__() == theirs.values.__repr__()


def test_the_story_lists_the_events_and_a_click_scrubs_there(qtbot, window):
    window.select_tab("Story")
    shown = _fresh(qtbot, window, lambda s: len(s.events) >= 4)
    panel = window.views["Story"].widget
    assert panel.table.rowCount() == len(shown.events)
    texts = [panel.table.item(row, 2).text() for row in range(panel.table.rowCount())]
    assert texts[0].startswith("First held-out sum right") and any(t.startswith("Solved: every sum") for t in texts)
    solved_row = next(row for row, t in enumerate(texts) if t.startswith("Solved"))
    samples = shown.events[solved_row][0]
    assert panel.table.item(solved_row, 0).text() == f"{samples:,}"
    panel.table.cellClicked.emit(solved_row, 2)
    shown = _fresh(qtbot, window, lambda s: s.viewing == samples)
    assert timeline.of(window.worker.trainer).at(samples) is not None
    np.testing.assert_array_equal(shown.params.flat, _run(samples).params.flat)


def test_a_click_on_the_curves_scrubs_to_the_point_kept_nearest(qtbot, window):
    from PySide6.QtCore import QPointF, Qt
    from PySide6.QtTest import QTest

    _fresh(qtbot, window, lambda s: s.timeline is not None)
    plot = window.curves.error_plot
    scene_point = plot.getViewBox().mapViewToScene(QPointF(730.0, 0.25))
    QTest.mouseClick(window.curves.view.viewport(), Qt.MouseButton.LeftButton,
                     pos=window.curves.view.mapFromScene(scene_point))
    shown = _fresh(qtbot, window, lambda s: s.viewing >= 0)
    assert shown.viewing == 700  # the points are 100 samples apart
    assert window.scrubber.slider.value() == list(shown.timeline.samples).index(700)
