"""The grid a sweep trains: named axes over TrainConfig fields, parsed from `lr=0.03,0.1,0.3 hidden=4,8,16 seed=0:20`.

An axis is one setting and the values it takes, in the order given. The cells are every combination, the first
axis varying slowest; an axis with one value is simply a setting shared by every cell. Values are a comma-separated
list; whole-number axes also take ranges `start:stop` or `start:stop:step` (stop excluded, as in Python), so
`seed=0:20` is twenty seeds. Every problem raises GridError with a message that names the axis and the value.
"""

from __future__ import annotations

import dataclasses
import difflib
import itertools
import math
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

from core import models
from core.limits import MAX_SWEEP_CELLS, shown
from core.lstm import LOSSES
from core.optim import OPTIMIZERS
from core.trainer import ACTIVATIONS, INITS, ConfigError, TrainConfig

Value = float | int | str | bool
BOOLEAN_WORDS = {"true": True, "yes": True, "on": True, "1": True,
                 "false": False, "no": False, "off": False, "0": False}
Index = tuple[int, ...]  # a cell's position along each axis


class GridError(ConfigError):
    """A grid that cannot be swept; the message says which axis and value, and what would do."""


@dataclass(frozen=True)
class AxisKind:
    """What one sweepable setting is: its TrainConfig field, how its values are written, how it is labelled."""

    name: str  # as typed on the command line: "lr"
    field: str  # the TrainConfig field: "learning_rate"
    label: str  # for people: "learning rate"
    kind: type  # float, int, str or bool
    choices: tuple[str, ...] = ()  # the allowed words, for str axes

    def parse(self, text: str) -> list[Value]:
        """Values from 'a,b,c' (and, for whole numbers, 'start:stop[:step]' parts); raises GridError."""
        values: list[Value] = []
        for part in (part.strip() for part in text.split(",")):
            if not part:
                raise GridError(f"{self.name}: empty value in {text!r} (write values as {self.example()})")
            values.extend(self._parse_part(part))
        if not values:
            raise GridError(f"{self.name}: give at least one value, e.g. {self.example()}")
        seen: set[Value] = set()
        for value in values:
            if value in seen:
                raise GridError(f"{self.name}: {format_value(self, value)} is listed twice")
            seen.add(value)
        return values

    def _parse_part(self, part: str) -> list[Value]:
        if self.kind is bool:
            if part.lower() not in BOOLEAN_WORDS:
                raise GridError(f"{self.name}: {part!r} is not true or false")
            return [BOOLEAN_WORDS[part.lower()]]
        if self.kind is str:
            word = part.lower()
            if word not in self.choices:
                raise GridError(f"{self.name}: {part!r} is not one of {', '.join(self.choices)}")
            return [word]
        if ":" in part:
            if self.kind is not int:
                raise GridError(f"{self.name}: ranges (a:b) are for whole-number settings; list the values, "
                                f"e.g. {self.example()}")
            return self._parse_range(part)
        try:
            number = float(part) if self.kind is float else int(part)
        except ValueError:
            kind = "whole number" if self.kind is int else "number"
            raise GridError(f"{self.name}: {part!r} is not a {kind}") from None
        if self.kind is float and not math.isfinite(number):
            raise GridError(f"{self.name}: {part!r} is not a finite number")
        return [number]

    def _parse_range(self, part: str) -> list[int]:
        pieces = part.split(":")
        try:
            numbers = [int(piece) for piece in pieces]
        except ValueError:
            numbers = []
        if len(pieces) not in (2, 3) or len(numbers) != len(pieces):
            raise GridError(f"{self.name}: {part!r} is not a range start:stop or start:stop:step of whole numbers")
        start, stop, step = (*numbers, 1) if len(numbers) == 2 else numbers
        if step <= 0:
            raise GridError(f"{self.name}: the step of {part!r} must be at least 1")
        if stop <= start:
            raise GridError(f"{self.name}: the range {part!r} is empty (the stop, {stop}, is excluded: "
                            f"{start}:{start + 1} is just {start})")
        if (stop - start + step - 1) // step > MAX_SWEEP_CELLS:  # before a list of them is made
            raise GridError(f"{self.name}: the range {shown(part)} has more values than the {MAX_SWEEP_CELLS:,} "
                            "cells a sweep may have")
        return list(range(start, stop, step))

    def example(self) -> str:
        if self.kind is bool:
            return f"{self.name}=true,false"
        return {"lr": "lr=0.03,0.1,0.3", "seed": "seed=0:20", "hidden": "hidden=4,8,16"}.get(
            self.name, f"{self.name}={','.join(self.choices[:2])}" if self.choices else f"{self.name}=1,2")


