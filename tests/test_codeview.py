"""The code view's numbers: every line of the reference forward and backward, at every step, holds what the trace
the other views draw holds (or what follows from it by that line's own equation), for the LSTM and the RNN."""

from __future__ import annotations

import inspect
import sys

import numpy as np
import pytest

from core import codeview, lstm, probe, rnn
from core.codeview import Norm
from core.trainer import TrainConfig, Trainer

A, B_OPERAND, BITS = 45, 67, 8


def _row(value: np.ndarray, step: int) -> np.ndarray:
    return codeview.row_at(value, step, BITS)


def _lstm_expected(trace: probe.Trace, params: lstm.Params) -> dict[tuple[str, str], object]:
    """(function, target) -> f(step) giving the row that line holds at that step (or a Norm's norm, or a number)."""
    H = params.hidden_size
    x = np.column_stack([trace.bits_a, trace.bits_b]).astype(float)  # (T, 2)
    gates = {name: trace.gates()[name] for name in lstm.GATES}  # (T, H) each
    cell, hidden = trace.cell, trace.hidden  # (T+1, H)
    d_hidden, d_cell = trace.grad_hidden, trace.grad_cell  # (T, H)
    d_logits = trace.probs - trace.bits_sum  # (T,) BCE through the sigmoid, batch of one

    def z(t):
        return x[t] @ params.weight_ih.T + hidden[t] @ params.weight_hh.T + params.bias

    def dz(t):
        i, f, g, o = (gates[name][t] for name in lstm.GATES)
        tanh_c = np.tanh(cell[t + 1])
        do, di, dg, df = d_hidden[t] * tanh_c, d_cell[t] * g, d_cell[t] * i, d_cell[t] * cell[t]
        return np.concatenate([di * i * (1 - i), df * f * (1 - f), dg * (1 - g**2), do * o * (1 - o)])

    def partial(grad_of_step, t):  # a gradient summed over the steps the backward loop has done: T-1 .. t
        return float(np.linalg.norm(sum(grad_of_step(s) for s in range(t, BITS))))

    all_gates = lambda t: np.concatenate([gates[name][t] for name in lstm.GATES])  # noqa: E731
    forward = {
        "x": lambda t: x[t], "T": lambda t: BITS, "B": lambda t: 1, "H": lambda t: H, "t": lambda t: t,
        "h_prev": lambda t: hidden[t], "c_prev": lambda t: cell[t], "z": z, "gates_pre[t]": z,
        "i": lambda t: gates["i"][t], "f": lambda t: gates["f"][t], "g": lambda t: gates["g"][t],
        "o": lambda t: gates["o"][t], "c": lambda t: cell[t + 1], "h": lambda t: hidden[t + 1],
        "gates[t]": all_gates, "cell[t + 1]": lambda t: cell[t + 1], "cell_tanh[t]": lambda t: np.tanh(cell[t + 1]),
        "hidden[t + 1]": lambda t: hidden[t + 1],
        "logits": lambda t: hidden[t + 1] @ params.weight_out.T + params.bias_out,
        "probs": lambda t: trace.probs[t], "return": lambda t: trace.probs[t],
    }
    backward = {
        "y": lambda t: trace.bits_sum[t], "T": lambda t: BITS, "B": lambda t: 1, "H": lambda t: H, "t": lambda t: t,
        "d_logits": lambda t: d_logits[t],
        "grads.weight_out[:]": lambda t: (d_logits[:, None] * hidden[1:]).sum(axis=0),
        "grads.bias_out[:]": lambda t: abs(d_logits.sum()),
        "i": lambda t: gates["i"][t], "f": lambda t: gates["f"][t], "g": lambda t: gates["g"][t],
        "o": lambda t: gates["o"][t], "c_prev": lambda t: cell[t], "tanh_c": lambda t: np.tanh(cell[t + 1]),
        "h_prev": lambda t: hidden[t], "dh": lambda t: d_hidden[t], "dc": lambda t: d_cell[t],
        "do": lambda t: d_hidden[t] * np.tanh(cell[t + 1]), "di": lambda t: d_cell[t] * gates["g"][t],
        "dg": lambda t: d_cell[t] * gates["i"][t], "df": lambda t: d_cell[t] * cell[t], "dz": dz,
        "grads.weight_ih": lambda t: partial(lambda s: np.outer(dz(s), x[s]), t),
        "grads.weight_hh": lambda t: partial(lambda s: np.outer(dz(s), hidden[s]), t),
        "grads.bias": lambda t: partial(dz, t),
        "dh_next": lambda t: dz(t) @ params.weight_hh, "dc_next": lambda t: d_cell[t] * gates["f"][t],
        "return": lambda t: trace.step_loss.sum(),
    }
    return {**{("forward", k): v for k, v in forward.items()}, **{("backward", k): v for k, v in backward.items()}}


