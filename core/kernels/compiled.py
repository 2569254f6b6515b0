"""The compiled kernels (numba, nogil): whole training chunks and evaluation of the LSTM and the plain tanh RNN.

The same equations as core.lstm and core.rnn (the references these kernels are tested equal to):

    LSTM step   z = W_ih x_t + W_hh h_{t-1} + b        (4H,) rows i, f, g, o
                i, f, o = sigmoid(z_i), sigmoid(z_f), sigmoid(z_o);  g = tanh(z_g)
                c_t = f * c_{t-1} + i * g;  h_t = o * tanh(c_t)
    RNN step    h_t = tanh(W_ih x_t + W_hh h_{t-1} + b)       (or sigmoid; a model without biases keeps them 0)
    head        p_t = sigmoid(W_out h_t + b_out)
    loss        BCE summed over the T bits, averaged over the B samples: d loss / d logit_t = (p_t - y_t) / B
                (or the half squared error (p - y)^2 / 2, as core.lstm's "squared": (p - y) p (1 - p) / B)

Everything here is one module on purpose: numba's on-disk cache of a function is invalidated when the file that
defines it changes, not when a helper in another file does.

Layout: one column per sample (the batch innermost), as core.lstm_fast: each step's gates are a (4H, B) array, its
inputs [1; x_t; h_{t-1}] a (3+H, B) array, so the bias, input and recurrent weights are one (4H, 3+H) matrix
[b | W_ih | W_hh] and a step is one product. Elementwise work runs over whole contiguous blocks of H*B values. All
products go through _add_product, whose inner loop runs along a contiguous row: along the batch at B > 1, and
at B = 1 (online learning) along the units, by multiplying the transposes instead (z^T = inputs^T weights^T).
Every array is allocated once per call, none inside the loop over updates. exp and tanh are written out in
arithmetic (_expm1_float64, _exp_float32) so that these loops vectorize: libm calls would not. In float64 they
are accurate to a few units in the last place, so results equal the references to ~1e-15; float32 gets a shorter
polynomial. No fastmath (it would let results drift from the references); error_model "numpy" removes Python's
division-by-zero checks, which would stop the loops vectorizing.

Prediction computes each distinct prefix of input bits once (see the last section): the state after step t
depends only on bits 0..t of a and b.

The model's and the optimizer's options are small arrays, so that adding one never changes a kernel's signature:
`options` (int64) holds codes (OPTION_* slots, *_CODE values: optimizer, loss, RNN units, biases or not), `hyper`
(float64) holds numbers (HYPER_* slots).
"""

from __future__ import annotations

import math

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.extending import intrinsic, overload

# options[slot] codes
OPTION_OPTIMIZER, OPTION_LOSS, OPTION_ACTIVATION, OPTION_BIAS = 0, 1, 2, 3
N_OPTIONS = 4
SGD_CODE, MOMENTUM_CODE, ADAM_CODE = 0, 1, 2
BCE_CODE, SQUARED_CODE = 0, 1  # the loss: cross-entropy, or the half squared error (p - y)^2 / 2
TANH_CODE, SIGMOID_CODE = 0, 1  # the RNN's units
NO_BIAS_CODE, BIAS_CODE = 0, 1  # BIAS_CODE: the biases are trained; NO_BIAS_CODE: their gradient is zero
# hyper[slot] numbers
HYPER_LR, HYPER_MOMENTUM, HYPER_BETA1, HYPER_BETA2, HYPER_EPS, HYPER_CLIP, HYPER_MAX_LOSS = range(7)
N_HYPER = 7

PREDICT_BLOCK = 256  # prefixes evaluated together in prediction: a block's arrays stay in the L2 cache
LOG_FLOOR = -100.0  # torch.nn.BCELoss clamps each log at -100

_kernel = njit(nogil=True, cache=True, error_model="numpy")


# ---- exp and tanh that vectorize ---------------------------------------------------------------------------------
@intrinsic
def _float64_from_bits(typingctx, bits):
    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.DoubleType())

    return types.float64(types.int64), codegen


@intrinsic
def _float32_from_bits(typingctx, bits):
    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.FloatType())

    return types.float32(types.int32), codegen


@njit(error_model="numpy")
def _expm1_float64(x):
    """e^x - 1, accurate near 0 too: x = n ln2 + r with |r| <= ln2/2 (ln2 split in two so that n ln2 is exact),
    e^r - 1 by its Taylor series to r^13 (error < 2e-17 relatively), then e^x - 1 = 2^n (e^r - 1) + (2^n - 1).
    Clamped where the result saturates; NaN goes through r (n is set to 0 so the integer conversion is defined)."""
    x = -50.0 if x < -50.0 else x  # e^-50 - 1 == -1 in float64
    x = 709.0 if x > 709.0 else x  # e^709.78 overflows
    n = np.floor(x * 1.4426950408889634 + 0.5)
    n = 0.0 if n != n else n
    r = (x - n * 6.93147180369123816490e-01) - n * 1.90821492927058770002e-10
    q = r * (1.0 + r * (1 / 2 + r * (1 / 6 + r * (1 / 24 + r * (1 / 120 + r * (1 / 720 + r * (
        1 / 5040 + r * (1 / 40320 + r * (1 / 362880 + r * (1 / 3628800 + r * (1 / 39916800 + r * (
            1 / 479001600 + r * (1 / 6227020800)))))))))))))
    scale = _float64_from_bits((np.int64(n) + 1023) << 52)  # 2^n
    return scale * q + (scale - 1.0)


