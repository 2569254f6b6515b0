"""The compiled kernels (core.kernels) against the readable references core.lstm and core.rnn: forward, loss and
gradients to 1e-12 in float64, whole training runs with each optimizer, float32 beside float64, divergence,
knockout, and the optimizer state the kernels keep."""

import numpy as np
import pytest

pytest.importorskip("numba", reason="the compiled kernels need numba (pip install numba)")

from core import kernels, lstm, rnn, task
from core.optim import SGD, Adam, Momentum, Optimizer, clip_by_global_norm

MODULES = {"lstm": lstm, "rnn": rnn}
# Every model option the references have: the loss, the RNN's units, an RNN without biases (the tutorial's RNN
# has all three).
VARIANTS = {
    "lstm": ("lstm", {}),
    "lstm squared loss": ("lstm", {"loss": "squared"}),
    "rnn": ("rnn", {}),
    "rnn squared loss": ("rnn", {"loss": "squared"}),
    "rnn sigmoid units": ("rnn", {"activation": "sigmoid"}),
    "rnn without biases": ("rnn", {"use_bias": False}),
    "tutorial rnn": ("rnn", {"loss": "squared", "activation": "sigmoid", "use_bias": False}),
}
TOLERANCE = 1e-12  # float64 kernels vs the references: the arithmetic differs only in rounding


def assert_close(actual: np.ndarray, expected: np.ndarray, tolerance: float, what: str) -> None:
    """|actual - expected| <= tolerance * (1 + |expected|) everywhere."""
    actual, expected = np.asarray(actual, np.float64), np.asarray(expected, np.float64)
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape} != {expected.shape}"
    error = np.abs(actual - expected) / (1.0 + np.abs(expected))
    assert np.all(np.isfinite(actual)), f"{what}: not finite"
    assert error.max(initial=0.0) <= tolerance, f"{what}: error {error.max():.2e} > {tolerance:.0e}"


def random_params(model: str, hidden: int, rng: np.random.Generator, scale: float = 1.0, dtype=np.float64,
                  **options):
    """Standard-normal weights times scale (the notebook's init is scale 1), biases included unless the options
    say the model has none."""
    params = MODULES[model].init_params(hidden, rng, **options)
    params.flat[:] = rng.normal(0.0, scale, params.flat.size)
    if not options.get("use_bias", True):
        params.bias[:] = 0.0
        params.bias_out[:] = 0.0
    return params.astype(dtype) if dtype != np.float64 else params


def random_pairs(rng: np.random.Generator, n: int, n_bits: int) -> tuple[np.ndarray, np.ndarray]:
    return task.sample_operands(rng, n, n_bits)


def reference_loss_and_grads(params, a, b, n_bits):
    module = MODULES[kernels._model_of(params)]
    x, y = task.make_batch(a, b, n_bits, params.dtype)
    probs, cache = module.forward(params, x)
    loss, grads = module.backward(params, cache, y)
    return probs[:, :, 0], loss, grads.flat


def make_optimizer(name: str) -> Optimizer:
    return {"sgd": lambda: SGD(0.1), "momentum": lambda: Momentum(0.05, 0.9), "adam": lambda: Adam(0.01)}[name]()


def optimizer_state(optimizer: Optimizer) -> dict[str, np.ndarray]:
    return {key: np.asarray(value) for key, value in optimizer.state().items()}


def reference_training(params, optimizer, clip_norm, a, b, n_bits, batch_size):
    """The training loop in Python over the references: per update forward, backward, clip, step."""
    probs_all, losses, norms = [], [], []
    for first in range(0, len(a), batch_size):
        probs, loss, grad_flat = reference_loss_and_grads(params, a[first : first + batch_size],
                                                          b[first : first + batch_size], n_bits)
        grads = MODULES[kernels._model_of(params)].Params.from_flat(
            grad_flat, params.hidden_size, params.input_size, params.output_size)
        norms.append(clip_by_global_norm(grads, clip_norm))
        optimizer.step(params, grads)
        probs_all.append(probs)
        losses.append(loss)
    return np.concatenate(probs_all, axis=1), np.array(losses), np.array(norms)


