"""A single-layer LSTM with a sigmoid output head, forward and backward (BPTT) by hand in NumPy.

Layout and gate order follow PyTorch's nn.LSTM (i, f, g, o), so a state_dict moves between the two.
Per step, for input x_t (B, I) and state h_{t-1}, c_{t-1} (B, H):

    z   = x_t W_ih^T + h_{t-1} W_hh^T + b          # (B, 4H), split into i, f, g, o
    i, f, o = sigmoid(z_i), sigmoid(z_f), sigmoid(z_o);  g = tanh(z_g)
    c_t = f * c_{t-1} + i * g
    h_t = o * tanh(c_t)
    p_t = sigmoid(h_t W_out^T + b_out)             # (B, O)

Loss is the mean binary cross-entropy over all T*B*O outputs (torch.nn.BCELoss's default).
The four gate matmuls are fused into one, and the input projection of all steps is a single matmul
before the time loop; the cache keeps pre- and post-activations so backward recomputes nothing.
References: Hochreiter & Schmidhuber 1997; Karpathy's batched LSTM gist; PyTorch nn.LSTM docs.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

import numpy as np

GATES = ("i", "f", "g", "o")
FIELDS = ("weight_ih", "weight_hh", "bias", "weight_out", "bias_out")
STATE_DICT_KEYS = (
    "lstm.weight_ih_l0",
    "lstm.weight_hh_l0",
    "lstm.bias_ih_l0",
    "lstm.bias_hh_l0",
    "head.weight",
    "head.bias",
)
INITS = ("seed", "pytorch")


@dataclass(eq=False)
class Params:
    """LSTM weights in PyTorch layout; all five arrays are views into one contiguous `flat` buffer."""

    weight_ih: np.ndarray  # (4H, I)
    weight_hh: np.ndarray  # (4H, H)
    bias: np.ndarray  # (4H,)  = PyTorch's bias_ih + bias_hh
    weight_out: np.ndarray  # (O, H)
    bias_out: np.ndarray  # (O,)
    flat: np.ndarray = dataclasses.field(init=False, repr=False)

    def __post_init__(self) -> None:
        arrays = [np.asarray(getattr(self, name)) for name in FIELDS]
        dtype = np.float32 if all(a.dtype == np.float32 for a in arrays) else np.float64
        packed = Params.from_flat(np.concatenate([a.ravel() for a in arrays]).astype(dtype), *_sizes(arrays))
        for name in FIELDS:
            setattr(self, name, getattr(packed, name))
        self.flat = packed.flat

    @classmethod
    def from_flat(cls, flat: np.ndarray, hidden_size: int, input_size: int, output_size: int) -> Params:
        """Views into flat (no copy), in FIELDS order."""
        H, I, O = hidden_size, input_size, output_size
        shapes = ((4 * H, I), (4 * H, H), (4 * H,), (O, H), (O,))
        params = cls.__new__(cls)
        offset = 0
        for name, shape in zip(FIELDS, shapes):
            size = shape[0] * shape[1] if len(shape) == 2 else shape[0]
            setattr(params, name, flat[offset : offset + size].reshape(shape))
            offset += size
        if offset != flat.size:
            raise ValueError(f"flat buffer has {flat.size} values, shapes need {offset}")
        params.flat = flat
        return params

    @property
    def hidden_size(self) -> int:
        return self.weight_hh.shape[1]

    @property
    def input_size(self) -> int:
        return self.weight_ih.shape[1]

    @property
    def output_size(self) -> int:
        return self.weight_out.shape[0]

    @property
    def dtype(self) -> np.dtype:
        return self.flat.dtype

    def arrays(self) -> Iterator[tuple[str, np.ndarray]]:
        for name in FIELDS:
            yield name, getattr(self, name)

    def zeros_like(self) -> Params:
        return Params.from_flat(np.zeros_like(self.flat), self.hidden_size, self.input_size, self.output_size)

    def copy(self) -> Params:
        return Params.from_flat(self.flat.copy(), self.hidden_size, self.input_size, self.output_size)

    def astype(self, dtype: type) -> Params:
        return Params.from_flat(self.flat.astype(dtype), self.hidden_size, self.input_size, self.output_size)

    def state_dict(self) -> dict[str, np.ndarray]:
        """Exactly the keys of torch's state_dict for `lstm = nn.LSTM(I, H)`, `head = nn.Linear(H, O)`."""
        return {
            "lstm.weight_ih_l0": self.weight_ih.copy(),
            "lstm.weight_hh_l0": self.weight_hh.copy(),
            "lstm.bias_ih_l0": self.bias.copy(),
            "lstm.bias_hh_l0": np.zeros_like(self.bias),
            "head.weight": self.weight_out.copy(),
            "head.bias": self.bias_out.copy(),
        }

    @classmethod
    def from_state_dict(cls, state: Mapping[str, np.ndarray]) -> Params:
        """Inverse of state_dict; bias = bias_ih + bias_hh. Raises ValueError on missing keys or bad shapes."""
        missing = [k for k in STATE_DICT_KEYS if k not in state]
        if missing:
            raise ValueError(f"missing weights: {', '.join(missing)}")
        arrays = {k: np.asarray(state[k]) for k in STATE_DICT_KEYS}
        for key, array in arrays.items():
            if array.dtype.kind != "f":
                raise ValueError(f"{key} must hold floating-point numbers, not {array.dtype}")
        w_ih, w_hh = arrays["lstm.weight_ih_l0"], arrays["lstm.weight_hh_l0"]
        w_out, b_out = arrays["head.weight"], arrays["head.bias"]
        if w_hh.ndim != 2 or w_hh.shape[0] != 4 * w_hh.shape[1] or w_hh.shape[1] == 0:
            raise ValueError(f"lstm.weight_hh_l0 must be (4H, H), got {w_hh.shape}")
        H = w_hh.shape[1]
        expected = {
            "lstm.weight_ih_l0": (4 * H, w_ih.shape[1] if w_ih.ndim == 2 else -1),
            "lstm.bias_ih_l0": (4 * H,),
            "lstm.bias_hh_l0": (4 * H,),
            "head.weight": (b_out.shape[0] if b_out.ndim == 1 else -1, H),
            "head.bias": (w_out.shape[0] if w_out.ndim == 2 else -1,),
        }
        for key, shape in expected.items():
            if arrays[key].shape != shape or -1 in shape or 0 in shape:
                raise ValueError(f"{key} has shape {arrays[key].shape}, expected {shape} for hidden size {H}")
        for key, array in arrays.items():
            if not np.all(np.isfinite(array)):
                raise ValueError(f"{key} contains NaN or infinite values")
        bias = arrays["lstm.bias_ih_l0"] + arrays["lstm.bias_hh_l0"]
        return cls(w_ih, w_hh, bias, w_out, b_out)


