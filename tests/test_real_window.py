"""The real app in a real X window: start `lstm-explorer` under Xvfb, press Space to train, Ctrl+Q to quit.

Needs Xvfb and xdotool (Debian: xvfb, xdotool, plus the libraries the README lists). Skipped without them,
except in CI (CI=true), where missing tools fail the test.
"""

from __future__ import annotations

import os
import queue
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pytest

pytestmark = pytest.mark.gui  # the app runs in a child process, which this module does not import

TITLE = "LSTM Adder Explorer"
STARTUP_S = 60  # a cold start on a busy machine; nothing here measures speed
STEP_S = 30


def require_tools() -> None:
    missing = [tool for tool in ("Xvfb", "xdotool") if shutil.which(tool) is None]
    if missing:
        reason = f"needs {' and '.join(missing)} (Debian packages xvfb, xdotool)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI must run the real-window test: {reason}")
        pytest.skip(reason)


def app_command() -> list[str]:
    script = Path(sys.executable).with_name("lstm-explorer")
    if not script.exists():
        found = shutil.which("lstm-explorer")
        if found is None:
            pytest.fail("the lstm-explorer console script is not installed (pip install -e .)")
        script = Path(found)
    return [str(script)]


@pytest.fixture
def xvfb_display():
    """A fresh Xvfb on a free display number (Xvfb picks it and reports it through -displayfd)."""
    require_tools()
    read_end, write_end = os.pipe()
    server = subprocess.Popen(["Xvfb", "-displayfd", str(write_end), "-screen", "0", "1280x800x24", "-nolisten", "tcp"],
                              pass_fds=(write_end,), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    os.close(write_end)
    try:
        with os.fdopen(read_end) as reader:
            number = reader.readline().strip()
        if not number.isdigit():
            server.kill()
            pytest.fail(f"Xvfb did not start: {server.stderr.read().decode(errors='replace')[-2000:]}")
        yield f":{number}"
    finally:
        server.terminate()
        try:
            server.wait(10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        server.stderr.close()


class LineReader:
    """Collects a process's stdout lines on a thread, so waiting for one never blocks the test forever."""

    def __init__(self, stream) -> None:
        self.lines: queue.Queue[str] = queue.Queue()
        self.seen: list[str] = []
        self._thread = threading.Thread(target=self._read, args=(stream,), daemon=True)
        self._thread.start()

    def _read(self, stream) -> None:
        for line in stream:
            self.lines.put(line.rstrip("\n"))

    def join(self) -> None:
        self._thread.join(timeout=10)

    def wait_for(self, predicate, timeout: float) -> str:
        while True:
            try:
                line = self.lines.get(timeout=timeout)
            except queue.Empty:
                raise AssertionError(f"no matching line within {timeout} s; lines so far: {self.seen}") from None
            self.seen.append(line)
            if predicate(line):
                return line


def xdotool(display: str, *args: str, timeout: float = STEP_S) -> str:
    result = subprocess.run(["xdotool", *args], env={**os.environ, "DISPLAY": display}, capture_output=True,
                            text=True, timeout=timeout)
    assert result.returncode == 0, f"xdotool {' '.join(args)} failed: {result.stderr}"
    return result.stdout


def samples_of(line: str) -> int:
    words = line.split()
    return int(words[words.index("samples") + 1])


def test_real_app_trains_on_space_and_quits_on_ctrl_q(xvfb_display, tmp_path):
    env = {**os.environ, "DISPLAY": xvfb_display, "QT_QPA_PLATFORM": "xcb", "LSTM_EXPLORER_TRACE_STATUS": "1",
           "XDG_CONFIG_HOME": str(tmp_path / "config"), "XDG_DATA_HOME": str(tmp_path / "data")}
    env.pop("WAYLAND_DISPLAY", None)
    process = subprocess.Popen(app_command(), env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    output = LineReader(process.stdout)
    try:
        window_id = xdotool(xvfb_display, "search", "--sync", "--onlyvisible", "--name", TITLE,
                            timeout=STARTUP_S).split()[0]
        output.wait_for(lambda line: line.startswith("state paused"), STARTUP_S)  # the first frame was drawn
        xdotool(xvfb_display, "windowfocus", "--sync", window_id)

        xdotool(xvfb_display, "key", "space")
        output.wait_for(lambda line: line.startswith("state training"), STEP_S)
        xdotool(xvfb_display, "key", "space")
        paused = output.wait_for(lambda line: line.startswith("state paused"), STEP_S)
        assert samples_of(paused) > 0, "training ran between the two presses of Space"

        xdotool(xvfb_display, "key", "ctrl+q")
        exit_code = process.wait(timeout=STEP_S)
        closing = output.wait_for(lambda line: line.startswith("closed"), 5)
        assert samples_of(closing) >= samples_of(paused)
        assert exit_code == 0, process.stderr.read()[-3000:]
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        output.join()
        process.stdout.close()
        process.stderr.close()
