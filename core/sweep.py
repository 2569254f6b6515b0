"""Time-to-solve over a grid of learning rate x hidden size x seed, the cells trained in parallel processes.

Each cell is one pure call, `run_cell(config, max_samples, chunk) -> CellResult`: picklable in, picklable out,
no shared state, so the grid could as well be handed to a cluster. `run_sweep` runs the cells in a
ProcessPoolExecutor started with "spawn" (forking a process that may hold Qt or BLAS threads is unsafe), reports
each finished cell to a callback, and can be cancelled: queued cells are dropped, running ones stop at their next
chunk, and every worker process has exited when it returns. `main` is `lstm-explorer sweep`.

A cell is solved at the end of the first chunk after which every sum is right (Trainer.solved_at), so
samples-to-solve is exact to one chunk; seconds-to-solve counts time spent training, not evaluating.
"""

from __future__ import annotations

import argparse
import csv
import multiprocessing
import os
import signal
import sys
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from core import lstm, models
from core.optim import OPTIMIZERS
from core.trainer import ConfigError, TrainConfig, Trainer

DEFAULT_CHUNK = 100  # samples between checks for "solved": the resolution of samples-to-solve
POLL_SECONDS = 0.1  # how often a running sweep looks at its cancel flag

Index = tuple[int, int, int]  # (learning rate, hidden size, seed) position in the grid


class EventLike(Protocol):
    """threading.Event or multiprocessing's Event."""

    def is_set(self) -> bool: ...


@dataclass(frozen=True)
class SweepCell:
    """One grid point: its position in the result arrays and the complete config it trains."""

    index: Index
    config: TrainConfig


@dataclass(frozen=True)
class CellResult:
    """What training one config until solved (or out of budget) gave."""

    config: TrainConfig
    samples_to_solve: int | None  # samples seen when every sum was first right; None: not within the budget
    seconds_to_solve: float | None  # training seconds until then
    samples_seen: int  # samples trained in all
    seconds: float  # training seconds in all
    accuracy: float  # exact-sum accuracy over every pair (a sample of them beyond 16 bits) at the end
    loss: float  # mean training loss over the last chunk
    diverged: bool  # the loss blew up; training stopped there (weights rolled back to the last good chunk)
    stopped: bool = False  # cancelled part-way: neither solved nor out of budget

    @property
    def solved(self) -> bool:
        return self.samples_to_solve is not None


def run_cell(config: TrainConfig, max_samples: int, chunk: int = DEFAULT_CHUNK) -> CellResult:
    """Train a fresh Trainer(config) in chunks of `chunk` samples until it is solved or has seen max_samples."""
    return _train_cell(config, max_samples, chunk, should_stop=None)


def _train_cell(config: TrainConfig, max_samples: int, chunk: int,
                should_stop: Callable[[], bool] | None) -> CellResult:
    trainer = Trainer(config)
    loss, diverged, stopped = float("nan"), False, False
    while not trainer.solved and trainer.samples_seen < max_samples:
        if should_stop is not None and should_stop():
            stopped = True
            break
        step = trainer.step(min(chunk, max_samples - trainer.samples_seen))
        if step.samples:
            loss = step.loss
        if step.diverged:  # the trainer has rolled back and would only diverge again at this learning rate
            diverged = True
            break
    solved_samples, solved_seconds = trainer.solved_at or (None, None)
    return CellResult(config, solved_samples, solved_seconds, trainer.samples_seen, trainer.training_seconds,
                      trainer.exhaustive_accuracy(), loss, diverged, stopped)


# ---- in each worker process ---------------------------------------------------------------------------------------
_stop_requested: EventLike | None = None  # the sweep's stop flag (a multiprocessing Event), set in each worker


def _start_worker(stop: EventLike) -> None:
    global _stop_requested
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C belongs to the parent, which stops the workers cleanly
    _stop_requested = stop


def _run_in_worker(cell: SweepCell, max_samples: int, chunk: int) -> tuple[Index, CellResult]:
    stop = _stop_requested.is_set if _stop_requested is not None else None
    return cell.index, _train_cell(cell.config, max_samples, chunk, stop)


