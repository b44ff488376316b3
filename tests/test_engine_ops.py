"""Every op of ``engine.OPS``: forward value and local derivatives against mpmath at 50 digits.

Each op is reached every way a user reaches it: the ``Value`` operator or method (``a * b``,
``a.tanh()``, ``engine.maximum(a, b)``, ``engine.sum([...])``), the reflected forms with a
plain number (``2 + a``, ``2 ** a``), the op table called on plain floats, and the table's
``derivative`` function; the gradient is read after ``backward()``.

The expected numbers come from ``REF``: each op's forward and partial derivatives written in
closed form on mpmath numbers (independent of the engine). ``test_reference_derivatives_agree_
with_mpmath_diff`` checks those closed forms against mpmath's numerical differentiation, and
``test_every_op_has_a_test`` fails, naming the op, when an op of the table has no test here.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import mpmath
import pytest
from hypothesis import assume, example, given, settings
from hypothesis import strategies as st

import engine
from engine import OPS, Value

mpmath.mp.dps = 50
mpf = mpmath.mpf

SETTINGS = settings(max_examples=100, deadline=None)
EPS = 2.0**-52  # one ulp of 1.0


def fl(lo: float, hi: float) -> st.SearchStrategy[float]:
    """Bounded, finite, normal floats."""
    return st.floats(min_value=lo, max_value=hi, allow_nan=False, allow_infinity=False,
                     allow_subnormal=False)


def nonzero(lo: float, hi: float) -> st.SearchStrategy[float]:
    """Floats with lo <= |x| <= hi, either sign."""
    return fl(lo, hi) | fl(-hi, -lo)


def nonzero_or_zero(lo: float, hi: float) -> st.SearchStrategy[float]:
    """0.0, or lo <= |x| <= hi: keeps products and quotients out of the underflow range."""
    return nonzero(lo, hi) | st.just(0.0)


# --------------------------------------------------------------------------------------------
# The reference: each op in closed form on mpmath numbers
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Ref:
    f: Callable[..., Any]  # forward, on mpf
    df: Callable[..., tuple[Any, ...]]  # partial derivatives, on mpf
    point: tuple[float, ...]  # a point inside the domain, away from kinks


def _sigmoid(x: Any) -> Any:
    return 1 / (1 + mpmath.exp(-x))


def _pow_d(a: Any, b: Any) -> tuple[Any, Any]:
    # d/da a**b = b a**(b-1) (0 when b == 0: x**0 is the constant 1);
    # d/db a**b = a**b log a (0 when a == 0 and b > 0: 0**b is the constant 0 there).
    da = mpf(0) if b == 0 else b * a ** (b - 1)
    db = mpf(0) if a == 0 and b >= 0 else a**b * mpmath.log(a)
    return da, db


REF: dict[str, Ref] = {
    "add": Ref(lambda a, b: a + b, lambda a, b: (1, 1), (1.25, -0.5)),
    "sub": Ref(lambda a, b: a - b, lambda a, b: (1, -1), (1.25, -0.5)),
    "mul": Ref(lambda a, b: a * b, lambda a, b: (b, a), (1.25, -0.5)),
    "div": Ref(lambda a, b: a / b, lambda a, b: (1 / b, -a / b**2), (1.25, -0.5)),
    "neg": Ref(lambda a: -a, lambda a: (-1,), (0.75,)),
    "pow": Ref(lambda a, b: a**b, _pow_d, (1.7, 2.3)),
    "exp": Ref(mpmath.exp, lambda a: (mpmath.exp(a),), (0.3,)),
    "log": Ref(mpmath.log, lambda a: (1 / a,), (1.7,)),
    "log1p": Ref(mpmath.log1p, lambda a: (1 / (1 + a),), (0.4,)),
    "sqrt": Ref(mpmath.sqrt, lambda a: (1 / (2 * mpmath.sqrt(a)),), (2.5,)),
    "tanh": Ref(mpmath.tanh, lambda a: (mpmath.sech(a) ** 2,), (0.7,)),
    "sigmoid": Ref(_sigmoid, lambda a: (_sigmoid(a) * (1 - _sigmoid(a)),), (-0.4,)),
    "relu": Ref(lambda a: a if a > 0 else mpf(0), lambda a: (1 if a > 0 else 0,), (1.3,)),
    "abs": Ref(mpmath.fabs, lambda a: (mpmath.sign(a),), (-1.2,)),
    "sin": Ref(mpmath.sin, lambda a: (mpmath.cos(a),), (0.9,)),
    "cos": Ref(mpmath.cos, lambda a: (-mpmath.sin(a),), (0.9,)),
    "maximum": Ref(lambda a, b: a if a > b else b,
                   lambda a, b: (1, 0) if a > b else (0, 1), (1.0, 2.0)),
    "minimum": Ref(lambda a, b: a if a < b else b,
                   lambda a, b: (1, 0) if a < b else (0, 1), (1.0, 2.0)),
    "sum": Ref(lambda *xs: mpmath.fsum(xs), lambda *xs: (1,) * len(xs), (0.5, -1.5, 2.25)),
}


def assert_close(got: Any, want: Any, rel: float, abs_tol: float = 0.0, what: str = "") -> None:
    """|got - want| <= rel·|want| + abs_tol, computed in mpmath (so inf/nan in ``got`` fail)."""
    assert isinstance(got, float), f"{what}: expected a Python float, got {type(got).__name__}"
    want = mpf(want)
    err = abs(mpf(got) - want)
    assert err <= rel * abs(want) + abs_tol, f"{what}: got {got!r}, want {mpmath.nstr(want, 20)}"


def check(name: str, forms: list[Callable[..., Value]], args: tuple[float, ...],
          rel: float = 4 * EPS, abs_tol: float = 0.0, drel: float | None = None,
          dabs: float | None = None) -> None:
    """Op ``name`` at ``args``: forward and every partial derivative, against ``REF[name]``,
    through each of ``forms`` (built on fresh leaves, then ``backward()``), through the op
    table on plain floats, and through the table's local ``derivative``."""
    drel = rel if drel is None else drel
    dabs = abs_tol if dabs is None else dabs
    ref = REF[name]
    margs = [mpf(a) for a in args]
    want = ref.f(*margs)
    want_d = ref.df(*margs)
    op = OPS[name]
    assert_close(op(*args), want, rel, abs_tol, f"OPS[{name!r}]{args}")
    local = op.derivative(*args, op.forward(*args))
    assert len(local) == len(args)
    for i, (got, w) in enumerate(zip(local, want_d)):
        assert_close(float(got), w, drel, dabs, f"OPS[{name!r}].derivative{args}[{i}]")
    for form in forms:
        leaves = [Value(a) for a in args]
        out = form(*leaves)
        assert out.op is OPS[name]
        assert len(out.parents) == len(leaves)
        assert all(p is leaf for p, leaf in zip(out.parents, leaves)), "parents out of order"
        assert_close(out.data, want, rel, abs_tol, f"{name} forward at {args}")
        out.backward()
        for i, (leaf, w) in enumerate(zip(leaves, want_d)):
            assert_close(leaf.grad, w, drel, dabs, f"{name}: d/d(operand {i}) at {args}")


