"""The op table's forward functions and helpers, on numpy arrays, under the names code calls.

Batched replay (:meth:`engine.program.Program.batch`) runs its code with these, one array
operation per instruction, so each must give what its float counterpart gives
(IEEE-754 results, PyTorch's conventions at kinks and for ``nan``) element by element.
Call them inside ``numpy.errstate(all="ignore")``: overflow and ``0/0`` are results here, not
warnings. numpy is optional; this module is imported only by batched replay.

Reference: numpy documentation (ufuncs, ``numpy.where``); the float versions' docstrings.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np


def _sigmoid(x: Any) -> Any:
    # As engine.operators.sigmoid: 1 / (1 + e**-x) for x >= 0, e**x / (1 + e**x) otherwise,
    # so exp never overflows.
    e = np.exp(-np.abs(x))
    return np.where(x >= 0.0, 1.0 / (1.0 + e), e / (1.0 + e))


def _sum(*xs: Any) -> Any:
    total: Any = 0.0
    for x in xs:
        total = total + x
    return total


FUNCTIONS: dict[str, Any] = {
    "div": np.divide, "pow": np.power, "exp": np.exp, "log": np.log, "log1p": np.log1p,
    "sqrt": np.sqrt, "tanh": np.tanh, "sigmoid": _sigmoid,
    "relu": lambda a: np.where(a <= 0.0, 0.0, a),  # relu(nan) is nan, as PyTorch
    "abs": np.abs, "sin": np.sin, "cos": np.cos, "maximum": np.maximum, "minimum": np.minimum,
    "sum": _sum,
    "step": lambda a: np.where(a <= 0.0, 0.0, 1.0),  # step(nan) is 1, as the float version
    "sign": lambda a: np.where(a > 0.0, 1.0, np.where(a < 0.0, -1.0, 0.0)),  # sign(nan) is 0
    "where": np.where, "eq": np.equal, "lt": np.less, "ge": np.greater_equal, "isnan": np.isnan,
}
"""Every built-in op that code calls by name (:data:`engine.ops.OPS`, all but the four written
as Python's operators) and every helper (:data:`engine.ops.HELPERS`), each on numpy arrays."""


def elementwise(derivative: Callable[..., Any]) -> Callable[..., tuple[Any, ...]]:
    """``derivative`` (operands and out, floats, to a tuple) applied element by element to
    arrays (or numbers), giving a tuple of arrays: for an op of yours (:mod:`engine.define`),
    whose functions generated code calls as they are."""

    def on_arrays(*arrays: Any) -> tuple[Any, ...]:
        broadcast = np.broadcast_arrays(*[np.asarray(a, dtype=float) for a in arrays])
        rows = zip(*[a.ravel().tolist() for a in broadcast])
        columns = zip(*[derivative(*row) for row in rows])
        return tuple(np.array(c, dtype=float).reshape(broadcast[0].shape) for c in columns)

    return on_arrays
