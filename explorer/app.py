"""Start the window: parse the window options, check that Qt can reach a display, run the event loop.

`lstm-explorer` with no sub-command comes here through run(argv).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import core
from core import limits, options, safe_save
from explorer.display import display_problem, no_display_message

SCREENSHOT_TIMEOUT_S = 60.0
DEFAULT_SIZE = "1280x800"


def build_parser() -> argparse.ArgumentParser:
    parser = options.OneLineParser(
        prog="lstm-explorer",
        description="Open the LSTM Adder Explorer window: watch an LSTM learn binary addition while it trains.",
    )
    parser.add_argument("--screenshot", metavar="PATH", type=options.path_argument,
                        help="render the window offscreen to this PNG file and exit")
    parser.add_argument("--train", metavar="SAMPLES", type=int, default=0,
                        help="with --screenshot: train this many samples first")
    parser.add_argument("--tab", metavar="NAME", help="show the bottom tab whose title contains NAME")
    parser.add_argument("--view-at", metavar="SAMPLES", type=int, default=None,
                        help="with --screenshot: show every view at the weights kept nearest this sample (the "
                             "scrubber under the curves)")
    parser.add_argument("--size", metavar="WxH",
                        help=f"window size (default {DEFAULT_SIZE}, or the size it had when last closed)")
    parser.add_argument("--open", metavar="FILE", type=options.path_argument, help="a saved session to open")
    parser.add_argument("--install-desktop", action="store_true",
                        help="add the app to your application menu (freedesktop entry and icon)")
    parser.add_argument("--uninstall-desktop", action="store_true", help="remove what --install-desktop added")
    parser.add_argument("--version", action="version", version=f"lstm-explorer {core.__version__}")
    return parser


def parse_size(text: str) -> tuple[int, int]:
    try:
        width, height = (int(part) for part in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"size must look like 1280x800, got {text!r}") from None
    if not (200 <= width <= 10000 and 200 <= height <= 10000):
        raise argparse.ArgumentTypeError(f"size must be between 200x200 and 10000x10000, got {text!r}")
    return width, height


def run(argv: list[str] | None = None) -> int:
    """Parse the window options and run; returns the exit code."""
    started = time.monotonic()
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        size = parse_size(args.size) if args.size else None
        if args.train and not args.screenshot:
            parser.error("--train needs --screenshot (in the window, press Play)")
        limits.check_count("--train", args.train, 0)
        if args.view_at is not None:
            if not args.screenshot:
                parser.error("--view-at needs --screenshot (in the window, drag the scrubber under the curves)")
            limits.check_count("--view-at", args.view_at, 0)
        if args.screenshot is not None:  # before any training: the picture must have somewhere to go
            options.picture_file("--screenshot", args.screenshot)
    except (argparse.ArgumentTypeError, limits.LimitError) as error:
        print(f"lstm-explorer: error: {options.one_line(error)}", file=sys.stderr)
        return 2
    except SystemExit as exit_:  # --help, --version, usage errors
        return exit_.code if isinstance(exit_.code, int) else 0

    if args.install_desktop or args.uninstall_desktop:
        return _desktop(args.install_desktop)
    if args.screenshot:
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    else:
        problem = display_problem()
        if problem:
            print(no_display_message(problem), file=sys.stderr, end="")
            return 1
    return _run_window(args, size, started)


def _desktop(install: bool) -> int:
    from explorer import desktop

    if install:
        for path in desktop.install():
            print(f"wrote {path}")
        print(f"{desktop.NAME} is now in your application menu (it may take a moment to appear).")
    else:
        removed = desktop.uninstall()
        for path in removed:
            print(f"removed {path}")
        if not removed:
            print("nothing to remove: the menu entry was not installed")
    return 0


def _application():
    from PySide6.QtWidgets import QApplication

    from explorer import garbage, settings
    from explorer.main_window import app_icon

    app = QApplication.instance() or QApplication([sys.argv[0] if sys.argv else "lstm-explorer"])
    garbage.collect_in_gui_thread()
    app.setOrganizationName(settings.ORGANIZATION)
    app.setApplicationName(settings.APPLICATION)
    app.setApplicationDisplayName("LSTM Adder Explorer")
    app.setApplicationVersion(core.__version__)
    app.setDesktopFileName(settings.APPLICATION)
    app.setWindowIcon(app_icon())
    return app


def _run_window(args: argparse.Namespace, size: tuple[int, int] | None, started: float) -> int:
    from PySide6.QtCore import QTimer

    from explorer import engine_prep, garbage, settings
    from explorer.main_window import MainWindow, dispose
    from explorer.session_actions import remembered_config
    from explorer.sessions import start_interactive

    app = _application()
    engine_prep.never_compile_here()  # the window's process: a loaded session's Trainer must not compile either
    if args.screenshot:
        return _screenshot(app, args, size or parse_size(DEFAULT_SIZE))
    timing = bool(os.environ.get("LSTM_EXPLORER_FIRST_FRAME"))  # `lstm-explorer bench --gui`: report, then quit
    engine = os.environ.get("LSTM_EXPLORER_ENGINE") or str(settings.store().value(settings.ENGINE) or "auto")
    # The last session's settings (a benchmark's launch uses the defaults), at the size it had when last closed.
    window = MainWindow(config=None if timing else remembered_config(), engine=engine)
    # numba, imported by the worker when the compiled engine starts, brings ~80,000 objects that live as long as the
    # process: out of the collector's sight too (in this, the GUI thread).
    window.worker.sigEngine.connect(lambda _engine: garbage.freeze_long_lived())
    if size is not None:
        window.resize(*size)
    window.show()

    def add_views() -> None:
        """The views in the tabs are added once the window is on screen, so it appears sooner."""
        if timing:
            window.repaint()  # the first frame: the window draws its first snapshot before it is shown
            print(f"first frame {time.monotonic() - started:.3f}", flush=True)
        if not os.environ.get("LSTM_EXPLORER_NO_VIEWS"):  # `bench --gui --no-views` times the bare window
            window.add_views()
        garbage.freeze_long_lived()  # the window lives as long as the process
        if not timing:
            start_interactive(window.sessions, args.open)  # opens --open FILE; remembers the settings on close
        if args.tab and not window.select_tab(args.tab):
            window.status_message(f"no tab called {args.tab!r}")
        if timing:
            window.repaint()
            print(f"views ready {time.monotonic() - started:.3f}", flush=True)
            window.close()

    QTimer.singleShot(0, window, add_views)
    code = int(app.exec())
    dispose(window)  # now, while the application exists: pyqtgraph items outliving it can crash at exit
    return code


def _screenshot(app, args: argparse.Namespace, size: tuple[int, int]) -> int:
    from core.trainer import Trainer
    from explorer.main_window import MainWindow, dispose

    if args.open is not None:  # the saved session, trained --train samples further
        from core.session import SessionError, load_session

        try:
            trainer = load_session(args.open)
        except SessionError as error:
            print(f"lstm-explorer: error: {error}", file=sys.stderr)
            return 2
    else:
        trainer = Trainer()
    from core.cli import ProgressBar
    from explorer.worker import record_history

    record_history(trainer)  # the samples trained here are on the scrubber and in the story too

    remaining = args.train
    progress = ProgressBar(args.train, sys.stderr) if args.train and sys.stderr.isatty() else None
    while remaining > 0:
        result = trainer.step(min(1000, remaining))
        remaining -= max(result.samples, 1)
        if progress is not None:
            progress.update(args.train - max(remaining, 0), trainer.samples_per_second)
    if progress is not None:
        progress.clear()
    window = MainWindow(trainer=trainer, restore_layout=False)
    try:
        return _render(app, window, args, size)
    finally:
        dispose(window)


def _render(app, window, args: argparse.Namespace, size: tuple[int, int]) -> int:
    """Show the window at size, wait for the view in front to fill in, and save it as args.screenshot."""
    from PySide6.QtCore import QEventLoop

    window.resize(*size)  # first: the tab area takes its share of this size
    window.add_views()
    window.show()
    deadline = time.monotonic() + SCREENSHOT_TIMEOUT_S

    def spin() -> None:
        app.processEvents(QEventLoop.ProcessEventsFlag.AllEvents, 50)

    if args.tab and not window.select_tab(args.tab):
        titles = [window.tabs.tabText(i) for i in range(window.tabs.count())]
        print(f"lstm-explorer: error: no tab called {args.tab!r}; tabs: {', '.join(titles) or 'none'}",
              file=sys.stderr)
        return 2
    # The view in front is computed in another thread (error grid, knockout, carry finder...): wait until the latest
    # snapshot has its results for these weights.
    host = window.current_host()
    names = {a.name for a in host.view.analyses if not a.on_request} if host is not None else set()

    if args.view_at is not None:
        window.controller.view_at(args.view_at)

    def waiting() -> bool:
        snapshot = window.latest_snapshot
        if snapshot is not None and args.view_at is not None and snapshot.viewing < 0:
            return True
        ready = host.view.extra.get("ready") if host is not None and hasattr(host.view, "extra") else None
        if snapshot is not None and ready is not None and not ready(snapshot):
            return True  # (a view that draws something else than analyses, and says when it has it)
        return snapshot is None or bool(names & snapshot.pending) or not names <= set(snapshot.analyses)

    while time.monotonic() < deadline and waiting():
        spin()
    if window.latest_snapshot is None:
        print("lstm-explorer: error: the training worker sent nothing to draw", file=sys.stderr)
        return 1
    window.redraw_now()
    for _ in range(5):  # let layouts settle and pyqtgraph repaint
        app.processEvents()
    image = window.grab()

    def write_png(temp: Path) -> None:
        if not image.save(str(temp), "PNG"):
            raise OSError(f"the image could not be written to {temp.parent}")

    try:
        args.screenshot.parent.mkdir(parents=True, exist_ok=True)
        safe_save.write_file_by_name(args.screenshot, write_png)
    except (OSError, safe_save.SessionError) as error:
        print(f"lstm-explorer: error: {options.one_line(error)}", file=sys.stderr)
        return 2
    trained = window.latest_snapshot.samples_seen
    print(f"wrote {args.screenshot} ({image.width()}x{image.height()}, {trained:,} samples trained)")
    return 0


if __name__ == "__main__":
    sys.exit(run(sys.argv[1:]))
