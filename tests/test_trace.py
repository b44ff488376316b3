"""Tracing and replay: the program listing, replay and batched replay equal to the eager engine,
guards, layer lowering, and compiled training equal to eager training step for step.

The reference for every replayed number is the eager engine on the same numbers (itself
checked against PyTorch and mpmath in the other test modules), computed independently of the
generated code: a fresh graph of Values and ``backward()``.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

import engine
import nn
from engine import OPS, GuardFailed, TracingError, Value
from engine.batch import Lowering
from engine.numpy_ops import FUNCTIONS as ARRAY_FUNCTIONS
from engine.ops import HELPERS
from engine.testing import DOMAINS, Expr, expressions, graphs, points, values
from nn.testing import mlps
from nn.train import fit

SNAPSHOTS = Path(__file__).parent / "snapshots"
PROPERTY = settings(deadline=None, suppress_health_check=list(HealthCheck))


def examples(scale: float) -> settings:
    return settings(PROPERTY, max_examples=max(10, int(settings.default.max_examples * scale)))


def close(a: float, b: float, rel: float = 1e-12, scale: float = 0.0) -> bool:
    """``a`` equals ``b`` to ``rel`` relative, or to ``rel·scale`` absolute, where ``scale`` is
    the size of the terms that were added (a sum that cancels keeps only their rounding)."""
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    if math.isinf(a) or math.isinf(b):
        return a == b
    return abs(a - b) <= rel * max(abs(a), abs(b), scale)


def eager(fn, x: list[float]) -> tuple[float, list[float]]:  # type: ignore[no-untyped-def]
    """The eager engine's value and input gradients of ``fn`` at ``x``."""
    leaves = [Value(v) for v in x]
    out = fn(leaves)
    out.backward()
    return out.data, [leaf.grad for leaf in leaves]


# --------------------------------------------------------------------------------------------
# The listing and the generated code


def neuron_program() -> engine.Program:
    w, b = [Value(-3.0, "w0"), Value(1.0, "w1")], Value(6.88, "b")

    def neuron(x):  # type: ignore[no-untyped-def]
        return engine.sum([w[0] * x[0], w[1] * x[1], b]).tanh()

    return engine.trace(neuron, [2.0, 0.0])


def test_a_neuron_lists_and_generates_as_the_snapshot() -> None:
    program = neuron_program()
    text = "\n\n".join([str(program), program.forward_source(), program.backward_source()])
    assert text == (SNAPSHOTS / "neuron_program.txt").read_text()


def test_a_neuron_replays_to_the_hand_worked_numbers() -> None:
    program = neuron_program()
    r = program([2.0, 0.0])
    y = math.tanh(-3.0 * 2.0 + 6.88)  # 0.70641...
    assert r.outputs == [pytest.approx(y, rel=1e-15, abs=0.0)]
    local = 1 - y * y  # ∂tanh/∂z
    grads = r.grads()
    assert grads["w0"] == pytest.approx(2.0 * local, rel=1e-14, abs=0.0)  # ∂y/∂w0 = x0·(1 − y²)
    assert grads["w1"] == 0.0  # x1 = 0
    assert grads["b"] == pytest.approx(local, rel=1e-14, abs=0.0)
    assert grads["x[0]"] == pytest.approx(-3.0 * local, rel=1e-14, abs=0.0)
    assert program.inputs == ["x[0]", "x[1]"] and program.params == ["w0", "w1", "b"]


def test_constants_are_worked_out_when_the_code_is_generated() -> None:
    program = engine.trace(lambda x: x**2 + 1.0, 3.0)
    assert [i.slot for i in program.instructions] == [1, 2]  # no slot between the input and the ops
    # pow's derivative b·a**(b−1), its masks for b = 0 decided now that b is the number 2
    assert "g0 = g1 * (2.0 * pow(v0, 1.0))" in program.backward_source()
    assert "where" not in program.backward_source()
    assert program([3.0]).input_grads == [6.0]
    with pytest.raises(TypeError, match=r"one list, program\(\[x\]\)"):
        program(3.0)


def test_numbers_are_constants_and_closed_over_values_are_parameters() -> None:
    w = Value(0.5)
    program = engine.trace(lambda x: 2.0 * x * w + 1, 3.0)
    assert program.params == ["p0"] and program.param_leaves == [w]
    assert sorted(program.constants.values()) == [1.0, 2.0]
    assert "mul 2.0 %0" in str(program)
    r = program([4.0], [0.25])
    assert r.outputs == [3.0] and r.input_grads == [0.5] and r.param_grads == [8.0]  # by hand