def _rnn_expected(trace: probe.Trace, params: rnn.Params) -> dict[tuple[str, str], object]:
    H = params.hidden_size
    x = np.column_stack([trace.bits_a, trace.bits_b]).astype(float)
    hidden, d_hidden = trace.hidden, trace.grad_hidden
    d_logits = trace.probs - trace.bits_sum
    d_squash = 1.0 - hidden[1:] ** 2  # tanh units
    d_pre = d_hidden * d_squash  # (T, H)

    def norm_of(array):
        return float(np.linalg.norm(array))

    forward = {
        "dtype": lambda t: "float64", "x": lambda t: x[t], "T": lambda t: BITS, "B": lambda t: 1, "t": lambda t: t,
        "hidden_pre": None,  # two statements (before and after the bias): checked by line below
        "w_hh_t": lambda t: norm_of(params.weight_hh), "squash": lambda t: "tanh",
        "z_t": lambda t: "a list of 8 views, one per step", "h_t": lambda t: "a list of 9 views, one per step",
        "z_t[t]": lambda t: x[t] @ params.weight_ih.T + params.bias + hidden[t] @ params.weight_hh.T,
        "h_t[t + 1]": lambda t: hidden[t + 1], "logits": None, "probs": lambda t: trace.probs[t],
        "return": lambda t: trace.probs[t],
    }
    backward = {
        "y": lambda t: trace.bits_sum[t], "H": lambda t: H, "hidden": lambda t: hidden[t + 1], "t": lambda t: t,
        "d_logits": lambda t: d_logits[t],
        "grads.weight_out[:]": lambda t: (d_logits[:, None] * hidden[1:]).sum(axis=0),
        "grads.bias_out[:]": lambda t: abs(d_logits.sum()),
        "d_hidden_from_head": lambda t: d_logits[t] * params.weight_out[0], "d_squash": lambda t: d_squash[t],
        "w_hh": lambda t: norm_of(params.weight_hh), "head_t": lambda t: "a list of 8 views, one per step",
        "d_squash_t": lambda t: "a list of 8 views, one per step",
        "d_pre_t": lambda t: "a list of 8 views, one per step",
        "d_h": lambda t: d_hidden[t], "d_pre_t[t]": lambda t: d_pre[t],
        "d_h_next": lambda t: d_pre[t] @ params.weight_hh,
        "flat_d_pre": lambda t: norm_of(d_pre),
        "grads.weight_ih": lambda t: norm_of(d_pre.T @ x),
        "grads.weight_hh": lambda t: norm_of(d_pre[1:].T @ hidden[1:-1]),
        "grads.bias": lambda t: norm_of(d_pre.sum(axis=0)),
        "return": lambda t: trace.step_loss.sum(),
    }
    return {**{("forward", k): v for k, v in forward.items()}, **{("backward", k): v for k, v in backward.items()}}


def _trainer(model: str) -> Trainer:
    trainer = Trainer(TrainConfig(model=model))
    trainer.step(300)
    return trainer


