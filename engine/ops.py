"""The op table: every primitive of the engine, its forward and its local derivatives side by side.

Each row is one op, written in Python::

    mul = Op("mul", "×", 2, operator.mul, lambda a, b, out: (b, a))

- the **forward** function, on plain floats (here Python's ``*``);
- the **local derivatives** ``(∂out/∂a, ∂out/∂b)``, a function of the operands and of the op's
  own result ``out``. The chain rule (:mod:`engine.value`) multiplies each by the upstream
  gradient and adds it into that operand's ``.grad``.

One derivative function serves three callers, because it is written with the engine's own
functions rather than with ``math``:

- called on floats, it is an ordinary backward pass;
- called on Values, it records the gradient computation (``backward(create_graph=True)``),
  so that it can be differentiated again;
- called on the tracer's code operands (:mod:`engine.codegen`), it writes itself as code.

The rules that make that work, followed by every row below:

- ``+``, ``-``, ``*`` and unary ``-`` are used directly: they never raise on floats.
- Whatever can raise on a float (``/``, ``**``, ``log``, ...) calls the op itself:
  ``div(1.0, b)``, not ``1.0 / b``. An op called on floats returns a float (IEEE-754: ``inf``
  or ``nan`` where Python would raise), on a Value it records a node.
- A kink or a mask is a :func:`where` of comparisons (:func:`eq`, :func:`lt`, :func:`ge`,
  :func:`isnan`, :func:`step`, :func:`sign`), never an ``if``: an ``if`` would pick one branch
  when code is written, and the code must pick per number (per sample, on arrays).

Your own op: :func:`engine.define.define_op`.

References: the table follows HIPS autograd's ``defvjp`` and micrograd's ``engine.py`` (each op's
forward next to its derivative); the conventions at kinks and for ``inf``/``nan`` are
PyTorch's (``derivatives.yaml``, ``pow_backward``), with IEEE Std 754-2019 for the floats.
"""

from __future__ import annotations

import builtins
import math
import numbers
import operator
from collections.abc import Callable
from typing import Any

from engine import operators

# --------------------------------------------------------------------------------------------
# Op and Helper: what a row is, and the functions the derivatives use besides the ops
# --------------------------------------------------------------------------------------------


class Op:
    """One primitive operation: its forward function and its local derivatives.

    Attributes:
        name (str): the table key (``"mul"``); the name code calls the op by.
        symbol (str): a short symbol (``"×"``) for printing and drawing graphs.
        arity (int): the number of operands, or ``0`` for any number (``sum``).
        forward: ``forward(*operands) -> float`` on plain floats; IEEE-754 results, never
            raises (for the built-in ops).
        derivative: ``derivative(*operands, out) -> tuple``: ``∂out/∂operand_i`` for each
            operand, on floats, on Values or on code (see the module docstring).
        formula, derivative_formula (str): the forward and the derivatives as text for people.
        reference: ``reference(mp, *operands)``, the forward written with the ``mpmath``
            module ``mp`` (passed in: the engine does not import mpmath), for high-precision
            checks that use no derivative rule of the engine; ``None`` if there is none.
        builtin (bool): one of the engine's own ops (``False`` for :func:`define_op`'s).

    Calling an op applies it (``mul(a, 2)`` is ``a * 2``): on plain numbers it returns a float;
    when an operand is anything else that defines ``_apply_op`` (a Value, a code operand), that
    operand's type applies it: a Value records a node.

    Raises (on call):
        TypeError: the wrong number of operands, or an operand that is not a real number.
    """

    __slots__ = ("name", "symbol", "arity", "forward", "derivative", "formula", "derivative_formula",
                 "reference", "builtin")

    def __init__(self, name: str, symbol: str, arity: int, forward: Callable[..., float],
                 derivative: Callable[..., tuple[Any, ...]], *, formula: str = "",
                 derivative_formula: str = "", reference: Callable[..., Any] | None = None,
                 builtin: bool = True) -> None:
        self.name = name
        self.symbol = symbol
        self.arity = arity
        self.forward = forward
        self.derivative = derivative
        self.formula = formula
        self.derivative_formula = derivative_formula
        self.reference = reference
        self.builtin = builtin

    def __call__(self, *operands: Any) -> Any:
        for x in operands:
            if type(x) is not float:
                break
        else:  # (speed: all plain floats, as inside a backward pass) just the forward function
            if operands and (len(operands) == self.arity or not self.arity):
                return self.forward(*operands)
        if self.arity and len(operands) != self.arity:
            raise TypeError(f"{self.name} takes {self.arity} operand(s), got {len(operands)}")
        if not operands:
            raise TypeError(f"{self.name} needs at least one operand")
        for x in operands:
            apply = getattr(type(x), "_apply_op", None)
            if apply is not None:
                return apply(self, operands)
        return self.forward(*[operators.to_float(x) for x in operands])

    def __reduce__(self) -> tuple[Any, ...]:
        # Pickle and copy an op by name, so that nodes stay picklable and ops stay singletons.
        return (op_by_name, (self.name,))

    def __repr__(self) -> str:
        return f"<op {self.name}: {self.formula or self.name}; d = {self.derivative_formula or '...'}>"


