"""Sweeps: the grid of any settings and its messages, a cell equal to a single run, local processes equal to single
runs, the maps' pooling, cancel, the CSV that grows as cells finish and resumes, the command line."""

from __future__ import annotations

import csv
import multiprocessing
import os
import pickle
import re
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

from core import engine, sweep, sweep_cli, sweep_csv
from core.sweep_grid import KINDS_BY_NAME, GridError, axis_kind, grid_from_configs, parse_grid
from core.trainer import CHECK_EVERY, ConfigError, TrainConfig, Trainer

# 4-bit sums keep every run short. At lr 1 with 8 units seeds 1 and 2 solve within 1,000 samples and seed 0 does
# not; at lr 0.3 all three do (numpy engine). The tests name the NumPy engine so that no process waits for the
# compiled kernels to be compiled; the engine "auto" resolves to is checked on its own.
SMALL = TrainConfig(n_bits=4, hidden_size=8, learning_rate=1.0)
BUDGET = 1000
ENGINE = "numpy"


def first_solved_by_hand(config: TrainConfig, max_samples: int) -> int | None:
    """Samples seen at the first check at which every sum is right, checked independently of Trainer.solved."""
    trainer = Trainer(config, engine=ENGINE)
    while trainer.samples_seen < max_samples:
        trainer.step(min(CHECK_EVERY, max_samples - trainer.samples_seen))
        if trainer.evaluate().accuracy == 1.0:
            return trainer.samples_seen
    return None


# ---- one cell ---------------------------------------------------------------------------------------------------
def test_run_cell_counts_samples_to_solve_like_a_single_run() -> None:
    config = SMALL.replace(seed=1)
    result = sweep.run_cell(config, BUDGET, ENGINE)
    assert result.solved and not result.diverged and not result.stopped
    assert result.samples_to_solve == first_solved_by_hand(config, BUDGET)
    assert result.samples_seen == result.samples_to_solve  # it stops at the check that found it solved
    assert result.accuracy == 1.0 and result.engine == ENGINE and result.max_samples == BUDGET
    assert 0 < result.seconds_to_solve <= result.seconds

    single = Trainer(config, engine=ENGINE)
    while not single.solved:
        last = single.step(300)  # other chunks: a run does not depend on them
    assert single.solved_at[0] == result.samples_to_solve
    assert sweep.run_cell(config, BUDGET, ENGINE).outcome() == result.outcome()  # a pure function of its settings
    assert np.isfinite(last.loss)


def test_run_cell_reports_an_unsolved_cell_and_its_budget() -> None:
    result = sweep.run_cell(SMALL, 1050, ENGINE)  # seed 0 does not solve; the budget is not a multiple of 100
    assert first_solved_by_hand(SMALL, 1050) is None
    assert result.samples_to_solve is None and result.seconds_to_solve is None and not result.solved
    assert result.samples_seen == 1050
    assert result.accuracy < 1.0 and np.isfinite(result.loss)
    assert pickle.loads(pickle.dumps(result)) == result  # results cross process boundaries


def test_run_cell_stops_at_divergence() -> None:
    config = TrainConfig(n_bits=4, hidden_size=8, learning_rate=5000.0, optimizer="adam")
    result = sweep.run_cell(config, 5000, ENGINE)
    assert result.diverged and not result.solved
    assert result.samples_seen < 5000


def test_every_model_option_runs_on_the_sweeps_engine() -> None:
    config = SMALL.replace(loss="squared")
    assert sweep.run_cell(config, 200, "auto").engine == engine.resolve("auto") == sweep.cell_engine(config, "auto")


def test_replay_rebuilds_the_run_where_the_sweep_stopped_it() -> None:
    cell = sweep.run_cell(SMALL.replace(seed=2), BUDGET, ENGINE)
    trainer = sweep.replay(cell)
    assert trainer.samples_seen == cell.samples_seen and trainer.solved_at[0] == cell.samples_to_solve
    assert trainer.engine == ENGINE and trainer.exhaustive_accuracy() == cell.accuracy
    assert sweep.replay(cell, should_stop=lambda: True) is None


