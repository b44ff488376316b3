"""Hypothesis strategies for property tests of autograd: values, expressions, graphs.

Needs ``hypothesis`` (valuegrad's test extra); the engine itself does not.

    >>> from hypothesis import given
    >>> from engine import gradcheck
    >>> from engine.testing import expressions, points
    >>> @given(case=expressions().flatmap(points))
    ... def test_gradients(case):
    ...     expr, x = case
    ...     gradcheck(expr.function, x, name=str(expr)).raise_if_failed()

The op table drives everything: every op in ``engine.OPS``, and any op of yours named in
``ops=`` (:func:`engine.define_op`), can be drawn (a unary op prints as
``name(x)``, others as ``name(a, b, ...)`` unless they have an infix form), and its domain (what
its operands must be, e.g. ``log`` needs a positive one) comes from :data:`DOMAINS`, whose
default is "any real number". Expressions are domain-safe by construction: a typed grammar
builds positive and non-zero sub-expressions where an op needs them, rather than filtering
out failures afterwards, so hypothesis can shrink a failure to a small expression.

Random MLPs are in :mod:`nn.testing` (``nn`` depends on ``engine``, never the reverse).

Reference: the Hypothesis documentation (``st.composite``, ``st.recursive``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from hypothesis import strategies as st

from engine.blame import at_kink
from engine.ops import DEFINED_OPS, OPS, op_by_name
from engine.value import Value, topological_order

# How an op is written in an expression: infix operators; everything else is ``name(args)``.
INFIX = {"add": "+", "sub": "-", "mul": "*", "div": "/", "pow": "**"}
PREFIX = {"neg": "-"}
CALL_NAMES = {"maximum": "max", "minimum": "min"}
_PRECEDENCE = {"+": 1, "-": 1, "*": 2, "/": 2, "neg": 3, "**": 4}

DOMAINS: dict[str, tuple[str, ...]] = {
    "log": ("positive",),
    "log1p": ("positive",),
    "sqrt": ("positive",),
    "div": ("any", "nonzero"),
    "pow": ("positive", "any"),  # or any base with an integer exponent: see _draw_pow
}
"""What each operand of an op must be: ``"any"`` (the default for ops not listed), ``"positive"``
or ``"nonzero"``. Keeps drawn expressions inside every op's domain."""


def values(min_value: float = -3.0, max_value: float = 3.0) -> st.SearchStrategy[float]:
    """Finite floats in ``[min_value, max_value]``, no nan, no infinities, no subnormals."""
    return st.floats(min_value=min_value, max_value=max_value, allow_nan=False, allow_infinity=False,
                     allow_subnormal=False)


@dataclass(eq=False)
class Expr:
    """A node of an expression: a variable ``x{index}``, a constant, or an op on sub-expressions.
    The same ``Expr`` object may appear under several parents (a DAG, from :func:`graphs`);
    building it makes one Value used several times."""

    op: str | None = None
    args: tuple[Expr, ...] = ()
    var: int | None = None
    const: float | None = None

    def build(self, variables: Sequence[Value], memo: dict[int, Any] | None = None) -> Any:
        """The expression on these variables: a Value (or a float if it has no variable)."""
        memo = {} if memo is None else memo
        key = id(self)
        if key not in memo:
            if self.var is not None:
                memo[key] = variables[self.var]
            elif self.op is None:
                memo[key] = self.const
            else:
                memo[key] = op_by_name(self.op)(*[a.build(variables, memo) for a in self.args])
        return memo[key]

    def function(self, *variables: Value) -> Value:
        """``f(x0, x1, ...)``, for :func:`engine.gradcheck`: always returns a Value."""
        out = self.build(variables)
        return out if isinstance(out, Value) else Value(out)

    @property
    def n_vars(self) -> int:
        return 1 + max((e.var for e in self.nodes() if e.var is not None), default=0)

    def nodes(self) -> list[Expr]:
        """Every distinct sub-expression, each once."""
        seen: dict[int, Expr] = {}
        stack: list[Expr] = [self]
        while stack:
            e = stack.pop()
            if id(e) not in seen:
                seen[id(e)] = e
                stack.extend(e.args)
        return list(seen.values())

    def ops(self) -> set[str]:
        return {e.op for e in self.nodes() if e.op is not None}

    def n_ops(self) -> int:
        """How many op nodes (a shared sub-expression counts once)."""
        return sum(e.op is not None for e in self.nodes())

    def __str__(self) -> str:
        shared = _shared(self)
        if not shared:
            return _text(self, {})
        names: dict[int, str] = {}
        lines = []
        for k, e in enumerate(shared):  # innermost first
            lines.append(f"t{k} = {_text(e, names)}")
            names[id(e)] = f"t{k}"
        return "; ".join([*lines, _text(self, names)])

    def __repr__(self) -> str:
        return f"Expr({str(self)!r})"


