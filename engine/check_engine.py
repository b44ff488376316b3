"""Check your own engine: property-based gradient checking of a micrograd-style ``Value`` class.

    >>> from engine.testing import check_engine
    >>> report = check_engine(MyValue)          # doctest: +SKIP
    >>> print(report)                           # doctest: +SKIP

1. **Find the ops.** Each operator and method the lecture's ``Value`` has (``+ - * /``,
   ``** number``, unary ``-``, the reflected forms ``2 + a`` ..., ``tanh``, ``exp``, ``relu``,
   ``log``, ``sigmoid``, ...) is tried on small numbers. One that raises ``TypeError`` or
   ``AttributeError`` is *unsupported* (reported, not counted as wrong); one whose forward
   value is wrong is a finding.
2. **Check gradients.** Random expressions and DAGs (a value used twice, shared
   sub-expressions) over the supported ops, domain-safe by construction
   (:mod:`engine.testing`), are built with your class and with valuegrad's. Every leaf gradient
   your ``backward()`` gives is compared with valuegrad's, and the report shows the central
   difference of your own forward pass beside them.
3. **Shrink and blame.** Hypothesis shrinks a mismatch to the smallest failing expression. Then
   each method in it is probed alone at the inputs it had, calling its node's ``_backward()``:
   a wrong local derivative; an upstream gradient ignored; ``=`` where ``+=`` belongs (a parent
   that already has a gradient must keep it). If every method is right alone, the fault is in
   ``backward`` itself (no topological order, or a node visited twice).
4. Exceptions raised inside your code are findings, shown with the expression that raised.

Reference: micrograd's ``Value`` (Karpathy, micrograd 0.1.0) for the interface; Hypothesis
``find`` for shrinking; central differences as in :mod:`engine.numeric`.
"""

from __future__ import annotations

import math
import random
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from hypothesis import HealthCheck, find, settings
from hypothesis import strategies as st
from hypothesis.errors import NoSuchExample

from engine.foreign import is_micrograd_like, topological_order_of
from engine.ops import op_by_name
from engine.strategies import Expr, expressions, graphs, points
from engine.value import Value

# How each op of the table is written on a micrograd-style class, and how it is called.
BINARY: dict[str, tuple[str, str, Callable[[Any, Any], Any]]] = {
    # op: (method, reflected method, call)
    "add": ("__add__", "__radd__", lambda a, b: a + b),
    "sub": ("__sub__", "__rsub__", lambda a, b: a - b),
    "mul": ("__mul__", "__rmul__", lambda a, b: a * b),
    "div": ("__truediv__", "__rtruediv__", lambda a, b: a / b),
}


def _method_call(name: str) -> Callable[[Any], Any]:
    return lambda a: getattr(a, name)()


UNARY: dict[str, tuple[str, Callable[[Any], Any]]] = {
    "neg": ("__neg__", lambda a: -a),
    **{name: (name, _method_call(name))
       for name in ("tanh", "exp", "relu", "log", "sigmoid", "sin", "cos", "sqrt")},
}
EXPLAINED = {
    "local derivative": "its local derivative is wrong: check the formula in its _backward "
                        "(for tanh, 1 - t**2 with t = tanh(x); for a * b, b for a and a for b)",
    "upstream": "it ignores the upstream gradient: each parent must get local derivative * out.grad",
    "accumulate": "it assigns (=) where it must accumulate (+=): a value used twice gets the "
                  "gradient of one use only",
    "backward": "every op is right alone, but backward() is not: it must visit the nodes in reverse "
                "topological order, each once, starting from grad = 1",
    "forward": "its forward value is wrong",
    "raised": "your code raised an exception here",
}
_SEED = 0.7390851332151607  # an upstream gradient with no pattern


