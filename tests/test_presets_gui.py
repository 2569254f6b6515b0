"""The controls' preset box: named settings (the tutorial's RNN, the notebook's LSTM, the defaults) applied on
Reset, shown again when a run has them, and left as soon as one of their settings is changed by hand."""

from __future__ import annotations

import types

from core.trainer import TrainConfig, preset
from explorer.panels.controls import CUSTOM, ControlsPanel


def snapshot(config: TrainConfig) -> types.SimpleNamespace:
    return types.SimpleNamespace(config=config)


def choose(panel: ControlsPanel, name: str) -> None:
    panel.preset.setCurrentIndex(panel.preset.findData(name))


def test_a_preset_is_applied_on_reset_over_the_controls(qtbot) -> None:
    panel = ControlsPanel(TrainConfig(seed=3))
    qtbot.addWidget(panel)
    assert panel.preset.currentText() == "LSTM (defaults)"  # the defaults are a preset too
    choose(panel, "tutorial-rnn")
    assert panel.pending_reset_changes()[0] == "preset → Tutorial RNN"
    assert "Tutorial RNN" in panel.reset_note.text()
    assert panel.reset_config() == preset("tutorial-rnn", TrainConfig(seed=3))  # seed stays the run's


def test_a_run_with_a_presets_settings_shows_the_preset(qtbot) -> None:
    panel = ControlsPanel()
    qtbot.addWidget(panel)
    tutorial = preset("tutorial-rnn")
    panel.update_from(snapshot(tutorial))
    assert panel.preset.currentText() == "Tutorial RNN"
    assert panel.init.currentData() == "uniform" and panel.model.currentData() == "rnn"
    assert panel.reset_config() == tutorial and panel.pending_reset_changes() == []
    panel.update_from(snapshot(tutorial.replace(learning_rate=0.3)))  # a live change: no longer the preset's
    panel.update_from(snapshot(tutorial.replace(hidden_size=8, learning_rate=0.3)))
    assert panel.reset_config().hidden_size == 8


def test_changing_a_presets_setting_by_hand_leaves_the_preset(qtbot) -> None:
    panel = ControlsPanel()
    qtbot.addWidget(panel)
    panel.update_from(snapshot(preset("tutorial-rnn")))
    panel.model.setCurrentIndex(panel.model.findData("lstm"))  # from the sigmoid RNN to an LSTM
    assert panel.preset.currentText() == CUSTOM
    config = panel.reset_config()  # the RNN's own settings do not follow it to the LSTM
    assert (config.model, config.activation, config.bias, config.loss) == ("lstm", "tanh", True, "squared")
    choose(panel, "notebook-lstm")
    panel.lr_edit.setText("0.5")
    panel.lr_edit.editingFinished.emit()  # a live change sent to the run: a Reset keeps it, not the preset's lr
    assert panel.preset.currentText() == CUSTOM
