"""Your own op: :func:`define_op` makes one that works wherever a built-in op does.

The op is an :class:`engine.ops.Op` like the table's rows, registered in
:data:`engine.ops.DEFINED_OPS` so that pickles and generated code find it by name. Its forward
and derivative are wrapped so that a mistake in them (an exception, a wrong return value) is an
:class:`OpError` that names the op, never an anonymous traceback.

Reference: HIPS autograd's ``defvjp``, PyTorch's ``torch.autograd.Function`` and JAX's
``custom_vjp`` (each pairs a forward with its derivative rule).
"""

from __future__ import annotations

import inspect
import keyword
import numbers
import re
from collections.abc import Callable
from typing import Any

from engine import operators
from engine.ops import DEFINED_OPS, HELPERS, OPS, Op


class OpError(RuntimeError):
    """An op made by :func:`define_op` failed: its forward or derivative raised, or returned
    the wrong thing. The message names the op."""


# Names generated code gives its own variables and functions: an op of yours may not take them.
RESERVED = ("v<k>", "g<k>", "d_<name>", "inputs", "params", "seeds", "theta", "fail", "inf", "nan",
            "zeros", "stack", "total", "add_at", "all_equal", "broadcast", "max", "min")
_RESERVED = re.compile(r"^([vg][0-9]*|d_.*|inputs|params|seeds|theta|fail|inf|nan|zeros|stack|total"
                       r"|add_at|all_equal|broadcast|max|min)$")


def define_op(name: str, forward: Callable[..., float], derivative: Callable[..., Any],
              symbol: str | None = None, reference: Callable[..., Any] | None = None,
              arity: int | None = None, replace: bool = False) -> Op:
    """Make an op of your own, used like a built-in one: ``softsign(x)`` on a Value records a
    node, and ``backward()``, ``gradcheck``, drawing, the stepper, tracing and pickling all
    work with it.

        >>> import engine
        >>> cube = engine.define_op("cube", forward=lambda a: a * a * a,
        ...                         derivative=lambda a, out: (3.0 * a * a,))
        >>> x = engine.Value(2.0)
        >>> y = cube(x)
        >>> y.backward()
        >>> y.data, x.grad          # 2³, and 3·2²
        (8.0, 12.0)

    Write the derivative as the table's rows are (see the module docstring): ``+ - *``
    directly, and the engine's functions for the rest (``engine.div(1.0, b)`` rather than
    ``1.0 / b``, ``engine.cos`` rather than ``math.cos``); then it never raises on floats and
    can be differentiated again. Generated code (tracing) calls your functions as they are.

    Args:
        name: the op's name: a lower-case identifier that is not a built-in op's, a keyword,
            or one of :data:`RESERVED`.
        forward: ``forward(a)``, ``forward(a, b)``, ``forward(a, b, c)`` ... on floats, giving
            a float; its parameters give the op's arity (``forward(*xs)``: any number).
        derivative: ``derivative(*operands, out)``: the local derivatives ``∂out/∂operand``,
            a tuple with one per operand (a unary op may return just the number). Written
            with ``math`` it works on floats only, and ``create_graph`` then raises an
            ``OpError`` that says so.
        symbol: how drawings show the op (default: its name).
        reference: ``reference(mp, *operands)``, the forward in ``mpmath``, for
            ``gradcheck(reference="exact")`` (which needs it).
        arity: the number of operands, where ``forward``'s parameters do not say (a builtin
            such as ``math.hypot``); ``0`` for any number.
        replace: allow a name already defined otherwise (graphs, pickles and programs that use
            the old op then use the new one).

    Returns:
        The :class:`Op`, callable on numbers and Values. The same definition again (a notebook
        cell run twice) returns the op made the first time.

    Raises:
        ValueError: a name that is not allowed, or already defined otherwise without
            ``replace=True``.
        TypeError: ``forward`` or ``derivative`` is not callable, ``symbol`` is not a string,
            or their parameters do not match (the derivative takes the operands and ``out``).
    """
    earlier = DEFINED_OPS.get(name)
    if earlier is not None and _same(earlier.forward, forward) and _same(earlier.derivative, derivative):
        return earlier  # the same definition again (a notebook cell run twice): the same op
    _check_name(name, replace)
    if not callable(forward) or not callable(derivative):
        raise TypeError(f"op {name}: forward and derivative must be functions")
    if symbol is not None and not isinstance(symbol, str):
        raise TypeError(f"op {name}: symbol must be a string, got {type(symbol).__name__}")
    takes = _arity(derivative, f"op {name}: derivative")
    n = arity if arity is not None else _arity(forward, f"op {name}: forward")
    if n is None:  # a builtin whose signature Python does not say (math.log): as the derivative says
        n = takes - 1 if takes else 0
    if takes is None:
        takes = n + 1 if n else 0
    if (n == 0) != (takes == 0) or n and takes != n + 1:
        wanted = "*operands_and_out" if n == 0 else ", ".join([*"abcdefgh"[:n], "out"])
        raise TypeError(f"op {name}: the derivative must take ({wanted}): the "
                        f"{'operands' if n == 0 else f'{n} operand(s)'} and the result out; it takes "
                        f"{'any number of' if takes == 0 else takes} parameters")
    op = Op(name, symbol or name, n, _checked_forward(name, forward), _checked_derivative(name, derivative),
            formula=name, reference=reference, builtin=False)
    DEFINED_OPS[name] = op
    return op


