"""nn modules: shapes, names, initialisation, errors, state_dict and save/load.

Expected values are worked by hand in the comments."""

from __future__ import annotations

import json
import math
import random

import pytest

from engine import Value
from nn import MLP, Layer, Module, Neuron


def set_params(module: Module, values: list[float]) -> None:
    for p, v in zip(module.parameters(), values, strict=True):
        p.data = v


def test_neuron_computes_w_dot_x_plus_b_and_its_gradients() -> None:
    n = Neuron(2, activation="linear")
    set_params(n, [2.0, -1.0, 0.5])  # w0, w1, b
    x = [Value(1.0), Value(3.0)]
    z = n(x)
    assert z.data == 2.0 * 1.0 + (-1.0) * 3.0 + 0.5  # = -0.5
    z.backward()
    # dz/dw_i = x_i, dz/db = 1, dz/dx_i = w_i
    assert [p.grad for p in n.parameters()] == [1.0, 3.0, 1.0]
    assert [xi.grad for xi in x] == [2.0, -1.0]


@pytest.mark.parametrize(("activation", "expected"), [
    ("relu", 0.0),                     # max(-0.5, 0)
    ("tanh", -0.46211715726000974),    # tanh(-0.5), from a table of tanh
    ("sigmoid", 0.3775406687981454),   # 1 / (1 + e^0.5)
    ("linear", -0.5),
])
def test_neuron_activations(activation: str, expected: float) -> None:
    n = Neuron(2, activation=activation)
    set_params(n, [2.0, -1.0, 0.5])
    assert n([1.0, 3.0]).data == pytest.approx(expected, rel=1e-15, abs=0.0)


def test_parameters_are_labelled_with_their_names() -> None:
    n = Neuron(3)
    assert [p.label for p in n.parameters()] == ["w0", "w1", "w2", "b"]
    assert all(p.is_leaf for p in n.parameters())


def test_pytorch_initialisation_bounds_and_seeding() -> None:
    # nn.Linear's default: uniform in [-1/sqrt(fan_in), 1/sqrt(fan_in)] for weights and bias.
    m = MLP(16, [8, 2], rng=3)
    for name, p in m.named_parameters():
        fan_in = 16 if name.startswith("layers.0.") else 8
        assert abs(p.data) <= 1 / math.sqrt(fan_in), name
    assert m.state_dict() == MLP(16, [8, 2], rng=3).state_dict()
    assert m.state_dict() != MLP(16, [8, 2], rng=4).state_dict()
    # The values are spread over the interval, not stuck near zero: 16*8 draws from
    # U(-0.25, 0.25) have a standard deviation of 0.25/sqrt(3) = 0.144.
    first = [p.data for name, p in m.named_parameters() if name.startswith("layers.0.") and ".w." in name]
    sd = math.sqrt(sum(v * v for v in first) / len(first))
    assert 0.10 < sd < 0.19


def test_micrograd_initialisation() -> None:
    m = MLP(2, [4, 1], init="micrograd", rng=0)
    weights = [p.data for name, p in m.named_parameters() if ".w." in name]
    biases = [p.data for name, p in m.named_parameters() if name.endswith(".b")]
    assert all(-1.0 <= w <= 1.0 for w in weights) and max(map(abs, weights)) > 0.5
    assert biases == [0.0] * 5


def test_named_parameters_are_stable_dotted_names() -> None:
    m = MLP(2, [3, 1])
    names = [name for name, _ in m.named_parameters()]
    assert len(names) == 2 * 3 + 3 + 3 * 1 + 1  # weights and biases of both layers = 13
    assert names[:3] == ["layers.0.neurons.0.w.0", "layers.0.neurons.0.w.1", "layers.0.neurons.0.b"]
    assert names[-1] == "layers.1.neurons.0.b"
    assert m.num_parameters() == 13


