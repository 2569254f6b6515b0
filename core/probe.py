"""One addition traced bit by bit: every gate, the cell and hidden state, carries, and the output per step.

The plain RNN is traced too: it has no gates and no cell, so those fields are None and only h is there."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from core import lstm, models, rnn, task


@dataclass(frozen=True, eq=False)
class Trace:
    """What the model computed for a + b. Step t reads bit t (LSB first); arrays are (T, H) unless noted.

    The gates, the cell and dL/dc_t are None for a model without them (the plain RNN: see `gated`)."""

    a: int
    b: int
    n_bits: int
    bits_a: np.ndarray  # (T,) bit t of a
    bits_b: np.ndarray  # (T,)
    bits_sum: np.ndarray  # (T,) true bit t of a + b
    carry_in: np.ndarray  # (T,) true carry into step t
    carry_out: np.ndarray  # (T,)
    input_gate: np.ndarray | None  # i
    forget_gate: np.ndarray | None  # f
    cell_candidate: np.ndarray | None  # g
    output_gate: np.ndarray | None  # o
    cell: np.ndarray | None  # (T+1, H): cell[0] = c_0 = 0, cell[t+1] = c_t
    hidden: np.ndarray  # (T+1, H): hidden[0] = 0, hidden[t+1] = h_t
    probs: np.ndarray  # (T,) p(sum bit t = 1)
    step_loss: np.ndarray  # (T,) binary cross-entropy at each step
    grad_hidden: np.ndarray  # (T, H) dL/dh_t, L the mean loss over the T steps
    grad_cell: np.ndarray | None  # (T, H) dL/dc_t

    @property
    def gated(self) -> bool:
        """True for the LSTM (gates and a cell state), False for the plain RNN (h only)."""
        return self.cell is not None

    @property
    def predicted_bits(self) -> np.ndarray:
        return (self.probs >= 0.5).astype(np.int64)

    @property
    def predicted(self) -> int:
        return int(task.decode(self.probs[:, None])[0])

    @property
    def true_sum(self) -> int:
        return self.a + self.b

    @property
    def wrong_bits(self) -> np.ndarray:
        """(T,) bool: where the predicted bit differs from the true one."""
        return self.predicted_bits != self.bits_sum

    def gates(self) -> dict[str, np.ndarray]:
        """Gate name (i, f, g, o) -> (T, H) activations; empty for a model without gates."""
        if not self.gated:
            return {}
        return dict(zip(lstm.GATES, (self.input_gate, self.forget_gate, self.cell_candidate, self.output_gate)))


def trace(params: lstm.Params | rnn.Params, a: int, b: int, n_bits: int,
          unit_scale: np.ndarray | None = None) -> Trace:
    """Run a + b through the model (operands checked) and keep every intermediate value."""
    a = task.check_operand(a, n_bits, "first operand")
    b = task.check_operand(b, n_bits, "second operand")
    x, y = task.make_batch(np.array([a]), np.array([b]), n_bits, params.dtype)
    model = models.of(params)
    probs, cache = model.forward(params, x, unit_scale)
    grad_hidden, grad_cell, step_loss = model.state_grads(params, cache, y)
    carry_in, carry_out = task.carries(np.array([a]), np.array([b]), n_bits)
    gated = model is lstm  # the RNN has no gates or cell (its state_grads repeats dL/dh_t where dL/dc_t would be)
    gates = {name: cache.gate(name)[:, 0].copy() for name in lstm.GATES} if gated else dict.fromkeys(lstm.GATES)
    return Trace(
        a=a, b=b, n_bits=n_bits,
        bits_a=x[:, 0, 0].astype(np.int64), bits_b=x[:, 0, 1].astype(np.int64), bits_sum=y[:, 0, 0].astype(np.int64),
        carry_in=carry_in[:, 0].astype(np.int64), carry_out=carry_out[:, 0].astype(np.int64),
        input_gate=gates["i"], forget_gate=gates["f"], cell_candidate=gates["g"], output_gate=gates["o"],
        cell=cache.cell[:, 0].copy() if gated else None, hidden=cache.hidden[:, 0].copy(),
        probs=probs[:, 0, 0].copy(), step_loss=step_loss[:, 0].copy(), grad_hidden=grad_hidden[:, 0].copy(),
        grad_cell=grad_cell[:, 0].copy() if gated else None,
    )
