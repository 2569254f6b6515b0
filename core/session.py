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
    timeline.points (N, 2)   the weights kept at earlier checks (core.timeline), when the trainer keeps them: each
    timeline.flat, .stride   point's samples and hidden size, all their weights in order, the checks per point
    loss                     the loss that trained the weights: "bce-sum" (BCE summed over bits, mean over the
                             batch); files from before it was recorded were trained with "bce-mean" (the mean over
                             bits), and keep saying so after they are continued

Writes go through core.safe_save (regular files only, symlinks written through, temp file and rename, one save of
a file at a time); loads go through core.validate (only known members read, every size bounded before anything is
decompressed, allow_pickle=False), and every value is range-checked before anything is built, so a bad file raises
SessionError (one line naming the file and what is wrong) and never leaves a half-loaded trainer.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable, Mapping
from types import ModuleType

import numpy as np

from core import limits, lstm, models, safe_save, timeline, validate
from core.limits import MAX_EVENTS, MAX_HELDOUT, MAX_SAMPLES, shown, shown_path
from core.safe_save import SessionError
from core.trainer import (
    HISTORY_COLUMNS,
    MAX_HIDDEN,
    ConfigError,
    RollbackPoint,
    TrainConfig,
    Trainer,
    with_model_options,
)
from core.validate import float_array, integer, json_value, number, required

FORMAT_VERSION = 1
SESSION_FORMAT = "lstm-explorer session"
MODEL_FORMAT = "lstm-explorer model"
PENDING_COLUMNS = len(HISTORY_COLUMNS) + 1  # a chunk not yet merged into history: its four metrics and its weight
MAX_NOTE_CHARS = 200  # an event's text, the loss note

# For tests only (tests/test_session.py): called with "written" once the temp file is complete and synced but not yet
# renamed over the destination, and with "renamed" just after the rename, so a test can kill the process at exactly
# those points. Always None in the app.
write_stage_hook: Callable[[str], None] | None = None

__all__ = ["SessionError", "check_writable", "load_model", "load_session", "save_model", "save_session"]


# ---- saving ------------------------------------------------------------------------------------------------------
def save_session(path: str | os.PathLike, trainer: Trainer) -> None:
    """Write everything needed to continue trainer's run bit-identically. Atomic; raises SessionError."""
    if not 0 <= trainer.samples_seen <= MAX_SAMPLES:
        raise SessionError(f"cannot save {shown_path(path)}: {trainer.samples_seen} samples seen is more than the "
                           f"{MAX_SAMPLES:,} a file records exactly")
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
    kept = timeline.of(trainer)
    if kept is not None:
        arrays.update(kept.to_arrays())
    _write_atomic(path, arrays)


def save_model(path: str | os.PathLike, params: object, config: TrainConfig | None = None) -> None:
    """Write weights (and the config they were trained with, if given) only. Atomic; raises SessionError."""
    try:
        module = models.of(params)
    except TypeError as error:
        raise SessionError(f"cannot save {shown_path(path)}: {error}") from None
    arrays: dict[str, np.ndarray] = dict(params.state_dict())
    arrays.update(_header(MODEL_FORMAT, _model_name(module), config))
    _write_atomic(path, arrays)


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


def check_writable(path: str | os.PathLike, config: TrainConfig | None = None) -> None:
    """Raise SessionError now if saving to path cannot work, so a long run is not wasted on a bad --save: the path
    must be a regular file (or a symlink to one) or a new name in a writable folder, and with a config the disk
    must have room for a session of that size. Removes what a killed save of that file left behind."""
    safe_save.check_writable(path, session_bytes(config) if config is not None else 0)


def session_bytes(config: TrainConfig) -> int:
    """About how large a session file of this config is: the weights, the rollback copy, the optimizer state and
    its copy, the history and text."""
    weights = limits.parameter_count(config.hidden_size) * np.dtype(config.dtype).itemsize
    return weights * (2 + 2 * limits.STATE_BYTES.get(config.optimizer, 2)) + 2**20


def _write_atomic(path: str | os.PathLike, arrays: Mapping[str, np.ndarray]) -> None:
    """Write arrays as an .npz at path so that path holds either the old file or the complete new one."""
    needed = sum(array.nbytes + 256 for array in arrays.values()) + 1024
    # To an open file, not a name: np.savez would append ".npz" to a name that lacks it.
    safe_save.write_file(path, lambda handle: np.savez(handle, **arrays), needed, stage_hook=write_stage_hook)


