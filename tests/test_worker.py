"""The training worker in its QThread: snapshots, live changes and their undo, slow motion, the wall-clock rate,
divergence, the analyses in their own thread, the engine, stopping."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import QObject, QThread, Signal, Slot

from core.trainer import TrainConfig, Trainer, evaluate
from explorer.analyses import Analysis
from explorer.snapshot import Snapshot
from explorer.worker import RateMeter, TrainingWorker, shutdown, start_in_thread

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
    visible = Signal(object, int)
    undo = Signal(str)
    engine = Signal(str)
    load = Signal(object)

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
        self.probe.connect(worker.set_focus)
        self.unit_scale.connect(worker.set_unit_scale)
        self.refresh.connect(worker.refresh)
        self.visible.connect(worker.set_visible)
        self.undo.connect(worker.undo)
        self.engine.connect(worker.set_engine)
        self.load.connect(worker.load_trainer)
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
    assert first.focus.operands == (45, 67) and (first.probe.a, first.probe.b) == (45, 67)
    remote.play.emit()
    qtbot.waitUntil(lambda: len(remote.snapshots) >= 5 and remote.latest.samples_seen > 100, timeout=WAIT_MS)
    counts = [s.samples_seen for s in remote.snapshots]
    assert counts == sorted(counts), "samples seen never goes back while training"
    latest = remote.latest
    assert latest.state == "training"
    assert latest.history.shape[1] == 4 and len(latest.history) >= 1  # a point every 100 samples
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


def test_hidden_resize_while_training_keeps_what_was_learned(qtbot, make_worker, solved_lstm_copy):
    trainer = solved_lstm_copy
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
    assert any(text.startswith("diverged") for _, text in diverged.events)
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


def test_analyses_run_in_their_own_thread_on_a_copy_and_a_broken_one_is_switched_off(qtbot, make_worker):
    calls: list[tuple[QThread, object, object]] = []

    def hidden_norm(weights, unit_scale):
        calls.append((QThread.currentThread(), unit_scale, weights))
        return float(np.linalg.norm(weights.params.weight_hh))

    def broken(weights, unit_scale):
        raise ZeroDivisionError("no")

    worker = TrainingWorker(Trainer(slow_config()))
    worker.add_analysis(Analysis("norm", hidden_norm, 0.0))  # before the thread starts
    remote = Remote(worker)
    thread = start_in_thread(worker)
    try:
        qtbot.waitUntil(lambda: bool(remote.snapshots), timeout=WAIT_MS)
        remote.visible.emit(frozenset({"norm"}), 1)  # its view comes on screen
        qtbot.waitUntil(lambda: "norm" in remote.latest.analyses, timeout=WAIT_MS)
        assert remote.latest.analyses["norm"].value == pytest.approx(np.linalg.norm(worker.trainer.params.weight_hh))
        assert calls[0][0] is worker.analysis_thread, "analyses run in a thread of their own"
        assert calls[0][2].params is not worker.trainer.params, "on a copy of the weights"
        worker.add_analysis(Analysis("broken", broken, 0.0))  # after: thread-safe
        remote.visible.emit(frozenset({"norm", "broken"}), 2)
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
        qtbot.waitUntil(lambda: remote.latest.unit_scale is not None and calls[-1][1] is not None
                        and "norm" not in remote.latest.pending, timeout=WAIT_MS)
        np.testing.assert_array_equal(calls[-1][1], mask)
        np.testing.assert_array_equal(remote.latest.unit_scale, mask)
        expected = np.linalg.norm(remote.latest.params.weight_hh)
        assert remote.latest.analyses["norm"].value == pytest.approx(expected)
        remote.unit_scale.emit(np.ones(3))  # wrong size: refused
        qtbot.waitUntil(lambda: len(remote.errors) == 2, timeout=WAIT_MS)
    finally:
        assert shutdown(worker, thread, 10_000)
        assert not worker.analysis_thread.isRunning()


def test_an_analysis_nobody_looks_at_does_not_run_and_a_shown_one_is_pending_until_computed(qtbot, make_worker):
    calls: list[int] = []

    def watched(weights, unit_scale):
        calls.append(weights.samples_seen)
        return weights.samples_seen

    worker, remote = make_worker(Trainer(slow_config()))
    worker.add_analysis(Analysis("watched", watched, 0.0))
    remote.refresh.emit()
    remote.play.emit()
    qtbot.waitUntil(lambda: remote.latest.state == "training" and remote.latest.samples_seen > 200, timeout=WAIT_MS)
    remote.refresh.emit()
    snapshots = len(remote.snapshots)
    qtbot.waitUntil(lambda: len(remote.snapshots) >= snapshots + 5, timeout=WAIT_MS)  # several chunks later
    assert calls == [], "hidden: never called"
    assert "watched" in remote.latest.pending, "no result for these weights: its view would say computing…"
    remote.visible.emit(frozenset({"watched"}), 1)
    qtbot.waitUntil(lambda: remote.latest.visibility_serial >= 1 and "watched" not in remote.latest.pending,
                    timeout=WAIT_MS)
    assert remote.latest.analyses["watched"].value > 0, "computed on weights after the view was shown"
    remote.visible.emit(frozenset(), 2)  # hidden again: its result stays, and it stops computing
    qtbot.waitUntil(lambda: remote.latest.visibility_serial >= 2, timeout=WAIT_MS)
    before = len(calls)
    seen = remote.latest.samples_seen
    qtbot.waitUntil(lambda: remote.latest.samples_seen > seen + 300, timeout=WAIT_MS)
    assert len(calls) <= before + 1  # (one may have been under way)
    remote.visible.emit(frozenset({"watched"}), 3)  # shown again: pending until a new result is in
    qtbot.waitUntil(lambda: remote.latest.visibility_serial >= 3, timeout=WAIT_MS)
    qtbot.waitUntil(lambda: "watched" not in remote.latest.pending, timeout=WAIT_MS)
    assert remote.latest.analyses["watched"].value >= seen


def test_the_focus_is_traced_with_its_gradient_summary_and_out_of_range_operands_are_refused(qtbot, make_worker):
    _worker, remote = make_worker(Trainer(slow_config()))
    remote.probe.emit(3, 120)
    qtbot.waitUntil(lambda: remote.latest.focus.operands == (3, 120), timeout=WAIT_MS)
    focus = remote.latest.focus
    assert (focus.trace.a, focus.trace.b) == (3, 120)
    np.testing.assert_allclose(focus.grad_hidden_norm, np.linalg.norm(focus.trace.grad_hidden, axis=1))
    assert list(focus.top_units[0]) == list(np.argsort(-np.abs(focus.trace.grad_cell[0]), kind="stable")[:3])
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



# ---- the rate, undo, runs, the engine -------------------------------------------------------------------------
def test_rate_meter_is_samples_per_wall_clock_second():
    meter = RateMeter()
    meter.restart(0.0, 0)
    assert meter.rate() == 0.0
    meter.add(0.01, 1)  # the first chunk ends: its samples count from the start, which may have waited
    assert meter.rate() == 0.0, "one chunk is not a rate yet"
    for k in range(2, 6):  # slow motion: one sample every 3 s
        meter.add(0.01 + 3 * (k - 1), k)
    assert meter.rate() == pytest.approx(1 / 3)


def test_samples_per_second_is_zero_when_paused_and_real_in_slow_motion(qtbot, make_worker):
    _worker, remote = make_worker(Trainer(slow_config()))
    assert remote.latest.samples_per_second == 0.0
    remote.speed.emit(0.001)  # about two updates a second
    remote.play.emit()
    qtbot.waitUntil(lambda: remote.latest.state == "training" and remote.latest.samples_per_second > 0,
                    timeout=WAIT_MS)
    first = next(s for s in remote.snapshots if s.state == "training" and s.samples_per_second > 0)
    last = remote.latest
    wall = [s for s in remote.snapshots if s.state == "training"]
    assert last.samples_per_second < 20, f"slow motion shows its real pace, got {last.samples_per_second}"
    assert first.samples_seen >= 2 and len(wall) >= 2
    remote.pause.emit()
    qtbot.waitUntil(lambda: remote.latest.state == "paused", timeout=WAIT_MS)
    assert remote.latest.samples_per_second == 0.0


def test_undo_takes_back_live_changes_and_a_shrink_brings_the_units_back(qtbot, make_worker):
    _worker, remote = make_worker(Trainer(slow_config()))
    before = remote.latest.params.copy()
    remote.update.emit({"learning_rate": 0.03})
    qtbot.waitUntil(lambda: remote.latest.config.learning_rate == 0.03, timeout=WAIT_MS)
    assert remote.latest.undo_text == "learning rate 0.03 → 0.001"
    remote.update.emit({"hidden_size": 4})
    qtbot.waitUntil(lambda: remote.latest.config.hidden_size == 4, timeout=WAIT_MS)
    remote.step.emit()  # the kept units learn a little after the shrink
    qtbot.waitUntil(lambda: remote.latest.samples_seen == 1, timeout=WAIT_MS)
    kept = remote.latest.params.copy()
    remote.undo.emit("")
    qtbot.waitUntil(lambda: remote.latest.config.hidden_size == 16, timeout=WAIT_MS)
    restored = remote.latest.params
    np.testing.assert_array_equal(restored.weight_hh[4:16], before.weight_hh[4:16], "discarded units are back")
    np.testing.assert_array_equal(restored.weight_ih[:4], kept.weight_ih[:4], "kept units keep what they learned")
    np.testing.assert_array_equal(restored.weight_out[:, 4:], before.weight_out[:, 4:])
    assert remote.latest.config.learning_rate == 0.03
    remote.undo.emit("")
    qtbot.waitUntil(lambda: remote.latest.config.learning_rate == 0.001, timeout=WAIT_MS)
    assert remote.latest.undo_text == ""
    remote.undo.emit("")
    qtbot.waitUntil(lambda: remote.latest.message == "nothing to undo", timeout=WAIT_MS)
    assert any(text == "discarded units restored" for _, text in remote.latest.events)


def test_undo_of_a_kind_skips_the_other_kind(qtbot, make_worker):
    _worker, remote = make_worker(Trainer(slow_config()))
    mask = np.ones(16)
    mask[2] = 0.0
    remote.unit_scale.emit(mask)
    remote.update.emit({"learning_rate": 0.02})
    qtbot.waitUntil(lambda: remote.latest.config.learning_rate == 0.02 and remote.latest.knockout_undo,
                    timeout=WAIT_MS)
    remote.undo.emit("knockout")
    qtbot.waitUntil(lambda: remote.latest.unit_scale is None, timeout=WAIT_MS)
    assert remote.latest.config.learning_rate == 0.02 and not remote.latest.knockout_undo


def test_opening_a_point_of_the_same_run_does_not_end_a_run(qtbot, make_worker):
    worker, remote = make_worker(Trainer(slow_config()))
    ended = []
    worker.sigRunEnded.connect(ended.append)
    remote.play.emit()
    qtbot.waitUntil(lambda: remote.latest.samples_seen >= 300, timeout=WAIT_MS)
    remote.pause.emit()
    qtbot.waitUntil(lambda: remote.latest.state == "paused", timeout=WAIT_MS)
    same = Trainer(slow_config(), engine="numpy")  # (the worker trains on NumPy: the same numbers to the last bit)
    same.step(100)  # an earlier point of the very same run (a session saved then, opened now)
    remote.load.emit(same)
    qtbot.waitUntil(lambda: remote.latest.samples_seen == 100, timeout=WAIT_MS)
    assert ended == [], "an earlier point of the same run continues it: no faded duplicate"
    other = Trainer(slow_config(seed=3))
    other.step(100)
    remote.load.emit(other)
    qtbot.waitUntil(lambda: len(ended) == 1, timeout=WAIT_MS)
    assert ended[0].samples_seen == 100


def test_engine_is_named_in_the_snapshot_and_the_compiled_one_trains_the_same(qtbot, make_worker):
    pytest.importorskip("numba")
    from core import kernels

    if not kernels.AVAILABLE:
        pytest.skip(kernels.UNAVAILABLE_REASON)
    _worker, remote = make_worker(Trainer(slow_config()))
    assert remote.latest.engine == "numpy"
    remote.engine.emit("compiled")
    qtbot.waitUntil(lambda: remote.latest.engine == "compiled", timeout=300_000)  # compiles if the cache is cold
    remote.step.emit()
    qtbot.waitUntil(lambda: remote.latest.samples_seen == 1, timeout=WAIT_MS)
    reference = Trainer(slow_config())
    reference.step(1)
    np.testing.assert_allclose(remote.latest.params.flat, reference.params.flat, rtol=0, atol=1e-12)
