"""Insight computations checked against independent computations: per-addition traces, trainer.evaluate,
direct counts, and a deliberately broken backward."""

from __future__ import annotations

import csv

import numpy as np
import pytest

from core import insights, lstm, probe, rnn, session, task
from core.insights import INSIGHT_SEED
from core.trainer import TrainConfig, Trainer, evaluate, predict


def popcount(value: int) -> int:
    return bin(value).count("1")


# ---- error grid ---------------------------------------------------------------------------------------------------
def test_error_grid_matches_a_per_pair_decode_of_every_pair(learning_lstm: Trainer) -> None:
    params, n_bits = learning_lstm.params, 5  # 16 x 16 pairs: each one traced on its own
    grid = insights.error_grid(params, n_bits)
    assert grid.exhaustive and grid.wrong_image.shape == (16, 16)
    for a in range(16):
        for b in range(16):
            traced = probe.trace(params, a, b, n_bits)
            expected_wrong = popcount(traced.predicted ^ (a + b))
            assert grid.wrong_image[b, a] == expected_wrong, (a, b)
            assert grid.predicted_image[b, a] == traced.predicted, (a, b)
    traced_right = sum(probe.trace(params, a, b, n_bits).predicted == a + b for a in range(16) for b in range(16))
    assert grid.accuracy == traced_right / 256


def test_error_grid_at_8_bits_covers_all_16384_pairs(learning_lstm: Trainer) -> None:
    params = learning_lstm.params
    grid = insights.error_grid(params, 8)
    assert grid.wrong_image.shape == (128, 128)
    assert grid.histogram().sum() == 16384
    assert grid.accuracy == evaluate(params, 8).accuracy
    rng = np.random.default_rng(7)
    wrong_pairs = np.argwhere(grid.wrong_image > 0)[:60]  # (b, a) of some wrong cells ...
    some_pairs = rng.integers(0, 128, size=(60, 2))  # ... and some anywhere
    assert len(wrong_pairs) > 0
    for b, a in np.concatenate([wrong_pairs, some_pairs]):
        traced = probe.trace(params, int(a), int(b), 8)
        assert grid.wrong_image[b, a] == popcount(traced.predicted ^ int(a + b))
        assert grid.predicted_image[b, a] == traced.predicted
    # position_error counts the same wrong bits, per bit position
    assert np.isclose(grid.position_error.sum() * 16384, grid.wrong_bits.sum())


def test_error_grid_beyond_8_bits_is_a_fixed_sample(learning_lstm: Trainer) -> None:
    params = learning_lstm.params
    grid = insights.error_grid(params, 12)
    again = insights.error_grid(params, 12)
    assert not grid.exhaustive and grid.wrong_image is None and len(grid.a) == insights.GRID_SAMPLES
    np.testing.assert_array_equal(grid.a, again.a)  # same pairs on every refresh: no flicker
    for k in range(0, insights.GRID_SAMPLES, 97):
        traced = probe.trace(params, int(grid.a[k]), int(grid.b[k]), 12)
        assert grid.wrong_bits[k] == popcount(traced.predicted ^ int(grid.a[k] + grid.b[k]))
    assert grid.histogram().sum() == insights.GRID_SAMPLES


def test_error_grid_with_a_knocked_out_unit_is_the_damaged_model(solved_lstm: Trainer) -> None:
    scale = np.ones(16)
    scale[3] = 0.0
    grid = insights.error_grid(solved_lstm.params, 8, scale)
    assert grid.knocked_out == (3,)
    assert grid.accuracy == evaluate(solved_lstm.params, 8, unit_scale=scale).accuracy
    traced = probe.trace(solved_lstm.params, 45, 67, 8, scale)
    assert grid.predicted_image[67, 45] == traced.predicted


# ---- length generalisation ----------------------------------------------------------------------------------------
def test_length_accuracies_equal_evaluate_on_the_same_pairs(solved_lstm: Trainer) -> None:
    params = solved_lstm.params
    result = insights.length_generalisation(params, 8, widths=(12, 16, 24, 32))
    assert list(result.widths) == [8, 12, 16, 24, 32]
    for width, accuracy, pairs, exhaustive in zip(result.widths, result.accuracy, result.n_pairs, result.exhaustive,
                                                  strict=True):
        expected = evaluate(params, int(width), np.random.default_rng([INSIGHT_SEED, int(width)]), n_samples=2000)
        assert accuracy == expected.accuracy
        assert pairs == len(expected.a) and exhaustive == expected.exhaustive
    assert result.accuracy[0] == 1.0 and result.n_pairs[0] == 16384  # trained width: every pair, all right
    assert list(result.n_pairs[1:]) == [2000] * 4
    assert np.all(result.low <= result.accuracy) and np.all(result.accuracy <= result.high)
    np.testing.assert_array_equal(insights.length_generalisation(params, 8, widths=(12, 16, 24, 32)).accuracy,
                                  result.accuracy)


