"""When the window draws: frames paced by the time spent drawing, drawn in stages.

A frame draws the latest snapshot; snapshots that arrive while one is being drawn are simply dropped. A frame
starts only when the recent frames' drawing (updates and the plots' painting) took at most DRAW_SHARE of the time
since they began, and at most MAX_FRAME_RATE times a second: slow drawing lowers the frame rate instead of starving
the training thread of the interpreter. Stages follow each other in one event while together they take less than
STAGE_SLICE_S, else the rest comes REDRAW_MS later, so no single event keeps the window busy long. The timer runs
only while a frame is unfinished or waiting for its turn: an idle window takes no timer events.
"""

from __future__ import annotations

import collections
import math
import time
from collections.abc import Callable, Sequence

from PySide6.QtCore import QObject, QTimer

from explorer.panels import painting_seconds

REDRAW_MS = 10  # the stages of a frame that could not be drawn at once follow at this interval
STAGE_SLICE_S = 0.006  # stages are drawn back to back in one event while together they took less than this
DRAW_SHARE = 0.35  # drawing may take about this share of the time: the interpreter it holds meanwhile is the one a
# NumPy training thread needs ...
DRAW_SHARE_COMPILED = 0.8  # ... while the compiled engine trains without it, so drawing takes only the other core
MAX_FRAME_RATE = 30.0  # frames a second at most
BUDGET_FRAMES = 4  # DRAW_SHARE holds over this many recent frames, so one slow frame does not hold up the next

Stage = Sequence[Callable[[object], None]]


class FramePacer(QObject):
    """Draws the latest of the snapshots offered to it, in stages, when a frame is due."""

    def __init__(self, stages: Sequence[Stage], on_drawn: Callable[[object], None] | None = None,
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.stages = tuple(tuple(stage) for stage in stages)
        self.on_drawn = on_drawn  # called with each snapshot once all its stages are drawn
        self.latest: object | None = None
        self.drawn: object | None = None  # the snapshot of the frame being drawn, or drawn last
        self.frames = 0  # frames completed
        self.draw_share = DRAW_SHARE
        self._stage = len(self.stages)  # the stage to draw next; all drawn
        self._staging_seconds = 0.0  # thread time spent in stages
        self._frame_starts: collections.deque[tuple[float, float]] = collections.deque(maxlen=BUDGET_FRAMES)
        self._first = True
        self._stopped = False
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.timeout.connect(self._draw)

    def offer(self, snapshot: object) -> None:
        """A new snapshot: drawn when a frame is due (at once if one may start now)."""
        self.latest = snapshot
        if not self._stopped and not self._timer.isActive():  # (else a frame is under way or waits)
            self._draw()

    def draw_now(self) -> None:
        """Draw the latest snapshot completely at once (for a screenshot, or a view the user just asked for)."""
        if self.latest is None:
            return
        for index in range(len(self.stages)):
            self._draw_stage(index, self.latest)
        self.drawn, self._stage = self.latest, len(self.stages)
        self._finished(self.latest)

    def stop(self) -> None:
        self._stopped = True
        self._timer.stop()

    def drawing_seconds(self) -> float:
        """GUI-thread time spent drawing so far: frame stages and the plots' paint events."""
        return self._staging_seconds + painting_seconds()

    def _draw(self) -> None:
        started = time.perf_counter()
        if self._stage >= len(self.stages):
            wait = self._frame_wait()
            if wait is None:
                return  # nothing new to draw
            if wait > 0:
                self._timer.start(max(REDRAW_MS, math.ceil(1000 * wait)))
                return
            self._frame_starts.append((time.monotonic(), self.drawing_seconds()))
            self.drawn, self._first, self._stage = self.latest, False, 0
        while self._stage < len(self.stages):
            self._draw_stage(self._stage, self.drawn)
            self._stage += 1
            if self._stage < len(self.stages) and time.perf_counter() - started > STAGE_SLICE_S:
                self._timer.start(REDRAW_MS)  # the rest after the window has painted and seen its input
                return
        self._finished(self.drawn)
        if self.latest is not self.drawn:  # a newer snapshot came while this frame was drawn in stages
            self._timer.start(REDRAW_MS)

    def _finished(self, snapshot: object) -> None:
        self.frames += 1
        if self.on_drawn is not None:
            self.on_drawn(snapshot)

    def _frame_wait(self) -> float | None:
        """Seconds until a new frame may start (0: now), or None when the latest snapshot is drawn already."""
        if self.latest is None or self.latest is self.drawn:
            return None
        if self._first or not self._frame_starts:
            return 0.0  # the first frame is never held back
        now = time.monotonic()
        oldest, drawing_then = self._frame_starts[0]
        drawing = self.drawing_seconds() - drawing_then
        since_last = now - self._frame_starts[-1][0]
        return max(0.0, drawing / self.draw_share - (now - oldest), 1 / MAX_FRAME_RATE - since_last)

    def _draw_stage(self, index: int, snapshot: object) -> None:
        started = time.thread_time()
        for draw in self.stages[index]:
            draw(snapshot)
        self._staging_seconds += time.thread_time() - started
