"""Time to solve over a grid of settings: every cell trained on its own, in local processes or on a Dask cluster.

A cell is one pure call, `run_cell(config, max_samples, engine) -> CellResult`: settings in, samples to solve,
accuracy, seconds and whether it diverged out; picklable both ways, no shared state. `run_sweep` runs the cells
of a Grid (core.sweep_grid) in a local process pool, or with `scheduler=ADDRESS` on an existing Dask distributed
cluster (core.sweep_dask), through one loop: each finished cell is reported to `progress` in the calling thread,
and `cancel` stops it all: queued cells are dropped, running ones stop at their next check, and no cell is left
running (no worker process, no Dask task) when run_sweep returns.

The engine is resolved here, once, and passed to every cell by name ("auto" becomes "compiled" where numba is
installed): a run is a pure function of its settings and its engine, so the same sweep gives bit-identical results
however its cells are spread out. A cell is solved at the first check (every CHECK_EVERY samples) at which every
sum is right, and stops there; seconds count time spent training, not evaluating. `main` is `lstm-explorer sweep`
(core.sweep_cli).
"""

from __future__ import annotations

import multiprocessing
import queue
import signal
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from core import engine as engine_module
from core import limits
from core.sweep_grid import Grid, GridError, Index, SweepCell
from core.trainer import CHECK_EVERY, TrainConfig, Trainer

DEFAULT_MAX_SAMPLES = 10_001  # the original notebook's n_samples
POLL_SECONDS = 0.1  # how often a running sweep looks at its cancel flag
STOP_GRACE_SECONDS = 5.0  # after a stop, how long a local cell may take to reach its next check before it is ended


class SweepError(Exception):
    """The sweep could not run as asked (a cluster out of reach, dask not installed); the message says what to do."""


class StopFlag(Protocol):
    """threading.Event, multiprocessing's Event, or anything with is_set()."""

    def is_set(self) -> bool: ...


@dataclass(frozen=True)
class CellResult:
    """What training one config until solved (or out of budget) gave."""

    config: TrainConfig
    max_samples: int  # the budget
    engine: str  # the engine that trained it, "numpy" or "compiled": with the config, what makes it reproducible
    samples_to_solve: int | None  # samples seen at the first check with every sum right; None: not in the budget
    seconds_to_solve: float | None  # training seconds until then
    samples_seen: int  # samples trained in all
    seconds: float  # training seconds in all
    accuracy: float  # exact-sum accuracy over every pair (a sample of them beyond 16 bits) at the end
    loss: float  # mean training loss over the last step (nan if none ran)
    diverged: bool  # the loss blew up; training stopped there (weights rolled back to the last check)
    stopped: bool = False  # cancelled part-way: neither solved nor out of budget; counts as not run

    @property
    def solved(self) -> bool:
        return self.samples_to_solve is not None

    def outcome(self) -> tuple:
        """Everything but the timings: equal for the same settings and engine wherever the cell ran."""
        loss = "nan" if np.isnan(self.loss) else self.loss
        return (self.config, self.max_samples, self.engine, self.samples_to_solve, self.samples_seen,
                self.accuracy, loss, self.diverged, self.stopped)


def run_cell(config: TrainConfig, max_samples: int = DEFAULT_MAX_SAMPLES, engine: str = "auto",
             should_stop: Callable[[], bool] | None = None) -> CellResult:
    """Train a fresh Trainer(config) until every sum is right or it has seen max_samples samples.

    It steps CHECK_EVERY samples at a time, so it stops at the check that found it solved. should_stop is asked
    before every step; when it says yes the result has stopped=True."""
    # (on NumPy where the kernels cannot run it; no carry probe in the "solved" event: a sweep runs many)
    trainer = Trainer(config, engine=engine_module.resolve(engine), details=False)
    loss, diverged, stopped = float("nan"), False, False
    while not trainer.solved and trainer.samples_seen < max_samples:
        if should_stop is not None and should_stop():
            stopped = True
            break
        step = trainer.step(min(CHECK_EVERY, max_samples - trainer.samples_seen))
        if step.samples:
            loss = float(step.loss)
        if step.diverged:  # the trainer has rolled back and would only diverge again at this learning rate
            diverged = True
            break
    solved_samples, solved_seconds = trainer.solved_at or (None, None)
    accuracy = 1.0 if trainer.solved_now else trainer.exhaustive_accuracy()  # (solved_now: every sum right)
    return CellResult(trainer.config, max_samples, trainer.engine, solved_samples,
                      None if solved_seconds is None else float(solved_seconds), trainer.samples_seen,
                      float(trainer.training_seconds), float(accuracy), loss, diverged, stopped)


