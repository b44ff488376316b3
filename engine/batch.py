"""Batched replay: a traced program run over N samples at once, one numpy call per step.

:meth:`engine.program.Program.batch` lands here. Each slot of the program holds either one
number shared by every sample (**uniform**: parameters, constants, and whatever depends only
on them) or an ``(N,)`` array, one number per sample (**varying**: inputs and whatever
depends on them). Every instruction becomes one numpy expression, the op table's own
functions run on code (:mod:`engine.codegen`) and evaluated with :mod:`engine.numpy_ops`; the
backward pass is the same chain rule as :meth:`~engine.program.Program.backward_source`, where
a uniform slot's gradient sums its varying consumers' contributions over the batch (so
parameter gradients are those of the sum of every sample's seeded outputs).

**Layers become matrix products.** A neuron in the program is a ``sum`` of ``mul`` s, each
multiplying a parameter (a weight) by a varying slot, plus at most one parameter (the bias).
Neurons that read the same inputs in the same order form a layer, which is computed as one
matrix product ``Z = X Wᵀ + b`` over the batch; when every neuron's sum feeds only the same
unary op (its activation), that op is applied to ``Z`` at once. A layer whose inputs are
another layer's outputs, in order, reads that layer's matrix directly. Backward, a layer is
``G_Z = G_A ⊙ act'(Z)``, ``∂W = G_Zᵀ X``, ``∂b = Σ_samples G_Z``, ``G_X = G_Z W``.
So an MLP's step is a handful of numpy calls per layer, not a few per neuron.

Results equal scalar replay's up to rounding: a matrix product adds in another order than
``sum`` does (relative differences near 1e-16 per sum).

Reference: the matrix form of backpropagation, Goodfellow, Bengio and Courville, *Deep
Learning* (MIT Press 2016), section 6.5; numpy documentation (``matmul``, ``errstate``).
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from engine import replay
from engine.codegen import (
    RELATIONS,
    ChainRule,
    Code,
    forward_code,
    guard_operand,
    literal,
    local_derivatives,
    namespace,
    operands,
    slot_name,
)
from engine.gc_pause import gc_paused
from engine.layers import LoweredLayer, find_layers, strided_slice
from engine.ops import HELPERS


def numpy_ops_required() -> Any:
    """The numpy module, or an ``ImportError`` that says how to install it."""
    try:
        import numpy
    except ImportError:
        raise ImportError("batched replay (Program.batch, training with compile=True) needs numpy: "
                          "pip install 'valuegrad[fast]'") from None
    return numpy


@dataclass
class BatchReplay:
    """What a batched replay computes (numpy arrays).

    Attributes:
        outputs: ``(N, n_outputs)``, each sample's outputs.
        input_grads: ``(N, n_inputs)``, each sample's input gradients, or ``None`` when not
            asked for.
        param_grads: ``(n_params,)``, the parameter gradients summed over the batch.
    """

    outputs: Any
    input_grads: Any
    param_grads: Any


class Lowering:
    """The batched code of one program: which slots are varying, which instructions form
    layers, and the generated function ``batch(X, theta, seeds, N)``."""

    def __init__(self, program: Any, input_grads: bool, seeded: tuple[bool, ...],
                 fail: Callable[..., None] | None = None) -> None:
        self.p = program
        self.fail = fail
        self.want_input_grads = input_grads
        self.seeded = seeded
        n_in = len(program.inputs)
        self.n_in = n_in
        self.varying = [program.kind(s) == "input" for s in range(program.n_slots)]
        self.by_slot: dict[int, Any] = {i.slot: i for i in program.instructions}
        for i in program.instructions:
            self.varying[i.slot] = any(self.varying[a] for a in i.args)
        self.uses = [0] * program.n_slots  # consumers: instructions, outputs and guards
        for i in program.instructions:
            for a in i.args:
                self.uses[a] += 1
        for s in program.outputs:
            self.uses[s] += 1
        for g in program.guards:
            self.uses[g.lhs] += 1
            if isinstance(g.rhs, int):
                self.uses[g.rhs] += 1
        self.layers = find_layers(program, self.by_slot, self.uses, self.varying)
        self.run: Any = None  # the compiled function, set by run_batch
        self.arrays: dict[str, Any] = {}  # index arrays the code names (filled as it is written)
        self.absorbed: set[int] = set()  # slots computed inside a layer
        self.layer_at: dict[int, LoweredLayer] = {}  # a layer is emitted where its first sum was
        self.matrix_input: dict[int, LoweredLayer] = {}  # layer number -> the layer whose matrix it reads
        for layer in self.layers:
            for s in layer.sums:
                self.absorbed.update(a for a in self.by_slot[s].args if self.p.kind(a) == "op")
            self.absorbed.update(layer.sums)
            self.absorbed.update(layer.outputs)
            self.layer_at[layer.sums[0]] = layer
            for other in self.layers:
                if other is not layer and tuple(other.outputs) == layer.inputs:
                    self.matrix_input[layer.number] = other
        # The slots read one by one (by an instruction, as an output, by a guard, or stacked
        # into a layer's input): a layer's output among them gets a column view of its matrix.
        ordinary = [i for i in program.instructions if i.slot not in self.absorbed]
        self.column_read = {a for i in ordinary for a in i.args} | set(program.outputs) \
            | {g.lhs for g in program.guards} | {g.rhs for g in program.guards if isinstance(g.rhs, int)} \
            | {s for layer in self.layers if self._input_kind(layer) == "stack" for s in layer.inputs}

    # --------------------------------------------------------------------------------------
    # Code

    def name(self, slot: int) -> str:
        return slot_name(self.p, slot)

    def source(self) -> str:
        return "\n".join(["def batch(X, theta, seeds, N):", *self.forward_lines(), *self._backward()]) + "\n"

    def forward_lines(self, tensors: bool = False) -> list[str]:
        """The forward pass and the guards, on ``X`` (rows of samples) and ``theta`` (the
        parameters); with ``tensors``, parameters read one by one stay elements of ``theta``
        (for torch's autograd) instead of Python floats."""
        p = self.p
        lines: list[str] = []
        n_in = self.n_in
        for k in range(n_in):
            if k in self.column_read:
                lines.append(f"    v{k} = X[:, {k}]  # {p.inputs[k]}")
        read = [k for k in range(len(p.params)) if n_in + k in self.column_read]
        if read:  # parameters used one by one, as Python floats (a layer's weights are gathered)
            if not tensors:
                lines.append("    P = theta.tolist()")
            lines += [f"    v{n_in + k} = {'theta' if tensors else 'P'}[{k}]  # {p.params[k]}" for k in read]
        for i in p.instructions:
            if i.slot in self.layer_at:
                lines += self._layer_forward(self.layer_at[i.slot])
            elif i.slot not in self.absorbed:
                lines.append(f"    v{i.slot} = {literal(forward_code(i.op, operands(p, i))).text}")
        for k, g in enumerate(p.guards):
            lhs, rhs = self.name(g.lhs), guard_operand(p, g.rhs)
            lines.append(f"    if not all_equal(({lhs} {g.relation} {rhs}), {g.outcome}): "
                         f"fail({k}, {lhs}, {rhs}, N)")
        return lines

    def at(self, layer: LoweredLayer, which: str) -> str:
        """The index into ``theta`` (or ``G``) of a layer's weights (``which="W"``) or biases
        (``"B"``): ``[WI0]``, a gather by an index array (the plain version), or, as a speed
        trick, a slice when the indices are evenly spaced, as an MLP's are (each neuron's
        weights then its bias): a view of ``theta``, with nothing copied, that ``+=`` on ``G``
        updates in place."""
        indices = layer.weights if which == "W" else layer.biases
        assert indices is not None
        view = strided_slice(indices, len(self.p.params))
        return view if view is not None else f"[{which}I{layer.number}]"

    def _input_kind(self, layer: LoweredLayer) -> str:
        """Where a layer's input matrix comes from: another layer's ``"matrix"``, a
        ``"slice"`` of the batch's inputs, or a ``"stack"`` of slots."""
        if layer.number in self.matrix_input:
            return "matrix"
        xs = layer.inputs
        if xs == tuple(range(xs[0], xs[0] + len(xs))) and xs[-1] < self.n_in:
            return "slice"
        return "stack"

    def _layer_input(self, layer: LoweredLayer) -> str:
        kind, xs = self._input_kind(layer), layer.inputs
        if kind == "matrix":
            return f"A{self.matrix_input[layer.number].number}"
        if kind == "slice":
            return f"X[:, {xs[0]}:{xs[-1] + 1}]"
        return f"stack([{', '.join(self.name(x) for x in xs)}], axis=1)"

    def _layer_forward(self, layer: LoweredLayer) -> list[str]:
        L = layer.number
        neurons = f"{len(layer.sums)} neuron{'s' if len(layer.sums) > 1 else ''}"
        inputs = f"{len(layer.inputs)} input{'s' if len(layer.inputs) > 1 else ''}"
        lines = [f"    # layer {L}: {neurons} of {inputs}",
                 f"    X{L} = {self._layer_input(layer)}",
                 f"    W{L} = theta{self.at(layer, 'W')}",
                 f"    Z{L} = X{L} @ W{L}.T"
                 + (f" + theta{self.at(layer, 'B')}" if layer.biases is not None else "")]
        result = f"Z{L}"
        if layer.activation is not None:
            op = layer.activation
            lines.append(f"    A{L} = {literal(forward_code(op, [Code(f'Z{L}')])).text}")
            result = f"A{L}"
        else:
            lines.append(f"    A{L} = Z{L}")
        for j, s in enumerate(layer.outputs):
            if s in self.column_read:
                lines.append(f"    v{s} = {result}[:, {j}]")
        return lines

    def _backward(self) -> list[str]:
        p, n_in = self.p, self.n_in
        if self.want_input_grads:
            needed = p.requires_grad()
        else:  # inputs need no gradient: neither does what only they reach
            needed = [p.kind(s) == "param" for s in range(p.n_slots)]
            for i in p.instructions:
                needed[i.slot] = any(needed[a] for a in i.args)
        rule = _BatchChainRule(self, needed)
        rule.lines.append("    G = zeros(theta.shape)")
        if self.want_input_grads:
            rule.lines.append(f"    GIN = zeros((N, {n_in}))")
        lines, assigned = rule.run().lines, rule.assigned
        params = [s for s in range(n_in, n_in + len(p.params)) if s in assigned]
        if params:
            lines.append(f"    G[{[s - n_in for s in params]}] += [{', '.join(f'g{s}' for s in params)}]")
        inputs = [s for s in range(n_in) if s in assigned] if self.want_input_grads else []
        for s in inputs:
            lines.append(f"    GIN[:, {s}] += g{s}")
        outputs = ", ".join(self.name(s) for s in p.outputs)
        lines.append(f"    return [{outputs}], {'GIN' if self.want_input_grads else 'None'}, G")
        return lines

    def namespace(self) -> dict[str, Any]:
        """The names the code calls: numpy functions, and the index arrays that gather each
        layer's weights from the parameter vector. Call after :meth:`source`."""
        np = numpy_ops_required()
        from engine.numpy_ops import FUNCTIONS, elementwise

        # The built-in ops and helpers on arrays (add, sub, mul and neg are Python's operators,
        # which work on arrays as they are); an op of yours element by element (right for any
        # Python function on floats, at Python's speed).
        names = namespace(self.p.ops(), {h: FUNCTIONS[h] for h in HELPERS},
                          lambda op: FUNCTIONS.get(op.name, op.forward) if op.builtin
                          else np.vectorize(op.forward, otypes=[float]),
                          lambda op: elementwise(op.derivative))
        names.update({"inf": np.inf, "nan": np.nan, "zeros": np.zeros, "stack": np.stack, "total": np.sum,
                      "add_at": np.add.at, "all_equal": _all_equal(np),
                      "broadcast": lambda g, n: np.broadcast_to(g, (n,)), "fail": self._fail})
        for layer in self.layers:
            names[f"WI{layer.number}"] = np.array(layer.weights, dtype=np.intp)
            if layer.biases is not None:
                names[f"BI{layer.number}"] = np.array(layer.biases, dtype=np.intp)
        names.update({name: np.array(indices, dtype=np.intp) for name, indices in self.arrays.items()})
        return names

    def _fail(self, index: int, lhs: Any, rhs: Any, N: int) -> None:
        np = numpy_ops_required()
        guard = self.p.guards[index]
        outcome = np.broadcast_to(RELATIONS[guard.relation](lhs, rhs), (N,))
        sample = int(np.nonzero(outcome != guard.outcome)[0][0])
        lhs, rhs = (float(np.broadcast_to(v, (N,))[sample]) for v in (lhs, rhs))
        assert self.fail is not None
        self.fail(index, lhs, rhs, sample)


class _BatchChainRule(ChainRule):
    """The chain rule on arrays: a uniform slot's gradient sums its varying consumers'
    contributions over the batch; a gradient is never updated in place (a first assignment
    may share its array with the upstream gradient); a layer is one set of matrix products."""

    def __init__(self, lowering: Lowering, needed: list[bool]) -> None:
        super().__init__(lowering.p, needed, lowering.seeded)
        self.lowering = lowering
        self.matrix_grads: dict[int, list[str]] = {}  # layer number -> gradients flowing into its A

    def update(self, parent: int, sign: str, term: str) -> str:
        return f"    g{parent} = g{parent} {sign} {term}"

    def term(self, i: Any, local: Any, parent: int) -> tuple[str, str]:
        sign, term = super().term(i, local, parent)
        if self.lowering.varying[i.slot] and not self.lowering.varying[parent]:
            return "+", f"total({'-' if sign == '-' else ''}{term})"
        return sign, term

    def instruction(self, i: Any) -> None:
        layer = self.lowering.layer_at.get(i.slot)
        if layer is not None:
            self.layer(layer)
        elif i.slot not in self.lowering.absorbed:
            super().instruction(i)

    def layer(self, layer: LoweredLayer) -> None:
        L, lines, lowering = layer.number, self.lines, self.lowering
        matrix = self.matrix_grads.get(L, [])  # from layers reading A: they reach every column
        reached = list(range(len(layer.outputs))) if matrix else \
            [j for j, s in enumerate(layer.outputs) if s in self.assigned]
        if not reached:
            return  # no gradient reaches this layer
        # Only the neurons a gradient reaches take part (as in the eager engine): a neuron
        # left out adds nothing, not 0 × (its weight), which is nan for an infinite weight.
        some = len(reached) < len(layer.outputs)
        if some:
            lowering.arrays[f"R{L}"] = reached
        pick, rows = (f"[:, R{L}]", f"[R{L}]") if some else ("", "")
        parts = list(matrix)
        if any(s in self.assigned for s in layer.outputs):
            columns = [f"g{s}" if s in self.assigned else "zeros(N)" for s in layer.outputs]
            parts.append(f"stack([{', '.join(f'broadcast({columns[j]}, N)' for j in reached)}], axis=1)")
        lines += [f"    # layer {L} backward: ∂W = G_Zᵀ X, ∂b = Σ G_Z, G_X = G_Z W"
                  + (f" (for the {len(reached)} of {len(layer.outputs)} neurons a gradient reaches)"
                     if some else ""),
                  f"    GA{L} = {' + '.join(parts)}"]
        if layer.activation is not None:
            op = layer.activation
            local = local_derivatives(op, [Code(f"Z{L}{pick}")], Code(f"A{L}{pick}"))[0]
            lines.append(f"    GZ{L} = {(Code(f'GA{L}') * local).text}")
        else:
            lines.append(f"    GZ{L} = GA{L}")
        weights = _repeats([layer.weights[j] for j in reached])
        add = "add_at(G, WI{L}{rows}, {term})" if weights else "G{at} += {term}"
        at = f"[WI{L}{rows}]" if some else lowering.at(layer, "W")
        lines.append("    " + add.format(L=L, rows=rows, at=at, term=f"GZ{L}.T @ X{L}"))
        if layer.biases is not None:
            biases = [layer.biases[j] for j in reached]
            shared = len(set(biases)) < len(biases)
            add = "add_at(G, BI{L}{rows}, {term})" if shared else "G{at} += {term}"
            at = f"[BI{L}{rows}]" if some else lowering.at(layer, "B")
            lines.append("    " + add.format(L=L, rows=rows, at=at, term=f"GZ{L}.sum(axis=0)"))
        if any(self.needed[x] for x in layer.inputs):
            lines.append(f"    GX{L} = GZ{L} @ W{L}{rows}")
            kind, xs = lowering._input_kind(layer), layer.inputs
            if kind == "matrix":
                self.matrix_grads.setdefault(lowering.matrix_input[L].number, []).append(f"GX{L}")
            elif kind == "slice":
                if lowering.want_input_grads:
                    lines.append(f"    GIN[:, {xs[0]}:{xs[-1] + 1}] += GX{L}")
            else:
                for j, x in enumerate(xs):
                    if self.needed[x]:
                        self.accumulate(x, "+", f"GX{L}[:, {j}]")


def _all_equal(np: Any) -> Any:
    def all_equal(values: Any, outcome: bool) -> bool:
        return bool(np.all(values == outcome))

    return all_equal


def _repeats(weights: list[list[int]]) -> bool:
    flat = [w for row in weights for w in row]
    return len(set(flat)) < len(flat)


_LOWERED: weakref.WeakKeyDictionary[Any, dict[tuple[bool, tuple[bool, ...]], Lowering]] = \
    weakref.WeakKeyDictionary()  # each program's compiled batched code, by input_grads and seeding


def run_batch(program: Any, X: Any, params: Any, seeds: Any, input_grads: bool,
              fail: Callable[..., None]) -> BatchReplay:
    """Run ``program`` over the rows of ``X`` (see :meth:`engine.program.Program.batch`);
    ``fail(index, lhs, rhs, sample)`` raises for a failed guard."""
    np = numpy_ops_required()
    X, theta, seeded = replay.batch_arguments(np, program, X, params, seeds)
    N = X.shape[0]
    cache = _LOWERED.setdefault(program, {})
    lowering = cache.get((input_grads, seeded))
    if lowering is None:
        with gc_paused():  # (speed: see engine.gc_pause)
            lowering = Lowering(program, input_grads, seeded, fail)
            source = lowering.source()  # (before the namespace: writing it names index arrays)
            namespace = lowering.namespace()
            exec(compile(source, f"<program {program.name}: batch>", "exec"), namespace)
        lowering.run = namespace["batch"]
        cache[(input_grads, seeded)] = lowering
    with np.errstate(all="ignore"):
        outputs, gin, gparams = lowering.run(
            X, theta, replay.batch_seeds(np, program, lowering.varying, seeds, N), N)
        out = np.empty((N, len(outputs)))
        for k, o in enumerate(outputs):
            out[:, k] = o  # a uniform output (a number) fills its column
    return BatchReplay(out, gin, gparams)
