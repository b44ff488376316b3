"""gradcheck: its numbers on hand-worked cases, kinks, the exact reference, blame, and no false
failure on random domain-safe expressions and graphs."""

from __future__ import annotations

import math

import pytest
from hypothesis import HealthCheck, given, settings

from engine import Value, gradcheck, maximum
from engine.testing import expressions, graphs, points
from tests.mutants import planted

PROPERTY = settings(deadline=None, suppress_health_check=list(HealthCheck))


def examples(scale: float) -> settings:
    """The loaded profile's example count (dev, ci, or long for ``make fuzz``), scaled."""
    return settings(PROPERTY, max_examples=max(10, int(settings.default.max_examples * scale)))


def test_a_product_by_hand() -> None:
    report = gradcheck(lambda x, y: x * y, [Value(3.0, "w"), Value(4.0, "b")])
    assert report.ok and [r.name for r in report.rows] == ["w", "b"]
    w, b = report.rows
    assert (w.value, w.engine, b.value, b.engine) == (3.0, 4.0, 4.0, 3.0)  # ∂(wb)/∂w = b, ∂/∂b = w
    assert w.reference == pytest.approx(4.0, rel=1e-12, abs=0.0) and w.error <= w.tolerance
    assert [c.ok for c in report.checks] == [True, True, True]
    assert report.summary() == "OK: 2 derivatives agree"
    assert "∂f/∂w" in str(report) and "<table>" in report._repr_html_()


def test_the_exact_reference_against_known_derivatives() -> None:
    report = gradcheck(lambda x, y: x.sin() * y.exp(), [0.5, 0.25], reference="exact")
    # ∂/∂x sin(x)e^y = cos(x)e^y, ∂/∂y = sin(x)e^y
    assert report.rows[0].reference == pytest.approx(math.cos(0.5) * math.exp(0.25), rel=1e-15, abs=0.0)
    assert report.rows[1].reference == pytest.approx(math.sin(0.5) * math.exp(0.25), rel=1e-15, abs=0.0)
    assert report.ok and report.reference == "mpmath, 50 digits"


def test_second_derivatives_by_hand() -> None:
    cube = gradcheck(lambda x: x**3, [2.0], order=2)
    hessian = [r for r in cube.rows if r.order == 2]
    assert [(r.name, r.engine) for r in hessian] == [("x0²", 12.0)]  # d²/dx² x³ = 6x = 12
    assert hessian[0].reference == pytest.approx(12.0, rel=1e-6, abs=0.0) and cube.ok
    mixed = gradcheck(lambda x, y: x * y * y, [1.5, 2.0], order=2, reference="exact")
    entries = {r.name: (r.engine, r.reference) for r in mixed.rows if r.order == 2}
    # ∂²/∂x² = 0, ∂²/∂x∂y = 2y = 4, ∂²/∂y² = 2x = 3
    assert entries == {"x0²": (0.0, 0.0), "x0, x1": (4.0, pytest.approx(4.0, rel=1e-15, abs=0.0)),
                       "x1²": (3.0, pytest.approx(3.0, rel=1e-15, abs=0.0))}


@pytest.mark.parametrize(("f", "x", "sides"), [
    (lambda x: x.relu(), [0.0], (0.0, 1.0)),
    (lambda x: abs(x), [0.0], (-1.0, 1.0)),
])
@pytest.mark.parametrize("reference", ["central", "exact"])
def test_a_kink_is_reported_not_failed(f, x, sides, reference) -> None:  # type: ignore[no-untyped-def]
    report = gradcheck(f, x, reference=reference)
    row = report.rows[0]
    assert row.status == "kink" and report.ok
    assert f"one-sided derivatives {sides[0]:.6g} and {sides[1]:.6g}" in row.note
    assert row.engine == 0.0  # PyTorch's convention at the kink, inside the one-sided range


def test_a_tie_in_maximum_is_a_kink_on_both_inputs() -> None:
    report = gradcheck(lambda x, y: maximum(x, y), [1.0, 1.0])
    assert [(r.status, r.engine) for r in report.rows] == [("kink", 0.5), ("kink", 0.5)]


def test_a_tiny_gradient_is_still_checked() -> None:
    # d/dx (1e-20·x) = 1e-20: below PyTorch gradcheck's atol of 1e-5, but checked here.
    assert gradcheck(lambda x: x * 1e-20, [1.0]).ok
    with planted("mul", "scaled"):
        report = gradcheck(lambda x: x * 1e-20, [1.0])
    assert not report.ok and report.rows[0].engine == pytest.approx(1.001e-20, rel=1e-12, abs=0.0)


