"""The walk of :mod:`engine.parse`: an expression's syntax tree checked node by node against the
language and built into a graph with Value ops, and the table of functions it may call."""

from __future__ import annotations

import ast
import functools
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from engine.ops import OPS, Op
from engine.parse_errors import ExpressionError, suggest
from engine.value import Value

MAX_NODES = 500
"""The most parts (numbers, names, operations and calls) an expression may have."""


FUNCTION_ALIASES: dict[str, str] = {"max": "maximum", "min": "minimum"}
"""Extra names for functions of the table: ``max(a, b)`` is ``maximum(a, b)`` and ``min(a, b)``
is ``minimum(a, b)``. ``sum`` needs no alias: it is the op's own name."""


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
def function_table() -> dict[str, _Function]:
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
    return sorted(function_table())



def number_to_float(x: Any) -> float:
    """A real number as a float; an ``int`` too large for a float is ``±inf``."""
    try:
        return float(x)
    except OverflowError:
        return math.inf if x > 0 else -math.inf



# --------------------------------------------------------------------------------------------
# The walk: check each node against the whitelist, then build it with Value ops
# --------------------------------------------------------------------------------------------


class Builder:
    """Walks an expression tree with an explicit stack and builds its graph.

    Each node is checked when first reached (so the first error reported is the leftmost,
    outermost one) and built after its operands, from the Values built for them.
    """

    def __init__(self, text: str, source: str, lead: int, values: dict[str, float]) -> None:
        self.text = text
        self.source = source
        self.lead = lead
        self.values = values
        self.functions = function_table()
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
            suggestion = suggest(name, [*self.values, *self.functions])
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
            raise self._error(f"unknown function {name!r}{suggest(name, list(self.functions))}"
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
            return Value(number_to_float(node.value))
        if isinstance(node, ast.Name):
            return self.leaves[node.id]
        if isinstance(node, ast.UnaryOp):
            if not args:  # a minus sign before a number: a negative constant
                assert isinstance(node.operand, ast.Constant)
                return Value(-number_to_float(node.operand.value))
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
