"""The backward pass: deep graphs, accumulation, seeding, second derivatives (create_graph),
no_grad and detach, pickling and copying, and freeing a dropped graph.

Expected numbers are worked by hand in the comments, or computed with mpmath at 50 digits.
"""

from __future__ import annotations

import copy
import gc
import math
import pickle
import sys
import tracemalloc
from collections.abc import Callable
from typing import Any

import mpmath
import pytest

import engine
from engine import OPS, Value, no_grad

mpmath.mp.dps = 50
mpf = mpmath.mpf


def close(got: Any, want: Any, rel: float = 1e-13) -> bool:
    """|got − want| <= rel·|want| (want computed in mpmath)."""
    return bool(abs(mpf(got) - mpf(want)) <= rel * abs(mpf(want)))


# --------------------------------------------------------------------------------------------
# Deep graphs
# --------------------------------------------------------------------------------------------


def test_a_chain_of_a_million_nodes_under_the_default_recursion_limit() -> None:
    n = 1_000_000
    old_limit = sys.getrecursionlimit()
    sys.setrecursionlimit(1000)  # CPython's default
    try:
        x = Value(1.0)
        c = Value(1.0000001)
        v = x
        for _ in range(n):
            v = v * c  # v = x·c**n, one million mul nodes
        v.backward()
    finally:
        sys.setrecursionlimit(old_limit)
    cm = mpf(1.0000001)  # the float's exact value
    assert close(v.data, cm**n, 1e-9)  # 1.0000001**1e6 ≈ e**0.1 ≈ 1.10517
    assert close(x.grad, cm**n, 1e-9)  # d/dx x·c**n = c**n
    assert close(c.grad, n * cm ** (n - 1), 1e-9)  # d/dc x·c**n = n·x·c**(n-1) ≈ 1.105e6
    del v  # dropping the chain must not overflow the C stack either


def test_topological_order_puts_parents_first_each_node_once() -> None:
    a = Value(1.5)
    b = a * 2  # nodes: a, the constant 2, b
    c = a + b
    d = b * c
    order = engine.topological_order(d)
    assert len(order) == 5 and order[-1] is d
    assert len({id(n) for n in order}) == 5
    pos = {id(n): i for i, n in enumerate(order)}
    for node in order:
        for p in node.parents:
            assert pos[id(p)] < pos[id(node)]


def test_diamond_graph_accumulates_through_every_path() -> None:
    a = Value(1.5)
    b = a * 2  # 2a
    c = a + b  # 3a
    d = b * c  # 6a², d/da = 12a = 18
    d.backward()
    assert d.data == 13.5  # 6 · 2.25
    assert a.grad == 18.0
    assert c.grad == 3.0  # ∂d/∂c = b = 3
    assert b.grad == 7.5  # ∂d/∂b = c + ∂d/∂c·∂c/∂b = 4.5 + 3·1


# --------------------------------------------------------------------------------------------
# Accumulation and seeding
# --------------------------------------------------------------------------------------------


def _graph() -> tuple[Value, Value, Value, Value]:
    # f = z·z + z with z = x·y, plus x·x; at x = 3, y = 4: z = 12
    # ∂f/∂z = 2z + 1 = 25; ∂f/∂x = 25·y + 2x = 106; ∂f/∂y = 25·x = 75
    x, y = Value(3.0, "x"), Value(4.0, "y")
    z = x * y
    f = z * z + z + x * x
    return x, y, z, f


def test_backward_twice_doubles_every_leaf_gradient() -> None:
    x, y, z, f = _graph()
    f.backward()
    assert (x.grad, y.grad) == (106.0, 75.0)
    f.backward()
    assert (x.grad, y.grad) == (212.0, 150.0)  # leaves accumulate, exactly 2×


def test_backward_twice_doubles_exactly_even_with_several_contributions() -> None:
    # x gets three contributions of 0.1. Adding them into the running .grad a second time
    # would give ((0.3 + 0.1) + 0.1) + 0.1 = 0.6, but twice 0.30000000000000004 is
    # 0.6000000000000001: the second call's gradient must be summed apart, then added.
    x = Value(2.0)
    y = x * 0.1 + x * 0.1 + x * 0.1
    y.backward()
    assert x.grad == 0.30000000000000004  # 0.1 + 0.1 + 0.1 in floating point
    y.backward()
    assert x.grad == 2 * 0.30000000000000004


