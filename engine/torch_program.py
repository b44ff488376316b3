"""A traced program as a ``torch.nn.Module``: batched replay on tensors, gradients by torch's autograd.

:meth:`engine.program.Program.to_torch` lands here. The module's forward is batched replay's
forward (:mod:`engine.batch`): each recognised layer one matrix product ``X Wᵀ + b`` with its
activation applied at once, every other instruction one tensor operation. It runs on any device
and dtype torch has. The program's parameters are the module's ``torch.nn.Parameter`` s, one per
parameter, named after it (``layers.0.neurons.1.w.3`` becomes ``layers_0_neurons_1_w_3``:
torch's names cannot hold dots); ``loss.backward()`` then gives their gradients, equal to
batched replay's (summed over the batch) to rounding.

torch is optional (``pip install 'valuegrad[torch]'``); this module imports it only when called.

Reference: PyTorch documentation, ``torch.nn.Module``, ``register_parameter`` and autograd.
"""

from __future__ import annotations

import re
from typing import Any

from engine.batch import Lowering
from engine.codegen import RELATIONS

# The op table's forward functions as torch calls, by the names generated code uses (add, sub,
# mul and neg are Python's operators, which work on tensors as they are).
_TORCH_OPS = ("div", "pow", "exp", "log", "log1p", "sqrt", "tanh", "sigmoid", "relu", "abs", "sin", "cos",
              "maximum", "minimum")


def parameter_name(name: str, taken: Any = ()) -> str:
    """A program parameter's name as a torch parameter's: each character that is not a letter,
    digit or ``_`` becomes ``_`` (``layers.0.w.3`` is ``layers_0_w_3``); ``p`` goes before a
    name that starts with ``_`` and ``_p`` after one a ``torch.nn.Module`` already uses
    (``training``, ``forward``, ...: ``taken``)."""
    name = re.sub(r"\W", "_", name) or "p"
    return f"p{name}" if name.startswith("_") else f"{name}_p" if name in taken else name


def to_torch(program: Any, device: Any = None, dtype: Any = None) -> Any:
    """``program`` as a ``torch.nn.Module`` (see the module docstring): called on an ``(N,
    inputs)`` tensor, it returns the ``(N, outputs)`` tensor of outputs.

    Args:
        program: an :class:`engine.program.Program`.
        device: where the parameters live (default: the CPU).
        dtype: their type (default ``torch.float64``, as valuegrad computes).

    Raises:
        ImportError: torch is not installed.
        ValueError: the program uses an op of your own (:func:`engine.define_op`), which has no
            torch version, or two parameters whose names become the same.
    """
    try:
        import torch
    except ImportError:
        raise ImportError("Program.to_torch needs torch: pip install 'valuegrad[torch]'") from None
    mine = [op.name for op in program.ops() if not op.builtin]
    if mine:
        raise ValueError(f"Program.to_torch: the program uses op(s) of your own ({', '.join(mine)}), which "
                         f"have no torch version; trace it with the engine's ops")
    taken = set(dir(torch.nn.Module())) | {"program"}
    names = [parameter_name(n, taken) for n in program.params]
    if len(set(names)) != len(names):
        raise ValueError("Program.to_torch: two parameters' names become the same torch name")
    lowering = Lowering(program, False, (True,) * len(program.outputs))
    outputs = ", ".join(lowering.name(s) for s in program.outputs)
    source = "\n".join(["def forward(X, theta, N):", *lowering.forward_lines(tensors=True),
                        f"    return [{outputs}]"]) + "\n"
    dtype = torch.float64 if dtype is None else dtype
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point or dtype.is_complex:
        raise ValueError(f"dtype must be a real floating-point torch dtype, got {dtype!r}")

    class ProgramModule(torch.nn.Module):
        """The traced program ``{name}`` on tensors (see :mod:`engine.torch_program`)."""

        def __init__(self) -> None:
            super().__init__()
            for name, value in zip(names, program.param_values()):
                value = torch.tensor(value, dtype=dtype, device=device)
                self.register_parameter(name, torch.nn.Parameter(value))
            namespace = _namespace(torch, lowering, program, dtype, device)
            exec(compile(source, f"<program {program.name}: torch>", "exec"), namespace)
            self._run = namespace["forward"]
            self.program = program

        def forward(self, X: Any) -> Any:
            theta = torch.stack([getattr(self, n) for n in names]) if names else \
                torch.zeros(0, dtype=dtype, device=device)
            if X.dim() != 2 or X.shape[1] != len(program.inputs):
                raise ValueError(f"program {program.name!r} takes {len(program.inputs)} inputs per sample: "
                                 f"X must have shape (N, {len(program.inputs)}), got {tuple(X.shape)}")
            N = X.shape[0]
            values = self._run(X.to(dtype=theta.dtype, device=theta.device), theta, N)
            return torch.stack([torch.as_tensor(v, dtype=theta.dtype, device=theta.device).expand(N)
                                for v in values], dim=1)

    return ProgramModule()


def _namespace(torch: Any, lowering: Lowering, program: Any, dtype: Any, device: Any) -> dict[str, Any]:
    """The names the forward calls, on tensors of ``dtype`` on ``device``."""

    def tensor(x: Any) -> Any:
        return x if isinstance(x, torch.Tensor) else torch.tensor(float(x), dtype=dtype, device=device)

    def call(fn: Any) -> Any:
        return lambda *args: fn(*[tensor(a) for a in args])

    def fail(index: int, lhs: Any, rhs: Any, N: int) -> None:
        guard = program.guards[index]
        held = RELATIONS[guard.relation](tensor(lhs), tensor(rhs)).expand(N)
        sample = int(torch.nonzero(held != guard.outcome)[0][0])
        lhs, rhs = (float(tensor(v).expand(N)[sample]) for v in (lhs, rhs))
        program._fail(index, lhs, rhs, sample)

    names: dict[str, Any] = {name: call(getattr(torch, name)) for name in _TORCH_OPS}
    names.update({"sum": lambda *xs: sum(xs[1:], xs[0]), "inf": float("inf"), "nan": float("nan"),
                  "stack": lambda xs, axis: torch.stack([tensor(x) for x in xs], dim=axis),
                  "all_equal": lambda values, outcome: bool(torch.all(tensor(values) == outcome)),
                  "fail": fail})
    for layer in lowering.layers:
        names[f"WI{layer.number}"] = torch.tensor(layer.weights, dtype=torch.long, device=device)
        if layer.biases is not None:
            names[f"BI{layer.number}"] = torch.tensor(layer.biases, dtype=torch.long, device=device)
    return names
