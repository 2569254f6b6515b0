"""`lstm-explorer bench`: training-step throughput of the NumPy LSTM beside PyTorch's nn.LSTM, and time to solve.

The NumPy side times the loop body of Trainer.step on pre-built batches: lstm.forward, lstm.backward,
clip_by_global_norm (off, as at the defaults, but its norm is still computed) and an SGD update. The PyTorch side
is nn.LSTM + nn.Linear + sigmoid + BCELoss + torch.optim.SGD on one thread. Both start from the same weights (the
PyTorch module's initialisation, copied through the state_dict) and see the same batches, so they do the same
arithmetic. Each cell alternates short timed blocks of the two sides and keeps each side's best block, so a
noisy shared machine slows both alike and the ratios stay stable; blocks are timed by the process's CPU clock
(both sides run on one thread), so time the machine gives to other programs is not counted. Each speed target is
timed once more on its own, its two sides interleaved. Compare ratios, never absolute figures across machines.
One more figure runs Trainer.step itself at batch 1 (with sampling and the held-out check per chunk).
"""

from __future__ import annotations

import os
import platform
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from core import lstm, lstm_fast, task
from core.optim import SGD, clip_by_global_norm
from core.trainer import TrainConfig, Trainer

BATCHES = (1, 16, 64, 256)
HIDDEN_SIZES = (16, 64)
DTYPES = ("float64", "float32")
N_BITS = 8
LEARNING_RATE = 0.1
DATA_BATCHES = 8  # distinct batches each side cycles through
SOLVE_CHECK_EVERY = 100  # samples between checks of "every sum right" while measuring time to solve
SOLVE_LIMIT = 100_000


@dataclass(frozen=True)
class Target:
    """A speed goal: the NumPy cell must reach `required` times the PyTorch cell's throughput."""

    name: str
    numpy_cell: tuple[int, int, str]  # (batch, hidden, dtype)
    torch_cell: tuple[int, int, str]
    required: float


TARGETS = (
    Target("online B=1 H=16: NumPy float64 >= 3x PyTorch float32", (1, 16, "float64"), (1, 16, "float32"), 3.0),
    Target("B=256 H=16 float64: NumPy >= 1.2x PyTorch", (256, 16, "float64"), (256, 16, "float64"), 1.2),
    Target("B=256 H=16 float32: NumPy >= 1.2x PyTorch", (256, 16, "float32"), (256, 16, "float32"), 1.2),
)


def run_benchmark(quick: bool = False, log: Callable[[str], None] | None = None) -> dict:
    """Measure every cell and the time to solve; returns plain data (JSON-serialisable)."""
    log = log or (lambda text: None)
    rounds, block_seconds = (2, 0.015) if quick else (5, 0.05)
    torch = _import_torch()
    cells = []
    for hidden in HIDDEN_SIZES:
        for batch in BATCHES:
            for dtype in DTYPES:
                log(f"batch {batch}, hidden {hidden}, {dtype}")
                steppers = _steppers(torch, batch, hidden, dtype)
                best = _interleaved(steppers, rounds, block_seconds)
                numpy_rate = best["numpy"] * batch
                torch_rate = best["torch"] * batch if "torch" in best else None
                cells.append({
                    "batch": batch, "hidden": hidden, "dtype": dtype,
                    "numpy": numpy_rate, "torch": torch_rate,
                    "ratio": numpy_rate / torch_rate if torch_rate else None,
                })
    log("Trainer.step at batch 1")
    trainer_rate = _trainer_step_rate(rounds, block_seconds)
    solve = None  # --quick leaves out the one measurement that takes seconds whatever the machine
    if not quick:
        log("time to solve at the defaults")
        solve = _time_to_solve()
    return {
        "machine": _machine(torch),
        "method": __doc__.split("\n\n")[1].replace("\n", " "),
        "settings": {"quick": quick, "rounds": rounds, "block_seconds": block_seconds, "n_bits": N_BITS,
                     "learning_rate": LEARNING_RATE},
        "throughput": cells,
        "trainer_step": {"batch": 1, "hidden": 16, "dtype": "float64", "samples_per_second": trainer_rate},
        "solve": solve,
        "targets": [_judge(target, torch, rounds, block_seconds, log) for target in TARGETS],
    }


