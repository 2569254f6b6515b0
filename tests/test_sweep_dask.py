"""Sweeps on a real Dask cluster (a LocalCluster of two worker processes on 127.0.0.1): the same cells as the local
pool, cell for cell, through `--scheduler` and through the sweep tab; cancel leaves no task running."""

from __future__ import annotations

import threading
import time

import pytest

distributed = pytest.importorskip(
    "distributed", reason='dask.distributed is not installed (the cluster extra: pip install ".[cluster]")')

from core import engine, sweep, sweep_csv, sweep_dask  # noqa: E402  (only once distributed is known to be there)
from core.sweep_grid import parse_grid  # noqa: E402
from core.trainer import TrainConfig  # noqa: E402

WAIT_S = 60.0
SMALL = TrainConfig(n_bits=4, hidden_size=8)
GRID = "lr=1,0.3 hidden=8 bits=4 seed=0:3"  # six runs: solved, unsolved and quick


def wait_until(condition, what: str, timeout: float = WAIT_S) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.05)


@pytest.fixture(scope="module")
def cluster():
    """Two worker processes, one thread each, on this machine only; the compiled kernels made (or loaded) first,
    so that each worker loads them from the on-disk cache."""
    if engine.compiled_available():
        from core import kernels

        kernels.warm_up()
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                                  host="127.0.0.1") as local:
        yield local


@pytest.fixture
def client(cluster):
    """A client of the test's own, to look at the cluster."""
    with distributed.Client(cluster.scheduler_address, set_as_default=False) as own:
        yield own


def outcomes(cells) -> dict[str, tuple]:
    return {cell.config.to_json(): cell.outcome() for cell in cells}


def test_a_sweep_through_scheduler_equals_the_local_pool_cell_for_cell(cluster, tmp_path, capsys) -> None:
    out = tmp_path / "dask.csv"
    code = sweep.main(["--grid", *GRID.split(), "--max-samples", "1000", "--scheduler", cluster.scheduler_address,
                       "--out", str(out)])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "6 cells in" in captured.err and f"on the Dask cluster at {cluster.scheduler_address}" in captured.err
    assert [line.split("]")[0] for line in captured.err.splitlines() if line.startswith("[")] == [
        f"[{done}/6" for done in range(1, 7)]
    on_dask = sweep_csv.read_cells(out)
    local = sweep.run_sweep(parse_grid(GRID), 1000, workers=2)
    assert len(on_dask) == len(local.cells) == 6
    assert {cell.engine for cell in on_dask} == {engine.resolve("auto")}
    assert outcomes(on_dask) == outcomes(local.cells.values())
    assert any(cell.solved for cell in on_dask) and not all(cell.solved for cell in on_dask)


def test_cancelling_a_dask_sweep_leaves_no_task_running(cluster, client) -> None:
    slow = parse_grid("lr=1e-4 hidden=8,16 seed=0:3")  # neither solves nor diverges: minutes per cell
    cancel = threading.Event()
    finished: list[sweep.SweepResult] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            finished.append(sweep.run_sweep(slow, 5_000_000, scheduler=cluster.scheduler_address, cancel=cancel))
        except BaseException as error:
            errors.append(error)

    thread = threading.Thread(target=run)
    thread.start()
    try:
        wait_until(lambda: sum(client.run(sweep_dask.cells_running).values()) == 2, "a cell running on each worker")
    finally:
        cancel.set()
        thread.join(WAIT_S)
    assert not thread.is_alive() and errors == []
    [result] = finished
    assert result.cancelled and result.cells == {}
    assert client.run(sweep_dask.cells_running) == dict.fromkeys(client.run(sweep_dask.cells_running), 0)
    # Dask's own view: no task executing on any worker, none processing or held by the scheduler.
    wait_until(lambda: set(client.run(lambda dask_worker: dask_worker.state.executing_count).values()) == {0},
               "the workers to see their tasks end")
    assert all(not tasks for tasks in client.processing().values())
    wait_until(lambda: not client.run_on_scheduler(
        lambda dask_scheduler: [str(key) for key in dask_scheduler.tasks if "lstm-explorer-sweep" in str(key)]),
        "the scheduler to forget the sweep's tasks")


def test_an_unreachable_scheduler_is_one_clear_error(monkeypatch) -> None:
    monkeypatch.setattr(sweep_dask, "CONNECT_SECONDS", 0.5)
    with pytest.raises(sweep.SweepError, match=r"could not reach the Dask scheduler at tcp://127\.0\.0\.1:9"):
        sweep.run_sweep(parse_grid("lr=0.1", SMALL), 100, scheduler="tcp://127.0.0.1:9")


def test_the_sweep_tab_runs_on_a_cluster(qtbot, cluster) -> None:
    from explorer.panels.sweep import SweepPanel

    panel = SweepPanel()
    qtbot.addWidget(panel)
    panel.set_base_config(SMALL)
    panel.grid_text.setText("lr=1,0.3 seed=0:2")
    panel.max_samples.setValue(1000)
    panel.scheduler.setText(cluster.scheduler_address)
    assert not panel.workers.isEnabled(), "the cluster's workers run the cells, not local processes"
    try:
        with qtbot.waitSignal(panel.sigFinished, timeout=int(WAIT_S * 1000)) as done:
            assert panel.start()
            assert "on the Dask cluster at" in panel.status.text()
        qtbot.waitUntil(lambda: not panel.running, timeout=int(WAIT_S * 1000))
    finally:
        assert panel.shutdown()
    result = done.args[0]
    assert not result.cancelled and panel.progress.value() == 4
    local = sweep.run_sweep(parse_grid("lr=1,0.3 seed=0:2", SMALL), 1000, workers=2)
    assert outcomes(result.cells.values()) == outcomes(local.cells.values())
