"""The sweep tab, offscreen: a grid run in processes equal to single runs, maps labelled from the results over any
two axes, hover listing every run, a click opening a run in the window, cancel, close; and the headless figure."""

from __future__ import annotations

import multiprocessing
import os
import subprocess
import sys

import numpy as np
import pytest
from PySide6.QtCore import QPoint, Qt
from PySide6.QtGui import QImage

from core import engine, sweep, sweep_csv
from core.sweep_grid import parse_grid
from core.trainer import TrainConfig, Trainer
from explorer.panels.sweep import NO_AXIS, SweepMap, SweepPanel, short_count

WAIT_MS = 60_000
SMALL = TrainConfig(n_bits=4, hidden_size=8)  # 4-bit sums: every run takes well under a second


@pytest.fixture(scope="module", autouse=True)
def compiled_kernels_ready():
    """The panel trains on the engine "auto" picks: compile (or load) the kernels once here, so the worker
    processes load them from the cache instead of each compiling them."""
    if engine.compiled_available():
        from core import kernels

        kernels.warm_up()


@pytest.fixture
def panel(qtbot):
    widget = SweepPanel()
    qtbot.addWidget(widget)
    widget.setMinimumSize(1100, 330)  # a fixed minimum, as the main window has: Qt then never re-derives it
    widget.resize(1100, 330)
    widget.show()
    yield widget
    assert widget.shutdown(), "the sweep thread ended"


def tick_labels(plot, axis: str) -> list[str]:
    return [label for _, label in plot.getAxis(axis)._tickLevels[0]]


def written_result(tmp_path, spec: str, budget: int = 1000) -> tuple[str, sweep.SweepResult]:
    """A CSV of real runs of the grid (trained here, one by one) and the result it holds."""
    grid = parse_grid(spec, SMALL)
    path = tmp_path / "cells.csv"
    with sweep_csv.CellStream(path) as stream:
        for cell in grid.cells():
            stream.append(sweep.run_cell(cell.config, budget, "numpy"))
    return str(path), sweep_csv.read_result(path)


def test_sweep_runs_a_grid_whose_runs_equal_single_runs_with_maps_labelled_from_the_results(qtbot, panel,
                                                                                              tmp_path):
    panel.set_base_config(SMALL)
    panel.grid_text.setText("lr=1,0.3 seed=1:3")
    assert panel.grid_note.text() == "2 lr × 2 seed = 4 runs"
    panel.max_samples.setValue(1000)
    panel.workers.setValue(2)
    progress: list[int] = []
    panel.progress.valueChanged.connect(progress.append)
    with qtbot.waitSignal(panel.sigFinished, timeout=WAIT_MS) as finished:
        assert panel.start()
        assert not panel.start_button.isEnabled() and panel.cancel_button.isEnabled()
        assert not panel.grid_text.isEnabled()
    result = finished.args[0]
    qtbot.waitUntil(lambda: not panel.running, timeout=WAIT_MS)
    assert not result.cancelled and len(result.cells) == 4 and result.engine == engine.resolve("auto")
    assert progress[-4:] == [1, 2, 3, 4], "the bar moved once per finished run"
    assert panel.start_button.isEnabled() and not panel.cancel_button.isEnabled()
    for cell in result.cells.values():
        assert cell.outcome() == sweep.run_cell(cell.config, 1000, result.engine).outcome()

    heatmaps = panel.map
    assert heatmaps.axes == ("lr", None)  # seeds pooled: one row
    assert tick_labels(heatmaps.median.plot, "bottom") == ["1", "0.3"]
    summary = result.summary("lr")
    drawn = heatmaps.median.image.image  # (1, 2) log10 medians; unsolved medians are transparent
    for i in range(2):
        median = summary.median[0, i]
        if np.isfinite(median):
            assert drawn[0, i] == pytest.approx(np.log10(median))
            assert heatmaps.median.texts[0][i].textItem.toPlainText() == short_count(median)
        else:
            assert np.isnan(drawn[0, i]) and heatmaps.median.texts[0][i].textItem.toPlainText() == "✗"
            assert tuple(heatmaps.median.grey.image[0, i]) != (0, 0, 0, 0), "an unsolved median is grey"
        assert heatmaps.rate.image.image[0, i] == pytest.approx(summary.solve_rate[0, i])
        assert heatmaps.rate.texts[0][i].textItem.toPlainText() == f"{summary.solved[0, i]}/2"
    assert "2 seeds" in heatmaps.title.text and "budget 1,000 samples" in heatmaps.title.text

    panel.grid_text.setText("lr=5,7,9 hidden=3")  # typing another grid leaves the maps as they are
    assert tick_labels(heatmaps.median.plot, "bottom") == ["1", "0.3"]
    assert [panel.across.itemData(k) for k in range(panel.across.count())] == ["lr", "seed"]

    path = tmp_path / "sweep.csv"
    assert panel.export_csv(path) == 4
    assert {cell.config.to_json(): cell.outcome() for cell in sweep_csv.read_cells(path)} == {
        cell.config.to_json(): cell.outcome() for cell in result.cells.values()}