def _sizes(arrays: list[np.ndarray]) -> tuple[int, int, int]:
    w_ih, w_hh, bias, w_out, b_out = arrays
    H = w_hh.shape[1] if w_hh.ndim == 2 else 0
    if w_hh.shape != (4 * H, H) or w_ih.ndim != 2 or w_ih.shape[0] != 4 * H or bias.shape != (4 * H,):
        raise ValueError(f"inconsistent LSTM shapes: {w_ih.shape}, {w_hh.shape}, {bias.shape}")
    if w_out.ndim != 2 or w_out.shape[1] != H or b_out.shape != (w_out.shape[0],):
        raise ValueError(f"inconsistent head shapes: {w_out.shape}, {b_out.shape}")
    return H, w_ih.shape[1], w_out.shape[0]


def init_params(
    hidden_size: int,
    rng: np.random.Generator,
    input_size: int = 2,
    output_size: int = 1,
    init: str = "seed",
    forget_bias: float = 0.0,
    dtype: type = np.float64,
) -> Params:
    """`seed`: standard normal weights, zero biases (the original notebook). `pytorch`: U(-1/sqrt(H), 1/sqrt(H))."""
    H, I, O = hidden_size, input_size, output_size
    n = 4 * H * I + 4 * H * H + 4 * H + O * H + O
    if init == "seed":
        flat = rng.standard_normal(n)
        params = Params.from_flat(flat, H, I, O)
        params.bias[:] = 0.0
        params.bias_out[:] = 0.0
    elif init == "pytorch":
        bound = 1.0 / np.sqrt(H)
        flat = rng.uniform(-bound, bound, n)
        params = Params.from_flat(flat, H, I, O)
    else:
        raise ValueError(f"unknown init {init!r}: choose one of {', '.join(INITS)}")
    params.bias[H : 2 * H] += forget_bias
    return params.astype(dtype) if dtype != np.float64 else params