AXIS_KINDS: tuple[AxisKind, ...] = (
    AxisKind("lr", "learning_rate", "learning rate", float),
    AxisKind("hidden", "hidden_size", "hidden units", int),
    AxisKind("seed", "seed", "seed", int),
    AxisKind("optimizer", "optimizer", "optimizer", str, OPTIMIZERS),
    AxisKind("momentum", "momentum", "momentum", float),
    AxisKind("batch", "batch_size", "batch size", int),
    AxisKind("init", "init", "initial weights", str, INITS),
    AxisKind("forget_bias", "forget_bias", "forget-gate bias", float),
    AxisKind("clip", "clip_norm", "gradient clipping (norm)", float),
    AxisKind("bits", "n_bits", "bits", int),
    AxisKind("model", "model", "model", str, tuple(models.MODELS)),
    AxisKind("loss", "loss", "loss", str, LOSSES),
    AxisKind("activation", "activation", "RNN activation", str, ACTIVATIONS),
    AxisKind("bias", "bias", "RNN biases", bool),
    AxisKind("dtype", "dtype", "precision", str, ("float64", "float32")),
)
KINDS_BY_NAME: dict[str, AxisKind] = {kind.name: kind for kind in AXIS_KINDS}
_ALIASES: dict[str, str] = {alias: kind.name for kind in AXIS_KINDS
                            for alias in {kind.name, kind.field, kind.name.replace("_", "-"),
                                          kind.field.replace("_", "-")}}
_ALIASES.update({"learning-rate": "lr", "hidden-size": "hidden", "seeds": "seed", "n-bits": "bits"})


def axis_kind(name: str) -> AxisKind:
    """The axis called name (or one of its aliases: the TrainConfig field, dashes for underscores)."""
    key = name.strip().lower()
    if key in _ALIASES:
        return KINDS_BY_NAME[_ALIASES[key]]
    close = difflib.get_close_matches(key, list(_ALIASES), n=1)
    hint = f" (did you mean {_ALIASES[close[0]]}?)" if close else ""
    raise GridError(f"unknown setting {name!r}{hint}; a sweep can vary {', '.join(KINDS_BY_NAME)}")


def format_value(kind: AxisKind, value: Value) -> str:
    """How a value is written in labels and tables: 0.1, 16, adam, LSTM."""
    if kind.name == "model":
        return str(value).upper()
    if kind.kind is bool:
        return "true" if value else "false"
    if kind.kind is float:
        return f"{value:g}"
    return str(value)


@dataclass(frozen=True)
class Axis:
    """One setting swept over, and its values in the order given."""

    kind: AxisKind
    values: tuple[Value, ...]

    @property
    def name(self) -> str:
        return self.kind.name

    @property
    def label(self) -> str:
        return self.kind.label

    def labels(self) -> list[str]:
        return [format_value(self.kind, value) for value in self.values]

    def __len__(self) -> int:
        return len(self.values)


@dataclass(frozen=True)
class SweepCell:
    """One grid point: its position along each axis and the complete config it trains."""

    index: Index
    config: TrainConfig


@dataclass(frozen=True)
class Grid:
    """Axes over a base config. The cells are every combination of the axes' values, the first axis slowest.
    parse_grid checks every cell's settings (Grid.check); a grid read back from a CSV may hold combinations that
    were never cells (they stay empty)."""

    axes: tuple[Axis, ...]
    base: TrainConfig = dataclasses.field(default_factory=TrainConfig)

    def __post_init__(self) -> None:
        names = [axis.name for axis in self.axes]
        for name in names:
            if names.count(name) > 1:
                raise GridError(f"{name} is given twice; put all its values in one {name}=…")
        for axis in self.axes:
            if not axis.values:
                raise GridError(f"{axis.name}: give at least one value, e.g. {axis.kind.example()}")

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(len(axis) for axis in self.axes)

    @property
    def size(self) -> int:
        return math.prod(self.shape)

    def axis(self, name: str) -> Axis:
        kind = axis_kind(name)
        for axis in self.axes:
            if axis.kind == kind:
                return axis
        raise GridError(f"{kind.name} is not an axis of this sweep (its axes: {', '.join(self.names())})")

    def position(self, name: str) -> int:
        """Where the axis called name is in self.axes."""
        return self.axes.index(self.axis(name))

    def names(self) -> list[str]:
        return [axis.name for axis in self.axes]

    def config(self, index: Index) -> TrainConfig:
        """The config of the cell at index (validated)."""
        return self.base.replace(**{axis.kind.field: axis.values[i] for axis, i in zip(self.axes, index)})

    def check(self) -> Grid:
        """Return self, or raise GridError for the first cell whose settings are not valid, naming the value to
        blame: one that is wrong by itself, else the one value whose change would make the cell valid, else the
        whole cell (settings that do not go together)."""
        for index in itertools.product(*(range(len(axis)) for axis in self.axes)):
            try:
                self.config(index)
            except ConfigError as error:
                raise GridError(self._blame(index, error)) from None
        return self

    def _blame(self, index: Index, error: ConfigError) -> str:
        def written(p: int) -> str:
            axis = self.axes[p]
            return f"{axis.name}={format_value(axis.kind, axis.values[index[p]])}"

        for p, axis in enumerate(self.axes):
            try:
                self.base.replace(**{axis.kind.field: axis.values[index[p]]})
            except ConfigError as alone:
                return f"{written(p)}: {alone}"
        culprits = []
        for p, axis in enumerate(self.axes):
            for other in range(len(axis)):
                if other == index[p]:
                    continue
                try:
                    self.config((*index[:p], other, *index[p + 1:]))
                except ConfigError:
                    continue
                culprits.append(p)
                break
        if len(culprits) == 1:
            return f"{written(culprits[0])}: {error}"
        return f"the cell {' '.join(written(p) for p in culprits or range(len(self.axes)))}: {error}"

    def cells(self) -> Iterator[SweepCell]:
        for index in itertools.product(*(range(len(axis)) for axis in self.axes)):
            yield SweepCell(index, self.config(index))

    def index_of(self, config: TrainConfig) -> Index | None:
        """The cell whose config this is, or None when config is not in the grid."""
        index = []
        for axis in self.axes:
            value = getattr(config, axis.kind.field)
            if value not in axis.values:
                return None
            index.append(axis.values.index(value))
        changes = {axis.kind.field: axis.values[i] for axis, i in zip(self.axes, index)}
        return tuple(index) if dataclasses.replace(self.base, **changes) == config else None

    def describe(self) -> str:
        """'lr=0.1,0.3 hidden=8 seed=0:3' style, ranges written out when they are one."""
        return " ".join(f"{axis.name}={_write_values(axis)}" for axis in self.axes)


