"""valuegrad's autograd engine: scalar ``Value`` nodes, their ops, and the backward pass.

    >>> from engine import Value
    >>> w, x, b = Value(-3.0, "w"), Value(2.0, "x"), Value(6.88, "b")
    >>> y = (w * x + b).tanh()
    >>> y.backward()
    >>> round(w.grad, 4)   # x·(1 − y²) = 2 · (1 − 0.70642²)
    1.0019

The op table (``engine.OPS``) defines every op once, forward and local derivative side by
side; see :mod:`engine.value`.
"""

from engine.gradcheck import GradcheckReport, gradcheck, hessian_of
from engine.trace import GuardFailed, Program, TracingError, trace, traced
from engine.value import (
    OPS,
    Op,
    Value,
    is_grad_enabled,
    maximum,
    minimum,
    no_grad,
    op_by_name,
    topological_order,
)
from engine.value import sum_values as sum  # noqa: F401  (engine.sum, like torch.sum; not in __all__ so "import *" keeps the builtin)

__all__ = [
    "GradcheckReport",
    "GuardFailed",
    "OPS",
    "Op",
    "Program",
    "TracingError",
    "Value",
    "gradcheck",
    "hessian_of",
    "is_grad_enabled",
    "maximum",
    "minimum",
    "no_grad",
    "op_by_name",
    "topological_order",
    "trace",
    "traced",
]