@njit(error_model="numpy")
def _exp_float32(x):
    """e^x in float32 the same way (series to r^6: error < 2e-7 relatively, about float32's rounding)."""
    x = np.float32(-87.0) if x < np.float32(-87.0) else x
    x = np.float32(88.0) if x > np.float32(88.0) else x
    n = np.floor(x * np.float32(1.442695) + np.float32(0.5))
    n = np.float32(0.0) if n != n else n
    r = (x - n * np.float32(0.693359375)) - n * np.float32(-2.12194440e-4)
    p = np.float32(1.0) + r * (np.float32(1.0) + r * (np.float32(1 / 2) + r * (np.float32(1 / 6) + r * (
        np.float32(1 / 24) + r * (np.float32(1 / 120) + r * np.float32(1 / 720))))))
    return p * _float32_from_bits(np.int32((np.int32(n) + np.int32(127)) << np.int32(23)))  # p 2^n


def _sigmoid(z):
    """1 / (1 + e^-z) in z's precision; the compiled versions are below."""
    return 1.0 / (1.0 + math.exp(-z))


def _tanh(z):
    return math.tanh(z)


def _sigmoid_float64(z):
    return 1.0 / (2.0 + _expm1_float64(-z))  # 1 / (1 + e^-z)


def _tanh_float64(z):
    m = _expm1_float64(-2.0 * abs(z))  # tanh|z| = -(e^{-2|z|} - 1) / (2 + (e^{-2|z|} - 1)), accurate near 0 too
    t = -m / (2.0 + m)
    return -t if z < 0 else t


def _sigmoid_float32(z):
    return np.float32(1.0) / (np.float32(1.0) + _exp_float32(-z))


def _tanh_float32(z):
    # 2 sigmoid(2z) - 1: within 2e-7 of tanh, absolutely (near 0 that is a large relative error, which float32's
    # agreement with float64 to ~1e-6 absorbs), and one exp cheaper than the form through e^x - 1
    return np.float32(2.0) / (np.float32(1.0) + _exp_float32(np.float32(-2.0) * z)) - np.float32(1.0)


@overload(_sigmoid)
def _sigmoid_overload(z):
    return _sigmoid_float32 if z == types.float32 else _sigmoid_float64


@overload(_tanh)
def _tanh_overload(z):
    return _tanh_float32 if z == types.float32 else _tanh_float64


@njit(error_model="numpy")
def _bce_term(p, y):
    """-(y log p + (1-y) log(1-p)) in float64, each log clamped at LOG_FLOOR (NaN stays NaN)."""
    log_p = math.log(float(p))
    log_p = LOG_FLOOR if log_p < LOG_FLOOR else log_p
    log_q = math.log(1.0 - float(p))
    log_q = LOG_FLOOR if log_q < LOG_FLOOR else log_q
    return -(float(y) * log_p + (1.0 - float(y)) * log_q)


@njit(error_model="numpy")
def _bit(value, t, one):
    """Bit t of the integer value, as 0 or 1 in one's precision."""
    return type(one)((value >> t) & 1)


# ---- optimizer, clipping -----------------------------------------------------------------------------------------
@njit(error_model="numpy")
def _squared_norm(grad):
    """sum g^2 in float64 (a float32 sum of squares overflows long before the weights do), in four partial sums:
    one running sum would make every addition wait for the previous one."""
    s0 = s1 = s2 = s3 = 0.0
    n = grad.shape[0] - grad.shape[0] % 4
    for k in range(0, n, 4):
        g0, g1, g2, g3 = float(grad[k]), float(grad[k + 1]), float(grad[k + 2]), float(grad[k + 3])
        s0 += g0 * g0
        s1 += g1 * g1
        s2 += g2 * g2
        s3 += g3 * g3
    for k in range(n, grad.shape[0]):
        s0 += float(grad[k]) * float(grad[k])
    return (s0 + s1) + (s2 + s3)


@njit(error_model="numpy")
def _apply_update(flat, grad, options, hyper, state_1, state_2, step_number):
    """One optimizer step, as core.optim (same operations in the same order). step_number counts Adam's steps
    including this one."""
    dt = flat.dtype.type
    code = options[OPTION_OPTIMIZER]
    lr = dt(hyper[HYPER_LR])
    if code == SGD_CODE:  # w -= lr g
        for k in range(flat.shape[0]):
            flat[k] -= lr * grad[k]
    elif code == MOMENTUM_CODE:  # v = mu v + g; w -= lr v   (torch.optim.SGD)
        mu = dt(hyper[HYPER_MOMENTUM])
        for k in range(flat.shape[0]):
            state_1[k] = state_1[k] * mu + grad[k]
            flat[k] -= lr * state_1[k]
    else:  # Adam (torch.optim.Adam): state_1 = first moment, state_2 = second moment
        beta1, beta2 = hyper[HYPER_BETA1], hyper[HYPER_BETA2]
        b1, one_minus_b1 = dt(beta1), dt(1.0 - beta1)
        b2, one_minus_b2 = dt(beta2), dt(1.0 - beta2)
        step_size = dt(hyper[HYPER_LR] / (1.0 - beta1 ** float(step_number)))
        correction2 = dt(1.0 - beta2 ** float(step_number))
        eps = dt(hyper[HYPER_EPS])
        for k in range(flat.shape[0]):
            g = grad[k]
            state_1[k] = state_1[k] * b1 + one_minus_b1 * g
            state_2[k] = state_2[k] * b2 + one_minus_b2 * (g * g)
            denom = np.sqrt(state_2[k] / correction2) + eps
            flat[k] -= step_size * (state_1[k] / denom)


@njit(error_model="numpy")
def _check_and_clip(grad, loss, hyper):
    """The gradient's global norm; False when this update must not be applied (loss or norm not finite, loss
    above the limit). Otherwise scales grad to the clip norm if it is above it (a clip norm of 0 is off)."""
    norm = math.sqrt(_squared_norm(grad))
    if not (math.isfinite(loss) and math.isfinite(norm)) or loss > hyper[HYPER_MAX_LOSS]:
        return norm, False
    max_norm = hyper[HYPER_CLIP]
    if max_norm > 0 and norm > max_norm:
        scale = grad.dtype.type(max_norm / norm)
        for k in range(grad.shape[0]):
            grad[k] *= scale
    return norm, True


