"""The `lstm-explorer` command line: the notebook's report, eval, add, bench, hand-offs and bad input."""

from __future__ import annotations

import contextlib
import io
import json
import re
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pytest

from core import cli, lstm, probe, task
from core.cli import main
from core.engine import compiled_available as engine_available
from core.session import load_model, save_model
from core.trainer import Trainer

REPORT = re.compile(
    r"^#{20} sample (\d+)\n"
    r" Training sample: (\d+) \+ (\d+) = (\d+)\n"
    r" Result is (\d+)\n"
    r" Average binary error for this batch is (\d\.\d{4})$",
    re.MULTILINE,
)
FINAL = re.compile(
    r"^(?:Every sum was first right after (?P<solved>[\d,]+) samples \(checked every 100\)(?P<stopped>, where training "
    r"stopped)?|No check found every sum right \(checked every 100 samples\))\. At the end: Exhaustive accuracy: "
    r"(?P<right>\d+)/16384 sums right \((?P<percent>\d+\.\d\d)%\) after (?P<samples>[\d,]+) samples? in [\d.]+ s "
    r"\((?P<engine>numpy|compiled) engine\)$")


def run(argv: list[str]) -> tuple[int, str, str]:
    """main(argv) in this process: (exit code, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(argv)
    return code, out.getvalue(), err.getvalue()


def exhaustive_right(params: lstm.Params, n_bits: int = 8) -> int:
    """Sums the model gets right over all pairs, computed here straight from lstm.forward."""
    a, b = task.all_pairs(n_bits)
    x, _ = task.make_batch(a, b, n_bits)
    probs, _ = lstm.forward(params, x)
    return int(np.count_nonzero(task.decode(probs[:, :, 0]) == a + b))


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("cli")


@pytest.fixture(scope="module")
def default_run(folder: Path) -> tuple[int, str, str, Path]:
    """`lstm-explorer train --save ...` at the notebook's defaults, run once for several tests."""
    path = folder / "default.npz"
    return (*run(["train", "--save", str(path)]), path)


@pytest.fixture(scope="module")
def solved_model(folder: Path, solved_lstm: Trainer) -> Path:
    """A model file that gets every sum right (checked below, not assumed)."""
    path = folder / "solved.npz"
    save_model(path, solved_lstm.params, solved_lstm.config)
    return path


# ---- train -------------------------------------------------------------------------------------------------------
def test_train_is_the_notebook(default_run) -> None:
    """With no options: the notebook's 10,001 samples, its eleven reports (samples 0, 1000, ..., 10000), then one
    line with when every sum was first right and the exhaustive accuracy at the end: every sum right."""
    code, out, err, path = default_run
    assert code == 0, err
    reports = REPORT.findall(out)
    assert load_model_session_samples(path) == 10_001
    assert [int(r[0]) for r in reports] == list(range(0, 10_001, 1000))
    final = FINAL.match(out.strip().splitlines()[-1])
    assert final and final["samples"] == "10,001" and not final["stopped"]
    assert int(final["solved"].replace(",", "")) <= 1_500  # seed 0 at the notebook's defaults
    assert final["right"] == "16384"  # and still every sum right after all 10,001 samples
    for _, a, b, total, result, error in reports:
        assert int(a) + int(b) == int(total)
        assert 0 <= int(a) < 128 and 0 <= int(b) < 128 and 0 <= int(result) < 256
        assert 0.0 <= float(error) <= 1.0
    assert FINAL.match(out.strip().splitlines()[-1])


def load_model_session_samples(path: Path) -> int:
    return int(np.load(path, allow_pickle=False)["samples_seen"])


def test_stop_when_solved_ends_at_the_first_check_with_every_sum_right(tmp_path: Path) -> None:
    code, out, err = run(["train", "--stop-when-solved", "--save", str(tmp_path / "s.npz")])
    assert code == 0, err
    final = FINAL.match(out.strip().splitlines()[-1])
    assert final and final["stopped"] and final["solved"] == final["samples"] and final["right"] == "16384"
    solved = int(final["solved"].replace(",", ""))
    assert solved % 100 == 0 and load_model_session_samples(tmp_path / "s.npz") == solved
    assert [int(r[0]) for r in REPORT.findall(out)] == list(range(0, solved, 1000))


@pytest.mark.parametrize("engine", ["numpy", "compiled"])
def test_either_engine_gives_the_same_run(engine: str) -> None:
    if engine == "compiled" and not engine_available():
        pytest.skip("the compiled engine needs numba")
    code, out, err = run(["train", "--samples", "3001", "--engine", engine])
    assert code == 0, err
    assert [int(r[0]) for r in REPORT.findall(out)] == [0, 1000, 2000, 3000]
    final = FINAL.match(out.strip().splitlines()[-1])
    assert final["samples"] == "3,001" and final["engine"] == engine and final["solved"] == "1,200"