# --------------------------------------------------------------------------------------------
# Every op, and random expressions, DAGs and MLPs: replay and batch equal the eager engine

# A point inside each op's domain, away from its kinks.
POINT = {"positive": 1.3, "nonzero": -0.7, "any": 0.6}


@pytest.mark.parametrize("name", list(OPS))
def test_every_op_of_the_table_is_traceable(name: str) -> None:
    op = OPS[name]
    arity = op.arity or 3
    domain = DOMAINS.get(name, ("any",) * arity)
    x = [POINT[domain[min(k, len(domain) - 1)]] - 0.1 * k for k in range(arity)]
    value, grads = eager(lambda v: op(*v), x)
    program = engine.trace(lambda *v: op(*v), *x)
    assert [i.op.name for i in program.instructions] == [name]
    r = program(x)
    assert r.outputs == [value] and r.input_grads == grads  # the same float operations
    batch = program.batch(np.array([x, x]))
    assert all(close(v, value) for v in batch.outputs[:, 0])
    assert all(close(g, h) for row in batch.input_grads for g, h in zip(row, grads))


def test_array_functions_match_the_float_functions_at_special_values() -> None:
    # code calls every op by name but the four written as Python's operators, and every helper
    floats = {name: op.forward for name, op in OPS.items() if name not in ("add", "sub", "mul", "neg")}
    floats.update({name: h.on_floats for name, h in HELPERS.items()})
    assert set(ARRAY_FUNCTIONS) == set(floats)
    specials = [0.0, -0.0, 1.0, -1.0, 0.5, -2.5, 3.0, 40.0, -40.0, 800.0, -800.0,
                math.inf, -math.inf, math.nan]
    with np.errstate(all="ignore"):
        for name, f in floats.items():
            g = ARRAY_FUNCTIONS[name]
            if name in ("sum", "where"):
                continue  # checked through the ops that use them
            n_args = 1 if name in ("exp", "log", "log1p", "sqrt", "tanh", "sigmoid", "relu", "abs", "sin",
                                   "cos", "step", "sign", "isnan") else 2
            for a in specials:
                for b in specials[: len(specials) if n_args == 2 else 1]:
                    args = (a, b)[:n_args]
                    want = float(f(*args))
                    got = float(g(*[np.array([v]) for v in args])[0])
                    assert close(got, want, rel=1e-15), f"{name}{args}: numpy {got}, float {want}"


def check_replay(expr: Expr, x: list[float]) -> None:
    value, grads = eager(lambda v: expr.function(*v), x)
    program = engine.trace(lambda *v: expr.function(*v), *x)
    r = program(x)
    assert close(r.outputs[0], value, rel=0.0)  # the same float operations in the same order
    assert all(close(g, h, rel=0.0) for g, h in zip(r.input_grads, grads))
    batch = program.batch(np.array([x, [v * 0.5 for v in x], x]))
    scale = max([abs(value), *map(abs, grads), 1.0])  # numpy's exp, sin, ... may differ by an ulp
    assert close(batch.outputs[0, 0], value, scale=scale) and close(batch.outputs[2, 0], value, scale=scale)
    assert all(close(g, h, rel=1e-12, scale=scale) for g, h in zip(batch.input_grads[0], grads))
    half = program([v * 0.5 for v in x])
    assert close(batch.outputs[1, 0], half.outputs[0], scale=max(1.0, abs(half.outputs[0])))


@examples(0.5)
@given(case=expressions(max_leaves=6).flatmap(points))
@example(case=(Expr("maximum", (Expr(var=0), Expr(var=1))), [1.0, 1.0]))  # a tie: ½ each
def test_replay_equals_the_eager_engine_on_random_expressions(case) -> None:  # type: ignore[no-untyped-def]
    check_replay(*case)


@examples(0.5)
@given(case=graphs().flatmap(points))
def test_replay_equals_the_eager_engine_on_random_graphs(case) -> None:  # type: ignore[no-untyped-def]
    check_replay(*case)


