"""The LSTM of core.lstm, computed fast in NumPy: the same functions, tested equal to the reference (1e-12).

At batch size 1 a training step costs its number of NumPy calls, not arithmetic, so this path fuses and
reorders what the reference writes plainly:
- the four gate matmuls are one per step, with the input projection and the bias in it (step t multiplies
  [h_{t-1}; x_t; 1]);
- arrays hold one column per sample (batch innermost), so each gate block of a step is one contiguous run;
- the sigmoid gates are stored side by side (i, f, o, g) and computed with the candidate in one tanh, using
  sigmoid(z) = 0.5 + 0.5 tanh(z / 2) with the sigmoid rows of the weights halved;
- backward computes every local derivative for all steps at once, and each weight gradient is one long matmul;
- a Workspace reuses the scratch arrays from step to step.
Read core.lstm for the equations; the Cache here offers the reference's (T, B, .) views as properties.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from core.lstm import GATES, Params

STORED_GATES = ("i", "f", "o", "g")  # the cache's gate order: the three sigmoid gates side by side


@dataclass(eq=False)
class Cache:
    """Everything forward computed, for backward and for the views. T steps, batch B, H units, I inputs, O outputs.

    Stored as columns, one per sample, with the batch innermost: each gate block of a step is one contiguous run of
    H * B values (so elementwise work runs at full speed whatever H), and the step inputs and head outputs of all
    steps line up as (features, T * B) matrices (so each weight gradient is one long matmul). The gates are stored
    i, f, o, g (STORED_GATES) so that one slice covers the sigmoid gates. The properties give the values in
    the usual (T, B, features) layout and i, f, g, o order, as views where they can.
    """

    step_inputs: np.ndarray  # (H+I+1, T+1, B) column t is [h_{t-1}; x_t; 1], what step t multiplies
    scaled_pre_cols: np.ndarray  # (T, 4H, B) z, i f o g, with the sigmoid gates' rows halved (what tanh is fed)
    gates_cols: np.ndarray  # (T, 4H, B) i, f, o, g after sigmoid/tanh
    cell_cols: np.ndarray  # (T+1, H, B) [0] = c_0 = 0, [t+1] = c_t
    cell_tanh_cols: np.ndarray  # (T, H, B) tanh(c_t)
    logits_cols: np.ndarray  # (O, T, B)
    probs_cols: np.ndarray  # (O, T, B)

    @property
    def hidden_size(self) -> int:
        return self.cell_cols.shape[1]

    @property
    def hidden_cols(self) -> np.ndarray:
        """(H, T+1, B) [:, 0] = h_0 = 0, [:, t+1] = h_t: a view into step_inputs."""
        return self.step_inputs[: self.hidden_size]

    @property
    def x(self) -> np.ndarray:
        """(T, B, I) the inputs."""
        return self.step_inputs[self.hidden_size : -1, :-1].transpose(1, 2, 0)

    def gate_cols(self, name: str) -> np.ndarray:
        """One gate's post-activation values as (T, H, B)."""
        H, k = self.hidden_size, STORED_GATES.index(name)
        return self.gates_cols[:, k * H : (k + 1) * H]

    def gate(self, name: str) -> np.ndarray:
        """One gate's post-activation values (T, B, H)."""
        return self.gate_cols(name).transpose(0, 2, 1)

    @property
    def gates(self) -> np.ndarray:
        """(T, B, 4H) i, f, g, o after sigmoid/tanh (a copy)."""
        return np.concatenate([self.gate(name) for name in GATES], axis=2)

    @property
    def gates_pre(self) -> np.ndarray:
        """(T, B, 4H) pre-activations z = W_ih x_t + W_hh h_{t-1} + b of i, f, g, o (a copy)."""
        H = self.hidden_size
        pre = self.scaled_pre_cols.copy()
        pre[:, : 3 * H] *= 2.0
        blocks = {name: pre[:, k * H : (k + 1) * H] for k, name in enumerate(STORED_GATES)}
        return np.concatenate([blocks[name] for name in GATES], axis=1).transpose(0, 2, 1)

    @property
    def cell(self) -> np.ndarray:
        """(T+1, B, H) cell[0] = c_0 = 0, cell[t+1] = c_t."""
        return self.cell_cols.transpose(0, 2, 1)

    @property
    def cell_tanh(self) -> np.ndarray:
        """(T, B, H) tanh(c_t)."""
        return self.cell_tanh_cols.transpose(0, 2, 1)

    @property
    def hidden(self) -> np.ndarray:
        """(T+1, B, H) hidden[0] = h_0 = 0, hidden[t+1] = h_t."""
        return self.hidden_cols.transpose(1, 2, 0)

    @property
    def logits(self) -> np.ndarray:
        """(T, B, O) the head's outputs before the sigmoid."""
        return self.logits_cols.transpose(1, 2, 0)

    @property
    def probs(self) -> np.ndarray:
        """(T, B, O) p(sum bit = 1)."""
        return self.probs_cols.transpose(1, 2, 0)


