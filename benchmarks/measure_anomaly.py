"""**What detect_anomaly costs.** The graph of measurement 3 (chains of ``+`` and ``*`` on shared
leaves, then a balanced tree of ``+``), ``sizes.graph_ops`` nodes, built and differentiated
outside :func:`engine.detect_anomaly` and inside it: bytes per node held after ``backward()``
(``tracemalloc``, as measurement 3) and seconds per node for forward + backward (best of
``sizes.repeats``), and inside ÷ outside for each.
"""

from __future__ import annotations

import contextlib
import gc
import time
import tracemalloc
from typing import Any

import engine
from benchmarks.settings import Sizes
from benchmarks.workload_graphs import ADD_MUL, OURS, bind_program, make_op_program, run_program


def measure_anomaly(sizes: Sizes, seed: int) -> dict[str, Any]:
    """``{"nodes": n, "outside": {...}, "inside": {...}, "bytes_ratio": r, "seconds_ratio": s}``,
    each side with ``bytes_per_node`` (bytes) and ``seconds_per_node`` (seconds); the ratios
    are inside ÷ outside."""
    program = make_op_program(sizes.graph_ops, ADD_MUL, seed)
    result: dict[str, Any] = {"nodes": program.n_ops}
    for side, mode in (("outside", contextlib.nullcontext), ("inside", engine.detect_anomaly)):
        bound = bind_program(program, OURS)  # allocated before the baseline
        gc.collect()
        tracemalloc.start()
        try:
            baseline = tracemalloc.get_traced_memory()[0]
            with mode():
                root = run_program(bound)
                root.backward()
                gc.collect()
                held = tracemalloc.get_traced_memory()[0] - baseline
        finally:
            tracemalloc.stop()
        del root
        gc.collect()
        best = float("inf")
        for _ in range(sizes.repeats):
            bound = bind_program(program, OURS)
            gc.collect()
            start = time.perf_counter()
            with mode():
                run_program(bound).backward()
            best = min(best, time.perf_counter() - start)
        result[side] = {"bytes_per_node": held / program.n_ops, "seconds_per_node": best / program.n_ops}
    result["bytes_ratio"] = result["inside"]["bytes_per_node"] / result["outside"]["bytes_per_node"]
    result["seconds_ratio"] = result["inside"]["seconds_per_node"] / result["outside"]["seconds_per_node"]
    return result
