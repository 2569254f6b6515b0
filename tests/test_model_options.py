"""The loss and model options: the squared loss (LSTM and RNN), the RNN's sigmoid units and bias-free form, the
U(-1, 1) initialisation, and the presets built from them. Gradients against float64 finite differences, PyTorch
parity where PyTorch has the same model, and the classic tutorial's own update loop reproduced to rounding."""

from __future__ import annotations

import numpy as np
import pytest

from core import engine, lstm, lstm_fast, rnn, task
from core.optim import SGD
from core.trainer import (
    PRESETS,
    ConfigError,
    TrainConfig,
    Trainer,
    preset,
    preset_of,
    with_model_options,
)

RNN_OPTIONS = [(activation, loss, use_bias) for activation in rnn.ACTIVATIONS for loss in lstm.LOSSES
               for use_bias in (True, False)]


def lstm_problem(hidden: int, batch: int, steps: int, loss: str, seed: int = 0):
    rng = np.random.default_rng([hidden, batch, steps, seed])
    params = lstm.init_params(hidden, rng, init="pytorch", loss=loss)
    params.flat[:] = rng.normal(0.0, 0.6, params.flat.size)
    x = rng.integers(0, 2, (steps, batch, 2)).astype(np.float64)
    y = rng.integers(0, 2, (steps, batch, 1)).astype(np.float64)
    return params, x, y


def rnn_problem(hidden: int, batch: int, steps: int, activation: str, loss: str, use_bias: bool, seed: int = 0):
    rng = np.random.default_rng([hidden, batch, steps, seed, 7])
    params = rnn.init_params(hidden, rng, init="uniform", loss=loss, activation=activation, use_bias=use_bias)
    params.flat[:] = rng.normal(0.0, 0.8, params.flat.size)
    if not use_bias:
        params.bias[:] = params.bias_out[:] = 0.0
    x = rng.integers(0, 2, (steps, batch, 2)).astype(np.float64)
    y = rng.integers(0, 2, (steps, batch, 1)).astype(np.float64)
    return params, x, y


def finite_differences(model, params, x: np.ndarray, y: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    """Central differences of the model's loss (params.loss) for every parameter, in float64."""
    grad = np.empty_like(params.flat)
    for k in range(params.flat.size):
        old = params.flat[k]
        params.flat[k] = old + eps
        above = lstm.loss_value(model.forward(params, x)[0], y, params.loss)
        params.flat[k] = old - eps
        below = lstm.loss_value(model.forward(params, x)[0], y, params.loss)
        params.flat[k] = old
        grad[k] = (above - below) / (2 * eps)
    return grad


def relative_error(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(a), np.linalg.norm(b)))


# ---- the squared loss ------------------------------------------------------------------------------------------
def test_squared_loss_is_half_the_summed_squared_error_per_addition() -> None:
    probs = np.array([[[0.9], [0.2]], [[0.4], [0.7]]])  # (T=2, B=2, O=1)
    y = np.array([[[1.0], [0.0]], [[1.0], [1.0]]])
    expected = 0.5 * ((0.1**2 + 0.6**2) + (0.2**2 + 0.3**2)) / 2  # summed over the bits, averaged over the batch
    assert lstm.loss_value(probs, y, "squared") == pytest.approx(expected, rel=1e-15)
    assert lstm_fast.loss_value(probs, y, "squared") == pytest.approx(expected, rel=1e-15)


def test_squared_head_delta_is_the_tutorials_delta() -> None:
    """The tutorial adds lr * (y - p) p (1 - p) * input: gradient descent on (p - y)^2 / 2 through the sigmoid."""
    probs = np.linspace(0.01, 0.99, 7)[:, None, None]
    y = np.array([1, 0, 1, 1, 0, 0, 1], dtype=np.float64)[:, None, None]
    np.testing.assert_allclose(lstm.head_delta(probs, y, "squared"), -(y - probs) * probs * (1 - probs), rtol=1e-15)
    np.testing.assert_allclose(lstm.head_delta(probs, y, "bce"), probs - y, rtol=1e-15)


