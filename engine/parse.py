"""A safe parser from expression text to a graph of ``Value`` nodes.

``parse_expression("tanh(w*x + b)", {"w": -3, "x": 2, "b": 6.88})`` builds the same graph as
``(w * x + b).tanh()`` on three labelled leaves, and returns it with the leaves by name:

    >>> from engine.parse import parse_expression
    >>> p = parse_expression("tanh(w*x + b)", {"w": -3, "x": 2, "b": 6.88})
    >>> p.root.backward()
    >>> round(p.root.data, 4), round(p.leaves["w"].grad, 4)   # x·(1 − tanh²(0.88))
    (0.7064, 1.0019)

The commands that take an expression (``valuegrad check``, ``valuegrad draw``) share it.

**The language.** An expression is Python expression syntax restricted to:

- numbers: ``int`` and ``float`` literals in Python's spelling (``2``, ``0.5``, ``1e-3``,
  ``1_000``); not ``True``/``False``, complex numbers or strings;
- variables: names given a value in ``values`` (one leaf ``Value`` per name, shared by every
  use of the name);
- ``+ - * / **`` between two operands, unary ``-`` and ``+``, parentheses;
- calls ``f(a, ...)`` of the engine's functions, taken from the op table ``engine.OPS``:

  - every op of arity 1 whose ``Value`` method has the op's name (``exp``, ``log``,
    ``log1p``, ``sqrt``, ``tanh``, ``sigmoid``, ``relu``, ``abs``, ``sin``, ``cos``, and any
    op added to the table later), with one argument. ``neg`` has no method: write ``-x``;
  - every other op that the ``engine`` package exports as a function under the op's name
    (``maximum`` and ``minimum`` with 2 arguments, ``sum`` with 1 or more), but for the
    binary arithmetic ops (``add``, ``mul``, ...): they are spelled ``+``, ``*``, ...;
  - the aliases in :data:`FUNCTION_ALIASES`: ``max`` for ``maximum``, ``min`` for
    ``minimum`` (``sum`` is the op's own name, so it needs none).

Everything else (attributes, subscripts, lambdas, comprehensions, comparisons, ``and``/``or``,
conditionals, strings, f-strings, keyword or starred arguments, calls of anything but a
function name) is an :class:`ExpressionError` that points at the offending part.

**Safety.** The text is parsed with ``ast.parse(mode="eval")`` and the tree is walked here,
node by node, against the whitelist above; nothing is ever evaluated, executed or compiled to
code, and no name is looked up anywhere but in ``values`` and the function table. Every number
is converted to ``float`` before any arithmetic, and the graph is built with Value ops only, so
``2 ** 10000`` is ``inf`` (IEEE-754, as everywhere in the engine) at once, never a huge Python
integer. The only folding is a minus sign written directly before a number (``-3`` is one
constant leaf ``-3.0``, not ``neg(3.0)``), a float negation. Hostile input is bounded by
:data:`MAX_LENGTH` characters, :data:`MAX_DEPTH` levels of brackets and :data:`MAX_NODES`
parts; the walk uses an explicit stack, never recursion.
"""

from __future__ import annotations

import ast
import keyword
import math
import numbers
import warnings
from collections.abc import Mapping

from engine.parse_errors import ExpressionError
from engine.parse_tree import (
    FUNCTION_ALIASES,
    MAX_NODES,
    Builder,
    Parsed,
    function_names,
    function_table,
    number_to_float,
)

__all__ = ["FUNCTION_ALIASES", "MAX_DEPTH", "MAX_LENGTH", "MAX_NODES", "ExpressionError", "Parsed",
           "function_names", "parse_expression"]

MAX_LENGTH = 2000
"""The longest expression accepted, in characters."""

MAX_DEPTH = 100
"""The deepest nesting of brackets accepted (``((x))`` is 2). Python's own tokenizer stops at
200 with "too many nested parentheses"; below that this limit gives the clearer error."""


