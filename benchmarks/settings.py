"""The sizes of each measurement and the targets the summary judges."""

from __future__ import annotations

from dataclasses import dataclass

SPEED_TARGET = 10.0  # valuegrad's demo step at least 10x faster than micrograd's
MEMORY_TARGET = 0.2  # valuegrad's bytes per node at most 1/5 of micrograd's
BATCHED_TARGET = 500.0  # batched replay of the demo step at least 500x faster than micrograd's
TORCH_TARGET = 2.0  # batched replay's demo step at most 2x PyTorch's step time
DIGITS_ACCURACY = 0.95  # digits: test accuracy reached ...
DIGITS_SECONDS = 60.0  # ... in under this many seconds of compiled training
SCALING_DIGITS_TARGET = 1.0  # scaling: digits' MLP(64, [32, 10]) compiled epoch at most PyTorch's
SCALING_LARGEST_TARGET = 2.0  # ... the 100k-parameter MLP's at most twice PyTorch's
SCALING_TRACE_TARGET = 1.5  # ... trace time per instruction, largest over smallest, at most this


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
    scaling_epochs: int  # 6: compiled and PyTorch epochs timed per size, after the first one
    scaling_trace_repeats: int  # 6: traces per size, the fastest counted


FULL = Sizes(graph_ops=100_000, repeats=3, timed_steps=10, torch_steps=50, train_steps=100,
             batched_steps=50, memory_nodes=1_000_000, deep_chain=1_000_000,
             digits_eager_batches=0, digits_epochs=5, digits_max_epochs=20, scaling_epochs=3,
             scaling_trace_repeats=3)
QUICK = Sizes(graph_ops=10_000, repeats=2, timed_steps=2, torch_steps=10, train_steps=20,
              batched_steps=10, memory_nodes=50_000, deep_chain=50_000,
              digits_eager_batches=5, digits_epochs=2, digits_max_epochs=20, scaling_epochs=1,
              scaling_trace_repeats=1)