@pytest.mark.parametrize(("hidden", "batch", "steps"), [(1, 1, 1), (5, 4, 8), (16, 2, 8)])
def test_lstm_squared_loss_gradients_match_finite_differences(hidden: int, batch: int, steps: int) -> None:
    params, x, y = lstm_problem(hidden, batch, steps, "squared")
    loss, grads = lstm.backward(params, lstm.forward(params, x)[1], y)
    assert loss == pytest.approx(lstm.loss_value(lstm.forward(params, x)[0], y, "squared"), rel=1e-15)
    assert relative_error(finite_differences(lstm, params, x, y), grads.flat) <= 1e-6
    bce = params.copy()
    bce.loss = "bce"
    assert relative_error(lstm.backward(bce, lstm.forward(bce, x)[1], y)[1].flat, grads.flat) > 0.1  # not BCE's


def test_squared_loss_state_grads_and_step_loss() -> None:
    params, x, y = lstm_problem(5, 3, 6, "squared")
    _, cache = lstm.forward(params, x)
    _, _, step_loss = lstm.state_grads(params, cache, y)
    np.testing.assert_allclose(step_loss, 0.5 * ((cache.probs - y) ** 2).sum(axis=-1), rtol=1e-14)


def test_lstm_squared_loss_pytorch_parity() -> None:
    torch = pytest.importorskip("torch")
    params, x, y = lstm_problem(7, 5, 8, "squared", seed=3)
    _, cache = lstm.forward(params, x)
    loss, grads = lstm.backward(params, cache, y)
    module = torch.nn.ModuleDict({"lstm": torch.nn.LSTM(2, 7), "head": torch.nn.Linear(7, 1)}).double()
    module.load_state_dict({k: torch.from_numpy(v) for k, v in params.state_dict().items()})
    torch_probs = torch.sigmoid(module["head"](module["lstm"](torch.from_numpy(x))[0]))
    torch_loss = 0.5 * torch.nn.MSELoss(reduction="sum")(torch_probs, torch.from_numpy(y)) / x.shape[1]
    torch_loss.backward()
    assert abs(torch_loss.item() - loss) <= 1e-12
    torch_grads = dict(module.named_parameters())
    expected = {"weight_ih": "lstm.weight_ih_l0", "weight_hh": "lstm.weight_hh_l0", "bias": "lstm.bias_ih_l0",
                "weight_out": "head.weight", "bias_out": "head.bias"}
    for name, array in grads.arrays():
        np.testing.assert_allclose(array, torch_grads[expected[name]].grad.numpy(), rtol=0, atol=1e-12, err_msg=name)


# ---- the RNN's options -----------------------------------------------------------------------------------------
@pytest.mark.parametrize(("activation", "loss", "use_bias"), RNN_OPTIONS)
@pytest.mark.parametrize(("hidden", "batch", "steps"), [(1, 1, 1), (5, 3, 8)])
def test_rnn_option_gradients_match_finite_differences(activation: str, loss: str, use_bias: bool, hidden: int,
                                                      batch: int, steps: int) -> None:
    params, x, y = rnn_problem(hidden, batch, steps, activation, loss, use_bias)
    loss_value, grads = rnn.backward(params, rnn.forward(params, x)[1], y)
    assert loss_value == pytest.approx(lstm.loss_value(rnn.forward(params, x)[0], y, loss), rel=1e-14)
    numeric = finite_differences(rnn, params, x, y)
    if not use_bias:  # the biases are not parameters: no gradient, whatever the loss would say about them
        assert not np.any(grads.bias) and not np.any(grads.bias_out)
        numeric[params.flat.size - 1] = 0.0  # bias_out is the last entry
        numeric[hidden * 2 + hidden * hidden : hidden * 3 + hidden * hidden] = 0.0  # bias
    assert relative_error(numeric, grads.flat) <= 1e-6


def test_sigmoid_units_are_the_recurrence_step_by_step() -> None:
    params, x, _ = rnn_problem(4, 2, 6, "sigmoid", "bce", True)
    _, cache = rnn.forward(params, x)
    h = np.zeros((2, 4))
    for t in range(6):
        h = 1.0 / (1.0 + np.exp(-(x[t] @ params.weight_ih.T + h @ params.weight_hh.T + params.bias)))
        np.testing.assert_allclose(cache.hidden[t + 1], h, rtol=1e-13)
    assert np.all((cache.hidden[1:] > 0) & (cache.hidden[1:] < 1))


