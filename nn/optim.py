"""Optimizers with PyTorch's update equations: ``SGD`` and ``Adam``.

An optimizer holds a list of parameters (leaf Values). After ``loss.backward()`` has filled
their ``.grad``, ``step()`` changes each ``p.data`` in place; ``zero_grad()`` clears the
gradients before the next backward pass (they accumulate otherwise).

Reference: PyTorch documentation, ``torch.optim.SGD`` and ``torch.optim.Adam`` (the
algorithm boxes there); D. P. Kingma and J. Ba, "Adam: A Method for Stochastic
Optimization", ICLR 2015.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable
from typing import Any

from engine import Value
from nn.checks import MISSING, FieldError, mapping, real, reals, whole


def _check_hyper(name: str, value: float, low: float = 0.0, high: float = math.inf,
                 high_open: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    if value < low or value > high or (high_open and value == high):
        bound = f"[{low}, {high})" if high_open else f"[{low}, {high}]"
        raise ValueError(f"{name} must be in {bound}, got {value!r}")
    return float(value)


class Optimizer:
    """Base class: holds the parameters and the learning rate ``lr`` (changeable between steps)."""

    def __init__(self, params: Iterable[Value], lr: float) -> None:
        self.params = list(params)
        if not self.params:
            raise ValueError("the optimizer got an empty list of parameters")
        for p in self.params:
            if not isinstance(p, Value):
                raise TypeError(f"optimizer parameters must be Values, got {type(p).__name__}")
        self.lr = _check_hyper("lr", lr)
        self.steps = 0

    def zero_grad(self) -> None:
        """Set every parameter's gradient to ``0.0``."""
        for p in self.params:
            p.grad = 0.0

    def _gradient(self, p: Value, weight_decay: float) -> float:
        g = p.grad
        if isinstance(g, Value):  # a gradient recorded with create_graph=True
            g = g.data
        return g + weight_decay * p.data if weight_decay else g

    def step(self) -> None:
        """Update every parameter once from its current gradient."""
        raise NotImplementedError

    def state_dict(self) -> dict[str, Any]:
        """The optimizer's state as plain JSON-serialisable data (for resuming training)."""
        return {"lr": self.lr, "steps": self.steps}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a :meth:`state_dict`: the hyperparameters (as ``torch.optim`` restores its
        param groups) and the running state (``steps``, the moment buffers).

        Raises:
            nn.checks.FieldError: (a ``ValueError`` and a ``TypeError``) a field is missing or
                has a wrong type, length or range (the message names it). Nothing changes then.
        """
        vars(self).update(self._checked_state(mapping("optimizer state", state)))

    def _checked_state(self, state: dict[str, Any]) -> dict[str, Any]:
        """The attributes a state sets, every one checked (the same ranges as the constructor)."""
        return {"lr": real("lr", state.get("lr", MISSING), 0.0),
                "steps": whole("steps", state.get("steps", MISSING), 0)}

    def _restore_buffer(self, state: dict[str, Any], key: str, low: float = -math.inf) -> list[float]:
        return reals(key, state.get(key, MISSING), len(self.params), low)


class SGD(Optimizer):
    """Stochastic gradient descent with optional momentum and L2 weight decay.

    For each parameter ``p`` with gradient ``g``, as ``torch.optim.SGD`` (dampening 0,
    no Nesterov)::

        g ← g + weight_decay · p
        b ← g                       on the first step, then  b ← momentum · b + g
        p ← p − lr · b              (b = g when momentum is 0)

    Args:
        params: the parameters (leaf Values), e.g. ``model.parameters()``.
        lr: learning rate (> 0 for learning; 0 freezes). momentum: in [0, 1).
        weight_decay: L2 penalty coefficient (>= 0).

    Raises:
        ValueError: an empty parameter list or a hyperparameter out of range.
        TypeError: a parameter that is not a Value.
    """

    def __init__(self, params: Iterable[Value], lr: float, momentum: float = 0.0,
                 weight_decay: float = 0.0) -> None:
        super().__init__(params, lr)
        self.momentum = _check_hyper("momentum", momentum, 0.0, 1.0, high_open=True)
        self.weight_decay = _check_hyper("weight_decay", weight_decay)
        self.buffers: list[float] = [0.0] * len(self.params)

    def step(self) -> None:
        for i, p in enumerate(self.params):
            g = self._gradient(p, self.weight_decay)
            if self.momentum:
                g = g if self.steps == 0 else self.momentum * self.buffers[i] + g
                self.buffers[i] = g
            p.data -= self.lr * g
        self.steps += 1

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "momentum": self.momentum, "weight_decay": self.weight_decay,
                "momentum_buffer": list(self.buffers)}

    def _checked_state(self, state: dict[str, Any]) -> dict[str, Any]:
        return {**super()._checked_state(state),
                "momentum": real("momentum", state.get("momentum", MISSING), 0.0, 1.0, high_open=True),
                "weight_decay": real("weight_decay", state.get("weight_decay", MISSING), 0.0),
                "buffers": self._restore_buffer(state, "momentum_buffer")}


class Adam(Optimizer):
    """Adam: gradient steps scaled by running estimates of the gradient's first and second
    moments, with bias correction (Kingma and Ba, 2015), as ``torch.optim.Adam``::

        g ← g + weight_decay · p
        m ← β₁·m + (1 − β₁)·g          v ← β₂·v + (1 − β₂)·g²
        m̂ ← m / (1 − β₁ᵗ)              v̂ ← v / (1 − β₂ᵗ)
        p ← p − lr · m̂ / (√v̂ + eps)

    Args:
        params: the parameters. lr: learning rate (default 1e-3).
        betas: (β₁, β₂), each in [0, 1). eps: added to the denominator (> 0).
        weight_decay: L2 penalty coefficient (>= 0), added to the gradient (not AdamW).

    Raises:
        ValueError: an empty parameter list or a hyperparameter out of range.
        TypeError: a parameter that is not a Value.
    """

    def __init__(self, params: Iterable[Value], lr: float = 1e-3,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0) -> None:
        super().__init__(params, lr)
        if len(betas) != 2:
            raise ValueError(f"betas must be a pair (beta1, beta2), got {betas!r}")
        self.betas = (_check_hyper("beta1", betas[0], 0.0, 1.0, high_open=True),
                      _check_hyper("beta2", betas[1], 0.0, 1.0, high_open=True))
        self.eps = _check_hyper("eps", eps)
        self.weight_decay = _check_hyper("weight_decay", weight_decay)
        self.m: list[float] = [0.0] * len(self.params)
        self.v: list[float] = [0.0] * len(self.params)

    def step(self) -> None:
        beta1, beta2 = self.betas
        t = self.steps + 1
        correction1 = 1.0 - beta1**t
        correction2 = 1.0 - beta2**t
        for i, p in enumerate(self.params):
            g = self._gradient(p, self.weight_decay)
            self.m[i] = beta1 * self.m[i] + (1.0 - beta1) * g
            self.v[i] = beta2 * self.v[i] + (1.0 - beta2) * g * g
            m_hat = self.m[i] / correction1
            v_hat = self.v[i] / correction2
            p.data -= self.lr * m_hat / (math.sqrt(v_hat) + self.eps)
        self.steps = t

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "betas": list(self.betas), "eps": self.eps,
                "weight_decay": self.weight_decay, "m": list(self.m), "v": list(self.v)}

    def _checked_state(self, state: dict[str, Any]) -> dict[str, Any]:
        betas = state.get("betas", MISSING)
        if not isinstance(betas, list) or len(betas) != 2:
            raise FieldError("betas", "a pair [beta1, beta2]", betas)
        return {**super()._checked_state(state),
                "betas": tuple(real(f"betas.{i}", b, 0.0, 1.0, high_open=True) for i, b in enumerate(betas)),
                "eps": real("eps", state.get("eps", MISSING), 0.0),
                "weight_decay": real("weight_decay", state.get("weight_decay", MISSING), 0.0),
                "m": self._restore_buffer(state, "m"),
                "v": self._restore_buffer(state, "v", 0.0)}  # a mean of squares: never negative
