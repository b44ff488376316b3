"""Code generation: a traced program's forward and backward passes written out as Python.

Nothing about an op is written here. The code for an op comes from running the op table's own
functions (:mod:`engine.ops`) on **code operands**: a :class:`Code` is a piece of Python text
standing for a number, and arithmetic on it writes text. So ``mul``'s derivative
``lambda a, b, out: (b, a)``, run on the codes ``v2`` and ``v0``, gives ``(v0, v2)``, and the
chain rule writes ``g2 += g5 * v0``. A number among the operands (a constant of the program)
is computed on the spot, as the eager engine computes it: ``x ** 2``'s derivative comes out as
``2.0 * pow(v1, 1.0)``. The code does the same float operations in the same order as the
eager engine, so replay gives the same numbers, bit for bit.

An op of your own (:func:`engine.define_op`) is called as it is, ``myop(v3)`` and
``d_myop(v3, v5)[0]``: its functions may read numbers (``math.cos``, an ``if``, a global), which
code written once could not follow.

Reference: source-to-source reverse mode, Griewank and Walther, *Evaluating Derivatives* (2nd
ed., SIAM 2008), ch. 3 and 6; Python's operator precedence (the language reference, 6.17).
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from typing import Any

from engine.ops import DEFINED_OPS, OPS, Op

# Python's precedence levels, loosest first: a part is parenthesized where it binds looser than
# its place needs.
_OR, _AND, _SUM, _PRODUCT, _UNARY, _POWER, _ATOM = 1, 2, 4, 5, 6, 7, 8
_INFIX = (operator.add, operator.sub, operator.mul, operator.neg)  # ops written as Python's operators

RELATIONS: dict[str, Callable[[Any, Any], Any]] = {
    "<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge, "!=": operator.ne,
}
"""The comparisons a guard can hold, as functions (on floats or arrays)."""


class CodeError(TypeError):
    """A function run on code operands asked for a number (``float()``, ``if``, ``==``): it
    cannot be written as code, only called."""


class Code:
    """A Python expression standing for a number in generated code: ``Code("v3")``.

    Arithmetic (``+ - * / **``, unary ``-``, ``&``, ``|``) returns the expression written out,
    parenthesized as Python needs; an op or helper of the table called on it writes a call
    (``sigmoid(v3)``). Asking for its number (``float``, ``bool``, comparisons) raises
    :class:`CodeError`.
    """

    __slots__ = ("text", "precedence")

    def __init__(self, text: str, precedence: int = _ATOM) -> None:
        self.text = text
        self.precedence = precedence

    def __repr__(self) -> str:
        return f"Code({self.text!r})"

    def __add__(self, other: Any) -> Code: return _binary("+", _SUM, self, other)
    def __radd__(self, other: Any) -> Code: return _binary("+", _SUM, other, self)
    def __sub__(self, other: Any) -> Code: return _binary("-", _SUM, self, other)
    def __rsub__(self, other: Any) -> Code: return _binary("-", _SUM, other, self)
    def __mul__(self, other: Any) -> Code: return _binary("*", _PRODUCT, self, other)
    def __rmul__(self, other: Any) -> Code: return _binary("*", _PRODUCT, other, self)
    def __truediv__(self, other: Any) -> Code: return _binary("/", _PRODUCT, self, other)
    def __rtruediv__(self, other: Any) -> Code: return _binary("/", _PRODUCT, other, self)
    def __pow__(self, other: Any) -> Code: return _binary("**", _POWER, self, other)
    def __rpow__(self, other: Any) -> Code: return _binary("**", _POWER, other, self)
    def __neg__(self) -> Code: return Code("-" + _text(self, _POWER), _UNARY)
    def __abs__(self) -> Code: return _call("abs", (self,))

    # The masks of the derivatives: a known side decides (False & c is False), or drops out.
    def __and__(self, other: Any) -> Any: return _logical("&", _AND, False, self, other)
    def __rand__(self, other: Any) -> Any: return _logical("&", _AND, False, other, self)
    def __or__(self, other: Any) -> Any: return _logical("|", _OR, True, self, other)
    def __ror__(self, other: Any) -> Any: return _logical("|", _OR, True, other, self)

    def _number(self, *_: Any) -> Any:
        raise CodeError(f"{self.text} is code, not a number: a function run on it may not ask for its value")

    __bool__ = __float__ = __int__ = __index__ = _number
    __eq__ = __ne__ = __lt__ = __le__ = __gt__ = __ge__ = _number
    __hash__ = None  # type: ignore[assignment]

    @staticmethod
    def _apply_op(fn: Any, operands: tuple[Any, ...]) -> Any:
        """An op or helper called on code: Python's operator for ``add``, ``sub``, ``mul`` and
        ``neg``, a call by name for the rest."""
        if isinstance(fn, Op) and fn.forward in _INFIX:
            return fn.forward(*operands)
        return _call(fn.name, operands)


def literal(x: Any) -> Code:
    """A number as code: ``2.0``, ``-0.5``, ``inf``, ``nan`` (the namespace defines the last two)."""
    if isinstance(x, Code):
        return x
    text = repr(x)
    return Code(text, _UNARY if text.startswith("-") else _ATOM)


def _text(x: Any, needed: int) -> str:
    code = literal(x)
    return f"({code.text})" if code.precedence < needed else code.text


def _binary(symbol: str, precedence: int, a: Any, b: Any) -> Code:
    right_assoc = symbol == "**"
    left = _text(a, precedence + 1 if right_assoc else precedence)
    right = _text(b, precedence if right_assoc else precedence + 1)
    return Code(f"{left} {symbol} {right}", precedence)


def _logical(symbol: str, precedence: int, decisive: bool, a: Any, b: Any) -> Any:
    for known, other in ((a, b), (b, a)):
        if isinstance(known, bool):
            return known if known is decisive else other
    return _binary(symbol, precedence, a, b)


def _call(name: str, args: tuple[Any, ...]) -> Code:
    return Code(f"{name}({', '.join(literal(a).text for a in args)})")


# --------------------------------------------------------------------------------------------
# An op as code
# --------------------------------------------------------------------------------------------


def forward_code(op: Op, operands: list[Any]) -> Any:
    """``op`` applied to ``operands`` (codes, or numbers for constants), as code: ``v0 + v1``,
    ``tanh(v4)``. All numbers: the number itself, computed now."""
    if not any(isinstance(x, Code) for x in operands):
        return op.forward(*operands)
    if op.forward in _INFIX:
        return op.forward(*operands)
    return _call(op.name, tuple(operands))


def local_derivatives(op: Op, operands: list[Any], out: Any) -> tuple[Any, ...]:
    """The op table's local derivatives of ``op``, run on code: one code (or number) per
    operand. An op of yours is called as it is (``d_name(...)[k]``, see :func:`namespace`):
    its derivative may read numbers (``math.cos``, an ``if``, a global that changes), which
    code written once could not follow."""
    if op.builtin:
        return tuple(op.derivative(*operands, out))
    call = _call(f"d_{op.name}", (*operands, out)).text
    return tuple(Code(f"{call}[{k}]") for k in range(len(operands)))


def namespace(ops: Any, helpers: dict[str, Callable[..., Any]], forward: Callable[[Op], Any],
              derivative: Callable[[Op], Any]) -> dict[str, Any]:
    """The names generated code calls: each op's forward by its name (the table's, those made
    by :func:`engine.define_op`, and ``ops``, the program's own), each defined op's derivative
    as ``d_<name>``, and the helpers. ``forward`` and ``derivative`` give the
    function to bind for an op (on floats, or on arrays)."""
    names = dict(helpers)
    # Every op: derivatives call ops the program may not hold (tanh's calls sigmoid).
    for op in [*OPS.values(), *DEFINED_OPS.values(), *ops]:
        names[op.name] = forward(op)
        if not op.builtin:
            names[f"d_{op.name}"] = derivative(op)
    return names


# --------------------------------------------------------------------------------------------
# The chain rule, written out
# --------------------------------------------------------------------------------------------


def chain_rule_term(upstream: str, local: Any) -> tuple[str, str]:
    """``(sign, term)`` of ``upstream × local``; written plainly where the local derivative is
    ``1.0`` or ``-1.0`` (multiplying by ±1 is exact, so the result is the same)."""
    if type(local) is float and local in (1.0, -1.0):
        return ("+" if local == 1.0 else "-"), upstream
    return "+", _binary("*", _PRODUCT, Code(upstream), local).text


class ChainRule:
    """Writes a program's backward pass as lines of Python: the chain rule in reverse
    topological order. Each seeded output's gradient starts as its seed; then each
    instruction that some gradient reached adds ``upstream gradient × local derivative`` to
    the gradient of each operand that needs one (``needed[slot]``). ``assigned`` ends as the
    slots that got a gradient.

    Replay uses it as it is; batched replay (:mod:`engine.batch`) overrides how a gradient is
    updated, how a term is written and how an instruction is handled (its layers).

    Args:
        program: the :class:`engine.program.Program`.
        needed: per slot, whether its gradient is wanted.
        seeded: per output, whether a gradient flows from it.
    """

    def __init__(self, program: Any, needed: list[bool], seeded: tuple[bool, ...]) -> None:
        self.program = program
        self.needed = needed
        self.seeded = seeded
        self.assigned: set[int] = set()
        self.lines: list[str] = []

    def run(self) -> ChainRule:
        for k, slot in enumerate(self.program.outputs):
            if self.needed[slot] and self.seeded[k]:
                self.accumulate(slot, "+", f"seeds[{k}]")
        for i in reversed(self.program.instructions):
            self.instruction(i)
        return self

    def instruction(self, i: Any) -> None:
        """The chain rule at one instruction, one line per operand that needs a gradient."""
        if i.slot not in self.assigned:
            return  # nothing flows back into this node (no seeded output depends on it)
        wanted = [k for k, parent in enumerate(i.args) if self.needed[parent]]
        if not wanted:
            return
        local = local_derivatives(i.op, operands(self.program, i), Code(f"v{i.slot}"))
        for k in wanted:
            self.accumulate(i.args[k], *self.term(i, local[k], i.args[k]))

    def term(self, i: Any, local: Any, parent: int) -> tuple[str, str]:
        """``(sign, term)``: the upstream gradient times one operand's local derivative."""
        return chain_rule_term(f"g{i.slot}", local)

    def accumulate(self, parent: int, sign: str, term: str) -> None:
        """``g_parent = ±term`` the first time, an update after that."""
        if parent in self.assigned:
            self.lines.append(self.update(parent, sign, term))
        else:
            self.lines.append(f"    g{parent} = {'-' if sign == '-' else ''}{term}")
            self.assigned.add(parent)

    def update(self, parent: int, sign: str, term: str) -> str:
        return f"    g{parent} {sign}= {term}"


