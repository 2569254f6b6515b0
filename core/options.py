"""Command-line options checked up front, and errors told in one line that names the option.

The trainer's own errors name its settings ("n bits must be ..."); on the command line the user typed --bits, so
one_line() says "--bits must be ...", cuts any echoed value to about limits.SHOWN_CHARS characters, and never
spans two lines. The checks here are shared by the sub-commands and the window's options.
"""

from __future__ import annotations

import argparse
import math
import os
import re
import sys
from pathlib import Path
from typing import NoReturn

from core.limits import SHOWN_CHARS, LimitError, shown, shown_path
from core.safe_save import SessionError, check_writable, resolve_target

# The trainer's label of a setting (TrainConfig.validate, core.task) -> the option that sets it.
OPTION_NAMES = {
    "hidden size": "--hidden", "learning rate": "--lr", "batch size": "--batch", "clip norm": "--clip",
    "forget bias": "--forget-bias", "n bits": "--bits", "bits": "--bits", "optimizer": "--optimizer",
    "momentum": "--momentum", "init": "--init", "seed": "--seed", "dtype": "--dtype", "model": "--model",
    "samples": "--samples", "report every": "--report-every", "loss": "--loss", "activation": "--activation",
    "bias": "--bias", "preset": "--preset",
}
_QUOTED = re.compile("'([^']{" + str(SHOWN_CHARS + 1) + ",})'")
_GOT = re.compile(r"(, got |got )(.*)$")
_LONG_WORD = re.compile(r"\S{" + str(3 * SHOWN_CHARS + 10) + ",}")  # longer than any path shown_path gives


def one_line(error: BaseException | str, option_names: dict[str, str] | None = None) -> str:
    """The error's message in one line, the setting it starts with named as its option, echoed values cut."""
    text = " ".join(str(error).split())
    names = OPTION_NAMES if option_names is None else option_names
    for label in sorted(names, key=len, reverse=True):
        if text.startswith(label + " "):
            text = names[label] + text[len(label):]
            break
    text = _QUOTED.sub(lambda match: shown(match.group(1)), text)
    got = _GOT.search(text)
    if got and len(got.group(2)) > SHOWN_CHARS:
        text = text[: got.start(2)] + got.group(2)[: SHOWN_CHARS - 1] + "…"
    return _LONG_WORD.sub(lambda match: match.group(0)[: SHOWN_CHARS - 1] + "…", text)


class OneLineParser(argparse.ArgumentParser):
    """An ArgumentParser whose usage errors are one line on stderr (what is wrong, and where help is), exit 2."""

    def error(self, message: str) -> NoReturn:
        print(f"{self.prog}: error: {one_line(message)} (see {self.prog} --help)", file=sys.stderr)
        raise SystemExit(2)


def path_argument(text: str) -> Path:
    """argparse type for a file name: an empty one is refused (Path("") would mean the current folder)."""
    if not text:
        raise argparse.ArgumentTypeError("a file name is needed, got ''")
    return Path(text)


def output_file(option: str, value: str) -> Path:
    """A file an option will write: refused now (LimitError naming the option) if it cannot be written."""
    try:
        return check_writable(value)
    except SessionError as error:
        raise LimitError(f"{option} {shown_path(value)}: {_reason(error)}") from None


def output_folder(option: str, value: str) -> Path:
    """A folder an option will write files into (created if missing, as its parent must exist)."""
    if not value:
        raise LimitError(f"{option} needs a folder name, got ''")
    path = Path(value)
    try:
        if path.exists() and not path.is_dir():
            raise LimitError(f"{option} {shown_path(value)} is a file, not a folder")
        parent = path if path.is_dir() else path.parent
        if not parent.is_dir():
            raise LimitError(f"{option} {shown_path(value)}: the folder {shown_path(parent)} does not exist")
        if not os.access(parent, os.W_OK | os.X_OK):
            raise LimitError(f"{option} {shown_path(value)}: the folder {shown_path(parent)} is not writable")
    except OSError as error:
        raise LimitError(f"{option} {shown_path(value)}: {error.strerror or error}") from None
    return path


def picture_file(option: str, value: str | os.PathLike) -> Path:
    """A PNG a screenshot option will write: its folder may be created, but nothing at the path may be other than
    a regular file, and no part of the folder may be a file."""
    text = os.fspath(value)
    if not text:
        raise LimitError(f"{option} needs a file name, got ''")
    path = Path(text)
    folder = path.parent
    try:
        existing = folder
        while not existing.exists():  # the folder is created: its first existing ancestor must be a writable folder
            existing = existing.parent
        if not existing.is_dir():
            raise LimitError(f"{option} {shown_path(text)}: {shown_path(existing)} is a file, not a folder")
        if not os.access(existing, os.W_OK | os.X_OK):
            raise LimitError(f"{option} {shown_path(text)}: the folder {shown_path(existing)} is not writable")
        if existing == folder:
            resolve_target(path)
    except SessionError as error:
        raise LimitError(f"{option} {shown_path(text)}: {_reason(error)}") from None
    except OSError as error:
        raise LimitError(f"{option} {shown_path(text)}: {error.strerror or error}") from None
    return path


def seconds(option: str, value: float, high: float = 7 * 24 * 3600.0) -> float:
    """A duration option: a finite number of seconds above 0 and at most `high` (a week by default)."""
    if not (isinstance(value, (int, float)) and math.isfinite(value) and 0 < value <= high):
        raise LimitError(f"{option} must be a number of seconds above 0 and at most {high:g}, got {shown(value)}")
    return float(value)


def _reason(error: SessionError) -> str:
    """What is wrong, without the 'cannot save PATH: ' the option's message already says."""
    text = str(error)
    return text.split(": ", 1)[1] if text.startswith("cannot save") and ": " in text else text