def check_partial(name: str, form: Callable[[Value], Value], args: tuple[float, ...], pos: int,
                  rel: float = 4 * EPS, abs_tol: float = 0.0) -> None:
    """``form(Value(args[pos]))`` applies op ``name`` to ``args`` with the other operands given
    as plain numbers (``2 + a``, ``a ** 3``): forward, and the derivative in operand ``pos``."""
    ref = REF[name]
    margs = [mpf(a) for a in args]
    leaf = Value(args[pos])
    out = form(leaf)
    assert out.op is OPS[name]
    assert out.parents[pos] is leaf
    for i, p in enumerate(out.parents):
        if i != pos:  # a plain number becomes a new constant leaf
            assert p.is_leaf and p.data == args[i] and type(p.data) is float
    assert_close(out.data, ref.f(*margs), rel, abs_tol, f"{name} forward at {args}")
    out.backward()
    assert_close(leaf.grad, ref.df(*margs)[pos], rel, abs_tol, f"{name}: d/d(operand {pos}) at {args}")


# --------------------------------------------------------------------------------------------
# Binary arithmetic
# --------------------------------------------------------------------------------------------

BIG = 1e150  # products and sums of two such numbers stay finite


@SETTINGS
@given(a=fl(-BIG, BIG), b=fl(-BIG, BIG))
@example(a=0.0, b=-0.0)
@example(a=1.0, b=2.0**-53)
@example(a=1e150, b=1e150)
def test_add(a: float, b: float) -> None:
    check("add", [lambda x, y: x + y, lambda x, y: OPS["add"](x, y)], (a, b))
    check_partial("add", lambda v: 2 + v, (2.0, b), 1)  # __radd__
    check_partial("add", lambda v: v + 2, (a, 2.0), 0)
    check_partial("add", lambda v: v + 0.5, (a, 0.5), 0)