def _check_name(name: Any, replace: bool) -> None:
    if not isinstance(name, str) or not re.fullmatch(r"[a-z_][a-z0-9_]*", name) or keyword.iskeyword(name):
        raise ValueError(f"an op's name must be a lower-case identifier that is not a Python keyword, "
                         f"got {name!r}")
    if name in OPS or name in HELPERS:
        raise ValueError(f"{name!r} is a built-in op or helper of the engine "
                         f"({', '.join([*OPS, *HELPERS])}); give your op another name")
    if _RESERVED.match(name):
        raise ValueError(f"{name!r} is a name generated code uses ({', '.join(RESERVED)}); give your op "
                         f"another name")
    if name in DEFINED_OPS and not replace:
        raise ValueError(f"op {name!r} is already defined; give this one another name, or pass replace=True "
                         f"(graphs and programs that use the old op then use the new one)")


def _same(checked: Callable[..., Any], fn: Callable[..., Any]) -> bool:
    """Whether ``fn`` is the function ``checked`` wraps, or one written the same way in the same
    namespace (a notebook cell run again)."""
    old = getattr(checked, "__wrapped__", None)
    if old is fn:
        return True
    a, b = getattr(old, "__code__", None), getattr(fn, "__code__", None)
    return a is not None and b is not None and (a.co_code, a.co_consts, a.co_names) == \
        (b.co_code, b.co_consts, b.co_names) and getattr(old, "__closure__", None) is None \
        and getattr(fn, "__closure__", None) is None and getattr(old, "__globals__", None) is \
        getattr(fn, "__globals__", None)  # the same text in the same namespace


def _arity(fn: Callable[..., Any], what: str) -> int | None:
    """Positional parameters of ``fn`` without defaults; ``0`` if it takes ``*args``; ``None``
    if its signature cannot be read."""
    if isinstance(fn, Op):
        return fn.arity
    try:
        parameters = list(inspect.signature(fn).parameters.values())
    except (TypeError, ValueError):
        return None
    if any(p.kind is p.VAR_POSITIONAL for p in parameters):
        return 0
    positional = [p for p in parameters if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
                  and p.default is p.empty]
    if not positional:
        raise TypeError(f"{what} takes no operands")
    return len(positional)


# What a formula on floats raises (1/0, math.log(-1), math.exp(1000), a wrong type).
_FLOAT_ERRORS = (ArithmeticError, ValueError, TypeError)


def _checked_forward(name: str, forward: Callable[..., Any]) -> Callable[..., float]:
    def checked(*operands: float) -> float:
        try:
            result = forward(*operands)
        except _FLOAT_ERRORS as error:
            raise OpError(f"op {name}: its forward raised {type(error).__name__} ({error}) at "
                          f"{_numbers(operands)}; return inf or nan there instead") from error
        if isinstance(result, numbers.Real) and not isinstance(result, bool):
            return operators.to_float(result)
        raise OpError(f"op {name}: its forward must return a real number, got {type(result).__name__} "
                      f"{result!r}"[:300] + f" at {_numbers(operands)}")

    checked.__wrapped__ = forward  # type: ignore[attr-defined]
    return checked


def _checked_derivative(name: str, derivative: Callable[..., Any]) -> Callable[..., tuple[Any, ...]]:
    def checked(*operands_and_out: Any) -> tuple[Any, ...]:
        n = len(operands_and_out) - 1
        try:
            local = derivative(*operands_and_out)
        except _FLOAT_ERRORS as error:
            on = "Values (backward(create_graph=True))" if _symbolic(operands_and_out) else "floats"
            raise OpError(f"op {name}: its derivative raised {type(error).__name__} ({error}) on {on} at "
                          f"{_numbers(operands_and_out[:-1])}; write it with + - * and engine's functions "
                          f"(engine.div, engine.exp, ...)") from error
        if n == 1 and not isinstance(local, (tuple, list)):
            local = (local,)
        if not isinstance(local, (tuple, list)) or len(local) != n:
            raise OpError(f"op {name}: its derivative must return a tuple of {n} local derivative(s), "
                          f"one per operand, got {local!r}"[:300])
        values = _symbolic(operands_and_out)
        out = []
        for d in local:
            if isinstance(d, numbers.Real) and not isinstance(d, bool):
                out.append(operators.to_float(d))
            elif values and type(d) is type(values):
                out.append(d)
            else:
                raise OpError(f"op {name}: each local derivative must be a real number (or, under "
                              f"create_graph, a Value), got {type(d).__name__} {d!r}"[:300]
                              + f" at {_numbers(operands_and_out[:-1])}")
        return tuple(out)

    checked.__wrapped__ = derivative  # type: ignore[attr-defined]
    return checked


def _symbolic(xs: Any) -> Any:
    """The first operand that is not a plain number (a Value), or None."""
    return next((x for x in xs if getattr(type(x), "_apply_op", None) is not None), None)


def _numbers(xs: Any) -> str:
    return ", ".join(f"{getattr(x, 'data', x)!r}" for x in xs)
