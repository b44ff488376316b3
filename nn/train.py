"""Training: the loop of forward pass, loss, backward pass and optimizer step, by epoch and batch.

``fit`` trains a model on lists of floats and returns the per-epoch history. It is what
``valuegrad train`` runs; it can also be called from a notebook.
"""

from __future__ import annotations

import contextlib
import math
import random
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from engine import GuardFailed, Value, is_grad_enabled, no_grad, topological_order, trace
from engine import sum as sum_values
from nn.losses import (
    binary_cross_entropy_with_logits,
    cross_entropy,
    hinge_loss,
    mse_loss,
    sample_loss,
    target_values,
)
from nn.module import MLP, Module
from nn.optim import SGD, Adam, Optimizer
from nn.progress import progress_bar

LOSSES = ("cross_entropy", "hinge", "bce", "mse")
"""Loss names: ``cross_entropy`` (one logit per class), ``hinge`` (one score, classes 0/1 as
labels −1/+1), ``bce`` (one logit, binary cross-entropy), ``mse`` (one output per class,
squared error to the one-hot target)."""


def n_outputs(loss: str, n_classes: int) -> int:
    """How many outputs the model needs for ``loss`` on ``n_classes`` classes.

    Raises:
        ValueError: an unknown loss, or a binary loss on more than two classes.
    """
    if loss not in LOSSES:
        raise ValueError(f"unknown loss {loss!r}; choose one of {', '.join(LOSSES)}")
    if loss in ("hinge", "bce"):
        if n_classes > 2:
            raise ValueError(f"the {loss} loss is for two classes; this data has {n_classes} "
                             f"(use cross_entropy)")
        return 1
    return n_classes


def outputs_of(model: Any, x: Sequence[Any]) -> list[Value]:
    """``model(x)`` as a list of output Values: a model with one output may return the Value
    itself, as micrograd's ``MLP`` does (``nn.micrograd``).

    Raises:
        TypeError: the model returned something other than a Value or a list of Values.
    """
    out = model(x)
    outputs = [out] if isinstance(out, Value) else out
    if not isinstance(outputs, (list, tuple)) or not all(isinstance(o, Value) for o in outputs):
        raise TypeError(f"the model must return a Value or a list of Values, got {type(out).__name__}")
    return list(outputs)


def batch_loss(loss: str, outputs: Sequence[list[Value]], y: Sequence[int], n_classes: int) -> Value:
    """The mean loss of a batch of model outputs against class indices ``y``."""
    if loss == "cross_entropy":
        return cross_entropy(outputs, list(y))
    if loss in ("hinge", "bce") and any(c not in (0, 1) for c in y):
        raise ValueError(f"the {loss} loss is for classes 0 and 1, got {sorted(set(y) - {0, 1})[:3]}")
    if loss == "hinge":
        return hinge_loss(outputs, [2 * c - 1 for c in y])
    if loss == "bce":
        return binary_cross_entropy_with_logits(outputs, [float(c) for c in y])
    if loss == "mse":
        return mse_loss(outputs, [[1.0 if k == c else 0.0 for k in range(n_classes)] for c in y])
    raise ValueError(f"unknown loss {loss!r}; choose one of {', '.join(LOSSES)}")


def predict_class(loss: str, output: Sequence[Value | float]) -> int:
    """The predicted class of one sample from its outputs (Values or numbers): the largest
    output (the first of equals), or for the one-output losses, class 1 when the score or
    logit is positive."""
    scores = [o.data if isinstance(o, Value) else o for o in output]
    if len(scores) == 1 and loss in ("hinge", "bce"):
        return 1 if scores[0] > 0.0 else 0
    return max(range(len(scores)), key=lambda k: scores[k])


def evaluate(model: Callable[[Sequence[float]], list[Value]], X: Sequence[Sequence[float]],
             y: Sequence[int], loss: str, n_classes: int) -> tuple[float, float]:
    """``(mean loss, accuracy)`` of ``model`` on ``X``, ``y``, with nothing recorded."""
    with no_grad():
        outputs = [outputs_of(model, x) for x in X]
        mean_loss = batch_loss(loss, outputs, y, n_classes).data
    correct = sum(predict_class(loss, out) == c for out, c in zip(outputs, y))
    return mean_loss, correct / len(y)


