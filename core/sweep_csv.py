"""A sweep's cells as CSV rows: one row per finished cell, every setting and every outcome, readable back exactly.

CellStream appends each cell as it finishes (flushed and synced), so an interrupted sweep has lost at most the
cells that were running; opened with resume=True it reads the rows already there and the sweep runs only the rest.
Numbers are written as Python's repr (the shortest text that reads back as the same float), so a cell read back
equals the one written. A last line cut short by an interruption is dropped on resume.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import os
from collections.abc import Iterable

import numpy as np

from core.sweep import CellResult, SweepResult
from core.sweep_grid import Grid, Index, grid_from_configs
from core.trainer import ConfigError, TrainConfig

CONFIG_COLUMNS = tuple(f.name for f in dataclasses.fields(TrainConfig))
RESULT_COLUMNS = ("max_samples", "engine", "solved", "samples_to_solve", "seconds_to_solve", "samples_seen",
                  "seconds", "accuracy", "final_loss", "diverged")
COLUMNS = CONFIG_COLUMNS + RESULT_COLUMNS
_FIELD_TYPES = {f.name: type(f.default) for f in dataclasses.fields(TrainConfig)}


class SweepCsvError(ValueError):
    """A CSV that is not a sweep's, or does not fit the sweep it should continue; the message says which line."""


def row_of(cell: CellResult) -> list[str]:
    """The CSV row (COLUMNS) of a finished cell."""
    return [*(_text(getattr(cell.config, name)) for name in CONFIG_COLUMNS), str(cell.max_samples), cell.engine,
            str(int(cell.solved)), _text(cell.samples_to_solve),
            _text(cell.seconds_to_solve), str(cell.samples_seen), _text(cell.seconds), _text(cell.accuracy),
            _text(cell.loss), str(int(cell.diverged))]


def _text(value: object) -> str:
    if value is None:
        return ""
    return repr(float(value)) if isinstance(value, (float, np.floating)) else str(value)


def cell_of(row: dict[str, str], where: str = "") -> CellResult:
    """The cell a row (a csv.DictReader row over COLUMNS) describes; SweepCsvError naming `where` if it cannot."""
    try:
        settings = {name: _read_setting(name, row[name]) for name in CONFIG_COLUMNS}
        config = TrainConfig(**settings).validate()
        solved = row["samples_to_solve"] != ""
        return CellResult(config, int(row["max_samples"]), row["engine"],
                          int(row["samples_to_solve"]) if solved else None,
                          float(row["seconds_to_solve"]) if solved else None, int(row["samples_seen"]),
                          float(row["seconds"]), float(row["accuracy"]), float(row["final_loss"]),
                          row["diverged"] == "1")
    except (KeyError, TypeError, ValueError, ConfigError) as error:
        raise SweepCsvError(f"{where}not a sweep row ({error})") from None


def _read_setting(name: str, text: str) -> object:
    kind = _FIELD_TYPES[name]
    if kind is bool:
        if text not in ("True", "False"):
            raise ValueError(f"{name} must be True or False, got {text!r}")
        return text == "True"
    return kind(text)


def read_cells(path: str | os.PathLike[str]) -> list[CellResult]:
    """Every cell in a sweep CSV, in file order (a last line cut short is left out)."""
    with open(path, newline="", encoding="utf-8") as stream:
        text = stream.read()
    return _parse(text, os.fspath(path))[0]


def _parse(text: str, name: str, appending: bool = False) -> tuple[list[CellResult], int]:
    """(cells, length of the text up to the last whole line). A file written before a setting existed lacks its
    column: its cells had the default. Rows are only appended to a file with exactly COLUMNS."""
    whole = text if text.endswith("\n") or not text else text[: text.rfind("\n") + 1]
    reader = csv.reader(io.StringIO(whole))
    header = next(reader, None)
    if header is None:
        return [], 0
    header = tuple(header)
    required = RESULT_COLUMNS if not appending else COLUMNS
    missing = [column for column in required if column not in header]
    unknown = [column for column in header if column not in COLUMNS]
    if missing or unknown or len(set(header)) < len(header):
        detail = "; ".join(part for part in (f"missing {', '.join(missing)}" if missing else "",
                                             f"unknown {', '.join(unknown)}" if unknown else "") if part)
        raise SweepCsvError(f"{name} is not a sweep CSV of this version ({detail or 'a column twice'})")
    if appending and header != COLUMNS:
        raise SweepCsvError(f"{name} has its columns in another order than this version writes")
    defaults = {column: _text(getattr(TrainConfig(), column)) for column in CONFIG_COLUMNS}
    cells = []
    for line, values in enumerate(reader, start=2):
        if len(values) != len(header):
            raise SweepCsvError(f"{name}, line {line}: {len(values)} fields, expected {len(header)}")
        cells.append(cell_of({**defaults, **dict(zip(header, values))}, f"{name}, line {line}: "))
    return cells, len(whole.encode("utf-8"))


