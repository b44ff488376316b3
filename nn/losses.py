"""Loss functions, averaged over a batch, and ``softmax`` / ``log_softmax``.

Every loss takes the model's outputs for a batch and the targets, and returns one ``Value``:
the mean of the per-sample losses (PyTorch's ``reduction="mean"``). An output may be a Value
or a list of Values (what ``MLP`` returns).

Reference: PyTorch documentation, ``torch.nn.functional`` (``mse_loss``,
``binary_cross_entropy_with_logits``, ``cross_entropy``, ``softmax``, ``log_softmax``);
the hinge loss is the SVM max-margin loss (Cortes and Vapnik, 1995) as in micrograd's demo.
"""

from __future__ import annotations

import functools
import numbers
from collections.abc import Sequence
from typing import Any, Union

import engine
from engine import Value

Output = Union[Value, Sequence[Value]]


def _scalar(output: Output, what: str) -> Value:
    """One sample's single output: a Value, or a list holding exactly one Value."""
    if isinstance(output, Value):
        return output
    if len(output) != 1:
        raise ValueError(f"{what} expects one output per sample, got {len(output)}")
    return output[0]


def _check_batch(outputs: Sequence[object], targets: Sequence[object], what: str) -> int:
    n = len(outputs)
    if n == 0:
        raise ValueError(f"{what}: the batch is empty")
    if len(targets) != n:
        raise ValueError(f"{what}: {n} outputs but {len(targets)} targets")
    return n


def mean(values: Sequence[Value]) -> Value:
    """``(v₁ + … + vₙ) / n`` as a Value."""
    return engine.sum(values) / len(values)


def mse_loss(outputs: Sequence[Output], targets: Sequence[float | Sequence[float]]) -> Value:
    """Mean squared error ``mean((output - target)²)`` over every output of every sample.

    Args:
        outputs: per sample, a Value or a list of Values.
        targets: per sample, a number or a list of numbers of the same length.

    Raises:
        ValueError: an empty batch, or outputs and targets of different sizes.
    """
    _check_batch(outputs, targets, "mse_loss")
    squares: list[Value] = []
    for out, target in zip(outputs, targets):
        outs = [out] if isinstance(out, Value) else list(out)
        tgts: list[Any] = [target] if isinstance(target, numbers.Real) else list(target)  # type: ignore[arg-type]
        if len(outs) != len(tgts):
            raise ValueError(f"mse_loss: a sample has {len(outs)} outputs but {len(tgts)} targets")
        squares += [(o - t) ** 2 for o, t in zip(outs, tgts)]
    return mean(squares)


def hinge_loss(scores: Sequence[Output], labels: Sequence[int]) -> Value:
    """The max-margin (SVM) loss ``mean(max(0, 1 - y·s))`` for labels ``y`` in {-1, +1}.

    Args:
        scores: per sample, one Value (or a one-element list): the score ``s``.
        labels: per sample, ``-1`` or ``+1``.

    Raises:
        ValueError: an empty batch, a size mismatch, or a label other than ±1.
    """
    _check_batch(scores, labels, "hinge_loss")
    for y in labels:
        if y not in (-1, 1):
            raise ValueError(f"hinge_loss needs labels -1 or +1, got {y!r}")
    return mean([(1 - y * _scalar(s, "hinge_loss")).relu() for s, y in zip(scores, labels)])


def binary_cross_entropy_with_logits(logits: Sequence[Output], targets: Sequence[float]) -> Value:
    """``mean(-y·log σ(z) - (1-y)·log(1-σ(z)))`` for logits ``z`` and targets ``y`` in [0, 1],
    computed stably as ``max(z, 0) - z·y + log1p(e^-|z|)``, which never overflows and keeps
    full precision where the loss is tiny.

    The gradient is ``σ(z) - y`` everywhere, also at ``z = 0`` (the tie of ``max`` sends ½).

    Raises:
        ValueError: an empty batch, a size mismatch, or a target outside [0, 1].
    """
    _check_batch(logits, targets, "binary_cross_entropy_with_logits")
    losses = []
    for out, y in zip(logits, targets):
        if not 0.0 <= y <= 1.0:
            raise ValueError(f"binary_cross_entropy_with_logits needs targets in [0, 1], got {y!r}")
        z = _scalar(out, "binary_cross_entropy_with_logits")
        linear = engine.maximum(z, 0.0) - z * y if y else engine.maximum(z, 0.0)  # no 0·inf = nan
        losses.append(linear + (-abs(z)).exp().log1p())  # the tiny term last, so it is not rounded away
    return mean(losses)