@pytest.mark.parametrize(("loss", "use_bias"), [("bce", False), ("squared", True), ("squared", False)])
def test_tanh_rnn_options_pytorch_parity(loss: str, use_bias: bool) -> None:
    """nn.RNN (tanh) and nn.Linear, with bias=False where ours has no bias; BCE or half MSE summed over bits."""
    torch = pytest.importorskip("torch")
    params, x, y = rnn_problem(6, 4, 8, "tanh", loss, use_bias, seed=1)
    _, cache = rnn.forward(params, x)
    ours, grads = rnn.backward(params, cache, y)
    recurrent, head = torch.nn.RNN(2, 6, bias=use_bias).double(), torch.nn.Linear(6, 1, bias=use_bias).double()
    with torch.no_grad():
        recurrent.weight_ih_l0.copy_(torch.from_numpy(params.weight_ih))
        recurrent.weight_hh_l0.copy_(torch.from_numpy(params.weight_hh))
        head.weight.copy_(torch.from_numpy(params.weight_out))
        if use_bias:
            recurrent.bias_ih_l0.copy_(torch.from_numpy(params.bias))
            recurrent.bias_hh_l0.zero_()
            head.bias.copy_(torch.from_numpy(params.bias_out))
    probs = torch.sigmoid(head(recurrent(torch.from_numpy(x))[0]))
    target = torch.from_numpy(y)
    if loss == "bce":
        theirs = torch.nn.BCELoss(reduction="sum")(probs, target) / x.shape[1]
    else:
        theirs = 0.5 * torch.nn.MSELoss(reduction="sum")(probs, target) / x.shape[1]
    theirs.backward()
    np.testing.assert_allclose(probs.detach().numpy(), cache.probs, rtol=0, atol=1e-12)
    assert abs(theirs.item() - ours) <= 1e-12
    np.testing.assert_allclose(grads.weight_ih, recurrent.weight_ih_l0.grad.numpy(), rtol=0, atol=1e-12)
    np.testing.assert_allclose(grads.weight_hh, recurrent.weight_hh_l0.grad.numpy(), rtol=0, atol=1e-12)
    np.testing.assert_allclose(grads.weight_out, head.weight.grad.numpy(), rtol=0, atol=1e-12)
    if use_bias:
        np.testing.assert_allclose(grads.bias, recurrent.bias_ih_l0.grad.numpy(), rtol=0, atol=1e-12)
        np.testing.assert_allclose(grads.bias_out, head.bias.grad.numpy(), rtol=0, atol=1e-12)


def test_sigmoid_rnn_pytorch_autograd_parity() -> None:
    """nn.RNN has no sigmoid units: the same recurrence written in torch and differentiated by autograd."""
    torch = pytest.importorskip("torch")
    params, x, y = rnn_problem(5, 3, 8, "sigmoid", "squared", False, seed=2)
    _, cache = rnn.forward(params, x)
    ours, grads = rnn.backward(params, cache, y)
    w_ih, w_hh, w_out = (torch.tensor(a, requires_grad=True) for a in (params.weight_ih, params.weight_hh,
                                                                        params.weight_out))
    h = torch.zeros(3, 5, dtype=torch.float64)
    outputs = []
    for t in range(8):
        h = torch.sigmoid(torch.from_numpy(x[t]) @ w_ih.T + h @ w_hh.T)
        outputs.append(torch.sigmoid(h @ w_out.T))
    theirs = 0.5 * torch.nn.MSELoss(reduction="sum")(torch.stack(outputs), torch.from_numpy(y)) / 3
    theirs.backward()
    assert abs(theirs.item() - ours) <= 1e-12
    for ours_grad, tensor in ((grads.weight_ih, w_ih), (grads.weight_hh, w_hh), (grads.weight_out, w_out)):
        np.testing.assert_allclose(ours_grad, tensor.grad.numpy(), rtol=0, atol=1e-12)


def test_bias_free_rnn_keeps_zero_biases_through_training_and_resizing() -> None:
    trainer = Trainer(TrainConfig(model="rnn", bias=False, init="uniform", optimizer="adam", learning_rate=0.01))
    assert not np.any(trainer.params.bias) and not np.any(trainer.params.bias_out)
    trainer.step(300)
    trainer.update(hidden_size=20)  # new units come with small random weights, but no bias
    trainer.step(200)
    assert trainer.params.hidden_size == 20 and not trainer.params.use_bias
    assert not np.any(trainer.params.bias) and not np.any(trainer.params.bias_out)
    assert np.any(trainer.params.weight_hh[16:])  # the rest did train


