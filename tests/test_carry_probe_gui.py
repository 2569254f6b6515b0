"""The step-through's carry finder line shows the linear probe beside the single-unit correlations."""

from __future__ import annotations

from core import carry
from core.trainer import Trainer
from explorer.panels.stepthrough import CarryFinder


def test_carry_finder_shows_the_probe(qtbot, solved_lstm: Trainer) -> None:
    finder = CarryFinder()
    qtbot.addWidget(finder)
    found = carry.from_trainer(solved_lstm)
    finder.show_result(found, solved_lstm.params.hidden_size)
    text = finder.label.label.text()
    assert "a linear readout of [c, h] gets <b>100.00 %</b> of carries right" in text
    assert found.probe.summary() in finder.label.toolTip()
    finder.show_result(carry.find_carry_units(solved_lstm.params, 8), solved_lstm.params.hidden_size)
    assert "linear readout" not in finder.label.label.text()  # a result without the probe says nothing of it
