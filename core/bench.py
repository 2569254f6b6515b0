"""`lstm-explorer bench`: the engines' speed beside PyTorch, time to solve, and a sweep on each engine.

Three measurements, each comparing sides within one run (compare the ratios; absolute figures depend on the CPU and
on what else the machine is doing):
- Training steps and prediction (core.kernels.bench): the compiled kernels beside PyTorch float32 nn.LSTM and the
  NumPy path, on one thread, from the same weights on the same samples, the sides in interleaved blocks timed by the
  process's CPU clock, so a busy machine slows every side alike.
- Time to solve at the defaults: a Trainer on the compiled engine until its check finds every sum right, counting
  training time (checks included), not start-up or compilation.
- A sweep of learning rate x hidden size x seed, every cell trained until solved or 10,001 samples (the notebook's
  budget), one process: all cells on the compiled engine; the same cells (every SWEEP_NUMPY_EVERY-th, or all with
  --full-sweep) on NumPy, and the ratio over the cells both ran.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from core import engine as engine_module
from core.trainer import CHECK_EVERY, TrainConfig, Trainer

SOLVE_LIMIT = 100_000
SOLVE_TARGET_SECONDS = 0.25
SWEEP_LEARNING_RATES = (0.03, 0.1, 0.3)
SWEEP_HIDDEN = (4, 8, 16)
SWEEP_SEEDS = 5
SWEEP_SAMPLES = 10_001
SWEEP_NUMPY_EVERY = 5  # NumPy trains every fifth cell unless --full-sweep: the whole grid takes it minutes
SWEEP_TARGET = 10.0


def run_benchmark(quick: bool = False, full_sweep: bool = False, log: Callable[[str], None] | None = None) -> dict:
    """Measure everything; returns plain data (JSON-serialisable). quick: shorter timing blocks, and no sweep."""
    log = log or (lambda text: None)
    if engine_module.resolve("auto") != "compiled":
        from core import kernels

        return {"compiled": None, "reason": kernels.UNAVAILABLE_REASON or "numba is not installed"}
    from core.kernels import bench as kernel_bench

    result = {"compiled": kernel_bench.run(quick=quick, log=log)}
    log("time to solve at the defaults")
    result["solve"] = time_to_solve()
    result["sweep"] = None if quick else sweep_speed(full_sweep, log)
    return result


def time_to_solve(engine: str = "compiled") -> dict:
    """Training seconds until every sum is right at the defaults (seed 0), checks included."""
    trainer = Trainer(TrainConfig(), engine=engine)
    trainer.step(1)  # the first call loads the kernels; not part of training
    trainer = Trainer(TrainConfig(), engine=engine)
    started = time.process_time()
    while not trainer.solved and trainer.samples_seen < SOLVE_LIMIT:
        trainer.step(4096, stop_when_solved=True)
    cpu_seconds = time.process_time() - started  # this process's CPU time: another program's load not counted
    solved = trainer.solved_at is not None
    return {"engine": engine, "solved": solved, "samples": trainer.solved_at[0] if solved else trainer.samples_seen,
            "training_seconds": trainer.solved_at[1] if solved else trainer.training_seconds,
            "cpu_seconds": cpu_seconds, "target_seconds": SOLVE_TARGET_SECONDS,
            "passed": bool(solved and cpu_seconds <= SOLVE_TARGET_SECONDS), "check_every": CHECK_EVERY}


def sweep_speed(full: bool, log: Callable[[str], None]) -> dict:
    """The sweep's cells on both engines in this process, timed by the process's CPU clock."""
    from core.sweep import run_cell

    configs = [TrainConfig(learning_rate=lr, hidden_size=hidden, seed=seed) for lr in SWEEP_LEARNING_RATES
               for hidden in SWEEP_HIDDEN for seed in range(SWEEP_SEEDS)]
    every = 1 if full else SWEEP_NUMPY_EVERY
    seconds = {"compiled": [], "numpy": []}
    solved = 0
    for k, config in enumerate(configs):
        log(f"sweep cell {k + 1}/{len(configs)}")
        for engine in ("compiled", "numpy") if k % every == 0 else ("compiled",):
            started = time.process_time()
            cell = run_cell(config, SWEEP_SAMPLES, engine=engine)
            seconds[engine].append((k, time.process_time() - started))
            solved += engine == "compiled" and cell.samples_to_solve is not None
    both = [k for k, _ in seconds["numpy"]]
    compiled_on_both = sum(s for k, s in seconds["compiled"] if k in both)
    numpy_on_both = sum(s for _, s in seconds["numpy"])
    ratio = numpy_on_both / compiled_on_both if compiled_on_both else None
    compiled_all = sum(s for _, s in seconds["compiled"])
    return {"cells": len(configs), "samples": SWEEP_SAMPLES, "learning_rates": SWEEP_LEARNING_RATES,
            "hidden_sizes": SWEEP_HIDDEN, "seeds": SWEEP_SEEDS, "solved": solved,
            "compiled_seconds": compiled_all, "numpy_cells": len(both), "numpy_seconds": numpy_on_both,
            "numpy_estimated_seconds": None if ratio is None else ratio * compiled_all, "ratio": ratio,
            "target": SWEEP_TARGET, "passed": None if ratio is None else bool(ratio >= SWEEP_TARGET)}


def format_report(result: dict) -> str:
    """The result as the lines people read."""
    if result["compiled"] is None:
        return f"The compiled engine is not available here ({result['reason']}): nothing to compare."
    from core.kernels import bench as kernel_bench

    lines = [kernel_bench.format_report(result["compiled"]), ""]
    solve = result["solve"]
    verdict = "PASS" if solve["passed"] else "FAIL"
    if solve["solved"]:
        lines.append(f"Time to solve at the defaults (H=16, lr 0.1, online SGD, seed 0, compiled engine): every one "
                     f"of the 16,384 sums right after {solve['samples']:,} samples: {solve['cpu_seconds']:.3f} s of "
                     f"CPU ({solve['training_seconds']:.3f} s of wall-clock training), checks every "
                     f"{solve['check_every']} samples included  {verdict} <= {solve['target_seconds']:g} s")
    else:
        lines.append(f"Time to solve at the defaults: not solved within {solve['samples']:,} samples  FAIL")
    sweep = result["sweep"]
    if sweep is None:
        lines.append("Sweep: left out by --quick")
    else:
        verdict = {True: "PASS", False: "FAIL", None: ""}[sweep["passed"]]
        lines.append(
            f"Sweep of {len(sweep['learning_rates'])} learning rates x {len(sweep['hidden_sizes'])} hidden sizes x "
            f"{sweep['seeds']} seeds, each until solved or {sweep['samples']:,} samples ({sweep['solved']} of "
            f"{sweep['cells']} solved), one process: compiled {sweep['compiled_seconds']:.1f} s for all cells; NumPy "
            f"{sweep['numpy_seconds']:.1f} s for {sweep['numpy_cells']} of them (all cells: ~"
            f"{sweep['numpy_estimated_seconds']:.0f} s). Compiled / NumPy on the same cells: {sweep['ratio']:.1f}x  "
            f"{verdict} >= {sweep['target']:g}x")
    return "\n".join(lines)

