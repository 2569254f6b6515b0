"""The carry finder: per-unit correlation of c_t and h_t with the true carry out of step t."""

from __future__ import annotations

import numpy as np
import pytest

from core import carry, lstm, task
from core.trainer import Trainer


def states_and_carry(params: lstm.Params, n_bits: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Cell and hidden states after every step for all pairs, (T*N, H) each, and the carry out, (T*N,)."""
    a, b = task.all_pairs(n_bits)
    x, _ = task.make_batch(a, b, n_bits)
    _, cache = lstm.forward(params, x)
    _, carry_out = task.carries(a, b, n_bits)
    H = params.hidden_size
    return cache.cell[1:].reshape(-1, H), cache.hidden[1:].reshape(-1, H), carry_out.ravel()


def test_trained_model_has_a_carry_unit(solved_lstm: Trainer) -> None:
    """The default run, first solved (1,200 samples): its best unit's |corr| is 0.83, above the finder's threshold
    and well above an untrained model's best (about 0.6); the linear probe reads every carry. How strongly one unit
    tracks the carry varies from run to run (README, over 20 seeds): the probe is the measure that holds."""
    found = carry.from_trainer(solved_lstm)
    best = int(found.best_units[0])
    untrained = carry.find_carry_units(Trainer().params, solved_lstm.config.n_bits)
    assert found.strongest[best] >= carry.CARRY_THRESHOLD
    assert found.strongest[best] > untrained.strongest.max() + 0.15
    assert found.probe is not None and found.probe.accuracy >= 0.999
    assert found.n_pairs == 4 ** (solved_lstm.config.n_bits - 1) and found.exhaustive
    assert found.samples_seen == solved_lstm.samples_seen
    assert best in found.carriers()
    assert f"unit {best}:" in found.describe(best)


def test_correlations_match_numpy_corrcoef(solved_lstm: Trainer) -> None:
    params, n_bits = solved_lstm.params, solved_lstm.config.n_bits
    found = carry.find_carry_units(params, n_bits)
    cell, hidden, carry_out = states_and_carry(params, n_bits)
    for unit in {0, 5, int(found.best_units[0]), int(found.best_units[-1])}:
        assert found.cell_corr[unit] == pytest.approx(np.corrcoef(cell[:, unit], carry_out)[0, 1], abs=1e-9)
        assert found.hidden_corr[unit] == pytest.approx(np.corrcoef(hidden[:, unit], carry_out)[0, 1], abs=1e-9)


def test_best_units_are_sorted_by_strongest_correlation(solved_lstm: Trainer) -> None:
    found = carry.find_carry_units(solved_lstm.params, solved_lstm.config.n_bits)
    strongest = np.maximum(np.abs(found.cell_corr), np.abs(found.hidden_corr))
    assert sorted(found.best_units.tolist()) == list(range(solved_lstm.params.hidden_size))
    assert np.all(np.diff(strongest[found.best_units]) <= 0)


def test_knocked_out_unit_has_zero_correlation_without_warnings(solved_lstm: Trainer) -> None:
    # filterwarnings=error: a 0/0 in the correlation would fail this test.
    params, n_bits = solved_lstm.params, solved_lstm.config.n_bits
    unit_scale = np.ones(params.hidden_size)
    knocked_out = int(carry.find_carry_units(params, n_bits).best_units[0])
    unit_scale[knocked_out] = 0.0
    found = carry.find_carry_units(params, n_bits, unit_scale)
    assert found.cell_corr[knocked_out] == 0.0 and found.hidden_corr[knocked_out] == 0.0
    assert knocked_out not in found.carriers()


def test_all_units_constant_gives_zeros() -> None:
    params = lstm.init_params(4, np.random.default_rng(0))
    params.flat[:] = 0.0  # every gate is a constant; g = tanh(0) = 0 keeps c and h at exactly 0
    found = carry.find_carry_units(params, 6)
    np.testing.assert_array_equal(found.cell_corr, np.zeros(4))
    np.testing.assert_array_equal(found.hidden_corr, np.zeros(4))


def test_chunked_merge_equals_one_pass() -> None:
    # 9 bits: 65,536 pairs, so the statistics are merged over 16 chunks; compare with corrcoef over all at once.
    params = lstm.init_params(3, np.random.default_rng(1))
    found = carry.find_carry_units(params, 9)
    cell, hidden, carry_out = states_and_carry(params, 9)
    for unit in range(3):
        assert found.cell_corr[unit] == pytest.approx(np.corrcoef(cell[:, unit], carry_out)[0, 1], abs=1e-9)
        assert found.hidden_corr[unit] == pytest.approx(np.corrcoef(hidden[:, unit], carry_out)[0, 1], abs=1e-9)
    assert found.n_pairs == 65_536


def test_wide_operands_are_sampled() -> None:
    params = lstm.init_params(3, np.random.default_rng(2))
    found = carry.find_carry_units(params, 12)
    assert not found.exhaustive and 0 < found.n_pairs < 4**11
    assert np.all(np.abs(found.cell_corr) <= 1.0) and np.all(np.abs(found.hidden_corr) <= 1.0)


def test_model_without_a_cell_is_correlated_through_h() -> None:
    from core import rnn

    params = rnn.init_params(4, np.random.default_rng(3))
    found = carry.find_carry_units(params, 6)
    assert found.cell_corr is None
    a, b = task.all_pairs(6)
    x, _ = task.make_batch(a, b, 6)
    _, cache = rnn.forward(params, x)
    hidden = cache.hidden[1:].reshape(-1, 4)
    carry_out = task.carries(a, b, 6)[1].ravel()
    for unit in range(4):
        assert found.hidden_corr[unit] == pytest.approx(np.corrcoef(hidden[:, unit], carry_out)[0, 1], abs=1e-9)
    assert "corr(c" not in found.describe(0)
    np.testing.assert_array_equal(found.strongest, np.abs(found.hidden_corr))