class Workspace:
    """Scratch arrays reused by forward and backward when the shapes repeat, as in a training loop.

    At batch 256 allocating (and first touching) the half-dozen (T, B, 4H) arrays costs as much as computing them.
    A cache made with a workspace is only valid until the next forward with the same workspace.
    """

    def __init__(self) -> None:
        self._arrays: dict[str, np.ndarray] = {}
        self._params: dict[str, Params] = {}

    def get(self, name: str, shape: tuple[int, ...], dtype: type) -> np.ndarray:
        array = self._arrays.get(name)
        if array is None or array.shape != shape or array.dtype != dtype:
            array = self._arrays[name] = np.empty(shape, dtype)
        return array

    def params_like(self, name: str, like: Params) -> Params:
        """A Params of like's sizes and dtype over a reused buffer (its views made once: a step at batch 1
        feels every call)."""
        flat = self.get(name, like.flat.shape, like.dtype)
        params = self._params.get(name)
        sizes = (like.hidden_size, like.input_size, like.output_size)
        if params is None or params.flat is not flat or (params.hidden_size, params.input_size,
                                                          params.output_size) != sizes:
            params = self._params[name] = Params.from_flat(flat, *sizes)
        return params


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
    Every step works on columns (features, B); see Cache.
    """
    empty = _allocator(workspace)
    dtype = params.dtype
    x = np.asarray(x, dtype=dtype)
    T, B, I = x.shape
    H, O = params.hidden_size, params.output_size
    # Step t multiplies [h_{t-1}; x_t; 1] by [W_hh W_ih b]: one matmul gives all four gates of every sample, bias
    # included, and h_t is written straight into the next step's inputs.
    step_inputs = empty("step_inputs", (H + I + 1, T + 1, B), dtype)
    step_inputs[:H, 0] = 0.0
    step_inputs[H : H + I, :T] = x.transpose(2, 0, 1)
    step_inputs[H : H + I, T] = 0.0  # (no step T + 1 reads these)
    step_inputs[H + I] = 1.0
    # sigmoid(z) = 0.5 + 0.5 tanh(z / 2), so one tanh over all four gates gives i, f, o and g = tanh(z) together
    # once the sigmoid gates' rows of the weights are halved ("scaled" pre-activations).
    weights = np.concatenate((params.weight_hh, params.weight_ih, params.bias[:, None]), axis=1)[_stored_rows(H)]
    weights[: 3 * H] *= 0.5  # (4H, H + I + 1), rows i, f, o, g
    scaled_pre = empty("scaled_pre", (T, 4 * H, B), dtype)
    gates = empty("gates", (T, 4 * H, B), dtype)
    cell = empty("cell", (T + 1, H, B), dtype)
    cell_tanh = empty("cell_tanh", (T, H, B), dtype)
    hidden = step_inputs[:H]  # (H, T + 1, B)
    cell[0] = 0.0
    unit_column = None if unit_scale is None else np.asarray(unit_scale, dtype)[:, None]
    # At batch size 1 a step costs its number of NumPy calls, not arithmetic: nine calls a step, and the per-step
    # views come from iterating arrays along time (cheaper than indexing each one).
    by_step = step_inputs.transpose(1, 0, 2)  # (T + 1, H + I + 1, B)
    i_t, f_t, o_t, g_t = (gates[:, k * H : (k + 1) * H] for k in range(4))
    steps = zip(by_step[:T], by_step[1:, :H], scaled_pre, gates, gates[:, : 3 * H], i_t, f_t, o_t, g_t,
                cell[:-1], cell[1:], cell_tanh)
    for inputs, h, u, a, sigmoids, i, f, o, g, c_prev, c, c_tanh in steps:
        np.dot(weights, inputs, out=u)  # (4H, B) all four gates in one matmul
        np.tanh(u, out=a)
        sigmoids *= 0.5
        sigmoids += 0.5  # a = [i, f, o, g]
        np.multiply(f, c_prev, out=c)  # f * c_{t-1}
        c += i * g  # + i * g
        if unit_column is not None:
            c *= unit_column
        np.tanh(c, out=c_tanh)
        np.multiply(o, c_tanh, out=h)  # h = o * tanh(c): h_t goes into the inputs of step t + 1
        if unit_column is not None:
            h *= unit_column
    logits = empty("logits", (O, T, B), dtype)
    np.matmul(params.weight_out, hidden[:, 1:].reshape(H, T * B), out=logits.reshape(O, T * B))
    logits += params.bias_out[:, None, None]
    probs = sigmoid(logits)
    cache = Cache(step_inputs, scaled_pre, gates, cell, cell_tanh, logits, probs)
    return cache.probs, cache


@functools.lru_cache(maxsize=64)
def _stored_rows(hidden_size: int) -> np.ndarray:
    """Row indices that take the weights' i, f, g, o blocks to the cache's i, f, o, g (STORED_GATES)."""
    blocks = [np.arange(k * hidden_size, (k + 1) * hidden_size) for k in (GATES.index(n) for n in STORED_GATES)]
    rows = np.concatenate(blocks)
    rows.flags.writeable = False
    return rows


def sigmoid(z: np.ndarray) -> np.ndarray:
    out = np.multiply(z, 0.5)
    np.tanh(out, out=out)
    out *= 0.5
    out += 0.5
    return out


def bce_loss(probs: np.ndarray, y: np.ndarray) -> float:
    """core.lstm.bce_loss: BCE summed over bits and outputs, averaged over the batch (axis 1 of (T, B, O))."""
    p, target = probs.ravel(), y.ravel()
    log_p = np.log(np.maximum(p, _LOG_FLOOR))
    log_q = np.log(np.maximum(1.0 - p, _LOG_FLOOR))
    log_p -= log_q
    # y log p + (1-y) log q = y (log p - log q) + log q
    return -float(np.dot(target, log_p) + log_q.sum()) / probs.shape[1]


_LOG_FLOOR = float(np.exp(-100.0))  # log(max(p, e^-100)) == max(log p, -100), without a divide-by-zero warning


def loss_value(probs: np.ndarray, y: np.ndarray, loss: str = "bce") -> float:
    """core.lstm.loss_value: the loss per addition (summed over bits and outputs, averaged over the batch)."""
    if loss == "bce":
        return bce_loss(probs, y)
    error = (probs - y).ravel()
    return 0.5 * float(np.dot(error, error)) / probs.shape[1]


def backward(
    params: Params,
    cache: Cache,
    y: np.ndarray,
    record: tuple[np.ndarray, np.ndarray] | None = None,
    workspace: Workspace | None = None,
) -> tuple[float, Params]:
    """BPTT for params.loss against targets y (T, B, O) -> (loss, grads as a Params).

    record, if given, is a pair of (T, B, H) arrays that receive dL/dh_t and dL/dc_t of every step.
    workspace, if given, supplies reusable arrays (the grads too: they are valid until the next backward).
    """
    empty = _allocator(workspace)
    dtype = params.dtype
    y = np.asarray(y, dtype=dtype)
    O, T, B = cache.probs_cols.shape
    H, I = params.hidden_size, params.input_size
    loss = loss_value(cache.probs, y, params.loss)
    grads = params.zeros_like() if workspace is None else workspace.params_like("grads", params)

    # Head: sigmoid + BCE summed over bits, averaged over the batch gives d loss / d logit = (p - y) / B; the
    # squared error (p - y)^2 / 2 gives (p - y) p (1 - p) / B.
    d_logits = np.subtract(cache.probs_cols, y.transpose(2, 0, 1), out=empty("d_logits", (O, T, B), dtype))
    if params.loss == "squared":
        d_logits *= cache.probs_cols
        d_logits *= 1.0 - cache.probs_cols
    d_logits *= 1.0 / B
    d_logits = d_logits.reshape(O, T * B)
    hidden = cache.hidden_cols[:, 1:].reshape(H, T * B)  # h_1 .. h_T of every sample
    np.matmul(d_logits, hidden.T, out=grads.weight_out)
    np.add.reduce(d_logits, axis=1, out=grads.bias_out)
    d_hidden_from_head = np.matmul(params.weight_out.T, d_logits).reshape(H, T, B)

    # Everything that does not depend on the recursion, for all steps at once, from the cached activations.
    i, f, g, o = (cache.gate_cols(name) for name in GATES)  # (T, H, B) each
    # partners[t, k] is what d c_t (d h_t for o) multiplies to give d z of gate k (i, f, g, o), the local
    # derivative included:
    partners = empty("partners", (T, 4, H, B), dtype)
    d_i, d_f, d_g, d_o = (partners[:, k] for k in range(4))
    np.subtract(1.0, i, out=d_i)
    d_i *= i
    d_i *= g  # d z_i = d c * g * i (1 - i)
    np.subtract(1.0, f, out=d_f)
    d_f *= f
    d_f *= cache.cell_cols[:-1]  # d z_f = d c * c_{t-1} * f (1 - f)
    np.multiply(g, g, out=d_g)
    np.subtract(1.0, d_g, out=d_g)
    d_g *= i  # d z_g = d c * i * (1 - g^2)
    np.subtract(1.0, o, out=d_o)
    d_o *= o
    d_o *= cache.cell_tanh_cols  # d z_o = d h * tanh(c_t) * o (1 - o)
    d_c_from_h = np.multiply(cache.cell_tanh_cols, cache.cell_tanh_cols, out=empty("d_c_from_h", (T, H, B), dtype))
    np.subtract(1.0, d_c_from_h, out=d_c_from_h)
    d_c_from_h *= o  # h = o tanh(c): d h / d c = o (1 - tanh(c)^2)

    d_z = empty("d_z", (4, H, T, B), dtype)  # i, f, g, o: the weights' order
    d_h_next = np.zeros((H, B), dtype)
    d_c_next = np.zeros((H, B), dtype)
    w_hh_t = params.weight_hh.T  # (H, 4H)
    # Steps last to first; the per-step views come from iterating the arrays backwards along time.
    steps = zip(range(T - 1, -1, -1), d_hidden_from_head.transpose(1, 0, 2)[::-1], d_c_from_h[::-1],
                partners[::-1], d_z.transpose(2, 0, 1, 3)[::-1], f[::-1])
    for t, d_h_head, d_c_local, partner, d_z_now, f_now in steps:
        d_h = d_h_head + d_h_next  # from the head and from step t+1
        d_c = d_h * d_c_local  # through h_t = o * tanh(c_t) ...
        d_c += d_c_next  # ... and from c_{t+1} = f c_t + ...
        if record is not None:
            record[0][t], record[1][t] = d_h.T, d_c.T
        np.multiply(partner[:3], d_c, out=d_z_now[:3])  # d z of i, f, g
        np.multiply(partner[3], d_h, out=d_z_now[3])  # d z of o
        d_h_next = np.dot(w_hh_t, d_z_now.reshape(4 * H, B))  # (H, B)
        d_c_next = d_c * f_now  # c_{t-1} reaches c_t through f

    # [W_hh W_ih b] in one matmul: d z_t times step t's inputs [h_{t-1}; x_t; 1], summed over steps and samples.
    d_weights = empty("d_weights", (H + I + 1, 4 * H), dtype)
    np.matmul(cache.step_inputs[:, :T].reshape(-1, T * B), d_z.reshape(4 * H, T * B).T, out=d_weights)
    grads.weight_hh[:] = d_weights[:H].T
    grads.weight_ih[:] = d_weights[H : H + I].T
    grads.bias[:] = d_weights[H + I]
    return loss, grads