@pytest.mark.parametrize("model", ["lstm", "rnn"])
@pytest.mark.parametrize("knockout", [False, True])
def test_every_line_at_every_step_holds_the_traces_numbers(model: str, knockout: bool):
    params = _trainer(model).params
    scale = None
    if knockout:
        scale = np.ones(params.hidden_size)
        scale[[2, 5]] = 0.0
    trace = probe.trace(params, A, B_OPERAND, BITS, scale)  # what the heatmaps and the step-through draw
    recorded = codeview.record(params, A, B_OPERAND, BITS, scale)
    expected = (_lstm_expected if model == "lstm" else _rnn_expected)(trace, params)
    if knockout:  # the masking lines run too: c and h (LSTM), h_t[t + 1] (RNN) hold the value before, then after
        gates = trace.gates()
        unmasked_c = lambda t: (gates["f"][t] * trace.cell[t] + gates["i"][t] * gates["g"][t])  # noqa: E731
        unmasked_h = lambda t: gates["o"][t] * np.tanh(trace.cell[t + 1])  # noqa: E731
        z = lambda t: (np.array([trace.bits_a[t], trace.bits_b[t]], float) @ params.weight_ih.T + params.bias  # noqa
                       + trace.hidden[t] @ params.weight_hh.T)
        expected |= {("forward", "c"): (unmasked_c, lambda t: trace.cell[t + 1]),
                     ("forward", "h"): (unmasked_h, lambda t: trace.hidden[t + 1]),
                     ("forward", "h_t[t + 1]"): (lambda t: np.tanh(z(t)), lambda t: trace.hidden[t + 1])}
    checked = set()
    for executed in recorded.executed:
        statement = recorded.listing(executed.function).by_line[executed.line]
        if statement.allocates:
            continue
        steps = range(BITS) if executed.step is None else [executed.step]
        for target, value in executed.values:
            want = expected.get((executed.function, target), KeyError)
            assert want is not KeyError, f"no expectation for {executed.function}: {target} (line {executed.line})"
            if want is None:
                continue  # a name that two statements hold in turn: checked by its lines below
            if isinstance(want, tuple):  # statements that hold the name in turn: the n-th of them
                lines = [s.line for s in recorded.listing(executed.function).statements if target in s.targets]
                want = want[lines.index(executed.line)]
            for step in steps:
                wanted = want(step)
                if isinstance(value, Norm):
                    np.testing.assert_allclose(value.norm, wanted, rtol=1e-12, err_msg=target)
                elif isinstance(value, np.ndarray):
                    np.testing.assert_allclose(_row(value, step), np.ravel(wanted), rtol=1e-12, atol=1e-15,
                                               err_msg=f"{executed.function}: {target} at step {step}")
                elif isinstance(value, tuple):  # a return: its first value
                    first = value[0]
                    first = _row(first, step) if isinstance(first, np.ndarray) else first
                    np.testing.assert_allclose(first, wanted, rtol=1e-12, err_msg=target)
                else:
                    assert value == wanted or np.isclose(value, wanted, rtol=1e-12), (target, value, wanted)
            checked.add((executed.function, target))
    names = {target for function, target in checked}
    assert {"i", "f", "g", "o", "c", "h", "dh", "dc", "dz"} <= names if model == "lstm" else \
        {"z_t[t]", "h_t[t + 1]", "d_h", "d_pre_t[t]"} <= names
    if model == "rnn":  # hidden_pre and logits, in turn: before and after their bias
        by_line = {(e.function, e.line): dict(e.values) for e in recorded.executed if e.step is None}
        forward = recorded.listing("forward")
        pre_lines = [s.line for s in forward.statements if s.targets == ("hidden_pre",)]
        x = np.column_stack([trace.bits_a, trace.bits_b]).astype(float)
        for line, bias in zip(pre_lines, (0.0, params.bias), strict=True):
            np.testing.assert_allclose(by_line[("forward", line)]["hidden_pre"][:, 0], x @ params.weight_ih.T + bias)
        logit_lines = [s.line for s in forward.statements if s.targets == ("logits",)]
        for line, bias in zip(logit_lines, (0.0, params.bias_out), strict=True):
            np.testing.assert_allclose(by_line[("forward", line)]["logits"][:, 0],
                                       trace.hidden[1:] @ params.weight_out.T + bias)
    if knockout:  # the masking lines ran, and the knocked-out units' state is zero
        masking = [e for e in recorded.executed if e.function == "forward" and e.step == 3
                   and e.values and e.values[0][0] in ("c", "h", "h_t[t + 1]")]
        assert len(masking) == (4 if model == "lstm" else 2) and np.all(trace.hidden[1:, [2, 5]] == 0)


@pytest.mark.parametrize("module", [lstm, rnn])
def test_the_listing_is_the_installed_source(module):
    for name in codeview.FUNCTIONS:
        listing = codeview.listing(module, name)
        lines, first = inspect.getsourcelines(getattr(module, name))
        assert listing.lines == tuple(line.rstrip("\n") for line in lines) and listing.first_line == first


def test_the_lines_run_forward_over_the_steps_then_backward_in_reverse_and_the_tracer_is_restored():
    before = sys.gettrace()
    recorded = codeview.record(_trainer("lstm").params, A, B_OPERAND, BITS)
    assert sys.gettrace() is before
    steps = {name: [e.step for e in recorded.executed if e.function == name and e.step is not None]
             for name in codeview.FUNCTIONS}
    assert list(dict.fromkeys(steps["forward"])) == list(range(BITS))
    assert list(dict.fromkeys(steps["backward"])) == list(range(BITS))[::-1]
    functions = [e.function for e in recorded.executed]
    assert functions == sorted(functions, key=codeview.FUNCTIONS.index)  # every forward line before any backward


def test_a_line_is_written_with_the_selected_units_number_or_every_units():
    params = _trainer("lstm").params
    trace = probe.trace(params, A, B_OPERAND, BITS)
    recorded = codeview.record(params, A, B_OPERAND, BITS)
    forward = recorded.listing("forward")
    [statement] = [s for s in forward.statements if s.targets == ("i",)]
    for step in range(BITS):
        _, executed = recorded.at("forward", statement.line, step)
        text = codeview.annotation(executed, statement, step, params.hidden_size, BITS, unit=12)
        assert text == f"unit 12: {codeview.number(trace.input_gate[step, 12])}"
        every = codeview.annotation(executed, statement, step, params.hidden_size, BITS, unit=None)
        assert every.startswith("[" + codeview.number(trace.input_gate[step, 0]))
    [z] = [s for s in forward.statements if s.targets == ("z",)]
    _, executed = recorded.at("forward", z.line, 3)
    pre = dict(executed.values)["z"][0]
    assert codeview.annotation(executed, z, 3, 16, BITS, unit=12) == "unit 12: " + "  ".join(
        f"{gate} {codeview.number(pre[k * 16 + 12])}" for k, gate in enumerate(lstm.GATES))