@SETTINGS
@given(a=fl(-BIG, BIG), b=fl(-BIG, BIG))
@example(a=3.0, b=3.0)
@example(a=-1e150, b=1e150)
def test_sub(a: float, b: float) -> None:
    check("sub", [lambda x, y: x - y, lambda x, y: OPS["sub"](x, y)], (a, b))
    check_partial("sub", lambda v: 2 - v, (2.0, b), 1)  # __rsub__: d/db (2 - b) = -1
    check_partial("sub", lambda v: v - 2, (a, 2.0), 0)


@SETTINGS
@given(a=nonzero_or_zero(1 / BIG, BIG), b=nonzero_or_zero(1 / BIG, BIG))
@example(a=0.0, b=5.0)
@example(a=-3.0, b=7.0)  # -21; d/da = 7, d/db = -3
def test_mul(a: float, b: float) -> None:
    check("mul", [lambda x, y: x * y, lambda x, y: OPS["mul"](x, y)], (a, b))
    check_partial("mul", lambda v: 2 * v, (2.0, b), 1)  # __rmul__
    check_partial("mul", lambda v: v * 2, (a, 2.0), 0)
    check_partial("mul", lambda v: v * -0.25, (a, -0.25), 0)


@SETTINGS
@given(a=nonzero_or_zero(1e-100, 1e100), b=nonzero(1e-3, 1e100))
@example(a=1.0, b=3.0)  # 1/3; d/da = 1/3, d/db = -1/9
@example(a=-6.0, b=-0.5)  # 12; d/da = -2, d/db = 6/0.25 = 24
def test_div(a: float, b: float) -> None:
    check("div", [lambda x, y: x / y, lambda x, y: OPS["div"](x, y)], (a, b), rel=8 * EPS)
    check_partial("div", lambda v: 2 / v, (2.0, b), 1, rel=8 * EPS)  # __rtruediv__: -2/b²
    check_partial("div", lambda v: v / 2, (a, 2.0), 0, rel=8 * EPS)


@SETTINGS
@given(a=fl(-1e300, 1e300))
@example(a=0.0)
@example(a=-0.0)
def test_neg(a: float) -> None:
    check("neg", [lambda x: -x, lambda x: OPS["neg"](x)], (a,))


# --------------------------------------------------------------------------------------------
# pow: Value exponent on a positive base, reflected number base, integer exponents any base
# --------------------------------------------------------------------------------------------


@SETTINGS
@given(a=fl(1e-3, 1e3), b=nonzero_or_zero(1e-6, 8.0))
@example(a=1.0, b=3.5)  # 1; d/da = 3.5, d/db = 1·log 1 = 0
@example(a=4.0, b=0.5)  # 2; d/da = 0.5/2 = 0.25, d/db = 2 log 4
@example(a=2.0, b=0.0)  # 1; d/da = 0 (x**0 is constant), d/db = log 2
def test_pow(a: float, b: float) -> None:
    check("pow", [lambda x, y: x**y, lambda x, y: OPS["pow"](x, y)], (a, b),
          rel=64 * EPS)
    check_partial("pow", lambda v: v**b, (a, b), 0, rel=64 * EPS)  # float exponent
    check_partial("pow", lambda v: a**v, (a, b), 1, rel=64 * EPS)  # __rpow__, float base


