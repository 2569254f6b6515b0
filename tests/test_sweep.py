"""Hyperparameter sweep: time-to-solve per cell, parallel cells equal to single runs, cancel, CLI."""

from __future__ import annotations

import csv
import multiprocessing
import os
import pickle
import threading

import numpy as np
import pytest

from core import sweep
from core.trainer import ConfigError, TrainConfig, Trainer

# 4-bit sums keep every run short: at lr 1, 8 units, seeds 0 and 1 solve within 1,000 samples; at lr 0.3 they do not
# within 1,000. The grid below therefore holds solved and unsolved cells.
SMALL = TrainConfig(n_bits=4, hidden_size=8, learning_rate=1.0)
BUDGET, CHUNK = 1000, 50


def first_solved_by_hand(config: TrainConfig, max_samples: int, chunk: int) -> int | None:
    """Samples seen after the first chunk at which every sum is right, checked independently of Trainer.solved."""
    trainer = Trainer(config)
    while trainer.samples_seen < max_samples:
        trainer.step(min(chunk, max_samples - trainer.samples_seen))
        if trainer.evaluate().accuracy == 1.0:
            return trainer.samples_seen
    return None


def test_run_cell_counts_samples_to_solve_like_a_single_run() -> None:
    result = sweep.run_cell(SMALL, BUDGET, CHUNK)
    assert result.solved and not result.diverged and not result.stopped
    assert result.samples_to_solve == first_solved_by_hand(SMALL, BUDGET, CHUNK)
    assert result.samples_to_solve % CHUNK == 0 and result.samples_seen == result.samples_to_solve  # stops there
    assert result.accuracy == 1.0
    assert 0 < result.seconds_to_solve == result.seconds

    single = Trainer(SMALL)
    while not single.solved and single.samples_seen < BUDGET:
        last = single.step(CHUNK)
    assert single.solved_at[0] == result.samples_to_solve
    assert last.loss == result.loss


def test_run_cell_reports_an_unsolved_cell_and_its_budget() -> None:
    config = SMALL.replace(learning_rate=0.3)
    result = sweep.run_cell(config, 1000, 300)  # 1,000 is not a multiple of 300: the last chunk is cut short
    assert first_solved_by_hand(config, 1000, 300) is None
    assert result.samples_to_solve is None and result.seconds_to_solve is None and not result.solved
    assert result.samples_seen == 1000
    assert result.accuracy < 1.0 and np.isfinite(result.loss)
    assert pickle.loads(pickle.dumps(result)) == result  # results cross process boundaries


def test_run_cell_stops_at_divergence() -> None:
    config = TrainConfig(n_bits=4, hidden_size=8, learning_rate=5000.0, optimizer="adam")
    result = sweep.run_cell(config, 5000, 100)
    assert result.diverged and not result.solved
    assert result.samples_seen < 5000


def test_sweep_cells_equal_single_runs_and_report_progress() -> None:
    reports: list[tuple[int, int, sweep.CellResult]] = []
    result = sweep.run_sweep([0.3, 1.0], [8], [0, 1], SMALL, BUDGET, workers=2,
                             progress=lambda done, total, cell: reports.append((done, total, cell)), chunk=CHUNK)
    assert not result.cancelled and not result.stopped
    assert [(done, total) for done, total, _ in reports] == [(1, 4), (2, 4), (3, 4), (4, 4)]
    assert {id(cell) for *_, cell in reports} == {id(cell) for cell in result.cells.values()}
    for (i, j, k), cell in result.cells.items():
        config = SMALL.replace(learning_rate=result.learning_rates[i], hidden_size=result.hidden_sizes[j],
                               seed=result.seeds[k])
        assert cell.config == config
        single = sweep.run_cell(config, BUDGET, CHUNK)
        assert (cell.samples_to_solve, cell.samples_seen, cell.accuracy, cell.loss, cell.diverged) == (
            single.samples_to_solve, single.samples_seen, single.accuracy, single.loss, single.diverged)

    samples = result.samples_to_solve()
    assert samples.shape == (2, 1, 2)
    assert np.all(np.isinf(samples[0])) and np.all(np.isfinite(samples[1]))  # lr 0.3 unsolved, lr 1 solved
    np.testing.assert_array_equal(result.median_samples_to_solve(), [[np.inf], [np.median(samples[1, 0])]])
    np.testing.assert_array_equal(result.solved_fraction(), [[0.0], [1.0]])
    assert multiprocessing.active_children() == []


def test_medians_treat_unsolved_as_slowest_and_missing_as_unknown() -> None:
    def cell(samples: int | None) -> sweep.CellResult:
        return sweep.CellResult(SMALL, samples, None if samples is None else 1.0, samples or 100, 1.0,
                                1.0 if samples else 0.5, 0.1, False)

    result = sweep.SweepResult((0.1, 0.3), (4, 8), (0, 1, 2), 100)
    result.cells.update({(0, 0, 0): cell(300), (0, 0, 1): cell(None), (0, 0, 2): cell(100),  # two of three solved
                         (0, 1, 0): cell(None), (0, 1, 1): cell(None), (0, 1, 2): cell(200),  # one of three
                         (1, 0, 0): cell(50)})  # only one seed ran; (1, 1) never ran
    medians = result.median_samples_to_solve()
    assert medians[0, 0] == 300 and np.isinf(medians[0, 1]) and medians[1, 0] == 50 and np.isnan(medians[1, 1])
    np.testing.assert_allclose(result.solved_fraction(), [[2 / 3, 1 / 3], [1.0, np.nan]])
    table = sweep.format_table(result)
    assert "300 (2/3)" in table and "- (1/3)" in table and "50 (1/1)" in table and "(0/0)" in table


