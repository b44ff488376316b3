"""The engine's conventions, case by case: kinks, inf/nan (IEEE-754 and PyTorch), and what a
``Value`` accepts and how it compares, prints and hashes.

Every expected number is written by hand (the arithmetic is in the comment) or comes from
numpy's IEEE-754 float64 functions.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from fractions import Fraction

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

import engine
from engine import OPS, Value

inf, nan = math.inf, math.nan


def fl(lo: float, hi: float) -> st.SearchStrategy[float]:
    return st.floats(min_value=lo, max_value=hi, allow_nan=False, allow_infinity=False,
                     allow_subnormal=False)


def is_nan(x: float) -> bool:
    return isinstance(x, float) and x != x


def grads_of(build: Callable[..., Value], *xs: float) -> tuple[float, list[float]]:
    """``build`` on fresh leaves, then backward: (output data, leaf gradients)."""
    leaves = [Value(x) for x in xs]
    out = build(*leaves)
    out.backward()
    return out.data, [leaf.grad for leaf in leaves]


# --------------------------------------------------------------------------------------------
# Kinks: as PyTorch
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("x", [0.0, -0.0])
def test_relu_derivative_at_zero_is_zero(x: float) -> None:
    assert grads_of(lambda a: a.relu(), x) == (0.0, [0.0])  # relu(0) = 0, relu'(0) = 0


@pytest.mark.parametrize("x", [0.0, -0.0])
def test_abs_derivative_at_zero_is_zero(x: float) -> None:
    assert grads_of(lambda a: a.abs(), x) == (0.0, [0.0])  # |0| = 0, abs'(0) = 0
    assert grads_of(lambda a: abs(a), x) == (0.0, [0.0])


def test_relu_and_abs_next_to_zero() -> None:
    tiny = 1e-300
    assert grads_of(lambda a: a.relu(), tiny) == (tiny, [1.0])
    assert grads_of(lambda a: a.relu(), -tiny) == (0.0, [0.0])
    assert grads_of(lambda a: a.abs(), -tiny) == (tiny, [-1.0])


@pytest.mark.parametrize("fn", [engine.maximum, engine.minimum], ids=["maximum", "minimum"])
def test_tie_splits_the_gradient_in_half(fn: Callable[..., Value]) -> None:
    a, b = Value(1.5), Value(1.5)
    out = fn(a, b)
    out.backward(gradient=3.0)
    assert out.data == 1.5
    assert (a.grad, b.grad) == (1.5, 1.5)  # 0.5 · 3 each


@pytest.mark.parametrize("fn", [engine.maximum, engine.minimum], ids=["maximum", "minimum"])
def test_tie_of_a_value_with_itself_gives_it_the_whole_gradient(fn: Callable[..., Value]) -> None:
    a = Value(-2.0)
    out = fn(a, a)
    assert out.parents[0] is a and out.parents[1] is a
    out.backward()
    assert out.data == -2.0
    assert a.grad == 1.0  # 0.5 + 0.5


@pytest.mark.parametrize("fn", [engine.maximum, engine.minimum], ids=["maximum", "minimum"])
def test_tie_with_a_plain_number_and_between_signed_zeros(fn: Callable[..., Value]) -> None:
    assert grads_of(lambda a: fn(a, 2.0), 2.0) == (2.0, [0.5])
    assert grads_of(lambda a: fn(2.0, a), 2.0) == (2.0, [0.5])
    _, g = grads_of(fn, 0.0, -0.0)  # 0.0 == -0.0: a tie
    assert g == [0.5, 0.5]


# --------------------------------------------------------------------------------------------
# Numerical policy: IEEE-754 results, never a Python exception
# --------------------------------------------------------------------------------------------


def test_overflow_gives_inf() -> None:
    assert Value(1000).exp().data == inf  # e**1000 > 1.8e308
    assert (Value(10.0) ** 400).data == inf  # 1e400
    assert (Value(1e308) * 10).data == inf  # 1e309
    assert (Value(-1e308) * 10).data == -inf
    assert (Value(1e308) + 1e308).data == inf
    assert (Value(-10.0) ** 401).data == -inf  # odd power of a negative base
    assert (Value(-10.0) ** 400).data == inf
    assert (Value(2.0) ** Value(1e6)).data == inf
    assert Value(10**400).data == inf  # an int too large for a float
    assert Value(-(10**400)).data == -inf


def test_exp_overflow_gradient_is_inf() -> None:
    assert grads_of(lambda a: a.exp(), 1000.0) == (inf, [inf])  # d/dx e**x = e**x


def test_one_over_zero_is_inf_with_the_sign_of_the_quotient() -> None:
    assert (1 / Value(0.0)).data == inf
    assert (-1 / Value(0.0)).data == -inf
    assert (1 / Value(-0.0)).data == -inf
    assert (-1 / Value(-0.0)).data == inf
    assert (Value(1.0) / 0).data == inf
    assert (Value(-3.0) / 0.0).data == -inf
    assert (Value(inf) / 0.0).data == inf
    assert OPS["div"](1.0, -0.0) == -inf  # the table on plain numbers too


def test_derivatives_of_one_over_x_at_zero() -> None:
    # d/dx 1/x = -1/x²: -inf at 0 (PyTorch: -(1/0)/0 = -inf)
    assert grads_of(lambda a: 1 / a, 0.0) == (inf, [-inf])
    # d/da a/b = 1/b = inf at b = 0
    out, (ga, gb) = grads_of(lambda a, b: a / b, 2.0, 0.0)
    assert out == inf and ga == inf and gb == -inf  # d/db = -(a/b)/b = -inf


def test_zero_over_zero_is_nan() -> None:
    assert is_nan((Value(0.0) / 0).data)
    assert is_nan((Value(0.0) / Value(-0.0)).data)
    assert is_nan((0 / Value(0.0)).data)
    assert is_nan((Value(nan) / 0.0).data)
    assert is_nan((Value(inf) / inf).data)


def test_log_at_zero_and_below() -> None:
    assert Value(0.0).log().data == -inf
    assert Value(-0.0).log().data == -inf
    assert is_nan(Value(-1).log().data)
    assert Value(inf).log().data == inf
    assert grads_of(lambda a: a.log(), 0.0) == (-inf, [inf])  # d/dx log x = 1/x = 1/0


def test_sqrt_at_zero_and_below() -> None:
    assert is_nan(Value(-1).sqrt().data)
    assert Value(0.0).sqrt().data == 0.0
    assert grads_of(lambda a: a.sqrt(), 0.0) == (0.0, [inf])  # d/dx √x = 1/(2·0)
    sq = Value(-0.0).sqrt().data
    assert sq == 0.0 and math.copysign(1.0, sq) == -1.0  # IEEE: √-0 = -0


def test_negative_base_with_fractional_exponent_is_nan_not_complex() -> None:
    y = Value(-8) ** (1 / 3)
    assert type(y.data) is float and is_nan(y.data)
    y = Value(-8.0) ** Value(0.5)
    assert type(y.data) is float and is_nan(y.data)
    assert is_nan(OPS["pow"](-8.0, 1 / 3))
    y.backward()  # no exception from the backward pass either


def test_zero_to_a_negative_power_is_a_signed_pole() -> None:
    assert (Value(0.0) ** -1).data == inf
    assert (Value(-0.0) ** -1).data == -inf  # odd power keeps the sign of the zero
    assert (Value(-0.0) ** -2).data == inf
    assert (Value(0.0) ** -0.5).data == inf


def test_pow_derivatives_at_zero() -> None:
    assert grads_of(lambda a: a**0, 0.0) == (1.0, [0.0])  # x**0 is the constant 1
    assert grads_of(lambda a: a**0.5, 0.0) == (0.0, [inf])  # 0.5·0**-0.5 = inf
    assert grads_of(lambda a: a**2, 0.0) == (0.0, [0.0])  # 2·0**1 = 0
    assert grads_of(lambda a: a**1, 0.0) == (0.0, [1.0])  # 1·0**0 = 1
    # d/db 0**b is 0 for b >= 0 (PyTorch's convention), not 0·log 0 = nan
    out, (ga, gb) = grads_of(lambda a, b: a**b, 0.0, 2.0)
    assert (out, ga, gb) == (0.0, 0.0, 0.0)
    out, (ga, gb) = grads_of(lambda a, b: a**b, 0.0, 0.0)
    assert (out, ga, gb) == (1.0, 0.0, 0.0)


def test_saturating_tanh_and_sigmoid() -> None:
    assert grads_of(lambda a: a.tanh(), 1000.0) == (1.0, [0.0])  # 1 − 1² = 0
    assert grads_of(lambda a: a.tanh(), -1000.0) == (-1.0, [0.0])
    assert grads_of(lambda a: a.sigmoid(), 1000.0) == (1.0, [0.0])  # 1·(1 − 1) = 0
    assert grads_of(lambda a: a.sigmoid(), -1000.0) == (0.0, [0.0])  # 0·(1 − 0) = 0
    assert grads_of(lambda a: a.sigmoid(), inf) == (1.0, [0.0])
    assert grads_of(lambda a: a.sigmoid(), -inf) == (0.0, [0.0])


def test_sin_and_cos_of_inf_are_nan() -> None:
    for x in (inf, -inf):
        out, (g,) = grads_of(lambda a: a.sin(), x)
        assert is_nan(out) and is_nan(g)  # d/dx sin = cos(inf) = nan
        out, (g,) = grads_of(lambda a: a.cos(), x)
        assert is_nan(out) and is_nan(g)


def test_nan_propagates_through_maximum_minimum_and_relu() -> None:
    assert is_nan(engine.maximum(Value(nan), 1.0).data)
    assert is_nan(engine.maximum(1.0, Value(nan)).data)
    assert is_nan(engine.minimum(Value(nan), 1.0).data)
    assert is_nan(engine.minimum(1.0, Value(nan)).data)
    assert is_nan(Value(nan).relu().data)


SPECIALS = [0.0, -0.0, 1.0, -1.0, 0.5, -2.5, 3.0, inf, -inf, nan, 1e308, -1e308, 1e-300, 710.0, -800.0]


def _call(name: str, leaves: list[Value]) -> Value:
    return OPS[name](*leaves)


@pytest.mark.parametrize("name", sorted(OPS))
def test_no_exception_escapes_an_op_at_special_values(name: str) -> None:
    """Every op, at every combination of special operands: forward, backward and a recorded
    backward (create_graph) all return floats; none raises."""
    arity = OPS[name].arity or 3
    for args in itertools.product(SPECIALS, repeat=arity):
        leaves = [Value(a) for a in args]
        out = _call(name, leaves)
        assert type(out.data) is float
        out.backward()
        assert all(type(leaf.grad) is float for leaf in leaves), (name, args)
        leaves = [Value(a) for a in args]
        out = _call(name, leaves)
        out.backward(create_graph=True)
        for leaf in leaves:
            g = leaf.grad
            assert isinstance(g, Value) and type(g.data) is float, (name, args)
        assert type(OPS[name](*args)) is float


NUMPY_FORWARD = {  # name -> numpy float64 function: IEEE-754 results at the special values
    "add": "add", "sub": "subtract", "mul": "multiply", "div": "divide", "neg": "negative",
    "exp": "exp", "log": "log", "log1p": "log1p", "sqrt": "sqrt", "tanh": "tanh", "abs": "abs",
    "sin": "sin", "cos": "cos", "maximum": "maximum", "minimum": "minimum",
}


@pytest.mark.parametrize("name", sorted(NUMPY_FORWARD))
def test_forward_at_special_values_matches_ieee_754(name: str) -> None:
    np = pytest.importorskip("numpy", reason="numpy is the IEEE-754 reference here")
    fn = getattr(np, NUMPY_FORWARD[name])
    arity = OPS[name].arity
    with np.errstate(all="ignore"):
        for args in itertools.product(SPECIALS, repeat=arity):
            want = float(fn(*[np.float64(a) for a in args]))
            got = OPS[name](*[Value(a) for a in args]).data
            if want != want:
                assert got != got, f"{name}{args}: got {got!r}, want nan"
            else:  # equal up to one ulp (libm and numpy may round transcendental functions apart)
                assert got == want or abs(got - want) <= 2.3e-16 * abs(want), \
                    f"{name}{args}: got {got!r}, want {want!r}"


# pow at special values, as C99 Annex F (F.9.4.4) says, which PyTorch follows
# (numpy differs at pow(-inf, 0.5), so it is no reference here): (base, exponent, result)
POW_C99 = [
    (nan, 0.0, 1.0), (inf, -0.0, 1.0), (-5.0, 0.0, 1.0),  # x**±0 = 1 for any x, even nan
    (1.0, nan, 1.0), (1.0, inf, 1.0), (1.0, -inf, 1.0),  # 1**y = 1 for any y, even nan
    (-1.0, inf, 1.0), (-1.0, -inf, 1.0),
    (2.0, inf, inf), (0.5, inf, 0.0), (-2.0, inf, inf), (-0.5, inf, 0.0),
    (2.0, -inf, 0.0), (0.5, -inf, inf), (-2.0, -inf, 0.0), (-0.5, -inf, inf),
    (inf, 0.5, inf), (inf, -0.5, 0.0),
    (-inf, 3.0, -inf), (-inf, 2.0, inf), (-inf, 0.5, inf),  # odd / even / not an integer
    (-inf, -3.0, -0.0), (-inf, -2.0, 0.0), (-inf, -0.5, 0.0),
    (0.0, -3.0, inf), (-0.0, -3.0, -inf), (-0.0, -2.0, inf), (-0.0, -0.5, inf),
    (0.0, 3.0, 0.0), (-0.0, 3.0, -0.0), (-0.0, 2.0, 0.0), (-0.0, 0.5, 0.0),
    (-8.0, 1 / 3, nan), (-2.0, 0.5, nan), (-2.0, -2.5, nan),
    (nan, 1.0, nan), (2.0, nan, nan),
    (10.0, 400.0, inf), (-10.0, 401.0, -inf), (-10.0, 400.0, inf), (10.0, -400.0, 0.0),
    (-10.0, -401.0, -0.0), (1e-300, -2.0, inf), (-1e-300, -3.0, -inf),
    (-2.0, 3.0, -8.0), (-2.0, -2.0, 0.25), (4.0, 0.5, 2.0),
]


@pytest.mark.parametrize("base, exponent, want", POW_C99)
def test_pow_at_special_values_follows_c99(base: float, exponent: float, want: float) -> None:
    for got in ((Value(base) ** exponent).data, (base ** Value(exponent)).data,
                OPS["pow"](base, exponent)):
        assert type(got) is float
        if want != want:
            assert got != got, f"{base!r} ** {exponent!r}: got {got!r}, want nan"
        else:  # the same number with the same sign (signed zeros and infinities)
            assert got == want and math.copysign(1.0, got) == math.copysign(1.0, want), \
                f"{base!r} ** {exponent!r}: got {got!r}, want {want!r}"


@settings(max_examples=100, deadline=None)
@given(a=fl(-1e308, 1e308), b=fl(-1e308, 1e308))
@example(a=1e308, b=1e308)
@example(a=-1e308, b=1e-300)
@example(a=0.0, b=-0.0)
def test_no_exception_escapes_any_op_over_the_whole_float_range(a: float, b: float) -> None:
    for name, op in OPS.items():
        args = (a, b, a * 0.5) if op.arity == 0 else (a, b)[: op.arity]
        leaves = [Value(x) for x in args]
        out = op(*leaves)
        out.backward()
        assert type(out.data) is float
        assert all(type(leaf.grad) is float for leaf in leaves), name


# --------------------------------------------------------------------------------------------
# Building a Value
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("x, want", [
    (3, 3.0), (-7, -7.0), (0, 0.0), (2.5, 2.5), (-0.0, -0.0), (Fraction(1, 4), 0.25), (2**53 + 1, 2.0**53),
])
def test_accepts_int_float_and_other_reals_as_an_exact_python_float(x: object, want: float) -> None:
    v = Value(x)  # type: ignore[arg-type]
    assert type(v.data) is float
    assert v.data == want and math.copysign(1.0, v.data) == math.copysign(1.0, want)
    assert v.grad == 0.0 and v.op is None and v.parents == () and v.label is None and v.is_leaf


def test_accepts_numpy_scalars_as_an_exact_python_float() -> None:
    np = pytest.importorskip("numpy", reason="numpy scalars are only testable with numpy")
    cases = [
        (np.float64(2.5), 2.5),
        (np.float32(0.1), 0.100000001490116119384765625),  # 0.1 rounded to float32, exactly
        (np.int64(7), 7.0),
        (np.int8(-3), -3.0),
        (np.float16(1.5), 1.5),
    ]
    for x, want in cases:
        v = Value(x)
        assert type(v.data) is float, type(x).__name__
        assert v.data == want
    # arithmetic with a numpy scalar on the right
    y = Value(2.0) * np.float32(0.5)
    assert isinstance(y, Value) and type(y.data) is float and y.data == 1.0


@pytest.mark.parametrize("bad, type_name", [
    (True, "bool"), (False, "bool"), ("1.0", "str"), (None, "NoneType"), (1 + 2j, "complex"),
    ([1.0], "list"), ((1.0,), "tuple"), ({"x": 1}, "dict"),
])
def test_rejects_non_real_data_with_a_type_error_naming_the_type(bad: object, type_name: str) -> None:
    with pytest.raises(TypeError) as info:
        Value(bad)  # type: ignore[arg-type]
    assert type_name in str(info.value), str(info.value)


def test_rejects_a_numpy_bool() -> None:
    np = pytest.importorskip("numpy", reason="numpy bool is only testable with numpy")
    with pytest.raises(TypeError, match="bool"):
        Value(np.bool_(True))


@pytest.mark.parametrize("bad", [True, "2", None, 1j, [1.0]])
def test_rejects_non_real_operands_in_arithmetic(bad: object) -> None:
    with pytest.raises(TypeError, match=type(bad).__name__):
        Value(1.0) + bad  # type: ignore[operator]
    with pytest.raises(TypeError, match=type(bad).__name__):
        engine.maximum(Value(1.0), bad)


def test_rejects_a_non_string_label() -> None:
    with pytest.raises(TypeError, match="int"):
        Value(1.0, label=3)  # type: ignore[arg-type]


def test_repr() -> None:
    assert repr(Value(2.0, label="w0")) == "Value(data=2.0, grad=0.0, label='w0')"
    assert repr(Value(2)) == "Value(data=2.0, grad=0.0)"
    v = Value(-1.5, "x")
    (v * 3).backward()
    assert repr(v) == "Value(data=-1.5, grad=3.0, label='x')"


def test_parents_are_kept_in_order_with_duplicates() -> None:
    a, b = Value(3.0), Value(5.0)
    sq = a * a
    assert len(sq.parents) == 2 and sq.parents[0] is a and sq.parents[1] is a
    d = b - a  # 5 − 3
    assert d.parents[0] is b and d.parents[1] is a and d.data == 2.0
    r = 10 - a  # a constant leaf first, then a
    assert r.parents[1] is a and r.parents[0].data == 10.0 and r.parents[0].is_leaf
    sq.backward()
    assert a.grad == 6.0  # d/da a·a = 2a


def test_equality_and_hash_are_by_identity() -> None:
    a, b = Value(1.0), Value(1.0)
    assert a != b and not (a == b)
    assert a == a
    assert len({a, b}) == 2
    assert a in {a} and b not in {a}
    assert {a: "a", b: "b"}[b] == "b"
    assert Value(1.0) != 1.0


def test_ordering_compares_data_and_returns_bool() -> None:
    a, b = Value(1.0), Value(2.0)
    results = [a < b, a <= b, b > a, b >= a, a < 1.5, 2 > a, a >= 1, a <= 1.0]
    assert results == [True] * 8
    assert all(type(r) is bool for r in results)
    assert [b < a, b <= a, a > b, a >= b, a < 1.0, a > 1] == [False] * 6
    assert not (Value(nan) < 1.0) and not (Value(nan) >= 1.0)


def test_sorted_max_and_min_work_on_values() -> None:
    vs = [Value(3.0), Value(-1.0), Value(2.0)]
    s = sorted(vs)
    assert [v.data for v in s] == [-1.0, 2.0, 3.0]
    assert s[0] is vs[1] and s[2] is vs[0]  # the same nodes, reordered
    assert max(vs) is vs[0] and min(vs) is vs[1]
    assert float(vs[2]) == 2.0


def test_a_numpy_array_operand_is_rejected_on_either_side() -> None:
    np = pytest.importorskip("numpy", reason="numpy arrays are what this test feeds in")
    for product in (lambda: np.array([2.0]) * Value(3.0), lambda: Value(3.0) * np.array([2.0])):
        with pytest.raises(TypeError, match="got ndarray"):
            product()
    assert (np.float64(2.0) * Value(3.0)).data == 6.0  # a numpy scalar is a number


@pytest.mark.parametrize("x", [15.625, -15.625, 20.0, 35.0])
def test_tanh_and_sigmoid_derivatives_keep_full_precision_in_the_tails(x: float) -> None:
    # 1 − tanh²(x) computed from the rounded tanh(x) ≈ 1 loses most digits (a relative error
    # of 7e-5 at x = 15.625); 4σ(2x)σ(−2x) and σ(x)σ(−x) keep them all.
    import mpmath

    mpmath.mp.dps = 50
    t, s = Value(x), Value(x)
    t.tanh().backward()
    s.sigmoid().backward()
    sech2 = mpmath.sech(x) ** 2
    sig = 1 / (1 + mpmath.exp(-x))
    assert t.grad == pytest.approx(float(sech2), rel=1e-13, abs=0.0)
    assert s.grad == pytest.approx(float(sig * (1 - sig)), rel=1e-13, abs=0.0)
