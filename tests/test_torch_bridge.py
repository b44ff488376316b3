"""nn.to_torch and nn.from_torch, checked against PyTorch itself: the same outputs and gradients
(to rounding: a matrix product adds in another order than a neuron's sum), a round trip bit for
bit, and an imported model drawn and stepped with the gradients torch's autograd gives."""

from __future__ import annotations

import re

import pytest

torch = pytest.importorskip("torch", reason="PyTorch is not installed: the bridge is checked against it")

import engine  # noqa: E402
import nn  # noqa: E402
from engine import Value  # noqa: E402
from engine.stepper import Stepper  # noqa: E402

INPUTS = [[0.5, -1.0, 2.0, 0.1], [-0.3, 0.8, 0.0, 1.7], [2.5, 2.5, -2.5, 0.0]]


class Doubled(torch.nn.Linear):
    """A Linear whose forward is not Linear's: from_torch must not read it as one."""

    def forward(self, x):  # type: ignore[no-untyped-def]
        return 2 * super().forward(x)


TIED = torch.nn.Linear(4, 4)


def hooked(module):  # type: ignore[no-untyped-def]
    module.register_forward_hook(lambda m, args, out: out * 0)
    return module


@pytest.mark.parametrize("activation", ["relu", "tanh", "sigmoid"])
def test_to_torch_gives_valuegrads_outputs_and_gradients(activation: str) -> None:
    model = nn.MLP(4, [8, 6, 3], activation=activation, rng=1)
    seq = nn.to_torch(model)
    assert list(seq.state_dict()) == ["0.weight", "0.bias", "2.weight", "2.bias", "4.weight", "4.bias"]
    assert seq[0].weight.dtype == torch.float64
    outputs = [model(x) for x in INPUTS]
    total = engine.sum([o for row in outputs for o in row])
    total.backward()
    theirs = seq(torch.tensor(INPUTS, dtype=torch.float64))
    theirs.sum().backward()
    for row, their_row in zip(outputs, theirs.tolist()):
        assert [o.data for o in row] == pytest.approx(their_row, rel=1e-12, abs=1e-15)
    for layer, linear in zip(model.layers, [seq[0], seq[2], seq[4]]):
        weight_grads = [[w.grad for w in n.w] for n in layer.neurons]
        assert torch.allclose(torch.tensor(weight_grads, dtype=torch.float64), linear.weight.grad,
                              rtol=1e-12, atol=1e-14)
        biases = [n.b.grad for n in layer.neurons]
        assert biases == pytest.approx(linear.bias.grad.tolist(), rel=1e-12, abs=1e-14)


def test_from_torch_round_trips_bit_for_bit() -> None:
    torch.manual_seed(0)
    for dtype in (torch.float32, torch.float64):
        seq = torch.nn.Sequential(torch.nn.Linear(3, 5), torch.nn.Tanh(), torch.nn.Linear(5, 2, bias=False),
                                  torch.nn.Identity()).to(dtype)
        model = nn.from_torch(seq)
        assert (model.activation, model.output_activation, model.nouts) == ("tanh", "linear", [5, 2])
        x = torch.tensor([[1.0, -2.0, 0.5], [0.0, 0.25, 3.0]], dtype=dtype)
        assert torch.equal(nn.to_torch(model, dtype=dtype)(x), seq(x))


def test_an_imported_model_is_stepped_with_the_gradients_torch_gives() -> None:
    torch.manual_seed(1)
    seq = torch.nn.Sequential(torch.nn.Linear(2, 3), torch.nn.ReLU(), torch.nn.Linear(3, 1)).double()
    model = nn.from_torch(seq)
    x = [Value(0.7, "x0"), Value(-0.4, "x1")]
    (out,) = model(x)
    stepper = Stepper(out)
    last = stepper.steps[-1].grads
    point = torch.tensor([[0.7, -0.4]], dtype=torch.float64, requires_grad=True)
    seq(point).sum().backward()
    assert [last[v] for v in x] == pytest.approx(point.grad[0].tolist(), rel=1e-12, abs=1e-15)
    assert "x0" in nn.draw_model(model, [0.7, -0.4]).source


@pytest.mark.parametrize(("modules", "says"), [
    (lambda: [torch.nn.Linear(3, 4), torch.nn.Dropout()], "module 1 of the Sequential is Dropout, which"),
    (lambda: [torch.nn.Conv1d(1, 1, 2)], "module 0 of the Sequential is Conv1d"),
    (lambda: [torch.nn.ReLU(), torch.nn.Linear(3, 4)], "ReLU, before any Linear"),
    (lambda: [torch.nn.Linear(3, 4), torch.nn.ReLU(), torch.nn.Tanh()], "Tanh, after another activation"),
    (lambda: [torch.nn.Linear(3, 4), torch.nn.ReLU(), torch.nn.Linear(4, 4), torch.nn.Tanh(),
              torch.nn.Linear(4, 1)], "different activations (relu, tanh)"),
    (lambda: [torch.nn.Linear(3, 4), torch.nn.Linear(5, 1)], "4 outputs feed 5 inputs"),
    (lambda: [Doubled(3, 4)], "module 0 of the Sequential is Doubled, which"),
    (lambda: [TIED, torch.nn.Tanh(), TIED], "module 2 of the Sequential is a Linear used twice"),
    (lambda: [hooked(torch.nn.Linear(3, 4))], "module 0 of the Sequential (Linear) has forward hooks"),
])
def test_from_torch_names_what_it_cannot_express(modules, says: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValueError, match=re.escape(says)):
        nn.from_torch(torch.nn.Sequential(*modules()))