@dataclass(eq=False)
class Cache:
    """Everything forward computed, for backward and for the views. T steps, batch B, H units."""

    x: np.ndarray  # (T, B, I)
    scaled_pre: np.ndarray  # (T, B, 4H) z with the sigmoid gates' entries halved (what forward feeds to tanh)
    gates: np.ndarray  # (T, B, 4H) i, f, g, o after sigmoid/tanh
    cell: np.ndarray  # (T+1, B, H) cell[0] = c_0 = 0, cell[t+1] = c_t
    cell_tanh: np.ndarray  # (T, B, H) tanh(c_t)
    hidden: np.ndarray  # (T+1, B, H) hidden[0] = h_0 = 0, hidden[t+1] = h_t
    logits: np.ndarray  # (T, B, O)
    probs: np.ndarray  # (T, B, O)
    x_and_one: np.ndarray  # (T, B, I+1) the inputs with a constant 1 for the bias

    @property
    def gates_pre(self) -> np.ndarray:
        """(T, B, 4H) pre-activations z = W_ih x_t + W_hh h_{t-1} + b, before the nonlinearities."""
        scale, _ = _activation_constants(self.cell.shape[-1], self.gates.dtype.type)
        return self.scaled_pre / scale

    def gate(self, name: str) -> np.ndarray:
        """One gate's post-activation values (T, B, H)."""
        H = self.cell.shape[-1]
        k = GATES.index(name)
        return self.gates[:, :, k * H : (k + 1) * H]


class Workspace:
    """Scratch arrays reused by forward and backward when the shapes repeat, as in a training loop.

    At batch 256 allocating (and first touching) the half-dozen (T, B, 4H) arrays costs as much as computing them.
    A cache made with a workspace is only valid until the next forward with the same workspace.
    """

    def __init__(self) -> None:
        self._arrays: dict[str, np.ndarray] = {}

    def get(self, name: str, shape: tuple[int, ...], dtype: type) -> np.ndarray:
        array = self._arrays.get(name)
        if array is None or array.shape != shape or array.dtype != dtype:
            array = self._arrays[name] = np.empty(shape, dtype)
        return array


def _allocator(workspace: Workspace | None):
    if workspace is None:
        return lambda name, shape, dtype: np.empty(shape, dtype)
    return workspace.get


def forward(
    params: Params, x: np.ndarray, unit_scale: np.ndarray | None = None, workspace: Workspace | None = None
) -> tuple[np.ndarray, Cache]:
    """x (T, B, I) -> probs (T, B, O), cache. Zero initial h and c.

    unit_scale (H,), if given, multiplies c_t and h_t of each unit after every step: 0 knocks a unit out.
    It is for evaluation only; backward ignores it. workspace, if given, supplies reusable arrays.
    """
    empty = _allocator(workspace)
    dtype = params.dtype
    x = np.asarray(x, dtype=dtype)
    T, B, _ = x.shape
    H = params.hidden_size
    # sigmoid(z) = 0.5 + 0.5 tanh(z / 2), so one tanh over all four gates gives i, f, o and g = tanh(z) together
    # when the sigmoid gates' rows of the weights are halved first ("scaled" pre-activations u = scale * z).
    scale, shift = _activation_constants(H, dtype)
    I = x.shape[2]
    # The bias rides along as a constant input of 1: one matmul projects the inputs of all steps and adds b.
    x_and_one = empty("x_and_one", (T, B, I + 1), dtype)
    x_and_one[:, :, :I] = x
    x_and_one[:, :, I] = 1.0
    w_ih_t = np.concatenate((params.weight_ih.T, params.bias[None])) * scale  # (I + 1, 4H)
    w_hh_t = params.weight_hh.T * scale  # (H, 4H), contiguous: faster small matmuls
    scaled_pre = empty("scaled_pre", (T, B, 4 * H), dtype)
    np.matmul(x_and_one.reshape(T * B, I + 1), w_ih_t, out=scaled_pre.reshape(T * B, 4 * H))
    gates = empty("gates", (T, B, 4 * H), dtype)
    cell = empty("cell", (T + 1, B, H), dtype)
    cell_tanh = empty("cell_tanh", (T, B, H), dtype)
    hidden = empty("hidden", (T + 1, B, H), dtype)
    cell[0] = 0.0
    hidden[0] = 0.0
    # At batch size 1 a step costs its number of NumPy calls, not arithmetic: ten calls a step, views made once.
    i_t, f_t, g_t, o_t = (gates[:, :, k * H : (k + 1) * H] for k in range(4))
    for t in range(T):
        u, a, c = scaled_pre[t], gates[t], cell[t + 1]
        u += np.dot(hidden[t], w_hh_t)  # (B, 4H) all four gates in one matmul
        np.tanh(u, out=a)
        a *= scale
        a += shift  # a = [i, f, g, o]
        np.multiply(f_t[t], cell[t], out=c)  # f * c_{t-1}
        c += i_t[t] * g_t[t]  # + i * g
        if unit_scale is not None:
            c *= unit_scale
        np.tanh(c, out=cell_tanh[t])
        np.multiply(o_t[t], cell_tanh[t], out=hidden[t + 1])  # h = o * tanh(c)
        if unit_scale is not None:
            hidden[t + 1] *= unit_scale
    logits = np.matmul(hidden[1:], params.weight_out.T)  # (T, B, O)
    logits += params.bias_out
    probs = sigmoid(logits)
    return probs, Cache(x_and_one[:, :, :I], scaled_pre, gates, cell, cell_tanh, hidden, logits, probs, x_and_one)