# ---- forward, loss, gradients ------------------------------------------------------------------------------------
@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("seed", range(6))
def test_forward_loss_and_gradients_equal_the_reference(variant, seed):
    model, options = VARIANTS[variant]
    rng = np.random.default_rng([seed, len(variant)])
    hidden, batch, n_bits = int(rng.integers(1, 21)), int(rng.integers(1, 6)), int(rng.integers(2, 11))
    params = random_params(model, hidden, rng, scale=float(rng.uniform(0.3, 1.5)), **options)
    a, b = random_pairs(rng, batch, n_bits)
    probs, loss, grads = reference_loss_and_grads(params, a, b, n_bits)
    where = f"{variant} H={hidden} B={batch} T={n_bits}"

    assert_close(kernels.predict(params, a, b, n_bits), probs, TOLERANCE, f"probs, {where}")
    kernel_loss, kernel_grads = kernels.loss_and_grads(params, a, b, n_bits)
    assert_close(kernel_loss, loss, TOLERANCE, f"loss, {where}")
    for name, array in MODULES[model].Params.from_flat(kernel_grads, hidden, 2, 1).arrays():
        assert_close(array, getattr(MODULES[model].Params.from_flat(grads, hidden, 2, 1), name), TOLERANCE,
                     f"d loss / d {name}, {where}")


@pytest.mark.parametrize("model", ["lstm", "rnn"])
def test_loss_is_bce_summed_over_bits_and_averaged_over_the_batch(model):
    """torch.nn.BCELoss(reduction="sum")(p, y) / B, written out; and a probability of exactly 0 or 1 costs 100
    per wrong bit (torch clamps each log at -100) instead of infinity."""
    rng = np.random.default_rng(3)
    params = random_params(model, 6, rng)
    a, b = random_pairs(rng, 5, 8)
    p = kernels.predict(params, a, b, 8)
    y = task.encode(a + b, 8)
    expected = -np.sum(y * np.log(p) + (1 - y) * np.log(1 - p)) / 5
    assert kernels.loss_and_grads(params, a, b, 8)[0] == pytest.approx(expected, rel=1e-12)

    params.bias_out[:] = 1e4  # p = 1 for every bit: each 0 bit of the sum costs 100
    zeros = np.count_nonzero(task.encode(a + b, 8) == 0)
    assert kernels.loss_and_grads(params, a, b, 8)[0] == pytest.approx(100.0 * zeros / 5, rel=1e-12)


# ---- training ----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("model", ["lstm", "rnn"])
@pytest.mark.parametrize("optimizer_name", ["sgd", "momentum", "adam"])
@pytest.mark.parametrize("clip_norm", [0.0, 0.5])
@pytest.mark.parametrize("batch_size", [1, 4])
def test_training_equals_the_reference_loop(model, optimizer_name, clip_norm, batch_size):
    """20 updates in two chunks of 10 (the optimizer's state carries over) equal the Python loop over the
    references: weights, optimizer state, each sample's probabilities and each update's loss and gradient norm."""
    rng = np.random.default_rng([batch_size, int(clip_norm * 10), len(optimizer_name), len(model)])
    params = random_params(model, 7, rng, scale=0.5)
    a, b = random_pairs(rng, 20 * batch_size, 8)
    expected_params, expected_optimizer = params.copy(), make_optimizer(optimizer_name)
    probs, losses, norms = reference_training(expected_params, expected_optimizer, clip_norm, a, b, 8, batch_size)

    optimizer = make_optimizer(optimizer_name)
    half = 10 * batch_size
    outs = [kernels.train_chunk(model, params, optimizer, clip_norm, a[part], b[part], 8, batch_size, np.inf)
            for part in (slice(0, half), slice(half, None))]

    assert [out.updates for out in outs] == [10, 10] and not any(out.diverged for out in outs)
    assert_close(params.flat, expected_params.flat, TOLERANCE, "weights after 20 updates")
    expected_state, state = optimizer_state(expected_optimizer), optimizer_state(optimizer)
    assert state.keys() == expected_state.keys()
    for key in state:
        assert_close(state[key], expected_state[key], TOLERANCE, f"optimizer state {key}")
    assert_close(np.concatenate([out.probs for out in outs], axis=1), probs, TOLERANCE, "probabilities")
    assert_close(np.concatenate([out.losses for out in outs]), losses, TOLERANCE, "losses")
    assert_close(np.concatenate([out.grad_norms for out in outs]), norms, TOLERANCE, "gradient norms")
    if clip_norm:
        assert np.any(norms > clip_norm), "clipping never acted: the test would not notice it missing"


