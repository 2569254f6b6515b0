"""Reading a saved model or session without trusting it: every cost is bounded before it is paid.

A file is an .npz (a zip of .npy members). Before anything is decompressed:
- the path must be a regular file (opened without blocking, so a FIFO cannot hang the reader);
- the zip directory may list at most limits.MAX_MEMBERS members in at most MAX_DIRECTORY_BYTES (read from the end
  record, before zipfile parses the directory);
- only members this format knows are looked at (known_key); others are never decompressed;
- each known member's .npy header (at most MAX_HEADER bytes) is read, and its shape and type checked against what
  the key can hold: weights and flat optimizer arrays at most the weights of MAX_HIDDEN units (the hidden size
  itself read from weight_hh's header), tables at most their row limits, text at most limits.MAX_TEXT_CHARS;
- the total of the members' sizes must fit in memory (limits.check_memory).
Only then are the known members read, allow_pickle=False. The values are range-checked by the small readers
below (text, JSON, whole numbers, numbers, float arrays), each raising SessionError naming the file and the key.
"""

from __future__ import annotations

import errno
import json
import math
import os
import stat
import struct
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from core import lstm, rnn, timeline
from core.limits import (
    MAX_MEMBERS,
    MAX_SAMPLES,
    MAX_TEXT_CHARS,
    LimitError,
    check_memory,
    parameter_count,
    shown,
    shown_path,
)
from core.safe_save import SessionError, os_problem
from core.trainer import CHECK_EVERY, MAX_BATCH, MAX_HIDDEN, History

MAX_HEADER = 10_000  # bytes of .npy header we accept (numpy's own default limit)
MAX_DIRECTORY_BYTES = 1 << 20  # the zip's central directory: MAX_MEMBERS entries take a few kB
MAX_HISTORY_ROWS = History().capacity
MAX_PENDING_ROWS = 1 << 16  # chunks waiting to be merged: fewer than the stride (runs up to ~6e12 samples)
MAX_INTERVAL_ROWS = CHECK_EVERY + MAX_BATCH  # samples since the last check
STATE_NAMES = ("velocity", "first", "second", "steps")  # optimizer state arrays (core.optim)
WEIGHT_KEYS = frozenset(lstm.STATE_DICT_KEYS) | frozenset(rnn.STATE_DICT_KEYS)
HIDDEN_KEYS = ("lstm.weight_hh_l0", "rnn.weight_hh_l0")  # (4H, H) and (H, H): where the hidden size is read
TEXT_KEYS = frozenset({"format", "model", "config", "rng_state", "history.events", "solved_at", "loss",
                       "rollback.rng_state"})
SCALAR_KEYS = frozenset({"format_version", "history.stride", "samples_seen", "training_seconds", "samples_per_second",
                         "solved_now", "accuracy", "rollback.samples_seen", "optimizer.steps",
                         "rollback.optimizer.steps", "timeline.stride"})
FLAT_KEYS = frozenset({"rollback.flat"} | {f"{prefix}{name}" for prefix in ("optimizer.", "rollback.optimizer.")
                                           for name in STATE_NAMES if name != "steps"})
TABLE_ROWS = {"history.rows": (MAX_HISTORY_ROWS, 4), "history.pending": (MAX_PENDING_ROWS, 5),
              "interval": (MAX_INTERVAL_ROWS, 2), "rollback.interval": (MAX_INTERVAL_ROWS, 2),
              "timeline.points": (timeline.MAX_POINTS, 2)}
ROW_BYTES = {"timeline.flat": timeline.MAX_BUDGET}  # rows of numbers bounded by their size in bytes
KNOWN_KEYS = WEIGHT_KEYS | TEXT_KEYS | SCALAR_KEYS | FLAT_KEYS | frozenset(TABLE_ROWS) | frozenset(ROW_BYTES)


@dataclass(frozen=True)
class _Header:
    info: zipfile.ZipInfo
    shape: tuple[int, ...]
    dtype: np.dtype