# ---- products ----------------------------------------------------------------------------------------------------
@njit(error_model="numpy")
def _add_product(out, left, right):
    """out (M, N) += left (M, K) @ right (K, N). The inner loops run along rows of out and right (contiguous), two
    rows of out and four k at a time: each value of right loaded serves two rows, each row of out is loaded and
    stored once per four products."""
    M, N = out.shape
    K = right.shape[0]
    for m in range(0, M - 1, 2):
        row_a, row_b, coefficients_a, coefficients_b = out[m], out[m + 1], left[m], left[m + 1]
        k = 0
        while k + 4 <= K:
            a0, a1, a2, a3 = coefficients_a[k], coefficients_a[k + 1], coefficients_a[k + 2], coefficients_a[k + 3]
            b0, b1, b2, b3 = coefficients_b[k], coefficients_b[k + 1], coefficients_b[k + 2], coefficients_b[k + 3]
            r0, r1, r2, r3 = right[k], right[k + 1], right[k + 2], right[k + 3]
            for n in range(N):
                x0, x1, x2, x3 = r0[n], r1[n], r2[n], r3[n]
                row_a[n] += (a0 * x0 + a1 * x1) + (a2 * x2 + a3 * x3)
                row_b[n] += (b0 * x0 + b1 * x1) + (b2 * x2 + b3 * x3)
            k += 4
        while k < K:
            a0, b0, r0 = coefficients_a[k], coefficients_b[k], right[k]
            for n in range(N):
                row_a[n] += a0 * r0[n]
                row_b[n] += b0 * r0[n]
            k += 1
    if M % 2:
        row, coefficients = out[M - 1], left[M - 1]
        k = 0
        while k + 4 <= K:
            a0, a1, a2, a3 = coefficients[k], coefficients[k + 1], coefficients[k + 2], coefficients[k + 3]
            r0, r1, r2, r3 = right[k], right[k + 1], right[k + 2], right[k + 3]
            for n in range(N):
                row[n] += (a0 * r0[n] + a1 * r1[n]) + (a2 * r2[n] + a3 * r3[n])
            k += 4
        while k < K:
            a0, r0 = coefficients[k], right[k]
            for n in range(N):
                row[n] += a0 * r0[n]
            k += 1


@njit(error_model="numpy")
def _transpose_into(matrix, out):
    """out (C, R) = matrix (R, C)^T, striding through the shorter side (long strides thrash the cache)."""
    R, C = matrix.shape
    if R <= C:
        for r in range(R):
            row = matrix[r]
            for c in range(C):
                out[c, r] = row[c]
    else:
        for c in range(C):
            row = out[c]
            for r in range(R):
                row[r] = matrix[r, c]


@njit(error_model="numpy")
def _add_weights_times_inputs(z, weights, weights_t, inputs):
    """z (R, B) += weights (R, K) @ inputs (K, B); at B = 1 as z^T += inputs^T @ weights_t (K, R)."""
    R, B = z.shape
    if B == 1:
        _add_product(z.reshape((1, R)), inputs.reshape((1, inputs.shape[0])), weights_t)
    else:
        _add_product(z, weights, inputs)


@njit(error_model="numpy")
def _back_through_weights(d_h, w_hh, w_hh_t, d_z):
    """d_h (H, B) = W_hh^T d_z (what h_{t-1} receives), d_z (R, B); w_hh (R, H), w_hh_t (H, R)."""
    d_h[:] = 0
    H, B = d_h.shape
    if B == 1:
        _add_product(d_h.reshape((1, H)), d_z.reshape((1, d_z.shape[0])), w_hh)
    else:
        _add_product(d_h, w_hh_t, d_z)


@njit(error_model="numpy")
def _add_weight_gradient(grad_t, inputs, d_z, inputs_t, d_z_t):
    """grad_t (K, R) += sum over steps t of inputs[t] (K, B) @ d_z[t]^T (B, R): the gradient of [b | W_ih | W_hh],
    transposed. inputs_t (K, T) and d_z_t (B, R) are scratch. At B = 1 all steps are one product (K, T) @ (T, R)."""
    T, R, B = d_z.shape
    if B == 1:
        for t in range(T):
            for k in range(inputs.shape[1]):
                inputs_t[k, t] = inputs[t, k, 0]
        _add_product(grad_t, inputs_t, d_z.reshape((T, R)))
    else:
        for t in range(T):
            _transpose_into(d_z[t], d_z_t)
            _add_product(grad_t, inputs[t], d_z_t)


@njit(error_model="numpy")
def _pack_weights(bias, w_ih, w_hh, weights, weights_t):
    """weights = [b | W_ih | W_hh] (R, 3+H) and its transpose weights_t (3+H, R)."""
    for r in range(bias.shape[0]):
        weights[r, 0] = bias[r]
        weights[r, 1] = w_ih[r, 0]
        weights[r, 2] = w_ih[r, 1]
        for k in range(w_hh.shape[1]):
            weights[r, 3 + k] = w_hh[r, k]
    _transpose_into(weights, weights_t)


@njit(error_model="numpy")
def _unpack_gradient(grad_t, grad_out, bias_out_grad, options, grad):
    """The flat gradient (weight_ih, weight_hh, bias, weight_out, bias_out) from grad_t = d [b | W_ih | W_hh]^T;
    zero for the biases of a model without them."""
    K, R = grad_t.shape
    H = K - 3
    n_ih, n_hh = 2 * R, R * H
    _transpose_into(grad_t[1:3], grad[:n_ih].reshape((R, 2)))
    _transpose_into(grad_t[3:], grad[n_ih : n_ih + n_hh].reshape((R, H)))
    grad[n_ih + n_hh : n_ih + n_hh + R] = grad_t[0]
    grad[n_ih + n_hh + R : n_ih + n_hh + R + H] = grad_out
    grad[n_ih + n_hh + R + H] = bias_out_grad
    if options[OPTION_BIAS] == NO_BIAS_CODE:
        grad[n_ih + n_hh : n_ih + n_hh + R] = 0
        grad[n_ih + n_hh + R + H] = 0


