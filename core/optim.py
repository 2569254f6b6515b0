"""Optimizers that update a Params in place through its flat buffer: SGD, SGD with momentum, Adam.

Each keeps its state as flat arrays the size of params.flat, so a step is a handful of NumPy calls
whatever the number of weight matrices.
"""

from __future__ import annotations

import numpy as np

from core.lstm import Params

OPTIMIZERS = ("sgd", "momentum", "adam")


def clip_by_global_norm(grads: Params, max_norm: float | None) -> float:
    """Scale grads in place so their global L2 norm is at most max_norm (None or 0: off). Returns the norm before."""
    norm = float(np.sqrt(np.dot(grads.flat, grads.flat)))
    if max_norm and norm > max_norm:
        grads.flat *= max_norm / norm
    return norm


class Optimizer:
    """Base class: `step(params, grads)` updates params.flat in place."""

    name = ""

    def __init__(self, learning_rate: float) -> None:
        self.learning_rate = learning_rate

    def step(self, params: Params, grads: Params) -> None:
        raise NotImplementedError

    def state(self) -> dict[str, np.ndarray]:
        """Named flat arrays to save with a session (empty for plain SGD), plus scalars as 0-d arrays."""
        return {}

    def load_state(self, state: dict[str, np.ndarray]) -> None:
        """Restore what state() returned; raises ValueError on a missing key or a wrong size."""

    def resize(self, mapping: callable) -> None:
        """Apply mapping(flat_array) -> new flat array to every per-weight state array (used when H changes)."""


class SGD(Optimizer):
    name = "sgd"

    def step(self, params: Params, grads: Params) -> None:
        params.flat -= self.learning_rate * grads.flat


class Momentum(Optimizer):
    """SGD with (heavy-ball) momentum as torch.optim.SGD: v = mu*v + g; w -= lr*v."""

    name = "momentum"

    def __init__(self, learning_rate: float, momentum: float = 0.9) -> None:
        super().__init__(learning_rate)
        self.momentum = momentum
        self.velocity: np.ndarray | None = None

    def step(self, params: Params, grads: Params) -> None:
        if self.velocity is None or self.velocity.shape != params.flat.shape:
            self.velocity = grads.flat.copy()
        else:
            self.velocity *= self.momentum
            self.velocity += grads.flat
        params.flat -= self.learning_rate * self.velocity

    def state(self) -> dict[str, np.ndarray]:
        return {} if self.velocity is None else {"velocity": self.velocity.copy()}

    def load_state(self, state: dict[str, np.ndarray]) -> None:
        self.velocity = state["velocity"].copy() if "velocity" in state else None

    def resize(self, mapping: callable) -> None:
        if self.velocity is not None:
            self.velocity = mapping(self.velocity)


class Adam(Optimizer):
    """Adam (Kingma & Ba 2015) with bias correction, as torch.optim.Adam."""

    name = "adam"

    def __init__(self, learning_rate: float, beta1: float = 0.9, beta2: float = 0.999, eps: float = 1e-8) -> None:
        super().__init__(learning_rate)
        self.beta1, self.beta2, self.eps = beta1, beta2, eps
        self.steps = 0
        self.first: np.ndarray | None = None
        self.second: np.ndarray | None = None

    def step(self, params: Params, grads: Params) -> None:
        g = grads.flat
        if self.first is None or self.first.shape != g.shape:
            self.first, self.second, self.steps = np.zeros_like(g), np.zeros_like(g), 0
        self.steps += 1
        self.first *= self.beta1
        self.first += (1.0 - self.beta1) * g
        self.second *= self.beta2
        self.second += (1.0 - self.beta2) * (g * g)
        step_size = self.learning_rate / (1.0 - self.beta1**self.steps)
        denom = np.sqrt(self.second / (1.0 - self.beta2**self.steps))
        denom += self.eps
        params.flat -= step_size * (self.first / denom)

    def state(self) -> dict[str, np.ndarray]:
        if self.first is None:
            return {}
        return {"first": self.first.copy(), "second": self.second.copy(), "steps": np.array(self.steps)}

    def load_state(self, state: dict[str, np.ndarray]) -> None:
        if "first" in state:
            self.first, self.second = state["first"].copy(), state["second"].copy()
            self.steps = int(state["steps"])
        else:
            self.first = self.second = None
            self.steps = 0

    def resize(self, mapping: callable) -> None:
        if self.first is not None:
            self.first, self.second = mapping(self.first), mapping(self.second)


def make_optimizer(name: str, learning_rate: float, momentum: float = 0.9) -> Optimizer:
    if name == "sgd":
        return SGD(learning_rate)
    if name == "momentum":
        return Momentum(learning_rate, momentum)
    if name == "adam":
        return Adam(learning_rate)
    raise ValueError(f"unknown optimizer {name!r}: choose one of {', '.join(OPTIMIZERS)}")