@pytest.mark.parametrize("variant", [name for name in VARIANTS if name not in ("lstm", "rnn")])
@pytest.mark.parametrize("batch_size", [1, 4])
def test_training_with_each_model_option_equals_the_reference_loop(variant, batch_size):
    model, options = VARIANTS[variant]
    rng = np.random.default_rng([batch_size, len(variant)])
    params = random_params(model, 6, rng, scale=0.5, **options)
    a, b = random_pairs(rng, 20 * batch_size, 8)
    expected_params, expected_optimizer = params.copy(), Momentum(0.1)
    probs, losses, _ = reference_training(expected_params, expected_optimizer, 1.0, a, b, 8, batch_size)
    out = kernels.train_chunk(model, params, Momentum(0.1), 1.0, a, b, 8, batch_size, np.inf)
    assert out.updates == 20
    assert_close(params.flat, expected_params.flat, TOLERANCE, "weights after 20 updates")
    assert_close(out.losses, losses, TOLERANCE, "losses")
    assert_close(out.probs, probs, TOLERANCE, "probabilities")
    if not options.get("use_bias", True):
        assert not params.bias.any() and not params.bias_out.any(), "a model without biases grew some"


@pytest.mark.skipif(np.finfo(np.longdouble).eps > 1e-18, reason="needs an extended-precision long double")
@pytest.mark.parametrize("model", ["lstm", "rnn"])
@pytest.mark.parametrize("optimizer_name", ["sgd", "momentum", "adam"])
def test_training_from_the_notebook_init_is_as_accurate_as_the_reference(model, optimizer_name):
    """From N(0, 1) weights units saturate, 1 - tanh^2 loses digits, and two float64 implementations of the same
    updates can drift apart beyond 1e-12 within 20 updates: the reference drifts as far from a long-double run of
    itself. There the kernels must be no farther from the long-double run than the reference (up to rounding)."""
    rng = np.random.default_rng([7, len(optimizer_name), len(model)])
    params = random_params(model, 7, rng)
    a, b = random_pairs(rng, 20, 8)
    module = MODULES[model]
    reference = params.copy()
    long_double = module.Params.from_flat(params.flat.astype(np.longdouble), 7, 2, 1)
    reference_training(reference, make_optimizer(optimizer_name), 0.0, a, b, 8, 1)
    reference_training(long_double, make_optimizer(optimizer_name), 0.0, a, b, 8, 1)
    kernels.train_chunk(model, params, make_optimizer(optimizer_name), 0.0, a, b, 8, 1, np.inf)

    def distance(flat):
        return float(np.max(np.abs(flat - long_double.flat) / (1 + np.abs(long_double.flat))))

    kernel_error, reference_error = distance(params.flat), distance(reference.flat)
    assert kernel_error <= max(1e-11, 4 * reference_error), (kernel_error, reference_error)


@pytest.mark.parametrize("model", ["lstm", "rnn"])
def test_float32_agrees_with_float64(model):
    """One evaluation at the notebook's weight scale, and 20 online updates from smaller weights (from N(0, 1) the
    RNN's training is chaotic: float32 and float64 runs of the reference part ways after a few dozen updates)."""
    rng = np.random.default_rng(11)
    params64 = random_params(model, 16, rng)
    params32 = params64.astype(np.float32)
    a, b = random_pairs(rng, 64, 8)
    assert_close(kernels.predict(params32, a, b, 8), kernels.predict(params64, a, b, 8), 1e-5, "probabilities")
    loss32, grads32 = kernels.loss_and_grads(params32, a, b, 8)
    loss64, grads64 = kernels.loss_and_grads(params64, a, b, 8)
    assert grads32.dtype == np.float32
    assert_close(loss32, loss64, 1e-5, "loss")
    assert_close(grads32, grads64, 1e-4, "gradients")

    params64 = random_params(model, 16, rng, scale=0.5)
    params32 = params64.astype(np.float32)
    outs = [kernels.train_chunk(model, params, Adam(0.01), 0.0, a[:20], b[:20], 8, 1, np.inf)
            for params in (params32, params64)]
    assert params32.dtype == np.float32
    assert_close(params32.flat, params64.flat, 1e-4, "weights after 20 online updates")
    assert_close(outs[0].losses, outs[1].losses, 1e-4, "losses")


# ---- divergence --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("model", ["lstm", "rnn"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_huge_learning_rate_stops_before_the_update_that_diverges(model, dtype):
    """lr 1e6: the first update throws the weights far out; the kernel stops at the first update whose loss is
    above the limit (or not finite) and has not applied it."""
    rng = np.random.default_rng(5)
    params = random_params(model, 8, rng, dtype=dtype)
    a, b = random_pairs(rng, 50, 8)
    max_loss = 20.0
    reference = params.astype(np.float64)
    losses = reference_training(reference.copy(), SGD(1e6), 0.0, a, b, 8, 1)[1]
    expected_updates = int(np.argmax(~(np.isfinite(losses) & (losses <= max_loss))))
    assert expected_updates >= 1

    initial = params.copy()
    out = kernels.train_chunk(model, params, SGD(1e6), 0.0, a, b, 8, 1, max_loss)
    assert out.diverged and 1 <= out.updates < len(a)
    assert np.all(np.isfinite(params.flat))
    assert np.all(out.losses <= max_loss) and not out.rejected_loss <= max_loss
    if dtype == np.float64:  # float32 rounds differently on the way out: only the stopping rule is shared
        assert out.updates == expected_updates
    # the weights are those after the updates before the refused one (the kernel is deterministic)
    kernels.train_chunk(model, initial, SGD(1e6), 0.0, a[: out.updates], b[: out.updates], 8, 1, max_loss)
    np.testing.assert_array_equal(params.flat, initial.flat)


