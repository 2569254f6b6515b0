"""The training worker in its QThread: snapshots, live changes, slow motion, divergence, analyses, stopping."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from PySide6.QtCore import QObject, QThread, Signal, Slot

from core.trainer import TrainConfig, Trainer, evaluate
from explorer.snapshot import Snapshot
from explorer.worker import TrainingWorker, shutdown, start_in_thread

WAIT_MS = 30_000  # generous: the machine may be busy; nothing here is a timing assertion


class Remote(QObject):
    """Sends queued calls to the worker and records what comes back, all in the GUI thread."""

    play = Signal()
    pause = Signal()
    step = Signal()
    reset = Signal(object)
    update = Signal(object)
    speed = Signal(float)
    probe = Signal(int, int)
    unit_scale = Signal(object)
    refresh = Signal()

    def __init__(self, worker: TrainingWorker) -> None:
        super().__init__()
        self.snapshots: list[Snapshot] = []
        self.errors: list[str] = []
        self.states: list[str] = []
        self.finished = 0
        self.play.connect(worker.play)
        self.pause.connect(worker.pause)
        self.step.connect(worker.step_once)
        self.reset.connect(worker.reset)
        self.update.connect(worker.update_config)
        self.speed.connect(worker.set_speed)
        self.probe.connect(worker.set_probe)
        self.unit_scale.connect(worker.set_unit_scale)
        self.refresh.connect(worker.refresh)
        worker.sigSnapshot.connect(self.on_snapshot)
        worker.sigError.connect(self.on_error)
        worker.sigStateChanged.connect(self.on_state)
        worker.sigFinished.connect(self.on_finished)

    @Slot(object)
    def on_snapshot(self, snapshot: Snapshot) -> None:
        self.snapshots.append(snapshot)

    @Slot(str)
    def on_error(self, text: str) -> None:
        self.errors.append(text)

    @Slot(str)
    def on_state(self, state: str) -> None:
        self.states.append(state)

    @Slot()
    def on_finished(self) -> None:
        self.finished += 1

    @property
    def latest(self) -> Snapshot:
        return self.snapshots[-1]


@pytest.fixture
def make_worker(qtbot):
    """Start workers in threads; every one is stopped after the test."""
    started: list[tuple[TrainingWorker, QThread]] = []

    def make(trainer: Trainer | None = None, **options) -> tuple[TrainingWorker, Remote]:
        worker = TrainingWorker(trainer, **options)
        remote = Remote(worker)
        thread = start_in_thread(worker)
        started.append((worker, thread))
        qtbot.waitUntil(lambda: len(remote.snapshots) >= 1, timeout=WAIT_MS)
        return worker, remote

    yield make
    for worker, thread in started:
        shutdown(worker, thread, 10_000)


def slow_config(**changes) -> TrainConfig:
    """A run that does not solve within the test (tiny learning rate), so it keeps training."""
    return TrainConfig(learning_rate=0.001, **changes)


def test_worker_emits_snapshots_and_stops_cleanly(qtbot, make_worker):
    worker, remote = make_worker(Trainer(slow_config()))
    first = remote.latest
    assert first.samples_seen == 0 and first.state == "paused"
    assert first.probe is not None and (first.probe.a, first.probe.b) == (45, 67)
    remote.play.emit()
    qtbot.waitUntil(lambda: len(remote.snapshots) >= 5 and remote.latest.samples_seen > 0, timeout=WAIT_MS)
    counts = [s.samples_seen for s in remote.snapshots]
    assert counts == sorted(counts), "samples seen never goes back while training"
    latest = remote.latest
    assert latest.state == "training"
    assert latest.history.shape[1] == 4 and len(latest.history) >= 1
    # snapshots hold copies: the live trainer moving on does not change one already sent
    frozen = latest.params.flat.copy()
    qtbot.waitUntil(lambda: remote.latest.samples_seen > latest.samples_seen, timeout=WAIT_MS)
    np.testing.assert_array_equal(latest.params.flat, frozen)
    assert not np.shares_memory(latest.params.flat, worker.trainer.params.flat)

    thread = worker.thread()
    assert shutdown(worker, thread, 5000)
    assert not thread.isRunning()
    qtbot.waitUntil(lambda: remote.finished == 1, timeout=WAIT_MS)  # delivered to this thread after stop()
    assert remote.errors == []


def test_learning_rate_change_reaches_the_running_trainer_without_reset(qtbot, make_worker):
    worker, remote = make_worker(Trainer(slow_config()))
    remote.play.emit()
    qtbot.waitUntil(lambda: remote.latest.samples_seen > 0, timeout=WAIT_MS)
    remote.update.emit({"learning_rate": 0.5})
    qtbot.waitUntil(lambda: remote.latest.config.learning_rate == 0.5, timeout=WAIT_MS)
    changed_at = remote.latest.samples_seen
    assert worker.trainer.config.learning_rate == 0.5
    assert worker.trainer.optimizer.learning_rate == 0.5
    qtbot.waitUntil(lambda: remote.latest.samples_seen > changed_at, timeout=WAIT_MS)
    counts = [s.samples_seen for s in remote.snapshots]
    assert counts == sorted(counts), "no reset: samples seen kept growing"
    assert any("learning rate 0.001 -> 0.5" in text for _, text in remote.latest.events)
    assert remote.errors == []


def test_hidden_resize_while_training_keeps_what_was_learned(qtbot, make_worker):
    trainer = Trainer(TrainConfig(seed=0))
    while trainer.accuracy < 0.98 and trainer.samples_seen < 30_000:
        trainer.step(500)
    assert trainer.accuracy >= 0.98, "the default run learns addition (precondition)"
    before = evaluate(trainer.params, 8).accuracy
    _worker, remote = make_worker(trainer, pause_when_solved=False)
    remote.update.emit({"learning_rate": 0.01})  # gentle, so later training does not move far
    remote.play.emit()
    qtbot.waitUntil(lambda: remote.latest.state == "training", timeout=WAIT_MS)
    remote.update.emit({"hidden_size": 24})
    qtbot.waitUntil(lambda: remote.latest.params.hidden_size == 24, timeout=WAIT_MS)
    resized = remote.latest
    after = evaluate(resized.params, 8).accuracy  # exhaustive over all 16,384 sums, computed here
    assert after >= before - 0.05
    assert resized.config.hidden_size == 24
    assert resized.probe is not None and resized.probe.hidden.shape == (9, 24)
    qtbot.waitUntil(lambda: remote.latest.samples_seen > resized.samples_seen, timeout=WAIT_MS)
    assert remote.errors == []


def test_a_thousand_rapid_control_changes_cause_no_error(qtbot, make_worker):
    _worker, remote = make_worker(Trainer(slow_config()), pause_when_solved=False)
    remote.play.emit()
    qtbot.waitUntil(lambda: remote.latest.samples_seen > 0, timeout=WAIT_MS)
    rng = np.random.default_rng(1)
    optimizers = ("sgd", "momentum", "adam")
    for k in range(1000):
        kind = k % 5
        if kind == 0:
            remote.update.emit({"learning_rate": float(10 ** rng.uniform(-4, -1))})
        elif kind == 1:
            remote.update.emit({"hidden_size": int(rng.integers(1, 40))})
        elif kind == 2:
            remote.update.emit({"optimizer": optimizers[k % 3], "batch_size": int(rng.integers(1, 9))})
        elif kind == 3:
            remote.update.emit({"clip_norm": float(rng.choice([0.0, 0.5, 5.0]))})
        else:
            remote.speed.emit(float(rng.choice([1.0, 0.5, 1.0])))
            remote.probe.emit(int(rng.integers(0, 128)), int(rng.integers(0, 128)))
    remote.update.emit({"learning_rate": 0.002, "hidden_size": 7, "batch_size": 3, "optimizer": "adam"})
    remote.speed.emit(1.0)
    qtbot.waitUntil(lambda: remote.latest.config.hidden_size == 7 and remote.latest.config.batch_size == 3
                    and remote.latest.config.learning_rate == 0.002, timeout=WAIT_MS)
    settled = remote.latest.samples_seen
    qtbot.waitUntil(lambda: remote.latest.samples_seen > settled, timeout=WAIT_MS)
    assert remote.errors == []
    assert remote.latest.state == "training"
    assert np.all(np.isfinite(remote.latest.params.flat))


def test_divergence_pauses_with_finite_weights(qtbot, make_worker):
    worker, remote = make_worker(Trainer(TrainConfig(seed=3)), pause_when_solved=False)
    remote.update.emit({"learning_rate": 1e3})
    remote.play.emit()
    qtbot.waitUntil(lambda: "diverged" in remote.states, timeout=WAIT_MS)
    qtbot.waitUntil(lambda: remote.latest.state == "diverged", timeout=WAIT_MS)
    diverged = remote.latest
    assert "learning rate" in diverged.message
    assert np.all(np.isfinite(diverged.params.flat))
    assert np.all(np.isfinite(worker.trainer.params.flat))
    assert any(text == "diverged" for _, text in diverged.events)
    # paused: a refresh round-trip shows the sample count has not moved
    remote.refresh.emit()
    qtbot.waitUntil(lambda: remote.latest is not diverged, timeout=WAIT_MS)
    assert remote.latest.samples_seen == diverged.samples_seen
    assert worker.state == "diverged"


def test_refused_change_is_reported_and_changes_nothing(qtbot, make_worker):
    worker, remote = make_worker(Trainer(slow_config()))
    remote.update.emit({"learning_rate": -1.0})
    remote.update.emit({"seed": 5})  # not a live setting
    qtbot.waitUntil(lambda: len(remote.errors) == 2, timeout=WAIT_MS)
    assert "learning rate" in remote.errors[0]
    assert "reset" in remote.errors[1]
    assert worker.trainer.config == slow_config()


def test_step_trains_exactly_one_batch_and_reset_starts_afresh(qtbot, make_worker):
    _worker, remote = make_worker(Trainer(slow_config(batch_size=4)))
    remote.step.emit()
    qtbot.waitUntil(lambda: remote.latest.samples_seen == 4, timeout=WAIT_MS)
    assert remote.latest.state == "paused"
    remote.reset.emit(TrainConfig(seed=9, hidden_size=5))
    qtbot.waitUntil(lambda: remote.latest.config.seed == 9, timeout=WAIT_MS)
    assert remote.latest.samples_seen == 0
    assert remote.latest.params.hidden_size == 5
    np.testing.assert_array_equal(remote.latest.params.flat, Trainer(TrainConfig(seed=9, hidden_size=5)).params.flat)


def test_slow_motion_shows_single_updates(qtbot, make_worker):
    _worker, remote = make_worker(Trainer(slow_config()))
    remote.speed.emit(0.002)
    remote.play.emit()
    qtbot.waitUntil(lambda: sum(s.state == "training" and s.samples_seen > 0 for s in remote.snapshots) >= 4,
                    timeout=WAIT_MS)
    remote.pause.emit()
    counts = sorted({s.samples_seen for s in remote.snapshots if s.state == "training"})
    assert np.all(np.diff(counts) == 1), f"each snapshot shows one more update: {counts}"


def test_analyses_run_in_the_worker_and_a_broken_one_is_switched_off(qtbot, make_worker):
    calls: list[tuple[QThread, object]] = []

    def hidden_norm(trainer: Trainer, unit_scale):
        calls.append((QThread.currentThread(), unit_scale))
        return float(np.linalg.norm(trainer.params.weight_hh))

    def broken(trainer: Trainer, unit_scale):
        raise ZeroDivisionError("no")

    worker = TrainingWorker(Trainer(slow_config()))
    worker.add_analysis("norm", hidden_norm, 0.0)  # before the thread starts
    remote = Remote(worker)
    thread = start_in_thread(worker)
    try:
        qtbot.waitUntil(lambda: bool(remote.snapshots) and "norm" in remote.latest.analyses, timeout=WAIT_MS)
        assert remote.latest.analyses["norm"] == pytest.approx(np.linalg.norm(worker.trainer.params.weight_hh))
        assert calls[0][0] is thread, "analyses run in the worker thread"
        worker.add_analysis("broken", broken, 0.0)  # after: thread-safe
        remote.play.emit()
        qtbot.waitUntil(lambda: len(remote.errors) >= 1 and remote.latest.samples_seen > 0, timeout=WAIT_MS)
        seen = remote.latest.samples_seen
        qtbot.waitUntil(lambda: remote.latest.samples_seen > seen, timeout=WAIT_MS)  # still training
        assert len(remote.errors) == 1 and "broken" in remote.errors[0]
        assert "broken" not in remote.latest.analyses
        remote.pause.emit()
        mask = np.ones(16)
        mask[3] = 0.0
        remote.unit_scale.emit(mask)
        qtbot.waitUntil(lambda: remote.latest.unit_scale is not None and calls[-1][1] is not None, timeout=WAIT_MS)
        np.testing.assert_array_equal(calls[-1][1], mask)
        np.testing.assert_array_equal(remote.latest.unit_scale, mask)
        expected = np.linalg.norm(remote.latest.params.weight_hh)
        assert remote.latest.analyses["norm"] == pytest.approx(expected)
        remote.unit_scale.emit(np.ones(3))  # wrong size: refused
        qtbot.waitUntil(lambda: len(remote.errors) == 2, timeout=WAIT_MS)
    finally:
        assert shutdown(worker, thread, 10_000)


def test_probe_follows_set_probe_and_rejects_operands_out_of_range(qtbot, make_worker):
    _worker, remote = make_worker(Trainer(slow_config()))
    remote.probe.emit(3, 120)
    qtbot.waitUntil(lambda: remote.latest.probe_operands == (3, 120), timeout=WAIT_MS)
    assert (remote.latest.probe.a, remote.latest.probe.b) == (3, 120)
    remote.probe.emit(200, 1)
    qtbot.waitUntil(lambda: len(remote.errors) == 1, timeout=WAIT_MS)
    assert remote.latest.probe_operands == (3, 120)


def test_training_pauses_when_every_sum_is_right(qtbot, make_worker, learning_lstm_copy):
    _worker, remote = make_worker(learning_lstm_copy)  # most sums right, not all: the worker trains on to solved
    remote.play.emit()
    qtbot.waitUntil(lambda: "solved" in remote.states, timeout=120_000)
    qtbot.waitUntil(lambda: remote.latest.state == "solved", timeout=WAIT_MS)
    solved = remote.latest
    assert solved.solved_at is not None and "solved" in solved.message
    assert evaluate(solved.params, 8).accuracy == 1.0, "every one of the 16,384 sums is right"


def test_an_analysis_nobody_looks_at_does_not_run_while_training(qtbot, make_worker):
    calls: list[int] = []
    on_screen = threading.Event()

    def watched(trainer: Trainer, unit_scale):
        calls.append(trainer.samples_seen)
        return trainer.samples_seen

    worker, remote = make_worker(Trainer(slow_config()))
    worker.add_analysis("watched", watched, 0.0, wanted=on_screen.is_set)
    remote.refresh.emit()  # paused: forced runs compute whatever is registered
    qtbot.waitUntil(lambda: "watched" in remote.latest.analyses, timeout=WAIT_MS)
    assert remote.latest.analyses["watched"] == 0
    remote.play.emit()
    qtbot.waitUntil(lambda: remote.latest.state == "training" and remote.latest.samples_seen > 0, timeout=WAIT_MS)
    before = len(calls)
    remote.refresh.emit()  # a refresh while training runs only the analyses someone looks at
    snapshots = len(remote.snapshots)
    qtbot.waitUntil(lambda: len(remote.snapshots) >= snapshots + 5, timeout=WAIT_MS)  # several chunks later
    assert len(calls) == before, "hidden: never called while training"
    assert remote.latest.analyses["watched"] == 0, "its last result stays"
    on_screen.set()  # shown (its view would also ask for a refresh)
    qtbot.waitUntil(lambda: remote.latest.analyses["watched"] > 0, timeout=WAIT_MS)
    assert len(calls) > before