def test_interior_gradients_are_recomputed_not_accumulated() -> None:
    x, y, z, f = _graph()
    f.backward()
    assert z.grad == 25.0 and f.grad == 1.0
    f.backward()
    assert z.grad == 25.0 and f.grad == 1.0  # not 50 and 2


def test_zeroing_the_leaves_makes_a_second_backward_give_the_first_result() -> None:
    x, y, z, f = _graph()
    f.backward()
    x.grad = 0.0
    y.grad = 0.0
    f.backward()
    assert (x.grad, y.grad, z.grad) == (106.0, 75.0, 25.0)


def test_gradient_argument_scales_every_gradient() -> None:
    x, y, z, f = _graph()
    f.backward(gradient=2.5)
    assert (x.grad, y.grad, z.grad, f.grad) == (265.0, 187.5, 62.5, 2.5)  # 2.5 × (106, 75, 25, 1)
    x, y, z, f = _graph()
    f.backward(gradient=-1)
    assert (x.grad, y.grad) == (-106.0, -75.0)
    x, y, z, f = _graph()
    f.backward(gradient=Value(0.5))
    assert (x.grad, y.grad) == (53.0, 37.5)


def test_backward_rejects_a_non_number_gradient() -> None:
    x, y, z, f = _graph()
    for bad in (True, "1", None):
        with pytest.raises(TypeError):
            f.backward(gradient=bad)  # type: ignore[arg-type]


def test_backward_from_a_leaf_accumulates_its_seed() -> None:
    x = Value(7.0)
    x.backward()
    x.backward(gradient=2.0)
    assert x.grad == 3.0  # 1 + 2


def test_a_plain_number_operand_becomes_a_constant_leaf_with_its_own_gradient() -> None:
    x = Value(3.0)
    y = 2 * x  # d/dx = 2; the constant leaf 2 gets d/dc = x = 3
    y.backward()
    assert x.grad == 2.0 and y.parents[0].grad == 3.0


# --------------------------------------------------------------------------------------------
# Second derivatives: backward(create_graph=True)
# --------------------------------------------------------------------------------------------


def hessian(build: Callable[..., Value],
            args: tuple[float, ...]) -> tuple[float, list[float], list[list[float]]]:
    """Value, gradient and Hessian of ``build`` at ``args`` through create_graph."""
    leaves = [Value(a) for a in args]
    out = build(*leaves)
    out.backward(create_graph=True)
    grads = [float(leaf.grad) for leaf in leaves]
    for leaf in leaves:
        leaf.grad = 0.0
    return out.data, grads, engine.hessian_of(out, leaves)


def test_second_derivative_of_a_cube() -> None:
    x = Value(2.0)
    y = x**3
    y.backward(create_graph=True)
    g = x.grad
    assert isinstance(g, Value) and g.data == 12.0  # 3x² = 12
    x.grad = 0.0
    g.backward()
    assert x.grad == 12.0  # 6x = 12
    _, grad, h = hessian(lambda v: v**3, (3.0,))
    assert grad == [27.0] and h == [[18.0]]  # 3·9, 6·3
    _, grad, h = hessian(lambda v: v**3, (-2.0,))
    assert grad == [12.0] and h == [[-12.0]]  # 3·4, 6·(−2)


def test_mixed_partials_of_x_y_y() -> None:
    x, y = Value(3.0), Value(5.0)
    f = x * y * y
    f.backward(create_graph=True)
    gx, gy = x.grad, y.grad
    assert gx.data == 25.0 and gy.data == 30.0  # y² and 2xy
    x.grad = y.grad = 0.0
    gx.backward()
    assert float(x.grad) == 0.0 and y.grad == 10.0  # ∂²f/∂x² = 0, ∂²f/∂y∂x = 2y
    x.grad = y.grad = 0.0
    gy.backward()
    assert x.grad == 10.0 and y.grad == 6.0  # ∂²f/∂x∂y = 2y, ∂²f/∂y² = 2x


