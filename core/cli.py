"""The `lstm-explorer` command's headless part: train, eval, add, bench, sweep, insights (the window, and the window's
benchmark, are started by the console script's module, lstm_explorer, which dispatches here).

Results go to stdout, problems to stderr as one line. Exit codes: 0 done, 1 training diverged (the last good
weights are kept and still saved with --save), 2 bad input (a value, an operand or a file), 130 interrupted.
Only `train` and `add` without --model train anything; nothing here imports Qt.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
import time
from typing import NoReturn, TextIO

import numpy as np

from core import __version__, length, limits, lstm, models, options, probe, task
from core import engine as engine_module
from core.engine import EngineError
from core.session import SessionError, check_writable, load_model, save_session
from core.trainer import CHECK_EVERY, PRESETS, ConfigError, TrainConfig, Trainer, preset

PROGRAM = "lstm-explorer"
SUBCOMMANDS = ("train", "eval", "add", "bench", "sweep", "insights", "study")
NOTEBOOK_SAMPLES = 10_001  # the original notebook's n_samples
REPORT_EVERY = 1000  # and its report interval
CHUNK = 1000  # most samples per Trainer.step: the schedule is the same whether or not anything is printed
PROGRESS_WHEN_REPORTS_EVERY = 2000  # with reports sparser than this (or --quiet) a terminal gets a progress bar
DEFAULT_MODEL_LIMIT = 20_000  # `add` without --model trains until every sum is right, at most this many samples
CARRY_PAIRS = 4096  # operand pairs used to find the unit that tracks the carry


class UsageError(Exception):
    """A command-line mistake found by argparse; main prints it as one line and exits with 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{self.prog}: {message} (see {self.prog} --help)")


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit code (the console script passes it to sys.exit)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or (argv[0].startswith("-") and argv[0] not in ("-h", "--help", "--version")):
        return _no_window(argv)
    if argv[0] == "sweep":
        return _hand_off("core.sweep", argv[1:], "sweep")
    if argv[0] == "insights":
        return _hand_off("core.insights", argv[1:], "insights")
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except UsageError as error:
        print(options.one_line(error), file=sys.stderr)
        return 2
    except SystemExit as done:  # --help and --version print and "exit"; keep main() returning
        return done.code if isinstance(done.code, int) else 0
    try:
        return args.run(args)
    except (SessionError, ConfigError, EngineError, task.TaskError, limits.LimitError) as error:
        print(f"{PROGRAM} {args.command}: {options.one_line(error)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        unsaved = "; nothing was saved" if getattr(args, "save", None) else ""
        print(f"\n{PROGRAM} {args.command}: interrupted{unsaved}", file=sys.stderr)
        return 130


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog=PROGRAM,
        description="Watch a NumPy LSTM learn binary addition. Without a sub-command the window opens; its "
                    "options: --open FILE, --screenshot PATH [--train SAMPLES], --install-desktop, "
                    "--uninstall-desktop.",
        epilog="Exit codes: 0 done, 1 training diverged, 2 bad input, 130 interrupted.",
    )
    parser.add_argument("--version", action="version", version=f"{PROGRAM} {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    _add_train_parser(commands)
    _add_eval_parser(commands)
    _add_study_parser(commands)
    _add_add_parser(commands)
    bench = commands.add_parser("bench", help="the compiled engine beside PyTorch and NumPy, time to solve, a sweep",
                                description="Training-step throughput of the compiled engine beside PyTorch float32 "
                                            "nn.LSTM and the NumPy path (batch 1 at 16 and 64 units, batch 256), "
                                            "prediction of all pairs, seconds to solve at the defaults, and a 3 x 3 "
                                            "x 5-seed sweep on both engines; each target judged on ratios measured "
                                            "in this run. --gui and --soak SECONDS measure the window instead.")
    bench.add_argument("--json", action="store_true", help="print the results as JSON")
    bench.add_argument("--quick", action="store_true", help="short timing blocks, and no sweep")
    bench.add_argument("--full-sweep", action="store_true",
                       help="train every sweep cell on NumPy too (minutes), not every fifth")
    bench.set_defaults(run=_run_bench)
    commands.add_parser("insights", add_help=False,
                        help="error grid, length generalisation, saturation, gradients per bit of a model, as CSV")
    commands.add_parser("sweep", help="time to solve over a grid of settings, as CSV (see sweep --help)",
                        add_help=False)
    return parser


# ---- train -------------------------------------------------------------------------------------------------------
def _add_train_parser(commands: argparse._SubParsersAction) -> None:
    defaults = TrainConfig()
    train = commands.add_parser(
        "train", help="train headless with the notebook's defaults and its report every 1000 samples",
        description="Train headless. Defaults are the original notebook's: 16 units, lr 0.1, 10,001 samples one at "
                    "a time (online SGD), seed 0, 8 bits. Prints the notebook's report every --report-every "
                    "samples, then the exact-sum accuracy over all pairs.")
    option = train.add_argument
    _add_setting_options(train)
    option("--samples", type=int, default=NOTEBOOK_SAMPLES, help=f"samples to train on (default {NOTEBOOK_SAMPLES:,})")
    option("--seed", type=int, help=f"seeds the weights and the samples (default {defaults.seed})")
    option("--stop-when-solved", action="store_true",
           help=f"stop once every sum is right (checked every {CHECK_EVERY} samples); default: train all samples, "
                "as the notebook does")
    option("--engine", default="auto",
           help="numpy, compiled (numba) or auto: compiled where available (default auto); the same arithmetic")
    option("--report-every", type=int, default=REPORT_EVERY, help=f"samples between reports (default {REPORT_EVERY})")
    option("--save", metavar="PATH", help="save the session (.npz: PyTorch state_dict keys + training state)")
    option("--quiet", action="store_true", help="no reports, only the final accuracy")
    train.set_defaults(run=_run_train)


def _add_setting_options(parser: argparse.ArgumentParser) -> None:
    """The options that make a TrainConfig (all but --seed): train's and study's."""
    defaults = TrainConfig()
    option = parser.add_argument
    option("--preset", choices=tuple(PRESETS), help="start from named settings: notebook-lstm (the notebook's "
           "squared error), tutorial-rnn (the classic tutorial's sigmoid RNN: no biases, U(-1, 1) weights, squared "
           "error), default; the options below change them")
    option("--model", help=f"lstm or rnn (a plain RNN) (default {defaults.model})")
    option("--hidden", type=int, help=f"hidden units, 1-4096 (default {defaults.hidden_size})")
    option("--lr", type=float, help=f"learning rate (default {defaults.learning_rate:g})")
    option("--batch", type=int, help=f"samples per update; 1 = online (default {defaults.batch_size})")
    option("--optimizer", help=f"sgd, momentum or adam (default {defaults.optimizer})")
    option("--momentum", type=float, help=f"for --optimizer momentum (default {defaults.momentum:g})")
    option("--clip", type=float, help="clip gradients to this global norm; 0 = off (default 0)")
    option("--loss", help=f"bce (cross-entropy) or squared ((p - y)^2 / 2, the notebook's and the tutorial's), "
           f"summed over the bits (default {defaults.loss})")
    option("--activation", help="the plain RNN's units: tanh or sigmoid (default tanh)")
    option("--bias", choices=("on", "off"), help="the plain RNN's biases (default on)")
    option("--init", help=f"seed (standard normal, as the notebook), pytorch (U(+-1/sqrt(H))) or uniform "
           f"(U(-1, 1), the tutorial's) (default {defaults.init})")
    option("--forget-bias", type=float, help=f"added to the forget gate's bias (default {defaults.forget_bias:g})")
    option("--bits", type=int, help=f"sequence length; operands are below 2^(bits-1); 2-32 (default {defaults.n_bits})")
    option("--dtype", help=f"float64 or float32 (default {defaults.dtype})")


def train_config(args: argparse.Namespace) -> TrainConfig:
    """TrainConfig from the setting options (a preset first, then each option given); ConfigError names the first
    bad value."""
    options = {
        "hidden_size": args.hidden, "learning_rate": args.lr, "batch_size": args.batch, "optimizer": args.optimizer,
        "momentum": args.momentum, "clip_norm": args.clip, "init": args.init, "forget_bias": args.forget_bias,
        "seed": getattr(args, "seed", None), "n_bits": args.bits, "dtype": args.dtype, "model": args.model,
        "loss": args.loss, "activation": args.activation, "bias": None if args.bias is None else args.bias == "on",
    }
    base = preset(args.preset) if args.preset else TrainConfig()
    return base.replace(**{name: value for name, value in options.items() if value is not None})


def _run_train(args: argparse.Namespace) -> int:
    config = train_config(args)
    for name, value in (("samples", args.samples), ("report every", args.report_every)):
        if value < 1:
            raise ConfigError(f"{name} must be a whole number of at least 1, got {value}")
    limits.check_count("--samples", args.samples)
    if args.save:
        check_writable(args.save, config)
    trainer = Trainer(config, engine=args.engine)
    progress = None
    if sys.stderr.isatty() and (args.quiet or args.report_every > PROGRESS_WHEN_REPORTS_EVERY):
        progress = ProgressBar(args.samples, sys.stderr)
    started = time.perf_counter()
    diverged = _train_loop(trainer, args.samples, args.report_every, not args.quiet, progress, args.stop_when_solved)
    seconds = time.perf_counter() - started
    if progress:
        progress.clear()
    result = trainer.evaluate()
    if args.save:
        save_session(args.save, trainer)
        print(f"Saved the session to {args.save}")
    plural = "" if trainer.samples_seen == 1 else "s"
    if trainer.solved_at is None:
        first = f"No check found every sum right (checked every {CHECK_EVERY} samples)"
    else:
        stopped = ", where training stopped" if args.stop_when_solved else ""
        first = (f"Every sum was first right after {trainer.solved_at[0]:,} samples (checked every {CHECK_EVERY})"
                 f"{stopped}")
    print(f"{first}. At the end: {_accuracy_text(result)} after {trainer.samples_seen:,} sample{plural} in "
          f"{seconds:.1f} s ({trainer.engine} engine)")
    return 1 if diverged else 0


def _train_loop(trainer: Trainer, samples: int, report_every: int, report: bool,
                progress: ProgressBar | None, stop_when_solved: bool = False) -> bool:
    """Train to `samples`, reporting like the notebook after samples 0, R, 2R, ... (index = samples seen - 1).

    With stop_when_solved it ends as soon as every sum is right. Returns True if training diverged (it stops
    there; the trainer has rolled back to the last good weights).
    """
    chunk = CHECK_EVERY if stop_when_solved else CHUNK
    next_report = 1  # report once samples_seen reaches this
    error_sum = 0.0  # sum of per-sample mean bit errors since the last report
    error_count = 0
    while trainer.samples_seen < samples and not (stop_when_solved and trainer.solved):
        target = min(samples, next_report, (trainer.samples_seen // chunk + 1) * chunk)  # chunks end at checks
        result = trainer.step(target - trainer.samples_seen)
        if result.diverged:
            if progress:
                progress.clear()
            print(f"{PROGRAM} train: {result.message}", file=sys.stderr)
            return True
        error_sum += result.bit_error * result.samples
        error_count += result.samples
        if trainer.samples_seen >= next_report:
            if report:
                if progress:
                    progress.clear()
                print(_report(trainer.samples_seen - 1, result, error_sum / error_count))
                sys.stdout.flush()
            error_sum, error_count = 0.0, 0
            next_report = 1 + ((trainer.samples_seen - 1) // report_every + 1) * report_every
        if progress:
            progress.update(trainer.samples_seen, trainer.samples_per_second)
    return False


def _report(sample: int, result: object, bit_error: float) -> str:
    """The notebook's report for the last sample of a chunk; the result is the model's answer before its update."""
    return (f"{'#' * 20} sample {sample}\n"
            f" Training sample: {result.last_a} + {result.last_b} = {result.last_a + result.last_b}\n"
            f" Result is {result.last_prediction}\n"
            f" Average binary error for this batch is {bit_error:.4f}")


class ProgressBar:
    """A one-line text progress bar redrawn in place with a carriage return; at most ten redraws a second."""

    WIDTH = 30

    def __init__(self, total: int, stream: TextIO) -> None:
        self.total = total
        self.stream = stream
        self._last_draw = 0.0
        self._drawn = 0  # characters on the line now

    def update(self, done: int, rate: float) -> None:
        now = time.monotonic()
        if now - self._last_draw < 0.1 and done < self.total:
            return
        self._last_draw = now
        fraction = min(1.0, done / self.total)
        filled = int(fraction * self.WIDTH)
        line = (f"[{'#' * filled}{'.' * (self.WIDTH - filled)}] {fraction:4.0%}  {done:,}/{self.total:,} samples  "
                f"{rate:,.0f}/s")
        self.stream.write("\r" + line.ljust(self._drawn))
        self.stream.flush()
        self._drawn = len(line)

    def clear(self) -> None:
        if self._drawn:
            self.stream.write("\r" + " " * self._drawn + "\r")
            self.stream.flush()
            self._drawn = 0
            self._last_draw = 0.0


def _accuracy_text(result: object) -> str:
    right, total = int(np.count_nonzero(result.wrong_bits == 0)), len(result.wrong_bits)
    if result.exhaustive:
        return f"Exhaustive accuracy: {right}/{total} sums right ({100 * result.accuracy:.2f}%)"
    return (f"Sampled accuracy at {result.n_bits} bits: {right}/{total} random pairs right "
            f"({100 * result.accuracy:.2f}%; too many pairs to try all)")


# ---- eval --------------------------------------------------------------------------------------------------------
def _add_eval_parser(commands: argparse._SubParsersAction) -> None:
    evaluate_parser = commands.add_parser(
        "eval", help="exact-sum accuracy of a saved model at its width and longer, up to 1,024 bits, with intervals",
        description="Exact-sum accuracy of a saved model or session at each width (default: its training width "
                    "and twice that), to see whether it learned the algorithm rather than the examples: every "
                    "operand pair where they can be listed, else random pairs, with a 95 % (Wilson) interval; the "
                    "bit error by output position and by how far the carry into the bit had been passed along.")
    option = evaluate_parser.add_argument
    option("model", metavar="MODEL.npz", help="a file saved by train --save or the window")
    option("--bits", metavar="N[,N...]", help=f"widths to evaluate at, e.g. 8,16,64,256,1024 (2-{length.MAX_EVAL_BITS};"
           " default: the model's and twice that)")
    option("--pairs", type=int, help=f"random pairs per width where there are too many to list (default "
           f"{length.DEFAULT_PAIRS:,}); more pairs, narrower intervals")
    option("--per-position", action="store_true", help="print every output position's error and interval")
    evaluate_parser.set_defaults(run=_run_eval)


def _eval_widths(text: str | None, trained: int) -> list[int]:
    if text is None:
        return sorted({trained, min(2 * trained, length.MAX_EVAL_BITS)})
    widths = []
    for part in text.split(","):
        try:
            widths.append(length.check_eval_bits(int(part.strip())))
        except ValueError:
            raise length.LengthError(f"--bits takes widths separated by commas, e.g. 8,16,64; got {part!r}") from None
    return sorted(set(widths))


def _run_eval(args: argparse.Namespace) -> int:
    params, config = load_model(args.model)
    trained_bits = config.n_bits if config else 8
    widths = _eval_widths(args.bits, trained_bits)
    limits.check_streaming_evaluation(params.hidden_size, max(widths), params.dtype)
    trained = f"trained at {config.n_bits} bits" if config else "no training settings stored (taken as 8 bits)"
    print(f"{args.model}: {_describe_model(params)}, {trained}")
    for bits in widths:
        started = time.perf_counter()
        result = length.evaluate_width(params, bits, args.pairs)
        seconds = time.perf_counter() - started
        how = (f"all {result.n_pairs:,} pairs" if result.exhaustive
               else f"sampled: {result.n_pairs:,} random pairs of {_pair_count(bits)}")
        label = " (trained)" if bits == trained_bits else ""
        print(f"At {bits} bits{label}: {result.right}/{result.n_pairs} sums right, {length.percent_interval(result)}"
              f", {how}; bit accuracy {100 * result.bit_accuracy:.4f} % ({seconds:.1f} s)")
        bands = [f"{first}-{last}{' (trained)' if last < trained_bits else ''}: "
                 f"{length.describe_rate(*result.band_error(first, last)[1:])}"
                 for first, last in length.position_bands(bits, trained_bits)]
        print(f"  bit error by position, LSB first: {'; '.join(bands)}")
        chains = []
        for first, last in length.chain_bands(bits):
            wrong, count = (int(counts[first : last + 1].sum()) for counts in (result.chain_wrong, result.chain_count))
            if count:
                chains.append(f"{first}{'' if first == last else f'-{last}'}: {length.describe_rate(wrong, count)}")
        print(f"  bit error by carry chain (steps the carry into the bit was passed along): {'; '.join(chains)}")
        if args.per_position:
            low, high = result.position_interval()
            print(f"  {'position':>8}  {'wrong':>7}  {'error':>9}  95 % interval")
            for t in range(bits):
                print(f"  {t:>8}  {result.position_wrong[t]:>7}  {result.position_error[t]:>9.2e}  "
                      f"{low[t]:.2e}-{high[t]:.2e}")
    return 0


def _pair_count(bits: int) -> str:
    """4^(bits-1) as a number up to 10^15, else as a power of two."""
    return f"{4 ** (bits - 1):,}" if bits <= 25 else f"2^{2 * (bits - 1)}"


# ---- study -------------------------------------------------------------------------------------------------------
def _add_study_parser(commands: argparse._SubParsersAction) -> None:
    study = commands.add_parser(
        "study", help="one setting trained from many seeds: samples to solve as median and quartiles, solve rate",
        description="Train one setting (a --preset and/or train's options) from --seeds seeds in parallel processes "
                    "(at most one per core) and report samples-to-solve as a median and quartiles, the share of "
                    "seeds that solved with a 95 % interval, every sum right at the end, the accuracy at the end, "
                    "and how the carry is held (the best single unit's |corr|, a linear probe's accuracy).")
    _add_setting_options(study)
    option = study.add_argument
    option("--seeds", type=int, default=20, help="how many seeds (default 20)")
    option("--first-seed", type=int, default=0, help="the first seed (default 0)")
    option("--samples", type=int, default=NOTEBOOK_SAMPLES, help=f"samples per run (default {NOTEBOOK_SAMPLES:,})")
    option("--workers", type=int, default=0, help="processes (default 0: one per core)")
    option("--engine", default="auto", help="numpy, compiled or auto (default auto; settings the compiled engine "
           "does not implement run on numpy)")
    option("--csv", metavar="PATH", help="also write one row per seed to this CSV file")
    option("--quiet", action="store_true", help="only the summary, not a line per seed")
    study.set_defaults(run=_run_study)


def _run_study(args: argparse.Namespace) -> int:
    from core import study

    config = train_config(args)
    for name, value, low in (("--seeds", args.seeds, 1), ("--samples", args.samples, 1),
                             ("--first-seed", args.first_seed, 0), ("--workers", args.workers, 0)):
        if value < low:
            raise ConfigError(f"{name} must be a whole number of at least {low}, got {value}")
    config.replace(seed=args.first_seed + args.seeds - 1)  # the last seed must be a valid one too
    limits.check_count("--seeds", args.seeds, 1, limits.MAX_SWEEP_CELLS)
    limits.check_count("--samples", args.samples)
    if args.csv:
        options.output_file("--csv", args.csv)  # before the study runs, not after
    limits.check_sweep([config], min(args.seeds, args.workers or limits.cpu_count(), limits.cpu_count()))
    engine_module.resolve(args.engine)  # an unknown engine is refused before anything runs
    seeds = range(args.first_seed, args.first_seed + args.seeds)
    print(study.describe(config, seeds, args.samples))
    if not args.quiet:
        print(study.SEED_HEADER)

    def progress(result: object) -> None:
        if not args.quiet:
            print(study.seed_line(result), flush=True)

    started = time.perf_counter()
    result = study.run_study(config, args.seeds, args.samples, args.first_seed, args.workers, args.engine, progress)
    for line in study.summary_lines(result):
        print(line)
    print(f"({result.workers} process{'es' if result.workers != 1 else ''}, {result.engine} engine, "
          f"{time.perf_counter() - started:.0f} s)")
    if args.csv:
        study.write_csv(result, args.csv)
        print(f"Wrote {args.csv}")
    return 0


def _describe_model(params: object) -> str:
    kind = next(name for name, module in models.MODELS.items() if module is models.of(params))
    return f"{kind.upper()} with {params.hidden_size} hidden units ({params.dtype})"


# ---- add ---------------------------------------------------------------------------------------------------------
def _add_add_parser(commands: argparse._SubParsersAction) -> None:
    add = commands.add_parser(
        "add", help="one addition traced bit by bit: gates, cell, output per step",
        description="Run A + B through a model and print, per bit (least significant first), the input bits, the "
                    "true carry, the mean of each gate, the cell state, p(sum bit) and the predicted bit. Without "
                    f"--model a default model is trained first (until every sum is right, at most "
                    f"{DEFAULT_MODEL_LIMIT:,} samples; a few seconds).")
    add.add_argument("a", metavar="A", help="first operand, 0 to 2^(bits-1)-1")
    add.add_argument("b", metavar="B", help="second operand")
    add.add_argument("--model", metavar="MODEL.npz", help="a saved model or session")
    add.add_argument("--bits", type=int, help="sequence length (default: the model's, else 8)")
    add.set_defaults(run=_run_add)


def _run_add(args: argparse.Namespace) -> int:
    config = None
    if args.model is not None:
        params, config = load_model(args.model)
        if models.of(params) is not lstm:
            raise SessionError(f"{args.model}: add traces LSTM gates and cells; this file holds an "
                               f"{_describe_model(params)}")
    n_bits = task.check_bits(args.bits if args.bits is not None else (config.n_bits if config else 8))
    a = task.check_operand(args.a, n_bits, "first operand")
    b = task.check_operand(args.b, n_bits, "second operand")
    if args.model is None:
        params, source = _default_model(n_bits)
    else:
        source = f"{args.model}, {params.hidden_size} units"
    trace = probe.trace(params, a, b, n_bits)
    print(format_trace(trace, source, _carry_unit(params, n_bits)))
    return 0


def _default_model(n_bits: int) -> tuple[lstm.Params, str]:
    config = TrainConfig(n_bits=n_bits)
    print(f"No --model given: training a default model first ({config.describe()}, {n_bits} bits, until every sum "
          f"is right or {DEFAULT_MODEL_LIMIT:,} samples) ...", file=sys.stderr)
    trainer = Trainer(config)
    while not trainer.solved and trainer.samples_seen < DEFAULT_MODEL_LIMIT:
        trainer.step(CHUNK)
    state = "every sum right" if trainer.solved else f"{100 * trainer.exhaustive_accuracy():.1f}% of sums right"
    return trainer.params, f"a default model trained on {trainer.samples_seen:,} samples ({state})"


def _carry_unit(params: lstm.Params, n_bits: int) -> tuple[int, float]:
    """The unit whose cell state correlates best with the true carry out of each step, and that correlation."""
    rng = np.random.default_rng(0)
    # Bound memory: the forward cache holds (T, N, 4H) gates.
    n_pairs = int(min(CARRY_PAIRS, max(64, 2**22 // (n_bits * 4 * params.hidden_size))))
    a, b = task.sample_operands(rng, n_pairs, n_bits)
    x, _ = task.make_batch(a, b, n_bits, params.dtype)
    _, cache = lstm.forward(params, x)
    cell = cache.cell[1:].reshape(-1, params.hidden_size).astype(np.float64)  # (T * N, H)
    _, carry_out = task.carries(a, b, n_bits)
    carry = carry_out.reshape(-1)  # (T * N,)
    cell_centred = cell - cell.mean(axis=0)
    carry_centred = carry - carry.mean()
    denominator = np.sqrt((cell_centred**2).sum(axis=0) * (carry_centred**2).sum())
    with np.errstate(invalid="ignore", divide="ignore"):
        correlation = np.where(denominator > 0, carry_centred @ cell_centred / denominator, 0.0)  # (H,)
    unit = int(np.argmax(np.abs(correlation)))
    return unit, float(correlation[unit])


def format_trace(trace: probe.Trace, source: str, carry_unit: tuple[int, float]) -> str:
    """The per-bit table of one addition; numbers are those of core.probe.trace, rounded to 3 decimals."""
    unit, correlation = carry_unit
    n_bits, hidden = trace.n_bits, trace.cell.shape[1]
    lines = [
        f"{trace.a} + {trace.b} at {n_bits} bits, with {source}.",
        "Step t reads bit t of each operand, least significant bit first. i f g o are gate means over the "
        f"{hidden} units;",
        f"c mean is the mean cell state c_t; c[{unit}] is unit {unit}, the one that tracks the carry best "
        f"(correlation {correlation:+.2f} with the true carry out).",
        "",
        f"{'step':>4}  {'a':>1} {'b':>1}  {'carry in':>8}  {'i':>6} {'f':>6} {'g':>6} {'o':>6}  {'c mean':>7} "
        f"{f'c[{unit}]':>7}  {'p(sum)':>6}  {'predicted':>9}  {'true':>4}",
    ]
    gates = trace.gates()
    for t in range(n_bits):
        means = " ".join(f"{gates[name][t].mean():6.3f}" for name in lstm.GATES)
        cell = trace.cell[t + 1]
        wrong = "  <- wrong" if trace.wrong_bits[t] else ""
        lines.append(f"{t:>4}  {trace.bits_a[t]:>1} {trace.bits_b[t]:>1}  {trace.carry_in[t]:>8}  {means}  "
                     f"{cell.mean():7.3f} {cell[unit]:7.3f}  {trace.probs[t]:6.3f}  {trace.predicted_bits[t]:>9}  "
                     f"{trace.bits_sum[t]:>4}{wrong}")
    verdict = "right" if trace.predicted == trace.true_sum else f"wrong in {int(trace.wrong_bits.sum())} bit(s)"
    lines += [
        "",
        "Result, bits written most significant first:",
        f"  predicted {task.to_binary_string(trace.predicted, n_bits)} = {trace.predicted}",
        f"  true      {task.to_binary_string(trace.true_sum, n_bits)} = {trace.true_sum}   ({verdict})",
    ]
    return "\n".join(lines)


# ---- bench and the hand-offs -------------------------------------------------------------------------------------
def _run_bench(args: argparse.Namespace) -> int:
    from core import bench

    def log(text: str) -> None:
        if not args.json:
            print(f"  measuring {text} ...", file=sys.stderr, flush=True)

    result = bench.run_benchmark(quick=args.quick, full_sweep=args.full_sweep, log=log)
    print(json.dumps(result, indent=2) if args.json else bench.format_report(result))
    return 0


def _hand_off(module_name: str, argv: list[str], what: str) -> int:
    """Run module_name.main(argv), imported only now so the core command line never needs Qt."""
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        print(f"{PROGRAM} {what}: not available in this installation ({error})", file=sys.stderr)
        return 2
    return module.main(argv)


def _no_window(argv: list[str]) -> int:
    """The headless command line opens no window (the lstm-explorer command does): help, and where the window is."""
    build_parser().print_help()
    note = "\nThe window opens with `lstm-explorer` (no sub-command); this command line is headless."
    if argv:  # window options were given and cannot be honoured here
        print(note.strip(), file=sys.stderr)
        return 2
    print(note)
    return 0


if __name__ == "__main__":
    sys.exit(main())
