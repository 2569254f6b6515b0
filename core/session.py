"""Saving and loading trained models and whole training sessions as .npz files.

A file holds the model's PyTorch state_dict keys (see core.lstm.STATE_DICT_KEYS) as plain float arrays, so
`np.load(path)` plus `torch.from_numpy` fills an nn.LSTM + nn.Linear; everything else sits under other keys:

    format, format_version   what the file is ("lstm-explorer session" or "lstm-explorer model") and its layout
    model                    the model kind, a name in core.models.MODELS
    config                   TrainConfig.to_json()
    optimizer.<name>         the optimizer's state (momentum velocity; Adam moments and step count)
    rng_state                the training generator's bit_generator.state as JSON
    history.rows (N, 4)      samples, loss, bit error, accuracy; history.stride, history.pending (k, 5),
    history.events           and the hyperparameter-change markers as JSON
    samples_seen, training_seconds, samples_per_second, solved_at (JSON: null or [samples, seconds])
    solved_now, accuracy     whether every sum was right at the last check, and the held-out accuracy there
    interval (k, 2)          loss and bit error of each sample since the last check (the next history point)
    rollback.*               where a divergence returns to: flat, samples_seen, rng_state, interval, optimizer.<name>
    loss                     the loss that trained the weights: "bce-sum" (BCE summed over bits, mean over the
                             batch); files from before it was recorded were trained with "bce-mean" (the mean over
                             bits), and keep saying so after they are continued

Writes are atomic (temp file in the same folder, fsync, rename); loads use allow_pickle=False and check every
array before anything is built, so a bad file raises SessionError and never leaves a half-loaded trainer.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import tempfile
import zipfile
from collections.abc import Callable, Mapping
from pathlib import Path
from types import ModuleType

import numpy as np

from core import models
from core.trainer import (
    CHECK_EVERY,
    HISTORY_COLUMNS,
    MAX_BATCH,
    ConfigError,
    History,
    RollbackPoint,
    TrainConfig,
    Trainer,
)

FORMAT_VERSION = 1
SESSION_FORMAT = "lstm-explorer session"
MODEL_FORMAT = "lstm-explorer model"
PENDING_COLUMNS = len(HISTORY_COLUMNS) + 1  # a chunk not yet merged into history: its four metrics and its weight
_MAX_HEADER = 10_000  # bytes of .npy header we accept (numpy's own default limit)

# For tests only (tests/test_session.py): called with "written" once the temp file is complete and synced but not yet
# renamed over the destination, and with "renamed" just after the rename, so a test can kill the process at exactly
# those points. Always None in the app.
write_stage_hook: Callable[[str], None] | None = None


class SessionError(ValueError):
    """A file that cannot be saved or loaded; the message names the file and what is wrong with it."""


# ---- saving ------------------------------------------------------------------------------------------------------
def save_session(path: str | os.PathLike, trainer: Trainer) -> None:
    """Write everything needed to continue trainer's run bit-identically. Atomic; raises SessionError."""
    params = trainer.params
    arrays: dict[str, np.ndarray] = dict(params.state_dict())
    arrays.update(_header(SESSION_FORMAT, _model_name(trainer.model), trainer.config))
    for name, value in trainer.optimizer.state().items():
        arrays[f"optimizer.{name}"] = np.asarray(value)
    history = trainer.history
    arrays["rng_state"] = np.array(json.dumps(trainer.rng.bit_generator.state))
    arrays["history.rows"] = history.array()
    arrays["history.stride"] = np.array(history.stride, dtype=np.int64)
    # Chunks waiting to be merged into the next history point: without them a continued run's curve would differ.
    arrays["history.pending"] = history.pending()
    arrays["history.events"] = np.array(json.dumps([[int(s), str(text)] for s, text in history.events]))
    arrays["samples_seen"] = np.array(trainer.samples_seen, dtype=np.int64)
    arrays["training_seconds"] = np.array(float(trainer.training_seconds))
    arrays["samples_per_second"] = np.array(float(trainer.samples_per_second))
    solved = None if trainer.solved_at is None else [int(trainer.solved_at[0]), float(trainer.solved_at[1])]
    arrays["solved_at"] = np.array(json.dumps(solved))
    arrays["solved_now"] = np.array(bool(trainer.solved_now))
    arrays["accuracy"] = np.array(float(trainer.accuracy))
    arrays["interval"] = trainer.interval.copy()
    arrays["loss"] = np.array(trainer.loss_note)
    point = trainer.rollback_point
    arrays["rollback.flat"] = point.flat.copy()
    arrays["rollback.samples_seen"] = np.array(point.samples_seen, dtype=np.int64)
    arrays["rollback.rng_state"] = np.array(point.rng_state)
    arrays["rollback.interval"] = point.interval.copy()
    for name, value in point.optimizer.items():
        arrays[f"rollback.optimizer.{name}"] = np.asarray(value)
    _write_atomic(Path(path), arrays)