@pytest.mark.parametrize("reference", ["central", "exact"])
def test_a_wrong_local_derivative_is_blamed_on_its_op_and_node(reference: str) -> None:
    with planted("tanh", "scaled"):
        report = gradcheck(lambda x, y: (x * y).tanh() + x.log(), [2.0, 0.5], reference=reference)
    assert not report.ok and report.failed_orders == [1]
    blame = report.blames[0]
    assert (blame.kind, blame.culprit, blame.node) == ("local derivative", "tanh", "%3")
    # tanh'(1) = 1 − tanh²(1) = 0.419974; the fault multiplies it by 1.001
    assert "tanh at node %3, input 1: engine 0.420394, expected 0.419974" in blame.message
    with pytest.raises(AssertionError, match="blame: tanh at node %3"):
        report.raise_if_failed()


def test_faults_of_the_backward_pass_are_blamed_on_it() -> None:
    with planted("mul", "assign"):
        report = gradcheck(lambda x: x * x + x, [1.5])
    assert report.blames[0].kind == "accumulation" and report.blames[0].culprit == "backward pass"
    # d/dx (x² + x) = 2x + 1 = 4 at 1.5; assigning instead of adding keeps one contribution
    assert report.failed_orders == [1] and report.rows[0].engine != 4.0
    with planted("tanh", "upstream"):
        report = gradcheck(lambda x: x.tanh() * 3.0, [0.5])
    assert report.blames[0].kind == "upstream" and report.blames[0].culprit == "tanh"
    assert {c.name for c in report.checks if not c.ok} == {"upstream gradient", "zero upstream gradient"}


def test_a_wrong_second_order_rule_is_blamed_at_order_2() -> None:
    from engine import OPS

    tanh = OPS["tanh"]
    original = tanh.derivative
    # the right number on floats, but a constant (no graph) on the create_graph path
    tanh.derivative = lambda a, out: ((1.0 - out.data**2) if isinstance(out, Value) else original(a, out)[0],)
    try:
        report = gradcheck(lambda x: x.tanh(), [0.7], order=2)
    finally:
        tanh.derivative = original
    assert report.failed_orders == [2] and report.blames[0].kind == "second order"
    assert report.blames[0].culprit == "tanh" and "second order" in report.summary()


def test_a_built_graph_can_be_checked() -> None:
    x, y = Value(2.0, "x"), Value(3.0, "y")
    root = (x * y + x.sin()).tanh()
    report = gradcheck(root, [x, y])
    assert report.ok and [r.name for r in report.rows] == ["x", "y"]
    assert (x.data, y.data) == (2.0, 3.0)  # left as it was


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="reference must be"):
        gradcheck(lambda x: x, [1.0], reference="numeric")
    with pytest.raises(ValueError, match="order must be 1 or 2"):
        gradcheck(lambda x: x, [1.0], order=3)
    with pytest.raises(ValueError, match="at least one input"):
        gradcheck(lambda: Value(1.0), [])
    with pytest.raises(TypeError, match="must return a Value"):
        gradcheck(lambda x: 1.0, [1.0])  # type: ignore[arg-type,return-value]
    with pytest.raises(ValueError, match="rtol must be"):
        gradcheck(lambda x: x, [1.0], rtol=-1.0)


@examples(4)
@given(case=expressions(max_leaves=6).flatmap(points))
def test_no_false_failure_on_random_expressions(case) -> None:  # type: ignore[no-untyped-def]
    expr, x = case
    gradcheck(expr.function, x, name=str(expr)).raise_if_failed()


@examples(2)
@given(case=graphs(max_nodes=6).flatmap(points))
def test_no_false_failure_on_random_graphs_with_shared_nodes(case) -> None:  # type: ignore[no-untyped-def]
    expr, x = case
    gradcheck(expr.function, x, name=str(expr)).raise_if_failed()


@examples(1)
@given(case=expressions(max_leaves=5).flatmap(points))
def test_no_false_failure_at_second_order(case) -> None:  # type: ignore[no-untyped-def]
    expr, x = case
    gradcheck(expr.function, x, name=str(expr), order=2).raise_if_failed()


@examples(0.5)
@given(case=expressions(max_leaves=5).flatmap(points))
def test_no_false_failure_against_the_exact_reference(case) -> None:  # type: ignore[no-untyped-def]
    expr, x = case
    gradcheck(expr.function, x, name=str(expr), reference="exact").raise_if_failed()


def test_a_wrong_create_graph_path_is_blamed_on_its_op() -> None:
    from engine import OPS

    sin = OPS["sin"]
    original = sin.derivative
    # right on floats, 0.01 too large on the create_graph path
    sin.derivative = lambda a, out: ((a.cos() + 0.01) if isinstance(a, Value) else math.cos(a),)
    try:
        report = gradcheck(lambda x: x.sin(), [0.7], order=2)
    finally:
        sin.derivative = original
    assert [c.name for c in report.checks if not c.ok] == ["create_graph gradients"]
    assert report.blames[0].culprit == "sin" and report.blames[0].kind == "second order"


def test_nothing_checked_is_not_ok_and_a_graph_keeps_its_gradients() -> None:
    report = gradcheck(lambda x: x * x, [math.nan])
    assert not report.ok and report.summary().startswith("NOTHING CHECKED")
    x, w = Value(2.0, "x"), Value(3.0, "w")
    out = (x * w).tanh() + w * w
    out.backward()
    before = (x.grad, w.grad)
    gradcheck(out, [x], order=2)
    assert (x.grad, w.grad) == before


