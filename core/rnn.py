"""A plain RNN with a sigmoid output head, forward and backward (BPTT) by hand in NumPy: the baseline.

In PyTorch's nn.RNN layout so a state_dict moves between the two. Per step, for input x_t (B, I) and state
h_{t-1} (B, H):

    z_t = x_t W_ih^T + h_{t-1} W_hh^T + b           # (B, H)
    h_t = tanh(z_t)      (params.activation "tanh", nn.RNN's)  or  sigmoid(z_t)  ("sigmoid")
    p_t = sigmoid(h_t W_out^T + b_out)              # (B, O)

It has the same module interface as core.lstm (Params, init_params, forward, backward, state_grads,
resize_hidden), so a Trainer trains either. There are no gates and no cell: the only memory is h itself,
which is why the carry has to survive a squashing function and a matmul at every step.
Loss, as the LSTM's (params.loss): binary cross-entropy or half the squared error, summed over the T bits (and O
outputs), averaged over the B additions. With params.use_bias False the biases stay at zero (no gradient reaches
them), as nn.RNN(bias=False) and nn.Linear(bias=False).
The classic "binary addition with a recurrent net" tutorial (Trask, 2015) is this model with sigmoid units, no
biases, U(-1, 1) weights and the squared error: its delta (y - p) p (1 - p), summed over the bits, lr 0.1.
This module is both the readable reference and the NumPy path the trainer runs: an RNN step is two calls.
References: Elman 1990; PyTorch nn.RNN docs.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from core import lstm
from core.lstm import FIELDS, INITS, LOSSES, head_delta, loss_terms, loss_value, sigmoid

ACTIVATIONS = ("tanh", "sigmoid")
GATES: tuple[str, ...] = ()  # no gates: views that show gates hide themselves for this model
STATE_DICT_KEYS = (
    "rnn.weight_ih_l0",
    "rnn.weight_hh_l0",
    "rnn.bias_ih_l0",
    "rnn.bias_hh_l0",
    "head.weight",
    "head.bias",
)
# Which Params field each state_dict key holds; torch's two biases are our one bias, so bias_hh is saved as zeros.
_KEY_FIELDS: dict[str, str | None] = dict(
    zip(STATE_DICT_KEYS, ("weight_ih", "weight_hh", "bias", None, "weight_out", "bias_out"), strict=True)
)


def _shapes(hidden_size: int, input_size: int, output_size: int) -> tuple[tuple[int, ...], ...]:
    """Array shapes in FIELDS order."""
    H, I, O = hidden_size, input_size, output_size
    return (H, I), (H, H), (H,), (O, H), (O,)


def _flat_size(hidden_size: int, input_size: int, output_size: int) -> int:
    return sum(math.prod(shape) for shape in _shapes(hidden_size, input_size, output_size))


@dataclass(eq=False)
class Params:
    """RNN weights in PyTorch layout; all five arrays are views into one contiguous `flat` buffer."""

    weight_ih: np.ndarray  # (H, I)
    weight_hh: np.ndarray  # (H, H)
    bias: np.ndarray  # (H,)  = PyTorch's bias_ih + bias_hh
    weight_out: np.ndarray  # (O, H)
    bias_out: np.ndarray  # (O,)
    loss: str = "bce"  # the loss backward differentiates: one of LOSSES
    activation: str = "tanh"  # the hidden units' squashing function: one of ACTIVATIONS
    use_bias: bool = True  # False: the biases get no gradient (init_params leaves them at zero)
    flat: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        check_options(self.loss, self.activation, self.use_bias)
        arrays = [np.asarray(getattr(self, name)) for name in FIELDS]
        w_ih, w_hh, _, w_out, _ = arrays
        matrices_ok = w_ih.ndim == w_hh.ndim == w_out.ndim == 2
        sizes = (w_hh.shape[0], w_ih.shape[1], w_out.shape[0]) if matrices_ok else (0, 0, 0)
        found = tuple(a.shape for a in arrays)
        if found != _shapes(*sizes) or 0 in sizes:
            raise ValueError(f"inconsistent RNN shapes {found}: expected (H, I), (H, H), (H,), (O, H), (O,)")
        dtype = np.float32 if all(a.dtype == np.float32 for a in arrays) else np.float64
        self._bind(np.concatenate([a.ravel() for a in arrays]).astype(dtype), *sizes)

    def _bind(self, flat: np.ndarray, hidden_size: int, input_size: int, output_size: int) -> None:
        """Point every field at its slice of flat (views, no copy)."""
        shapes = _shapes(hidden_size, input_size, output_size)
        ends = np.cumsum([math.prod(shape) for shape in shapes])
        if ends[-1] != flat.size:
            raise ValueError(f"flat buffer has {flat.size} values, shapes need {ends[-1]}")
        for name, shape, piece in zip(FIELDS, shapes, np.split(flat, ends[:-1]), strict=True):
            setattr(self, name, piece.reshape(shape))
        self.flat = flat

    @classmethod
    def from_flat(cls, flat: np.ndarray, hidden_size: int, input_size: int, output_size: int) -> Params:
        """Views into flat (no copy), in FIELDS order."""
        params = cls.__new__(cls)
        params._bind(flat, hidden_size, input_size, output_size)
        return params

    # Same field names as the LSTM's Params, and weight_hh is (., H) in both: its size readers serve here as they are.
    hidden_size = lstm.Params.hidden_size
    input_size = lstm.Params.input_size
    output_size = lstm.Params.output_size
    dtype = lstm.Params.dtype
    arrays = lstm.Params.arrays

    def with_flat(self, flat: np.ndarray) -> Params:
        """Params of the same sizes and options over another buffer (views, no copy)."""
        params = Params.from_flat(flat, self.hidden_size, self.input_size, self.output_size)
        params.loss, params.activation, params.use_bias = self.loss, self.activation, self.use_bias
        return params

    def zeros_like(self) -> Params:
        return self.with_flat(np.zeros_like(self.flat))

    def copy(self) -> Params:
        return self.with_flat(self.flat.copy())

    def astype(self, dtype: type) -> Params:
        return self.with_flat(self.flat.astype(dtype))

    def state_dict(self) -> dict[str, np.ndarray]:
        """Exactly the keys of torch's state_dict for `rnn = nn.RNN(I, H)`, `head = nn.Linear(H, O)`."""
        return {key: np.zeros_like(self.bias) if name is None else getattr(self, name).copy()
                for key, name in _KEY_FIELDS.items()}

    @classmethod
    def from_state_dict(cls, state: Mapping[str, np.ndarray]) -> Params:
        """Inverse of state_dict; bias = bias_ih + bias_hh. Raises ValueError on missing keys or bad shapes."""
        missing = [key for key in STATE_DICT_KEYS if key not in state]
        if missing:
            raise ValueError(f"missing weights: {', '.join(missing)}")
        arrays = {key: np.asarray(state[key]) for key in STATE_DICT_KEYS}
        not_float = [f"{key} ({array.dtype})" for key, array in arrays.items() if array.dtype.kind != "f"]
        if not_float:
            raise ValueError(f"weights must hold floating-point numbers: {', '.join(not_float)}")
        w_ih, w_hh, w_out = arrays["rnn.weight_ih_l0"], arrays["rnn.weight_hh_l0"], arrays["head.weight"]
        if w_hh.ndim != 2 or w_hh.shape[0] != w_hh.shape[1] or w_hh.shape[0] == 0:
            raise ValueError(f"rnn.weight_hh_l0 must be (H, H), got {w_hh.shape}")
        H = w_hh.shape[0]
        I = w_ih.shape[1] if w_ih.ndim == 2 else 0
        O = w_out.shape[0] if w_out.ndim == 2 else 0
        field_shapes = dict(zip(FIELDS, _shapes(H, I, O), strict=True))
        for key, name in _KEY_FIELDS.items():
            expected = field_shapes[name or "bias"]
            if arrays[key].shape != expected or 0 in expected:
                raise ValueError(f"{key} has shape {arrays[key].shape}, expected {expected} for hidden size {H}")
        bad = [key for key, array in arrays.items() if not np.all(np.isfinite(array))]
        if bad:
            raise ValueError(f"{', '.join(bad)} contain(s) NaN or infinite values")
        bias = arrays["rnn.bias_ih_l0"] + arrays["rnn.bias_hh_l0"]
        return cls(w_ih, w_hh, bias, w_out, arrays["head.bias"])