def _shared(root: Expr) -> list[Expr]:
    """Op nodes used more than once, in an order where each comes after those inside it."""
    uses: dict[int, int] = {}
    order: list[Expr] = []
    visited: set[int] = set()

    def visit(e: Expr) -> None:  # expressions are small (max_leaves), so recursion is fine here
        for a in e.args:
            uses[id(a)] = uses.get(id(a), 0) + 1
            if id(a) not in visited:
                visited.add(id(a))
                visit(a)
        order.append(e)

    visit(root)
    return [e for e in order if e.op is not None and uses.get(id(e), 0) > 1 and e is not root]


def _text(e: Expr, names: dict[int, str], parent: int = 0) -> str:
    if id(e) in names:
        return names[id(e)]
    if e.var is not None:
        return f"x{e.var}"
    if e.op is None:
        text = _constant_text(e.const)  # a negative constant binds like unary minus: (-1)**2
        return f"({text})" if text.startswith("-") and _PRECEDENCE["neg"] < parent else text
    args = list(e.args)
    if e.op in INFIX:
        symbol = INFIX[e.op]
        prec = _PRECEDENCE[symbol]
        right_assoc = symbol == "**"
        left = _text(args[0], names, prec + (1 if right_assoc else 0))
        right = _text(args[1], names, prec + (0 if right_assoc else 1))
        text = f"{left}{symbol}{right}" if symbol == "**" else f"{left} {symbol} {right}"
        return f"({text})" if prec < parent else text
    if e.op in PREFIX:
        text = PREFIX[e.op] + _text(args[0], names, _PRECEDENCE["neg"])
        return f"({text})" if _PRECEDENCE["neg"] < parent else text
    return f"{CALL_NAMES.get(e.op, e.op)}({', '.join(_text(a, names) for a in args)})"


def _constant_text(c: float | None) -> str:
    assert c is not None
    text = repr(c)
    return text[:-2] if text.endswith(".0") else text


# ---------------------------------------------------------------------------------------------
# Expressions: a typed grammar over the op table
# ---------------------------------------------------------------------------------------------

_POSITIVE_CONSTANTS = st.sampled_from([1.0, 2.0, 0.5, 3.0, 1.5])
_CONSTANTS = st.sampled_from([1.0, 2.0, 0.5, -1.0, 3.0, -2.5, 0.0])


@st.composite
def _draw(draw: Callable[[st.SearchStrategy[Any]], Any], kind: str, budget: int, n_vars: int,
          ops: tuple[str, ...]) -> Expr:
    """An expression of ``kind`` (``any``, ``positive``, ``nonzero``) with at most ``budget`` leaves."""
    if budget <= 1:
        if kind == "any" and draw(st.booleans()):
            return Expr(var=draw(st.integers(0, n_vars - 1)))
        if kind == "any":
            return Expr(const=draw(_CONSTANTS))
        return Expr(const=draw(_POSITIVE_CONSTANTS))
    if kind == "nonzero":
        inner = draw(_draw("positive", budget, n_vars, ops))
        return Expr("neg", (inner,)) if "neg" in ops and draw(st.booleans()) else inner
    if kind == "positive":
        makers = _positive_makers(ops)
        if not makers:
            return Expr(const=draw(_POSITIVE_CONSTANTS))
        return draw(st.sampled_from(makers))(draw, budget, n_vars, ops)
    # kind == "any": a leaf or an op of the table
    choice = draw(st.sampled_from(("leaf", *ops)))
    if choice == "leaf":
        return draw(_draw("any", 1, n_vars, ops))
    op = op_by_name(choice)
    if choice == "pow":
        return _draw_pow(draw, budget, n_vars, ops)
    arity = op.arity or draw(st.integers(2, 3))
    domain = DOMAINS.get(choice, ("any",) * arity)
    if len(domain) != arity:
        domain = (domain[0],) * arity
    budgets = _split(draw, budget, arity)
    return Expr(choice, tuple(draw(_draw(d, b, n_vars, ops)) for d, b in zip(domain, budgets)))