# ---- loading -----------------------------------------------------------------------------------------------------
def load_model(path: str | os.PathLike) -> tuple[object, TrainConfig | None]:
    """(params, config or None) from a model or session file, or from any .npz holding the state_dict keys."""
    where, arrays = _read(path)
    config = _config(where, arrays) if "config" in arrays else None
    module = _model_module(where, arrays, config)
    params = _params(where, arrays, module)
    _check_params_match(where, params, config)
    if config is not None:  # the loss (and the RNN's units and biases) the weights were trained with
        with_model_options(params, config)
    return params, config


def load_session(path: str | os.PathLike) -> Trainer:
    """A new Trainer that continues exactly where the saved one stopped. Raises SessionError on any problem."""
    where, arrays = _read(path)
    kind = validate.text(where, arrays, "format") if "format" in arrays else SESSION_FORMAT
    if kind == MODEL_FORMAT or "config" not in arrays or "rng_state" not in arrays:
        raise SessionError(f"{where} holds weights only, not a training session (no config or training state): "
                           "it can be evaluated but not continued")
    config = _config(where, arrays)
    if config.heldout_size > MAX_HELDOUT:
        raise SessionError(f"{where}: config heldout_size {config.heldout_size} is more than the {MAX_HELDOUT:,} "
                           "held-out pairs a session may check")
    module = _model_module(where, arrays, config)
    params = _params(where, arrays, module)
    _check_params_match(where, params, config)
    scalars = _training_scalars(where, arrays)
    rows, stride, pending, events = _history(where, arrays)
    optimizer_state = _optimizer_state(where, arrays, "optimizer.", params)
    rng_state = json_value(where, arrays, "rng_state")
    state = _run_state(where, arrays, params, optimizer_state, scalars[0])
    kept = _timeline(where, arrays, module, params, scalars[0])

    # Everything was checked above; the new trainer is built only now and nobody else holds it until it is returned.
    try:
        trainer = Trainer(config)
    except (ConfigError, limits.LimitError) as error:  # e.g. more memory than this machine has
        raise SessionError(f"{where}: {error}") from None
    trainer.params = with_model_options(params, config)
    try:
        trainer.optimizer.load_state({name: np.asarray(value) for name, value in optimizer_state.items()})
    except (KeyError, ValueError, TypeError) as error:
        raise SessionError(f"{where}: optimizer state does not fit optimizer {config.optimizer!r} "
                           f"({shown(str(error), 80)})") from None
    if set(trainer.optimizer.state()) != set(optimizer_state):
        raise SessionError(f"{where}: optimizer state {sorted(optimizer_state)} does not fit optimizer "
                           f"{config.optimizer!r}")
    for name, value in trainer.optimizer.state().items():  # same dtype as the weights, as a running optimizer has
        if value.ndim and value.dtype != params.dtype:
            raise SessionError(f"{where}: optimizer.{name} is {value.dtype}, the weights are {params.dtype}")
    _set_rng_state(where, trainer.rng, rng_state)
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
        trainer.rollback_point = RollbackPoint(samples, flat.astype(params.dtype), optimizer, rng_json, interval)
    if kept is not None:
        kept.attach(trainer)
    return trainer


def _read(path: str | os.PathLike) -> tuple[str, dict[str, np.ndarray]]:
    """The file's name as messages show it, and its known arrays, the format and its version checked."""
    arrays = validate.read_arrays(path)
    where = shown_path(path)
    if "format" in arrays:
        kind = validate.text(where, arrays, "format")
        if kind not in (SESSION_FORMAT, MODEL_FORMAT):
            raise SessionError(f"{where} is not a saved model or session: its format is {shown(kind)}")
    if "format_version" in arrays:
        version = integer(where, arrays, "format_version", minimum=1, maximum=2**31)
        if version > FORMAT_VERSION:
            raise SessionError(f"{where} was written by a newer version of lstm-explorer (format version {version}); "
                               f"this one reads version {FORMAT_VERSION}")
    return where, arrays


