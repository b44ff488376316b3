"""Blame: when a gradient check fails, find the op (or the part of the backward pass) at fault.

Every node's local derivatives are re-checked at its actual inputs against the op's own
forward function (or its mpmath definition); then each op is probed for using its upstream
gradient and for adding (not assigning) into its parents; then, for second derivatives, each
op's derivative on the ``create_graph`` path. The first culprit is named by op name (an op made
by :func:`engine.define_op` too); if every op is right, the fault is the backward pass itself.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from engine.numeric import EPS, Budget, Estimate, central_at, central_first, complex_is_nan, exact
from engine.ops import OPS, Op
from engine.report import Blame
from engine.value import Value, node_names, topological_order

SEED_GRADIENT = 0.7390851332151607  # a "random" upstream gradient: no power of two, no pattern


def mp_reference(op: Op) -> Callable[..., Any]:
    """The op's forward in mpmath, ``reference(mp, *operands)``.

    Raises:
        ValueError: the op has none (an op of yours defined without ``reference=``).
    """
    if op.reference is None:
        raise ValueError(f"reference='exact' needs every op's forward in mpmath, and op {op.name} has "
                         f"none: pass reference=lambda mp, ...: ... to engine.define_op, or use "
                         f"reference='central'")
    return op.reference


def at_kink(node: Value, distance: float = 1e-6, mp: Any = None, budget: Budget | None = None) -> bool:
    """True when ``node``'s op is not differentiable within ``distance`` (relative) of its
    operands: relu or abs at 0, maximum or minimum at a tie. Found numerically from the op's
    forward function (one-sided differences), so it holds for any op of the table. With ``mp``
    (mpmath), from the op's mpmath definition at the node's inputs instead: float differences
    cannot follow sin at 2**60, where a step of 1e-6·|x| spans many periods."""
    op = node.op
    if op is None:
        return False
    args = [p.data for p in node.parents]
    if mp is not None:
        return any(_local_reference(op, args, k, mp, budget).kink for k in range(len(args)))
    for k, a in enumerate(args):
        def along(t: float, k: int = k) -> float:
            return op.forward(*(args[:k] + [t] + args[k + 1:]))

        if central_at(along, a, distance * max(1.0, abs(a))).kink:
            return True
    return False


def _local_reference(op: Op, args: list[float], k: int, mp: Any, budget: Budget | None = None) -> Estimate:
    """∂op/∂operand_k at ``args``, from the op's forward (or mpmath reference) alone."""

    def along(t: float) -> float:
        return op.forward(*(args[:k] + [t] + args[k + 1:]))

    if mp is None:
        return central_first(along, args[k], EPS ** (1 / 3) * max(1.0, abs(args[k])))
    return exact(mp, complex_is_nan(mp, lambda *p: mp_reference(op)(mp, *p)), [mp.mpf(a) for a in args],
                  tuple(int(i == k) for i in range(len(args))), budget=budget)


def _local_ok(engine: float, est: Estimate) -> bool:
    if not est.finite or not math.isfinite(engine):
        return True  # nothing to say here
    if est.kink:
        return min(est.left, est.right) - 1e-6 <= engine <= max(est.left, est.right) + 1e-6
    return abs(engine - est.value) <= 1e-6 * abs(est.value) + 4 * est.truncation + 1e-300


