"""The weight timeline: its points are the weights a run had at those checks, it thins evenly, and it stays within
its memory budget however long the run."""

from __future__ import annotations

import tracemalloc
from types import SimpleNamespace

import numpy as np
import pytest

from core import lstm, timeline
from core.timeline import POINT_OVERHEAD, Timeline
from core.trainer import CHECK_EVERY, TrainConfig, Trainer


def test_each_point_holds_exactly_the_weights_of_a_run_stopped_there():
    trainer = Trainer()
    kept = Timeline().attach(trainer)
    trainer.step(1500)
    assert kept.samples().tolist() == list(range(0, 1501, CHECK_EVERY))
    for samples in (0, 300, 1200, 1500):
        stopped = Trainer()
        if samples:
            stopped.step(samples)
        point = kept.at(samples)
        assert point is not None and point.hidden_size == 16
        np.testing.assert_array_equal(point.flat, stopped.params.flat)  # every bit
    assert timeline.of(trainer) is kept


def test_the_points_do_not_depend_on_how_the_samples_were_chunked():
    one, many = Trainer(TrainConfig(hidden_size=4)), Trainer(TrainConfig(hidden_size=4))
    small = Timeline(budget=12 * (4 * 4 * 7 + 5) * 8 + 12 * POINT_OVERHEAD)  # a dozen points: it has to thin
    large = Timeline(budget=small.budget)
    small.attach(one)
    large.attach(many)
    one.step(5000)
    while many.samples_seen < 5000:
        many.step(37)
    assert small.stride > 1
    assert small.samples().tolist() == large.samples().tolist()
    for first, second in zip(small.points, large.points, strict=True):
        np.testing.assert_array_equal(first.flat, second.flat)


def _fake_params(hidden_size: int, value: float) -> SimpleNamespace:
    size = 4 * hidden_size * (2 + hidden_size + 1) + hidden_size + 1
    return SimpleNamespace(flat=np.full(size, value), hidden_size=hidden_size)


def test_a_long_run_stays_within_the_budget_with_points_spread_over_all_of_it():
    """300,000 checks (30 million samples) with a change of hidden size on the way: after every check the
    copies fit the budget, the memory they hold (measured) does too, and the points cover the run evenly."""
    budget = 64 * 1024
    kept = Timeline(budget)
    tracemalloc.start()
    try:
        checks = 300_000
        for check in range(checks + 1):
            hidden = 4 if check < checks // 2 else 6
            kept.record(check * CHECK_EVERY, _fake_params(hidden, check))
            assert kept.nbytes <= budget
        # What the timeline's own code allocated and still holds (the whole process's count would take in what
        # other threads of a long test run allocate meanwhile)
        snapshot = tracemalloc.take_snapshot().filter_traces([tracemalloc.Filter(True, timeline.__file__)])
        held = sum(stat.size for stat in snapshot.statistics("filename"))
    finally:
        tracemalloc.stop()
    assert kept.nbytes == sum(p.flat.nbytes + POINT_OVERHEAD for p in kept.points)
    assert held <= budget * 1.1, f"the timeline holds {held:,} bytes, its budget is {budget:,}"
    samples = kept.samples()
    assert samples[0] == 0 and kept.points[0].flat[0] == 0.0  # the initial weights always stay
    assert samples[-1] > checks * CHECK_EVERY - 2 * kept.stride * CHECK_EVERY
    assert np.all(np.diff(samples) == kept.stride * CHECK_EVERY)  # evenly spread (one check per block)
    assert len(samples) >= budget // (2 * (_fake_params(6, 0).flat.nbytes + POINT_OVERHEAD))
    for point in kept.points:  # each point still holds the weights recorded at its sample
        assert point.flat[0] == point.samples // CHECK_EVERY
        assert point.hidden_size == (4 if point.samples < checks // 2 * CHECK_EVERY else 6)


def test_weights_too_large_for_the_budget_are_not_kept_and_it_says_so():
    kept = Timeline(budget=4096)
    kept.record(0, _fake_params(16, 0.0))
    assert kept.points == [] and "not kept" in kept.summary().describe()


def test_a_rollback_forgets_the_points_after_it():
    kept = Timeline()
    for check in range(6):
        kept.record(check * CHECK_EVERY, _fake_params(2, check))
    kept.record(3 * CHECK_EVERY, _fake_params(2, 30))  # the run went back to sample 300
    assert kept.samples().tolist() == [0, 100, 200, 300]


def test_points_become_params_of_their_own_size():
    trainer = Trainer(TrainConfig(hidden_size=3))
    kept = Timeline().attach(trainer)
    trainer.step(200)
    trainer.update(hidden_size=5)
    trainer.step(100)
    sizes = [p.hidden_size for p in kept.points]
    assert sizes == [3, 3, 3, 5]
    params = kept.params_at(kept.points[1], trainer.params)
    assert isinstance(params, lstm.Params) and params.hidden_size == 3
    assert kept.nearest(140).samples == 100 and kept.nearest(150).samples == 100 and kept.nearest(160).samples == 200


@pytest.mark.parametrize("budget", [0, timeline.MAX_BUDGET + 1])
def test_a_budget_out_of_range_is_refused(budget):
    with pytest.raises(ValueError):
        Timeline(budget)
