"""Tracing: run a function once on Values, keep its graph as a flat program, replay it fast.

The eager engine builds a Python object per scalar op on every call. A traced :class:`Program`
is the same graph written down once, as a list of instructions in topological order, one
per op, in single-assignment form::

    >>> import engine
    >>> from engine import Value
    >>> w, b = [Value(0.5, "w0"), Value(0.25, "w1")], Value(0.1, "b")
    >>> def neuron(x):
    ...     return (w[0] * x[0] + w[1] * x[1] + b).tanh()
    >>> program = engine.trace(neuron, [1.0, -2.0])
    >>> print(program)
    program neuron(x[0], x[1]; w0, w1, b) -> out
      %0 = input x[0]
      %1 = input x[1]
      %2 = param w0
      %3 = param w1
      %4 = param b
      %5 = mul %2 %0
      %6 = mul %3 %1
      %7 = add %5 %6
      %8 = add %7 %4
      %9 = tanh %8
      return %9
    >>> program([2.0, 0.0], [0.5, 0.25, 0.1]).outputs   # tanh(0.5·2 + 0.25·0 + 0.1)
    [0.8004990217606297]

From the program, code is generated: :meth:`Program.forward_source` (the forward pass as
straight-line Python) and :meth:`Program.backward_source` (the chain rule written out, one line
per local derivative). Calling the program runs that code on new numbers, without building a
single Value; :meth:`Program.batch` runs it over a whole batch with numpy (see
:mod:`engine.batch`).

Where the code comes from: every op's forward and local derivatives are expression text in
the op table (:class:`engine.value.Op`); the generator substitutes slot names for the
operand names in that text. Nothing else about an op is written here, so an op added to the
table is traceable as it is. Code is generated only from the op table and from numbers
(constants, written as float literals), never from strings a user passed in: names and
labels appear only in comments, quoted with escapes if they hold a line break.

Control flow: tracing records one path. Every comparison made on a traced Value (``<``,
``<=``, ``>``, ``>=``, and ``if value:``) becomes a **guard**; replaying on numbers that would
take another branch raises :class:`GuardFailed` naming the comparison (or, with
:func:`traced`, traces the function again for the new path). Reading ``.data`` of a traced
Value is not seen and bakes the number in; ``float(value)``, ``detach()`` and ``no_grad()``
raise :class:`TracingError`.

Which leaves are what: the numbers in ``example_args`` become **inputs** (named after the
function's parameters, ``x[0]``, ``x[1]``, ...); numbers met as operands (the ``2`` in
``2 * x``) and Values the function creates become **constants**; every other leaf the
outputs depend on (a model's weights, a Value the function closes over) is a **parameter**,
named by its label or ``p<k>``. Pass ``params=model`` (or a list of Values) to fix the
parameters and their order.

Reference: tracing as in ``torch.jit.trace`` and JAX's ``jax.make_jaxpr`` (PyTorch and JAX
documentation), with guards as in TorchDynamo; source-to-source reverse mode as in Griewank
and Walther, *Evaluating Derivatives* (2nd ed., SIAM 2008), ch. 3 and 6.
"""

from __future__ import annotations

import ast
import copy
import inspect
import math
import numbers
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from engine import operators as F
from engine import value as _value
from engine.value import Op, TracingError, Value, topological_order


@dataclass(frozen=True)
class Instruction:
    """``%slot = op %args...``: one op applied to earlier slots."""

    slot: int
    op: Op
    args: tuple[int, ...]


@dataclass(frozen=True)
class Guard:
    """A comparison made while tracing, ``%lhs relation rhs``, and the outcome the program's
    path depends on. ``rhs`` is a slot (``int``) or a plain number (``float``)."""

    relation: str
    lhs: int
    rhs: int | float
    outcome: bool


RELATIONS: dict[str, Callable[[Any, Any], Any]] = {
    "<": lambda a, b: a < b, "<=": lambda a, b: a <= b, ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b, "!=": lambda a, b: a != b,
}