class Helper:
    """A function the local derivatives use that is not an op: a comparison, a mask, a pick.
    No gradient flows through it. On floats it is ``on_floats``; on Values it reads their
    numbers; on code operands it writes a call ``name(...)``.

    Attributes:
        name (str): the name generated code calls it by.
        on_floats: the function on plain floats (and bools).
    """

    __slots__ = ("name", "on_floats")

    def __init__(self, name: str, on_floats: Callable[..., Any]) -> None:
        self.name = name
        self.on_floats = on_floats

    def __call__(self, *args: Any) -> Any:
        for x in args:
            if type(x) is not float:
                break
        else:  # (speed: all plain floats, as inside a backward pass)
            return self.on_floats(*args)
        for x in args:
            apply = getattr(type(x), "_apply_op", None)
            if apply is not None:
                return apply(self, args)
        return self.on_floats(*args)

    def __repr__(self) -> str:
        return f"<helper {self.name}>"


eq = Helper("eq", operator.eq)
lt = Helper("lt", operator.lt)
ge = Helper("ge", operator.ge)
isnan = Helper("isnan", lambda a: a != a)
step = Helper("step", operators.step)  # relu's derivative: 0 where a <= 0, else 1
sign = Helper("sign", operators.sign)  # abs's derivative: -1, 0 or 1
_pick = Helper("where", operators.where)


def where(condition: Any, if_true: Any, if_false: Any) -> Any:
    """``if_true`` where ``condition`` holds, else ``if_false`` (both already computed, as
    ``numpy.where``). A bool picks at once, so a Value branch stays a Value (``create_graph``);
    a condition in code writes ``where(...)`` into the code."""
    if type(condition) is bool:
        return if_true if condition else if_false
    return _pick(condition, if_true, if_false)


HELPERS: dict[str, Helper] = {h.name: h for h in (eq, lt, ge, isnan, step, sign, _pick)}
"""The helpers by the name generated code calls them."""


# --------------------------------------------------------------------------------------------
# The table
# --------------------------------------------------------------------------------------------


def _pow_derivative(a: Any, b: Any, out: Any) -> tuple[Any, Any]:
    # ∂/∂a = b·a**(b−1), but 0 where b == 0 and a is 0 or nan: there b·a**(b−1) is 0·inf = nan,
    # while a**0 is 1 for every a (PyTorch's pow_backward masks the same points).
    # ∂/∂b = a**b·log a = out·log a, but 0 where a == 0 and b >= 0 (log 0 is −inf, 0·−inf nan).
    # Each mask covers only those points, so second derivatives through b stay right.
    da = where(eq(b, 0.0) & (eq(a, 0.0) | isnan(a)), 0.0, b * pow(a, b - 1.0))
    db = where(eq(a, 0.0) & ge(b, 0.0), 0.0, out * log(a))
    return da, db


