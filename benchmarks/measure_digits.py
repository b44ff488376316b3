"""5. **Digits, one epoch** (:mod:`benchmarks.workload_digits`). Timed: an epoch with
``compile=True`` (batched replay; the first epoch, which traces and generates the code,
separately from the mean of the next ones), an epoch on the eager engine (``compile=False``;
with ``--quick`` only its first few batches, scaled to the epoch by sample count), and, with
PyTorch installed, an epoch of the same model on float64 tensors (mean of a few epochs after a
warm-up one, at PyTorch's default thread count and at one thread, the faster reported: on
tensors this small a second thread does not help, and it slows PyTorch down about tenfold when
another process is busy on a CPU). None of these evaluate a test set. Then a fresh model trains
compiled, evaluating the test set after each epoch, until its test accuracy reaches 0.95 (at
most 20 epochs): the epochs, the seconds (tracing, code generation and test evaluations
included) and the test accuracy are reported.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

import nn
from benchmarks.settings import DIGITS_ACCURACY, Sizes
from benchmarks.workload_digits import DIGITS_BATCH, Digits, digits_fit, digits_split, torch_digits


class _Reached(Exception):
    """Raised by the epoch callback to stop training once the accuracy target is met."""


def epoch_clock() -> tuple[list[float], Callable[[int, nn.train.History], None]]:
    """A list of times, starting now, and an ``on_epoch_end`` callback that appends to it."""
    times = [time.perf_counter()]
    return times, lambda epoch, history: times.append(time.perf_counter())


def measure_digits(sizes: Sizes, seed: int) -> dict[str, Any]:
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
            "torch": measure_torch_digits(sizes, split, seed)}


def measure_torch_digits(sizes: Sizes, split: Digits, seed: int) -> dict[str, Any]:
    """An epoch of the digits model on PyTorch float64 tensors, if PyTorch is importable."""
    try:
        import torch  # type: ignore[import-not-found, unused-ignore]
    except ImportError:
        return {"skipped": "torch is not importable"}
    epoch, test_accuracy = torch_digits(split, seed)

    return {**best_thread_count(torch, epoch, sizes.digits_epochs), "test_accuracy": test_accuracy()}


def best_thread_count(torch: Any, epoch: Callable[[int], None], epochs: int) -> dict[str, Any]:
    """Time ``epoch`` (the mean of ``epochs`` after a warm-up one) at PyTorch's default thread
    count and at one thread (as valuegrad), and report the faster. On ops this small a second
    thread costs more than it saves: ten times more when another process is busy on a CPU."""
    default_threads = torch.get_num_threads()
    epoch_s: dict[int, float] = {}
    done = 0  # epochs trained
    try:
        for threads in sorted({default_threads, 1}, reverse=True):
            torch.set_num_threads(threads)
            epoch(done + 1)  # warm-up
            t0 = time.perf_counter()
            for number in range(done + 2, done + 2 + epochs):
                epoch(number)
            epoch_s[threads] = (time.perf_counter() - t0) / epochs
            done += 1 + epochs
    finally:
        torch.set_num_threads(default_threads)
    best = min(epoch_s, key=lambda threads: epoch_s[threads])
    return {"version": torch.__version__, "threads": best, "epoch_seconds": epoch_s[best],
            "epoch_seconds_by_threads": {str(k): v for k, v in epoch_s.items()}, "epochs": done}