# ---- the archive -------------------------------------------------------------------------------------------------
def read_arrays(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """The known members of the .npz at path, each checked before it is read (see the module docstring)."""
    shown_name = _shown_name(path)
    descriptor = _open_regular(path, shown_name)
    with os.fdopen(descriptor, "rb") as handle:
        size = os.fstat(handle.fileno()).st_size
        _check_directory(handle, size, shown_name)
        try:
            with zipfile.ZipFile(handle) as archive:
                headers = _known_headers(archive, shown_name)
                _check_sizes(headers, shown_name)
                return {key: _read_member(archive, header, key, shown_name) for key, header in headers.items()}
        except SessionError:
            raise
        except LimitError as error:  # too large for this process: a file that cannot be opened here
            raise SessionError(str(error)) from None
        except Exception as error:  # a damaged archive fails in many ways inside zipfile, zlib and numpy
            raise SessionError(f"{shown_name} is damaged and cannot be read ({type(error).__name__}: "
                               f"{shown(str(error), 80)})") from None


def _shown_name(path: str | os.PathLike) -> str:
    text = os.fspath(path)
    if not text:
        raise SessionError("no file name given")
    return shown_path(text)


def _open_regular(path: str | os.PathLike, shown_name: str) -> int:
    """A read-only descriptor of the regular file at path; SessionError for anything else."""
    try:
        descriptor = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    except OSError as error:
        if error.errno == errno.EISDIR:
            raise SessionError(f"{shown_name} is a folder, not a saved model or session file") from None
        raise SessionError(f"cannot read {shown_name}: {os_problem(error)}") from None
    mode = os.fstat(descriptor).st_mode
    if not stat.S_ISREG(mode):
        os.close(descriptor)
        if stat.S_ISDIR(mode):
            raise SessionError(f"{shown_name} is a folder, not a saved model or session file")
        raise SessionError(f"{shown_name} is not a regular file (a device, FIFO or socket)")
    return descriptor


def _check_directory(handle, size: int, shown_name: str) -> None:
    """Refuse a zip whose directory lists more than MAX_MEMBERS members, read from its end record."""
    not_zip = SessionError(f"{shown_name} is not a saved model or session: an .npz (zip) file was expected; the "
                           "file is damaged, truncated or of another kind")
    tail_size = min(size, 22 + 65535)
    handle.seek(size - tail_size)
    tail = handle.read(tail_size)
    end = tail.rfind(b"PK\x05\x06")
    if end < 0 or len(tail) - end < 22:
        raise not_zip
    entries, directory_size = struct.unpack("<xxxxxxxxxxHI", tail[end : end + 16])
    if (entries == 0xFFFF or directory_size == 0xFFFFFFFF) and end >= 20:  # zip64: the real counts are elsewhere
        locator = tail[end - 20 : end]
        if locator[:4] == b"PK\x06\x07":
            (offset,) = struct.unpack("<Q", locator[8:16])
            if offset + 56 <= size:
                handle.seek(offset)
                record = handle.read(56)
                if record[:4] == b"PK\x06\x06":
                    entries, directory_size = struct.unpack("<QQ", record[32:48])
    if entries > MAX_MEMBERS or directory_size > MAX_DIRECTORY_BYTES:
        raise SessionError(f"{shown_name} lists {entries:,} members in its directory; a saved model or session "
                           f"has at most {MAX_MEMBERS}")
    handle.seek(0)


def known_key(key: str) -> bool:
    return key in KNOWN_KEYS


def _known_headers(archive: zipfile.ZipFile, shown_name: str) -> dict[str, _Header]:
    """The .npy headers of the known members (the last of a name, as np.load does); others are left unread."""
    infos = {info.filename: info for info in archive.infolist()}
    headers = {}
    for name, info in infos.items():
        key = name.removesuffix(".npy")
        if name == key or not known_key(key):
            continue
        with archive.open(info) as member:
            version = np.lib.format.read_magic(member)
            if version == (1, 0):
                shape, _, dtype = np.lib.format.read_array_header_1_0(member, max_header_size=MAX_HEADER)
            elif version == (2, 0):
                shape, _, dtype = np.lib.format.read_array_header_2_0(member, max_header_size=MAX_HEADER)
            else:
                raise SessionError(f"{shown_name}: {key} uses .npy format version {version}, which is not supported")
        if dtype.hasobject:
            raise SessionError(f"{shown_name}: {key} holds pickled Python objects, which are never loaded (they "
                               "can run code)")
        if dtype.kind not in "biufU":
            raise SessionError(f"{shown_name}: {key} holds {shown(str(dtype))} values, not numbers or text")
        if dtype.kind == "U" and dtype.itemsize > 4 * MAX_TEXT_CHARS:
            raise SessionError(f"{shown_name}: {key} is text of {dtype.itemsize // 4:,} characters; at most "
                               f"{MAX_TEXT_CHARS:,} are read")
        if dtype.itemsize > 16 and dtype.kind != "U":
            raise SessionError(f"{shown_name}: {key} holds {shown(str(dtype))} values, not numbers or text")
        if math.prod(shape) * dtype.itemsize > info.file_size:
            raise SessionError(f"{shown_name} is damaged: {key} claims shape {shown(shape)} but holds only "
                               f"{info.file_size} bytes")
        headers[key] = _Header(info, tuple(shape), dtype)
    return headers


def _hidden_size(headers: Mapping[str, _Header], shown_name: str) -> int:
    """The hidden size the weights' headers declare (the larger reading of a matrix that is not (4H, H) or (H, H):
    its exact shape is checked once read), refused above MAX_HIDDEN; 0 when there are no weights."""
    hidden = 0
    for key, gates in zip(HIDDEN_KEYS, (4, 1)):
        if key in headers:
            shape = headers[key].shape
            if len(shape) != 2 or 0 in shape:
                raise SessionError(f"{shown_name}: {key} must be a matrix ({gates}H, H), got shape {shown(shape)}")
            declared = max(shape[1], -(-shape[0] // gates))
            if declared > MAX_HIDDEN:
                raise SessionError(f"{shown_name}: {key} has shape {shown(shape)}: {declared:,} hidden units; at "
                                   f"most {MAX_HIDDEN} are supported")
            hidden = max(hidden, declared)
    return hidden


def _check_sizes(headers: Mapping[str, _Header], shown_name: str) -> None:
    """Each member at most what its key can hold, and all of them together within memory, before any is read."""
    weights = parameter_count(_hidden_size(headers, shown_name))
    total = 0
    for key, header in headers.items():
        shape, elements = header.shape, math.prod(header.shape)
        if key in TEXT_KEYS or key in SCALAR_KEYS:
            ok = shape == ()
            bound = "a single value"
        elif key in TABLE_ROWS:
            rows, width = TABLE_ROWS[key]
            ok = len(shape) == 2 and shape[0] <= rows and shape[1] == width
            bound = f"a table of at most {rows:,} rows of {width}"
        elif key in ROW_BYTES:
            ok = len(shape) == 1 and elements * header.dtype.itemsize <= ROW_BYTES[key]
            bound = f"a row of numbers of at most {ROW_BYTES[key]:,} bytes"
        else:  # weights and flat optimizer state: at most the weights of the declared hidden size
            ok = len(shape) <= 2 and elements <= weights
            bound = f"at most {weights:,} numbers (the weights of the declared hidden size)"
        if not ok:
            raise SessionError(f"{shown_name}: {key} has shape {shown(shape)}; it must be {bound}")
        total += elements * header.dtype.itemsize
    check_memory(f"reading {shown_name}", 2 * total)  # the arrays, and the weights built from them


def _read_member(archive: zipfile.ZipFile, header: _Header, key: str, shown_name: str) -> np.ndarray:
    with archive.open(header.info) as member:
        array = np.lib.format.read_array(member, allow_pickle=False, max_header_size=MAX_HEADER)
    if array.shape != header.shape:
        raise SessionError(f"{shown_name} is damaged: {key} changed shape while it was read")
    return array


# ---- small readers: each raises SessionError naming the file and the key -----------------------------------------
def required(where: str, arrays: Mapping[str, np.ndarray], key: str) -> np.ndarray:
    if key not in arrays:
        raise SessionError(f"{where} is incomplete: it has no {key}")
    return arrays[key]


def text(where: str, arrays: Mapping[str, np.ndarray], key: str) -> str:
    value = required(where, arrays, key)
    if value.shape != () or value.dtype.kind != "U":
        raise SessionError(f"{where}: {key} must be a text value, got {value.dtype} {value.shape}")
    return str(value[()])


def json_value(where: str, arrays: Mapping[str, np.ndarray], key: str) -> object:
    """The JSON in a text member; nesting too deep for Python is refused like any other bad JSON."""
    try:
        return json.loads(text(where, arrays, key))
    except json.JSONDecodeError as error:
        raise SessionError(f"{where}: {key} is not valid JSON ({error})") from None
    except RecursionError:
        raise SessionError(f"{where}: {key} is JSON nested too deeply") from None


def integer(where: str, arrays: Mapping[str, np.ndarray], key: str, minimum: int = 0,
            maximum: int = MAX_SAMPLES) -> int:
    value = required(where, arrays, key)
    if value.shape != () or value.dtype.kind not in "iu" or not minimum <= int(value) <= maximum:
        raise SessionError(f"{where}: {key} must be a whole number from {minimum:,} to {maximum:,}, got "
                           f"{shown(value[()] if value.shape == () else value.shape)}")
    return int(value)


def number(where: str, arrays: Mapping[str, np.ndarray], key: str, minimum: float = 0.0,
           maximum: float = math.inf) -> float:
    value = required(where, arrays, key)
    ok = value.shape == () and value.dtype.kind in "fiu" and np.isfinite(value) and minimum <= value <= maximum
    if not ok:
        upper = "" if maximum == math.inf else f" and at most {maximum:g}"
        raise SessionError(f"{where}: {key} must be a finite number of at least {minimum:g}{upper}, got "
                           f"{shown(value[()] if value.shape == () else value.shape)}")
    return float(value)


def float_array(where: str, key: str, value: np.ndarray, minimum: float = -math.inf) -> None:
    """Floating-point, finite, and at least minimum everywhere."""
    if value.dtype.kind != "f":
        raise SessionError(f"{where}: {key} must hold floating-point numbers, not {value.dtype}")
    if not np.all(np.isfinite(value)):
        raise SessionError(f"{where}: {key} contains NaN or infinite values")
    if minimum > -math.inf and value.size and value.min() < minimum:
        raise SessionError(f"{where}: {key} must be at least {minimum:g} everywhere, got {float(value.min()):g}")


def counter(where: str, key: str, value: np.ndarray) -> int:
    """A step counter (0-d whole number from 0 to MAX_SAMPLES)."""
    if value.shape != () or value.dtype.kind not in "iu" or not 0 <= int(value) <= MAX_SAMPLES:
        raise SessionError(f"{where}: {key} must be a whole number from 0 to {MAX_SAMPLES:,}, got "
                           f"{shown(value[()] if value.shape == () else value.shape)}")
    return int(value)