def cell_engine(config: TrainConfig, engine: str) -> str:
    """The engine a cell of this config runs on when the sweep asks for engine (the kernels implement every
    option, so every cell runs on the sweep's engine)."""
    return engine_module.resolve(engine)


def replay(cell: CellResult, should_stop: Callable[[], bool] | None = None) -> Trainer | None:
    """A Trainer that has run exactly as the cell did, to where it stopped (for opening a sweep's run in the
    window): the same settings and engine give the same weights, curves and solved-at. None if stopped."""
    trainer = Trainer(cell.config, engine=cell.engine)
    while trainer.samples_seen < cell.samples_seen:
        if should_stop is not None and should_stop():
            return None
        if trainer.step(min(CHECK_EVERY, cell.samples_seen - trainer.samples_seen)).diverged:
            break
    return trainer


# ---- the results --------------------------------------------------------------------------------------------------
@dataclass
class MapSummary:
    """One map of a sweep: two axes (x across, y up; y None for a single row), every other axis pooled.

    Arrays are (len(y), len(x)). runs[j][i] lists the pooled cells' results in grid order."""

    x: str
    y: str | None
    x_labels: list[str]
    y_labels: list[str]
    median: np.ndarray  # median samples to solve; inf when half or more did not solve, nan when none ran
    solved: np.ndarray  # runs that solved (int)
    ran: np.ndarray  # runs that finished (int)
    diverged: np.ndarray  # runs that diverged (int)
    runs: list[list[list[CellResult]]]
    pooled: str  # what each cell pools, for people: "20 seeds", "2 optimizers × 5 seeds", "one run"

    @property
    def solve_rate(self) -> np.ndarray:
        """Fraction of the finished runs that solved; nan where none finished."""
        return np.divide(self.solved, self.ran, out=np.full(self.ran.shape, np.nan), where=self.ran > 0)


@dataclass
class SweepResult:
    """The cells of a grid that have finished; arrays over the grid have the grid's shape."""

    grid: Grid
    max_samples: int
    engine: str
    cells: dict[Index, CellResult] = field(default_factory=dict)  # finished cells (solved, unsolved, diverged)
    stopped: list[CellResult] = field(default_factory=list)  # cells interrupted by a cancel (not counted)
    cancelled: bool = False
    wall_seconds: float = 0.0  # from start to end of run_sweep

    @property
    def shape(self) -> tuple[int, ...]:
        return self.grid.shape

    @property
    def total(self) -> int:
        return self.grid.size

    def values(self, value: Callable[[CellResult], float]) -> np.ndarray:
        """value(cell) at every finished cell, nan elsewhere."""
        grid = np.full(self.shape, np.nan)
        for index, cell in self.cells.items():
            grid[index] = value(cell)
        return grid

    def samples_to_solve(self) -> np.ndarray:
        """Samples until solved; inf where a cell did not solve within max_samples, nan where it did not run."""
        return self.values(lambda cell: np.inf if cell.samples_to_solve is None else cell.samples_to_solve)

    def summary(self, x: str, y: str | None = None, fixed: Mapping[str, int] | None = None) -> MapSummary:
        """Pool the cells over every axis but x and y (fixed: axis name -> value index, to look at one slice)."""
        grid = self.grid
        px = grid.position(x)
        py = grid.position(y) if y is not None else None
        if py == px:
            raise GridError(f"the map needs two different axes, got {x} twice")
        fixed_positions = {grid.position(name): i for name, i in (fixed or {}).items()}
        nx, ny = grid.shape[px], grid.shape[py] if py is not None else 1
        runs: list[list[list[CellResult]]] = [[[] for _ in range(nx)] for _ in range(ny)]
        for index in sorted(self.cells):
            if any(index[p] != i for p, i in fixed_positions.items()):
                continue
            runs[index[py] if py is not None else 0][index[px]].append(self.cells[index])
        median = np.full((ny, nx), np.nan)
        solved = np.zeros((ny, nx), dtype=int)
        ran = np.zeros((ny, nx), dtype=int)
        diverged = np.zeros((ny, nx), dtype=int)
        for j in range(ny):
            for i in range(nx):
                pool = runs[j][i]
                ran[j, i] = len(pool)
                if not pool:
                    continue
                samples = [np.inf if cell.samples_to_solve is None else cell.samples_to_solve for cell in pool]
                median[j, i] = np.median(samples)
                solved[j, i] = sum(cell.solved for cell in pool)
                diverged[j, i] = sum(cell.diverged for cell in pool)
        pooled_axes = [axis for p, axis in enumerate(grid.axes)
                       if p not in (px, py) and p not in fixed_positions and len(axis) > 1]
        pooled = " × ".join(f"{len(axis)} {axis.label if axis.name != 'seed' else 'seeds'}"
                            for axis in pooled_axes) or "one run"
        y_labels = grid.axes[py].labels() if py is not None else [""]
        return MapSummary(grid.axes[px].name, None if py is None else grid.axes[py].name, grid.axes[px].labels(),
                          y_labels, median, solved, ran, diverged, runs, pooled)

    def default_map_axes(self) -> tuple[str, str | None]:
        return default_map_axes(self.grid)


