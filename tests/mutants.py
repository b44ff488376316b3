"""Proof that the gradient checks can fail: plant faults in the engine, one at a time, and make
the property tests with ``gradcheck`` find each one, shrink it, and blame the right culprit.

``make mutants`` runs every op of the table under four faults and prints a table:

- ``scaled``: the op's local derivatives are multiplied by 1.001;
- ``sign``: the op's local derivatives have their sign flipped;
- ``upstream``: the backward pass passes the local derivative alone, ignoring the upstream
  gradient, for this op's nodes;
- ``assign``: the backward pass assigns (``=``) instead of adding (``+=``) into the parents of
  this op's nodes.

A mutant is caught when hypothesis finds an expression on which ``gradcheck`` fails. The
expression hypothesis shrinks it to must have at most three ops, and the blame must name the
op (the backward pass for ``assign``). ``tests/test_mutants.py`` runs a short form of this
inside ``make test``.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from hypothesis import HealthCheck, find, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from hypothesis.errors import NoSuchExample  # noqa: E402

import engine.value as engine_value  # noqa: E402
from engine import OPS, Value, gradcheck  # noqa: E402
from engine.testing import expressions, graphs, points  # noqa: E402
from engine.value import chain_rule_steps  # noqa: E402

FAULTS = ("scaled", "sign", "upstream", "assign")


@dataclass
class Result:
    """What the hunt for one mutant found."""

    op: str
    fault: str
    caught: bool
    expression: str = ""
    n_ops: int = 0
    blamed: str = ""
    seconds: float = 0.0

    @property
    def expected_culprit(self) -> str:
        return "backward pass" if self.fault == "assign" else self.op

    @property
    def ok(self) -> bool:
        return self.caught and self.n_ops <= 3 and self.blamed == self.expected_culprit


@contextlib.contextmanager
def planted(op_name: str, fault: str) -> Iterator[None]:
    """The engine with one fault planted (restored on exit)."""
    op = OPS[op_name]
    if fault in ("scaled", "sign"):
        original = op.derivative
        factor = 1.001 if fault == "scaled" else -1.0

        def faulty(*args: Any) -> tuple[Any, ...]:
            return tuple(d * factor for d in original(*args))

        op.derivative = faulty
        try:
            yield
        finally:
            op.derivative = original
        return
    original_backward = engine_value._backward_floats

    def faulty_backward(order: list[Value], root: Value, gradient: float) -> None:
        # The chain rule as engine.value's _backward_plain, with this op's contributions made wrong.
        root.grad = gradient
        for node, parents, local in chain_rule_steps(order):
            upstream = node.grad
            for parent, d in zip(parents, local):
                if node.op is not op:
                    parent.grad += upstream * d
                elif fault == "upstream":
                    parent.grad += d
                else:  # assign
                    parent.grad = upstream * d

    engine_value._backward_floats = faulty_backward
    try:
        yield
    finally:
        engine_value._backward_floats = original_backward


def fails(case: tuple[Any, list[float]]) -> bool:
    expr, x = case
    return not gradcheck(expr.function, x, name=str(expr)).ok


def hunt(op_name: str, fault: str, max_examples: int = 400) -> Result:
    """Search for an expression that exposes the mutant, shrink it, and read the blame."""
    start = time.perf_counter()
    ops = tuple(dict.fromkeys((op_name, "add", "mul")))
    search = settings(max_examples=max_examples, database=None, derandomize=True, deadline=None,
                      suppress_health_check=list(HealthCheck))
    with planted(op_name, fault):
        try:
            cases = st.one_of(expressions(ops=ops, n_vars=2, max_leaves=4), graphs(ops=ops, max_nodes=3))
            expr, x = find(cases.flatmap(points), fails, settings=search)
        except NoSuchExample:
            return Result(op_name, fault, False, seconds=time.perf_counter() - start)
        report = gradcheck(expr.function, x, name=str(expr))
    blamed = report.blames[0].culprit if report.blames else "nothing"
    return Result(op_name, fault, True, f"{expr} at {', '.join(f'{v:.4g}' for v in x)}", expr.n_ops(),
                  blamed, time.perf_counter() - start)


def table(results: list[Result]) -> str:
    rows = [("mutant", "caught", "ops", "shrunk expression", "blamed", "")]
    for r in results:
        rows.append((f"{r.op} {r.fault}", "yes" if r.caught else "NO", str(r.n_ops) if r.caught else "-",
                     r.expression or "-", r.blamed or "-", "ok" if r.ok else "WRONG"))
    widths = [max(len(row[k]) for row in rows) for k in range(len(rows[0]))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ops", nargs="*", default=sorted(OPS), help="ops to mutate (default: all)")
    parser.add_argument("--faults", nargs="*", default=list(FAULTS), choices=FAULTS)
    parser.add_argument("--examples", type=int, default=400, help="examples hypothesis may try per mutant")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    results = [hunt(op, fault, args.examples) for op in args.ops for fault in args.faults]
    print(table(results))
    good = sum(r.ok for r in results)
    print(f"\n{good} of {len(results)} mutants caught, shrunk to at most 3 ops and blamed right "
          f"({time.perf_counter() - start:.0f} s)")
    return 0 if good == len(results) else 1


if __name__ == "__main__":
    sys.exit(main())
