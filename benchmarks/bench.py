"""Benchmark valuegrad's engine against micrograd 0.1.0, both measured in the same run.

Run it with ``make bench`` (which installs micrograd), or ``python benchmarks/bench.py``.
A full run takes about two minutes on two cores and peaks near 2 GB (micrograd's million-node
graph under ``tracemalloc``). Options: ``--quick`` (small sizes, a smoke test of about twenty
seconds), ``--json PATH`` (also write every figure to ``PATH`` as JSON), ``--seed N``.

What is measured, and how:

1. **Per-op speed.** A seeded random program of mixed ops (``+ - * /``, ``** 2``, ``relu``,
   unary ``-``: only ops that micrograd has) is run by both engines: many short chains, each
   starting from one of a pool of shared leaves, joined by a balanced tree of ``+`` so that
   micrograd's recursive backward works at the default recursion limit. The program is drawn
   on plain floats first, so no value leaves ``[-1000, 1000]``. We time building the graph
   (forward) and ``root.backward()`` separately, best of N with ``time.perf_counter`` and the
   garbage collector off, and divide by the number of ops. micrograd makes more than one
   node for some ops (``a - b`` is ``a + b * -1``); the table shows how many ``Value``
   objects each engine's graph holds. Both engines' results are checked to agree.
2. **micrograd's demo workload** (its ``demo.ipynb``): 100 two-moons points, labels ±1,
   ``MLP(2, [16, 16, 1])`` with micrograd's initialisation (the same weights in both
   engines), loss = mean hinge loss ``relu(1 - y·score)`` + ``1e-4 · Σ p²``, full-batch SGD
   with ``lr = 1 - 0.9·k/100``. One step = forward over all points, loss, zero_grad,
   backward, update. micrograd runs the notebook's code; valuegrad runs ``nn.MLP``,
   ``nn.hinge_loss``, ``engine.sum`` and ``nn.SGD``. Mean ms/step over a few steps after a
   warm-up step, from fresh models: once with the garbage collector on, as in a user's
   training loop (the headline figure), and once with it off. The difference matters:
   every micrograd node sits in a reference cycle (it holds the closure that holds it), so
   its graphs are freed only by the cyclic collector, whose passes cost time. valuegrad also
   trains the full 100 steps and reports its training accuracy. With PyTorch installed, the
   same step on float64 tensors (``torch.nn.Linear`` layers, same initial weights) is timed.
   The same step is also run from a **traced program** (``engine.trace``): one sample's loss,
   ``relu(1 - t·score) + 1e-4 · Σ p²`` (the L2 term is the same for every sample, so the mean
   over the samples is the demo's loss), traced once with the model's weights as parameters.
   A step replays it with seed ``1/N`` per sample and writes the summed parameter gradients
   into ``.grad`` before the same ``nn.SGD`` update: **replay** runs the generated Python on
   floats one sample at a time, **batched replay** runs all 100 samples at once on numpy
   (``Program.batch``, layers as matrix products). The input rows are built once, as
   PyTorch's input tensor is. Mean ms/step (garbage collector on) after warm-up steps, the
   first of which generates the code (tracing and that first step are timed on their own,
   from another fresh model). Both replays' loss at step 0 is checked against the eager
   engine's to 1e-9 (relative), and batched replay trains the full
   100 steps from a fresh model: its training accuracy, and how far its weights end from the
   eager engine's, are reported.
3. **Memory per node.** A graph of ``+`` and ``*`` nodes on shared leaves (one node per op
   in both engines, same chains-and-tree shape as in 1), measured with ``tracemalloc``:
   memory held after building it and after ``backward()``, minus the memory before, divided
   by the number of nodes. Each graph is freed before the next is built.
4. **Deepest chain.** The longest chain of alternating ``*``/``+`` ops whose ``backward()``
   succeeds: for micrograd (recursive topological sort) found by doubling then bisection
   under the default recursion limit; for valuegrad a chain of a million ops is run.
5. **Digits, one epoch.** ``nn.load_digits()`` (1797 8×8 images, 64 features, 10 classes),
   split 70/30 stratified (``nn.train_test_split``), standardized with the training split's
   statistics; ``nn.MLP(64, [32, 10])``,
   cross-entropy, Adam with ``lr = 0.01``, batches of 32, trained by ``nn.train.fit``. Timed:
   an epoch with ``compile=True`` (batched replay; the first epoch, which traces and generates
   the code, separately from the mean of the next ones), an epoch on the eager engine
   (``compile=False``; with ``--quick`` only its first few batches, scaled to the epoch by
   sample count), and, with PyTorch installed, an epoch of the same model on float64 tensors
   (``Sequential(Linear, ReLU, Linear)``, ``cross_entropy``, ``torch.optim.Adam``, the same
   shuffling; mean of a few epochs after a warm-up one, at PyTorch's default thread count and
   at one thread, the faster reported: on tensors this small a second thread does not help,
   and it slows PyTorch down about tenfold when another process is busy on a CPU). None of
   these evaluate a test set. Then a fresh model trains compiled, evaluating the test set
   after each epoch, until its test accuracy reaches 0.95 (at most 20 epochs): the epochs,
   the seconds (tracing, code generation and test evaluations included) and the test
   accuracy are reported.

The targets are valuegrad >= 10x micrograd's speed on the demo workload and <= 1/5 of its
memory per node (the after-backward figure, the graph a training step holds at its peak);
batched replay of the demo step >= 500x micrograd's speed and at most twice PyTorch's step
time; and digits trained to >= 0.95 test accuracy in under 60 s.
"""

from __future__ import annotations

import argparse
import gc
import math
import operator
import os
import platform
import random
import sys
import time
import tracemalloc
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run from a checkout that is not pip-installed
    sys.path.insert(0, str(ROOT))

import engine  # noqa: E402
import nn  # noqa: E402
from nn.module import write_json_atomic  # noqa: E402

try:
    from micrograd import nn as micro_nn  # type: ignore[import-untyped]
    from micrograd.engine import Value as MicroValue  # type: ignore[import-untyped]
except ImportError:  # a message, not a traceback
    sys.exit("micrograd is not installed: run `make bench`, or `pip install micrograd==0.1.0`")
try:
    import numpy as np
except ImportError:
    sys.exit("numpy is not installed (batched replay needs it): run `make bench`, or "
             "`pip install 'valuegrad[fast]'`")

