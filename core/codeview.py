"""The reference code beside its numbers: a model's forward and backward as source, and what each line computed
for one addition, step by step.

The source is read from the installed module with inspect.getsource, so it is the code that runs. `record` runs
that code, the model module's own forward and backward (core.lstm or core.rnn: the functions core.probe traces
with), on one addition under a line tracer (sys.settrace, for the calling thread only, and only in those two
functions) and keeps, after every statement, what the statement assigned:

    its targets            i = sigmoid(...)            -> i
                           cell[t + 1], ... = c, ...   -> cell[t + 1], ...
    the out= of a call     squash(z_t[t], out=h_t[t + 1])  -> h_t[t + 1]
    the value returned     return probs, Cache(...)    -> probs

with the step t of the loop it ran in. Arrays of one addition (a state (1, H), a step's gates (1, 4H), a whole
sequence (T, 1, ·)) are copied; weight-sized arrays (weights, gradients) are kept as their norm. The statements run
in order, so a view can walk through the lines as they ran: the forward pass over t = 0 … T-1, then the backward
pass over t = T-1 … 0. A recording costs about 2 ms for 16 units, in the thread that asks for it.
"""

from __future__ import annotations

import ast
import functools
import inspect
import sys
from dataclasses import dataclass
from types import CodeType, FrameType, ModuleType

import numpy as np

from core import models, task

FUNCTIONS = ("forward", "backward")
LOOP_VARIABLE = "t"
ALLOCATORS = frozenset({"empty", "zeros", "empty_like", "zeros_like"})  # a statement making these only allocates
MAX_VECTOR = 16  # values written out in a vector; longer ones are shortened with …


# ---- the source ----------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Statement:
    """A statement of a listing: lines `line`..`end` (1 = the def line), the expressions whose values are kept."""

    line: int
    end: int
    targets: tuple[str, ...]
    in_loop: bool  # inside the loop over the steps
    loop_header: bool = False  # the `for t in ...` line itself
    allocates: bool = False  # only allocates arrays (np.empty, np.zeros...): their contents mean nothing yet
    returns: bool = False


@dataclass(frozen=True)
class Listing:
    """One function's source as lines, and its statements."""

    module: str
    function: str
    first_line: int  # line of the def in the module's file
    lines: tuple[str, ...]
    statements: tuple[Statement, ...]

    @functools.cached_property
    def by_line(self) -> dict[int, Statement]:
        """Every line of a statement's header -> the innermost statement it belongs to."""
        found: dict[int, Statement] = {}
        for statement in self.statements:  # outer statements first: inner ones override
            for line in range(statement.line, statement.end + 1):
                found[line] = statement
        return found


def _header_end(node: ast.stmt) -> int:
    """The last line of a statement's header (a compound statement's body is not part of it)."""
    body = getattr(node, "body", None)
    if isinstance(body, list) and body and isinstance(body[0], ast.stmt):
        return body[0].lineno - 1
    return node.end_lineno or node.lineno


def _leaves(target: ast.expr) -> list[ast.expr]:
    if isinstance(target, (ast.Tuple, ast.List)):
        return [leaf for element in target.elts for leaf in _leaves(element)]
    if isinstance(target, ast.Starred):
        return _leaves(target.value)
    return [target]


def _targets(node: ast.stmt) -> tuple[str, ...]:
    if isinstance(node, ast.Assign):
        leaves = [leaf for target in node.targets for leaf in _leaves(target)]
    elif isinstance(node, (ast.AugAssign, ast.AnnAssign)):
        leaves = [node.target]
    elif isinstance(node, ast.For):
        leaves = _leaves(node.target)
    elif isinstance(node, ast.Expr) and isinstance(node.value, ast.Call):
        leaves = [keyword.value for keyword in node.value.keywords if keyword.arg == "out"]
    else:
        leaves = []
    names = [ast.unparse(leaf) for leaf in leaves]
    return tuple(dict.fromkeys(name for name in names if name != "_"))


def _allocates(node: ast.stmt) -> bool:
    value = getattr(node, "value", None)
    return (isinstance(node, ast.Assign) and isinstance(value, ast.Call)
            and isinstance(value.func, ast.Attribute) and value.func.attr in ALLOCATORS)