def test_first_report_matches_the_model_computed_here(default_run) -> None:
    """Sample 0: the operands are the trainer's first draw, the result and error the untrained model's."""
    _, out, _, _ = default_run
    trainer = Trainer()
    rng = np.random.default_rng()
    rng.bit_generator.state = trainer.rng.bit_generator.state
    a, b = task.sample_operands(rng, 1, 8)
    x, y = task.make_batch(a, b, 8)
    probs, _ = lstm.forward(trainer.params, x)
    error = float(np.abs(y - probs).mean())
    expected = (f"{'#' * 20} sample 0\n Training sample: {a[0]} + {b[0]} = {a[0] + b[0]}\n"
                f" Result is {task.decode(probs[:, :, 0])[0]}\n Average binary error for this batch is {error:.4f}")
    assert out.startswith(expected)


def test_final_line_tells_the_truth(default_run) -> None:
    _, out, _, path = default_run
    final = FINAL.match(out.strip().splitlines()[-1])
    right, percent, samples = final["right"], final["percent"], final["samples"]
    params, config = load_model(path)
    assert config.hidden_size == 16 and config.learning_rate == 0.1 and config.seed == 0 and config.n_bits == 8
    assert samples == f"{load_model_session_samples(path):,}"
    assert int(right) == exhaustive_right(params)
    assert percent == f"{100 * int(right) / 16384:.2f}"


def test_progress_bar_on_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    out, err = io.StringIO(), Terminal()
    monkeypatch.setattr(sys, "stdout", out)
    monkeypatch.setattr(sys, "stderr", err)
    assert main(["train", "--samples", "2001", "--quiet"]) == 0
    assert "\r[" in err.getvalue() and "2,001/2,001 samples" in err.getvalue()
    assert err.getvalue().endswith("\r")  # the bar is wiped before the final line
    assert len(out.getvalue().strip().splitlines()) == 1 and FINAL.match(out.getvalue().strip())


def test_divergence_stops_with_exit_code_1_and_finite_weights(folder: Path) -> None:
    path = folder / "diverged.npz"
    code, out, err = run(["train", "--lr", "1000", "--samples", "3000", "--quiet", "--save", str(path)])
    assert code == 1
    assert "lower learning rate" in err and "Traceback" not in err
    params, _ = load_model(path)
    assert np.all(np.isfinite(params.flat))
    assert FINAL.match(out.strip().splitlines()[-1])
    saved = np.load(path, allow_pickle=False)
    assert int(saved["samples_seen"]) == int(saved["rollback.samples_seen"])  # the count matches the weights
    assert int(saved["samples_seen"]) == 0  # lr 1000 diverges before the first check: back to the start


BAD_ARGUMENTS = [
    ["train", "--hidden", "0"],
    ["train", "--hidden", "5000"],
    ["train", "--hidden", "abc"],
    ["train", "--lr", "0"],
    ["train", "--lr", "-0.1"],
    ["train", "--lr", "nan"],
    ["train", "--lr", "inf"],
    ["train", "--bits", "1"],
    ["train", "--bits", "33"],
    ["train", "--optimizer", "rmsprop"],
    ["train", "--batch", "0"],
    ["train", "--samples", "0"],
    ["train", "--seed", "-1"],
    ["train", "--init", "zeros"],
    ["train", "--save", "/no/such/folder/run.npz"],
    ["train", "--save", "."],
    ["trian"],
    ["eval", "/no/such/file.npz"],
    ["eval", "."],
    ["add", "1", "2", "--model", "/no/such/file.npz"],
]


@pytest.mark.parametrize("argv", BAD_ARGUMENTS, ids=" ".join)
def test_bad_input_is_one_line_and_exit_code_2(argv: list[str]) -> None:
    code, out, err = run(argv)
    assert code == 2
    assert out == ""
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


@pytest.mark.parametrize("operands", [["128", "1"], ["-1", "1"], ["1", "seven"], ["1", ""], ["9" * 40, "1"],
                                      ["1.5", "1"]])
def test_bad_operands(solved_model: Path, operands: list[str]) -> None:
    code, out, err = run(["add", *operands, "--model", str(solved_model)])
    assert (code, out) == (2, "")
    assert "operand" in err and len(err.strip().splitlines()) == 1


def test_bad_model_files(folder: Path, solved_model: Path) -> None:
    truncated, pickled = folder / "truncated.npz", folder / "pickled.npz"
    truncated.write_bytes(solved_model.read_bytes()[:300])
    np.savez(pickled, **{"lstm.weight_ih_l0": np.array([object()], dtype=object)})
    for path in (truncated, pickled):
        for argv in (["eval", str(path)], ["add", "1", "2", "--model", str(path)]):
            code, out, err = run(argv)
            assert (code, out) == (2, "")
            assert str(path) in err and len(err.strip().splitlines()) == 1