# --------------------------------------------------------------------------------------------
# Program.to_torch


def traced_mlp() -> tuple[nn.MLP, engine.Program]:
    model = nn.MLP(3, [5, 4, 2], activation="tanh", rng=0)
    return model, engine.trace(lambda x: model(x), [0.1, 0.2, 0.3], params=model)


def test_a_program_on_tensors_gives_batched_replays_outputs_and_gradients() -> None:
    np = pytest.importorskip("numpy")
    model, program = traced_mlp()
    module = program.to_torch(device="cpu")
    names = [n for n, _ in module.named_parameters()]
    assert names == [n.replace(".", "_") for n, _ in model.named_parameters()]
    X = np.array([[0.1, 0.2, 0.3], [1.0, -1.0, 0.5], [-2.0, 0.3, 0.0]])
    out = module(torch.tensor(X))
    out.sum().backward()
    replay = program.batch(X, input_grads=False)
    assert np.abs(out.detach().numpy() - replay.outputs).max() <= 1e-12
    grads = torch.stack([p.grad for p in module.parameters()]).numpy()
    assert np.abs(grads - replay.param_grads).max() <= 1e-10
    # and the eager engine's, summed over the rows, by a route that shares no code with either
    total = engine.sum([o for row in X.tolist() for o in model(row)])
    total.backward()
    assert np.abs(grads - np.array([p.grad for p in model.parameters()])).max() <= 1e-10


def test_a_program_on_tensors_refuses_what_it_cannot_run() -> None:
    twice = engine.define_op("twice_t", forward=lambda a: 2 * a, derivative=lambda a, out: (2.0,))
    with pytest.raises(ValueError, match="twice_t"):
        engine.trace(lambda x: twice(x), 1.0).to_torch()
    program = engine.trace(lambda x: x.relu() if x > 0 else -x, 1.0)
    with pytest.raises(engine.GuardFailed, match="sample 1 of the batch"):
        program.to_torch()(torch.tensor([[2.0], [-1.0]], dtype=torch.float64))


def test_training_goes_on_in_pytorch_from_the_exported_adam_state_step_for_step() -> None:
    data = nn.load_iris()
    X, y = nn.Standardizer.fit(data.X).transform(data.X), data.y
    model = nn.MLP(4, [8, 3], rng=0)
    optimizer = nn.Adam(model.parameters(), lr=0.05, weight_decay=1e-3)

    def step() -> float:
        loss = nn.cross_entropy([model(x) for x in X], y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        return loss.data

    for _ in range(4):
        step()
    seq = nn.to_torch(model)
    theirs = nn.adam_to_torch(optimizer, model, seq)
    assert theirs.state[seq[0].weight]["exp_avg"].shape == (8, 4)
    X_t, y_t = torch.tensor(X, dtype=torch.float64), torch.tensor(y)
    for _ in range(8):  # the same loss curve: valuegrad's Adam and torch's from its state
        ours = step()
        theirs.zero_grad()
        loss = torch.nn.functional.cross_entropy(seq(X_t), y_t)
        loss.backward()
        theirs.step()
        assert loss.item() == pytest.approx(ours, rel=1e-12)
    with pytest.raises(ValueError, match="must step model.parameters"):
        nn.adam_to_torch(nn.Adam(model.parameters()[::-1]), model, seq)


def test_wrong_arguments_to_the_bridge_are_named() -> None:
    model = nn.MLP(2, [3, 1], rng=0)
    with pytest.raises(ValueError, match="dtype must be a real floating-point torch dtype"):
        nn.to_torch(model, dtype=torch.int64)
    with pytest.raises(ValueError, match="dtype must be a real floating-point torch dtype"):
        engine.trace(lambda x: model(x), [0.0, 0.0], params=model).to_torch(dtype=torch.complex128)
    with pytest.raises(TypeError, match="adam_to_torch takes an nn.Adam"):
        nn.adam_to_torch(nn.SGD(model.parameters(), lr=0.1), model, nn.to_torch(model))
    other = nn.MLP(2, [3, 1], rng=1)  # the same shape, other weights
    with pytest.raises(ValueError, match="the module's weights are not the model's"):
        nn.adam_to_torch(nn.Adam(model.parameters()), model, nn.to_torch(other))


def test_parameter_labels_torch_uses_get_their_own_names() -> None:
    training, forward, hidden = Value(0.5, "training"), Value(-1.0, "forward"), Value(2.0, "_x")
    program = engine.trace(lambda x: training * x + forward * x * hidden, 1.5)
    module = program.to_torch()
    assert [n for n, _ in module.named_parameters()] == ["training_p", "forward_p", "p_x"]
    assert module(torch.tensor([[1.5]], dtype=torch.float64)).item() == 0.5 * 1.5 + -1.0 * 1.5 * 2.0