class GuardFailed(ValueError):
    """Replayed inputs take a different branch than the traced ones: a comparison made while
    tracing comes out the other way. ``guard`` is the :class:`Guard`; ``sample`` the first
    sample of a batch that fails it (``None`` for a single replay)."""

    def __init__(self, program: Program, index: int, lhs: float, rhs: float,
                 sample: int | None = None) -> None:
        guard = program.guards[index]
        self.guard = guard
        self.sample = sample
        where = f" (sample {sample} of the batch)" if sample is not None else ""
        super().__init__(
            f"guard {index} of program {program.name!r} fails{where}: "
            f"{program.label(guard.lhs)} {guard.relation} {program.label(guard.rhs)} was "
            f"{guard.outcome} when traced, but is {not guard.outcome} here ({lhs!r} {guard.relation} "
            f"{rhs!r}); the function takes another branch for these inputs: trace it again on "
            f"them (engine.traced does that by itself)")


@dataclass
class Replay:
    """What one replay of a program computes.

    Attributes:
        outputs: the outputs' values, in the program's output order.
        input_grads: ``Σ_k seed_k·∂output_k/∂input`` for each input, in input order.
        param_grads: the same for each parameter, in parameter order.
    """

    outputs: list[float]
    input_grads: list[float]
    param_grads: list[float]
    program: Program

    def grads(self) -> dict[str, float]:
        """``{name: gradient}`` for every input and parameter."""
        return dict(zip(self.program.inputs + self.program.params, self.input_grads + self.param_grads))