def test_layer_and_mlp_always_return_lists() -> None:
    assert isinstance(Layer(2, 1)([1.0, 2.0]), list)
    out = MLP(2, [4, 1])([1.0, 2.0])
    assert isinstance(out, list) and len(out) == 1 and isinstance(out[0], Value)
    assert len(MLP(3, [4, 5])([1.0, 2.0, 3.0])) == 5


@pytest.mark.parametrize("module", [Neuron(2), Layer(2, 3), MLP(2, [3, 1])])
def test_wrong_input_length_names_both_sizes(module: Module) -> None:
    with pytest.raises(ValueError, match=r"expected 2 inputs, got 3"):
        module([1.0, 2.0, 3.0])  # type: ignore[operator]


@pytest.mark.parametrize("make", [
    lambda: Neuron(0), lambda: Layer(2, 0), lambda: Layer(0, 2), lambda: MLP(0, [2]),
    lambda: MLP(2, []), lambda: MLP(2, [3, 0]), lambda: Neuron(2, activation="swish"),
    lambda: MLP(2, [1], init="xavier"), lambda: Neuron(True),  # type: ignore[arg-type]
])
def test_bad_sizes_and_names_are_rejected_at_construction(make: object) -> None:
    with pytest.raises(ValueError):
        make()  # type: ignore[operator]


def test_zero_grad_clears_every_parameter() -> None:
    m = MLP(2, [3, 1], rng=0)
    m([1.0, -1.0])[0].backward()
    assert any(p.grad != 0.0 for p in m.parameters())
    m.zero_grad()
    assert all(p.grad == 0.0 for p in m.parameters())


def test_state_dict_round_trip_and_errors() -> None:
    a, b = MLP(2, [3, 1], rng=1), MLP(2, [3, 1], rng=2)
    b.load_state_dict(a.state_dict())
    assert b.state_dict() == a.state_dict()
    assert all(type(v) is float for v in a.state_dict().values())
    with pytest.raises(KeyError, match="missing"):
        MLP(2, [4, 1]).load_state_dict(a.state_dict())


def test_a_failed_load_state_dict_changes_nothing() -> None:
    model = MLP(2, [2], rng=0)
    before = model.state_dict()
    state = {name: 0.5 for name in before}
    state[list(before)[-1]] = "not a number"  # type: ignore[assignment]
    with pytest.raises(TypeError, match="got str"):
        model.load_state_dict(state)
    assert model.state_dict() == before


def test_save_and_load_json(tmp_path) -> None:  # type: ignore[no-untyped-def]
    model = MLP(3, [4, 2], activation="tanh", rng=5)
    path = tmp_path / "sub" / "model.json"
    model.save(path, extra={"epoch": 7})
    document = json.loads(path.read_text())
    assert document["format_version"] == 1 and document["extra"] == {"epoch": 7}
    assert [p.name for p in tmp_path.joinpath("sub").iterdir()] == ["model.json"]  # no temp file left
    loaded = MLP.load(path)
    assert loaded.state_dict() == model.state_dict()
    assert loaded([1.0, 2.0, 3.0])[1].data == model([1.0, 2.0, 3.0])[1].data
    assert Module.load(path).config() == model.config()


