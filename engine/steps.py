"""The forward and backward pass one node at a time, as frames to read, print or draw.

    >>> from engine import Value
    >>> from engine.steps import backward_steps
    >>> w, x = Value(-3.0, "w"), Value(2.0, "x")
    >>> z = w * x
    >>> for step in backward_steps(z):
    ...     print(step.caption)
    start: ∂L/∂%2 = 1
    ∂L/∂w += ∂L/∂%2 · ∂%2/∂w = 1 · 2 = 2;  ∂L/∂x += ∂L/∂%2 · ∂%2/∂x = 1 · -3 = -3

``L`` is the root (the loss); a node is named by its label or ``%k``, its position in
topological order. The frames are computed from the op table's local derivatives, in the order
``backward()`` visits the nodes, with the same arithmetic, so the last frame's gradients equal
what ``root.backward()`` gives. The graph itself is not changed (no ``.grad`` is written).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from engine.value import Value, chain_rule_steps, node_names, topological_order


@dataclass
class BackwardStep:
    """One step of the backward pass.

    Attributes:
        index: 0 for the start (the seed gradient at the root), then 1, 2, ...
        node: the node whose upstream gradient is passed on (the root at step 0).
        name: its label or ``%k``.
        upstream: ∂L/∂node, complete when the step runs (reverse topological order).
        local: the local derivatives ∂node/∂parentᵢ (empty at step 0).
        contributions: ``(parent, upstream · local)`` for each parent, in operand order.
        grads: every node's gradient as it stands after this step.
        caption: the chain-rule products of this step, as text.
    """

    index: int
    node: Value
    name: str
    upstream: float
    local: tuple[float, ...] = ()
    contributions: tuple[tuple[Value, float], ...] = ()
    grads: dict[Value, float] = field(default_factory=dict)
    caption: str = ""


@dataclass
class ForwardStep:
    """One step of the forward pass: a node's value from its parents' values.

    Attributes:
        index: the node's position in topological order. node, name: the node and its name.
        inputs: the parents' values (empty for a leaf). output: the node's value.
        caption: e.g. ``%3 = tanh(%2) = tanh(0.88) = 0.7064``.
    """

    index: int
    node: Value
    name: str
    inputs: tuple[float, ...]
    output: float
    caption: str


def _g(x: float) -> str:
    return f"{x:.4g}"


def backward_steps(root: Value, gradient: float = 1.0) -> Iterator[BackwardStep]:
    """Yield the backward pass from ``root`` as frames: the start, then one per interior node
    in reverse topological order (leaves pass nothing on).

    Args:
        root: the output; gradient: ∂L/∂root to start from (1 for a loss).

    Raises:
        TypeError: ``root`` is not a Value.
    """
    if not isinstance(root, Value):
        raise TypeError(f"backward_steps needs a Value, got {type(root).__name__}")
    order = topological_order(root)
    names = node_names(root)
    grads = {node: 0.0 for node in order}
    grads[root] = float(gradient)
    yield BackwardStep(0, root, names[root], grads[root], grads=dict(grads),
                       caption=f"start: ∂L/∂{names[root]} = {_g(grads[root])}")
    for step, (node, parents, derivatives) in enumerate(chain_rule_steps(order), start=1):
        upstream = grads[node]
        local = tuple(float(d) for d in derivatives)
        contributions = []
        texts = []
        for parent, d in zip(parents, local):
            amount = upstream * d
            grads[parent] += amount
            contributions.append((parent, amount))
            texts.append(f"∂L/∂{names[parent]} += ∂L/∂{names[node]} · ∂{names[node]}/∂{names[parent]} = "
                         f"{_g(upstream)} · {_g(d)} = {_g(amount)}")
        yield BackwardStep(step, node, names[node], upstream, local, tuple(contributions), dict(grads),
                           ";  ".join(texts))


def forward_steps(root: Value) -> Iterator[ForwardStep]:
    """Yield the forward pass that made ``root``: every node in topological order (the order it
    was computed in, parents first), with the values that went in and came out.

    Raises:
        TypeError: ``root`` is not a Value.
    """
    if not isinstance(root, Value):
        raise TypeError(f"forward_steps needs a Value, got {type(root).__name__}")
    names = node_names(root)
    for k, node in enumerate(topological_order(root)):
        if node.op is None:
            yield ForwardStep(k, node, names[node], (), node.data, f"{names[node]} = {_g(node.data)} (leaf)")
            continue
        inputs = tuple(p.data for p in node.parents)
        args = ", ".join(names[p] for p in node.parents)
        values = ", ".join(_g(v) for v in inputs)
        caption = f"{names[node]} = {node.op.name}({args}) = {node.op.name}({values}) = {_g(node.data)}"
        yield ForwardStep(k, node, names[node], inputs, node.data, caption)