def save_model(path: str | os.PathLike, params: object, config: TrainConfig | None = None) -> None:
    """Write weights (and the config they were trained with, if given) only. Atomic; raises SessionError."""
    try:
        module = models.of(params)
    except TypeError as error:
        raise SessionError(f"cannot save {path}: {error}") from None
    arrays: dict[str, np.ndarray] = dict(params.state_dict())
    arrays.update(_header(MODEL_FORMAT, _model_name(module), config))
    _write_atomic(Path(path), arrays)


def _header(kind: str, model_name: str, config: TrainConfig | None) -> dict[str, np.ndarray]:
    header = {
        "format": np.array(kind),
        "format_version": np.array(FORMAT_VERSION, dtype=np.int64),
        "model": np.array(model_name),
    }
    if config is not None:
        header["config"] = np.array(config.to_json())
    return header


def _model_name(module: ModuleType) -> str:
    for name, candidate in models.MODELS.items():
        if candidate is module:
            return name
    raise SessionError(f"model {module.__name__} is not registered in core.models")


def check_writable(path: str | os.PathLike) -> None:
    """Raise SessionError now if saving to path cannot work, so a long run is not wasted on a bad --save."""
    path = Path(path)
    if path.is_dir():
        raise SessionError(f"cannot save to {path}: it is a folder; give a file name such as {path / 'run.npz'}")
    if not path.parent.is_dir():
        raise SessionError(f"cannot save {path}: the folder {path.parent} does not exist")
    if not os.access(path.parent, os.W_OK | os.X_OK):
        raise SessionError(f"cannot save {path}: the folder {path.parent} is not writable")


def _write_atomic(path: Path, arrays: Mapping[str, np.ndarray]) -> None:
    """Write arrays as an .npz at path so that path holds either the old file or the complete new one."""
    folder = path.parent
    check_writable(path)
    try:
        descriptor, temp_name = tempfile.mkstemp(dir=folder, prefix=f".{path.name}.", suffix=".part")
    except OSError as error:
        raise SessionError(f"cannot save {path}: cannot write in the folder {folder} ({error.strerror})") from None
    temp = Path(temp_name)
    try:
        with os.fdopen(descriptor, "wb") as handle:
            # To an open file, not a name: np.savez would append ".npz" to a name that lacks it.
            np.savez(handle, **arrays)
            handle.flush()
            os.fchmod(handle.fileno(), _new_file_mode(path))
            os.fsync(handle.fileno())
        if write_stage_hook is not None:
            write_stage_hook("written")
        os.replace(temp, path)
    except BaseException as error:  # also KeyboardInterrupt: never leave a half-written temp file behind
        with contextlib.suppress(OSError):
            temp.unlink()
        if isinstance(error, OSError):
            raise SessionError(f"cannot save {path}: {error.strerror or error}") from None
        if isinstance(error, Exception):
            raise SessionError(f"cannot save {path}: {error}") from None
        raise
    if write_stage_hook is not None:
        write_stage_hook("renamed")
    _fsync_folder(folder)


def _new_file_mode(path: Path) -> int:
    """Keep an existing file's permissions; a new file gets the usual 0o666 minus the umask (temp files are 0o600)."""
    with contextlib.suppress(OSError):
        return path.stat().st_mode & 0o777
    umask = 0o022
    # Reading the umask with os.umask() would briefly change it for every thread; Linux reports it here instead.
    with contextlib.suppress(OSError, ValueError), open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("Umask:"):
                umask = int(line.split()[1], 8)
    return 0o666 & ~umask


