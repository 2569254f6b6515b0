"""Evaluation at any width up to 1,024 bits: bit-array operands, the step-by-step forward, Wilson intervals, error
per position and by carry chain."""

from __future__ import annotations

import numpy as np
import pytest

from core import length, lstm, rnn, task
from core.probe_carry import chain_lengths
from core.trainer import Trainer, score


def as_int(bits: np.ndarray) -> int:
    """One row of bits, least significant first, as a Python integer (any width)."""
    return int("".join(str(int(b)) for b in bits[::-1]), 2)


def test_bit_operands_add_as_python_integers_do() -> None:
    rng = np.random.default_rng(0)
    for width in (2, 9, 63, 64, 200, 1024):
        bits_a, bits_b = length.sample_bits(rng, 20, width)
        assert bits_a.dtype == np.uint8 and bits_a.shape == (20, width) and not bits_a[:, -1].any()
        total, carry_in = length.add_bits(bits_a, bits_b)
        for row in range(20):
            a, b = as_int(bits_a[row]), as_int(bits_b[row])
            assert as_int(total[row]) == a + b < 2**width
            carries = [((a % 2**t) + (b % 2**t)) >> t for t in range(width)]  # the carry into bit t
            assert carry_in[row].tolist() == carries
    values = np.array([0, 1, 45, 2**40 + 3])
    np.testing.assert_array_equal(length.to_bits(values, 70)[:, :8], task.encode(values, 8).T)
    assert [as_int(row) for row in length.to_bits(values, 70)] == values.tolist()


def test_sampled_operands_are_uniform_below_the_top_bit() -> None:
    bits_a, bits_b = length.sample_bits(np.random.default_rng(1), 4000, 64)
    means = np.concatenate([bits_a, bits_b])[:, :-1].mean(axis=0)
    assert np.all(np.abs(means - 0.5) < 0.04)


@pytest.mark.parametrize("kind", ["lstm", "rnn-tanh", "rnn-sigmoid"])
def test_step_by_step_forward_equals_the_reference(kind: str) -> None:
    rng = np.random.default_rng(2)
    if kind == "lstm":
        params, module = lstm.init_params(7, rng, init="pytorch"), lstm
    else:
        params, module = rnn.init_params(7, rng, init="uniform", activation=kind.split("-")[1]), rnn
    params.flat[:] = rng.normal(0, 0.8, params.flat.size)
    bits_a, bits_b = length.sample_bits(rng, 50, 12)
    x = np.stack([bits_a.T, bits_b.T], axis=2).astype(np.float64)  # (T, B, 2)
    scale = rng.uniform(0, 1, 7)
    for unit_scale in (None, scale):
        expected = module.forward(params, x, unit_scale)[0][:, :, 0]
        got = length.probabilities(params, bits_a, bits_b, unit_scale)
        np.testing.assert_allclose(got, expected, rtol=0, atol=1e-12)


def test_up_to_32_bits_the_counts_equal_the_trainers_scoring(learning_lstm: Trainer) -> None:
    params = learning_lstm.params
    for width in (8, 20):
        result = length.evaluate_width(params, width, n_pairs=700, rng=np.random.default_rng(width))
        bits_a, bits_b = length.sample_bits(np.random.default_rng(width), 700, width)  # the same pairs
        a = np.array([as_int(row) for row in bits_a])
        b = np.array([as_int(row) for row in bits_b])
        _, wrong_bit = score(params, a, b, width)  # (T, N) through the engine
        assert result.right == int(np.count_nonzero(~wrong_bit.any(axis=0)))
        np.testing.assert_array_equal(result.position_wrong, wrong_bit.sum(axis=1))
        chains = chain_lengths(bits_a.T, bits_b.T)
        chain_in = np.vstack([np.zeros((1, 700), np.int64), chains[:-1]])
        np.testing.assert_array_equal(result.chain_count, np.bincount(chain_in.ravel(), minlength=width))
        np.testing.assert_array_equal(result.chain_wrong,
                                      np.bincount(chain_in.ravel(), weights=wrong_bit.ravel(), minlength=width))
        assert 0 < result.right < 700  # part-way through learning: both kinds of sums are there


def test_exhaustive_where_every_pair_can_be_listed(solved_lstm: Trainer) -> None:
    result = length.evaluate_width(solved_lstm.params, 8)
    assert result.exhaustive and result.n_pairs == 16_384 and result.right == 16_384
    assert result.low > 0.9997 and result.high == 1.0
    assert not length.evaluate_width(solved_lstm.params, 10).exhaustive  # 262,144 pairs: sampled


def test_chunks_change_nothing(learning_lstm: Trainer, monkeypatch: pytest.MonkeyPatch) -> None:
    whole = length.evaluate_width(learning_lstm.params, 40, n_pairs=300, rng=np.random.default_rng(3))
    monkeypatch.setattr(length, "CHUNK_PAIRS", 300)
    same = length.evaluate_width(learning_lstm.params, 40, n_pairs=300, rng=np.random.default_rng(3))
    assert same.right == whole.right
    np.testing.assert_array_equal(same.position_wrong, whole.position_wrong)


def test_1024_bits_on_a_16_unit_model_with_an_interval(solved_lstm: Trainer) -> None:
    result = length.evaluate_width(solved_lstm.params, 1024, n_pairs=200)
    assert result.n_bits == 1024 and result.n_pairs == 200 and result.position_wrong.shape == (1024,)
    assert result.low <= result.accuracy <= result.high and result.high - result.low < 0.2
    low, high = result.position_interval()
    assert low.shape == high.shape == (1024,) and np.all(low <= result.position_error)
    assert result.chain_count.sum() == 200 * 1024
    assert "95 % interval" in length.percent_interval(result)


def test_wilson_interval_known_values() -> None:
    low, high = length.wilson(8, 10)
    assert (float(low), float(high)) == pytest.approx((0.4902, 0.9433), abs=1e-4)
    low, high = length.wilson(0, 10)
    assert float(low) == 0.0 and float(high) == pytest.approx(0.2775, abs=1e-4)
    low, high = length.wilson(np.array([1000, 999]), np.array([1000, 1000]))
    assert high[0] == 1.0 and low[0] == pytest.approx(0.99617, abs=1e-5) and low[1] < 0.995


def test_widths_and_pairs_are_checked() -> None:
    params = lstm.init_params(2, np.random.default_rng(0))
    for bad in (1, 1025, 8.0, True):
        with pytest.raises(length.LengthError, match="bits"):
            length.evaluate_width(params, bad)
    with pytest.raises(length.LengthError, match="pairs"):
        length.evaluate_width(params, 40, n_pairs=0)


def test_position_and_chain_bands_cover_every_position_once() -> None:
    for width, trained in ((8, 8), (1024, 8), (64, 8), (40, 8), (5, 8)):
        covered = [t for first, last in length.position_bands(width, trained) for t in range(first, last + 1)]
        assert covered == list(range(width))
        chains = [k for first, last in length.chain_bands(width) for k in range(first, last + 1)]
        assert chains == list(range(width))
    assert length.position_bands(1024, 8)[:3] == [(0, 7), (8, 15), (16, 31)]
