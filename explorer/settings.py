"""Where the window keeps what it remembers between launches (QSettings), and the name of every key."""

from __future__ import annotations

from PySide6.QtCore import QSettings

ORGANIZATION = "LSTM Adder Explorer"  # QSettings organisation and application names
APPLICATION = "lstm-explorer"

GEOMETRY = "window/geometry"
STATE = "window/state"  # docks and toolbars
SPLITTER = "window/splitter"
LAYOUT_VERSION = "window/layout_version"  # a stored layout of an older version is not restored
PAUSE_WHEN_SOLVED = "training/pause_when_solved"
ENGINE = "training/engine"  # auto | numpy | compiled
HINT_SEEN = "help/first_launch_hint_seen"
RECENT_FILES = "session/recent_files"  # JSON list of absolute paths, most recent first
HYPERPARAMETERS = "session/hyperparameters"  # TrainConfig as JSON, read back field by field
LAST_FOLDER = "session/last_folder"  # where the last file dialog ended up


def store() -> QSettings:
    """The app's settings (in tests: a temporary folder, see tests/conftest.py)."""
    return QSettings(ORGANIZATION, APPLICATION)


def flag(key: str, default: bool, settings: QSettings | None = None) -> bool:
    """A stored yes/no (QSettings' ini files give back strings)."""
    value = (settings or store()).value(key)
    if value is None:
        return default
    return str(value).lower() in ("true", "1", "yes")