# ---- what the models share: inputs, head, loss -------------------------------------------------------------------
@njit(error_model="numpy")
def _set_inputs(a, b, first, inputs):
    """inputs[t] = [1; bit t of a; bit t of b; h_{t-1}] for the B samples from first on (inputs (T+1, 3+H, B));
    h_0 = 0. The h rows of later steps are written by the steps."""
    one = inputs.dtype.type(1.0)
    for t in range(inputs.shape[0]):
        for s in range(inputs.shape[2]):
            inputs[t, 0, s] = one
            inputs[t, 1, s] = _bit(a[first + s], t, one)
            inputs[t, 2, s] = _bit(b[first + s], t, one)
    inputs[0, 3:] = 0


@njit(error_model="numpy")
def _scale_units(values, unit_scale):
    """values (H, B) *= unit_scale (H,) per row: knocking units out."""
    for k in range(values.shape[0]):
        for s in range(values.shape[1]):
            values[k, s] *= unit_scale[k]


@njit(error_model="numpy")
def _head_step(w_out, b_out, hidden, probs):
    """probs (B,) = sigmoid(W_out h + b_out) for hidden (H, B)."""
    probs[:] = 0
    for k in range(w_out.shape[0]):
        w_k, h_k = w_out[k], hidden[k]
        for s in range(probs.shape[0]):
            probs[s] += w_k * h_k[s]
    for s in range(probs.shape[0]):
        probs[s] = _sigmoid(probs[s] + b_out[0])


@njit(error_model="numpy")
def _head(w_out, b_out, inputs, probs):
    """probs[t] = sigmoid(W_out h_t + b_out) for every step, h_t being the h rows of inputs[t + 1]."""
    for t in range(probs.shape[0]):
        _head_step(w_out, b_out, inputs[t + 1, 3:], probs[t])


@njit(error_model="numpy")
def _back_through_head(a, b, first, t, probs, w_out, inputs, options, d_logit, grad_out, d_h):
    """Step t of the loss (float64, summed over the batch), d_logit = d loss / d logit (with the sigmoid, averaged
    over the batch), the head's gradient added to grad_out (H,), and d_h (H, B) += W_out^T d_logit.
    Returns (loss, d bias_out)."""
    B = d_logit.shape[0]
    one = d_logit.dtype.type(1.0)
    inv_batch = one / B
    squared = options[OPTION_LOSS] == SQUARED_CODE
    loss = 0.0
    d_bias_out = d_logit.dtype.type(0.0)
    for s in range(B):
        target = _bit(a[first + s] + b[first + s], t, one)  # bit t of a + b
        p = probs[t, s]
        if squared:  # (p - y)^2 / 2: d / d logit = (p - y) p (1 - p)
            loss += 0.5 * (float(p) - float(target)) ** 2
            d_logit[s] = (p - target) * p * (one - p) * inv_batch
        else:  # cross-entropy: d / d logit = p - y (the sigmoid's p (1 - p) cancels)
            loss += _bce_term(p, target)
            d_logit[s] = (p - target) * inv_batch
        d_bias_out += d_logit[s]
    hidden = inputs[t + 1, 3:]
    for k in range(w_out.shape[0]):
        w_k, h_k, d_h_k = w_out[k], hidden[k], d_h[k]
        total = grad_out[k]
        for s in range(B):
            total += d_logit[s] * h_k[s]
            d_h_k[s] += w_k * d_logit[s]
        grad_out[k] = total
    return loss, d_bias_out


# ---- LSTM --------------------------------------------------------------------------------------------------------
@njit(error_model="numpy")
def _lstm_views(flat, H):
    """weight_ih (4H, 2), weight_hh (4H, H), bias (4H,), weight_out (H,) (the single output's row), bias_out (1,)."""
    n_ih, n_hh = 4 * H * 2, 4 * H * H
    w_ih = flat[:n_ih].reshape((4 * H, 2))
    w_hh = flat[n_ih : n_ih + n_hh].reshape((4 * H, H))
    bias = flat[n_ih + n_hh : n_ih + n_hh + 4 * H]
    start = n_ih + n_hh + 4 * H
    return w_ih, w_hh, bias, flat[start : start + H], flat[start + H : start + H + 1]