def _optimizer_state(where: str, arrays: Mapping[str, np.ndarray], prefix: str, params: object) -> dict:
    """The optimizer's state arrays under prefix, each checked: finite, the size of the weights, Adam's second
    moment never negative, step counters whole numbers."""
    state = {}
    for name in validate.STATE_NAMES:
        key = prefix + name
        if key not in arrays:
            continue
        value = arrays[key]
        if name == "steps":
            validate.counter(where, key, value)
        else:
            float_array(where, key, value, minimum=0.0 if name == "second" else -math.inf)
            if value.shape != params.flat.shape:
                raise SessionError(f"{where}: {key} has shape {value.shape}, expected {params.flat.shape}")
        state[name] = np.array(value)
    return state


def _run_state(where: str, arrays: Mapping[str, np.ndarray], params: object, optimizer_state: Mapping,
               samples_seen: int) -> dict:
    """The deterministic-run fields (see the module docstring), checked; defaults for files that predate them."""
    state: dict = {"loss": "bce-sum", "interval": np.empty((0, 2)), "solved_now": False, "accuracy": None,
                   "rollback": None}
    if "loss" in arrays:
        note = validate.text(where, arrays, "loss")
        if not note or len(note) > MAX_NOTE_CHARS or not note.isprintable():
            raise SessionError(f"{where}: loss must name the loss that trained the weights (such as bce-sum) in at "
                               f"most {MAX_NOTE_CHARS} characters, got {shown(note)}")
        state["loss"] = note
    else:
        state["loss"] = f"bce-mean until sample {samples_seen}, then bce-sum"
    if "interval" in arrays:
        state["interval"] = _interval(where, "interval", arrays["interval"])
    if "solved_now" in arrays:
        value = arrays["solved_now"]
        if value.shape != () or value.dtype.kind != "b":
            raise SessionError(f"{where}: solved_now must be true or false, got {value.dtype} {value.shape}")
        state["solved_now"] = bool(value)
    if "accuracy" in arrays:
        state["accuracy"] = number(where, arrays, "accuracy", 0.0, 1.0)
    if "rollback.flat" in arrays:
        flat = arrays["rollback.flat"]
        float_array(where, "rollback.flat", flat)
        if flat.shape != params.flat.shape:
            raise SessionError(f"{where}: rollback.flat has shape {flat.shape}, expected {params.flat.shape}")
        samples = integer(where, arrays, "rollback.samples_seen")
        if samples > samples_seen:
            raise SessionError(f"{where}: rollback.samples_seen {samples} is after samples_seen {samples_seen}")
        rng_json = validate.text(where, arrays, "rollback.rng_state")
        _set_rng_state(where, np.random.default_rng(), json_value(where, arrays, "rollback.rng_state"),
                       "rollback.rng_state")
        interval = _interval(where, "rollback.interval", required(where, arrays, "rollback.interval"))
        optimizer = _optimizer_state(where, arrays, "rollback.optimizer.", params)
        if set(optimizer) != set(optimizer_state):
            raise SessionError(f"{where}: rollback.optimizer has {sorted(optimizer)}, the optimizer has "
                               f"{sorted(optimizer_state)}")
        state["rollback"] = (samples, flat, rng_json, interval, optimizer)
    return state


def _timeline(where: str, arrays: Mapping[str, np.ndarray], module: ModuleType, params: object,
              samples_seen: int) -> timeline.Timeline | None:
    """The weights kept at earlier checks, checked: points (N, 2) of whole numbers, samples increasing up to
    samples_seen, hidden sizes the model allows; flat finite numbers of the weights' precision, exactly the points'
    weights; a stride that is a power of two. None for a file without them."""
    keys = ("timeline.points", "timeline.flat", "timeline.stride")
    present = [key in arrays for key in keys]
    if not any(present):
        return None
    if not all(present):
        raise SessionError(f"{where}: a timeline needs {', '.join(keys)}; some are missing")
    points, flat = arrays["timeline.points"], arrays["timeline.flat"]
    if points.dtype.kind not in "iu" or points.ndim != 2 or points.shape[1] != 2:
        raise SessionError(f"{where}: timeline.points must be whole numbers of shape (N, 2), got {points.dtype} "
                           f"{points.shape}")
    samples, sizes = points[:, 0].astype(np.int64), points[:, 1].astype(np.int64)
    if len(points) and (samples.min() < 0 or samples.max() > samples_seen or np.any(np.diff(samples) <= 0)):
        raise SessionError(f"{where}: timeline.points' samples must increase, from 0 to samples_seen {samples_seen}")
    if len(points) and (sizes.min() < 1 or sizes.max() > MAX_HIDDEN):
        raise SessionError(f"{where}: timeline.points' hidden sizes must be from 1 to {MAX_HIDDEN}")
    if flat.ndim != 1 or flat.dtype != params.dtype:
        raise SessionError(f"{where}: timeline.flat must be a row of {params.dtype} numbers (the weights' "
                           f"precision), got {flat.dtype} {flat.shape}")
    float_array(where, "timeline.flat", flat)
    inputs, outputs = params.input_size, params.output_size
    rows = 4 if module is lstm else 1  # an LSTM unit has four gates' rows, an RNN unit one
    count = {int(h): rows * int(h) * (inputs + int(h) + 1) + outputs * (int(h) + 1) for h in np.unique(sizes)}
    needed = sum(count[int(h)] for h in sizes)
    if flat.size != needed:
        raise SessionError(f"{where}: timeline.flat holds {flat.size:,} numbers, its points need {needed:,}")
    stride = integer(where, arrays, "timeline.stride", minimum=1)
    if stride & (stride - 1):
        raise SessionError(f"{where}: timeline.stride must be a power of two, got {stride}")
    return timeline.Timeline.from_arrays(points, flat, stride, count)


