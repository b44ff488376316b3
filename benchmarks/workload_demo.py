"""micrograd's demo workload (its ``demo.ipynb``), as each engine runs one training step.

100 two-moons points, labels ±1, ``MLP(2, [16, 16, 1])`` with micrograd's initialisation (the
same weights in both engines: the same draws, in the same order), loss = mean hinge loss
``relu(1 - y·score)`` + ``1e-4 · Σ p²``, full-batch SGD with ``lr = 1 - 0.9·k/100``. One step =
forward over all points, loss, zero_grad, backward, update. micrograd runs the notebook's code;
valuegrad runs ``nn.MLP``, ``nn.hinge_loss``, ``engine.sum`` and ``nn.SGD``; PyTorch runs the
same step on float64 tensors (``torch.nn.Linear`` layers, the same initial weights).

The traced steps train from one sample's loss traced once (``engine.trace``), with the model's
weights as parameters: ``nn.losses.sample_loss`` (``relu(1 - t·score)``), replayed with seed
``1/N`` per sample, so the gradients are those of the mean hinge loss; the L2 term's gradient
``2·1e-4·p`` is the ``weight_decay`` of the same ``nn.SGD`` update, and the loss reported adds
``1e-4 · Σ p²`` on floats. **Batched replay** is ``nn.train.CompiledSteps``, the step of
``fit(..., compile=True)`` (all samples at once on numpy, layers as matrix products);
**replay** runs the generated Python on floats, one sample at a time (nn has no such step).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import engine
import nn

ALPHA = 1e-4  # the L2 coefficient of micrograd's demo
POINTS = 100  # moons in the demo
Step = Callable[[int], tuple[float, float]]  # step(k) trains step k; returns (loss, accuracy)
Weights = list[tuple[list[list[float]], list[float]]]


def demo_lr(k: int) -> float:
    return 1.0 - 0.9 * k / 100


def demo_data(seed: int, points: int = POINTS) -> tuple[list[list[float]], list[int]]:
    """The demo's moons (noise 0.1) and their labels ±1."""
    data = nn.make_moons(points, 0.1, seed=seed)
    return data.X, [2 * c - 1 for c in data.y]


def micrograd_step(model: Any, X: Sequence[Sequence[float]], y: Sequence[int], k: int) -> tuple[float, float]:
    """One step of micrograd's demo.ipynb, as written there: ``loss()`` then the update."""
    from micrograd.engine import Value as MicroValue  # type: ignore[import-untyped]

    inputs = [list(map(MicroValue, xrow)) for xrow in X]
    scores = list(map(model, inputs))
    losses = [(1 + -yi * scorei).relu() for yi, scorei in zip(y, scores)]
    data_loss = sum(losses) * (1.0 / len(losses))
    reg_loss = ALPHA * sum(p * p for p in model.parameters())
    total_loss = data_loss + reg_loss
    accuracy = [(yi > 0) == (scorei.data > 0) for yi, scorei in zip(y, scores)]
    model.zero_grad()
    total_loss.backward()
    learning_rate = demo_lr(k)
    for p in model.parameters():
        p.data -= learning_rate * p.grad
    return total_loss.data, sum(accuracy) / len(accuracy)


def valuegrad_step(model: nn.MLP, params: list[engine.Value], optimizer: nn.SGD,
                   X: Sequence[Sequence[float]], y: Sequence[int], k: int) -> tuple[float, float]:
    """The same step with valuegrad's library."""
    scores = [model(x)[0] for x in X]
    total_loss = nn.hinge_loss(scores, y) + ALPHA * engine.sum([p * p for p in params])
    accuracy = sum((yi > 0) == (s.data > 0) for yi, s in zip(y, scores)) / len(y)
    optimizer.zero_grad()
    total_loss.backward()
    optimizer.lr = demo_lr(k)
    optimizer.step()
    return total_loss.data, accuracy


def micrograd_demo(seed: int, X: Sequence[Sequence[float]], y: Sequence[int]) -> tuple[Step, list[float]]:
    """A fresh micrograd model, as its ``step``, and its initial weights. (micrograd is imported
    here and in :func:`micrograd_step`, so that the rest runs without it.)"""
    from micrograd import nn as micro_nn  # type: ignore[import-untyped]

    random.seed(seed)  # micrograd's Neuron draws its weights from the global generator
    model = micro_nn.MLP(2, [16, 16, 1])
    return (lambda k: micrograd_step(model, X, y, k)), [float(p.data) for p in model.parameters()]


def demo_model(seed: int) -> nn.MLP:
    """A fresh valuegrad model with micrograd's weights for ``seed``."""
    return nn.MLP(2, [16, 16, 1], init="micrograd", rng=seed)