def test_length_reaches_1024_bits_on_fewer_pairs_with_intervals(solved_lstm: Trainer) -> None:
    """The default widths double from 8 to 1,024 bits (the tab's log axis); beyond 32 bits core.length evaluates
    fixed samples of bit-array operands, fewer as the numbers get longer."""
    from core import length

    result = insights.length_generalisation(solved_lstm.params, 8, widths=(32, 64, 1024))
    assert list(result.widths) == [8, 32, 64, 1024] and insights.LENGTH_WIDTHS[-1] == 1024
    assert list(result.n_pairs) == [16384, 2000, 1000, 250]
    expected = length.evaluate_width(solved_lstm.params, 64, 1000, insights.evaluation_rng(64))
    assert result.accuracy[2] == expected.accuracy and result.bit_accuracy[2] == expected.bit_accuracy
    low, high = length.wilson(expected.right, 1000)
    assert (result.low[2], result.high[2]) == (low, high) and high - low < 0.05


def test_length_accuracy_at_12_bits_matches_a_per_pair_count(solved_lstm: Trainer) -> None:
    params = solved_lstm.params
    a, b = task.sample_operands(np.random.default_rng([INSIGHT_SEED, 12]), 2000, 12)
    right = sum(probe.trace(params, int(x), int(y), 12).predicted == x + y for x, y in zip(a[:300], b[:300],
                                                                                             strict=True))
    result = insights.length_generalisation(params, 8, widths=(12,))
    full = np.mean(task.decode(predict(params, a, b, 12)) == a + b)
    assert result.accuracy[list(result.widths).index(12)] == full
    assert right / 300 == np.mean(task.decode(predict(params, a[:300], b[:300], 12)) == a[:300] + b[:300])


def test_length_always_includes_the_trained_width(solved_lstm: Trainer) -> None:
    result = insights.length_generalisation(solved_lstm.params, 6, widths=(8, 16))
    assert list(result.widths) == [6, 8, 16] and result.trained_bits == 6


# ---- gate saturation ----------------------------------------------------------------------------------------------
def test_saturation_fractions_equal_a_direct_count(learning_lstm: Trainer) -> None:
    params = learning_lstm.params
    a, b = task.sample_operands(np.random.default_rng(3), 40, 8)
    result = insights.gate_saturation(params, 8, pairs=(a, b))
    H = params.hidden_size
    low_count = {gate: np.zeros(H, int) for gate in lstm.GATES}
    high_count = {gate: np.zeros(H, int) for gate in lstm.GATES}
    for x, y in zip(a, b, strict=True):
        gates = probe.trace(params, int(x), int(y), 8).gates()
        for gate in lstm.GATES:
            low, high = (-0.9, 0.9) if gate == "g" else (0.1, 0.9)
            for t in range(8):
                for unit in range(H):
                    low_count[gate][unit] += gates[gate][t, unit] < low
                    high_count[gate][unit] += gates[gate][t, unit] > high
    assert result.n_values == 8 * 40
    for k, gate in enumerate(lstm.GATES):
        np.testing.assert_array_equal(result.low[k], low_count[gate] / 320)
        np.testing.assert_array_equal(result.high[k], high_count[gate] / 320)
    assert result.low.sum() > 0 and result.high.sum() > 0


def test_saturation_uses_fixed_pairs_and_refuses_a_model_without_gates(learning_lstm: Trainer) -> None:
    first = insights.gate_saturation(learning_lstm.params, 8)
    np.testing.assert_array_equal(first.low, insights.gate_saturation(learning_lstm.params, 8).low)
    assert first.n_values == 8 * insights.SATURATION_SAMPLES
    with pytest.raises(ValueError, match="gates"):
        insights.gate_saturation(rnn.init_params(8, np.random.default_rng(0)), 8)


# ---- gradient norm per bit ----------------------------------------------------------------------------------------
def test_gradient_norms_per_bit_equal_single_addition_state_grads(learning_lstm: Trainer) -> None:
    params = learning_lstm.params
    a, b = task.sample_operands(np.random.default_rng(4), 50, 8)
    result = insights.gradient_norms(params, 8, pairs=(a, b))
    # probe.trace runs lstm.state_grads on one addition: its loss is that addition's mean BCE over 8 bits.
    traces = [probe.trace(params, int(x), int(y), 8) for x, y in zip(a, b, strict=True)]
    hidden = np.mean([np.linalg.norm(t.grad_hidden, axis=1) for t in traces], axis=0)
    cell = np.mean([np.linalg.norm(t.grad_cell, axis=1) for t in traces], axis=0)
    np.testing.assert_allclose(result.hidden, hidden, rtol=1e-10)
    np.testing.assert_allclose(result.cell, cell, rtol=1e-10)
    assert result.hidden.shape == (8,) and np.all(result.hidden > 0)


