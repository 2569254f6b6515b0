"""How fast the compiled kernels train and predict, beside PyTorch (float32, one thread) and the NumPy path.

run() measures, on one thread and on the same samples from the same initial weights (PyTorch's initialisation,
copied through the state_dict):
  - training throughput (samples/s) of kernels.train_chunk, of PyTorch nn.LSTM + nn.Linear + sigmoid +
    BCELoss(reduction="sum") / B + torch.optim.SGD, and of the NumPy path (core.lstm_fast forward + backward +
    clip_by_global_norm + SGD, as the numpy engine runs it), at batch 1 (H = 16 and 64) and batch 256 (H = 16);
  - prediction of all 16,384 pairs at 8 bits, H = 16: kernels.predict against PyTorch's forward under no_grad.
    kernels.predict computes each distinct prefix of input bits once (38,228 step columns for these pairs, where
    PyTorch computes 131,072): part of its lead is that, not faster arithmetic.
Each side runs in short blocks, the sides interleaved, and keeps its best block, timed by the process's CPU clock:
a busy shared machine slows every side alike and the ratios stay put. Compare ratios, never figures across
machines. time_compilation() times compiling everything warm_up() compiles, cold and from the cache (minutes of
CPU on a slow machine; not part of run()).
"""

from __future__ import annotations

import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from core import kernels, lstm, task
from core.optim import SGD, clip_by_global_norm

N_BITS = 8
LEARNING_RATE = 0.1


@dataclass(frozen=True)
class TrainCase:
    name: str
    batch: int
    hidden: int
    dtype: str  # the kernel's and the NumPy path's precision; PyTorch always runs float32
    vs_torch: float  # the targets: kernel / PyTorch float32 at least this, and kernel / NumPy (0: none)
    vs_numpy: float


TRAIN_CASES = (
    TrainCase("online, H=16, float64 (the app's default)", 1, 16, "float64", 15.0, 8.0),
    TrainCase("online, H=16, float32", 1, 16, "float32", 15.0, 8.0),
    TrainCase("online, H=64, float64", 1, 64, "float64", 5.0, 0.0),
    TrainCase("batch 256, H=16, float32", 256, 16, "float32", 1.5, 0.0),
)
PREDICT_TARGET = 3.0  # kernels.predict float32 / PyTorch float32 inference, all pairs at 8 bits, H=16


def run(quick: bool = False, log: Callable[[str], None] | None = None) -> dict:
    """Measure everything (about 1-2 s per line; quick: a third of that); returns plain data (JSON-serialisable)."""
    log = log or (lambda text: None)
    if not kernels.AVAILABLE:
        raise RuntimeError(f"the compiled kernels are not available: {kernels.UNAVAILABLE_REASON}")
    torch = _import_torch()
    rounds, block_seconds = (2, 0.05) if quick else (4, 0.1)
    log("compiling (or loading) the kernels")
    kernels.warm_up()
    training = []
    for case in TRAIN_CASES:
        log(f"training: {case.name}")
        best = _interleaved(_train_steppers(torch, case), rounds, block_seconds)
        training.append(_judge({"name": case.name, "batch": case.batch, "hidden": case.hidden, "dtype": case.dtype},
                               best, case.vs_torch, case.vs_numpy))
    log("prediction of all pairs")
    best = _interleaved(_predict_steppers(torch), rounds, block_seconds)
    prediction = _judge({"name": "predict 16,384 pairs, 8 bits, H=16, float32", "hidden": 16, "dtype": "float32"},
                        best, PREDICT_TARGET, 0.0)
    prediction["kernel_float64"] = best.get("kernel_float64")
    return {
        "machine": _machine(torch),
        "method": __doc__.split("\n\n")[1].replace("\n", " "),
        "settings": {"quick": quick, "rounds": rounds, "block_seconds": block_seconds, "n_bits": N_BITS,
                     "learning_rate": LEARNING_RATE},
        "training": training,
        "prediction": prediction,
    }