# ---- initialisation and the options travelling with the weights -------------------------------------------------
@pytest.mark.parametrize("module", [lstm, rnn])
def test_uniform_init_is_u_minus_one_one(module) -> None:
    params = module.init_params(64, np.random.default_rng(0), init="uniform")
    values = params.flat
    assert values.min() >= -1.0 and values.max() <= 1.0
    assert values.min() < -0.99 and values.max() > 0.99
    assert values.std() == pytest.approx(1 / np.sqrt(3), rel=0.02)  # the standard deviation of U(-1, 1)
    assert abs(values.mean()) < 0.01


def test_options_travel_with_copies_dtype_changes_and_resizes() -> None:
    params = rnn.init_params(4, np.random.default_rng(0), loss="squared", activation="sigmoid", use_bias=False)
    for other in (params.copy(), params.astype(np.float32), params.zeros_like(), rnn.resize_hidden(params, 6)):
        assert (other.loss, other.activation, other.use_bias) == ("squared", "sigmoid", False)
    lstm_params = lstm.init_params(4, np.random.default_rng(0), loss="squared")
    for other in (lstm_params.copy(), lstm_params.astype(np.float32), lstm.resize_hidden(lstm_params, 6)):
        assert other.loss == "squared"
    loaded = rnn.Params.from_state_dict(params.state_dict())  # a state_dict carries no options ...
    assert (loaded.loss, loaded.activation, loaded.use_bias) == ("bce", "tanh", True)
    config = preset("tutorial-rnn")
    with_model_options(loaded, config)  # ... the config saved with it does
    assert (loaded.loss, loaded.activation, loaded.use_bias) == ("squared", "sigmoid", False)
    with pytest.raises(ValueError, match="activation"):
        rnn.init_params(4, np.random.default_rng(0), activation="relu")
    with pytest.raises(ValueError, match="loss"):
        lstm.init_params(4, np.random.default_rng(0), loss="hinge")


