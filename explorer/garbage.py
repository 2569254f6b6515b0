"""Python's garbage collection runs in the GUI thread, from a timer, never by itself in whichever thread allocates.

Left automatic, a collection runs in whichever thread happens to allocate at the wrong moment, most often the
training thread, and Qt objects in the garbage would then be deleted there, or in the middle of Qt delivering one of
their own events: either can crash. What exists when the app starts (the modules) is frozen out of the collector's
sight, so a full collection takes ~10 ms instead of ~100.
"""

from __future__ import annotations

import gc

from pyqtgraph.util.garbage_collector import GarbageCollector

INTERVAL_S = 1.0

_collector: GarbageCollector | None = None


def freeze_long_lived() -> None:
    """Move everything that exists now (the window and its views, built once) out of the collector's sight too: a
    full collection would otherwise walk them all, ~70 ms in the GUI thread (a frozen window is never collected:
    the app calls this for its one window, tests do not)."""
    gc.freeze()


def collect_in_gui_thread(interval_s: float = INTERVAL_S) -> None:
    """Turn automatic collection off and collect from a timer in this (the GUI) thread. Calling it again does
    nothing."""
    global _collector
    if _collector is None:
        _collector = GarbageCollector(interval=interval_s)
        gc.freeze()