def _logsumexp_parts(logits: Sequence[Value]) -> tuple[Value, Value | None]:
    """``(z_k, tail)`` with ``log Σ e^zᵢ = z_k + tail``: ``z_k`` the largest logit and
    ``tail = log1p(Σ_{i≠k} e^(zᵢ - z_k))`` (``None`` for a single logit). Kept apart so that
    callers can subtract from ``z_k`` before adding the tail, losing no digits of it."""
    if len(logits) == 0:
        raise ValueError("logsumexp of an empty list of logits")
    k = max(range(len(logits)), key=lambda i: logits[i].data)
    others = [(z - logits[k]).exp() for i, z in enumerate(logits) if i != k]
    return logits[k], (engine.sum(others).log1p() if others else None)


def logsumexp(logits: Sequence[Value]) -> Value:
    """``log Σ e^zᵢ``, computed as ``z_k + log1p(Σ_{i≠k} e^(zᵢ - z_k))`` with ``z_k`` the
    largest logit: no exponential overflows, and the result keeps full precision when one
    logit dominates. Raises ``ValueError`` for an empty list."""
    top, tail = _logsumexp_parts(logits)
    return top if tail is None else top + tail


def log_softmax(logits: Sequence[Value]) -> list[Value]:
    """``zᵢ - log Σⱼ e^zⱼ`` for one sample's logits, as ``(zᵢ - z_k) - log1p(…)`` (see
    :func:`logsumexp`), so the largest logit's log-probability keeps every digit."""
    top, tail = _logsumexp_parts(logits)
    return [z - top if tail is None else (z - top) - tail for z in logits]


def softmax(logits: Sequence[Value]) -> list[Value]:
    """``e^zᵢ / Σⱼ e^zⱼ`` for one sample's logits: probabilities that sum to 1."""
    if len(logits) == 0:
        raise ValueError("softmax of an empty list of logits")
    m = max(z.data for z in logits)
    exps = [(z - m).exp() for z in logits]
    total = engine.sum(exps)
    return [e / total for e in exps]


def cross_entropy(logits: Sequence[Value] | Sequence[Sequence[Value]],
                  target: int | Sequence[int]) -> Value:
    """Cross-entropy ``-log softmax(z)[t] = logsumexp(z) - z[t]`` from logits (see
    :func:`logsumexp` for how it stays finite and precise).

    Args:
        logits: one sample's logits (a list of Values) with ``target`` an ``int``, or a batch
            (a list of such lists) with ``target`` a list of ``int`` class indices.
        target: the index of the true class, or one per sample.

    Returns:
        The loss, averaged over the batch.

    Raises:
        ValueError: an empty batch, a size mismatch, or a class index out of range.
        TypeError: logits that are not Values, or a target that is not an int or a list.
    """
    if isinstance(target, numbers.Integral) and not isinstance(target, bool):
        batch: Sequence[Sequence[Value]] = [logits]  # type: ignore[list-item]
        targets: Sequence[Any] = [target]
    elif isinstance(target, (list, tuple)):
        batch, targets = logits, target  # type: ignore[assignment]
    else:
        raise TypeError(f"cross_entropy: target must be a class index (int) or a list of them, "
                        f"got {type(target).__name__}")
    _check_batch(batch, targets, "cross_entropy")
    losses: list[Value] = []
    for z, t in zip(batch, targets):
        if isinstance(z, Value) or not all(isinstance(v, Value) for v in z):
            raise TypeError("cross_entropy: each sample's logits must be a list of Values (model "
                            "outputs); with an int target, pass one sample's list, with a list of "
                            "targets, a list of such lists")
        if isinstance(t, bool) or not isinstance(t, numbers.Integral):
            raise TypeError(f"cross_entropy: a class index must be an int, got {type(t).__name__} {t!r}")
        index = int(t)
        if not 0 <= index < len(z):
            raise ValueError(f"cross_entropy: class index {t!r} is out of range for {len(z)} logits")
        top, tail = _logsumexp_parts(z)  # (z_k − z_t) + tail: no large number cancels the tail
        losses.append(top - z[index] if tail is None else (top - z[index]) + tail)
    return mean(losses)


