"""Trainer: owns config, params, optimizer, random generator and a bounded history; trains in chunks.

Learning rate, optimizer, batch size and clipping change between chunks without a reset; the hidden size
changes by resizing the weights (learned units stay). An update whose loss or gradients are not finite is
rejected before it touches the weights; the run returns to its last check and reports the divergence.
Whatever the chunks, the same settings give the same weights, history and solved-at (see Trainer).
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from core import engine as engine_module
from core import limits, lstm_fast, models, probe_carry, task
from core.lstm import LOSSES, Params
from core.optim import OPTIMIZERS, Optimizer, make_optimizer

MAX_HIDDEN = 4096
MAX_BATCH = 65536
EXPLODING_LOSS = 20.0  # BCE per bit above this (chance is 0.69) counts as diverged: weights have blown up
LOSS = "bce-sum"  # binary cross-entropy summed over the bits, averaged over the batch (see core.lstm)
CHECK_EVERY = 100  # samples between checks (history point, held-out accuracy, solved?, rollback point)
INITS = ("seed", "pytorch", "uniform")  # every model kind accepts these
ACTIVATIONS = ("tanh", "sigmoid")  # the plain RNN's hidden units (core.rnn); the LSTM's gates are fixed
SOLVED_CHECK_BLOCK = 1024  # pairs per block of the solved check (it stops at the first block with a wrong sum)
FULL_CHECK_EVERY = 1000  # once solved, every pair is checked at multiples of this; between them, WATCHED pairs
WATCHED_LONG_CARRIES = 1024  # pairs with the longest carry chains watched between full checks (with the held-out)
SUSPECTS = 1024  # pairs found wrong at earlier checks, tried first
SOLVED_PROBE_PAIRS = 1024  # random pairs for the linear carry probe reported with the first "solved" event
NEW_UNIT_SCALE = 0.01  # new units from resize_hidden start with weights of this standard deviation


class ConfigError(ValueError):
    """A hyperparameter outside what the trainer accepts; the message says which and why."""


@dataclass
class TrainConfig:
    """Hyperparameters. Defaults are the original notebook's: online SGD, 16 units, lr 0.1, seed 0, 8 bits."""

    hidden_size: int = 16  # LSTM units; live (resizes, keeping learned units)
    learning_rate: float = 0.1  # live
    optimizer: str = "sgd"  # sgd | momentum | adam; live
    momentum: float = 0.9  # for optimizer "momentum"; live
    batch_size: int = 1  # 1 = online learning as in the notebook; live
    clip_norm: float = 0.0  # clip gradients to this global L2 norm, 0 = off; live
    init: str = "seed"  # seed: standard normal (notebook) | pytorch: U(+-1/sqrt(H)) | uniform: U(-1, 1); needs reset
    forget_bias: float = 0.0  # added to the forget gate's bias at init; needs reset
    seed: int = 0  # seeds the weights and the training samples; needs reset
    n_bits: int = 8  # sequence length; operands are below 2**(n_bits-1); needs reset
    dtype: str = "float64"  # float64 | float32; needs reset
    heldout_size: int = 1024  # fixed held-out pairs for the live accuracy; needs reset
    model: str = "lstm"  # a name in core.models.MODELS; needs reset
    loss: str = "bce"  # bce: cross-entropy | squared: (p - y)^2 / 2, the notebook's and tutorial's; needs reset
    activation: str = "tanh"  # the plain RNN's hidden units: tanh | sigmoid (the tutorial's); needs reset
    bias: bool = True  # the plain RNN's biases: False = none (the tutorial's); needs reset

    LIVE = ("hidden_size", "learning_rate", "optimizer", "momentum", "batch_size", "clip_norm")

    def validate(self) -> TrainConfig:
        """Return self, or raise ConfigError naming the first bad value."""
        def whole(name: str, low: int, high: int) -> None:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not low <= value <= high:
                label = name.replace("_", " ")
                raise ConfigError(f"{label} must be a whole number from {low} to {high}, got {value!r}")

        def positive(name: str, allow_zero: bool = False) -> None:
            value = getattr(self, name)
            ok = isinstance(value, (int, float, np.floating)) and not isinstance(value, bool) and np.isfinite(value)
            if not ok or value < 0 or (value == 0 and not allow_zero):
                bound = "zero or more" if allow_zero else "greater than zero"
                raise ConfigError(f"{name.replace('_', ' ')} must be a finite number {bound}, got {value!r}")

        whole("hidden_size", 1, MAX_HIDDEN)
        positive("learning_rate")
        if self.learning_rate > 1e4:
            raise ConfigError(f"learning rate must be at most 10000, got {self.learning_rate}")
        if self.optimizer not in OPTIMIZERS:
            raise ConfigError(f"optimizer must be one of {', '.join(OPTIMIZERS)}, got {self.optimizer!r}")
        positive("momentum", allow_zero=True)
        if self.momentum >= 1:
            raise ConfigError(f"momentum must be below 1, got {self.momentum}")
        whole("batch_size", 1, MAX_BATCH)
        positive("clip_norm", allow_zero=True)
        if self.init not in INITS:
            raise ConfigError(f"init must be one of {', '.join(INITS)}, got {self.init!r}")
        if not isinstance(self.forget_bias, (int, float)) or not np.isfinite(self.forget_bias):
            raise ConfigError(f"forget bias must be a finite number, got {self.forget_bias!r}")
        whole("seed", 0, 2**32 - 1)
        whole("n_bits", task.MIN_BITS, task.MAX_BITS)
        if self.dtype not in ("float64", "float32"):
            raise ConfigError(f"dtype must be float64 or float32, got {self.dtype!r}")
        whole("heldout_size", 1, MAX_BATCH)
        if self.model not in models.MODELS:
            raise ConfigError(f"model must be one of {', '.join(models.MODELS)}, got {self.model!r}")
        if self.loss not in LOSSES:
            raise ConfigError(f"loss must be one of {', '.join(LOSSES)}, got {self.loss!r}")
        if self.activation not in ACTIVATIONS:
            raise ConfigError(f"activation must be one of {', '.join(ACTIVATIONS)}, got {self.activation!r}")
        if not isinstance(self.bias, (bool, np.bool_)):
            raise ConfigError(f"bias must be true or false, got {self.bias!r}")
        if self.model != "rnn" and (self.activation != "tanh" or not self.bias):
            raise ConfigError("activation and bias are settings of the plain RNN (model rnn); the LSTM's gates "
                              "and biases are fixed")
        return self

    def model_options(self) -> dict[str, object]:
        """The keyword arguments of the model's init_params that come from these settings beside init."""
        if self.model == "rnn":
            return {"loss": self.loss, "activation": self.activation, "use_bias": bool(self.bias)}
        return {"loss": self.loss}

    def replace(self, **changes: object) -> TrainConfig:
        unknown = set(changes) - {f.name for f in dataclasses.fields(self)}
        if unknown:
            raise ConfigError(f"unknown setting(s): {', '.join(sorted(unknown))}")
        return dataclasses.replace(self, **changes).validate()

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> TrainConfig:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as error:
            raise ConfigError(f"config is not valid JSON: {error}") from None
        if not isinstance(data, dict):
            raise ConfigError("config must be a JSON object")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ConfigError(f"config has unknown setting(s): {', '.join(sorted(unknown))}")
        return cls(**data).validate()

    def describe(self) -> str:
        """Short label for legends: the settings a user compares runs by."""
        clip = f", clip {self.clip_norm:g}" if self.clip_norm else ""
        batch = f", batch {self.batch_size}" if self.batch_size != 1 else ""
        model = f"{self.model.upper()} " if self.model != "lstm" else ""
        kinds = [self.activation if self.activation != "tanh" else "", "no bias" if not self.bias else "",
                 "squared loss" if self.loss != "bce" else ""]
        kind = ", ".join(k for k in kinds if k)
        kind = f"{kind}, " if kind else ""
        return (f"{model}{kind}H{self.hidden_size} lr {self.learning_rate:g} {self.optimizer}{batch}{clip} "
                f"seed {self.seed}")