def test_second_derivative_of_tanh() -> None:
    for x0 in (0.7, -1.3, 0.0, 3.0):
        t = mpmath.tanh(mpf(x0))
        want = -2 * t * (1 - t**2)  # d²/dx² tanh = −2 tanh (1 − tanh²)
        assert abs(mpmath.diff(mpmath.tanh, mpf(x0), 2) - want) < mpf(10) ** -30
        _, grad, h = hessian(lambda v: v.tanh(), (x0,))
        assert close(grad[0], 1 - t**2)
        assert close(h[0][0], want) or abs(h[0][0] - float(want)) < 1e-16


def _mp_max(a: Any, b: Any) -> Any:
    return a if a > b else b


def _mp_min(a: Any, b: Any) -> Any:
    return a if a < b else b


SECOND_ORDER = [  # (op name, engine expression, mpmath expression, point)
    ("neg", lambda a: -a, lambda a: -a, (0.6,)),
    ("exp", lambda a: a.exp(), mpmath.exp, (0.3,)),
    ("log", lambda a: a.log(), mpmath.log, (1.7,)),
    ("log1p", lambda a: a.log1p(), mpmath.log1p, (0.4,)),
    ("sqrt", lambda a: a.sqrt(), mpmath.sqrt, (2.5,)),
    ("tanh", lambda a: a.tanh(), mpmath.tanh, (0.7,)),
    ("sigmoid", lambda a: a.sigmoid(), lambda a: 1 / (1 + mpmath.exp(-a)), (-0.4,)),
    ("relu", lambda a: a.relu() * a.relu(), lambda a: (a if a > 0 else 0) ** 2, (1.3,)),
    ("abs", lambda a: a.abs() * a, lambda a: abs(a) * a, (-1.2,)),
    ("sin", lambda a: a.sin(), mpmath.sin, (0.9,)),
    ("cos", lambda a: a.cos(), mpmath.cos, (0.9,)),
    ("add", lambda a, b: (a + b) * (a + b), lambda a, b: (a + b) ** 2, (1.5, -0.25)),
    ("sub", lambda a, b: (a - b) * (a - b) * a, lambda a, b: (a - b) ** 2 * a, (1.5, -0.25)),
    ("mul", lambda a, b: a * b * b * a, lambda a, b: a * a * b * b, (1.5, -0.25)),
    ("div", lambda a, b: a / b, lambda a, b: a / b, (1.5, -0.75)),
    ("pow", lambda a, b: a**b, lambda a, b: a**b, (1.7, 2.3)),
    ("pow int", lambda a: a**4, lambda a: a**4, (-1.5,)),
    ("pow rev", lambda a: 2.0**a, lambda a: 2**a, (0.7,)),
    ("maximum", lambda a, b: engine.maximum(a * a, b), lambda a, b: _mp_max(a * a, b), (1.5, 2.0)),
    ("minimum", lambda a, b: engine.minimum(a, b * b), lambda a, b: _mp_min(a, b * b), (1.5, 1.0)),
    ("sum", lambda a, b: engine.sum([a * a, a * b, b]), lambda a, b: a * a + a * b + b, (1.5, -0.5)),
]


@pytest.mark.parametrize("name, build, mp_f, point", SECOND_ORDER, ids=[c[0] for c in SECOND_ORDER])
def test_second_derivatives_of_every_op_match_mpmath(name: str, build: Callable[..., Value],
                                                      mp_f: Callable[..., Any],
                                                      point: tuple[float, ...]) -> None:
    data, grad, h = hessian(build, point)
    mp_point = [mpf(p) for p in point]
    n = len(point)
    assert close(data, mp_f(*mp_point)), name
    for i in range(n):
        orders = [0] * n
        orders[i] = 1
        want = mpmath.diff(mp_f, mp_point, orders) if n > 1 else mpmath.diff(mp_f, mp_point[0])
        assert close(grad[i], want, 1e-12), f"{name}: ∂/∂x{i}"
        for j in range(n):
            orders = [0] * n
            orders[i] += 1
            orders[j] += 1
            want = mpmath.diff(mp_f, mp_point, orders) if n > 1 else mpmath.diff(mp_f, mp_point[0], 2)
            got = h[i][j]
            assert close(got, want, 1e-12) or abs(got - float(want)) < 1e-14, \
                f"{name}: ∂²/∂x{i}∂x{j}: got {got!r}, want {mpmath.nstr(want, 17)}"