def _write_values(axis: Axis) -> str:
    values = axis.values
    if axis.kind.kind is int and len(values) > 2 and values == tuple(range(values[0], values[-1] + 1)):
        return f"{values[0]}:{values[-1] + 1}"
    return ",".join(str(value) for value in values)  # str(float) reads back as the same float


def parse_grid(specs: str | Iterable[str], base: TrainConfig | None = None) -> Grid:
    """Grid from 'name=values' items (a string is split on whitespace). Raises GridError."""
    items = specs.split() if isinstance(specs, str) else [item for spec in specs for item in spec.split()]
    if not items:
        raise GridError("give at least one axis, e.g. lr=0.03,0.1,0.3 hidden=4,8,16 seed=0:20")
    axes = []
    for item in items:
        name, equals, values = item.partition("=")
        if not equals or not name.strip():
            raise GridError(f"{item!r} is not name=values (e.g. lr=0.03,0.1,0.3)")
        kind = axis_kind(name)
        axes.append(Axis(kind, tuple(kind.parse(values))))
    grid = Grid(tuple(axes), (base or TrainConfig()).validate())
    if grid.size > MAX_SWEEP_CELLS:  # before every cell's settings are checked
        raise GridError(f"the grid has {grid.size:,} cells; a sweep may have at most {MAX_SWEEP_CELLS:,}")
    return grid.check()


def grid_from_configs(configs: Sequence[TrainConfig], order: Sequence[str] = ()) -> Grid:
    """The smallest grid holding every config (for a CSV read back): an axis for every setting that differs
    between them, values sorted, axes in `order` first, then in AXIS_KINDS order, seed last."""
    if not configs:
        raise GridError("no cells to make a grid of")
    base = configs[0]
    kinds = [kind for kind in AXIS_KINDS if len({getattr(config, kind.field) for config in configs}) > 1]
    swept = {kind.field for kind in AXIS_KINDS}
    for name in (f.name for f in dataclasses.fields(TrainConfig) if f.name not in swept):
        if len({getattr(config, name) for config in configs}) > 1:
            raise GridError(f"the cells differ in {name}, which is not a sweep axis")
    wanted = [axis_kind(name) for name in order]
    kinds = [kind for kind in wanted if kind in kinds] + [kind for kind in kinds if kind not in wanted]
    if KINDS_BY_NAME["seed"] in kinds:
        kinds.remove(KINDS_BY_NAME["seed"])
        kinds.append(KINDS_BY_NAME["seed"])
    axes = tuple(Axis(kind, _in_order(kind, {getattr(config, kind.field) for config in configs})) for kind in kinds)
    return Grid(axes, base)


def _in_order(kind: AxisKind, values: set[Value]) -> tuple[Value, ...]:
    """Numbers ascending (false before true), words in the order of kind.choices."""
    if kind.kind is str:
        return tuple(sorted(values, key=lambda word: (kind.choices.index(word) if word in kind.choices else 99, word)))
    return tuple(sorted(values))