def _interval(where: str, key: str, value: np.ndarray) -> np.ndarray:
    """(k, 2): each sample's loss (finite, at least 0) and mean bit error (0 to 1) since the last check."""
    if value.dtype.kind != "f" or value.ndim != 2 or value.shape[1] != 2:
        raise SessionError(f"{where}: {key} must be numbers of shape (k, 2), got {value.dtype} {value.shape}")
    _check_columns(where, key, value, {0: (0.0, math.inf), 1: (0.0, 1.0)})
    return value.astype(np.float64)


def _check_columns(where: str, key: str, table: np.ndarray, ranges: Mapping[int, tuple[float, float]]) -> None:
    """Every value finite, and column c within ranges[c]."""
    if not np.all(np.isfinite(table)):
        raise SessionError(f"{where}: {key} contains NaN or infinite values")
    for column, (low, high) in ranges.items():
        values = table[:, column]
        if values.size and (values.min() < low or values.max() > high):
            bad = values[(values < low) | (values > high)][0]
            upper = "" if high == math.inf else f" to {high:g}"
            raise SessionError(f"{where}: {key} column {column} must be from {low:g}{upper}, got {bad:g}")


def _config(where: str, arrays: Mapping[str, np.ndarray]) -> TrainConfig:
    text = validate.text(where, arrays, "config")
    try:
        return TrainConfig.from_json(text)
    except RecursionError:
        raise SessionError(f"{where}: bad config: JSON nested too deeply") from None
    except (ConfigError, TypeError, ValueError, OverflowError) as error:
        raise SessionError(f"{where}: bad config: {shown(str(error), 120)}") from None


def _model_module(where: str, arrays: Mapping[str, np.ndarray], config: TrainConfig | None) -> ModuleType:
    """The model kind: the file's `model` key, else its config's, else whichever kind's state_dict keys it has."""
    if "model" in arrays:
        name = validate.text(where, arrays, "model")
    elif config is not None:
        name = config.model
    else:  # a bare state_dict, e.g. exported from PyTorch
        kinds = [kind for kind, module in models.MODELS.items() if set(module.STATE_DICT_KEYS) <= set(arrays)]
        name = kinds[0] if kinds else "lstm"
    if config is not None and name != config.model:
        raise SessionError(f"{where}: the file says model {shown(name)} but its config says {config.model!r}")
    if name not in models.MODELS:
        raise SessionError(f"{where}: unknown model {shown(name)}: choose one of {', '.join(models.MODELS)}")
    return models.get(name)


def _params(where: str, arrays: Mapping[str, np.ndarray], module: ModuleType) -> object:
    keys = module.STATE_DICT_KEYS
    missing = [key for key in keys if key not in arrays]
    if missing:
        raise SessionError(f"{where} is not a saved model: missing weights {', '.join(missing)}")
    for key in keys:
        float_array(where, key, arrays[key])
    try:
        return module.Params.from_state_dict({key: arrays[key] for key in keys})
    except (ValueError, TypeError) as error:
        raise SessionError(f"{where}: {shown(str(error), 120)}") from None


