"""Why isn't it learning? Per-layer statistics of an MLP: dead and saturated units, the
activations' spread, the gradient norm and the update-to-data ratio.

The statistics are the ones A. Karpathy reads off a network in "Building makemore Part 3:
Activations & Gradients, BatchNorm" (lecture video and notebook, 2022): histograms of the
tanh activations and the share of them that are saturated, dead neurons, per-layer gradient
statistics, and the update-to-data ratio ``log10(std(lr·grad) / std(data))`` per parameter
tensor, which should sit near −3 (updates about a thousandth of the weights).

    >>> from nn import MLP
    >>> model = MLP(2, [3, 1], rng=0)
    >>> stats = layer_statistics(model, [[0.5, -1.0], [1.0, 2.0]])
    >>> sorted(stats[0])  # doctest: +NORMALIZE_WHITESPACE
    ['activation', 'activation_mean', 'activation_std', 'dead_fraction', 'grad_norm', 'layer',
     'saturated_fraction', 'update_to_data']
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from typing import Any

from engine import OPS, Value, no_grad
from nn.module import Layer, Module
from nn.optim import Optimizer

STATISTICS = ("dead_fraction", "saturated_fraction", "activation_mean", "activation_std", "grad_norm",
              "update_to_data")
"""The statistics :func:`layer_statistics` gives for each layer, in the order of the CSV columns."""

SATURATION = 0.99
"""A tanh output is saturated when ``|a| > 0.99``, a sigmoid output when outside
``[0.01, 0.99]``: there the local derivative (``1 − a²``, ``a(1 − a)``) is below 0.02 (tanh)
or 0.0099 (sigmoid), so the unit passes on almost no gradient. (The lecture counts
``|tanh| > 0.97``; 0.99 counts only the units that are well and truly flat.)"""


def _layers(model: Module) -> list[Layer]:
    layers = getattr(model, "layers", None)
    if not isinstance(layers, list) or not layers or not all(isinstance(la, Layer) for la in layers):
        raise TypeError(f"layer statistics need an nn.MLP (a model with a list of nn.Layer in .layers), "
                        f"got {type(model).__name__}")
    return layers


def layer_activations(model: Module, X: Sequence[Sequence[float]]) -> list[list[list[float]]]:
    """Every layer's outputs (after its activation) on every sample, as floats:
    ``result[k][i][j]`` is unit ``j`` of layer ``k`` (``model.layers[k]``) on sample ``X[i]``.

    The forward pass is on plain floats with the engine's own forward functions
    (``engine.OPS[...].forward``), so the numbers are the model's own, bit for bit, at a
    fraction of the cost of building Values; it runs under :class:`engine.no_grad`, and
    nothing is recorded.

    Raises:
        TypeError: ``model`` is not an MLP-like module with ``.layers``.
        ValueError: ``X`` is empty, or a sample is not a list of ``model.layers[0].nin`` numbers.
    """
    layers = _layers(model)
    if len(X) == 0:
        raise ValueError("layer statistics need at least one sample, got none")
    nin = layers[0].nin
    for i, x in enumerate(X):
        if isinstance(x, (str, bytes)) or not isinstance(x, Sequence) or len(x) != nin or \
                not all(isinstance(v, numbers.Real) and not isinstance(v, bool) for v in x):
            raise ValueError(f"sample {i} must be a list of {nin} numbers (the model's inputs), "
                             f"got {x!r:.80}")
    add = OPS["sum"].forward
    weights = [[([w.data for w in n.w], n.b.data) for n in layer.neurons] for layer in layers]
    activate = [(lambda z: z) if la.activation == "linear" else OPS[la.activation].forward for la in layers]
    result: list[list[list[float]]] = [[] for _ in layers]
    with no_grad():
        for x in X:
            out = [float(v) for v in x]
            for k, (neurons, act) in enumerate(zip(weights, activate)):
                # as Neuron.__call__: one sum of the products w_i·x_i and then b, left to right
                out = [act(add(*[w * v for w, v in zip(ws, out)], b)) for ws, b in neurons]
                result[k].append(out)
    return result


def _mean_std(values: list[float]) -> tuple[float, float]:
    """The mean and the population standard deviation ``√(Σ(x − mean)² / n)`` (two passes,
    ``math.fsum``: no cancellation from ``E[x²] − E[x]²``)."""
    mean = math.fsum(values) / len(values)
    return mean, math.sqrt(math.fsum((v - mean) ** 2 for v in values) / len(values))


def _saturated(activation: str, a: float) -> bool:
    if activation == "tanh":
        return abs(a) > SATURATION
    return a < 1.0 - SATURATION or a > SATURATION  # sigmoid


def _update_to_data(layer: Layer, optimizer: Optimizer | None) -> float | None:
    if optimizer is None or optimizer.last_update is None:
        return None
    position = {id(p): i for i, p in enumerate(optimizer.params)}
    weights = [w for n in layer.neurons for w in n.w]
    if any(id(w) not in position for w in weights):
        return None  # the optimizer does not step this layer's weights
    last = optimizer.last_update
    update = [float(last[position[id(w)]]) for w in weights]  # (a list, or a numpy array)
    _, data_std = _mean_std([w.data for w in weights])
    if data_std == 0.0:
        return None  # all weights equal (or one weight): the ratio is undefined
    return _mean_std(update)[1] / data_std


def layer_statistics(model: Module, X: Sequence[Sequence[float]], optimizer: Optimizer | None = None, *,
                     activations: list[list[list[float]]] | None = None) -> list[dict[str, Any]]:
    """One dict per layer of ``model`` (an :class:`~nn.module.MLP`), its statistics over the
    samples ``X`` (a list of feature lists) with the current weights. Layer ``k`` of the
    dicts is ``model.layers[k]``; its ``"layer"`` entry numbers it from 1 (the first hidden
    layer is layer 1, the output layer the last), as ``valuegrad train --diagnose`` does.

    With ``A`` the layer's activations (its outputs after the activation function), one per
    (sample, unit) pair, ``N`` samples and ``U`` units, the entries are:

    - ``layer``: the number from 1; ``activation``: ``"relu"``, ``"tanh"``, ``"sigmoid"`` or
      ``"linear"``.
    - ``dead_fraction``: for a ReLU layer, the share of its ``U`` units whose output is exactly
      0 on every one of the ``N`` samples (a dead ReLU gets no gradient from any of them, so
      it never comes back); ``None`` for the other activations.
    - ``saturated_fraction``: for tanh, the share of the ``N·U`` (sample, unit) pairs with
      ``|a| > 0.99``; for sigmoid, with ``a`` outside ``[0.01, 0.99]`` (see
      :data:`SATURATION`); ``None`` for relu and linear, which do not saturate.
    - ``activation_mean``, ``activation_std``: the mean and the population standard deviation
      (divided by ``N·U``, not ``N·U − 1``) of the ``N·U`` activations.
    - ``grad_norm``: ``√(Σ g²)`` over the gradients ``p.grad`` of all the layer's parameters,
      weights and biases (what ``torch.nn.utils.clip_grad_norm_`` would compute for the
      layer's parameters alone): after training, the last step's gradient. ``None`` when
      every gradient of the whole model is 0.0 (no backward pass yet, or ``zero_grad`` since),
      because then there are no gradients to measure.
    - ``update_to_data``: the lecture's update-to-data ratio for the layer's weight matrix
      (``U × nin`` weights; biases are left out, as the lecture plots only the weight
      matrices, and a bias vector initialised to 0 has no spread to compare with):
      ``std(Δw) / std(w)``, where ``Δw = w_after − w_before`` is the change of each weight in
      the optimizer's last step (:attr:`~nn.optim.Optimizer.last_update`) and ``w`` the
      weights now, after that step, as in the lecture. Both are population standard
      deviations over the same weights; the lecture's ``torch.std`` divides both by ``n − 1``
      instead, which gives the same ratio. For plain SGD ``Δw = −lr·grad``, the lecture's
      update; with momentum or Adam it is the step actually taken. A healthy value is about
      1e-3 (the lecture's ``log10`` ratio ≈ −3). ``None`` without an optimizer, before its
      first step, when the optimizer does not step this layer's weights, or when the weights
      have no spread (all equal, or just one).

    Args:
        model: an MLP. X: samples, each a list of ``nin`` numbers.
        optimizer: the optimizer that trains ``model``, for ``update_to_data``.
        activations: :func:`layer_activations` of ``model`` on ``X``, if already computed.

    Returns:
        A list of dicts of plain floats (or ``None``, as above), one per layer.

    Raises:
        TypeError: ``model`` is not an MLP-like module with ``.layers``.
        ValueError: ``X`` is empty or a sample has the wrong length.

    Reference: A. Karpathy, "Building makemore Part 3: Activations & Gradients, BatchNorm"
    (2022), youtube.com/watch?v=P6sfmUTpUmc and the nn-zero-to-hero notebook
    ``makemore_part3_bn.ipynb``: ``ud = log10((lr·p.grad).std() / p.data.std())`` after the
    update, per parameter tensor, against a guide line at −3.
    """
    layers = _layers(model)
    if activations is None:
        activations = layer_activations(model, X)
    has_grads = any(_grad(p) != 0.0 for p in model.parameters())
    stats: list[dict[str, Any]] = []
    for k, (layer, outputs) in enumerate(zip(layers, activations)):
        flat = [a for out in outputs for a in out]
        mean, std = _mean_std(flat)
        dead = saturated = None
        if layer.activation == "relu":
            dead = sum(all(out[j] == 0.0 for out in outputs) for j in range(layer.nout)) / layer.nout
        elif layer.activation in ("tanh", "sigmoid"):
            saturated = sum(_saturated(layer.activation, a) for a in flat) / len(flat)
        grad_norm = math.sqrt(math.fsum(_grad(p) ** 2 for p in layer.parameters())) if has_grads else None
        stats.append({"layer": k + 1, "activation": layer.activation, "dead_fraction": dead,
                      "saturated_fraction": saturated, "activation_mean": mean, "activation_std": std,
                      "grad_norm": grad_norm, "update_to_data": _update_to_data(layer, optimizer)})
    return stats


def _grad(p: Value) -> float:
    return float(p.grad.data if isinstance(p.grad, Value) else p.grad)  # (a create_graph gradient)