@SETTINGS
@given(x=fl(-60.0, 60.0))
@example(x=0.0)  # 2**0 = 1, d/dx = log 2
@example(x=10.0)  # 1024, d/dx = 1024 log 2
def test_pow_reflected_number_base(x: float) -> None:
    check_partial("pow", lambda v: 2**v, (2.0, x), 1, rel=64 * EPS)
    check_partial("pow", lambda v: 0.5**v, (0.5, x), 1, rel=64 * EPS)


@SETTINGS
@given(a=nonzero_or_zero(1e-3, 100.0), n=st.integers(min_value=-6, max_value=6))
@example(a=0.0, n=0)  # 0**0 = 1, d/dx x**0 = 0
@example(a=0.0, n=1)  # 0, derivative 1·0**0 = 1
@example(a=0.0, n=2)  # 0, derivative 2·0 = 0
@example(a=-2.0, n=3)  # -8, derivative 3·4 = 12
@example(a=-0.5, n=-3)  # (-2)**3 = -8, derivative -3·(-0.5)**-4 = -48
@example(a=-3.0, n=2)  # 9, derivative -6
def test_pow_integer_exponent_any_base(a: float, n: int) -> None:
    assume(not (a == 0.0 and n < 0))  # the pole is in test_engine_policy
    want = mpf(a) ** n
    want_d = n * mpf(a) ** (n - 1) if n != 0 else mpf(0)
    for exponent in (n, float(n), Value(n)):  # int, float and Value exponents
        x = Value(a)
        y = x**exponent
        assert y.op is OPS["pow"] and y.parents[0] is x
        assert_close(y.data, want, 16 * EPS, 0.0, f"{a}**{exponent!r}")
        y.backward()
        assert_close(x.grad, want_d, 16 * EPS, 0.0, f"d/dx x**{n} at {a}")
    assert_close(OPS["pow"](a, n), want, 16 * EPS, 0.0, f"OPS['pow']({a}, {n})")


# --------------------------------------------------------------------------------------------
# Unary functions
# --------------------------------------------------------------------------------------------


@SETTINGS
@given(a=fl(-700.0, 700.0))
@example(a=0.0)  # 1, derivative 1
@example(a=1.0)  # e
@example(a=-700.0)
def test_exp(a: float) -> None:
    check("exp", [lambda x: x.exp(), lambda x: OPS["exp"](x)], (a,), rel=8 * EPS)


@SETTINGS
@given(a=fl(1e-300, 1e300))
@example(a=1.0)  # 0, derivative 1
@example(a=math.e)
@example(a=1e-300)  # derivative 1e300
def test_log(a: float) -> None:
    # log near 1 is small but math.log is accurate there in relative terms too
    check("log", [lambda x: x.log(), lambda x: OPS["log"](x)], (a,), rel=8 * EPS, abs_tol=1e-300)


@SETTINGS
@given(a=fl(-0.999, 1e300))
@example(a=0.0)  # log 1 = 0, derivative 1
@example(a=1e-20)  # log(1 + 1e-20) = 1e-20 - 5e-41: lost by log(1 + a), kept by log1p
@example(a=-0.5)  # log 0.5, derivative 2
def test_log1p(a: float) -> None:
    check("log1p", [lambda x: x.log1p(), lambda x: OPS["log1p"](x)], (a,), rel=8 * EPS, abs_tol=1e-300)


@SETTINGS
@given(a=fl(1e-300, 1e300))
@example(a=4.0)  # 2, derivative 1/(2·2) = 0.25
@example(a=2.0)
def test_sqrt(a: float) -> None:
    check("sqrt", [lambda x: x.sqrt(), lambda x: OPS["sqrt"](x)], (a,), rel=8 * EPS)


