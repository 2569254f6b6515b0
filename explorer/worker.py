"""TrainingWorker: drives a Trainer in its own QThread and sends frozen snapshots to the GUI.

The loop is a single-shot QTimer in the worker thread: each tick trains one chunk, sized to take at most
CHUNK_SECONDS (a run does not depend on how it is chunked: see core.trainer), offers a copy of the weights to the
analyses (which run in a thread of their own: see explorer.analyses) and, at most ~30 times a second, emits a
Snapshot. Between ticks the thread's event loop delivers the queued slot calls from the GUI (play, pause, live
hyperparameter changes, the focus...), so a change applies at the next chunk and stop() is handled within one chunk.
On the compiled engine a chunk runs without the interpreter lock, so the GUI thread never waits for training. The
worker never touches a widget.
"""

from __future__ import annotations

import collections
import dataclasses
import math
import sys
import threading
import time
import weakref
from dataclasses import dataclass

import numpy as np
from PySide6.QtCore import QMetaObject, QObject, Qt, QThread, QTimer, Signal, Slot

from core import codeview, story, task, timeline, undo
from core import engine as engine_module
from core.trainer import CHECK_EVERY, ChunkResult, ConfigError, TrainConfig, Trainer
from explorer import snapshot as snapshots
from explorer.analyses import Analysis, AnalysisBook, AnalysisRunner, Weights
from explorer.snapshot import DEFAULT_FOCUS, Snapshot

CHUNK_SECONDS = 0.015  # training time per chunk at full speed: Pause, a change or Quit apply within about this
MAX_CHUNK_SECONDS = 0.02  # a chunk is sized never to take longer than this (a single update may, at huge batches)
SNAPSHOT_INTERVAL = 1 / 30  # at most ~30 snapshots a second
OFFER_INTERVAL = 0.1  # while training, the analyses get a copy of the weights at most this often
SLOW_TICK_SECONDS = 1 / 30  # in slow motion, at most this often a tick (each one or a few updates)
MIN_SPEED = 1e-4  # slowest speed fraction accepted by set_speed
MAX_CHUNK_SAMPLES = 1 << 20
RATE_WINDOW_S = 1.0  # samples/s is measured over at least this much wall-clock time ...
RATE_TICKS = 3  # ... and over at least this many chunk ends (slow motion has seconds between them)
MAX_UNDO = 100
CODE_INTERVAL = 1 / 6  # while training, the code view's recording (~2 ms) is renewed at most this often
FINISH_WAIT_MS = 120_000
# How long a thread that wants the interpreter waits before the one running Python must hand it over. Python's
# default, 5 ms, makes every call into Python from the GUI thread wait up to that long while NumPy training runs,
# and the training thread wait as long for it back after each compiled call (it returns many times a chunk).
GIL_SWITCH_SECONDS = 0.0002

# Every thread started by start_in_thread, so tests can check none is left running.
LIVE_THREADS: weakref.WeakSet[QThread] = weakref.WeakSet()


@dataclass
class _Undo:
    """One live change Ctrl+Z can take back."""

    kind: str  # "settings" or "knockout"
    text: str  # what undoing does, e.g. "learning rate 0.3 → 0.1"
    previous: object  # settings: {name: old value}; knockout: the old mask (or None)
    saved_params: object = None  # settings: the weights before a shrink of the hidden size


class RateMeter:
    """Samples trained per second of wall-clock time, over the last RATE_WINDOW_S and RATE_TICKS chunk ends."""

    def __init__(self) -> None:
        self._points: collections.deque[tuple[float, int]] = collections.deque(maxlen=4096)

    def restart(self, now: float, samples: int) -> None:
        self._points.clear()
        self._points.append((now, samples))

    def add(self, now: float, samples: int) -> None:
        self._points.append((now, samples))
        while len(self._points) > RATE_TICKS + 1 and now - self._points[1][0] >= RATE_WINDOW_S:
            self._points.popleft()

    def rate(self) -> float:
        """0 until two chunks have ended (the first one's samples count from when training started)."""
        if len(self._points) < 3:
            return 0.0
        (start, first), (end, last) = self._points[1], self._points[-1]
        return (last - first) / (end - start) if end > start else 0.0


