"""Test setup: offscreen Qt, settings in a temporary folder, no QThread may outlive its test, and windows a test
dropped are deleted between tests."""

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


def _collect_dropped_widgets(young_only: bool = False) -> None:
    """Delete the widgets a test let go of now, at a safe point.

    A dropped window lives on in reference cycles (its signals hold its bound methods) until Python's cyclic garbage
    collector runs. Left to itself, that may happen inside Qt's delivery of one of the window's many pending events
    (layout requests and the like, processed by pytest-qt after each test), and deleting a widget while Qt delivers
    an event to it crashes the process (tests/test_window_lifetime.py). A full collection runs only while top-level
    widgets exist, and looks only at objects made since the tests were collected (see pytest_collection_finish);
    otherwise young_only asks for a quick one of the younger generations."""
    if "PySide6.QtWidgets" in sys.modules:
        from PySide6.QtWidgets import QApplication

        if QApplication.instance() is not None and QApplication.topLevelWidgets():
            gc.collect()
            return
    if young_only:
        gc.collect(1)


def _dispose_windows_left() -> None:
    """Close and delete every main window still there: a window with views installed is kept alive by connections
    Python's collector cannot see, and would otherwise stay, with all its plots, until the end of the run."""
    if "PySide6.QtWidgets" not in sys.modules or "explorer.main_window" not in sys.modules:
        return
    from PySide6.QtWidgets import QApplication

    from explorer.main_window import MainWindow, dispose

    for widget in QApplication.topLevelWidgets():
        if isinstance(widget, MainWindow):
            dispose(widget)


def pytest_collection_finish(session: pytest.Session) -> None:
    """Collections happen here, in this thread, between tests, as the app has them only in its GUI thread
    (explorer.main_window.collect_garbage_in_gui_thread): never in a training thread, never inside a Qt event.

    The modules the tests imported (Qt, pyqtgraph, NumPy, PyTorch...) stay for the whole run: moving their objects
    out of the collector's sight halves the cost of each collection between tests."""
    gc.collect()
    gc.freeze()
    gc.disable()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item):
    """After the test function returns, before pytest-qt processes the events it left."""
    try:
        return (yield)
    finally:
        _collect_dropped_widgets()


@pytest.fixture(autouse=True)
def delete_windows_left():
    """After every other fixture of the test is torn down (a window fixture lets go of its window there)."""
    yield
    _dispose_windows_left()
    _collect_dropped_widgets(young_only=True)


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
