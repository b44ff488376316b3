"""``valuegrad train --diagnose``: per-layer statistics at the end of every epoch
(:func:`nn.diagnostics.layer_statistics` on the training set) into ``diagnostics.csv``, plain
warnings when a layer looks unhealthy, and ``diagnostics.png`` after training.

The warnings, each printed once per layer and kind (one line on stderr), and their thresholds:

- **dead**: more than 50% of a ReLU layer's units are 0 on every training sample
  (:data:`DEAD`): a dead unit gets no gradient, so it stays dead. Usually a learning rate too
  high (one big step pushes the biases far negative) or the initialisation.
- **saturated**: more than 20% of a tanh or sigmoid layer's (sample, unit) outputs are
  saturated (:data:`SATURATED`; ``|tanh| > 0.99``) in one of the first 3 epochs: their local
  gradient is under 0.02, so the layers below learn slowly. Usually weights too large for the
  inputs. Later in a run, saturation is often a network growing confident (a healthy iris run
  with ``--activation tanh --hidden 16,16`` reaches 24% by epoch 23 at test accuracy 1.0), so
  it is not warned about then.
- **update-to-data ratio** (``std(Δw) / std(w)`` of the last step, see
  :func:`~nn.diagnostics.layer_statistics`) above 0.3 (:data:`RATIO_HIGH`: one step moves
  the weights by a third of their spread; the learning rate is likely too high), or below
  1e-3 (:data:`RATIO_LOW`) in one of the first 3 epochs (:data:`RATIO_LOW_EPOCHS`; the
  learning rate is likely too low). Karpathy's guide line is 1e-3, for a network trained for
  thousands of steps; these small data sets take a few steps per epoch and train well far
  above it, so the bounds are wide, set from runs of 30 epochs with the default settings
  (``--hidden 16``): on iris, wine, moons and digits, with Adam and SGD, the ratio peaked at
  0.19 (moons, SGD) and was at least 3e-3 in the first 3 epochs; iris with SGD ``--lr 10``
  reached 0.6 and diverged; iris with Adam ``--lr 0.0001`` or SGD ``--lr 0.001`` stayed at
  2e-4 to 5e-4 and reached 48% accuracy. Late in a run a small ratio is the normal sign of
  convergence (SGD's steps shrink with the gradient), hence the first epochs only.

The histograms of ``diagnostics.png`` compare the activations of the first epoch of this run
(kept in memory, one list of floats per layer; with ``--resume``, the first epoch after the
checkpoint, and the plot says which epoch it is) with those of the last.
"""

from __future__ import annotations

import csv
import io
import sys
from pathlib import Path
from typing import Any, TextIO

from nn.diagnostics import STATISTICS, layer_activations, layer_statistics
from nn.module import MLP, write_text_atomic
from nn.optim import Optimizer

FIELDS = ("epoch", "layer", *STATISTICS)
DEAD = 0.5
SATURATED = 0.2
RATIO_HIGH = 0.3
RATIO_LOW = 1e-3
RATIO_LOW_EPOCHS = 3