# max and min (PyTorch's rule): the smaller operand of max (the larger of min) gets 0, a tie
# ½ each, otherwise (also either side of a nan) the whole upstream gradient.
def _maximum_derivative(a: Any, b: Any, out: Any) -> tuple[Any, Any]:
    return (where(eq(a, b), 0.5, where(lt(a, b), 0.0, 1.0)),
            where(eq(a, b), 0.5, where(lt(b, a), 0.0, 1.0)))


def _minimum_derivative(a: Any, b: Any, out: Any) -> tuple[Any, Any]:
    return (where(eq(a, b), 0.5, where(lt(b, a), 0.0, 1.0)),
            where(eq(a, b), 0.5, where(lt(a, b), 0.0, 1.0)))


def _sum_derivative(*operands_and_out: Any) -> tuple[float, ...]:
    return (1.0,) * (len(operands_and_out) - 1)  # 1 for each operand


div: Op  # (declared for type checkers: rows call ops defined in later rows)
sigmoid: Op
cos: Op

# fmt: off
# name                 symbol  arity forward            local derivatives (∂out/∂a, ∂out/∂b)
add     = Op("add",     "+",     2, operator.add,       lambda a, b, out: (1.0, 1.0))
sub     = Op("sub",     "−",     2, operator.sub,       lambda a, b, out: (1.0, -1.0))
mul     = Op("mul",     "×",     2, operator.mul,       lambda a, b, out: (b, a))
# −a/b² written as −out/b: one division, and finite wherever out is
div     = Op("div",     "÷",     2, operators.div,      lambda a, b, out: (div(1.0, b), -div(out, b)))
neg     = Op("neg",     "−",     1, operator.neg,       lambda a, out: (-1.0,))
pow     = Op("pow",     "**",    2, operators.power,    _pow_derivative)
exp     = Op("exp",     "exp",   1, operators.exp,      lambda a, out: (out,))
log     = Op("log",     "log",   1, operators.log,      lambda a, out: (div(1.0, a),))
log1p   = Op("log1p",   "log1p", 1, operators.log1p,    lambda a, out: (div(1.0, 1.0 + a),))
# 1/(2√a) written as 0.5/out: √a is already computed
sqrt    = Op("sqrt",    "√",     1, operators.sqrt,     lambda a, out: (div(0.5, out),))
# 1 − tanh² a written as 4σ(2a)σ(−2a): equal, and keeps its relative accuracy where tanh ≈ ±1
tanh    = Op("tanh",    "tanh",  1, math.tanh,          lambda a, out: (4.0 * sigmoid(2.0 * a) * sigmoid(-2.0 * a),))
# σ(a)·(1 − σ(a)) written as σ(a)·σ(−a): 1 − σ(a) would round to 0 for large a
sigmoid = Op("sigmoid", "σ",     1, operators.sigmoid,  lambda a, out: (out * sigmoid(-a),))
relu    = Op("relu",    "ReLU",  1, operators.relu,     lambda a, out: (step(a),))   # 0 at a = 0, as PyTorch
abs     = Op("abs",     "abs",   1, builtins.abs,       lambda a, out: (sign(a),))   # 0 at a = 0, as PyTorch
sin     = Op("sin",     "sin",   1, operators.sin,      lambda a, out: (cos(a),))
cos     = Op("cos",     "cos",   1, operators.cos,      lambda a, out: (-sin(a),))
maximum = Op("maximum", "max",   2, operators.maximum,  _maximum_derivative)
minimum = Op("minimum", "min",   2, operators.minimum,  _minimum_derivative)
sum     = Op("sum",     "Σ",     0, operators.sum_of,   _sum_derivative)
# fmt: on

OPS: dict[str, Op] = {op.name: op for op in (
    add, sub, mul, div, neg, pow, exp, log, log1p, sqrt, tanh, sigmoid, relu, abs, sin, cos,
    maximum, minimum, sum,
)}
"""The op table: every built-in primitive of the engine, by name."""

