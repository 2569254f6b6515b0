"""Computations the views need on the current weights: run in a thread of their own, on copies of the weights, so
neither training nor the window ever waits for one. Written once for every view.

A view names what it needs as Analysis specs; the window tells the worker which views are on screen. The training
worker offers copies of its weights (Weights); the AnalysisRunner, in its own thread, computes what is due on the
latest copy and files the results in the AnalysisBook, where the training worker's snapshots pick them up:

- an analysis runs only while a view that needs it is on screen (or when asked, for on-request ones);
- with the same weights, mask and settings as its last result it does not run at all (that result is exact);
- while training, each one runs at most every `period_s` seconds and every BUDGET times as long as it took,
  so a slow one does not hog a core; when a view comes on screen, the weights change while paused (a step), or the
  model, mask or settings change, it runs at once;
- `pending` names the analyses whose result is not for what is on screen: the view shows "computing…".
"""

from __future__ import annotations

import contextlib
import math
import os
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np
from PySide6.QtCore import QObject, QTimer, Signal, Slot

from core import engine as engine_module
from core.insights import Measured
from core.trainer import TrainConfig

Compute = Callable[[object, "np.ndarray | None"], object]  # (Weights or Trainer, unit_scale) -> result

BUDGET = 8.0  # while training, an analysis runs at most every BUDGET times as long as it took last time
ANALYSIS_NICENESS = 10  # the analysis thread yields the CPU to training and the window (two cores are common)


@dataclass(frozen=True)
class Analysis:
    """A computation a view needs: compute(weights, unit_scale), where weights has .params, .config and
    .samples_seen like a Trainer (it is a copy of one: see Weights)."""

    name: str
    compute: Compute
    period_s: float = 1.0  # while training and on screen: at most this often
    settings: tuple[str, ...] = ()  # TrainConfig fields the result depends on besides weights, n_bits and mask
    on_request: bool = False  # computed only when asked (request), never by itself


@dataclass(frozen=True, eq=False)
class Weights:
    """A copy of what the analyses read from a Trainer, taken in the training thread."""

    params: object  # a copy of the Params
    config: TrainConfig
    samples_seen: int
    generation: int  # counts the worker's trainers: a reset or a loaded session starts a new one
    mask: np.ndarray | None  # the knockout (H,) or None
    engine: str  # the engine the analyses evaluate on
    training: bool  # whether training was running when it was taken
    viewing: int = -1  # the sample of the earlier point of the run these weights are (the scrubber's), -1: latest

    def setup(self, spec: Analysis) -> tuple:
        """What a result depends on besides the weights themselves."""
        config = self.config
        return (self.generation, self.viewing, config.n_bits, self.params.hidden_size, type(self.params).__module__,
                None if self.mask is None else self.mask.tobytes(), *(getattr(config, s) for s in spec.settings))


@dataclass
class _Job:
    spec: Analysis
    visible: bool = False
    shown: int = 0  # visibility serial at which it last came on screen
    result: Measured | None = None
    setup: tuple | None = None  # Weights.setup of the result
    weights: int | None = None  # hash of the weights of the result
    result_shown: int = -1  # `shown` when the result was computed
    forced: bool = False  # run at once, whatever the period
    last_run: float = -math.inf
    duration: float = 0.0
    requested: int = 0  # on-request: the latest request number, and the one answered
    answered: int = 0
    failed: bool = False


