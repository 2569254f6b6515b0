"""The model kinds a Trainer can train, by name. Each is a module with the same functions as core.lstm:
Params (with flat, state_dict, from_state_dict, from_flat, copy, zeros_like), init_params, forward, backward,
state_grads, resize_hidden, and STATE_DICT_KEYS. Each also has a fast NumPy path with forward and backward that
take a `workspace` (core.lstm_fast for the LSTM; the RNN's reference is already two NumPy calls a step)."""

from __future__ import annotations

from types import ModuleType

from core import lstm, lstm_fast, rnn

MODELS: dict[str, ModuleType] = {"lstm": lstm, "rnn": rnn}
FAST: dict[str, ModuleType] = {"lstm": lstm_fast, "rnn": rnn}


def get(name: str) -> ModuleType:
    try:
        return MODELS[name]
    except KeyError:
        raise ValueError(f"unknown model {name!r}: choose one of {', '.join(MODELS)}") from None


def name_of(params: object) -> str:
    """The name of the model kind whose Params class params is."""
    for name, module in MODELS.items():
        if isinstance(params, module.Params):
            return name
    raise TypeError(f"not the parameters of a known model: {type(params).__name__}")


def of(params: object) -> ModuleType:
    """The model module whose Params class params is."""
    return MODELS[name_of(params)]


def fast(params: object) -> ModuleType:
    """The fast NumPy path (forward, backward with a workspace) for params' model kind."""
    return FAST[name_of(params)]
