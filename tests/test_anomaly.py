"""engine.detect_anomaly: the op and the line where a gradient first turns nan or inf, graphs
changed between forward and backward, and nothing at all outside the context.

Expected numbers are worked by hand in the comments; the line a node was made on is read from
this file's own frames (``sys._getframe``), apart from the engine's frame walk.
"""

from __future__ import annotations

import math
import struct
import sys

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

import nn
from engine import AnomalyError, Value, detect_anomaly
from engine.anomaly import GraphChangedError
from engine.grad_mode import state
from engine.strategies import Expr, expressions, graphs, points


def next_line() -> int:
    """The number of the caller's next line."""
    return sys._getframe(1).f_lineno + 1


def bits(x: float) -> bytes:
    return struct.pack("<d", x)


def assert_names(error: pytest.ExceptionInfo[AnomalyError], line: int, source: str, *parts: str) -> None:
    """The message names this file, ``line`` and its ``source`` text, and each of ``parts``."""
    message = str(error.value)
    assert f"test_anomaly.py:{line}" in message, message
    assert source in message, message
    for part in parts:
        assert part in message, (part, message)
    assert error.value.filename == __file__ and error.value.lineno == line and error.value.source == source


# --------------------------------------------------------------------------------------------
# An op that makes nan or inf from finite numbers: its name, numbers and line
# --------------------------------------------------------------------------------------------


def test_sqrt_at_zero_times_a_zero_upstream_is_blamed_on_sqrt_and_its_line() -> None:
    x = Value(2.0, "x")
    with detect_anomaly(), pytest.raises(AnomalyError) as error:
        line = next_line()
        y = (x - 2.0).sqrt()
        (y * y).backward()
    # d(y·y)/dy = 2y = 0 upstream; d√a/da = 1/(2√0) = inf; 0 · inf = nan. Topological order:
    # x (%0), the constant 2.0 (%1), x − 2 (%2), √ (%3), y·y (%4).
    assert_names(error, line, "y = (x - 2.0).sqrt()", "sqrt at node %3", "sqrt(a = 0.0) = 0.0",
                 "1/(2√a) = inf", "upstream gradient 0.0", "gives nan")
    assert error.value.op is not None and error.value.op.name == "sqrt"
    assert error.value.operands == (0.0,) and error.value.local == math.inf and error.value.upstream == 0.0


def test_log_at_zero_is_blamed_on_log() -> None:
    x = Value(1.0)
    with detect_anomaly(), pytest.raises(AnomalyError) as error:
        line = next_line()
        z = (x - 1.0).log()
        z.backward()
    # log 0 = −inf; d log a/da = 1/a = 1/0 = inf; upstream 1
    assert_names(error, line, "z = (x - 1.0).log()", "log at node", "log(a = 0.0) = -inf",
                 "1/a = inf", "upstream gradient 1.0", "gives inf")


def test_division_by_zero_is_blamed_on_div_with_both_operands() -> None:
    x = Value(3.0, "x")
    with detect_anomaly(), pytest.raises(AnomalyError) as error:
        line = next_line()
        q = x / (x - 3.0)
        q.backward()
    # 3/0 = inf; ∂(a/b)/∂a = 1/b = 1/0 = inf, the first operand's gradient to turn inf
    assert_names(error, line, "q = x / (x - 3.0)", "div at node", "div(a = 3.0, b = 0.0) = inf",
                 "∂/∂a = 1/b = inf", "upstream gradient 1.0")
    assert error.value.operands == (3.0, 0.0)


def test_pow_with_a_fractional_exponent_at_zero_is_blamed_on_pow() -> None:
    x = Value(1.0)
    with detect_anomaly(), pytest.raises(AnomalyError) as error:
        line = next_line()
        p = (x - 1.0) ** 0.5
        p.backward()
    # ∂(a**b)/∂a = b·a**(b−1) = 0.5 · 0**−0.5 = inf
    assert_names(error, line, "p = (x - 1.0) ** 0.5", "pow at node", "pow(a = 0.0, b = 0.5) = 0.0",
                 "b·a**(b−1) = inf", "gives inf")