def test_covered_ops_of_the_second_order_test() -> None:
    names = {c[0].split()[0] for c in SECOND_ORDER}
    assert names == set(OPS), f"ops without a second-derivative check: {sorted(set(OPS) - names)}"


def test_create_graph_gradients_are_values_with_the_first_order_numbers() -> None:
    x, y = Value(3.0), Value(4.0)
    z = x * y
    f = z * z + z + x * x  # as _graph(): ∂f/∂x = 106, ∂f/∂y = 75
    f.backward(create_graph=True)
    assert isinstance(x.grad, Value) and isinstance(y.grad, Value)
    assert (x.grad.data, y.grad.data) == (106.0, 75.0)


# --------------------------------------------------------------------------------------------
# no_grad and detach
# --------------------------------------------------------------------------------------------


def test_no_grad_results_are_leaves() -> None:
    x = Value(1.0)
    assert engine.is_grad_enabled()
    with no_grad():
        assert not engine.is_grad_enabled()
        y = x * 2 + x.exp()  # 2 + e
        s = engine.sum([x, y])
    assert engine.is_grad_enabled()
    assert close(y.data, 2 + mpmath.e)
    for node in (y, s):
        assert node.op is None and node.parents == () and node.is_leaf
    y.backward()
    assert x.grad == 0.0  # nothing connects y to x


def test_no_grad_restores_recording_after_an_exception_and_nests() -> None:
    with pytest.raises(RuntimeError):
        with no_grad():
            raise RuntimeError("boom")
    assert engine.is_grad_enabled()
    with no_grad():
        with no_grad():
            pass
        assert not engine.is_grad_enabled()  # the outer block is still active
    assert engine.is_grad_enabled()


def test_no_grad_as_a_decorator() -> None:
    @no_grad()
    def step(v: Value) -> Value:
        assert not engine.is_grad_enabled()
        return v * 3

    x = Value(2.0)
    y = step(x)
    assert engine.is_grad_enabled()
    assert y.data == 6.0 and y.op is None and y.parents == ()
    assert step.__name__ == "step"


def test_detach_is_a_leaf_through_which_no_gradient_flows() -> None:
    x = Value(3.0, "x")
    y = x * x  # 9
    d = y.detach()
    assert d is not y and d.data == 9.0 and d.label == y.label
    assert d.op is None and d.parents == () and d.grad == 0.0
    w = Value(2.0, "w")
    z = d * x + w * y  # ∂z/∂x = d + w·2x = 9 + 12 = 21 (none through d)
    z.backward()
    assert x.grad == 21.0 and w.grad == 9.0 and d.grad == 3.0
    assert Value(5.0, "k").detach().label == "k"


# --------------------------------------------------------------------------------------------
# Pickling and copying
# --------------------------------------------------------------------------------------------


def _check_copy(z: Value, original_x: Value) -> None:
    # z = tanh(x·y) + x·x at x = 2, y = 3 after backward:
    # z = tanh 6 + 4; ∂z/∂x = 3 sech² 6 + 4; ∂z/∂y = 2 sech² 6
    # (1 − tanh² 6 ≈ 2.5e-5 is computed from tanh 6 ≈ 1, so only ~1e-12 relative accuracy)
    s2 = mpmath.sech(6) ** 2
    assert close(z.data, mpmath.tanh(6) + 4)
    assert z.op is OPS["add"] and z.grad == 1.0
    t, sq = z.parents
    assert t.op is OPS["tanh"] and sq.op is OPS["mul"] and OPS["mul"] is engine.op_by_name("mul")
    x = sq.parents[0]
    assert sq.parents[1] is x  # the shared node stays one node
    assert x is not original_x
    p = t.parents[0]
    assert p.op is OPS["mul"] and p.parents[0] is x
    y = p.parents[1]
    assert (x.data, x.label, y.data, y.label) == (2.0, "x", 3.0, "y")
    assert close(x.grad, 3 * s2 + 4) and close(y.grad, 2 * s2, 1e-10)
    assert type(x.data) is float and x.op is None and x.parents == ()
    # the copy is a working graph of its own
    x.grad = y.grad = 0.0
    z.backward()
    assert close(x.grad, 3 * s2 + 4) and close(y.grad, 2 * s2, 1e-10)
    assert close(original_x.grad, 3 * s2 + 4)  # the original is untouched