def check_options(loss: str, activation: str, use_bias: bool) -> None:
    """Raise ValueError for an unknown loss or activation, or a use_bias that is not a bool."""
    if loss not in LOSSES:
        raise ValueError(f"unknown loss {loss!r}: choose one of {', '.join(LOSSES)}")
    if activation not in ACTIVATIONS:
        raise ValueError(f"unknown activation {activation!r}: choose one of {', '.join(ACTIVATIONS)}")
    if not isinstance(use_bias, (bool, np.bool_)):
        raise ValueError(f"use_bias must be True or False, got {use_bias!r}")


def init_params(
    hidden_size: int,
    rng: np.random.Generator,
    input_size: int = 2,
    output_size: int = 1,
    init: str = "seed",
    forget_bias: float = 0.0,
    dtype: type = np.float64,
    loss: str = "bce",
    activation: str = "tanh",
    use_bias: bool = True,
) -> Params:
    """`seed`: standard normal weights, zero biases (as the LSTM's notebook init). `pytorch`: U(-1/sqrt(H), 1/sqrt(H)).
    `uniform`: U(-1, 1) (the tutorial's weights). Without use_bias both biases are zero whatever the init.

    forget_bias is accepted for a common signature with core.lstm and ignored: there is no forget gate.
    """
    if init not in INITS:
        raise ValueError(f"unknown init {init!r}: choose one of {', '.join(INITS)}")
    check_options(loss, activation, use_bias)
    size = _flat_size(hidden_size, input_size, output_size)
    if init == "seed":
        flat = rng.standard_normal(size)
    else:
        bound = 1.0 / math.sqrt(hidden_size) if init == "pytorch" else 1.0
        flat = rng.uniform(-bound, bound, size)
    params = Params.from_flat(flat.astype(dtype, copy=False), hidden_size, input_size, output_size)
    params.loss, params.activation, params.use_bias = loss, activation, bool(use_bias)
    if init == "seed" or not use_bias:
        params.bias[:] = 0.0
        params.bias_out[:] = 0.0
    return params


