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
from collections.abc import Callable, Iterable
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


def _check_eps(eps: float) -> float:
    eps = _check_hyper("eps", eps)
    if eps == 0.0:
        raise ValueError("eps must be > 0 (with eps = 0, a parameter whose gradient is 0 would be "
                         "divided 0 by 0), got 0")
    return eps


class Optimizer:
    """Base class: holds the parameters, the learning rate ``lr`` (changeable between steps),
    the number of steps taken, and one buffer per entry of :attr:`buffer_names` (a number per
    parameter: a list of floats, or a numpy array while :meth:`step_vector` is used).

    After each step, :attr:`last_update` holds that step's change of every parameter,
    ``p_after − p_before`` (a list, or a numpy array after :meth:`step_vector`), in the order
    of :attr:`params`; ``None`` before the first step (and after :meth:`load_state_dict`,
    which does not restore it). For plain SGD it is ``−lr·g`` up to the rounding of the
    subtraction. :func:`nn.diagnostics.layer_statistics` reads it for the update-to-data ratio.

    A subclass writes its update once, in :meth:`update`, with ``+ - * /`` and the ``sqrt``
    it is given, so the same code steps one float (:meth:`step`, on the parameters' Values) or
    a whole numpy vector of parameters (:meth:`step_vector`, compiled training). Both give
    the same numbers bit for bit: numpy's float64 arithmetic and ``sqrt`` are IEEE-754's
    correctly rounded operations, as Python's are.
    """

    buffer_names: tuple[str, ...] = ()

    def __init__(self, params: Iterable[Value], lr: float) -> None:
        self.params = list(params)
        if not self.params:
            raise ValueError("the optimizer got an empty list of parameters")
        for p in self.params:
            if not isinstance(p, Value):
                raise TypeError(f"optimizer parameters must be Values, got {type(p).__name__}")
        seen: set[int] = set()
        for k, p in enumerate(self.params):
            if id(p) in seen:  # it would be stepped twice per step
                raise ValueError(f"parameter {k} ({p!r}) is listed twice; an optimizer steps each "
                                 f"parameter once")
            seen.add(id(p))
        self.lr = _check_hyper("lr", lr)
        self.steps = 0
        self.last_update: Any = None
        self.buffers: dict[str, Any] = {name: [0.0] * len(self.params) for name in self.buffer_names}

    def zero_grad(self) -> None:
        """Set every parameter's gradient to ``0.0``."""
        for p in self.params:
            p.grad = 0.0

    def update(self, p: Any, g: Any, buffers: list[Any], sqrt: Callable[[Any], Any]) -> tuple[Any, list[Any]]:
        """One step of the update rule for parameter value(s) ``p`` with gradient(s) ``g`` and
        this parameter's ``buffers`` (in the order of :attr:`buffer_names`): returns the new
        ``p`` and the new buffers. ``p``, ``g`` and the buffers are all floats, or all numpy
        arrays of the same shape."""
        raise NotImplementedError

    def step(self) -> None:
        """Update every parameter once from its current gradient (``p.data`` in place)."""
        buffers = [self._as_list(name) for name in self.buffer_names]
        change = [0.0] * len(self.params)
        for i, p in enumerate(self.params):
            g = p.grad.data if isinstance(p.grad, Value) else p.grad  # a create_graph gradient
            before = p.data
            p.data, new = self.update(p.data, g, [b[i] for b in buffers], math.sqrt)
            change[i] = p.data - before
            for b, x in zip(buffers, new):
                b[i] = x
        self.last_update = change
        self.steps += 1

    def step_vector(self, theta: Any, grad: Any) -> Any:
        """The same step as :meth:`step` on a numpy vector: ``theta[i]`` and ``grad[i]`` are
        the value and the gradient of ``self.params[i]``. Returns the new vector (``Adam``
        updates ``theta`` in place and returns it; ``grad`` is never changed); the buffers
        are kept as numpy arrays until :meth:`step` or :meth:`state_dict` needs lists. The
        parameters' Values are not touched (compiled training writes them back itself)."""
        import numpy as np

        buffers = [self.buffers[name] for name in self.buffer_names]
        buffers = [b if isinstance(b, np.ndarray) else np.array(b, dtype=float) for b in buffers]
        before = theta.copy()  # (Adam steps theta in place)
        stepped, new = self.update(theta, grad, buffers, np.sqrt)
        self.last_update = stepped - before  # as step() records it, element by element
        self.buffers = dict(zip(self.buffer_names, new))
        self.steps += 1
        return stepped

    def _as_list(self, name: str) -> list[float]:
        buffer = self.buffers[name]
        if not isinstance(buffer, list):  # a numpy array left by step_vector
            buffer = self.buffers[name] = buffer.tolist()
        return buffer

    def state_dict(self) -> dict[str, Any]:
        """The optimizer's state as plain JSON-serialisable data (for resuming training)."""
        buffers = {name: list(self._as_list(name)) for name in self.buffer_names}
        return {"lr": self.lr, "steps": self.steps, **buffers}

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
                "steps": whole("steps", state.get("steps", MISSING), 0),
                "buffers": {name: self._restore_buffer(state, name) for name in self.buffer_names}}

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
        ValueError: an empty parameter list, a parameter listed twice, or a hyperparameter
            out of range.
        TypeError: a parameter that is not a Value.
    """

    buffer_names = ("momentum_buffer",)

    def __init__(self, params: Iterable[Value], lr: float, momentum: float = 0.0,
                 weight_decay: float = 0.0) -> None:
        super().__init__(params, lr)
        self.momentum = _check_hyper("momentum", momentum, 0.0, 1.0, high_open=True)
        self.weight_decay = _check_hyper("weight_decay", weight_decay)

    def update(self, p: Any, g: Any, buffers: list[Any], sqrt: Callable[[Any], Any]) -> tuple[Any, list[Any]]:
        (b,) = buffers
        if self.weight_decay:
            g = g + self.weight_decay * p
        if self.momentum:
            b = g if self.steps == 0 else self.momentum * b + g
            g = b
        return p - self.lr * g, [b]

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "momentum": self.momentum, "weight_decay": self.weight_decay}

    def _checked_state(self, state: dict[str, Any]) -> dict[str, Any]:
        return {**super()._checked_state(state),
                "momentum": real("momentum", state.get("momentum", MISSING), 0.0, 1.0, high_open=True),
                "weight_decay": real("weight_decay", state.get("weight_decay", MISSING), 0.0)}


class Adam(Optimizer):
    """Adam: gradient steps scaled by running estimates of the gradient's first and second
    moments, with bias correction (Kingma and Ba, 2015), as ``torch.optim.Adam``::

        g ← g + weight_decay · p
        m ← β₁·m + (1 − β₁)·g          v ← β₂·v + (1 − β₂)·g²
        m̂ ← m / (1 − β₁ᵗ)              v̂ ← v / (1 − β₂ᵗ)
        p ← p − lr · m̂ / (√v̂ + eps)

    Args:
        params: the parameters. lr: learning rate (default 1e-3).
        betas: (β₁, β₂), each in [0, 1). eps: added to the denominator (> 0: with 0, a zero
            gradient would divide 0 by 0).
        weight_decay: L2 penalty coefficient (>= 0), added to the gradient (not AdamW).

    Raises:
        ValueError: an empty parameter list, a parameter listed twice, or a hyperparameter
            out of range.
        TypeError: a parameter that is not a Value.
    """

    buffer_names = ("m", "v")

    def __init__(self, params: Iterable[Value], lr: float = 1e-3,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0) -> None:
        super().__init__(params, lr)
        if len(betas) != 2:
            raise ValueError(f"betas must be a pair (beta1, beta2), got {betas!r}")
        self.betas = (_check_hyper("beta1", betas[0], 0.0, 1.0, high_open=True),
                      _check_hyper("beta2", betas[1], 0.0, 1.0, high_open=True))
        self.eps = _check_eps(eps)
        self.weight_decay = _check_hyper("weight_decay", weight_decay)

    def update(self, p: Any, g: Any, buffers: list[Any], sqrt: Callable[[Any], Any]) -> tuple[Any, list[Any]]:
        m, v = buffers
        beta1, beta2 = self.betas
        t = self.steps + 1
        if self.weight_decay:
            g = g + self.weight_decay * p
        # Speed trick: augmented assignments, which update numpy arrays in place (this step's
        # own buffers and vector: no new array each) and are the same operations on floats. The
        # plain version: m = β₁·m + (1 − β₁)·g, ..., return p − lr·m̂ / (√v̂ + eps): the same bits.
        m *= beta1
        m += (1.0 - beta1) * g
        v *= beta2
        v += (1.0 - beta2) * g * g
        m_hat = m / (1.0 - beta1**t)
        denominator = sqrt(v / (1.0 - beta2**t))
        denominator += self.eps
        m_hat *= self.lr
        m_hat /= denominator
        p -= m_hat
        return p, [m, v]

    @property
    def m(self) -> Any:
        """The first-moment estimate of each parameter (a list, or a numpy array)."""
        return self.buffers["m"]

    @property
    def v(self) -> Any:
        """The second-moment estimate of each parameter (a list, or a numpy array)."""
        return self.buffers["v"]

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "betas": list(self.betas), "eps": self.eps,
                "weight_decay": self.weight_decay}

    def _checked_state(self, state: dict[str, Any]) -> dict[str, Any]:
        betas = state.get("betas", MISSING)
        if not isinstance(betas, list) or len(betas) != 2:
            raise FieldError("betas", "a pair [beta1, beta2]", betas)
        checked = super()._checked_state(state)
        checked["buffers"]["v"] = self._restore_buffer(state, "v", 0.0)  # a mean of squares: never negative
        eps = real("eps", state.get("eps", MISSING), 0.0)
        if eps == 0.0:
            raise FieldError("eps", "a number > 0", eps)
        return {**checked,
                "betas": tuple(real(f"betas.{i}", b, 0.0, 1.0, high_open=True) for i, b in enumerate(betas)),
                "eps": eps, "weight_decay": real("weight_decay", state.get("weight_decay", MISSING), 0.0)}