SPEED_TARGET = 10.0  # valuegrad's demo step at least 10x faster than micrograd's
MEMORY_TARGET = 0.2  # valuegrad's bytes per node at most 1/5 of micrograd's
BATCHED_TARGET = 500.0  # batched replay of the demo step at least 500x faster than micrograd's
TORCH_TARGET = 2.0  # batched replay's demo step at most 2x PyTorch's step time
DIGITS_ACCURACY = 0.95  # digits: test accuracy reached ...
DIGITS_SECONDS = 60.0  # ... in under this many seconds of compiled training
LANE_LENGTH = 100  # ops per chain in the graphs of measurements 1 and 3
VALUE_BOUND = 1e3  # no value of the mixed program leaves [-VALUE_BOUND, VALUE_BOUND]


@dataclass(frozen=True)
class Sizes:
    """How big each measurement is (``FULL`` for the report, ``QUICK`` for a smoke test)."""

    graph_ops: int  # 1: ops in the mixed graph
    repeats: int  # 1: best of this many runs
    timed_steps: int  # 2: demo steps timed per engine, after one warm-up step
    torch_steps: int  # 2: PyTorch steps timed (they take well under a millisecond)
    train_steps: int  # 2: steps valuegrad trains for the accuracy figure
    batched_steps: int  # 2: batched-replay steps timed (well under a millisecond each)
    memory_nodes: int  # 3: nodes in the memory graph
    deep_chain: int  # 4: length of valuegrad's chain
    digits_eager_batches: int  # 5: eager batches timed and scaled to an epoch; 0: the whole epoch
    digits_epochs: int  # 5: compiled and PyTorch epochs timed, after the first (warm-up) one
    digits_max_epochs: int  # 5: at most this many compiled epochs to reach the accuracy target


FULL = Sizes(graph_ops=100_000, repeats=3, timed_steps=10, torch_steps=50, train_steps=100,
             batched_steps=50, memory_nodes=1_000_000, deep_chain=1_000_000,
             digits_eager_batches=0, digits_epochs=5, digits_max_epochs=20)
QUICK = Sizes(graph_ops=10_000, repeats=2, timed_steps=2, torch_steps=10, train_steps=20,
              batched_steps=10, memory_nodes=50_000, deep_chain=50_000,
              digits_eager_batches=5, digits_epochs=2, digits_max_epochs=20)


@dataclass(frozen=True)
class Engine:
    """What the benchmark needs to know about an engine: its leaf constructor and how to
    walk from a node to its operands."""

    name: str
    leaf: Callable[[float], Any]
    parents: Callable[[Any], Iterable[Any]]


OURS = Engine("valuegrad", engine.Value, lambda v: v.parents)
MICRO = Engine("micrograd", MicroValue, lambda v: v._prev)
ENGINES = (OURS, MICRO)


# --------------------------------------------------------------------------------------------
# Graphs: a seeded program of ops, run the same way by either engine
# --------------------------------------------------------------------------------------------


def _square(x: Any, _: Any) -> Any:
    return x**2


def _relu(x: Any, _: Any) -> Any:
    return x.relu()


def _neg(x: Any, _: Any) -> Any:
    return -x


# Each step is ``fn(x, operand)``: on the engines' Values, and on floats to draw the program.
BINARY = {"add": operator.add, "sub": operator.sub, "mul": operator.mul, "div": operator.truediv}
UNARY = {"square": _square, "relu": _relu, "neg": _neg}
ON_FLOATS: dict[str, Callable[[float, float], float]] = {
    **BINARY, "square": lambda x, _: x * x, "relu": lambda x, _: x if x > 0.0 else 0.0,
    "neg": lambda x, _: -x,
}
MIXED_OPS = (*BINARY, *UNARY)
ADD_MUL = ("add", "mul")


@dataclass(frozen=True)
class Program:
    """Chains of ops on a pool of shared leaves, then a balanced tree of ``+`` over the chain
    ends. ``lanes`` holds, per chain, its starting leaf and its ``(op, leaf index)`` steps."""

    leaves: list[float]
    lanes: list[tuple[int, list[tuple[str, int]]]]

    @property
    def n_ops(self) -> int:
        return sum(len(steps) for _, steps in self.lanes) + len(self.lanes) - 1


