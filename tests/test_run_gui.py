"""The window trains the same run as the command line: same settings, same solved-at, whatever its chunks."""

from __future__ import annotations

import contextlib
import io
import re

from core.cli import main
from core.trainer import TrainConfig, Trainer
from explorer.main_window import MainWindow

WAIT_MS = 120_000


def test_the_windows_solved_at_for_the_defaults_equals_lstm_explorer_train(qtbot):
    """Play with 'pause when solved' at the notebook's defaults: the window pauses at the very sample where
    `lstm-explorer train --stop-when-solved` stops, with the same weights, although it trains in chunks sized by
    how fast the window draws."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
        assert main(["train", "--stop-when-solved", "--quiet", "--engine", "numpy"]) == 0
    solved = int(re.search(r"first right after ([\d,]+) samples", out.getvalue())[1].replace(",", ""))

    window = MainWindow(Trainer(TrainConfig(), engine="numpy"), restore_layout=False)
    qtbot.addWidget(window)
    window.show()
    qtbot.waitUntil(lambda: window.latest_snapshot is not None, timeout=WAIT_MS)
    window.play_action.trigger()
    qtbot.waitUntil(lambda: window.state_label.text().strip().startswith("solved"), timeout=WAIT_MS)
    trainer = Trainer(TrainConfig(), engine="numpy")
    trainer.step(solved)  # one chunk, in this thread
    snapshot = window.latest_snapshot
    assert snapshot.samples_seen == solved
    shown = window.worker.trainer
    assert shown.solved_at[0] == solved and (shown.params.flat == trainer.params.flat).all()
    window.close()
    assert window.stop_training_thread()
