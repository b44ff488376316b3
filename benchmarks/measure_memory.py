"""3. **Memory per node.** A graph of ``+`` and ``*`` nodes on shared leaves (one node per op in
both engines, the same chains-and-tree shape as in measurement 1), measured with
``tracemalloc``: memory held after building it and after ``backward()``, minus the memory
before, divided by the number of nodes. Each graph is freed before the next is built.
"""

from __future__ import annotations

import gc
import tracemalloc
from typing import Any

from benchmarks.settings import Sizes
from benchmarks.workload_graphs import ADD_MUL, ENGINES, bind_program, make_op_program, run_program


def measure_memory(sizes: Sizes, seed: int) -> dict[str, Any]:
    program = make_op_program(sizes.memory_nodes, ADD_MUL, seed)
    result: dict[str, Any] = {"nodes": program.n_ops, "forward_bytes_per_node": {},
                              "backward_bytes_per_node": {}}
    for eng in ENGINES:
        bound = bind_program(program, eng)  # allocated before the baseline
        gc.collect()
        tracemalloc.start()
        try:
            baseline = tracemalloc.get_traced_memory()[0]
            root = run_program(bound)
            gc.collect()
            built = tracemalloc.get_traced_memory()[0] - baseline
            root.backward()
            gc.collect()  # micrograd's backward leaves its topological order in a cycle
            after_backward = tracemalloc.get_traced_memory()[0] - baseline
        finally:
            tracemalloc.stop()
        result["forward_bytes_per_node"][eng.name] = built / program.n_ops
        result["backward_bytes_per_node"][eng.name] = after_backward / program.n_ops
        del root, bound
        gc.collect()  # micrograd's nodes sit in reference cycles (each node and its closure)
    return result
