"""Sessions keep the weight timeline: saved and loaded exactly, continued as if never stopped, and refused in one
line when a file's timeline is damaged or hostile."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from core import timeline
from core.session import SessionError, load_session, save_session
from core.story import Story
from core.timeline import Timeline
from core.trainer import TrainConfig, Trainer

BUDGET = 30 * (4 * 6 * 9 + 7) * 8  # about thirty points of six units: a long run thins


def _trainer(samples: int, **settings: object) -> Trainer:
    trainer = Trainer(TrainConfig(hidden_size=6, **settings))
    Timeline(BUDGET).attach(trainer)
    Story().attach(trainer)
    trainer.step(samples)
    return trainer


def _same(first: Timeline, second: Timeline) -> None:
    assert first.samples().tolist() == second.samples().tolist() and first.stride == second.stride
    for one, other in zip(first.points, second.points, strict=True):
        assert one.hidden_size == other.hidden_size
        np.testing.assert_array_equal(one.flat, other.flat)


def test_a_session_keeps_the_timeline_and_continues_it_as_an_unbroken_run(tmp_path: Path):
    straight = _trainer(6000)
    stopped = _trainer(3000)
    save_session(tmp_path / "run.npz", stopped)
    loaded = load_session(tmp_path / "run.npz")
    kept = timeline.of(loaded)
    kept.budget = BUDGET  # (the window's budget applies to a loaded file; this test's is smaller)
    _same(kept, timeline.of(stopped))
    Story().attach(loaded)
    loaded.step(3000)
    _same(kept, timeline.of(straight))
    assert loaded.history.events == straight.history.events
    assert timeline.of(straight).stride > 1  # (it did thin)


def test_a_resized_run_keeps_points_of_both_sizes(tmp_path: Path):
    trainer = _trainer(300)
    trainer.update(hidden_size=9)
    trainer.step(200)
    save_session(tmp_path / "run.npz", trainer)
    kept = timeline.of(load_session(tmp_path / "run.npz"))
    assert [p.hidden_size for p in kept.points] == [6, 6, 6, 6, 9, 9]
    _same(kept, timeline.of(trainer))


def test_a_session_without_a_timeline_loads_without_one(tmp_path: Path):
    trainer = Trainer(TrainConfig(hidden_size=6))
    trainer.step(300)
    save_session(tmp_path / "plain.npz", trainer)
    with np.load(tmp_path / "plain.npz", allow_pickle=False) as saved:
        assert not any(key.startswith("timeline.") for key in saved.files)
    assert timeline.of(load_session(tmp_path / "plain.npz")) is None


def _variant(source: Path, target: Path, **changes: object) -> Path:
    with np.load(source, allow_pickle=False) as saved:
        arrays = {key: saved[key] for key in saved.files}
    for key, value in changes.items():
        key = key.replace("__", ".")
        if value is None:
            del arrays[key]
        else:
            arrays[key] = value
    np.savez_compressed(target, **arrays)  # (a huge row of zeros takes little room)
    return target


@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, np.ndarray]]:
    path = tmp_path_factory.mktemp("timeline") / "run.npz"
    save_session(path, _trainer(600))
    with np.load(path, allow_pickle=False) as arrays:
        return path, {key: arrays[key] for key in arrays.files if key.startswith("timeline.")}


def _bad(saved) -> dict[str, tuple[dict, str]]:
    _, arrays = saved
    points, flat = arrays["timeline.points"], arrays["timeline.flat"]
    backwards = points.copy()
    backwards[[1, 2]] = backwards[[2, 1]]
    later = points.copy()
    later[-1, 0] = 10**6
    huge_units = points.copy()
    huge_units[0, 1] = 10**6
    nan = flat.copy()
    nan[5] = np.nan
    return {
        "samples not increasing": ({"timeline__points": backwards}, "must increase"),
        "a point after samples_seen": ({"timeline__points": later}, "must increase"),
        "too many units": ({"timeline__points": huge_units}, "hidden sizes"),
        "float points": ({"timeline__points": points.astype(float)}, "whole numbers"),
        "short flat": ({"timeline__flat": flat[:-1]}, "its points need"),
        "NaN weights": ({"timeline__flat": nan}, "NaN"),
        "float32 weights in a float64 run": ({"timeline__flat": flat.astype(np.float32)}, "precision"),
        "stride not a power of two": ({"timeline__stride": np.array(3)}, "power of two"),
        "stride missing": ({"timeline__stride": None}, "missing"),
        "a flat beyond the bound": ({"timeline__flat": np.zeros(timeline.MAX_BUDGET // 8 + 1)}, "timeline.flat"),
        "a table beyond the bound": ({"timeline__points": np.zeros((timeline.MAX_POINTS + 1, 2), np.int64)},
                                     "timeline.points"),
        "pickled points": ({"timeline__points": np.array([{"x": 1}], dtype=object)}, "pickled"),
    }


@pytest.mark.parametrize("case", ["samples not increasing", "a point after samples_seen", "too many units",
                                  "float points", "short flat", "NaN weights", "float32 weights in a float64 run",
                                  "stride not a power of two", "stride missing", "a flat beyond the bound",
                                  "a table beyond the bound", "pickled points"])
def test_a_damaged_or_hostile_timeline_is_refused_in_one_line(saved, tmp_path: Path, case: str):
    changes, says = _bad(saved)[case]
    path = _variant(saved[0], tmp_path / "bad.npz", **changes)
    with pytest.raises(SessionError) as raised:
        load_session(path)
    message = str(raised.value)
    assert says in message and "\n" not in message, message
