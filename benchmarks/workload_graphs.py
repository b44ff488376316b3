"""Graphs that either engine builds the same way: a seeded random program of ops (measurements
1 and 3) and a long chain (measurement 4).

An :class:`OpProgram` is chains of ops, each starting from one of a pool of shared leaves,
joined by a balanced tree of ``+`` so that micrograd's recursive backward works at the default
recursion limit. It is drawn on plain floats first, so no value leaves ``[-1000, 1000]``.
(Not to be confused with :class:`engine.Program`, a traced graph.)
"""

from __future__ import annotations

import operator
import random
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import engine

LANE_LENGTH = 100  # ops per chain in the graphs of measurements 1 and 3
VALUE_BOUND = 1e3  # no value of the mixed program leaves [-VALUE_BOUND, VALUE_BOUND]


@dataclass(frozen=True)
class Engine:
    """What the benchmark needs to know about an engine: its leaf constructor and how to
    walk from a node to its operands."""

    name: str
    leaf: Callable[[float], Any]
    parents: Callable[[Any], Iterable[Any]]


def micrograd_leaf(x: float) -> Any:
    """A micrograd ``Value`` (micrograd is imported when first needed: the tests of what runs on
    valuegrad alone run without it)."""
    from micrograd.engine import Value  # type: ignore[import-untyped]

    return Value(x)


OURS = Engine("valuegrad", engine.Value, lambda v: v.parents)
MICRO = Engine("micrograd", micrograd_leaf, lambda v: v._prev)
ENGINES = (OURS, MICRO)


def _square(x: Any, _: Any) -> Any:
    return x**2


def _relu(x: Any, _: Any) -> Any:
    return x.relu()


def _neg(x: Any, _: Any) -> Any:
    return -x


# Each step is ``fn(x, operand)``: on the engines' Values, and on floats to draw the program.
BINARY = {"add": operator.add, "sub": operator.sub, "mul": operator.mul, "div": operator.truediv}
UNARY = {"square": _square, "relu": _relu, "neg": _neg}
ON_FLOATS: dict[str, Callable[[float, float], float]] = {
    **BINARY, "square": lambda x, _: x * x, "relu": lambda x, _: x if x > 0.0 else 0.0,
    "neg": lambda x, _: -x,
}
MIXED_OPS = (*BINARY, *UNARY)  # only ops that micrograd has
ADD_MUL = ("add", "mul")  # one node per op in both engines


@dataclass(frozen=True)
class OpProgram:
    """Chains of ops on a pool of shared leaves, then a balanced tree of ``+`` over the chain
    ends. ``lanes`` holds, per chain, its starting leaf and its ``(op, leaf index)`` steps."""

    leaves: list[float]
    lanes: list[tuple[int, list[tuple[str, int]]]]

    @property
    def n_ops(self) -> int:
        return sum(len(steps) for _, steps in self.lanes) + len(self.lanes) - 1


def make_op_program(n_ops: int, ops: Sequence[str], seed: int, n_leaves: int = 64) -> OpProgram:
    """A program of exactly ``n_ops`` ops, drawn from ``ops``; each draw that would take a
    value out of ``[-VALUE_BOUND, VALUE_BOUND]`` is redrawn (``relu`` is the fallback)."""
    rng = random.Random(seed)
    leaves = [rng.choice((-1.0, 1.0)) * rng.uniform(0.5, 1.5) for _ in range(n_leaves)]
    n_lanes = max(1, n_ops // LANE_LENGTH)
    lane_ops, extra = divmod(n_ops - (n_lanes - 1), n_lanes)  # the tree adds n_lanes - 1 ops
    lanes = []
    for lane in range(n_lanes):
        start = lane % n_leaves
        x = leaves[start]
        steps = []
        for _ in range(lane_ops + (lane < extra)):
            for _attempt in range(20):
                op, k = rng.choice(ops), rng.randrange(n_leaves)
                y = ON_FLOATS[op](x, leaves[k])
                if abs(y) <= VALUE_BOUND:
                    break
            else:
                op, k, y = "relu", 0, ON_FLOATS["relu"](x, 0.0)
            steps.append((op, k))
            x = y
        lanes.append((start, steps))
    return OpProgram(leaves, lanes)


Bound = tuple[list[Any], list[tuple[Any, list[tuple[Callable[[Any, Any], Any], Any]]]]]


def bind_program(program: OpProgram, eng: Engine) -> Bound:
    """Fresh leaves of ``eng`` and the steps bound to them, made before any clock starts."""
    leaves = [eng.leaf(v) for v in program.leaves]
    lanes = [(leaves[start], [(BINARY[op], leaves[k]) if op in BINARY else (UNARY[op], None)
                              for op, k in steps])
             for start, steps in program.lanes]
    return leaves, lanes


def run_program(bound: Bound) -> Any:
    """Build the graph (the forward pass) and return its root."""
    ends = []
    for x, steps in bound[1]:
        for fn, operand in steps:
            x = fn(x, operand)
        ends.append(x)
    while len(ends) > 1:  # a balanced tree of +, so the graph stays shallow
        pairs = [ends[i] + ends[i + 1] for i in range(0, len(ends) - 1, 2)]
        ends = pairs + ends[-1:] if len(ends) % 2 else pairs
    return ends[0]


def count_values(root: Any, eng: Engine) -> int:
    """How many Value objects the graph below ``root`` holds (leaves and constants included)."""
    seen = {id(root)}
    stack = [root]
    while stack:
        for parent in eng.parents(stack.pop()):
            if id(parent) not in seen:
                seen.add(id(parent))
                stack.append(parent)
    return len(seen)


def chain(eng: Engine, depth: int) -> tuple[Any, list[Any]]:
    """A chain of ``depth`` ops, alternating ``x * a`` and ``x + b``; returns (end, leaves)."""
    a, b = eng.leaf(0.5), eng.leaf(0.25)
    x = eng.leaf(1.0)
    for i in range(depth):
        x = x * a if i % 2 == 0 else x + b
    return x, [a, b]