def worker_pids() -> set[int]:
    return {child.pid for child in multiprocessing.active_children()}


def assert_processes_gone(pids: set[int]) -> None:
    assert multiprocessing.active_children() == []
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


def test_cancel_stops_running_cells_and_leaves_no_processes() -> None:
    # Cells that can neither solve nor diverge: each would train its whole budget (tens of seconds) unless stopped.
    slow = TrainConfig(n_bits=8, learning_rate=1e-4)
    seen: set[int] = set()

    def cancel_once_workers_run() -> bool:
        seen.update(worker_pids())
        return bool(seen)

    result = sweep.run_sweep([1e-4], [8, 16], [0, 1, 2], slow, max_samples=60_000, workers=2,
                             cancel=cancel_once_workers_run, chunk=100)
    assert result.cancelled
    assert result.cells == {}  # no cell ran to its budget
    assert all(cell.stopped and cell.samples_seen < 60_000 for cell in result.stopped)
    assert seen
    assert_processes_gone(seen)


def test_cancel_event_stops_a_running_cell_and_keeps_the_finished_one() -> None:
    cancel = threading.Event()
    seen: set[int] = set()
    done_counts: list[int] = []

    def progress(done: int, total: int, cell: sweep.CellResult) -> None:
        seen.update(worker_pids())
        done_counts.append(done)
        cancel.set()

    # Two workers, two cells: lr 1 solves in under 1,000 samples while lr 1e-4 would train its whole budget.
    result = sweep.run_sweep([1e-4, 1.0], [8], [0], SMALL, max_samples=40_000, workers=2, progress=progress,
                             cancel=cancel, chunk=CHUNK)
    assert result.cancelled and done_counts == [1]
    assert list(result.cells) == [(1, 0, 0)] and result.cells[(1, 0, 0)].solved
    [interrupted] = result.stopped
    assert interrupted.config.learning_rate == 1e-4 and interrupted.samples_seen < 40_000
    assert np.isnan(result.samples_to_solve()[0, 0, 0])  # an interrupted cell counts as not run
    assert_processes_gone(seen)


def test_bad_grid_is_refused_before_any_process_starts() -> None:
    with pytest.raises(ConfigError, match="learning rate"):
        sweep.run_sweep([0.1, -1.0], [8], [0], SMALL, 100, workers=2)
    with pytest.raises(ConfigError, match="hidden size"):
        sweep.run_sweep([0.1], [0], [0], SMALL, 100, workers=2)
    assert multiprocessing.active_children() == []
    empty = sweep.run_sweep([], [8], [0], SMALL, 100)
    assert empty.total == 0 and empty.cells == {}


def test_cli_writes_csv_and_table(tmp_path, capsys) -> None:
    out = tmp_path / "sweep.csv"
    code = sweep.main(["--lr", "1.0,0.3", "--hidden", "8", "--seeds", "1", "--bits", "4", "--max-samples",
                       str(BUDGET), "--chunk", str(CHUNK), "--workers", "2", "--out", str(out)])
    captured = capsys.readouterr()
    assert code == 0
    with open(out, newline="") as stream:
        rows = list(csv.DictReader(stream))
    assert tuple(rows[0]) == sweep.CSV_COLUMNS
    assert [(row["learning_rate"], row["hidden_size"], row["seed"]) for row in rows] == [("1.0", "8", "0"),
                                                                                         ("0.3", "8", "0")]
    expected = sweep.run_cell(SMALL, BUDGET, CHUNK).samples_to_solve
    assert rows[0]["solved"] == "1" and int(rows[0]["samples_to_solve"]) == expected
    assert rows[1]["solved"] == "0" and rows[1]["samples_to_solve"] == "" and rows[1]["samples_seen"] == str(BUDGET)
    assert os.listdir(tmp_path) == ["sweep.csv"]  # no temporary file left behind
    assert f"{expected:,} (1/1)" in captured.out and "- (0/1)" in captured.out
    assert "[2/2]" in captured.err and "solved at" in captured.err


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--lr", "fast"], "'fast' is not a float"),
        (["--lr", "-0.1"], "learning rate must be"),
        (["--hidden", "0"], "hidden size must be"),
        (["--seeds", "0"], "--seeds must be at least 1"),
        (["--workers", "0"], "--workers must be at least 1"),
        (["--optimizer", "lbfgs"], "invalid choice"),
        (["--bits", "40"], "n bits must be"),
        (["--out", "/no/such/folder/sweep.csv"], "not a writable folder"),
        (["--frobnicate"], "unrecognized arguments"),
    ],
)
def test_cli_bad_arguments_give_one_line_and_exit_2(arguments: list[str], message: str, capsys) -> None:
    assert sweep.main(arguments) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("lstm-explorer sweep: error:") and message in lines[0]
    assert multiprocessing.active_children() == []
