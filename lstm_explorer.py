"""The `lstm-explorer` command. Without a sub-command (or with window options) it opens the window (explorer.app);
`bench --gui` and `bench --soak` measure the window (explorer.bench); every other sub-command is core's headless
command line (core.cli), which never imports Qt or the explorer. Only this module knows both."""

from __future__ import annotations

import sys

WINDOW_BENCH_OPTIONS = ("--gui", "--soak")


def wants_window(argv: list[str]) -> bool:
    """No sub-command, or only the window's options (--open, --screenshot, ...)."""
    return not argv or (argv[0].startswith("-") and argv[0] not in ("-h", "--help", "--version"))


def main(argv: list[str] | None = None) -> int:
    """Run the command; returns the exit code (the console script passes it to sys.exit)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if wants_window(argv):
        return open_window(argv)
    if argv[0] == "bench" and any(arg.split("=")[0] in WINDOW_BENCH_OPTIONS for arg in argv[1:]):
        try:
            from explorer import bench
        except ImportError as error:
            print(f"lstm-explorer bench --gui / --soak: not available in this installation ({error})",
                  file=sys.stderr)
            return 2
        return bench.main(argv[1:])
    from core import cli

    return cli.main(argv)


def open_window(argv: list[str]) -> int:
    try:
        from explorer.app import run
    except ImportError as error:
        from core import cli

        cli.build_parser().print_help()
        note = f"\nThe window is not available here ({error}); the sub-commands above work without it."
        if argv:  # window options were given and cannot be honoured
            print(note.strip(), file=sys.stderr)
            return 2
        print(note)
        return 0
    return run(argv)


if __name__ == "__main__":
    sys.exit(main())