def _draw_pow(draw: Callable[..., Any], budget: int, n_vars: int, ops: tuple[str, ...]) -> Expr:
    if draw(st.booleans()):  # any base, a small integer exponent
        exponent = Expr(const=float(draw(st.integers(2, 3))))
        return Expr("pow", (draw(_draw("any", budget - 1, n_vars, ops)), exponent))
    b1, b2 = _split(draw, budget, 2)
    return Expr("pow", (draw(_draw("positive", b1, n_vars, ops)), draw(_draw("any", b2, n_vars, ops))))


def _split(draw: Callable[..., Any], budget: int, parts: int) -> list[int]:
    """Share ``budget`` leaves among ``parts`` operands, each getting at least one."""
    sizes = [1] * parts
    for _ in range(max(0, budget - parts)):
        sizes[draw(st.integers(0, parts - 1))] += 1
    return sizes


Maker = Callable[[Callable[..., Any], int, int, tuple[str, ...]], Expr]


def _positive_makers(ops: tuple[str, ...]) -> list[Maker]:
    """Ways to build an expression that is positive wherever it is defined, from the ops allowed."""
    makers: list[Maker] = []
    if "add" in ops:  # 3 + x: positive wherever points() draws x (in [-2, 2] by default)
        makers.append(lambda d, b, n, o: Expr("add", (Expr(const=3.0), Expr(var=d(st.integers(0, n - 1))))))
    if "exp" in ops:
        makers.append(lambda d, b, n, o: Expr("exp", (d(_draw("any", b, n, o)),)))
    if "sigmoid" in ops:
        makers.append(lambda d, b, n, o: Expr("sigmoid", (d(_draw("any", b, n, o)),)))
    if "add" in ops and "mul" in ops:  # c + e·e
        makers.append(lambda d, b, n, o: _square_plus(d, b, n, o))
    if "add" in ops:  # sums and products of positives
        makers.append(lambda d, b, n, o: Expr("add", _positives(d, b, n, o)))
    if "mul" in ops:
        makers.append(lambda d, b, n, o: Expr("mul", _positives(d, b, n, o)))
    if "sqrt" in ops:
        makers.append(lambda d, b, n, o: Expr("sqrt", (d(_draw("positive", b, n, o)),)))
    return makers


def _positives(draw: Callable[..., Any], budget: int, n_vars: int, ops: tuple[str, ...]) -> tuple[Expr, ...]:
    return tuple(draw(_draw("positive", k, n_vars, ops)) for k in _split(draw, budget, 2))


def _square_plus(draw: Callable[..., Any], budget: int, n_vars: int, ops: tuple[str, ...]) -> Expr:
    e = draw(_draw("any", budget - 1, n_vars, ops))
    return Expr("add", (Expr(const=draw(_POSITIVE_CONSTANTS)), Expr("mul", (e, e))))


def expressions(ops: Sequence[str] | None = None, n_vars: int = 2, max_leaves: int = 6,
                domain_safe: bool = True) -> st.SearchStrategy[Expr]:
    """Random expression trees over the op table, printable as Python (``tanh(x0 * x1) + ...``).

    Args:
        ops: op names to draw from (default: every op in ``engine.OPS``); an op of yours
            (:func:`engine.define_op`) is drawn only when named here.
        n_vars: how many variables ``x0 … x{n_vars-1}`` may appear.
        max_leaves: the most leaves (variables and constants) an expression has.
        domain_safe: operands of ``log``, ``sqrt``, ``/``, ``**`` are built positive or
            non-zero (see :data:`DOMAINS`); ``False`` draws every operand freely.

    Raises:
        ValueError: an unknown op name, ``n_vars < 1`` or ``max_leaves < 1``.
    """
    names = tuple(OPS) if ops is None else tuple(ops)
    unknown = sorted(set(names) - set(OPS) - set(DEFINED_OPS))
    if unknown:
        raise ValueError(f"unknown ops {unknown}; the ops are {', '.join([*OPS, *DEFINED_OPS])}")
    if n_vars < 1 or max_leaves < 1:
        raise ValueError("n_vars and max_leaves must be >= 1")

    @st.composite
    def strategy(draw: Callable[..., Any]) -> Expr:
        budget = draw(st.integers(1, max_leaves))
        if not domain_safe:
            return draw(_free(budget, n_vars, names))
        return draw(_draw("any", budget, n_vars, names))

    return strategy()


