"""The binary-addition task: encoding, batches, pairs, operand checks."""

import numpy as np
import pytest

from core import task


def test_encode_is_lsb_first_and_decode_inverts_it():
    bits = task.encode(np.array([6, 1]), 4)
    np.testing.assert_array_equal(bits[:, 0], [0, 1, 1, 0])  # 6 = 0b0110, read from the right
    np.testing.assert_array_equal(bits[:, 1], [1, 0, 0, 0])
    values = np.random.default_rng(0).integers(0, 2**31, 1000)
    np.testing.assert_array_equal(task.decode(task.encode(values, 32)), values)


def test_make_batch_shapes_and_sums():
    a, b = np.array([45, 127, 0]), np.array([67, 127, 0])
    x, y = task.make_batch(a, b, 8)
    assert x.shape == (8, 3, 2) and y.shape == (8, 3, 1) and x.dtype == np.float64
    np.testing.assert_array_equal(task.decode(x[:, :, 0]), a)
    np.testing.assert_array_equal(task.decode(x[:, :, 1]), b)
    np.testing.assert_array_equal(task.decode(y[:, :, 0]), a + b)
    assert task.decode(y[:, 1:2, 0])[0] == 254


@pytest.mark.parametrize("n_bits", [2, 16, 17, 32])
def test_make_batch_any_width(n_bits):
    rng = np.random.default_rng(n_bits)
    a, b = task.sample_operands(rng, 50, n_bits)
    assert a.max() < 2 ** (n_bits - 1) and b.max() < 2 ** (n_bits - 1)
    x, y = task.make_batch(a, b, n_bits, np.float32)
    assert x.dtype == np.float32
    np.testing.assert_array_equal(task.decode(y[:, :, 0]), a + b)


def test_sampling_does_not_depend_on_chunking():
    whole = task.sample_operands(np.random.default_rng(3), 10, 8)
    rng = np.random.default_rng(3)
    parts = [task.sample_operands(rng, n, 8) for n in (1, 4, 5)]
    np.testing.assert_array_equal(np.concatenate([p[0] for p in parts]), whole[0])
    np.testing.assert_array_equal(np.concatenate([p[1] for p in parts]), whole[1])


def test_all_pairs_covers_every_pair_once():
    a, b = task.all_pairs(8)
    assert len(a) == 16384
    assert len(set(zip(a.tolist(), b.tolist()))) == 16384
    with pytest.raises(task.TaskError, match="too many"):
        task.all_pairs(16)
    a, b, exhaustive = task.evaluation_pairs(20, np.random.default_rng(0), 100)
    assert not exhaustive and len(a) == 100


def test_carries():
    carry_in, carry_out = task.carries(np.array([3]), np.array([1]), 4)  # 0011 + 0001: carries at bits 0 and 1
    np.testing.assert_array_equal(carry_out[:, 0], [1, 1, 0, 0])
    np.testing.assert_array_equal(carry_in[:, 0], [0, 1, 1, 0])


@pytest.mark.parametrize(
    ("value", "message"),
    [(-1, "out of range"), (128, "out of range"), ("12a", "not a whole number"), ("", "empty"), ("   ", "empty"),
     (10**100, "out of range"), (1.5, "whole number"), (True, "whole number"), (None, "whole number")],
)
def test_check_operand_rejects(value, message):
    with pytest.raises(task.TaskError, match=message):
        task.check_operand(value, 8)


def test_check_operand_accepts_text_and_binary():
    assert task.check_operand(" 45 ", 8) == 45
    assert task.check_operand("0b101", 8) == 5
    assert task.check_operand(np.int64(127), 8) == 127


@pytest.mark.parametrize("n_bits", [1, 33, 0, -4, 2.5, "8"])
def test_bits_out_of_range(n_bits):
    with pytest.raises(task.TaskError, match="bits"):
        task.check_bits(n_bits)