@pytest.mark.parametrize("model", ["lstm", "rnn"])
@pytest.mark.parametrize("optimizer_name", ["sgd", "adam"])
def test_exploded_weights_are_left_untouched(model, optimizer_name):
    """Weights x 1e3: the first loss is far above the limit, so nothing is applied, the optimizer's state
    included; a weight that is infinite gives a NaN loss and is refused the same way."""
    rng = np.random.default_rng(8)
    params = random_params(model, 6, rng, scale=1e3)
    before = params.flat.copy()
    a, b = random_pairs(rng, 8, 8)
    optimizer = make_optimizer(optimizer_name)
    out = kernels.train_chunk(model, params, optimizer, 1.0, a, b, 8, 2, 20.0)
    assert (out.updates, out.diverged) == (0, True) and out.rejected_loss > 20.0
    assert out.probs.shape == (8, 0) and out.losses.shape == (0,)
    np.testing.assert_array_equal(params.flat, before)
    assert all(np.all(v == 0) for k, v in optimizer_state(optimizer).items() if k != "steps")
    assert getattr(optimizer, "steps", 0) == 0

    params.flat[:] = rng.normal(0.0, 1.0, params.flat.size)
    params.weight_hh[0, 0] = np.inf
    before = params.flat.copy()
    out = kernels.train_chunk(model, params, SGD(0.1), 0.0, a, b, 8, 1, np.inf)
    assert (out.updates, out.diverged) == (0, True) and np.isnan(out.rejected_loss)
    np.testing.assert_array_equal(params.flat, before)


# ---- evaluation --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("model", ["lstm", "rnn"])
def test_predict_with_units_knocked_out_equals_the_reference(model):
    rng = np.random.default_rng(2)
    params = random_params(model, 12, rng)
    a, b = task.all_pairs(6)  # 1,024 pairs: several of the kernel's blocks of samples, the last one partial
    x, _ = task.make_batch(a, b, 6)
    unit_scale = np.ones(12)
    unit_scale[[0, 5, 11]] = 0.0
    unit_scale[3] = 0.5
    expected = MODULES[model].forward(params, x, unit_scale)[0][:, :, 0]
    actual = kernels.predict(params, a, b, 6, unit_scale)
    assert actual.dtype == np.float64 and actual.shape == (6, len(a))
    assert_close(actual, expected, TOLERANCE, "probabilities with units knocked out")
    assert np.abs(actual - kernels.predict(params, a, b, 6)).max() > 1e-3, "the knockout changed nothing"


@pytest.mark.parametrize("model", ["lstm", "rnn"])
def test_a_pair_is_predicted_alike_whatever_is_predicted_with_it(model):
    """Prediction computes each distinct prefix of input bits once and shares it between the pairs that have it,
    in chunks of pairs (52,428 at H=20): a pair's probabilities are the same, to the bit, alone, among others, in
    any order, repeated, on either side of a chunk's end."""
    from core.kernels import compiled

    rng = np.random.default_rng(9)
    params = random_params(model, 20, rng)
    a, b = random_pairs(rng, 60_000, 10)
    a[:5000], b[:5000] = a[-5000:], b[-5000:]  # repeated pairs, in different chunks
    assert len(a) > compiled.PREDICT_STATE_VALUES // 20
    together = kernels.predict(params, a, b, 10)
    reverse = kernels.predict(params, a[::-1], b[::-1], 10)[:, ::-1]
    picked = np.r_[0:3, 4999:5001, 52_420:52_440, 59_990:60_000]
    alone = np.concatenate([kernels.predict(params, a[k : k + 1], b[k : k + 1], 10) for k in picked], axis=1)
    np.testing.assert_array_equal(reverse, together)
    np.testing.assert_array_equal(alone, together[:, picked])
    np.testing.assert_array_equal(together[:, :5000], together[:, -5000:])
    x, _ = task.make_batch(a[picked], b[picked], 10)
    assert_close(together[:, picked], MODULES[model].forward(params, x)[0][:, :, 0], TOLERANCE, "probabilities")
    assert kernels.predict(params, a[:0], b[:0], 10).shape == (10, 0)


