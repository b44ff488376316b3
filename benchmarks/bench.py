"""Benchmark valuegrad's engine against micrograd 0.1.0, both measured in the same run.

Run it with ``make bench`` (which installs micrograd), or ``python benchmarks/bench.py``.
A full run takes about two minutes on two cores and peaks near 2 GB (micrograd's million-node
graph under ``tracemalloc``). Options: ``--quick`` (small sizes, a smoke test of about twenty
seconds), ``--json PATH`` (also write every figure to ``PATH`` as JSON), ``--seed N``.

What is measured (each module's docstring says how):

1. per-op speed of a seeded random graph of mixed ops, forward and backward: ``measure_ops.py``;
2. micrograd's demo training step (100 moons, ``MLP(2, [16, 16, 1])``, hinge + L2, SGD): eager,
   traced and replayed on floats, batched replay on numpy, and PyTorch: ``measure_demo.py``;
3. memory per node of a graph of ``+`` and ``*``, after forward and after backward:
   ``measure_memory.py``;
4. the deepest chain whose backward works: ``measure_chain.py``;
5. digits, one epoch of ``MLP(64, [32, 10])`` with Adam: compiled, eager and PyTorch, and
   compiled training to 0.95 test accuracy: ``measure_digits.py``;
6. scaling: trace time and compiled epochs of MLPs of 2.4k to 100k parameters against PyTorch's,
   and the plot ``out/bench/scaling.png``: ``measure_scaling.py``;
7. what ``engine.detect_anomaly`` costs per node, inside it and outside: ``measure_anomaly.py``.

The workloads are in ``workload_graphs.py``, ``workload_demo.py`` and ``workload_digits.py``,
the sizes and targets in ``settings.py``, the table and the JSON in ``report.py``. That the
engines' numbers agree (micrograd's and valuegrad's gradients and losses, replay against the
eager engine) is reported here and checked by ``tests/test_bench_workloads.py``.

The targets are valuegrad >= 10x micrograd's speed on the demo workload and <= 1/5 of its
memory per node (the after-backward figure, the graph a training step holds at its peak);
batched replay of the demo step >= 500x micrograd's speed and at most twice PyTorch's step
time; digits trained to >= 0.95 test accuracy in under 60 s; and, scaling, a compiled digits
epoch at most PyTorch's, a 100k-parameter one at most twice PyTorch's, and the trace time per
instruction flat (largest over smallest at most 1.5x).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run from a checkout that is not pip-installed; benchmarks.* too
    sys.path.insert(0, str(ROOT))

try:
    import micrograd  # type: ignore[import-untyped]  # noqa: F401
except ImportError:  # a message, not a traceback
    sys.exit("micrograd is not installed: run `make bench`, or `pip install micrograd==0.1.0`")
try:
    import numpy  # noqa: F401
except ImportError:
    sys.exit("numpy is not installed (batched replay needs it): run `make bench`, or "
             "`pip install 'valuegrad[fast]'`")

from benchmarks import report  # noqa: E402
from benchmarks.measure_anomaly import measure_anomaly  # noqa: E402
from benchmarks.measure_chain import measure_chain  # noqa: E402
from benchmarks.measure_demo import measure_demo  # noqa: E402
from benchmarks.measure_digits import measure_digits  # noqa: E402
from benchmarks.measure_memory import measure_memory  # noqa: E402
from benchmarks.measure_ops import measure_ops  # noqa: E402
from benchmarks.measure_scaling import measure_scaling  # noqa: E402
from benchmarks.settings import FULL, QUICK  # noqa: E402

PLOT = ROOT / "out" / "bench" / "scaling.png"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke test")
    parser.add_argument("--json", metavar="PATH", help="also write the figures to PATH as JSON")
    parser.add_argument("--seed", type=int, default=0, help="seed of the data, weights and graphs")
    args = parser.parse_args(argv)
    sizes = QUICK if args.quick else FULL
    start = time.perf_counter()

    info = report.versions()
    print("\n".join(report.header(info, args.quick, args.seed)), flush=True)

    figures: dict[str, Any] = {"versions": info, "seed": args.seed, "quick": args.quick,
                               "sizes": asdict(sizes)}
    measurements: tuple[tuple[str, str, Callable[[], dict[str, Any]]], ...] = (
        ("ops", "1/7 per-op speed", lambda: measure_ops(sizes, args.seed)),
        ("demo", "2/7 demo workload", lambda: measure_demo(sizes, args.seed)),
        ("memory", "3/7 memory", lambda: measure_memory(sizes, args.seed)),
        ("depth", "4/7 deepest chain", lambda: measure_chain(sizes)),
        ("digits", "5/7 digits", lambda: measure_digits(sizes, args.seed)),
        ("scaling", "6/7 scaling", lambda: measure_scaling(sizes, args.seed, PLOT)),
        ("anomaly", "7/7 anomaly mode", lambda: measure_anomaly(sizes, args.seed)),
    )
    for key, label, run in measurements:
        t0 = time.perf_counter()
        figures[key] = run()
        print(f"  {label}: done in {time.perf_counter() - t0:.1f} s", file=sys.stderr, flush=True)
    figures["summary"] = report.summary(figures)
    figures["seconds"] = time.perf_counter() - start

    report.print_report(figures, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