# ---- the grid -------------------------------------------------------------------------------------------------------
def grid_cells(learning_rates: Sequence[float], hidden_sizes: Sequence[int], seeds: Sequence[int],
               base_config: TrainConfig | None = None) -> list[SweepCell]:
    """Every (learning rate, hidden size, seed) cell, learning rate varying slowest. Raises ConfigError."""
    base = base_config or TrainConfig()
    return [SweepCell((i, j, k), base.replace(learning_rate=lr, hidden_size=hidden, seed=seed))
            for i, lr in enumerate(learning_rates)
            for j, hidden in enumerate(hidden_sizes)
            for k, seed in enumerate(seeds)]


@dataclass
class SweepResult:
    """Cell results on the grid learning rate x hidden size x seed; arrays are (L, H, S) unless noted."""

    learning_rates: tuple[float, ...]
    hidden_sizes: tuple[int, ...]
    seeds: tuple[int, ...]
    max_samples: int
    cells: dict[Index, CellResult] = field(default_factory=dict)  # the cells that ran to the end
    stopped: list[CellResult] = field(default_factory=list)  # cells interrupted by a cancel (not counted)
    cancelled: bool = False

    @property
    def shape(self) -> tuple[int, int, int]:
        return len(self.learning_rates), len(self.hidden_sizes), len(self.seeds)

    @property
    def total(self) -> int:
        return int(np.prod(self.shape))

    def _grid(self, value: Callable[[CellResult], float]) -> np.ndarray:
        grid = np.full(self.shape, np.nan)
        for index, cell in self.cells.items():
            grid[index] = value(cell)
        return grid

    def samples_to_solve(self) -> np.ndarray:
        """Samples until solved; inf where a cell did not solve within max_samples, nan where it did not run."""
        return self._grid(lambda cell: np.inf if cell.samples_to_solve is None else cell.samples_to_solve)

    def seconds_to_solve(self) -> np.ndarray:
        """Training seconds until solved; inf and nan as in samples_to_solve."""
        return self._grid(lambda cell: np.inf if cell.seconds_to_solve is None else cell.seconds_to_solve)

    def accuracy(self) -> np.ndarray:
        return self._grid(lambda cell: cell.accuracy)

    def diverged(self) -> np.ndarray:
        """(L, H, S) bool."""
        return self._grid(lambda cell: cell.diverged) == 1.0

    def median_samples_to_solve(self) -> np.ndarray:
        """(L, H) median over the seeds that ran, an unsolved seed counting as infinitely slow (so the median is
        inf when half or more did not solve); nan where no seed ran."""
        return _median_over_seeds(self.samples_to_solve())

    def solved_fraction(self) -> np.ndarray:
        """(L, H) fraction of the seeds that ran that solved; nan where none ran."""
        samples = self.samples_to_solve()
        ran = np.count_nonzero(~np.isnan(samples), axis=-1)
        solved = np.count_nonzero(np.isfinite(samples), axis=-1)
        return np.divide(solved, ran, out=np.full(ran.shape, np.nan), where=ran > 0)


def _median_over_seeds(values: np.ndarray) -> np.ndarray:
    medians = np.full(values.shape[:-1], np.nan)
    for position in np.ndindex(medians.shape):
        ran = values[position][~np.isnan(values[position])]
        if ran.size:
            medians[position] = np.median(ran)
    return medians


def _is_cancelled(cancel: EventLike | Callable[[], bool] | None) -> bool:
    if cancel is None:
        return False
    return cancel.is_set() if hasattr(cancel, "is_set") else bool(cancel())


def run_sweep(
    learning_rates: Sequence[float],
    hidden_sizes: Sequence[int],
    seeds: Sequence[int],
    base_config: TrainConfig | None = None,
    max_samples: int = 20_000,
    workers: int | None = None,
    progress: Callable[[int, int, CellResult], None] | None = None,
    cancel: EventLike | Callable[[], bool] | None = None,
    chunk: int = DEFAULT_CHUNK,
) -> SweepResult:
    """Run every cell in `workers` processes (default: one per CPU). Raises ConfigError before starting any.

    progress(done, total, cell) is called in this thread as each cell finishes. cancel (an Event, or a callable
    returning True) is checked at least every POLL_SECONDS; when it fires, queued cells are dropped, running
    ones stop at their next chunk, and the result has cancelled=True. No worker process outlives this call.
    """
    cells = grid_cells(learning_rates, hidden_sizes, seeds, base_config)
    result = SweepResult(tuple(learning_rates), tuple(hidden_sizes), tuple(seeds), max_samples)
    if not cells:
        return result
    workers = max(1, min(workers or os.cpu_count() or 1, len(cells)))
    context = multiprocessing.get_context("spawn")
    stop = context.Event()
    executor = ProcessPoolExecutor(workers, mp_context=context, initializer=_start_worker, initargs=(stop,))
    futures: list[Future] = []
    try:
        futures = [executor.submit(_run_in_worker, cell, max_samples, chunk) for cell in cells]
        pending = set(futures)
        while pending and not _is_cancelled(cancel):
            finished, pending = wait(pending, timeout=POLL_SECONDS, return_when=FIRST_COMPLETED)
            for future in finished:
                index, cell = future.result()  # a worker's exception is raised here
                result.cells[index] = cell
                if progress is not None:
                    progress(len(result.cells), len(cells), cell)
        result.cancelled = bool(pending)
    finally:
        stop.set()  # running cells stop at their next chunk ...
        executor.shutdown(wait=True, cancel_futures=True)  # ... queued ones never start; workers are joined
    for future in futures:  # cells that finished or were interrupted while the sweep was being cancelled
        if future.done() and not future.cancelled() and future.exception() is None:
            index, cell = future.result()
            if cell.stopped:
                result.stopped.append(cell)
            else:
                result.cells.setdefault(index, cell)
    return result


