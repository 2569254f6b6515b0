"""Trainer: learns addition, live hyperparameter changes, divergence, bounded history."""

import subprocess
import sys

import numpy as np
import pytest

from core import lstm
from core.trainer import ConfigError, History, TrainConfig, Trainer


def train_until_solved(trainer: Trainer, limit: int, chunk: int = 100) -> None:
    trainer.step(1)
    while trainer.samples_seen < limit and not trainer.solved:
        trainer.step(min(chunk, limit - trainer.samples_seen))


def test_defaults_learn_addition_within_10001_samples():
    """The notebook's defaults (16 units, lr 0.1, online SGD, standard-normal weights): seeds 0-9 all get every one
    of the 16,384 sums right within the notebook's 10,001 samples, half of them within 1,500."""
    solved_at = []
    for seed in range(10):
        trainer = Trainer(TrainConfig(seed=seed))
        train_until_solved(trainer, 10_001)
        assert trainer.solved, f"seed {seed}: accuracy {trainer.exhaustive_accuracy():.4f} after 10,001 samples"
        samples, seconds = trainer.solved_at
        assert samples <= 10_001 and seconds > 0
        assert trainer.exhaustive_accuracy() == 1.0  # solved means every one of the 16,384 sums
        solved_at.append(samples)
    assert np.median(solved_at) <= 1_500, solved_at


def test_same_seed_same_run_whatever_the_chunking():
    one, other = Trainer(TrainConfig(seed=4)), Trainer(TrainConfig(seed=4))
    one.step(300)
    for n in (1, 99, 200):
        other.step(n)
    np.testing.assert_array_equal(one.params.flat, other.params.flat)


def _run_state(trainer: Trainer) -> tuple:
    """Everything that makes a run: weights, optimizer state, history, events, solved-at, the sample stream."""
    return (trainer.params.flat.tobytes(), {k: v.tobytes() for k, v in trainer.optimizer.state().items()},
            trainer.history.array().tobytes(), trainer.history.pending().tobytes(), trainer.history.stride,
            trainer.history.events, None if trainer.solved_at is None else trainer.solved_at[0],
            trainer.samples_seen, trainer.accuracy, trainer.interval.tobytes(),
            str(trainer.rng.bit_generator.state))


@pytest.mark.parametrize("config", [TrainConfig(seed=0), TrainConfig(seed=3, optimizer="adam", learning_rate=0.01,
                                                                     batch_size=3, clip_norm=1.0)])
def test_a_run_is_a_pure_function_of_its_settings(config, tmp_path):
    """Chunks of 1, 7, 100 or 4,096 samples, a pause, a save and a load in between: bit-identical weights,
    optimizer state and history, and the same solved-at."""
    from core.session import load_session, save_session

    total = 1_500 - 1_500 % config.batch_size
    runs = {}
    for chunk in (1, 7, 100, 4096):
        trainer = Trainer(config)
        while trainer.samples_seen < total:
            trainer.step(min(chunk, total - trainer.samples_seen))
        runs[chunk] = _run_state(trainer)
    # Paused half-way between two checks, saved, loaded into a new trainer, resumed.
    trainer = Trainer(config)
    trainer.step(657)
    save_session(tmp_path / "half.npz", trainer)
    trainer = load_session(tmp_path / "half.npz")
    trainer.step(total - trainer.samples_seen)
    runs["save/load"] = _run_state(trainer)
    reference = runs.pop(4096)
    for name, state in runs.items():
        assert state == reference, f"chunks of {name} differ from one chunk of 4,096"
    if config.seed == 0:
        assert reference[6] == 1_200  # the defaults solve at 1,200 samples (seed 0), whatever the chunks


def test_divergence_returns_to_the_last_check():
    """A diverging run comes back to the weights, optimizer state and sample stream of its last check, so the
    rolled-back run is again a function of its settings; the saved sample count matches the weights."""
    config = TrainConfig(seed=1)
    trainer = Trainer(config)
    trainer.step(250)
    trainer.update(learning_rate=1e4)  # a live change takes a rollback point of its own, at 250
    result = trainer.step(100)
    assert result.diverged and "the weights of sample 250 restored" in result.message
    assert trainer.samples_seen == 250 and np.all(np.isfinite(trainer.params.flat))
    trainer.update(learning_rate=0.1)
    trainer.step(50)
    fresh = Trainer(config)
    fresh.step(300)
    np.testing.assert_array_equal(trainer.params.flat, fresh.params.flat)


def test_batched_training_learns():
    trainer = Trainer(TrainConfig(batch_size=32, learning_rate=0.03, optimizer="adam", seed=1, init="pytorch"))
    train_until_solved(trainer, 64 * 1000, chunk=32 * 20)
    assert trainer.solved


def test_live_changes_apply_without_reset():
    trainer = Trainer(TrainConfig())
    trainer.step(200)
    seen = trainer.samples_seen
    changed = trainer.update(learning_rate=0.05, optimizer="adam", batch_size=4, clip_norm=1.0)
    assert trainer.samples_seen == seen and trainer.optimizer.name == "adam"
    assert trainer.optimizer.learning_rate == 0.05 and len(changed) == 4
    trainer.step(40)
    assert trainer.samples_seen == seen + 40
    assert [text for _, text in trainer.history.events][-4:] == changed
    with pytest.raises(ConfigError, match="reset"):
        trainer.update(seed=3)
    with pytest.raises(ConfigError, match="learning rate"):
        trainer.update(learning_rate=float("nan"))
    assert trainer.config.learning_rate == 0.05  # a rejected change changes nothing


