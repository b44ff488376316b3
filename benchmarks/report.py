"""The report: the header, the table of figures, the agreement and summary lines, the JSON."""

from __future__ import annotations

import os
import platform
from collections.abc import Sequence
from importlib import metadata
from typing import Any

from benchmarks.measure_scaling import scaling_lines
from benchmarks.settings import (
    BATCHED_TARGET,
    DIGITS_ACCURACY,
    DIGITS_SECONDS,
    MEMORY_TARGET,
    SCALING_DIGITS_TARGET,
    SCALING_LARGEST_TARGET,
    SCALING_TRACE_TARGET,
    SPEED_TARGET,
    TORCH_TARGET,
)
from benchmarks.workload_digits import DIGITS_BATCH
from benchmarks.workload_graphs import MICRO, OURS
from nn.module import write_json_atomic


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


def header(info: dict[str, str], quick: bool, seed: int) -> list[str]:
    return ["valuegrad vs micrograd" + (" (--quick: small sizes)" if quick else ""),
            f"  Python {info['python']} on {info['platform']} ({info['machine']}, {info['cpus']} CPUs)",
            f"  valuegrad {info['valuegrad']}, micrograd {info['micrograd']}, seed {seed}, "
            f"load average {info['load_average']} (timings are noisy if it is near the CPU count)", ""]


Row = tuple[str, str, str, str]


def _ops_rows(figures: dict[str, Any], section: Any, row: Any) -> None:
    ops = figures["ops"]
    section(f"1. mixed-op graph, {ops['ops']:,} ops (best of {figures['sizes']['repeats']})")
    row("Values in the graph", f"{ops['values'][OURS.name]:,}", f"{ops['values'][MICRO.name]:,}")
    for key, label in (("forward_us_per_op", "forward, µs/op"), ("backward_us_per_op", "backward, µs/op")):
        row(label, f"{ops[key][OURS.name]:.3f}", f"{ops[key][MICRO.name]:.3f}",
            faster(speedup(ops[key])))
    total = {name: ops["forward_us_per_op"][name] + ops["backward_us_per_op"][name] for name in ops["values"]}
    row("forward + backward, µs/op", f"{total[OURS.name]:.3f}", f"{total[MICRO.name]:.3f}",
        faster(speedup(total)))


def _demo_rows(figures: dict[str, Any], section: Any, row: Any) -> None:
    demo = figures["demo"]
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


def _memory_and_chain_rows(figures: dict[str, Any], section: Any, row: Any) -> None:
    mem, depth = figures["memory"], figures["depth"]
    section(f"3. memory (tracemalloc), {mem['nodes']:,} + and * nodes")
    for key, label in (("forward_bytes_per_node", "bytes/node after forward"),
                       ("backward_bytes_per_node", "bytes/node after backward")):
        row(label, f"{mem[key][OURS.name]:.0f}", f"{mem[key][MICRO.name]:.0f}",
            f"{mem_ratio(mem[key]):.2f}x the bytes")

    section(f"4. deepest chain with a working backward (recursion limit {depth['recursion_limit']})")
    ours_depth = depth["max_depth"][OURS.name]
    row("chain length", f">= {ours_depth:,}" if ours_depth else "failed",
        f"{depth['max_depth'][MICRO.name]:,}", f"ours in {depth['valuegrad_chain_seconds']:.1f} s")


def _digits_rows(figures: dict[str, Any], section: Any, row: Any) -> None:
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


def table(figures: dict[str, Any]) -> list[str]:
    """The table, as lines: a section per measurement, a row per figure."""
    rows: list[Row] = []

    def section(title: str) -> None:
        rows.append((title, "", "", ""))

    def row(label: str, ours: str, micro: str, ratio: str = "") -> None:
        rows.append(("  " + label, ours, micro, ratio))

    for add_rows in (_ops_rows, _demo_rows, _memory_and_chain_rows, _digits_rows):
        add_rows(figures, section, row)

    headers = ("measurement", "valuegrad", "micrograd", "valuegrad vs micrograd")
    cells = [headers, *[r for r in rows if r[1] or r[2] or r[3]]]  # section titles span the row
    width = [max(len(r[i]) for r in cells) for i in range(4)]

    def line(r: Sequence[str]) -> str:
        if not (r[1] or r[2] or r[3]):  # a section title spans the row
            return r[0]
        return f"{r[0]:<{width[0]}}  {r[1]:>{width[1]}}  {r[2]:>{width[2]}}  {r[3]}".rstrip()

    rule = "-" * (sum(width) + 6)
    return [line(headers), rule, *[line(r) for r in rows], rule]


def anomaly_line(anomaly: dict[str, Any]) -> str:
    """Section 7: bytes and time per node outside ``engine.detect_anomaly`` and inside it."""
    out, inside = anomaly["outside"], anomaly["inside"]
    return (f"7. detect_anomaly, a graph of {anomaly['nodes']:,} nodes: outside {out['bytes_per_node']:.0f} "
            f"bytes and {out['seconds_per_node'] * 1e6:.2f} µs per node (forward + backward); inside "
            f"{inside['bytes_per_node']:.0f} bytes ({anomaly['bytes_ratio']:.1f}x) and "
            f"{inside['seconds_per_node'] * 1e6:.2f} µs ({anomaly['seconds_ratio']:.1f}x)")


