"""The model kinds a Trainer can train, by name. Each is a module with the same functions as core.lstm:
Params (with flat, state_dict, from_state_dict, from_flat, copy, zeros_like), init_params, forward, backward,
resize_hidden, and STATE_DICT_KEYS."""

from __future__ import annotations

from types import ModuleType

from core import lstm, rnn

MODELS: dict[str, ModuleType] = {"lstm": lstm, "rnn": rnn}


def get(name: str) -> ModuleType:
    try:
        return MODELS[name]
    except KeyError:
        raise ValueError(f"unknown model {name!r}: choose one of {', '.join(MODELS)}") from None


def of(params: object) -> ModuleType:
    """The model module whose Params class params is."""
    for module in MODELS.values():
        if isinstance(params, module.Params):
            return module
    raise TypeError(f"not the parameters of a known model: {type(params).__name__}")