def test_resize_keeps_what_was_learned():
    trainer = Trainer(TrainConfig(seed=2))
    train_until_solved(trainer, 10_001)
    before = trainer.exhaustive_accuracy()
    trainer.update(hidden_size=24)
    assert trainer.params.hidden_size == 24
    assert trainer.exhaustive_accuracy() >= before - 0.02
    trainer.step(100)  # the optimizer state and buffers follow the new size
    trainer.update(hidden_size=16)
    assert trainer.params.weight_hh.shape == (64, 16)


def test_resize_keeps_adam_state_for_kept_units():
    trainer = Trainer(TrainConfig(optimizer="adam", learning_rate=0.01))
    trainer.step(50)
    first = lstm.Params.from_flat(trainer.optimizer.first, 16, 2, 1)
    kept = first.weight_hh[:8, :8].copy()
    trainer.update(hidden_size=20)
    resized = lstm.Params.from_flat(trainer.optimizer.first, 20, 2, 1)
    np.testing.assert_array_equal(resized.weight_hh[:8, :8], kept)
    assert np.all(resized.weight_hh[:, 16:] == 0)


def test_divergence_rejects_the_step_and_keeps_finite_weights():
    trainer = Trainer(TrainConfig(learning_rate=1000.0, seed=0))
    results = [trainer.step(100) for _ in range(5)]
    assert any(r.diverged for r in results)
    diverged = next(r for r in results if r.diverged)
    assert "learning rate" in diverged.message
    assert np.all(np.isfinite(trainer.params.flat))
    assert any(text.startswith("diverged") for _, text in trainer.history.events)


@pytest.mark.parametrize(
    "changes",
    [{"hidden_size": 0}, {"hidden_size": 4097}, {"learning_rate": 0.0}, {"learning_rate": -1.0},
     {"learning_rate": float("inf")}, {"n_bits": 1}, {"n_bits": 33}, {"optimizer": "rmsprop"}, {"batch_size": 0},
     {"clip_norm": -1.0}, {"init": "xavier"}, {"hidden_size": 2.5}, {"seed": -1}, {"model": "gru"}],
)
def test_config_rejects_bad_values(changes):
    with pytest.raises(ConfigError):
        TrainConfig().replace(**changes)


def test_config_json_round_trip():
    config = TrainConfig(hidden_size=7, optimizer="adam", clip_norm=2.0)
    assert TrainConfig.from_json(config.to_json()) == config
    with pytest.raises(ConfigError, match="unknown"):
        TrainConfig.from_json('{"hidden": 4}')
    with pytest.raises(ConfigError, match="JSON"):
        TrainConfig.from_json("{")


def test_history_stays_bounded_and_keeps_the_trend():
    history = History(capacity=64)
    for k in range(1, 10_001):
        history.add(k, loss=1.0 / k, bit_error=0.5, accuracy=min(1.0, k / 5000), weight=1)
    assert history.size <= 64
    samples = history.column("samples")
    assert np.all(np.diff(samples) > 0) and samples[-1] >= 10_000 - history.stride
    assert history.column("loss")[0] > history.column("loss")[-1]


def test_core_never_imports_qt():
    code = (
        "import sys, core.trainer, core.probe, core.session, core.cli;"
        "bad = [m for m in sys.modules if m.split('.')[0] in ('PySide6', 'pyqtgraph', 'PyQt5', 'PyQt6', 'explorer')];"
        "print(bad); sys.exit(1 if bad else 0)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_stop_when_solved_ends_the_chunk_at_the_solving_check():
    trainer = Trainer(TrainConfig(seed=0))
    while not trainer.solved:
        trainer.step(4096, stop_when_solved=True)
    assert trainer.samples_seen == trainer.solved_at[0] == 1_200
    assert trainer.solved_now


def test_a_run_without_details_has_the_same_weights_and_solved_at():
    """details=False (a sweep's or study's runs) leaves out the held-out curve and the carry probe, not the run."""
    runs = []
    for details in (True, False):
        trainer = Trainer(TrainConfig(seed=3), details=details)
        trainer.step(2_000)
        runs.append(trainer)
    np.testing.assert_array_equal(runs[0].params.flat, runs[1].params.flat)
    assert runs[0].solved_at[0] == runs[1].solved_at[0] and runs[0].solved_now == runs[1].solved_now
    assert np.isnan(runs[1].accuracy) and 0 < runs[0].accuracy <= 1


def test_solved_clears_at_the_next_check_when_sums_go_wrong():
    """Between full checks a solved model is watched through its held-out and longest-carry sums: weights that no
    longer add clear 'solved' at the next check, with an event."""
    trainer = Trainer(TrainConfig(seed=0))
    trainer.step(1_200)
    assert trainer.solved_now and trainer.solved_at[0] == 1_200
    trainer.params.weight_out[:] *= -1.0  # every output bit flips
    trainer.step(100)
    assert not trainer.solved_now and trainer.solved_at[0] == 1_200  # first solved stays a fact of the run
    assert (1_300, "no longer solved") in trainer.history.events
