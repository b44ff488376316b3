"""Pickling and copying Values, of any depth, without recursion.

``pickle`` and ``copy.deepcopy`` would follow a node's parents recursively, one Python frame
per node, and fail on a deep graph (a chain of a million nodes). Registered here with
``copyreg`` (which both consult), a Value is saved instead as its whole graph, flat, in
topological order, each interior node naming its parents by position. Leaves are saved as
themselves, so a leaf referenced elsewhere too (a model's weight) stays one shared object
after loading. Ops are saved by name (:meth:`engine.ops.Op.__reduce__`).

Reference: the ``copyreg`` and ``pickle`` documentation (``__reduce__`` tuples).
"""

from __future__ import annotations

import copyreg
from typing import Any

from engine.ops import op_by_name
from engine.value import Value, topological_order


def reduce_value(value: Value) -> tuple[Any, ...]:
    """``(rebuild, args)`` for ``value``: a leaf as its data, gradient and label; an interior
    node as the flat records of its graph (see the module docstring)."""
    if value.op is None:
        return (_leaf, (value.data, value.grad, value.label))
    position: dict[Value, int] = {}
    records: list[Any] = []
    for node in topological_order(value):
        position[node] = len(records)
        if node.op is None:
            records.append(node)
        else:
            records.append((node.data, node.grad, node.label, node.op.name,
                            [position[p] for p in node.parents]))
    return (_rebuild, (records,))


def _leaf(data: float, grad: Any, label: str | None) -> Value:
    leaf = Value(data, label)
    leaf.grad = grad
    return leaf


def _rebuild(records: list[Any]) -> Value:
    """The inverse of :func:`reduce_value`: the graph from its flat records."""
    nodes: list[Value] = []
    for record in records:
        if isinstance(record, Value):
            nodes.append(record)
            continue
        data, grad, label, name, positions = record
        op = op_by_name(name)
        parents = [nodes[i] for i in positions]
        node = Value(data, label)
        node.grad = grad
        node.op = op
        if op.arity == 0 or len(parents) > 2:
            node._a = tuple(parents)
        else:
            node._a = parents[0]
            node._b = parents[1] if len(parents) == 2 else None
        nodes.append(node)
    return nodes[-1]


copyreg.pickle(Value, reduce_value)