def format_report(result: dict) -> str:
    """The result as the table people read."""
    machine = result["machine"]
    lines = [
        f"Training-step throughput, samples/s, one thread (numpy {machine['numpy']}, torch "
        f"{machine['torch'] or 'not installed'}; {machine['cpu']})",
        "NumPy: lstm.forward + lstm.backward + SGD update, as inside Trainer.step. PyTorch: nn.LSTM + nn.Linear + "
        "BCELoss + SGD.",
        f"Best of {result['settings']['rounds']} interleaved blocks per side. Compare ratios, not figures across "
        "machines.",
        "",
        f"{'batch':>5}  {'hidden':>6}  {'dtype':<7}  {'numpy':>10}  {'torch':>10}  {'numpy/torch':>11}",
    ]
    for cell in result["throughput"]:
        torch_rate = f"{cell['torch']:,.0f}" if cell["torch"] else "-"
        ratio = f"{cell['ratio']:.2f}x" if cell["ratio"] else "-"
        lines.append(f"{cell['batch']:>5}  {cell['hidden']:>6}  {cell['dtype']:<7}  {cell['numpy']:>10,.0f}  "
                     f"{torch_rate:>10}  {ratio:>11}")
    step = result["trainer_step"]
    lines += ["", f"Trainer.step itself at batch 1, H=16 (sampling and held-out check included): "
                  f"{step['samples_per_second']:,.0f} samples/s"]
    solve = result["solve"]
    if solve is None:
        lines.append("Time to solve at the defaults: left out by --quick")
    elif solve["solved"]:
        lines.append(f"Time to solve at the defaults (H=16, lr 0.1, online SGD, seed 0): every one of the 16,384 sums "
                     f"right after {solve['samples']:,} samples, {solve['training_seconds']:.2f} s of training "
                     f"(checked every {solve['check_every']} samples)")
    else:
        lines.append(f"Time to solve at the defaults: not solved within {solve['samples']:,} samples")
    lines += ["", "Targets (issue 2), each timed on its own with its two sides interleaved:"]
    for target in result["targets"]:
        verdict = "n/a (torch not installed)" if target["passed"] is None else (
            "PASS" if target["passed"] else "FAIL")
        ratio = f"{target['ratio']:.2f}x" if target["ratio"] else "-"
        lines.append(f"  {verdict:<4}  {target['name']}: measured {ratio}")
    return "\n".join(lines)


# ---- the two sides ---------------------------------------------------------------------------------------------
def _import_torch():  # -> module | None
    try:
        import torch
    except ImportError:
        return None
    torch.set_num_threads(1)
    return torch


