"""Test setup: offscreen Qt, settings in a temporary folder, no QThread may outlive its test, windows a test dropped
are deleted between tests, the `gui` marker set on every test that needs Qt, and the default run's trained models
made once for the whole run."""

from __future__ import annotations

import gc
import os
import sys
import types

import pytest

import core  # noqa: F401  (before any test imports NumPy: core limits BLAS threads, as the app does)

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

# A test module that imports any of these needs Qt; so does a test that uses one of pytest-qt's fixtures.
QT_PACKAGES = ("PySide6", "shiboken6", "pyqtgraph", "pytestqt", "explorer")
QT_FIXTURES = ("qtbot", "qapp", "qapp_args", "qtlog", "qtmodeltester")

# Tests that take more than about 5 s (measured with --durations=0) in modules that change often beside other work,
# marked `slow` here instead of with a decorator in the module; elsewhere `@pytest.mark.slow` sits on the test. A
# name covers all its parametrizations.
SLOW_TESTS = (
    "tests/test_cli.py::test_train_is_the_notebook",  # the three share a module fixture: 10,001 samples, every report
    "tests/test_cli.py::test_first_report_matches_the_model_computed_here",
    "tests/test_cli.py::test_final_line_tells_the_truth",
    "tests/test_cli.py::test_bench_quick_json",
    "tests/test_trainer.py::test_defaults_learn_addition_within_10001_samples",
    "tests/test_trainer.py::test_a_run_is_a_pure_function_of_its_settings",
)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark `gui` every test that needs Qt (`pytest -m "not gui"` leaves them out), and `slow` those in SLOW_TESTS.
    Test modules that start Qt only in a child process say so themselves, with `pytestmark = pytest.mark.gui`."""
    needs_qt: dict[types.ModuleType, bool] = {}
    for item in items:
        if item.nodeid.split("[")[0] in SLOW_TESTS:
            item.add_marker(pytest.mark.slow)
        module = getattr(item, "module", None)
        if module is not None and module not in needs_qt:
            needs_qt[module] = _imports_qt(module)
        uses_qt_fixture = any(name in QT_FIXTURES for name in getattr(item, "fixturenames", ()))
        if needs_qt.get(module) or uses_qt_fixture:
            item.add_marker(pytest.mark.gui)


def _imports_qt(module: types.ModuleType) -> bool:
    """Whether the test module imported (at module level) anything from Qt, pyqtgraph or the explorer package."""
    for value in vars(module).values():
        name = value.__name__ if isinstance(value, types.ModuleType) else getattr(value, "__module__", None)
        if isinstance(name, str) and name.split(".")[0] in QT_PACKAGES:
            return True
    return False


@pytest.fixture(scope="session", autouse=True)
def compiled_kernels():
    """Compile the kernels (or load them from numba's cache) once, before any test: every test and every child
    process the tests start then loads them from that one cache, instead of each compiling (a minute of CPU and
    about a gigabyte of memory in a child whose memory a test measures)."""
    from core import kernels

    if kernels.AVAILABLE:
        kernels.warm_up()
    yield kernels.AVAILABLE


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
    (explorer.garbage.collect_in_gui_thread): never in a training thread, never inside a Qt event.

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


# ---- the default run's models, trained once ---------------------------------------------------------------------
# Many tests need a model that has learned (every sum right) or is part-way (most sums right, some wrong). Both are
# points of one run at the defaults (seed 0, 16 units, online SGD, 8 bits), trained once for the whole test run:
# - solved_lstm / learning_lstm: one shared Trainer each, for tests that only read it (never step, update or
#   change its params: the run fails at the end if one did);
# - solved_lstm_copy / learning_lstm_copy: a Trainer of its own for every test that trains on or hands it to a
#   window (loaded from a session file: continuing it is bit-identical to the run that never stopped).
SOLVE_BUDGET = 30_000  # samples; the defaults solve in a small fraction of this
PART_WAY = 0.5  # "learning": the first check at which at least this share of all sums is right, but not all


@pytest.fixture(scope="session")
def default_run_models(tmp_path_factory: pytest.TempPathFactory) -> types.SimpleNamespace:
    """The default run trained until every sum is right, and its two points saved as sessions."""
    from core.session import save_session
    from core.trainer import CHECK_EVERY, Trainer

    folder = tmp_path_factory.mktemp("default-run")
    learning_file, solved_file = folder / "learning.npz", folder / "solved.npz"
    trainer = Trainer()
    while not trainer.solved and trainer.samples_seen < SOLVE_BUDGET:
        trainer.step(CHECK_EVERY)
        if not learning_file.exists() and not trainer.solved and trainer.exhaustive_accuracy() >= PART_WAY:
            save_session(learning_file, trainer)
    assert trainer.solved, f"the default run should solve the task within {SOLVE_BUDGET:,} samples"
    assert learning_file.exists(), "the default run should pass through a point where most sums but not all are right"
    save_session(solved_file, trainer)
    return types.SimpleNamespace(solved=trainer, learning_file=learning_file, solved_file=solved_file)


@pytest.fixture(scope="session")
def solved_lstm(default_run_models: types.SimpleNamespace):
    """The default run at the first check where every one of the 16,384 sums was right. Shared: read only."""
    trainer = default_run_models.solved
    before = _progress(trainer)
    yield trainer
    assert _progress(trainer) == before, "a test changed the shared solved_lstm: give it solved_lstm_copy instead"


@pytest.fixture(scope="session")
def learning_lstm(default_run_models: types.SimpleNamespace):
    """The default run part-way: at the first check where most sums (at least PART_WAY of them) are right, but not
    all. Shared: read only."""
    from core.session import load_session

    trainer = load_session(default_run_models.learning_file)
    accuracy = trainer.exhaustive_accuracy()
    assert PART_WAY <= accuracy < 1.0, accuracy
    before = _progress(trainer)
    yield trainer
    assert _progress(trainer) == before, "a test changed the shared learning_lstm: give it learning_lstm_copy instead"


@pytest.fixture
def solved_lstm_copy(default_run_models: types.SimpleNamespace):
    """A Trainer of the test's own, equal to solved_lstm."""
    from core.session import load_session

    return load_session(default_run_models.solved_file)


@pytest.fixture
def learning_lstm_copy(default_run_models: types.SimpleNamespace):
    """A Trainer of the test's own, equal to learning_lstm: it still has sums to learn."""
    from core.session import load_session

    return load_session(default_run_models.learning_file)


def _progress(trainer) -> tuple[int, bytes]:
    """How far a trainer has trained and its weights, to tell whether anything changed them."""
    return trainer.samples_seen, trainer.params.flat.tobytes()