def _sigmoid_into(z: np.ndarray, out: np.ndarray) -> np.ndarray:
    """out = sigmoid(z) = (1 + tanh(z / 2)) / 2, as core.lstm.sigmoid, without temporaries."""
    np.multiply(z, 0.5, out=out)
    np.tanh(out, out=out)
    out *= 0.5
    out += 0.5
    return out


SQUASH = {"tanh": np.tanh, "sigmoid": _sigmoid_into}  # activation -> f(z, out=...)


@dataclass(eq=False)
class Cache:
    """Everything forward computed, for backward and for the views. T steps, batch B, H units."""

    x: np.ndarray  # (T, B, I)
    hidden_pre: np.ndarray  # (T, B, H) z_t before the tanh
    hidden: np.ndarray  # (T+1, B, H) hidden[0] = h_0 = 0, hidden[t+1] = h_t
    logits: np.ndarray  # (T, B, O)
    probs: np.ndarray  # (T, B, O)


def forward(
    params: Params, x: np.ndarray, unit_scale: np.ndarray | None = None, workspace: object = None
) -> tuple[np.ndarray, Cache]:
    """x (T, B, I) -> probs (T, B, O), cache. Zero initial h.

    unit_scale (H,), if given, multiplies h_t of each unit after every step: 0 knocks a unit out.
    It is for evaluation only; backward ignores it. workspace is accepted for the common interface and unused:
    the RNN allocates little.
    """
    dtype = params.dtype
    x = np.asarray(x, dtype=dtype)
    T, B, _ = x.shape
    hidden_pre = np.matmul(x, params.weight_ih.T)  # (T, B, H) input projection of all steps at once
    hidden_pre += params.bias
    hidden = np.zeros((T + 1, B, params.hidden_size), dtype)
    w_hh_t = params.weight_hh.T  # (H, H)
    squash = SQUASH[params.activation]
    z_t, h_t = list(hidden_pre), list(hidden)  # per-step views made once: NumPy calls are the cost at B = 1
    for t in range(T):
        z_t[t] += h_t[t] @ w_hh_t  # z = x W_ih^T + b + h_{t-1} W_hh^T
        squash(z_t[t], out=h_t[t + 1])  # h = tanh(z) or sigmoid(z)
        if unit_scale is not None:
            h_t[t + 1] *= unit_scale
    logits = np.matmul(hidden[1:], params.weight_out.T)  # (T, B, O)
    logits += params.bias_out
    probs = sigmoid(logits)
    return probs, Cache(x, hidden_pre, hidden, logits, probs)