class Program:
    """A traced function: slots ``%0, %1, ...`` holding the inputs, then the parameters, then
    one slot per instruction, in topological order (each slot assigned once: single
    assignment), then the constants, which the listing and the code write as numbers.

    Attributes:
        name: the traced function's name.
        inputs, params: the names of the input and parameter slots, in slot order.
        constants: ``{slot: number}``.
        instructions: the ops, in topological order (operands before results).
        outputs: the output slots; ``output_names`` their names (``out`` or ``out[k]``).
        guards: the comparisons the traced path depends on.
        example: every slot's number when traced.
        param_leaves: the parameter Values themselves (a model's weights): replay without
            ``params`` reads their current numbers.

    Call it (``program(inputs, params)``) for one replay on floats, or :meth:`batch` for a
    batch of samples on numpy arrays.
    """

    def __init__(self, name: str, inputs: list[str], params: list[str], param_leaves: list[Value],
                 constants: dict[int, float], instructions: list[Instruction], outputs: list[int],
                 output_names: list[str], guards: list[Guard], example: list[float]) -> None:
        self.name = name
        self.inputs = inputs
        self.params = params
        self.param_leaves = param_leaves
        self.constants = constants
        self.instructions = instructions
        self.outputs = outputs
        self.output_names = output_names
        self.guards = guards
        self.example = example
        self._compiled: dict[tuple[bool, ...], Callable[..., Any]] = {}  # by which outputs are seeded
        self._backward_code: dict[tuple[bool, ...], tuple[list[str], set[int]]] = {}
        self._batch: dict[tuple[bool, tuple[bool, ...]], Any] = {}

    # ---------------------------------------------------------------------------------------
    # Reading it

    @property
    def n_slots(self) -> int:
        return len(self.example)

    def kind(self, slot: int) -> str:
        """``"input"``, ``"param"``, ``"constant"`` or ``"op"``."""
        if slot < len(self.inputs):
            return "input"
        if slot < len(self.inputs) + len(self.params):
            return "param"
        return "constant" if slot in self.constants else "op"

    def describe(self, operand: int | float) -> str:
        """How the listing shows an operand: ``%k`` for a slot, a constant as its number."""
        if isinstance(operand, float):
            return repr(operand)
        return repr(self.constants[operand]) if operand in self.constants else f"%{operand}"

    def label(self, operand: int | float) -> str:
        """An operand for messages: an input's or parameter's name, else as :meth:`describe`."""
        if isinstance(operand, int) and self.kind(operand) in ("input", "param"):
            return (self.inputs + self.params)[operand]
        return self.describe(operand)

    def __str__(self) -> str:
        outputs = ", ".join(self.output_names)
        params = f"; {', '.join(self.params)}" if self.params else ""
        lines = [f"program {self.name}({', '.join(self.inputs)}{params}) -> {outputs}"]
        lines += [f"  %{k} = input {name}" for k, name in enumerate(self.inputs)]
        lines += [f"  %{len(self.inputs) + k} = param {name}" for k, name in enumerate(self.params)]
        lines += [f"  %{i.slot} = {i.op.name} {' '.join(self.describe(a) for a in i.args)}"
                  for i in self.instructions]
        for g in self.guards:
            line = f"  guard {self.describe(g.lhs)} {g.relation} {self.describe(g.rhs)} is {g.outcome}"
            named = f"{self.label(g.lhs)} {g.relation} {self.label(g.rhs)}"
            lines.append(line + (f"  # {named}" if named not in line else ""))
        lines.append("  return " + ", ".join(self.describe(s) for s in self.outputs))
        return "\n".join(lines)

    def __repr__(self) -> str:
        return (f"<Program {self.name}: {len(self.inputs)} inputs, {len(self.params)} params, "
                f"{len(self.instructions)} instructions, {len(self.guards)} guards>")

    # ---------------------------------------------------------------------------------------
    # Code generation

    def forward_source(self) -> str:
        """The forward pass as straight-line Python: ``def forward(inputs, params)``
        returning the list of outputs."""
        lines = ["def forward(inputs, params):", *self._unpack_lines(),
                 *self._forward_lines(), f"    return [{', '.join(self._name(s) for s in self.outputs)}]"]
        return "\n".join(lines) + "\n"

    def backward_source(self) -> str:
        """The backward pass as straight-line Python: the chain rule in reverse topological
        order, ``g_parent += g_node * (local derivative)``, one line per operand, each
        local derivative the op table's expression with this program's slots substituted.
        It runs after the forward lines, reading their values ``v<k>``; ``g<k>`` is
        ∂(Σ seed·output)/∂%k."""
        seeded = self._all_seeded()
        inputs, params = self._leaf_grads(seeded)
        return "\n".join(["def backward(seeds):  # after forward: v<k> are its values",
                          *self._backward(seeded)[0], f"    return {inputs}, {params}"]) + "\n"

    def batch_source(self, input_grads: bool = True) -> str:
        """The function that :meth:`batch` runs, on numpy arrays: layers as matrix products
        (see :mod:`engine.batch`), every other instruction one numpy expression."""
        from engine.batch import Lowering

        return Lowering(self, input_grads, (True,) * len(self.outputs)).source()

    def source(self, seeded: tuple[bool, ...] | None = None) -> str:
        """The function that replay runs: forward, guards, backward, in one body.
        ``seeded``: which outputs the backward pass starts from (default: all)."""
        seeded = seeded or self._all_seeded()
        return "\n".join(["def replay(inputs, params, seeds):", *self._unpack_lines(),
                          *self._forward_lines(), *self._guard_lines(), *self._backward(seeded)[0],
                          self._return_all_line(seeded)]) + "\n"

    def _all_seeded(self) -> tuple[bool, ...]:
        return (True,) * len(self.outputs)

    def _name(self, slot: int) -> str:
        return self.describe(slot) if slot in self.constants else f"v{slot}"

    def _unpack_lines(self) -> list[str]:
        n_in = len(self.inputs)
        lines = []
        if self.inputs:
            lines.append(f"    {_unpack(f'v{k}' for k in range(n_in))} = inputs  # {', '.join(self.inputs)}")
        if self.params:
            names = _unpack(f"v{n_in + k}" for k in range(len(self.params)))
            lines.append(f"    {names} = params  # {', '.join(self.params)}")
        return lines

    def _forward_lines(self) -> list[str]:
        return [f"    v{i.slot} = {self.expression(i.op.source, i, None)}" for i in self.instructions]

    def _guard_lines(self) -> list[str]:
        return [f"    if ({self._name(g.lhs)} {g.relation} {self._operand(g.rhs)}) is not {g.outcome}: "
                f"fail({k}, {self._name(g.lhs)}, {self._operand(g.rhs)})"
                for k, g in enumerate(self.guards)]

    def _operand(self, operand: int | float) -> str:
        return repr(operand) if isinstance(operand, float) else self._name(operand)

    def expression(self, source: str, instruction: Instruction, operand: int | None,
                   names: Callable[[int], str] | None = None) -> str:
        """An op table expression with the operand names replaced: ``a``, ``b`` by the
        instruction's argument slots, ``out`` by its own slot, ``xs`` by all arguments and
        ``x`` by argument number ``operand``."""
        name = names or self._name
        op, args = instruction.op, instruction.args
        used = _names_in(source)
        if op.arity:
            mapping = {n: name(s) for n, s in zip(("a", "b"), args) if n in used}
        else:
            mapping = {"xs": "(" + "".join(f"{name(s)}, " for s in args) + ")"} if "xs" in used else {}
            if operand is not None and "x" in used:
                mapping["x"] = name(args[operand])
        if "out" in used:
            mapping["out"] = name(instruction.slot)
        return _substitute(source, mapping) if mapping else source

    def requires_grad(self) -> list[bool]:
        """Per slot: does any input or parameter reach it (so its gradient is needed)?"""
        needed = [self.kind(s) in ("input", "param") for s in range(self.n_slots)]
        for i in self.instructions:
            needed[i.slot] = any(needed[a] for a in i.args)
        return needed

    def _backward(self, seeded: tuple[bool, ...]) -> tuple[list[str], set[int]]:
        """The backward lines, and the slots whose gradient they assign (made once)."""
        code = self._backward_code.get(seeded)
        if code is None:
            rule = ChainRule(self, self.requires_grad(), seeded).run()
            code = self._backward_code[seeded] = (rule.lines, rule.assigned)
        return code

    def _leaf_grads(self, seeded: tuple[bool, ...]) -> tuple[str, str]:
        assigned = self._backward(seeded)[1]
        n_in, n_p = len(self.inputs), len(self.params)
        grads = [f"g{s}" if s in assigned else "0.0" for s in range(n_in + n_p)]
        return "[" + ", ".join(grads[:n_in]) + "]", "[" + ", ".join(grads[n_in:]) + "]"

    def _return_all_line(self, seeded: tuple[bool, ...]) -> str:
        inputs, params = self._leaf_grads(seeded)
        return f"    return [{', '.join(self._name(s) for s in self.outputs)}], {inputs}, {params}"

    # ---------------------------------------------------------------------------------------
    # Replay

    def param_values(self) -> list[float]:
        """The parameters' current numbers (their leaves' ``data``)."""
        return [p.data for p in self.param_leaves]

    def _check(self, inputs: Sequence[Any], params: Sequence[Any] | None) -> tuple[list[float], list[float]]:
        if isinstance(inputs, numbers.Number) or isinstance(params, numbers.Number):
            raise TypeError(f"call a program with its inputs as one list, "
                            f"program([{', '.join(self.inputs)}]), and its parameters (if any) as a "
                            f"second list")
        values = _floats(inputs, "inputs")
        if len(values) != len(self.inputs):
            raise ValueError(f"program {self.name!r} takes {len(self.inputs)} inputs "
                             f"({', '.join(self.inputs)}), got {len(values)}")
        theta = self.param_values() if params is None else _floats(params, "params")
        if len(theta) != len(self.params):
            raise ValueError(f"program {self.name!r} has {len(self.params)} parameters, got {len(theta)}")
        return values, theta

    def _seeds(self, seeds: Any) -> list[float | None]:
        if seeds is None:
            return [1.0] * len(self.outputs)
        if isinstance(seeds, numbers.Real):
            return [float(seeds)] * len(self.outputs)
        seeds = list(seeds)
        if len(seeds) != len(self.outputs):
            raise ValueError(f"{len(seeds)} seeds for the {len(self.outputs)} outputs of program "
                             f"{self.name!r}: give one per output (a number, or None)")
        return [None if s is None else _floats([s], "seeds")[0] for s in seeds]

    def __call__(self, inputs: Sequence[float], params: Sequence[float] | None = None,
                 seeds: Sequence[float] | float | None = None) -> Replay:
        """Replay forward and backward on new numbers.

        Args:
            inputs: one number per input, in the order of :attr:`inputs`.
            params: one number per parameter; ``None`` reads the parameter leaves' current
                ``data``.
            seeds: the upstream gradient of each output (default ``1.0`` each, so the
                gradients are those of the sum of the outputs, as ``backward`` on it); a
                list may hold ``None`` for an output no gradient flows from.

        Returns:
            A :class:`Replay`: outputs, input gradients and parameter gradients, equal to the
            eager engine's on the same numbers (the same operations in the same order).

        Raises:
            ValueError: the wrong number of inputs, parameters or seeds, or non-numbers.
            TypeError: the inputs given as separate numbers rather than one list.
            GuardFailed: these inputs take another branch than the traced ones.
        """
        values, theta = self._check(inputs, params)
        given = self._seeds(seeds)
        seeded = tuple(s is not None for s in given)
        run = self._compiled.get(seeded)
        if run is None:
            run = self._compiled[seeded] = self._compile(self.source(seeded), "replay")
        outputs, input_grads, param_grads = run(values, theta, given)
        return Replay(outputs, input_grads, param_grads, self)

    def _fail(self, index: int, lhs: float, rhs: float) -> None:
        raise GuardFailed(self, index, lhs, rhs)

    def _compile(self, source: str, name: str) -> Callable[..., Any]:
        namespace: dict[str, Any] = {**F.FUNCTIONS, "inf": F.inf, "nan": F.nan, "fail": self._fail}
        exec(compile(source, f"<program {self.name}: {name}>", "exec"), namespace)
        function: Callable[..., Any] = namespace[name]
        return function

    def batch(self, X: Any, params: Any = None, seeds: Any = None, input_grads: bool = True) -> Any:
        """Replay over a batch of samples at once with numpy (see :mod:`engine.batch`).

        Args:
            X: an ``(N, len(inputs))`` array-like, one row per sample.
            params: ``len(params)`` numbers, shared by every sample (default: the leaves').
            seeds: each sample's upstream gradient of each output: a number, an ``(N,)`` or
                an ``(N, len(outputs))`` array (default 1; a nested list is read as that
                array, one row per sample, as ``X`` is), or a list with one number, ``(N,)``
                numpy array or ``None`` per output (``None``: no gradient flows from it).
            input_grads: also compute the per-sample input gradients.

        Returns:
            A :class:`engine.batch.BatchReplay`: ``outputs`` ``(N, len(outputs))``,
            ``input_grads`` ``(N, len(inputs))`` (or ``None``) and ``param_grads``
            ``(len(params),)``, the parameter gradients summed over the batch (as the eager
            engine's would be for the sum of every sample's seeded outputs).

        Raises:
            ImportError: numpy is not installed (``pip install 'valuegrad[fast]'``).
            ValueError: a wrongly shaped ``X``, ``params`` or ``seeds``.
            GuardFailed: a sample takes another branch than the traced inputs.
        """
        from engine.batch import run_batch

        return run_batch(self, X, params, seeds, input_grads)


