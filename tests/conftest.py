"""Test setup: offscreen Qt, settings in a temporary folder, and no QThread may outlive its test."""

from __future__ import annotations

import gc
import os
import sys

import pytest

import core  # noqa: F401  (before any test imports NumPy: core limits BLAS threads, as the app does)

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


@pytest.fixture(scope="session", autouse=True)
def isolated_qsettings(tmp_path_factory: pytest.TempPathFactory):
    """QSettings of every format and scope go to a temporary folder, never the user's configuration."""
    if "PySide6" not in sys.modules and not _qt_available():
        yield None
        return
    from PySide6.QtCore import QSettings

    folder = tmp_path_factory.mktemp("qsettings")
    for settings_format in (QSettings.Format.NativeFormat, QSettings.Format.IniFormat):
        for scope in (QSettings.Scope.UserScope, QSettings.Scope.SystemScope):
            QSettings.setPath(settings_format, scope, str(folder))
    QSettings.setDefaultFormat(QSettings.Format.IniFormat)
    yield folder


def _qt_available() -> bool:
    try:
        import PySide6.QtCore  # noqa: F401
    except ImportError:
        return False
    return True


def _running_qthreads() -> list:
    if "PySide6.QtCore" not in sys.modules:
        return []
    from PySide6.QtCore import QThread

    from explorer.worker import LIVE_THREADS

    candidates = set(LIVE_THREADS)
    candidates.update(o for o in gc.get_objects() if isinstance(o, QThread))
    main = QThread.currentThread()
    running = []
    for thread in candidates:
        try:
            if thread is not main and thread.isRunning():
                running.append(thread)
        except RuntimeError:  # the C++ object is already gone
            continue
    return running


@pytest.fixture(autouse=True)
def no_qthread_left_running():
    """Fail a test that leaves a QThread running (then stop it, so later tests start clean)."""
    yield
    running = _running_qthreads()
    if running:
        names = ", ".join(thread.objectName() or type(thread).__name__ for thread in running)
        for thread in running:
            thread.quit()
            thread.wait(5000)
        pytest.fail(f"test left {len(running)} QThread(s) running: {names}")
