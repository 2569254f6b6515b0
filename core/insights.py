"""Insight computations over the current weights: what the model gets wrong, whether it generalises to longer
numbers, how saturated its gates are, how gradients flow along the bit positions, what each unit is for,
and whether backward agrees with finite differences.

Every function is pure NumPy over a Params (any model in core.models) and returns a frozen dataclass of fresh
arrays, so the explorer can compute it on its worker thread and draw it on the GUI thread unchanged.
`main(argv)` is the headless form: `lstm-explorer insights MODEL.npz --out DIR` writes the numbers as CSV.

Gate saturation follows Karpathy, Johnson & Fei-Fei 2015, "Visualizing and understanding recurrent networks":
a sigmoid gate is left-saturated below 0.1 and right-saturated above 0.9; the tanh candidate g ranges over
(-1, 1), so for it the thresholds are -0.9 and 0.9.
"""

from __future__ import annotations

import csv
import io
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core import length, limits, lstm, models, options, safe_save, session, task
from core.lstm import Params
from core.probe_carry import CarryProbe, probe_carry
from core.trainer import evaluate, predict, score

GRID_MAX_BITS = 8  # the error grid lists every pair up to 8 bits (128 x 128); beyond it, pairs are sampled
GRID_SAMPLES = 4096  # sampled pairs for the summary when the grid is too large
LENGTH_WIDTHS = (8, 16, 32, 64, 128, 256, 512, 1024)  # powers of two: even steps on the Length tab's log axis
LENGTH_SAMPLES = 2000  # sampled pairs per width up to 32 bits where exhaustive evaluation is too big ...
LENGTH_MIN_SAMPLES = 250  # ... beyond, LENGTH_SAMPLES * 32 / width but at least this many (cost: pairs x bits)
SATURATION_SAMPLES = 512
SATURATION_THRESHOLDS = {"i": (0.1, 0.9), "f": (0.1, 0.9), "g": (-0.9, 0.9), "o": (0.1, 0.9)}
GRADIENT_SAMPLES = 256
UNIT_SWEEP_SAMPLES = 1024  # pairs for the one-unit-at-a-time knockout sweep at 16 units (fewer for more units)
GRADCHECK_OK = 1e-6  # max relative error below which backward agrees with finite differences
INSIGHT_SEED = 20150605  # fixed pairs for every view, so numbers change only when the weights do


@dataclass(frozen=True, eq=False)
class Measured:
    """An insight result and the training samples the weights had seen when it was computed."""

    samples_seen: int
    value: object
    request: int = 0  # for on-demand computations (the gradient check): the request this answers


def fit_unit_scale(unit_scale: np.ndarray | None, hidden_size: int) -> np.ndarray | None:
    """unit_scale resized to hidden_size units (new units intact, removed units dropped); None stays None."""
    if unit_scale is None:
        return None
    scale = np.ones(hidden_size)
    keep = min(hidden_size, len(unit_scale))
    scale[:keep] = np.asarray(unit_scale, dtype=np.float64)[:keep]
    return None if np.all(scale == 1.0) else scale


def knocked_units(unit_scale: np.ndarray | None) -> tuple[int, ...]:
    """Indices of the units whose c and h are changed (scale other than 1)."""
    if unit_scale is None:
        return ()
    return tuple(int(k) for k in np.flatnonzero(np.asarray(unit_scale) != 1.0))


