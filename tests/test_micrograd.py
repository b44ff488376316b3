"""micrograd's code on valuegrad: the lecture's names on Value, micrograd's nn, and drawing and
stepping a learner's own micrograd-style class.

Expected numbers come from the lecture worked by hand (the neuron tanh(x1·w1 + x2·w2 + b) with
b = 6.8813735870195432, where tanh(n) = 1/√2 and 1 − o² = 1/2) and from micrograd 0.1.0
itself, run on the same data in the same test.
"""

from __future__ import annotations

import math
import random
import sys
from pathlib import Path

import pytest

import nn
from engine import Value
from engine.draw import draw
from engine.stepper import Stepper
from nn import micrograd as mg

sys.path.insert(0, str(Path(__file__).parent / "learner"))
from engines import make  # noqa: E402


def lecture_neuron() -> tuple[Value, dict[str, Value]]:
    x1, x2 = Value(2.0, label="x1"), Value(0.0, label="x2")
    w1, w2 = Value(-3.0, label="w1"), Value(1.0, label="w2")
    b = Value(6.8813735870195432, label="b")
    x1w1 = x1 * w1
    x1w1.label = "x1*w1"
    x2w2 = x2 * w2
    x2w2.label = "x2*w2"
    x1w1x2w2 = x1w1 + x2w2
    x1w1x2w2.label = "x1*w1 + x2*w2"
    n = x1w1x2w2 + b
    n.label = "n"
    o = n.tanh()
    o.label = "o"
    nodes = {v.label: v for v in (x1, x2, w1, w2, b, x1w1, x2w2, x1w1x2w2, n, o)}
    return o, nodes  # type: ignore[return-value]


def test_the_lectures_manual_backward_walk_node_by_node() -> None:
    o, v = lecture_neuron()
    assert o.data == pytest.approx(1 / math.sqrt(2), rel=1e-12)
    o.grad = 1.0
    o._backward()
    assert v["n"].grad == pytest.approx(0.5, rel=1e-12)  # 1 − o²
    assert v["x1"].grad == 0.0  # nothing else is touched by one node's step
    for name in ("n", "x1*w1 + x2*w2", "x2*w2", "x1*w1"):
        v[name]._backward()
    v["b"]._backward()  # a leaf's step does nothing
    # by hand: ∂o/∂x1 = w1·½, ∂o/∂w1 = x1·½, ∂o/∂x2 = w2·½, ∂o/∂w2 = x2·½
    assert [v[k].grad for k in ("x1", "w1", "x2", "w2")] == pytest.approx([-1.5, 1.0, 0.5, 0.0], rel=1e-12)
    assert (o._op, v["n"]._op, v["x1*w1"]._op, v["x1"]._op) == ("tanh", "+", "×", "")
    assert o._prev == {v["n"]} and v["x1*w1"]._prev == {v["x1"], v["w1"]} and v["x1"]._prev == set()


def test_the_lectures_topological_sort_and_backward_loop() -> None:
    o, v = lecture_neuron()
    topo: list[Value] = []
    visited: set[Value] = set()

    def build_topo(node: Value) -> None:
        if node not in visited:
            visited.add(node)
            for child in node._prev:
                build_topo(child)
            topo.append(node)

    build_topo(o)
    o.grad = 1.0
    for node in reversed(topo):
        node._backward()
    assert [v[k].grad for k in ("x1", "w1", "x2", "w2")] == pytest.approx([-1.5, 1.0, 0.5, 0.0], rel=1e-12)


def moons() -> tuple[list[list[float]], list[int]]:
    data = nn.make_moons(40, noise=0.1, seed=3)
    return data.X, [1 if t else -1 for t in data.y]


def demo(value_class: type, nn_module: object, steps: int) -> list[tuple[float, float]]:
    """micrograd's demo.ipynb training loop, as written there."""
    X, y = moons()
    random.seed(1337)
    model = nn_module.MLP(2, [16, 16, 1])  # type: ignore[attr-defined]
    log = []
    for k in range(steps):
        inputs = [list(map(value_class, xrow)) for xrow in X]
        scores = list(map(model, inputs))
        losses = [(1 + -yi * scorei).relu() for yi, scorei in zip(y, scores)]
        data_loss = sum(losses) * (1.0 / len(losses))
        reg_loss = 1e-4 * sum(p * p for p in model.parameters())
        total_loss = data_loss + reg_loss
        accuracy = [(yi > 0) == (scorei.data > 0) for yi, scorei in zip(y, scores)]
        model.zero_grad()
        total_loss.backward()
        learning_rate = 1.0 - 0.9 * k / 100
        for p in model.parameters():
            p.data -= learning_rate * p.grad
        log.append((total_loss.data, sum(accuracy) / len(accuracy)))
    return log