def default_map_axes(grid: Grid) -> tuple[str, str | None]:
    """The first two axes with more than one value, seeds last (they are what a map pools by default)."""
    ranked = sorted(grid.axes, key=lambda axis: (len(axis) < 2, axis.name == "seed"))
    chosen = [axis.name for axis in ranked if len(axis) > 1 and axis.name != "seed"][:2]
    if not chosen:
        chosen = [ranked[0].name]
    return chosen[0], chosen[1] if len(chosen) > 1 else None


# ---- running the cells --------------------------------------------------------------------------------------------
class Backend(Protocol):
    """Where cells run. submit returns futures (concurrent.futures' or Dask's: add_done_callback, result, done,
    cancelled, exception) whose result is (index, CellResult); stop makes running cells stop at their next check
    and drops queued ones; close returns once no cell is running and everything is released."""

    def submit(self, cells: Sequence[SweepCell], max_samples: int, engine: str) -> list: ...

    def stop(self) -> None: ...

    def close(self) -> None: ...


_stop_requested: StopFlag | None = None  # in each local worker process: the sweep's stop flag


def _start_worker(stop: StopFlag) -> None:
    global _stop_requested
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C belongs to the parent, which stops the workers cleanly
    _stop_requested = stop


def _run_in_worker(cell: SweepCell, max_samples: int, engine: str) -> tuple[Index, CellResult]:
    stop = _stop_requested.is_set if _stop_requested is not None else None
    return cell.index, run_cell(cell.config, max_samples, engine, stop)


class ProcessPool:
    """Cells in local processes started with "spawn" (forking a process that may hold Qt or BLAS threads is
    unsafe); a multiprocessing Event asks running cells to stop. A process whose cell has not reached a check
    STOP_GRACE_SECONDS after a stop (one long step, or the first compilation of the kernels) is terminated."""

    def __init__(self, workers: int) -> None:
        context = multiprocessing.get_context("spawn")
        self._stop = context.Event()
        self._executor = ProcessPoolExecutor(workers, mp_context=context, initializer=_start_worker,
                                             initargs=(self._stop,))

    def submit(self, cells: Sequence[SweepCell], max_samples: int, engine: str) -> list:
        return [self._executor.submit(_run_in_worker, cell, max_samples, engine) for cell in cells]

    def stop(self) -> None:
        self._stop.set()

    def close(self) -> None:
        """Queued cells never start, running ones stop at their next check (or are ended), workers are joined."""
        if not self._stop.is_set():  # everything finished: the workers are idle
            self._executor.shutdown(wait=True)
            return
        # CPython's own records of its worker processes and of the thread that manages them (shutdown(wait=False)
        # forgets both, and a later shutdown(wait=True) then waits for nothing)
        processes = list((getattr(self._executor, "_processes", None) or {}).values())
        manager = getattr(self._executor, "_executor_manager_thread", None)
        self._executor.shutdown(wait=False, cancel_futures=True)
        deadline = time.monotonic() + STOP_GRACE_SECONDS
        for process in processes:
            process.join(max(0.0, deadline - time.monotonic()))
        for process in processes:
            if process.is_alive():
                process.terminate()
                process.join(STOP_GRACE_SECONDS)
            if process.is_alive():
                process.kill()
            process.join()
        if manager is not None:
            manager.join()


