"""The story of a run: its events fire at the checks where what they say first became true, on seeded runs, as
the history and runs stopped at those samples show."""

from __future__ import annotations

import numpy as np
import pytest

from core import story
from core.story import CARRY_THRESHOLD, Story
from core.trainer import CHECK_EVERY, TrainConfig, Trainer


def _run(samples: int, chunk: int | None = None, **settings: object) -> Trainer:
    trainer = Trainer(TrainConfig(**settings))
    Story().attach(trainer)
    while trainer.samples_seen < samples:
        trainer.step(min(chunk or samples, samples - trainer.samples_seen))
    return trainer


def _stopped_at(samples: int, **settings: object) -> Trainer:
    trainer = Trainer(TrainConfig(**settings))
    trainer.step(samples)
    return trainer


@pytest.fixture(scope="module")
def default_run() -> Trainer:
    return _run(1500)


def _events(trainer: Trainer, start: str) -> list[tuple[int, str]]:
    return [(samples, text) for samples, text in trainer.history.events if text.startswith(start)]


def test_accuracy_events_fire_at_the_first_check_that_passes_them(default_run):
    history = default_run.history.array()  # samples, loss, bit error, accuracy at every check
    accuracy = history[:, 3]
    for start, passed in ((story.FIRST_RIGHT, accuracy > 0), ("half the held-out sums right", accuracy >= 0.5),
                          ("90 % of held-out sums right", accuracy >= 0.9)):
        [(samples, text)] = _events(default_run, start)
        first = int(np.argmax(passed))
        assert passed.any() and samples == history[first, 0], (start, samples, history[first])
        assert f"{100 * accuracy[first]:.1f} %" in text or f"{round(accuracy[first] * 1024):,} of 1,024" in text


def test_the_default_run_solves_with_no_single_carry_unit_and_says_how_close_the_best_came(default_run):
    solved = default_run.solved_at[0]
    assert [s for s, _ in _events(default_run, "solved: every sum right")] == [solved]
    assert _events(default_run, "unit ") == []  # no unit reached |corr| 0.9 ...
    [(samples, text)] = _events(default_run, story.NO_CARRY_UNIT)  # ... and the story says so at the solve
    screen = story.carry_screen(_stopped_at(solved).params, 8)
    best = int(np.argmax(screen.strongest))
    assert samples == solved and f"unit {best}," in text and screen.describe(best) in text
    assert screen.strongest[best] < CARRY_THRESHOLD


def test_a_unit_becomes_the_carry_at_the_first_carry_check_where_it_reaches_the_threshold():
    """Seed 1: a unit crosses |corr| 0.9 before the run is solved."""
    trainer = _run(1500, seed=1)
    [(samples, text)] = _events(trainer, "unit ")
    unit = int(text.split()[1])
    at = story.carry_screen(_stopped_at(samples, seed=1).params, 8)
    assert at.strongest[unit] >= CARRY_THRESHOLD and at.describe(unit) in text
    earlier = [s for s in range(0, samples, CHECK_EVERY) if story.carry_due(s)]
    for before in earlier[-2:]:  # (every earlier carry check: the last two are the ones near the threshold)
        weights = _stopped_at(before, seed=1).params if before else Trainer(TrainConfig(seed=1)).params
        assert story.carry_screen(weights, 8).strongest.max() < CARRY_THRESHOLD, before
    assert _events(trainer, story.NO_CARRY_UNIT) == []


def test_the_story_does_not_depend_on_how_the_samples_were_chunked(default_run):
    assert _run(1500, chunk=37).history.events == default_run.history.events


def test_a_continued_run_does_not_tell_its_story_twice(default_run):
    trainer = _stopped_at(1500)
    trainer.history.events[:] = default_run.history.events
    Story().attach(trainer)
    trainer.step(400)
    assert trainer.history.events == default_run.history.events  # nothing new happened in those 400 samples


def test_every_event_has_a_kind_a_label_and_a_sentence(default_run):
    trainer = _stopped_at(200)
    trainer.update(learning_rate=0.3)
    [(_, change)] = trainer.history.events
    assert story.kind(change) == "setting" and story.sentence(change) == "Changed learning rate from 0.1 to 0.3."
    kinds = {text: story.kind(text) for _, text in default_run.history.events}
    assert sorted(set(kinds.values())) == ["carry", "progress", "solved"]
    for text in kinds:
        assert story.sentence(text).endswith(".")
    assert story.short_label(story.FIRST_RIGHT + " (3 of 1,024)") == "first sum right"
    assert story.kind("diverged at sample 1,234; rolled back") == "diverged"
    assert story.kind("no longer solved") == "unsolved"


def test_carry_checks_run_at_fixed_sample_counts():
    due = [s for s in range(0, 300_001, CHECK_EVERY) if story.carry_due(s)]
    assert due[:21] == list(range(0, 2001, 100))
    assert due[21:24] == [3000, 4000, 5000] and due[-2:] == [290_000, 300_000]
    assert len(due) == 21 + 18 + 28


def test_a_run_trained_without_a_story_is_not_told_old_news():
    """A session from before the story: its first sum right and 50 % / 90 % passed long ago, and a unit that already
    carries did not just become the carry."""
    trainer = _stopped_at(1500, seed=1)  # (seed 1's unit 10 carries from sample 800)
    before = list(trainer.history.events)  # the trainer's own: solved
    Story().attach(trainer)
    trainer.step(300)
    assert trainer.history.events == before