def sample_loss(loss: str, outputs: Sequence[Value], target: Sequence[Value]) -> Value:
    """One sample's loss with its target given as Values, written with no branch on any
    number, so that one trace (:func:`engine.trace`) serves every sample of a data set:
    batched replay with seed ``1/N`` gives the gradient of ``batch_loss`` over ``N`` samples.

    ``target`` is :func:`target_values`' encoding: for ``cross_entropy`` and ``mse``
    the one-hot vector ``t`` of the class, for ``hinge`` the label ``y`` in {-1, +1}, for
    ``bce`` the label ``y`` in {0, 1}. Formulas (``z`` the outputs):

    - ``cross_entropy``: ``M + log1p(Σᵢ (1 - tᵢ)·e^(dᵢ - M) + (e^-M - 1))`` with
      ``dᵢ = zᵢ - z_t``, ``z_t = Σᵢ tᵢ·zᵢ`` and ``M = max dᵢ`` (an op, ``maximum``, not a
      branch): the same ``-log softmax(z)[t]`` as :func:`cross_entropy`, i.e.
      ``log(1 + Σᵢ≠t e^dᵢ)``. No exponent is above 0, so nothing overflows however wrong the
      logits; where the right class wins (``M = 0``) it is ``log1p(Σᵢ≠t e^dᵢ)``, exact for
      tiny losses.
    - ``hinge``: ``max(0, 1 - y·z)``; ``bce``: ``max(z, 0) - z·y + log(1 + e^-|z|)``;
    - ``mse``: ``Σᵢ (zᵢ - tᵢ)² / C`` over the ``C`` outputs (the batch mean of which is
      :func:`mse_loss`'s mean over every output of every sample).

    Raises:
        ValueError: an unknown loss, or outputs and target of sizes the loss cannot pair.
    """
    if loss not in ("cross_entropy", "hinge", "bce", "mse"):
        raise ValueError(f"unknown loss {loss!r}; choose one of cross_entropy, hinge, bce, mse")
    single = loss in ("hinge", "bce")
    if (len(outputs) != 1 or len(target) != 1) if single else len(outputs) != len(target):
        pairs = "one output with one label" if single else "one output per class with a one-hot target"
        raise ValueError(f"sample_loss: the {loss} loss pairs {pairs}; got {len(outputs)} outputs and "
                         f"a target of {len(target)}")
    if loss == "cross_entropy":
        right = engine.sum([t * z for t, z in zip(target, outputs)])
        gaps = [z - right for z in outputs]  # dᵢ = zᵢ - z_t; the right class's own is 0
        top = functools.reduce(engine.maximum, gaps)  # M = max dᵢ >= 0: no exp overflows
        terms = [(1 - t) * (d - top).exp() for t, d in zip(target, gaps)]
        return top + engine.sum([*terms, (-top).exp() - 1.0]).log1p()
    if loss == "hinge":
        return (1 - target[0] * outputs[0]).relu()
    if loss == "bce":
        z, y = outputs[0], target[0]
        return engine.maximum(z, 0.0) - z * y + (-abs(z)).exp().log1p()
    return engine.sum([(z - t) ** 2 for z, t in zip(outputs, target)]) / len(outputs)  # mse


def target_values(loss: str, label: int, n_classes: int) -> list[float]:
    """The target :func:`sample_loss` takes for class ``label``: one-hot for
    ``cross_entropy`` and ``mse``, ``[2·label - 1]`` for ``hinge``, ``[label]`` for ``bce``.

    Raises:
        TypeError: ``label`` is not an int.
        ValueError: ``label`` is not a class index below ``n_classes`` (0 or 1 for the
            two-class losses ``hinge`` and ``bce``).
    """
    if isinstance(label, bool) or not isinstance(label, numbers.Integral):
        raise TypeError(f"a class index must be an int, got {type(label).__name__} {label!r}")
    limit = 2 if loss in ("hinge", "bce") else n_classes
    if not 0 <= label < limit:
        what = f"the {loss} loss is for classes 0 and 1" if limit == 2 else f"there are {n_classes} classes"
        raise ValueError(f"class index {label!r} is out of range: {what}")
    if loss == "hinge":
        return [2.0 * label - 1.0]
    if loss == "bce":
        return [float(label)]
    return [1.0 if k == label else 0.0 for k in range(n_classes)]