# ---- 1. the exhaustive error grid --------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class ErrorGrid:
    """Wrong bits for every pair (or a sample of pairs when n_bits > GRID_MAX_BITS).

    When exhaustive, a, b, predicted and wrong_bits are the flattened grid with a varying slowest, and the
    *_image arrays are (L, L) indexed [b, a] (L = 2**(n_bits-1)) ready to draw with b as rows.
    """

    n_bits: int
    exhaustive: bool
    a: np.ndarray  # (N,)
    b: np.ndarray  # (N,)
    predicted: np.ndarray  # (N,) decoded predicted sums
    wrong_bits: np.ndarray  # (N,) number of wrong output bits, 0..n_bits
    wrong_image: np.ndarray | None  # (L, L) float32 [b, a], or None when sampled
    predicted_image: np.ndarray | None  # (L, L) int64 [b, a], or None when sampled
    position_error: np.ndarray  # (T,) fraction of pairs with output bit t wrong, LSB first
    knocked_out: tuple[int, ...]

    @property
    def accuracy(self) -> float:
        return float(np.mean(self.wrong_bits == 0))

    @property
    def side(self) -> int:
        return task.operand_limit(self.n_bits)

    def histogram(self) -> np.ndarray:
        """(n_bits + 1,) number of pairs with k wrong bits."""
        return np.bincount(self.wrong_bits, minlength=self.n_bits + 1)


def error_grid(params: Params, n_bits: int, unit_scale: np.ndarray | None = None,
               n_samples: int = GRID_SAMPLES, seed: int = INSIGHT_SEED) -> ErrorGrid:
    """Every pair up to GRID_MAX_BITS in one chunked vectorised forward; else n_samples fixed random pairs."""
    unit_scale = fit_unit_scale(unit_scale, params.hidden_size)
    exhaustive = n_bits <= GRID_MAX_BITS
    if exhaustive:
        a, b = task.all_pairs(n_bits)
    else:
        a, b = task.sample_operands(evaluation_rng(n_bits, seed), n_samples, n_bits)
    predicted, wrong_bit = score(params, a, b, n_bits, unit_scale)  # (N,), (T, N)
    wrong = np.count_nonzero(wrong_bit, axis=0)
    position_error = wrong_bit.mean(axis=1)
    wrong_image = predicted_image = None
    if exhaustive:
        side = task.operand_limit(n_bits)
        wrong_image = np.ascontiguousarray(wrong.reshape(side, side).T, dtype=np.float32)  # [b, a]
        predicted_image = np.ascontiguousarray(predicted.reshape(side, side).T)
    return ErrorGrid(n_bits, exhaustive, a, b, predicted, wrong, wrong_image, predicted_image, position_error,
                     knocked_units(unit_scale))


# ---- 2. length generalisation ------------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class LengthResult:
    """Exact-sum accuracy of one set of weights at several bit widths; the trained width is always included."""

    widths: np.ndarray  # (K,) n_bits, ascending
    accuracy: np.ndarray  # (K,) fraction of pairs with every bit right
    low: np.ndarray  # (K,) Wilson 95 % interval on accuracy (the pairs tried are a sample, except where exhaustive)
    high: np.ndarray  # (K,)
    bit_accuracy: np.ndarray  # (K,) fraction of output bits right
    n_pairs: np.ndarray  # (K,)
    exhaustive: np.ndarray  # (K,) bool
    trained_bits: int
    knocked_out: tuple[int, ...]


def evaluation_rng(n_bits: int, seed: int = INSIGHT_SEED) -> np.random.Generator:
    """The generator that draws sampled pairs at one width: the same pairs on every refresh, so views do not flicker."""
    return np.random.default_rng([seed, n_bits])


