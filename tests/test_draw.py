"""Drawing: deterministic DOT (snapshot), rendering with the Graphviz that make test installs,
and the backward and forward steps against hand-computed gradients."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings

from engine import Value
from engine.draw import draw, render, renderer
from engine.steps import backward_steps, forward_steps
from engine.testing import graphs, points
from nn.cli import main

SNAPSHOTS = Path(__file__).parent / "snapshots"


def neuron() -> tuple[Value, Value, Value, Value]:
    w, x, b = Value(-3.0, "w"), Value(2.0, "x"), Value(6.88, "b")
    y = (w * x + b).tanh()
    y.backward()
    return y, w, x, b


def test_the_dot_source_of_a_neuron_matches_its_snapshot() -> None:
    y, w, _, b = neuron()
    source = draw(y, parameters=[w, b]).source
    assert source == (SNAPSHOTS / "neuron.dot").read_text(encoding="utf-8")
    y2, w2, _, b2 = neuron()  # a new graph, the same numbers: the same bytes (no id() in names)
    assert draw(y2, parameters=[w2, b2]).source == source


def test_what_a_neuron_drawing_shows() -> None:
    y, w, _, b = neuron()
    source = draw(y, parameters=[w, b], highlight=[w]).source
    # tanh'(0.88) = 1 − tanh²(0.88) = 0.5010 (4 digits); ∂y/∂w = x·0.5010 = 1.002
    assert 'label="{ w | data -3 | grad 1.002 }"' in source
    assert 'label="{ %5 | data 0.7064 | grad 1 }"' in source  # unlabelled: named %k as in captions
    assert "label=tanh" in source and 'label="×"' in source and 'label="+"' in source
    assert 'penwidth=3' in source  # the highlighted weight
    assert "parameter" in source and "input or constant" in source  # the legend


def test_a_value_used_twice_is_drawn_once_with_two_edges() -> None:
    a = Value(3.0, "a")
    square = a * a
    square.backward()
    source = draw(square).source
    assert source.count('label="{ a |') == 1 and source.count("v0 -> o1") == 2


def test_a_constant_exponent_is_part_of_the_op() -> None:
    a = Value(3.0, "a")
    source = draw(a**2).source
    assert 'label="**2"' in source and "data 2 " not in source


def test_gradient_colours_and_the_node_limit() -> None:
    x = Value(1.0, "x")
    y = x
    for _ in range(30):
        y = y * 1.5 - x
    y.backward()
    source = draw(y, grad_colors=True, max_nodes=10).source
    assert source.count("shape=record") == 10
    assert "values nearer the inputs not drawn (max_nodes)" in source and "grad +" in source


@pytest.mark.parametrize(("fmt", "magic"), [("svg", b"<?xml"), ("png", b"\x89PNG\r\n\x1a\n")])
def test_rendering_with_the_installed_graphviz(fmt: str, magic: bytes, tmp_path: Path) -> None:
    assert renderer()  # make test installs graphviz-pure when there is no system dot
    y, *_ = neuron()
    assert render(draw(y).source, fmt).startswith(magic)
    path = draw(y).save_as(tmp_path / f"neuron.{fmt}")
    assert path.read_bytes().startswith(magic)
    with pytest.raises(ValueError, match="unknown drawing format 'pdf'"):
        draw(y).save_as(tmp_path / "neuron.pdf")


def test_backward_steps_of_a_neuron_by_hand() -> None:
    y, w, x, b = neuron()
    steps = list(backward_steps(y))
    d = 1 - math.tanh(0.88) ** 2  # tanh'(w·x + b) = 0.50097...
    assert [s.name for s in steps] == ["%5", "%5", "%4", "%2"]  # start, tanh, +, ×
    assert steps[0].grads[y] == 1.0 and steps[0].caption == "start: ∂L/∂%5 = 1"
    assert steps[1].upstream == 1.0 and steps[1].local[0] == pytest.approx(d, rel=1e-14)
    assert steps[2].contributions[1] == (b, pytest.approx(d, rel=1e-14))  # ∂L/∂b = d · 1
    last = steps[-1].grads
    assert last[w] == pytest.approx(2.0 * d, rel=1e-14) and last[x] == pytest.approx(-3.0 * d, rel=1e-14)
    assert "∂L/∂w += ∂L/∂%2 · ∂%2/∂w = 0.501 · 2 = 1.002" in steps[-1].caption
    assert w.grad == last[w]  # the steps wrote nothing; backward() had already set w.grad


@settings(max_examples=100, deadline=None, suppress_health_check=list(HealthCheck))
@given(case=graphs().flatmap(points))
def test_the_last_backward_step_equals_backward(case) -> None:  # type: ignore[no-untyped-def]
    expr, x = case
    leaves = [Value(v) for v in x]
    root = expr.function(*leaves)
    last = list(backward_steps(root))[-1].grads
    root.backward()
    assert [last.get(leaf, 0.0) for leaf in leaves] == [leaf.grad for leaf in leaves]  # exactly


def test_forward_steps() -> None:
    y, *_ = neuron()
    assert [s.caption for s in forward_steps(y)] == [
        "w = -3 (leaf)", "x = 2 (leaf)", "%2 = mul(w, x) = mul(-3, 2) = -6", "b = 6.88 (leaf)",
        "%4 = add(%2, b) = add(-6, 6.88) = 0.88", "%5 = tanh(%4) = tanh(0.88) = 0.7064"]


def test_the_draw_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "neuron.svg"
    assert main(["draw", "tanh(w*x + b)", "--set", "w=-3", "x=2", "b=6.88", "-o", str(out)]) == 0
    assert out.read_bytes().startswith(b"<?xml") and b"tanh" in out.read_bytes()
    assert main(["draw", "__import__('os')", "-o", str(out)]) == 2
    assert "unknown function '__import__'" in capsys.readouterr().err
    model = tmp_path / "model.json"
    assert main(["train", "--dataset", "iris", "--hidden", "2", "--epochs", "1", "--out", str(tmp_path),
                 "--no-progress"]) == 0
    assert main(["draw", "--model", str(model), "--input", "1,2,3,4", "-o", str(tmp_path / "m.dot")]) == 0
    stats = __import__("json").loads(model.read_text())["extra"]["standardize"]
    fourth = (4.0 - stats["mean"][3]) / stats["std"][3]  # standardized as the model saw its data
    assert f"{{ x3 | data {fourth:.4g} |" in (tmp_path / "m.dot").read_text()
    assert main(["draw", "--model", str(model), "--input", "1,2", "-o", str(tmp_path / "m.dot")]) == 2


def small_mlp() -> tuple[object, Value, dict[Value, tuple[str, ...]]]:
    from nn import MLP
    from nn.module import graph_groups

    model = MLP(2, [2, 1], rng=0)
    y = model([Value(0.5, "x0"), Value(-1.0, "x1")])[0]
    y.backward()
    return model, y, graph_groups(model, y)


def test_an_mlp_is_drawn_in_layer_and_neuron_clusters() -> None:
    model, y, groups = small_mlp()
    # 2 neurons × (2 weights, 2 products, bias, sum, relu) + 1 neuron × (2 w, 2 ×, b, Σ): 20 nodes
    assert len(groups) == 20
    assert set(groups.values()) == {("layers.0", "layers.0.neurons.0"), ("layers.0", "layers.0.neurons.1"),
                                    ("layers.1", "layers.1.neurons.0")}
    source = draw(y, parameters=model.parameters(), groups=groups).source  # type: ignore[attr-defined]
    assert source == (SNAPSHOTS / "mlp_clusters.dot").read_text(encoding="utf-8")
    assert source.count("subgraph cluster_") == 5 and 'label="layers.0.neurons.1"' in source


def test_collapsed_to_neurons_and_automatically() -> None:
    _, y, groups = small_mlp()
    collapsed = draw(y, groups=groups, collapse=1).source
    assert collapsed == (SNAPSHOTS / "mlp_collapsed.dot").read_text(encoding="utf-8")
    assert collapsed.count("shape=box") == 3  # one box per neuron
    auto = draw(y, groups=groups, max_nodes=10).source  # 22 values > 10: collapsed, and it says so
    assert "collapsed to depth" in auto and "shape=box" in auto


def test_draw_model_collapses_by_name() -> None:
    from nn import MLP, draw_model

    model = MLP(2, [2, 1], rng=0)
    by_layer = draw_model(model, [0.5, -1.0], collapse="layer").source
    assert by_layer.count("shape=box") == 2 and "layers.1" in by_layer
    assert draw_model(model, [0.5, -1.0]).source.count("subgraph cluster_") == 5
    with pytest.raises(ValueError, match="collapse must be"):
        draw_model(model, [0.5, -1.0], collapse="neurons")
