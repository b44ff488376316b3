"""Replay: a traced program run on new numbers, forward and backward, without building a Value.

The program's code (:mod:`engine.codegen`) is compiled once per choice of seeded outputs and
run on plain floats with the same functions the eager engine calls (each op's forward, the
helpers of :mod:`engine.ops`), so the numbers are the eager engine's, bit for bit. The
arguments of a batched replay (:mod:`engine.batch`) are checked here too, as a replay's are.

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


# --------------------------------------------------------------------------------------------
# The arguments of a batched replay (engine.batch), checked as those of one replay are


def batch_arguments(np: Any, program: Any, X: Any, params: Any,
                    seeds: Any) -> tuple[Any, Any, tuple[bool, ...]]:
    """``(X, theta, seeded)`` for :meth:`engine.program.Program.batch`: ``X`` as an ``(N,
    inputs)`` float array, the parameters as a vector, and which outputs are seeded.

    Raises:
        ValueError: a wrongly shaped or non-numeric ``X``, ``params`` or ``seeds``.
    """
    X = real_array(np, X, "X")
    n_in = len(program.inputs)
    if X.ndim == 1 and n_in == 1:
        X = X[:, None]
    if X.ndim != 2 or X.shape[1] != n_in:
        raise ValueError(f"program {program.name!r} takes {n_in} inputs per sample: X must have shape "
                         f"(N, {n_in}), got {X.shape}")
    N = X.shape[0]
    if N == 0:
        raise ValueError("the batch is empty: X has no rows")
    theta = real_array(np, program.param_values() if params is None else params, "params").reshape(-1)
    if theta.shape != (len(program.params),):
        raise ValueError(f"program {program.name!r} has {len(program.params)} parameters, got {theta.size}")
    # A list of numbers, None and arrays is one seed per output; a list of lists is read as an
    # (N, outputs) array, one row per sample, as X is.
    listed = isinstance(seeds, (list, tuple)) and not any(isinstance(s, (list, tuple)) for s in seeds)
    if listed and len(seeds) != len(program.outputs):
        raise ValueError(f"{len(seeds)} seeds for the {len(program.outputs)} outputs of program "
                         f"{program.name!r}: give one per output (a number, an (N,) array, or None)")
    seeded = tuple(not (listed and seeds[k] is None) for k in range(len(program.outputs)))
    return X, theta, seeded


def real_array(np: Any, values: Any, what: str) -> Any:
    """``values`` as a float array; ``ValueError`` for anything but real numbers (bool,
    complex, strings and ragged lists are refused, as replay on floats refuses them)."""
    try:
        array = np.asarray(values)
    except ValueError as error:  # ragged nested lists
        raise ValueError(f"{what} must be a rectangular array of numbers: {error}") from None
    if array.dtype.kind not in "iuf":
        raise ValueError(f"{what} must hold real numbers (int or float), got {array.dtype} values")
    return array.astype(float, copy=False)


def batch_seeds(np: Any, program: Any, varying: list[bool], seeds: Any, N: int) -> list[Any]:
    """Per output: an ``(N,)`` array for a varying output, the batch's sum for a uniform one
    (``None`` for an output given no seed)."""
    n_out = len(program.outputs)
    if isinstance(seeds, (list, tuple)) and not any(isinstance(s, (list, tuple)) for s in seeds):
        # one seed (a number or an (N,) array) per output, or None (the code reads no seed there)
        result: list[Any] = []
        for k, (x, slot) in enumerate(zip(seeds, program.outputs)):
            if x is None:
                result.append(None)
                continue
            column = real_array(np, x, f"seed {k}")
            if column.shape not in ((), (N,)):
                raise ValueError(f"seed {k} must be a number or an (N,) array for N = {N}, got shape "
                                 f"{column.shape}")
            column = np.broadcast_to(column, (N,))
            result.append(np.ascontiguousarray(column) if varying[slot] else float(column.sum()))
        return result
    s = np.ones((N, n_out)) if seeds is None else real_array(np, seeds, "seeds")
    if s.ndim == 0 or s.shape == (N,):
        s = np.broadcast_to(s.reshape(-1, 1) if s.ndim else s, (N, n_out))
    if s.shape != (N, n_out):
        raise ValueError(f"seeds must be a number, an (N,) or an (N, {n_out}) array for N = {N}, got "
                         f"shape {s.shape}")
    return [np.ascontiguousarray(s[:, k]) if varying[slot] else float(s[:, k].sum())
            for k, slot in enumerate(program.outputs)]