# ---- the grid ---------------------------------------------------------------------------------------------------
def test_grid_parses_the_issue_example_into_cells() -> None:
    grid = parse_grid("lr=0.03,0.1,0.3 hidden=4,8,16 seed=0:20")
    assert grid.shape == (3, 3, 20) and grid.size == 180
    assert grid.names() == ["lr", "hidden", "seed"]
    assert grid.axis("seed").values == tuple(range(20))
    cells = list(grid.cells())
    assert len(cells) == 180
    assert cells[0].config == TrainConfig(learning_rate=0.03, hidden_size=4, seed=0)
    assert cells[1].config.seed == 1 and cells[20].config.hidden_size == 8  # the first axis varies slowest
    assert all(grid.index_of(cell.config) == cell.index for cell in cells)
    assert grid.index_of(TrainConfig(learning_rate=0.5)) is None
    assert parse_grid(grid.describe()) == grid


def test_grid_takes_every_sweepable_setting_by_name_or_field() -> None:
    grid = parse_grid(["optimizer=sgd,adam momentum=0.5 batch=1,4 init=pytorch,uniform forget_bias=0,1 clip=0,5",
                       "bits=4:9:4 model=lstm,RNN loss=bce,squared dtype=float32 learning_rate=0.3 hidden-size=4",
                       "seeds=3"])
    assert grid.shape == (2, 1, 2, 2, 2, 2, 2, 2, 2, 1, 1, 1, 1)
    assert grid.axis("bits").values == (4, 8) and grid.axis("model").values == ("lstm", "rnn")
    config = grid.config((1, 0, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0))
    assert config == TrainConfig(optimizer="adam", momentum=0.5, batch_size=4, init="uniform", forget_bias=1.0,
                                 clip_norm=5.0, n_bits=8, model="rnn", loss="squared", dtype="float32",
                                 learning_rate=0.3, hidden_size=4, seed=3)
    rnn = parse_grid("model=rnn activation=tanh,sigmoid bias=on,false")
    assert rnn.config((0, 1, 1)) == TrainConfig(model="rnn", activation="sigmoid", bias=False)
    with pytest.raises(GridError, match="the cell model=LSTM activation=sigmoid: activation and bias are settings"):
        parse_grid("model=rnn,lstm activation=tanh,sigmoid", TrainConfig(model="rnn"))  # a bad combination
    base = TrainConfig(n_bits=4, optimizer="momentum")
    assert parse_grid("lr=1", base).config((0,)) == base.replace(learning_rate=1.0)  # unnamed settings: the base


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("", "give at least one axis"),
        ("lr", "'lr' is not name=values"),
        ("learnrate=0.1", "unknown setting 'learnrate' (did you mean lr?); a sweep can vary lr, hidden, seed"),
        ("heldout_size=10", "unknown setting 'heldout_size'"),
        ("lr=0.1 lr=0.3", "lr is given twice"),
        ("lr=0.1,,0.3", "lr: empty value"),
        ("lr=fast", "lr: 'fast' is not a number"),
        ("lr=nan", "lr: 'nan' is not a finite number"),
        ("lr=0.1,0.1", "lr: 0.1 is listed twice"),
        ("lr=0.01:1", "lr: ranges (a:b) are for whole-number settings"),
        ("hidden=4.5", "hidden: '4.5' is not a whole number"),
        ("seed=5:5", "seed: the range '5:5' is empty"),
        ("seed=0:10:0", "seed: the step of '0:10:0' must be at least 1"),
        ("seed=0:x", "seed: '0:x' is not a range"),
        ("optimizer=lbfgs", "optimizer: 'lbfgs' is not one of sgd, momentum, adam"),
        ("lr=-1", "lr=-1: learning rate must be a finite number greater than zero"),
        ("hidden=0,4", "hidden=0: hidden size must be a whole number from 1 to 4096"),
        ("bits=40", "bits=40: n bits must be"),
        ("bias=maybe", "bias: 'maybe' is not true or false"),
        ("model=lstm activation=sigmoid", "activation=sigmoid: activation and bias are settings of the plain RNN"),
        ("model=rnn,lstm activation=tanh,sigmoid", "activation=sigmoid: activation and bias are settings"),
    ],
)
def test_bad_grids_say_which_axis_and_value(spec: str, message: str) -> None:
    with pytest.raises(GridError) as raised:
        parse_grid(spec)
    assert message in str(raised.value)
    assert isinstance(raised.value, ConfigError)


