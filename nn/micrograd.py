"""micrograd's ``nn``, on valuegrad's engine: the lecture's code runs unchanged.

``from nn.micrograd import MLP`` in place of ``from micrograd.nn import MLP`` (and
``from engine import Value`` in place of ``from micrograd.engine import Value``) and
micrograd's demo runs as it is, with micrograd's conventions:

- weights uniform in ``[-1, 1]`` from Python's global ``random`` (so ``random.seed(1337)``
  gives micrograd's weights), and biases 0;
- ReLU hidden layers and a linear last layer;
- a neuron adds ``b + w₀x₀ + w₁x₁ + …`` with Python's ``sum`` (a chain of ``+`` nodes, as
  micrograd builds it), so the forward values are micrograd's to the last bit;
- a layer of one neuron returns that Value, not a list.

Gradients agree with micrograd's to rounding: micrograd walks the graph through the sets in
``_prev``, whose order Python does not fix, so a gradient that sums several paths may add them
in another order.

valuegrad's own :class:`nn.MLP` keeps PyTorch's conventions (a list of outputs, ``Linear``'s
initialisation, named parameters, ``state_dict``).

Reference: Karpathy, micrograd 0.1.0, ``micrograd/nn.py`` (MIT licence).
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any

from engine import Value


class Module:
    """micrograd's ``Module``: ``parameters()`` (none here) and ``zero_grad()``."""

    def zero_grad(self) -> None:
        """Set every parameter's ``grad`` to 0."""
        for p in self.parameters():
            p.grad = 0

    def parameters(self) -> list[Value]:
        """The module's parameters (leaf Values), in micrograd's order."""
        return []


class Neuron(Module):
    """``relu(b + Σ wᵢ·xᵢ)`` (or without the ReLU when ``nonlin`` is false), as micrograd's.

    Args:
        nin: the number of inputs. nonlin: apply ReLU.
    """

    def __init__(self, nin: int, nonlin: bool = True) -> None:
        self.w = [Value(random.uniform(-1, 1)) for _ in range(nin)]
        self.b = Value(0)
        self.nonlin = nonlin

    def __call__(self, x: Sequence[Any]) -> Value:
        act = sum((wi * xi for wi, xi in zip(self.w, x)), self.b)
        return act.relu() if self.nonlin else act

    def parameters(self) -> list[Value]:
        return self.w + [self.b]

    def __repr__(self) -> str:
        return f"{'ReLU' if self.nonlin else 'Linear'}Neuron({len(self.w)})"


class Layer(Module):
    """``nout`` neurons side by side; a layer of one neuron returns its Value, not a list.

    Args:
        nin: inputs per neuron. nout: neurons. kwargs: passed to each :class:`Neuron`.
    """

    def __init__(self, nin: int, nout: int, **kwargs: Any) -> None:
        self.neurons = [Neuron(nin, **kwargs) for _ in range(nout)]

    def __call__(self, x: Sequence[Any]) -> Any:
        out = [n(x) for n in self.neurons]
        return out[0] if len(out) == 1 else out

    def parameters(self) -> list[Value]:
        return [p for n in self.neurons for p in n.parameters()]

    def __repr__(self) -> str:
        return f"Layer of [{', '.join(str(n) for n in self.neurons)}]"


class MLP(Module):
    """Layers in sequence: ReLU hidden layers, a linear last one.

    Args:
        nin: inputs. nouts: the size of each layer (``[16, 16, 1]``).
    """

    def __init__(self, nin: int, nouts: list[int]) -> None:
        sz = [nin] + nouts
        self.layers = [Layer(sz[i], sz[i + 1], nonlin=i != len(nouts) - 1) for i in range(len(nouts))]

    def __call__(self, x: Any) -> Any:
        for layer in self.layers:
            x = layer(x)
        return x

    def parameters(self) -> list[Value]:
        return [p for layer in self.layers for p in layer.parameters()]

    def __repr__(self) -> str:
        return f"MLP of [{', '.join(str(layer) for layer in self.layers)}]"
