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
import difflib
import functools
import keyword
import math
import numbers
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from engine.ops import OPS, Op
from engine.value import Value

MAX_LENGTH = 2000
"""The longest expression accepted, in characters."""

MAX_DEPTH = 100
"""The deepest nesting of brackets accepted (``((x))`` is 2). Python's own tokenizer stops at
200 with "too many nested parentheses"; below that this limit gives the clearer error."""

MAX_NODES = 500
"""The most parts (numbers, names, operations and calls) an expression may have."""

FUNCTION_ALIASES: dict[str, str] = {"max": "maximum", "min": "minimum"}
"""Extra names for functions of the table: ``max(a, b)`` is ``maximum(a, b)`` and ``min(a, b)``
is ``minimum(a, b)``. ``sum`` needs no alias: it is the op's own name."""

_SHOWN = 80  # the most characters of the expression echoed in an error message

# The binary operators and the op of the table each one applies.
_BINARY_OPS: dict[type[ast.operator], str] = {
    ast.Add: "add", ast.Sub: "sub", ast.Mult: "mul", ast.Div: "div", ast.Pow: "pow",
}
# How the unsupported binary operators are spelled, to point at them and name them.
_OTHER_BINARY: dict[type[ast.operator], str] = {
    ast.FloorDiv: "//", ast.Mod: "%", ast.MatMult: "@", ast.LShift: "<<", ast.RShift: ">>",
    ast.BitOr: "|", ast.BitXor: "^", ast.BitAnd: "&",
}
# What each rejected kind of syntax is called in an error message.
_REJECTED: dict[type[ast.AST], str] = {
    ast.Attribute: "attribute access ('.') is not allowed",
    ast.Subscript: "subscripts ('[...]') are not allowed",
    ast.Lambda: "lambda is not allowed",
    ast.ListComp: "comprehensions are not allowed",
    ast.SetComp: "comprehensions are not allowed",
    ast.DictComp: "comprehensions are not allowed",
    ast.GeneratorExp: "generator expressions are not allowed",
    ast.Compare: "comparisons are not allowed",
    ast.BoolOp: "'and' / 'or' are not allowed",
    ast.IfExp: "conditional expressions ('... if ... else ...') are not allowed",
    ast.JoinedStr: "f-strings are not allowed",
    ast.FormattedValue: "f-strings are not allowed",
    ast.List: "lists are not allowed",
    ast.Tuple: "tuples are not allowed (one expression only)",
    ast.Set: "sets are not allowed",
    ast.Dict: "dicts are not allowed",
    ast.NamedExpr: "assignment (':=') is not allowed",
    ast.Starred: "'*' unpacking is not allowed",
    ast.Slice: "slices are not allowed",
    ast.Await: "'await' is not allowed",
    ast.Yield: "'yield' is not allowed",
    ast.YieldFrom: "'yield' is not allowed",
}


class ExpressionError(ValueError):
    """An expression that cannot be parsed or is not allowed; the message points at the part.

    ``str(error)`` is the whole message: a first line giving the reason (and the column when
    the problem is in the text), then the expression and a caret line under the offending
    part, e.g.::

        expression error at column 5: unknown name 'foo' (known: x, y; functions: abs, ...)
          log(foo) * sin(y)
              ^^^

    Attributes:
        reason (str): the first line without the prefix ("unknown name 'foo' (...)").
        text (str): the expression as given.
        column (int | None): 1-based column of the first offending character; ``None`` when
            the problem is not in the text (a bad entry of ``values``).
        end_column (int | None): 1-based column just past the offending part.
    """

    def __init__(self, reason: str, text: str = "", column: int | None = None,
                 end_column: int | None = None) -> None:
        self.reason = reason
        self.text = text
        self.column = column
        self.end_column = end_column
        super().__init__(_format_message(reason, text, column, end_column))