def length_samples(width: int, n_samples: int = LENGTH_SAMPLES) -> int:
    """Sampled pairs at one width: n_samples up to 32 bits, then fewer as the numbers get longer."""
    return n_samples if width <= 32 else max(min(LENGTH_MIN_SAMPLES, n_samples), n_samples * 32 // width)


def length_generalisation(params: Params, trained_bits: int, widths: tuple[int, ...] = LENGTH_WIDTHS,
                          n_samples: int = LENGTH_SAMPLES, unit_scale: np.ndarray | None = None,
                          seed: int = INSIGHT_SEED) -> LengthResult:
    """trainer.evaluate at each width up to 32 bits (exhaustive where the task allows, else n_samples fixed pairs);
    core.length beyond, up to 1,024 bits, on length_samples(width) fixed pairs."""
    unit_scale = fit_unit_scale(unit_scale, params.hidden_size)
    all_widths = sorted({length.check_eval_bits(w) for w in widths} | {task.check_bits(trained_bits)})
    rows = []  # (sums right, pairs, bit accuracy, exhaustive) per width
    for w in all_widths:
        if w <= task.MAX_BITS:
            r = evaluate(params, w, evaluation_rng(w, seed), unit_scale, n_samples)
            rows.append((int(np.count_nonzero(r.wrong_bits == 0)), len(r.a), r.bit_accuracy, r.exhaustive))
        else:
            r = length.evaluate_width(params, w, length_samples(w, n_samples), evaluation_rng(w, seed), unit_scale)
            rows.append((r.right, r.n_pairs, r.bit_accuracy, r.exhaustive))
    right, pairs = np.array([row[0] for row in rows]), np.array([row[1] for row in rows])
    low, high = length.wilson(right, pairs)
    return LengthResult(
        widths=np.array(all_widths),
        accuracy=right / pairs,
        low=low,
        high=high,
        bit_accuracy=np.array([row[2] for row in rows]),
        n_pairs=pairs,
        exhaustive=np.array([row[3] for row in rows]),
        trained_bits=int(trained_bits),
        knocked_out=knocked_units(unit_scale),
    )


# ---- 3. gate saturation ------------------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class Saturation:
    """Per gate (rows i, f, g, o) and unit: fraction of (step, sample) values beyond each threshold."""

    low: np.ndarray  # (4, H) fraction below the low threshold (0.1; -0.9 for g)
    high: np.ndarray  # (4, H) fraction above the high threshold (0.9 for every gate)
    n_values: int  # T * samples per fraction
    n_bits: int
    knocked_out: tuple[int, ...]


def has_gates(params: object) -> bool:
    """True for models with i, f, g, o gates (the LSTM), False for the plain RNN."""
    return tuple(getattr(models.of(params), "GATES", ())) == lstm.GATES


def saturation_pairs(n_bits: int, n_samples: int = SATURATION_SAMPLES,
                     seed: int = INSIGHT_SEED) -> tuple[np.ndarray, np.ndarray]:
    """The fixed random additions gate saturation is measured on."""
    return task.sample_operands(np.random.default_rng([seed, n_bits, 3]), n_samples, n_bits)


def gate_saturation(params: Params, n_bits: int, unit_scale: np.ndarray | None = None,
                    pairs: tuple[np.ndarray, np.ndarray] | None = None) -> Saturation:
    """Count saturated gate values per unit over the additions in pairs (default saturation_pairs(n_bits)).

    Raises ValueError for a model without gates.
    """
    if not has_gates(params):
        raise ValueError("gate saturation needs a model with gates (the LSTM); this one has none")
    unit_scale = fit_unit_scale(unit_scale, params.hidden_size)
    a, b = pairs if pairs is not None else saturation_pairs(n_bits)
    x, _ = task.make_batch(a, b, n_bits, params.dtype)
    _, cache = models.of(params).forward(params, x, unit_scale)
    low = np.empty((len(lstm.GATES), params.hidden_size))
    high = np.empty_like(low)
    for k, gate in enumerate(lstm.GATES):
        values = cache.gate(gate)  # (T, B, H)
        low_threshold, high_threshold = SATURATION_THRESHOLDS[gate]
        low[k] = np.mean(values < low_threshold, axis=(0, 1))
        high[k] = np.mean(values > high_threshold, axis=(0, 1))
    return Saturation(low, high, n_bits * len(a), n_bits, knocked_units(unit_scale))


# ---- 4. gradient norm per bit position ---------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class GradientNorms:
    """How strongly each bit position's state is pushed by the loss, and how large whole updates are.

    hidden[t] is the mean over samples of ||d loss_s / d h_t||, loss_s being one addition's mean BCE over its
    T bits (the quantity probe.trace reports for a single addition); cell[t] likewise for c_t.
    """

    hidden: np.ndarray  # (T,) bit positions LSB first
    cell: np.ndarray | None  # (T,), None for a model without a cell (the plain RNN)
    n_samples: int
    batch_norms: np.ndarray  # (K,) global L2 norm of the parameter gradient of K batches of batch_size
    batch_size: int

    def clipped_fraction(self, clip_norm: float) -> float:
        """Fraction of those updates that clipping at clip_norm would scale down (0 when clipping is off)."""
        return float(np.mean(self.batch_norms > clip_norm)) if clip_norm > 0 else 0.0


def gradient_pairs(n_bits: int, n_samples: int = GRADIENT_SAMPLES,
                   seed: int = INSIGHT_SEED) -> tuple[np.ndarray, np.ndarray]:
    """The fixed random additions the per-bit gradient norms are averaged over."""
    return task.sample_operands(np.random.default_rng([seed, n_bits, 4]), n_samples, n_bits)


def training_batches(n_bits: int, batch_size: int, max_batches: int = 32,
                     seed: int = INSIGHT_SEED) -> list[tuple[np.ndarray, np.ndarray]]:
    """Fixed random batches like the trainer's, at most 8,192 samples in all, for the update-norm statistics."""
    rng = np.random.default_rng([seed, n_bits, 7])
    n_batches = int(np.clip(8192 // batch_size, 1, max_batches))
    return [task.sample_operands(rng, batch_size, n_bits) for _ in range(n_batches)]


def gradient_norms(params: Params, n_bits: int, batch_size: int = 1, max_batches: int = 32,
                   pairs: tuple[np.ndarray, np.ndarray] | None = None, seed: int = INSIGHT_SEED) -> GradientNorms:
    """State gradients per bit over the additions in pairs (default gradient_pairs(n_bits)), and the
    parameter-gradient norms of up to max_batches random training batches of batch_size."""
    model = models.of(params)
    a, b = pairs if pairs is not None else gradient_pairs(n_bits)
    x, y = task.make_batch(a, b, n_bits, params.dtype)
    _, cache = model.forward(params, x)
    d_hidden, d_cell, _ = model.state_grads(params, cache, y)  # (T, B, H) of the mean loss over T * B values
    # The batch mean divides each addition's own loss gradient by B: undo it to get per-addition norms.
    hidden = np.mean(np.linalg.norm(d_hidden, axis=-1), axis=1) * len(a)
    cell = np.mean(np.linalg.norm(d_cell, axis=-1), axis=1) * len(a) if has_gates(params) else None
    batches = training_batches(n_bits, batch_size, max_batches, seed)
    batch_norms = np.empty(len(batches))
    for k, (batch_a, batch_b) in enumerate(batches):
        batch_x, batch_y = task.make_batch(batch_a, batch_b, n_bits, params.dtype)
        _, grads = model.backward(params, model.forward(params, batch_x)[1], batch_y)
        batch_norms[k] = np.sqrt(np.dot(grads.flat, grads.flat))
    return GradientNorms(hidden, cell, len(a), batch_norms, batch_size)


# ---- 5. knockout -------------------------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class Knockout:
    """Accuracy with and without some units' c and h scaled (0 = knocked out), on the same pairs."""

    unit_scale: np.ndarray | None  # (H,) as applied, None when every unit is intact
    knocked_out: tuple[int, ...]
    intact_accuracy: float
    knocked_accuracy: float
    intact_bit_accuracy: float
    knocked_bit_accuracy: float
    n_pairs: int
    exhaustive: bool
    single_unit_accuracy: np.ndarray  # (H,) accuracy on UNIT_SWEEP_SAMPLES pairs with only unit k knocked out
    sweep_pairs: int


def sweep_pairs(n_bits: int, n_samples: int, seed: int = INSIGHT_SEED) -> tuple[np.ndarray, np.ndarray]:
    """The fixed random additions of the one-unit-at-a-time knockout sweep."""
    return task.sample_operands(np.random.default_rng([seed, n_bits, 5]), n_samples, n_bits)


def knockout_effect(params: Params, n_bits: int, unit_scale: np.ndarray | None,
                    sweep_samples: int | None = None, seed: int = INSIGHT_SEED) -> Knockout:
    """trainer.evaluate intact and with unit_scale, plus accuracy with each unit alone knocked out.

    The sweep uses sweep_samples fixed pairs (default UNIT_SWEEP_SAMPLES, scaled down above 16 units so that the
    H forwards cost about the same whatever H).
    """
    if sweep_samples is None:
        sweep_samples = max(128, UNIT_SWEEP_SAMPLES * 16 // max(16, params.hidden_size))
    unit_scale = fit_unit_scale(unit_scale, params.hidden_size)
    intact = evaluate(params, n_bits, evaluation_rng(n_bits, seed))
    knocked = intact if unit_scale is None else evaluate(params, n_bits, evaluation_rng(n_bits, seed),
                                                         unit_scale)
    a, b = sweep_pairs(n_bits, sweep_samples, seed)
    single = np.empty(params.hidden_size)
    for unit in range(params.hidden_size):
        scale = np.ones(params.hidden_size)
        scale[unit] = 0.0
        single[unit] = np.mean(task.decode(predict(params, a, b, n_bits, scale)) == a + b)
    return Knockout(unit_scale, knocked_units(unit_scale), intact.accuracy, knocked.accuracy,
                    intact.bit_accuracy, knocked.bit_accuracy, len(intact.a), intact.exhaustive, single, len(a))


# ---- 6. gradient check -------------------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class GradientCheck:
    """Central finite differences (five-point) against backward on a float64 copy of the weights."""

    max_relative_error: float
    worst: str  # which weight, e.g. "weight_hh[12, 3]"
    n_checked: int
    n_biases: int
    batch_size: int
    analytic: np.ndarray  # (n_checked,)
    numeric: np.ndarray  # (n_checked,)

    @property
    def ok(self) -> bool:
        return self.max_relative_error < GRADCHECK_OK

    @property
    def verdict(self) -> str:
        if self.ok:
            return f"OK: backward matches finite differences (max relative error {self.max_relative_error:.1e} < 1e-6)"
        return (f"MISMATCH: max relative error {self.max_relative_error:.1e} at {self.worst} "
                f"(expected < 1e-6): backward disagrees with finite differences")


def _flat_names(params: Params) -> list[tuple[str, int, tuple[int, ...]]]:
    """(field name, offset in flat, shape) of each weight array, in flat-buffer order."""
    spans, offset = [], 0
    for name, array in params.arrays():
        spans.append((name, offset, array.shape))
        offset += array.size
    return spans


def gradient_check(params: Params, n_bits: int, batch_size: int = 4, n_weights: int = 50, eps: float = 1e-3,
                   seed: int = INSIGHT_SEED) -> GradientCheck:
    """Compare backward with central finite differences of the loss for n_weights random weights plus every bias.

    The relative error of one weight is |analytic - numeric| / max(|analytic| + |numeric|, 1e-10); the floor
    keeps weights whose gradient is zero to rounding from counting as mismatches.
    """
    model = models.of(params)
    checked = params.astype(np.float64)  # a copy: the caller's weights are never touched
    rng = np.random.default_rng([seed, n_bits, 6])
    x, y = task.make_batch(*task.sample_operands(rng, batch_size, n_bits), n_bits, np.float64)
    _, grads = model.backward(checked, model.forward(checked, x)[1], y)
    sign = 2.0 * y - 1.0  # (T, B, 1)

    spans = _flat_names(checked)
    bias_index = np.concatenate([np.arange(off, off + int(np.prod(shape))) for name, off, shape in spans
                                 if "bias" in name])
    weight_index = np.setdiff1d(np.arange(checked.flat.size), bias_index)
    if not getattr(checked, "use_bias", True):  # a model without biases: they are not parameters to check
        bias_index = bias_index[:0]
    chosen = rng.choice(weight_index, size=min(n_weights, weight_index.size), replace=False)
    index = np.concatenate([np.sort(chosen), bias_index])

    def loss() -> float:
        # The model's loss from the logits, s = +1 for a 1 bit and -1 for a 0 bit: BCE is log(1 + e^(-s z)) and
        # the squared error (p - y)^2 / 2 is sigmoid(-s z)^2 / 2. On a trained model p is within 1e-8 of 0 or 1:
        # the rounding of 1 - p (or of log(1 + e^z) - z) would swamp the difference.
        margin = -sign * model.forward(checked, x)[1].logits
        terms = np.logaddexp(0.0, margin) if checked.loss == "bce" else 0.5 * lstm.sigmoid(margin) ** 2
        return float(terms.sum()) / batch_size  # per addition: summed over the bits, averaged over the batch

    def shifted_loss(flat_index: int, shift: float) -> float:
        original = checked.flat[flat_index]
        checked.flat[flat_index] = original + shift
        value = loss()
        checked.flat[flat_index] = original
        return value

    numeric = np.empty(index.size)
    for k, flat_index in enumerate(index):
        # Five-point central difference: error O(eps^4), so curvature does not masquerade as a mismatch on
        # weights whose gradient is a thousand times smaller than the largest.
        near = shifted_loss(flat_index, eps) - shifted_loss(flat_index, -eps)
        far = shifted_loss(flat_index, 2 * eps) - shifted_loss(flat_index, -2 * eps)
        numeric[k] = (8 * near - far) / (12 * eps)
    analytic = grads.flat[index].copy()
    relative = np.abs(analytic - numeric) / np.maximum(np.abs(analytic) + np.abs(numeric), 1e-10)
    worst_k = int(np.argmax(relative))
    return GradientCheck(float(relative[worst_k]), _describe_index(spans, int(index[worst_k])), index.size,
                         bias_index.size, batch_size, analytic, numeric)


def _describe_index(spans: list[tuple[str, int, tuple[int, ...]]], flat_index: int) -> str:
    for name, offset, shape in spans:
        size = int(np.prod(shape))
        if offset <= flat_index < offset + size:
            position = np.unravel_index(flat_index - offset, shape)
            return f"{name}[{', '.join(str(int(p)) for p in position)}]"
    return f"flat[{flat_index}]"


# ---- 7. the carry, read by a linear probe ------------------------------------------------------------------------
def carry_probe(params: Params, n_bits: int, unit_scale: np.ndarray | None = None) -> CarryProbe:
    """How well a logistic regression on [c_t, h_t] reads the carry out of each step, overall and by carry chain
    (core.probe_carry), over every pair at n_bits when they can be listed."""
    return probe_carry(params, n_bits, fit_unit_scale(unit_scale, params.hidden_size))


# ---- headless: CSV export ----------------------------------------------------------------------------------------
def write_csvs(params: Params, n_bits: int, out_dir: Path, unit_scale: np.ndarray | None = None,
               probe: CarryProbe | None = None) -> tuple[dict[str, Path], ErrorGrid]:
    """Write error_grid.csv, length.csv, saturation.csv (gated models only), gradients.csv, carry_probe.csv and
    carry_probe_units.csv into out_dir.

    Returns the paths written and the error grid (for a summary line). probe: carry_probe's result, if at hand.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    grid = error_grid(params, n_bits, unit_scale)
    length = length_generalisation(params, n_bits, unit_scale=unit_scale)
    gradients = gradient_norms(params, n_bits)
    cell = gradients.cell if gradients.cell is not None else np.full(n_bits, np.nan)
    tables: dict[str, tuple[list[str], list[tuple]]] = {
        "error_grid": (["a", "b", "true_sum", "predicted_sum", "wrong_bits"],
                       list(zip(grid.a, grid.b, grid.a + grid.b, grid.predicted, grid.wrong_bits, strict=True))),
        "length": (["n_bits", "pairs", "exhaustive", "exact_sum_accuracy", "bit_accuracy"],
                   list(zip(length.widths, length.n_pairs, length.exhaustive.astype(int), length.accuracy,
                            length.bit_accuracy, strict=True))),
        "gradients": (["bit_position_lsb_first", "grad_hidden_norm", "grad_cell_norm"],
                      list(zip(range(n_bits), gradients.hidden, cell, strict=True))),
    }
    probe = probe or carry_probe(params, n_bits, unit_scale)
    tables["carry_probe"] = (["carry_chain_steps", "held_out_values", "probe_accuracy"],
                             list(zip(range(n_bits), probe.chain_count, probe.chain_accuracy, strict=True)))
    tables["carry_probe_units"] = (["unit", "standardised_weight"],
                                   list(zip(range(params.hidden_size), probe.unit_weight, strict=True)))
    if has_gates(params):
        saturation = gate_saturation(params, n_bits, unit_scale)
        tables["saturation"] = (
            ["gate", "unit", "fraction_low", "fraction_high", "low_threshold", "high_threshold"],
            [(gate, unit, saturation.low[k, unit], saturation.high[k, unit], *SATURATION_THRESHOLDS[gate])
             for k, gate in enumerate(lstm.GATES) for unit in range(params.hidden_size)])
    paths = {}
    for name, (header, rows) in tables.items():
        path = out_dir / f"{name}.csv"
        text = io.StringIO(newline="")
        writer = csv.writer(text)
        writer.writerow(header)
        writer.writerows([_plain(v) for v in row] for row in rows)
        safe_save.write_text(path, text.getvalue())  # a reader never sees half a file; only a regular file replaced
        paths[name] = path
    return paths, grid


def _plain(value: object) -> object:
    """NumPy scalars as plain Python numbers, floats with full precision."""
    if isinstance(value, np.integer | np.bool_):
        return int(value)
    if isinstance(value, np.floating | float):
        return repr(float(value))
    return value


def parse_units(text: str, hidden_size: int) -> np.ndarray:
    """'3,7' -> unit_scale (H,) with units 3 and 7 at 0; raises ValueError naming a bad unit."""
    scale = np.ones(hidden_size)
    for part in filter(None, (p.strip() for p in text.split(","))):
        if not part.isdigit() or int(part) >= hidden_size:
            raise ValueError(f"unit {part!r} is not a unit number from 0 to {hidden_size - 1}")
        scale[int(part)] = 0.0
    return scale


def main(argv: list[str] | None = None) -> int:
    """`insights MODEL.npz --out DIR [--knockout 3,7] [--bits N]`: write the insight CSVs; 0 done, 2 bad input."""
    parser = options.OneLineParser(
        prog="lstm-explorer insights",
        description="Write the insight views of a saved model as CSV files: error grid (every pair up to 8 bits), "
                    "length generalisation, gate saturation, gradient norm per bit position.")
    parser.add_argument("model", help="a model or session .npz saved by lstm-explorer")
    parser.add_argument("--out", required=True, help="directory for the CSV files (created if missing)")
    parser.add_argument("--knockout", default="", metavar="UNITS",
                        help="comma-separated units whose c and h are zeroed for evaluation, e.g. 3,7")
    parser.add_argument("--bits", type=int, default=None,
                        help="bit width trained on (default: from the file's config, else 8)")
    try:
        args = parser.parse_args(argv)
    except SystemExit as done:  # --help (0) or a usage error argparse has printed (2)
        return int(done.code or 0)
    try:
        options.output_folder("--out", args.out)
        params, config = session.load_model(args.model)
        n_bits = task.check_bits(args.bits if args.bits is not None else config.n_bits if config else 8)
        limits.check_evaluation(params.hidden_size, n_bits, params.dtype)
        unit_scale = parse_units(args.knockout, params.hidden_size) if args.knockout else None
        probe = carry_probe(params, n_bits, unit_scale)
        paths, grid = write_csvs(params, n_bits, Path(args.out), unit_scale, probe)
        check = gradient_check(params, n_bits)
    except (OSError, ValueError) as error:  # SessionError and TaskError are ValueErrors
        print(f"{parser.prog}: error: {options.one_line(error)}", file=sys.stderr)
        return 2
    kind = "all pairs" if grid.exhaustive else f"{len(grid.a):,} sampled pairs"
    print(f"exact-sum accuracy at {n_bits} bits: {grid.accuracy:.2%} ({kind})")
    print(f"gradient check: {check.verdict}")
    print(f"carry probe: {probe.summary()}")
    for path in paths.values():
        print(f"wrote {path}")
    return 0