def with_model_options(params: object, config: TrainConfig) -> object:
    """params with config's model options (loss; the RNN's activation and bias) set, in place; returns params.
    Weights read from a file (a state_dict) carry none: the config they were saved with says which."""
    for name, value in config.model_options().items():
        setattr(params, name, value)
    return params


# Named settings: each sets every model and training setting (not seed, bits or precision), so it gives the same
# model whatever was set before. Labels are what the window shows.
PRESETS: dict[str, dict[str, object]] = {
    "default": {},  # the defaults: the notebook's settings with the cross-entropy loss
    # The original notebook's LSTM as it meant to train: its squared-error delta (p - y) p (1 - p), summed.
    "notebook-lstm": {"loss": "squared"},
    # The classic binary-addition RNN tutorial (Trask 2015): 16 sigmoid units, no biases, U(-1, 1) weights, the
    # squared-error delta summed over the bits, online SGD at lr 0.1.
    "tutorial-rnn": {"model": "rnn", "activation": "sigmoid", "bias": False, "init": "uniform", "loss": "squared"},
}
PRESET_LABELS = {"default": "LSTM (defaults)", "notebook-lstm": "Notebook LSTM", "tutorial-rnn": "Tutorial RNN"}
_PRESET_FIELDS = ("hidden_size", "learning_rate", "optimizer", "momentum", "batch_size", "clip_norm", "init",
                  "forget_bias", "model", "loss", "activation", "bias")