# ---- config, presets, engines ------------------------------------------------------------------------------------
@pytest.mark.parametrize(("changes", "message"), [
    ({"loss": "mse"}, "loss"),
    ({"activation": "relu", "model": "rnn"}, "activation"),
    ({"bias": "no", "model": "rnn"}, "bias"),
    ({"activation": "sigmoid"}, "plain RNN"),
    ({"bias": False}, "plain RNN"),
    ({"init": "xavier"}, "init"),
])
def test_config_refuses_bad_options(changes: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        TrainConfig().replace(**changes)


def test_presets_set_the_tutorial_and_notebook_models() -> None:
    tutorial = preset("tutorial-rnn", TrainConfig(seed=4, n_bits=10))
    assert (tutorial.model, tutorial.activation, tutorial.bias, tutorial.init, tutorial.loss) == (
        "rnn", "sigmoid", False, "uniform", "squared")
    assert (tutorial.hidden_size, tutorial.learning_rate, tutorial.optimizer, tutorial.batch_size) == (
        16, 0.1, "sgd", 1)
    assert (tutorial.seed, tutorial.n_bits) == (4, 10)  # seed and bits are the base's
    notebook = preset("notebook-lstm", tutorial)  # from anywhere, a preset gives its own model
    assert notebook == TrainConfig(loss="squared", seed=4, n_bits=10)
    assert preset("default", notebook) == TrainConfig(seed=4, n_bits=10)
    for name in PRESETS:
        assert preset_of(preset(name)) == name
    assert preset_of(TrainConfig(hidden_size=8)) is None
    with pytest.raises(ConfigError, match="preset"):
        preset("tutorial")
    assert tutorial.describe().startswith("RNN sigmoid, no bias, squared loss, H16 lr 0.1")


@pytest.mark.parametrize("name", ["notebook-lstm", "tutorial-rnn"])
def test_every_option_trains_the_same_run_on_either_engine(name: str) -> None:
    """The compiled kernels implement every loss and model option: 300 samples of a preset give the NumPy path's
    weights (to rounding) and the same curve."""
    if not engine.compiled_available():
        pytest.skip("the compiled engine needs numba")
    runs = {}
    for kind in ("numpy", "compiled"):
        trainer = Trainer(preset(name), engine=kind)
        assert trainer.engine == kind
        trainer.step(300)
        runs[kind] = trainer
    np.testing.assert_allclose(runs["compiled"].params.flat, runs["numpy"].params.flat, rtol=0, atol=1e-9)
    np.testing.assert_allclose(runs["compiled"].history.array(), runs["numpy"].history.array(), rtol=0, atol=1e-9)


def test_trainer_builds_the_model_its_config_names() -> None:
    trainer = Trainer(preset("tutorial-rnn"))
    params = trainer.params
    assert isinstance(params, rnn.Params)
    assert (params.loss, params.activation, params.use_bias) == ("squared", "sigmoid", False)
    assert np.abs(params.flat).max() <= 1.0 and np.abs(params.flat).max() > 0.9
    assert trainer.loss_note == "squared-sum"
    assert Trainer(preset("notebook-lstm")).params.loss == "squared"


# ---- the tutorial, reproduced ------------------------------------------------------------------------------------
def tutorial_update(synapse_0, synapse_1, synapse_h, a: int, b: int, alpha: float = 0.1) -> None:
    """One sample of the classic tutorial's training loop, transcribed (its names; it keeps weights as (in, out)
    and feeds the bits from the end of MSB-first strings, i.e. least significant first), updating in place."""
    def sigmoid(x):
        return 1 / (1 + np.exp(-x))

    bits_a, bits_b, bits_c = (task.encode(np.array([v]), 8)[:, 0] for v in (a, b, a + b))  # LSB first
    layer_2_deltas, layer_1_values = [], [np.zeros(synapse_h.shape[0])]
    for position in range(8):
        X = np.array([[bits_a[position], bits_b[position]]])
        y = np.array([[bits_c[position]]]).T
        layer_1 = sigmoid(np.dot(X, synapse_0) + np.dot(layer_1_values[-1], synapse_h))
        layer_2 = sigmoid(np.dot(layer_1, synapse_1))
        layer_2_deltas.append((y - layer_2) * layer_2 * (1 - layer_2))
        layer_1_values.append(layer_1.copy())
    updates = [np.zeros_like(w) for w in (synapse_0, synapse_1, synapse_h)]
    future_layer_1_delta = np.zeros(synapse_h.shape[0])
    for position in reversed(range(8)):
        X = np.array([[bits_a[position], bits_b[position]]])
        layer_1, prev_layer_1 = layer_1_values[position + 1], layer_1_values[position]
        layer_1_delta = ((future_layer_1_delta.dot(synapse_h.T) + layer_2_deltas[position].dot(synapse_1.T))
                         * layer_1 * (1 - layer_1))
        updates[1] += np.atleast_2d(layer_1).T.dot(layer_2_deltas[position])
        updates[2] += np.atleast_2d(prev_layer_1).T.dot(layer_1_delta)
        updates[0] += X.T.dot(layer_1_delta)
        future_layer_1_delta = layer_1_delta
    for weights, update in zip((synapse_0, synapse_1, synapse_h), updates, strict=True):
        weights += update * alpha


def test_tutorial_preset_trains_exactly_as_the_tutorials_own_loop() -> None:
    """From the same weights on the same 300 samples, the trainer's update path and the tutorial's loop agree to
    rounding: the preset is the tutorial's model, loss and update, not an approximation of them."""
    trainer = Trainer(preset("tutorial-rnn"))
    params = trainer.params
    synapse_0, synapse_1, synapse_h = params.weight_ih.T.copy(), params.weight_out.T.copy(), params.weight_hh.T.copy()
    initial_h = synapse_h.copy()
    a, b = task.sample_operands(np.random.default_rng(5), 300, 8)
    done = engine.train(trainer.engine, params, SGD(0.1), 0.0, a, b, 8, 1, np.inf)
    assert done.updates == 300
    for x, y in zip(a, b, strict=True):
        tutorial_update(synapse_0, synapse_1, synapse_h, int(x), int(y))
    assert np.abs(synapse_h - initial_h).max() > 0.01  # training moved the weights
    np.testing.assert_allclose(params.weight_ih, synapse_0.T, rtol=0, atol=1e-12)
    np.testing.assert_allclose(params.weight_hh, synapse_h.T, rtol=0, atol=1e-12)
    np.testing.assert_allclose(params.weight_out, synapse_1.T, rtol=0, atol=1e-12)
    assert not np.any(params.bias) and not np.any(params.bias_out)


@pytest.mark.parametrize("name", PRESETS)
def test_the_gradient_check_view_agrees_with_backward_for_every_preset(name: str) -> None:
    """insights.gradient_check differentiates the loss the model trains with (per addition, either loss)."""
    from core import insights

    trainer = Trainer(preset(name))
    trainer.step(200)
    result = insights.gradient_check(trainer.params, 8)
    assert result.ok, result.verdict