def test_grid_read_back_from_configs_sorts_values_and_puts_seeds_last() -> None:
    configs = [TrainConfig(seed=seed, learning_rate=lr, optimizer=opt)
               for seed in (1, 0) for opt in ("adam", "sgd") for lr in (0.3, 0.1)]
    grid = grid_from_configs(configs)
    assert grid.names() == ["lr", "optimizer", "seed"]
    assert grid.axis("lr").values == (0.1, 0.3) and grid.axis("optimizer").values == ("sgd", "adam")
    assert grid_from_configs(configs, order=["optimizer"]).names() == ["optimizer", "lr", "seed"]
    with pytest.raises(GridError, match="heldout_size"):
        grid_from_configs([TrainConfig(), TrainConfig(heldout_size=10)])
    assert axis_kind("n_bits").name == "bits"


# ---- the maps -----------------------------------------------------------------------------------------------------
def fake_cell(config: TrainConfig, samples: int | None, diverged: bool = False) -> sweep.CellResult:
    return sweep.CellResult(config, 1000, ENGINE, samples, None if samples is None else 1.0, samples or 1000, 1.0,
                            1.0 if samples else 0.5, 0.1, diverged)


def test_summary_pools_every_other_axis_and_treats_unsolved_as_slowest() -> None:
    grid = parse_grid("lr=0.1,0.3 optimizer=sgd,adam hidden=4,8 seed=0:2")
    result = sweep.SweepResult(grid, 1000, ENGINE)
    outcomes = {  # (lr, optimizer, hidden, seed) -> samples to solve
        (0, 0, 0, 0): 300, (0, 0, 0, 1): None, (0, 1, 0, 0): 100, (0, 1, 0, 1): 500,  # lr 0.1, hidden 4: 3 of 4
        (0, 0, 1, 0): None, (0, 1, 1, 0): None, (0, 1, 1, 1): 200,  # lr 0.1, hidden 8: 1 of 3 ran
        (1, 0, 0, 0): 50,  # lr 0.3, hidden 4: only one ran; lr 0.3, hidden 8: none ran
    }
    for index, samples in outcomes.items():
        result.cells[index] = fake_cell(grid.config(index), samples, diverged=index == (0, 1, 1, 0))
    summary = result.summary("lr", "hidden")  # across lr, up hidden: arrays (hidden, lr)
    assert summary.x_labels == ["0.1", "0.3"] and summary.y_labels == ["4", "8"]
    assert summary.pooled == "2 optimizer × 2 seeds"
    np.testing.assert_array_equal(summary.ran, [[4, 1], [3, 0]])
    np.testing.assert_array_equal(summary.solved, [[3, 1], [1, 0]])
    np.testing.assert_array_equal(summary.diverged, [[0, 0], [1, 0]])
    assert summary.median[0, 0] == 400  # median of 100, 300, 500, inf
    assert np.isinf(summary.median[1, 0]) and summary.median[0, 1] == 50 and np.isnan(summary.median[1, 1])
    np.testing.assert_allclose(summary.solve_rate, [[0.75, 1.0], [1 / 3, np.nan]])
    assert [cell.config.seed for cell in summary.runs[0][0]] == [0, 1, 0, 1]

    adam = result.summary("lr", "hidden", fixed={"optimizer": 1})  # one slice instead of pooling it
    np.testing.assert_array_equal(adam.ran, [[2, 0], [2, 0]])
    assert adam.median[0, 0] == 300 and adam.pooled == "2 seeds"

    row = result.summary("optimizer")  # one row
    assert row.median.shape == (1, 2) and row.y is None and row.pooled == "2 learning rate × 2 hidden units × 2 seeds"
    with pytest.raises(GridError, match="two different axes"):
        result.summary("lr", "lr")
    with pytest.raises(GridError, match="bits is not an axis of this sweep"):
        result.summary("bits", "lr")


def test_default_map_axes_are_the_first_two_that_vary_with_seeds_pooled() -> None:
    assert sweep.default_map_axes(parse_grid("seed=0:3 lr=0.1,0.3 bits=4 hidden=4,8")) == ("lr", "hidden")
    assert sweep.default_map_axes(parse_grid("lr=0.1,0.3 seed=0:3")) == ("lr", None)
    assert sweep.default_map_axes(parse_grid("seed=0:3")) == ("seed", None)
    assert sweep.default_map_axes(parse_grid("lr=0.1")) == ("lr", None)


