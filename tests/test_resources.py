"""The app finds its icon however it is run: as the installed package data, or from a checkout that was not installed
(`python -m explorer`, `python -m pytest`), where the package `explorer.assets` does not exist."""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def run_python(arguments: list[str], path: list[Path | str], cwd: Path, **env: str) -> subprocess.CompletedProcess:
    """Python with exactly `path` in front of sys.path: -S skips site, so no .pth file runs (an editable install's
    import hook is one) and nothing installed is importable unless a folder of `path` holds it."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    environment.update(PYTHONPATH=os.pathsep.join(str(folder) for folder in path), **env)
    done = subprocess.run([sys.executable, "-S", *arguments], cwd=cwd, env=environment, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    return done


def dependency_folders() -> list[str]:
    """The folders this Python imports the app's dependencies from (its site-packages, usually), without running
    their .pth files."""
    folders = []
    for name in ("numpy", "PySide6", "shiboken6", "pyqtgraph"):
        folder = str(Path(importlib.util.find_spec(name).origin).parent.parent)
        if folder not in folders:
            folders.append(folder)
    return folders


FROM_CHECKOUT = """
import importlib.util, sys
from pathlib import Path
import explorer
from explorer import resources
print(Path(explorer.__file__).resolve().parent.parent)
print(importlib.util.find_spec("explorer.assets"))
print(Path(str(resources.assets())).resolve())
sys.stdout.flush()
sys.stdout.buffer.write(resources.read_bytes("icon.svg"))
"""


def test_a_checkout_that_was_not_installed_uses_its_assets_folder(tmp_path: Path) -> None:
    done = run_python(["-c", FROM_CHECKOUT], [REPO], cwd=tmp_path)
    source, assets_package, folder, icon = done.stdout.split("\n", 3)
    assert source == str(REPO), "the explorer package came from the checkout"
    assert assets_package == "None", "no explorer.assets package to find: the fallback is what is tested"
    assert folder == str(REPO / "assets")
    assert icon == (REPO / "assets" / "icon.svg").read_text(encoding="utf-8")


def test_installed_package_data_comes_first(tmp_path: Path) -> None:
    """Laid out as a wheel installs it: explorer/assets/ is a package whose files differ from the checkout's."""
    installed = tmp_path / "site" / "explorer"
    (installed / "assets").mkdir(parents=True)
    for name in ("__init__.py", "resources.py"):
        shutil.copy(REPO / "explorer" / name, installed / name)
    (installed / "assets" / "__init__.py").write_text("")
    (installed / "assets" / "icon.svg").write_text("<svg>installed</svg>")
    done = run_python(["-c", FROM_CHECKOUT], [tmp_path / "site"], cwd=tmp_path)
    source, assets_package, folder, icon = done.stdout.split("\n", 3)
    assert source == str(tmp_path / "site")
    assert assets_package != "None"
    assert folder == str(installed / "assets")
    assert icon == "<svg>installed</svg>"


ICON = """
from PySide6.QtWidgets import QApplication
app = QApplication([])
from explorer.main_window import app_icon
icon = app_icon()
assert not icon.isNull() and icon.availableSizes(), "no icon"
print("icon", icon.availableSizes()[0].width())
"""


@pytest.mark.gui
def test_the_window_icon_loads_from_a_checkout_that_was_not_installed(tmp_path: Path) -> None:
    pytest.importorskip("PySide6.QtWidgets")
    done = run_python(["-c", ICON], [REPO, *dependency_folders()], cwd=tmp_path, QT_QPA_PLATFORM="offscreen")
    assert done.stdout.startswith("icon ")


@pytest.mark.gui
@pytest.mark.slow
def test_python_m_explorer_opens_the_window_from_a_checkout(tmp_path: Path) -> None:
    """`python -m explorer` from a checkout, the checkout first on the path and no editable install's import hook."""
    pytest.importorskip("PySide6.QtWidgets")
    picture = tmp_path / "window.png"
    done = run_python(["-m", "explorer", "--screenshot", str(picture), "--size", "640x480"],
                      [REPO, *dependency_folders()], cwd=tmp_path, QT_QPA_PLATFORM="offscreen")
    assert done.stdout.startswith(f"wrote {picture} (640x480, ")
    assert picture.read_bytes().startswith(b"\x89PNG")
