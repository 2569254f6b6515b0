"""Intervals, not anecdotes: one setting trained from many seeds, summarised as a distribution.

Runs are chaotic at the learning rates that learn fast (two implementations equal to 1e-14 part ways after a few
hundred updates, yet solve at the same sample), so a single seed's "solved after N samples" is an anecdote. A
study trains seeds first_seed .. first_seed + n - 1 of one TrainConfig for the same number of samples, in parallel
processes, and reports samples-to-solve as a median and quartiles, the share of seeds that solved (with a Wilson
interval), every sum right at the end, the exhaustive accuracy at the end, and two measures of the carry at the end:
the best single unit's |corr| (core.carry) and the linear probe's accuracy (core.probe_carry).

A seed that never solves counts as "not within the samples": it sorts after every solved one, so a median or
quartile that falls on it is reported as not reached rather than guessed.
"""

from __future__ import annotations

import concurrent.futures
import csv
import io
import multiprocessing
import os
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass

import numpy as np

from core import carry, length, safe_save
from core import engine as engine_module
from core.trainer import TrainConfig, Trainer

CHUNK = 1000  # samples per Trainer.step: checks happen every CHECK_EVERY whatever the chunk
CARRY_PROBE_PAIRS = 4096  # pairs for the linear probe at the end of each run (2,048 fit it)


@dataclass(frozen=True)
class SeedResult:
    """One seed's run."""

    seed: int
    samples: int  # samples trained (fewer than asked if it diverged)
    solved_at: int  # samples at the first check with every sum right; -1 if none
    solved_at_end: bool  # every sum right at the last check
    accuracy: float  # exhaustive (or sampled, above 9 bits) exact-sum accuracy of the final weights
    diverged: bool
    seconds: float  # training time (wall clock, for information only)
    best_unit_corr: float  # the carry finder's strongest |corr| of one unit with the carry, final weights
    probe_accuracy: float  # the linear probe's accuracy on held-out pairs, final weights
    probe_long_chains: float  # ... on carries passed along 4+ steps (NaN if none)


def run_seed(config: TrainConfig, seed: int, samples: int, engine: str = "auto") -> SeedResult:
    """Train config with this seed for `samples` samples (stopping early only if it diverges) and measure it."""
    config = config.replace(seed=seed)
    trainer = Trainer(config, engine=engine, details=False)  # (no held-out curve: the study measures at the end)
    diverged = False
    while trainer.samples_seen < samples and not diverged:
        diverged = trainer.step(min(CHUNK, samples - trainer.samples_seen)).diverged
    found = carry.find_carry_units(trainer.params, config.n_bits, probe_pairs=CARRY_PROBE_PAIRS)
    probe = found.probe
    return SeedResult(
        seed=seed,
        samples=trainer.samples_seen,
        solved_at=trainer.solved_at[0] if trainer.solved_at is not None else -1,
        solved_at_end=bool(trainer.solved_now),
        accuracy=trainer.evaluate().accuracy,
        diverged=diverged,
        seconds=trainer.training_seconds,
        best_unit_corr=float(found.strongest.max()),
        probe_accuracy=probe.accuracy if probe is not None else float("nan"),
        probe_long_chains=probe.long_chain_accuracy if probe is not None else float("nan"),
    )


def _run_seed_args(args: tuple[str, int, int, str]) -> SeedResult:
    config_json, seed, samples, engine = args
    return run_seed(TrainConfig.from_json(config_json), seed, samples, engine)


@dataclass(frozen=True)
class StudyResult:
    """Every seed's run of one setting, and the summaries the README quotes."""

    config: TrainConfig
    samples: int
    engine: str
    workers: int
    seeds: tuple[SeedResult, ...]  # in seed order

    @property
    def n(self) -> int:
        return len(self.seeds)

    def solve_samples(self) -> np.ndarray:
        """(n,) samples to solve, sorted, +inf for seeds that did not solve."""
        return np.sort([s.solved_at if s.solved_at >= 0 else np.inf for s in self.seeds])

    def quartiles(self) -> tuple[float, float, float]:
        """Samples to solve at the 25th, 50th and 75th percentiles (linear between order statistics, as NumPy's
        default); inf where the percentile falls on or beside a seed that did not solve."""
        return tuple(_percentile(self.solve_samples(), q) for q in (25, 50, 75))  # type: ignore[return-value]

    @property
    def solved(self) -> int:
        return sum(s.solved_at >= 0 for s in self.seeds)

    @property
    def solved_at_end(self) -> int:
        return sum(s.solved_at_end for s in self.seeds)


def _percentile(sorted_values: np.ndarray, q: float) -> float:
    """np.percentile's linear interpolation between the two order statistics around q; inf if either is inf."""
    position = q / 100 * (len(sorted_values) - 1)
    below, above = sorted_values[int(np.floor(position))], sorted_values[int(np.ceil(position))]
    if not (np.isfinite(below) and np.isfinite(above)):
        return float("inf")
    return float(below + (above - below) * (position - np.floor(position)))