# ---- local processes ------------------------------------------------------------------------------------------------
def test_sweep_cells_equal_single_runs_and_report_progress() -> None:
    grid = parse_grid("lr=0.3,1 seed=0:2", SMALL)
    reports: list[tuple] = []
    result = sweep.run_sweep(grid, BUDGET, engine=ENGINE, workers=2,
                             progress=lambda done, total, index, cell: reports.append((done, total, index, cell)))
    assert not result.cancelled and not result.stopped and result.engine == ENGINE
    assert [(done, total) for done, total, *_ in reports] == [(1, 4), (2, 4), (3, 4), (4, 4)]
    assert {index: cell for *_, index, cell in reports} == result.cells
    for index, cell in result.cells.items():
        assert cell.config == grid.config(index)
        assert cell.outcome() == sweep.run_cell(cell.config, BUDGET, ENGINE).outcome()
    samples = result.samples_to_solve()
    assert samples.shape == (2, 2)
    assert np.all(np.isfinite(samples[0])) and np.isinf(samples[1, 0]) and np.isfinite(samples[1, 1])
    assert result.wall_seconds > 0
    assert multiprocessing.active_children() == []


def test_sweep_runs_the_compiled_engine_where_it_is_available() -> None:
    if engine.compiled_available():
        from core import kernels

        kernels.warm_up()  # compiled (or loaded) once here: the worker loads it from the cache
    grid = parse_grid("lr=1 seed=1", SMALL)
    result = sweep.run_sweep(grid, BUDGET, workers=1)
    assert result.engine == engine.resolve("auto") == result.cells[(0, 0)].engine
    assert result.cells[(0, 0)].outcome() == sweep.run_cell(SMALL.replace(seed=1), BUDGET).outcome()


def test_finished_cells_are_not_run_again() -> None:
    grid = parse_grid("lr=0.3,1 seed=1", SMALL)
    earlier = sweep.run_cell(SMALL.replace(learning_rate=0.3, seed=1), BUDGET, ENGINE)
    reports: list[tuple] = []
    result = sweep.run_sweep(grid, BUDGET, engine=ENGINE, workers=1, finished={(0, 0): earlier},
                             progress=lambda *report: reports.append(report))
    assert result.cells[(0, 0)] is earlier
    assert [(done, total, index) for done, total, index, _ in reports] == [(2, 2, (1, 0))]
    with pytest.raises(sweep.SweepError, match="budget of 1,000 samples on the numpy engine; this sweep has 900"):
        sweep.run_sweep(grid, 900, engine=ENGINE, finished={(0, 0): earlier})


def worker_pids() -> set[int]:
    return {child.pid for child in multiprocessing.active_children()}


def assert_processes_gone(pids: set[int]) -> None:
    assert multiprocessing.active_children() == []
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


def test_cancel_stops_running_cells_and_leaves_no_processes() -> None:
    # Cells that can neither solve nor diverge: each would train its whole budget (tens of seconds) unless stopped.
    grid = parse_grid("lr=1e-4 hidden=8,16 seed=0:3")
    seen: set[int] = set()

    def cancel_once_workers_run() -> bool:
        seen.update(worker_pids())
        return bool(seen)

    result = sweep.run_sweep(grid, 60_000, engine=ENGINE, workers=2, cancel=cancel_once_workers_run)
    assert result.cancelled
    assert result.cells == {}  # no cell ran to its budget
    assert all(cell.stopped and cell.samples_seen < 60_000 for cell in result.stopped)
    assert seen
    assert_processes_gone(seen)


def test_a_cell_that_does_not_reach_a_check_in_time_is_ended(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sweep, "STOP_GRACE_SECONDS", 0.0)  # as if every running cell were stuck in one long step
    seen: set[int] = set()

    def cancel_once_both_workers_run() -> bool:
        seen.update(worker_pids())
        return len(seen) == 2

    result = sweep.run_sweep(parse_grid("lr=1e-4 hidden=8,16 seed=0:3"), 5_000_000, engine=ENGINE, workers=2,
                             cancel=cancel_once_both_workers_run)
    assert result.cancelled and result.cells == {}
    assert_processes_gone(seen)