@functools.lru_cache(maxsize=64)
def _activation_constants(hidden_size: int, dtype: type) -> tuple[np.ndarray, np.ndarray]:
    """(scale, shift) of 4H: 0.5 and 0.5 for the sigmoid gates i, f, o; 1 and 0 for the tanh gate g."""
    scale = np.full(4 * hidden_size, 0.5, dtype)
    shift = np.full(4 * hidden_size, 0.5, dtype)
    scale[2 * hidden_size : 3 * hidden_size] = 1.0
    shift[2 * hidden_size : 3 * hidden_size] = 0.0
    scale.flags.writeable = shift.flags.writeable = False
    return scale, shift


def sigmoid(z: np.ndarray) -> np.ndarray:
    out = np.multiply(z, 0.5)
    np.tanh(out, out=out)
    out *= 0.5
    out += 0.5
    return out


def bce_loss(probs: np.ndarray, y: np.ndarray) -> float:
    """Mean binary cross-entropy, each log clamped at -100 as torch.nn.BCELoss does."""
    p, target = probs.ravel(), y.ravel()
    log_p = np.log(np.maximum(p, _LOG_FLOOR))
    log_q = np.log(np.maximum(1.0 - p, _LOG_FLOOR))
    log_p -= log_q
    return -float(np.dot(target, log_p) + log_q.sum()) / p.size  # y log p + (1-y) log q = y (log p - log q) + log q


_LOG_FLOOR = float(np.exp(-100.0))  # log(max(p, e^-100)) == max(log p, -100), without a divide-by-zero warning