def test_update_norms_are_the_global_gradient_norms_of_training_batches(learning_lstm: Trainer) -> None:
    params = learning_lstm.params
    result = insights.gradient_norms(params, 8, batch_size=4, max_batches=5)
    batches = insights.training_batches(8, 4, 5)
    assert len(result.batch_norms) == 5
    for (a, b), norm in zip(batches, result.batch_norms, strict=True):
        x, y = task.make_batch(a, b, 8)
        _, grads = lstm.backward(params, lstm.forward(params, x)[1], y)
        assert norm == pytest.approx(np.sqrt(sum(np.sum(g * g) for _, g in grads.arrays())), rel=1e-12)
    clip = float(np.median(result.batch_norms))
    assert result.clipped_fraction(clip) == np.mean(result.batch_norms > clip)
    assert result.clipped_fraction(0.0) == 0.0


def test_gradient_norms_of_a_plain_rnn_have_no_cell_line() -> None:
    params = rnn.init_params(8, np.random.default_rng(0))
    result = insights.gradient_norms(params, 8)
    assert result.cell is None and result.hidden.shape == (8,)


# ---- knockout -----------------------------------------------------------------------------------------------------
def carry_unit(params: lstm.Params) -> int:
    """The unit whose cell state correlates best with the true carry over all pairs (independent of knockout)."""
    a, b = task.all_pairs(8)
    x, _ = task.make_batch(a, b, 8)
    _, cache = lstm.forward(params, x)
    _, carry_out = task.carries(a, b, 8)
    cells = cache.cell[1:]  # c_t after step t, (T, B, H)
    correlation = [abs(np.corrcoef(cells[:, :, unit].ravel(), carry_out.ravel())[0, 1])
                   for unit in range(params.hidden_size)]
    return int(np.argmax(correlation))


def test_knockout_accuracy_equals_evaluate_with_the_mask(learning_lstm: Trainer) -> None:
    params = learning_lstm.params
    scale = np.ones(16)
    scale[[2, 9]] = 0.0
    result = insights.knockout_effect(params, 8, scale, sweep_samples=256)
    assert result.knocked_out == (2, 9)
    assert result.intact_accuracy == evaluate(params, 8).accuracy
    assert result.knocked_accuracy == evaluate(params, 8, unit_scale=scale).accuracy
    assert result.knocked_bit_accuracy == evaluate(params, 8, unit_scale=scale).bit_accuracy
    a, b = insights.sweep_pairs(8, result.sweep_pairs)
    for unit in (0, 5):
        alone = np.ones(16)
        alone[unit] = 0.0
        traced_right = np.mean([probe.trace(params, int(x), int(y), 8, alone).predicted == x + y
                                for x, y in zip(a[:100], b[:100], strict=True)])
        assert traced_right == np.mean(task.decode(predict(params, a[:100], b[:100], 8, alone)) == a[:100] + b[:100])
        assert result.single_unit_accuracy[unit] == np.mean(task.decode(predict(params, a, b, 8, alone)) == a + b)


def test_knocking_out_the_carry_unit_breaks_a_solved_model(solved_lstm: Trainer) -> None:
    params = solved_lstm.params
    unit = carry_unit(params)
    scale = np.ones(16)
    scale[unit] = 0.0
    result = insights.knockout_effect(params, 8, scale, sweep_samples=256)
    assert result.intact_accuracy == 1.0
    assert result.knocked_accuracy < 0.9
    assert result.single_unit_accuracy[unit] < 0.9
    assert insights.knockout_effect(params, 8, None, sweep_samples=128).knocked_accuracy == 1.0  # no mask: intact


def test_unit_scale_follows_a_resize_and_parses_from_text() -> None:
    assert insights.fit_unit_scale(None, 4) is None
    np.testing.assert_array_equal(insights.fit_unit_scale(np.array([0.0, 1.0, 1.0]), 5), [0, 1, 1, 1, 1])
    assert insights.fit_unit_scale(np.array([1.0, 1.0, 0.0]), 2) is None  # the knocked unit was removed
    np.testing.assert_array_equal(insights.parse_units("3, 1", 4), [1, 0, 1, 0])
    with pytest.raises(ValueError, match="unit '4'"):
        insights.parse_units("4", 4)


# ---- gradient check -----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("trained", [False, True], ids=["untrained", "learning"])
def test_gradient_check_passes_on_a_float64_model(trained: bool, learning_lstm: Trainer) -> None:
    params = learning_lstm.params if trained else Trainer(TrainConfig(seed=1)).params
    before = params.flat.copy()
    result = insights.gradient_check(params, 8)
    assert result.ok and result.max_relative_error < 1e-6, result.verdict
    assert result.n_biases == 4 * 16 + 1 and result.n_checked == 50 + 65
    np.testing.assert_array_equal(params.flat, before)  # checked on a copy
    assert result.verdict.startswith("OK")


