"""2. **micrograd's demo step** (:mod:`benchmarks.workload_demo`): mean ms/step over a few steps
after a warm-up step, from fresh models: once with the garbage collector on, as in a user's
training loop (the headline figure), and once with it off. The difference matters: every
micrograd node sits in a reference cycle (it holds the closure that holds it), so its graphs are
freed only by the cyclic collector, whose passes cost time. valuegrad also trains the full 100
steps and reports its training accuracy. With PyTorch installed, the same step on float64
tensors is timed.

The same step is also run from a **traced program**, by **replay** (floats, one sample at a
time) and by **batched replay** (numpy, ``nn.train.CompiledSteps``, which builds the batch's
array and counts its right predictions on every step, as in training). Mean ms/step (garbage
collector on) after warm-up steps, the first of which generates the code (tracing and that
first step are timed on their own, from another fresh model). Both replays' loss at step 0 is
reported beside the eager engine's, and batched replay trains the full 100 steps from a fresh
model: its training accuracy, and how far its weights end from the eager engine's, are
reported (``tests/test_bench_workloads.py`` checks that they agree).
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable, Sequence
from typing import Any

from benchmarks.settings import Sizes
from benchmarks.workload_demo import (
    accuracy,
    demo_data,
    micrograd_demo,
    model_weights,
    torch_demo,
    traced_demo,
    valuegrad_demo,
)
from benchmarks.workload_graphs import MICRO, OURS


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


def measure_demo(sizes: Sizes, seed: int) -> dict[str, Any]:
    X, y = demo_data(seed)

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
    # its loss compared with the eager engine's; then timed from fresh models.
    traced: dict[str, dict[str, Any]] = {}
    for name, batched, steps in (("replay", False, sizes.timed_steps),
                                 ("batched", True, sizes.batched_steps)):
        t0 = time.perf_counter()
        demo = traced_demo(seed, X, y, batched)
        loss0 = demo.loss_step(0)
        first_s = time.perf_counter() - t0
        traced[name] = {
            "first_step_loss": loss0, "first_step_seconds": first_s,
            "first_step_loss_rel_diff": abs(loss0 - first_loss[OURS.name]) / abs(first_loss[OURS.name]),
            "ms_per_step": mean_step_ms(traced_demo(seed, X, y, batched).step, 5 if batched else 1, steps),
            "timed_steps": steps, "instructions": len(demo.program().instructions),
        }

    # valuegrad trains the whole demo run from a fresh model: eager, then batched replay.
    eager_step, eager_model = valuegrad_demo(seed, X, y)
    batched_demo = traced_demo(seed, X, y, True)
    trained: dict[str, dict[str, Any]] = {}
    for name, step, model in (("eager", lambda k: eager_step(k)[0], eager_model),
                              ("batched", batched_demo.loss_step, batched_demo.model)):
        t0 = time.perf_counter()
        for k in range(sizes.train_steps):
            final_loss = step(k)
        train_s = time.perf_counter() - t0
        trained[name] = {"seconds": train_s, "final_loss": final_loss, "accuracy": accuracy(model, X, y),
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
        "torch": measure_torch_demo(sizes, X, y, model_weights(valuegrad_demo(seed, X, y)[1])),
    }


def measure_torch_demo(sizes: Sizes, X: Sequence[Sequence[float]], y: Sequence[int],
                       weights: list[tuple[list[list[float]], list[float]]]) -> dict[str, Any]:
    """The demo step on PyTorch float64 tensors, if PyTorch is importable."""
    try:
        import torch  # type: ignore[import-not-found, unused-ignore]
    except ImportError:
        return {"skipped": "torch is not importable"}
    step = torch_demo(weights, X, y)
    first_loss = step(0)
    # At PyTorch's default thread count and at one thread, the faster counted (as for digits:
    # on tensors this small a second thread is slower, tenfold when another process is busy).
    default_threads, ms = torch.get_num_threads(), {}  # threads -> ms per step
    try:
        for threads in sorted({default_threads, 1}, reverse=True):
            torch.set_num_threads(threads)
            ms[threads] = mean_step_ms(lambda k: step(k + 1), 5, sizes.torch_steps)
    finally:
        torch.set_num_threads(default_threads)
    best = min(ms, key=lambda threads: ms[threads])
    return {"version": torch.__version__, "threads": best, "first_step_loss": first_loss,
            "ms_per_step": ms[best]}