def test_maps_over_any_two_axes_and_hover_lists_every_run(qtbot, panel, tmp_path):
    path, result = written_result(tmp_path, "lr=1,0.3 optimizer=sgd,momentum seed=0:3")
    panel.open_csv(path)
    assert panel.map.axes == ("lr", "optimizer")
    assert tick_labels(panel.map.median.plot, "left") == ["sgd", "momentum"]
    assert panel.map.median.plot.getAxis("left").labelText == "optimizer"

    panel.up.setCurrentIndex(panel.up.findData("seed"))
    panel.up.activated.emit(panel.up.currentIndex())
    assert panel.map.axes == ("lr", "seed")
    assert tick_labels(panel.map.median.plot, "left") == ["0", "1", "2"]
    assert tick_labels(panel.map.median.plot, "bottom") == ["0.3", "1"]  # a CSV's values are sorted
    np.testing.assert_array_equal(panel.map.summary.ran, np.full((3, 2), 2))  # each cell: two optimizers

    panel.up.setCurrentIndex(panel.up.findData(NO_AXIS))
    panel.up.activated.emit(panel.up.currentIndex())
    assert panel.map.axes == ("lr", None) and panel.map.summary.median.shape == (1, 2)
    text = panel.map.cell_text(0, 0)  # lr 0.3, every optimizer and seed
    lines = text.splitlines()
    summary = result.summary("lr")
    assert lines[0].startswith("learning rate 0.3: ") and f"{summary.solved[0, 0]} of 6 runs solved" in lines[0]
    expected = [f"optimizer {cell.config.optimizer} · seed {cell.config.seed}" for cell in summary.runs[0][0]]
    assert [line.split(":")[0] for line in lines[1:]] == expected and len(expected) == 6

    panel.across.setCurrentIndex(panel.across.findData("optimizer"))
    panel.across.activated.emit(panel.across.currentIndex())
    assert panel.map.axes == ("optimizer", None)
    assert tick_labels(panel.map.median.plot, "bottom") == ["sgd", "momentum"]


# The run menu pops up: the offscreen platform says it cannot raise it or give it the keyboard.
@pytest.mark.qt_log_ignore("This plugin does not support raise", "This plugin does not support grabbing the keyboard")
def test_clicking_a_map_cell_replays_that_run_for_the_window(qtbot, panel, tmp_path):
    path, result = written_result(tmp_path, "lr=1,0.3 seed=1:3")
    panel.open_csv(path)
    panel.set_map_axes("lr", "seed")  # one run per map cell
    view = panel.map.view
    qtbot.waitUntil(lambda: view.isVisible() and view.height() > 100, timeout=WAIT_MS)
    cell = result.cells[(0, 1)]  # lr 0.3 (a CSV's values are sorted), seed 2
    target = view.mapFromScene(panel.map.scene_position(0, 1))
    with qtbot.waitSignal(panel.sigOpenRun, timeout=WAIT_MS) as opened:  # the window loads what it carries
        qtbot.mouseClick(view.viewport(), Qt.MouseButton.LeftButton, pos=QPoint(target.x(), target.y()))
    trainer = opened.args[0]
    assert isinstance(trainer, Trainer)
    assert trainer.config == cell.config and trainer.samples_seen == cell.samples_seen
    assert (trainer.solved_at[0] if trainer.solved_at else None) == cell.samples_to_solve
    assert trainer.exhaustive_accuracy() == cell.accuracy
    assert "Opened" in panel.status.text()

    panel.set_map_axes("lr", None)  # two seeds in each map cell: a menu asks which run
    panel.map.sigCellClicked.emit(panel.map.runs_at(1, 0))
    menu = panel.run_menu
    assert [action.text().split(":")[0] for action in menu.actions()] == ["seed 1", "seed 2"]
    other = result.cells[(1, 1)]  # lr 1, seed 2
    with qtbot.waitSignal(panel.sigOpenRun, timeout=WAIT_MS) as opened:
        menu.actions()[1].trigger()
    assert opened.args[0].config == other.config and opened.args[0].samples_seen == other.samples_seen
    menu.close()
    qtbot.waitUntil(lambda: panel.replayer is None, timeout=WAIT_MS)