def test_gradient_check_on_a_float32_model_checks_a_float64_copy() -> None:
    trainer = Trainer(TrainConfig(seed=2, dtype="float32"))
    trainer.step(500)
    result = insights.gradient_check(trainer.params, 8)
    assert result.ok, result.verdict
    assert trainer.params.dtype == np.float32


def test_gradient_check_catches_a_broken_backward(monkeypatch: pytest.MonkeyPatch) -> None:
    params = lstm.init_params(16, np.random.default_rng(5))
    correct_backward = lstm.backward

    def broken_backward(params, cache, y, record=None):
        loss, grads = correct_backward(params, cache, y, record)
        grads.weight_hh *= 1.01  # a 1 % error in the recurrent weights' gradient
        return loss, grads

    monkeypatch.setattr(lstm, "backward", broken_backward)
    result = insights.gradient_check(params, 8)
    assert not result.ok and result.max_relative_error > 1e-3
    assert result.worst.startswith("weight_hh[")
    assert result.verdict.startswith("MISMATCH")

    def forgets_a_bias(params, cache, y, record=None):
        loss, grads = correct_backward(params, cache, y, record)
        grads.bias_out[:] = 0.0
        return loss, grads

    monkeypatch.setattr(lstm, "backward", forgets_a_bias)
    result = insights.gradient_check(params, 8)
    assert result.max_relative_error == pytest.approx(1.0) and result.worst == "bias_out[0]"


def test_gradient_check_works_for_a_plain_rnn() -> None:
    assert insights.gradient_check(rnn.init_params(8, np.random.default_rng(0)), 8).ok


# ---- headless CSV export ------------------------------------------------------------------------------------------
def read_csv(path) -> list[dict[str, str]]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def test_insights_command_writes_the_views_as_csv(learning_lstm: Trainer, tmp_path, capsys) -> None:
    model = tmp_path / "model.npz"
    session.save_model(model, learning_lstm.params, learning_lstm.config)
    out = tmp_path / "out"
    assert insights.main([str(model), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    grid = insights.error_grid(learning_lstm.params, 8)
    assert f"{grid.accuracy:.2%}" in printed and "gradient check: OK" in printed

    rows = read_csv(out / "error_grid.csv")
    assert len(rows) == 16384
    for row in rows[::1021]:
        a, b = int(row["a"]), int(row["b"])
        assert int(row["true_sum"]) == a + b
        assert int(row["wrong_bits"]) == grid.wrong_image[b, a]
        assert int(row["predicted_sum"]) == grid.predicted_image[b, a]
    length = insights.length_generalisation(learning_lstm.params, 8)
    assert [float(r["exact_sum_accuracy"]) for r in read_csv(out / "length.csv")] == list(length.accuracy)
    saturation = read_csv(out / "saturation.csv")
    assert len(saturation) == 4 * 16 and {r["gate"] for r in saturation} == set(lstm.GATES)
    gradients = read_csv(out / "gradients.csv")
    expected = insights.gradient_norms(learning_lstm.params, 8)
    assert [float(r["grad_hidden_norm"]) for r in gradients] == list(expected.hidden)


def test_insights_command_knockout_option(learning_lstm: Trainer, tmp_path) -> None:
    model = tmp_path / "model.npz"
    session.save_model(model, learning_lstm.params, learning_lstm.config)
    assert insights.main([str(model), "--out", str(tmp_path), "--knockout", "2"]) == 0
    scale = np.ones(16)
    scale[2] = 0.0
    rows = read_csv(tmp_path / "error_grid.csv")
    wrong = sum(int(r["wrong_bits"]) > 0 for r in rows)
    assert 1 - wrong / 16384 == evaluate(learning_lstm.params, 8, unit_scale=scale).accuracy


@pytest.mark.parametrize("arguments, message", [
    (["missing.npz"], "missing.npz"),
    (["MODEL", "--bits", "many"], "invalid int value"),
    (["MODEL", "--knockout", "99"], "unit '99'"),
    (["MODEL", "--bits", "40"], "bits must be between"),
])
def test_insights_command_refuses_bad_input_with_exit_code_2(learning_lstm: Trainer, tmp_path, capsys, arguments,
                                                            message) -> None:
    model = tmp_path / "model.npz"
    session.save_model(model, learning_lstm.params, learning_lstm.config)
    arguments = [str(model) if a == "MODEL" else str(tmp_path / a) if a.endswith(".npz") else a for a in arguments]
    assert insights.main([*arguments, "--out", str(tmp_path / "out")]) == 2
    error = capsys.readouterr().err
    assert message in error and "Traceback" not in error
    assert not (tmp_path / "out" / "error_grid.csv").exists()