def _check_params_match(where: str, params: object, config: TrainConfig | None) -> None:
    """Binary addition needs 2 inputs and 1 output, whatever the file says; with a config, the weights must be the
    size and precision it names."""
    if (params.input_size, params.output_size) != (2, 1):
        raise SessionError(f"{where}: the weights take {params.input_size} inputs and give {params.output_size} "
                           "outputs; binary addition needs 2 and 1")
    if config is None:
        return
    if params.hidden_size != config.hidden_size:
        raise SessionError(f"{where}: the weights have {params.hidden_size} hidden units but the config says "
                           f"{config.hidden_size}")
    if params.dtype != np.dtype(config.dtype):
        raise SessionError(f"{where}: the weights are {params.dtype} but the config says {config.dtype}")


def _training_scalars(where: str, arrays: Mapping[str, np.ndarray]) -> tuple[int, float, float, tuple | None]:
    samples_seen = integer(where, arrays, "samples_seen")
    seconds = number(where, arrays, "training_seconds")
    rate = number(where, arrays, "samples_per_second") if "samples_per_second" in arrays else 0.0
    solved = json_value(where, arrays, "solved_at")
    if solved is not None:
        ok = (isinstance(solved, list) and len(solved) == 2 and type(solved[0]) is int
              and type(solved[1]) in (int, float) and 0 <= solved[0] <= samples_seen
              and math.isfinite(solved[1]) and solved[1] >= 0)
        if not ok:
            raise SessionError(f"{where}: solved_at must be null or [samples, seconds] with samples at most "
                               f"samples_seen, got {shown(solved)}")
        solved = (int(solved[0]), float(solved[1]))
    return samples_seen, seconds, rate, solved


def _history(where: str, arrays: Mapping[str, np.ndarray]) -> tuple[np.ndarray, int, np.ndarray, list]:
    rows = required(where, arrays, "history.rows")
    pending = arrays.get("history.pending", np.empty((0, PENDING_COLUMNS)))
    for key, array, width in (("history.rows", rows, len(HISTORY_COLUMNS)), ("history.pending", pending,
                                                                              PENDING_COLUMNS)):
        if array.dtype.kind != "f" or array.ndim != 2 or array.shape[1] != width:
            raise SessionError(f"{where}: {key} must be a float array of shape (N, {width}), got "
                               f"{array.dtype} {array.shape}")
    # samples, loss, bit error, accuracy (and the weight of a pending chunk: samples in it)
    ranges = {0: (0.0, float(MAX_SAMPLES)), 1: (0.0, math.inf), 2: (0.0, 1.0), 3: (0.0, 1.0)}
    _check_columns(where, "history.rows", rows, ranges)
    _check_columns(where, "history.pending", pending, {**ranges, 4: (1.0, float(MAX_SAMPLES))})
    stride = integer(where, arrays, "history.stride", minimum=1)
    if stride & (stride - 1):
        raise SessionError(f"{where}: history.stride must be a power of two, got {stride}")
    if len(pending) >= stride:
        raise SessionError(f"{where}: history.pending has {len(pending)} chunks, stride is only {stride}")
    events = json_value(where, arrays, "history.events")
    ok = isinstance(events, list) and len(events) <= MAX_EVENTS and all(
        isinstance(e, list) and len(e) == 2 and type(e[0]) is int and 0 <= e[0] <= MAX_SAMPLES
        and isinstance(e[1], str) and len(e[1]) <= MAX_NOTE_CHARS for e in events)
    if not ok:
        raise SessionError(f"{where}: history.events must be a list of at most {MAX_EVENTS} [samples, text] pairs, "
                           f"samples from 0 to {MAX_SAMPLES:,} and text of at most {MAX_NOTE_CHARS} characters")
    return rows.astype(np.float64), stride, pending.astype(np.float64), [(s, text) for s, text in events]


def _set_rng_state(where: str, rng: np.random.Generator, state: object, key: str = "rng_state") -> None:
    expected = type(rng.bit_generator).__name__
    if not isinstance(state, dict) or state.get("bit_generator") != expected:
        raise SessionError(f"{where}: {key} is not the state of a {expected} generator")
    try:
        rng.bit_generator.state = state
    except (KeyError, ValueError, TypeError, OverflowError) as error:
        raise SessionError(f"{where}: {key} is invalid ({shown(str(error), 80)})") from None
