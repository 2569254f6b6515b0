"""The NumPy LSTM: gradients against finite differences, PyTorch parity, the fast path equal to the reference,
state_dict, batching, resizing."""

import numpy as np
import pytest

from core import lstm, lstm_fast, task


def random_problem(hidden: int, batch: int, steps: int, seed: int = 0, dtype=np.float64):
    """Params with non-zero biases and moderate weights, random input bits and targets."""
    rng = np.random.default_rng(seed)
    params = lstm.init_params(hidden, rng, init="pytorch", dtype=dtype)
    params.flat[:] = rng.normal(0.0, 0.6, params.flat.size)
    x = rng.integers(0, 2, (steps, batch, 2)).astype(dtype)
    y = rng.integers(0, 2, (steps, batch, 1)).astype(dtype)
    return params, x, y


def numerical_gradient(params: lstm.Params, x: np.ndarray, y: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    grad = np.empty_like(params.flat)
    for k in range(params.flat.size):
        old = params.flat[k]
        params.flat[k] = old + eps
        plus = lstm.bce_loss(lstm.forward(params, x)[0], y)
        params.flat[k] = old - eps
        minus = lstm.bce_loss(lstm.forward(params, x)[0], y)
        params.flat[k] = old
        grad[k] = (plus - minus) / (2 * eps)
    return grad


@pytest.mark.parametrize("hidden", [1, 5, 16])
@pytest.mark.parametrize("batch", [1, 4])
@pytest.mark.parametrize("steps", [1, 8])
def test_gradients_match_finite_differences(hidden, batch, steps):
    params, x, y = random_problem(hidden, batch, steps, seed=hidden * 100 + batch * 10 + steps)
    loss, grads = lstm.backward(params, lstm.forward(params, x)[1], y)
    numeric = numerical_gradient(params, x, y)
    relative = np.linalg.norm(numeric - grads.flat) / max(np.linalg.norm(numeric), np.linalg.norm(grads.flat))
    assert relative <= 1e-6, f"relative gradient error {relative:.2e}"
    assert loss == pytest.approx(lstm.bce_loss(lstm.forward(params, x)[0], y), rel=1e-15)


def test_every_parameter_gets_a_gradient():
    params, x, y = random_problem(5, 4, 8)
    _, grads = lstm.backward(params, lstm.forward(params, x)[1], y)
    for name, array in grads.arrays():
        assert np.count_nonzero(array) == array.size, f"{name} has zero entries"


def test_step_equations_hold_in_the_cache():
    """c_t = f c_{t-1} + i g and h_t = o tanh(c_t), in PyTorch's gate order i, f, g, o."""
    params, x, _ = random_problem(6, 3, 8)
    probs, cache = lstm.forward(params, x)
    H = params.hidden_size
    h_prev = np.zeros((3, H))
    c_prev = np.zeros((3, H))
    for t in range(8):
        z = x[t] @ params.weight_ih.T + h_prev @ params.weight_hh.T + params.bias
        i, f, g, o = (z[:, k * H : (k + 1) * H] for k in range(4))
        sig = lambda v: 1.0 / (1.0 + np.exp(-v))  # noqa: E731
        c = sig(f) * c_prev + sig(i) * np.tanh(g)
        h = sig(o) * np.tanh(c)
        np.testing.assert_allclose(cache.gates_pre[t], z, atol=1e-14)
        np.testing.assert_allclose(cache.gate("i")[t], sig(i), atol=1e-14)
        np.testing.assert_allclose(cache.gate("g")[t], np.tanh(g), atol=1e-14)
        post = np.concatenate((sig(i), sig(f), np.tanh(g), sig(o)), axis=1)
        np.testing.assert_allclose(cache.gates[t], post, atol=1e-14)  # i, f, g, o whatever the storage order
        for name, value in zip(lstm.GATES, np.split(post, 4, axis=1)):
            np.testing.assert_allclose(cache.gate(name)[t], value, atol=1e-14)
        np.testing.assert_array_equal(cache.x[t], x[t])
        np.testing.assert_allclose(cache.cell[t + 1], c, atol=1e-14)
        np.testing.assert_allclose(cache.hidden[t + 1], h, atol=1e-14)
        np.testing.assert_allclose(probs[t], sig(h @ params.weight_out.T + params.bias_out), atol=1e-14)
        h_prev, c_prev = h, c


def test_pytorch_parity_through_state_dict():
    torch = pytest.importorskip("torch")
    params, x, y = random_problem(7, 5, 8, seed=3)
    probs, cache = lstm.forward(params, x)
    loss, grads = lstm.backward(params, cache, y)

    class Model(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.lstm = torch.nn.LSTM(2, 7)
            self.head = torch.nn.Linear(7, 1)

    model = Model().double()
    model.load_state_dict({k: torch.from_numpy(v) for k, v in params.state_dict().items()})
    out, _ = model.lstm(torch.from_numpy(x))
    torch_probs = torch.sigmoid(model.head(out))
    # The loss per addition: summed over the 8 bits, averaged over the 5 additions of the batch.
    torch_loss = torch.nn.BCELoss(reduction="sum")(torch_probs, torch.from_numpy(y)) / x.shape[1]
    torch_loss.backward()

    np.testing.assert_allclose(torch_probs.detach().numpy(), probs, rtol=0, atol=1e-10)
    assert abs(torch_loss.item() - loss) <= 1e-10
    torch_grads = {name: p.grad.numpy() for name, p in model.named_parameters()}
    expected = {
        "weight_ih": torch_grads["lstm.weight_ih_l0"],
        "weight_hh": torch_grads["lstm.weight_hh_l0"],
        "bias": torch_grads["lstm.bias_ih_l0"],
        "weight_out": torch_grads["head.weight"],
        "bias_out": torch_grads["head.bias"],
    }
    np.testing.assert_allclose(torch_grads["lstm.bias_hh_l0"], torch_grads["lstm.bias_ih_l0"], atol=1e-15)
    for name, array in grads.arrays():
        np.testing.assert_allclose(array, expected[name], rtol=0, atol=1e-10, err_msg=name)


def test_state_dict_round_trip_and_keys():
    params, _, _ = random_problem(4, 1, 1)
    state = params.state_dict()
    assert tuple(state) == lstm.STATE_DICT_KEYS
    assert state["lstm.weight_ih_l0"].shape == (16, 2)
    assert state["lstm.weight_hh_l0"].shape == (16, 4)
    assert np.all(state["lstm.bias_hh_l0"] == 0)
    back = lstm.Params.from_state_dict(state)
    np.testing.assert_array_equal(back.flat, params.flat)
    # PyTorch keeps two biases; they add up.
    state["lstm.bias_hh_l0"] = np.full(16, 0.25)
    np.testing.assert_allclose(lstm.Params.from_state_dict(state).bias, params.bias + 0.25)


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("lstm.weight_hh_l0", np.zeros((16, 5)), "weight_hh"),
        ("head.weight", np.zeros((1, 3)), "head.weight"),
        ("lstm.bias_ih_l0", np.full(16, np.nan), "NaN"),
        ("head.bias", np.array(["x"]), "floating"),
    ],
)
def test_from_state_dict_rejects_bad_arrays(key, value, message):
    state = random_problem(4, 1, 1)[0].state_dict()
    state[key] = value
    with pytest.raises(ValueError, match=message):
        lstm.Params.from_state_dict(state)