@st.composite
def _free(draw: Callable[..., Any], budget: int, n_vars: int, ops: tuple[str, ...]) -> Expr:
    if budget <= 1 or not ops:
        return draw(_draw("any", 1, n_vars, ops))
    choice = draw(st.sampled_from(ops))
    arity = op_by_name(choice).arity or draw(st.integers(2, 3))
    return Expr(choice, tuple(draw(_free(b, n_vars, ops)) for b in _split(draw, budget, arity)))


@st.composite
def graphs(draw: Callable[..., Any], ops: Sequence[str] | None = None, n_vars: int = 2,
           max_nodes: int = 6) -> Expr:
    """Random DAGs in which a node can feed several others (fan-out), so a gradient must be
    accumulated from several paths: the bugs that trees cannot catch.

    Each new node applies an op to earlier nodes (chosen with reuse); the result adds the last
    node to one of the nodes it is built from, so at least one node is used twice. Domain-safe as
    :func:`expressions`: an operand that must be positive is a positive-by-construction node
    (``3 + x``, valid for |x| < 3, or ``exp`` of a node).
    """
    names = tuple(OPS) if ops is None else tuple(ops)
    variables = [Expr(var=i) for i in range(n_vars)]
    positive: list[Expr] = [Expr("add", (Expr(const=3.0), v)) for v in variables] if "add" in names \
        else [Expr(const=1.5)]
    pool: list[Expr] = [*variables, *positive]
    for _ in range(draw(st.integers(1, max_nodes))):
        choice = draw(st.sampled_from(names))
        if choice == "pow":
            node = Expr("pow", (draw(st.sampled_from(pool)), Expr(const=2.0)))
        else:
            arity = op_by_name(choice).arity or draw(st.integers(2, 3))
            domain = DOMAINS.get(choice, ("any",) * arity)
            domain = domain if len(domain) == arity else (domain[0],) * arity
            operands = [draw(st.sampled_from(positive if d != "any" else pool)) for d in domain]
            node = Expr(choice, tuple(operands))
        pool.append(node)
        if "exp" in names:
            positive.append(Expr("exp", (node,)))
    last = pool[-1]
    inside = [e for e in last.nodes() if e is not last and e.const is None] or variables  # used by last
    return Expr("add", (last, draw(st.sampled_from(inside))))


def points(expr: Expr, low: float = -2.0, high: float = 2.0) -> st.SearchStrategy[tuple[Expr, list[float]]]:
    """``(expr, x)``: a point ``x`` for the expression's variables where it and its gradient are
    finite and below 1e6 (cos of a huge argument oscillates faster than central differences
    can follow), and away from the ops' kinks. Use as ``expressions().flatmap(points)``."""

    def finite(x: list[float]) -> bool:
        leaves = [Value(v) for v in x]
        out = expr.function(*leaves)
        if not math.isfinite(out.data) or abs(out.data) > 1e6:
            return False
        out.backward()
        if not all(math.isfinite(v.grad) and abs(v.grad) < 1e6 for v in leaves):
            return False
        return not any(near_kink(node) for node in topological_order(out))

    # Below 1e-30 a number is taken as 0: x**3 of a tinier x underflows in floats, and then no
    # reference can agree with the engine's forward pass itself.
    coordinate = values(low, high).map(lambda v: 0.0 if abs(v) < 1e-30 else v)
    n = max(expr.n_vars, 1)
    return st.lists(coordinate, min_size=n, max_size=n).filter(finite).map(lambda x: (expr, x))


def near_kink(node: Value, distance: float = 1e-3) -> bool:
    """True when ``node``'s op is not differentiable within ``distance`` (relative) of its
    operands: relu or abs near 0, maximum or minimum near a tie (see
    :func:`engine.blame.at_kink`, found numerically from the op's forward function)."""
    return at_kink(node, distance)
