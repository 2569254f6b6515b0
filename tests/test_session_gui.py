"""Sessions in the window, offscreen: Save / Open through the File menu, bad files refused with one dialog and
nothing changed, recent files, drag-and-drop, exports (CSV, PyTorch weights, PNG, plot menus), the question
before losing unsaved progress, remembered hyperparameters, --open at start, and the divergence notice."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pyqtgraph as pg
import pytest
from PySide6.QtCore import QMimeData, QPoint, QPointF, Qt, QThread, QTimer, QUrl
from PySide6.QtGui import QDragEnterEvent, QDropEvent, QImage
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication, QFileDialog, QMessageBox

from core import lstm, task
from core.session import load_session, save_session
from core.trainer import TrainConfig, Trainer
from explorer import app, session_actions, sessions
from explorer.main_window import MainWindow
from explorer.panels.curves import DIVERGED_COLOR

WAIT_MS = 30_000
SESSION_FILTER = sessions.SESSION_FILTER


@pytest.fixture(autouse=True)
def clean_session_settings():
    """Each test starts with no recent files and no remembered hyperparameters."""
    session_actions.settings().remove("session")
    yield
    session_actions.settings().remove("session")


def trained(samples: int = 300, **config: object) -> Trainer:
    trainer = Trainer(TrainConfig(heldout_size=64, **config))
    trainer.step(samples)
    return trainer


@pytest.fixture
def make_window(qtbot):
    windows = []

    def make(trainer: Trainer | None = None) -> MainWindow:
        win = MainWindow(trainer or trained(), restore_layout=False)
        qtbot.addWidget(win)
        win.show()
        qtbot.waitUntil(lambda: win.latest_snapshot is not None, timeout=WAIT_MS)
        windows.append(win)
        return win

    yield make
    for win in windows:
        win.close()
        assert win.stop_training_thread(), "closing the window stops the training thread"


@pytest.fixture
def window(make_window) -> MainWindow:
    return make_window()


@pytest.fixture
def dialogs(monkeypatch):
    """Every QMessageBox.critical call, captured instead of shown."""
    shown: list[tuple[str, str]] = []
    monkeypatch.setattr(QMessageBox, "critical", lambda parent, title, text, *rest: shown.append((title, text)))
    return shown


def fresh_snapshot(qtbot, win: MainWindow):
    """A snapshot sent after every request made so far was handled by the worker."""
    before = win.latest_snapshot
    win.controller.refresh()
    qtbot.waitUntil(lambda: win.latest_snapshot is not before, timeout=WAIT_MS)
    return win.latest_snapshot


def save(qtbot, win: MainWindow, path: Path) -> session_actions.JobResult:
    with qtbot.waitSignal(win.sessions.sigJobDone, timeout=WAIT_MS) as done:
        win.sessions.save_to(path)
    return done.args[0]


def step(qtbot, win: MainWindow, times: int = 1) -> None:
    for _ in range(times):
        samples = win.latest_snapshot.samples_seen
        win.request_step()
        qtbot.waitUntil(lambda samples=samples: win.latest_snapshot.samples_seen > samples, timeout=WAIT_MS)


# ---- menu, save and open ----------------------------------------------------------------------------------
def test_file_menu_has_the_session_actions_before_quit(window):
    texts = [action.text() for action in window.file_menu.actions() if not action.isSeparator()]
    assert texts == ["&Open…", "Open &Recent", "&Save", "Save &As…", "&Export", "Quit"]
    controller = window.sessions
    assert controller.open_action.shortcut().toString() == "Ctrl+O"
    assert controller.save_action.shortcut().toString() == "Ctrl+S"
    assert controller.save_as_action.shortcut().toString() == "Ctrl+Shift+S"
    exports = [action.text() for action in controller.export_menu.actions()]
    assert exports == ["Weights for &PyTorch (.npz)…", "&Curves as CSV…", "&Window as PNG…"]


def test_save_then_open_through_the_menu_restores_the_session(qtbot, window, tmp_path, monkeypatch):
    controller = window.sessions
    window.controls.lr_edit.setText("0.25")
    window.controls.lr_edit.editingFinished.emit()
    qtbot.waitUntil(lambda: window.latest_snapshot.config.learning_rate == 0.25, timeout=WAIT_MS)
    step(qtbot, window, 3)
    assert window.windowTitle().endswith("Untitled •"), "training is unsaved progress"

    # Save on an untitled session asks for a name; the suffix is added when the name lacks it.
    asked = []
    monkeypatch.setattr(QFileDialog, "getSaveFileName",
                        lambda *args, **kwargs: (asked.append(args) or str(tmp_path / "adder"), ""))
    with qtbot.waitSignal(controller.sigJobDone, timeout=WAIT_MS) as done:
        controller.save_action.trigger()
    path = tmp_path / "adder.npz"
    assert len(asked) == 1 and done.args[0].error is None and done.args[0].path == path
    saved = fresh_snapshot(qtbot, window)
    assert window.windowTitle() == "LSTM Adder Explorer — adder", "saved: the name, and no unsaved mark"

    # The file holds exactly what the window showed.
    on_disk = load_session(path)
    np.testing.assert_array_equal(on_disk.params.flat, saved.params.flat)
    assert on_disk.samples_seen == saved.samples_seen == 303
    assert on_disk.config == saved.config

    # Change everything, then open the file again from the menu.
    window.request_reset(TrainConfig(learning_rate=0.5, seed=4, hidden_size=5, heldout_size=64))
    qtbot.waitUntil(lambda: window.latest_snapshot.samples_seen == 0, timeout=WAIT_MS)
    qtbot.waitUntil(lambda: window.windowTitle().endswith("adder •"), timeout=WAIT_MS)
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *args, **kwargs: (str(path), SESSION_FILTER))
    opened = []
    controller.sigOpened.connect(opened.append)
    controller.open_action.trigger()
    assert opened == [path]
    qtbot.waitUntil(lambda: window.latest_snapshot.samples_seen == saved.samples_seen, timeout=WAIT_MS)
    restored = window.latest_snapshot
    np.testing.assert_array_equal(restored.params.flat, saved.params.flat)
    np.testing.assert_array_equal(restored.history, saved.history)
    assert restored.events == saved.events
    assert restored.config == saved.config
    qtbot.waitUntil(lambda: window.controls.lr_edit.text() == "0.25", timeout=WAIT_MS)
    assert window.controls.hidden.value() == 16 and window.controls.seed.value() == 0
    assert window.windowTitle() == "LSTM Adder Explorer — adder"
    assert session_actions.recent_files()[0] == path


def bad_file(kind: str, folder: Path) -> Path:
    """A file that must be refused, made from a good session file."""
    good = folder / "good.npz"
    save_session(good, trained(50))
    arrays = dict(np.load(good))
    path = folder / f"{kind}.npz"
    if kind == "truncated":
        data = good.read_bytes()
        path.write_bytes(data[: len(data) // 2])
    elif kind == "random bytes":
        path.write_bytes(np.random.default_rng(0).bytes(5000))
    elif kind == "pickled object array":
        arrays["history.events"] = np.array([{"samples": 1}], dtype=object)
        with open(path, "wb") as handle:
            np.savez(handle, **arrays)  # object arrays are pickled inside the npz
    elif kind == "wrong shapes":
        arrays["lstm.weight_hh_l0"] = np.zeros((3, 3))
        np.savez(path, **arrays)
    elif kind == "NaN weights":
        weights = arrays["lstm.weight_ih_l0"].copy()
        weights[2, 1] = np.nan
        arrays["lstm.weight_ih_l0"] = weights
        np.savez(path, **arrays)
    elif kind == "missing keys":
        del arrays["head.weight"]
        np.savez(path, **arrays)
    elif kind == "directory":
        path.mkdir()
    return path


@pytest.mark.parametrize(("kind", "says"), [
    ("truncated", "damaged"), ("random bytes", "not a saved model or session"),
    ("pickled object array", "pickled"), ("wrong shapes", "has shape"), ("NaN weights", "NaN"),
    ("missing keys", "head.weight"), ("directory", "folder")])
def test_a_bad_file_gives_one_dialog_and_leaves_the_session_untouched(qtbot, window, tmp_path, dialogs, kind,
                                                                       says):
    before = fresh_snapshot(qtbot, window)
    trainer_before = window.worker.trainer
    title_before = window.windowTitle()
    path = bad_file(kind, tmp_path)
    opened = []
    window.sessions.sigOpened.connect(opened.append)

    assert window.sessions.open_file(path) is False
    assert len(dialogs) == 1
    title, text = dialogs[0]
    assert title == "Cannot open the session"
    assert path.name in text and says in text  # (a long folder may be shortened with …)
    after = fresh_snapshot(qtbot, window)  # any load would have reached the worker before this refresh
    assert opened == []
    assert window.worker.trainer is trainer_before
    np.testing.assert_array_equal(after.params.flat, before.params.flat)
    np.testing.assert_array_equal(after.history, before.history)
    assert (after.samples_seen, after.config) == (before.samples_seen, before.config)
    assert window.windowTitle() == title_before
    assert window.sessions.path is None
    assert session_actions.recent_files() == []


# ---- recent files, drag-and-drop --------------------------------------------------------------------------
def recent_entries(win: MainWindow) -> list[str]:
    win.sessions.rebuild_recent_menu()
    return [action.data() for action in win.sessions.recent_menu.actions() if action.data()]


def test_recent_files_keep_the_last_eight_and_drop_missing_ones(qtbot, window, tmp_path, dialogs):
    paths = [tmp_path / f"run{number}.npz" for number in range(10)]
    for path in paths:
        assert save(qtbot, window, path).error is None
    assert recent_entries(window) == [str(path) for path in reversed(paths[2:])]
    assert window.sessions.recent_menu.actions()[0].text() == "&1 run9.npz"

    window.sessions.open_file(paths[4])  # opening moves a file to the top
    assert recent_entries(window)[:2] == [str(paths[4]), str(paths[9])]

    paths[9].unlink()
    paths[7].unlink()
    entries = recent_entries(window)
    assert str(paths[9]) not in entries and str(paths[7]) not in entries and len(entries) == 6
    message = window.statusBar().currentMessage()
    assert "run9.npz" in message and "run7.npz" in message
    assert session_actions.recent_files() == [Path(entry) for entry in entries], "pruned in the settings too"

    entry = next(action for action in window.sessions.recent_menu.actions() if action.data() == str(paths[3]))
    with qtbot.waitSignal(window.sessions.sigOpened, timeout=WAIT_MS) as opened:
        entry.trigger()
    assert opened.args == [paths[3]]
    assert dialogs == []


def test_damaged_recent_files_setting_is_ignored():
    store = session_actions.settings()
    store.setValue(session_actions.RECENT_KEY, json.dumps(["/a.npz", 3, None, "/a.npz", "/b.npz"]))
    assert session_actions.recent_files(store) == [Path("/a.npz"), Path("/b.npz")]
    session_actions.settings().setValue(session_actions.RECENT_KEY, "not json [")
    assert session_actions.recent_files() == []


def drag_events(urls: list[QUrl], mime: QMimeData) -> tuple[QDragEnterEvent, QDropEvent]:
    """A drag of urls entering the window and its drop; mime must outlive them (the events do not own it)."""
    mime.setUrls(urls)
    enter = QDragEnterEvent(QPoint(300, 300), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                            Qt.KeyboardModifier.NoModifier)
    drop = QDropEvent(QPointF(300, 300), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                      Qt.KeyboardModifier.NoModifier)
    return enter, drop


def test_dropping_a_session_file_opens_it(qtbot, window, tmp_path, dialogs):
    other = trained(120, seed=7)
    path = tmp_path / "dropped.npz"
    save_session(path, other)
    mime = QMimeData()
    enter, drop = drag_events([QUrl.fromLocalFile(str(path))], mime)
    QApplication.sendEvent(window, enter)
    assert enter.isAccepted()
    with qtbot.waitSignal(window.sessions.sigOpened, timeout=WAIT_MS):
        QApplication.sendEvent(window, drop)
    qtbot.waitUntil(lambda: window.latest_snapshot.samples_seen == 120, timeout=WAIT_MS)
    np.testing.assert_array_equal(window.latest_snapshot.params.flat, other.params.flat)
    assert window.windowTitle() == "LSTM Adder Explorer — dropped"
    assert dialogs == []


@pytest.mark.parametrize(("urls", "says"), [
    (lambda folder: [QUrl.fromLocalFile(str(folder / "notes.txt"))], "only .npz"),
    (lambda folder: [QUrl("https://example.org/run.npz")], "Only files on this computer"),
    (lambda folder: [QUrl.fromLocalFile(str(folder / "a.npz")), QUrl.fromLocalFile(str(folder / "b.npz"))],
     "one session file at a time")])
def test_dropping_anything_else_is_refused_with_a_message(qtbot, window, tmp_path, urls, says):
    trainer_before = window.worker.trainer
    mime = QMimeData()
    enter, drop = drag_events(urls(tmp_path), mime)
    QApplication.sendEvent(window, enter)
    assert not enter.isAccepted()
    assert says in window.statusBar().currentMessage()
    QApplication.sendEvent(window, drop)
    assert not drop.isAccepted()
    fresh_snapshot(qtbot, window)
    assert window.worker.trainer is trainer_before and window.sessions.path is None


# ---- exports ----------------------------------------------------------------------------------------------
def export(qtbot, win: MainWindow, method, path: Path) -> None:
    with qtbot.waitSignal(win.sessions.sigJobDone, timeout=WAIT_MS) as done:
        method(path)
    assert done.args[0].error is None and done.args[0].path == path


def test_curves_csv_holds_the_history_and_events(qtbot, window, tmp_path):
    window.request_config_change({"learning_rate": 0.3})
    step(qtbot, window, 2)
    window.request_config_change({"batch_size": 4})
    step(qtbot, window)
    shown = fresh_snapshot(qtbot, window)
    path = tmp_path / "curves.csv"
    export(qtbot, window, window.sessions.export_curves, path)

    with open(path, newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle))
    assert rows[0] == ["samples", "loss", "bit_error", "accuracy", "event"]
    points = np.array([[float(value) for value in row[:4]] for row in rows[1:] if not row[4]])
    events = [(int(row[0]), row[4]) for row in rows[1:] if row[4]]
    np.testing.assert_array_equal(points, shown.history)  # every digit
    assert events == list(shown.events)
    assert [text for _, text in events] == ["learning rate 0.1 -> 0.3", "batch size 1 -> 4"]
    samples = [int(row[0]) for row in rows[1:]]
    assert samples == sorted(samples)


def test_weights_export_loads_into_pytorch_with_the_same_outputs(qtbot, window, tmp_path):
    torch = pytest.importorskip("torch")
    path = tmp_path / "weights.npz"
    export(qtbot, window, window.sessions.export_weights, path)
    shown = fresh_snapshot(qtbot, window)

    class Adder(torch.nn.Module):
        def __init__(self, hidden: int) -> None:
            super().__init__()
            self.lstm = torch.nn.LSTM(2, hidden)
            self.head = torch.nn.Linear(hidden, 1)

        def forward(self, x):
            return torch.sigmoid(self.head(self.lstm(x)[0]))

    model = Adder(shown.hidden_size).double()
    with np.load(path) as saved:
        model.load_state_dict({key: torch.from_numpy(saved[key]) for key in saved.files
                               if key.startswith(("lstm.", "head."))})
    a, b = task.all_pairs(8)
    x, _ = task.make_batch(a[:500], b[:500], 8)
    with torch.no_grad():
        torch_probs = model(torch.from_numpy(x)).numpy()
    numpy_probs, _ = lstm.forward(shown.params, x)
    np.testing.assert_allclose(torch_probs, numpy_probs, rtol=0, atol=1e-10)


def test_window_png_export_is_a_picture_of_the_window(window, tmp_path, monkeypatch):
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *args, **kwargs: (str(tmp_path / "shot"), ""))
    window.sessions.export_png_action.trigger()
    image = QImage(str(tmp_path / "shot.png"))
    assert (image.width(), image.height()) == (window.width(), window.height())
    assert "shot.png" in window.statusBar().currentMessage()


def test_a_failed_save_is_reported_and_the_session_stays_unsaved(qtbot, window, tmp_path, dialogs):
    step(qtbot, window)
    result = save(qtbot, window, tmp_path / "no such folder" / "run.npz")
    assert result.error is not None and "does not exist" in result.error
    assert dialogs == [("Cannot save the session", result.error)]
    assert window.sessions.path is None and window.windowTitle().endswith("Untitled •")


def test_saving_while_training_runs_in_the_training_thread(qtbot, window, tmp_path, monkeypatch):
    threads = []
    real_save = session_actions.JOBS["session"]

    def recording_save(path, trainer):
        threads.append(QThread.currentThread())
        real_save(path, trainer)

    monkeypatch.setitem(session_actions.JOBS, "session", recording_save)
    window.request_play()
    qtbot.waitUntil(lambda: window.latest_snapshot.samples_seen > 400, timeout=WAIT_MS)
    path = tmp_path / "running.npz"
    result = save(qtbot, window, path)
    assert threads == [window.worker.thread()] and threads[0] is not QThread.currentThread()
    on_disk = load_session(path)  # one consistent state, taken between two chunks
    assert result.error is None and on_disk.samples_seen == result.samples_seen > 400
    window.request_pause()


def test_saving_after_the_training_thread_stopped_reads_the_trainer_directly(qtbot, window, tmp_path):
    window.stop_training_thread()
    path = tmp_path / "after.npz"
    result = save(qtbot, window, path)
    assert result.error is None and result.samples_seen == 300
    np.testing.assert_array_equal(load_session(path).params.flat, window.worker.trainer.params.flat)


@pytest.mark.qt_log_ignore("This plugin does not support")  # the offscreen platform cannot raise or grab windows
def test_right_click_on_a_plot_offers_pyqtgraph_export(qtbot, window):
    view = window.curves.view
    center = view.mapFromScene(window.curves.loss_plot.getViewBox().sceneBoundingRect().center())
    QTest.mouseClick(view.viewport(), Qt.MouseButton.RightButton, Qt.KeyboardModifier.NoModifier, center)
    qtbot.waitUntil(lambda: window.sessions.plot_menu is not None, timeout=WAIT_MS)
    menu = window.sessions.plot_menu
    assert [action.text() for action in menu.actions()] == ["Export..."]
    menu.actions()[0].trigger()
    dialog = view.scene().exportDialog
    assert dialog is not None and dialog.isVisible()
    selected = dialog.ui.itemTree.currentItem()
    assert selected is not None and selected.gitem is window.curves.loss_plot, "the clicked plot is preselected"
    dialog.close()
    menu.close()


# ---- unsaved progress -------------------------------------------------------------------------------------
@pytest.fixture
def user_present(monkeypatch):
    """As on a real screen, where dialogs can be answered (offscreen, nothing asks)."""
    monkeypatch.setattr(sessions, "can_ask_user", lambda: True)


def answer_with(monkeypatch, button: QMessageBox.StandardButton) -> list[str]:
    asked: list[str] = []
    monkeypatch.setattr(QMessageBox, "question", lambda parent, title, text, *rest: asked.append(text) or button)
    return asked


def test_quit_without_unsaved_progress_closes_without_asking(qtbot, window, tmp_path, monkeypatch, user_present):
    save(qtbot, window, tmp_path / "run.npz")
    asked = answer_with(monkeypatch, QMessageBox.StandardButton.Cancel)
    window.quit_action.trigger()
    assert asked == [], "nothing unsaved: no question"
    assert not window.isVisible()


def test_quit_asks_save_discard_or_cancel(qtbot, make_window, tmp_path, monkeypatch, user_present):
    window = make_window()
    path = tmp_path / "run.npz"
    save(qtbot, window, path)
    step(qtbot, window, 2)
    qtbot.waitUntil(lambda: window.windowTitle().endswith("run •"), timeout=WAIT_MS)

    asked = answer_with(monkeypatch, QMessageBox.StandardButton.Cancel)
    window.quit_action.trigger()
    assert len(asked) == 1 and "run.npz" in asked[0] and "302" in asked[0]
    assert window.isVisible(), "Cancel keeps the window open"

    window.close()  # closing by program (a script, a test) never asks
    assert len(asked) == 1 and not window.isVisible()

    other = make_window()
    save(qtbot, other, path)
    step(qtbot, other, 3)
    answer_with(monkeypatch, QMessageBox.StandardButton.Save)
    other.quit_action.trigger()
    qtbot.waitUntil(lambda: not other.isVisible(), timeout=WAIT_MS)  # closed once the save succeeded
    assert load_session(path).samples_seen == 303

    third = make_window()
    save(qtbot, third, path)
    step(qtbot, third)
    answer_with(monkeypatch, QMessageBox.StandardButton.Discard)
    third.quit_action.trigger()
    assert not third.isVisible()
    assert load_session(path).samples_seen == 300, "Discard leaves the file as it was"


def test_an_untitled_session_asks_only_after_a_long_run(qtbot, window, monkeypatch, user_present):
    step(qtbot, window)
    asked = answer_with(monkeypatch, QMessageBox.StandardButton.Cancel)
    window.quit_action.trigger()
    assert asked == [] and not window.isVisible(), "a short untitled run closes without a question"

    monkeypatch.setattr(sessions, "UNTITLED_ASK_SECONDS", 0.0)
    longer = MainWindow(trained(), restore_layout=False)
    qtbot.addWidget(longer)
    longer.show()
    try:
        step(qtbot, longer)
        longer.quit_action.trigger()
        assert len(asked) == 1 and "untitled" in asked[0] and longer.isVisible()
    finally:
        longer.close()
        assert longer.stop_training_thread()


def test_opening_over_unsaved_progress_asks_first(qtbot, window, tmp_path, monkeypatch, user_present, dialogs):
    first, second = tmp_path / "first.npz", tmp_path / "second.npz"
    save_session(second, trained(40, seed=9))
    save(qtbot, window, first)
    step(qtbot, window)
    asked = answer_with(monkeypatch, QMessageBox.StandardButton.Cancel)
    assert window.sessions.open_file(second) is False
    assert len(asked) == 1 and window.sessions.path == first
    answer_with(monkeypatch, QMessageBox.StandardButton.Discard)
    assert window.sessions.open_file(second) is True
    qtbot.waitUntil(lambda: window.latest_snapshot.samples_seen == 40, timeout=WAIT_MS)
    assert window.windowTitle() == "LSTM Adder Explorer — second"


# ---- preferences and start-up -----------------------------------------------------------------------------
@pytest.mark.parametrize(("stored", "expected"), [
    ({"learning_rate": 0.3, "hidden_size": 24, "optimizer": "adam", "seed": 5},
     TrainConfig(learning_rate=0.3, hidden_size=24, optimizer="adam", seed=5)),
    ({"learning_rate": -1, "hidden_size": 16.5, "optimizer": "nope", "batch_size": 8, "n_bits": 99},
     TrainConfig(batch_size=8)),
    ({"learning_rate": "fast", "hidden_size": True, "dtype": 32, "clip_norm": 2},
     TrainConfig(clip_norm=2.0)),
    ({"unknown": 1, "momentum": 1.5, "seed": -3}, TrainConfig()),
    ("[1, 2", TrainConfig()),
    (7, TrainConfig()),
])
def test_remembered_hyperparameters_fall_back_to_defaults_one_by_one(stored, expected):
    store = session_actions.settings()
    store.setValue(session_actions.HYPERPARAMETERS_KEY, stored if isinstance(stored, str | int) else json.dumps(stored))
    assert session_actions.remembered_config(store) == expected


def run_app_until(qtbot, argv: list[str], check) -> list[object]:
    """Run `lstm-explorer ARGV` in this process; check(window) is polled until it returns a value, which is
    kept, then the window is closed (ending the app). Gives up, closing every window, after WAIT_MS."""
    results: list[object] = []

    def poll() -> None:
        windows = [w for w in QApplication.topLevelWidgets() if isinstance(w, MainWindow) and w.isVisible()]
        value = check(windows[0]) if windows and windows[0].latest_snapshot is not None else None
        if value is not None:
            results.append(value)
            windows[0].close()
        else:
            QTimer.singleShot(50, poll)

    def give_up() -> None:
        for widget in QApplication.topLevelWidgets():
            widget.close()

    QTimer.singleShot(50, poll)
    guard = QTimer()
    guard.setSingleShot(True)
    guard.timeout.connect(give_up)
    guard.start(WAIT_MS)
    code = app.run(argv)
    guard.stop()
    assert code == 0
    return results


def test_open_option_at_start_and_remembered_hyperparameters(qtbot, tmp_path):
    path = tmp_path / "start.npz"
    saved = trained(200, learning_rate=0.05, hidden_size=12)
    save_session(path, saved)

    def opened(win: MainWindow):
        if win.latest_snapshot.samples_seen != 200 or win.controls.lr_edit.text() != "0.05":
            return None  # the loaded session is not drawn yet
        return win.latest_snapshot.params.flat.copy(), win.windowTitle()

    results = run_app_until(qtbot, ["--open", str(path)], opened)
    assert len(results) == 1
    params, title = results[0]
    np.testing.assert_array_equal(params, saved.params.flat)
    assert title == "LSTM Adder Explorer — start"
    assert session_actions.recent_files() == [path]
    # Closing remembered the session's hyperparameters; the next start begins with them.
    assert session_actions.remembered_config() == saved.config

    def started(win: MainWindow):
        return win.latest_snapshot.config if hasattr(win, "sessions") else None

    config = run_app_until(qtbot, [], started)[0]
    assert config == saved.config and config.hidden_size == 12


def test_a_bad_open_option_at_start_shows_the_problem_and_starts_untitled(qtbot, tmp_path, dialogs):
    path = tmp_path / "broken.npz"
    path.write_bytes(b"not a session")

    def started(win: MainWindow):
        return win.windowTitle() if hasattr(win, "sessions") else None

    titles = run_app_until(qtbot, ["--open", str(path)], started)
    assert titles == ["LSTM Adder Explorer — Untitled"]
    assert len(dialogs) == 1 and str(path) in dialogs[0][1]


def test_screenshot_of_a_saved_session(tmp_path, capsys):
    path = tmp_path / "shot-session.npz"
    save_session(path, trained(150))
    png = tmp_path / "shot.png"
    assert app.run(["--screenshot", str(png), "--open", str(path), "--size", "900x600"]) == 0
    assert "150 samples trained" in capsys.readouterr().out
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"junk")
    assert app.run(["--screenshot", str(png), "--open", str(bad)]) == 2
    assert str(bad) in capsys.readouterr().err


# ---- divergence -------------------------------------------------------------------------------------------
def test_divergence_pauses_restores_weights_marks_the_curve_and_says_what_to_try(qtbot, make_window):
    window = make_window(Trainer(TrainConfig(seed=3, learning_rate=1e3)))
    notice = window.sessions.notice
    assert notice.isHidden()
    window.request_play()
    qtbot.waitUntil(lambda: window.latest_snapshot.state == "diverged", timeout=WAIT_MS)
    qtbot.waitUntil(lambda: notice.isVisible(), timeout=WAIT_MS)
    diverged = window.latest_snapshot
    qtbot.waitUntil(lambda: window.state_label.text().strip() == "diverged", timeout=WAIT_MS)
    assert window.play_action.text() == "Play", "training stopped by itself"
    assert np.all(np.isfinite(diverged.params.flat))
    text = notice.text.text()
    assert "diverged" in text and "lower learning rate (now 1000)" in text and "gradient clipping (now off)" in text
    window.redraw_now()
    markers = [item for item in window.curves.loss_plot.items
               if isinstance(item, pg.InfiniteLine) and getattr(item, "label", None) is not None
               and item.label.toPlainText() == "diverged"]
    assert markers and markers[0].pen.color().getRgb()[:3] == DIVERGED_COLOR
    assert any(text.startswith("diverged") for _, text in diverged.events)

    notice.lower_lr.click()  # the remedies are one click away; training stays paused until Play
    qtbot.waitUntil(lambda: window.latest_snapshot.config.learning_rate == 100, timeout=WAIT_MS)
    notice.clip.click()
    qtbot.waitUntil(lambda: window.latest_snapshot.config.clip_norm == 1.0, timeout=WAIT_MS)
    qtbot.waitUntil(lambda: "(now 100)" in notice.text.text() and "clipping (now 1)" in notice.text.text(),
                    timeout=WAIT_MS)
    assert window.latest_snapshot.samples_seen == diverged.samples_seen

    window.request_reset(TrainConfig(seed=3))
    qtbot.waitUntil(lambda: notice.isHidden(), timeout=WAIT_MS)


def test_layout_with_the_session_actions_is_restored(qtbot, isolated_qsettings):
    first = MainWindow(trained(), restore_layout=False)
    qtbot.addWidget(first)
    first.resize(700, 520)
    first.close()
    assert first.stop_training_thread()
    second = MainWindow(trained())
    qtbot.addWidget(second)
    try:
        assert second._layout_restored, "the saved dock layout is restored"
        assert (second.width(), second.height()) == (700, 520)
        assert second.sessions.notice.isHidden()
    finally:
        second.close()
        assert second.stop_training_thread()


def test_installed_in_the_full_window_with_every_view(qtbot, tmp_path):
    win = MainWindow(trained(), restore_layout=False)
    qtbot.addWidget(win)
    try:
        assert "Step through" in win.add_views()
        assert isinstance(win.sessions, sessions.SessionController)
        result = save(qtbot, win, tmp_path / "full.npz")
        assert result.error is None and win.windowTitle().endswith("full")
    finally:
        win.close()
        assert win.stop_training_thread()
