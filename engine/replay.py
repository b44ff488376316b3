"""Replay: a traced program run on new numbers, forward and backward, without building a Value.

The program's code (:mod:`engine.codegen`) is compiled once per choice of seeded outputs and
run on plain floats with the same functions the eager engine calls (each op's forward, the
helpers of :mod:`engine.ops`), so the numbers are the eager engine's, bit for bit.

Reference: the same as :mod:`engine.codegen`.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from engine import codegen
from engine.operators import to_float
from engine.ops import HELPERS


@dataclass
class Replay:
    """What one replay of a program computes.

    Attributes:
        outputs: the outputs' values, in the program's output order.
        input_grads: ``Σ_k seed_k·∂output_k/∂input`` for each input, in input order.
        param_grads: the same for each parameter, in parameter order.
        program: the program replayed.
    """

    outputs: list[float]
    input_grads: list[float]
    param_grads: list[float]
    program: Any

    def grads(self) -> dict[str, float]:
        """``{name: gradient}`` for every input and parameter."""
        return dict(zip(self.program.inputs + self.program.params, self.input_grads + self.param_grads))


class Compiled:
    """One program's replay code: its backward lines and compiled functions, made once per
    seeding (which outputs a gradient flows from)."""

    def __init__(self, program: Any) -> None:
        self.program = program
        self._backward: dict[tuple[bool, ...], tuple[list[str], set[int]]] = {}
        self._functions: dict[tuple[bool, ...], Callable[..., Any]] = {}

    def backward(self, seeded: tuple[bool, ...]) -> tuple[list[str], set[int]]:
        """The backward lines, and the slots whose gradient they assign."""
        code = self._backward.get(seeded)
        if code is None:
            code = self._backward[seeded] = codegen.backward(self.program, seeded)
        return code

    def source(self, seeded: tuple[bool, ...]) -> str:
        """``def replay(inputs, params, seeds)``: forward, guards, backward, in one body."""
        p = self.program
        lines, assigned = self.backward(seeded)
        inputs, params = codegen.leaf_grads(p, assigned)
        return "\n".join(["def replay(inputs, params, seeds):", *codegen.unpack_lines(p),
                          *codegen.forward_lines(p), *codegen.guard_lines(p), *lines,
                          f"    return {codegen.outputs_display(p)}, {inputs}, {params}"]) + "\n"

    def function(self, seeded: tuple[bool, ...], fail: Callable[..., None]) -> Callable[..., Any]:
        run = self._functions.get(seeded)
        if run is None:
            names = codegen.namespace(self.program.ops(), {h.name: h.on_floats for h in HELPERS.values()},
                                      lambda op: op.forward, lambda op: op.derivative)
            names.update({"inf": math.inf, "nan": math.nan, "fail": fail})
            exec(compile(self.source(seeded), f"<program {self.program.name}: replay>", "exec"), names)
            run = self._functions[seeded] = names["replay"]
        return run


def run(program: Any, inputs: Sequence[Any], params: Sequence[Any] | None, seeds: Any,
        fail: Callable[..., None]) -> Replay:
    """Replay ``program`` on ``inputs`` (see :meth:`engine.program.Program.__call__`);
    ``fail(index, lhs, rhs)`` raises for a failed guard."""
    if isinstance(inputs, numbers.Number) or isinstance(params, numbers.Number):
        raise TypeError(f"call a program with its inputs as one list, "
                        f"program([{', '.join(program.inputs)}]), and its parameters (if any) as a "
                        f"second list")
    values = floats(inputs, "inputs")
    if len(values) != len(program.inputs):
        raise ValueError(f"program {program.name!r} takes {len(program.inputs)} inputs "
                         f"({', '.join(program.inputs)}), got {len(values)}")
    theta = program.param_values() if params is None else floats(params, "params")
    if len(theta) != len(program.params):
        raise ValueError(f"program {program.name!r} has {len(program.params)} parameters, got {len(theta)}")
    given = _seeds(program, seeds)
    seeded = tuple(s is not None for s in given)
    outputs, input_grads, param_grads = program.replays.function(seeded, fail)(values, theta, given)
    return Replay(outputs, input_grads, param_grads, program)


def _seeds(program: Any, seeds: Any) -> list[float | None]:
    if seeds is None:
        return [1.0] * len(program.outputs)
    if isinstance(seeds, numbers.Real):
        return [float(seeds)] * len(program.outputs)
    seeds = list(seeds)
    if len(seeds) != len(program.outputs):
        raise ValueError(f"{len(seeds)} seeds for the {len(program.outputs)} outputs of program "
                         f"{program.name!r}: give one per output (a number, or None)")
    return [None if s is None else floats([s], "seeds")[0] for s in seeds]


def floats(values: Any, what: str) -> list[float]:
    """``values`` (a list or array of numbers) as a list of floats.

    Raises:
        ValueError: something in it is not a real number, or it is nested.
    """
    if hasattr(values, "tolist"):
        values = values.tolist()
    try:
        return [v if type(v) is float else to_float(v) for v in values]
    except TypeError as error:
        raise ValueError(f"{what} must be a flat list of numbers: {error}") from None
