"""4. **Deepest chain.** The longest chain of alternating ``*``/``+`` ops whose ``backward()``
succeeds: for micrograd (recursive topological sort) found by doubling then bisection under the
default recursion limit; for valuegrad a chain of a million ops is run.
"""

from __future__ import annotations

import gc
import math
import sys
import time
from typing import Any

from benchmarks.settings import Sizes
from benchmarks.workload_graphs import MICRO, OURS, Engine, chain


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


def measure_chain(sizes: Sizes) -> dict[str, Any]:
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
