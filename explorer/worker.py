"""TrainingWorker: drives a Trainer in its own QThread and sends frozen snapshots to the GUI.

The loop is a single-shot QTimer in the worker thread: each tick trains one chunk (sized to take ~60 ms),
runs at most one analysis that is due and, at most ~30 times a second, emits a Snapshot. Between ticks the
thread's event loop delivers the queued slot calls from the GUI (play, pause, live hyperparameter changes...),
so a change applies at the next chunk and stop() is handled within one chunk (or one analysis). Analyses that
must all run now (refresh, a reset, a change while paused) also run one per event-loop turn, so controls are
never stuck behind them; however slow an analysis is, analyses get at most ANALYSIS_SHARE of the time while
training, and while training an analysis whose view is hidden does not run at all. The worker never touches a
widget.
"""

from __future__ import annotations

import math
import sys
import threading
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from PySide6.QtCore import QMetaObject, QObject, Qt, QThread, QTimer, Signal, Slot

from core import task
from core.trainer import ChunkResult, ConfigError, TrainConfig, Trainer
from explorer import snapshot as snapshots
from explorer.snapshot import DEFAULT_PROBE, Snapshot

AnalysisFn = Callable[[Trainer, "np.ndarray | None"], object]

CHUNK_SECONDS = 0.06  # training time per chunk at full speed: short enough for prompt controls, long enough that
# the held-out evaluation after each chunk stays a small share (with ~15 ms chunks it took a fifth of the time),
# and above OVERHEAD_SHARE times that evaluation as usually measured, so a one-off measurement that came out
# high or low does not decide how much of the time training gets
SNAPSHOT_INTERVAL = 1 / 30  # at most ~30 snapshots a second
SLOW_TICK_SECONDS = 1 / 30  # in slow motion, at most this often a tick (each one or a few updates)
MIN_SPEED = 1e-4  # slowest speed fraction accepted by set_speed
MAX_CHUNK_SAMPLES = 1 << 20
ANALYSIS_SHARE = 0.05  # while training, analyses together take at most about this share of the worker's time
OVERHEAD_SHARE = 4  # a chunk trains at least this many times as long as its fixed held-out evaluation takes ...
MAX_CHUNK_SECONDS = 0.1  # ... but not longer than this, so controls still apply promptly
# How long a thread that wants the interpreter waits before the one running Python must hand it over. Python's
# default, 5 ms, makes every call into Python from the GUI thread (each paint of a plot, each snapshot) wait up to
# that long while training runs, and a paint that needs the interpreter for 10 ms then takes 30 ms or more.
GIL_SWITCH_SECONDS = 0.001

# Every thread started by start_in_thread, so tests can check none is left running.
LIVE_THREADS: weakref.WeakSet[QThread] = weakref.WeakSet()


@dataclass
class _Analysis:
    fn: AnalysisFn
    period_s: float
    wanted: Callable[[], bool] | None = None  # None: always wanted
    last_run: float = -math.inf  # time.monotonic() of the last run
    duration: float = 0.0  # seconds the last run took
    enabled: bool = True

    def is_wanted(self) -> bool:
        return self.wanted is None or bool(self.wanted())