def _fsync_folder(folder: Path) -> None:
    """Make the rename itself durable; not every platform or file system allows opening a folder."""
    with contextlib.suppress(OSError):
        descriptor = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(descriptor)
        finally:
            os.close(descriptor)


# ---- loading -----------------------------------------------------------------------------------------------------
def load_model(path: str | os.PathLike) -> tuple[object, TrainConfig | None]:
    """(params, config or None) from a model or session file, or from any .npz holding the state_dict keys."""
    path = Path(path)
    arrays = _read_arrays(path)
    config = _config(path, arrays) if "config" in arrays else None
    module = _model_module(path, arrays, config)
    params = _params(path, arrays, module)
    if config is not None:
        _check_params_match(path, params, config)
    return params, config


def load_session(path: str | os.PathLike) -> Trainer:
    """A new Trainer that continues exactly where the saved one stopped. Raises SessionError on any problem."""
    path = Path(path)
    arrays = _read_arrays(path)
    if "config" not in arrays or "rng_state" not in arrays:
        raise SessionError(f"{path} holds weights only, not a training session (no config or training state): "
                           "it can be evaluated but not continued")
    config = _config(path, arrays)
    module = _model_module(path, arrays, config)
    params = _params(path, arrays, module)
    _check_params_match(path, params, config)
    scalars = _training_scalars(path, arrays)
    rows, stride, pending, events = _history(path, arrays)
    optimizer_state = {key.removeprefix("optimizer."): arrays[key] for key in arrays if key.startswith("optimizer.")}
    for name, value in optimizer_state.items():
        _check_float_array(path, f"optimizer.{name}", value, allow_counter=True)
        if value.dtype.kind == "f" and value.shape != params.flat.shape:
            raise SessionError(f"{path}: optimizer.{name} has shape {value.shape}, expected {params.flat.shape}")
    rng_state = _json(path, arrays, "rng_state")
    state = _run_state(path, arrays, params, optimizer_state, scalars[0])

    # Everything was checked above; the new trainer is built only now and nobody else holds it until it is returned.
    trainer = Trainer(config)
    trainer.params = params
    try:
        trainer.optimizer.load_state({name: np.asarray(value) for name, value in optimizer_state.items()})
    except (KeyError, ValueError, TypeError) as error:
        raise SessionError(f"{path}: optimizer state does not fit optimizer {config.optimizer!r} ({error})") from None
    if set(trainer.optimizer.state()) != set(optimizer_state):
        raise SessionError(f"{path}: optimizer state {sorted(optimizer_state)} does not fit optimizer "
                           f"{config.optimizer!r}")
    for name, value in trainer.optimizer.state().items():  # same dtype as the weights, as a running optimizer has
        if value.ndim and value.dtype != params.dtype:
            raise SessionError(f"{path}: optimizer.{name} is {value.dtype}, the weights are {params.dtype}")
    _set_rng_state(path, trainer.rng, rng_state)
    trainer.history.load(rows, stride, events, pending)
    trainer.samples_seen, trainer.training_seconds, trainer.samples_per_second, trainer.solved_at = scalars
    trainer.loss_note = state["loss"]
    trainer.interval = state["interval"]
    trainer.solved_now = state["solved_now"]
    trainer.accuracy = state["accuracy"] if state["accuracy"] is not None else trainer.heldout_accuracy()
    if state["rollback"] is None:  # an older file: return to where it was saved
        trainer.rollback_point = trainer._rollback_point()
    else:
        samples, flat, rng_json, interval, optimizer = state["rollback"]
        _set_rng_state(path, np.random.default_rng(), json.loads(rng_json))  # checked like rng_state
        trainer.rollback_point = RollbackPoint(samples, flat.astype(params.dtype), optimizer, rng_json, interval)
    return trainer


