"""The linear carry probe: a logistic regression from the state [c_t, h_t] to the carry out of step t."""

from __future__ import annotations

import numpy as np
import pytest

from core import carry, lstm, probe_carry, task
from core.trainer import TrainConfig, Trainer


def test_probe_reads_every_carry_of_the_solved_default_model(solved_lstm: Trainer) -> None:
    found = probe_carry.from_trainer(solved_lstm)
    assert found.exhaustive and found.n_pairs == 16_384 and found.n_bits == 8
    assert found.accuracy >= 0.999
    assert found.long_chain_accuracy >= 0.999  # carries passed along 4 or more steps too
    assert found.chain_count.sum() == (16_384 - probe_carry.FIT_PAIRS) * 8  # every held-out (pair, step)
    assert found.features == "c and h" and found.samples_seen == solved_lstm.samples_seen
    assert "100.00 % of carries right" in found.summary()


def test_untrained_state_holds_recent_carries_but_not_long_chains(solved_lstm: Trainer) -> None:
    """Measured, and the reason the probe reports chains: most carries are decided by the last bit pair or two,
    which even random weights keep in the state, so the overall accuracy of an untrained model is high. Carries
    passed along 4+ steps are where it fails and a model that learned to carry does not."""
    untrained = probe_carry.probe_carry(Trainer(TrainConfig(seed=0)).params, 8)
    solved = probe_carry.probe_carry(solved_lstm.params, 8)
    assert untrained.accuracy > 0.95  # no evidence of learning on its own
    assert untrained.chain_accuracy[0] > 0.99  # carries decided by the step's own bits
    assert untrained.long_chain_accuracy < 0.85
    assert solved.long_chain_accuracy - untrained.long_chain_accuracy > 0.1
    assert untrained.majority == pytest.approx(0.625, abs=0.01)  # always guessing "no carry"


def test_a_state_that_holds_nothing_reads_no_better_than_the_majority() -> None:
    params = lstm.init_params(4, np.random.default_rng(0))
    params.flat[:] = 0.0  # c and h stay exactly 0: only the probe's intercept is left
    found = probe_carry.probe_carry(params, 6)
    assert found.accuracy == pytest.approx(found.majority, abs=1e-12)
    assert not np.any(found.unit_weight)


def test_unit_weights_name_the_units_the_readout_uses(solved_lstm: Trainer) -> None:
    """Silence every unit but the carry finder's best: the probe can only lean on that one, and does."""
    params = solved_lstm.params
    best = int(carry.find_carry_units(params, 8).best_units[0])
    scale = np.zeros(params.hidden_size)
    scale[best] = 1.0
    found = probe_carry.probe_carry(params, 8, unit_scale=scale)
    assert int(found.best_units[0]) == best
    assert np.count_nonzero(found.unit_weight) == 1


def test_chain_lengths_count_the_steps_a_carry_is_passed_along() -> None:
    # a = 0b0111011, b = 0b0001101 (LSB first below): positions where exactly one bit is 1 pass the carry on.
    a, b = np.array([0b0111011]), np.array([0b0001101])
    bits_a, bits_b = task.encode(a, 7), task.encode(b, 7)
    assert bits_a[:, 0].tolist() == [1, 1, 0, 1, 1, 1, 0] and bits_b[:, 0].tolist() == [1, 0, 1, 1, 0, 0, 0]
    assert probe_carry.chain_lengths(bits_a, bits_b)[:, 0].tolist() == [0, 1, 2, 0, 1, 2, 0]


def test_fit_logistic_finds_the_minimum_of_its_penalised_loss() -> None:
    rng = np.random.default_rng(1)
    features = rng.normal(size=(2000, 3))
    target = (rng.random(2000) < 1 / (1 + np.exp(-(features @ [2.0, -1.0, 0.0] + 0.5)))).astype(float)
    weights = probe_carry.fit_logistic(features, target)
    design = np.column_stack([features, np.ones(2000)])
    p = 1 / (1 + np.exp(-(design @ weights)))
    penalty = np.array([1, 1, 1, 0]) * probe_carry.RIDGE
    np.testing.assert_allclose(design.T @ (p - target) / 2000 + penalty * weights, 0.0, atol=1e-10)
    assert weights[0] == pytest.approx(2.0, abs=0.3) and weights[1] == pytest.approx(-1.0, abs=0.3)


def test_the_carry_finder_and_the_first_solved_event_report_the_probe(solved_lstm: Trainer) -> None:
    found = carry.from_trainer(solved_lstm)
    assert found.probe is not None and found.probe.accuracy >= 0.999
    assert found.probe.n_pairs == carry.PROBE_PAIRS and not found.probe.exhaustive
    assert carry.find_carry_units(solved_lstm.params, 8).probe is None  # only when asked for
    solved_event = [text for samples, text in solved_lstm.history.events if samples == solved_lstm.solved_at[0]]
    assert any(text.startswith("solved: every sum right; a linear readout of [c, h] gets 100.00 %")
               for text in solved_event)


def test_a_plain_rnn_is_probed_through_h() -> None:
    from core import rnn

    found = probe_carry.probe_carry(rnn.init_params(6, np.random.default_rng(0)), 6)
    assert found.features == "h" and found.unit_weight.shape == (6,)
    assert "readout of h gets" in found.summary()


def test_insights_writes_the_probe_by_chain_and_unit(learning_lstm: Trainer, tmp_path, capsys) -> None:
    import csv

    from core import insights
    from core.session import save_model

    save_model(tmp_path / "model.npz", learning_lstm.params, learning_lstm.config)
    assert insights.main([str(tmp_path / "model.npz"), "--out", str(tmp_path / "out")]) == 0
    expected = insights.carry_probe(learning_lstm.params, 8)
    with (tmp_path / "out" / "carry_probe.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert [int(r["held_out_values"]) for r in rows] == expected.chain_count.tolist()
    np.testing.assert_array_equal([float(r["probe_accuracy"]) for r in rows], expected.chain_accuracy)
    with (tmp_path / "out" / "carry_probe_units.csv").open() as handle:
        weights = [float(r["standardised_weight"]) for r in csv.DictReader(handle)]
    np.testing.assert_array_equal(weights, expected.unit_weight)
    assert f"carry probe: {expected.summary()}" in capsys.readouterr().out