@dataclass
class Finding:
    """One thing wrong: the method at fault, what kind of mistake, and the evidence."""

    method: str
    kind: str  # local derivative | upstream | accumulate | backward | forward | raised
    expression: str = ""
    inputs: dict[str, float] = field(default_factory=dict)
    expected: dict[str, float] = field(default_factory=dict)
    actual: dict[str, float] = field(default_factory=dict)
    central: dict[str, float] = field(default_factory=dict)
    detail: str = ""

    def __str__(self) -> str:
        lines = [f"{self.method}: {EXPLAINED[self.kind]}"]
        if self.expression:
            at = ", ".join(f"{k} = {v!r}" for k, v in self.inputs.items())
            lines.append(f"  expression: {self.expression}   at {at}")
        for name in self.expected:
            row = f"  d/d{name}: expected {self.expected[name]!r}, yours {self.actual.get(name, math.nan)!r}"
            if name in self.central:
                row += f" (central difference of your forward: {self.central[name]:.10g})"
            lines.append(row)
        if self.detail:
            lines.append(f"  {self.detail}")
        return "\n".join(lines)


@dataclass
class EngineReport:
    """What :func:`check_engine` found: ``ok``, the ``supported`` and ``unsupported`` methods,
    the ``findings`` (each printable), and how many ``examples`` were checked."""

    name: str
    supported: list[str] = field(default_factory=list)
    unsupported: list[str] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    examples: int = 0

    @property
    def ok(self) -> bool:
        return not self.findings

    def __str__(self) -> str:
        lines = [f"check_engine({self.name}): " + ("OK" if self.ok else f"{len(self.findings)} finding(s)"),
                 "supported: " + (", ".join(self.supported) or "none")]
        if self.unsupported:
            lines.append("unsupported (not checked): " + ", ".join(self.unsupported))
        lines += [str(f) for f in self.findings]
        if self.ok:
            lines.append(f"every gradient of {self.examples} random expressions and DAGs agrees with "
                         f"valuegrad's")
        return "\n".join(lines)


def check_engine(value_class: type, max_examples: int = 300, seed: int = 0) -> EngineReport:
    """Check ``value_class``, a micrograd-style ``Value`` (``data``, ``grad``, ``backward()``;
    ``_prev`` and ``_backward`` for blame), against valuegrad's engine (see the module docstring).

    Args:
        value_class: the class; ``value_class(2.0)`` must make a leaf.
        max_examples: how many random expressions and DAGs to try at most.
        seed: the search's seed (the same seed, the same report).

    Returns:
        An :class:`EngineReport`.

    Raises:
        TypeError: ``value_class`` is not a class, or ``value_class(2.0)`` fails or has no ``data``.
    """
    if not isinstance(value_class, type):
        raise TypeError(f"check_engine needs a class, got {type(value_class).__name__}")
    try:
        leaf = value_class(2.0)
        float(leaf.data)
    except Exception as error:
        raise TypeError(f"{value_class.__name__}(2.0) must make a leaf with .data: {type(error).__name__}: "
                        f"{error}") from None
    report = EngineReport(value_class.__name__)
    forms = _probe(value_class, report)
    ops = tuple(op for op in [*BINARY, *UNARY] if op in forms)
    if not ops:
        return report
    drawn = st.one_of(expressions(ops=ops, n_vars=2, max_leaves=5), graphs(ops=ops, n_vars=2, max_nodes=4))
    cases = drawn.filter(_constant_powers).flatmap(points)
    search = settings(max_examples=max_examples, database=None, derandomize=True, deadline=None,
                      suppress_health_check=list(HealthCheck))
    seen = [0]

    def fails(case: tuple[Expr, list[float]]) -> bool:
        seen[0] += 1
        return _compare(value_class, forms, *case) is not None

    shrunk = next((case for case in _smallest_cases(ops) if fails(case)), None)  # the lecture's classics
    if shrunk is None:
        try:
            shrunk = find(cases.map(lambda c: (c[0], [round(v, 3) or 0.0 for v in c[1]])), fails,
                          settings=search, random=random.Random(seed))
        except NoSuchExample:
            report.examples = seen[0]
            return report
    report.examples = seen[0]
    finding = _compare(value_class, forms, *shrunk)
    assert finding is not None
    report.findings.append(_blame(value_class, forms, shrunk, finding))
    return report


