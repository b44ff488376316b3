"""Pickling and copying Values, of any depth, without recursion.

``pickle`` and ``copy.deepcopy`` would follow a node's parents recursively, one Python frame
per node, and fail on a deep graph (a chain of a million nodes); after
``backward(create_graph=True)`` they would also follow each ``.grad``, a Value with a graph of
its own. Registered here with ``copyreg`` (which both consult), a Value is saved instead as a
node of a :class:`_Graph`: everything it reaches through parents and ``.grad``, flat, parents
before children, each node naming its parents and its gradient by position. Only two kinds
of objects are left for pickle to save one by one, neither recursing: leaves whose gradient
is a number, saved as themselves, so that a leaf referenced elsewhere too (a model's weight)
stays one shared object after loading; and other graphs.

Every Value of one pickling (one ``pickle.dumps``, one ``deepcopy``) reached through a graph
already made in it is saved as a position in that graph, so a node listed twice, a leaf and
its gradient listed apart, or two gradients sharing a graph, stay shared after loading. (A
graph is found again while pickle holds it, that is during that one pickling: it then drops
it, and the graph forgets its nodes.) Ops are saved by name (:meth:`engine.ops.Op.__reduce__`).

Reference: the ``copyreg``, ``pickle`` and ``copy`` documentation (``__reduce__`` tuples, the
memo that keeps one copy per object).
"""

from __future__ import annotations

import copy
import copyreg
import weakref
from collections.abc import Iterator
from typing import Any

from engine.ops import op_by_name
from engine.value import Value

# The node -> (graph, position) of every node of a graph still held by a pickling.
_homes: dict[Value, tuple[weakref.ref[_Graph], int]] = {}


class _Graph:
    """Everything ``root`` reaches through parents and Value gradients, as flat records:
    ``records[k]`` is a plain leaf (itself), ``(graph, i)`` for a node another graph holds, or
    ``(data, grad, label, op name, parent positions)``, with ``grad`` None when it is a Value,
    whose position is in ``links`` as ``(k, position)``. Parents come before children."""

    __slots__ = ("records", "links", "__weakref__")

    def __init__(self, root: Value) -> None:
        position: dict[Value, int] = {}
        self.records: list[Any] = []
        gradients: list[tuple[int, Value]] = []  # (a node's position, its Value gradient)
        mine: list[Value] = []  # the nodes this graph makes (not plain leaves, not others')
        for node in _flat(root, position):
            home = _homes.get(node)
            if home is not None:
                self.records.append((home[0](), home[1]))  # (alive: dropped graphs are forgotten)
            elif node.op is None and not isinstance(node.grad, Value):
                self.records.append(node)
            else:
                grad = node.grad
                if isinstance(grad, Value):
                    gradients.append((len(self.records), grad))
                    grad = None
                name = node.op.name if node.op is not None else None
                self.records.append((node.data, grad, node.label, name, [position[p] for p in node.parents]))
                mine.append(node)
        self.links = [(k, position[grad]) for k, grad in gradients]
        # Known to the rest of this pickling, until pickle drops the graph.
        ref = weakref.ref(self)
        for node in mine:
            _homes[node] = (ref, position[node])
        weakref.finalize(self, _forget, ref, mine)

    def __deepcopy__(self, memo: dict[int, Any]) -> list[Value]:
        # Speed: the records of its own nodes hold only numbers, strings and lists of positions,
        # which loading does not change; only leaves and other graphs are copied.
        return _rebuild_nodes([r if type(r) is tuple and len(r) == 5 else copy.deepcopy(r, memo)
                               for r in self.records], self.links)

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild_nodes, (self.records, self.links))


def _flat(root: Value, position: dict[Value, int]) -> Iterator[Value]:
    """Every node ``root`` reaches through parents and Value gradients, once each, parents
    first (a depth-first search with a stack, as :func:`engine.value.topological_order`); a
    node another graph of this pickling holds is yielded but not entered. Fills ``position``."""
    seen: set[Value] = set()
    starts = [root]  # the root, then each Value gradient met on the way
    while starts:
        start = starts.pop()
        if start in seen:  # (a gradient is often a node met already)
            continue
        seen.add(start)
        stack = [(start, iter(() if start in _homes else start.parents))]
        while stack:
            node, unvisited_parents = stack[-1]
            for parent in unvisited_parents:
                if parent not in seen:
                    seen.add(parent)
                    stack.append((parent, iter(() if parent in _homes else parent.parents)))
                    break  # descend first; come back to this node's remaining parents later
            else:  # all its parents are placed: the node can follow them
                stack.pop()
                position[node] = len(position)
                yield node
                if isinstance(node.grad, Value) and node not in _homes:
                    starts.append(node.grad)


def _home(node: Value) -> tuple[_Graph, int] | None:
    """``(graph, position)`` if a graph of a pickling in progress holds ``node``, else None."""
    home = _homes.get(node)
    graph = home[0]() if home is not None else None
    return (graph, home[1]) if graph is not None and home is not None else None


def _forget(ref: weakref.ref[_Graph], nodes: list[Value]) -> None:
    for node in nodes:
        if _homes.get(node, (None,))[0] is ref:
            del _homes[node]


def reduce_value(value: Value) -> tuple[Any, ...]:
    """``(rebuild, args)`` for ``value``: a leaf whose gradient is a number as its data,
    gradient and label; any other Value as its position in its :class:`_Graph`."""
    if value.op is None and not isinstance(value.grad, Value):
        return (_leaf, (value.data, value.grad, value.label))
    home = _home(value)
    if home is None:
        graph = _Graph(value)
        home = graph, _homes[value][1]
    return (_node_at, home)


def _leaf(data: float, grad: Any, label: str | None) -> Value:
    leaf = Value(data, label)
    leaf.grad = grad
    return leaf


def _node_at(nodes: list[Value] | _Graph, k: int) -> Value:
    """The node at position ``k`` of a loaded graph (a :class:`_Graph` itself for ``copy.copy``,
    which does not copy arguments: its copy is made here)."""
    if isinstance(nodes, _Graph):
        nodes = _rebuild_nodes(nodes.records, nodes.links)
    return nodes[k]


def _rebuild_nodes(records: list[Any], links: list[tuple[int, int]]) -> list[Value]:
    """The inverse of :class:`_Graph`: its nodes, made from its records."""
    nodes: list[Value] = []
    for record in records:
        if isinstance(record, Value):
            nodes.append(record)
            continue
        if len(record) == 2:  # a node of another graph, made before this one
            graph, k = record
            nodes.append(_node_at(graph, k))
            continue
        data, grad, label, name, positions = record
        node = Value(data, label)
        node.grad = grad
        if name is not None:
            op = node.op = op_by_name(name)
            parents = [nodes[i] for i in positions]
            if op.arity == 0 or len(parents) > 2:
                node._a = tuple(parents)
            else:
                node._a = parents[0]
                node._b = parents[1] if len(parents) == 2 else None
        nodes.append(node)
    for k, g in links:
        nodes[k].grad = nodes[g]
    return nodes


def _rebuild(records: list[Any]) -> Value:
    """Load a graph pickled before gradients' graphs were saved too (its root last)."""
    return _rebuild_nodes(records, [])[-1]


copyreg.pickle(Value, reduce_value)