def make_optimizer(name: str, params: list[Value], lr: float, weight_decay: float = 0.0,
                   momentum: float = 0.0) -> Optimizer:
    """``SGD`` or ``Adam`` by name (``"sgd"``, ``"adam"``). Raises ``ValueError`` otherwise."""
    if name == "sgd":
        return SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay)
    if name == "adam":
        return Adam(params, lr=lr, weight_decay=weight_decay)
    raise ValueError(f"unknown optimizer {name!r}; choose sgd or adam")


class Diverged(ArithmeticError):
    """The loss became ``nan`` or infinite: training stopped before the update that would have
    written non-finite numbers into the parameters.

    Attributes:
        inputs, labels: the batch whose loss it was (for :func:`explain_divergence`).
    """

    def __init__(self, message: str, inputs: Any = None, labels: Sequence[int] = ()) -> None:
        super().__init__(message)
        self.inputs, self.labels = inputs, list(labels)


def explain_divergence(model: Module, loss: str, n_classes: int, error: Diverged) -> str | None:
    """Where the batch of ``error`` first turns finite numbers into nan or inf: its loss computed
    and differentiated again, eagerly, with the model's current parameters (the step before the
    divergence), inside :func:`engine.detect_anomaly`, in the form eager training computes and
    then in the form compiled training does (:func:`~nn.losses.sample_loss`). Returns what the
    :class:`engine.AnomalyError` says (the op, its operands, the upstream gradient, the local
    derivative); else the first op whose forward made nan or inf from finite operands (an
    overflow that leaves every gradient finite); else ``None``. The parameters' ``.grad`` are
    set to 0.0 first and left as the pass leaves them."""
    from engine import AnomalyError, detect_anomaly

    if error.inputs is None or not error.labels:
        return None

    def eager_form(outputs: list[list[Value]]) -> Value:
        return batch_loss(loss, outputs, error.labels, n_classes)

    def traced_form(outputs: list[list[Value]]) -> Value:  # what compiled training computes
        return sum_values([sample_loss(loss, out, [Value(t) for t in target_values(loss, c, n_classes)])
                           for out, c in zip(outputs, error.labels)]) / len(outputs)

    for form in (eager_form, traced_form):
        try:
            with detect_anomaly():
                value = form([outputs_of(model, list(x)) for x in error.inputs])
                for p in model.parameters():
                    p.grad = 0.0
                value.backward()
        except AnomalyError as e:  # (without the line that made the node: this function's call)
            return f"{e.where}: {e.detail}" if e.detail else str(e).splitlines()[0]
        order = topological_order(value)  # no gradient went wrong: the forward pass overflowed?
        for k, node in enumerate(order):
            operands = [p.data for p in node.parents]
            if node.op is not None and not math.isfinite(node.data) and all(map(math.isfinite, operands)):
                shown = ", ".join(repr(x) for x in operands)
                return f"{node.op.name} at node %{k}: {node.op.name}({shown}) = {node.data} in the forward " \
                       f"pass"
    return None


@dataclass
class History:
    """One row per epoch: ``epoch``, ``lr``, ``train_loss``, ``train_accuracy`` and, when a
    test set is given, ``test_loss`` and ``test_accuracy``. Train figures are the running
    means over the epoch's batches (before each batch's update), as usual in PyTorch loops."""

    rows: list[dict[str, float]] = field(default_factory=list)

    def column(self, name: str) -> list[float]:
        return [row[name] for row in self.rows if name in row]


