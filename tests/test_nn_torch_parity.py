"""One MLP training step against PyTorch: the same weights, loss, gradients and update."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch", reason="PyTorch is not installed: it is the reference here")

from engine import Value  # noqa: E402
from nn import MLP, SGD, Adam, binary_cross_entropy_with_logits, cross_entropy, mse_loss  # noqa: E402

F64 = torch.float64
X = [[0.5, -1.0, 2.0], [1.5, 0.25, -0.75], [-2.0, 1.0, 0.0], [0.1, 0.2, 0.3]]
Y = [0, 2, 1, 2]


def torch_twin(model: MLP) -> torch.nn.Sequential:
    """The same network in PyTorch, float64, with the same weights."""
    layers: list[torch.nn.Module] = []
    for i, layer in enumerate(model.layers):
        linear = torch.nn.Linear(layer.nin, layer.nout, dtype=F64)
        with torch.no_grad():
            linear.weight.copy_(torch.tensor([[w.data for w in n.w] for n in layer.neurons], dtype=F64))
            linear.bias.copy_(torch.tensor([n.b.data for n in layer.neurons], dtype=F64))
        layers.append(linear)
        activation = model.output_activation if i == len(model.layers) - 1 else model.activation
        layers += {"relu": [torch.nn.ReLU()], "tanh": [torch.nn.Tanh()], "sigmoid": [torch.nn.Sigmoid()],
                   "linear": []}[activation]
    return torch.nn.Sequential(*layers)


def ours_flat(model: MLP, attr: str) -> list[float]:
    # named_parameters order: per neuron w0..wn, b; torch: weight rows then bias per layer.
    values = []
    for layer in model.layers:
        values += [getattr(w, attr) for n in layer.neurons for w in n.w]
        values += [getattr(n.b, attr) for n in layer.neurons]
    return values


def torch_flat(net: torch.nn.Sequential, grad: bool = False) -> list[float]:
    values: list[float] = []
    for p in net.parameters():
        values += (p.grad if grad else p.detach()).flatten().tolist()
    return values


@pytest.mark.parametrize("activation", ["relu", "tanh", "sigmoid"])
@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_one_cross_entropy_step_matches_torch(activation: str, optimizer: str) -> None:
    model = MLP(3, [5, 3], activation=activation, rng=1)
    net = torch_twin(model)
    if optimizer == "sgd":
        ours_opt = SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=0.01)
        torch_opt = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9, weight_decay=0.01)
    else:
        ours_opt = Adam(model.parameters(), lr=0.05, weight_decay=0.01)
        torch_opt = torch.optim.Adam(net.parameters(), lr=0.05, weight_decay=0.01)
    for _ in range(2):  # two steps, so momentum and Adam's moments are exercised
        loss = cross_entropy([model(x) for x in X], Y)
        ours_opt.zero_grad()
        loss.backward()
        tloss = torch.nn.functional.cross_entropy(net(torch.tensor(X, dtype=F64)), torch.tensor(Y))
        torch_opt.zero_grad()
        tloss.backward()
        assert loss.data == pytest.approx(tloss.item(), rel=1e-12)
        assert ours_flat(model, "grad") == pytest.approx(torch_flat(net, grad=True), rel=1e-9, abs=1e-12)
        ours_opt.step()
        torch_opt.step()
        assert ours_flat(model, "data") == pytest.approx(torch_flat(net), rel=1e-9, abs=1e-12)


def test_bce_and_mse_match_torch() -> None:
    logits = torch.tensor([-3.0, 0.0, 0.5, 40.0], dtype=F64, requires_grad=True)
    targets = [1.0, 0.0, 0.25, 0.0]
    functional = torch.nn.functional
    expected = functional.binary_cross_entropy_with_logits(logits, torch.tensor(targets, dtype=F64))
    expected.backward()
    ours = [Value(v) for v in logits.tolist()]
    loss = binary_cross_entropy_with_logits(ours, targets)
    loss.backward()
    assert loss.data == pytest.approx(expected.item(), rel=1e-12)
    assert [v.grad for v in ours] == pytest.approx(logits.grad.tolist(), rel=1e-12, abs=1e-15)

    preds = torch.tensor([[1.0, -2.0], [0.5, 3.0]], dtype=F64, requires_grad=True)
    target = [[0.0, 1.0], [1.0, 1.0]]
    expected = functional.mse_loss(preds, torch.tensor(target, dtype=F64))
    expected.backward()
    ours_rows = [[Value(v) for v in row] for row in preds.tolist()]
    loss = mse_loss(ours_rows, target)
    loss.backward()
    assert loss.data == pytest.approx(expected.item(), rel=1e-12)
    expected_grads = preds.grad.flatten().tolist()
    assert [v.grad for row in ours_rows for v in row] == pytest.approx(expected_grads, rel=1e-12)
