"""6. **Scaling** (:mod:`benchmarks.workload_scaling`): how cost grows with the model, for MLPs
of about 2.4k, 10k, 34k and 100k parameters. Timed per size:

- tracing one sample's loss and outputs plus generating and running its batched code once
  (best of ``scaling_trace_repeats``, after one warm-up trace of the smallest model), and that
  time per traced instruction;
- a compiled epoch (``fit(compile=True)``; the mean of ``scaling_epochs`` after the first,
  which traces);
- with PyTorch installed, an epoch of the same model on float64 tensors (the mean of
  ``scaling_epochs`` after a warm-up one, at PyTorch's default thread count and at one
  thread, the faster reported, as for digits), and compiled over PyTorch.

The plot ``out/bench/scaling.png`` (with matplotlib) shows both epoch times and the trace time
per instruction against the parameter count.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import nn
from benchmarks.measure_digits import best_thread_count
from benchmarks.settings import Sizes
from benchmarks.workload_scaling import SIZES, compiled_epochs, scaling_data, torch_epoch, trace_seconds


def measure_scaling(sizes: Sizes, seed: int, plot: Path | None = None) -> dict[str, Any]:
    trace_seconds(SIZES[0], seed)  # warm-up: imports, and numpy's first calls
    rows = []
    for size in SIZES:
        data = scaling_data(size, seed)
        traced = [trace_seconds(size, seed) for _ in range(sizes.scaling_trace_repeats)]
        instructions, trace_s = min(traced, key=lambda r: r[1])
        epochs = compiled_epochs(size, data, seed, sizes.scaling_epochs)
        row: dict[str, Any] = {
            "model": size.label, "parameters": nn.MLP(size.features, [size.hidden, 10]).num_parameters(),
            "samples": len(data[0]), "instructions": instructions, "trace_seconds": trace_s,
            "trace_us_per_instruction": trace_s / instructions * 1e6,
            "compiled_first_epoch_seconds": epochs[0],
            "compiled_epoch_seconds": sum(epochs[1:]) / len(epochs[1:])}
        row["torch"] = measure_torch(sizes, size, data, seed)
        if "epoch_seconds" in row["torch"]:
            row["compiled_over_torch"] = row["compiled_epoch_seconds"] / row["torch"]["epoch_seconds"]
        rows.append(row)
    per_instruction = [r["trace_us_per_instruction"] for r in rows]
    result = {"rows": rows, "trace_growth": max(per_instruction) / min(per_instruction)}
    if plot is not None:
        result["plot"] = plot_scaling(rows, plot)
    return result


def measure_torch(sizes: Sizes, size: Any, data: Any, seed: int) -> dict[str, Any]:
    """An epoch of ``size`` on PyTorch float64 tensors, if PyTorch is importable."""
    try:
        import torch  # type: ignore[import-not-found, unused-ignore]
    except ImportError:
        return {"skipped": "torch is not importable"}
    return best_thread_count(torch, torch_epoch(size, data, seed), sizes.scaling_epochs)


def plot_scaling(rows: list[dict[str, Any]], path: Path) -> str:
    """Epoch times (compiled, PyTorch) and trace time per instruction against the parameter
    count, log-log, saved to ``path``; returns the path, or why there is no plot."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "no plot: matplotlib is not installed"
    params = [r["parameters"] for r in rows]
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    left.loglog(params, [r["compiled_epoch_seconds"] for r in rows], "o-", label="valuegrad compiled")
    torch_rows = [(r["parameters"], r["torch"]["epoch_seconds"]) for r in rows
                  if "epoch_seconds" in r["torch"]]
    if torch_rows:
        left.loglog(*zip(*torch_rows), "s--", label="PyTorch float64")
    left.set(xlabel="parameters", ylabel="seconds per epoch", title="one epoch (Adam, batches of 32)")
    left.legend()
    right.semilogx(params, [r["trace_us_per_instruction"] for r in rows], "o-")
    right.set(xlabel="parameters", ylabel="µs per instruction", title="tracing + code generation",
              ylim=(0, 1.2 * max(r["trace_us_per_instruction"] for r in rows)))
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return str(path)


def scaling_lines(scaling: dict[str, Any]) -> list[str]:
    """The scaling table, as lines."""
    headers = ("model", "params", "instructions", "trace s", "µs/instr", "compiled s/epoch",
               "PyTorch s/epoch", "compiled/PyTorch")
    cells = [headers]
    for r in scaling["rows"]:
        torch = r["torch"]
        torch_s = f"{torch['epoch_seconds']:.4f} ({torch['threads']}t)" if "epoch_seconds" in torch \
            else "skipped"
        ratio = f"{r['compiled_over_torch']:.2f}x" if "compiled_over_torch" in r else ""
        cells.append((r["model"], f"{r['parameters']:,}", f"{r['instructions']:,}",
                      f"{r['trace_seconds']:.3f}", f"{r['trace_us_per_instruction']:.2f}",
                      f"{r['compiled_epoch_seconds']:.4f}", torch_s, ratio))
    width = [max(len(c[i]) for c in cells) for i in range(len(headers))]
    lines = ["  ".join(f"{c:>{w}}" if i else f"{c:<{w}}" for i, (c, w) in enumerate(zip(cell, width)))
             for cell in cells]
    samples = scaling["rows"][0]["samples"]
    return [f"6. scaling: MLPs trained compiled, Adam, batches of 32, {samples} samples per epoch", *lines,
            f"   trace time per instruction, largest over smallest: {scaling['trace_growth']:.2f}x"
            + (f"; plot: {scaling['plot']}" if "plot" in scaling else "")]