# Side table, read by repr and notebooks (the text) and by gradcheck(reference="exact") (the
# forward in mpmath, which uses no derivative rule of the engine).
# fmt: off
_TEXT_AND_REFERENCE: dict[str, tuple[str, str, Callable[..., Any]]] = {
    "add":     ("a + b",       "1, 1",                              lambda mp, a, b: a + b),
    "sub":     ("a − b",       "1, −1",                             lambda mp, a, b: a - b),
    "mul":     ("a·b",         "b, a",                              lambda mp, a, b: a * b),
    "div":     ("a / b",       "1/b, −a/b²",                        lambda mp, a, b: a / b),
    "neg":     ("−a",          "−1",                                lambda mp, a: -a),
    "pow":     ("a ** b",      "b·a**(b−1), a**b·log a",            lambda mp, a, b: mp.power(a, b)),
    "exp":     ("exp a",       "exp a",                             lambda mp, a: mp.exp(a)),
    "log":     ("log a",       "1/a",                               lambda mp, a: mp.log(a)),
    "log1p":   ("log(1 + a)",  "1/(1 + a)",                         lambda mp, a: mp.log1p(a)),
    "sqrt":    ("√a",          "1/(2√a)",                           lambda mp, a: mp.sqrt(a)),
    "tanh":    ("tanh a",      "1 − tanh² a = 4σ(2a)σ(−2a)",        lambda mp, a: mp.tanh(a)),
    "sigmoid": ("σ(a)",        "σ(a)·(1 − σ(a)) = σ(a)·σ(−a)",      lambda mp, a: 1 / (1 + mp.exp(-a))),
    "relu":    ("max(a, 0)",   "1 if a > 0 else 0",                 lambda mp, a: a if a > 0 else mp.mpf(0)),
    "abs":     ("|a|",         "sign a (0 at 0)",                   lambda mp, a: mp.fabs(a)),
    "sin":     ("sin a",       "cos a",                             lambda mp, a: mp.sin(a)),
    "cos":     ("cos a",       "−sin a",                            lambda mp, a: mp.cos(a)),
    "maximum": ("max(a, b)",   "1 to the larger, ½ each on a tie",  lambda mp, a, b: max(a, b)),
    "minimum": ("min(a, b)",   "1 to the smaller, ½ each on a tie", lambda mp, a, b: min(a, b)),
    "sum":     ("a₁ + … + aₙ", "1 each",                            lambda mp, *xs: mp.fsum(xs)),
}
# fmt: on
for _name, (_formula, _derivative_formula, _reference) in _TEXT_AND_REFERENCE.items():
    OPS[_name].formula, OPS[_name].derivative_formula, OPS[_name].reference = \
        _formula, _derivative_formula, _reference


def sum_values(*values: Any) -> Any:
    """``engine.sum([a, b, c])`` or ``engine.sum(a, b, c)``: ``a + b + c`` as one ``sum`` node
    with a parent per value, so that ``w·x + b`` is one node over the products rather than a
    chain of adds (a float, if every value is a plain number).

    Raises:
        ValueError: no values. TypeError: something that is not a number or a Value.
    """
    if len(values) == 1 and not isinstance(values[0], numbers.Real) \
            and getattr(type(values[0]), "_apply_op", None) is None:
        try:
            values = tuple(values[0])
        except TypeError:
            raise TypeError(f"engine.sum takes values, as engine.sum([a, b]) or engine.sum(a, b); got "
                            f"{type(values[0]).__name__}") from None
    if not values:
        raise ValueError("sum needs at least one value, got none")
    return sum(*values)  # the op sum of the table above (this module's, not Python's)


# --------------------------------------------------------------------------------------------
# Finding ops, and defining your own
# --------------------------------------------------------------------------------------------

DEFINED_OPS: dict[str, Op] = {}
"""The ops made by :func:`define_op`, by name (kept apart from the built-in table ``OPS``)."""


def op_by_name(name: str) -> Op:
    """Return the op called ``name``: a built-in one, or one made by :func:`define_op`.

    Raises:
        KeyError: there is no such op; the message lists the ops.
    """
    found = OPS.get(name) or DEFINED_OPS.get(name)
    if found is None:
        raise KeyError(f"no op named {name!r}; the ops are {', '.join([*OPS, *DEFINED_OPS])} (an op of "
                       f"yours must be made with engine.define_op before a graph that uses it is loaded)")
    return found