def make_program(n_ops: int, ops: Sequence[str], seed: int, n_leaves: int = 64) -> Program:
    """A program of exactly ``n_ops`` ops, drawn from ``ops``; each draw that would take a
    value out of ``[-VALUE_BOUND, VALUE_BOUND]`` is redrawn (``relu`` is the fallback)."""
    rng = random.Random(seed)
    leaves = [rng.choice((-1.0, 1.0)) * rng.uniform(0.5, 1.5) for _ in range(n_leaves)]
    n_lanes = max(1, n_ops // LANE_LENGTH)
    lane_ops, extra = divmod(n_ops - (n_lanes - 1), n_lanes)  # the tree adds n_lanes - 1 ops
    lanes = []
    for lane in range(n_lanes):
        start = lane % n_leaves
        x = leaves[start]
        steps = []
        for _ in range(lane_ops + (lane < extra)):
            for _attempt in range(20):
                op, k = rng.choice(ops), rng.randrange(n_leaves)
                y = ON_FLOATS[op](x, leaves[k])
                if abs(y) <= VALUE_BOUND:
                    break
            else:
                op, k, y = "relu", 0, ON_FLOATS["relu"](x, 0.0)
            steps.append((op, k))
            x = y
        lanes.append((start, steps))
    return Program(leaves, lanes)


Compiled = tuple[list[Any], list[tuple[Any, list[tuple[Callable[[Any, Any], Any], Any]]]]]


def compile_program(program: Program, eng: Engine) -> Compiled:
    """Fresh leaves of ``eng`` and the steps bound to them, made before any clock starts."""
    leaves = [eng.leaf(v) for v in program.leaves]
    lanes = [(leaves[start], [(BINARY[op], leaves[k]) if op in BINARY else (UNARY[op], None)
                              for op, k in steps])
             for start, steps in program.lanes]
    return leaves, lanes


def run_program(compiled: Compiled) -> Any:
    """Build the graph (the forward pass) and return its root."""
    ends = []
    for x, steps in compiled[1]:
        for fn, operand in steps:
            x = fn(x, operand)
        ends.append(x)
    while len(ends) > 1:  # a balanced tree of +, so the graph stays shallow
        pairs = [ends[i] + ends[i + 1] for i in range(0, len(ends) - 1, 2)]
        ends = pairs + ends[-1:] if len(ends) % 2 else pairs
    return ends[0]


def count_values(root: Any, eng: Engine) -> int:
    """How many Value objects the graph below ``root`` holds (leaves and constants included)."""
    seen = {id(root)}
    stack = [root]
    while stack:
        for parent in eng.parents(stack.pop()):
            if id(parent) not in seen:
                seen.add(id(parent))
                stack.append(parent)
    return len(seen)


def chain(eng: Engine, depth: int) -> tuple[Any, list[Any]]:
    """A chain of ``depth`` ops, alternating ``x * a`` and ``x + b``; returns (end, leaves)."""
    a, b = eng.leaf(0.5), eng.leaf(0.25)
    x = eng.leaf(1.0)
    for i in range(depth):
        x = x * a if i % 2 == 0 else x + b
    return x, [a, b]


# --------------------------------------------------------------------------------------------
# 1. Per-op speed of forward and backward
# --------------------------------------------------------------------------------------------


def bench_ops(sizes: Sizes, seed: int) -> dict[str, Any]:
    program = make_program(sizes.graph_ops, MIXED_OPS, seed)
    best: dict[str, list[float]] = {eng.name: [math.inf, math.inf] for eng in ENGINES}
    values: dict[str, int] = {}
    results: dict[str, tuple[float, list[float]]] = {}
    for _ in range(sizes.repeats):
        for eng in ENGINES:  # interleaved, so a slow moment of the machine hits both
            compiled = compile_program(program, eng)
            gc.collect()
            gc.disable()
            try:
                t0 = time.perf_counter()
                root = run_program(compiled)
                t1 = time.perf_counter()
                root.backward()
                t2 = time.perf_counter()
            finally:
                gc.enable()
            best[eng.name][0] = min(best[eng.name][0], t1 - t0)
            best[eng.name][1] = min(best[eng.name][1], t2 - t1)
            values[eng.name] = count_values(root, eng)
            results[eng.name] = (float(root.data), [float(leaf.grad) for leaf in compiled[0]])
            del root, compiled
    ours, micro = results[OURS.name], results[MICRO.name]
    grad_diff = max(abs(g - h) / max(1.0, abs(h)) for g, h in zip(ours[1], micro[1]))
    n = program.n_ops
    return {
        "ops": n,
        "values": values,
        "forward_us_per_op": {name: t[0] / n * 1e6 for name, t in best.items()},
        "backward_us_per_op": {name: t[1] / n * 1e6 for name, t in best.items()},
        "root_data": {OURS.name: ours[0], MICRO.name: micro[0]},
        "max_leaf_grad_rel_diff": grad_diff,
    }


# --------------------------------------------------------------------------------------------
# 2. micrograd's demo workload
# --------------------------------------------------------------------------------------------

ALPHA = 1e-4  # the L2 coefficient of micrograd's demo


def demo_lr(k: int) -> float:
    return 1.0 - 0.9 * k / 100


def micrograd_step(model: Any, X: Sequence[Sequence[float]], y: Sequence[int], k: int) -> tuple[float, float]:
    """One step of micrograd's demo.ipynb, as written there: ``loss()`` then the update."""
    inputs = [list(map(MicroValue, xrow)) for xrow in X]
    scores = list(map(model, inputs))
    losses = [(1 + -yi * scorei).relu() for yi, scorei in zip(y, scores)]
    data_loss = sum(losses) * (1.0 / len(losses))
    reg_loss = ALPHA * sum(p * p for p in model.parameters())
    total_loss = data_loss + reg_loss
    accuracy = [(yi > 0) == (scorei.data > 0) for yi, scorei in zip(y, scores)]
    model.zero_grad()
    total_loss.backward()
    learning_rate = demo_lr(k)
    for p in model.parameters():
        p.data -= learning_rate * p.grad
    return total_loss.data, sum(accuracy) / len(accuracy)


def valuegrad_step(model: nn.MLP, params: list[engine.Value], optimizer: nn.SGD,
                   X: Sequence[Sequence[float]], y: Sequence[int], k: int) -> tuple[float, float]:
    """The same step with valuegrad's library."""
    scores = [model(x)[0] for x in X]
    total_loss = nn.hinge_loss(scores, y) + ALPHA * engine.sum([p * p for p in params])
    accuracy = sum((yi > 0) == (s.data > 0) for yi, s in zip(y, scores)) / len(y)
    optimizer.zero_grad()
    total_loss.backward()
    optimizer.lr = demo_lr(k)
    optimizer.step()
    return total_loss.data, accuracy


Step = Callable[[int], tuple[float, float]]  # step(k) trains step k; returns (loss, accuracy)


def micrograd_demo(seed: int, X: Sequence[Sequence[float]], y: Sequence[int]) -> tuple[Step, list[float]]:
    """A fresh micrograd model, as its ``step``, and its initial weights."""
    random.seed(seed)  # micrograd's Neuron draws its weights from the global generator
    model = micro_nn.MLP(2, [16, 16, 1])
    return (lambda k: micrograd_step(model, X, y, k)), [float(p.data) for p in model.parameters()]


def valuegrad_demo(seed: int, X: Sequence[Sequence[float]], y: Sequence[int]) -> tuple[Step, nn.MLP]:
    """A fresh valuegrad model (the same weights as micrograd's: the same draws, in the same
    order), as its ``step``, and the model."""
    model = nn.MLP(2, [16, 16, 1], init="micrograd", rng=seed)
    params = model.parameters()
    optimizer = nn.SGD(params, lr=demo_lr(0))
    return (lambda k: valuegrad_step(model, params, optimizer, X, y, k)), model


def traced_demo(seed: int, X: Sequence[Sequence[float]], y: Sequence[int],
                batched: bool) -> tuple[Callable[[int], float], nn.MLP, engine.Program]:
    """A fresh valuegrad model (the same weights as :func:`valuegrad_demo`'s), one sample's
    loss traced into a program, and the demo step by replay of that program: on floats one
    sample at a time, or ``batched`` on numpy. Returns the step (it returns the loss before
    the update), the model and the program. Tracing happens here; code generation on the
    first step."""
    model = nn.MLP(2, [16, 16, 1], init="micrograd", rng=seed)
    params = model.parameters()
    optimizer = nn.SGD(params, lr=demo_lr(0))

    def sample(x: list[engine.Value], t: engine.Value) -> engine.Value:
        # The L2 term is uniform over the batch: the mean of (hinge_i + reg) is the demo's loss.
        return (1 - t * model(x)[0]).relu() + ALPHA * engine.sum([p * p for p in params])

    program = engine.trace(sample, [0.0, 0.0], 1.0, params=model)
    rows = [[*x, float(t)] for x, t in zip(X, y)]  # built once, as PyTorch's input tensor
    table = np.array(rows)
    weight = 1.0 / len(rows)  # each sample's seed: the gradients are those of the mean

    def update(grads: Iterable[float], k: int) -> None:
        for p, g in zip(params, grads):
            p.grad = g
        optimizer.lr = demo_lr(k)
        optimizer.step()

    def replay_step(k: int) -> float:
        theta = [p.data for p in params]
        replays = [program(row, theta, seeds=weight) for row in rows]
        update([sum(column) for column in zip(*(r.param_grads for r in replays))], k)
        return sum(r.outputs[0] for r in replays) / len(rows)

    def batched_step(k: int) -> float:
        result = program.batch(table, [p.data for p in params], seeds=weight, input_grads=False)
        update(result.param_grads.tolist(), k)
        return float(result.outputs[:, 0].mean())

    return (batched_step if batched else replay_step), model, program


def mean_step_ms(step: Callable[[int], object], warmup: int, steps: int, gc_enabled: bool = True) -> float:
    """Mean wall time of ``steps`` calls of ``step(k)`` after ``warmup`` calls, in ms."""
    for k in range(warmup):
        step(k)
    gc.collect()
    if not gc_enabled:
        gc.disable()
    try:
        t0 = time.perf_counter()
        for k in range(warmup, warmup + steps):
            step(k)
        elapsed = time.perf_counter() - t0
    finally:
        gc.enable()
    return elapsed / steps * 1e3


def bench_demo(sizes: Sizes, seed: int) -> dict[str, Any]:
    data = nn.make_moons(100, 0.1, seed=seed)
    X, y = data.X, [2 * c - 1 for c in data.y]

    micro_step, micro_init = micrograd_demo(seed, X, y)
    ours_step, ours_model = valuegrad_demo(seed, X, y)
    same_init = [p.data for p in ours_model.parameters()] == micro_init
    first_loss = {MICRO.name: micro_step(0)[0], OURS.name: ours_step(0)[0]}

    ms: dict[str, dict[str, float]] = {}
    for setting, gc_enabled in (("gc_on", True), ("gc_off", False)):
        ms[setting] = {
            MICRO.name: mean_step_ms(micrograd_demo(seed, X, y)[0], 1, sizes.timed_steps, gc_enabled),
            OURS.name: mean_step_ms(valuegrad_demo(seed, X, y)[0], 1, sizes.timed_steps, gc_enabled),
        }

    # The traced step: its first step (tracing, code generation, one step) timed on its own,
    # its loss checked against the eager engine's; then timed from fresh models.
    traced: dict[str, dict[str, Any]] = {}
    for name, batched, steps in (("replay", False, sizes.timed_steps),
                                 ("batched", True, sizes.batched_steps)):
        t0 = time.perf_counter()
        traced_step, _, program = traced_demo(seed, X, y, batched)
        loss0 = traced_step(0)
        first_s = time.perf_counter() - t0
        traced[name] = {
            "first_step_loss": loss0, "first_step_seconds": first_s,
            "first_step_loss_rel_diff": abs(loss0 - first_loss[OURS.name]) / abs(first_loss[OURS.name]),
            "ms_per_step": mean_step_ms(traced_demo(seed, X, y, batched)[0], 5 if batched else 1, steps),
            "timed_steps": steps, "instructions": len(program.instructions),
        }

    # valuegrad trains the whole demo run from a fresh model: eager, then batched replay.
    eager_step, eager_model = valuegrad_demo(seed, X, y)
    batched_step, batched_model, _ = traced_demo(seed, X, y, True)
    trained: dict[str, dict[str, Any]] = {}
    for name, step, model in (("eager", lambda k: eager_step(k)[0], eager_model),
                              ("batched", batched_step, batched_model)):
        t0 = time.perf_counter()
        for k in range(sizes.train_steps):
            final_loss = step(k)
        train_s = time.perf_counter() - t0
        with engine.no_grad():
            correct = sum((yi > 0) == (model(x)[0].data > 0) for x, yi in zip(X, y))
        trained[name] = {"seconds": train_s, "final_loss": final_loss, "accuracy": correct / len(X),
                         "weights": [p.data for p in model.parameters()]}
    eager_w, batched_w = trained["eager"].pop("weights"), trained["batched"].pop("weights")
    traced["batched"]["train"] = trained["batched"]
    traced["batched"]["weights_max_rel_diff"] = max(abs(a - b) / max(1.0, abs(a))
                                                    for a, b in zip(eager_w, batched_w))

    return {
        "points": len(X), "ms_per_step": ms, "same_initial_weights": same_init,
        "first_step_loss": first_loss, "train_steps": sizes.train_steps,
        "train_seconds": trained["eager"]["seconds"], "final_loss": trained["eager"]["final_loss"],
        "final_accuracy": trained["eager"]["accuracy"], "traced": traced,
        "torch": bench_torch(sizes, X, y, model_weights(valuegrad_demo(seed, X, y)[1])),
    }


def model_weights(model: nn.MLP) -> list[tuple[list[list[float]], list[float]]]:
    """Per layer, the weight matrix (one row per neuron) and the biases, as floats."""
    return [([[w.data for w in n.w] for n in layer.neurons], [n.b.data for n in layer.neurons])
            for layer in model.layers]


def bench_torch(sizes: Sizes, X: Sequence[Sequence[float]], y: Sequence[int],
                weights: list[tuple[list[list[float]], list[float]]]) -> dict[str, Any]:
    """The demo step on PyTorch float64 tensors, if PyTorch is importable."""
    try:
        import torch  # type: ignore[import-not-found, unused-ignore]
    except ImportError:
        return {"skipped": "torch is not importable"}
    layers: list[Any] = []
    for i, (w, b) in enumerate(weights):
        linear = torch.nn.Linear(len(w[0]), len(w), dtype=torch.float64)
        with torch.no_grad():
            linear.weight.copy_(torch.tensor(w, dtype=torch.float64))
            linear.bias.copy_(torch.tensor(b, dtype=torch.float64))
        layers += [linear] if i == len(weights) - 1 else [linear, torch.nn.ReLU()]
    model = torch.nn.Sequential(*layers)
    params = list(model.parameters())
    inputs = torch.tensor(X, dtype=torch.float64)
    labels = torch.tensor(y, dtype=torch.float64)

    def step(k: int) -> float:
        scores = model(inputs).squeeze(1)
        loss = torch.relu(1 - labels * scores).mean() + ALPHA * sum((p * p).sum() for p in params)
        model.zero_grad()
        loss.backward()
        with torch.no_grad():
            for p in params:
                p -= demo_lr(k % 100) * p.grad
        return loss.item()

    first_loss = step(0)
    return {"version": torch.__version__, "threads": torch.get_num_threads(), "first_step_loss": first_loss,
            "ms_per_step": mean_step_ms(lambda k: step(k + 1), 5, sizes.torch_steps)}


# --------------------------------------------------------------------------------------------
# 3. Memory per node
# --------------------------------------------------------------------------------------------


def bench_memory(sizes: Sizes, seed: int) -> dict[str, Any]:
    program = make_program(sizes.memory_nodes, ADD_MUL, seed)
    result: dict[str, Any] = {"nodes": program.n_ops, "forward_bytes_per_node": {},
                              "backward_bytes_per_node": {}}
    for eng in ENGINES:
        compiled = compile_program(program, eng)  # allocated before the baseline
        gc.collect()
        tracemalloc.start()
        try:
            baseline = tracemalloc.get_traced_memory()[0]
            root = run_program(compiled)
            gc.collect()
            built = tracemalloc.get_traced_memory()[0] - baseline
            root.backward()
            gc.collect()  # micrograd's backward leaves its topological order in a cycle
            after_backward = tracemalloc.get_traced_memory()[0] - baseline
        finally:
            tracemalloc.stop()
        result["forward_bytes_per_node"][eng.name] = built / program.n_ops
        result["backward_bytes_per_node"][eng.name] = after_backward / program.n_ops
        del root, compiled
        gc.collect()  # micrograd's nodes sit in reference cycles (each node and its closure)
    return result


# --------------------------------------------------------------------------------------------
# 4. Deepest chain
# --------------------------------------------------------------------------------------------


def backward_works(eng: Engine, depth: int) -> bool:
    root, _ = chain(eng, depth)
    try:
        root.backward()
    except RecursionError:
        return False
    finally:
        del root
        gc.collect()
    return True


def micrograd_max_depth(bound: int) -> int:
    """The longest chain micrograd can run backward on, up to ``bound``: double the length
    until backward fails, then bisect between the last success and the first failure."""
    good, bad = 0, 1
    while bad <= bound and backward_works(MICRO, bad):
        good, bad = bad, bad * 2
    if bad > bound:
        return good
    while bad - good > 1:
        mid = (good + bad) // 2
        good, bad = (mid, bad) if backward_works(MICRO, mid) else (good, mid)
    return good


def bench_depth(sizes: Sizes) -> dict[str, Any]:
    micro_depth = micrograd_max_depth(sizes.deep_chain)
    t0 = time.perf_counter()
    root, (a, _) = chain(OURS, sizes.deep_chain)
    root.backward()
    ours_s = time.perf_counter() - t0
    ok = math.isfinite(a.grad)
    del root
    return {"recursion_limit": sys.getrecursionlimit(),
            "max_depth": {MICRO.name: micro_depth, OURS.name: sizes.deep_chain if ok else 0},
            "valuegrad_chain_seconds": ours_s}


# --------------------------------------------------------------------------------------------
# 5. Digits, one epoch
# --------------------------------------------------------------------------------------------

DIGITS_BATCH = 32
DIGITS_LR = 0.01


class _Reached(Exception):
    """Raised by the epoch callback to stop training once the accuracy target is met."""


Digits = tuple[list[list[float]], list[list[float]], list[int], list[int]]


def digits_split(seed: int) -> Digits:
    """Digits split 70/30 stratified, standardized with the training split's statistics:
    ``(X_train, X_test, y_train, y_test)``."""
    data = nn.load_digits()
    X_train, X_test, y_train, y_test = nn.train_test_split(data.X, data.y, test_size=0.3, seed=seed)
    X_train, X_test, _ = nn.standardize(X_train, X_test)
    return X_train, X_test, y_train, y_test


def digits_fit(split: Digits, seed: int, epochs: int, compile: bool, with_test: bool = False,
               on_epoch_end: Callable[[int, nn.train.History], None] | None = None) -> nn.train.History:
    """``nn.train.fit`` of a fresh ``MLP(64, [32, 10])`` with Adam on the digits."""
    X_train, X_test, y_train, y_test = split
    model = nn.MLP(len(X_train[0]), [32, 10], rng=seed)
    optimizer = nn.Adam(model.parameters(), lr=DIGITS_LR)
    return nn.train.fit(model, X_train, y_train, loss="cross_entropy", optimizer=optimizer, epochs=epochs,
                        batch_size=DIGITS_BATCH, seed=seed, n_classes=10,
                        X_test=X_test if with_test else None, y_test=y_test if with_test else None,
                        progress=False, compile=compile, on_epoch_end=on_epoch_end)


def epoch_clock() -> tuple[list[float], Callable[[int, nn.train.History], None]]:
    """A list of times, starting now, and an ``on_epoch_end`` callback that appends to it."""
    times = [time.perf_counter()]
    return times, lambda epoch, history: times.append(time.perf_counter())


def bench_digits(sizes: Sizes, seed: int) -> dict[str, Any]:
    split = digits_split(seed)
    X_train, X_test, y_train, y_test = split
    n_batches = math.ceil(len(X_train) / DIGITS_BATCH)

    # Compiled: the first epoch traces and generates the code; the next ones are timed apart.
    times, clock = epoch_clock()
    digits_fit(split, seed, 1 + sizes.digits_epochs, compile=True, on_epoch_end=clock)
    epoch_s = [b - a for a, b in zip(times, times[1:])]
    compiled = {"first_epoch_seconds": epoch_s[0], "epoch_seconds": sum(epoch_s[1:]) / len(epoch_s[1:])}

    # Eager: the whole epoch, or its first batches scaled to the epoch by sample count.
    batches = sizes.digits_eager_batches or n_batches
    n_samples = min(len(X_train), batches * DIGITS_BATCH)
    part = (X_train[:n_samples], X_test, y_train[:n_samples], y_test)
    t0 = time.perf_counter()
    digits_fit(part, seed, 1, compile=False)
    eager_s = time.perf_counter() - t0
    eager = {"batches": min(batches, n_batches), "samples": n_samples,
             "measured_seconds": eager_s, "epoch_seconds": eager_s * len(X_train) / n_samples}

    # Compiled, from a fresh model, until the test accuracy reaches the target.
    accuracy: list[float] = []

    def stop(epoch: int, history: nn.train.History) -> None:
        accuracy.append(history.rows[-1]["test_accuracy"])
        if accuracy[-1] >= DIGITS_ACCURACY:
            raise _Reached

    t0 = time.perf_counter()
    try:
        digits_fit(split, seed, sizes.digits_max_epochs, compile=True, with_test=True, on_epoch_end=stop)
    except _Reached:
        pass
    to_target = {"epochs": len(accuracy), "seconds": time.perf_counter() - t0,
                 "test_accuracy": accuracy[-1], "reached": accuracy[-1] >= DIGITS_ACCURACY,
                 "max_epochs": sizes.digits_max_epochs}

    return {"train": len(X_train), "test": len(X_test), "features": len(X_train[0]), "batches": n_batches,
            "compiled": compiled, "eager": eager, "to_target": to_target,
            "torch": bench_torch_digits(sizes, split, seed)}


def bench_torch_digits(sizes: Sizes, split: Digits, seed: int) -> dict[str, Any]:
    """An epoch of the digits model on PyTorch float64 tensors, if PyTorch is importable."""
    try:
        import torch  # type: ignore[import-not-found, unused-ignore]
    except ImportError:
        return {"skipped": "torch is not importable"}
    X_train, X_test, y_train, y_test = split
    torch.manual_seed(seed)
    model = torch.nn.Sequential(torch.nn.Linear(len(X_train[0]), 32, dtype=torch.float64), torch.nn.ReLU(),
                                torch.nn.Linear(32, 10, dtype=torch.float64))
    optimizer = torch.optim.Adam(model.parameters(), lr=DIGITS_LR)
    inputs = torch.tensor(X_train, dtype=torch.float64)
    labels = torch.tensor(y_train, dtype=torch.long)

    def epoch(number: int) -> None:
        order = list(range(len(X_train)))
        random.Random(seed + number).shuffle(order)  # the same shuffling as nn.train.fit
        index = torch.tensor(order)
        for start in range(0, len(order), DIGITS_BATCH):
            batch = index[start:start + DIGITS_BATCH]
            loss = torch.nn.functional.cross_entropy(model(inputs[batch]), labels[batch])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()

    # At its default thread count and at one thread (as valuegrad); the faster one counts. On
    # ops this small a second thread costs more than it saves: ten times more when another
    # process is busy on a CPU.
    default_threads = torch.get_num_threads()
    epoch_s: dict[int, float] = {}
    done = 0  # epochs trained
    try:
        for threads in sorted({default_threads, 1}, reverse=True):
            torch.set_num_threads(threads)
            epoch(done + 1)  # warm-up
            t0 = time.perf_counter()
            for number in range(done + 2, done + 2 + sizes.digits_epochs):
                epoch(number)
            epoch_s[threads] = (time.perf_counter() - t0) / sizes.digits_epochs
            done += 1 + sizes.digits_epochs
    finally:
        torch.set_num_threads(default_threads)
    with torch.no_grad():
        predicted = model(torch.tensor(X_test, dtype=torch.float64)).argmax(dim=1)
    test_accuracy = float((predicted == torch.tensor(y_test)).double().mean())
    best = min(epoch_s, key=lambda threads: epoch_s[threads])
    return {"version": torch.__version__, "threads": best, "epoch_seconds": epoch_s[best],
            "epoch_seconds_by_threads": {str(k): v for k, v in epoch_s.items()},
            "epochs": done, "test_accuracy": test_accuracy}


# --------------------------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------------------------


def versions() -> dict[str, str]:
    def version(dist: str) -> str:
        try:
            return metadata.version(dist)
        except metadata.PackageNotFoundError:
            return "not installed"

    return {"python": f"{platform.python_implementation()} {platform.python_version()}",
            "platform": platform.platform(), "machine": platform.machine(),
            "cpus": str(os.cpu_count()), "valuegrad": version("valuegrad"),
            "micrograd": version("micrograd"), "load_average": load_average()}


def load_average() -> str:
    """The 1-minute load average, a hint that other processes shared the CPUs."""
    try:
        return f"{os.getloadavg()[0]:.2f}"
    except (AttributeError, OSError):  # not on Windows
        return "unknown"


def speedup(times: dict[str, float]) -> float:
    """How many times faster valuegrad is (micrograd's time over ours)."""
    return times[MICRO.name] / times[OURS.name]


def faster(ratio: float) -> str:
    """A speed ratio (> 1: faster) as text."""
    return f"{ratio:.2f}x faster" if ratio >= 1.0 else f"{1.0 / ratio:.2f}x slower"


def mem_ratio(bytes_per_node: dict[str, float]) -> float:
    """valuegrad's bytes per node over micrograd's."""
    return bytes_per_node[OURS.name] / bytes_per_node[MICRO.name]


def report(figures: dict[str, Any]) -> list[str]:
    """The table, as lines."""
    ops, demo, mem, depth = figures["ops"], figures["demo"], figures["memory"], figures["depth"]
    rows: list[tuple[str, str, str, str]] = []

    def section(title: str) -> None:
        rows.append((title, "", "", ""))

    def row(label: str, ours: str, micro: str, ratio: str = "") -> None:
        rows.append(("  " + label, ours, micro, ratio))

    section(f"1. mixed-op graph, {ops['ops']:,} ops (best of {figures['sizes']['repeats']})")
    row("Values in the graph", f"{ops['values'][OURS.name]:,}", f"{ops['values'][MICRO.name]:,}")
    for key, label in (("forward_us_per_op", "forward, µs/op"), ("backward_us_per_op", "backward, µs/op")):
        row(label, f"{ops[key][OURS.name]:.3f}", f"{ops[key][MICRO.name]:.3f}",
            faster(speedup(ops[key])))
    total = {name: ops["forward_us_per_op"][name] + ops["backward_us_per_op"][name] for name in ops["values"]}
    row("forward + backward, µs/op", f"{total[OURS.name]:.3f}", f"{total[MICRO.name]:.3f}",
        faster(speedup(total)))

    section(f"2. demo workload: {demo['points']} moons, MLP(2, [16, 16, 1]), full-batch SGD")
    for setting, label in (("gc_on", "ms/step"), ("gc_off", "ms/step, garbage collector off")):
        times = demo["ms_per_step"][setting]
        row(f"{label} (mean of {figures['sizes']['timed_steps']})", f"{times[OURS.name]:.1f}",
            f"{times[MICRO.name]:.1f}", faster(speedup(times)))
    torch_figures = demo["torch"]
    micro_ms = demo["ms_per_step"]["gc_on"][MICRO.name]
    replay, batched = demo["traced"]["replay"], demo["traced"]["batched"]
    row(f"replay (floats, per sample), ms/step (mean of {replay['timed_steps']})",
        f"{replay['ms_per_step']:.2f}", f"{micro_ms:.1f}", faster(micro_ms / replay["ms_per_step"]))
    vs_torch = "" if "skipped" in torch_figures else \
        f"; vs PyTorch: {faster(torch_figures['ms_per_step'] / batched['ms_per_step'])}"
    row(f"batched replay (numpy), ms/step (mean of {batched['timed_steps']})",
        f"{batched['ms_per_step']:.3f}", f"{micro_ms:.1f}",
        faster(micro_ms / batched["ms_per_step"]) + vs_torch)
    row("first step with trace + code generation", "", "",
        f"replay {replay['first_step_seconds']:.2f} s, batched {batched['first_step_seconds']:.2f} s "
        f"({batched['instructions']:,} instructions)")
    row("loss at step 0", f"{demo['first_step_loss'][OURS.name]:.6f}",
        f"{demo['first_step_loss'][MICRO.name]:.6f}",
        f"PyTorch: {torch_figures['first_step_loss']:.6f}" if "first_step_loss" in torch_figures else "")
    row("loss at step 0, replay / batched replay",
        f"{replay['first_step_loss']:.6f} / {batched['first_step_loss']:.6f}", "")
    row(f"train accuracy after {demo['train_steps']} steps", f"{demo['final_accuracy']:.3f}",
        "(not run)", f"in {demo['train_seconds']:.1f} s")
    row(f"train accuracy after {demo['train_steps']} steps, batched replay",
        f"{batched['train']['accuracy']:.3f}", "(not run)",
        f"in {batched['train']['seconds']:.2f} s, code generation included")
    if "skipped" in torch_figures:
        row("PyTorch float64 tensors, ms/step", "", "", f"skipped: {torch_figures['skipped']}")
    else:
        ratio = demo["ms_per_step"]["gc_on"][OURS.name] / torch_figures["ms_per_step"]
        row(f"PyTorch {torch_figures['version']} float64 tensors, ms/step", "", "",
            f"{torch_figures['ms_per_step']:.3f} ms ({ratio:.0f}x faster than valuegrad eager)")

    section(f"3. memory (tracemalloc), {mem['nodes']:,} + and * nodes")
    for key, label in (("forward_bytes_per_node", "bytes/node after forward"),
                       ("backward_bytes_per_node", "bytes/node after backward")):
        row(label, f"{mem[key][OURS.name]:.0f}", f"{mem[key][MICRO.name]:.0f}",
            f"{mem_ratio(mem[key]):.2f}x the bytes")

    section(f"4. deepest chain with a working backward (recursion limit {depth['recursion_limit']})")
    ours_depth = depth["max_depth"][OURS.name]
    row("chain length", f">= {ours_depth:,}" if ours_depth else "failed",
        f"{depth['max_depth'][MICRO.name]:,}", f"ours in {depth['valuegrad_chain_seconds']:.1f} s")

    digits = figures["digits"]
    compiled, eager, reached = digits["compiled"], digits["eager"], digits["to_target"]
    section(f"5. digits, one epoch: {digits['train']} train / {digits['test']} test, MLP(64, [32, 10]), "
            f"Adam, batches of {DIGITS_BATCH} ({digits['batches']} per epoch)")
    row(f"compiled (batched replay), s/epoch (mean of {figures['sizes']['digits_epochs']})",
        f"{compiled['epoch_seconds']:.3f}", "", f"{eager['epoch_seconds'] / compiled['epoch_seconds']:.0f}x "
        f"faster than eager")
    row("compiled, first epoch with trace + code generation, s", f"{compiled['first_epoch_seconds']:.2f}",
        "")
    scaled = "" if eager["batches"] == digits["batches"] else \
        f" ({eager['batches']} of {digits['batches']} batches, scaled)"
    row(f"eager, s/epoch{scaled}", f"{eager['epoch_seconds']:.2f}", "")
    torch_digits = digits["torch"]
    if "skipped" in torch_digits:
        row("PyTorch float64 tensors, s/epoch", "", "", f"skipped: {torch_digits['skipped']}")
    else:
        threads = torch_digits["threads"]
        row(f"PyTorch {torch_digits['version']} float64 tensors, s/epoch "
            f"(mean of {figures['sizes']['digits_epochs']}, {threads} thread{'s' if threads > 1 else ''})",
            "", "", f"{torch_digits['epoch_seconds']:.4f} s (compiled: "
            f"{faster(torch_digits['epoch_seconds'] / compiled['epoch_seconds'])})")
    row(f"compiled until test accuracy >= {DIGITS_ACCURACY}",
        f"{reached['epochs']} epoch{'s' if reached['epochs'] != 1 else ''}", "",
        f"in {reached['seconds']:.2f} s, test accuracy {reached['test_accuracy']:.3f}"
        + ("" if reached["reached"] else f" (not reached in {reached['max_epochs']} epochs)"))

    headers = ("measurement", "valuegrad", "micrograd", "valuegrad vs micrograd")
    table = [headers, *[r for r in rows if r[1] or r[2] or r[3]]]  # section titles span the row
    width = [max(len(r[i]) for r in table) for i in range(4)]

    def line(r: Sequence[str]) -> str:
        if not (r[1] or r[2] or r[3]):  # a section title spans the row
            return r[0]
        return f"{r[0]:<{width[0]}}  {r[1]:>{width[1]}}  {r[2]:>{width[2]}}  {r[3]}".rstrip()

    rule = "-" * (sum(width) + 6)
    return [line(headers), rule, *[line(r) for r in rows], rule]


def summary(figures: dict[str, Any]) -> dict[str, Any]:
    demo = figures["demo"]
    speed = speedup(demo["ms_per_step"]["gc_on"])
    memory = mem_ratio(figures["memory"]["backward_bytes_per_node"])
    batched_ms = demo["traced"]["batched"]["ms_per_step"]
    batched = demo["ms_per_step"]["gc_on"][MICRO.name] / batched_ms
    torch_ratio = None if "skipped" in demo["torch"] else batched_ms / demo["torch"]["ms_per_step"]
    reached = figures["digits"]["to_target"]
    return {"demo_speedup": speed, "speed_target": SPEED_TARGET, "speed_met": speed >= SPEED_TARGET,
            "memory_ratio": memory, "memory_target": MEMORY_TARGET, "memory_met": memory <= MEMORY_TARGET,
            "batched_speedup": batched, "batched_target": BATCHED_TARGET,
            "batched_met": batched >= BATCHED_TARGET,
            "batched_vs_torch": torch_ratio, "torch_target": TORCH_TARGET,
            "torch_met": None if torch_ratio is None else torch_ratio <= TORCH_TARGET,
            "digits_accuracy": reached["test_accuracy"], "digits_seconds": reached["seconds"],
            "digits_target": [DIGITS_ACCURACY, DIGITS_SECONDS],
            "digits_met": reached["reached"] and reached["seconds"] < DIGITS_SECONDS}


def met(value: bool | None) -> str:
    return "not measured" if value is None else "met" if value else "MISSED"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke test")
    parser.add_argument("--json", metavar="PATH", help="also write the figures to PATH as JSON")
    parser.add_argument("--seed", type=int, default=0, help="seed of the data, weights and graphs")
    args = parser.parse_args(argv)
    sizes = QUICK if args.quick else FULL
    start = time.perf_counter()

    info = versions()
    print("valuegrad vs micrograd" + (" (--quick: small sizes)" if args.quick else ""))
    print(f"  Python {info['python']} on {info['platform']} ({info['machine']}, {info['cpus']} CPUs)")
    print(f"  valuegrad {info['valuegrad']}, micrograd {info['micrograd']}, seed {args.seed}, "
          f"load average {info['load_average']} (timings are noisy if it is near the CPU count)")
    print(flush=True)

    figures: dict[str, Any] = {"versions": info, "seed": args.seed, "quick": args.quick,
                               "sizes": asdict(sizes)}
    for key, label, run in (("ops", "1/5 per-op speed", lambda: bench_ops(sizes, args.seed)),
                            ("demo", "2/5 demo workload", lambda: bench_demo(sizes, args.seed)),
                            ("memory", "3/5 memory", lambda: bench_memory(sizes, args.seed)),
                            ("depth", "4/5 deepest chain", lambda: bench_depth(sizes)),
                            ("digits", "5/5 digits", lambda: bench_digits(sizes, args.seed))):
        t0 = time.perf_counter()
        figures[key] = run()
        print(f"  {label}: done in {time.perf_counter() - t0:.1f} s", file=sys.stderr, flush=True)
    figures["summary"] = summary(figures)
    figures["seconds"] = time.perf_counter() - start

    print("\n".join(report(figures)))
    demo, traced = figures["demo"], figures["demo"]["traced"]
    loss_diff = max(traced[name]["first_step_loss_rel_diff"] for name in ("replay", "batched"))
    trained = traced["batched"]["train"]
    checks = []
    if not demo["same_initial_weights"]:
        checks.append("the two demo models did not start from the same weights")
    if figures["ops"]["max_leaf_grad_rel_diff"] > 1e-9:
        checks.append(f"leaf gradients differ by {figures['ops']['max_leaf_grad_rel_diff']:.2e}")
    if loss_diff > 1e-9:
        checks.append(f"the step-0 loss of replay or batched replay differs from the eager engine's by "
                      f"{loss_diff:.2e} (relative)")
    if traced["batched"]["weights_max_rel_diff"] > 1e-6:
        checks.append(f"after {demo['train_steps']} steps, batched replay's weights differ from eager's by "
                      f"{traced['batched']['weights_max_rel_diff']:.2e}")
    if trained["accuracy"] != demo["final_accuracy"]:
        checks.append(f"batched replay trains to accuracy {trained['accuracy']:.3f}, eager to "
                      f"{demo['final_accuracy']:.3f}")
    print("checks: " + ("; ".join(checks) if checks else
                        f"same initial weights; leaf gradients of the mixed graph agree to "
                        f"{figures['ops']['max_leaf_grad_rel_diff']:.1e}; step-0 loss of replay and "
                        f"batched replay equal the eager engine's to {loss_diff:.1e} (relative); "
                        f"batched replay trains to accuracy {trained['accuracy']:.3f} in "
                        f"{demo['train_steps']} steps, as eager, weights within "
                        f"{traced['batched']['weights_max_rel_diff']:.1e} of eager's"))
    s = figures["summary"]
    torch_part = "PyTorch not measured" if s["batched_vs_torch"] is None else \
        f"its step time {s['batched_vs_torch']:.2f}x PyTorch's"
    print(f"summary: demo step {s['demo_speedup']:.2f}x faster than micrograd "
          f"(target >= {SPEED_TARGET:.0f}x: {met(s['speed_met'])}); "
          f"memory per node {s['memory_ratio']:.2f}x micrograd's "
          f"(target <= {MEMORY_TARGET:.2f}x: {met(s['memory_met'])}); "
          f"batched replay {s['batched_speedup']:.0f}x faster than micrograd "
          f"(target >= {BATCHED_TARGET:.0f}x: {met(s['batched_met'])}), {torch_part} "
          f"(target <= {TORCH_TARGET:.0f}x: {met(s['torch_met'])}); "
          f"digits test accuracy {s['digits_accuracy']:.3f} in {s['digits_seconds']:.1f} s "
          f"(target >= {DIGITS_ACCURACY} in < {DIGITS_SECONDS:.0f} s: {met(s['digits_met'])}); "
          f"run time {figures['seconds']:.0f} s")
    if args.json:
        write_json_atomic(args.json, figures)
        print(f"figures written to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
