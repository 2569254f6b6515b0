"""Install or remove a freedesktop menu entry and icon for the current user."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

from explorer import resources

APP_ID = "lstm-explorer"
NAME = "LSTM Adder Explorer"


def data_home() -> Path:
    """$XDG_DATA_HOME, or ~/.local/share as the freedesktop spec says when it is unset or empty."""
    value = os.environ.get("XDG_DATA_HOME", "")
    return Path(value) if value and Path(value).is_absolute() else Path.home() / ".local" / "share"


def entry_path() -> Path:
    return data_home() / "applications" / f"{APP_ID}.desktop"


def icon_path() -> Path:
    return data_home() / "icons" / "hicolor" / "scalable" / "apps" / f"{APP_ID}.svg"


def launch_command() -> str:
    """How the menu starts the app: the console script beside this Python if there is one."""
    script = Path(sys.executable).parent / APP_ID
    if script.is_file():
        return _quote(str(script))
    found = shutil.which(APP_ID)
    if found:
        return _quote(found)
    return f"{_quote(sys.executable)} -m explorer.app"


def _quote(argument: str) -> str:
    """Quote an Exec argument as the Desktop Entry spec asks when it holds reserved characters."""
    if not any(c in argument for c in " \t\n\"'\\><~|&;$*?#()`"):
        return argument
    escaped = argument.replace("\\", "\\\\").replace('"', '\\"').replace("`", "\\`").replace("$", "\\$")
    return f'"{escaped}"'


def desktop_entry(command: str) -> str:
    return "\n".join([
        "[Desktop Entry]",
        "Type=Application",
        "Version=1.5",
        f"Name={NAME}",
        "GenericName=Neural network explorer",
        "Comment=Watch a small LSTM learn binary addition and look inside it while it learns",
        f"Exec={command}",
        f"Icon={APP_ID}",
        "Terminal=false",
        "Categories=Education;Science;",
        "Keywords=LSTM;neural network;binary;addition;machine learning;",
        f"StartupWMClass={APP_ID}",
        "",
    ])


def install() -> list[Path]:
    """Write the menu entry and the icon; returns the files written."""
    entry, icon = entry_path(), icon_path()
    entry.parent.mkdir(parents=True, exist_ok=True)
    icon.parent.mkdir(parents=True, exist_ok=True)
    icon.write_bytes(resources.read_bytes("icon.svg"))
    temporary = entry.with_suffix(".desktop.tmp")
    temporary.write_text(desktop_entry(launch_command()), encoding="utf-8")
    temporary.replace(entry)
    return [entry, icon]


def uninstall() -> list[Path]:
    """Remove what install() wrote; returns the files removed."""
    removed = []
    for path in (entry_path(), icon_path()):
        if path.exists():
            path.unlink()
            removed.append(path)
    return removed