@examples(0.3)
@given(case=mlps(max_inputs=3, max_width=4, max_layers=3), n=st.integers(1, 5))
def test_batched_replay_of_random_mlps_equals_the_eager_engine(case, n: int) -> None:  # type: ignore[no-untyped-def]
    model, x = case
    rows = [[v * (1 + 0.3 * k) for v in x] for k in range(n)]
    program = engine.trace(lambda x: engine.sum(model(x)), x, params=model)
    batch = program.batch(np.array(rows))
    model.zero_grad()
    total = engine.sum([engine.sum(model([Value(v) for v in row])) for row in rows])
    total.backward()
    assert close(float(batch.outputs.sum()), total.data, rel=1e-12, scale=n)
    for g, p in zip(batch.param_grads, model.parameters()):
        assert close(float(g), p.grad, rel=1e-12, scale=n)
    one = program.batch(np.array(rows[:1]))
    single = program(rows[0])
    model.zero_grad()
    first = engine.sum(model([Value(v) for v in rows[0]]))
    first.backward()
    assert single.outputs == [first.data]  # replay on floats: the eager engine's operations, in order
    assert single.param_grads == [p.grad for p in model.parameters()]
    assert close(float(one.outputs[0, 0]), single.outputs[0], scale=1.0)
    assert all(close(float(g), h, scale=1.0) for g, h in zip(one.param_grads, single.param_grads))


def test_an_mlp_is_lowered_to_one_matrix_product_per_layer() -> None:
    model = nn.MLP(3, [5, 4, 2], rng=0)
    program = engine.trace(lambda x: model(x), [0.1, 0.2, 0.3], params=model)
    lowering = Lowering(program, True, (True, True))
    assert [len(layer.sums) for layer in lowering.layers] == [5, 4, 2]
    activations = [layer.activation.name if layer.activation else None for layer in lowering.layers]
    assert activations == ["relu", "relu", None]
    source = lowering.source()
    assert source.count("@") == 3 + 3 + 3  # per layer: Z = X Wᵀ forward; ∂W = G_Zᵀ X and G_X = G_Z W
    # Each neuron's 3 weights then its bias: parameters 0-19 as 5 rows of 4, read as views
    # (the speed trick), not gathered (the plain version, kept for other layouts).
    assert "W0 = theta[0:20].reshape(5, 4)[:, :3]" in source and "X1 = A0" in source
    assert "Z0 = X0 @ W0.T + theta[3:20:4]" in source
    assert "G[0:20].reshape(5, 4)[:, :3] += GZ0.T @ X0" in source
    assert "theta[WI" not in source
    reversed_params = engine.trace(lambda x: model(x), [0.1, 0.2, 0.3], params=model.parameters()[::-1])
    gathered = Lowering(reversed_params, True, (True, True)).source()
    assert "W0 = theta[WI0]" in gathered and "Z0 = X0 @ W0.T + theta[BI0]" in gathered
    x = [[0.1, 0.2, 0.3], [-1.0, 0.5, 2.0]]
    ours, theirs = program.batch(x), reversed_params.batch(x)
    assert ours.outputs.tolist() == theirs.outputs.tolist()
    assert ours.param_grads.tolist() == theirs.param_grads[::-1].tolist()
    without_input_grads = Lowering(program, False, (True, True)).source()
    assert without_input_grads.count("@") == 3 + 3 + 2  # the first layer's G_X is not needed


def test_a_weight_shared_by_two_neurons_gets_both_gradients() -> None:
    w, b = Value(0.7, "w"), Value(0.1, "b")

    def f(x):  # type: ignore[no-untyped-def]
        z1 = engine.sum([w * x[0], b]).tanh()
        z2 = engine.sum([w * x[0], b])
        return z1 + z2

    program = engine.trace(f, [0.5])
    batch = program.batch(np.array([[0.5], [-1.5]]))
    total = f([Value(0.5)]) + f([Value(-1.5)])
    w.grad = b.grad = 0.0
    total.backward()
    assert close(float(batch.param_grads[0]), w.grad) and close(float(batch.param_grads[1]), b.grad)
    assert close(float(batch.outputs.sum()), total.data)