def test_cancel_mid_sweep_leaves_no_processes_and_no_thread(qtbot, panel):
    panel.grid_text.setText("lr=0.001,0.002 hidden=4 seed=0:3")  # too slow to solve: minutes per run
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


def test_shutdown_stops_a_running_sweep_at_once(qtbot):
    """What the window calls when it closes."""
    panel = SweepPanel()
    qtbot.addWidget(panel)
    panel.grid_text.setText("lr=0.001 hidden=4 seed=0:2")
    panel.max_samples.setValue(5_000_000)
    panel.workers.setValue(1)
    assert panel.start()
    qtbot.waitUntil(lambda: len(multiprocessing.active_children()) > 0, timeout=WAIT_MS)
    assert panel.shutdown()
    assert not panel.running
    assert multiprocessing.active_children() == []


def test_bad_grid_is_refused_with_a_reason(panel):
    panel.grid_text.setText("lr=0.1,fast hidden=4")
    assert "lr: 'fast' is not a number" in panel.grid_note.text()  # said as it is typed
    assert not panel.start()
    assert "lr: 'fast' is not a number" in panel.error.text() and panel.error.isVisible()
    assert not panel.running
    panel.grid_text.setText("lr=0.1 hidden=4 seed=0:5")
    assert panel.grid_note.text() == "5 seed = 5 runs"


def test_colour_bar_draws_a_label_at_both_ends(qtbot):
    from PySide6.QtGui import QPainter, QPicture

    view = SweepMap()
    qtbot.addWidget(view)
    view.setFixedSize(900, 360)  # (a fixed size: no size-hint updates for the offscreen platform to warn about)
    result = sweep.SweepResult(parse_grid("lr=0.1,1 hidden=4,8"), 10_000, "numpy")
    result.cells[(0, 0)] = sweep.CellResult(TrainConfig(learning_rate=0.1, hidden_size=4), 10_000, "numpy", 300,
                                            0.1, 300, 0.1, 1.0, 0.1, False)
    view.show_result(result)
    view.show()
    qtbot.waitExposed(view)
    for heatmap, expected in ((view.median, ["100", "1k", "10k"]), (view.rate, ["0 %", "50 %", "100 %"])):
        axis = heatmap.colorbar.axis
        picture = QPicture()
        painter = QPainter(picture)
        if axis.style["tickFont"] is not None:
            painter.setFont(axis.style["tickFont"])
        _, _, texts = axis.generateDrawSpecs(painter)  # what the bar's axis paints (it leaves out what does not fit)
        painter.end()
        assert [text for _, _, text in texts] == expected


def test_plot_writes_the_map_without_a_display(tmp_path):
    path, _ = written_result(tmp_path, "lr=1,0.3 hidden=4,8 seed=1:3", budget=600)
    png = tmp_path / "map.png"
    environment = {key: value for key, value in os.environ.items()
                   if key not in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")}
    code = "import sys; from core.cli import main; sys.exit(main(sys.argv[1:]))"
    done = subprocess.run([sys.executable, "-c", code, "sweep", "--from", path, "--plot", str(png)],
                          capture_output=True, text=True, timeout=120, env=environment)
    assert done.returncode == 0, done.stderr
    assert f"wrote the map to {png}" in done.stderr and "hidden \\ lr" in done.stdout
    image = QImage(str(png))
    assert (image.width(), image.height()) == (2200, 940)
    pixels = {image.pixel(x, y) for x in range(0, 2200, 10) for y in range(0, 940, 10)}
    assert len(pixels) > 20, "the maps are drawn, not a blank image"
