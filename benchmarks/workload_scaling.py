"""The scaling workload: MLPs of about 2.4k, 10k, 34k and 100k parameters trained one epoch
at a time, compiled (``nn.train.fit(compile=True)``) and on PyTorch float64 tensors.

The two smallest read the digits (``nn.load_digits()``, 64 features, the training split of
:mod:`benchmarks.workload_digits`); the two largest read as many samples of 256 or 784
standardized Gaussian features, labelled by a fixed random linear teacher (the class of the
largest of 10 random projections), so every size trains on the same number of samples per
epoch. Cross-entropy, Adam with ``lr = 0.01``, batches of 32, ``fit``'s shuffling for both.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass

import engine
import nn
from benchmarks.workload_digits import DIGITS_BATCH, DIGITS_LR, digits_split, torch_mlp
from nn.losses import sample_loss, target_values


@dataclass(frozen=True)
class Size:
    """One model of the scaling table: ``MLP(features, hidden + [10])``."""

    features: int
    hidden: int

    @property
    def label(self) -> str:
        return f"MLP({self.features}, [{self.hidden}, 10])"


SIZES = (Size(64, 32), Size(64, 128), Size(256, 128), Size(784, 128))
"""2,410, 9,610, 34,314 and 101,770 parameters."""


def scaling_data(size: Size, seed: int, samples: int | None = None) -> tuple[list[list[float]], list[int]]:
    """The training samples for ``size`` (the first ``samples`` of them, default all): the
    digits' training split for 64 features, else as many Gaussian samples labelled by a
    random linear teacher (see the module docstring)."""
    X_digits, _, y_digits, _ = digits_split(seed)
    n = len(X_digits) if samples is None else samples
    if size.features == len(X_digits[0]):
        return X_digits[:n], y_digits[:n]
    rng = random.Random(seed)
    teacher = [[rng.gauss(0.0, 1.0) for _ in range(size.features)] for _ in range(10)]
    X = [[rng.gauss(0.0, 1.0) for _ in range(size.features)] for _ in range(n)]
    y = [max(range(10), key=lambda k: sum(w * x for w, x in zip(teacher[k], row))) for row in X]
    return X, y


def trace_seconds(size: Size, seed: int) -> tuple[int, float]:
    """``(instructions, seconds)``: tracing one sample's loss and outputs of a fresh model
    (as compiled training does) and generating and running its batched code once."""
    model = nn.MLP(size.features, [size.hidden, 10], rng=seed)

    def training_step(x: list[engine.Value], target: list[engine.Value]) -> list[engine.Value]:
        outputs = model(x)
        return [sample_loss("cross_entropy", outputs, target), *outputs]

    t0 = time.perf_counter()
    program = engine.trace(training_step, [0.0] * size.features, target_values("cross_entropy", 0, 10),
                           params=model)
    program.batch([[0.0] * size.features + target_values("cross_entropy", 0, 10)], None,
                  [1.0] + [None] * 10, input_grads=False)
    return len(program.instructions), time.perf_counter() - t0


def compiled_epochs(size: Size, data: tuple[list[list[float]], list[int]], seed: int,
                    epochs: int) -> list[float]:
    """Seconds of each of ``1 + epochs`` epochs of compiled training (the first traces): the
    steps of ``nn.train.fit(compile=True)``, shuffled as its epochs, driven here without its
    per-epoch bookkeeping (history rows; and no ``on_epoch_end``, so the parameters stay in
    their vector between epochs, as in ``fit`` without a callback)."""
    X, y = data
    model = nn.MLP(size.features, [size.hidden, 10], rng=seed)
    optimizer = nn.Adam(model.parameters(), lr=DIGITS_LR)
    steps = nn.train.CompiledSteps(model, "cross_entropy", 10)
    samples = steps.samples(X)
    times = [time.perf_counter()]
    with steps.training():
        for epoch in range(1, 2 + epochs):
            steps.load()
            order = list(range(len(X)))
            random.Random(seed + epoch).shuffle(order)
            for start in range(0, len(order), DIGITS_BATCH):
                idx = order[start:start + DIGITS_BATCH]
                steps.step(optimizer, steps.batch(samples, idx), [y[i] for i in idx], f"epoch {epoch}")
            times.append(time.perf_counter())
    return [b - a for a, b in zip(times, times[1:])]


def torch_epoch(size: Size, data: tuple[list[list[float]], list[int]], seed: int) -> Callable[[int], None]:
    """One epoch of the same model on PyTorch float64 tensors (needs torch), shuffled as
    ``fit``'s epoch ``number``."""
    return torch_mlp(size.hidden, *data, seed)[1]