def format_report(result: dict) -> str:
    """The result as lines people read."""
    machine = result["machine"]
    lines = [f"Compiled kernels, samples/s on one thread (numba {machine['numba']}, numpy {machine['numpy']}, torch "
             f"{machine['torch'] or 'not installed'}; {machine['cpu']}). Compare ratios, not figures across machines.",
             "", f"{'':<44} {'kernel':>10} {'torch f32':>10} {'numpy':>10} {'vs torch':>9} {'vs numpy':>9}"]
    for row in [*result["training"], result["prediction"]]:
        cells = [f"{row[key]:>10,.0f}" if row.get(key) else f"{'-':>10}" for key in ("kernel", "torch", "numpy")]
        ratios = [f"{row[key]:>8.1f}x" if row.get(key) else f"{'-':>9}" for key in ("vs_torch", "vs_numpy")]
        verdict = {True: "PASS", False: "FAIL", None: ""}[row["passed"]]
        lines.append(f"{row['name']:<44} {' '.join(cells)} {' '.join(ratios)}  {verdict} {row['target']}")
    float64 = result["prediction"].get("kernel_float64")
    if float64:
        lines.append(f"{'predict in float64 (kernel)':<44} {float64:>10,.0f}")
    return "\n".join(lines)


def time_compilation() -> dict[str, float]:
    """Seconds for warm_up() in a fresh process with an empty numba cache (cold: compiles everything), then in
    another with that cache filled (warm: loads): wall-clock and the process's CPU time (which a busy machine does
    not inflate). Uses a temporary cache folder, not the user's."""
    code = ("import time; wall, cpu = time.perf_counter(), time.process_time(); from core import kernels; "
            "kernels.warm_up(); print(time.perf_counter() - wall, time.process_time() - cpu)")
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    seconds = {}
    with tempfile.TemporaryDirectory() as cache:
        env = {**os.environ, "NUMBA_CACHE_DIR": cache}
        for label in ("cold", "warm"):
            output = subprocess.run([sys.executable, "-c", code], cwd=root, env=env, capture_output=True, text=True,
                                    check=True).stdout
            wall, cpu = output.strip().splitlines()[-1].split()
            seconds[f"{label}_wall"], seconds[f"{label}_cpu"] = float(wall), float(cpu)
    return seconds


# ---- the sides ---------------------------------------------------------------------------------------------------
def _import_torch():  # -> module | None
    try:
        import torch
    except ImportError:
        return None
    torch.set_num_threads(1)
    return torch


def _initial_params(torch, hidden: int) -> lstm.Params:
    """PyTorch's initialisation (so that every side starts alike), or the same law without torch."""
    if torch is None:
        return lstm.init_params(hidden, np.random.default_rng(0), init="pytorch")
    torch.manual_seed(0)
    recurrent, head = torch.nn.LSTM(2, hidden), torch.nn.Linear(hidden, 1)
    state = {f"lstm.{k}": v.detach().numpy().astype(np.float64) for k, v in recurrent.state_dict().items()}
    state.update({f"head.{k}": v.detach().numpy().astype(np.float64) for k, v in head.state_dict().items()})
    return lstm.Params.from_state_dict(state)


def _torch_modules(torch, params: lstm.Params):
    recurrent, head = torch.nn.LSTM(2, params.hidden_size), torch.nn.Linear(params.hidden_size, 1)
    state = {k: torch.from_numpy(v.astype(np.float32)) for k, v in params.state_dict().items()}
    recurrent.load_state_dict({k.removeprefix("lstm."): v for k, v in state.items() if k.startswith("lstm.")})
    head.load_state_dict({k.removeprefix("head."): v for k, v in state.items() if k.startswith("head.")})
    return recurrent, head


def _train_steppers(torch, case: TrainCase) -> dict[str, Callable[[], int]]:
    """For each side, a function that trains on the next few samples of one shared pool (in the same order on every
    side) and returns how many it trained: one batch for PyTorch and NumPy, 256 samples for the kernel."""
    dtype = np.dtype(case.dtype).type
    pool = 16 * max(case.batch, 256)
    a, b = task.sample_operands(np.random.default_rng(1), pool, N_BITS)
    initial = _initial_params(torch, case.hidden)
    batches = [task.make_batch(a[k : k + case.batch], b[k : k + case.batch], N_BITS, dtype)
               for k in range(0, pool, case.batch)]
    steppers = {"kernel": _kernel_block(initial.astype(dtype), a, b, case.batch),
                "numpy": _numpy_block(initial.astype(dtype), batches)}
    if torch is not None:
        steppers["torch"] = _torch_block(torch, initial, batches)
    return steppers


def _cycle(items: list) -> Callable[[], object]:
    position = -1

    def next_item() -> object:
        nonlocal position
        position = (position + 1) % len(items)
        return items[position]

    return next_item


def _kernel_block(params: lstm.Params, a: np.ndarray, b: np.ndarray, batch: int) -> Callable[[], int]:
    optimizer = SGD(LEARNING_RATE)
    per_call = max(batch, 256)
    chunks = _cycle([(a[k : k + per_call], b[k : k + per_call]) for k in range(0, len(a), per_call)])

    def block() -> int:
        chunk_a, chunk_b = chunks()
        return kernels.train_chunk("lstm", params, optimizer, 0.0, chunk_a, chunk_b, N_BITS, batch, np.inf).updates \
            * batch

    return block