def _smallest_cases(ops: tuple[str, ...]) -> list[tuple[Expr, list[float]]]:
    """``f(a)``, ``a op b`` and ``a op a`` for each op (``a ** 2`` for pow), at a = 1.5, b = 0.75,
    then each times 2: tried before the random search, so a bug they show is reported as simply
    as it can be."""
    a, b = Expr(var=0), Expr(var=1)
    cases: list[tuple[Expr, list[float]]] = []
    for op in ops:
        if op == "pow":
            cases.append((Expr("pow", (a, Expr(const=2.0))), [1.5]))
        elif op in UNARY:
            cases.append((Expr(op, (a,)), [1.5]))
        else:
            cases += [(Expr(op, (a, b)), [1.5, 0.75]), (Expr(op, (a, a)), [1.5])]
    if "mul" in ops:  # each again under a factor of 2, so that its upstream gradient is not 1
        cases += [(Expr("mul", (e, Expr(const=2.0))), x) for e, x in list(cases)]
    return cases


# --------------------------------------------------------------------------------------------
# 1. Which forms the class supports


def _probe(cls: type, report: EngineReport) -> dict[str, set[str]]:
    """``{op: forms}``: ``"plain"`` (Value op Value), ``"number"`` (Value op 2.0) and
    ``"reflected"`` (2.0 op Value) for binary ops, ``"plain"`` for unary ones."""
    forms: dict[str, set[str]] = {}
    tries: list[tuple[str, str, str, Callable[..., Any], tuple[Any, ...], float]] = []
    for op, (method, reflected, call) in BINARY.items():
        expected = float(op_by_name(op)(1.5, 0.75))
        tries += [(op, method, "plain", call, (cls(1.5), cls(0.75)), expected),
                  (op, method, "number", call, (cls(1.5), 0.75), expected),
                  (op, reflected, "reflected", call, (1.5, cls(0.75)), expected)]
    tries.append(("pow", "__pow__", "plain", lambda a: a ** 3, (cls(1.5),), 1.5 ** 3))
    for op, (method, unary) in UNARY.items():
        tries.append((op, method, "plain", unary, (cls(0.75),), float(op_by_name(op)(0.75))))
    for op, method, form, call, args, expected in tries:
        try:
            out = call(*args)
            value = float(out.data)
        except (TypeError, AttributeError, NotImplementedError):
            if method not in report.unsupported:
                report.unsupported.append(method)
            continue
        except Exception as error:
            report.findings.append(Finding(method, "raised", detail=f"{type(error).__name__}: {error}"))
            continue
        if not math.isclose(value, expected, rel_tol=1e-9, abs_tol=1e-12):
            report.findings.append(Finding(method, "forward",
                                           detail=f"gives {value!r}, expected {expected!r}"))
            continue
        forms.setdefault(op, set()).add(form)
        if method not in report.supported:
            report.supported.append(method)
    forms = {op: f for op, f in forms.items() if "plain" in f}
    report.unsupported = [m for m in report.unsupported if m not in report.supported]
    return forms


def _constant_powers(expr: Expr) -> bool:
    """micrograd's ``**`` takes a number: every exponent is a constant."""
    return all(e.args[1].const is not None for e in expr.nodes() if e.op == "pow")


# --------------------------------------------------------------------------------------------
# 2. Building an expression with the learner's class, and comparing


Forms = dict[str, set[str]]