class ChainRule:
    """Writes a program's backward pass as lines of Python: the chain rule in reverse
    topological order. Each seeded output's gradient starts as its seed; then each
    instruction that some gradient reached adds ``upstream gradient × local derivative`` to
    the gradient of each operand that needs one (``needed[slot]``). ``assigned`` ends as the
    slots that got a gradient.

    Replay uses it as it is; batched replay (:mod:`engine.batch`) overrides how a gradient
    is updated, how a term is written and how an instruction is handled (its layers).
    """

    def __init__(self, program: Program, needed: list[bool], seeded: tuple[bool, ...]) -> None:
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

    def instruction(self, i: Instruction) -> None:
        """The chain rule at one instruction, one line per operand that needs a gradient."""
        if i.slot not in self.assigned:
            return  # nothing flows back into this node (no seeded output depends on it)
        for k, parent in enumerate(i.args):
            if self.needed[parent]:
                self.accumulate(parent, *self.term(i, k, parent))

    def term(self, i: Instruction, k: int, parent: int) -> tuple[str, str]:
        """``(sign, term)``: the upstream gradient times operand ``k``'s local derivative."""
        local = self.program.expression(i.op.derivative_source[k if i.op.arity else 0], i, k)
        return _chain_rule(f"g{i.slot}", local)

    def accumulate(self, parent: int, sign: str, term: str) -> None:
        """``g_parent = ±term`` the first time, an update after that."""
        if parent in self.assigned:
            self.lines.append(self.update(parent, sign, term))
        else:
            self.lines.append(f"    g{parent} = {'-' if sign == '-' else ''}{term}")
            self.assigned.add(parent)

    def update(self, parent: int, sign: str, term: str) -> str:
        return f"    g{parent} {sign}= {term}"