# ---- lstm-explorer sweep ------------------------------------------------------------------------------------------
CSV_COLUMNS = ("model", "n_bits", "optimizer", "batch_size", "init", "learning_rate", "hidden_size", "seed",
               "max_samples", "solved", "samples_to_solve", "seconds_to_solve", "samples_seen", "seconds",
               "accuracy", "final_loss", "diverged")


def csv_rows(result: SweepResult) -> list[list[object]]:
    """One row per cell that ran, in grid order, matching CSV_COLUMNS; empty fields where not solved."""
    rows = []
    for index in sorted(result.cells):
        cell = result.cells[index]
        cfg = cell.config
        rows.append([cfg.model, cfg.n_bits, cfg.optimizer, cfg.batch_size, cfg.init, cfg.learning_rate,
                     cfg.hidden_size, cfg.seed, result.max_samples, int(cell.solved),
                     "" if cell.samples_to_solve is None else cell.samples_to_solve,
                     "" if cell.seconds_to_solve is None else f"{cell.seconds_to_solve:.4f}",
                     cell.samples_seen, f"{cell.seconds:.4f}", f"{cell.accuracy:.6f}", f"{cell.loss:.6g}",
                     int(cell.diverged)])
    return rows


def write_csv(result: SweepResult, path: str | os.PathLike[str]) -> None:
    """Header row and one row per cell; written to a temporary file beside path, then renamed over it."""
    temporary = f"{os.fspath(path)}.{os.getpid()}.tmp"
    try:
        with open(temporary, "x", newline="", encoding="utf-8") as stream:
            writer = csv.writer(stream)
            writer.writerow(CSV_COLUMNS)
            writer.writerows(csv_rows(result))
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.unlink(temporary)
        raise


def format_table(result: SweepResult) -> str:
    """Median samples-to-solve per learning rate (rows) and hidden size (columns), with solved/ran seed counts."""
    medians = result.median_samples_to_solve()
    samples = result.samples_to_solve()
    ran = np.count_nonzero(~np.isnan(samples), axis=-1)
    solved = np.count_nonzero(np.isfinite(samples), axis=-1)
    width = 16
    lines = [f"median samples to solve (seeds solved/run), budget {result.max_samples:,} samples; '-' = not solved",
             "lr \\ hidden".ljust(10) + "".join(f"{hidden:>{width}}" for hidden in result.hidden_sizes)]
    for i, lr in enumerate(result.learning_rates):
        row = f"{lr:<10g}"
        for j in range(len(result.hidden_sizes)):
            median = medians[i, j]
            text = "" if np.isnan(median) else "-" if np.isinf(median) else f"{median:,.0f}"
            row += f"{text} ({solved[i, j]}/{ran[i, j]})".rjust(width)
        lines.append(row)
    return "\n".join(lines)


class _UsageError(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]  # one line, not usage + message
        raise _UsageError(message)


def _number_list(kind: type) -> Callable[[str], list]:
    """Parse '0.1,0.3' (or one value) into a list of kind."""
    def parse(text: str) -> list:
        try:
            return [kind(part) for part in text.split(",") if part.strip()]
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a {kind.__name__} or a comma-separated list") from None
    return parse