def test_a_neuron_no_gradient_reaches_adds_nothing_to_its_layers_gradients() -> None:
    w = [Value(0.5, "w0"), Value(-0.3, "w1"), Value(math.inf, "w2"), Value(1.0, "w3")]

    def f(x):  # type: ignore[no-untyped-def]
        a = engine.sum([w[0] * x[0], w[1] * x[1]]).tanh()
        b = engine.sum([w[2] * x[0], w[3] * x[1]]).tanh()  # the same inputs: one layer with a
        return [a, b]

    program = engine.trace(f, [1.0, 2.0])
    batch = program.batch([[1.0, 2.0]], seeds=[1.0, None])  # b's neuron gets no gradient
    # by hand: ∂a/∂x = (1 − tanh²(z))·(w0, w1) with z = 0.5 − 0.6; ∂a/∂(w0, w1) = (1 − tanh² z)·x
    local = 1.0 - math.tanh(-0.1) ** 2
    assert batch.input_grads[0].tolist() == pytest.approx([0.5 * local, -0.3 * local], rel=1e-14, abs=0.0)
    assert batch.param_grads.tolist() == pytest.approx([local, 2.0 * local, 0.0, 0.0], rel=1e-14, abs=0.0)
    single = program([1.0, 2.0], seeds=[1.0, None])
    assert single.param_grads == pytest.approx(batch.param_grads.tolist(), rel=1e-14, abs=0.0)


def test_seeds_given_as_nested_lists_are_rows_as_in_x() -> None:
    w = Value(2.0, "w")
    program = engine.trace(lambda x: [w * x, 3 * x], 1.0)
    rows = [[0.0, 1.0], [0.0, 0.0]]  # per sample: no gradient from w·x
    assert program.batch([[1.0], [10.0]], seeds=rows).param_grads.tolist() == [0.0]
    assert program.batch([[1.0], [10.0]], seeds=[np.array([1.0, 0.0]), None]).param_grads.tolist() == [1.0]


def test_uniform_outputs_and_seeds_follow_the_sum_over_the_batch() -> None:
    w = Value(3.0, "w")
    program = engine.trace(lambda x: [x * w, w * w], 2.0)  # the second output has no input in it
    batch = program.batch(np.array([[1.0], [2.0], [4.0]]), seeds=[np.array([1.0, 1.0, 0.5]), 0.25])
    assert batch.outputs.tolist() == [[3.0, 9.0], [6.0, 9.0], [12.0, 9.0]]
    # Σ seed·x for the first output + 3 samples × 0.25 × 2w for the second
    assert batch.param_grads.tolist() == [1.0 + 2.0 + 2.0 + 3 * 0.25 * 6.0]
    assert batch.input_grads[:, 0].tolist() == [3.0, 3.0, 1.5]


# --------------------------------------------------------------------------------------------
# Guards


def bigger(a, b):  # type: ignore[no-untyped-def]
    return a if a > b else b


def test_a_comparison_is_a_guard_and_replay_checks_it() -> None:
    program = engine.trace(bigger, 1.0, 2.0)
    assert str(program).splitlines()[0] == "program bigger(a, b) -> out"
    assert "guard %0 > %1 is False" in str(program)
    assert program([0.5, 3.0]).outputs == [3.0]  # the same branch: fine
    with pytest.raises(GuardFailed, match=r"a > b was False when traced, but is True here \(3.0 > 1.0\)"):
        program([3.0, 1.0])
    with pytest.raises(GuardFailed, match=r"sample 2 of the batch") as caught:
        program.batch(np.array([[0.0, 1.0], [1.0, 2.0], [5.0, -1.0]]))
    assert caught.value.sample == 2


def test_traced_traces_again_for_a_new_branch() -> None:
    f = engine.traced(bigger)
    assert f(1.0, 2.0).outputs == [2.0] and f(3.0, 1.0).outputs == [3.0] and f(0.0, 5.0).outputs == [5.0]
    assert len(f.programs) == 2
    strict = engine.traced(bigger, retrace=False)
    strict(1.0, 2.0)
    with pytest.raises(GuardFailed):
        strict(3.0, 1.0)


def test_if_on_a_value_is_a_guard() -> None:
    program = engine.trace(lambda x: x.exp() if x else x, 0.0)  # bool(Value) is data != 0, as PyTorch
    assert program.guards[0].relation == "!=" and program.guards[0].outcome is False
    with pytest.raises(GuardFailed):
        program([1.0])


def test_traced_traces_again_for_arguments_of_another_shape() -> None:
    f = engine.traced(lambda a, b: engine.sum(a) * engine.sum(b))
    assert f([1.0, 2.0], [3.0]).outputs == [9.0]
    assert f([1.0], [2.0, 3.0]).outputs == [5.0]  # (1)·(2 + 3), not the first program's (1 + 2)·3
    assert len(f.programs) == 2


