"""Graduating to PyTorch, and back: an ``nn.MLP`` as a ``torch.nn.Sequential``, and back again.

    >>> import nn                                                       # doctest: +SKIP
    >>> model = nn.MLP(4, [16, 3], rng=0)                               # doctest: +SKIP
    >>> seq = nn.to_torch(model)        # Linear(4, 16), ReLU(), Linear(16, 3), float64
    >>> back = nn.from_torch(seq)       # an nn.MLP with the same numbers, to draw and step

:func:`to_torch` copies each layer's weights into a ``torch.nn.Linear`` (a neuron's weights are
a row of ``weight``, its bias an entry of ``bias``) and follows it with the layer's activation
module; the ``state_dict`` has PyTorch's own names (``0.weight``, ``0.bias``, ``2.weight``...).
The outputs and parameter gradients equal valuegrad's to rounding (a matrix product adds in
another order than a neuron's ``sum``). :func:`from_torch` reads a ``Sequential`` of ``Linear``,
``ReLU``, ``Tanh``, ``Sigmoid`` and ``Identity`` back into an ``nn.MLP``; a round trip keeps
every number, so it gives the same outputs bit for bit.

torch is an optional extra (``pip install 'valuegrad[torch]'``); nothing else needs it.

Reference: PyTorch documentation, ``torch.nn.Linear`` (``y = x Wᵀ + b``), ``torch.nn.Sequential``
and ``Module.state_dict``.
"""

from __future__ import annotations

from typing import Any

from nn.module import MLP, Layer
from nn.optim import Adam

_ACTIVATION_MODULES = {"relu": "ReLU", "tanh": "Tanh", "sigmoid": "Sigmoid"}


def _torch() -> Any:
    try:
        import torch
    except ImportError:
        raise ImportError("the PyTorch bridge needs torch: pip install 'valuegrad[torch]'") from None
    return torch


def to_torch(model: MLP, dtype: Any = None, device: Any = None) -> Any:
    """``model`` as a ``torch.nn.Sequential``: per layer a ``Linear(nin, nout)`` holding its
    weights and biases, then its activation (``ReLU``, ``Tanh``, ``Sigmoid``; none for linear).

    Args:
        model: an :class:`nn.MLP`.
        dtype: the tensors' type (default ``torch.float64``, as valuegrad computes).
        device: where the tensors live (default the CPU).

    Returns:
        A ``torch.nn.Sequential`` whose ``state_dict`` keys are ``"<k>.weight"``, ``"<k>.bias"``.

    Raises:
        TypeError: ``model`` is not an ``nn.MLP``. ImportError: torch is not installed.
    """
    torch = _torch()
    if not isinstance(model, MLP):
        raise TypeError(f"to_torch takes an nn.MLP, got {type(model).__name__}")
    dtype = torch.float64 if dtype is None else dtype
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point or dtype.is_complex:
        raise ValueError(f"dtype must be a real floating-point torch dtype (torch.float64, torch.float32), "
                         f"got {dtype!r}")
    modules = []
    for layer in model.layers:
        linear = torch.nn.Linear(layer.nin, layer.nout, dtype=dtype, device=device)
        with torch.no_grad():
            linear.weight.copy_(torch.tensor([[w.data for w in n.w] for n in layer.neurons], dtype=dtype))
            linear.bias.copy_(torch.tensor([n.b.data for n in layer.neurons], dtype=dtype))
        modules.append(linear)
        if layer.activation != "linear":
            modules.append(getattr(torch.nn, _ACTIVATION_MODULES[layer.activation])())
    return torch.nn.Sequential(*modules)


def from_torch(module: Any) -> MLP:
    """A ``torch.nn.Sequential`` of ``Linear`` layers, each followed by at most one of ``ReLU``,
    ``Tanh``, ``Sigmoid`` or ``Identity``, as an :class:`nn.MLP` with the same numbers (its
    weights and biases as Python floats). The hidden layers share one activation, as an
    ``nn.MLP``'s do. What an ``nn.MLP`` has no place for is not kept: a ``Linear`` without
    bias gets biases 0 (trainable here), ``requires_grad=False`` is not carried over, and
    :func:`to_torch` numbers the modules afresh (``0``, ``2``, ...; no ``Identity``).

    Raises:
        ValueError: a module it cannot express (``Conv1d``, ``Dropout``, two activations in a
            row, an activation before the first ``Linear``, no ``Linear``, a subclass of a
            supported module, a ``Linear`` used twice, forward hooks, hidden layers with
            different activations), named in the message with what is supported.
            ImportError: torch is not installed.
    """
    torch = _torch()
    supported = "Linear, ReLU, Tanh, Sigmoid and Identity, in a Sequential"
    if not isinstance(module, torch.nn.Sequential):
        raise ValueError(f"from_torch takes a torch.nn.Sequential of {supported}; got "
                         f"{type(module).__name__}")
    names = {v: k for k, v in _ACTIVATION_MODULES.items()}
    layers: list[tuple[Any, str]] = []
    if module._forward_hooks or module._forward_pre_hooks:
        raise ValueError("the Sequential has forward hooks, which an nn.MLP cannot run; remove them first")
    for position, child in enumerate(module):
        kind = type(child).__name__
        if child._forward_hooks or child._forward_pre_hooks:
            raise ValueError(f"module {position} of the Sequential ({kind}) has forward hooks, which an "
                             f"nn.MLP cannot run; remove them first")
        if type(child) is torch.nn.Linear:  # exactly: a subclass may compute something else
            if any(child is earlier for earlier, _ in layers):
                raise ValueError(f"module {position} of the Sequential is a Linear used twice (tied "
                                 f"weights), which an nn.MLP cannot express")
            layers.append((child, "linear"))
        elif type(child) is torch.nn.Identity:
            continue
        elif kind in names and type(child) is getattr(torch.nn, kind) and layers \
                and layers[-1][1] == "linear":
            layers[-1] = (layers[-1][0], names[kind])
        else:
            where = "after another activation" if kind in names and layers else \
                "before any Linear" if kind in names else "which from_torch cannot express"
            raise ValueError(f"module {position} of the Sequential is {kind}, {where}; from_torch "
                             f"reads {supported}, each Linear followed by at most one activation")
    if not layers:
        raise ValueError(f"the Sequential has no Linear layer; from_torch reads {supported}")
    for (a, _), (b, _) in zip(layers, layers[1:]):
        if a.out_features != b.in_features:
            raise ValueError(f"Linear layers do not chain: {a.out_features} outputs feed {b.in_features} "
                             f"inputs")
    hidden = {activation for _, activation in layers[:-1]}
    if len(hidden) > 1:
        raise ValueError(f"the hidden layers have different activations ({', '.join(sorted(hidden))}); an "
                         f"nn.MLP has one activation for its hidden layers and one for its output layer")
    model = MLP(layers[0][0].in_features, [linear.out_features for linear, _ in layers],
                activation=hidden.pop() if hidden else "relu", output_activation=layers[-1][1], rng=0)
    for layer, (linear, activation) in zip(model.layers, layers):
        _set_layer(layer, linear, activation)
    return model