def test_from_state_dict_names_missing_keys():
    state = random_problem(4, 1, 1)[0].state_dict()
    del state["head.bias"]
    with pytest.raises(ValueError, match=r"missing weights: head\.bias"):
        lstm.Params.from_state_dict(state)


def test_batched_equals_per_sample():
    params, _, _ = random_problem(9, 1, 1)
    a, b = task.sample_operands(np.random.default_rng(5), 6, 8)
    x, y = task.make_batch(a, b, 8)
    probs, cache = lstm.forward(params, x)
    _, grads = lstm.backward(params, cache, y)
    summed = np.zeros_like(params.flat)
    for k in range(6):
        p_k, c_k = lstm.forward(params, x[:, k : k + 1])
        np.testing.assert_allclose(p_k[:, 0], probs[:, k], atol=1e-14)
        summed += lstm.backward(params, c_k, y[:, k : k + 1])[1].flat
    np.testing.assert_allclose(summed / 6, grads.flat, atol=1e-14)  # averaged over the batch: the mean gradient


def test_float32_stays_float32_and_agrees_with_float64():
    params64, x, y = random_problem(8, 4, 8)
    params32 = params64.astype(np.float32)
    probs32, cache32 = lstm.forward(params32, x.astype(np.float32))
    _, grads32 = lstm.backward(params32, cache32, y.astype(np.float32))
    assert probs32.dtype == cache32.gates.dtype == grads32.flat.dtype == np.float32
    probs64, cache64 = lstm.forward(params64, x)
    _, grads64 = lstm.backward(params64, cache64, y)
    np.testing.assert_allclose(probs32, probs64, atol=1e-5)
    np.testing.assert_allclose(grads32.flat, grads64.flat, atol=1e-5)


