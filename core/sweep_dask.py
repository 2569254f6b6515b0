"""A sweep's cells on an existing Dask distributed cluster: the same cell function as the local pool, by Client.map.

Optional: needs `dask[distributed]` (`pip install "lstm-explorer[cluster]"`), imported only when a scheduler
address is given. Every worker needs this package installed (the same version, the same numba or not): the cells
are sent by reference to core.sweep.run_cell's wrapper below, and an engine a worker cannot run is an error, never
a silent switch to another engine.

Stopping: a distributed Event (named per sweep) is the stop flag. Running cells look at it before their first step
and then at most every STOP_CHECK_SECONDS (each look asks the scheduler), stop at their next check when it is set,
and return as stopped; queued tasks are cancelled. close() returns once no cell of this package runs on any worker
(each worker counts its running cells), so nothing is left behind on the cluster.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Sequence

from core.sweep_grid import Index, SweepCell

CONNECT_SECONDS = 10.0  # how long to try to reach the scheduler
STOP_CHECK_SECONDS = 0.25  # a running cell asks the scheduler whether to stop at most this often
QUIET_TIMEOUT_SECONDS = 60.0  # how long close() waits for stopped cells to end on the workers
INSTALL_HINT = 'pip install "lstm-explorer[cluster]" (in a checkout: pip install ".[cluster]")'

_running: dict[str, int] = {}  # sweep name -> cells of it running in this process (a Dask worker)
_running_lock = threading.Lock()


def import_distributed():
    """dask.distributed, or SweepError saying how to install it."""
    from core.sweep import SweepError

    try:
        import distributed
    except ImportError as error:
        raise SweepError(f"running a sweep on a Dask cluster needs dask.distributed, which is not installed here "
                         f"({error}): {INSTALL_HINT}") from None
    return distributed


def cells_running(sweep_name: str | None = None) -> int:
    """How many cells of that sweep (of any, without a name) this process runs now; client.run asks each worker."""
    with _running_lock:
        return _running.get(sweep_name, 0) if sweep_name is not None else sum(_running.values())


class _StopAsked:
    """The worker side of the stop flag: the sweep's distributed Event, looked at no more often than needed."""

    def __init__(self, name: str) -> None:
        self._name = name
        self._event = None
        self._next_look = 0.0

    def __call__(self) -> bool:
        now = time.monotonic()
        if now < self._next_look:
            return False
        if self._event is None:
            import distributed

            self._event = distributed.Event(self._name)  # connects through this worker's client
        self._next_look = now + STOP_CHECK_SECONDS
        return self._event.is_set()


def run_cell_on_worker(cell: SweepCell, max_samples: int, engine: str, sweep_name: str) -> tuple[Index, object]:
    """The task each Dask worker runs: core.sweep.run_cell, counted while it runs."""
    from core.sweep import run_cell

    with _running_lock:
        _running[sweep_name] = _running.get(sweep_name, 0) + 1
    try:
        return cell.index, run_cell(cell.config, max_samples, engine, _StopAsked(_stop_event_name(sweep_name)))
    finally:
        with _running_lock:
            _running[sweep_name] -= 1
            if not _running[sweep_name]:
                del _running[sweep_name]


def _stop_event_name(sweep_name: str) -> str:
    return f"{sweep_name}-stop"


class DaskCluster:
    """The sweep backend for a Dask scheduler at `address` (e.g. tcp://10.0.0.5:8786)."""

    def __init__(self, address: str) -> None:
        from core.sweep import SweepError

        distributed = import_distributed()
        self._distributed = distributed
        try:
            self.client = distributed.Client(address, set_as_default=False, timeout=CONNECT_SECONDS)
        except (OSError, TimeoutError, ValueError) as error:
            raise SweepError(f"could not reach the Dask scheduler at {address}: {error}") from None
        self._name = f"lstm-explorer-sweep-{uuid.uuid4().hex}"
        self._stop = distributed.Event(_stop_event_name(self._name), client=self.client)
        self._futures: list = []

    def submit(self, cells: Sequence[SweepCell], max_samples: int, engine: str) -> list:
        keys = [f"{self._name}-cell-{n}" for n in range(len(cells))]
        self._futures = self.client.map(run_cell_on_worker, list(cells), max_samples=max_samples, engine=engine,
                                        sweep_name=self._name, key=keys, pure=False)
        return self._futures

    def stop(self) -> None:
        self._stop.set()  # running cells stop at their next look ...
        self.client.cancel([future for future in self._futures if not future.done()])  # ... queued ones are dropped

    def running_on_workers(self) -> int:
        """Cells of this sweep running on the cluster's workers now."""
        return sum(self.client.run(cells_running, self._name).values())

    def close(self) -> None:
        """Wait (bounded) until no cell runs on any worker, then disconnect."""
        from core.sweep import SweepError

        try:
            if self._stop.is_set():
                deadline = time.monotonic() + QUIET_TIMEOUT_SECONDS
                while self.running_on_workers():
                    if time.monotonic() > deadline:
                        raise SweepError(f"cells still running on the cluster {QUIET_TIMEOUT_SECONDS:.0f} s after "
                                         "the sweep was stopped")
                    time.sleep(STOP_CHECK_SECONDS / 5)
                self._stop.clear()  # nothing looks at it any more: the scheduler can forget it
        finally:
            self._futures = []
            self.client.close()