def bce_terms(probs: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Elementwise binary cross-entropy -(y log p + (1-y) log(1-p)), same shape as probs."""
    log_p = np.log(np.maximum(probs, _LOG_FLOOR))
    log_q = np.log(np.maximum(1.0 - probs, _LOG_FLOOR))
    log_q -= log_p
    log_q *= 1.0 - y
    log_q += log_p
    return np.negative(log_q, out=log_q)


def backward(
    params: Params,
    cache: Cache,
    y: np.ndarray,
    record: tuple[np.ndarray, np.ndarray] | None = None,
    workspace: Workspace | None = None,
) -> tuple[float, Params]:
    """BPTT for the mean BCE loss against targets y (T, B, O) -> (loss, grads as a Params).

    record, if given, is a pair of (T, B, H) arrays that receive dL/dh_t and dL/dc_t of every step.
    workspace, if given, supplies reusable arrays (the grads too: they are valid until the next backward).
    """
    empty = _allocator(workspace)
    dtype = params.dtype
    y = np.asarray(y, dtype=dtype)
    T, B, _ = cache.x.shape
    H = params.hidden_size
    loss = bce_loss(cache.probs, y)
    grads = Params.from_flat(empty("grads", params.flat.shape, dtype), H, params.input_size, params.output_size)

    # Head: sigmoid + BCE gives d loss / d logit = (p - y) / N.
    d_logits = cache.probs - y  # (T, B, O)
    d_logits *= 1.0 / y.size
    hidden = cache.hidden[1:]  # (T, B, H)
    np.matmul(d_logits.reshape(-1, d_logits.shape[-1]).T, hidden.reshape(-1, H), out=grads.weight_out)
    np.sum(d_logits, axis=(0, 1), out=grads.bias_out)
    d_hidden_from_head = d_logits @ params.weight_out  # (T, B, H)

    # Everything that does not depend on the recursion, for all steps at once, from the cached activations.
    gates = cache.gates
    i, f, g, o = (gates[:, :, k * H : (k + 1) * H] for k in range(4))
    # partners[t, :, k] is what d c_t (d h_t for o) multiplies to give d z of gate k, the local derivative included:
    partners = empty("partners", (T, B, 4, H), dtype)
    d_i, d_f, d_g, d_o = (partners[:, :, k] for k in range(4))
    np.subtract(1.0, i, out=d_i)
    d_i *= i
    d_i *= g  # d z_i = d c * g * i (1 - i)
    np.subtract(1.0, f, out=d_f)
    d_f *= f
    d_f *= cache.cell[:-1]  # d z_f = d c * c_{t-1} * f (1 - f)
    np.multiply(g, g, out=d_g)
    np.subtract(1.0, d_g, out=d_g)
    d_g *= i  # d z_g = d c * i * (1 - g^2)
    np.subtract(1.0, o, out=d_o)
    d_o *= o
    d_o *= cache.cell_tanh  # d z_o = d h * tanh(c_t) * o (1 - o)
    d_c_from_h = np.multiply(cache.cell_tanh, cache.cell_tanh, out=empty("d_c_from_h", (T, B, H), dtype))
    np.subtract(1.0, d_c_from_h, out=d_c_from_h)
    d_c_from_h *= o  # h = o tanh(c): d h / d c = o (1 - tanh(c)^2)

    d_z = empty("d_z", (T, B, 4, H), dtype)
    d_h_next = np.zeros((B, H), dtype)
    d_c_next = np.zeros((B, H), dtype)
    w_hh = params.weight_hh  # (4H, H)
    for t in reversed(range(T)):
        d_h = d_hidden_from_head[t] + d_h_next  # from the head and from step t+1
        d_c = d_h * d_c_from_h[t]  # through h_t = o * tanh(c_t) ...
        d_c += d_c_next  # ... and from c_{t+1} = f c_t + ...
        if record is not None:
            record[0][t], record[1][t] = d_h, d_c
        d_z_now = d_z[t]
        np.multiply(partners[t, :, :3], d_c[:, None, :], out=d_z_now[:, :3])  # d z of i, f, g
        np.multiply(partners[t, :, 3], d_h, out=d_z_now[:, 3])  # d z of o
        d_h_next = np.dot(d_z_now.reshape(B, 4 * H), w_hh)  # (B, H)
        d_c_next = d_c * f[t]  # c_{t-1} reaches c_t through f

    flat_d_z = d_z.reshape(-1, 4 * H)
    I = params.input_size
    d_w_ih_and_bias = empty("d_w_ih_and_bias", (4 * H, I + 1), dtype)  # one matmul for W_ih and b
    np.matmul(flat_d_z.T, cache.x_and_one.reshape(-1, I + 1), out=d_w_ih_and_bias)
    grads.weight_ih[:] = d_w_ih_and_bias[:, :I]
    grads.bias[:] = d_w_ih_and_bias[:, I]
    if T > 1:
        np.matmul(flat_d_z[B:].T, cache.hidden[1:-1].reshape(-1, H), out=grads.weight_hh)
    else:
        grads.weight_hh[:] = 0.0  # one step: h_0 = 0, nothing flows through W_hh
    return loss, grads


def state_grads(params: Params, cache: Cache, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per step t: dL/dh_t and dL/dc_t (T, B, H) exactly as backward propagates them, and the loss per step (T, B)."""
    T, B, _ = cache.x.shape
    d_hidden = np.empty((T, B, params.hidden_size), params.dtype)
    d_cell = np.empty_like(d_hidden)
    backward(params, cache, y, record=(d_hidden, d_cell))
    step_loss = bce_terms(cache.probs, np.asarray(y, dtype=params.dtype)).mean(axis=-1)
    return d_hidden, d_cell, step_loss


def resize_hidden(params: Params, hidden_size: int, fill: np.ndarray | None = None) -> Params:
    """A copy with hidden_size units: units 0..min(H, H')-1 keep their weights, new entries come from fill.

    fill is a flat array of the new Params' size (default zeros) whose values are used where nothing old maps;
    pass small random numbers for weights, zeros for optimizer state.
    """
    old_h, new_h = params.hidden_size, hidden_size
    I, O = params.input_size, params.output_size
    flat = np.zeros(4 * new_h * (I + new_h + 1) + O * (new_h + 1), params.dtype) if fill is None else fill
    new = Params.from_flat(flat.astype(params.dtype, copy=True), new_h, I, O)
    keep = min(old_h, new_h)
    for k in range(4):  # each gate block keeps its first `keep` rows
        old_rows = slice(k * old_h, k * old_h + keep)
        new_rows = slice(k * new_h, k * new_h + keep)
        new.weight_ih[new_rows] = params.weight_ih[old_rows]
        new.weight_hh[new_rows, :keep] = params.weight_hh[old_rows, :keep]
        new.bias[new_rows] = params.bias[old_rows]
    new.weight_out[:, :keep] = params.weight_out[:, :keep]
    new.bias_out[:] = params.bias_out
    return new