def _build(cls: type, forms: Forms, expr: Expr, x: list[float]) -> tuple[Any, list[Any], dict[int, str]]:
    """``(root, leaves, {id(node's Expr): method used})``; a constant stays a plain number where
    the class takes one there, else it becomes a leaf."""
    leaves = [cls(v) for v in x]
    memo: dict[int, Any] = {}
    used: dict[int, str] = {}
    for e in _topological(expr):
        if e.var is not None:
            memo[id(e)] = leaves[e.var]
        elif e.op is None:
            memo[id(e)] = e.const
        elif e.op == "pow":  # an integral exponent as an int, as the lecture writes x**2
            c = e.args[1].const
            memo[id(e)], used[id(e)] = memo[id(e.args[0])] ** (int(c) if c == int(c) else c), "__pow__"  # type: ignore[arg-type]
        elif e.op in UNARY:
            operand = memo[id(e.args[0])]
            method, unary = UNARY[e.op]
            memo[id(e)], used[id(e)] = (unary(operand) if not isinstance(operand, float) else
                                        float(op_by_name(e.op)(operand))), method
        else:
            a, b = (memo[id(arg)] for arg in e.args)
            method, reflected, call = BINARY[e.op]
            if isinstance(a, float) and isinstance(b, float):
                memo[id(e)] = float(op_by_name(e.op)(a, b))
                continue
            if isinstance(a, float) and "reflected" not in forms[e.op]:
                a = cls(a)
            if isinstance(b, float) and "number" not in forms[e.op]:
                b = cls(b)
            memo[id(e)], used[id(e)] = call(a, b), (reflected if isinstance(a, float) else method)
    root = memo[id(expr)]
    return root, leaves, used


def _topological(expr: Expr) -> list[Expr]:
    out: list[Expr] = []
    seen: set[int] = set()
    stack: list[tuple[Expr, bool]] = [(expr, False)]
    while stack:
        e, done = stack.pop()
        if done:
            out.append(e)
        elif id(e) not in seen:
            seen.add(id(e))
            stack.append((e, True))
            stack.extend((a, False) for a in reversed(e.args))
    return out


def _names(expr: Expr) -> str:
    return re.sub(r"\bx(\d)\b", lambda m: "abcdefgh"[int(m.group(1))], str(expr))


def _compare(cls: type, forms: Forms, expr: Expr, x: list[float]) -> Finding | None:
    """A finding if the class's gradients (or forward) at ``x`` differ from valuegrad's."""
    names = ["abcdefgh"[i] for i in range(len(x))]
    ours = [Value(v) for v in x]
    root = expr.function(*ours)
    root.backward()
    try:
        theirs_root, leaves, used = _build(cls, forms, expr, x)
        if isinstance(theirs_root, float):
            return None
        value = float(theirs_root.data)
        theirs_root.backward()
        grads = [float(leaf.grad) for leaf in leaves]
    except Exception as error:
        return Finding(_culprit(error), "raised", _names(expr), dict(zip(names, x)),
                       detail=f"{type(error).__name__}: {error}")
    inputs = dict(zip(names, x))
    if not math.isclose(value, root.data, rel_tol=1e-9, abs_tol=1e-12):
        return Finding("forward", "forward", _names(expr), inputs, {"value": root.data}, {"value": value})
    expected = [leaf.grad for leaf in ours]
    if all(math.isclose(g, e, rel_tol=1e-7, abs_tol=1e-9) for g, e in zip(grads, expected)):
        return None
    return Finding("?", "backward", _names(expr), inputs, dict(zip(names, expected)), dict(zip(names, grads)),
                   _central(cls, forms, expr, x, names))


def _central(cls: type, forms: Forms, expr: Expr, x: list[float], names: list[str]) -> dict[str, float]:
    out = {}
    for i, name in enumerate(names):
        h = 1e-6 * max(1.0, abs(x[i]))
        try:
            up = float(_build(cls, forms, expr, [*x[:i], x[i] + h, *x[i + 1:]])[0].data)
            down = float(_build(cls, forms, expr, [*x[:i], x[i] - h, *x[i + 1:]])[0].data)
        except Exception:
            continue
        out[name] = (up - down) / (2 * h)
    return out


def _culprit(error: BaseException) -> str:
    """The learner's method a traceback ends in (``__mul__``, ``_backward`` of ``tanh``...)."""
    tb = error.__traceback__
    name = "?"
    while tb is not None:
        if tb.tb_frame.f_code.co_filename != __file__:
            name = tb.tb_frame.f_code.co_name
        tb = tb.tb_next
    return name