def _parser() -> _Parser:
    parser = _Parser(prog="lstm-explorer sweep", description="Samples-to-solve over learning rate x hidden size "
                     "x seed, trained in parallel processes; a table on stdout, optionally a CSV.")
    parser.add_argument("--lr", nargs="+", type=_number_list(float), default=[[0.03, 0.1, 0.3, 1.0]],
                        metavar="LR", help="learning rates (space- or comma-separated; default 0.03 0.1 0.3 1)")
    parser.add_argument("--hidden", nargs="+", type=_number_list(int), default=[[4, 8, 16, 32]], metavar="H",
                        help="hidden sizes (default 4 8 16 32)")
    parser.add_argument("--seeds", type=int, default=3, metavar="N", help="seeds 0..N-1 per cell (default 3)")
    parser.add_argument("--max-samples", type=int, default=20_000, metavar="N",
                        help="training budget per cell (default 20000)")
    parser.add_argument("--chunk", type=int, default=DEFAULT_CHUNK, metavar="N",
                        help=f"samples between checks for solved (default {DEFAULT_CHUNK})")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1, metavar="N",
                        help="processes (default: one per CPU)")
    parser.add_argument("--bits", type=int, default=8, help="bits per sum (default 8)")
    parser.add_argument("--batch", type=int, default=1, help="batch size (default 1, online)")
    parser.add_argument("--optimizer", choices=OPTIMIZERS, default="sgd")
    parser.add_argument("--model", choices=tuple(models.MODELS), default="lstm")
    parser.add_argument("--init", choices=lstm.INITS, default="seed")
    parser.add_argument("--out", metavar="CSV", help="write one row per cell to this CSV file")
    return parser


def _check_arguments(args: argparse.Namespace) -> None:
    for name in ("seeds", "max_samples", "chunk", "workers"):
        if getattr(args, name) < 1:
            raise _UsageError(f"--{name.replace('_', '-')} must be at least 1, got {getattr(args, name)}")
    if not args.lr or not args.hidden:
        raise _UsageError("--lr and --hidden need at least one value each")
    if args.out:
        directory = os.path.dirname(os.path.abspath(args.out))
        if not os.path.isdir(directory) or not os.access(directory, os.W_OK):
            raise _UsageError(f"cannot write --out {args.out}: {directory} is not a writable folder")


def _describe_cell(cell: CellResult) -> str:
    cfg = cell.config
    where = f"lr {cfg.learning_rate:g} H{cfg.hidden_size} seed {cfg.seed}"
    if cell.solved:
        return f"{where}: solved at {cell.samples_to_solve:,} samples ({cell.seconds_to_solve:.1f} s)"
    if cell.diverged:
        return f"{where}: diverged after {cell.samples_seen:,} samples"
    return f"{where}: not solved in {cell.samples_seen:,} samples (accuracy {cell.accuracy:.1%})"


def main(argv: list[str] | None = None) -> int:
    """`lstm-explorer sweep [options]`: 0 on success, 2 on bad arguments, 130 when interrupted."""
    parser = _parser()
    try:
        args = parser.parse_args(argv)
        _check_arguments(args)
        learning_rates = [value for values in args.lr for value in values]
        hidden_sizes = [value for values in args.hidden for value in values]
        base = TrainConfig(n_bits=args.bits, batch_size=args.batch, optimizer=args.optimizer, model=args.model,
                           init=args.init).validate()
        grid_cells(learning_rates, hidden_sizes, range(args.seeds), base)  # every config checked before starting
    except SystemExit as done:  # --help
        return int(done.code or 0)
    except (_UsageError, ConfigError) as error:
        print(f"{parser.prog}: error: {error}", file=sys.stderr)
        return 2

    live_line = sys.stderr.isatty()

    def report(done: int, total: int, cell: CellResult) -> None:
        line = f"[{done}/{total}] {_describe_cell(cell)}"
        print(f"\r\x1b[K{line}" if live_line else line, end="" if live_line else "\n", file=sys.stderr, flush=True)

    try:
        result = run_sweep(learning_rates, hidden_sizes, range(args.seeds), base, args.max_samples, args.workers,
                           progress=report, chunk=args.chunk)
    except KeyboardInterrupt:
        print("\nsweep interrupted: nothing written", file=sys.stderr)
        return 130
    if live_line:
        print(file=sys.stderr)
    print(format_table(result))
    if args.out:
        write_csv(result, args.out)
        print(f"wrote {len(result.cells)} rows to {args.out}", file=sys.stderr)
    return 0
