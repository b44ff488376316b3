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

The parts: this module runs the function and builds the program (:mod:`engine.program`, the
listing); :mod:`engine.codegen` writes its code by running the op table's own functions
(:mod:`engine.ops`) on code operands, so an op added to the table is traceable as it is;
:mod:`engine.replay` and :mod:`engine.batch` run that code. Code is generated only from the op
table and from numbers (constants, written as float literals), never from strings a user
passed in: names and labels appear only in comments, quoted with escapes if they hold a line
break.

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

import inspect
import numbers
from collections.abc import Callable, Sequence
from typing import Any

from engine.gc_pause import gc_paused
from engine.grad_mode import TracingError, recording
from engine.program import Guard, GuardFailed, Instruction, Program
from engine.value import Value, topological_order


def _printable(name: str) -> str:
    """A name as it may appear in a listing and in the generated code's comments: as it is,
    or quoted with its escapes (``'a\\nb'``) if it holds a line break or another unprintable
    character, so no label can end a comment and become code."""
    return name if name.isprintable() else repr(name)


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

    recorder = _Recorder()
    with gc_paused():  # (speed: see engine.gc_pause)
        with recording(recorder):
            outputs = _outputs(fn(*placeholders))
        return _build(str(name or getattr(fn, "__name__", "program")), input_leaves, outputs, recorder,
                      params)


class _Recorder:
    """What a trace records beyond the graph (see :func:`engine.value.recording`): the
    comparisons made on Values, and the leaves made during the call (its constants)."""

    def __init__(self) -> None:
        self.comparisons: list[tuple[str, Value, Any, bool]] = []
        self.constants: set[Value] = set()


def _build(name: str, input_leaves: list[Value], outputs: list[Value], recording: _Recorder,
           params: Any) -> Program:
    roots = outputs + [x for relation, a, b, _ in recording.comparisons for x in (a, b)
                       if isinstance(x, Value)]
    order = topological_order(*roots)  # one walk for every output, not one per output
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
    named_set = set(named)  # (once: rebuilt per node, it made tracing quadratic in the program's size)
    numbers_ = [n for n in order if n.op is None and n not in named_set]  # operands, or leaves not in params
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


__all__ = ["TracingError", "trace", "traced"]