# --------------------------------------------------------------------------------------------
# 3. Blame


def _blame(cls: type, forms: Forms, case: tuple[Expr, list[float]], finding: Finding) -> Finding:
    """Probe each method of the shrunk expression alone at its inputs; a method built from
    others (micrograd's ``__sub__`` is ``a + (-b)``) hands the blame to the one-node method that
    fails alone. If every method is right alone, blame ``backward``."""
    if finding.kind in ("raised", "forward"):
        return finding
    expr, x = case
    values: dict[int, float] = {}
    for e in _topological(expr):  # each node's operand values, from valuegrad's forward pass
        if e.var is not None:
            values[id(e)] = x[e.var]
        elif e.op is None:
            values[id(e)] = float(e.const)  # type: ignore[arg-type]
        else:
            values[id(e)] = float(op_by_name(e.op)(*[values[id(a)] for a in e.args]))
    _, _, used = _build(cls, forms, expr, x)
    for e in _topological(expr):
        if e.op is None or id(e) not in used:
            continue
        kind, single = _probe_method(cls, e.op, [values[id(a)] for a in e.args])
        if kind and not single:
            for op in forms:  # the one-node methods it may be built from, at the probe's numbers
                arity = 1 if op in UNARY or op == "pow" else 2
                inner, inner_single = _probe_method(cls, op, [1.5, 0.75][:arity])
                if inner and inner_single:
                    method = "__pow__" if op == "pow" else UNARY[op][0] if op in UNARY else BINARY[op][0]
                    finding.method, finding.kind = method, inner
                    finding.detail = f"{used[id(e)]} is built from {method}, which is at fault"
                    return finding
        if kind:
            finding.method, finding.kind = used[id(e)], kind
            return finding
    finding.method = "backward"
    return finding


def _probe_method(cls: type, op: str, operands: list[float]) -> tuple[str | None, bool]:
    """``(kind of mistake or None, whether the method makes one node)``: ``op``'s method alone
    at ``operands``. The new node's own graph is walked backward with a chosen upstream
    gradient, calling each node's ``_backward()`` in reverse topological order (the class's own
    ``backward()`` when it has no ``_prev``/``_backward``, which starts from 1)."""
    n = 1 if op == "pow" else len(operands)
    local = [float(d) for d in op_by_name(op).derivative(*operands, float(op_by_name(op)(*operands)))][:n]
    single = [True]

    def run(upstream: float, start: float) -> list[float] | None:
        leaves = [cls(v) for v in operands[:n]]
        for leaf in leaves:
            leaf.grad = start
        if op == "pow":
            out = leaves[0] ** operands[1]
        elif op in UNARY:
            out = UNARY[op][1](leaves[0])
        else:
            out = BINARY[op][2](*leaves)
        single[0] = {id(p) for p in getattr(out, "_prev", ())} == {id(leaf) for leaf in leaves}
        if is_micrograd_like(out) and callable(getattr(out, "_backward", None)):
            inside = [node for node in topological_order_of(out) if all(node is not leaf for leaf in leaves)]
            for node in inside:
                node.grad = 0.0
            out.grad = upstream
            for node in reversed(inside):
                node._backward()
        elif upstream == 1.0:
            out.backward()
        else:
            return None  # backward() cannot start from another upstream gradient
        return [float(leaf.grad) for leaf in leaves]

    try:
        if not _close(run(1.0, 0.0), local):
            return "local derivative", single[0]
        scaled = run(_SEED, 0.0)
        if scaled is not None and not _close(scaled, [_SEED * d for d in local]):
            return "upstream", single[0]
        if not _close(run(1.0, 1.0), [1.0 + d for d in local]):
            return "accumulate", single[0]
    except Exception:
        return "raised", single[0]
    return None, single[0]


def _close(a: list[float] | None, b: list[float]) -> bool:
    return a is not None and all(math.isclose(u, v, rel_tol=1e-7, abs_tol=1e-9) for u, v in zip(a, b))