def test_cancel_event_stops_a_running_cell_and_keeps_the_finished_one() -> None:
    cancel = threading.Event()
    seen: set[int] = set()
    done_counts: list[int] = []

    def progress(done: int, total: int, index: tuple, cell: sweep.CellResult) -> None:
        seen.update(worker_pids())
        done_counts.append(done)
        cancel.set()

    # Two workers, two cells: lr 1 (seed 1) solves in under 1,000 samples while lr 1e-4 would train its budget.
    grid = parse_grid("lr=1e-4,1 seed=1", SMALL)
    result = sweep.run_sweep(grid, 40_000, engine=ENGINE, workers=2, progress=progress, cancel=cancel)
    assert result.cancelled and done_counts == [1]
    assert list(result.cells) == [(1, 0)] and result.cells[(1, 0)].solved
    [interrupted] = result.stopped
    assert interrupted.config.learning_rate == 1e-4 and interrupted.samples_seen < 40_000
    assert np.isnan(result.samples_to_solve()[0, 0])  # an interrupted cell counts as not run
    assert_processes_gone(seen)


def test_bad_budget_is_refused_before_any_process_starts() -> None:
    with pytest.raises(ConfigError, match="budget"):
        sweep.run_sweep(parse_grid("lr=0.1"), 0)
    assert multiprocessing.active_children() == []


def test_a_missing_dask_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "distributed", None)  # import distributed now raises ImportError
    with pytest.raises(sweep.SweepError, match=r'needs dask.distributed.*pip install "lstm-explorer\[cluster\]"'):
        sweep.run_sweep(parse_grid("lr=0.1", SMALL), 100, engine=ENGINE, scheduler="tcp://127.0.0.1:8786")


