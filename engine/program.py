"""A traced program: the graph of one call written down as a flat list of instructions.

    program neuron(x[0], x[1]; w0, w1, b) -> out
      %0 = input x[0]
      ...
      %5 = mul %2 %0
      %9 = tanh %8
      return %9

Slots ``%0, %1, ...`` hold the inputs, then the parameters, then one slot per instruction in
topological order (each assigned once: single assignment), then the constants, which the
listing and the code write as numbers. :func:`engine.trace` makes programs; this module holds
what one is (:class:`Program`, :class:`Instruction`, :class:`Guard`) and how it reads. Running
one is :mod:`engine.replay` (on floats) and :mod:`engine.batch` (on numpy arrays), the code
they run comes from :mod:`engine.codegen`.

Reference: single-assignment listings as in JAX's jaxprs (``jax.make_jaxpr``) and PyTorch's
TorchScript graphs; guards as in TorchDynamo (PyTorch and JAX documentation).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from engine import batch, codegen, replay, torch_program
from engine.ops import Op


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


class GuardFailed(ValueError):
    """Replayed inputs take another branch than the traced ones: a comparison made while
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


class Program:
    """A traced function (see the module docstring).

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

    def __init__(self, name: str, inputs: list[str], params: list[str], param_leaves: list[Any],
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
        self.replays = replay.Compiled(self)  # the generated code, compiled once per seeding

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

    def ops(self) -> list[Op]:
        """The ops the program uses, each once."""
        return list({i.op.name: i.op for i in self.instructions}.values())

    def requires_grad(self) -> list[bool]:
        """Per slot: does any input or parameter reach it (so its gradient is needed)?"""
        needed = [self.kind(s) in ("input", "param") for s in range(self.n_slots)]
        for i in self.instructions:
            needed[i.slot] = any(needed[a] for a in i.args)
        return needed

    def param_values(self) -> list[float]:
        """The parameters' current numbers (their leaves' ``data``)."""
        return [p.data for p in self.param_leaves]

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
    # The code it runs (engine.codegen)

    def forward_source(self) -> str:
        """The forward pass as straight-line Python: ``def forward(inputs, params)``
        returning the list of outputs."""
        return "\n".join(["def forward(inputs, params):", *codegen.unpack_lines(self),
                          *codegen.forward_lines(self), f"    return {codegen.outputs_display(self)}"]) + "\n"

    def backward_source(self) -> str:
        """The backward pass as straight-line Python: the chain rule in reverse topological
        order, ``g_parent += g_node * (local derivative)``, one line per operand, each local
        derivative the op table's function run on this program's slots. It runs after the
        forward lines, reading their values ``v<k>``; ``g<k>`` is ∂(Σ seed·output)/∂%k."""
        lines, assigned = self.replays.backward((True,) * len(self.outputs))
        inputs, params = codegen.leaf_grads(self, assigned)
        return "\n".join(["def backward(seeds):  # after forward: v<k> are its values",
                          *lines, f"    return {inputs}, {params}"]) + "\n"

    def source(self, seeded: tuple[bool, ...] | None = None) -> str:
        """The function that replay runs: forward, guards, backward, in one body.
        ``seeded``: which outputs the backward pass starts from (default: all)."""
        return self.replays.source(seeded or (True,) * len(self.outputs))

    def batch_source(self, input_grads: bool = True) -> str:
        """The function that :meth:`batch` runs, on numpy arrays: layers as matrix products
        (see :mod:`engine.batch`), every other instruction one numpy expression."""
        return batch.Lowering(self, input_grads, (True,) * len(self.outputs)).source()

    # ---------------------------------------------------------------------------------------
    # Running it

    def __call__(self, inputs: Sequence[float], params: Sequence[float] | None = None,
                 seeds: Sequence[float] | float | None = None) -> replay.Replay:
        """Replay forward and backward on new numbers (see :func:`engine.replay.run`).

        Args:
            inputs: one number per input, in the order of :attr:`inputs`.
            params: one number per parameter; ``None`` reads the parameter leaves' ``data``.
            seeds: the upstream gradient of each output (default ``1.0`` each); a list may
                hold ``None`` for an output no gradient flows from.

        Returns:
            A :class:`engine.replay.Replay`: outputs, input and parameter gradients, equal to
            the eager engine's on the same numbers (the same operations in the same order).

        Raises:
            ValueError: the wrong number of inputs, parameters or seeds, or non-numbers.
            TypeError: the inputs given as separate numbers rather than one list.
            GuardFailed: these inputs take another branch than the traced ones.
        """
        return replay.run(self, inputs, params, seeds, self._fail)

    def batch(self, X: Any, params: Any = None, seeds: Any = None, input_grads: bool = True) -> Any:
        """Replay over a batch of samples at once with numpy (see :mod:`engine.batch`).

        Args:
            X: an ``(N, len(inputs))`` array-like, one row per sample.
            params: ``len(params)`` numbers, shared by every sample (default: the leaves').
            seeds: each sample's upstream gradient of each output: a number, an ``(N,)`` or
                an ``(N, len(outputs))`` array (default 1), or a list with one number,
                ``(N,)`` array or ``None`` per output.
            input_grads: also compute the per-sample input gradients.

        Returns:
            A :class:`engine.batch.BatchReplay`: ``outputs`` ``(N, len(outputs))``,
            ``input_grads`` ``(N, len(inputs))`` (or ``None``) and ``param_grads``
            ``(len(params),)``, summed over the batch.

        Raises:
            ImportError: numpy is not installed (``pip install 'valuegrad[fast]'``).
            ValueError: a wrongly shaped ``X``, ``params`` or ``seeds``.
            GuardFailed: a sample takes another branch than the traced inputs.
        """
        return batch.run_batch(self, X, params, seeds, input_grads, self._fail)

    def to_torch(self, device: Any = None, dtype: Any = None) -> Any:
        """This program as a ``torch.nn.Module``: batched replay on tensors, each recognised layer
        one matrix product, its parameters ``torch.nn.Parameter`` s named after the program's;
        torch's autograd gives the gradients (see :mod:`engine.torch_program`).

        Raises:
            ImportError: torch is not installed. ValueError: an op of your own in the program.
        """
        return torch_program.to_torch(self, device, dtype)

    def _fail(self, index: int, lhs: float, rhs: float, sample: int | None = None) -> None:
        raise GuardFailed(self, index, lhs, rhs, sample)