def _numpy_block(params: lstm.Params, batches: list) -> Callable[[], int]:
    try:
        from core import lstm_fast as model  # the tuned NumPy path, when it exists
    except ImportError:
        model = lstm
    kwargs = {"workspace": model.Workspace()} if hasattr(model, "Workspace") else {}
    optimizer = SGD(LEARNING_RATE)
    next_batch = _cycle(batches)

    def block() -> int:
        x, y = next_batch()
        _, cache = model.forward(params, x, **kwargs)
        _, grads = model.backward(params, cache, y, **kwargs)
        clip_by_global_norm(grads, 0.0)
        optimizer.step(params, grads)
        return x.shape[1]

    return block


def _torch_block(torch, params: lstm.Params, batches: list) -> Callable[[], int]:
    recurrent, head = _torch_modules(torch, params)
    optimizer = torch.optim.SGD([*recurrent.parameters(), *head.parameters()], lr=LEARNING_RATE)
    loss_fn = torch.nn.BCELoss(reduction="sum")
    next_batch = _cycle([(torch.from_numpy(x.astype(np.float32)), torch.from_numpy(y.astype(np.float32)))
                         for x, y in batches])

    def block() -> int:
        x, y = next_batch()
        optimizer.zero_grad(set_to_none=True)
        output, _ = recurrent(x)  # (T, B, H)
        loss = loss_fn(torch.sigmoid(head(output)), y) / x.shape[1]
        loss.backward()
        optimizer.step()
        return x.shape[1]

    return block


def _predict_steppers(torch) -> dict[str, Callable[[], int]]:
    a, b = task.all_pairs(N_BITS)
    params = _initial_params(torch, 16)
    params32 = params.astype(np.float32)
    steppers: dict[str, Callable[[], int]] = {
        "kernel": lambda: kernels.predict(params32, a, b, N_BITS).shape[1],
        "kernel_float64": lambda: kernels.predict(params, a, b, N_BITS).shape[1],
    }
    if torch is not None:
        recurrent, head = _torch_modules(torch, params)
        x = torch.from_numpy(task.make_batch(a, b, N_BITS, np.float32)[0])

        def torch_block() -> int:
            with torch.no_grad():
                output, _ = recurrent(x)
                torch.sigmoid(head(output))
            return x.shape[1]

        steppers["torch"] = torch_block
    return steppers


# ---- timing ------------------------------------------------------------------------------------------------------
def _interleaved(steppers: dict[str, Callable[[], int]], rounds: int, block_seconds: float) -> dict[str, float]:
    """Best samples per CPU second of each side over `rounds` rounds; in each round every side runs its blocks for
    about block_seconds, one side after the other."""
    for step in steppers.values():  # the first call of anything pays for set-up
        step()
    best = dict.fromkeys(steppers, 0.0)
    for _ in range(rounds):
        for name, step in steppers.items():
            samples, started = 0, time.process_time()
            while (elapsed := time.process_time() - started) < block_seconds:
                samples += step()
            best[name] = max(best[name], samples / elapsed)
    return best


def _judge(row: dict, best: dict[str, float], vs_torch: float, vs_numpy: float) -> dict:
    row.update({key: best.get(key) for key in ("kernel", "torch", "numpy")})
    row["vs_torch"] = row["kernel"] / row["torch"] if row["torch"] else None
    row["vs_numpy"] = row["kernel"] / row["numpy"] if row["numpy"] else None
    checks = []
    if vs_torch and row["vs_torch"] is not None:
        checks.append(row["vs_torch"] >= vs_torch)
    if vs_numpy and row["vs_numpy"] is not None:
        checks.append(row["vs_numpy"] >= vs_numpy)
    row["passed"] = all(checks) if checks else None
    wanted = [f">= {vs_torch:g}x torch"] if vs_torch else []
    wanted += [f">= {vs_numpy:g}x numpy"] if vs_numpy else []
    row["target"] = ", ".join(wanted)
    return row


def _machine(torch) -> dict:
    import numba

    return {"python": platform.python_version(), "numpy": np.__version__, "numba": numba.__version__,
            "torch": torch.__version__ if torch is not None else None,
            "cpu": platform.processor() or platform.machine(), "cores": os.cpu_count()}


if __name__ == "__main__":
    print(format_report(run(log=lambda text: print(text, file=sys.stderr))))