@dataclass
class Parsed:
    """A parsed expression: its graph and its leaves.

    Attributes:
        root: the Value the expression computes (``root.data``); call ``root.backward()`` to
            fill every leaf's ``grad``. A bare variable is its own leaf; a bare number is a
            constant leaf.
        leaves: one leaf Value per variable name used in the expression, labelled with the
            name, in order of first appearance. Names of ``values`` that the expression does
            not use are not here. Number constants are leaves of the graph but not in here.
        text: the expression as given.
    """

    root: Value
    leaves: dict[str, Value]
    text: str


@dataclass(frozen=True)
class _Function:
    """A function callable in an expression: its op and how many arguments it takes."""

    op: Op
    min_args: int
    max_args: int | None  # None: any number
    apply: Callable[[list[Value]], Value]

    def arity_text(self) -> str:
        if self.max_args is None:
            return f"at least {self.min_args} argument{'s' * (self.min_args != 1)}"
        return f"{self.max_args} argument{'s' * (self.max_args != 1)}"


def _unary_method(name: str) -> Callable[[list[Value]], Value]:
    method = getattr(Value, name)
    return lambda args: method(args[0])


def _op_call(op: Op) -> Callable[[list[Value]], Value]:
    return lambda args: op(*args)


@functools.cache
def _functions() -> dict[str, _Function]:
    """The function table, derived from ``engine.OPS`` (see the module docstring).

    Built on first use, not at import, so the ``engine`` package is fully initialized.
    """
    import engine  # the package: its exports decide which non-unary ops are functions

    table: dict[str, _Function] = {}
    for op in OPS.values():
        if op.arity == 1:
            if callable(getattr(Value, op.name, None)):
                table[op.name] = _Function(op, 1, 1, _unary_method(op.name))
        elif callable(getattr(engine, op.name, None)) and op.name not in _BINARY_OPS.values():
            table[op.name] = _Function(op, max(op.arity, 1), op.arity or None, _op_call(op))
    for alias, target in FUNCTION_ALIASES.items():
        if target in table:
            table[alias] = table[target]
    return table


def function_names() -> list[str]:
    """The names callable in an expression, aliases included, sorted."""
    return sorted(_functions())


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
    return _Builder(text, source, lead, variables).build(tree.body)


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
    functions = _functions()
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
        number = _to_float(value)
        if math.isnan(number):
            raise ExpressionError(f"the value of {name!r} must be a finite or infinite number, "
                                  f"got nan")
        checked[name] = number
    return checked


def _to_float(x: Any) -> float:
    """A real number as a float; an ``int`` too large for a float is ``±inf``."""
    try:
        return float(x)
    except OverflowError:
        return math.inf if x > 0 else -math.inf


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


# --------------------------------------------------------------------------------------------
# The walk: check each node against the whitelist, then build it with Value ops
# --------------------------------------------------------------------------------------------


