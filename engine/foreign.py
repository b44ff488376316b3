"""Your own micrograd-style ``Value`` class, drawn and stepped through like valuegrad's own.

A learner who types micrograd's ``Value`` cell by cell has objects with ``data``, ``grad``,
``_prev`` (the set of parents), ``_op`` (the op's symbol) and ``label``, and a ``_backward()``
per node. :func:`mirror` copies such a graph into valuegrad ``Value`` nodes (its numbers, its
labels, its symbols), which :func:`engine.draw.draw` and the stepper draw; duck-typed, so any
class with those attributes works. :func:`own_backward_steps` steps through the learner's own
backward pass: it calls *their* ``_backward()`` one node at a time, in reverse topological
order, and records every gradient after each call.

``_prev`` is a set, which has no order: parents are ordered by label, then data, so the same
graph draws the same way each time.

Reference: Karpathy, micrograd 0.1.0, ``micrograd/engine.py`` and the ``trace_graph`` notebook.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

from engine.ops import Op
from engine.steps import BackwardStep
from engine.value import Value

ATTRIBUTES = ("data", "grad", "_prev", "_op")


def is_micrograd_like(obj: Any) -> bool:
    """True when ``obj`` has micrograd's node attributes (``data``, ``grad``, ``_prev``,
    ``_op``) and is not a valuegrad Value."""
    return not isinstance(obj, Value) and all(hasattr(obj, a) for a in ATTRIBUTES)


def _parents(node: Any) -> list[Any]:
    """``node._prev`` in a fixed order (by label, then data; the set itself has none)."""
    return sorted(node._prev, key=lambda p: (str(getattr(p, "label", "") or ""), _number(p.data), id(p)))


def _number(x: Any) -> float:
    try:
        return float(x)
    except (TypeError, ValueError):
        return math.nan


def topological_order_of(root: Any) -> list[Any]:
    """Every node below ``root``, parents first, each once (an explicit stack: no recursion).

    Raises:
        TypeError: a node lacks micrograd's attributes.
    """
    order: list[Any] = []
    visited = {id(root)}
    stack: list[tuple[Any, Iterator[Any]]] = [(checked_node(root), iter(_parents(root)))]
    while stack:
        node, parents = stack[-1]
        for parent in parents:
            if id(parent) not in visited:
                visited.add(id(parent))
                stack.append((checked_node(parent), iter(_parents(parent))))
                break
        else:
            stack.pop()
            order.append(node)
    return order


def checked_node(node: Any, who: str = "a micrograd-style graph") -> Any:
    """``node``, if it has micrograd's attributes. Raises ``TypeError`` naming the missing ones."""
    missing = [a for a in ATTRIBUTES if not hasattr(node, a)]
    if missing:
        raise TypeError(f"{who} needs a Value, or a micrograd-style node with {', '.join(ATTRIBUTES)}; "
                        f"{type(node).__name__} has no {', '.join(missing)}")
    return node


def mirror(root: Any) -> tuple[Value, dict[int, Value]]:
    """The graph below ``root`` (a micrograd-style node) as valuegrad Values: each node's data,
    grad and label copied, each op a node whose symbol is the learner's ``_op``. Returns the
    mirrored root and ``{id(learner's node): its mirror}``.

    Raises:
        TypeError: a node lacks micrograd's attributes.
    """
    mirrors: dict[int, Value] = {}
    ops: dict[str, Op] = {}
    for node in topological_order_of(root):
        parents = [mirrors[id(p)] for p in _parents(node)]
        label = getattr(node, "label", None)
        copy = Value(_number(node.data), str(label) if label not in (None, "") else None)
        copy.grad = _number(node.grad)
        if parents:
            symbol = str(node._op) or "?"
            op = ops.setdefault(symbol, Op(symbol, symbol, len(parents), _not_run, _not_run, builtin=False))
            copy.op = op
            if len(parents) > 2:
                copy._a = tuple(parents)
            else:
                copy._a, copy._b = parents[0], (parents[1] if len(parents) == 2 else None)
        mirrors[id(node)] = copy
    return mirrors[id(root)], mirrors


def _not_run(*_: Any) -> Any:
    raise TypeError("a mirrored node of your own engine is for drawing: run your own class to compute")


def own_backward_steps(root: Any) -> tuple[Value, list[BackwardStep]]:
    """Step through the learner's own backward pass: every ``grad`` set to 0, ``root.grad`` to
    1, then each node's ``_backward()`` called in reverse topological order. Returns the
    mirrored root and the frames (the start, then one per node with parents), each holding
    every gradient after the call, keyed by the mirrors. The learner's nodes get back the
    gradients they had before.

    Raises:
        TypeError: a node lacks micrograd's attributes, or ``_backward`` is not callable.
    """
    order = topological_order_of(root)
    saved = [node.grad for node in order]
    for node in order:
        node.grad = 0.0
    root.grad = 1.0
    mirrored, mirrors = mirror(root)
    names = {id(n): mirrors[id(n)].label or f"%{k}" for k, n in enumerate(order)}

    def grads() -> dict[Value, float]:
        return {mirrors[id(n)]: _number(n.grad) for n in order}

    frames = [BackwardStep(0, mirrored, names[id(root)], 1.0, grads=grads(),
                           caption=f"start: {names[id(root)]}.grad = 1")]
    for node in reversed(order):
        parents = _parents(node)
        if not parents:
            continue
        before = [_number(p.grad) for p in parents]
        if not callable(getattr(node, "_backward", None)):
            raise TypeError(f"{type(node).__name__} has no _backward() to call")
        node._backward()
        after = [_number(p.grad) for p in parents]
        changes = tuple((mirrors[id(p)], a - b) for p, a, b in zip(parents, after, before))
        text = "; ".join(f"{names[id(p)]}.grad {b:.4g} → {a:.4g}" for p, b, a in zip(parents, before, after))
        frames.append(BackwardStep(len(frames), mirrors[id(node)], names[id(node)], _number(node.grad),
                                   (), changes, grads(), f"{names[id(node)]}._backward(): {text}"))
    for node, grad in zip(order, saved):  # your graph's gradients as they were before stepping
        node.grad = grad
    return mirrored, frames
