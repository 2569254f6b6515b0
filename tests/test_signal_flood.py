"""Regression test for the Qt binding: ~100,000 signals from a worker QThread, events processed between them.

PySide6-Essentials 6.12.0 aborts on Python 3.11 after ~20,000 emits ("Fatal Python error: bool_dealloc"), a
reference-count bug. The flood runs in a subprocess so an abort fails this test instead of killing pytest.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

pytestmark = pytest.mark.gui  # Qt runs in a child process, which this module does not import

FLOOD_SCRIPT = textwrap.dedent(
    """
    import sys
    import time

    import numpy as np
    from PySide6.QtCore import QCoreApplication, QEventLoop, QObject, QThread, Signal, Slot

    EMITS = int(sys.argv[1])


    class Worker(QObject):
        sigValue = Signal(object)
        sigFlag = Signal(bool)
        sigDone = Signal()

        @Slot()
        def flood(self):
            payload = np.arange(4.0)
            for k in range(EMITS):
                # bools and fresh objects in every emit: what the reference-count bug mishandled
                self.sigValue.emit({"k": k, "ok": k % 2 == 0, "array": payload * k})
                self.sigFlag.emit(k % 3 == 0)
                if k % 64 == 0:
                    QThread.currentThread().eventDispatcher().processEvents(QEventLoop.ProcessEventsFlag.AllEvents)
            self.sigDone.emit()


    class Receiver(QObject):
        def __init__(self):
            super().__init__()
            self.values = self.flags = 0
            self.done = False

        @Slot(object)
        def on_value(self, value):
            assert isinstance(value["ok"], bool)
            self.values += 1

        @Slot(bool)
        def on_flag(self, flag):
            assert flag in (True, False)
            self.flags += 1

        @Slot()
        def on_done(self):
            self.done = True


    app = QCoreApplication([])
    receiver = Receiver()
    worker = Worker()
    thread = QThread()
    worker.moveToThread(thread)
    worker.sigValue.connect(receiver.on_value)
    worker.sigFlag.connect(receiver.on_flag)
    worker.sigDone.connect(receiver.on_done)
    thread.started.connect(worker.flood)
    thread.start()
    deadline = time.monotonic() + 300
    while not (receiver.done and receiver.values == EMITS and receiver.flags == EMITS):
        app.processEvents()
        thread.wait(1)
        if time.monotonic() > deadline:
            print(f"stuck after {receiver.values} values, {receiver.flags} flags", file=sys.stderr)
            sys.exit(3)
    thread.quit()
    thread.wait()
    print(f"received {receiver.values} {receiver.flags}")
    """
)
EMITS = 100_000


def test_a_hundred_thousand_signals_from_a_worker_thread_do_not_crash(tmp_path):
    script = tmp_path / "flood.py"
    script.write_text(FLOOD_SCRIPT)
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "PYTHONFAULTHANDLER": "1"}
    result = subprocess.run([sys.executable, str(script), str(EMITS)], capture_output=True, text=True,
                            timeout=600, env=env)
    assert result.returncode == 0, f"the process died (exit {result.returncode}):\n{result.stderr[-3000:]}"
    assert result.stdout.split() == ["received", str(EMITS), str(EMITS)]