def backward(
    params: Params,
    cache: Cache,
    y: np.ndarray,
    record: tuple[np.ndarray, np.ndarray] | None = None,
    workspace: object = None,
) -> tuple[float, Params]:
    """BPTT for params.loss (summed over bits, averaged over the batch) against y (T, B, O) -> (loss, grads).

    record, if given, is a pair of (T, B, H) arrays; both receive dL/dh_t of every step. (The LSTM's second
    array receives dL/dc_t, the gradient reaching its memory; the RNN's only memory is h, so it gets dL/dh_t.)
    """
    y = np.asarray(y, dtype=params.dtype)
    H = params.hidden_size
    grads = params.zeros_like()
    hidden = cache.hidden[1:]  # (T, B, H) h_1 .. h_T

    d_logits = head_delta(cache.probs, y, params.loss)  # d loss / d logit, (T, B, O): p - y for BCE
    d_logits /= y.shape[1]  # averaged over the batch
    grads.weight_out[:] = np.tensordot(d_logits, hidden, axes=([0, 1], [0, 1]))  # (O, H)
    grads.bias_out[:] = d_logits.sum(axis=(0, 1))
    d_hidden_from_head = np.matmul(d_logits, params.weight_out)  # (T, B, H)
    # The activation's derivative from its output, every step at once: tanh' = 1 - h^2, sigmoid' = h (1 - h).
    d_squash = 1.0 - np.square(hidden) if params.activation == "tanh" else hidden * (1.0 - hidden)

    d_pre = np.empty_like(hidden)  # (T, B, H) d loss / d z_t
    d_h_next = np.zeros_like(hidden[0])  # (B, H) what h_t receives from step t+1
    w_hh = params.weight_hh  # (H, H)
    head_t, d_squash_t, d_pre_t = list(d_hidden_from_head), list(d_squash), list(d_pre)
    for t in reversed(range(len(head_t))):
        d_h = head_t[t] + d_h_next  # from the head and from step t+1
        if record is not None:
            record[0][t] = record[1][t] = d_h
        np.multiply(d_h, d_squash_t[t], out=d_pre_t[t])  # back through the activation
        d_h_next = d_pre_t[t] @ w_hh  # z_t = ... + h_{t-1} W_hh^T

    flat_d_pre = d_pre.reshape(-1, H)
    np.matmul(flat_d_pre.T, cache.x.reshape(-1, cache.x.shape[-1]), out=grads.weight_ih)
    np.matmul(d_pre[1:].reshape(-1, H).T, cache.hidden[1:-1].reshape(-1, H), out=grads.weight_hh)
    np.sum(flat_d_pre, axis=0, out=grads.bias)
    if not params.use_bias:  # the biases are not parameters of this model
        grads.bias[:] = 0.0
        grads.bias_out[:] = 0.0
    return loss_value(cache.probs, y, params.loss), grads


def state_grads(params: Params, cache: Cache, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per step t: dL/dh_t twice (T, B, H) (in the places of the LSTM's dL/dh_t and dL/dc_t), and the loss per
    step (T, B)."""
    d_hidden = np.empty_like(cache.hidden[1:])
    backward(params, cache, y, record=(d_hidden, d_hidden))
    step_loss = loss_terms(cache.probs, np.asarray(y, dtype=params.dtype), params.loss).sum(axis=-1)
    return d_hidden, d_hidden.copy(), step_loss


def resize_hidden(params: Params, hidden_size: int, fill: np.ndarray | None = None) -> Params:
    """A copy with hidden_size units: units 0..min(H, H')-1 keep their weights, new entries come from fill.

    fill is a flat array of the new Params' size (default zeros) whose values are used where nothing old maps;
    pass small random numbers for weights, zeros for optimizer state.
    """
    I, O = params.input_size, params.output_size
    flat = np.zeros(_flat_size(hidden_size, I, O), params.dtype) if fill is None else np.array(fill, dtype=params.dtype)
    new = Params.from_flat(flat, hidden_size, I, O)
    new.loss, new.activation, new.use_bias = params.loss, params.activation, params.use_bias
    keep = min(params.hidden_size, hidden_size)
    new.weight_ih[:keep] = params.weight_ih[:keep]
    new.weight_hh[:keep, :keep] = params.weight_hh[:keep, :keep]
    new.bias[:keep] = params.bias[:keep]
    new.weight_out[:, :keep] = params.weight_out[:, :keep]
    new.bias_out[:] = params.bias_out
    if not new.use_bias:  # new units get no bias either
        new.bias[:] = 0.0
    return new