class TrainingWorker(QObject):
    """Owns a Trainer; lives in a QThread; talks to the GUI only through signals and queued slots."""

    sigSnapshot = Signal(object)  # Snapshot
    sigError = Signal(str)  # a message for the user; the worker keeps running
    sigStateChanged = Signal(str)  # training | paused | solved | diverged
    sigFinished = Signal()
    sigRunEnded = Signal(object)  # Snapshot of a trained run about to be replaced by a reset or another run
    sigEngine = Signal(str)  # the engine now training ("numpy" or "compiled")
    _wake_analyses = Signal()  # to the AnalysisRunner in its thread

    def __init__(self, trainer: Trainer | None = None, *, pause_when_solved: bool = True, engine: str = "numpy",
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.trainer = trainer if trainer is not None else Trainer(TrainConfig(), engine=engine)
        self.trainer.engine = engine_module.resolve(engine)
        record_history(self.trainer)
        self._viewing: int | None = None  # the sample of the timeline point shown instead of the latest weights
        self._code_wanted = False  # the code view is on screen: snapshots carry a recording of the focus
        self._code: codeview.CodeTrace | None = None
        self._code_key: tuple | None = None  # what _code is a recording of
        self._code_at = -math.inf
        self._timeline_summary: tuple[tuple, timeline.Summary | None] = ((), None)
        self.pause_when_solved = pause_when_solved  # pause at the check that first finds every sum right
        self.analyses = AnalysisBook()
        self.runner = AnalysisRunner(self.analyses)  # moved to a thread of its own by start_in_thread
        self.runner.sigResult.connect(self._on_result)
        self.runner.sigError.connect(self.sigError)
        self._wake_analyses.connect(self.runner.wake)
        self._last_offer = -math.inf
        self.analysis_thread: QThread | None = None
        self._state = "paused"
        self._speed = 1.0
        self._chunk_samples = self.trainer.config.batch_size
        self._seconds_per_sample: float | None = None  # training time per sample, smoothed over chunks
        self._rate = RateMeter()
        self._last_chunk = (math.nan, math.nan)  # (loss, bit error) of the latest chunk
        self._last_sample: tuple[int, int, int] | None = None
        self._message = ""
        self._focus = DEFAULT_FOCUS
        self._unit_scale: np.ndarray | None = None
        self._undo: list[_Undo] = []
        self._generation = 0
        self._serial = 0
        self._last_emit = -math.inf
        self._snapshot_pending = False
        self._stopping = threading.Event()
        # Children move with the worker to its thread, so the timers fire there.
        self._tick_timer = QTimer(self)
        self._tick_timer.setSingleShot(True)
        self._tick_timer.timeout.connect(self._tick)
        self._flush_timer = QTimer(self)
        self._flush_timer.setSingleShot(True)
        self._flush_timer.timeout.connect(self._flush)

    # ---- thread-safe API ------------------------------------------------------------------------------------
    @property
    def state(self) -> str:
        return self._state

    def add_analysis(self, spec: Analysis) -> None:
        """Register a computation a view needs (see explorer.analyses); callable from any thread."""
        self.analyses.register(spec)

    def analysis_names(self) -> list[str]:
        return self.analyses.names()

    def request_stop(self) -> None:
        """Ask the loop to stop at the next tick; callable from any thread."""
        self._stopping.set()

    def snapshot_now(self, message: str = "") -> Snapshot:
        """Build a snapshot without emitting it. Only in the thread that owns the trainer (or before start)."""
        self._serial += 1
        trainer = self.trainer
        mask = snapshots.mask_for(trainer.params, self._unit_scale)
        shown = self._shown()
        return snapshots.take(
            trainer, state=self._state, message=message, focus_operands=self._focus, unit_scale=mask, shown=shown,
            viewing=-1 if shown is None else shown[1], timeline=self._summary(), code=self._recording(shown),
            analyses=self.analyses.results(), last_chunk=self._last_chunk,
            samples_per_second=self._rate.rate() if self._state == "training" else 0.0,
            pending=self.analyses.pending(self._weights(copy=False)),
            visibility_serial=self.analyses.visibility_serial, last_sample=self._last_sample, serial=self._serial,
            generation=self._generation, undo_text=self._undo[-1].text if self._undo else "",
            knockout_undo=any(entry.kind == "knockout" for entry in self._undo), speed=self._speed)

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
        self._rate.restart(time.monotonic(), self.trainer.samples_seen)
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
            trainer = Trainer(config, engine=self.trainer.engine)
        except (ConfigError, ValueError, TypeError) as error:
            self.sigError.emit(f"reset refused: {error}")
            return
        self._replace_trainer(trainer, f"reset: new weights, seed {trainer.config.seed}")

    @Slot(object, str)
    def reset_with_message(self, config: TrainConfig, message: str) -> None:
        """reset(config), with the message the status bar then shows (a preset says what it is for)."""
        self.reset(config)
        if self.trainer.config == config:
            self._message = message
            self._emit_snapshot(force=True)

    @Slot(object)
    def load_trainer(self, trainer: Trainer) -> None:
        """Replace the trainer wholesale (a loaded session); paused afterwards."""
        if not isinstance(trainer, Trainer):
            self.sigError.emit(f"not a trainer: {type(trainer).__name__}")
            return
        trainer.engine = self.trainer.engine
        self._replace_trainer(trainer, f"loaded: {trainer.samples_seen:,} samples trained")

    @Slot(object)
    def update_config(self, changes: dict) -> None:
        """Live hyperparameter changes (TrainConfig.LIVE names); a bad value changes nothing and is reported.
        Each change that applies can be undone (undo)."""
        try:
            changes = dict(changes)
            old = self.trainer.config
            saved = self.trainer.params.copy() if changes.get("hidden_size", old.hidden_size) < old.hidden_size \
                else None
            described = self.trainer.update(**changes)
        except ConfigError as error:
            self.sigError.emit(str(error))
            return
        except TypeError as error:  # not a mapping of names to values
            self.sigError.emit(f"not a set of changes: {error}")
            return
        if not described:
            return
        new = self.trainer.config
        previous = {name: getattr(old, name) for name in changes if getattr(old, name) != getattr(new, name)}
        back = ", ".join(f"{name.replace('_', ' ')} {getattr(new, name)} → {value}" for name, value in previous.items())
        self._push_undo(_Undo("settings", back, previous, saved))
        self._settings_changed(changes, "; ".join(described))

    @Slot(str)
    def undo(self, kind: str = "") -> None:
        """Take back the last live change (of this kind: "settings" or "knockout"; "" for either)."""
        index = next((i for i in range(len(self._undo) - 1, -1, -1) if kind in ("", self._undo[i].kind)), None)
        if index is None:
            self._message = "nothing to undo"
            self._emit_snapshot(force=True)
            return
        entry = self._undo.pop(index)
        if entry.kind == "knockout":
            self._set_mask(entry.previous)
            self._model_changed(f"undone: knockout ({entry.text})")
            return
        try:
            previous = dict(entry.previous)
            saved = entry.saved_params
            described = []
            if saved is not None and previous.get("hidden_size") == saved.hidden_size:
                # The shrink discarded units: they come back as they were (the kept ones keep what they learned).
                described += undo.grow_back(self.trainer, saved)
                previous.pop("hidden_size")
            described += self.trainer.update(**previous)
        except ConfigError as error:  # cannot happen for values that applied before; said all the same
            self.sigError.emit(f"cannot undo: {error}")
            return
        self._settings_changed(entry.previous, "undone: " + "; ".join(described))

    @Slot(bool)
    def set_auto_stop(self, on: bool) -> None:
        """Pause (or not) at the check that first finds every sum right."""
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
            self._rate.restart(time.monotonic(), self.trainer.samples_seen)
            self._tick_timer.start(0)  # a long slow-motion wait should not delay a faster speed
        self._emit_snapshot()

    @Slot(int, int)
    def set_focus(self, a: int, b: int) -> None:
        """The addition every view of one addition shows (heatmaps, step-through, ...)."""
        n_bits = self.trainer.config.n_bits
        try:
            a = task.check_operand(a, n_bits, "first operand")
            b = task.check_operand(b, n_bits, "second operand")
        except task.TaskError as error:
            self.sigError.emit(str(error))
            return
        self._focus = (a, b)
        self._emit_snapshot(force=True)

    set_probe = set_focus

    @Slot(object)
    def set_unit_scale(self, unit_scale: np.ndarray | None) -> None:
        """Knockout mask (H,) for the analyses and the focus (0 silences a unit), or None for none; undoable."""
        if unit_scale is not None:
            unit_scale = np.array(unit_scale, dtype=np.float64)
            hidden = self.trainer.params.hidden_size
            if unit_scale.shape != (hidden,) or not np.all(np.isfinite(unit_scale)):
                self.sigError.emit(f"unit mask must be {hidden} finite numbers, got shape {unit_scale.shape}")
                return
        old = snapshots.mask_for(self.trainer.params, self._unit_scale)
        if _same_mask(old, unit_scale):
            return
        self._push_undo(_Undo("knockout", _describe_mask(old), old))
        self._set_mask(unit_scale)
        self._model_changed("")

    @Slot(object, int)
    def set_visible(self, names: object, serial: int) -> None:
        """The analyses whose views are on screen now (serial counts the GUI's changes); those just shown run now."""
        if self.analyses.set_visible(names, serial):
            self._offer(force=False)
        self._emit_snapshot(force=True)

    @Slot(str, int)
    def request_analysis(self, name: str, number: int) -> None:
        """Run an on-request analysis (the gradient check) for request `number`."""
        if self.analyses.request(name, number):
            self._offer(force=False)

    @Slot(str)
    def set_engine(self, name: str) -> None:
        """Train (and evaluate) on this engine from the next chunk: numpy or compiled (its kernels loaded here, from
        the on-disk cache a background process filled, so nothing compiles in the window's process)."""
        try:
            engine = engine_module.resolve(name)
            if engine == "compiled":
                from core import kernels

                kernels.warm_up()
        except Exception as error:  # numba missing or broken: NumPy goes on
            self.sigError.emit(f"the compiled engine cannot run here ({error}); training goes on with NumPy")
            engine = "numpy"
        self.trainer.engine = engine  # (the analyses evaluate on the trainer's engine too: see Weights)
        self._seconds_per_sample = None
        self.sigEngine.emit(engine)
        self._emit_snapshot(force=True)

    @Slot(int)
    def view_at(self, samples: int) -> None:
        """Show the weights kept nearest `samples` (the focus, the analyses: every view of the weights) while training
        goes on; -1 shows the latest weights again."""
        self._viewing = None if int(samples) < 0 else int(samples)
        self._force_analyses()
        self._emit_snapshot(force=True)

    @Slot(bool)
    def set_code_view(self, on: bool) -> None:
        """Whether snapshots carry a recording of the focus run through the reference code (the code view)."""
        self._code_wanted = bool(on)
        if on:
            self._emit_snapshot(force=True)

    @Slot()
    def refresh(self) -> None:
        """Recompute the analyses on screen now (on these weights) and send a snapshot."""
        self._force_analyses()
        self._emit_snapshot(force=True)

    @Slot()
    def stop(self) -> None:
        """Stop training for good; the owner then quits and waits for the thread."""
        self._stopping.set()
        self._tick_timer.stop()
        self._flush_timer.stop()
        if self._state == "training":
            self._set_state("paused", "stopped", emit=False)
        self.sigFinished.emit()

    # ---- the loop -------------------------------------------------------------------------------------------
    @Slot()
    def _tick(self) -> None:
        if self._state != "training" or self._stopping.is_set():
            return
        batch = self.trainer.config.batch_size
        full_speed = self._speed >= 1.0
        if full_speed:
            chunk = self._chunk_samples
        else:  # one or a few updates per tick, so single updates can be watched
            updates_per_second = self._speed * self._full_updates_per_second()
            chunk = max(1, round(updates_per_second * SLOW_TICK_SECONDS)) * batch
        was_solved = self.trainer.solved
        if self.pause_when_solved and not was_solved:
            # Chunks end at the trainer's checks, so training pauses at the very check that finds every sum right.
            seen = self.trainer.samples_seen
            chunk = min(chunk, max(batch, (seen // CHECK_EVERY + 1) * CHECK_EVERY - seen))
        started = time.monotonic()
        result = self.trainer.step(chunk)
        ended = time.monotonic()
        self._record(result)
        self._rate.add(ended, self.trainer.samples_seen)
        if result.samples:
            self._learn_speed(result.samples, ended - started, full_speed)
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
        if time.monotonic() - self._last_offer >= OFFER_INTERVAL:
            self._offer(force=False)
        self._emit_snapshot()
        if full_speed:
            self._tick_timer.start(0)
        else:
            batches = max(1, result.samples // batch)
            wait = batches / (self._speed * self._full_updates_per_second()) - (time.monotonic() - started)
            self._tick_timer.start(max(0, round(1000 * wait)))

    def _full_updates_per_second(self) -> float:
        if self._seconds_per_sample is None:
            return 2000.0 / self.trainer.config.batch_size
        return 1.0 / (self._seconds_per_sample * self.trainer.config.batch_size)

    def _record(self, result: ChunkResult) -> None:
        """Keep the chunk's metrics for the snapshot."""
        if result.samples:
            self._last_chunk = (result.loss, result.bit_error)
            self._last_sample = (result.last_a, result.last_b, result.last_prediction)

    def _learn_speed(self, samples: int, elapsed: float, full_speed: bool) -> None:
        """Learn the time per sample (checks included) and size the next chunk to train for CHUNK_SECONDS. The size
        changes by at most 2x per chunk, so one chunk slowed by something else does not collapse it; it never
        exceeds what MAX_CHUNK_SECONDS allows at the time per sample measured."""
        per_sample = elapsed / samples
        self._seconds_per_sample = (per_sample if self._seconds_per_sample is None
                                    else 0.7 * self._seconds_per_sample + 0.3 * per_sample)
        if not full_speed:
            return
        batch = self.trainer.config.batch_size
        wanted = CHUNK_SECONDS / self._seconds_per_sample
        wanted = min(2 * self._chunk_samples, max(self._chunk_samples / 2, wanted),
                     MAX_CHUNK_SECONDS / max(per_sample, self._seconds_per_sample))
        self._chunk_samples = int(min(MAX_CHUNK_SAMPLES, max(batch, wanted // batch * batch)))

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
        old = self.trainer
        if old.samples_seen > 0 and not _same_run(old.history.array(), trainer.history.array()):
            self.sigRunEnded.emit(self.snapshot_now())  # its final state, for the curves of earlier runs
        self.trainer = trainer
        self._generation += 1
        self._chunk_samples = trainer.config.batch_size
        self._seconds_per_sample = None
        self._last_chunk = (math.nan, math.nan)
        self._last_sample = None
        self._unit_scale = None
        self._undo.clear()
        self._focus = snapshots.focus_operands_for(trainer.config.n_bits, self._focus)
        record_history(trainer)
        self._viewing, self._code, self._code_key = None, None, None
        self.analyses.clear()
        self._set_state("paused", message, emit=False)
        self._emit_snapshot(force=True)
        self._force_analyses()

    def _settings_changed(self, changes: dict, message: str) -> None:
        self._chunk_samples = max(self._chunk_samples, self.trainer.config.batch_size)
        if "hidden_size" in changes or "batch_size" in changes:
            self._seconds_per_sample = None  # relearn it: the cost per sample changed
            self._chunk_samples = self.trainer.config.batch_size
        self._model_changed(message)

    def _push_undo(self, entry: _Undo) -> None:
        self._undo.append(entry)
        del self._undo[:-MAX_UNDO]

    def _set_mask(self, mask: np.ndarray | None) -> None:
        self._unit_scale = None if mask is None else np.array(mask, dtype=np.float64)

    def _model_changed(self, message: str) -> None:
        """The weights, settings or mask changed outside a chunk: analyses are stale."""
        self._message = message or self._message
        self._force_analyses()
        self._emit_snapshot(force=True)

    def _force_analyses(self) -> None:
        """The analyses on screen run at once on these weights (the model or the mask changed, or a step)."""
        self._offer(force=True)

    def _shown(self) -> tuple[object, int] | None:
        """(params, samples) of the timeline point being viewed, or None while the latest weights are shown."""
        kept = timeline.of(self.trainer)
        point = kept.nearest(self._viewing) if kept is not None and self._viewing is not None else None
        if point is None:
            return None
        return kept.params_at(point, self.trainer.params), point.samples

    def _summary(self) -> timeline.Summary | None:
        """Where the weights were kept, made again only when the timeline changed."""
        kept = timeline.of(self.trainer)
        if kept is None:
            return None
        key = (id(kept), len(kept.points), kept.points[-1].samples if kept.points else -1, kept.stride, kept.note)
        if key != self._timeline_summary[0]:
            self._timeline_summary = (key, kept.summary())
        return self._timeline_summary[1]

    def _recording(self, shown: tuple[object, int] | None) -> codeview.CodeTrace | None:
        """The focus run through the reference code, for the code view: renewed when what it shows changed (while
        training, at most every CODE_INTERVAL)."""
        if not self._code_wanted:
            return None
        trainer = self.trainer
        params, samples = shown if shown is not None else (trainer.params, int(trainer.samples_seen))
        a, b = snapshots.focus_operands_for(trainer.config.n_bits, self._focus)
        mask = snapshots.mask_for(params, self._unit_scale)
        what = (self._generation, a, b, None if mask is None else mask.tobytes(), params.hidden_size)
        key = (what, samples)
        now = time.monotonic()
        # (only newer weights of the same addition wait, while training; anything else is recorded at once)
        waits = self._code_key is not None and self._code_key[0] == what and self._state == "training" \
            and now - self._code_at < CODE_INTERVAL
        if key != self._code_key and not waits:
            try:
                self._code = codeview.record(params, a, b, trainer.config.n_bits, mask, samples)
            except Exception as error:  # a recording must never stop the snapshots
                self._code_wanted, self._code = False, None
                self.sigError.emit(f"the code view could not record this addition: {error}")
                return None
            self._code_key, self._code_at = key, now
        return self._code

    def _weights(self, copy: bool = True) -> Weights:
        trainer = self.trainer
        shown = self._shown()
        if shown is not None:  # the analyses describe the weights being viewed, of their own size
            params, samples = shown
            return Weights(params, dataclasses.replace(trainer.config, hidden_size=params.hidden_size), samples,
                           self._generation, snapshots.mask_for(params, self._unit_scale), trainer.engine, False,
                           viewing=samples)
        return Weights(trainer.params.copy() if copy else trainer.params, dataclasses.replace(trainer.config),
                       int(trainer.samples_seen), self._generation,
                       snapshots.mask_for(trainer.params, self._unit_scale), trainer.engine,
                       self._state == "training")

    def _offer(self, force: bool) -> None:
        """Hand the analyses a copy of the weights, when any of them is wanted (on screen or asked for)."""
        self._last_offer = time.monotonic()
        if self.analyses.any_visible() and not self._stopping.is_set():
            self.analyses.offer(self._weights(), force)
            self._wake_analyses.emit()

    @Slot()
    def _on_result(self) -> None:
        """An analysis finished (in its thread): a snapshot carries it to the views."""
        self._emit_snapshot(force=self._state != "training")

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


def _same_mask(first: np.ndarray | None, second: np.ndarray | None) -> bool:
    if first is None or second is None:
        return first is None and second is None
    return first.shape == second.shape and bool(np.array_equal(first, second))


def _describe_mask(mask: np.ndarray | None) -> str:
    if mask is None:
        return "all units intact"
    return "units " + ", ".join(str(int(u)) for u in np.flatnonzero(mask != 1.0)) + " knocked out"


def _same_run(first: np.ndarray, second: np.ndarray) -> bool:
    """Whether two histories are points of one run (one a prefix of the other): opening a saved point of the run
    being trained continues that run, it does not end one."""
    shorter, longer = sorted((first, second), key=len)
    return len(shorter) > 0 and np.array_equal(shorter, longer[: len(shorter)])


def record_history(trainer: Trainer) -> None:
    """Keep the weights at the trainer's checks (a timeline to scrub through) and tell the story of its run, unless
    it already does (a session that kept them)."""
    if timeline.of(trainer) is None:
        timeline.Timeline().attach(trainer)
    if not any(isinstance(hook, story.Story) for hook in trainer.check_hooks):
        story.Story().attach(trainer)


def start_in_thread(worker: TrainingWorker) -> QThread:
    """Move worker to a new QThread (and its analyses to another) and start them; worker.start runs first in its
    thread. Returns the training thread; the analysis thread is worker.analysis_thread."""
    sys.setswitchinterval(min(sys.getswitchinterval(), GIL_SWITCH_SECONDS))  # keep the GUI thread responsive
    analysis_thread = QThread()
    analysis_thread.setObjectName("analyses")
    worker.runner.moveToThread(analysis_thread)
    analysis_thread.started.connect(worker.runner.lower_priority)
    LIVE_THREADS.add(analysis_thread)
    analysis_thread.start()
    worker.analysis_thread = analysis_thread
    thread = QThread()
    thread.setObjectName("training")
    worker.moveToThread(thread)
    thread.started.connect(worker.start)
    LIVE_THREADS.add(thread)
    thread.start()
    return thread


def shutdown(worker: TrainingWorker, thread: QThread, timeout_ms: int = 2000) -> bool:
    """Stop the worker and its analyses (flag, then stop() in their threads), quit the threads and wait. True if
    they ended in time."""
    worker.request_stop()
    ended = True
    analysis_thread = getattr(worker, "analysis_thread", None)
    for obj, running in ((worker, thread), (worker.runner, analysis_thread)):
        if running is not None and running.isRunning():
            # Blocking: stop() runs in the object's thread (a timer can only be stopped by its own thread), between
            # two chunks or two analyses.
            QMetaObject.invokeMethod(obj, "stop", Qt.ConnectionType.BlockingQueuedConnection)
            running.quit()
            # A chunk or an analysis runs to its end (one update of a huge batch, or an analysis, may take seconds):
            # the thread is waited for however long that takes, since a QThread destroyed while running ends the
            # process. The window is hidden by then.
            ended = running.wait(max(timeout_ms, FINISH_WAIT_MS)) and ended
    return ended