def test_detach_and_no_grad_inside_a_trace_are_refused() -> None:
    with pytest.raises(TracingError, match="detach"):
        engine.trace(lambda x: x.detach() * x, 3.0)

    def stopped(x):  # type: ignore[no-untyped-def]
        with engine.no_grad():
            c = x * 2
        return c * x

    with pytest.raises(TracingError, match="no_grad"):
        engine.trace(stopped, 3.0)
    assert engine.is_grad_enabled()
    assert Value(2.0).detach().data == 2.0  # outside a trace both work


def test_values_made_inside_the_function_are_constants() -> None:
    program = engine.trace(lambda x: x * Value(2.0), 3.0)
    assert program.params == [] and list(program.constants.values()) == [2.0]


def test_infinite_and_nan_constants_replay() -> None:
    program = engine.trace(lambda x: [x + math.inf, engine.maximum(x, -math.inf), x * math.nan], 1.0)
    r = program([2.0])
    assert r.outputs[:2] == [math.inf, 2.0] and math.isnan(r.outputs[2])
    batch = program.batch([[2.0], [3.0]])
    assert batch.outputs[:, 0].tolist() == [math.inf, math.inf] and batch.outputs[:, 1].tolist() == [2.0, 3.0]


def test_a_label_cannot_become_code() -> None:
    w = Value(2.0, "w\n    raise SystemExit('a label ran as code')")
    program = engine.trace(lambda x: x * w, 1.0)
    assert 'param "w\\n    raise SystemExit' in str(program)  # quoted, with its escape
    assert program([3.0]).outputs == [6.0] and program.batch([[3.0]]).outputs.tolist() == [[6.0]]


def test_float_of_a_traced_value_is_refused() -> None:
    with pytest.raises(TracingError, match="bake its number"):
        engine.trace(lambda x: Value(math.exp(x)), 1.0)
    assert float(Value(2.5)) == 2.5  # outside a trace, float() works


# --------------------------------------------------------------------------------------------
# Bad input


