"""Plain float math with IEEE-754 results and no Python exceptions.

Python's own float arithmetic raises where IEEE-754 (and so PyTorch) returns a value:
``1.0 / 0.0`` raises ``ZeroDivisionError``, ``math.exp(1000)`` raises ``OverflowError``,
``math.log(0)`` raises ``ValueError`` and ``(-8.0) ** 0.5`` returns a complex number.
The functions here return what IEEE-754 says instead (``inf``, ``-inf`` or ``nan``), so no
arithmetic exception ever escapes an op of the engine. Nothing here knows about autograd:
the op table in :mod:`engine.ops` uses these as the forward functions of its ops.

Reference: IEEE Std 754-2019 and the C99 standard, Annex F (``pow``, ``log``, ``sqrt``),
which PyTorch's CPU kernels follow.
"""

from __future__ import annotations

import math
import numbers
import operator
from typing import Any

inf = math.inf
nan = math.nan


def to_float(x: Any) -> float:
    """``x`` as a Python float: ``int``, ``float`` and numpy scalars (anything ``numbers.Real``)
    are accepted; an ``int`` too large for a float is ``±inf``, as everywhere else here.

    Raises:
        TypeError: ``x`` is not a real number (``bool``, ``str``, ``None``, complex and
            sequences are refused).
    """
    if type(x) is float:
        return x
    if isinstance(x, bool) or not isinstance(x, numbers.Real):
        raise TypeError(
            f"a Value holds a real number (int, float or a numpy scalar), "
            f"got {type(x).__name__}: {x!r}"[:200])
    try:
        return float(x)
    except OverflowError:
        return inf if operator.gt(x, 0) else -inf


def div(a: float, b: float) -> float:
    """``a / b``; ``x / 0`` is ``±inf`` (sign of ``x`` times sign of the zero), ``0 / 0`` is ``nan``."""
    try:
        return a / b
    except ZeroDivisionError:
        if a == 0.0 or a != a:
            return nan
        return math.copysign(inf, a) * math.copysign(1.0, b)


def _is_odd_integer(y: float) -> bool:
    return math.isfinite(y) and y == math.floor(y) and math.fmod(y, 2.0) != 0.0


def power(a: float, b: float) -> float:
    """``a ** b`` as C99 ``pow``: overflow is ``±inf``, ``0 ** -1`` is ``inf``, and a negative
    base with a non-integer exponent is ``nan`` (never a complex number)."""
    try:
        return math.pow(a, b)
    except OverflowError:
        # The magnitude is too large; the sign is negative only for an odd integer power.
        return -inf if a < 0 and _is_odd_integer(b) else inf
    except ValueError:
        if a == 0.0:  # zero to a negative power: a pole, signed like the zero for odd powers
            return math.copysign(inf, a) if _is_odd_integer(b) else inf
        return nan  # a negative base with a non-integer exponent


def exp(x: float) -> float:
    """``e ** x``; ``inf`` on overflow."""
    try:
        return math.exp(x)
    except OverflowError:
        return inf


def log(x: float) -> float:
    """Natural logarithm; ``log(0)`` is ``-inf`` and the log of a negative number is ``nan``."""
    if x > 0.0:
        return math.log(x)
    if x == 0.0:
        return -inf
    return nan  # negative or nan


def log1p(x: float) -> float:
    """``log(1 + x)``, accurate for small ``x`` (where ``1 + x`` would round away the digits of
    ``x``); ``-inf`` at ``-1`` and ``nan`` below."""
    if x > -1.0:
        return math.log1p(x)  # log1p(inf) is inf
    if x == -1.0:
        return -inf
    return nan  # below -1, or nan


def sqrt(x: float) -> float:
    """Square root; the square root of a negative number is ``nan``."""
    if x < 0.0:
        return nan
    return math.sqrt(x)  # sqrt(-0.0) is -0.0 and sqrt(nan) is nan, as IEEE-754 says


def sin(x: float) -> float:
    """Sine of ``x`` (radians); ``sin(±inf)`` is ``nan``."""
    try:
        return math.sin(x)
    except ValueError:
        return nan


def cos(x: float) -> float:
    """Cosine of ``x`` (radians); ``cos(±inf)`` is ``nan``."""
    try:
        return math.cos(x)
    except ValueError:
        return nan


def sigmoid(x: float) -> float:
    """Logistic function ``1 / (1 + e**-x)``, evaluated so that ``exp`` never overflows:
    for ``x < 0`` it uses the equal form ``e**x / (1 + e**x)``. Exact at the extremes:
    ``sigmoid(1000) == 1.0`` and ``sigmoid(-1000) == 0.0``."""
    if x >= 0.0:
        return 1.0 / (1.0 + math.exp(-x))
    e = exp(x)  # x < 0 or nan
    return e / (1.0 + e)


def sum_of(*xs: float) -> float:
    """``0.0 + x₁ + … + xₙ``, added left to right (Python's ``sum`` of floats)."""
    return sum(xs, 0.0)


def relu(x: float) -> float:
    """``max(x, 0)``; ``relu(nan)`` is ``nan`` as in PyTorch."""
    return 0.0 if x <= 0.0 else x


def step(x: float) -> float:
    """Heaviside step with ``step(0) = 0``: the derivative of :func:`relu` as PyTorch defines
    it (``0`` where ``x <= 0``, else ``1``, so ``step(nan) = 1``)."""
    return 0.0 if x <= 0.0 else 1.0


def sign(x: float) -> float:
    """``-1``, ``0`` or ``1``; ``sign(0) = 0``: the derivative of ``abs`` as PyTorch defines it."""
    return 1.0 if x > 0.0 else -1.0 if x < 0.0 else 0.0


def maximum(a: float, b: float) -> float:
    """The larger of ``a`` and ``b``; ``nan`` if either is ``nan`` (as ``torch.maximum``)."""
    if a != a or b != b:
        return nan
    return a if a >= b else b


def minimum(a: float, b: float) -> float:
    """The smaller of ``a`` and ``b``; ``nan`` if either is ``nan`` (as ``torch.minimum``)."""
    if a != a or b != b:
        return nan
    return a if a <= b else b


def where(condition: bool, if_true: float, if_false: float) -> float:
    """``if_true`` where ``condition`` holds, else ``if_false`` (both already evaluated, as
    ``numpy.where``): the float side of :func:`engine.ops.where`."""
    return if_true if condition else if_false