def agreement(figures: dict[str, Any]) -> str:
    """How closely the engines' numbers agree (reported only: tests/test_bench_workloads.py checks it)."""
    demo, traced = figures["demo"], figures["demo"]["traced"]
    loss_diff = max(traced[name]["first_step_loss_rel_diff"] for name in ("replay", "batched"))
    trained = traced["batched"]["train"]
    return (f"agreement (checked by tests/test_bench_workloads.py): initial weights "
            f"{'the same' if demo['same_initial_weights'] else 'DIFFERENT'}; leaf gradients of the mixed "
            f"graph within {figures['ops']['max_leaf_grad_rel_diff']:.1e}; step-0 loss of replay and batched "
            f"replay within {loss_diff:.1e} of the eager engine's (relative); after {demo['train_steps']} "
            f"steps batched replay's weights within {traced['batched']['weights_max_rel_diff']:.1e} of "
            f"eager's, training accuracy {trained['accuracy']:.3f} (eager {demo['final_accuracy']:.3f})")


def summary(figures: dict[str, Any]) -> dict[str, Any]:
    """The headline ratios and whether each target is met."""
    demo = figures["demo"]
    speed = speedup(demo["ms_per_step"]["gc_on"])
    memory = mem_ratio(figures["memory"]["backward_bytes_per_node"])
    batched_ms = demo["traced"]["batched"]["ms_per_step"]
    batched = demo["ms_per_step"]["gc_on"][MICRO.name] / batched_ms
    torch_ratio = None if "skipped" in demo["torch"] else batched_ms / demo["torch"]["ms_per_step"]
    reached = figures["digits"]["to_target"]
    rows = figures["scaling"]["rows"]
    digits_ratio, largest_ratio = (rows[k].get("compiled_over_torch") for k in (0, -1))
    growth = figures["scaling"]["trace_growth"]
    return {"scaling_digits_vs_torch": digits_ratio, "scaling_largest_vs_torch": largest_ratio,
            "scaling_trace_growth": growth,
            "scaling_digits_met": None if digits_ratio is None else digits_ratio <= SCALING_DIGITS_TARGET,
            "scaling_largest_met": None if largest_ratio is None else largest_ratio <= SCALING_LARGEST_TARGET,
            "scaling_trace_met": growth <= SCALING_TRACE_TARGET,
            "demo_speedup": speed, "speed_target": SPEED_TARGET, "speed_met": speed >= SPEED_TARGET,
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


def summary_line(figures: dict[str, Any]) -> str:
    s = figures["summary"]
    torch_part = "PyTorch not measured" if s["batched_vs_torch"] is None else \
        f"its step time {s['batched_vs_torch']:.2g}x PyTorch's"
    return (f"summary: demo step {s['demo_speedup']:.2f}x faster than micrograd "
            f"(target >= {SPEED_TARGET:.0f}x: {met(s['speed_met'])}); "
            f"memory per node {s['memory_ratio']:.2f}x micrograd's "
            f"(target <= {MEMORY_TARGET:.2f}x: {met(s['memory_met'])}); "
            f"batched replay {s['batched_speedup']:.0f}x faster than micrograd "
            f"(target >= {BATCHED_TARGET:.0f}x: {met(s['batched_met'])}), {torch_part} "
            f"(target <= {TORCH_TARGET:.0f}x: {met(s['torch_met'])}); "
            f"digits test accuracy {s['digits_accuracy']:.3f} in {s['digits_seconds']:.1f} s "
            f"(target >= {DIGITS_ACCURACY} in < {DIGITS_SECONDS:.0f} s: {met(s['digits_met'])}); "
            f"scaling: compiled digits epoch {_x(s['scaling_digits_vs_torch'])} PyTorch's "
            f"(target <= {SCALING_DIGITS_TARGET:.1f}x: {met(s['scaling_digits_met'])}), 100k parameters "
            f"{_x(s['scaling_largest_vs_torch'])} (target <= {SCALING_LARGEST_TARGET:.1f}x: "
            f"{met(s['scaling_largest_met'])}), trace time per instruction grows "
            f"{s['scaling_trace_growth']:.2f}x "
            f"(target <= {SCALING_TRACE_TARGET}x: {met(s['scaling_trace_met'])}); "
            f"run time {figures['seconds']:.0f} s")


def _x(ratio: float | None) -> str:
    return "(not measured)" if ratio is None else f"{ratio:.2f}x"


def print_report(figures: dict[str, Any], json_path: str | None) -> None:
    """Print the table, the agreement and the summary line (``figures["summary"]`` is
    :func:`summary`'s); write the figures to ``json_path``."""
    print("\n".join(table(figures)))
    print("\n".join(scaling_lines(figures["scaling"])))
    print(anomaly_line(figures["anomaly"]))
    print(agreement(figures))
    print(summary_line(figures))
    if json_path:
        write_json_atomic(json_path, figures)
        print(f"figures written to {json_path}")