def blame(root: Value, mp: Any, failed_orders: list[int], budget: Budget | None = None) -> list[Blame]:
    """The first culprit: an op's local derivative at some node (checked for every node first,
    since the probes below run through other ops), then each op's use of the upstream
    gradient and accumulation into parents, then second-order rules; else the backward pass.
    ``mp``: mpmath for the exact reference (within ``budget``), or None for central differences."""
    names = node_names(root)
    interior = [node for node in topological_order(root) if node.op is not None]
    locals_at: dict[Value, list[float]] = {}
    for node in interior:
        op = node.op
        assert op is not None
        args = [p.data for p in node.parents]
        local = [float(d.data if isinstance(d, Value) else d) for d in op.derivative(*args, node.data)]
        locals_at[node] = local
        for k, d in enumerate(local):
            est = _local_reference(op, args, k, mp, budget)
            if not _local_ok(d, est):
                where = f"input {_args(args)}" + (f", operand {k + 1}" if len(args) > 1 else "")
                return [Blame(f"{op.name} at node {names[node]}, {where}: engine {d:.6g}, "
                              f"expected {est.value:.6g}", "local derivative", op.name, names[node])]
    for node in interior:  # the create_graph path must compute the same local derivatives
        op = node.op
        assert op is not None
        leaves = [Value(p.data) for p in node.parents]
        recorded = [d.data if isinstance(d, Value) else float(d)
                    for d in op.derivative(*leaves, op(*leaves))]
        for k, (r, d) in enumerate(zip(recorded, locals_at[node])):
            if math.isfinite(d) and abs(r - d) > 16 * EPS * abs(d) + 1e-300:
                return [Blame(f"{op.name} at node {names[node]}, input {_args([v.data for v in leaves])}: "
                              f"on the create_graph path its local derivative (operand {k + 1}) is {r:.6g}, "
                              f"on floats {d:.6g}", "second order", op.name, names[node])]
    probed: set[str] = set()
    for node in interior:
        op = node.op
        assert op is not None
        if op.name in probed:
            continue
        probed.add(op.name)
        problem = _probe_backward(op, [p.data for p in node.parents], locals_at[node])
        if problem:
            kind, text = problem
            return [Blame(f"{op.name} at node {names[node]}: {text}", kind,
                          op.name if kind == "upstream" else None, names[node])]
    if 2 in failed_orders:
        second = _blame_second_order(root, names)
        if second:
            return [second]
    return [Blame("every op's local derivative is right at its inputs, but the total is wrong: the "
                  "fault is in the backward pass itself (how gradients are accumulated or the order "
                  "nodes are visited in), not in an op", "backward pass")]


def _args(args: list[float]) -> str:
    return ", ".join(f"{a:.6g}" for a in args)


def _probe_backward(op: Op, args: list[float], local: list[float]) -> tuple[str, str] | None:
    """Run the engine's backward pass through one node of ``op`` on fresh leaves: it must pass
    ``upstream × local`` to each parent, and add to (not replace) what a parent already has."""
    if not all(math.isfinite(v) for v in (*args, *local)):
        return None
    leaves = [Value(a) for a in args]
    out = op(*leaves)
    out.backward(gradient=SEED_GRADIENT)
    for k, (leaf, d) in enumerate(zip(leaves, local)):
        want = SEED_GRADIENT * d
        if abs(leaf.grad - want) > 1e-9 * abs(want) + 1e-300:
            return ("upstream", f"the backward pass does not use the upstream gradient here: with "
                    f"upstream {SEED_GRADIENT:.4f}, operand {k + 1} got {leaf.grad:.6g}, "
                    f"expected {want:.6g}")
    leaves = [Value(a) for a in args]
    total = op(*leaves) + _sum_leaves(leaves)  # every leaf is used twice: gradients must add up
    total.backward()
    for k, (leaf, d) in enumerate(zip(leaves, local)):
        if abs(leaf.grad - (d + 1.0)) > 1e-9 * abs(d + 1.0) + 1e-300:
            return ("accumulation", f"the backward pass assigns instead of adding into a parent "
                    f"(operand {k + 1}): got {leaf.grad:.6g}, expected {d:.6g} + 1 = {d + 1.0:.6g}")
    return None


def _sum_leaves(leaves: list[Value]) -> Value:
    return OPS["sum"](*leaves) if len(leaves) > 1 else leaves[0] * 1.0


def _blame_second_order(root: Value, names: dict[Value, str]) -> Blame | None:
    """Check each op's local derivatives as functions (the create_graph path): their own
    derivatives, computed by the engine, against central differences of the float rule."""
    for node in topological_order(root):
        op = node.op
        if op is None:
            continue
        args = [p.data for p in node.parents]
        for k in range(len(args)):
            for j in range(len(args)):
                leaves = [Value(a) for a in args]
                d = op.derivative(*leaves, op(*leaves))[k]
                engine = 0.0
                if isinstance(d, Value):
                    d.backward()
                    engine = leaves[j].grad

                def along(t: float, k: int = k, j: int = j, op: Op = op, args: list[float] = args) -> float:
                    point = args[:j] + [t] + args[j + 1:]
                    return float(op.derivative(*point, op.forward(*point))[k])

                est = central_first(along, args[j], EPS ** (1 / 3) * max(1.0, abs(args[j])))
                if not _local_ok(engine, est):
                    return Blame(f"{op.name} at node {names[node]}, input {_args(args)}: the derivative of "
                                 f"its local derivative ∂/∂operand {k + 1} with respect to operand {j + 1} "
                                 f"(the create_graph path) is {engine:.6g}, expected {est.value:.6g}",
                                 "second order", op.name, names[node])
    return None