# --------------------------------------------------------------------------------------------
# Whole functions
# --------------------------------------------------------------------------------------------


def slot_name(program: Any, slot: int) -> str:
    """How code names a slot: ``v<k>``, or a constant's number."""
    constants = program.constants
    return literal(constants[slot]).text if slot in constants else f"v{slot}"


def operands(program: Any, instruction: Any) -> list[Any]:
    """An instruction's operands for :func:`forward_code` and :func:`local_derivatives`:
    ``Code("v<k>")`` for a slot, the number itself for a constant."""
    constants = program.constants
    return [constants[a] if a in constants else Code(f"v{a}") for a in instruction.args]


def forward_lines(program: Any) -> list[str]:
    return [f"    v{i.slot} = {literal(forward_code(i.op, operands(program, i))).text}"
            for i in program.instructions]


def unpack_lines(program: Any) -> list[str]:
    n_in = len(program.inputs)
    lines = []
    if program.inputs:
        lines.append(f"    {_unpack(f'v{k}' for k in range(n_in))} = inputs  # {', '.join(program.inputs)}")
    if program.params:
        names = _unpack(f"v{n_in + k}" for k in range(len(program.params)))
        lines.append(f"    {names} = params  # {', '.join(program.params)}")
    return lines


def guard_operand(program: Any, operand: int | float) -> str:
    return repr(operand) if isinstance(operand, float) else slot_name(program, operand)