class TrainingWorker(QObject):
    """Owns a Trainer; lives in a QThread; talks to the GUI only through signals and queued slots."""

    sigSnapshot = Signal(object)  # Snapshot
    sigError = Signal(str)  # a message for the user; the worker keeps running
    sigStateChanged = Signal(str)  # training | paused | solved | diverged
    sigFinished = Signal()
    sigRunEnded = Signal(object)  # Snapshot of a trained run about to be replaced by a reset or a load

    def __init__(self, trainer: Trainer | None = None, *, pause_when_solved: bool = True,
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.trainer = trainer if trainer is not None else Trainer(TrainConfig())
        self.pause_when_solved = pause_when_solved  # stop at the moment every sum is first right
        self._state = "paused"
        self._speed = 1.0
        self._chunk_samples = self.trainer.config.batch_size
        self._full_updates_per_second = 2000.0  # refined from full-speed chunks; sets the slow-motion pace
        self._chunk_overhead = 0.0  # seconds of held-out evaluation after every chunk, measured in the thread
        self._overhead_stale = True  # measure it (again) before the next chunk: the model size changed
        self._exhaustive_cost: float | None = None  # seconds of one check over all pairs
        self._seconds_per_sample: float | None = None  # training time per sample, smoothed over chunks
        self._last_chunk = (math.nan, math.nan)  # (loss, bit error) of the latest chunk
        self._last_sample: tuple[int, int, int] | None = None
        self._message = ""
        self._probe = DEFAULT_PROBE
        self._unit_scale: np.ndarray | None = None
        self._serial = 0
        self._last_emit = -math.inf
        self._snapshot_pending = False
        self._stopping = threading.Event()
        self._analyses_lock = threading.Lock()
        self._analyses: dict[str, _Analysis] = {}
        self._results: dict[str, object] = {}
        self._forced: list[str] = []  # analyses to run now, one per event-loop turn, then a snapshot
        # Children move with the worker to its thread, so the timers fire there.
        self._tick_timer = QTimer(self)
        self._tick_timer.setSingleShot(True)
        self._tick_timer.timeout.connect(self._tick)
        self._flush_timer = QTimer(self)
        self._flush_timer.setSingleShot(True)
        self._flush_timer.timeout.connect(self._flush)
        self._analysis_timer = QTimer(self)
        self._analysis_timer.setSingleShot(True)
        self._analysis_timer.timeout.connect(self._run_forced_analysis)

    # ---- thread-safe API ------------------------------------------------------------------------------------
    @property
    def state(self) -> str:
        return self._state

    def add_analysis(self, name: str, fn: AnalysisFn, period_s: float,
                     wanted: Callable[[], bool] | None = None) -> None:
        """Run fn(trainer, unit_scale) in the worker thread every period_s seconds while training (and on
        refresh); its latest result rides on every snapshot as snapshot.analyses[name]. Replaces a same-named one.

        wanted() (called in the worker thread, so it must be thread-safe; typically "is its view on screen?") is
        asked before each run while training: when it says no, fn is not called at all and the last result stays,
        so a hidden view costs training nothing. Whoever shows the view again asks for a refresh. While paused,
        forced runs (refresh, reset, step) call fn regardless, and fn decides what is worth computing."""
        if period_s < 0 or not math.isfinite(period_s):
            raise ValueError(f"period must be a finite number of seconds >= 0, got {period_s}")
        with self._analyses_lock:
            self._analyses[name] = _Analysis(fn, float(period_s), wanted)

    def analysis_names(self) -> list[str]:
        """Names of the registered analyses; callable from any thread."""
        with self._analyses_lock:
            return list(self._analyses)

    def remove_analysis(self, name: str) -> None:
        with self._analyses_lock:
            self._analyses.pop(name, None)
            self._results.pop(name, None)

    def request_stop(self) -> None:
        """Ask the loop to stop at the next tick; callable from any thread."""
        self._stopping.set()

    def snapshot_now(self, message: str = "") -> Snapshot:
        """Build a snapshot without emitting it. Only in the thread that owns the trainer (or before start)."""
        self._serial += 1
        with self._analyses_lock:
            results = dict(self._results)
        return snapshots.take(self.trainer, state=self._state, message=message, probe_operands=self._probe,
                              unit_scale=self._unit_scale, analyses=results, last_chunk=self._last_chunk,
                              last_sample=self._last_sample, serial=self._serial)

    # ---- slots (queued from the GUI) ------------------------------------------------------------------------
    @Slot()
    def start(self) -> None:
        """First call in the worker thread: send the initial picture at once, then compute the analyses."""
        self._emit_snapshot(force=True)
        self._force_analyses()
        if self._state == "training":
            self._tick_timer.start(0)

    @Slot()
    def play(self) -> None:
        if self._state == "training" or self._stopping.is_set():
            return
        self._set_state("training", "training")
        self._tick_timer.start(0)

    @Slot()
    def pause(self) -> None:
        if self._state == "training":
            self._tick_timer.stop()
            self._set_state("paused", "paused")

    @Slot()
    def step_once(self) -> None:
        """Pause, then train exactly one batch (one sample at batch size 1) and show the result."""
        if self._stopping.is_set():
            return
        self._tick_timer.stop()
        state = "paused"
        result = self.trainer.step(self.trainer.config.batch_size)
        self._record(result)
        message = f"one step: {result.samples} sample{'s' if result.samples != 1 else ''}"
        if result.diverged:
            state, message = "diverged", result.message
        self._set_state(state, message, emit=False)
        self._emit_snapshot(force=True)
        self._force_analyses()

    @Slot(object)
    def reset(self, config: TrainConfig) -> None:
        """Start afresh with config (new weights, history and held-out set); paused afterwards."""
        try:
            trainer = Trainer(config)
        except (ConfigError, ValueError, TypeError) as error:
            self.sigError.emit(f"reset refused: {error}")
            return
        self._replace_trainer(trainer, f"reset: new weights, seed {trainer.config.seed}")

    @Slot(object)
    def load_trainer(self, trainer: Trainer) -> None:
        """Replace the trainer wholesale (a loaded session); paused afterwards."""
        if not isinstance(trainer, Trainer):
            self.sigError.emit(f"not a trainer: {type(trainer).__name__}")
            return
        self._replace_trainer(trainer, f"loaded: {trainer.samples_seen:,} samples trained")

    @Slot(object)
    def update_config(self, changes: dict) -> None:
        """Live hyperparameter changes (TrainConfig.LIVE names); a bad value changes nothing and is reported."""
        try:
            described = self.trainer.update(**dict(changes))
        except ConfigError as error:
            self.sigError.emit(str(error))
            return
        except TypeError as error:  # not a mapping of names to values
            self.sigError.emit(f"not a set of changes: {error}")
            return
        if not described:
            return
        self._chunk_samples = max(self._chunk_samples, self.trainer.config.batch_size)
        if "hidden_size" in changes:
            self._overhead_stale = True
        if "hidden_size" in changes or "batch_size" in changes:
            self._seconds_per_sample = None  # relearn it: the cost per sample changed
        self._model_changed("; ".join(described))

    @Slot(bool)
    def set_auto_stop(self, on: bool) -> None:
        """Pause (or not) at the end of the chunk in which every sum first comes out right."""
        self.pause_when_solved = bool(on)

    @Slot(float)
    def set_speed(self, fraction: float) -> None:
        """1 = full speed; smaller = slow motion (the fraction of full-speed updates per second)."""
        fraction = float(fraction)
        if not math.isfinite(fraction) or fraction <= 0:
            self.sigError.emit(f"speed must be a number above 0, got {fraction}")
            return
        self._speed = min(1.0, max(MIN_SPEED, fraction))
        if self._state == "training":
            self._tick_timer.start(0)  # a long slow-motion wait should not delay a faster speed

    @Slot(int, int)
    def set_probe(self, a: int, b: int) -> None:
        """The addition the heatmaps trace."""
        n_bits = self.trainer.config.n_bits
        try:
            a = task.check_operand(a, n_bits, "first operand")
            b = task.check_operand(b, n_bits, "second operand")
        except task.TaskError as error:
            self.sigError.emit(str(error))
            return
        self._probe = (a, b)
        self._emit_snapshot(force=self._state != "training")

    @Slot(object)
    def set_unit_scale(self, unit_scale: np.ndarray | None) -> None:
        """Knockout mask (H,) for the analyses and the probe (0 silences a unit), or None for none."""
        if unit_scale is not None:
            unit_scale = np.array(unit_scale, dtype=np.float64)
            hidden = self.trainer.params.hidden_size
            if unit_scale.shape != (hidden,) or not np.all(np.isfinite(unit_scale)):
                self.sigError.emit(f"unit mask must be {hidden} finite numbers, got shape {unit_scale.shape}")
                return
        self._unit_scale = unit_scale
        self._model_changed("")

    @Slot()
    def refresh(self) -> None:
        """Recompute every analysis now (one per event-loop turn) and send a snapshot when done."""
        self._force_analyses()
        if not self._forced:
            self._emit_snapshot()

    @Slot()
    def stop(self) -> None:
        """Stop training for good; the owner then quits and waits for the thread."""
        self._stopping.set()
        self._tick_timer.stop()
        self._flush_timer.stop()
        self._analysis_timer.stop()
        self._forced.clear()
        if self._state == "training":
            self._set_state("paused", "stopped", emit=False)
        self.sigFinished.emit()

    # ---- the loop -------------------------------------------------------------------------------------------
    @Slot()
    def _tick(self) -> None:
        if self._state != "training" or self._stopping.is_set():
            return
        full_speed = self._speed >= 1.0
        if full_speed:
            chunk = self._chunk_samples
        else:  # one or a few updates per tick, so single updates can be watched
            updates_per_second = self._speed * self._full_updates_per_second
            chunk = max(1, round(updates_per_second * SLOW_TICK_SECONDS)) * self.trainer.config.batch_size
        if self._overhead_stale:
            self._measure_overhead()
        was_solved = self.trainer.solved
        started = time.monotonic()
        result = self.trainer.step(chunk)
        elapsed = time.monotonic() - started
        self._record(result)
        if result.samples and elapsed > 0:
            # The trainer checks all pairs after a chunk whose held-out accuracy is perfect, until it is solved.
            checked_all = result.accuracy == 1.0 and not was_solved
            self._adapt_chunk(result.samples, elapsed, full_speed, checked_all)
        if result.diverged:
            self._set_state("diverged", result.message, emit=False)
            self._emit_snapshot(force=True)
            self._force_analyses()
            return
        if self.trainer.solved and self.pause_when_solved and not was_solved:
            samples, seconds = self.trainer.solved_at
            self._set_state("solved", f"solved: every sum right after {samples:,} samples ({seconds:.1f} s of "
                            "training). Press Play to keep training.", emit=False)
            self._emit_snapshot(force=True)
            self._force_analyses()
            return
        if not self._forced:  # (forced ones run from their own timer)
            self._run_due_analysis()
        self._emit_snapshot()
        if full_speed:
            self._tick_timer.start(0)
        else:
            batches = max(1, result.samples // self.trainer.config.batch_size)
            wait = batches / (self._speed * self._full_updates_per_second) - elapsed
            self._tick_timer.start(max(0, round(1000 * wait)))

    def _record(self, result: ChunkResult) -> None:
        """Keep the chunk's metrics for the snapshot."""
        if result.samples:
            self._last_chunk = (result.loss, result.bit_error)
            self._last_sample = (result.last_a, result.last_b, result.last_prediction)

    def _adapt_chunk(self, samples: int, elapsed: float, full_speed: bool, checked_all: bool) -> None:
        """Learn the time per sample (the chunk's time less its fixed evaluations) and size the next chunk to
        train for CHUNK_SECONDS, or longer when the fixed part is slow so that it stays a small share.
        The size changes by at most 2x per chunk, so one chunk slowed by something else does not collapse it."""
        fixed = self._chunk_overhead + (self._exhaustive_seconds() if checked_all else 0.0)
        per_sample = max(elapsed - fixed, 0.1 * elapsed) / samples
        self._seconds_per_sample = (per_sample if self._seconds_per_sample is None
                                    else 0.7 * self._seconds_per_sample + 0.3 * per_sample)
        batch = self.trainer.config.batch_size
        if not full_speed:
            return
        self._full_updates_per_second = 1.0 / (self._seconds_per_sample * batch)
        next_fixed = self._chunk_overhead + (self._exhaustive_seconds() if self._will_check_all() else 0.0)
        target = min(MAX_CHUNK_SECONDS, max(CHUNK_SECONDS, OVERHEAD_SHARE * next_fixed))
        wanted = target / self._seconds_per_sample
        wanted = min(2 * self._chunk_samples, max(self._chunk_samples / 2, wanted))
        self._chunk_samples = int(min(MAX_CHUNK_SAMPLES, max(batch, wanted)))

    def _will_check_all(self) -> bool:
        return self.trainer.accuracy == 1.0 and not self.trainer.solved

    def _exhaustive_seconds(self) -> float:
        """Time of one check over all pairs, measured once per model size."""
        if self._exhaustive_cost is None:
            started = time.monotonic()
            self.trainer.exhaustive_accuracy()
            self._exhaustive_cost = time.monotonic() - started
        return self._exhaustive_cost

    def _measure_overhead(self) -> None:
        """Time the fixed cost of a chunk (the held-out evaluation after it), refreshing the accuracy with it.
        The fastest of three runs: one run can be slowed by whatever else the process is doing."""
        timings = []
        for _ in range(3):
            started = time.monotonic()
            self.trainer.accuracy = self.trainer.heldout_accuracy()
            timings.append(time.monotonic() - started)
        self._chunk_overhead = min(timings)
        self._exhaustive_cost = None
        self._overhead_stale = False

    def _set_state(self, state: str, message: str, emit: bool = True) -> None:
        changed = state != self._state
        self._state = state
        self._message = message
        if state != "training":
            self._tick_timer.stop()
        if changed:
            self.sigStateChanged.emit(state)
        if emit:
            self._emit_snapshot(force=True)

    def _replace_trainer(self, trainer: Trainer, message: str) -> None:
        self._tick_timer.stop()
        if self.trainer.samples_seen > 0:  # its final state, for views that keep earlier runs to compare
            self.sigRunEnded.emit(self.snapshot_now())
        self.trainer = trainer
        self._chunk_samples = trainer.config.batch_size
        self._seconds_per_sample = None
        self._overhead_stale = True
        self._last_chunk = (math.nan, math.nan)
        self._last_sample = None
        self._unit_scale = None
        with self._analyses_lock:
            self._results.clear()
        self._set_state("paused", message, emit=False)
        self._emit_snapshot(force=True)
        self._force_analyses()

    def _model_changed(self, message: str) -> None:
        """The weights or mask changed outside a chunk: analyses are stale."""
        self._message = message or self._message
        if self._state != "training" and self._overhead_stale:
            self._measure_overhead()  # which also measures the changed model's accuracy
        self._force_analyses()
        self._emit_snapshot()

    def _enabled_analyses(self) -> list[tuple[str, _Analysis]]:
        with self._analyses_lock:
            return [(name, a) for name, a in self._analyses.items() if a.enabled]

    def _should_run(self, analysis: _Analysis) -> bool:
        """Enabled, and while training also wanted (see add_analysis)."""
        return analysis.enabled and (self._state != "training" or analysis.is_wanted())

    def _force_analyses(self) -> None:
        """Run every analysis soon, one per event-loop turn, then send a snapshot."""
        self._forced = [name for name, _ in self._enabled_analyses()]
        if self._forced and not self._stopping.is_set():
            self._analysis_timer.start(0)

    @Slot()
    def _run_forced_analysis(self) -> None:
        if self._stopping.is_set():
            return
        while self._forced:
            name = self._forced.pop(0)
            with self._analyses_lock:
                analysis = self._analyses.get(name)
            if analysis is not None and self._should_run(analysis):
                self._run_analysis(name, analysis)
                break
        if self._forced:
            self._emit_snapshot()
            self._analysis_timer.start(0)
        else:
            self._emit_snapshot(force=True)

    def _run_due_analysis(self) -> None:
        """Run the most overdue analysis, if any is due. An analysis waits at least its period, and longer when
        analyses are slow, so that all of them together take about ANALYSIS_SHARE of the time."""
        enabled = [(name, analysis) for name, analysis in self._enabled_analyses() if self._should_run(analysis)]
        now = time.monotonic()
        # Each runs at most once per (the wanted analyses' run time) / ANALYSIS_SHARE, so together they take at
        # most that share of the time; quick ones (results that are still exact) cost nothing.
        shared_interval = sum(analysis.duration for _, analysis in enabled) / ANALYSIS_SHARE
        overdue = []
        for name, analysis in enabled:
            interval = max(analysis.period_s, shared_interval)
            late = now - analysis.last_run - interval
            if late >= 0:
                overdue.append((late, name, analysis))
        if overdue:
            _, name, analysis = max(overdue, key=lambda item: item[0])
            self._run_analysis(name, analysis)

    def _run_analysis(self, name: str, analysis: _Analysis) -> None:
        started = time.monotonic()
        analysis.last_run = started
        try:
            result = analysis.fn(self.trainer, snapshots.mask_for(self.trainer.params, self._unit_scale))
        except Exception as error:  # a broken analysis must not kill training
            analysis.enabled = False
            self.sigError.emit(f"analysis {name!r} failed and is switched off: {type(error).__name__}: {error}")
            return
        analysis.duration = time.monotonic() - started
        with self._analyses_lock:
            if self._analyses.get(name) is analysis:
                self._results[name] = result

    def _emit_snapshot(self, force: bool = False) -> None:
        """Send a snapshot now if forced or the last one is old enough; else make sure one follows soon."""
        now = time.monotonic()
        wait = self._last_emit + SNAPSHOT_INTERVAL - now
        if not force and wait > 0:
            self._snapshot_pending = True
            if not self._flush_timer.isActive():  # even while training: in slow motion the next chunk may be far
                self._flush_timer.start(max(1, round(1000 * wait)))
            return
        self._flush_timer.stop()
        self._snapshot_pending = False
        self._last_emit = now
        message, self._message = self._message, ""
        self.sigSnapshot.emit(self.snapshot_now(message))

    @Slot()
    def _flush(self) -> None:
        if self._snapshot_pending and not self._stopping.is_set():
            self._emit_snapshot(force=True)


def start_in_thread(worker: TrainingWorker) -> QThread:
    """Move worker to a new QThread and start it; worker.start runs first in that thread."""
    sys.setswitchinterval(min(sys.getswitchinterval(), GIL_SWITCH_SECONDS))  # keep the GUI thread responsive
    thread = QThread()
    thread.setObjectName("training")
    worker.moveToThread(thread)
    thread.started.connect(worker.start)
    LIVE_THREADS.add(thread)
    thread.start()
    return thread


def shutdown(worker: TrainingWorker, thread: QThread, timeout_ms: int = 2000) -> bool:
    """Stop the worker (flag, then stop() in its thread), quit the thread and wait. True if it ended in time."""
    worker.request_stop()
    if thread.isRunning():
        # Blocking: stop() runs in the worker thread between chunks, stopping its timers there (a timer can only
        # be stopped by its own thread), and returns within one chunk.
        QMetaObject.invokeMethod(worker, "stop", Qt.ConnectionType.BlockingQueuedConnection)
        thread.quit()
        return thread.wait(timeout_ms)
    return True
