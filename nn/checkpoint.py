"""Checking a ``valuegrad train`` checkpoint (``model.json``) before a run resumes from it.

Every field the run uses is checked for its type, range and length before anything is
trained or written: the model (``config``, ``state``), and in ``extra`` the epoch, the run's
options (``args``), the standardisation statistics and the optimizer's state. A field that
does not fit raises :class:`~nn.checks.FieldError` naming it (``extra.args.lr: expected a
finite number in (0, inf], got nan``); ``valuegrad train --resume`` reports it in one line.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from nn.checks import MISSING, FieldError, boolean, choice, mapping, real, reals, whole
from nn.module import ACTIVATIONS, INITS, MAX_PARAMETERS, MLP
from nn.optim import Optimizer
from nn.train import LOSSES, make_optimizer

MAX_EPOCHS = 10**9


def _text_or_none(field: str, value: Any) -> Any:
    if value is not None and (not isinstance(value, str) or not value):
        raise FieldError(field, "a non-empty string or null", value)
    return value


def _hidden(field: str, value: Any) -> list[int]:
    if not isinstance(value, list) or not value:
        raise FieldError(field, "a non-empty list of layer widths", value)
    return [whole(f"{field}.{i}", n, 1, MAX_PARAMETERS) for i, n in enumerate(value)]


_RUN_OPTIONS: dict[str, Callable[[str, Any], Any]] = {
    "csv": _text_or_none,
    "target": _text_or_none,
    "hidden": _hidden,
    "activation": lambda f, v: choice(f, v, [a for a in ACTIVATIONS if a != "linear"]),
    "init": lambda f, v: choice(f, v, INITS),
    "loss": lambda f, v: choice(f, v, LOSSES),
    "optimizer": lambda f, v: choice(f, v, ("sgd", "adam")),
    "lr": lambda f, v: real(f, v, 0.0, low_open=True),
    "momentum": lambda f, v: real(f, v, 0.0, 1.0, high_open=True),
    "weight_decay": lambda f, v: real(f, v, 0.0),
    "schedule": lambda f, v: choice(f, v, ("constant", "linear")),
    "batch_size": lambda f, v: whole(f, v, 1),
    "test_size": lambda f, v: real(f, v, 0.0, 1.0, low_open=True, high_open=True),
    "samples": lambda f, v: whole(f, v, 2),
    "noise": lambda f, v: real(f, v, 0.0),
    "seed": lambda f, v: whole(f, v, -(2**128), 2**128),
    # compiled or eager: the run goes on as it started (checkpoints from before --compile: eager)
    "compile": lambda f, v: False if v is MISSING else boolean(f, v),
}
"""How each saved run option is checked (a switch such as ``compile`` must be true or false)."""


@dataclass
class Resumed:
    """A checked checkpoint: the epoch it ends with, the run's options, the model with its
    weights, the standardisation statistics and the optimizer with its state."""

    epoch: int
    options: dict[str, Any]
    model: MLP
    mean: list[float]
    std: list[float]
    optimizer: Optimizer


def check_checkpoint(document: dict[str, Any], options: Sequence[str], defaults: dict[str, Any],
                     datasets: Sequence[str]) -> Resumed:
    """Check every field of a checkpoint that ``valuegrad train --resume`` uses.

    Args:
        document: the checkpoint, as :func:`nn.module.read_model_document` returns it.
        options: the names of the run options saved in ``extra.args``.
        defaults: the options' defaults: a switch (``False`` by default) must be a boolean and
            takes its default when missing (checkpoints from before the switch existed).
        datasets: the names ``extra.args.dataset`` may hold.

    Raises:
        nn.checks.FieldError: a field is missing or has a wrong type, range or length.
        ValueError: the options or the statistics do not fit the model.
    """
    model = MLP.from_document(document)
    extra = document["extra"]
    epoch = whole("extra.epoch", extra.get("epoch", MISSING), 1, MAX_EPOCHS)
    saved = mapping("extra.args", extra.get("args", MISSING))
    checked: dict[str, Any] = {}
    for key in options:
        field, value = f"extra.args.{key}", saved.get(key, MISSING)
        if key == "dataset":
            checked[key] = value if value is None else choice(field, value, datasets)
        elif key in _RUN_OPTIONS:
            checked[key] = _RUN_OPTIONS[key](field, value)
        elif defaults.get(key) is False:
            checked[key] = defaults[key] if value is MISSING else boolean(field, value)
        else:  # a new run option needs a line in _RUN_OPTIONS
            raise ValueError(f"no check is defined for the run option {key!r}")
    if (checked.get("dataset") is None) == (checked.get("csv") is None):
        raise FieldError("extra.args.dataset", "a data set name, or null with a csv path",
                         saved.get("dataset"))
    if (checked.get("target") is None) != (checked.get("csv") is None):
        raise FieldError("extra.args.target", "a column name with csv, null without", saved.get("target"))
    for key, want in (("hidden", model.nouts[:-1]), ("activation", model.activation), ("init", model.init)):
        if key in checked and checked[key] != want:
            raise FieldError(f"extra.args.{key}", f"{want!r}, as the model in config", saved[key])
    stats = mapping("extra.standardize", extra.get("standardize", MISSING))
    mean = reals("extra.standardize.mean", stats.get("mean", MISSING), model.nin)
    std = reals("extra.standardize.std", stats.get("std", MISSING), model.nin, 0.0, low_open=True)
    optimizer = make_optimizer(checked["optimizer"], model.parameters(), checked["lr"],
                               checked["weight_decay"], checked["momentum"])
    try:
        optimizer.load_state_dict(extra.get("optimizer", MISSING))
    except FieldError as e:
        raise (e.under("extra.optimizer") if e.field != "optimizer state" else
               FieldError("extra.optimizer", e.expected, e.got)) from None
    return Resumed(epoch, checked, model, mean, std, optimizer)


def check_standardize(document: dict[str, Any], nin: int) -> tuple[list[float], list[float]] | None:
    """A model file's ``extra.standardize`` statistics ``(mean, std)``, checked: ``nin``
    finite means and ``nin`` finite standard deviations > 0; ``None`` when it has none.

    Raises:
        nn.checks.FieldError: a field with a wrong type, length or range.
    """
    stats = document["extra"].get("standardize")
    if stats is None:
        return None
    stats = mapping("extra.standardize", stats)
    return (reals("extra.standardize.mean", stats.get("mean", MISSING), nin),
            reals("extra.standardize.std", stats.get("std", MISSING), nin, 0.0, low_open=True))


def check_steps(steps: int, epoch: int, per_epoch: int) -> None:
    """The optimizer has taken one step per batch of every epoch saved: ``epoch × per_epoch``.

    Raises:
        nn.checks.FieldError: ``extra.optimizer.steps`` says otherwise.
    """
    if steps != epoch * per_epoch:
        raise FieldError("extra.optimizer.steps", f"{epoch * per_epoch} ({epoch} epochs of "
                                                  f"{per_epoch} steps)", steps)


__all__ = ["MAX_EPOCHS", "Resumed", "check_checkpoint", "check_standardize", "check_steps"]