def guard_lines(program: Any) -> list[str]:
    lines = []
    for k, g in enumerate(program.guards):
        lhs, rhs = slot_name(program, g.lhs), guard_operand(program, g.rhs)
        lines.append(f"    if ({lhs} {g.relation} {rhs}) is not {g.outcome}: fail({k}, {lhs}, {rhs})")
    return lines


def backward(program: Any, seeded: tuple[bool, ...]) -> tuple[list[str], set[int]]:
    """The backward lines of replay, and the slots whose gradient they assign."""
    rule = ChainRule(program, program.requires_grad(), seeded).run()
    return rule.lines, rule.assigned


def leaf_grads(program: Any, assigned: set[int]) -> tuple[str, str]:
    """The input and parameter gradients as list displays (``0.0`` where none reaches)."""
    n_in, n_p = len(program.inputs), len(program.params)
    grads = [f"g{s}" if s in assigned else "0.0" for s in range(n_in + n_p)]
    return "[" + ", ".join(grads[:n_in]) + "]", "[" + ", ".join(grads[n_in:]) + "]"


def outputs_display(program: Any) -> str:
    return "[" + ", ".join(slot_name(program, s) for s in program.outputs) + "]"


def _unpack(names: Any) -> str:
    names = list(names)
    return names[0] + "," if len(names) == 1 else ", ".join(names)