def run_study(config: TrainConfig, n_seeds: int, samples: int = 10_001, first_seed: int = 0, workers: int = 0,
              engine: str = "auto", progress: Callable[[SeedResult], None] | None = None) -> StudyResult:
    """Train seeds first_seed .. first_seed + n_seeds - 1 in up to `workers` processes (0: one per core, at most
    one per seed); progress, if given, is called with each seed's result as it finishes."""
    cores = os.cpu_count() or 1
    workers = min(n_seeds, cores if workers <= 0 else min(workers, cores))
    jobs = [(config.to_json(), seed, samples, engine) for seed in range(first_seed, first_seed + n_seeds)]
    results: list[SeedResult] = []
    if workers <= 1:
        for job in jobs:
            results.append(_run_seed_args(job))
            if progress:
                progress(results[-1])
    else:
        context = multiprocessing.get_context("spawn")  # a fresh interpreter: no threads or locks inherited
        with concurrent.futures.ProcessPoolExecutor(workers, mp_context=context) as pool:
            for future in concurrent.futures.as_completed([pool.submit(_run_seed_args, job) for job in jobs]):
                results.append(future.result())
                if progress:
                    progress(results[-1])
    used_engine = engine_module.resolve(engine)
    return StudyResult(config, samples, used_engine, workers, tuple(sorted(results, key=lambda s: s.seed)))


# ---- reporting ---------------------------------------------------------------------------------------------------
def _samples(value: float, samples: int) -> str:
    return f"{value:,.0f}" if np.isfinite(value) else f"not within {samples:,}"


def summary_lines(study: StudyResult) -> list[str]:
    """The summary a person reads: samples to solve, solve rate, the end, the carry."""
    q1, median, q3 = study.quartiles()
    low, high = length.wilson(study.solved, study.n)
    accuracies = np.array([s.accuracy for s in study.seeds])
    corr = np.array([s.best_unit_corr for s in study.seeds])
    probe = np.array([s.probe_accuracy for s in study.seeds])
    long_chains = np.array([s.probe_long_chains for s in study.seeds])
    state = "[c, h]" if study.config.model == "lstm" else "h"
    lines = [
        f"Samples to solve (every sum right at a check every 100 samples): median {_samples(median, study.samples)}, "
        f"quartiles {_samples(q1, study.samples)} - {_samples(q3, study.samples)}",
        f"Solved within {study.samples:,} samples: {study.solved}/{study.n} seeds "
        f"({100 * study.solved / study.n:.0f} %; 95 % interval {100 * float(low):.0f}-{100 * float(high):.0f} %); "
        f"every sum right at the end: "
        f"{study.solved_at_end}/{study.n}",
        f"Accuracy at the end (exact sums): median {100 * np.median(accuracies):.2f} %, lowest "
        f"{100 * accuracies.min():.2f} %",
        f"Carry at the end: the best single unit's |corr| with it, median {np.median(corr):.2f} (range "
        f"{corr.min():.2f}-{corr.max():.2f}); a linear readout of {state} gets {100 * np.nanmin(probe):.2f}-"
        f"{100 * np.nanmax(probe):.2f} % of carries right (chains of 4+ steps: lowest "
        f"{100 * np.nanmin(long_chains):.1f} %)",
    ]
    diverged = [s.seed for s in study.seeds if s.diverged]
    if diverged:
        lines.append(f"Diverged (stopped, counted as not solved): seeds {', '.join(map(str, diverged))}")
    return lines


def seed_line(result: SeedResult) -> str:
    solved = f"{result.solved_at:,}" if result.solved_at >= 0 else "-"
    return (f"{result.seed:>5}  {solved:>9}  {'yes' if result.solved_at_end else 'no':>6}  "
            f"{100 * result.accuracy:>8.2f} %  {result.best_unit_corr:>10.2f}  {100 * result.probe_accuracy:>8.2f} %"
            f"{'  diverged' if result.diverged else ''}")


SEED_HEADER = f"{'seed':>5}  {'solved at':>9}  {'at end':>6}  {'accuracy':>10}  {'best |corr|':>10}  {'probe':>10}"


def write_csv(study: StudyResult, path: str | os.PathLike) -> None:
    """One row per seed, every SeedResult field."""
    rows = [asdict(s) for s in study.seeds]
    text = io.StringIO(newline="")
    writer = csv.DictWriter(text, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    safe_save.write_text(path, text.getvalue())  # a reader never sees half a file; only a regular file replaced


def describe(config: TrainConfig, seeds: Sequence[int] | range, samples: int) -> str:
    first, last = seeds[0], seeds[-1]
    model = "LSTM " if config.model == "lstm" else ""  # describe() names the other kinds itself
    return (f"{model}{config.describe().rsplit(' seed ', 1)[0]}, {config.n_bits} bits: seeds {first}-{last}, "
            f"{samples:,} samples each")
