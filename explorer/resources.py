"""The app's files (icon, stylesheet, example sessions), found however the app was installed or started.

An installed wheel has them as the package data `explorer.assets` (pyproject maps the package to the top-level
`assets/` folder). Run from a checkout (`python -m explorer`, `python -m pytest`) or from some editable installs,
that package does not exist: then they are the `assets/` folder beside the source tree.
"""

from __future__ import annotations

from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path

SOURCE_ASSETS = Path(__file__).resolve().parent.parent / "assets"


def assets() -> Traversable:
    """The folder of the app's files: the installed package data, else assets/ in the source tree."""
    try:
        return resources.files("explorer.assets")
    except ModuleNotFoundError:
        return SOURCE_ASSETS


def read_bytes(name: str) -> bytes:
    """The contents of one of the app's files, e.g. read_bytes("icon.svg")."""
    return assets().joinpath(name).read_bytes()