def preset(name: str, base: TrainConfig | None = None) -> TrainConfig:
    """base (default: the defaults) with the named preset's settings; seed, bits and precision stay base's."""
    if name not in PRESETS:
        raise ConfigError(f"preset must be one of {', '.join(PRESETS)}, got {name!r}")
    defaults = TrainConfig()
    settings = {field: getattr(defaults, field) for field in _PRESET_FIELDS} | PRESETS[name]
    return (base or defaults).replace(**settings)


def preset_of(config: TrainConfig) -> str | None:
    """The name of the preset whose settings config has, or None."""
    for name in PRESETS:
        if all(getattr(preset(name, config), field) == getattr(config, field) for field in _PRESET_FIELDS):
            return name
    return None


HISTORY_COLUMNS = ("samples", "loss", "bit_error", "accuracy")


class History:
    """Training curves with bounded memory: when full, neighbouring points merge and the stride doubles."""

    def __init__(self, capacity: int = 2048) -> None:
        self.capacity = capacity - capacity % 2
        self.data = np.empty((self.capacity, len(HISTORY_COLUMNS)))
        self.size = 0
        self.stride = 1  # chunks merged into one stored point
        self._pending: list[tuple[float, float, float, float, int]] = []
        self.events: list[tuple[int, str]] = []  # (samples seen, what changed), for markers on the curves

    def add(self, samples: int, loss: float, bit_error: float, accuracy: float, weight: int) -> None:
        """One chunk's metrics; loss and bit error are averaged over `weight` samples when chunks merge."""
        self._pending.append((samples, loss, bit_error, accuracy, weight))
        if len(self._pending) >= self.stride:
            self._flush()

    def _flush(self) -> None:
        rows = np.array(self._pending)
        self._pending.clear()
        weights = rows[:, 4]
        merged = (rows[-1, 0], *(np.average(rows[:, 1:3], axis=0, weights=weights)), rows[-1, 3])
        if self.size == self.capacity:
            self._halve()
        self.data[self.size] = merged
        self.size += 1

    def _halve(self) -> None:
        half = self.size // 2
        pairs = self.data[: 2 * half].reshape(half, 2, -1)
        merged = pairs[:, 1].copy()  # the later point's sample count and accuracy ...
        merged[:, 1:3] = pairs[:, :, 1:3].mean(axis=1)  # ... and the average loss and bit error
        self.data[:half] = merged
        self.size = half
        self.stride *= 2

    def add_event(self, samples: int, text: str) -> None:
        self.events.append((samples, text))
        del self.events[:-500]

    def column(self, name: str) -> np.ndarray:
        """A copy of one column over the stored points."""
        return self.data[: self.size, HISTORY_COLUMNS.index(name)].copy()

    def array(self) -> np.ndarray:
        """(N, 4) copy: samples, loss, bit_error, accuracy."""
        return self.data[: self.size].copy()

    def pending(self) -> np.ndarray:
        """(K, 5) copy of the chunks waiting to be merged into the next point: samples, loss, bit_error, accuracy,
        weight. A saved run needs them, or its curve after loading would differ from one that never stopped."""
        return np.array(self._pending, dtype=np.float64).reshape(-1, len(HISTORY_COLUMNS) + 1)

    def load(self, rows: np.ndarray, stride: int, events: list[tuple[int, str]],
             pending: np.ndarray | None = None) -> None:
        """Restore what array(), stride, events and pending() returned."""
        rows = np.asarray(rows, dtype=np.float64).reshape(-1, len(HISTORY_COLUMNS))
        if len(rows) > self.capacity:
            raise ValueError(f"history has {len(rows)} points, more than {self.capacity}")
        self.data[: len(rows)] = rows
        self.size = len(rows)
        self.stride = int(stride)
        self._pending = [] if pending is None else [tuple(row) for row in np.asarray(pending).tolist()]
        self.events = list(events)


