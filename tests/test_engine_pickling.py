"""Pickling and deep-copying graphs after ``backward(create_graph=True)``: a gradient is a Value
with a graph of its own, reached through ``.grad``, and gradients of gradients reach further.

The function: ``z = (x·aᴺ)³`` built as a chain of N multiplications by one shared leaf ``a``
(``a = 1``, so every number below is exact), then cubed. By hand, with ``z = x³·a³ᴺ``:

    ∂z/∂x = 3x²·a³ᴺ,    ∂²z/∂x² = 6x·a³ᴺ,    ∂³z/∂x³ = 6·a³ᴺ,    ∂⁴z/∂x⁴ = 0,

and each of these differentiated by ``a`` (at a = 1): ∂z/∂a = 3N·x³, then 9N·x², 18N·x, 18N.
At x = 2: z = 8; ∂z/∂x = 12, ∂²z/∂x² = 12, ∂³z/∂x³ = 6; by ``a``: 24N, 36N, 36N, 18N.
"""

from __future__ import annotations

import copy
import pickle
from typing import Any

import pytest

from engine import Value

N = 20_000  # chain length: far beyond the recursion limit of 1000 (5,000 for three levels,
# whose graphs hold 1.1 million nodes at 20,000)
X = 2.0
DERIVATIVES = [8.0, 12.0, 12.0, 6.0, 0.0]  # z, ∂z/∂x, ∂²z/∂x², ∂³z/∂x³, ∂⁴z/∂x⁴ at x = 2


def by_a(n: int) -> list[float]:
    """∂/∂a of ∂ᵏz/∂xᵏ, k = 0, 1, 2, 3, for a chain of n."""
    return [24.0 * n, 36.0 * n, 36.0 * n, 18.0 * n]


COPIERS = {  # (protocol 2 is the same code: tests/test_engine_backward.py runs it on small graphs)
    "pickle": lambda v: pickle.loads(pickle.dumps(v, protocol=pickle.HIGHEST_PROTOCOL)),
    "deepcopy": copy.deepcopy,
}


def graph_with_gradients(depth: int, n: int = N) -> dict[str, Any]:
    """z on a chain of n, then ``depth`` levels of ``backward(create_graph=True)``: level k
    differentiates the gradient of level k − 1, so ``grads[k]`` is ∂ᵏz/∂xᵏ as a graph."""
    x, a = Value(X, "x"), Value(1.0, "a")
    y = x
    for _ in range(n):
        y = y * a
    z = y * y * y
    grads = [z]
    for _ in range(depth):
        x.grad = a.grad = 0.0  # each level fresh, not added to the level before
        grads[-1].backward(create_graph=True)
        grads.append(x.grad)
    return {"x": x, "a": a, "y": y, "grads": grads}


def chain_nodes(y: Value) -> list[Value]:
    """The chain's N multiplication nodes, from the top (y) down to the first."""
    nodes = []
    while y.op is not None:
        nodes.append(y)
        y = y.parents[0]
    return nodes


@pytest.fixture(scope="module", params=[(1, N), (2, N), (3, 5_000)], ids=["depth1", "depth2", "depth3"])
def deep(request: pytest.FixtureRequest) -> tuple[int, int, dict[str, Any]]:
    """(depth, chain length, graph): built once for the copiers (the copies leave it as it is)."""
    depth, n = request.param
    return depth, n, graph_with_gradients(depth, n)


@pytest.mark.parametrize("how", sorted(COPIERS))
def test_a_deep_graph_with_gradients_of_gradients_copies_whole(deep: Any, how: str) -> None:
    depth, n, original = deep
    clone = COPIERS[how](original)
    x, a, y, grads = clone["x"], clone["a"], clone["y"], clone["grads"]

    # data and gradients: each level's number, and the leaves' gradients of the last level
    assert [g.data for g in grads] == DERIVATIVES[:depth + 1]
    assert x.grad is grads[-1]  # the leaf's gradient is the very graph in the list
    assert isinstance(a.grad, Value) and a.grad.data == by_a(n)[depth - 1]  # (of the last level)
    # identities: the chain ends at this x; the one leaf a is every multiplication's operand
    nodes = chain_nodes(y)
    assert len(nodes) == n and nodes[-1].parents[0] is x
    assert all(node.parents[1] is a for node in nodes)
    assert grads[0].parents[1] is y and grads[0].parents[0].parents == (y, y)
    assert x is not original["x"] and a is not original["a"]
    # every chain node's gradient kept its number (those of the original, node for node)
    for mine, theirs in zip(nodes, chain_nodes(original["y"])):
        assert type(mine.grad) is Value and mine.grad.data == theirs.grad.data

    # the copied gradient is a working graph: differentiating it gives the next level
    x.grad = a.grad = 0.0
    grads[-1].backward()
    assert x.grad == DERIVATIVES[depth + 1] and a.grad == by_a(n)[depth]
    assert original["x"].grad is original["grads"][-1]  # the original is untouched


@pytest.mark.parametrize("how", sorted(COPIERS))
def test_a_leaf_with_a_gradient_graph_copied_alone_or_after_its_graph(how: str) -> None:
    original = graph_with_gradients(2, 2_000)
    x_alone = COPIERS[how](original["x"])  # just the leaf: its gradient's graph comes with it
    assert x_alone.grad.data == 12.0  # ∂²z/∂x² at x = 2
    x_alone.grad.backward()
    assert isinstance(x_alone.grad, Value)  # (accumulated: the old gradient graph + 6)
    assert x_alone.grad.data == 18.0  # 12 + ∂³z/∂x³ = 12 + 6
    # listed after the graph, in the same copy: the one x, and the one gradient graph
    z, g1, g2, x = COPIERS[how]([*original["grads"], original["x"]])
    assert x.grad is g2 and chain_nodes(z.parents[1])[-1].parents[0] is x


def test_a_hundred_thousand_node_chain_with_its_gradient_graph() -> None:
    x = Value(0.5, "x")
    y = x
    for _ in range(100_000):
        y = y + x  # y = 100001·x
    y.backward(create_graph=True)  # x.grad: a graph of 700,000 nodes (100,001 ones added up)
    y2, x2 = pickle.loads(pickle.dumps([y, x]))
    assert y2.data == 100_001 * 0.5 and x2.grad.data == 100_001.0
    x2.grad = 0.0
    y2.backward()
    assert x2.grad == 100_001.0