@functools.lru_cache(maxsize=8)
def listing(module: ModuleType, function: str) -> Listing:
    """The source of module.function, read from the installed module, and its statements."""
    code = getattr(module, function)
    lines, first_line = inspect.getsourcelines(code)
    tree = ast.parse("".join(lines))
    statements: list[Statement] = []

    def visit(node: ast.AST, in_loop: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if not isinstance(child, ast.stmt):
                continue
            if isinstance(child, ast.FunctionDef):
                visit(child, in_loop)
                continue
            if isinstance(child, ast.Expr) and isinstance(child.value, ast.Constant):  # a docstring: never runs
                continue
            header = isinstance(child, ast.For) and isinstance(child.target, ast.Name) \
                and child.target.id == LOOP_VARIABLE
            statements.append(Statement(child.lineno, _header_end(child), _targets(child), in_loop, header,
                                        _allocates(child), isinstance(child, ast.Return)))
            visit(child, in_loop or header)

    visit(tree, False)
    return Listing(module.__name__, function, first_line, tuple(line.rstrip("\n") for line in lines),
                   tuple(sorted(statements, key=lambda s: (s.line, -s.end))))


def docstring_lines(listing: Listing) -> range:
    """The lines of the function's docstring (empty when it has none)."""
    tree = ast.parse("\n".join(listing.lines))
    function = tree.body[0] if tree.body else None
    body = getattr(function, "body", [])
    if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) \
            and isinstance(body[0].value.value, str):
        return range(body[0].lineno, (body[0].end_lineno or body[0].lineno) + 1)
    return range(0)


# ---- the values ----------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Norm:
    """A weight-sized array, kept as its size."""

    shape: tuple[int, ...]
    norm: float


@dataclass(frozen=True)
class Allocated:
    """An array just allocated (np.empty, np.zeros...): its shape, not its contents (which mean nothing yet).
    shape is None for weights allocated as a whole (Params.zeros_like)."""

    shape: tuple[int, ...] | None


@dataclass(frozen=True)
class Executed:
    """One run of a statement: where, at which step (None outside the loop), and what it assigned."""

    function: str
    line: int  # the statement's first line in its listing
    step: int | None
    values: tuple[tuple[str, object], ...]  # (target, value) in the statement's order


@dataclass(frozen=True, eq=False)
class CodeTrace:
    """The recorded run of forward and backward on a + b."""

    model: str  # core.models name
    a: int
    b: int
    n_bits: int
    hidden_size: int
    listings: tuple[Listing, ...]  # forward, backward
    executed: tuple[Executed, ...]  # in the order they ran
    samples_seen: int = -1  # training samples behind the weights, when known

    @functools.cached_property
    def index(self) -> dict[tuple[str, int, int | None], int]:
        """(function, line, step) -> position in `executed` (the last run, for a statement run twice)."""
        return {(e.function, e.line, e.step): position for position, e in enumerate(self.executed)}

    def listing(self, function: str) -> Listing:
        return next(listing for listing in self.listings if listing.function == function)

    def at(self, function: str, line: int, step: int) -> tuple[int, Executed] | None:
        """The run of the statement at `line` shown at `step`: its run in that step of the loop, or its only run
        outside the loop; with its position in `executed`. None when it did not run."""
        for key in ((function, line, step), (function, line, None)):
            position = self.index.get(key)
            if position is not None:
                return position, self.executed[position]
        return None

    def first_of_step(self, function: str, step: int) -> int | None:
        """Position of the first statement that ran in the loop of `function` at `step`."""
        return next((i for i, e in enumerate(self.executed) if e.function == function and e.step == step), None)