def _data(batch: int, dtype: str) -> list[tuple[np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(1)
    pairs = (task.sample_operands(rng, batch, N_BITS) for _ in range(DATA_BATCHES))
    return [task.make_batch(a, b, N_BITS, np.dtype(dtype).type) for a, b in pairs]


def _steppers(torch, batch: int, hidden: int, dtype: str) -> dict[str, Callable[[], None]]:
    """One training step per call for each side, from the same initial weights and on the same batches."""
    data = _data(batch, dtype)
    steppers: dict[str, Callable[[], None]] = {}
    if torch is not None:
        torch_step, state_dict = _torch_stepper(torch, hidden, dtype, data)
        params = lstm.Params.from_state_dict(state_dict)
    else:
        params = lstm.init_params(hidden, np.random.default_rng(0), init="pytorch")
    steppers["numpy"] = _numpy_stepper(params.astype(np.dtype(dtype).type), data)
    if torch is not None:
        steppers["torch"] = torch_step
    return steppers


def _numpy_stepper(params: lstm.Params, data: list[tuple[np.ndarray, np.ndarray]]) -> Callable[[], None]:
    optimizer = SGD(LEARNING_RATE)
    workspace = lstm_fast.Workspace()  # as Trainer.step uses
    position = 0

    def step() -> None:
        nonlocal position
        x, y = data[position]
        position = (position + 1) % len(data)
        _, cache = lstm_fast.forward(params, x, workspace=workspace)
        _, grads = lstm_fast.backward(params, cache, y, workspace=workspace)
        clip_by_global_norm(grads, 0.0)
        optimizer.step(params, grads)

    return step


def _torch_stepper(torch, hidden: int, dtype: str, data: list) -> tuple[Callable[[], None], dict[str, np.ndarray]]:
    torch.manual_seed(0)
    recurrent, head = torch.nn.LSTM(2, hidden), torch.nn.Linear(hidden, 1)
    if dtype == "float64":
        recurrent, head = recurrent.double(), head.double()
    state_dict = {f"lstm.{k}": v.detach().numpy().astype(np.float64) for k, v in recurrent.state_dict().items()}
    state_dict.update({f"head.{k}": v.detach().numpy().astype(np.float64) for k, v in head.state_dict().items()})
    optimizer = torch.optim.SGD([*recurrent.parameters(), *head.parameters()], lr=LEARNING_RATE)
    loss_fn = torch.nn.BCELoss(reduction="sum")  # divided by the batch below: the loss per addition
    tensors = [(torch.from_numpy(x), torch.from_numpy(y)) for x, y in data]
    position = 0

    def step() -> None:
        nonlocal position
        x, y = tensors[position]
        position = (position + 1) % len(tensors)
        optimizer.zero_grad(set_to_none=True)
        output, _ = recurrent(x)  # (T, B, H)
        loss = loss_fn(torch.sigmoid(head(output)), y) / x.shape[1]
        loss.backward()
        optimizer.step()

    return step, state_dict


# ---- timing ----------------------------------------------------------------------------------------------------
def _interleaved(steppers: dict[str, Callable[[], None]], rounds: int, block_seconds: float) -> dict[str, float]:
    """Best steps/s of each stepper over `rounds` alternating blocks of at least block_seconds each."""
    for step in steppers.values():  # warm-up: caches, allocator, lazy initialisation
        step()
        step()
    best = dict.fromkeys(steppers, 0.0)
    for _ in range(rounds):
        for name, step in steppers.items():
            best[name] = max(best[name], _block_rate(step, block_seconds))
    return best


def _block_rate(step: Callable[[], None], block_seconds: float) -> float:
    clock = time.process_time  # CPU seconds of this process: all its threads, none of other programs'
    count = 0
    started = clock()
    while True:
        step()
        count += 1
        elapsed = clock() - started
        if elapsed >= block_seconds:
            return count / elapsed


def _trainer_step_rate(rounds: int, block_seconds: float) -> float:
    trainer = Trainer(TrainConfig(heldout_size=256))
    chunk = 200
    best = _interleaved({"trainer": lambda: trainer.step(chunk)}, rounds, block_seconds)
    return best["trainer"] * chunk


def _time_to_solve() -> dict:
    trainer = Trainer(TrainConfig())
    while not trainer.solved and trainer.samples_seen < SOLVE_LIMIT:
        trainer.step(SOLVE_CHECK_EVERY)
    if trainer.solved_at is None:
        return {"solved": False, "samples": trainer.samples_seen, "training_seconds": trainer.training_seconds,
                "check_every": SOLVE_CHECK_EVERY}
    samples, seconds = trainer.solved_at
    return {"solved": True, "samples": samples, "training_seconds": seconds, "check_every": SOLVE_CHECK_EVERY}


def _judge(target: Target, torch, rounds: int, block_seconds: float, log: Callable[[str], None]) -> dict:
    """Time the target's two sides against each other, interleaved in one measurement (its own, with three times the
    rounds of a table cell): sides taken from different cells would be timed seconds apart, and a shared machine
    can change pace between them."""
    if torch is None:
        return {"name": target.name, "numpy": None, "torch": None, "ratio": None, "required": target.required,
                "passed": None}
    log(f"target: {target.name}")
    numpy_step = _steppers(torch, *target.numpy_cell)["numpy"]
    torch_step = _steppers(torch, *target.torch_cell)["torch"]
    best = _interleaved({"numpy": numpy_step, "torch": torch_step}, 3 * rounds, block_seconds)
    numpy_rate, torch_rate = best["numpy"] * target.numpy_cell[0], best["torch"] * target.torch_cell[0]
    ratio = numpy_rate / torch_rate
    return {"name": target.name, "numpy": numpy_rate, "torch": torch_rate, "ratio": ratio,
            "required": target.required, "passed": bool(ratio >= target.required)}


def _machine(torch) -> dict:
    cpu, flags = platform.processor() or platform.machine(), ""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as info:
            for line in info:
                if line.startswith("model name") and cpu in ("", platform.machine(), platform.processor()):
                    cpu = line.split(":", 1)[1].strip()
                if line.startswith("flags"):
                    flags = line
                    break
    except OSError:
        pass
    return {
        "cpu": cpu, "avx512": " avx512f" in flags, "cpu_count": os.cpu_count(),
        "python": sys.version.split()[0], "numpy": np.__version__,
        "torch": None if torch is None else torch.__version__,
    }