def test_bad_inputs_are_named() -> None:
    program = neuron_program()
    with pytest.raises(ValueError, match=r"takes 2 inputs \(x\[0\], x\[1\]\), got 3"):
        program([1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match="has 3 parameters, got 1"):
        program([1.0, 2.0], [1.0])
    with pytest.raises(ValueError, match=r"X must have shape \(N, 2\), got \(4, 3\)"):
        program.batch(np.zeros((4, 3)))
    with pytest.raises(ValueError, match="flat list of numbers"):
        program(["a", 1.0])
    with pytest.raises(TypeError, match="must be a number or a"):
        engine.trace(lambda x: x, "text")
    with pytest.raises(TypeError, match="return a Value"):
        engine.trace(lambda x: 1.0, 2.0)
    with pytest.raises(TypeError, match="no Values"):
        engine.trace(lambda x: [], 2.0)
    a = Value(1.0, "a")
    with pytest.raises(ValueError, match="more than once"):
        engine.trace(lambda x: x * a, 2.0, params=[a, a])
    with pytest.raises(ValueError, match="X must hold real numbers"):
        program.batch([[True, False]])
    with pytest.raises(ValueError, match="1 seeds for the 1 outputs|seed 0 must be"):
        program.batch([[1.0, 2.0]], seeds=[np.ones(3)])
    with pytest.raises(ValueError, match="give one per output"):
        program.batch([[1.0, 2.0]], seeds=[1.0, 1.0])


def test_batched_replay_without_numpy_says_how_to_install_it(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import sys

    program = neuron_program()
    program([2.0, 0.0])  # replay on floats needs no numpy
    monkeypatch.setitem(sys.modules, "numpy", None)  # as if it were not installed
    with pytest.raises(ImportError, match=r"pip install 'valuegrad\[fast\]'"):
        program.batch([[2.0, 0.0]])


# --------------------------------------------------------------------------------------------
# Compiled training


@pytest.mark.parametrize("loss, widths, classes", [("cross_entropy", [6, 3], 3), ("mse", [6, 3], 3),
                                                   ("hinge", [6, 1], 2), ("bce", [6, 1], 2)])
def test_compiled_training_equals_eager_training_step_for_step(loss: str, widths: list[int],
                                                               classes: int) -> None:
    data = nn.load_iris()
    X = nn.standardize(data.X, data.X)[0]
    y = [min(c, classes - 1) for c in data.y]
    runs = []
    for compile in (False, True):
        model = nn.MLP(4, widths, rng=3)
        optimizer = nn.SGD(model.parameters(), lr=0.05, momentum=0.9)
        history = fit(model, X, y, loss=loss, optimizer=optimizer, epochs=3, batch_size=25, seed=1,
                      X_test=X[:40], y_test=y[:40], progress=False, compile=compile)
        runs.append(([p.data for p in model.parameters()], history.rows))
    (eager_params, eager_rows), (compiled_params, compiled_rows) = runs
    assert max(abs(a - b) for a, b in zip(eager_params, compiled_params)) < 1e-9
    for a, b in zip(eager_rows, compiled_rows):
        assert a.keys() == b.keys()
        assert all(abs(a[k] - b[k]) < 1e-9 for k in a)


@pytest.mark.parametrize("loss, widths, labels, message", [
    ("cross_entropy", [4, 3], [0, 1, 5], "out of range"),
    ("hinge", [4, 1], [0, 2, 1], "classes 0 and 1"),
    ("cross_entropy", [4, 2], [0, 1, 2], "one output per class"),
])
def test_compiled_training_refuses_what_eager_training_refuses(loss: str, widths: list[int],
                                                                labels: list[int], message: str) -> None:
    X = [[0.1, 0.2], [0.3, -0.1], [-0.5, 0.4]]
    for compile in (False, True):
        model = nn.MLP(2, widths, rng=0)
        with pytest.raises(ValueError):
            fit(model, X, labels, loss=loss, optimizer=nn.SGD(model.parameters(), lr=0.1), epochs=1,
                n_classes=3, progress=False, compile=compile)
    with pytest.raises(ValueError, match=message):
        fit(model, X, labels, loss=loss, optimizer=nn.SGD(model.parameters(), lr=0.1), epochs=1,
            n_classes=3, progress=False, compile=True)


@examples(0.3)
@given(logits=st.lists(values(-30.0, 30.0), min_size=2, max_size=5), data=st.data())
@example(logits=[40.0, -40.0], data=None)  # a tiny loss (e^-80), kept by log1p
def test_the_traceable_cross_entropy_equals_the_eager_one(logits: list[float], data) -> None:  # type: ignore[no-untyped-def]
    target = 0 if data is None else data.draw(st.integers(0, len(logits) - 1))
    z = [Value(v) for v in logits]
    eager_loss = nn.cross_entropy(z, target)
    eager_loss.backward()
    onehot = [Value(t) for t in nn.losses.target_values("cross_entropy", target, len(logits))]
    z2 = [Value(v) for v in logits]
    loss = nn.losses.sample_loss("cross_entropy", z2, onehot)
    loss.backward()
    assert close(loss.data, eager_loss.data, rel=1e-13)
    assert all(close(a.grad, b.grad, rel=1e-12, scale=1.0) for a, b in zip(z, z2))


def test_tracing_and_lowering_take_time_linear_in_the_programs_size() -> None:
    """Tracing, lowering and code generation are linear: the time per instruction of a 40k-
    instruction program is within 3x of a 2.5k one's (a ratio in one run, best of three each;
    when ``_build`` rebuilt a set per node it was about 70x, and the garbage collector walking
    the growing graph made it 2x)."""
    import time

    def per_instruction(nin: int, hidden: int) -> float:
        best = math.inf
        for seed in range(3):
            model = nn.MLP(nin, [hidden, 10], rng=seed)
            t0 = time.perf_counter()
            program = engine.trace(model, [0.0] * nin, params=model)
            program.batch([[0.0] * nin], seeds=[1.0] * 10, input_grads=False)
            best = min(best, (time.perf_counter() - t0) / len(program.instructions))
        assert len(program.instructions) > (35_000 if nin > 64 else 2_000)
        return best

    per_instruction(64, 32)  # warm-up: the first trace imports numpy and compiles its helpers
    small, large = per_instruction(64, 32), per_instruction(300, 120)
    assert large / small < 3.0, f"{large * 1e6:.1f} µs vs {small * 1e6:.1f} µs per instruction"


def test_compiled_training_writes_the_values_back_for_every_epoch_callback_and_at_the_end() -> None:
    """The parameters live in a numpy vector while compiled training runs; ``on_epoch_end``
    reads the Values and gets each epoch's parameters (as eager training's, to 1e-9), and a
    change made there is trained on."""
    data = nn.load_iris()
    X = nn.standardize(data.X, data.X)[0]
    seen: dict[bool, list[list[float]]] = {}
    for compile in (False, True):
        model = nn.MLP(4, [5, 3], rng=2)
        params = model.parameters()
        seen[compile] = []

        def read_and_nudge(epoch: int, history: object) -> None:
            seen[compile].append([p.data for p in params])  # noqa: B023 (called within this loop)
            if epoch == 2:
                params[0].data = 0.5  # noqa: B023

        fit(model, X, data.y, optimizer=nn.Adam(params, lr=0.05), epochs=3, batch_size=50, seed=0,
            progress=False, compile=compile, on_epoch_end=read_and_nudge)
        seen[compile].append([p.data for p in params])
    assert len(seen[True]) == 4
    for eager, compiled in zip(seen[False], seen[True]):
        assert max(abs(a - b) for a, b in zip(eager, compiled)) < 1e-9


class _Gated(nn.Module):
    """An MLP whose output is scaled by a gate on one side or the other, chosen by a number."""

    def __init__(self, read_data: bool) -> None:
        self.mlp = nn.MLP(2, [4, 2], rng=0)
        self.gate = Value(0.3, "gate")
        self.read_data = read_data

    def __call__(self, x: list[Any]) -> list[Value]:
        out = self.mlp(x)
        z = out[0] - out[1]
        if (z.data > 0) if self.read_data else (z > 0):  # micrograd's way, or a Value comparison
            return [out[0] * self.gate, out[1]]
        return [out[0], out[1] * self.gate]


@pytest.mark.parametrize("read_data, message", [(True, "the model reads a number"),
                                                (False, "the model branches on its numbers")])
def test_compiled_training_refuses_a_model_that_branches_on_its_numbers(read_data: bool,
                                                                       message: str) -> None:
    """Eager training follows each sample's branch; one traced program cannot. Reading
    ``.data`` bakes the traced example's branch in (training then took other steps: 0.22
    apart after 3 epochs, silently); comparing Values makes a guard that fails on a sample of
    the other branch. Both are refused, before any step, saying to train eagerly."""
    data = nn.make_moons(60, 0.2, seed=0)
    model = _Gated(read_data)
    before = [p.data for p in model.parameters()]
    with pytest.raises(ValueError, match=message):
        fit(model, data.X, data.y, optimizer=nn.Adam(model.parameters(), lr=0.02), epochs=3, batch_size=8,
            progress=False, compile=True)
    assert [p.data for p in model.parameters()] == before
    fit(model, data.X, data.y, optimizer=nn.Adam(model.parameters(), lr=0.02), epochs=1, batch_size=8,
        progress=False)  # eager trains it


def test_fit_takes_numpy_samples_and_counts_classes_by_the_models_outputs() -> None:
    """Samples as a numpy array (``if not X`` was ambiguous for it); and labels that use 2 of a
    3-output model's classes train compiled as eager does (the compiled target was 2 wide)."""
    data = nn.load_iris()
    runs = []
    for compile in (False, True):
        model = nn.MLP(4, [8, 3], rng=1)
        fit(model, np.array(data.X[:60]), data.y[:60], optimizer=nn.Adam(model.parameters(), lr=0.01),
            epochs=1, progress=False, compile=compile)
        runs.append([p.data for p in model.parameters()])
    assert sorted(set(data.y[:60])) == [0, 1]
    assert max(abs(a - b) for a, b in zip(*runs)) < 1e-9


def test_parameters_the_optimizer_does_not_step_add_up_their_gradients_in_both_modes() -> None:
    """Eager training zeroes only the optimizer's parameters before each backward pass, so the
    others' ``.grad`` add up every step's (as in PyTorch); compiled training writes the same."""
    data = nn.load_iris()
    X = nn.standardize(data.X, data.X)[0]
    grads = []
    for compile in (False, True):
        model = nn.MLP(4, [5, 3], rng=4)
        optimizer = nn.SGD(model.layers[-1].parameters(), lr=0.1, momentum=0.5)
        fit(model, X, data.y, optimizer=optimizer, epochs=2, batch_size=16, seed=0, progress=False,
            compile=compile, on_epoch_end=lambda epoch, history: None)  # (a sync after each epoch)
        grads.append([p.grad for p in model.parameters()])
    assert max(abs(a - b) for a, b in zip(*grads)) < 1e-9
    assert any(g != 0.0 for g in grads[0][:len(model.layers[0].parameters())])  # the unstepped ones
