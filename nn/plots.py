"""Plots of a training run with matplotlib (an optional extra: ``pip install 'valuegrad[plot]'``).

Files are written atomically: drawn to a temporary file in the same folder, then renamed.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Sequence
from typing import Any

from engine import Value, no_grad
from engine.atomic import atomic_path
from nn.train import History


def _pyplot() -> Any:
    try:
        import matplotlib
    except ImportError:
        raise ImportError("plots need matplotlib: pip install 'valuegrad[plot]'") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig: Any, path: str | os.PathLike[str]) -> None:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, bbox_inches="tight")


def plot_history(history: History, path: str | os.PathLike[str], title: str = "") -> None:
    """Loss (left) and accuracy (right) per epoch, train and test, saved as an image at ``path``.

    Raises:
        ImportError: matplotlib is not installed (the message says how to install it).
    """
    plt = _pyplot()
    epochs = history.column("epoch")
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(10, 3.8))
    for ax, key, label in ((ax_loss, "loss", "mean loss"), (ax_acc, "accuracy", "accuracy")):
        ax.plot(epochs, history.column(f"train_{key}"), label="train")
        test = history.column(f"test_{key}")
        if test:
            ax.plot(epochs, test, label="test")
        ax.set_xlabel("epoch")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
        ax.legend()
    ax_loss.set_title("Loss")
    ax_acc.set_title("Accuracy")
    ax_acc.set_ylim(-0.02, 1.02)
    if title:
        fig.suptitle(title)
    _save(fig, path)
    plt.close(fig)


def plot_decision_boundary(predict: Callable[[Sequence[float]], list[Value]], X: Sequence[Sequence[float]],
                           y: Sequence[int], path: str | os.PathLike[str],
                           score: Callable[[list[Value]], float], resolution: int = 60,
                           title: str = "", feature_names: Sequence[str] = ("x1", "x2"),
                           class_names: Sequence[str] | None = None) -> None:
    """The regions a 2-feature model assigns to each class, with the data points on top.

    ``score(output)`` turns the model's output for one grid point into the number that is
    coloured (a class index, or a score whose sign is the class).

    Raises:
        ValueError: the data does not have exactly two features.
        ImportError: matplotlib is not installed.
    """
    if not X or len(X[0]) != 2:
        raise ValueError("a decision boundary can be drawn for exactly two features")
    plt = _pyplot()
    xs = [p[0] for p in X]
    ys = [p[1] for p in X]
    pad_x = 0.1 * (max(xs) - min(xs) or 1.0)
    pad_y = 0.1 * (max(ys) - min(ys) or 1.0)
    gx = [min(xs) - pad_x + i * (max(xs) - min(xs) + 2 * pad_x) / (resolution - 1) for i in range(resolution)]
    gy = [min(ys) - pad_y + j * (max(ys) - min(ys) + 2 * pad_y) / (resolution - 1) for j in range(resolution)]
    with no_grad():
        grid = [[score(predict([a, b])) for a in gx] for b in gy]
    fig, ax = plt.subplots(figsize=(5.5, 4.5))
    ax.contourf(gx, gy, grid, levels=20, cmap="coolwarm", alpha=0.35)
    scatter = ax.scatter(xs, ys, c=list(y), cmap="coolwarm", edgecolors="k", s=22)
    handles, labels = scatter.legend_elements()
    if class_names is not None and len(class_names) == len(handles):
        labels = list(class_names)
    ax.legend(handles, labels, title="class", loc="best")
    ax.set_xlabel(feature_names[0])
    ax.set_ylabel(feature_names[1])
    ax.set_title(title or "Decision boundary")
    _save(fig, path)
    plt.close(fig)


def plot_diagnostics(rows: Sequence[dict[str, str]], activations: Sequence[str],
                     first: tuple[int, list[list[float]]], last: tuple[int, list[list[float]]],
                     path: str | os.PathLike[str], title: str = "") -> None:
    """``valuegrad train --diagnose``'s picture, saved at ``path``: on top, one panel per layer
    with the histogram of its activations in epoch ``first[0]`` and in epoch ``last[0]``
    (``first[1][k]`` and ``last[1][k]``: layer ``k``'s activations, all samples and units);
    below, each layer's update-to-data ratio per epoch (``rows``: the ``diagnostics.csv``
    rows) on a log scale, with Karpathy's guide line at 1e-3 ("Building makemore Part 3",
    2022). ``activations`` names each layer's activation function, for the titles.

    Raises:
        ImportError: matplotlib is not installed.
    """
    plt = _pyplot()
    n = len(activations)
    fig = plt.figure(figsize=(max(8.0, 3.2 * n), 7.0))
    grid = fig.add_gridspec(2, n, height_ratios=(1, 1.1))
    for k, activation in enumerate(activations):
        ax = fig.add_subplot(grid[0, k])
        finite = [[v for v in layers[k] if math.isfinite(v)] for _, layers in (first, last)]
        low, high = min(finite[0] + finite[1], default=0.0), max(finite[0] + finite[1], default=0.0)
        span = (low, high) if high > low else (low - 0.5, high + 0.5)  # (one value: a bar around it)
        for (epoch, _), values in zip((first, last), finite) if first[0] != last[0] else [(last, finite[1])]:
            ax.hist(values, bins=40, range=span, histtype="step", density=True, label=f"epoch {epoch}")
        ax.set_title(f"layer {k + 1} ({activation})")
        ax.set_xlabel("activation")
        ax.legend(fontsize="small")
    ax = fig.add_subplot(grid[1, :])
    for k in range(n):
        points = [(int(r["epoch"]), float(r["update_to_data"])) for r in rows
                  if int(r["layer"]) == k + 1 and r["update_to_data"] and float(r["update_to_data"]) > 0]
        if points:
            ax.plot([e for e, _ in points], [v for _, v in points], marker=".", label=f"layer {k + 1}")
    ax.axhline(1e-3, color="k", linestyle="--", linewidth=1, label="1e-3 (guide)")
    ax.set_yscale("log")
    ax.xaxis.get_major_locator().set_params(integer=True)  # epochs are whole numbers
    ax.set_xlabel("epoch")
    ax.set_ylabel("update-to-data ratio")
    ax.set_title("std(last step's weight change) / std(weights), per layer")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize="small")
    fig.suptitle(title or "Diagnostics")
    fig.tight_layout()
    _save(fig, path)
    plt.close(fig)
