"""What the File menu does, without the menu: remembered settings (recent files, last hyperparameters), the file
jobs that read the trainer (session, weights, curves), and which dropped files can be opened.

The trainer lives in the training thread, so the jobs run there: TrainerFileAgent is moved to that thread and
runs one job per queued call, between two chunks of training, so it always reads one consistent state. Nothing
here shows a widget.
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import io
import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PySide6.QtCore import QMimeData, QObject, QSettings, Signal, Slot

from core import safe_save, session
from core.trainer import HISTORY_COLUMNS, ConfigError, TrainConfig, Trainer
from explorer import settings as stored

RECENT_KEY = stored.RECENT_FILES
HYPERPARAMETERS_KEY = stored.HYPERPARAMETERS
FOLDER_KEY = stored.LAST_FOLDER
RECENT_LIMIT = 8
SESSION_SUFFIX = ".npz"
CSV_COLUMNS = (*HISTORY_COLUMNS, "event")


def settings() -> QSettings:
    return stored.store()


# ---- recent files -------------------------------------------------------------------------------------------
def _read_json(store: QSettings, key: str) -> object:
    """The JSON value stored under key, or None when it is missing or not JSON (never raises)."""
    text = store.value(key)
    if not isinstance(text, str):
        return None
    try:
        return json.loads(text)
    except ValueError:
        return None


def recent_files(store: QSettings | None = None) -> list[Path]:
    """The remembered session files, most recent first (whatever is stored that is not a path is dropped)."""
    stored = _read_json(store or settings(), RECENT_KEY)
    if not isinstance(stored, list):
        return []
    paths: list[Path] = []
    for entry in stored:
        if isinstance(entry, str) and entry and Path(entry) not in paths:
            paths.append(Path(entry))
    return paths[:RECENT_LIMIT]


def _store_recent(store: QSettings, paths: Sequence[Path]) -> None:
    store.setValue(RECENT_KEY, json.dumps([str(path) for path in paths[:RECENT_LIMIT]]))


def remember_recent(path: str | os.PathLike, store: QSettings | None = None) -> list[Path]:
    """Put path first in the recent files (once, at most RECENT_LIMIT kept); returns the new list."""
    store = store or settings()
    path = Path(path).absolute()
    paths = [path, *(p for p in recent_files(store) if p != path)][:RECENT_LIMIT]
    _store_recent(store, paths)
    return paths


def forget_recent(paths: Sequence[Path] | None = None, store: QSettings | None = None) -> None:
    """Remove these paths from the recent files (all of them when paths is None)."""
    store = store or settings()
    _store_recent(store, [] if paths is None else [p for p in recent_files(store) if p not in set(paths)])


def prune_recent(store: QSettings | None = None) -> tuple[list[Path], list[Path]]:
    """Drop recent files that are no longer there; returns (kept, removed)."""
    store = store or settings()
    paths = recent_files(store)
    kept = [path for path in paths if path.is_file()]
    removed = [path for path in paths if path not in kept]
    if removed:
        _store_recent(store, kept)
    return kept, removed


def last_folder(store: QSettings | None = None) -> Path:
    folder = (store or settings()).value(FOLDER_KEY)
    if isinstance(folder, str) and folder and Path(folder).is_dir():
        return Path(folder)
    return Path.home()


def remember_folder(path: Path, store: QSettings | None = None) -> None:
    (store or settings()).setValue(FOLDER_KEY, str(path.absolute().parent))


# ---- last hyperparameters -----------------------------------------------------------------------------------
def store_hyperparameters(config: TrainConfig, store: QSettings | None = None) -> None:
    (store or settings()).setValue(HYPERPARAMETERS_KEY, config.to_json())


def remembered_config(store: QSettings | None = None) -> TrainConfig:
    """The hyperparameters of the last session, each one checked on its own: a setting that is missing, of the
    wrong type or out of range keeps its default, so a damaged settings file never stops the app."""
    stored = _read_json(store or settings(), HYPERPARAMETERS_KEY)
    config = TrainConfig()
    if not isinstance(stored, dict):
        return config
    for field in dataclasses.fields(TrainConfig):
        if field.name not in stored:
            continue
        value = stored[field.name]
        if not isinstance(value, type(getattr(config, field.name))) and not (
                isinstance(value, int) and isinstance(getattr(config, field.name), float)):
            continue  # e.g. a hidden size of 16.5 or "16": not what was saved
        with contextlib.suppress(ConfigError, TypeError, ValueError, OverflowError):
            config = config.replace(**{field.name: value})
    return config


# ---- file jobs (run in the thread that owns the trainer) ----------------------------------------------------
@dataclass(frozen=True)
class JobResult:
    """What a file job reports back: the error (None on success) and the trainer's progress when it ran."""

    kind: str
    path: Path
    error: str | None
    samples_seen: int = 0
    config: TrainConfig | None = None
    training_seconds: float = 0.0