def _is_cancelled(cancel: StopFlag | Callable[[], bool] | None) -> bool:
    if cancel is None:
        return False
    return cancel.is_set() if hasattr(cancel, "is_set") else bool(cancel())


def run_sweep(
    grid: Grid,
    max_samples: int = DEFAULT_MAX_SAMPLES,
    *,
    engine: str = "auto",
    workers: int | None = None,
    scheduler: str | None = None,
    progress: Callable[[int, int, Index, CellResult], None] | None = None,
    cancel: StopFlag | Callable[[], bool] | None = None,
    finished: Mapping[Index, CellResult] | None = None,
) -> SweepResult:
    """Run every cell of grid not already in `finished` (from an earlier, interrupted sweep).

    Local processes (`workers`, default one per CPU), or with `scheduler` the Dask cluster at that address.
    progress(done, total, index, cell) is called in this thread as each cell finishes (done counts the finished
    cells passed in). cancel (an Event, or a callable returning True) is checked at least every POLL_SECONDS;
    when it fires, queued cells are dropped, running ones stop at their next check, and the result has
    cancelled=True. Raises ConfigError (a bad grid or budget), EngineError or SweepError before any cell runs.
    """
    started = time.monotonic()
    if isinstance(max_samples, bool) or not isinstance(max_samples, int) or not 1 <= max_samples <= limits.MAX_SAMPLES:
        raise GridError(f"the budget must be a whole number of samples from 1 to {limits.MAX_SAMPLES:,}, got "
                        f"{limits.shown(max_samples)}")
    engine = engine_module.resolve(engine)
    cells = list(grid.cells())  # every config validated
    result = SweepResult(grid, max_samples, engine)
    for index, cell in (finished or {}).items():
        wanted = cell_engine(cell.config, engine)
        if cell.max_samples != max_samples or cell.engine != wanted:
            raise SweepError(f"a finished cell was trained with a budget of {cell.max_samples:,} samples on the "
                             f"{cell.engine} engine; this sweep has {max_samples:,} on {wanted}")
        result.cells[index] = cell
    todo = [cell for cell in cells if cell.index not in result.cells]
    if not todo:
        result.wall_seconds = time.monotonic() - started
        return result
    if scheduler:
        from core import sweep_dask

        backend: Backend = sweep_dask.DaskCluster(scheduler)
    else:
        processes = max(1, min(workers or limits.cpu_count(), limits.cpu_count(), len(todo)))  # never more than cores
        limits.check_sweep((cell.config for cell in todo), processes)  # LimitError before any process starts
        backend = ProcessPool(processes)
    outcomes: queue.SimpleQueue = queue.SimpleQueue()  # (index, CellResult), an exception, or None if cancelled

    def collect(future: object) -> None:  # in whatever thread the backend calls it from
        try:
            outcomes.put(None if future.cancelled() else future.result())
        except BaseException as error:  # a cell that failed: raised in the sweep's thread
            outcomes.put(error)

    submitted = received = 0
    try:
        futures = backend.submit(todo, max_samples, engine)
        submitted = len(futures)
        for future in futures:
            future.add_done_callback(collect)
        while received < submitted and not _is_cancelled(cancel):
            try:
                outcome = outcomes.get(timeout=POLL_SECONDS)
            except queue.Empty:
                continue
            received += 1
            if isinstance(outcome, BaseException):
                raise outcome
            if outcome is not None:
                index, cell = outcome
                result.cells[index] = cell
                if progress is not None:
                    progress(len(result.cells), len(cells), index, cell)
        result.cancelled = received < submitted
    finally:
        if received < submitted:
            backend.stop()
        backend.close()
    while True:  # cells that ended while the sweep was being cancelled
        try:
            outcome = outcomes.get_nowait()
        except queue.Empty:
            break
        if outcome is None or isinstance(outcome, BaseException):
            continue
        index, cell = outcome
        if cell.stopped:
            result.stopped.append(cell)
        else:
            result.cells.setdefault(index, cell)
    result.wall_seconds = time.monotonic() - started
    return result


def main(argv: list[str] | None = None) -> int:
    """`lstm-explorer sweep` (see core.sweep_cli)."""
    from core import sweep_cli

    return sweep_cli.main(argv)
