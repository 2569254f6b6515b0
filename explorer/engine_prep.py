"""Preparing the compiled engine without making the window wait.

Compiling the numba kernels takes tens of seconds on the first run after an install, and compiling holds the
interpreter lock of the process that does it. So the window never compiles: a separate process runs
`core.kernels.warm_up()`, which compiles every kernel the app uses into the on-disk cache (or finds them there).
Meanwhile the window trains with NumPy; when the process is done, the worker loads the kernels from the cache (a
fraction of a second) and switches. The window appears at once either way.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

from PySide6.QtCore import QObject, QProcess, Signal

import core
from core import engine as engine_module

WARM_UP = ("import sys\n"
           "from core import kernels\n"
           "if not kernels.AVAILABLE:\n"
           "    print(kernels.UNAVAILABLE_REASON, file=sys.stderr)\n"
           "    sys.exit(3)\n"
           "kernels.warm_up()\n")
PREPARING = "preparing the compiled engine (first run only)"


def never_compile_here() -> None:
    """In the window's process, an engine left unnamed (a Trainer made for a reset, a loaded session, a screenshot)
    means NumPy: compiling there would freeze the window. The worker names the compiled engine once it is prepared."""
    engine_module.DEFAULT = "numpy"


def numba_installed() -> bool:
    """Whether the compiled engine could run here, without importing numba (which takes a while)."""
    return importlib.util.find_spec("numba") is not None


class EnginePreparer(QObject):
    """Runs the warm-up process; sigReady when the kernels are in the cache, sigFailed with why otherwise."""

    sigReady = Signal()
    sigFailed = Signal(str)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.process: QProcess | None = None
        self.running = False

    def start(self, code: str = WARM_UP) -> None:
        if self.running:
            return
        process = self.process = QProcess(self)
        environment = process.processEnvironment()
        if environment.isEmpty():
            from PySide6.QtCore import QProcessEnvironment

            environment = QProcessEnvironment.systemEnvironment()
        # The process imports this very `core`, however the app was started (installed, or from a checkout).
        source = str(Path(core.__file__).resolve().parent.parent)
        paths = [source, *filter(None, [environment.value("PYTHONPATH")])]
        environment.insert("PYTHONPATH", os.pathsep.join(paths))
        process.setProcessEnvironment(environment)
        process.finished.connect(self._finished)
        process.errorOccurred.connect(self._error)
        self.running = True
        process.start(sys.executable, ["-c", code])

    def stop(self) -> None:
        """Stop the process (the window closes); what it compiled so far stays in the cache."""
        if self.process is not None and self.process.state() != QProcess.ProcessState.NotRunning:
            self.process.kill()
            self.process.waitForFinished(3000)
        self.running = False

    def _finished(self, code: int, status: QProcess.ExitStatus) -> None:
        if not self.running:
            return
        self.running = False
        if status == QProcess.ExitStatus.NormalExit and code == 0:
            self.sigReady.emit()
            return
        error = bytes(self.process.readAllStandardError()).decode(errors="replace").strip().splitlines()
        self.sigFailed.emit(error[-1] if error else f"the preparation ended with code {code}")

    def _error(self, error: QProcess.ProcessError) -> None:
        if error == QProcess.ProcessError.FailedToStart and self.running:
            self.running = False
            self.sigFailed.emit("the preparation process could not start")
