"""`lstm-explorer study`: one setting from many seeds, summarised as median, quartiles and a solve rate; and
`eval --bits` up to 1,024 bits."""

from __future__ import annotations

import contextlib
import csv
import io
import re
from pathlib import Path

import numpy as np
import pytest

from core import engine, length, study
from core.cli import main
from core.session import save_model
from core.trainer import TrainConfig, Trainer, preset


def run(argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(argv)
    return code, out.getvalue(), err.getvalue()


def seed_result(seed: int, solved_at: int) -> study.SeedResult:
    return study.SeedResult(seed, 10_001, solved_at, solved_at >= 0, 1.0 if solved_at >= 0 else 0.5, False, 1.0,
                            0.9, 1.0, 1.0)


def fake_study(solved: list[int]) -> study.StudyResult:
    seeds = tuple(seed_result(k, value) for k, value in enumerate(solved))
    return study.StudyResult(TrainConfig(), 10_001, "numpy", 1, seeds)


def test_quartiles_of_samples_to_solve() -> None:
    result = fake_study([1200, 800, 1000, 3000, 1500])
    assert result.quartiles() == (1000.0, 1200.0, 1500.0)  # numpy's linear percentiles of the sorted values
    assert result.solved == 5 and result.solved_at_end == 5


def test_seeds_that_never_solve_are_not_guessed() -> None:
    result = fake_study([1000, -1, 2000, -1, -1])  # solved: 1,000 and 2,000; three never did
    q1, median, q3 = result.quartiles()
    assert q1 == 2000.0 and np.isinf(median) and np.isinf(q3)  # the median falls on a seed that did not solve
    lines = study.summary_lines(result)
    assert "median not within 10,001, quartiles 2,000 - not within 10,001" in lines[0]
    assert "2/5 seeds (40 %; 95 % interval 12-77 %)" in lines[1]


def test_a_seed_is_the_trainers_run_with_that_seed() -> None:
    config = TrainConfig(hidden_size=8)
    result = study.run_seed(config, seed=3, samples=600, engine="numpy")
    trainer = Trainer(config.replace(seed=3), engine="numpy")
    trainer.step(600)
    assert result.samples == 600 and result.seed == 3
    assert result.solved_at == (trainer.solved_at[0] if trainer.solved_at else -1)
    assert result.accuracy == trainer.evaluate().accuracy
    assert 0.0 <= result.best_unit_corr <= 1.0 and 0.5 < result.probe_accuracy <= 1.0


def test_study_runs_seeds_in_processes_and_reports_them_in_order(tmp_path: Path) -> None:
    seen: list[int] = []
    result = study.run_study(TrainConfig(hidden_size=4), n_seeds=3, samples=200, first_seed=5, workers=2,
                             engine="numpy", progress=lambda r: seen.append(r.seed))
    assert [s.seed for s in result.seeds] == [5, 6, 7] and sorted(seen) == [5, 6, 7]
    assert result.workers == 2 and result.engine == "numpy"
    alone = study.run_seed(TrainConfig(hidden_size=4), 6, 200, "numpy")
    assert result.seeds[1] == alone.__class__(**{**alone.__dict__, "seconds": result.seeds[1].seconds})
    study.write_csv(result, tmp_path / "seeds.csv")
    with (tmp_path / "seeds.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert [int(r["seed"]) for r in rows] == [5, 6, 7] and "probe_accuracy" in rows[0]


def test_study_command_prints_seeds_and_the_summary(tmp_path: Path) -> None:
    code, out, err = run(["study", "--preset", "tutorial-rnn", "--hidden", "4", "--seeds", "2", "--samples", "200",
                          "--workers", "1", "--csv", str(tmp_path / "s.csv")])
    assert (code, err) == (0, "")
    assert out.startswith("RNN sigmoid, no bias, squared loss, H4 lr 0.1 sgd, 8 bits: seeds 0-1, 200 samples each")
    assert len(re.findall(r"^\s+[01]\s+-\s+no\s+", out, re.MULTILINE)) == 2  # one line per seed, none solved
    assert "Solved within 200 samples: 0/2 seeds" in out and f"(1 process, {engine.resolve('auto')} engine" in out
    assert (tmp_path / "s.csv").exists()


@pytest.mark.parametrize(("argv", "message"), [
    (["--seeds", "0"], "--seeds must be"),
    (["--preset", "tutorial-rnn", "--model", "lstm"], "plain RNN"),
    (["--engine", "gpu"], "engine"),
    (["--loss", "hinge"], "loss"),
])
def test_study_refuses_bad_settings_before_running(argv: list[str], message: str) -> None:
    code, _, err = run(["study", *argv])
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1


def test_train_takes_a_preset_and_the_model_options(tmp_path: Path) -> None:
    code, out, _ = run(["train", "--preset", "tutorial-rnn", "--samples", "200", "--quiet",
                        "--save", str(tmp_path / "t.npz")])
    assert code == 0 and f"({engine.resolve('auto')} engine)" in out  # the kernels implement every model option
    from core.session import load_session

    trainer = load_session(tmp_path / "t.npz")
    assert trainer.config == preset("tutorial-rnn")
    params = trainer.params
    assert (params.loss, params.activation, params.use_bias) == ("squared", "sigmoid", False)
    code, _, _ = run(["train", "--model", "rnn", "--bias", "off", "--loss", "squared", "--samples", "100", "--quiet"])
    assert code == 0


def test_eval_at_widths_up_to_1024_bits(tmp_path: Path, solved_lstm: Trainer) -> None:
    path = tmp_path / "solved.npz"
    save_model(path, solved_lstm.params, solved_lstm.config)
    code, out, err = run(["eval", str(path), "--bits", "8,1024,64", "--pairs", "100"])
    assert (code, err) == (0, "")
    widths = [int(w) for w in re.findall(r"^At (\d+) bits", out, re.MULTILINE)]
    assert widths == [8, 64, 1024]
    expected = length.evaluate_width(solved_lstm.params, 1024, 100)
    assert (f"At 1024 bits: {expected.right}/100 sums right, {length.percent_interval(expected)}, sampled: 100 "
            "random pairs of 2^2046") in out
    assert "bit error by position, LSB first: 0-7 (trained): 0 (0 of 800; " in out
    assert "512-1023: " in out and "bit error by carry chain" in out


def test_eval_per_position_table(tmp_path: Path, learning_lstm: Trainer) -> None:
    path = tmp_path / "learning.npz"
    save_model(path, learning_lstm.params, learning_lstm.config)
    code, out, _ = run(["eval", str(path), "--bits", "12", "--pairs", "300", "--per-position"])
    assert code == 0
    expected = length.evaluate_width(learning_lstm.params, 12, 300)
    rows = re.findall(r"^\s+(\d+)\s+(\d+)\s+([\d.e+-]+)\s+[\d.e+-]+-[\d.e+-]+$", out, re.MULTILINE)
    assert [int(r[0]) for r in rows] == list(range(12))
    assert [int(r[1]) for r in rows] == expected.position_wrong.tolist()


@pytest.mark.parametrize("bits", ["1025", "8,x", "1"])
def test_eval_refuses_bad_widths(tmp_path: Path, solved_lstm: Trainer, bits: str) -> None:
    path = tmp_path / "m.npz"
    save_model(path, solved_lstm.params, solved_lstm.config)
    code, out, err = run(["eval", str(path), "--bits", bits])
    assert code == 2 and out == "" and "bits" in err and len(err.strip().splitlines()) == 1


@pytest.mark.slow
def test_tutorial_preset_learns_and_stays_solved() -> None:
    """The tutorial's model, loss and update (tests/test_model_options.py shows they are exactly its own): seeds 0-2
    each solve and are still solved at 20,000 samples. Measured with this generator: 10,400, 6,500 and 8,100 samples
    (the tutorial's own random stream gives 7,000, 6,100 and 7,100 for its seeds 0-2; README has 20 seeds)."""
    for seed in range(3):
        trainer = Trainer(preset("tutorial-rnn").replace(seed=seed))
        trainer.step(20_000)
        assert trainer.solved_at is not None and trainer.solved_at[0] <= 12_000, (seed, trainer.solved_at)
        assert trainer.solved_now and trainer.exhaustive_accuracy() == 1.0