def test_micrograds_demo_on_nn_micrograd_gives_micrograds_training_log() -> None:
    micro_engine = pytest.importorskip("micrograd.engine")
    micro_nn = pytest.importorskip("micrograd.nn")
    theirs = demo(micro_engine.Value, micro_nn, 15)
    ours = demo(Value, mg, 15)
    for (loss, accuracy), (their_loss, their_accuracy) in zip(ours, theirs):
        assert accuracy == their_accuracy
        assert loss == pytest.approx(their_loss, rel=1e-12)  # the same sums, perhaps in another order
    random.seed(1337)
    their_model = micro_nn.MLP(2, [16, 16, 1])
    random.seed(1337)
    our_model = mg.MLP(2, [16, 16, 1])
    assert [p.data for p in our_model.parameters()] == [p.data for p in their_model.parameters()]
    assert repr(our_model) == repr(their_model)


def test_a_layer_of_one_neuron_returns_a_value_so_the_hinge_loss_line_works() -> None:
    random.seed(0)
    model = mg.MLP(2, [4, 1])
    score = model([0.5, -1.0])
    assert isinstance(score, Value)
    loss = (1 + -1 * score).relu()  # micrograd's demo line: a list here would fail
    assert loss.data == max(0.0, 1 - score.data)
    neuron = mg.Neuron(3, nonlin=False)
    assert neuron.b.data == 0.0 and all(-1 <= w.data <= 1 for w in neuron.w)
    assert len(mg.Layer(3, 2)([1.0, 2.0, 3.0])) == 2


def test_random_seed_fixes_nn_mlps_weights_too() -> None:
    random.seed(7)
    first = [p.data for p in nn.MLP(3, [4, 2]).parameters()]
    random.seed(7)
    again = [p.data for p in nn.MLP(3, [4, 2]).parameters()]
    random.seed(8)
    other = [p.data for p in nn.MLP(3, [4, 2]).parameters()]
    assert first == again and first != other


def test_a_learners_own_class_is_drawn_and_stepped_with_its_own_backward() -> None:
    LearnerValue = make("assign")  # the lecture's Value, with its = for += in __add__
    a, b = LearnerValue(2.0, label="a"), LearnerValue(-3.0, label="b")
    ab = a * b
    ab.label = "ab"
    y = ab + a
    y.label = "y"
    source = draw(y).source
    assert "{ a | data 2 | grad 0 }" in source and "{ ab | data -6 | grad 0 }" in source
    assert source.count("label=\"*\"") == 1 and source.count("label=\"+\"") == 1  # the learner's _op
    stepper = Stepper(y)
    assert len(stepper) == 3  # the start, then y's and ab's _backward()
    assert stepper.caption(1) == "y._backward(): a.grad 0 → 1; ab.grad 0 → 1"
    # ab's step adds b·1 = −3 into a, on top of the 1 that y's step assigned (in this order the
    # bug does not show: a + a would), and a·1 = 2 into b
    assert stepper.caption(2) == "ab._backward(): a.grad 1 → -2; b.grad 0 → 2"
    last = stepper.steps[-1].grads
    assert sorted(last.values()) == [-2.0, 1.0, 1.0, 2.0]
    assert (a.grad, b.grad, y.grad) == (0.0, 0.0, 0.0)  # the learner's gradients as they were


def test_a_node_without_micrograds_attributes_is_refused_by_name() -> None:
    class Half:
        def __init__(self) -> None:
            self.data, self.grad = 1.0, 0.0

    for make_view in (draw, Stepper):
        with pytest.raises(TypeError, match="Half has no _prev, _op"):
            make_view(Half())


def test_drawing_renders_without_a_system_graphviz_as_svg_by_default(tmp_path) -> None:  # type: ignore[no-untyped-def]
    o, _ = lecture_neuron()
    drawing = draw(o)
    assert drawing.format == "svg"
    assert drawing.pipe().lstrip().startswith(b"<?xml") or b"<svg" in drawing.pipe()
    assert "<svg" in drawing.pipe(encoding="utf-8")
    path = drawing.render(str(tmp_path / "gout"))
    assert path == str(tmp_path / "gout.svg") and "<svg" in (tmp_path / "gout.svg").read_text()
    assert (tmp_path / "gout").read_text() == drawing.source
    assert drawing.render(str(tmp_path / "g2"), format="png", cleanup=True).endswith("g2.png")
    assert (tmp_path / "g2.png").read_bytes().startswith(b"\x89PNG") and not (tmp_path / "g2").exists()


def test_fit_trains_micrograds_one_output_mlp_eager_and_compiled_alike() -> None:
    """micrograd's MLP returns the Value itself when it has one output; fit takes it (it said
    "'Value' object is not iterable"), and compiled training takes the same steps."""
    import random

    import nn
    from nn.micrograd import MLP as MicroMLP

    data = nn.make_moons(60, 0.1, seed=0)
    weights = []
    for compile in (False, True):
        random.seed(1)
        model = MicroMLP(2, [8, 1])
        nn.train.fit(model, data.X, data.y, loss="hinge", optimizer=nn.SGD(model.parameters(), lr=0.05),
                     epochs=3, progress=False, compile=compile)
        weights.append([p.data for p in model.parameters()])
    random.seed(1)
    assert weights[0] != [p.data for p in MicroMLP(2, [8, 1]).parameters()]  # it trained
    assert max(abs(a - b) for a, b in zip(*weights)) < 1e-9