@dataclass
class ChunkResult:
    """What one call of Trainer.step did."""

    samples: int  # samples trained in this chunk (fewer than asked if it diverged)
    loss: float  # mean loss over the chunk
    bit_error: float  # mean |y - p| over the chunk's bits
    accuracy: float  # exact-sum accuracy on the held-out pairs after the chunk
    last_a: int  # the chunk's last training sample and the model's answer to it (before the update)
    last_b: int
    last_prediction: int
    diverged: bool = False
    message: str = ""


@dataclass
class EvalResult:
    """Exact-sum accuracy over many pairs, and per-pair details for the error grid."""

    n_bits: int
    a: np.ndarray  # (N,)
    b: np.ndarray  # (N,)
    predicted: np.ndarray  # (N,) decoded sums
    wrong_bits: np.ndarray  # (N,) number of wrong output bits
    exhaustive: bool

    @property
    def accuracy(self) -> float:
        return float(np.mean(self.wrong_bits == 0))

    @property
    def bit_accuracy(self) -> float:
        return float(1.0 - np.mean(self.wrong_bits) / self.n_bits)


def predict(params: Params, a: np.ndarray, b: np.ndarray, n_bits: int,
            unit_scale: np.ndarray | None = None, engine: str | None = None) -> np.ndarray:
    """Output probabilities (T, N) for the pairs, on the given engine (default: the fastest available)."""
    return engine_module.predict(engine_module.resolve(engine), params, np.asarray(a, np.int64),
                                 np.asarray(b, np.int64), n_bits, unit_scale)


def evaluate(params: Params, n_bits: int, rng: np.random.Generator | None = None,
             unit_scale: np.ndarray | None = None, n_samples: int = 4096, engine: str | None = None) -> EvalResult:
    """Exhaustive over all pairs when feasible (16,384 at 8 bits), else n_samples random pairs."""
    rng = rng if rng is not None else np.random.default_rng(12345)
    a, b, exhaustive = task.evaluation_pairs(n_bits, rng, n_samples)
    predicted, wrong_bit = score(params, a, b, n_bits, unit_scale, engine)
    return EvalResult(n_bits, a, b, predicted, np.count_nonzero(wrong_bit, axis=0), exhaustive)