def _keep(value: object, hidden_size: int, n_bits: int) -> object:
    """What to keep of a value: arrays of one addition copied, others as their norm, objects as text."""
    if isinstance(value, np.ndarray):
        one_addition = (value.ndim == 2 and value.shape[0] == 1) or (value.ndim == 3 and value.shape[1] == 1) \
            or value.ndim == 0
        if one_addition:
            return value.copy()
        return Norm(value.shape, float(np.linalg.norm(value)))
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, np.dtype):
        return str(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(value)
    if isinstance(value, tuple):
        return tuple(_keep(item, hidden_size, n_bits) for item in value)
    if isinstance(value, list):
        return f"a list of {len(value)} views, one per step"
    if callable(value) and hasattr(value, "__name__"):
        return f"{value.__name__}"
    return type(value).__name__


class _Recorder:
    """The line tracer: after each statement of the traced functions, the values of its targets."""

    def __init__(self, listings: dict[CodeType, Listing], hidden_size: int, n_bits: int) -> None:
        self.listings = listings
        self.hidden_size, self.n_bits = hidden_size, n_bits
        self.executed: list[Executed] = []
        self.pending: dict[int, Statement] = {}  # frame id -> the statement running in it
        self.compiled: dict[str, CodeType] = {}
        self.last_header: dict[int, object] = {}

    def calls(self, frame: FrameType, event: str, _arg: object):  # (a trace function)
        if event == "call" and frame.f_code in self.listings:
            return self.lines
        return None

    def lines(self, frame: FrameType, event: str, arg: object):
        listing = self.listings[frame.f_code]
        key = id(frame)
        if event == "line":
            statement = listing.by_line.get(frame.f_lineno - listing.first_line + 1)
            running = self.pending.get(key)
            if running is not None and statement is not running:
                self._capture(frame, listing, running)
            if statement is not None:
                self.pending[key] = statement
        elif event == "return":
            running = self.pending.pop(key, None)
            if running is not None and running.returns:
                self._add(listing, running, frame, (("return", _keep(arg, self.hidden_size, self.n_bits)),))
            elif running is not None:
                self._capture(frame, listing, running)
        return self.lines

    def _capture(self, frame: FrameType, listing: Listing, statement: Statement) -> None:
        values = []
        for target in statement.targets:
            code = self.compiled.get(target)
            if code is None:
                code = self.compiled[target] = compile(target, "<code view>", "eval")
            try:
                value = eval(code, frame.f_globals, frame.f_locals)  # (a target: a name, index or attribute)
            except Exception:  # e.g. a name a statement deleted: nothing to show
                continue
            if statement.allocates:
                values.append((target, Allocated(value.shape if isinstance(value, np.ndarray) else None)))
            else:
                values.append((target, _keep(value, self.hidden_size, self.n_bits)))
        if statement.loop_header:
            step = values[0][1] if values else None
            if self.last_header.get(id(frame)) == step:  # the loop's last test, which ends it
                return
            self.last_header[id(frame)] = step
        self._add(listing, statement, frame, tuple(values))

    def _add(self, listing: Listing, statement: Statement, frame: FrameType, values: tuple) -> None:
        step = frame.f_locals.get(LOOP_VARIABLE) if statement.in_loop or statement.loop_header else None
        self.executed.append(Executed(listing.function, statement.line, None if step is None else int(step),
                                      values))


def record(params: object, a: int, b: int, n_bits: int, unit_scale: np.ndarray | None = None,
           samples_seen: int = -1) -> CodeTrace:
    """Run the model's reference forward and backward on a + b (operands checked) under the line tracer."""
    a = task.check_operand(a, n_bits, "first operand")
    b = task.check_operand(b, n_bits, "second operand")
    model = models.of(params)
    listings = tuple(listing(model, name) for name in FUNCTIONS)
    codes = {getattr(model, name).__code__: found for name, found in zip(FUNCTIONS, listings, strict=True)}
    hidden_size = int(params.hidden_size)  # type: ignore[attr-defined]
    recorder = _Recorder(codes, hidden_size, n_bits)
    x, y = task.make_batch(np.array([a]), np.array([b]), n_bits, params.dtype)  # type: ignore[attr-defined]
    previous = sys.gettrace()
    sys.settrace(recorder.calls)
    try:
        _, cache = model.forward(params, x, unit_scale)
        model.backward(params, cache, y)
    finally:
        sys.settrace(previous)
    return CodeTrace(models.name_of(params), a, b, n_bits, hidden_size, listings, tuple(recorder.executed),
                     int(samples_seen))


# ---- the values as text --------------------------------------------------------------------------------------------
def number(value: float) -> str:
    """0.973, -1.204, 3.1e-05: three decimals, or three significant digits for small numbers."""
    if value == 0 or 1e-3 <= abs(value) < 1e4:
        return f"{value:.3f}"
    return f"{value:.2e}"


def vector(values: np.ndarray) -> str:
    """[0.973 -0.120 …] with at most MAX_VECTOR values."""
    values = np.ravel(values)
    if len(values) <= MAX_VECTOR:
        return "[" + " ".join(number(float(v)) for v in values) + "]"
    head = " ".join(number(float(v)) for v in values[: MAX_VECTOR - 4])
    tail = " ".join(number(float(v)) for v in values[-3:])
    return f"[{head} … {tail}]"


GATE_NAMES = ("i", "f", "g", "o")


def describe(value: object, step: int, hidden_size: int, n_bits: int, unit: int | None) -> str:
    """A kept value at step `step`: the unit's number(s) (unit None: every unit, as a vector)."""
    H, T = hidden_size, n_bits
    if isinstance(value, np.ndarray):
        if value.ndim == 0:
            return number(float(value))
        row = row_at(value, step, T)  # a whole sequence (T, 1, ·) or (T+1, 1, ·): the row of this step
        if row is None:
            return f"{value.shape}"
        if len(row) == 4 * H and len(row) > 1:
            if unit is None:
                return "  ".join(f"{name} {vector(row[k * H : (k + 1) * H])}" for k, name in enumerate(GATE_NAMES))
            return "  ".join(f"{name} {number(float(row[k * H + unit]))}" for k, name in enumerate(GATE_NAMES))
        if len(row) == H and unit is not None:
            return number(float(row[unit]))
        if len(row) <= 4 and np.all((row == 0) | (row == 1)):  # bits (x_t, y_t) are shown as bits
            return str(int(row[0])) if len(row) == 1 else "[" + " ".join(str(int(v)) for v in row) + "]"
        if len(row) == 1:
            return number(float(row[0]))
        return vector(row)
    if isinstance(value, Norm):
        return f"‖·‖ = {number(value.norm)}, {'×'.join(str(n) for n in value.shape)}"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return number(value)
    if isinstance(value, tuple):
        return ", ".join(describe(item, step, hidden_size, n_bits, unit) for item in value)
    return str(value)


def annotation(executed: Executed, statement: Statement, step: int, hidden_size: int, n_bits: int,
               unit: int | None) -> str:
    """The text beside a line: 'unit 12: 0.973', or 'h_prev 0.120 · c_prev 0.401' for several targets."""
    if statement.allocates:
        shapes = [str(value.shape) for _, value in executed.values
                  if isinstance(value, Allocated) and value.shape is not None]
        return "allocated " + (", ".join(shapes) if shapes else "(zeros, shaped like the weights)")
    if statement.loop_header:
        return f"{LOOP_VARIABLE} = {executed.step}"
    values = list(executed.values)
    if not values:
        return ""
    if statement.returns:
        return "returns " + describe(values[0][1], step, hidden_size, n_bits, unit)
    texts = [(target, describe(value, step, hidden_size, n_bits, unit)) for target, value in values]
    per_unit = unit is not None and any(per_unit_row(value, step, hidden_size, n_bits) for _, value in values)
    prefix = f"unit {unit}: " if per_unit else ""
    if len(texts) == 1:
        return prefix + texts[0][1]
    return prefix + " · ".join(f"{target} {text}" for target, text in texts)


def row_at(value: np.ndarray, step: int, n_bits: int) -> np.ndarray | None:
    """The values of one step: a sequence's row at `step` (None for a sequence of another length)."""
    if value.ndim == 3:
        if value.shape[0] == n_bits:
            return np.ravel(value[step])
        if value.shape[0] == n_bits + 1:
            return np.ravel(value[step + 1])
        return None
    return np.ravel(value)


def per_unit_row(value: object, step: int, hidden_size: int, n_bits: int) -> bool:
    """Whether describe shows this value per unit (a row of H, or of 4H gates)."""
    if not isinstance(value, np.ndarray):
        return False
    row = row_at(value, step, n_bits)
    return row is not None and value.ndim > 0 and len(row) in (hidden_size, 4 * hidden_size) and len(row) > 1