# ---- eval and add ------------------------------------------------------------------------------------------------
def test_eval_reports_both_widths(solved_model: Path) -> None:
    code, out, _ = run(["eval", str(solved_model)])
    assert code == 0
    params, _ = load_model(solved_model)
    right = exhaustive_right(params)
    assert right == 16384  # the fixture's model is solved (else the add test below proves less)
    assert (f"At 8 bits (trained): {right}/16384 sums right, 100.00 % (95 % interval 99.98-100.00 %), all 16,384 "
            "pairs") in out
    assert re.search(r"At 16 bits: \d+/2000 sums right, \d+\.\d\d % \(95 % interval [\d.]+-[\d.]+ %\), sampled", out)


def test_add_prints_the_right_sum(solved_model: Path) -> None:
    for a, b in ((45, 67), (0, 0), (127, 127), (100, 27)):
        code, out, _ = run(["add", str(a), str(b), "--model", str(solved_model)])
        assert code == 0
        total = a + b
        assert f"  predicted {total:08b} = {total}\n" in out
        assert f"  true      {total:08b} = {total}   (right)" in out


def test_add_table_holds_the_probe_values(solved_model: Path) -> None:
    code, out, _ = run(["add", "45", "67", "--model", str(solved_model)])
    assert code == 0
    params, _ = load_model(solved_model)
    trace = probe.trace(params, 45, 67, 8)
    unit = int(re.search(r"c\[(\d+)\] is unit", out).group(1))
    rows = [line.split() for line in out.splitlines() if re.match(r"^\s+\d+\s+[01] [01]\s", line)]
    assert len(rows) == 8
    gates = trace.gates()
    for t, row in enumerate(rows):
        step, bit_a, bit_b, carry_in, i, f, g, o, cell_mean, cell_unit, p, predicted, true = row[:13]
        assert (int(step), int(bit_a), int(bit_b), int(carry_in)) == (t, trace.bits_a[t], trace.bits_b[t],
                                                                      trace.carry_in[t])
        shown = [float(v) for v in (i, f, g, o, cell_mean, cell_unit, p)]
        values = [*(gates[name][t].mean() for name in "ifgo"), trace.cell[t + 1].mean(), trace.cell[t + 1, unit],
                  trace.probs[t]]
        np.testing.assert_allclose(shown, values, rtol=0, atol=5e-4 + 1e-12)
        assert (int(predicted), int(true)) == (trace.predicted_bits[t], trace.bits_sum[t])
        assert ("<-" in row) == bool(trace.wrong_bits[t])


def test_add_without_a_model_trains_one_first() -> None:
    code, out, err = run(["add", "3", "4", "--bits", "4"])
    assert code == 0
    assert "No --model given: training a default model" in err
    assert "3 + 4 at 4 bits" in out and "true      0111 = 7" in out


# ---- bench and the hand-offs -------------------------------------------------------------------------------------
def test_bench_quick_json() -> None:
    """The bench measures every target side by side and judges each on the ratio it measured."""
    if not engine_available():
        pytest.skip("the compiled engine needs numba")
    code, out, _ = run(["bench", "--quick", "--json"])
    assert code == 0
    result = json.loads(out)
    training = result["compiled"]["training"]
    assert [(row["batch"], row["hidden"], row["dtype"]) for row in training] == [
        (1, 16, "float64"), (1, 16, "float32"), (1, 64, "float64"), (256, 16, "float32")]
    for row in [*training, result["compiled"]["prediction"]]:
        assert row["kernel"] > 0
        if row["torch"]:
            assert row["vs_torch"] == pytest.approx(row["kernel"] / row["torch"])
    solve = result["solve"]
    assert solve["solved"] and solve["samples"] == 1_200  # the defaults, seed 0, on the compiled engine
    assert solve["passed"] == (solve["cpu_seconds"] <= solve["target_seconds"])
    assert result["sweep"] is None  # --quick leaves the sweep out


def test_without_a_subcommand_the_headless_command_line_prints_its_help() -> None:
    code, out, _ = run([])
    assert code == 0
    assert "train" in out and "The window opens with `lstm-explorer`" in out


def test_sweep_is_handed_off(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []
    module = types.ModuleType("core.sweep")
    module.main = lambda argv: calls.append(argv) or 0
    monkeypatch.setitem(sys.modules, "core.sweep", module)
    assert run(["sweep", "--csv", "out.csv"])[0] == 0
    assert calls == [["--csv", "out.csv"]]


def test_the_console_script(solved_model: Path) -> None:
    script = Path(sys.executable).with_name("lstm-explorer")
    if not script.exists():
        pytest.skip("the package is not installed with its console script")
    done = subprocess.run([script, "add", "45", "67", "--model", solved_model], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    assert "true      01110000 = 112   (right)" in done.stdout
    done = subprocess.run([script, "train", "--hidden", "0"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert done.stderr.strip() == "lstm-explorer train: --hidden must be a whole number from 1 to 4096, got 0"


def test_core_command_line_does_not_import_qt() -> None:
    code = "import sys, core.cli, core.bench, core.session; sys.exit(any(m.startswith('PySide6') for m in sys.modules))"
    assert subprocess.run([sys.executable, "-c", code], cwd=Path(cli.__file__).parent.parent).returncode == 0