def _run_state(path: Path, arrays: Mapping[str, np.ndarray], params: object, optimizer_state: Mapping,
               samples_seen: int) -> dict:
    """The deterministic-run fields (see the module docstring), checked; defaults for files that predate them."""
    state: dict = {"loss": "bce-sum", "interval": np.empty((0, 2)), "solved_now": False, "accuracy": None,
                   "rollback": None}
    if "loss" in arrays:
        state["loss"] = _text(path, arrays, "loss")[:200]
    else:
        state["loss"] = f"bce-mean until sample {samples_seen}, then bce-sum"
    if "interval" in arrays:
        state["interval"] = _interval(path, "interval", arrays["interval"])
    if "solved_now" in arrays:
        value = arrays["solved_now"]
        if value.shape != () or value.dtype.kind != "b":
            raise SessionError(f"{path}: solved_now must be true or false, got {value.dtype} {value.shape}")
        state["solved_now"] = bool(value)
    if "accuracy" in arrays:
        accuracy = _number(path, arrays, "accuracy")
        if accuracy > 1:
            raise SessionError(f"{path}: accuracy must be between 0 and 1, got {accuracy}")
        state["accuracy"] = accuracy
    if "rollback.flat" in arrays:
        flat = arrays["rollback.flat"]
        _check_float_array(path, "rollback.flat", flat)
        if flat.shape != params.flat.shape:
            raise SessionError(f"{path}: rollback.flat has shape {flat.shape}, expected {params.flat.shape}")
        samples = _integer(path, arrays, "rollback.samples_seen", minimum=0)
        if samples > samples_seen:
            raise SessionError(f"{path}: rollback.samples_seen {samples} is after samples_seen {samples_seen}")
        rng_json = _text(path, arrays, "rollback.rng_state")
        interval = _interval(path, "rollback.interval", _required(path, arrays, "rollback.interval"))
        optimizer = {key.removeprefix("rollback.optimizer."): np.array(arrays[key]) for key in arrays
                     if key.startswith("rollback.optimizer.")}
        if set(optimizer) != set(optimizer_state):
            raise SessionError(f"{path}: rollback.optimizer has {sorted(optimizer)}, the optimizer has "
                               f"{sorted(optimizer_state)}")
        for name, value in optimizer.items():
            _check_float_array(path, f"rollback.optimizer.{name}", value, allow_counter=True)
            if value.shape != np.shape(optimizer_state[name]):
                raise SessionError(f"{path}: rollback.optimizer.{name} has shape {value.shape}")
        state["rollback"] = (samples, flat, rng_json, interval, optimizer)
    return state


def _interval(path: Path, key: str, value: np.ndarray) -> np.ndarray:
    if value.dtype.kind != "f" or value.ndim != 2 or value.shape[1] != 2 or not np.all(np.isfinite(value)):
        raise SessionError(f"{path}: {key} must be finite numbers of shape (k, 2), got {value.dtype} {value.shape}")
    if len(value) > CHECK_EVERY + MAX_BATCH:
        raise SessionError(f"{path}: {key} has {len(value)} rows, more than a check interval holds")
    return value.astype(np.float64)


def _read_arrays(path: Path) -> dict[str, np.ndarray]:
    """Every array in the .npz at path, read without pickle and with each header checked before it is read."""
    if not path.exists():
        raise SessionError(f"{path}: no such file")
    if path.is_dir():
        raise SessionError(f"{path} is a folder, not a saved model or session file")
    if not path.is_file():
        raise SessionError(f"{path} is not a regular file")
    try:
        is_zip = zipfile.is_zipfile(path)
    except OSError as error:
        raise SessionError(f"cannot read {path}: {error.strerror or error}") from None
    if not is_zip:
        raise SessionError(f"{path} is not a saved model or session: an .npz (zip) file was expected; "
                           "the file is damaged, truncated or of another kind")
    try:
        # Our own handle: np.load leaks the file it opened when the zip directory turns out to be damaged.
        with open(path, "rb") as handle, np.load(handle, allow_pickle=False) as npz:
            if not isinstance(npz, np.lib.npyio.NpzFile):
                raise SessionError(f"{path} is not an .npz archive")
            for info in npz.zip.infolist():
                _check_member(path, npz.zip, info)
            return {key: npz[key] for key in npz.files}
    except SessionError:
        raise
    except Exception as error:  # a damaged archive fails in many ways inside zipfile, zlib and numpy
        raise SessionError(f"{path} is damaged and cannot be read ({type(error).__name__}: {error})") from None