# ---- the Python layer --------------------------------------------------------------------------------------------
def test_optimizer_state_is_created_kept_and_counted():
    rng = np.random.default_rng(4)
    params = random_params("lstm", 4, rng)
    a, b = random_pairs(rng, 6, 8)
    adam, momentum = Adam(0.01), Momentum(0.1)
    kernels.train_chunk("lstm", params, adam, 0.0, a, b, 8, 2, np.inf)
    assert adam.steps == 3 and adam.first.shape == params.flat.shape and np.any(adam.first != 0)
    first = adam.first
    kernels.train_chunk("lstm", params, adam, 0.0, a, b, 8, 3, np.inf)
    assert adam.steps == 5 and adam.first is first  # updated in place
    kernels.train_chunk("lstm", params.astype(np.float32), momentum, 0.0, a, b, 8, 1, np.inf)
    assert momentum.velocity.dtype == np.float32 and np.any(momentum.velocity != 0)


def test_bad_arguments_are_refused_with_a_reason():
    rng = np.random.default_rng(0)
    params = random_params("lstm", 3, rng)
    a, b = random_pairs(rng, 4, 8)
    with pytest.raises(TypeError, match=r"rnn\.Params"):
        kernels.train_chunk("rnn", params, SGD(0.1), 0.0, a, b, 8, 1, np.inf)
    with pytest.raises(ValueError, match="unknown model"):
        kernels.train_chunk("gru", params, SGD(0.1), 0.0, a, b, 8, 1, np.inf)
    with pytest.raises(ValueError, match="differ in length"):
        kernels.predict(params, a, b[:2], 8)
    with pytest.raises(ValueError, match="unit_scale"):
        kernels.predict(params, a, b, 8, np.ones(4))
    with pytest.raises(ValueError, match="batch size"):
        kernels.train_chunk("lstm", params, SGD(0.1), 0.0, a, b, 8, 0, np.inf)


def test_read_only_weights_are_predicted_without_another_compilation():
    from core.kernels import compiled

    rng = np.random.default_rng(1)
    params = random_params("lstm", 3, rng)
    a, b = random_pairs(rng, 5, 8)
    expected = kernels.predict(params, a, b, 8)
    signatures = len(compiled.lstm_predict.signatures)
    params.flat.flags.writeable = False
    np.testing.assert_array_equal(kernels.predict(params, a, b, 8), expected)
    assert len(compiled.lstm_predict.signatures) == signatures


def test_a_remainder_smaller_than_a_batch_is_not_used():
    rng = np.random.default_rng(6)
    params = random_params("rnn", 5, rng)
    a, b = random_pairs(rng, 7, 8)
    out = kernels.train_chunk("rnn", params, SGD(0.1), 0.0, a, b, 8, 3, np.inf)
    assert out.updates == 2 and out.probs.shape == (8, 6)


def test_kernels_release_the_interpreter_lock_and_cache_their_code():
    from core.kernels import compiled

    for kernel in (compiled.lstm_train, compiled.rnn_train, compiled.lstm_predict, compiled.rnn_predict):
        assert kernel.targetoptions["nogil"] is True
        assert kernel._cache is not None and type(kernel._cache).__name__ == "FunctionCache"
        assert not kernel.targetoptions.get("fastmath"), "fastmath would let results drift from the references"


def test_cache_goes_to_the_user_cache_folder_when_the_package_folder_is_read_only(monkeypatch, tmp_path):
    import numba

    monkeypatch.setenv("NUMBA_CACHE_DIR", "")  # (so that monkeypatch removes what _configure_cache sets)
    monkeypatch.delenv("NUMBA_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.setattr(numba.config, "CACHE_DIR", "")
    monkeypatch.setattr(kernels.os, "access", lambda path, mode: False)
    kernels._configure_cache()
    assert kernels.os.environ["NUMBA_CACHE_DIR"] == numba.config.CACHE_DIR
    assert numba.config.CACHE_DIR.endswith(kernels.os.path.join("lstm-explorer", "numba"))
    if kernels.sys.platform.startswith("linux"):
        assert numba.config.CACHE_DIR.startswith(str(tmp_path))


def test_cache_stays_beside_the_package_when_it_is_writable(monkeypatch):
    monkeypatch.setenv("NUMBA_CACHE_DIR", "")
    monkeypatch.delenv("NUMBA_CACHE_DIR")
    monkeypatch.setattr(kernels.os, "access", lambda path, mode: True)
    kernels._configure_cache()
    assert "NUMBA_CACHE_DIR" not in kernels.os.environ