def _graph_for_copy() -> tuple[Value, Value]:
    x, y = Value(2.0, "x"), Value(3.0, "y")
    z = (x * y).tanh() + x * x
    z.backward()
    return z, x


@pytest.mark.parametrize("protocol", sorted({2, pickle.DEFAULT_PROTOCOL, pickle.HIGHEST_PROTOCOL}))
def test_pickle_round_trip_keeps_the_graph_and_the_op_singletons(protocol: int) -> None:
    z, x = _graph_for_copy()
    clone = pickle.loads(pickle.dumps(z, protocol=protocol))
    _check_copy(clone, x)


def test_deepcopy_keeps_the_graph_and_the_op_singletons() -> None:
    z, x = _graph_for_copy()
    _check_copy(copy.deepcopy(z), x)


@pytest.mark.parametrize("copier", [lambda v: pickle.loads(pickle.dumps(v)), copy.deepcopy])
def test_deep_graphs_pickle_and_copy_without_recursion(copier: Callable[[Any], Any]) -> None:
    x = Value(0.0, "x")
    v = x
    for _ in range(20_000):  # far deeper than the recursion limit of 1000
        v = v + 1.0
    clone, clone_x = copier([v, x])
    assert clone.data == 20_000.0  # 0 + 1 + ... (20,000 ones)
    clone.backward()
    assert clone_x.grad == 1.0  # dv/dx = 1 through every add
    # The leaf stays one object: the copy of the graph holds the same x as the list.
    first_leaf = clone
    while first_leaf.parents:
        first_leaf = first_leaf.parents[0]
    assert first_leaf is clone_x and x.grad == 0.0  # the original is untouched


def test_ops_copy_and_pickle_to_the_same_singleton() -> None:
    for op in OPS.values():
        assert pickle.loads(pickle.dumps(op)) is op
        assert copy.copy(op) is op and copy.deepcopy(op) is op


# --------------------------------------------------------------------------------------------
# Freeing a dropped graph
# --------------------------------------------------------------------------------------------


def test_a_dropped_graph_is_freed_by_reference_counting_alone() -> None:
    """With the cycle collector off, a dropped graph (after its backward pass) must go back to
    the allocator at once: any reference cycle (a closure that holds its own node, a parent
    pointing back to a child) would keep it alive until gc.collect(), which would find it."""
    gc.collect()
    was_enabled = gc.isenabled()
    gc.disable()
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        x = Value(0.5)
        v = x
        for _ in range(5000):
            v = (v * 0.999 + x).tanh() + engine.maximum(v, x) - engine.sum([v, x]) * 0.5
        v.backward()
        built = tracemalloc.get_traced_memory()[0]
        del v, x
        after = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
        found = gc.collect()
        if was_enabled:
            gc.enable()
    # what stays is CPython's free lists of small tuples (~200 kB, whatever the graph's size)
    assert built - base > 5_000_000, "the graph should take megabytes"
    assert after - base < 500_000, f"{after - base} bytes still held after dropping the graph"
    assert found == 0, f"gc found {found} unreachable objects: the graph had reference cycles"


def test_second_derivative_through_an_exponent_at_zero() -> None:
    # f(t) = (3 + t)**t = exp(g), g = t·ln(3 + t): g' = ln(3 + t) + t/(3 + t),
    # g'' = 1/(3 + t) + 3/(3 + t)²; at t = 0: f'' = f·(g'' + g'²) = 2/3 + ln²3 = 1.8736156...
    # (Masking d/da a**b = b·a**(b−1) to a constant 0 wherever b == 0 loses the 1/3 from g''.)
    t = Value(0.0)
    ((3 + t) ** t).backward(create_graph=True)
    first = t.grad
    assert first.data == pytest.approx(math.log(3.0), rel=1e-15)
    t.grad = 0.0
    first.backward()
    assert t.grad == pytest.approx(2 / 3 + math.log(3.0) ** 2, rel=1e-14)