def test_state_grads_records_what_backward_propagates():
    """dL/dc_0 (the cell before step 0) equals the chain through the recorded dL/dc_t."""
    params, x, y = random_problem(5, 2, 6)
    _, cache = lstm.forward(params, x)
    d_hidden, d_cell, step_loss = lstm.state_grads(params, cache, y)
    assert d_hidden.shape == d_cell.shape == (6, 2, 5)
    # The loss is each addition's loss summed over its steps, averaged over the additions.
    np.testing.assert_allclose(step_loss.sum(axis=0).mean(), lstm.bce_loss(cache.probs, y), rtol=1e-12)
    # Perturbing h_t's contribution to the head changes the loss at rate dL/dh_t (last step: only the head).
    eps = 1e-6
    t, unit = 5, 2
    base = cache.hidden[t + 1].copy()
    def loss_with(delta):
        hidden = cache.hidden[1:].copy()
        hidden[t, :, unit] = base[:, unit] + delta
        probs = lstm.sigmoid(hidden @ params.weight_out.T + params.bias_out)
        return lstm.bce_loss(probs, y)
    numeric = (loss_with(eps) - loss_with(-eps)) / (2 * eps) / 1  # one element per batch row summed
    np.testing.assert_allclose(d_hidden[t, :, unit].sum(), numeric, rtol=1e-6)


def test_unit_scale_zero_knocks_a_unit_out():
    params, x, _ = random_problem(6, 3, 8)
    scale = np.ones(6)
    scale[2] = 0.0
    _, cache = lstm.forward(params, x, unit_scale=scale)
    assert np.all(cache.cell[:, :, 2] == 0) and np.all(cache.hidden[:, :, 2] == 0)
    assert np.any(cache.hidden[:, :, 1] != 0)


def test_resize_keeps_learned_units_and_function():
    params, x, _ = random_problem(6, 3, 8)
    grown = lstm.resize_hidden(params, 9)
    for k in range(4):
        np.testing.assert_array_equal(grown.weight_ih[k * 9 : k * 9 + 6], params.weight_ih[k * 6 : k * 6 + 6])
        np.testing.assert_array_equal(grown.weight_hh[k * 9 : k * 9 + 6, :6], params.weight_hh[k * 6 : k * 6 + 6])
    # With zero fill the new units never receive input and never reach the output: same predictions.
    np.testing.assert_allclose(lstm.forward(grown, x)[0], lstm.forward(params, x)[0], atol=1e-14)
    shrunk = lstm.resize_hidden(params, 4)
    assert shrunk.weight_hh.shape == (16, 4)
    np.testing.assert_array_equal(shrunk.weight_out, params.weight_out[:, :4])