class _Builder:
    """Walks an expression tree with an explicit stack and builds its graph.

    Each node is checked when first reached (so the first error reported is the leftmost,
    outermost one) and built after its operands, from the Values built for them.
    """

    def __init__(self, text: str, source: str, lead: int, values: dict[str, float]) -> None:
        self.text = text
        self.source = source
        self.lead = lead
        self.values = values
        self.functions = _functions()
        self.leaves: dict[str, Value] = {}
        self._byte_offsets = not source.isascii()

    def build(self, body: ast.expr) -> Parsed:
        count = sum(1 for node in ast.walk(body) if isinstance(node, ast.expr))  # iterative
        if count > MAX_NODES:
            raise ExpressionError(f"the expression has {count} parts (numbers, names, operations"
                                  f" and calls); the limit is {MAX_NODES}", self.text,
                                  self.lead + 1, self.lead + len(self.source) + 1)
        results: list[Value] = []
        stack: list[tuple[ast.expr, int]] = [(body, -1)]  # (node, operand count once checked)
        while stack:
            node, n = stack.pop()
            if n < 0:
                operands = self._check(node)
                stack.append((node, len(operands)))
                stack.extend((operand, -1) for operand in reversed(operands))
            else:
                args = results[len(results) - n:]
                del results[len(results) - n:]
                results.append(self._build(node, args))
        (root,) = results
        return Parsed(root=root, leaves=self.leaves, text=self.text)

    # -- checking ------------------------------------------------------------------------------

    def _check(self, node: ast.expr) -> list[ast.expr]:
        """Raise if ``node`` is not allowed; return the operands to build before it."""
        if isinstance(node, ast.Constant):
            self._check_number(node)
            return []
        if isinstance(node, ast.Name):
            self._leaf(node)
            return []
        if isinstance(node, ast.UnaryOp):
            if isinstance(node.op, (ast.USub, ast.UAdd)):
                if isinstance(node.op, ast.USub) and _is_number(node.operand):
                    return []  # "-3": one constant leaf, built in _build
                return [node.operand]
            what = "'not'" if isinstance(node.op, ast.Not) else "'~'"
            raise self._error(f"{what} is not allowed (operators: + - * / **)", node)
        if isinstance(node, ast.BinOp):
            if type(node.op) in _BINARY_OPS:
                return [node.left, node.right]
            symbol = _OTHER_BINARY.get(type(node.op), type(node.op).__name__)
            hint = "; for a power use **" if symbol == "^" else ""
            raise self._error(f"operator {symbol!r} is not supported (operators: + - * / **"
                              f"{hint})", *self._operator_span(node, symbol))
        if isinstance(node, ast.Call):
            return self._check_call(node)
        reason = _REJECTED.get(type(node), f"{type(node).__name__} is not allowed")
        raise self._error(reason, node)

    def _check_number(self, node: ast.Constant) -> None:
        value = node.value
        if _is_number(node):
            return
        if isinstance(value, (str, bytes)):
            reason = "strings are not allowed"
        elif isinstance(value, bool):
            reason = f"{value} is not a number here (use 1 or 0)"
        elif isinstance(value, complex):
            reason = "complex numbers are not allowed"
        else:
            reason = f"{value!r} is not allowed"
        raise self._error(reason, node)

    def _leaf(self, node: ast.Name) -> None:
        name = node.id
        if name in self.leaves:
            return
        if name in self.functions:
            raise self._error(f"{name!r} is a function, not a variable: call it, as in "
                              f"{name}(...)", node)
        if name not in self.values:
            known = ", ".join(self.values) or "none"
            suggestion = _suggest(name, [*self.values, *self.functions])
            raise self._error(f"unknown name {name!r}: pass its value with --set {name}=VALUE"
                              f"{suggestion} (known: {known}; functions: "
                              f"{', '.join(sorted(self.functions))})", node)
        self.leaves[name] = Value(self.values[name], name)

    def _check_call(self, node: ast.Call) -> list[ast.expr]:
        names = ", ".join(sorted(self.functions))
        # "(f)(x)" parses as a call of the name f: the brackets only show in the positions.
        if not isinstance(node.func, ast.Name) or node.func.col_offset != node.col_offset:
            raise self._error(f"only a function name can be called, as in tanh(x) "
                              f"(functions: {names})", node.func)
        name = node.func.id
        function = self.functions.get(name)
        if function is None:
            if name in self.values:
                raise self._error(f"{name!r} is a variable, not a function (functions: {names})",
                                  node.func)
            raise self._error(f"unknown function {name!r}{_suggest(name, list(self.functions))}"
                              f" (functions: {names})", node.func)
        if node.keywords:
            raise self._error(f"keyword arguments are not allowed: {name}() takes its "
                              f"arguments by position", node.keywords[0])
        for arg in node.args:
            if isinstance(arg, ast.Starred):
                raise self._error("'*' arguments are not allowed", arg)
        n = len(node.args)
        if n < function.min_args or (function.max_args is not None and n > function.max_args):
            raise self._error(f"{name}() takes {function.arity_text()}, got {n}", node)
        return list(node.args)

    # -- building ------------------------------------------------------------------------------

    def _build(self, node: ast.expr, args: list[Value]) -> Value:
        """The Value for a checked ``node`` whose operands are built as ``args``."""
        if isinstance(node, ast.Constant):
            return Value(_to_float(node.value))
        if isinstance(node, ast.Name):
            return self.leaves[node.id]
        if isinstance(node, ast.UnaryOp):
            if not args:  # a minus sign before a number: a negative constant
                assert isinstance(node.operand, ast.Constant)
                return Value(-_to_float(node.operand.value))
            return -args[0] if isinstance(node.op, ast.USub) else args[0]
        if isinstance(node, ast.BinOp):
            result: Value = OPS[_BINARY_OPS[type(node.op)]](args[0], args[1])
            return result
        assert isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
        return self.functions[node.func.id].apply(args)

    # -- positions -----------------------------------------------------------------------------

    def _column(self, byte_offset: int) -> int:
        """The 1-based column in ``text`` of a node's UTF-8 byte offset in ``source``."""
        if self._byte_offsets:
            chars = len(self.source.encode("utf-8")[:byte_offset].decode("utf-8", "replace"))
        else:
            chars = byte_offset
        return self.lead + chars + 1

    def _span(self, node: ast.AST) -> tuple[int, int]:
        start = getattr(node, "col_offset", 0)
        end = getattr(node, "end_col_offset", None)
        if getattr(node, "end_lineno", 1) != getattr(node, "lineno", 1) or end is None:
            end = len(self.source.encode("utf-8"))
        return self._column(start), self._column(end)

    def _operator_span(self, node: ast.BinOp, symbol: str) -> tuple[int, int]:
        """The columns of ``symbol`` between the operands of ``node`` (the whole node if the
        symbol is not found there)."""
        _, left_end = self._span(node.left)
        right_start, _ = self._span(node.right)
        between = self.text[left_end - 1:right_start - 1]
        i = between.find(symbol)
        if i < 0:
            return self._span(node)
        return left_end + i, left_end + i + len(symbol)

    def _error(self, reason: str, where: ast.AST | int, end_column: int | None = None
               ) -> ExpressionError:
        if isinstance(where, int):
            return ExpressionError(reason, self.text, where, end_column)
        column, end = self._span(where)
        return ExpressionError(reason, self.text, column, end)