def curves_csv(rows: np.ndarray, events: Sequence[tuple[int, str]]) -> str:
    """The training curves as CSV: one line per history point (samples, loss, bit_error, accuracy, empty
    event), and one per event (samples, three empty fields, what happened), in order of samples. Numbers are
    written with all their digits, so reading them back gives exactly the same values."""
    lines: list[tuple[int, int, list[object]]] = []  # (samples, 0 for points and 1 for events, fields)
    for row in np.asarray(rows, dtype=np.float64).reshape(-1, len(HISTORY_COLUMNS)):
        samples = int(row[0])
        lines.append((samples, 0, [samples, *(repr(float(value)) for value in row[1:]), ""]))
    for samples, text in events:
        lines.append((int(samples), 1, [int(samples), "", "", "", text]))
    lines.sort(key=lambda line: line[:2])  # stable: points keep their order, an event follows its point
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    writer.writerows(fields for _, _, fields in lines)
    return out.getvalue()


def write_atomic(path: Path, write: Callable[[Path], None]) -> None:
    """Call write(temp) for a temp file next to path, then rename it over path; raises SessionError. The one save
    path of sessions too (core.safe_save): regular files only, symlinks written through, one save of a file at a
    time."""
    safe_save.write_file_by_name(path, write)


def write_curves(path: Path, trainer: Trainer) -> None:
    text = curves_csv(trainer.history.array(), list(trainer.history.events))
    write_atomic(path, lambda temp: temp.write_text(text, encoding="utf-8"))


JOBS: dict[str, Callable[[Path, Trainer], None]] = {
    "session": session.save_session,
    "weights": lambda path, trainer: session.save_model(path, trainer.params, trainer.config),
    "curves": write_curves,
}


def run_job(kind: str, path: Path, trainer: Trainer) -> JobResult:
    """Run one file job on trainer; every failure comes back as a message, never as an exception."""
    try:
        JOBS[kind](path, trainer)
        error = None
    except session.SessionError as problem:
        error = str(problem)
    except Exception as problem:  # reported to the user: a failed save must not end training
        error = f"cannot save {path}: {type(problem).__name__}: {problem}"
    return JobResult(kind, path, error, int(trainer.samples_seen), dataclasses.replace(trainer.config),
                     float(trainer.training_seconds))


class TrainerFileAgent(QObject):
    """Runs file jobs on the worker's trainer. Move it to the worker's thread; call run() through a queued signal."""

    sigDone = Signal(int, object)  # job id, JobResult

    def __init__(self, worker: object) -> None:
        super().__init__()
        self._worker = worker  # its .trainer is read only in the worker's thread, where it may be replaced

    @Slot(int, str, str)
    def run(self, job_id: int, kind: str, path: str) -> None:
        self.sigDone.emit(job_id, run_job(kind, Path(path), self._worker.trainer))


# ---- dropped files ------------------------------------------------------------------------------------------
def dropped_session(mime: QMimeData) -> tuple[Path | None, str]:
    """(path, "") when mime holds exactly one local .npz file, else (None, why it cannot be opened)."""
    urls = mime.urls() if mime.hasUrls() else []
    if not urls:
        return None, "Only saved sessions (.npz files) can be dropped here."
    if len(urls) > 1:
        return None, "Drop one session file at a time."
    url = urls[0]
    if not url.isLocalFile():
        return None, f"Only files on this computer can be opened, not {url.toDisplayString()}."
    path = Path(url.toLocalFile())
    if path.suffix.lower() != SESSION_SUFFIX:
        return None, f"{path.name} is not a saved session: only .npz files can be opened."
    return path, ""
