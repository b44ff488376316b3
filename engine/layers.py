"""Finding the layers of a traced program, for batched replay (:mod:`engine.batch`).

A neuron in a program is a ``sum`` of ``mul`` s, each multiplying a parameter (a weight) by a
varying slot, plus at most one parameter (the bias). Neurons that read the same inputs in the
same order form a layer, which batched replay computes as one matrix product.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from engine.ops import Op


@dataclass
class LoweredLayer:
    """Neurons sharing their inputs, lowered to one matrix product (see the module docstring)."""

    number: int
    inputs: tuple[int, ...]  # the shared input slots, in order
    sums: list[int]  # each neuron's sum slot
    weights: list[list[int]]  # per neuron, the parameter index of each input's weight
    biases: list[int] | None  # per neuron, the parameter index of its bias
    activation: Op | None = None
    outputs: list[int] = field(default_factory=list)  # the activation's slots, else the sums


def _neuron(p: Any, instruction: Any, by_slot: dict[int, Any], uses: list[int],
            varying: list[bool]) -> tuple[tuple[int, ...], list[int], int | None] | None:
    """``(inputs, weight indices, bias index)`` if the instruction is a neuron's sum."""
    n_in = len(p.inputs)
    if instruction.op.name != "sum":
        return None
    inputs, weights, bias = [], [], None
    for a in instruction.args:
        mul = by_slot.get(a)
        if mul is not None and mul.op.name == "mul" and uses[a] == 1:
            u, v = mul.args
            if p.kind(u) == "param" and varying[v]:
                weights.append(u - n_in)
                inputs.append(v)
                continue
            if p.kind(v) == "param" and varying[u]:
                weights.append(v - n_in)
                inputs.append(u)
                continue
        if p.kind(a) == "param" and bias is None:
            bias = a - n_in
            continue
        return None
    return (tuple(inputs), weights, bias) if inputs else None

def find_layers(p: Any, by_slot: dict[int, Any], uses: list[int], varying: list[bool]) -> list[LoweredLayer]:
    """The layers of a program: its neurons (a ``sum`` of ``parameter × varying slot``
    products, plus at most one parameter, the bias) grouped by their inputs, each with the
    unary op every one of its sums feeds alone (its activation), if there is one.

    Args:
        p: the :class:`~engine.program.Program`. by_slot: its instructions by slot.
        uses: how many times each slot is read. varying: whether each slot differs by sample.
    """
    groups: dict[tuple[tuple[int, ...], bool], LoweredLayer] = {}
    for i in p.instructions:
        neuron = _neuron(p, i, by_slot, uses, varying)
        if neuron is None:
            continue
        inputs, weights, bias = neuron
        key = (inputs, bias is not None)
        layer = groups.get(key)
        if layer is None:
            biases: list[int] | None = [] if bias is not None else None
            layer = groups[key] = LoweredLayer(len(groups), inputs, [], [], biases)
        layer.sums.append(i.slot)
        layer.weights.append(weights)
        if layer.biases is not None and bias is not None:
            layer.biases.append(bias)
    consumers: dict[int, list[Any]] = {}
    for i in p.instructions:
        for a in i.args:
            consumers.setdefault(a, []).append(i)
    for layer in groups.values():
        layer.outputs = list(layer.sums)
        after = [consumers.get(s, []) for s in layer.sums]
        if all(len(c) == 1 and uses[s] == 1 for c, s in zip(after, layer.sums)):
            ops = {c[0].op for c in after}
            if len(ops) == 1 and next(iter(ops)).arity == 1:
                layer.activation = after[0][0].op
                layer.outputs = [c[0].slot for c in after]
    return list(groups.values())


def strided_slice(indices: list[Any], size: int) -> str | None:
    """The basic slice of a vector of ``size`` that picks exactly ``indices`` (a list of rows of
    ints, or of ints) when they are evenly spaced: ``indices[i][j] == first + stride·i + j``
    with ``stride >= len(indices[0])``, or ``indices[i] == first + stride·i``; else None."""
    matrix = isinstance(indices[0], list)
    rows, cols = len(indices), len(indices[0]) if matrix else 1
    first = indices[0][0] if matrix else indices[0]
    stride = (indices[1][0] if matrix else indices[1]) - first if rows > 1 else cols
    expected = [list(range(first + stride * i, first + stride * i + cols)) if matrix else first + stride * i
                for i in range(rows)]
    if stride < cols or indices != expected or (matrix and first + stride * rows > size):
        return None  # (a matrix's last row of padding must not run past the end, for reshape)
    if not matrix:
        return f"[{first}:{first + stride * (rows - 1) + 1}" + (f":{stride}]" if stride > 1 else "]")
    # (ends in a subscript even when stride == cols: `G[...] += ...` needs one)
    return f"[{first}:{first + stride * rows}].reshape({rows}, {stride})[:, :{cols}]"