def _unpack(names: Any) -> str:
    names = list(names)
    return names[0] + "," if len(names) == 1 else ", ".join(names)


def _chain_rule(upstream: str, local: str) -> tuple[str, str]:
    """``(sign, term)`` of ``upstream × local``, written plainly where the local derivative
    is ``1.0`` or ``-1.0`` (multiplying by ±1 is exact, so the result is the same)."""
    if local == "1.0":
        return "+", upstream
    if local == "-1.0":
        return "-", upstream
    atom = isinstance(ast.parse(local, mode="eval").body, (ast.Name, ast.Constant, ast.Call))
    return "+", f"{upstream} * {local}" if atom else f"{upstream} * ({local})"


class _Rename(ast.NodeTransformer):
    def __init__(self, mapping: dict[str, ast.expr]) -> None:
        self.mapping = mapping

    def visit_Name(self, node: ast.Name) -> ast.expr:
        return self.mapping.get(node.id, node)


_PARSED: dict[str, ast.Expression] = {}


def _parsed(source: str) -> ast.Expression:
    tree = _PARSED.get(source)
    if tree is None:
        tree = _PARSED[source] = ast.parse(source, mode="eval")
    return tree


def _names_in(source: str) -> set[str]:
    """The names an op table expression uses."""
    return {n.id for n in ast.walk(_parsed(source)) if isinstance(n, ast.Name)}


