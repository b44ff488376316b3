"""1. **Per-op speed.** A seeded random program of mixed ops (``+ - * /``, ``** 2``, ``relu``,
unary ``-``: only ops that micrograd has; :mod:`benchmarks.workload_graphs`) is run by both
engines. We time building the graph (forward) and ``root.backward()`` separately, best of N
with ``time.perf_counter`` and the garbage collector off, and divide by the number of ops.
micrograd makes more than one node for some ops (``a - b`` is ``a + b * -1``); the table shows
how many ``Value`` objects each engine's graph holds. The largest difference between the two
engines' leaf gradients is reported (``tests/test_bench_workloads.py`` checks that they agree).
"""

from __future__ import annotations

import gc
import math
import time
from typing import Any

from benchmarks.settings import Sizes
from benchmarks.workload_graphs import (
    ENGINES,
    MICRO,
    MIXED_OPS,
    OURS,
    bind_program,
    count_values,
    make_op_program,
    run_program,
)


def measure_ops(sizes: Sizes, seed: int) -> dict[str, Any]:
    program = make_op_program(sizes.graph_ops, MIXED_OPS, seed)
    best: dict[str, list[float]] = {eng.name: [math.inf, math.inf] for eng in ENGINES}
    values: dict[str, int] = {}
    results: dict[str, tuple[float, list[float]]] = {}
    for _ in range(sizes.repeats):
        for eng in ENGINES:  # interleaved, so a slow moment of the machine hits both
            bound = bind_program(program, eng)
            gc.collect()
            gc.disable()
            try:
                t0 = time.perf_counter()
                root = run_program(bound)
                t1 = time.perf_counter()
                root.backward()
                t2 = time.perf_counter()
            finally:
                gc.enable()
            best[eng.name][0] = min(best[eng.name][0], t1 - t0)
            best[eng.name][1] = min(best[eng.name][1], t2 - t1)
            values[eng.name] = count_values(root, eng)
            results[eng.name] = (float(root.data), [float(leaf.grad) for leaf in bound[0]])
            del root, bound
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