def test_load_rejects_other_files(tmp_path) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(FileNotFoundError):
        MLP.load(tmp_path / "nope.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ValueError, match="not JSON"):
        MLP.load(bad)
    bad.write_text(json.dumps({"format": "valuegrad-model", "format_version": 99}))
    with pytest.raises(ValueError, match="format version 99"):
        MLP.load(bad)
    Neuron(2).save(bad)
    with pytest.raises(ValueError, match="not a MLP"):
        MLP.load(bad)


def test_a_crash_while_saving_keeps_the_old_file(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "model.json"
    MLP(2, [2], rng=0).save(path)
    before = path.read_text()

    def fail(*args: object, **kwargs: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr("os.replace", fail)
    with pytest.raises(OSError, match="disk full"):
        MLP(2, [2], rng=1).save(path)
    assert path.read_text() == before
    assert [p.name for p in tmp_path.iterdir()] == ["model.json"]


def test_models_pickle_and_copy() -> None:
    import copy
    import pickle

    m = MLP(2, [3, 1], rng=random.Random(0))
    for clone in (pickle.loads(pickle.dumps(m)), copy.deepcopy(m)):
        assert clone.state_dict() == m.state_dict()
        assert clone.parameters()[0] is not m.parameters()[0]


class Tied(Module):
    """A weight stored under two attributes, a submodule stored twice, and a cached output."""

    def __init__(self) -> None:
        self.w = Value(2.0, "w")
        self.inner = Neuron(1, activation="linear", rng=0)
        self.again = self.w  # the same Value: one parameter, named "w"
        self.twin = self.inner  # the same submodule: its parameters are named "inner.…"
        self.last = self.w * 3.0  # a computed Value (not a leaf): not a parameter

    def __call__(self, x: float) -> Value:
        return self.inner([self.w * x]) + self.again


def test_tied_parameters_are_one_parameter_under_their_first_name() -> None:
    m = Tied()
    assert [name for name, _ in m.named_parameters()] == ["w", "inner.w.0", "inner.b"]
    assert m.parameters() == [m.w, m.inner.w[0], m.inner.b]
    assert m.num_parameters() == 3
    # every name a parameter is reachable under, as torch.nn.Module.state_dict; the cached
    # product is not there
    assert list(m.state_dict()) == ["w", "inner.w.0", "inner.b", "again", "twin.w.0", "twin.b"]
    assert [name for name, _ in m.named_parameters(remove_duplicate=False)] == list(m.state_dict())


def test_an_optimizer_steps_a_tied_parameter_once() -> None:
    from nn import SGD

    m = Tied()
    m.inner.w[0].data, m.inner.b.data = 0.5, 0.0
    optimizer = SGD(m.parameters(), lr=0.1)
    optimizer.zero_grad()
    m(4.0).backward()
    # out = 0.5 * (w * 4) + 0 + w, so d out / dw = 0.5 * 4 + 1 = 3, and w moves by lr * 3 = 0.3
    assert m.w.grad == 3.0
    optimizer.step()
    assert m.w.data == pytest.approx(2.0 - 0.3, abs=1e-15)


def test_a_state_dict_with_tied_parameters_round_trips_and_rejects_disagreeing_copies() -> None:
    a, b = Tied(), Tied()
    a.w.data = 7.0
    b.load_state_dict(a.state_dict())
    assert b.w.data == 7.0 and b.again is b.w
    state = a.state_dict()
    state["again"] = 8.0  # "w" and "again" name one Value: which to keep is ambiguous
    with pytest.raises(ValueError, match="'w' and 'again', which are one parameter"):
        b.load_state_dict(state)
    assert b.w.data == 7.0


def test_tied_parameters_as_pytorch_lists_them() -> None:
    torch = pytest.importorskip("torch", reason="PyTorch is not installed: it is the reference here")

    class TorchTied(torch.nn.Module):  # type: ignore[misc]
        def __init__(self) -> None:
            super().__init__()
            self.w = torch.nn.Parameter(torch.tensor(2.0))
            self.inner = torch.nn.Linear(1, 1)
            self.again = self.w
            self.twin = self.inner

    t = TorchTied()
    names = {"weight": "w.0", "bias": "b"}  # torch's Linear names, and Neuron's
    torch_names = [name for name, _ in t.named_parameters()]
    assert [n.replace("weight", names["weight"]).replace("bias", names["bias"]) for n in torch_names] \
        == [name for name, _ in Tied().named_parameters()]
    # (PyTorch lists a module's own parameters before its submodules'; valuegrad keeps the
    # order the attributes were set in, so the keys agree as a set)
    assert {n.replace("weight", names["weight"]).replace("bias", names["bias"]) for n in t.state_dict()} \
        == set(Tied().state_dict())
    assert sum(p.numel() for p in t.parameters()) == Tied().num_parameters()
