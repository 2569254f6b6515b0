"""A single-layer LSTM with a sigmoid output head: forward and backward (BPTT) by hand, written to be read.

This is the reference: the fast paths (core.lstm_fast in NumPy, core.kernels compiled) are tested equal to it.
Layout and gate order follow PyTorch's nn.LSTM (i, f, g, o), so a state_dict moves between the two.
Per step t, for the input bits x_t (B, I) and the state h_{t-1}, c_{t-1} (B, H) of B additions at once:

    z   = x_t W_ih^T + h_{t-1} W_hh^T + b          # (B, 4H), split into i, f, g, o
    i, f, o = sigmoid(z_i), sigmoid(z_f), sigmoid(z_o)
    g   = tanh(z_g)                                 # the candidate values to write
    c_t = f * c_{t-1} + i * g                       # keep some of the old cell, write some of the new
    h_t = o * tanh(c_t)                             # show some of the cell
    p_t = sigmoid(h_t W_out^T + b_out)              # (B, O) p(sum bit t = 1)

Loss (params.loss): binary cross-entropy ("bce", the default) or half the squared error ("squared"), summed over
the T bit positions (and the O outputs), averaged over the B additions —
torch.nn.BCELoss(reduction="sum")(p, y) / B, or 0.5 * torch.nn.MSELoss(reduction="sum")(p, y) / B.
Summing over the bits is what the original notebook's update does (each bit adds its own correction), so "learning
rate 0.1" means what it meant there. Through the sigmoid, BCE gives the head the delta p - y; the squared error gives
(p - y) p (1 - p), the delta of the notebook and of the classic binary-addition RNN tutorial.
h_0 = c_0 = 0. The cache keeps every gate before and after its squashing function, so backward recomputes nothing.
References: Hochreiter & Schmidhuber 1997; Karpathy's min-char-rnn and batched-LSTM gists; PyTorch nn.LSTM docs.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

import numpy as np

GATES = ("i", "f", "g", "o")  # PyTorch's order of the four blocks of rows in weight_ih, weight_hh and bias
FIELDS = ("weight_ih", "weight_hh", "bias", "weight_out", "bias_out")
STATE_DICT_KEYS = (
    "lstm.weight_ih_l0",
    "lstm.weight_hh_l0",
    "lstm.bias_ih_l0",
    "lstm.bias_hh_l0",
    "head.weight",
    "head.bias",
)
INITS = ("seed", "pytorch", "uniform")
LOSSES = ("bce", "squared")


# ---- the weights -------------------------------------------------------------------------------------------------
@dataclass(eq=False)
class Params:
    """LSTM weights in PyTorch layout; all five arrays are views into one contiguous `flat` buffer."""

    weight_ih: np.ndarray  # (4H, I)
    weight_hh: np.ndarray  # (4H, H)
    bias: np.ndarray  # (4H,)  = PyTorch's bias_ih + bias_hh
    weight_out: np.ndarray  # (O, H)
    bias_out: np.ndarray  # (O,)
    loss: str = "bce"  # the loss backward differentiates: one of LOSSES
    flat: np.ndarray = dataclasses.field(init=False, repr=False)

    def __post_init__(self) -> None:
        if self.loss not in LOSSES:
            raise ValueError(f"unknown loss {self.loss!r}: choose one of {', '.join(LOSSES)}")
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

    def with_flat(self, flat: np.ndarray) -> Params:
        """Params of the same sizes and loss over another buffer (views, no copy)."""
        params = Params.from_flat(flat, self.hidden_size, self.input_size, self.output_size)
        params.loss = self.loss
        return params

    def zeros_like(self) -> Params:
        return self.with_flat(np.zeros_like(self.flat))

    def copy(self) -> Params:
        return self.with_flat(self.flat.copy())

    def astype(self, dtype: type) -> Params:
        return self.with_flat(self.flat.astype(dtype))

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
    loss: str = "bce",
) -> Params:
    """`seed`: standard normal weights, zero biases (the original notebook). `pytorch`: U(-1/sqrt(H), 1/sqrt(H)).
    `uniform`: U(-1, 1), biases too (the classic RNN tutorial's weights). loss: what backward will differentiate."""
    H, I, O = hidden_size, input_size, output_size
    n = 4 * H * I + 4 * H * H + 4 * H + O * H + O
    if init == "seed":
        params = Params.from_flat(rng.standard_normal(n), H, I, O)
        params.bias[:] = 0.0
        params.bias_out[:] = 0.0
    elif init in ("pytorch", "uniform"):
        bound = 1.0 / np.sqrt(H) if init == "pytorch" else 1.0
        params = Params.from_flat(rng.uniform(-bound, bound, n), H, I, O)
    else:
        raise ValueError(f"unknown init {init!r}: choose one of {', '.join(INITS)}")
    if loss not in LOSSES:
        raise ValueError(f"unknown loss {loss!r}: choose one of {', '.join(LOSSES)}")
    params.loss = loss
    params.bias[H : 2 * H] += forget_bias  # the forget gate's rows
    return params.astype(dtype) if dtype != np.float64 else params


def resize_hidden(params: Params, hidden_size: int, fill: np.ndarray | None = None) -> Params:
    """A copy with hidden_size units: units 0..min(H, H')-1 keep their weights, new entries come from fill.

    fill is a flat array of the new Params' size (default zeros) whose values are used where nothing old maps;
    pass small random numbers for weights, zeros for optimizer state.
    """
    old_h, new_h = params.hidden_size, hidden_size
    I, O = params.input_size, params.output_size
    flat = np.zeros(4 * new_h * (I + new_h + 1) + O * (new_h + 1), params.dtype) if fill is None else fill
    new = Params.from_flat(flat.astype(params.dtype, copy=True), new_h, I, O)
    new.loss = params.loss
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


# ---- forward -----------------------------------------------------------------------------------------------------
@dataclass(eq=False)
class Cache:
    """Everything forward computed, step by step, for backward and for the views. T steps, B additions, H units."""

    x: np.ndarray  # (T, B, I) the input bits
    gates_pre: np.ndarray  # (T, B, 4H) z: i, f, g, o before their squashing functions
    gates: np.ndarray  # (T, B, 4H) i, f, g, o after them
    cell: np.ndarray  # (T+1, B, H) cell[0] = c_0 = 0, cell[t+1] = c_t
    cell_tanh: np.ndarray  # (T, B, H) tanh(c_t)
    hidden: np.ndarray  # (T+1, B, H) hidden[0] = h_0 = 0, hidden[t+1] = h_t
    logits: np.ndarray  # (T, B, O) the head's outputs before the sigmoid
    probs: np.ndarray  # (T, B, O) p(sum bit = 1)

    @property
    def hidden_size(self) -> int:
        return self.cell.shape[2]

    def gate(self, name: str) -> np.ndarray:
        """One gate's values after its squashing function, (T, B, H): name is one of i, f, g, o."""
        H, k = self.hidden_size, GATES.index(name)
        return self.gates[:, :, k * H : (k + 1) * H]


def sigmoid(z: np.ndarray) -> np.ndarray:
    """1 / (1 + exp(-z)), written through tanh so that no z overflows."""
    return 0.5 * np.tanh(0.5 * z) + 0.5


def forward(params: Params, x: np.ndarray, unit_scale: np.ndarray | None = None) -> tuple[np.ndarray, Cache]:
    """x (T, B, I) -> probs (T, B, O), cache. Zero initial h and c.

    unit_scale (H,), if given, multiplies c_t and h_t of each unit after every step (0 knocks a unit out): for
    evaluation only, backward ignores it.
    """
    x = np.asarray(x, dtype=params.dtype)
    T, B, _ = x.shape
    H = params.hidden_size
    gates_pre = np.empty((T, B, 4 * H), params.dtype)
    gates = np.empty_like(gates_pre)
    cell = np.zeros((T + 1, B, H), params.dtype)
    hidden = np.zeros((T + 1, B, H), params.dtype)
    cell_tanh = np.empty((T, B, H), params.dtype)
    for t in range(T):
        h_prev, c_prev = hidden[t], cell[t]
        z = x[t] @ params.weight_ih.T + h_prev @ params.weight_hh.T + params.bias  # (B, 4H)
        i = sigmoid(z[:, 0 * H : 1 * H])  # input gate: how much of g to write
        f = sigmoid(z[:, 1 * H : 2 * H])  # forget gate: how much of c_{t-1} to keep
        g = np.tanh(z[:, 2 * H : 3 * H])  # candidate values
        o = sigmoid(z[:, 3 * H : 4 * H])  # output gate: how much of the cell to show
        c = f * c_prev + i * g
        if unit_scale is not None:
            c = c * unit_scale
        h = o * np.tanh(c)
        if unit_scale is not None:
            h = h * unit_scale
        gates_pre[t], gates[t] = z, np.concatenate([i, f, g, o], axis=1)
        cell[t + 1], cell_tanh[t], hidden[t + 1] = c, np.tanh(c), h
    logits = hidden[1:] @ params.weight_out.T + params.bias_out  # (T, B, O)
    probs = sigmoid(logits)
    return probs, Cache(x, gates_pre, gates, cell, cell_tanh, hidden, logits, probs)


# ---- loss --------------------------------------------------------------------------------------------------------
def bce_terms(probs: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Elementwise binary cross-entropy -(y log p + (1-y) log(1-p)), each log clamped at -100 as torch does."""
    with np.errstate(divide="ignore"):  # log(0) = -inf, clamped just below
        log_p = np.maximum(np.log(probs), -100.0)
        log_q = np.maximum(np.log(1.0 - probs), -100.0)
    return -(y * log_p + (1.0 - y) * log_q)


def squared_terms(probs: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Elementwise half squared error (p - y)^2 / 2."""
    return 0.5 * (probs - y) ** 2


def loss_terms(probs: np.ndarray, y: np.ndarray, loss: str = "bce") -> np.ndarray:
    """Elementwise loss of each output value, (T, B, O)."""
    return {"bce": bce_terms, "squared": squared_terms}[loss](probs, y)


def loss_value(probs: np.ndarray, y: np.ndarray, loss: str = "bce") -> float:
    """Loss per addition: summed over bits (T) and outputs (O), averaged over the batch (axis 1 of (T, B, O))."""
    return float(loss_terms(probs, y, loss).sum()) / probs.shape[1]


def bce_loss(probs: np.ndarray, y: np.ndarray) -> float:
    """loss_value with the cross-entropy: torch.nn.BCELoss(reduction="sum")(p, y) / B."""
    return loss_value(probs, y, "bce")


def head_delta(probs: np.ndarray, y: np.ndarray, loss: str = "bce") -> np.ndarray:
    """d loss / d logit of each output value, through the head's sigmoid (p' = p (1 - p))."""
    if loss == "squared":
        return (probs - y) * probs * (1.0 - probs)  # d/dz of (p - y)^2 / 2: the tutorial's delta, sign flipped
    return probs - y  # d/dz of BCE: the sigmoid's p (1 - p) cancels


# ---- backward ----------------------------------------------------------------------------------------------------
def backward(
    params: Params, cache: Cache, y: np.ndarray, record: tuple[np.ndarray, np.ndarray] | None = None
) -> tuple[float, Params]:
    """Backpropagation through time for params.loss against targets y (T, B, O) -> (loss, grads as a Params).

    record, if given, is a pair of (T, B, H) arrays that receive dL/dh_t and dL/dc_t of every step.
    """
    y = np.asarray(y, dtype=params.dtype)
    T, B, _ = cache.x.shape
    H = params.hidden_size
    grads = params.zeros_like()
    d_logits = head_delta(cache.probs, y, params.loss) / B  # (T, B, O): summed over bits, averaged over the batch
    grads.weight_out[:] = np.einsum("tbo,tbh->oh", d_logits, cache.hidden[1:])
    grads.bias_out[:] = d_logits.sum(axis=(0, 1))

    dh_next = np.zeros((B, H), params.dtype)  # dL/dh_t arriving from step t+1
    dc_next = np.zeros((B, H), params.dtype)  # dL/dc_t arriving from step t+1
    for t in reversed(range(T)):
        i, f, g, o = (cache.gate(name)[t] for name in GATES)
        c_prev, tanh_c, h_prev = cache.cell[t], cache.cell_tanh[t], cache.hidden[t]
        dh = d_logits[t] @ params.weight_out + dh_next  # from the head at step t and from step t+1
        dc = dh * o * (1.0 - tanh_c**2) + dc_next  # through h = o * tanh(c), and from c_{t+1} = f c_t + ...
        if record is not None:
            record[0][t], record[1][t] = dh, dc
        do = dh * tanh_c  # h = o * tanh(c)
        di = dc * g  # c = f * c_prev + i * g
        dg = dc * i
        df = dc * c_prev
        dz = np.concatenate([
            di * i * (1.0 - i),  # back through sigmoid: sigmoid' = s (1 - s)
            df * f * (1.0 - f),
            dg * (1.0 - g**2),  # back through tanh: tanh' = 1 - tanh^2
            do * o * (1.0 - o),
        ], axis=1)  # (B, 4H)
        grads.weight_ih += dz.T @ cache.x[t]  # z = x_t W_ih^T + h_{t-1} W_hh^T + b
        grads.weight_hh += dz.T @ h_prev
        grads.bias += dz.sum(axis=0)
        dh_next = dz @ params.weight_hh  # what h_{t-1} receives
        dc_next = dc * f  # what c_{t-1} receives
    return loss_value(cache.probs, y, params.loss), grads


def state_grads(params: Params, cache: Cache, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per step t: dL/dh_t and dL/dc_t (T, B, H) exactly as backward propagates them, and each step's loss (T, B)
    (summed over outputs; L is the batch's mean over additions of their loss summed over steps)."""
    T, B, _ = cache.x.shape
    d_hidden = np.empty((T, B, params.hidden_size), params.dtype)
    d_cell = np.empty_like(d_hidden)
    backward(params, cache, y, record=(d_hidden, d_cell))
    step_loss = loss_terms(cache.probs, np.asarray(y, dtype=params.dtype), params.loss).sum(axis=-1)
    return d_hidden, d_cell, step_loss
