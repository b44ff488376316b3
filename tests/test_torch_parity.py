"""Gradients against PyTorch float64 autograd: a dozen mixed expressions that together use
every op of ``engine.OPS``, their second derivatives, and every op at special values.

Skipped, with the reason, when torch is not installed (CI installs it when it can).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

import engine
from engine import OPS, Value

torch = pytest.importorskip(
    "torch", reason="PyTorch is not installed: the parity tests need it as the reference")

REL = 1e-9
ABS = 1e-12  # for gradients that are 0 up to rounding

# The same expression code runs on engine Values and on torch tensors through these namespaces.
E = SimpleNamespace(
    exp=lambda v: v.exp(), log=lambda v: v.log(), log1p=lambda v: v.log1p(), sqrt=lambda v: v.sqrt(),
    tanh=lambda v: v.tanh(),
    sigmoid=lambda v: v.sigmoid(), relu=lambda v: v.relu(), abs=lambda v: v.abs(),
    sin=lambda v: v.sin(), cos=lambda v: v.cos(), maximum=engine.maximum, minimum=engine.minimum,
    sum=engine.sum,
)


def _torch_sum(xs: list[Any]) -> Any:
    return torch.stack([x if torch.is_tensor(x) else torch.tensor(float(x), dtype=torch.float64)
                        for x in xs]).sum()


T = SimpleNamespace(
    exp=torch.exp, log=torch.log, log1p=torch.log1p, sqrt=torch.sqrt, tanh=torch.tanh, sigmoid=torch.sigmoid,
    relu=torch.relu, abs=torch.abs, sin=torch.sin, cos=torch.cos, maximum=torch.maximum,
    minimum=torch.minimum, sum=_torch_sum,
)

Expr = Callable[[Any, Any, Any, SimpleNamespace], Any]

# (name, expression of a, b, c, the ops it uses)
EXPRESSIONS: list[tuple[str, Expr, set[str]]] = [
    ("neuron", lambda a, b, c, N: N.tanh(a * b + c), {"mul", "add", "tanh"}),
    ("ratio", lambda a, b, c, N: (a - b) ** 2 / (c * c + 1), {"sub", "pow", "div", "mul", "add"}),
    ("decay", lambda a, b, c, N: N.exp(-a) * N.log(b * b + 1) - c,
     {"neg", "exp", "log", "mul", "add", "sub"}),
    ("norm", lambda a, b, c, N: N.sqrt(a * a + b * b + 0.5) + N.sigmoid(c),
     {"sqrt", "sigmoid", "mul", "add"}),
    ("gates", lambda a, b, c, N: N.relu(a) * N.sin(b) - N.relu(-c) * N.cos(a),
     {"relu", "sin", "cos", "neg", "mul", "sub"}),
    ("hinge", lambda a, b, c, N: N.abs(a - b) + N.maximum(a, c) * N.minimum(b, c),
     {"abs", "sub", "maximum", "minimum", "mul", "add"}),
    ("sum", lambda a, b, c, N: N.sum([a, b * c, a * b * c, 2.0]) * N.tanh(c), {"sum", "mul", "tanh"}),
    ("power", lambda a, b, c, N: (a * a + 1) ** (b / (1 + c * c)), {"pow", "mul", "add", "div"}),
    ("reflected", lambda a, b, c, N: 2 ** a + 3 / (b * b + 1) - (1 - c) * 2 + (2 - a) / 4 + 0.5 * c ** 3,
     {"pow", "add", "div", "mul", "sub"}),
    ("logsig", lambda a, b, c, N: N.log(N.sigmoid(a) + N.sigmoid(b)) * N.cos(c),
     {"log", "sigmoid", "add", "cos", "mul"}),
    ("softplus", lambda a, b, c, N: N.log1p(N.exp(-N.abs(a))) * b + c,
     {"log1p", "exp", "neg", "abs", "mul", "add"}),
    ("softmax", lambda a, b, c, N: N.exp(a) / N.sum([N.exp(a), N.exp(b), N.exp(c)]), {"exp", "div", "sum"}),
    ("kinks",
     lambda a, b, c, N: N.maximum(N.sin(a * b), N.cos(b * c)) + N.minimum(N.abs(a), N.sqrt(N.abs(c) + 1)),
     {"maximum", "minimum", "sin", "cos", "abs", "sqrt", "mul", "add"}),
    ("shared", lambda a, b, c, N: ((a * b) * (a * b) + (a * b) - a) / N.exp(c * c),
     {"mul", "add", "sub", "div", "exp"}),
]


EXPR_PARAMS = [(name, expr) for name, expr, _ in EXPRESSIONS]
EXPR_IDS = [name for name, _, _ in EXPRESSIONS]


def engine_grads(expr: Expr, args: tuple[float, ...]) -> tuple[float, list[float]]:
    leaves = [Value(x) for x in args]
    out = expr(*leaves, E)
    out.backward()
    return out.data, [leaf.grad for leaf in leaves]


def torch_grads(expr: Expr, args: tuple[float, ...]) -> tuple[float, list[float]]:
    leaves = [torch.tensor(x, dtype=torch.float64, requires_grad=True) for x in args]
    out = expr(*leaves, T)
    grads = torch.autograd.grad(out, leaves, allow_unused=True)
    return out.item(), [0.0 if g is None else g.item() for g in grads]


def agree(got: float, want: float) -> bool:
    if math.isnan(want):
        return math.isnan(got)
    return got == want or abs(got - want) <= REL * abs(want) + ABS


def test_the_expressions_use_every_op() -> None:
    used = set().union(*(ops for _, _, ops in EXPRESSIONS))
    assert used == set(OPS), f"ops no parity expression uses: {sorted(set(OPS) - used)}"
    # and the declared op sets are what the expressions really record
    for name, expr, ops in EXPRESSIONS:
        out = expr(Value(0.3), Value(-0.7), Value(1.1), E)
        recorded = {n.op.name for n in engine.topological_order(out) if n.op is not None}
        assert recorded == ops, f"{name}: records {sorted(recorded)}, declared {sorted(ops)}"


coord = st.floats(min_value=-3.0, max_value=3.0, allow_nan=False, allow_infinity=False,
                  allow_subnormal=False)


@pytest.mark.parametrize("name, expr", EXPR_PARAMS, ids=EXPR_IDS)
@settings(max_examples=60, deadline=None)
@given(a=coord, b=coord, c=coord)
@example(a=0.0, b=0.0, c=0.0)  # relu and abs kinks, maximum/minimum ties
@example(a=1.0, b=1.0, c=1.0)  # ties
@example(a=-1.5, b=2.0, c=-0.25)
def test_gradients_match_torch(name: str, expr: Expr, a: float, b: float, c: float) -> None:
    args = (a, b, c)
    got_out, got = engine_grads(expr, args)
    want_out, want = torch_grads(expr, args)
    assert agree(got_out, want_out), f"{name}{args}: value {got_out!r}, torch {want_out!r}"
    for i, (g, w) in enumerate(zip(got, want)):
        assert agree(g, w), f"{name}{args}: d/d{'abc'[i]} = {g!r}, torch {w!r}"


def engine_hessian(expr: Expr, args: tuple[float, ...]) -> list[list[float]]:
    leaves = [Value(x) for x in args]
    return engine.hessian_of(expr(*leaves, E), leaves)


def torch_hessian(expr: Expr, args: tuple[float, ...]) -> list[list[float]]:
    leaves = [torch.tensor(x, dtype=torch.float64, requires_grad=True) for x in args]
    out = expr(*leaves, T)
    grads = torch.autograd.grad(out, leaves, create_graph=True, allow_unused=True)
    rows = []
    for g in grads:
        if g is None or not g.requires_grad:
            rows.append([0.0] * len(leaves))
            continue
        second = torch.autograd.grad(g, leaves, retain_graph=True, allow_unused=True)
        rows.append([0.0 if s is None else s.item() for s in second])
    return rows


@pytest.mark.parametrize("name, expr", EXPR_PARAMS, ids=EXPR_IDS)
@pytest.mark.parametrize("args", [(0.3, -0.7, 1.1), (-1.2, 0.4, -2.0), (2.0, 1.5, 0.5)])
def test_second_derivatives_match_torch(name: str, expr: Expr, args: tuple[float, float, float]) -> None:
    got = engine_hessian(expr, args)
    want = torch_hessian(expr, args)
    for i, j in itertools.product(range(3), repeat=2):
        assert agree(got[i][j], want[i][j]), \
            f"{name}{args}: d²/d{'abc'[i]}d{'abc'[j]} = {got[i][j]!r}, torch {want[i][j]!r}"


TORCH_OPS: dict[str, Callable[..., Any]] = {
    "add": lambda a, b: a + b, "sub": lambda a, b: a - b, "mul": lambda a, b: a * b,
    "div": lambda a, b: a / b, "neg": lambda a: -a, "pow": lambda a, b: a**b, "exp": torch.exp,
    "log": torch.log, "log1p": torch.log1p, "sqrt": torch.sqrt, "tanh": torch.tanh, "sigmoid": torch.sigmoid,
    "relu": torch.relu, "abs": torch.abs, "sin": torch.sin, "cos": torch.cos,
    "maximum": torch.maximum, "minimum": torch.minimum, "sum": lambda *xs: torch.stack(xs).sum(),
}

SPECIALS = [0.0, -0.0, 1.0, -1.0, 0.5, -2.5, 3.0, math.inf, -math.inf, math.nan, 1e308, -1e308, 700.0]


@pytest.mark.parametrize("name", sorted(OPS))
def test_every_op_at_special_values_matches_torch(name: str) -> None:
    assert set(TORCH_OPS) == set(OPS)
    arity = OPS[name].arity or 3
    for args in itertools.product(SPECIALS, repeat=arity):
        leaves = [Value(x) for x in args]
        out = OPS[name](*leaves)
        out.backward()
        tleaves = [torch.tensor(x, dtype=torch.float64, requires_grad=True) for x in args]
        tout = TORCH_OPS[name](*tleaves)
        tout.backward()
        assert agree(out.data, tout.item()), f"{name}{args}: {out.data!r}, torch {tout.item()!r}"
        for i, (leaf, t) in enumerate(zip(leaves, tleaves)):
            w = 0.0 if t.grad is None else t.grad.item()
            assert agree(leaf.grad, w), f"d{name}/dx{i} at {args}: {leaf.grad!r}, torch {w!r}"
