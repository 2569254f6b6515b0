"""`lstm-explorer bench --gui` and `--soak SECONDS`: how the window behaves while it trains.

--gui measures, in one run: the time from launching `lstm-explorer` to its first drawn frame, with the kernel cache
as it is and with an empty one (the compiled engine is then prepared in the background: the window must not wait
for it); the p99 lateness of a 5 ms timer in the GUI thread while training runs at full speed with every view
installed (how responsive the window stays); the frames drawn per second meanwhile (each one draws the heatmaps and
the curves); training throughput with the window drawing against the same worker with no window (a ratio, so the
figure does not depend on the machine); and how long Pause takes to stop training at a huge batch. Both sides train
on the engine the window would use (compiled where it can run). The 5 ms timer runs in both, so the ratio is the
window's cost, not the probe's. --soak keeps the window training for a while and reports memory growth and the
snapshot and redraw rates.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import core  # noqa: F401  (before NumPy: core limits BLAS threads, whose spinning would starve the GUI thread)
from core import limits, options

LATENCY_LIMIT_MS = 20.0
THROUGHPUT_LIMIT = 0.90  # training with the window drawing, as a share of training without it
FIRST_FRAME_LIMIT_S = 1.5  # also with an empty kernel cache
REDRAW_LIMIT = 20.0  # frames (heatmaps and curves) a second while training at full speed, every view installed
PAUSE_LIMIT_MS = 50.0  # from Pause to training stopped, at batch PAUSE_BATCH x PAUSE_HIDDEN units
PAUSE_BATCH, PAUSE_HIDDEN = 9_999, 128
SOAK_GROWTH_LIMIT_MB = 20.0  # growth of the RSS floor after the warm-up
TIMER_MS = 5
ENGINE_WAIT_S = 600.0  # compiling the kernels into an empty cache takes a while (in its own process)


def build_parser() -> argparse.ArgumentParser:
    parser = options.OneLineParser(prog="lstm-explorer bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--gui", action="store_true", help="latency, throughput ratio and time to first frame")
    parser.add_argument("--soak", metavar="SECONDS", type=float, help="train with the window open this long")
    parser.add_argument("--seconds", type=float, default=12.0,
                        help="--gui: seconds of training measured with and without the window (default 12)")
    parser.add_argument("--launches", type=int, default=3, help="--gui: launches timed to the first frame")
    parser.add_argument("--no-views", action="store_true",
                        help="measure the window without the views in the bottom tabs (to tell their cost apart)")
    parser.add_argument("--engine", choices=("auto", "numpy", "compiled"), default="auto",
                        help="--gui: the engine both sides train on (default: compiled where it can run)")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if not args.gui and args.soak is None:
        print("lstm-explorer bench: error: give --gui or --soak SECONDS", file=sys.stderr)
        return 2
    try:  # before any window opens or thread starts
        options.seconds("--seconds", args.seconds)
        if args.soak is not None:
            options.seconds("--soak", args.soak)
        limits.check_count("--launches", args.launches, 1, 100)
    except limits.LimitError as error:
        print(f"lstm-explorer bench: error: {error}", file=sys.stderr)
        return 2
    platform = _choose_platform()
    results: dict[str, object] = {"platform": platform, "views": not args.no_views}
    if args.gui:
        results["first_frame"] = first_frame(args.launches, views=not args.no_views)
        results.update(window_while_training(args.seconds, views=not args.no_views, engine=args.engine))
    if args.soak is not None:
        results["soak"] = soak(args.soak, views=not args.no_views)
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        print(report(results))
    return 0 if all(check["pass"] for check in _checks(results)) else 1


def _choose_platform() -> str:
    """The real display when there is one, else offscreen (which still paints every widget)."""
    from explorer.display import display_problem

    if os.environ.get("QT_QPA_PLATFORM") is None and display_problem() is not None:
        os.environ["QT_QPA_PLATFORM"] = "offscreen"
    return os.environ.get("QT_QPA_PLATFORM") or "default"


# ---- time to first frame ------------------------------------------------------------------------------------
def _launch_command() -> list[str]:
    script = Path(sys.executable).with_name("lstm-explorer")
    return [str(script)] if script.exists() else [sys.executable, "-m", "lstm_explorer"]


def _launch_once(env: dict[str, str]) -> tuple[float, float]:
    """Seconds from starting the app to its first frame and to its views being added."""
    started = time.monotonic()
    first = ready = None
    process = subprocess.Popen(_launch_command(), env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    for line in process.stdout:
        if line.startswith("first frame"):
            first = time.monotonic() - started
        elif line.startswith("views ready"):
            ready = time.monotonic() - started
            break
    process.stdout.close()
    try:
        process.wait(timeout=60)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
    error = process.stderr.read()
    process.stderr.close()
    if first is None or ready is None:
        raise RuntimeError(f"the app did not report its first frame: {error[-2000:]}")
    return first, ready


def first_frame(launches: int, views: bool = True) -> dict[str, object]:
    """Seconds from starting the app to its first frame (curves and heatmaps of the untrained model on screen),
    and to the views in the tabs being added, over several launches; and once more with an empty kernel cache, as
    on the first launch after an install (the compiled engine is then compiled in a process of its own)."""
    env = {**os.environ, "LSTM_EXPLORER_FIRST_FRAME": "1", "LSTM_EXPLORER_ENGINE": "auto"}
    if not views:
        env["LSTM_EXPLORER_NO_VIEWS"] = "1"
    times = [_launch_once(env) for _ in range(max(1, launches))]
    with tempfile.TemporaryDirectory(prefix="lstm-explorer-empty-cache-") as empty:
        cold, _ = _launch_once({**env, "NUMBA_CACHE_DIR": empty})
    first = [t for t, _ in times]
    return {"median_s": statistics.median(first), "max_s": max(first), "launches": first,
            "views_ready_median_s": statistics.median(r for _, r in times), "empty_cache_s": cold}


# ---- latency and throughput ---------------------------------------------------------------------------------
def _application():
    from PySide6.QtWidgets import QApplication

    from explorer import garbage

    app = QApplication.instance() or QApplication(["lstm-explorer-bench"])
    garbage.collect_in_gui_thread()  # as the app does
    return app


def _spin(app, seconds: float) -> None:
    """Run the event loop for this long."""
    from PySide6.QtCore import QEventLoop, QTimer

    loop = QEventLoop()
    QTimer.singleShot(round(1000 * seconds), loop.quit)
    loop.exec()


def _spin_until(app, condition, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            return False
        _spin(app, 0.02)
    return True


def prepare_engine(requested: str) -> str:
    """The engine both sides train on: compiled where it can run (its kernels compiled or loaded first in a process
    of their own, as the window does, so this one never compiles), else numpy."""
    from explorer import engine_prep

    if requested == "numpy" or not engine_prep.numba_installed():
        return "numpy"
    done = subprocess.run([sys.executable, "-c", engine_prep.WARM_UP], capture_output=True, text=True,
                          timeout=ENGINE_WAIT_S)
    if done.returncode != 0:
        if requested == "compiled":
            raise RuntimeError(f"the compiled engine cannot run here: {done.stderr.strip()[-500:]}")
        return "numpy"
    return "compiled"


class _LatencyProbe:
    """A TIMER_MS timer in the GUI thread that records how late each tick comes."""

    def __init__(self) -> None:
        from PySide6.QtCore import Qt, QTimer

        self.lateness: list[float] = []
        self._last = time.perf_counter()
        self._timer = QTimer()
        self._timer.setTimerType(Qt.TimerType.PreciseTimer)
        self._timer.timeout.connect(self._tick)

    def _tick(self) -> None:
        now = time.perf_counter()
        self.lateness.append(max(0.0, now - self._last - TIMER_MS / 1000))
        self._last = now

    def start(self) -> None:
        self._last = time.perf_counter()
        self._timer.start(TIMER_MS)

    def stop(self) -> None:
        self._timer.stop()


def _headless_rate(app, seconds: float, engine: str) -> float:
    """Samples per second of the training worker in its thread, with no window (and the same latency probe
    running in the GUI thread as while the window is measured)."""
    from PySide6.QtCore import QObject, Signal

    from core.trainer import Trainer
    from explorer.worker import TrainingWorker, shutdown, start_in_thread

    class Starter(QObject):
        play = Signal()
        engine = Signal(str)

    worker = TrainingWorker(Trainer(engine="numpy"), pause_when_solved=False)  # then the engine, as the window does
    starter = Starter()
    starter.play.connect(worker.play)
    starter.engine.connect(worker.set_engine)
    thread = start_in_thread(worker)
    starter.engine.emit(engine)
    starter.play.emit()
    _spin_until(app, lambda: worker.trainer.engine == engine, ENGINE_WAIT_S)
    _spin(app, 1.0)  # warm-up: chunk size settles
    probe = _LatencyProbe()
    start_samples, started = worker.trainer.samples_seen, time.monotonic()
    probe.start()
    _spin(app, seconds)
    probe.stop()
    rate = (worker.trainer.samples_seen - start_samples) / (time.monotonic() - started)
    shutdown(worker, thread, 60_000)
    return rate


def _open_window(app, engine: str, views: bool, config=None):
    from core.trainer import Trainer
    from explorer import garbage
    from explorer.main_window import MainWindow

    window = MainWindow(Trainer(config, engine="numpy"), restore_layout=False, pause_when_solved=False)
    window.dismiss_hint = lambda: None  # (a benchmark's Play is not the user's first)
    if views:
        window.add_views()
    window.resize(1280, 800)
    window.show()
    window.controller.set_engine(engine)
    _spin_until(app, lambda: window.latest_snapshot.engine == engine, ENGINE_WAIT_S)
    gc.collect()
    garbage.freeze_long_lived()  # as the app does (the window, and numba's objects once loaded); dispose frees it
    return window


def _window_rate(app, seconds: float, engine: str, views: bool = True) -> dict[str, object]:
    """Samples per second with the window open and drawing, the lateness of a 5 ms GUI timer meanwhile, and the
    frames drawn per second (each draws the heatmaps and the curves of the latest snapshot)."""
    from explorer.main_window import dispose

    window = _open_window(app, engine, views)
    window.request_play()
    _spin(app, 1.0)
    probe = _LatencyProbe()
    frames_before, start_samples, started = window.pacer.frames, window.worker.trainer.samples_seen, time.monotonic()
    probe.start()
    _spin(app, seconds)
    probe.stop()
    elapsed = time.monotonic() - started
    rate = (window.worker.trainer.samples_seen - start_samples) / elapsed
    frames = (window.pacer.frames - frames_before) / elapsed
    dispose(window)
    return {"rate": rate, "lateness": probe.lateness, "redraws_per_s": frames}


def pause_latency(app, engine: str, views: bool = True) -> dict[str, float]:
    """At batch PAUSE_BATCH x PAUSE_HIDDEN units: seconds from Pause to the button showing it (the window) and to
    training having stopped (the worker's state)."""
    from core.trainer import TrainConfig
    from explorer.main_window import dispose

    window = _open_window(app, engine, views, TrainConfig(batch_size=PAUSE_BATCH, hidden_size=PAUSE_HIDDEN))
    states: list[tuple[float, str]] = []
    window.worker.sigStateChanged.connect(lambda state: states.append((time.monotonic(), state)))
    window.request_play()
    _spin_until(app, lambda: window.latest_snapshot.samples_seen > 0, 600.0)  # a first update (or more) done
    _spin(app, 0.5)
    started = time.monotonic()
    window.request_pause()
    shown = time.monotonic() - started if window.play_action.text() == "Play" else float("nan")
    _spin_until(app, lambda: any(state == "paused" and at >= started for at, state in states), 600.0)
    stopped = next(at for at, state in states if state == "paused" and at >= started) - started
    dispose(window)
    return {"shown_ms": 1000 * shown, "stopped_ms": 1000 * stopped}


def window_while_training(seconds: float, rounds: int = 2, views: bool = True,
                          engine: str = "auto") -> dict[str, object]:
    """Alternate headless and windowed runs (so load from elsewhere hits both alike) and compare them."""
    import numpy as np

    app = _application()
    engine = prepare_engine(engine)
    headless, windowed, lateness, frames = [], [], [], []
    for _ in range(rounds):
        headless.append(_headless_rate(app, seconds / rounds, engine))
        result = _window_rate(app, seconds / rounds, engine, views)
        windowed.append(result["rate"])
        lateness += result["lateness"]
        frames.append(result["redraws_per_s"])
    late_ms = 1000 * np.array(lateness)
    return {
        "engine": engine,
        "latency": {"p50_ms": float(np.percentile(late_ms, 50)), "p99_ms": float(np.percentile(late_ms, 99)),
                    "max_ms": float(late_ms.max()), "ticks": len(late_ms)},
        "throughput": {"headless": float(np.mean(headless)), "window": float(np.mean(windowed)),
                       "ratio": float(np.mean(windowed) / np.mean(headless))},
        "redraws_per_s": float(np.mean(frames)),
        "pause": pause_latency(app, engine, views),
    }


# ---- soak ---------------------------------------------------------------------------------------------------
def rss_mb() -> float:
    """Resident memory of this process in MB (Linux /proc; elsewhere the peak from getrusage)."""
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE") / 1e6
    except (OSError, ValueError, IndexError):
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e3


def soak(seconds: float, views: bool = True) -> dict[str, object]:
    """Train with the window open for `seconds`, changing settings now and then; memory and rates."""
    from PySide6.QtCore import QObject, Slot

    from core.trainer import Trainer
    from explorer.main_window import MainWindow, dispose

    app = _application()

    class Counter(QObject):
        def __init__(self) -> None:
            super().__init__()
            self.snapshots = 0

        @Slot(object)
        def count(self, _snapshot) -> None:
            self.snapshots += 1

    window = MainWindow(Trainer(), restore_layout=False, pause_when_solved=False)
    if views:
        window.add_views()
    window.resize(1280, 800)
    window.show()
    counter = Counter()
    window.worker.sigSnapshot.connect(counter.count)
    redraws = [0]
    window.sigSnapshot.connect(lambda _snapshot: redraws.__setitem__(0, redraws[0] + 1))
    window.request_play()
    warmup = min(10.0, seconds * 0.2)
    samples: list[tuple[float, float]] = []
    started = time.monotonic()
    step = 0
    while (elapsed := time.monotonic() - started) < seconds:
        _spin(app, 1.0)
        step += 1
        samples.append((elapsed, rss_mb()))
        if step % 5 == 0:  # exercise the live controls too: resize back and forth, nudge the learning rate
            window.request_config_change({"hidden_size": 24 if step % 10 else 16,
                                          "learning_rate": 0.05 if step % 10 else 0.1})
    total = time.monotonic() - started
    trained = window.worker.trainer.samples_seen
    dispose(window)
    after_warmup = [mb for t, mb in samples if t >= warmup] or [samples[-1][1]]
    # The analyses' large temporary arrays (the carry finder evaluates every pair) come and go in their own thread:
    # RSS swings by tens of MB with them. A leak raises the floor: the lowest RSS of the last stretch against the
    # lowest of the first one after the warm-up.
    stretch = max(1, len(after_warmup) // 4)
    start_floor, end_floor = min(after_warmup[:stretch]), min(after_warmup[-stretch:])
    return {
        "seconds": total, "samples_trained": trained,
        "rss_start_mb": start_floor, "rss_end_mb": end_floor, "rss_peak_mb": max(mb for _, mb in samples),
        "rss_growth_mb": end_floor - start_floor,
        "snapshots_per_s": counter.snapshots / total, "redraws_per_s": redraws[0] / total,
    }


# ---- report -------------------------------------------------------------------------------------------------
def _checks(results: dict[str, object]) -> list[dict[str, object]]:
    checks = []
    if "first_frame" in results:
        value = results["first_frame"]["median_s"]
        checks.append({"what": "time to first frame (median)", "value": f"{value:.2f} s",
                       "limit": f"<= {FIRST_FRAME_LIMIT_S} s", "pass": value <= FIRST_FRAME_LIMIT_S})
        cold = results["first_frame"]["empty_cache_s"]
        checks.append({"what": "first frame, empty kernel cache", "value": f"{cold:.2f} s",
                       "limit": f"<= {FIRST_FRAME_LIMIT_S} s", "pass": cold <= FIRST_FRAME_LIMIT_S})
    if "latency" in results:
        value = results["latency"]["p99_ms"]
        checks.append({"what": "event-loop latency p99 while training", "value": f"{value:.1f} ms",
                       "limit": f"<= {LATENCY_LIMIT_MS:.0f} ms", "pass": value <= LATENCY_LIMIT_MS})
        ratio = results["throughput"]["ratio"]
        checks.append({"what": "training with the window / headless", "value": f"{100 * ratio:.0f} %",
                       "limit": f">= {100 * THROUGHPUT_LIMIT:.0f} %", "pass": ratio >= THROUGHPUT_LIMIT})
        redraws = results["redraws_per_s"]
        checks.append({"what": "redraws of heatmaps and curves", "value": f"{redraws:.1f} /s",
                       "limit": f">= {REDRAW_LIMIT:.0f} /s", "pass": redraws >= REDRAW_LIMIT})
        pause = results["pause"]
        checks.append({"what": f"Pause shown, batch {PAUSE_BATCH:,} x {PAUSE_HIDDEN}", "value":
                       f"{pause['shown_ms']:.0f} ms", "limit": f"<= {PAUSE_LIMIT_MS:.0f} ms",
                       "pass": pause["shown_ms"] <= PAUSE_LIMIT_MS})
    if "soak" in results:
        growth = results["soak"]["rss_growth_mb"]
        checks.append({"what": "memory growth after warm-up (soak)", "value": f"{growth:+.1f} MB",
                       "limit": f"<= {SOAK_GROWTH_LIMIT_MB:.0f} MB", "pass": growth <= SOAK_GROWTH_LIMIT_MB})
    return checks


def report(results: dict[str, object]) -> str:
    views = "with the views in the tabs" if results["views"] else "without the views in the tabs"
    lines = [f"GUI benchmark (Qt platform: {results['platform']}; window {views})"]
    for check in _checks(results):
        verdict = "PASS" if check["pass"] else "FAIL"
        lines.append(f"  {check['what']:<40} {check['value']:>10}   limit {check['limit']:<10} {verdict}")
    if "first_frame" in results:
        launches = ", ".join(f"{s:.2f}" for s in results["first_frame"]["launches"])
        lines.append(f"    launches to first frame: {launches} s; views in the tabs added after "
                     f"{results['first_frame']['views_ready_median_s']:.2f} s (median)")
    if "engine" in results:
        pause = results["pause"]
        lines.append(f"    engine: {results['engine']}; after Pause at batch {PAUSE_BATCH:,} x {PAUSE_HIDDEN} units "
                     f"the update under way ends and training stops after {pause['stopped_ms']:,.0f} ms")
    if "latency" in results:
        latency, throughput = results["latency"], results["throughput"]
        lines.append(f"    latency p50 {latency['p50_ms']:.1f} ms, max {latency['max_ms']:.1f} ms "
                     f"over {latency['ticks']:,} ticks of a {TIMER_MS} ms timer")
        lines.append(f"    samples/s: window {throughput['window']:,.0f}, headless {throughput['headless']:,.0f}; "
                     f"{results['redraws_per_s']:.1f} redraws/s")
    if "soak" in results:
        soaked = results["soak"]
        lines.append(f"    soak {soaked['seconds']:.0f} s, {soaked['samples_trained']:,} samples: RSS "
                     f"{soaked['rss_start_mb']:.0f} -> {soaked['rss_end_mb']:.0f} MB "
                     f"(peak {soaked['rss_peak_mb']:.0f}), {soaked['snapshots_per_s']:.1f} snapshots/s, "
                     f"{soaked['redraws_per_s']:.1f} redraws/s")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