class AnalysisBook:
    """The analyses, their results and the latest weights offered; shared by the threads (one lock)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._jobs: dict[str, _Job] = {}
        self._weights: Weights | None = None
        self._weights_hash: int | None = None
        self.visibility_serial = 0

    # ---- any thread ---------------------------------------------------------------------------------------------
    def register(self, spec: Analysis) -> None:
        if spec.period_s < 0 or not math.isfinite(spec.period_s):
            raise ValueError(f"period must be a finite number of seconds >= 0, got {spec.period_s}")
        with self._lock:
            job = self._jobs.get(spec.name)
            if job is None or job.spec != spec:
                self._jobs[spec.name] = _Job(spec)

    def names(self) -> list[str]:
        with self._lock:
            return list(self._jobs)

    def results(self) -> dict[str, Measured]:
        with self._lock:
            return {name: job.result for name, job in self._jobs.items() if job.result is not None}

    def any_visible(self) -> bool:
        with self._lock:
            return any(job.visible or job.requested > job.answered for job in self._jobs.values())

    # ---- the training thread ------------------------------------------------------------------------------------
    def offer(self, weights: Weights, force: bool = False) -> None:
        """The latest weights; force: the analyses on screen run on them at once (a step, a change, a new model)."""
        with self._lock:
            self._weights, self._weights_hash = weights, None
            if force:
                for job in self._jobs.values():
                    job.forced = job.visible

    def set_visible(self, names: Iterable[str], serial: int) -> list[str]:
        """The analyses whose views are on screen now; those that just came on screen run at once."""
        wanted = set(names)
        shown = []
        with self._lock:
            self.visibility_serial = max(self.visibility_serial, serial)
            for name, job in self._jobs.items():
                visible = name in wanted
                if visible and not job.visible:
                    job.shown, job.forced = serial, True
                    shown.append(name)
                job.visible = visible
        return shown

    def request(self, name: str, number: int) -> bool:
        """Ask an on-request analysis for an answer numbered `number`; False if there is no such analysis."""
        with self._lock:
            job = self._jobs.get(name)
            if job is None:
                return False
            job.requested = max(job.requested, int(number))
            return True

    def clear(self) -> None:
        """A new trainer: every result describes other weights."""
        with self._lock:
            for job in self._jobs.values():
                job.result, job.setup, job.weights, job.result_shown = None, None, None, -1
                job.answered = job.requested

    def pending(self, weights: Weights) -> frozenset[str]:
        """Analyses whose latest result is not for what is on screen: another trainer, model size, mask or setting,
        or computed before its view last came on screen; or a request not yet answered."""
        with self._lock:
            stale = set()
            for name, job in self._jobs.items():
                if job.failed:
                    continue
                if job.spec.on_request:
                    if job.requested > job.answered:
                        stale.add(name)
                elif job.result is None or job.setup != weights.setup(job.spec) or job.result_shown < job.shown:
                    stale.add(name)
            return frozenset(stale)

    # ---- the analysis thread -----------------------------------------------------------------------------------
    def next_job(self) -> tuple[str | None, float]:
        """(the analysis to run now, or None; seconds until one may be due, inf when none will be by itself)."""
        now = time.monotonic()
        with self._lock:
            weights = self._weights
            if weights is None:
                return None, math.inf
            if self._weights_hash is None:
                self._weights_hash = hash(weights.params.flat.tobytes())
            current = self._weights_hash
            urgent, overdue, wait = [], [], math.inf
            for name, job in self._jobs.items():
                if job.failed:
                    continue
                if job.spec.on_request:
                    if job.requested > job.answered:
                        urgent.append(name)
                    continue
                if not job.visible:
                    continue
                setup = weights.setup(job.spec)
                if setup == job.setup and current == job.weights:
                    if job.result_shown < job.shown:
                        job.result_shown = job.shown  # still exact: it answers for what is on screen now
                    job.forced = False
                    continue
                if job.forced or setup != job.setup or job.result_shown < job.shown or not weights.training:
                    urgent.append(name)
                    continue
                interval = max(job.spec.period_s, BUDGET * job.duration)
                late = now - job.last_run - interval
                if late >= 0:
                    overdue.append((late, name))
                else:
                    wait = min(wait, -late)
        if urgent:
            return urgent[0], 0.0
        if overdue:
            return max(overdue)[1], 0.0
        return None, wait

    def run(self, name: str) -> str:
        """Compute one analysis on the latest weights offered; returns an error message or ""."""
        with self._lock:
            job, weights = self._jobs.get(name), self._weights
            if weights is not None and self._weights_hash is None:
                self._weights_hash = hash(weights.params.flat.tobytes())
            digest = self._weights_hash
        if job is None or job.failed or weights is None:
            return ""
        spec = job.spec
        wanted = job.requested
        started = time.monotonic()
        job.last_run = started
        try:
            with default_engine(weights.engine):
                value = spec.compute(weights, weights.mask)
        except Exception as error:  # a broken analysis must not stop the others
            job.failed = True
            return f"analysis {name!r} failed and is switched off: {type(error).__name__}: {error}"
        with self._lock:
            job.duration = time.monotonic() - started
            job.result = Measured(weights.samples_seen, value, request=wanted if spec.on_request else 0)
            job.setup, job.weights, job.result_shown, job.forced = weights.setup(spec), digest, job.shown, False
            if spec.on_request:
                job.answered = max(job.answered, wanted)
        return ""


class default_engine:  # noqa: N801 (a context manager, used like a function)
    """Evaluations without an engine named run on this one meanwhile (the analyses call core.insights, which
    evaluates on core.engine.DEFAULT)."""

    _lock = threading.Lock()

    def __init__(self, engine: str) -> None:
        self.engine = engine

    def __enter__(self) -> None:
        self._lock.acquire()
        self._before = engine_module.DEFAULT
        engine_module.DEFAULT = self.engine

    def __exit__(self, *_exc: object) -> None:
        engine_module.DEFAULT = self._before
        self._lock.release()


class AnalysisRunner(QObject):
    """Lives in the analysis thread: runs what the book says is due, one analysis per event-loop turn, and says
    when a result is in (sigResult, to the training worker, which sends a snapshot with it)."""

    sigResult = Signal()
    sigError = Signal(str)

    def __init__(self, book: AnalysisBook, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.book = book
        self._stopping = threading.Event()
        self._timer = QTimer(self)  # a child: moves with the runner to its thread
        self._timer.setSingleShot(True)
        self._timer.timeout.connect(self.wake)

    @Slot()
    def lower_priority(self) -> None:
        """In the analysis thread: let training and the window have the cores first (Linux: a nicer thread)."""
        with contextlib.suppress(AttributeError, OSError):
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), ANALYSIS_NICENESS)

    @Slot()
    def wake(self) -> None:
        """Something may be due (new weights, a view shown, a request, or a period passed)."""
        if self._stopping.is_set():
            return
        name, wait = self.book.next_job()
        if name is None:
            if math.isfinite(wait):
                self._timer.start(max(1, math.ceil(1000 * wait)))
            return
        problem = self.book.run(name)
        if problem:
            self.sigError.emit(problem)
        self.sigResult.emit()
        self._timer.start(0)  # the next one after whatever else is queued (a stop)

    @Slot()
    def stop(self) -> None:
        self._stopping.set()
        self._timer.stop()
