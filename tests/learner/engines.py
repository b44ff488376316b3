"""Learners' micrograd-style Value classes, as typed in the lecture, each with one planted bug
(or none): the engines ``check_engine`` is tested on. ``Value`` is the correct one, so that
``valuegrad check-engine tests/learner/engines.py`` finds nothing.
"""

from __future__ import annotations

import math
from typing import Any


def make(bug: str | None = None) -> type:
    """A micrograd-style ``Value`` class; ``bug`` plants one mistake: ``assign`` (``=`` for
    ``+=`` in ``__add__``), ``upstream`` (``__mul__`` ignores ``out.grad``), ``tanh`` (``1 - t``
    for ``1 - t**2``), ``order`` (``backward`` walks in topological, not reverse, order),
    ``raises`` (``exp``'s backward divides by zero), ``no_rmul`` (no ``__rmul__``), ``pow`` (the
    power rule without its factor n), ``int_pow`` (``**`` refuses a float exponent),
    ``visit_twice`` (the topological sort without its visited set), ``mul_forward`` (``a * b`` off
    by 0.001)."""

    class Value:
        def __init__(self, data: float, _children: tuple = (), _op: str = "", label: str = "") -> None:
            self.data = data
            self.grad = 0.0
            self._backward: Any = lambda: None
            self._prev = set(_children)
            self._op = _op
            self.label = label

        def __add__(self, other: Any) -> Value:
            other = other if isinstance(other, Value) else Value(other)
            out = Value(self.data + other.data, (self, other), "+")

            def _backward() -> None:
                if bug == "assign":
                    self.grad = 1.0 * out.grad
                    other.grad = 1.0 * out.grad
                else:
                    self.grad += 1.0 * out.grad
                    other.grad += 1.0 * out.grad

            out._backward = _backward
            return out

        def __mul__(self, other: Any) -> Value:
            other = other if isinstance(other, Value) else Value(other)
            out = Value(self.data * other.data + (0.001 if bug == "mul_forward" else 0.0), (self, other), "*")

            def _backward() -> None:
                if bug == "upstream":
                    self.grad += other.data
                    other.grad += self.data
                else:
                    self.grad += other.data * out.grad
                    other.grad += self.data * out.grad

            out._backward = _backward
            return out

        def __pow__(self, other: float) -> Value:
            assert isinstance(other, int if bug == "int_pow" else (int, float)), "only int/float powers"
            out = Value(self.data**other, (self,), f"**{other}")

            def _backward() -> None:
                self.grad += (1 if bug == "pow" else other) * (self.data ** (other - 1)) * out.grad

            out._backward = _backward
            return out

        def tanh(self) -> Value:
            x = self.data
            t = (math.exp(2 * x) - 1) / (math.exp(2 * x) + 1)
            out = Value(t, (self,), "tanh")

            def _backward() -> None:
                self.grad += ((1 - t) if bug == "tanh" else (1 - t**2)) * out.grad

            out._backward = _backward
            return out

        def exp(self) -> Value:
            out = Value(math.exp(self.data), (self,), "exp")

            def _backward() -> None:
                if bug == "raises":
                    self.grad += out.data / 0
                self.grad += out.data * out.grad

            out._backward = _backward
            return out

        def __neg__(self) -> Value:
            return self * -1

        def __radd__(self, other: Any) -> Value:
            return self + other

        def __sub__(self, other: Any) -> Value:
            return self + (-other)

        def __truediv__(self, other: Any) -> Value:
            return self * other**-1

        def backward(self) -> None:
            topo: list[Value] = []
            visited = set()

            def build_topo(v: Value) -> None:
                if v not in visited or bug == "visit_twice":
                    visited.add(v)
                    for child in v._prev:
                        build_topo(child)
                    topo.append(v)

            build_topo(self)
            self.grad = 1.0
            for node in (topo if bug == "order" else reversed(topo)):
                node._backward()

    if bug != "no_rmul":
        Value.__rmul__ = lambda self, other: self * other  # type: ignore[attr-defined]
    return Value


Value = make()
AssignBug = make("assign")
