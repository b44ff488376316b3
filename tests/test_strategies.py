"""engine.testing and nn.testing: the strategies reach every op, print expressions the parser
reads back, stay inside every op's domain, and share nodes in graphs."""

from __future__ import annotations

import math

import pytest
from hypothesis import HealthCheck, assume, find, given, settings

from engine import OPS, Value, gradcheck
from engine.parse import parse_expression
from engine.testing import DOMAINS, Expr, expressions, graphs, points, values
from nn import cross_entropy
from nn.testing import mlps

QUICK = settings(max_examples=100, deadline=None, suppress_health_check=list(HealthCheck))


def test_every_op_of_the_table_can_be_drawn() -> None:
    search = settings(max_examples=2000, database=None, derandomize=True,
                      suppress_health_check=list(HealthCheck))
    missing = []
    for name in OPS:
        try:
            find(expressions(), lambda e, name=name: name in e.ops(), settings=search)
        except Exception:  # hypothesis.errors.NoSuchExample
            missing.append(name)
    assert not missing, f"ops the strategies never produce: {missing}"


def test_an_expression_prints_as_python() -> None:
    x0, x1 = Expr(var=0), Expr(var=1)
    e = Expr("add", (Expr("tanh", (Expr("mul", (x0, x1)),)),
                     Expr("log", (Expr("add", (Expr(const=1.0), Expr("pow", (x0, Expr(const=2.0))))),))))
    assert str(e) == "tanh(x0 * x1) + log(1 + x0**2)"
    assert str(Expr("sub", (x0, Expr("sub", (x1, x0))))) == "x0 - (x1 - x0)"  # parentheses kept
    assert str(Expr("neg", (Expr("add", (x0, x1)),))) == "-(x0 + x1)"
    assert e.n_ops() == 6 and e.ops() == {"add", "tanh", "mul", "log", "pow"}


@QUICK
@given(case=expressions(max_leaves=6).flatmap(points))
def test_the_parser_reads_back_what_an_expression_prints(case) -> None:  # type: ignore[no-untyped-def]
    expr, x = case
    assume(";" not in str(expr))  # shared sub-expressions print as "t0 = ...; ...", not one expression
    direct = expr.function(*[Value(v) for v in x]).data
    parsed = parse_expression(str(expr), {f"x{i}": v for i, v in enumerate(x)}).root.data
    assert parsed == direct or (math.isnan(parsed) and math.isnan(direct))


@QUICK
@given(expr=expressions(max_leaves=8), x=values(-2.0, 2.0), y=values(-2.0, 2.0))
def test_drawn_expressions_stay_inside_every_domain(expr: Expr, x: float, y: float) -> None:
    variables = [Value(x), Value(y)]
    memo: dict[int, object] = {}
    expr.build(variables, memo)
    for node in expr.nodes():
        if node.op not in DOMAINS or (node.op == "pow" and node.args[1].const in (2.0, 3.0)):
            continue  # (pow with an integer exponent takes any base)
        for kind, arg in zip(DOMAINS[node.op], node.args):
            v = memo[id(arg)]
            v = v.data if isinstance(v, Value) else v
            if math.isnan(v):  # an overflow further down (inf - inf), not a domain error
                continue
            if kind == "positive":
                assert v > 0, f"{node.op} got {v} from {arg} in {expr}"
            elif kind == "nonzero":
                assert v != 0, f"{node.op} got 0 from {arg} in {expr}"


@QUICK
@given(expr=graphs())
def test_graphs_share_a_node(expr: Expr) -> None:
    uses: dict[int, int] = {}
    for node in expr.nodes():
        for arg in node.args:
            uses[id(arg)] = uses.get(id(arg), 0) + 1
    assert max(uses.values()) >= 2


@QUICK
@given(v=values(-1e-300, 1e-300))
def test_values_are_normal_finite_floats(v: float) -> None:
    assert math.isfinite(v) and (v == 0.0 or abs(v) >= 2.2250738585072014e-308)


def test_the_profiles_exist() -> None:
    assert settings.get_profile("long").max_examples >= 10_000
    assert settings.get_profile("ci").derandomize


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(case=mlps())
def test_gradcheck_of_random_mlps(case) -> None:  # type: ignore[no-untyped-def]
    model, x = case
    # gradients with respect to the inputs
    gradcheck(lambda *xs: model(list(xs))[0], x, name=str(model)).raise_if_failed()
    # and with respect to every parameter, through a loss, on the built graph
    loss = cross_entropy(model(x), 0) if len(model(x)) > 1 else model(x)[0] * model(x)[0]
    report = gradcheck(loss, model.parameters(), name="loss")
    assert report.ok, str(report)


def test_unknown_names_are_rejected() -> None:
    with pytest.raises(ValueError, match="unknown ops"):
        expressions(ops=["tan"])
    with pytest.raises(ValueError, match="unknown activations"):
        find(mlps(activations=("swish",)), lambda case: True)