def test_pow_blames_a_nan_exponent_gradient_only_when_the_exponent_is_yours() -> None:
    x, n = Value(-1.0, "x"), Value(2.0, "n")
    with detect_anomaly():
        (x ** 2.0).backward()  # the constant 2.0's gradient (−1)²·log(−1) = nan: nobody reads it
        assert x.grad == -2.0  # by hand: 2x
        with pytest.raises(AnomalyError) as error:
            line = next_line()
            p = x ** n
            p.backward()
    assert_names(error, line, "p = x ** n", "pow(a = -1.0, b = 2.0) = 1.0", "∂/∂b = a**b·log a = nan")


def test_a_nan_made_by_the_forward_is_blamed_on_its_op_even_with_a_nan_upstream() -> None:
    x = Value(2.0)
    with detect_anomaly(), pytest.raises(AnomalyError) as error:
        line = next_line()
        y = (x - 3.0).sqrt()
        (y * y).backward()
    # √−1 = nan; the upstream 2y is nan too, but sqrt's operand −1 is finite: sqrt made it
    assert_names(error, line, "y = (x - 3.0).sqrt()", "sqrt at node", "sqrt(a = -1.0) = nan",
                 "the forward gave nan from finite operands")


def test_two_finite_terms_whose_sum_overflows_are_blamed_on_the_op_that_adds_the_second() -> None:
    a = Value(1.0, "a")
    with detect_anomaly(), pytest.raises(AnomalyError) as error:
        line = next_line()
        r = a * 1e308 + a * 1e308
        r.backward()
    # each product gives a.grad 1e308; 1e308 + 1e308 overflows to inf
    assert_names(error, line, "r = a * 1e308 + a * 1e308", "mul at node",
                 "added to the gradient so far 1e+308 gives inf")


def test_a_nan_that_comes_in_is_not_blamed_on_any_op() -> None:
    x, a = Value(math.nan, "x"), Value(2.0, "a")
    with detect_anomaly():
        b = a * 3.0
        c = (b * x + 1.0).tanh()
        c.backward()  # b's upstream is x·… = nan, but it came from x, not from an op
        d = a * 3.0
        d.backward(math.nan)  # a nan seed is not an op's either
    assert math.isnan(x.grad) and math.isnan(a.grad)


# --------------------------------------------------------------------------------------------
# No false alarm: a healthy graph gives the same gradients, bit for bit
# --------------------------------------------------------------------------------------------


@given(st.one_of(expressions(), graphs()).flatmap(points))
@example((Expr("sqrt", (Expr("add", (Expr(const=3.0), Expr(var=0))),)), [-2.0]))
@example((Expr("pow", (Expr(var=0), Expr(const=2.0))), [-1.0]))  # 2.0's gradient: 1·log(−1) = nan
def test_inside_detect_anomaly_backward_gives_exactly_the_gradients_of_outside(
        case: tuple[Expr, list[float]]) -> None:
    expr, x = case  # points() draws x where the function and its gradient are finite
    grads = []
    for anomaly in (False, True):
        leaves = [Value(v) for v in x]
        if anomaly:
            with detect_anomaly():
                root = expr.function(*leaves)
                sites = {entry[1] for entry in state.anomaly.entries.values()}
                root.backward()
            # made inside engine/strategies.py, but the site is this file (engine/ is skipped)
            assert sites <= {__file__}
        else:
            root = expr.function(*leaves)
            root.backward()
        grads.append([bits(v.grad) for v in leaves])
    assert grads[0] == grads[1]


# --------------------------------------------------------------------------------------------
# A graph whose numbers changed after the forward pass
# --------------------------------------------------------------------------------------------


def test_a_leaf_changed_after_the_forward_pass_is_refused_by_name_and_line() -> None:
    w, x = Value(1.0, "w"), Value(3.0, "x")
    with detect_anomaly():
        line = next_line()
        loss = (w * x).tanh()
        w.data += 0.1
        with pytest.raises(GraphChangedError) as error:
            loss.backward()
        w.data = 1.0  # back as it was: the same graph is fine again
        loss.backward()
    assert_names(error, line, "loss = (w * x).tanh()", "w (used by mul at node %2", "it was 1.0",
                 "it is 1.1")
    assert error.value.node is w and error.value.was == 1.0 and error.value.now == 1.1
    assert w.grad == pytest.approx(3.0 * (1 - math.tanh(3.0) ** 2), rel=1e-14)  # by hand: x·(1 − tanh²(wx))