def test_sweep_modules_import_neither_qt_nor_dask() -> None:
    code = ("import sys, core.sweep, core.sweep_cli, core.sweep_csv, core.sweep_grid, core.sweep_dask;"
            "bad = [m for m in sys.modules if m.split('.')[0] in ('PySide6', 'pyqtgraph', 'explorer', 'distributed')];"
            "print(bad); sys.exit(1 if bad else 0)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr


# ---- CSV ------------------------------------------------------------------------------------------------------------
def test_csv_rows_read_back_as_the_same_cells(tmp_path) -> None:
    cells = [sweep.run_cell(SMALL.replace(seed=seed), 400, ENGINE) for seed in (0, 1)]
    cells.append(sweep.CellResult(TrainConfig(learning_rate=1 / 3, clip_norm=0.1, forget_bias=-0.7), 10, ENGINE,
                                  None, None, 0, 0.0, 0.0, float("nan"), False))  # nothing trained: loss nan
    path = tmp_path / "cells.csv"
    with sweep_csv.CellStream(path) as stream:
        for cell in cells:
            stream.append(cell)
    read = sweep_csv.read_cells(path)
    assert [cell.outcome() for cell in read] == [cell.outcome() for cell in cells]
    assert read[:2] == cells[:2]  # every field, timings too, to the last bit
    with open(path, newline="") as handle:
        assert tuple(next(csv.reader(handle))) == sweep_csv.COLUMNS


def test_csv_stream_refuses_an_existing_file_and_resumes_past_a_cut_line(tmp_path) -> None:
    path = tmp_path / "cells.csv"
    first = sweep.run_cell(SMALL.replace(seed=1), 300, ENGINE)
    with sweep_csv.CellStream(path):
        pass  # a sweep that finished no cell (a cluster out of reach): its file may be written again
    with sweep_csv.CellStream(path) as stream:
        stream.append(first)
    with pytest.raises(sweep_csv.SweepCsvError, match="exists: --resume continues that sweep"):
        sweep_csv.CellStream(path)
    with open(path, "a", encoding="utf-8") as handle:
        handle.write("8,0.3,sgd,0.9,1,0.0,se")  # an interruption in the middle of a row
    second = sweep.run_cell(SMALL.replace(seed=2), 300, ENGINE)
    with sweep_csv.CellStream(path, resume=True) as stream:
        assert stream.previous == [first]
        stream.append(second)
    assert sweep_csv.read_cells(path) == [first, second]

    other = tmp_path / "other.csv"
    other.write_text("a,b\n1,2\n", encoding="utf-8")
    with pytest.raises(sweep_csv.SweepCsvError, match="not a sweep CSV of this version"):
        sweep_csv.CellStream(other, resume=True)


def test_a_csv_from_before_a_setting_existed_reads_with_its_default_but_is_not_appended_to(tmp_path) -> None:
    cell = sweep.run_cell(SMALL.replace(seed=1), 300, ENGINE)
    path = tmp_path / "older.csv"
    with sweep_csv.CellStream(path) as stream:
        stream.append(cell)
    with open(path, newline="") as handle:
        rows = list(csv.DictReader(handle))
    older = [column for column in sweep_csv.COLUMNS if column != "loss"]  # as written before the loss setting
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, older, extrasaction="ignore", lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    assert sweep_csv.read_cells(path) == [cell]  # the default loss, which is what trained it
    with pytest.raises(sweep_csv.SweepCsvError, match="missing loss"):
        sweep_csv.CellStream(path, resume=True)


def test_a_csv_of_one_engine_and_budget_reads_back_as_one_sweep(tmp_path) -> None:
    def cell(config: TrainConfig, budget: int, engine_name: str) -> sweep.CellResult:
        return sweep.CellResult(config, budget, engine_name, 300, 0.1, 300, 0.1, 1.0, 0.2, False)

    path = tmp_path / "mixed.csv"
    with sweep_csv.CellStream(path) as stream:
        stream.append(cell(SMALL, 1000, "compiled"))
        stream.append(cell(SMALL.replace(loss="squared"), 1000, "compiled"))
    result = sweep_csv.read_result(path)
    assert result.engine == "compiled" and result.grid.names() == ["loss"] and len(result.cells) == 2
    with sweep_csv.CellStream(path, resume=True) as stream:
        stream.append(cell(SMALL.replace(seed=1), 2000, "compiled"))
    with pytest.raises(sweep_csv.SweepCsvError, match=r"different budgets \(1000, 2000 samples\)"):
        sweep_csv.read_result(path)


# ---- the command line -----------------------------------------------------------------------------------------------
def cli(arguments: list[str], capsys) -> tuple[int, str, str]:
    code = sweep.main(arguments)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_cli_streams_a_csv_and_prints_the_map_as_a_table(tmp_path, capsys) -> None:
    out = tmp_path / "sweep.csv"
    code, stdout, stderr = cli(["--grid", "lr=1,0.3", "hidden=8", "bits=4", "seed=0:2", "--max-samples",
                                str(BUDGET), "--engine", ENGINE, "--workers", "2", "--out", str(out)], capsys)
    assert code == 0, stderr
    cells = sweep_csv.read_cells(out)
    assert sorted((cell.config.learning_rate, cell.config.seed) for cell in cells) == [
        (0.3, 0), (0.3, 1), (1.0, 0), (1.0, 1)]
    for cell in cells:
        assert cell.outcome() == sweep.run_cell(cell.config, BUDGET, ENGINE).outcome()
    solved_lr1 = next(cell for cell in cells if cell.config.learning_rate == 1.0 and cell.solved)
    assert "each cell pooling 2 seeds; budget 1,000 samples, numpy engine" in stdout
    assert "lr" in stdout.splitlines()[1] and "- (1/2)" in stdout  # lr 1: seed 0 unsolved, so the median is too
    assert "[4/4]" in stderr and f"solved at {solved_lr1.samples_to_solve:,} samples" in stderr
    assert "4 cells in" in stderr and "in local processes (numpy engine)" in stderr
    assert os.listdir(tmp_path) == ["sweep.csv"]

    code, stdout_again, _ = cli(["--from", str(out), "--map", "lr"], capsys)  # the table again, from the CSV
    assert code == 0
    assert stdout_again.splitlines()[1].split() == ["lr", "0.3", "1"]  # a CSV's values are sorted
    lr_03 = next(line for line in stdout.splitlines()[2:]).split("(2/2)")[0].split()[-1]
    assert stdout_again.splitlines()[2].split() == ["all", "runs", lr_03, "(2/2)", "-", "(1/2)"]


def test_an_interrupted_sweep_resumes_where_it_stopped(tmp_path, capsys, monkeypatch) -> None:
    out = tmp_path / "sweep.csv"
    arguments = ["--grid", "lr=0.3,1", "seed=0:3", "bits=4", "hidden=8", "--max-samples", str(BUDGET),
                 "--engine", ENGINE, "--workers", "1", "--out", str(out)]
    append = sweep_csv.CellStream.append

    def interrupt_after_two(stream: sweep_csv.CellStream, cell: sweep.CellResult) -> None:
        append(stream, cell)
        if stream.written == 2:
            raise KeyboardInterrupt  # Ctrl-C right after the second cell was written

    monkeypatch.setattr(sweep_csv.CellStream, "append", interrupt_after_two)
    code, _, stderr = cli(arguments, capsys)
    assert code == 130
    assert f"interrupted: 2 cells are in {out}; the same command with --resume runs the rest" in stderr
    assert len(sweep_csv.read_cells(out)) == 2
    assert multiprocessing.active_children() == []
    monkeypatch.undo()

    code, _, stderr = cli(arguments, capsys)
    assert code == 2 and "exists: --resume continues that sweep" in stderr
    code, _, stderr = cli([*arguments, "--resume"], capsys)
    assert code == 0, stderr
    assert "2 of 6 cells already finished" in stderr
    progress = [line.split("]")[0] + "]" for line in stderr.splitlines() if line.startswith("[")]
    assert progress == ["[3/6]", "[4/6]", "[5/6]", "[6/6]"]  # only the other four ran
    cells = sweep_csv.read_cells(out)
    assert len(cells) == 6 and len({cell.config.to_json() for cell in cells}) == 6
    uninterrupted = sweep.run_sweep(parse_grid(arguments[1:5]), BUDGET, engine=ENGINE, workers=2)
    by_config = {cell.config.to_json(): cell.outcome() for cell in uninterrupted.cells.values()}
    assert {cell.config.to_json(): cell.outcome() for cell in cells} == by_config


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--grid", "lr=fast"], "lr: 'fast' is not a number"),
        (["--grid", "lr=-0.1"], "lr=-0.1: learning rate must be"),
        (["--grid", "hidden=0"], "hidden=0: hidden size must be"),
        (["--grid", "speed=3"], "unknown setting 'speed'"),
        (["--max-samples", "0"], "--max-samples must be at least 1"),
        (["--workers", "0"], "--workers must be at least 1"),
        (["--workers", "2", "--scheduler", "tcp://127.0.0.1:8786"], "--workers is for local processes"),
        (["--engine", "gpu"], "invalid choice"),
        (["--resume"], "--resume continues the sweep in --out CSV; give --out"),
        (["--out", "/no/such/folder/sweep.csv"], "not a writable folder"),
        (["--plot", "map.svg"], "--plot writes a PNG"),
        (["--map", "lr,bits"], "--map: bits is not an axis of this sweep"),
        (["--map", "lr,lr"], "--map needs two different axes"),
        (["--from", "/no/such/sweep.csv"], "--from /no/such/sweep.csv: no such file"),
        (["--frobnicate"], "unrecognized arguments"),
    ],
)
def test_cli_bad_arguments_give_one_line_and_exit_2(arguments: list[str], message: str, capsys) -> None:
    code, stdout, stderr = cli(arguments, capsys)
    assert code == 2
    assert stdout == ""
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("lstm-explorer sweep: error:") and message in lines[0]
    assert multiprocessing.active_children() == []


def test_cli_without_dask_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    monkeypatch.setitem(sys.modules, "distributed", None)
    code, _, stderr = cli(["--grid", "lr=0.1", "--engine", ENGINE, "--scheduler", "tcp://127.0.0.1:8786"], capsys)
    assert code == 2
    assert 'pip install "lstm-explorer[cluster]" (in a checkout: pip install ".[cluster]")' in stderr


def test_readme_lists_every_axis() -> None:
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    axes_line = readme[readme.index("- **Axes**"):].split("(the settings")[0]
    assert re.findall(r"`(\w+)`", axes_line) == list(KINDS_BY_NAME)


def test_cli_table_names_its_axes() -> None:
    result = sweep.SweepResult(parse_grid("lr=0.1,0.3 hidden=4"), 100, ENGINE)
    result.cells[(0, 0)] = fake_cell(TrainConfig(learning_rate=0.1, hidden_size=4), 300)
    table = sweep_cli.format_table(result.summary("lr", "hidden"), result)
    lines = table.splitlines()
    assert lines[1].split() == ["hidden", "\\", "lr", "0.1", "0.3"]
    assert lines[2].split() == ["4", "300", "(1/1)", "(0/0)"]