def parse_expression(text: str, values: Mapping[str, float]) -> Parsed:
    """Parse ``text`` and build its computation graph on leaves holding ``values``.

    Args:
        text: the expression, one line, in the language of the module docstring
            (``"log(x) * sin(y)"``). Leading and trailing spaces are ignored.
        values: the value of every variable the expression uses, by name. Each must be an
            ``int``, ``float`` or other real number (not ``bool``), finite or ``±inf``, not
            ``nan``; ``int`` too large for a float becomes ``±inf``. Each name must be an
            identifier that is not a function name. Names the expression does not use are
            allowed (and get no leaf).

    Returns:
        A :class:`Parsed`: the graph's root, the variables' leaves by name, and ``text``.
        Nothing has been differentiated yet: every ``grad`` is ``0.0``.

    Raises:
        ExpressionError: (a ``ValueError``) the text is longer than :data:`MAX_LENGTH`,
            nested deeper than :data:`MAX_DEPTH` brackets or has more than :data:`MAX_NODES`
            parts; it has a syntax error or a control character; it uses syntax outside the
            language, a name that has no value (pass it with ``--set NAME=VALUE``), a function
            name as a variable, an unknown function, or a function with the wrong number of
            arguments; or an entry of ``values`` is not a number, is ``nan``, or is named
            like a function. The message gives the column and a caret line.
        TypeError: ``text`` is not a ``str`` or ``values`` is not a mapping.
    """
    if not isinstance(text, str):
        raise TypeError(f"the expression must be a str, got {type(text).__name__}")
    if not isinstance(values, Mapping):
        raise TypeError(f"values must be a mapping of names to numbers, got {type(values).__name__}")
    _check_text(text)
    variables = _check_values(values)
    lead = len(text) - len(text.lstrip(" "))
    source = text.strip(" ")
    tree = _parse(text, source, lead)
    return Builder(text, source, lead, variables).build(tree.body)


# --------------------------------------------------------------------------------------------
# Checks before parsing
# --------------------------------------------------------------------------------------------


def _check_text(text: str) -> None:
    """Reject text that is too long, not one line, empty, or nested too deeply."""
    if len(text) > MAX_LENGTH:
        raise ExpressionError(f"the expression is {len(text)} characters long; the limit is "
                              f"{MAX_LENGTH}", text, MAX_LENGTH + 1, len(text) + 1)
    for i, ch in enumerate(text):
        if ord(ch) < 32 or ord(ch) == 127:
            raise ExpressionError(f"control character {ch!r} (the expression must be one line, "
                                  f"spaces only)", text, i + 1, i + 2)
    if not text.strip(" "):
        raise ExpressionError("the expression is empty", text)
    depth = 0
    for i, ch in enumerate(text):
        if ch in "([{":
            depth += 1
            if depth > MAX_DEPTH:
                raise ExpressionError(f"the expression is nested too deeply: more than "
                                      f"{MAX_DEPTH} levels of brackets", text, i + 1, i + 2)
        elif ch in ")]}":
            depth = max(depth - 1, 0)


def _check_values(values: Mapping[str, float]) -> dict[str, float]:
    """Each entry as a float; reject names that cannot be variables and non-numbers."""
    functions = function_table()
    checked: dict[str, float] = {}
    for name, value in values.items():
        if not isinstance(name, str) or not name.isidentifier() or keyword.iskeyword(name):
            raise ExpressionError(f"{name!r} cannot be a variable name: use letters, digits "
                                  f"and '_', not starting with a digit")
        if name in functions:
            raise ExpressionError(f"{name!r} cannot be a variable name: it is a function "
                                  f"(functions: {', '.join(sorted(functions))})")
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise ExpressionError(f"the value of {name!r} must be a number, got "
                                  f"{type(value).__name__}: {value!r}"[:200])
        number = number_to_float(value)
        if math.isnan(number):
            raise ExpressionError(f"the value of {name!r} must be a finite or infinite number, "
                                  f"got nan")
        checked[name] = number
    return checked


def _parse(text: str, source: str, lead: int) -> ast.Expression:
    """``ast.parse(source, mode="eval")``, every failure as an ExpressionError."""
    try:
        with warnings.catch_warnings():  # e.g. SyntaxWarning for "\d" in a string literal
            warnings.simplefilter("ignore")
            return ast.parse(source, mode="eval")
    except SyntaxError as e:
        offset = e.offset if isinstance(e.offset, int) else 0
        end = getattr(e, "end_offset", None)
        msg = e.msg or "invalid syntax"
        if not 1 <= offset <= len(source):  # past the end: the expression stopped too early
            column = lead + len(source) + 1
            if msg == "invalid syntax":
                msg = "the expression ends too early"
            raise ExpressionError(f"syntax error: {msg}", text, column, column + 1) from None
        end_column = lead + end if isinstance(end, int) and end > offset else lead + offset + 1
        raise ExpressionError(f"syntax error: {msg}", text, lead + offset,
                              min(end_column, lead + len(source) + 1)) from None
    except (RecursionError, MemoryError):
        raise ExpressionError("the expression is nested too deeply or is too complex to parse",
                              text, lead + 1, lead + len(source) + 1) from None
    except ValueError as e:  # e.g. null bytes on older Pythons (control characters are
        raise ExpressionError(f"syntax error: {e}", text) from None  # rejected before)