def _substitute(source: str, mapping: dict[str, str]) -> str:
    """``source`` (an op table expression) with its operand names replaced by ``mapping``'s
    (slot names, literals or tuples of them), as Python text."""
    tree = _parsed(source)
    replacements = {k: ast.parse(v, mode="eval").body for k, v in mapping.items()}
    renamed = _Rename(replacements).visit(copy.deepcopy(tree))
    return ast.unparse(_Fold().visit(renamed) if mapping else renamed)


class _Fold(ast.NodeTransformer):
    """Work out, at generation time, the parts of an expression whose operands are all
    numbers (the constants of a program): ``where(eq(2.0, 0.0) & …, 0.0, 2.0 * pow(v1, 2.0 -
    1.0))`` becomes ``2.0 * pow(v1, 1.0)``. Each part is evaluated with the same float
    functions the code would call, so the result is the number the code would compute."""

    _BINARY: dict[type, Callable[[Any, Any], Any]] = {
        ast.Add: lambda a, b: a + b, ast.Sub: lambda a, b: a - b, ast.Mult: lambda a, b: a * b,
        ast.BitAnd: lambda a, b: a & b, ast.BitOr: lambda a, b: a | b,
    }

    def visit_UnaryOp(self, node: ast.UnaryOp) -> ast.expr:
        self.generic_visit(node)
        if isinstance(node.op, ast.USub) and _number(node.operand):
            return _literal(-node.operand.value)  # type: ignore[attr-defined]
        return node

    def visit_BinOp(self, node: ast.BinOp) -> ast.expr:
        self.generic_visit(node)
        known = self._BINARY.get(type(node.op))
        if known is not None and _number(node.left) and _number(node.right):
            try:
                return _literal(known(node.left.value, node.right.value))  # type: ignore[attr-defined]
            except TypeError:  # (& or | of floats): left for the code to report
                return node
        if isinstance(node.op, (ast.BitAnd, ast.BitOr)):  # a known side decides: False & c, True | c
            decisive = isinstance(node.op, ast.BitOr)
            for side in (node.left, node.right):
                if _number(side) and side.value is decisive:  # type: ignore[attr-defined]
                    return _literal(decisive)
        return node

    def visit_Call(self, node: ast.Call) -> ast.expr:
        self.generic_visit(node)
        name = node.func.id if isinstance(node.func, ast.Name) else None
        if name == "where" and len(node.args) == 3 and _number(node.args[0]):
            return node.args[1] if node.args[0].value else node.args[2]  # type: ignore[attr-defined]
        if name in F.FUNCTIONS and name != "sum" and node.args and all(_number(a) for a in node.args):
            return _literal(F.FUNCTIONS[name](*[a.value for a in node.args]))  # type: ignore[attr-defined]
        return node


def _number(node: ast.expr) -> bool:
    return isinstance(node, ast.Constant) and isinstance(node.value, (bool, float))


def _literal(value: Any) -> ast.expr:
    """A float or bool as an expression; a negative number as ``-x`` (as Python writes it)."""
    if isinstance(value, float) and math.copysign(1.0, value) < 0 and value == value:
        return ast.UnaryOp(ast.USub(), ast.Constant(-value))
    return ast.Constant(value)


def _printable(name: str) -> str:
    """A name as it may appear in a listing and in the generated code's comments: as it is,
    or quoted with its escapes (``'a\\nb'``) if it holds a line break or another unprintable
    character, so no label can end a comment and become code."""
    return name if name.isprintable() else repr(name)