def fit(model: Module, X: Sequence[Sequence[float]], y: Sequence[int], *, loss: str = "cross_entropy",
        optimizer: Optimizer, epochs: int, batch_size: int | None = None, seed: int = 0,
        n_classes: int | None = None, X_test: Sequence[Sequence[float]] | None = None,
        y_test: Sequence[int] | None = None, lr_schedule: tuple[float, float] | None = None,
        start_epoch: int = 0,
        history: History | None = None,
        on_epoch_end: Callable[[int, History], None] | None = None,
        progress: bool = True, compile: bool = False,
        steps: EagerSteps | CompiledSteps | None = None) -> History:
    """Train ``model`` with mini-batch gradient descent.

    Each epoch shuffles the training samples (``random.Random(seed + epoch)``, so a resumed
    run continues exactly as an uninterrupted one), and for each batch: forward pass,
    ``loss``, ``optimizer.zero_grad()``, ``backward()``, ``optimizer.step()``.

    Args:
        model: maps a list of features to a list of output Values (an ``MLP``).
        X, y: training features and class indices.
        loss: one of :data:`LOSSES`. optimizer: an ``SGD`` or ``Adam`` over the parameters.
        epochs: the last epoch to train (epochs are numbered from 1).
        batch_size: samples per step; ``None`` means the whole set (full-batch).
        seed: for shuffling. n_classes: defaults to ``max(y) + 1``.
        X_test, y_test: evaluated after every epoch when given.
        lr_schedule: ``(first, last)``: the learning rate falls linearly from ``first`` at the
            first step to ``last`` at the final step (micrograd's demo: 1.0 to 0.1); ``None``
            keeps the optimizer's ``lr``.
        start_epoch: epochs already done (for resuming); ``history`` their rows.
        on_epoch_end: called with ``(epoch, history)`` after each epoch (e.g. to checkpoint).
        progress: show a progress bar (tqdm when installed, else one line per tenth).
        compile: trace the model and the loss once (:func:`engine.trace`) and train with
            batched replay (numpy), many times faster; the same steps as without it, up to
            rounding (see :class:`CompiledSteps`). Needs numpy.
        steps: the training steps to take, an :class:`EagerSteps` or :class:`CompiledSteps`
            for this model, loss and ``n_classes`` (default: made here, as ``compile`` says);
            give one to reuse a program it has traced already, and to evaluate with it after.

    Returns:
        The :class:`History`.

    Raises:
        ValueError: empty data, mismatched sizes, a bad batch size or epoch count.
        TypeError: ``optimizer`` is not an :class:`~nn.optim.Optimizer`.
        RuntimeError: called inside :class:`engine.no_grad` (nothing would be recorded).
        Diverged: the loss became ``nan`` or infinite (the parameters keep the values of the
            step before; usually the learning rate is too large).
        ImportError: ``compile=True`` without numpy installed.
        ValueError: ``compile=True`` on a model that branches on its numbers (``if z > 0``:
            one traced program cannot serve every sample) or reads them (``z.data``, baked into
            the program: the first step's outputs are compared with the eager model's).
    """
    if not isinstance(optimizer, Optimizer):
        raise TypeError(f"optimizer must be an nn.SGD or nn.Adam, got {type(optimizer).__name__}")
    if not is_grad_enabled():  # eager steps would record nothing and train nothing
        raise RuntimeError("fit was called inside no_grad(): training needs the graph; call it outside")
    if len(X) == 0 or len(X) != len(y):
        raise ValueError(f"need the same, non-zero number of samples and labels; got {len(X)} and {len(y)}")
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
        raise ValueError(f"epochs must be a whole number >= 1, got {epochs!r}")
    if batch_size is not None and (isinstance(batch_size, bool) or not isinstance(batch_size, int)
                                   or batch_size < 1):
        raise ValueError(f"batch_size must be a whole number >= 1, got {batch_size!r}")
    if n_classes is None:
        n_classes = int(max(y)) + 1
        if loss in ("cross_entropy", "mse"):  # one output per class: the model may have more
            with no_grad():
                n_classes = max(n_classes, len(outputs_of(model, list(X[0]))))
    size = batch_size or len(X)
    history = history or History()
    steps_per_epoch = math.ceil(len(X) / size)
    total_steps = epochs * steps_per_epoch
    if steps is None:
        steps = (CompiledSteps if compile else EagerSteps)(model, loss, n_classes)
    elif steps.model is not model or steps.loss != loss or steps.n_classes != n_classes:
        raise ValueError(f"the steps given were made for another model, loss or number of classes "
                         f"({steps.loss}, {steps.n_classes} classes; fit has {loss}, {n_classes})")
    bar = _progress(range(start_epoch + 1, epochs + 1), epochs, start_epoch, progress)
    samples = steps.samples(X)
    with steps.training():  # compiled steps: see CompiledSteps.training
        for epoch in bar:
            steps.load()  # compiled steps: the parameters into one vector (if not there already)
            order = list(range(len(X)))
            random.Random(seed + epoch).shuffle(order)
            loss_sum = 0.0
            correct = 0
            batches = progress_bar(range(steps_per_epoch), progress and steps_per_epoch > 1, unit="step",
                                   desc=f"epoch {epoch}", leave=False, delay=1.0)  # (shown after 1 s)
            for b in batches:
                step = (epoch - 1) * steps_per_epoch + b
                if lr_schedule is not None:
                    first, last = lr_schedule
                    optimizer.lr = first + (last - first) * step / max(total_steps - 1, 1)
                idx = order[b * size:(b + 1) * size]
                value, batch_correct = steps.step(optimizer, steps.batch(samples, idx), [y[i] for i in idx],
                                                  f"epoch {epoch}, step {b + 1}")
                loss_sum += value * len(idx)
                correct += batch_correct
            if on_epoch_end is not None:  # compiled steps: the vector back into the Values, for the
                steps.sync()  # callback to read (a checkpoint, statistics); else at the end only
            row = {"epoch": float(epoch), "lr": optimizer.lr, "train_loss": loss_sum / len(X),
                   "train_accuracy": correct / len(X)}
            if X_test is not None and y_test is not None and len(X_test):
                row["test_loss"], row["test_accuracy"] = steps.evaluate(X_test, y_test)
            history.rows.append(row)
            if progress:
                _describe(bar, row, every=max(1, epochs // 10))
            if on_epoch_end is not None:
                on_epoch_end(epoch, history)
    return history


def _diverged(value: float, where: str, X: Any, y: Sequence[int]) -> Diverged:
    return Diverged(f"the loss became {value} in {where}: training diverged (a smaller learning rate "
                    f"usually helps)", X, y)


class EagerSteps:
    """Training steps on the eager engine: every sample's forward pass builds its graph."""

    def __init__(self, model: Module, loss: str, n_classes: int) -> None:
        self.model, self.loss, self.n_classes = model, loss, n_classes

    def samples(self, X: Sequence[Sequence[float]]) -> Any:
        """The training samples in the form :meth:`batch` takes batches from (here: as given)."""
        return X

    def batch(self, X: Any, idx: list[int]) -> Any:
        """The samples ``X[i]`` for ``i`` in ``idx``."""
        return [X[i] for i in idx]

    def load(self) -> None:
        """Nothing to do: eager steps work on the parameters' Values themselves."""

    def training(self) -> Any:
        """The context ``fit`` trains in (here: nothing to set up or write back)."""
        return contextlib.nullcontext()

    def sync(self) -> None:
        """Nothing to do: eager steps work on the parameters' Values themselves."""

    def step(self, optimizer: Optimizer, X: Sequence[Sequence[float]], y: Sequence[int],
             where: str) -> tuple[float, int]:
        """One step on a batch: forward, loss, zero_grad, backward, optimizer step. Returns
        the batch's mean loss (before the update) and how many samples it classed right."""
        outputs = [outputs_of(self.model, x) for x in X]
        value = batch_loss(self.loss, outputs, y, self.n_classes)
        if not math.isfinite(value.data):
            raise _diverged(value.data, where, X, y)
        optimizer.zero_grad()
        value.backward()
        optimizer.step()
        return value.data, sum(predict_class(self.loss, out) == c for out, c in zip(outputs, y))

    def evaluate(self, X: Sequence[Sequence[float]], y: Sequence[int]) -> tuple[float, float]:
        """``(mean loss, accuracy)`` on ``X``, ``y``."""
        return evaluate(self.model, X, y, self.loss, self.n_classes)  # type: ignore[arg-type]


class CompiledSteps(EagerSteps):
    """Training steps by batched replay of one traced program (:mod:`engine.trace`).

    The program is one sample's :func:`~nn.losses.sample_loss` (first output) and the
    model's outputs (the rest), traced once with the model's parameters as its parameters
    and the features and the target encoding (:func:`~nn.losses.target_values`) as its
    inputs. A step replays it over the batch with seed ``1/N`` on the loss, giving the
    summed parameter gradients, and runs the optimizer's own update rule on them
    (:meth:`~nn.optim.Optimizer.step_vector`), so the two agree step for step up to rounding
    (matrix products add in another order; cross-entropy is computed in the equal form of
    ``sample_loss``).

    **Speed trick: the parameters live in one numpy vector while training.** The program
    reads each layer's weight matrix straight from it, and the optimizer steps it as one
    array (evaluation reads it too). The parameters' Values (``p.data``, and ``p.grad``: the
    last step's gradient) are written back by :meth:`sync`, which ``fit`` calls at the end of
    every epoch when there is an ``on_epoch_end`` to read them (a checkpoint, statistics), and
    when training stops for any reason; the next :meth:`load` then reads them again, so a
    change made there is seen. Without a callback, 100,000 parameters would be written back
    and read again every epoch for nobody (8 ms an epoch, a fifth of a digits-sized epoch of
    the 100k-parameter MLP). The plain version is :class:`EagerSteps`: Values all the way.

    Raises:
        ImportError: numpy is not installed.
        ValueError: the optimizer steps a Value that is not one of the model's parameters.
        engine.GuardFailed: the model branches on a number (a traced comparison) and a
            sample takes another branch.
    """

    def __init__(self, model: Module, loss: str, n_classes: int) -> None:
        super().__init__(model, loss, n_classes)
        from engine.batch import numpy_ops_required

        self.np = numpy_ops_required()
        self.params = model.parameters()
        self.program: Any = None
        self.theta: Any = None  # the parameters' values while training (None: read the Values)
        self.grad: Any = None  # the last step's parameter gradients
        self.index: Any = None  # the optimizer's parameters' positions in theta (None: all, in order)
        self.optimizer: Optimizer | None = None
        self.checked = False  # the first step's outputs compared with the eager model's
        self.unstepped: Any = None  # positions of the parameters the optimizer does not step
        self.unstepped_grad: dict[int, float] = {}  # their .grad before training
        self.unstepped_sum: Any = 0.0  # their gradients since then, added up
        self.targets = self.np.array([target_values(loss, c, n_classes) for c in
                                      range(2 if loss in ("hinge", "bce") else n_classes)], dtype=float)

    def samples(self, X: Sequence[Sequence[float]]) -> Any:
        """``X`` as an ``(N, features)`` array, to take batches from with :meth:`batch`."""
        rows = self.np.asarray(X, dtype=float)
        if rows.ndim != 2:
            raise ValueError(f"the samples must all have the same number of features (got {rows.shape})")
        return rows

    def batch(self, X: Any, idx: list[int]) -> Any:
        return X[idx]

    @contextlib.contextmanager
    def training(self) -> Iterator[None]:
        """The context ``fit`` trains in: on leaving it, for any reason (the end, a divergence,
        an interrupt), :meth:`sync` writes the last steps into the Values.

        **Speed trick:** numpy's BLAS kept to one thread meanwhile (with threadpoolctl, when
        installed). On matrices this small (a batch of 32 rows) a second thread saves little,
        and when another process is busy on a CPU, the BLAS threads' waiting made
        ``valuegrad train --dataset digits --hidden 128 --epochs 20`` take 29.5 s instead of
        2.1 s (2 CPUs, load average 3). The plain version is no limit (as without threadpoolctl).
        """
        try:
            from threadpoolctl import threadpool_limits

            threads: Any = threadpool_limits(limits=1, user_api="blas")
        except ImportError:
            threads = contextlib.nullcontext()
        with threads:
            try:
                yield
            finally:
                self.sync()

    def load(self) -> None:
        """Read the parameters' Values into the training vector, unless it holds them already
        (no :meth:`sync` since the last load)."""
        if self.theta is None:
            self.theta = self.np.array([p.data for p in self.params], dtype=float)

    def sync(self) -> None:
        """Write the training vector (and the last gradients) back into the parameters' Values,
        which are from then on the parameters again (until the next :meth:`load`)."""
        if self.theta is not None:
            for p, x in zip(self.params, self.theta.tolist()):
                p.data = x
        if self.grad is not None:  # a stepped parameter's: the last step's (zero_grad before each)
            for p, g in zip(self.params, self.grad.tolist()):
                p.grad = g
        if self.unstepped is not None:  # one the optimizer does not zero: every step's, added up
            total = self.np.broadcast_to(self.unstepped_sum, self.unstepped.shape)
            for k, g in zip(self.unstepped.tolist(), total.tolist()):
                self.params[k].grad = self.unstepped_grad[k] = self.unstepped_grad[k] + g
        self.theta = self.grad = None
        self.unstepped_sum = 0.0

    def trace(self, n_features: int) -> Any:
        """Trace the training program (once; :attr:`program`) for samples of ``n_features``.

        Raises:
            engine.TracingError, TypeError, ValueError: the model or the loss cannot be traced.
        """
        def training_step(x: list[Value], target: list[Value]) -> list[Value]:
            outputs = outputs_of(self.model, x)
            return [sample_loss(self.loss, outputs, target), *outputs]

        if self.program is None:
            self.program = trace(training_step, [0.0] * n_features,
                                 target_values(self.loss, 0, self.n_classes),
                                 params=self.model if isinstance(self.model, Module) else self.params)
        return self.program

    def _replay(self, X: Any, y: Sequence[int], train: bool) -> tuple[Any, Any]:
        np = self.np
        X = self.samples(X)
        self.trace(X.shape[1])
        labels = np.asarray(y)
        if labels.dtype.kind not in "iu" or labels.min() < 0 or labels.max() >= len(self.targets):
            bad = [c for c in y if isinstance(c, bool) or not isinstance(c, int)
                   or not 0 <= c < len(self.targets)]
            target_values(self.loss, bad[0] if bad else -1, self.n_classes)  # raises, saying why
        rows = np.concatenate([X, self.targets[labels]], axis=1)
        n_out = len(self.program.outputs)
        seeds = [1.0 / len(X) if train else None] + [None] * (n_out - 1)
        theta = self.theta if self.theta is not None else [p.data for p in self.params]
        try:
            result = self.program.batch(rows, theta, seeds, input_grads=False)
        except GuardFailed as e:  # (the parameters are untouched: this is before the step)
            raise ValueError(f"compiled training needs one program for every sample, but the model "
                             f"branches on its numbers ({str(e).splitlines()[0]}); train it with "
                             f"compile=False") from None
        return result.outputs, result.param_grads

    def _correct(self, outputs: Any, y: Sequence[int]) -> int:
        scores = outputs[:, 1:]
        if scores.shape[1] == 1 and self.loss in ("hinge", "bce"):
            predicted = (scores[:, 0] > 0.0).astype(int)
        else:
            predicted = scores.argmax(axis=1)  # the first of equal largest, as predict_class
        return int((predicted == self.np.asarray(y)).sum())

    def _positions(self, optimizer: Optimizer) -> Any:
        position = {id(p): k for k, p in enumerate(self.params)}
        missing = [p for p in optimizer.params if id(p) not in position]
        if missing:
            raise ValueError(f"compiled training steps the model's parameters; the optimizer also steps "
                             f"{len(missing)} other Value(s), e.g. {missing[0]!r}")
        index = [position[id(p)] for p in optimizer.params]
        # The parameters it does not step keep adding up their gradients, as in eager training,
        # where zero_grad clears only the optimizer's: from what .grad holds now.
        rest = sorted(set(range(len(self.params))) - set(index))
        self.unstepped = self.np.array(rest, dtype=int) if rest else None
        self.unstepped_grad = {k: float(self.params[k].grad) for k in rest}  # (a Value's is its data)
        self.unstepped_sum = 0.0
        return None if index == list(range(len(self.params))) else self.np.array(index)

    def step(self, optimizer: Optimizer, X: Any, y: Sequence[int], where: str) -> tuple[float, int]:
        """One step; called outside ``fit`` (no :meth:`load` before it), the step reads the
        Values and writes them back itself."""
        alone = self.theta is None
        if alone:
            self.load()
        try:
            return self._step(optimizer, X, y, where)
        finally:
            if alone:
                self.sync()

    def _step(self, optimizer: Optimizer, X: Any, y: Sequence[int], where: str) -> tuple[float, int]:
        if optimizer is not self.optimizer:
            self.index, self.optimizer = self._positions(optimizer), optimizer
        outputs, grads = self._replay(X, y, train=True)
        if not self.checked:
            self._check_outputs(X, outputs)
        value = float(outputs[:, 0].mean())
        if not math.isfinite(value):
            raise _diverged(value, where, X.tolist() if hasattr(X, "tolist") else X, y)
        self.grad = grads
        if self.unstepped is not None:
            self.unstepped_sum = self.unstepped_sum + grads[self.unstepped]
        if self.index is None:
            self.theta = optimizer.step_vector(self.theta, grads)
        else:
            self.theta[self.index] = optimizer.step_vector(self.theta[self.index], grads[self.index])
        return value, self._correct(outputs, y)

    def _check_outputs(self, X: Any, outputs: Any) -> None:
        """The first step's replayed outputs of (up to) two samples against the eager model's:
        a model that reads a number (``.data``, ``float()``) bakes it into the traced program,
        which then computes another function, and training would quietly take other steps."""
        for k in range(min(2, len(X))):
            with no_grad():
                eager = [o.data for o in outputs_of(self.model, [float(v) for v in X[k]])]
            replayed = outputs[k, 1:].tolist()
            if any(not math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12) for a, b in zip(eager, replayed)
                   if math.isfinite(a) or math.isfinite(b)):
                raise ValueError(f"compiled training computes other outputs than the model for sample {k} "
                                 f"of the first batch ({replayed[:3]} against {eager[:3]}): the model reads "
                                 f"a number (.data or float()), which tracing bakes in; train it with "
                                 f"compile=False")
        self.checked = True

    def evaluate(self, X: Sequence[Sequence[float]], y: Sequence[int]) -> tuple[float, float]:
        outputs, _ = self._replay(X, y, train=False)
        return float(outputs[:, 0].mean()), self._correct(outputs, y) / len(y)


def _progress(epochs: range, total: int, done: int, enabled: bool) -> Any:
    # a log file gets a plain line every tenth of the run (_describe), not bar frames
    return progress_bar(epochs, enabled, total=total, initial=done, unit="epoch")


def _describe(bar: Any, row: dict[str, float], every: int) -> None:
    text = f"loss {row['train_loss']:.4f} acc {row['train_accuracy']:.3f}"
    if "test_accuracy" in row:
        text += f" test acc {row['test_accuracy']:.3f}"
    if hasattr(bar, "set_postfix_str"):
        bar.set_postfix_str(text)
    elif int(row["epoch"]) % every == 0:  # no tqdm: a plain line every tenth of the run
        print(f"epoch {int(row['epoch'])}: {text}", flush=True)


__all__ = ["LOSSES", "CompiledSteps", "Diverged", "EagerSteps", "History", "MLP", "batch_loss", "evaluate",
           "explain_divergence", "fit", "make_optimizer", "n_outputs", "predict_class"]