def test_init_kinds():
    rng = np.random.default_rng(0)
    seed_init = lstm.init_params(16, rng)
    assert np.all(seed_init.bias == 0) and 0.8 < seed_init.weight_hh.std() < 1.2
    torch_init = lstm.init_params(16, rng, init="pytorch", forget_bias=1.0)
    assert np.abs(torch_init.weight_hh).max() <= 0.25
    forget = torch_init.bias[16:32]
    assert np.all(forget >= 0.75) and np.all(forget <= 1.25)
    with pytest.raises(ValueError, match="unknown init"):
        lstm.init_params(4, rng, init="xavier")


def test_loss_is_summed_over_bits_and_averaged_over_the_batch():
    """Doubling the sequence with a copy of itself doubles the loss; doubling the batch with a copy does not."""
    params, x, y = random_problem(4, 3, 5)
    loss = lstm.bce_loss(lstm.forward(params, x)[0], y)
    probs = lstm.forward(params, x)[0]
    assert lstm.bce_loss(np.concatenate([probs, probs]), np.concatenate([y, y])) == pytest.approx(2 * loss)
    assert lstm.bce_loss(np.concatenate([probs, probs], 1), np.concatenate([y, y], 1)) == pytest.approx(loss)


@pytest.mark.parametrize("loss", lstm.LOSSES)
@pytest.mark.parametrize("seed", range(12))
def test_fast_path_equals_the_reference(seed, loss):
    """core.lstm_fast gives the reference's probabilities, cache, loss and every gradient to 1e-12, over random
    shapes and either loss, with a reused workspace (as in training) and with a knockout mask."""
    rng = np.random.default_rng(seed)
    hidden, batch, steps = int(rng.integers(1, 21)), int(rng.integers(1, 9)), int(rng.integers(1, 13))
    params, x, y = random_problem(hidden, batch, steps, seed=seed)
    params.loss = loss
    workspace = lstm_fast.Workspace()
    for _ in range(2):  # the second round reuses the workspace's arrays
        probs, cache = lstm.forward(params, x)
        loss, grads = lstm.backward(params, cache, y)
        fast_probs, fast_cache = lstm_fast.forward(params, x, workspace=workspace)
        fast_loss, fast_grads = lstm_fast.backward(params, fast_cache, y, workspace=workspace)
        np.testing.assert_allclose(fast_probs, probs, rtol=0, atol=1e-12)
        assert abs(fast_loss - loss) <= 1e-12 * max(1.0, abs(loss))
        for name, array in grads.arrays():
            np.testing.assert_allclose(getattr(fast_grads, name), array, rtol=0, atol=1e-12, err_msg=name)
        for name in ("gates_pre", "gates", "cell", "cell_tanh", "hidden", "logits", "x"):
            np.testing.assert_allclose(getattr(fast_cache, name), getattr(cache, name), rtol=0, atol=1e-12,
                                       err_msg=name)
        params.flat += 0.1 * rng.standard_normal(params.flat.size)
    scale = rng.uniform(0, 1, hidden)
    scale[0] = 0.0
    np.testing.assert_allclose(lstm_fast.forward(params, x, scale)[0], lstm.forward(params, x, scale)[0],
                               rtol=0, atol=1e-12)
    d_h, d_c = np.empty((steps, batch, hidden)), np.empty((steps, batch, hidden))
    lstm_fast.backward(params, lstm_fast.forward(params, x)[1], y, record=(d_h, d_c))
    ref_h, ref_c, _ = lstm.state_grads(params, lstm.forward(params, x)[1], y)
    np.testing.assert_allclose(d_h, ref_h, rtol=0, atol=1e-12)
    np.testing.assert_allclose(d_c, ref_c, rtol=0, atol=1e-12)