@SETTINGS
@given(a=fl(-20.0, 20.0))
@example(a=0.0)  # 0, derivative 1
@example(a=0.5)
@example(a=20.0)
def test_tanh(a: float) -> None:
    # 1 − tanh² loses relative accuracy when tanh ≈ ±1 (as PyTorch's formula): absolute bound
    check("tanh", [lambda x: x.tanh(), lambda x: OPS["tanh"](x)], (a,), rel=8 * EPS,
          dabs=8 * EPS)


@SETTINGS
@given(a=fl(-40.0, 40.0))
@example(a=0.0)  # 0.5, derivative 0.25
@example(a=-40.0)
@example(a=40.0)
def test_sigmoid(a: float) -> None:
    check("sigmoid", [lambda x: x.sigmoid(), lambda x: OPS["sigmoid"](x)], (a,), rel=8 * EPS,
          dabs=8 * EPS)


@SETTINGS
@given(a=nonzero(1e-300, 1e300))
@example(a=2.5)  # 2.5, derivative 1
@example(a=-2.5)  # 0, derivative 0
def test_relu(a: float) -> None:
    check("relu", [lambda x: x.relu(), lambda x: OPS["relu"](x)], (a,))


@SETTINGS
@given(a=nonzero(1e-300, 1e300))
@example(a=-3.0)  # 3, derivative -1
@example(a=3.0)  # 3, derivative 1
def test_abs(a: float) -> None:
    check("abs", [lambda x: x.abs(), lambda x: abs(x), lambda x: OPS["abs"](x)], (a,))


@SETTINGS
@given(a=fl(-1e3, 1e3))
@example(a=0.0)  # 0, derivative 1
@example(a=math.pi / 2)
@example(a=1e3)
def test_sin(a: float) -> None:
    check("sin", [lambda x: x.sin(), lambda x: OPS["sin"](x)], (a,), rel=8 * EPS, abs_tol=4 * EPS)


@SETTINGS
@given(a=fl(-1e3, 1e3))
@example(a=0.0)  # 1, derivative 0
@example(a=math.pi)
def test_cos(a: float) -> None:
    check("cos", [lambda x: x.cos(), lambda x: OPS["cos"](x)], (a,), rel=8 * EPS, abs_tol=4 * EPS)


# --------------------------------------------------------------------------------------------
# maximum, minimum (ties are in test_engine_policy), sum
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["maximum", "minimum"])
@SETTINGS
@given(a=fl(-1e300, 1e300), b=fl(-1e300, 1e300))
@example(a=1.0, b=math.nextafter(1.0, 2.0))  # the larger by one ulp takes all the gradient
@example(a=-1.0, b=-2.0)
def test_maximum_and_minimum(name: str, a: float, b: float) -> None:
    assume(a != b)
    op = getattr(engine, name)  # engine.maximum, engine.minimum
    check(name, [lambda x, y: op(x, y), lambda x, y: OPS[name](x, y)], (a, b))
    if a != 2.0:  # reflected: a plain number on either side
        check_partial(name, lambda v: op(v, 2.0), (a, 2.0), 0)
    if b != -2.0:
        check_partial(name, lambda v: op(-2.0, v), (-2.0, b), 1)


@SETTINGS
@given(xs=st.lists(fl(-1e6, 1e6), min_size=1, max_size=8))
@example(xs=[2.5])  # one operand: 2.5, derivative 1
@example(xs=[1.0, 2.0, 3.0])  # 6, derivatives 1, 1, 1
@example(xs=[0.1, 0.2, -0.3])
def test_sum(xs: list[float]) -> None:
    args = tuple(xs)
    # sequential float summation: error below n·eps·Σ|x|
    bound = len(xs) * EPS * math.fsum(abs(x) for x in xs)
    check("sum", [lambda *v: engine.sum(list(v)), lambda *v: engine.sum(iter(v)),
                  lambda *v: OPS["sum"](*v)], args, abs_tol=bound, dabs=0.0, drel=0.0)
    # plain numbers mixed in become constant leaves
    check_partial("sum", lambda v: engine.sum([v, 2.0, -0.5]), (xs[0], 2.0, -0.5), 0,
                  abs_tol=3 * EPS * (abs(xs[0]) + 2.5))