def _check_member(path: Path, archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> None:
    """Refuse object arrays (pickles) and headers that claim more data than the member holds, before reading."""
    key = info.filename.removesuffix(".npy")
    with archive.open(info) as member:
        version = np.lib.format.read_magic(member)
        if version == (1, 0):
            shape, _, dtype = np.lib.format.read_array_header_1_0(member, max_header_size=_MAX_HEADER)
        elif version == (2, 0):
            shape, _, dtype = np.lib.format.read_array_header_2_0(member, max_header_size=_MAX_HEADER)
        else:
            raise SessionError(f"{path}: {key} uses .npy format version {version}, which is not supported")
    if dtype.hasobject:
        raise SessionError(f"{path}: {key} holds pickled Python objects, which are never loaded (they can run code)")
    if math.prod(shape) * dtype.itemsize > info.file_size:
        raise SessionError(f"{path} is damaged: {key} claims shape {shape} but holds only {info.file_size} bytes")


def _config(path: Path, arrays: Mapping[str, np.ndarray]) -> TrainConfig:
    text = _text(path, arrays, "config")
    try:
        return TrainConfig.from_json(text)
    except (ConfigError, TypeError, ValueError) as error:
        raise SessionError(f"{path}: bad config: {error}") from None


def _model_module(path: Path, arrays: Mapping[str, np.ndarray], config: TrainConfig | None) -> ModuleType:
    """The model kind: the file's `model` key, else its config's, else whichever kind's state_dict keys it has."""
    if "model" in arrays:
        name = _text(path, arrays, "model")
    elif config is not None:
        name = config.model
    else:  # a bare state_dict, e.g. exported from PyTorch
        kinds = [kind for kind, module in models.MODELS.items() if set(module.STATE_DICT_KEYS) <= set(arrays)]
        name = kinds[0] if kinds else "lstm"
    if config is not None and name != config.model:
        raise SessionError(f"{path}: the file says model {name!r} but its config says {config.model!r}")
    try:
        return models.get(name)
    except ValueError as error:
        raise SessionError(f"{path}: {error}") from None


def _params(path: Path, arrays: Mapping[str, np.ndarray], module: ModuleType) -> object:
    keys = module.STATE_DICT_KEYS
    missing = [key for key in keys if key not in arrays]
    if missing:
        raise SessionError(f"{path} is not a saved model: missing weights {', '.join(missing)}")
    for key in keys:
        _check_float_array(path, key, arrays[key])
    try:
        return module.Params.from_state_dict({key: arrays[key] for key in keys})
    except (ValueError, TypeError) as error:
        raise SessionError(f"{path}: {error}") from None


def _check_params_match(path: Path, params: object, config: TrainConfig) -> None:
    if params.hidden_size != config.hidden_size:
        raise SessionError(f"{path}: the weights have {params.hidden_size} hidden units but the config says "
                           f"{config.hidden_size}")
    if (params.input_size, params.output_size) != (2, 1):
        raise SessionError(f"{path}: the weights take {params.input_size} inputs and give {params.output_size} "
                           "outputs; binary addition needs 2 and 1")
    if params.dtype != np.dtype(config.dtype):
        raise SessionError(f"{path}: the weights are {params.dtype} but the config says {config.dtype}")


def _training_scalars(path: Path, arrays: Mapping[str, np.ndarray]) -> tuple[int, float, float, tuple | None]:
    samples_seen = _integer(path, arrays, "samples_seen", minimum=0)
    seconds = _number(path, arrays, "training_seconds")
    rate = _number(path, arrays, "samples_per_second") if "samples_per_second" in arrays else 0.0
    solved = _json(path, arrays, "solved_at")
    if solved is not None:
        ok = (isinstance(solved, list) and len(solved) == 2 and isinstance(solved[0], int)
              and isinstance(solved[1], (int, float)) and 0 <= solved[0] <= samples_seen and math.isfinite(solved[1]))
        if not ok:
            raise SessionError(f"{path}: solved_at must be null or [samples, seconds], got {solved!r}")
        solved = (int(solved[0]), float(solved[1]))
    return samples_seen, seconds, rate, solved


def _history(path: Path, arrays: Mapping[str, np.ndarray]) -> tuple[np.ndarray, int, np.ndarray, list]:
    rows = _required(path, arrays, "history.rows")
    pending = arrays.get("history.pending", np.empty((0, PENDING_COLUMNS)))
    for key, array, width in (("history.rows", rows, len(HISTORY_COLUMNS)), ("history.pending", pending,
                                                                              PENDING_COLUMNS)):
        if array.dtype.kind != "f" or array.ndim != 2 or array.shape[1] != width:
            raise SessionError(f"{path}: {key} must be a float array of shape (N, {width}), got "
                               f"{array.dtype} {array.shape}")
    capacity = History().capacity
    if len(rows) > capacity:
        raise SessionError(f"{path}: history.rows has {len(rows)} points, more than the {capacity} kept")
    stride = _integer(path, arrays, "history.stride", minimum=1)
    if len(pending) >= stride:
        raise SessionError(f"{path}: history.pending has {len(pending)} chunks, stride is only {stride}")
    events = _json(path, arrays, "history.events")
    ok = isinstance(events, list) and all(
        isinstance(e, list) and len(e) == 2 and isinstance(e[0], int) and isinstance(e[1], str) for e in events)
    if not ok:
        raise SessionError(f"{path}: history.events must be a list of [samples, text] pairs")
    return rows.astype(np.float64), stride, pending.astype(np.float64), [(s, text) for s, text in events]


def _set_rng_state(path: Path, rng: np.random.Generator, state: object) -> None:
    expected = type(rng.bit_generator).__name__
    if not isinstance(state, dict) or state.get("bit_generator") != expected:
        raise SessionError(f"{path}: rng_state is not the state of a {expected} generator")
    try:
        rng.bit_generator.state = state
    except (KeyError, ValueError, TypeError, OverflowError) as error:
        raise SessionError(f"{path}: rng_state is invalid ({error})") from None


# ---- small readers: each raises SessionError naming the key ------------------------------------------------------
def _required(path: Path, arrays: Mapping[str, np.ndarray], key: str) -> np.ndarray:
    if key not in arrays:
        raise SessionError(f"{path} is incomplete: it has no {key}")
    return arrays[key]


def _text(path: Path, arrays: Mapping[str, np.ndarray], key: str) -> str:
    value = _required(path, arrays, key)
    if value.shape != () or value.dtype.kind != "U":
        raise SessionError(f"{path}: {key} must be a text value, got {value.dtype} {value.shape}")
    return str(value[()])


def _json(path: Path, arrays: Mapping[str, np.ndarray], key: str) -> object:
    try:
        return json.loads(_text(path, arrays, key))
    except json.JSONDecodeError as error:
        raise SessionError(f"{path}: {key} is not valid JSON ({error})") from None


def _integer(path: Path, arrays: Mapping[str, np.ndarray], key: str, minimum: int) -> int:
    value = _required(path, arrays, key)
    if value.shape != () or value.dtype.kind not in "iu" or value < minimum:
        raise SessionError(f"{path}: {key} must be a whole number of at least {minimum}, got {value!r}")
    return int(value)


def _number(path: Path, arrays: Mapping[str, np.ndarray], key: str) -> float:
    value = _required(path, arrays, key)
    if value.shape != () or value.dtype.kind != "f" or not np.isfinite(value) or value < 0:
        raise SessionError(f"{path}: {key} must be a finite number of at least 0, got {value!r}")
    return float(value)


def _check_float_array(path: Path, key: str, value: np.ndarray, allow_counter: bool = False) -> None:
    if allow_counter and value.shape == () and value.dtype.kind in "iu":
        if value < 0:
            raise SessionError(f"{path}: {key} must not be negative, got {value!r}")
        return  # a step counter
    if value.dtype.kind != "f":
        raise SessionError(f"{path}: {key} must hold floating-point numbers, not {value.dtype}")
    if not np.all(np.isfinite(value)):
        raise SessionError(f"{path}: {key} contains NaN or infinite values")