def valuegrad_demo(seed: int, X: Sequence[Sequence[float]], y: Sequence[int]) -> tuple[Step, nn.MLP]:
    """A fresh valuegrad model, as its ``step``, and the model."""
    model = demo_model(seed)
    params = model.parameters()
    optimizer = nn.SGD(params, lr=demo_lr(0))
    return (lambda k: valuegrad_step(model, params, optimizer, X, y, k)), model


def l2(params: Sequence[engine.Value]) -> float:
    """The demo's L2 term ``1e-4 · Σ p²`` on the parameters' current values."""
    return ALPHA * sum(p.data * p.data for p in params)


@dataclass
class TracedDemo:
    """A fresh valuegrad model trained by a traced step. ``step(k)`` trains step ``k`` and
    returns the mean hinge loss before the update (without the L2 term: see :meth:`loss_step`);
    ``program()`` is the traced program (for batched replay, once the first step has run)."""

    model: nn.MLP
    step: Callable[[int], float]
    program: Callable[[], engine.Program]

    def loss_step(self, k: int) -> float:
        """``step(k)``, returning the demo's whole loss before the update (L2 term included)."""
        reg = l2(self.model.parameters())
        return reg + self.step(k)


def traced_demo(seed: int, X: Sequence[Sequence[float]], y: Sequence[int], batched: bool) -> TracedDemo:
    """The demo step by replay of one sample's traced loss: on floats one sample at a time, or
    ``batched`` on numpy (``nn.train.CompiledSteps``, which traces and generates its code on the
    first step). Replay traces here and generates its code on the first step."""
    model = demo_model(seed)
    params = model.parameters()
    optimizer = nn.SGD(params, lr=demo_lr(0), weight_decay=2 * ALPHA)  # the L2 term's gradient
    if batched:
        steps = nn.train.CompiledSteps(model, "hinge", 2)
        classes = [(t + 1) // 2 for t in y]

        def batched_step(k: int) -> float:
            optimizer.lr = demo_lr(k)
            return steps.step(optimizer, X, classes, f"demo step {k}")[0]

        return TracedDemo(model, batched_step, lambda: steps.program)

    def sample(x: list[engine.Value], target: list[engine.Value]) -> engine.Value:
        return nn.losses.sample_loss("hinge", model(x), target)

    program = engine.trace(sample, [0.0, 0.0], [1.0], params=model)
    rows = [[*x, float(t)] for x, t in zip(X, y)]
    weight = 1.0 / len(rows)  # each sample's seed: the gradients are those of the mean

    def replay_step(k: int) -> float:
        theta = [p.data for p in params]
        replays = [program(row, theta, seeds=weight) for row in rows]
        for p, g in zip(params, [sum(column) for column in zip(*(r.param_grads for r in replays))]):
            p.grad = g
        optimizer.lr = demo_lr(k)
        optimizer.step()
        return sum(r.outputs[0] for r in replays) / len(rows)

    return TracedDemo(model, replay_step, lambda: program)


def accuracy(model: nn.MLP, X: Sequence[Sequence[float]], y: Sequence[int]) -> float:
    """The fraction of points whose score has the sign of their label."""
    with engine.no_grad():
        return sum((yi > 0) == (model(x)[0].data > 0) for x, yi in zip(X, y)) / len(X)


def model_weights(model: nn.MLP) -> Weights:
    """Per layer, the weight matrix (one row per neuron) and the biases, as floats."""
    return [([[w.data for w in n.w] for n in layer.neurons], [n.b.data for n in layer.neurons])
            for layer in model.layers]


def torch_demo(weights: Weights, X: Sequence[Sequence[float]], y: Sequence[int]) -> Callable[[int], float]:
    """The demo step on PyTorch float64 tensors from ``weights`` (needs torch): ``step(k)``
    returns the loss before the update."""
    import torch  # type: ignore[import-not-found, unused-ignore]

    layers: list[Any] = []
    for i, (w, b) in enumerate(weights):
        linear = torch.nn.Linear(len(w[0]), len(w), dtype=torch.float64)
        with torch.no_grad():
            linear.weight.copy_(torch.tensor(w, dtype=torch.float64))
            linear.bias.copy_(torch.tensor(b, dtype=torch.float64))
        layers += [linear] if i == len(weights) - 1 else [linear, torch.nn.ReLU()]
    model = torch.nn.Sequential(*layers)
    params = list(model.parameters())
    inputs = torch.tensor(X, dtype=torch.float64)
    labels = torch.tensor(y, dtype=torch.float64)

    def step(k: int) -> float:
        scores = model(inputs).squeeze(1)
        loss = torch.relu(1 - labels * scores).mean() + ALPHA * sum((p * p).sum() for p in params)
        model.zero_grad()
        loss.backward()
        with torch.no_grad():
            for p in params:
                p -= demo_lr(k % 100) * p.grad
        return loss.item()

    return step