def _floats(values: Any, what: str) -> list[float]:
    if hasattr(values, "tolist"):
        values = values.tolist()
    try:
        out = [v if type(v) is float else _value._to_float(v) for v in values]
    except TypeError as error:
        raise ValueError(f"{what} must be a flat list of numbers: {error}") from None
    return out


# --------------------------------------------------------------------------------------------
# Tracing
# --------------------------------------------------------------------------------------------


def _placeholders(example: Any, name: str, leaves: list[Value]) -> Any:
    """``example`` with each number replaced by a new leaf named after its place (``x[1]``)."""
    if isinstance(example, Value):
        raise TypeError(f"trace: argument {name} is a Value; pass plain numbers as example inputs "
                        f"(Values a function uses without taking them as arguments are parameters)")
    if isinstance(example, numbers.Real) and not isinstance(example, bool):
        leaf = Value(float(example), name)
        leaves.append(leaf)
        return leaf
    if hasattr(example, "tolist"):
        example = example.tolist()
    if isinstance(example, (list, tuple)):
        return [_placeholders(x, f"{name}[{k}]", leaves) for k, x in enumerate(example)]
    raise TypeError(f"trace: example argument {name} must be a number or a (nested) list of "
                    f"numbers, got {type(example).__name__}")


def _outputs(result: Any) -> list[Value]:
    flat = list(result) if isinstance(result, (list, tuple)) else [result]
    if not flat:
        raise TypeError("trace: the function returned no Values (an empty list)")
    for out in flat:
        if not isinstance(out, Value):
            raise TypeError(f"trace: the function must return a Value or a list of Values, "
                            f"got {type(out).__name__} among its outputs")
    return flat


def _parameters(params: Any) -> tuple[list[str], list[Value]]:
    if hasattr(params, "named_parameters"):  # an nn.Module
        named = list(params.named_parameters())
        return [n for n, _ in named], [p for _, p in named]
    leaves = list(params)
    for p in leaves:
        if not isinstance(p, Value) or not p.is_leaf:
            raise TypeError("trace: params must be a Module or a list of leaf Values")
    if len(set(leaves)) != len(leaves):
        twice = next(p for p in leaves if leaves.count(p) > 1)
        raise ValueError(f"trace: params lists the Value {twice!r} more than once")
    return [p.label or f"p{k}" for k, p in enumerate(leaves)], leaves


def _argument_names(fn: Callable[..., Any], n: int) -> list[str]:
    """Names for ``n`` arguments of ``fn``: its parameters' names (``v[0]``, ``v[1]``, ...
    for ``*v``), ``arg<k>`` where it has none."""
    names: list[str] = []
    try:
        parameters = list(inspect.signature(fn).parameters.values())
    except (TypeError, ValueError):
        parameters = []
    for parameter in parameters:
        if parameter.kind is inspect.Parameter.VAR_POSITIONAL:
            names += [f"{parameter.name}[{k}]" for k in range(n - len(names))]
            break
        if parameter.kind in (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD):
            names.append(parameter.name)
    return names[:n] + [f"arg{k}" for k in range(len(names), n)]


def trace(fn: Callable[..., Any], *example_args: Any, params: Any = None,
          name: str | None = None) -> Program:
    """Run ``fn`` once on placeholder leaves holding ``example_args`` and return its
    :class:`Program`.

    Args:
        fn: a function of numbers (or lists of numbers) that computes with Values and
            returns a Value or a list of Values.
        example_args: the numbers to trace with, one per parameter of ``fn``.
        params: a Module or a list of leaf Values: the parameters, in order (default: every
            leaf the outputs depend on that is neither an input nor made during the call).
            Given, any other leaf is a constant: its number is baked into the program.
        name: the program's name (default ``fn.__name__``).

    Returns:
        The :class:`Program`: its outputs equal ``fn``'s when replayed on ``example_args``.

    Raises:
        TypeError: an example argument is not a number or list of numbers, or ``fn``
            returned something other than Values.
        TracingError: ``fn`` called ``float()`` or ``detach()`` on a traced Value, or used
            ``no_grad()``.
        ValueError: ``params`` lists a Value twice.
    """
    arg_names = _argument_names(fn, len(example_args))
    input_leaves: list[Value] = []
    placeholders = [_placeholders(x, n, input_leaves) for x, n in zip(example_args, arg_names)]

    recording = _value._Tracing()
    saved = _value._tracing, _value._grad_enabled
    _value._tracing, _value._grad_enabled = recording, True
    try:
        outputs = _outputs(fn(*placeholders))
    finally:
        _value._tracing, _value._grad_enabled = saved
    return _build(str(name or getattr(fn, "__name__", "program")), input_leaves, outputs, recording, params)