def _is_number(node: ast.expr) -> bool:
    """True for an ``int`` or ``float`` literal (``True``/``False`` are not numbers here)."""
    return isinstance(node, ast.Constant) and type(node.value) in (int, float)


def _suggest(name: str, candidates: list[str]) -> str:
    close = difflib.get_close_matches(name, candidates, n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _format_message(reason: str, text: str, column: int | None, end_column: int | None) -> str:
    """The error's message: the reason, then (with a column) the text and a caret line.

    Text longer than 80 characters is shown as a window around the column, cut with "...".
    """
    if column is None:
        return f"expression error: {reason}"
    start, stop = 0, len(text)
    if stop > _SHOWN:
        start = max(0, min(column - 1 - _SHOWN // 3, stop - _SHOWN))
        stop = min(stop, start + _SHOWN)
    prefix = "..." if start > 0 else ""
    suffix = "..." if stop < len(text) else ""
    end = end_column if end_column is not None and end_column > column else column + 1
    first = column - 1  # 0-based
    last = stop + 1 if stop == len(text) else stop  # a caret may sit just past the text's end
    width = max(1, min(end - 1, last) - first)
    carets = " " * (len(prefix) + first - start) + "^" * width
    return (f"expression error at column {column}: {reason}\n"
            f"  {prefix}{text[start:stop]}{suffix}\n"
            f"  {carets}")