@njit(error_model="numpy")
def _lstm_step(weights, weights_t, unit_scale, scaled, inputs, gates, c_prev, c, c_tanh, h):
    """One step for the columns of inputs (3+H, B) = [1; x_t; h_{t-1}]: gates (4H, B) i, f, g, o after their
    functions, c (H, B) from c_prev, c_tanh = tanh(c), h = o tanh(c). weights = [b | W_ih | W_hh] (4H, 3+H),
    weights_t its transpose. If scaled, unit_scale (H,) multiplies c and h."""
    R, B = gates.shape
    n = (R // 4) * B
    gates[:] = 0
    _add_weights_times_inputs(gates, weights, weights_t, inputs)  # z = W_ih x_t + W_hh h_{t-1} + b
    # the gate blocks as separate views: a loop index that starts at 0 is one LLVM can vectorize over (an offset
    # index such as 2n + j might be negative, as far as it knows, which needs a gather)
    blocks = gates.reshape((4, n))
    i, f, g, o = blocks[0], blocks[1], blocks[2], blocks[3]
    for j in range(n):
        i[j] = _sigmoid(i[j])
        f[j] = _sigmoid(f[j])
        g[j] = _tanh(g[j])
        o[j] = _sigmoid(o[j])
    c_prev_flat, c_flat = c_prev.reshape(n), c.reshape(n)
    for j in range(n):
        c_flat[j] = f[j] * c_prev_flat[j] + i[j] * g[j]  # c = f c_{t-1} + i g
    if scaled:
        _scale_units(c, unit_scale)
    c_tanh_flat, h_flat = c_tanh.reshape(n), h.reshape(n)
    for j in range(n):
        c_tanh_flat[j] = _tanh(c_flat[j])
        h_flat[j] = o[j] * c_tanh_flat[j]  # h = o tanh(c)
    if scaled:
        _scale_units(h, unit_scale)


@njit(error_model="numpy")
def _lstm_forward(weights, weights_t, unit_scale, scaled, inputs, gates, cell, cell_tanh):
    """All T steps for the columns of inputs (T+1, 3+H, B) (filled by _set_inputs; the steps write h_t into
    inputs[t+1]). Fills gates (T, 4H, B), cell (T+1, H, B) ([0] = c_0 = 0), cell_tanh (T, H, B)."""
    cell[0] = 0
    for t in range(gates.shape[0]):
        _lstm_step(weights, weights_t, unit_scale, scaled, inputs[t], gates[t], cell[t], cell[t + 1], cell_tanh[t],
                   inputs[t + 1, 3:])


@njit(error_model="numpy")
def _lstm_backward(w_hh, w_hh_t, w_out, a, b, first, inputs, gates, cell, cell_tanh, probs, options, grad, work):
    """BPTT over the batch the last _lstm_forward saw; writes d loss / d params into grad (flat layout) and
    returns the loss (float64). work: the scratch arrays of _lstm_work."""
    grad_t, grad_out, d_z, inputs_t, d_z_t, d_h, d_c, d_logit = work
    T, R, B = gates.shape
    H = R // 4
    n = H * B
    grad_t[:] = 0
    grad_out[:] = 0
    d_h[:] = 0  # what h_t receives from step t+1 (none at t = T-1)
    d_c[:] = 0  # what c_t receives from step t+1
    loss, bias_out_grad = 0.0, grad.dtype.type(0.0)
    one = grad.dtype.type(1.0)
    for t in range(T - 1, -1, -1):
        step_loss, d_bias_out = _back_through_head(a, b, first, t, probs, w_out, inputs, options, d_logit, grad_out,
                                                         d_h)
        loss += step_loss
        bias_out_grad += d_bias_out
        blocks, d_blocks = gates[t].reshape((4, n)), d_z[t].reshape((4, n))  # i, f, g, o (see _lstm_forward)
        i, f, g, o = blocks[0], blocks[1], blocks[2], blocks[3]
        d_i, d_f, d_g, d_o = d_blocks[0], d_blocks[1], d_blocks[2], d_blocks[3]
        c_prev, c_tanh = cell[t].reshape(n), cell_tanh[t].reshape(n)
        d_h_flat, d_c_flat = d_h.reshape(n), d_c.reshape(n)
        for j in range(n):
            d_c_j = d_h_flat[j] * o[j] * (one - c_tanh[j] * c_tanh[j]) + d_c_flat[j]  # through h = o tanh(c)
            d_i[j] = d_c_j * g[j] * i[j] * (one - i[j])  # back through sigmoid: s' = s (1 - s)
            d_f[j] = d_c_j * c_prev[j] * f[j] * (one - f[j])
            d_g[j] = d_c_j * i[j] * (one - g[j] * g[j])  # back through tanh: 1 - tanh^2
            d_o[j] = d_h_flat[j] * c_tanh[j] * o[j] * (one - o[j])
            d_c_flat[j] = d_c_j * f[j]  # what c_{t-1} receives
        _back_through_weights(d_h, w_hh, w_hh_t, d_z[t])  # what h_{t-1} receives
    _add_weight_gradient(grad_t, inputs, d_z, inputs_t, d_z_t)  # z_t = [b | W_ih | W_hh] [1; x_t; h_{t-1}]
    _unpack_gradient(grad_t, grad_out, bias_out_grad, options, grad)
    return loss / B


@njit(error_model="numpy")
def _lstm_work(flat, H, T, B):
    """Every array a forward and backward of a batch of B needs, allocated once."""
    dtype, K, R = flat.dtype, 3 + H, 4 * H
    model = (np.empty((R, K), dtype), np.empty((K, R), dtype),  # weights, weights_t
             np.empty((T + 1, K, B), dtype), np.empty((T, R, B), dtype),  # inputs, gates
             np.empty((T + 1, H, B), dtype), np.empty((T, H, B), dtype), np.empty((T, B), dtype))  # cell, tanh, p
    backward = (np.empty((K, R), dtype), np.empty(H, dtype), np.empty((T, R, B), dtype),  # grad_t, grad_out, d_z
                np.empty((K, T), dtype), np.empty((B, R), dtype),  # inputs_t, d_z_t
                np.empty((H, B), dtype), np.empty((H, B), dtype), np.empty(B, dtype))  # d_h, d_c, d_logit
    return model, backward


@_kernel
def lstm_train(flat, hidden_size, a, b, n_bits, batch_size, options, hyper, state_1, state_2, adam_steps,
               probs_out, losses_out, norms_out):
    """Train on len(a) // batch_size updates of batch_size consecutive samples, updating flat, state_1,
    state_2 in place. Writes each update's samples' probs (before it) into probs_out (T, N), its loss and
    gradient norm (before clipping) into losses_out, norms_out. Stops before an update that would diverge.
    Returns (updates applied, diverged)."""
    H, T, B = hidden_size, n_bits, batch_size
    w_ih, w_hh, bias, w_out, b_out = _lstm_views(flat, H)
    (weights, weights_t, inputs, gates, cell, cell_tanh, probs), work = _lstm_work(flat, H, T, B)
    grad = np.empty_like(flat)
    unit_scale = np.ones(H, flat.dtype)
    n_updates = a.shape[0] // B
    for update in range(n_updates):
        first = update * B
        _pack_weights(bias, w_ih, w_hh, weights, weights_t)
        _set_inputs(a, b, first, inputs)
        _lstm_forward(weights, weights_t, unit_scale, False, inputs, gates, cell, cell_tanh)
        _head(w_out, b_out, inputs, probs)
        loss = _lstm_backward(w_hh, weights_t[3:], w_out, a, b, first, inputs, gates, cell, cell_tanh, probs,
                              options, grad, work)
        norm, healthy = _check_and_clip(grad, loss, hyper)
        losses_out[update] = loss
        norms_out[update] = norm
        if not healthy:
            return update, True
        probs_out[:, first : first + B] = probs
        _apply_update(flat, grad, options, hyper, state_1, state_2, adam_steps + update + 1)
    return n_updates, False


@_kernel
def lstm_loss_grad(flat, hidden_size, a, b, n_bits, options, grad):
    """The loss over all the pairs as one batch, and its gradient written into grad (flat layout)."""
    H, T, B = hidden_size, n_bits, a.shape[0]
    w_ih, w_hh, bias, w_out, b_out = _lstm_views(flat, H)
    (weights, weights_t, inputs, gates, cell, cell_tanh, probs), work = _lstm_work(flat, H, T, B)
    _pack_weights(bias, w_ih, w_hh, weights, weights_t)
    _set_inputs(a, b, 0, inputs)
    _lstm_forward(weights, weights_t, np.ones(H, flat.dtype), False, inputs, gates, cell, cell_tanh)
    _head(w_out, b_out, inputs, probs)
    return _lstm_backward(w_hh, weights_t[3:], w_out, a, b, 0, inputs, gates, cell, cell_tanh, probs, options,
                          grad, work)


# ---- plain tanh RNN ----------------------------------------------------------------------------------------------
@njit(error_model="numpy")
def _rnn_views(flat, H):
    """weight_ih (H, 2), weight_hh (H, H), bias (H,), weight_out (H,) (the single output's row), bias_out (1,)."""
    w_ih = flat[: 2 * H].reshape((H, 2))
    w_hh = flat[2 * H : 2 * H + H * H].reshape((H, H))
    start = 2 * H + H * H
    return (w_ih, w_hh, flat[start : start + H], flat[start + H : start + 2 * H],
            flat[start + 2 * H : start + 2 * H + 1])


@njit(error_model="numpy")
def _rnn_step(weights, weights_t, options, unit_scale, scaled, inputs, h):
    """One step for the columns of inputs (3+H, B) = [1; x_t; h_{t-1}]: h (H, B) = f([b | W_ih | W_hh] inputs),
    f tanh or sigmoid (options); if scaled, unit_scale (H,) multiplies h."""
    H, B = h.shape
    h[:] = 0
    _add_weights_times_inputs(h, weights, weights_t, inputs)  # z = W_ih x_t + W_hh h_{t-1} + b
    h_flat = h.reshape(H * B)
    if options[OPTION_ACTIVATION] == SIGMOID_CODE:
        for j in range(H * B):
            h_flat[j] = _sigmoid(h_flat[j])
    else:
        for j in range(H * B):
            h_flat[j] = _tanh(h_flat[j])
    if scaled:
        _scale_units(h, unit_scale)


@njit(error_model="numpy")
def _rnn_forward(weights, weights_t, options, unit_scale, scaled, inputs):
    """All T steps for the columns of inputs (T+1, 3+H, B): h_t written into inputs[t+1]."""
    for t in range(inputs.shape[0] - 1):
        _rnn_step(weights, weights_t, options, unit_scale, scaled, inputs[t], inputs[t + 1, 3:])


@njit(error_model="numpy")
def _rnn_backward(w_hh, w_hh_t, w_out, a, b, first, inputs, probs, options, grad, work):
    """BPTT over the batch the last _rnn_forward saw; writes d loss / d params into grad (flat layout) and
    returns the loss (float64). work: the scratch arrays of _rnn_work."""
    grad_t, grad_out, d_z, inputs_t, d_z_t, d_h, d_logit = work
    T = probs.shape[0]
    H, B = d_h.shape
    n = H * B
    grad_t[:] = 0
    grad_out[:] = 0
    d_h[:] = 0  # what h_t receives from step t+1 (none at t = T-1)
    loss, bias_out_grad = 0.0, grad.dtype.type(0.0)
    one = grad.dtype.type(1.0)
    sigmoid_units = options[OPTION_ACTIVATION] == SIGMOID_CODE
    for t in range(T - 1, -1, -1):
        step_loss, d_bias_out = _back_through_head(a, b, first, t, probs, w_out, inputs, options, d_logit, grad_out,
                                                   d_h)
        loss += step_loss
        bias_out_grad += d_bias_out
        h, dz, d_h_flat = inputs[t + 1, 3:].reshape(n), d_z[t].reshape(n), d_h.reshape(n)
        if sigmoid_units:
            for j in range(n):
                dz[j] = d_h_flat[j] * h[j] * (one - h[j])  # back through sigmoid: s (1 - s)
        else:
            for j in range(n):
                dz[j] = d_h_flat[j] * (one - h[j] * h[j])  # back through tanh: 1 - tanh^2
        _back_through_weights(d_h, w_hh, w_hh_t, d_z[t])  # what h_{t-1} receives
    _add_weight_gradient(grad_t, inputs, d_z, inputs_t, d_z_t)  # z_t = [b | W_ih | W_hh] [1; x_t; h_{t-1}]
    _unpack_gradient(grad_t, grad_out, bias_out_grad, options, grad)
    return loss / B


@njit(error_model="numpy")
def _rnn_work(flat, H, T, B):
    """Every array a forward and backward of a batch of B needs, allocated once."""
    dtype, K = flat.dtype, 3 + H
    model = (np.empty((H, K), dtype), np.empty((K, H), dtype),  # weights, weights_t
             np.empty((T + 1, K, B), dtype), np.empty((T, B), dtype))  # inputs, probs
    backward = (np.empty((K, H), dtype), np.empty(H, dtype), np.empty((T, H, B), dtype),  # grad_t, grad_out, d_z
                np.empty((K, T), dtype), np.empty((B, H), dtype),  # inputs_t, d_z_t
                np.empty((H, B), dtype), np.empty(B, dtype))  # d_h, d_logit
    return model, backward


@_kernel
def rnn_train(flat, hidden_size, a, b, n_bits, batch_size, options, hyper, state_1, state_2, adam_steps,
              probs_out, losses_out, norms_out):
    """As lstm_train, for the RNN."""
    H, T, B = hidden_size, n_bits, batch_size
    w_ih, w_hh, bias, w_out, b_out = _rnn_views(flat, H)
    (weights, weights_t, inputs, probs), work = _rnn_work(flat, H, T, B)
    grad = np.empty_like(flat)
    unit_scale = np.ones(H, flat.dtype)
    n_updates = a.shape[0] // B
    for update in range(n_updates):
        first = update * B
        _pack_weights(bias, w_ih, w_hh, weights, weights_t)
        _set_inputs(a, b, first, inputs)
        _rnn_forward(weights, weights_t, options, unit_scale, False, inputs)
        _head(w_out, b_out, inputs, probs)
        loss = _rnn_backward(w_hh, weights_t[3:], w_out, a, b, first, inputs, probs, options, grad, work)
        norm, healthy = _check_and_clip(grad, loss, hyper)
        losses_out[update] = loss
        norms_out[update] = norm
        if not healthy:
            return update, True
        probs_out[:, first : first + B] = probs
        _apply_update(flat, grad, options, hyper, state_1, state_2, adam_steps + update + 1)
    return n_updates, False


@_kernel
def rnn_loss_grad(flat, hidden_size, a, b, n_bits, options, grad):
    """The loss over all the pairs as one batch, and its gradient written into grad (flat layout)."""
    H, T, B = hidden_size, n_bits, a.shape[0]
    w_ih, w_hh, bias, w_out, b_out = _rnn_views(flat, H)
    (weights, weights_t, inputs, probs), work = _rnn_work(flat, H, T, B)
    _pack_weights(bias, w_ih, w_hh, weights, weights_t)
    _set_inputs(a, b, 0, inputs)
    _rnn_forward(weights, weights_t, options, np.ones(H, flat.dtype), False, inputs)
    _head(w_out, b_out, inputs, probs)
    return _rnn_backward(w_hh, weights_t[3:], w_out, a, b, 0, inputs, probs, options, grad, work)


# ---- prediction: every distinct prefix of input bits once --------------------------------------------------------
# The state after step t depends only on bits 0..t of a and b, so pairs that agree there share it: prediction runs
# each step once per distinct prefix, not once per pair (all 16,384 pairs at 8 bits: 38,228 step columns instead of
# 131,072). Each column is computed exactly as in training, so the result does not depend on which other pairs are
# evaluated alongside. Pairs are taken PREDICT_STATE_VALUES / H at a time, which bounds the memory of the states.
PREDICT_STATE_VALUES = 1 << 20  # numbers in one step's states (h or c) of a chunk of pairs: 8 MB in float64


@njit(error_model="numpy")
def _split_groups(a, b, t, order, arranged, parent_start, parent_end, n_parents, start, end, parent):
    """The groups of step t: each group of step t-1 (its pairs order[parent_start[p] : parent_end[p]]) split by
    bit t of a and of b, its pairs rearranged in order so that each new group's pairs are order[start[g] : end[g]];
    parent[g] is the group of step t-1 it continues. Returns the number of groups."""
    count = 0
    sizes, offsets = np.zeros(4, np.int64), np.zeros(4, np.int64)
    for group in range(n_parents):
        lo, hi = parent_start[group], parent_end[group]
        sizes[:] = 0
        for position in range(lo, hi):  # a counting sort of the group's pairs by (bit t of a, bit t of b)
            pair = order[position]
            sizes[2 * ((a[pair] >> t) & 1) + ((b[pair] >> t) & 1)] += 1
        offset = lo
        for code in range(4):
            offsets[code] = offset
            if sizes[code]:
                parent[count], start[count], end[count] = group, offset, offset + sizes[code]
                count += 1
            offset += sizes[code]
        for position in range(lo, hi):
            pair = order[position]
            code = 2 * ((a[pair] >> t) & 1) + ((b[pair] >> t) & 1)
            arranged[offsets[code]] = pair
            offsets[code] += 1
        order[lo:hi] = arranged[lo:hi]
    return count


@njit(error_model="numpy")
def _gather_inputs(a, b, t, first, order, start, parent, h_prev, inputs):
    """inputs (3+H, nb) = [1; bit t of a; bit t of b; h of the parent group] for the groups first .. first+nb-1;
    h_prev (groups of step t-1, H)."""
    one = inputs.dtype.type(1.0)
    for j in range(inputs.shape[1]):
        pair, row = order[start[first + j]], parent[first + j]
        inputs[0, j] = one
        inputs[1, j] = _bit(a[pair], t, one)
        inputs[2, j] = _bit(b[pair], t, one)
        for k in range(h_prev.shape[1]):
            inputs[3 + k, j] = h_prev[row, k]


@njit(error_model="numpy")
def _gather_state(first, parent, state_prev, out):
    """out (H, nb) = the parent group's row of state_prev, for the groups first .. first+nb-1."""
    for j in range(out.shape[1]):
        row = parent[first + j]
        for k in range(out.shape[0]):
            out[k, j] = state_prev[row, k]


@njit(error_model="numpy")
def _keep_state(values, first, state):
    """state[first + j] = column j of values (H, nb)."""
    for j in range(values.shape[1]):
        for k in range(values.shape[0]):
            state[first + j, k] = values[k, j]


@njit(error_model="numpy")
def _scatter_probs(probs, first, order, start, end, t, probs_out):
    """probs_out[t, pair] = probs[j] for every pair of group first + j."""
    for j in range(probs.shape[0]):
        for position in range(start[first + j], end[first + j]):
            probs_out[t, order[position]] = probs[j]


@njit(error_model="numpy")
def _prediction_work(N, H):
    """The pairs per chunk, and the arrays that walk the groups of a chunk: order, arranged, the start and end of
    the previous step's groups, and start, end, parent of this step's."""
    chunk = min(max(N, 1), max(PREDICT_BLOCK, PREDICT_STATE_VALUES // H))
    groups = (np.empty(chunk, np.int64), np.empty(chunk, np.int64), np.empty(chunk, np.int64),
              np.empty(chunk, np.int64), np.empty(chunk, np.int64))
    return chunk, np.empty(chunk, np.int64), np.empty(chunk, np.int64), groups


@_kernel
def lstm_predict(flat, hidden_size, a, b, n_bits, options, unit_scale, probs_out):
    """probs_out (T, N) = p(sum bit t = 1) for the pairs (a, b); unit_scale (H,) multiplies c_t and h_t."""
    H, N, P = hidden_size, a.shape[0], PREDICT_BLOCK
    w_ih, w_hh, bias, w_out, b_out = _lstm_views(flat, H)
    dtype, K, R = flat.dtype, 3 + H, 4 * H
    weights, weights_t = np.empty((R, K), dtype), np.empty((K, R), dtype)
    _pack_weights(bias, w_ih, w_hh, weights, weights_t)
    scaled = bool(np.any(unit_scale != 1))
    chunk, order, arranged, (start_prev, end_prev, start, end, parent) = _prediction_work(N, H)
    h_prev, c_prev = np.empty((chunk, H), dtype), np.empty((chunk, H), dtype)  # per group of the previous step
    h_now, c_now = np.empty((chunk, H), dtype), np.empty((chunk, H), dtype)  # per group of this step
    buffers = (np.empty(K * P, dtype), np.empty(R * P, dtype), np.empty(H * P, dtype), np.empty(H * P, dtype),
               np.empty(H * P, dtype), np.empty(H * P, dtype), np.empty(P, dtype))
    for first_pair in range(0, N, chunk):
        n = min(chunk, N - first_pair)
        order[:n] = np.arange(first_pair, first_pair + n)
        start_prev[0], end_prev[0], n_groups = 0, n, 1  # one group before step 0: every pair, h = c = 0
        h_prev[0] = 0
        c_prev[0] = 0
        for t in range(n_bits):
            n_groups = _split_groups(a, b, t, order, arranged, start_prev, end_prev, n_groups, start, end, parent)
            for first in range(0, n_groups, P):
                nb = min(P, n_groups - first)
                inputs, gates = buffers[0][: K * nb].reshape((K, nb)), buffers[1][: R * nb].reshape((R, nb))
                c_from, c = buffers[2][: H * nb].reshape((H, nb)), buffers[3][: H * nb].reshape((H, nb))
                c_tanh, h = buffers[4][: H * nb].reshape((H, nb)), buffers[5][: H * nb].reshape((H, nb))
                probs = buffers[6][:nb]
                _gather_inputs(a, b, t, first, order, start, parent, h_prev, inputs)
                _gather_state(first, parent, c_prev, c_from)
                _lstm_step(weights, weights_t, unit_scale, scaled, inputs, gates, c_from, c, c_tanh, h)
                _head_step(w_out, b_out, h, probs)
                _keep_state(h, first, h_now)
                _keep_state(c, first, c_now)
                _scatter_probs(probs, first, order, start, end, t, probs_out)
            h_prev, h_now, c_prev, c_now = h_now, h_prev, c_now, c_prev
            start_prev, start, end_prev, end = start, start_prev, end, end_prev


@_kernel
def rnn_predict(flat, hidden_size, a, b, n_bits, options, unit_scale, probs_out):
    """probs_out (T, N) = p(sum bit t = 1) for the pairs (a, b); unit_scale (H,) multiplies h_t."""
    H, N, P = hidden_size, a.shape[0], PREDICT_BLOCK
    w_ih, w_hh, bias, w_out, b_out = _rnn_views(flat, H)
    dtype, K = flat.dtype, 3 + H
    weights, weights_t = np.empty((H, K), dtype), np.empty((K, H), dtype)
    _pack_weights(bias, w_ih, w_hh, weights, weights_t)
    scaled = bool(np.any(unit_scale != 1))
    chunk, order, arranged, (start_prev, end_prev, start, end, parent) = _prediction_work(N, H)
    h_prev, h_now = np.empty((chunk, H), dtype), np.empty((chunk, H), dtype)  # per group of the previous step, this
    inputs_buffer, h_buffer, probs_buffer = np.empty(K * P, dtype), np.empty(H * P, dtype), np.empty(P, dtype)
    for first_pair in range(0, N, chunk):
        n = min(chunk, N - first_pair)
        order[:n] = np.arange(first_pair, first_pair + n)
        start_prev[0], end_prev[0], n_groups = 0, n, 1  # one group before step 0: every pair, h = 0
        h_prev[0] = 0
        for t in range(n_bits):
            n_groups = _split_groups(a, b, t, order, arranged, start_prev, end_prev, n_groups, start, end, parent)
            for first in range(0, n_groups, P):
                nb = min(P, n_groups - first)
                inputs, h = inputs_buffer[: K * nb].reshape((K, nb)), h_buffer[: H * nb].reshape((H, nb))
                probs = probs_buffer[:nb]
                _gather_inputs(a, b, t, first, order, start, parent, h_prev, inputs)
                _rnn_step(weights, weights_t, options, unit_scale, scaled, inputs, h)
                _head_step(w_out, b_out, h, probs)
                _keep_state(h, first, h_now)
                _scatter_probs(probs, first, order, start, end, t, probs_out)
            h_prev, h_now = h_now, h_prev
            start_prev, start, end_prev, end = start, start_prev, end, end_prev