def test_relu_products_at_zero_are_kinks_at_second_order() -> None:
    report = gradcheck(lambda x, y: x.relu() * y.relu(), [0.0, 0.0], order=2)
    assert report.ok and {r.status for r in report.rows if r.order == 2} == {"kink"}


def test_a_failing_report_draws_the_graph_with_the_blamed_node() -> None:
    with planted("tanh", "scaled"):
        report = gradcheck(lambda x, y: (x * y).tanh() + x.log(), [2.0, 0.5])
    source = report.drawing().source
    # the tanh node is %3 in topological order: its value box v3 is outlined in red
    assert 'v3 [label="{ %3 | data 0.7616 |' in source and source.count("penwidth=3") == 1
    assert "<svg" in report._repr_html_()


def test_near_a_kink_a_wrong_sign_still_fails() -> None:
    # relu at 1e-9 is 1e-9 from its kink: the one-sided slopes are about 0 and 1, so a
    # derivative of -1 is outside them (it once passed as a "step" with bounds ±inf).
    with planted("relu", "sign"):
        report = gradcheck(lambda x: x.relu(), [1e-9])
    assert not report.ok
    assert gradcheck(lambda x: x.relu(), [1e-9]).ok


def test_no_blame_when_nothing_could_be_checked() -> None:
    report = gradcheck(lambda x: x.sqrt(), [-1.0])
    assert report.summary().startswith("NOTHING CHECKED") and report.blames == []


def test_the_exact_reference_gives_up_within_its_digits_and_time() -> None:
    # sin at 1e300 needs 350 digits (mpmath steps x by |x|·10^-digits); 100 are not enough
    report = gradcheck(lambda x: x.sin(), [1e300], reference="exact", max_digits=100)
    assert report.rows[0].status == "skipped" and not report.ok
    assert report.rows[0].note == "reference could not converge within 100 digits"
    assert report.summary() == "NOTHING CHECKED: reference could not converge within 100 digits"
    # convergence needs two precisions that agree; a budget this small allows only one
    report = gradcheck(lambda x: x.sin(), [0.5], reference="exact", time_budget=1e-9)
    assert report.rows[0].note == "reference could not converge within the time budget of 1e-09 s"
    with pytest.raises(ValueError, match="max_digits must be"):
        gradcheck(lambda x: x, [1.0], reference="exact", max_digits=0)
    with pytest.raises(ValueError, match="time_budget must be"):
        gradcheck(lambda x: x, [1.0], reference="exact", time_budget=-1.0)


@pytest.mark.parametrize("x", [1e22, 2.0**60, 1e40, 1e60, 1e200, 1e300])
def test_the_exact_reference_follows_sin_at_huge_arguments(x: float) -> None:
    mpmath = pytest.importorskip("mpmath")
    report = gradcheck(lambda v: v.sin(), [x], reference="exact", order=2)
    # d/dx sin x = cos x, d²/dx² = −sin x, in mpmath at the float x (exact as an mpf)
    with mpmath.workdps(400):
        first, second = float(mpmath.cos(mpmath.mpf(x))), float(-mpmath.sin(mpmath.mpf(x)))
    assert [(r.status, r.engine) for r in report.rows] == [("ok", first), ("ok", second)]
    assert report.rows[0].reference == pytest.approx(first, rel=1e-12, abs=0.0)
    assert report.rows[1].reference == pytest.approx(second, rel=1e-12, abs=0.0)
    assert report.ok


def _used(x: Value, n: int) -> Value:
    out = x
    for _ in range(n - 1):
        out = out + x  # x is used n times: n terms accumulate into its gradient
    return out


@pytest.mark.parametrize("n", [250, 5000])
def test_the_whole_pass_tolerance_grows_with_the_terms_accumulated(n: int) -> None:
    from engine.blame import SEED_GRADIENT

    # backward(gradient=s) adds s into x.grad n times, and that sum is not s·n in floats
    accumulated = 0.0
    for _ in range(n):
        accumulated += SEED_GRADIENT
    assert accumulated != SEED_GRADIENT * n
    report = gradcheck(lambda x: _used(x, n), [0.3])
    assert report.rows[0].engine == float(n)  # d/dx (x + x + … + x) = n, exact in floats
    assert [(c.name, c.ok) for c in report.checks] == [
        ("upstream gradient", True), ("zero upstream gradient", True), ("repeatable and accumulating", True)]
    assert report.ok
    with planted("add", "upstream"):  # the seed ignored: n, not s·n
        report = gradcheck(lambda x: _used(x, n), [0.3])
    assert [c.name for c in report.checks if not c.ok] == ["upstream gradient", "zero upstream gradient"]
    assert (report.blames[0].kind, report.blames[0].culprit) == ("upstream", "add")