def score(params: Params, a: np.ndarray, b: np.ndarray, n_bits: int,
          unit_scale: np.ndarray | None = None, engine: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The model's sums for the pairs (N,) and where each output bit is wrong (T, N) bool."""
    probs = predict(params, a, b, n_bits, unit_scale, engine)
    wrong_bit = (probs >= 0.5) != (task.encode(a + b, n_bits) >= 0.5)
    return task.decode(probs), wrong_bit


class Trainer:
    """Trains one model on binary addition; everything needed to continue a run lives here.

    A run is a pure function of its settings and the number of samples trained: the training pairs are drawn
    from one generator in order, and every CHECK_EVERY samples (at the first update that reaches a multiple of
    it) the trainer records a history point, measures the held-out accuracy, checks whether every sum is right
    and keeps a rollback point. How the samples are split into calls of step() changes nothing.
    """

    def __init__(self, config: TrainConfig | None = None, engine: str | None = None,
                 details: bool = True) -> None:
        self.config = (config or TrainConfig()).validate()
        limits.check_training(self.config)  # LimitError naming the memory it needs, before any is allocated
        # details: the held-out accuracy at every check (the curve) and a linear carry probe in the first "solved"
        # event. A sweep's or a study's runs, where only when (and whether) a run solves matters, leave them out:
        # the weights and solved-at are the same either way.
        self.details = details
        cfg = self.config
        self.engine = engine_module.resolve(engine)  # "numpy" or "compiled"; may change between steps
        self.dtype = np.dtype(cfg.dtype).type
        self.rng = np.random.default_rng(cfg.seed)
        self.model = models.get(cfg.model)  # module with init_params, forward, backward, Params
        self.params = self.model.init_params(cfg.hidden_size, self.rng, init=cfg.init, forget_bias=cfg.forget_bias,
                                             dtype=self.dtype, **cfg.model_options())
        self.optimizer: Optimizer = make_optimizer(cfg.optimizer, cfg.learning_rate, cfg.momentum)
        heldout_rng = np.random.default_rng([cfg.seed, 2])  # fixed per seed, independent of training draws
        self.heldout_a, self.heldout_b = task.sample_operands(heldout_rng, cfg.heldout_size, cfg.n_bits)
        self.history = History()
        self.samples_seen = 0
        self.training_seconds = 0.0  # time spent inside step(), for time-to-solve (wall clock: not part of the run)
        self.solved_at: tuple[int, float] | None = None  # (samples, seconds) when every sum was first right
        # Every sum right: checked in full at the check that solves and every FULL_CHECK_EVERY samples after; at
        # the checks between, a wrong held-out or long-carry sum clears it (see _watched_sums_right)
        self.solved_now = False
        self.accuracy = self.heldout_accuracy()  # held-out exact-sum accuracy at the last check
        self.samples_per_second = 0.0
        # The loss that trained these weights (sessions from older versions say otherwise).
        self.loss_note = LOSS if cfg.loss == "bce" else "squared-sum"
        # Each sample's loss and mean bit error since the last check, (k, 2): summed at the check in one call, so
        # the history point is the same to the last bit however the samples were split into chunks.
        self.interval = np.empty((0, 2))
        self._workspace = lstm_fast.Workspace()  # scratch arrays reused from step to step (NumPy engine)
        self._last_wrong: tuple[np.ndarray, np.ndarray] | None = None  # pairs found wrong at earlier checks
        self._watched: tuple[np.ndarray, np.ndarray] | None = None  # see _watched_sums_right
        self.rollback_point: RollbackPoint = self._rollback_point()
        self._step_started = time.perf_counter()
        # Called with the trainer at the end of every check (the window's weight timeline and story of the run:
        # core.timeline, core.story); each must cost well under a millisecond, or run at fixed sample counts.
        self.check_hooks: list[Callable[[Trainer], None]] = []

    @property
    def engine(self) -> str:
        """The engine that trains and evaluates: "numpy" or "compiled"; may change between steps."""
        return self._engine

    @engine.setter
    def engine(self, name: str) -> None:
        self._engine = engine_module.resolve(name)

    # ---- training -------------------------------------------------------------------------------------------
    def step(self, n_samples: int, stop_when_solved: bool = False) -> ChunkResult:
        """Train on at least n_samples samples (whole batches); checks happen wherever a multiple of CHECK_EVERY
        is reached. On divergence the run returns to its last rollback point and the result says so.
        With stop_when_solved the chunk ends at the check that first finds every sum right (solved_at[0] is then
        samples_seen), so a caller that pauses there pauses where the run was solved."""
        cfg = self.config
        batch = cfg.batch_size
        to_do = max(1, -(-int(n_samples) // batch))  # updates
        started = self._step_started = time.perf_counter()
        done = 0
        loss_sum = error_sum = 0.0
        last = (0, 0, 0)
        diverged, message = False, ""
        while to_do:
            next_check = (self.samples_seen // CHECK_EVERY + 1) * CHECK_EVERY
            updates = min(to_do, -(-(next_check - self.samples_seen) // batch))
            a, b = task.sample_operands(self.rng, updates * batch, cfg.n_bits)
            out = engine_module.train(self.engine, self.params, self.optimizer, cfg.clip_norm, a, b, cfg.n_bits,
                                      batch, EXPLODING_LOSS * cfg.n_bits * self.params.output_size,
                                      self._workspace)
            n = out.updates * batch
            if n:
                y_bits = task.encode(a[:n] + b[:n], cfg.n_bits)  # (T, n)
                errors = _mean_over_bits(np.abs(y_bits - out.probs))  # (n,) each sample's mean bit error
                losses = np.repeat(out.losses, batch)  # each sample's share: its update's loss
                self.interval = np.concatenate([self.interval, np.column_stack([losses, errors])])
                loss_sum += losses.sum()
                error_sum += errors.sum()
                done += n
                self.samples_seen += n
                last = (int(a[n - 1]), int(b[n - 1]), int(task.decode(out.probs[:, n - 1 : n])[0]))
            if out.diverged or not np.all(np.isfinite(self.params.flat)):
                diverged = True
                bad = self.samples_seen + batch
                point = self.rollback_point.samples_seen
                message = (f"training diverged at sample {bad:,} (the loss or the weights stopped being finite "
                           f"numbers): paused, and the weights of sample {point:,} restored. Try a lower learning "
                           "rate or gradient clipping.")
                self.rollback()
                self.history.add_event(self.samples_seen, f"diverged at sample {bad:,}; rolled back")
                break
            to_do -= out.updates
            if self.samples_seen >= next_check:
                self._check()
                if stop_when_solved and self.solved_at is not None and self.solved_at[0] == self.samples_seen:
                    break
        elapsed = time.perf_counter() - started
        self.training_seconds += elapsed
        if elapsed > 0 and done:
            self.samples_per_second = done / elapsed
        loss_mean = loss_sum / done if done else float("nan")
        error_mean = error_sum / done if done else float("nan")
        return ChunkResult(done, loss_mean, error_mean, self.accuracy, *last, diverged, message)

    def _check(self) -> None:
        """At a multiple of CHECK_EVERY: held-out accuracy, a history point, solved or not, a rollback point."""
        self.accuracy = self.heldout_accuracy() if self.details else float("nan")
        count = len(self.interval)
        if count:
            loss_mean, error_mean = self.interval.sum(axis=0) / count
            self.history.add(self.samples_seen, loss_mean, error_mean, self.accuracy, count)
        self.interval = np.empty((0, 2))
        was_solved = self.solved_now
        # (a held-out pair wrong means not solved: the check's pairs include the held-out ones)
        if not (math.isnan(self.accuracy) or self.accuracy == 1.0):
            self.solved_now = False
        elif was_solved and self.samples_seen % FULL_CHECK_EVERY:
            self.solved_now = self._watched_sums_right()  # still solved? between full checks, the telling pairs
        else:
            self.solved_now = self._every_sum_right()
        if self.solved_now and self.solved_at is None:
            seconds = self.training_seconds + time.perf_counter() - self._step_started  # (inside step: not yet added)
            self.solved_at = (self.samples_seen, seconds)
            text = "solved: every sum right"
            if self.details:  # (~20 ms)
                probe = probe_carry.probe_carry(self.params, self.config.n_bits, n_pairs=SOLVED_PROBE_PAIRS)
                text += f"; {probe.summary()}"
            self.history.add_event(self.samples_seen, text)
        elif self.solved_now and not was_solved:
            self.history.add_event(self.samples_seen, "solved again")
        elif was_solved and not self.solved_now:
            self.history.add_event(self.samples_seen, "no longer solved")
        self.rollback_point = self._rollback_point()
        for hook in self.check_hooks:
            hook(self)

    def _rollback_point(self) -> RollbackPoint:
        return RollbackPoint(self.samples_seen, self.params.flat.copy(),
                             {k: np.array(v, copy=True) for k, v in self.optimizer.state().items()},
                             json.dumps(self.rng.bit_generator.state), self.interval.copy())

    def rollback(self) -> None:
        """Return to the last rollback point: weights, optimizer state, sample stream and sample count."""
        point = self.rollback_point
        self.params.flat[:] = point.flat
        cfg = self.config
        self.optimizer = make_optimizer(cfg.optimizer, cfg.learning_rate, cfg.momentum)
        self.optimizer.load_state({k: v.copy() for k, v in point.optimizer.items()})
        self.rng.bit_generator.state = json.loads(point.rng_state)
        self.samples_seen = point.samples_seen
        self.interval = point.interval.copy()

    # ---- evaluation -----------------------------------------------------------------------------------------
    def _every_sum_right(self) -> bool:
        """Every pair's sum right? First the pairs found wrong at earlier checks (the hard ones: few, and usually
        still wrong), then all pairs in blocks, the longest carry chains first, stopping at the first block with a wrong
        sum. The answer is the same whatever the order; only its cost changes."""
        n_bits = self.config.n_bits
        if self._last_wrong is not None and len(self._last_wrong[0]):
            a, b = self._last_wrong
            wrong = ~self._sums_right(a, b)
            if wrong.any():
                self._last_wrong = (np.concatenate([a[wrong], a[~wrong]]), np.concatenate([b[wrong], b[~wrong]]))
                return False
        a_all, b_all = _check_order(n_bits, self.heldout_a, self.heldout_b)
        for start, end in _blocks(len(a_all)):
            a, b = a_all[start:end], b_all[start:end]
            wrong = ~self._sums_right(a, b)
            if wrong.any():
                old_a, old_b = self._last_wrong if self._last_wrong is not None else (a[:0], b[:0])
                self._last_wrong = (np.concatenate([a[wrong], old_a])[:SUSPECTS],
                                    np.concatenate([b[wrong], old_b])[:SUSPECTS])
                return False
        return True

    def _watched_sums_right(self) -> bool:
        """A solved model still solved? The held-out pairs and those with the longest carry chains (fixed sets: the
        answer is a function of the weights alone) are all right."""
        if self._watched is None:
            self._watched = _watched_pairs(self.config.n_bits, self.heldout_a, self.heldout_b)
        a, b = self._watched
        return bool(np.all(self._sums_right(a, b)))

    def _sums_right(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """(N,) bool: whether the model's sum of each pair is right, on this trainer's engine."""
        return task.decode(predict(self.params, a, b, self.config.n_bits, engine=self.engine)) == a + b

    def heldout_accuracy(self) -> float:
        return float(np.mean(self._sums_right(self.heldout_a, self.heldout_b)))

    def evaluate(self, n_bits: int | None = None, unit_scale: np.ndarray | None = None) -> EvalResult:
        return evaluate(self.params, n_bits or self.config.n_bits, unit_scale=unit_scale, engine=self.engine)

    def exhaustive_accuracy(self) -> float:
        return self.evaluate().accuracy

    @property
    def solved(self) -> bool:
        """Every sum was right at some check (see solved_now for whether it still is)."""
        return self.solved_at is not None

    # ---- live changes ---------------------------------------------------------------------------------------
    def update(self, **changes: object) -> list[str]:
        """Apply live settings (TrainConfig.LIVE) at once; returns what changed, as text. Raises ConfigError.
        The change takes a rollback point, so a later rollback never crosses it."""
        not_live = set(changes) - set(TrainConfig.LIVE)
        if not_live:
            raise ConfigError(f"{', '.join(sorted(not_live))} can only change with a reset")
        new = self.config.replace(**changes)
        try:  # a larger batch or more units must fit in memory too
            limits.check_training(new)
        except limits.LimitError as error:
            raise ConfigError(str(error)) from None
        old = self.config
        described = []
        for name in TrainConfig.LIVE:
            if getattr(new, name) != getattr(old, name):
                described.append(f"{name.replace('_', ' ')} {getattr(old, name)} -> {getattr(new, name)}")
        if new.hidden_size != old.hidden_size:
            self._resize(new.hidden_size)
        if new.optimizer != old.optimizer or new.momentum != old.momentum:
            self.optimizer = make_optimizer(new.optimizer, new.learning_rate, new.momentum)
        self.optimizer.learning_rate = new.learning_rate
        self.config = new
        for text in described:
            self.history.add_event(self.samples_seen, text)
        if described:
            self.rollback_point = self._rollback_point()
        return described

    def _resize(self, hidden_size: int) -> None:
        # New units' weights are small random numbers from a generator of their own (the seed and the sample
        # count), so a resize does not shift the training samples that follow.
        fill_rng = np.random.default_rng([self.config.seed, 3, self.samples_seen])
        old = self.params
        probe = self.model.resize_hidden(old, hidden_size)  # for the size of the new buffer
        self.params = self.model.resize_hidden(old, hidden_size, NEW_UNIT_SCALE * fill_rng.standard_normal(
            probe.flat.size))

        def mapping(state: np.ndarray) -> np.ndarray:
            view = type(old).from_flat(state, old.hidden_size, old.input_size, old.output_size)
            return self.model.resize_hidden(view, hidden_size).flat

        self.optimizer.resize(mapping)
        self._last_wrong = None


def _check_order(n_bits: int, heldout_a: np.ndarray, heldout_b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The pairs the solved check tries: evaluate's (all of them, or its fixed sample beyond EXHAUSTIVE_LIMIT) and
    the held-out ones, the longest carry chains first: a model near solved gets those wrong last."""
    a, b = _evaluation_order(n_bits)
    if not task.operand_limit(n_bits) ** 2 <= task.EXHAUSTIVE_LIMIT:  # sampled: the held-out pairs are extra
        a, b = np.concatenate([a, heldout_a]), np.concatenate([b, heldout_b])
    return a, b


@functools.lru_cache(maxsize=4)
def _evaluation_order(n_bits: int) -> tuple[np.ndarray, np.ndarray]:
    """evaluate's pairs, longest carry chain first (the sums a model gets wrong last), shuffled within a length."""
    a, b, _ = task.evaluation_pairs(n_bits, np.random.default_rng(12345))
    order = np.random.default_rng(7).permutation(len(a))
    a, b = a[order], b[order]
    carry_in, _ = task.carries(a, b, n_bits)
    order = np.argsort(-_longest_runs(carry_in), kind="stable")
    a, b = a[order], b[order]
    a.flags.writeable = b.flags.writeable = False
    return a, b


def _watched_pairs(n_bits: int, heldout_a: np.ndarray, heldout_b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The held-out pairs and the WATCHED_LONG_CARRIES pairs of the check's set with the longest carry chains."""
    a, b = _evaluation_order(n_bits)  # longest chains first
    return (np.concatenate([heldout_a, a[:WATCHED_LONG_CARRIES]]),
            np.concatenate([heldout_b, b[:WATCHED_LONG_CARRIES]]))


def _longest_runs(carry_in: np.ndarray) -> np.ndarray:
    """(T, N) 0/1 -> (N,) the longest run of consecutive ones along axis 0."""
    run = np.zeros(carry_in.shape[1])
    longest = np.zeros(carry_in.shape[1])
    for row in carry_in:
        run = (run + 1) * row
        np.maximum(longest, run, out=longest)
    return longest


def _blocks(size: int) -> list[tuple[int, int]]:
    """(start, end) of the solved check's blocks: small first (a model far from solved shows a wrong sum in its
    first few dozen pairs), then SOLVED_CHECK_BLOCK."""
    ends = [end for end in (64, 256) if end < size]
    ends += list(range(ends[-1] + SOLVED_CHECK_BLOCK if ends else SOLVED_CHECK_BLOCK, size, SOLVED_CHECK_BLOCK))
    ends.append(size)
    return list(zip([0, *ends[:-1]], ends))


def _mean_over_bits(values: np.ndarray) -> np.ndarray:
    """(T, n) -> (n,) means over axis 0, added in the same order whatever n (NumPy's own reduction groups the
    terms differently for one column than for many, which would make a run depend on its chunks)."""
    total = np.zeros(values.shape[1])
    for row in values:
        total += row
    return total / len(values)


@dataclass
class RollbackPoint:
    """Where a diverged run returns to: the state at the last check (or live change)."""

    samples_seen: int
    flat: np.ndarray  # the weights
    optimizer: dict[str, np.ndarray]  # Optimizer.state()
    rng_state: str  # the training generator's bit_generator.state as JSON
    interval: np.ndarray  # Trainer.interval: (k, 2) loss and bit error of each sample since the last check