def _set_layer(layer: Layer, linear: Any, activation: str) -> None:
    weight = linear.weight.detach().double().cpu().tolist()
    bias = linear.bias.detach().double().cpu().tolist() if linear.bias is not None else [0.0] * layer.nout
    layer.activation = activation
    for neuron, row, b in zip(layer.neurons, weight, bias):
        neuron.activation = activation
        for w, value in zip(neuron.w, row):
            w.data = float(value)
        neuron.b.data = float(b)


def adam_to_torch(optimizer: Adam, model: MLP, module: Any) -> Any:
    """``optimizer``'s state as a ``torch.optim.Adam`` over ``module`` (made by
    :func:`to_torch` from ``model``): the same learning rate, betas, eps and weight decay, its
    step count, and each parameter's moments ``m`` and ``v`` in the shape of the ``Linear``
    weight or bias it belongs to. Training goes on from there with the same steps (to
    rounding: torch computes ``√v̂`` as ``√v / √(1 − β₂ᵗ)``).

    Raises:
        TypeError: not an ``nn.Adam``, an ``nn.MLP`` and a ``Sequential``.
        ValueError: ``optimizer`` does not step exactly ``model.parameters()``, in order, or
            ``module`` does not hold ``model``'s weights. ImportError: torch is not installed.
    """
    torch = _torch()
    sequential = isinstance(module, torch.nn.Sequential)
    if not (isinstance(optimizer, Adam) and isinstance(model, MLP) and sequential):
        raise TypeError(f"adam_to_torch takes an nn.Adam, the nn.MLP it steps and nn.to_torch(model); got "
                        f"{type(optimizer).__name__}, {type(model).__name__}, {type(module).__name__}")
    if [id(p) for p in optimizer.params] != [id(p) for p in model.parameters()]:
        raise ValueError("adam_to_torch: the optimizer must step model.parameters(), in that order")
    linears = [m for m in module if isinstance(m, torch.nn.Linear)]
    if [(m.in_features, m.out_features) for m in linears] != [(la.nin, la.nout) for la in model.layers]:
        raise ValueError("adam_to_torch: the module is not the model's shape (make it with "
                         "nn.to_torch(model))")
    for layer, linear in zip(model.layers, linears):
        weights = torch.tensor([[w.data for w in n.w] for n in layer.neurons], dtype=linear.weight.dtype)
        if not torch.equal(linear.weight.detach().cpu(), weights):
            raise ValueError("adam_to_torch: the module's weights are not the model's (make it with "
                             "nn.to_torch(model), before any step)")
    result = torch.optim.Adam(module.parameters(), lr=optimizer.lr, betas=optimizer.betas,
                              eps=optimizer.eps, weight_decay=optimizer.weight_decay)
    if optimizer.steps == 0:
        return result
    state = optimizer.state_dict()  # the moments as lists (compiled training leaves numpy arrays)
    offset = 0
    for layer, linear in zip(model.layers, linears):
        width = layer.nin + 1  # each neuron's weights, then its bias, in model.parameters()
        starts = [offset + j * width for j in range(layer.nout)]
        columns: list[tuple[Any, Any]] = [(linear.weight, slice(0, layer.nin)), (linear.bias, layer.nin)]
        for param, column in columns:
            exp_avg, exp_avg_sq = (
                torch.tensor([buffer[start:start + width][column] for start in starts], dtype=param.dtype,
                             device=param.device)
                for buffer in (state["m"], state["v"]))
            result.state[param] = {"step": torch.tensor(float(optimizer.steps)), "exp_avg": exp_avg,
                                   "exp_avg_sq": exp_avg_sq}
        offset += layer.nout * width
    return result
