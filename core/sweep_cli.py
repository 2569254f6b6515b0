"""`lstm-explorer sweep`: time to solve over a grid, in local processes or on a Dask cluster; a table, a CSV
that grows as cells finish (and resumes), and the map as a PNG.

    lstm-explorer sweep --grid lr=0.03,0.1,0.3 hidden=4,8,16 seed=0:20 --out sweep.csv --plot map.png
    lstm-explorer sweep ... --scheduler tcp://10.0.0.5:8786        (the same cells on a Dask cluster)
    lstm-explorer sweep ... --out sweep.csv --resume                (after an interruption: only the rest)
    lstm-explorer sweep --from sweep.csv --plot map.png --map lr,hidden

Exit codes: 0 done, 1 a cell failed, 2 bad arguments (one line on stderr), 130 interrupted (the CSV keeps every
finished cell). Nothing here imports Qt: --plot hands the drawing to explorer.panels.sweep, imported only then.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys

import numpy as np

from core import limits, options, sweep_csv
from core.engine import ENGINES, EngineError
from core.sweep import DEFAULT_MAX_SAMPLES, CellResult, MapSummary, SweepError, SweepResult, run_sweep
from core.sweep_grid import KINDS_BY_NAME, Grid, GridError, Index, format_value, parse_grid
from core.trainer import ConfigError

PROG = "lstm-explorer sweep"
DEFAULT_GRID = ("lr=0.01,0.03,0.1,0.3,1", "hidden=4,8,16,32", "seed=0:3")
MAP_NEEDS = ("PySide6", "pyqtgraph")


class UsageError(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]  # one line, not usage + message
        raise UsageError(message)


def build_parser() -> _Parser:
    parser = _Parser(prog=PROG, description="Samples to solve (every sum right) over a grid of settings, each cell "
                     "trained on its own in local processes or on a Dask cluster. Prints a table of the median "
                     "samples to solve and the solve rate over two axes; --out keeps every cell as CSV.",
                     epilog=f"Axes: {', '.join(KINDS_BY_NAME)}. Values: a,b,c; whole numbers also start:stop[:step] "
                     "(stop excluded). An axis with one "
                     "value sets it for every cell. Exit codes: 0 done, 1 a cell failed, 2 bad arguments, "
                     "130 interrupted.")
    parser.add_argument("--grid", nargs="+", metavar="AXIS=VALUES",
                        help=f"the axes (default: {' '.join(DEFAULT_GRID)})")
    parser.add_argument("--max-samples", type=int, default=DEFAULT_MAX_SAMPLES, metavar="N",
                        help=f"training budget per cell (default {DEFAULT_MAX_SAMPLES:,}, the notebook's)")
    parser.add_argument("--engine", choices=("auto", *ENGINES), default="auto",
                        help="auto: compiled where numba is installed, else numpy (default auto)")
    parser.add_argument("--workers", type=int, metavar="N", help="local processes (default: one per CPU)")
    parser.add_argument("--scheduler", metavar="ADDRESS",
                        help="run the cells on the Dask cluster whose scheduler is at ADDRESS (tcp://host:8786); "
                             "needs the cluster extra: pip install \"lstm-explorer[cluster]\"")
    parser.add_argument("--out", metavar="CSV", help="append one row per finished cell to this CSV as it finishes")
    parser.add_argument("--resume", action="store_true",
                        help="with --out: read the cells already in the CSV and run only the others")
    parser.add_argument("--plot", metavar="PNG", help="draw the map (median samples to solve, solve rate) to a PNG")
    parser.add_argument("--map", metavar="X[,Y]",
                        help="the two axes of the table and the map, across and up (default: the first two that "
                             "vary, seeds pooled); every other axis is pooled")
    parser.add_argument("--from", dest="from_csv", metavar="CSV",
                        help="train nothing: read the cells of an earlier sweep's CSV (for --plot or the table)")
    return parser


def _check_folder(option: str, path: str) -> None:
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder) or not os.access(folder, os.W_OK):
        raise UsageError(f"cannot write {option} {path}: {folder} is not a writable folder")
    try:  # nothing but a regular file (or a new one) at the path, and a name the file system takes
        options.output_file(option, path)
    except limits.LimitError as error:
        raise UsageError(str(error)) from None


def _check_arguments(args: argparse.Namespace) -> None:
    if args.max_samples < 1:
        raise UsageError(f"--max-samples must be at least 1, got {args.max_samples}")
    if args.workers is not None and args.workers < 1:
        raise UsageError(f"--workers must be at least 1, got {args.workers}")
    if args.workers is not None and args.workers > limits.cpu_count():
        print(f"{PROG}: --workers {args.workers}: this machine has {limits.cpu_count()} cores, so {limits.cpu_count()} "
              "processes run the cells", file=sys.stderr)
    limits.check_count("--max-samples", args.max_samples)
    if args.workers is not None and args.scheduler:
        raise UsageError("--workers is for local processes; with --scheduler the cluster's workers run the cells")
    if args.resume and not args.out:
        raise UsageError("--resume continues the sweep in --out CSV; give --out")
    if args.from_csv and (args.grid or args.out or args.scheduler or args.resume):
        raise UsageError("--from reads a finished sweep: it takes no --grid, --out, --resume or --scheduler")
    if args.from_csv and not os.path.isfile(args.from_csv):
        raise UsageError(f"--from {args.from_csv}: no such file")
    if args.out:
        _check_folder("--out", args.out)
    if args.plot:
        _check_folder("--plot", args.plot)
        if not args.plot.lower().endswith(".png"):
            raise UsageError(f"--plot writes a PNG: give a file name ending in .png, got {args.plot}")
        missing = [name for name in MAP_NEEDS if importlib.util.find_spec(name) is None]
        if missing:
            raise UsageError(f"--plot draws with {' and '.join(MAP_NEEDS)}, not installed here ({', '.join(missing)}): "
                             "pip install lstm-explorer")


def map_axes(result: SweepResult, spec: str | None) -> tuple[str, str | None]:
    """The table's and the map's axes: --map X,Y (or X), checked against the grid; default_map_axes otherwise."""
    if not spec:
        return result.default_map_axes()
    names = [name.strip() for name in spec.split(",")]
    if not 1 <= len(names) <= 2 or not all(names):
        raise UsageError(f"--map takes one or two axes, X,Y (e.g. lr,hidden), got {spec!r}")
    try:
        positions = [result.grid.position(name) for name in names]
    except GridError as error:
        raise UsageError(f"--map: {error}") from None
    if len(set(positions)) < len(positions):
        raise UsageError(f"--map needs two different axes, got {spec!r}")
    axes = [result.grid.axes[p].name for p in positions]
    return axes[0], axes[1] if len(axes) > 1 else None


def format_table(summary: MapSummary, result: SweepResult) -> str:
    """Median samples to solve with runs solved/finished; rows are Y's values, columns X's."""
    width = max(14, *(len(label) + 2 for label in summary.x_labels))
    engine = f", {result.engine} engine" if result.engine else ""
    corner = f"{summary.y} \\ {summary.x}" if summary.y else summary.x
    lines = [f"median samples to solve (runs solved/finished), each cell pooling {summary.pooled}; budget "
             f"{result.max_samples:,} samples{engine}; '-' = median not solved",
             corner.ljust(12) + "".join(f"{label:>{width}}" for label in summary.x_labels)]
    for j, label in enumerate(summary.y_labels if summary.y else ["all runs"]):
        row = f"{label:<12}"
        for i in range(len(summary.x_labels)):
            median = summary.median[j, i]
            text = "" if np.isnan(median) else "-" if np.isinf(median) else f"{median:,.0f}"
            row += f"{text} ({summary.solved[j, i]}/{summary.ran[j, i]})".rjust(width)
        lines.append(row)
    return "\n".join(lines)


def describe_cell(grid: Grid, cell: CellResult) -> str:
    config = cell.config
    where = " ".join(f"{axis.name} {format_value(axis.kind, getattr(config, axis.kind.field))}"
                     for axis in grid.axes if len(axis) > 1) or "the cell"
    if cell.solved:
        return f"{where}: solved at {cell.samples_to_solve:,} samples ({cell.seconds_to_solve:.1f} s)"
    if cell.diverged:
        return f"{where}: diverged after {cell.samples_seen:,} samples"
    return f"{where}: not solved in {cell.samples_seen:,} samples (accuracy {cell.accuracy:.1%})"


def _progress_printer(grid: Grid, stream: sweep_csv.CellStream | None):
    live_line = sys.stderr.isatty()

    def report(done: int, total: int, index: Index, cell: CellResult) -> None:
        if stream is not None:
            stream.append(cell)
        line = f"[{done}/{total}] {describe_cell(grid, cell)}"
        print(f"\r\x1b[K{line}" if live_line else line, end="" if live_line else "\n", file=sys.stderr, flush=True)

    return report, live_line


def main(argv: list[str] | None = None) -> int:
    """Returns the exit code: 0 done, 1 a cell failed, 2 bad arguments, 130 interrupted."""
    parser = build_parser()
    stream: sweep_csv.CellStream | None = None
    try:
        args = parser.parse_args(argv)
        _check_arguments(args)
        if args.from_csv:
            result = sweep_csv.read_result(args.from_csv)
            x, y = map_axes(result, args.map)
            return _finish(result, x, y, args)
        grid = parse_grid(args.grid or DEFAULT_GRID)
        planned = SweepResult(grid, args.max_samples, "")
        x, y = map_axes(planned, args.map)
        finished: dict[Index, CellResult] = {}
        if args.out:
            stream = sweep_csv.CellStream(args.out, resume=args.resume)
            finished, elsewhere = sweep_csv.finished_cells(stream.previous, grid)
            if elsewhere:
                print(f"{args.out}: {len(elsewhere)} row(s) are not cells of this grid (kept, not shown)",
                      file=sys.stderr)
            if finished:
                print(f"{args.out}: {len(finished)} of {grid.size} cells already finished", file=sys.stderr)
    except SystemExit as done:  # --help
        return int(done.code or 0)
    except (UsageError, ConfigError, sweep_csv.SweepCsvError, OSError, limits.LimitError) as error:
        if stream is not None:
            stream.close()
        print(f"{PROG}: error: {options.one_line(_message(error))}", file=sys.stderr)
        return 2

    report, live_line = _progress_printer(grid, stream)
    try:
        result = run_sweep(grid, args.max_samples, engine=args.engine, workers=args.workers,
                           scheduler=args.scheduler, progress=report, finished=finished)
    except (ConfigError, EngineError, SweepError, limits.LimitError) as error:
        print(f"{PROG}: error: {options.one_line(error)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        kept = f": {len(stream.previous) + stream.written} cells are in {args.out}; the same command with --resume " \
               "runs the rest" if stream is not None else "; nothing kept (--out keeps cells as they finish)"
        print(f"\n{PROG}: interrupted{kept}", file=sys.stderr)
        return 130
    except Exception as error:  # a cell failed (on a worker, or in a process that died)
        print(f"\n{PROG}: a cell failed: {type(error).__name__}: {error}", file=sys.stderr)
        return 1
    finally:
        if stream is not None:
            stream.close()
    if live_line:
        print(file=sys.stderr)
    where = f"on the Dask cluster at {args.scheduler}" if args.scheduler else "in local processes"
    ran = len(result.cells) - len(finished)
    print(f"{ran} cells in {result.wall_seconds:.1f} s {where} ({result.engine} engine)", file=sys.stderr)
    return _finish(result, x, y, args)


def _finish(result: SweepResult, x: str, y: str | None, args: argparse.Namespace) -> int:
    print(format_table(result.summary(x, y), result))
    if args.plot:
        from explorer.panels import sweep as sweep_panel  # Qt only now, and only for the figure

        sweep_panel.save_map(result, args.plot, x, y)
        print(f"wrote the map to {args.plot}", file=sys.stderr)
    return 0


def _message(error: BaseException) -> str:
    if isinstance(error, OSError) and error.filename:
        return f"{error.filename}: {error.strerror}"
    return str(error)