def test_sum_of_nothing_raises_value_error() -> None:
    with pytest.raises(ValueError, match="at least one"):
        engine.sum([])


def test_sum_is_one_node_with_all_parents_in_order() -> None:
    a, b, c = Value(1.0), Value(2.0), Value(4.0)
    s = engine.sum([a, b, c, a])  # 1 + 2 + 4 + 1 = 8
    assert s.data == 8.0
    assert s.op is OPS["sum"] and len(s.parents) == 4
    assert s.parents[0] is a and s.parents[1] is b and s.parents[2] is c and s.parents[3] is a
    s.backward()
    assert (a.grad, b.grad, c.grad) == (2.0, 1.0, 1.0)  # a appears twice


# --------------------------------------------------------------------------------------------
# The reference itself, and coverage of the op table
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(REF))
def test_reference_derivatives_agree_with_mpmath_diff(name: str) -> None:
    """Guards the oracle: the closed-form derivatives above equal mpmath's numerical ones."""
    ref = REF[name]
    point = [mpf(x) for x in ref.point]
    closed = ref.df(*point)
    for i in range(len(point)):
        orders = [0] * len(point)
        orders[i] = 1
        numeric = mpmath.diff(ref.f, point, orders) if len(point) > 1 else mpmath.diff(ref.f, point[0])
        assert abs(numeric - closed[i]) < mpf(10) ** -30, f"{name}: ∂/∂x{i}"


# op name -> the test(s) above that cover it (forward, local derivative, backward)
COVERAGE: dict[str, tuple[Callable[..., None], ...]] = {
    "add": (test_add,),
    "sub": (test_sub,),
    "mul": (test_mul,),
    "div": (test_div,),
    "neg": (test_neg,),
    "pow": (test_pow, test_pow_reflected_number_base, test_pow_integer_exponent_any_base),
    "exp": (test_exp,),
    "log": (test_log,),
    "log1p": (test_log1p,),
    "sqrt": (test_sqrt,),
    "tanh": (test_tanh,),
    "sigmoid": (test_sigmoid,),
    "relu": (test_relu,),
    "abs": (test_abs,),
    "sin": (test_sin,),
    "cos": (test_cos,),
    "maximum": (test_maximum_and_minimum,),
    "minimum": (test_maximum_and_minimum,),
    "sum": (test_sum, test_sum_is_one_node_with_all_parents_in_order),
}


def test_every_op_has_a_test() -> None:
    missing = sorted(set(OPS) - set(COVERAGE))
    stale = sorted(set(COVERAGE) - set(OPS))
    assert not missing, f"ops in engine.OPS with no test in test_engine_ops.py: {missing}"
    assert not stale, f"COVERAGE names ops that engine.OPS does not have: {stale}"
    no_ref = sorted(set(OPS) ^ set(REF))
    assert not no_ref, f"ops missing from (or unknown to) the mpmath reference REF: {no_ref}"
    for name, tests in COVERAGE.items():
        assert tests and all(t.__name__.startswith("test_") for t in tests), name


def test_op_table_rows_are_named_by_their_keys() -> None:
    # the table is keyed by op name, and op_by_name finds each row by that name
    for name, op in OPS.items():
        assert op.name == name
        assert engine.op_by_name(name) is op
    with pytest.raises(KeyError, match="no op named 'nope'"):
        engine.op_by_name("nope")


def test_op_called_with_the_wrong_number_of_operands_raises_type_error() -> None:
    with pytest.raises(TypeError, match="add takes 2"):
        OPS["add"](1.0)
    with pytest.raises(TypeError, match="tanh takes 1"):
        OPS["tanh"](1.0, 2.0)
    with pytest.raises(TypeError, match="at least one"):
        OPS["sum"]()