class TrainingDiagnostics:
    """Measures ``model`` on the training samples ``X`` after each epoch (:meth:`epoch_end`),
    rewrites ``out/diagnostics.csv`` atomically with every row so far, and warns on ``stream``.

    Args:
        out: the run's folder. model, X, optimizer: what is trained, on what, by what.
        start_epoch: the epoch the run resumes after (0 for a new run): the rows of
            ``diagnostics.csv`` up to it are kept, later ones (of an epoch the checkpoint does
            not hold) dropped.

    Raises:
        ValueError: an existing ``diagnostics.csv`` to continue is not one this class wrote.
        OSError: it cannot be read.
    """

    def __init__(self, out: Path, model: MLP, X: list[list[float]], optimizer: Optimizer,
                 start_epoch: int = 0, stream: TextIO | None = None) -> None:
        self.path = out / "diagnostics.csv"
        self.model, self.X, self.optimizer = model, X, optimizer
        self.stream = stream
        self.rows: list[dict[str, str]] = _read_rows(self.path, start_epoch) if start_epoch else []
        self.first: tuple[int, list[list[float]]] | None = None  # (epoch, activations per layer)
        self.last: tuple[int, list[list[float]]] | None = None
        self.warned: set[tuple[int, str]] = set()

    def epoch_end(self, epoch: int) -> None:
        """Measure, write the CSV, and warn about what newly crossed a threshold."""
        activations = layer_activations(self.model, self.X)
        stats = layer_statistics(self.model, self.X, self.optimizer, activations=activations)
        for s in stats:
            self.rows.append({"epoch": str(epoch), "layer": str(s["layer"]),
                              **{k: "" if s[k] is None else repr(float(s[k])) for k in STATISTICS}})
        write_text_atomic(self.path, _csv(self.rows))
        flat = [[a for out in layer for a in out] for layer in activations]
        if self.first is None:
            self.first = (epoch, flat)
        self.last = (epoch, flat)
        for s in stats:
            for kind, message in _warnings(s, epoch, self.optimizer.lr, self.model.init):
                if (s["layer"], kind) not in self.warned:
                    self.warned.add((s["layer"], kind))
                    print(f"valuegrad: warning: {message}", file=self.stream or sys.stderr, flush=True)

    def plot(self, path: Path, title: str = "") -> None:
        """Write ``diagnostics.png`` (see :func:`nn.plots.plot_diagnostics`).
        Raises ``ImportError`` without matplotlib."""
        from nn.plots import plot_diagnostics

        if self.first is None or self.last is None:
            return
        activations = [layer.activation for layer in self.model.layers]
        plot_diagnostics(self.rows, activations, self.first, self.last, path, title=title)


def _warnings(s: dict[str, Any], epoch: int, lr: float, init: str) -> list[tuple[str, str]]:
    """``(kind, message)`` for each threshold the layer statistics ``s`` cross."""
    found = []
    where = f"layer {s['layer']}"
    lower, higher = f"--lr {lr / 10:g}", f"--lr {lr * 10:g}"
    if s["dead_fraction"] is not None and s["dead_fraction"] > DEAD:
        found.append(("dead", f"{where}: {s['dead_fraction']:.0%} of its ReLU units are dead (0 on every "
                              f"training sample) after epoch {epoch}; likely cause: a learning rate too "
                              f"high, or the bias initialisation; try {lower} (or --activation tanh)"))
    saturated = s["saturated_fraction"]
    if saturated is not None and saturated > SATURATED and epoch <= RATIO_LOW_EPOCHS:
        bound = "|tanh| > 0.99" if s["activation"] == "tanh" else "sigmoid outside [0.01, 0.99]"
        fix = "--init pytorch" if init == "micrograd" else lower
        found.append(("saturated", f"{where}: {s['saturated_fraction']:.0%} of its {s['activation']} outputs "
                                   f"are saturated ({bound}) after epoch {epoch}, so little gradient flows "
                                   f"through them; likely cause: weights too large for the inputs (the "
                                   f"initialisation, or a learning rate too high); try {fix}"))
    ratio = s["update_to_data"]
    if ratio is not None and (ratio > RATIO_HIGH or (ratio < RATIO_LOW and epoch <= RATIO_LOW_EPOCHS)):
        high = ratio > RATIO_HIGH
        found.append(("ratio", f"{where}: the last step changed its weights by {ratio:.1e} of their spread "
                               f"(update-to-data ratio; about 1e-3 is healthy) after epoch {epoch}; likely "
                               f"cause: a learning rate too {'high' if high else 'low'}"
                               f"{'' if high else ' (or it has already converged)'}; "
                               f"try {lower if high else higher}"))
    return found


def _csv(rows: list[dict[str, str]]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=FIELDS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def _read_rows(path: Path, epochs: int) -> list[dict[str, str]]:
    """The rows of ``path`` up to epoch ``epochs`` (none if there is no such file)."""
    if not path.is_file():
        return []  # the run so far was without --diagnose: the file starts now
    with path.open(newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        if tuple(reader.fieldnames or ()) != FIELDS:
            raise ValueError(f"{path} does not have the columns {', '.join(FIELDS)}; move it away to "
                             f"start a new one")
        try:
            return [row for row in reader if int(row["epoch"]) <= epochs]
        except (TypeError, ValueError):
            raise ValueError(f"{path} has a row whose epoch is not a whole number") from None