def test_an_interior_node_changed_is_named_with_the_line_that_made_it() -> None:
    w = Value(1.0, "w")
    with detect_anomaly():
        line = next_line()
        h = w * 2.0
        loss = h.exp()
        h.data = 5.0
        with pytest.raises(GraphChangedError) as error:
            loss.backward()
    # order: w (%0), 2.0 (%1), h (%2), exp (%3)
    assert_names(error, line, "h = w * 2.0", "%2, made at", "it was 2.0", "it is 5.0")


def test_an_optimizer_step_between_forward_and_backward_is_refused() -> None:
    neuron = nn.Neuron(2, activation="tanh", rng=0)
    optimizer = nn.SGD(neuron.parameters(), lr=0.1)
    for p in neuron.parameters():
        p.grad = 1.0  # a gradient from an earlier backward pass
    with detect_anomaly():
        line = next_line()
        loss = neuron([Value(1.0), Value(2.0)]) ** 2
        optimizer.step()  # w0 ← w0 − 0.1 · 1
        with pytest.raises(GraphChangedError) as error:
            loss.backward()
    w0 = neuron.parameters()[0]
    assert_names(error, line, "loss = neuron([Value(1.0), Value(2.0)]) ** 2", "w0 (used by",
                 f"it is {w0.data!r}")
    assert error.value.was == pytest.approx(w0.data + 0.1, rel=1e-15)


# --------------------------------------------------------------------------------------------
# Outside the context: nothing recorded, IEEE-754 as documented; nesting, decorator, exceptions
# --------------------------------------------------------------------------------------------


def test_outside_nothing_is_recorded_and_the_nan_comes_out_silently() -> None:
    assert state.anomaly is None
    x = Value(2.0)
    y = (x - 2.0).sqrt()
    loss = y * y
    loss.backward()
    assert math.isnan(x.grad)  # 0 · inf = nan, as the numerical policy says: no error
    with detect_anomaly():
        assert state.anomaly.entries == {}  # the nodes made outside were not recorded
        with pytest.raises(AnomalyError, match=r"sqrt at node %3 \(made outside detect_anomaly\)"):
            loss.backward()
    assert state.anomaly is None


def test_nested_contexts_share_one_table_and_the_mode_is_restored_after_an_exception() -> None:
    x = Value(2.0)
    with detect_anomaly():
        outer = state.anomaly
        with detect_anomaly():
            assert state.anomaly is outer
            line = next_line()
            y = (x - 2.0).sqrt()
        assert state.anomaly is outer
        with pytest.raises(AnomalyError) as error:
            (y * y).backward()
    assert_names(error, line, "y = (x - 2.0).sqrt()", "sqrt at node %3")
    with pytest.raises(ZeroDivisionError), detect_anomaly():
        1 / 0  # noqa: B018
    assert state.anomaly is None


def test_as_a_decorator() -> None:
    @detect_anomaly()
    def step(x: Value) -> Value:
        y = (x - 1.0).log()
        y.backward()
        return y

    with pytest.raises(AnomalyError, match="log at node"):
        step(Value(1.0))
    assert state.anomaly is None
    assert step(Value(2.0)).grad == 1.0  # healthy: d log y/d log y = 1


def test_graphs_dropped_inside_the_context_leave_the_table() -> None:
    x = Value(2.0)
    with detect_anomaly():
        line = next_line()
        kept = (x - 2.0).sqrt()
        for _ in range(20):  # 20 graphs of 1000 nodes, each dropped
            y = x
            for _ in range(1000):
                y = y * 1.0
        del y
        assert len(state.anomaly.entries) < 5000  # not the 20 002 made
        with pytest.raises(AnomalyError) as error:
            (kept * kept).backward()
    assert_names(error, line, "kept = (x - 2.0).sqrt()", "sqrt at node %3")