def result_from_cells(cells: Iterable[CellResult], grid: Grid | None = None,
                      order: Iterable[str] = ()) -> tuple[SweepResult, list[CellResult]]:
    """A SweepResult of the cells on `grid` (by default the smallest grid holding them, axes in `order` first),
    and the cells that are not on it. The cells must share one budget and engine."""
    cells = list(cells)
    if grid is None:
        grid = grid_from_configs([cell.config for cell in cells], list(order))
    budgets = sorted({cell.max_samples for cell in cells})
    engines = sorted({cell.engine for cell in cells} or {"numpy"})  # the sweep's engine: what its cells ran on
    if len(budgets) > 1 or len(engines) > 1:
        raise SweepCsvError(f"the cells were trained with different budgets ({', '.join(map(str, budgets))} "
                            f"samples) or engines ({', '.join(engines)}): not one sweep")
    max_samples, engine = (budgets[0] if budgets else 0), engines[0]
    result = SweepResult(grid, max_samples, engine)
    result.cells, elsewhere = finished_cells(cells, grid)
    return result, elsewhere


def read_result(path: str | os.PathLike[str], order: Iterable[str] = ()) -> SweepResult:
    """A sweep CSV as a SweepResult on the smallest grid holding its cells."""
    cells = read_cells(path)
    if not cells:
        raise SweepCsvError(f"{os.fspath(path)} has no cells")
    return result_from_cells(cells, order=order)[0]


class CellStream:
    """Appends finished cells to a CSV as they arrive. Use as a context manager.

    A new file gets the header. An existing one with rows is refused unless resume is True; then its rows are
    read (`previous`), a last line cut short is cut off, and new rows follow."""

    def __init__(self, path: str | os.PathLike[str], resume: bool = False) -> None:
        self.path = os.fspath(path)
        self.previous: list[CellResult] = []
        exists = os.path.exists(self.path) and os.path.getsize(self.path) > 0
        if exists and not resume and _has_rows(self.path):
            raise SweepCsvError(f"{self.path} exists: --resume continues that sweep, or choose another file")
        if exists:
            with open(self.path, newline="", encoding="utf-8") as stream:
                text = stream.read()
            self.previous, whole_length = _parse(text, self.path, appending=True)
            self._stream = open(self.path, "r+", newline="", encoding="utf-8")  # noqa: SIM115 (closed in close())
            self._stream.truncate(whole_length)  # a line cut short by the interruption goes
            self._stream.seek(whole_length)
        else:
            self._stream = open(self.path, "w", newline="", encoding="utf-8")  # noqa: SIM115
        self._writer = csv.writer(self._stream, lineterminator="\n")
        if self._stream.tell() == 0:  # a new file, or one whose header was cut short
            self._writer.writerow(COLUMNS)
            self._sync()
        self.written = 0

    def append(self, cell: CellResult) -> None:
        self._writer.writerow(row_of(cell))
        self._sync()
        self.written += 1

    def _sync(self) -> None:
        self._stream.flush()
        os.fsync(self._stream.fileno())

    def close(self) -> None:
        self._stream.close()

    def __enter__(self) -> CellStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def finished_cells(previous: Iterable[CellResult], grid: Grid) -> tuple[dict[Index, CellResult], list[CellResult]]:
    """The earlier cells that are cells of grid (by index), and the rest."""
    on_grid: dict[Index, CellResult] = {}
    elsewhere = []
    for cell in previous:
        index = grid.index_of(cell.config)
        if index is None:
            elsewhere.append(cell)
        else:
            on_grid.setdefault(index, cell)
    return on_grid, elsewhere


def _has_rows(path: str) -> bool:
    """Whether the file has a line after its first (a sweep that started but finished no cell has none)."""
    with open(path, encoding="utf-8", errors="replace") as stream:
        stream.readline()
        return bool(stream.readline())


def write_csv(result: SweepResult, path: str | os.PathLike[str]) -> None:
    """Header and one row per finished cell in grid order; written beside path, then renamed over it."""
    temporary = f"{os.fspath(path)}.{os.getpid()}.tmp"
    try:
        with open(temporary, "x", newline="", encoding="utf-8") as stream:
            writer = csv.writer(stream, lineterminator="\n")
            writer.writerow(COLUMNS)
            writer.writerows(row_of(result.cells[index]) for index in sorted(result.cells))
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.unlink(temporary)
        raise
