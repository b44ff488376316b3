"""The digits workload: ``nn.load_digits()`` (1797 8×8 images, 64 features, 10 classes), split
70/30 stratified (``nn.train_test_split``), standardized with the training split's statistics;
``nn.MLP(64, [32, 10])``, cross-entropy, Adam with ``lr = 0.01``, batches of 32, trained by
``nn.train.fit`` (eager, or ``compile=True``); and the same model on PyTorch float64 tensors
(``Sequential(Linear, ReLU, Linear)``, ``cross_entropy``, ``torch.optim.Adam``, the same
shuffling as ``fit``)."""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

import nn

DIGITS_BATCH = 32
DIGITS_LR = 0.01
Digits = tuple[list[list[float]], list[list[float]], list[int], list[int]]


def digits_split(seed: int) -> Digits:
    """Digits split 70/30 stratified, standardized with the training split's statistics:
    ``(X_train, X_test, y_train, y_test)``."""
    data = nn.load_digits()
    X_train, X_test, y_train, y_test = nn.train_test_split(data.X, data.y, test_size=0.3, seed=seed)
    X_train, X_test, _ = nn.standardize(X_train, X_test)
    return X_train, X_test, y_train, y_test


def digits_fit(split: Digits, seed: int, epochs: int, compile: bool, with_test: bool = False,
               on_epoch_end: Callable[[int, nn.train.History], None] | None = None) -> nn.train.History:
    """``nn.train.fit`` of a fresh ``MLP(64, [32, 10])`` with Adam on the digits."""
    X_train, X_test, y_train, y_test = split
    model = nn.MLP(len(X_train[0]), [32, 10], rng=seed)
    optimizer = nn.Adam(model.parameters(), lr=DIGITS_LR)
    return nn.train.fit(model, X_train, y_train, loss="cross_entropy", optimizer=optimizer, epochs=epochs,
                        batch_size=DIGITS_BATCH, seed=seed, n_classes=10,
                        X_test=X_test if with_test else None, y_test=y_test if with_test else None,
                        progress=False, compile=compile, on_epoch_end=on_epoch_end)


def torch_mlp(hidden: int, X: list[list[float]], y: list[int],
              seed: int) -> tuple[Any, Callable[[int], None]]:
    """``MLP(len(X[0]), [hidden, 10])`` on PyTorch float64 tensors (needs torch): the model and
    ``epoch(number)``, which trains it one epoch on ``X``, ``y`` with Adam, cross-entropy and
    batches of 32, shuffled as ``fit``'s epoch ``number``."""
    import torch  # type: ignore[import-not-found, unused-ignore]

    torch.manual_seed(seed)
    model = torch.nn.Sequential(torch.nn.Linear(len(X[0]), hidden, dtype=torch.float64), torch.nn.ReLU(),
                                torch.nn.Linear(hidden, 10, dtype=torch.float64))
    optimizer = torch.optim.Adam(model.parameters(), lr=DIGITS_LR)
    inputs = torch.tensor(X, dtype=torch.float64)
    labels = torch.tensor(y, dtype=torch.long)

    def epoch(number: int) -> None:
        order = list(range(len(X)))
        random.Random(seed + number).shuffle(order)  # the same shuffling as nn.train.fit
        index = torch.tensor(order)
        for start in range(0, len(order), DIGITS_BATCH):
            batch = index[start:start + DIGITS_BATCH]
            loss = torch.nn.functional.cross_entropy(model(inputs[batch]), labels[batch])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()

    return model, epoch


def torch_digits(split: Digits, seed: int) -> tuple[Callable[[int], None], Callable[[], float]]:
    """The digits model on PyTorch float64 tensors (needs torch): ``epoch(number)`` trains one
    epoch shuffled as ``fit``'s epoch ``number``; ``test_accuracy()`` evaluates the test set."""
    import torch  # type: ignore[import-not-found, unused-ignore]

    X_train, X_test, y_train, y_test = split
    model, epoch = torch_mlp(32, X_train, y_train, seed)

    def test_accuracy() -> float:
        with torch.no_grad():
            predicted: Any = model(torch.tensor(X_test, dtype=torch.float64)).argmax(dim=1)
        return float((predicted == torch.tensor(y_test)).double().mean())

    return epoch, test_accuracy