def _build(name: str, input_leaves: list[Value], outputs: list[Value], recording: Any,
           params: Any) -> Program:
    roots = outputs + [x for relation, a, b, _ in recording.comparisons for x in (a, b)
                       if isinstance(x, Value)]
    order: list[Value] = []
    seen: set[Value] = set()
    for root in roots:
        if root not in seen:
            for node in topological_order(root):
                if node not in seen:
                    seen.add(node)
                    order.append(node)
    inputs = set(input_leaves)
    if params is None:
        leaves = [n for n in order if n.op is None and n not in inputs and n not in recording.constants]
        param_names = [p.label or f"p{k}" for k, p in enumerate(leaves)]
    else:
        param_names, leaves = _parameters(params)
    if len(set(param_names)) != len(param_names):  # two leaves with one label: number them
        param_names = [f"{n}#{k}" for k, n in enumerate(param_names)]
    # Slots: inputs, parameters, instructions, then constants (written inline, as numbers).
    named = [*input_leaves, *leaves]
    ops = [n for n in order if n.op is not None]
    numbers_ = [n for n in order if n.op is None and n not in set(named)]  # operands, or leaves not in params
    slot = {node: k for k, node in enumerate([*named, *ops, *numbers_])}
    example = [node.data for node in [*named, *ops, *numbers_]]
    constants = {slot[n]: n.data for n in numbers_}
    instructions = [Instruction(slot[n], n.op, tuple(slot[p] for p in n.parents)) for n in ops]  # type: ignore[arg-type]
    guards = [Guard(relation, slot[a], slot[b] if isinstance(b, Value) else float(b), bool(outcome))
              for relation, a, b, outcome in recording.comparisons]
    output_names = ["out"] if len(outputs) == 1 else [f"out[{k}]" for k in range(len(outputs))]
    return Program(_printable(name), [_printable(leaf.label or "") for leaf in input_leaves],
                   [_printable(n) for n in param_names], leaves,
                   constants, instructions, [slot[o] for o in outputs], output_names, guards, example)


class traced:
    """Decorator: trace ``fn`` on its first call and replay the program afterwards; when a
    call's inputs fail a guard, trace again on them and keep both programs (one per path).

    ``traced(fn)(*args)`` returns the :class:`Replay` of the program for ``args``
    (numbers or lists of numbers). Arguments of another shape (other list lengths) get a
    trace of their own. ``programs`` holds the traces made so far.

    Raises:
        GuardFailed: only with ``retrace=False``, when a call takes an untraced branch.
    """

    def __init__(self, fn: Callable[..., Any] | None = None, *, params: Any = None,
                 retrace: bool = True) -> None:
        self.fn = fn
        self.params = params
        self.retrace = retrace
        self.programs: list[Program] = []
        self._by_shape: list[tuple[Any, Program]] = []

    def __call__(self, *args: Any) -> Any:
        if self.fn is None:  # used as @traced(params=...): the first call passes the function
            self.fn = args[0]
            return self
        flat = [leaf.data for leaf in _leaves_of(args)]
        shape = _shape(args)
        failure: GuardFailed | None = None
        for program_shape, program in self._by_shape:
            if program_shape != shape:
                continue
            try:
                return program(flat)
            except GuardFailed as error:
                failure = error
        if failure is not None and not self.retrace:
            raise failure
        program = trace(self.fn, *args, params=self.params)
        self._by_shape.append((shape, program))
        self.programs.append(program)
        return program(flat)


def _shape(example: Any) -> Any:
    """The nesting of lists in ``example``: ``None`` for a number, else a tuple of shapes."""
    if hasattr(example, "tolist"):
        example = example.tolist()
    if isinstance(example, (list, tuple)):
        return tuple(_shape(x) for x in example)
    return None


def _leaves_of(args: Sequence[Any]) -> list[Value]:
    """The numbers of ``args`` (numbers or nested lists of them) as leaves, in input order."""
    leaves: list[Value] = []
    for k, arg in enumerate(args):
        _placeholders(arg, f"arg{k}", leaves)
    return leaves


__all__ = ["Guard", "GuardFailed", "Instruction", "Program", "Replay", "TracingError", "trace", "traced"]
