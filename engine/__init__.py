"""valuegrad's autograd engine: scalar ``Value`` nodes, their ops, and the backward pass.

    >>> from engine import Value
    >>> w, x, b = Value(-3.0, "w"), Value(2.0, "x"), Value(6.88, "b")
    >>> y = (w * x + b).tanh()
    >>> y.backward()
    >>> round(w.grad, 4)   # x·(1 − y²) = 2 · (1 − 0.70642²)
    1.0019

Every op is a function of ``engine``, as ``torch.exp`` is of ``torch``: ``engine.exp(2.0)`` is a
float, ``engine.exp(Value(2.0))`` a Value. The op table (``engine.OPS``, in :mod:`engine.ops`)
defines each op once, forward and local derivatives side by side; :func:`define_op` adds your
own. The ``Value`` node and the backward pass are in :mod:`engine.value`.
"""

from engine import pickling  # noqa: F401  (registers how Values pickle and copy)
from engine.anomaly import AnomalyError, GraphChangedError, detect_anomaly
from engine.define import OpError, define_op
from engine.grad_mode import TracingError, is_grad_enabled, no_grad
from engine.gradcheck import GradcheckReport, gradcheck
from engine.ops import (  # noqa: F401  (abs, pow, sum: engine.abs, like torch.abs; not in __all__, so "import *" keeps the builtins)
    OPS,
    Op,
    abs,
    add,
    cos,
    div,
    exp,
    log,
    log1p,
    maximum,
    minimum,
    mul,
    neg,
    op_by_name,
    pow,
    relu,
    sigmoid,
    sin,
    sqrt,
    sub,
    tanh,
)
from engine.ops import sum_values as sum  # noqa: F401  (engine.sum(values) or engine.sum(a, b, ...))
from engine.program import GuardFailed, Program
from engine.tracing import trace, traced
from engine.value import Value, hessian_of, topological_order

__all__ = [
    "AnomalyError",
    "GradcheckReport",
    "GraphChangedError",
    "GuardFailed",
    "OPS",
    "Op",
    "OpError",
    "Program",
    "TracingError",
    "Value",
    "add",
    "cos",
    "define_op",
    "detect_anomaly",
    "div",
    "exp",
    "gradcheck",
    "hessian_of",
    "is_grad_enabled",
    "log",
    "log1p",
    "maximum",
    "minimum",
    "mul",
    "neg",
    "no_grad",
    "op_by_name",
    "relu",
    "sigmoid",
    "sin",
    "sqrt",
    "sub",
    "tanh",
    "topological_order",
    "trace",
    "traced",
]
