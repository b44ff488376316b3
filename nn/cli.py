"""The ``valuegrad`` command (also ``python -m nn``): ``train``, ``check`` and ``draw``.

``valuegrad train --dataset iris`` trains an MLP and writes, into ``--out``: the model
(``model.json``, a checkpoint rewritten atomically after every epoch), the per-epoch history
(``history.csv``), a loss-and-accuracy plot (``training.png``) and, for data with two
features, the decision boundary (``decision_boundary.png``). ``--resume`` continues a run
from its checkpoint. Bad arguments get a one-line error and exit status 2.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import io
import math
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

from engine import GuardFailed, TracingError, Value, gradcheck
from engine import sum as engine_sum
from engine.atomic import remove_stale_temporaries
from engine.parse import ExpressionError, function_names, parse_expression
from nn import check_engine_command, export_command
from nn.checkpoint import Resumed, check_checkpoint, check_standardize, check_steps
from nn.checks import check_outputs
from nn.data import (
    Dataset,
    Standardizer,
    load_csv,
    load_digits,
    load_iris,
    load_wine,
    make_moons,
    train_test_split,
)
from nn.diagnose_command import TrainingDiagnostics
from nn.module import (
    ACTIVATIONS,
    INITS,
    MAX_PARAMETERS,
    MLP,
    count_parameters,
    graph_groups,
    read_model_document,
    write_text_atomic,
)
from nn.train import (
    LOSSES,
    CompiledSteps,
    Diverged,
    EagerSteps,
    History,
    explain_divergence,
    fit,
    make_optimizer,
    n_outputs,
    predict_class,
)

DATASETS = ("iris", "wine", "moons", "digits")
HISTORY_FIELDS = ("epoch", "lr", "train_loss", "train_accuracy", "test_loss", "test_accuracy")


class UsageError(Exception):
    """A bad argument or input file: reported in one line, exit status 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(message)


def _hidden(text: str) -> list[int]:
    try:
        sizes = [int(part) for part in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected layer widths like 16,16, got {text!r}") from None
    if not sizes or any(n < 1 for n in sizes):
        raise argparse.ArgumentTypeError(f"expected positive layer widths like 16,16, got {text!r}")
    return sizes


def _folder(text: str) -> Path:
    if not text.strip():  # (Path("") would be the current folder)
        raise argparse.ArgumentTypeError(f"expected a folder name (. for this one), got {text!r}")
    return Path(text)


def _positive(kind: type) -> Any:
    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a {kind.__name__}, got {text!r}") from None
        if not value > 0:
            raise argparse.ArgumentTypeError(f"expected a number > 0, got {text!r}")
        return value

    return parse


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="valuegrad", description="Train and inspect scalar-autograd neural networks.")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    train = commands.add_parser("train", help="train an MLP on a data set",
                                description="Train an MLP classifier and write model, history and plots.",
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    source = train.add_mutually_exclusive_group()  # one is required, unless --resume
    source.add_argument("--dataset", choices=DATASETS, help="a shipped data set (moons is generated)")
    source.add_argument("--csv", type=Path, metavar="PATH", help="your own CSV file with a header row")
    train.add_argument("--target", metavar="COLUMN", help="the label column of --csv")
    train.add_argument("--hidden", type=_hidden, default=[16], metavar="W1,W2",
                       help="hidden layer widths")
    train.add_argument("--activation", choices=[a for a in ACTIVATIONS if a != "linear"], default="relu",
                       help="of the hidden layers (the output layer is linear: logits or scores)")
    train.add_argument("--init", choices=INITS, default="pytorch",
                       help="initial weights: PyTorch's nn.Linear default, or micrograd's")
    train.add_argument("--loss", choices=LOSSES, default=None,
                       help="None means cross_entropy (hinge for moons)")
    train.add_argument("--optimizer", choices=("sgd", "adam"), default="adam", help="SGD or Adam")
    train.add_argument("--lr", type=_positive(float), default=None,
                       help="learning rate; None means 0.01 for adam, 0.1 for sgd")
    train.add_argument("--momentum", type=float, default=0.0, help="SGD momentum in [0, 1)")
    train.add_argument("--weight-decay", type=float, default=0.0, help="L2 penalty coefficient")
    train.add_argument("--schedule", choices=("constant", "linear"), default="constant",
                       help="linear: the learning rate falls linearly to a tenth by the last step")
    train.add_argument("--epochs", type=_positive(int), default=50, help="the last epoch to train")
    train.add_argument("--batch-size", type=_positive(int), default=32,
                       help="samples per step (a number >= the data size is full-batch)")
    train.add_argument("--test-size", type=float, default=0.3,
                       help="share of each class held out for testing")
    train.add_argument("--samples", type=_positive(int), default=200, help="moons: number of points")
    train.add_argument("--noise", type=float, default=0.1, help="moons: noise standard deviation")
    train.add_argument("--seed", type=int, default=0, help="for the weights, the split and shuffling")
    train.add_argument("--out", type=_folder, default=Path("out"), metavar="DIR",
                       help="where model.json, history.csv and the plots go")
    train.add_argument("--resume", action="store_true", help="continue from DIR/model.json up to --epochs")
    train.add_argument("--no-progress", action="store_true", help="no progress bar")
    train.add_argument("--diagnose", action="store_true",
                       help="per epoch and layer: dead and saturated units, activations, gradient norm and "
                            "update-to-data ratio into DIR/diagnostics.csv and .png, with warnings")
    mode = train.add_mutually_exclusive_group()
    mode.add_argument("--compile", dest="compile", action="store_const", const=True, default=None,
                      help="trace the model and loss once and train by batched replay (numpy): the "
                           "same steps, many times faster; the default where numpy is installed")
    mode.add_argument("--eager", dest="compile", action="store_const", const=False,
                      help="train on the step-by-step engine: every sample's graph built and "
                           "walked backward (the default without numpy)")
    check = commands.add_parser(
        "check", help="check an expression's gradients (gradcheck)",
        description="Build an expression's graph, run backward, and check every gradient against an "
                    "independent reference (engine.gradcheck). Exit status 0 when all agree, 1 when "
                    "not, 2 for bad input.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    check.add_argument("expression", help='e.g. "log(x) * sin(y)" or "-x*y" (or after --); functions: '
                       + ", ".join(function_names()))
    check.add_argument("--set", nargs="+", default=[], metavar="NAME=VALUE", dest="assignments",
                       help="the value of each variable, e.g. --set x=2 y=1")
    check.add_argument("--order", type=int, choices=(1, 2), default=1, help="2: also second derivatives")
    check.add_argument("--reference", choices=("central", "exact"), default="central",
                       help="central differences, or a 50-digit mpmath replay of the graph")
    drawing = commands.add_parser(
        "draw", help="draw an expression's (or a saved model's) graph after backward",
        description="Draw the computation graph of an expression, or of a saved model on one input, "
                    "with every value's data and gradient after backward().",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    what = drawing.add_mutually_exclusive_group(required=True)
    what.add_argument("expression", nargs="?", help='e.g. "tanh(w*x + b)" or "-x*y" (or after --)')
    what.add_argument("--model", type=Path, metavar="PATH", help="a model.json written by valuegrad train")
    drawing.add_argument("--set", nargs="+", default=[], metavar="NAME=VALUE", dest="assignments",
                         help="the value of each variable of the expression")
    drawing.add_argument("--input", metavar="X1,X2,...",
                         help="--model: the raw input, standardized as in training (none: zeros after it)")
    drawing.add_argument("-o", "--output", type=Path, required=True, metavar="FILE",
                         help="where to write: .svg, .png or .dot")
    drawing.add_argument("--rankdir", choices=("LR", "TB"), default="LR",
                         help="left to right, or top to bottom")
    drawing.add_argument("--grad-colors", action="store_true", help="colour values by their gradient")
    drawing.add_argument("--collapse", choices=("neuron", "layer"),
                         help="--model: draw each neuron or layer as one box (large models collapse anyway)")
    drawing.add_argument("--max-nodes", type=_positive(int), default=250,
                         help="the most values drawn before collapsing (or cutting) the drawing")
    drawing.add_argument("--steps", type=Path, metavar="FILE.html",
                         help="also write the backward pass step by step, as one self-contained HTML page")
    check_engine_command.add_parser(commands, _Parser, _positive(int))
    export_command.add_parser(commands)
    return parser


def _assignments(pairs: list[str]) -> dict[str, float]:
    values: dict[str, float] = {}
    for assignment in pairs:
        name, sep, text = assignment.partition("=")
        if not sep or not name:
            raise UsageError(f"--set takes NAME=VALUE, got {assignment!r}")
        try:
            values[name.strip()] = float(text)
        except ValueError:
            raise UsageError(f"--set {name}: {text!r} is not a number") from None
    return values


def _parse(text: str, values: dict[str, float]) -> Any:
    try:
        return parse_expression(text, values)
    except ExpressionError as e:  # one line: the column, and the expression quoted (engine's
        # message adds a caret line under the fault, for notebooks and the REPL)
        if e.column is None:
            raise UsageError(str(e)) from None
        shown = e.text if len(e.text) <= 80 else e.text[:77] + "..."
        raise UsageError(f"expression error at column {e.column} of {shown!r}: {e.reason}") from None


def draw_command(args: argparse.Namespace) -> int:
    """``valuegrad draw``: backward, then draw the graph to ``--output``."""
    from engine.draw import draw

    files: list[tuple[str, Path, tuple[str, ...]]] = [("-o", args.output, (".svg", ".png", ".dot"))]
    if args.steps is not None:
        files.append(("--steps", args.steps, (".html", ".htm")))
    try:
        check_outputs(files, [args.model] if args.model is not None else [])
    except ValueError as e:
        raise UsageError(str(e)) from None
    if args.model is not None:
        try:
            document = read_model_document(args.model)
            model = MLP.from_document(document)
            stats = check_standardize(document, model.nin)
        except (OSError, ValueError) as e:
            raise UsageError(str(e)) from None
        try:
            x = [float(v) for v in args.input.split(",")] if args.input else [0.0] * model.nin
        except ValueError:
            raise UsageError(f"--input takes numbers separated by commas, got {args.input!r}") from None
        if args.input and stats and len(x) == model.nin:  # as the model saw data
            x = [(v - m) / sd for v, m, sd in zip(x, *stats)]
        try:
            outputs = model([Value(v, f"x{i}") for i, v in enumerate(x)])
        except (ValueError, ArithmeticError) as e:
            raise UsageError(str(e)) from None
        root = outputs[0] if len(outputs) == 1 else engine_sum(outputs)
        root.backward()
        parameters = model.parameters()
        groups = graph_groups(model, root)
        collapse = {"layer": 0, "neuron": 1, None: None}[args.collapse]
        title = f"{model} on input {', '.join(f'{v:g}' for v in x)}"
    else:
        parsed = _parse(args.expression, _assignments(args.assignments))
        root = parsed.root
        root.backward()
        parameters = []
        title = args.expression
        groups, collapse = {}, None
        if args.collapse:
            raise UsageError("--collapse goes with --model")
    try:
        graph = draw(root, rankdir=args.rankdir, grad_colors=args.grad_colors, parameters=parameters,
                     title=title, groups=groups, collapse=collapse, max_nodes=args.max_nodes)
        path = graph.save_as(args.output)
        written = [path]
        if args.steps is not None:
            from engine.stepper import Stepper

            stepper = Stepper(root, rankdir=args.rankdir, parameters=parameters)
            written.append(stepper.save_html(args.steps, title=f"backward pass of {title}"))
    except (ValueError, RuntimeError, ImportError, OSError) as e:
        raise UsageError(str(e)) from None
    print("wrote " + ", ".join(str(p) for p in written))
    return 0


def check_command(args: argparse.Namespace) -> int:
    """``valuegrad check``: print the gradcheck report; 0 if it passes, 1 if not."""
    parsed = _parse(args.expression, _assignments(args.assignments))
    if not parsed.leaves:
        raise UsageError("the expression has no variable to differentiate by")
    try:
        report = gradcheck(parsed.root, list(parsed.leaves.values()), order=args.order,
                           reference=args.reference, name=args.expression)
    except ImportError as e:
        raise UsageError(str(e)) from None
    print(report)
    return 0 if report.ok else 1


RUN_OPTIONS = ("dataset", "csv", "target", "hidden", "activation", "init", "loss", "optimizer", "lr",
               "momentum", "weight_decay", "schedule", "batch_size", "test_size", "samples", "noise", "seed",
               "compile")
"""The options that define a run: ``--resume`` takes them from the checkpoint."""


def load_dataset(args: argparse.Namespace) -> Dataset:
    """The data set the arguments name. Raises ``UsageError`` for a bad file, column or size."""
    try:
        if args.csv is not None:
            if not args.target:
                raise UsageError("--csv needs --target COLUMN (the label column)")
            data = load_csv(args.csv, target=args.target, progress=not args.no_progress)
        elif args.target:
            raise UsageError("--target goes with --csv")
        elif args.dataset == "moons":
            data = make_moons(args.samples, args.noise, seed=args.seed)
        elif args.dataset in ("iris", "wine", "digits"):
            data = {"iris": load_iris, "wine": load_wine, "digits": load_digits}[args.dataset]()
        else:
            raise UsageError(f"unknown data set {args.dataset!r}; choose one of {', '.join(DATASETS)}")
    except (OSError, ValueError) as e:
        raise UsageError(str(e)) from None
    if data.n_classes < 2:
        raise UsageError(f"{data.name} has {data.n_classes} class; a classifier needs at least two")
    return data


def _explicit(args: argparse.Namespace, parser: argparse.ArgumentParser) -> set[str]:
    """The options of ``train`` given a value other than their default on the command line."""
    defaults = vars(parser.parse_args(["train"]))
    return {k for k, v in vars(args).items() if v != defaults.get(k)}


def _check_options(args: argparse.Namespace, explicit: set[str]) -> None:
    if args.resume:
        extra = sorted(explicit & set(RUN_OPTIONS))
        if extra:
            flags = ", ".join("--compile/--eager" if k == "compile" else "--" + k.replace("_", "-")
                              for k in extra)
            raise UsageError(f"--resume continues the saved run with its own settings; drop {flags} "
                             f"(only --epochs, --out, --no-progress and --diagnose go with --resume)")
        return
    if args.dataset is None and args.csv is None:
        raise UsageError("say what to train on: --dataset NAME or --csv PATH --target COLUMN")
    if args.dataset != "moons" and explicit & {"samples", "noise"}:
        raise UsageError("--samples and --noise go with --dataset moons")
    if args.optimizer != "sgd" and "momentum" in explicit:
        raise UsageError("--momentum goes with --optimizer sgd (Adam keeps its own moments)")
    if not 0.0 < args.test_size < 1.0:
        raise UsageError(f"--test-size must be between 0 and 1, got {args.test_size}")


def _fingerprint(data: Dataset) -> str:
    """SHA-256 of a data set's samples and labels (``repr`` of floats is exact), saved in the
    checkpoint so that ``--resume`` notices when the CSV it names has changed."""
    return hashlib.sha256(repr((data.X, data.y)).encode()).hexdigest()


def _check_writable(out: Path) -> None:
    """Refuse an ``--out`` that cannot be written, without making it: a file, or a folder (or,
    when it does not exist yet, its nearest existing parent) without write permission."""
    existing = out
    while not existing.exists() and existing.parent != existing:
        existing = existing.parent
    if existing.exists() and not existing.is_dir():
        raise UsageError(f"cannot write to --out {out}: {existing} is not a folder")
    if not os.access(existing, os.W_OK):
        raise UsageError(f"cannot write to --out {out}: permission denied")


def _training_mode(args: argparse.Namespace, model: MLP, n_features: int,
                   n_classes: int) -> tuple[str, EagerSteps | CompiledSteps]:
    """Settle ``args.compile``; return how the run trains, in words, and its training steps
    (compiled ones have traced their program already: training and evaluation reuse it).
    ``None`` (neither ``--compile`` nor ``--eager``) means compiled where numpy is installed and
    the model and loss trace, else eager with the reason. Raises ``UsageError`` when
    ``--compile`` cannot be done."""
    eager = EagerSteps(model, args.loss, n_classes)
    if args.compile is False:
        return "training eager (the step-by-step engine, --eager)", eager
    try:
        compiled = CompiledSteps(model, args.loss, n_classes)
        compiled.trace(n_features)
    except ImportError as e:
        reason = "numpy is not installed (pip install 'valuegrad[fast]' to train compiled)"
        if args.compile:
            raise UsageError(str(e)) from None
    except (TracingError, GuardFailed, ValueError, TypeError, ArithmeticError) as e:
        reason = f"the model or loss cannot be traced: {str(e).splitlines()[0]}"
        if args.compile:
            raise UsageError(f"--compile: {reason}") from None
    else:
        args.compile = True
        return "training compiled (traced once, trained by batched replay; --eager for the step-by-step " \
               "engine)", compiled
    args.compile = False
    return f"training eager, because {reason}", eager


def train_command(args: argparse.Namespace, explicit: set[str]) -> int:
    _check_options(args, explicit)
    out: Path = args.out
    checkpoint = out / "model.json"
    history = History()
    resume: Resumed | None = None
    if args.resume:
        try:  # every field is checked before anything is trained or written
            resume_document = read_model_document(checkpoint)
            defaults = vars(build_parser().parse_args(["train"]))
            resume = check_checkpoint(resume_document, RUN_OPTIONS, defaults, DATASETS)
            vars(args).update(resume.options)
            start = resume.epoch
            history = _read_history(out / "history.csv", start)
            if len(history.rows) != start:  # (the checkpoint is what counts: training goes on from it)
                print(f"valuegrad: warning: {out / 'history.csv'} has {len(history.rows)} of the "
                      f"{start} epochs done; the history and its plot will start after the gap",
                      file=sys.stderr)
        except (OSError, ValueError, KeyError, TypeError, ArithmeticError) as e:
            raise UsageError(f"cannot resume from {checkpoint}: {e}") from None
        args.csv = Path(args.csv) if args.csv else None
    else:
        start = 0
    _check_writable(out)  # (the folder itself is made once every check has passed)

    outputs = [out / name for name in ("model.json", "history.csv", "training.png", "decision_boundary.png",
                                       "diagnostics.csv", "diagnostics.png")]
    try:
        check_outputs([("--out", path, (path.suffix,)) for path in outputs], [args.csv] if args.csv else [])
    except ValueError as e:
        raise UsageError(str(e)) from None
    if resume is not None and args.csv is not None:
        try:
            data = load_dataset(args)
        except UsageError:  # (its message could quote the file, which the checkpoint names)
            raise UsageError(f"cannot resume from {checkpoint}: the data file it names, {args.csv}, "
                             f"is missing or is not a CSV file with a column {args.target!r}") from None
    else:
        data = load_dataset(args)
    fingerprint = _fingerprint(data)
    if resume is not None:
        saved_print = resume_document.get("extra", {}).get("data_sha256")  # (absent before it was saved)
        if saved_print is not None and saved_print != fingerprint:
            raise UsageError(f"cannot resume from {checkpoint}: the data differ from the data the run "
                             f"started on (extra.data_sha256 {str(saved_print)[:12]}…, now "
                             f"{fingerprint[:12]}…); start a new run in another --out folder")
    if args.loss is None:
        args.loss = "hinge" if data.n_classes == 2 and args.dataset == "moons" else "cross_entropy"
    if args.lr is None:
        args.lr = 0.01 if args.optimizer == "adam" else 0.1
    if args.csv is not None:
        args.csv = args.csv.resolve()  # so that --resume works from another folder
    try:
        nout = n_outputs(args.loss, data.n_classes)
        X_train, X_test, y_train, y_test = train_test_split(data.X, data.y, args.test_size, seed=args.seed)
        if not X_train or not X_test:
            raise ValueError(f"--test-size {args.test_size} leaves {len(X_train)} training and "
                             f"{len(X_test)} test samples; both need at least one")
        if resume is not None:  # the statistics the run started with, not a refit
            scaler = Standardizer(resume.mean, resume.std)
            model, optimizer = resume.model, resume.optimizer
            if model.nouts[-1] != nout:
                raise ValueError(f"the model has {model.nouts[-1]} outputs; {args.loss} on {data.name} "
                                 f"needs {nout}")
            check_steps(optimizer.steps, start, math.ceil(len(X_train) / args.batch_size))
        else:
            count = count_parameters([data.n_features, *args.hidden, nout])
            if count > MAX_PARAMETERS:  # (checked before anything is built: model files are capped too)
                raise ValueError(f"--hidden {','.join(map(str, args.hidden))} makes a model of {count:,} "
                                 f"parameters; valuegrad trains and reads models of at most "
                                 f"{MAX_PARAMETERS:,}")
            scaler = Standardizer.fit(X_train)
            model = MLP(data.n_features, [*args.hidden, nout], activation=args.activation, rng=args.seed,
                        init=args.init)
            optimizer = make_optimizer(args.optimizer, model.parameters(), args.lr, args.weight_decay,
                                       args.momentum)
        X_train, X_test = scaler.transform(X_train), scaler.transform(X_test)
    except (ValueError, KeyError, TypeError, ArithmeticError) as e:
        raise UsageError(str(e) if resume is None else f"cannot resume from {checkpoint}: {e}") from None
    if start > args.epochs:
        raise UsageError(f"the checkpoint is already at epoch {start}; ask for more --epochs (or "
                         f"--epochs {start} to finish its plots and report)")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UsageError(f"cannot write to --out {out}: {e.strerror or e}") from None
    # A run killed while writing leaves the atomic writer's temporary files; none is in use now.
    remove_stale_temporaries(out)

    how, steps = _training_mode(args, model, data.n_features, data.n_classes)
    print(f"valuegrad: {how}; {data.name}: {len(X_train)} training and {len(X_test)} test samples, "
          f"{data.n_features} features, {data.n_classes} classes; {model} with "
          f"{model.num_parameters()} parameters; {args.loss} loss, {args.optimizer} lr {args.lr}"
          + (f"; resuming after epoch {start}" if 0 < start < args.epochs else "")
          + (f"; all {start} epochs are done: writing the report" if start == args.epochs else ""),
          flush=True)

    saved_args = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()
                  if k in RUN_OPTIONS}

    saved_epoch = [start]  # the epoch in the checkpoint, for the message if writing fails
    diagnostics = _diagnostics(args, model, X_train, optimizer, start)

    def save_checkpoint(epoch: int, hist: History) -> None:
        if diagnostics is not None:  # (before the checkpoint: the CSV never lags behind it)
            diagnostics.epoch_end(epoch)
        extra = {"epoch": epoch, "args": saved_args, "optimizer": optimizer.state_dict(),
                 "standardize": {"mean": scaler.mean, "std": scaler.std}, "data_sha256": fingerprint,
                 "feature_names": data.feature_names, "class_names": data.class_names}
        write_text_atomic(out / "history.csv", _history_csv(hist))
        model.save(checkpoint, extra=extra)
        saved_epoch[0] = epoch

    # The linear schedule spans --epochs: resuming an interrupted run with the same --epochs
    # continues it exactly; resuming with more stretches the rest of the schedule.
    schedule = (args.lr, args.lr / 10) if args.schedule == "linear" else None
    try:
        if start < args.epochs:  # (else a run killed after its last epoch: only the report is left)
            fit(model, X_train, y_train, loss=args.loss, optimizer=optimizer, epochs=args.epochs,
                batch_size=args.batch_size, seed=args.seed, n_classes=data.n_classes, X_test=X_test,
                y_test=y_test, lr_schedule=schedule, start_epoch=start, history=history,
                on_epoch_end=save_checkpoint, progress=not args.no_progress, compile=args.compile,
                steps=steps)
    except KeyboardInterrupt:  # (the epoch model.json holds: history.csv may be one ahead)
        saved = f"epoch {saved_epoch[0]} is saved in {checkpoint}; continue with --resume" if saved_epoch[0] \
            else "no epoch had finished, so nothing was saved"
        print(f"\nvaluegrad: interrupted; {saved}", file=sys.stderr)
        return 130
    except Diverged as e:  # anomaly detection on the batch names the op that made nan or inf
        where = explain_divergence(model, args.loss, data.n_classes, e)
        found = f"; anomaly detection on that batch: {where}" if where else ""
        kept = f"the last finite epoch, {saved_epoch[0]}, is kept in {checkpoint}" if saved_epoch[0] \
            else "no epoch had finished, so nothing was saved"
        print(f"valuegrad: {e}{found}; {kept}", file=sys.stderr)
        return 1
    except (ValueError, TypeError, ImportError) as e:  # fit() rejects: a damaged checkpoint, no numpy
        raise UsageError(str(e)) from None
    except OSError as e:  # writing the checkpoint (atomically: the old one stays whole), e.g. a full disk
        kept = f"{checkpoint} keeps epoch {saved_epoch[0]}" if saved_epoch[0] else "nothing was saved"
        raise UsageError(f"cannot write to {out}: {e.strerror or e}; {kept}") from None

    _, train_acc = steps.evaluate(X_train, y_train)
    _, test_acc = steps.evaluate(X_test, y_test)
    print(f"after training: train accuracy {train_acc:.4f}  test accuracy {test_acc:.4f}")
    written = ([checkpoint, out / "history.csv"] + ([out / "diagnostics.csv"] if diagnostics else [])) \
        if start < args.epochs else []
    try:
        from nn.plots import plot_decision_boundary, plot_history

        plot_history(history, out / "training.png", title=f"{data.name}: {model}")
        written.append(out / "training.png")
        if diagnostics is not None:
            diagnostics.plot(out / "diagnostics.png", title=f"{data.name}: {model}, layer by layer")
            written.append(out / "diagnostics.png")
        if data.n_features == 2:
            def score(output: list[Any]) -> float:
                return float(predict_class(args.loss, output))

            plot_decision_boundary(model, X_train + X_test, y_train + y_test, out / "decision_boundary.png",
                                   score=score, title=f"{data.name}: decision boundary (standardized)",
                                   feature_names=data.feature_names, class_names=data.class_names)
            written.append(out / "decision_boundary.png")
    except ImportError as e:
        print(f"valuegrad: no plots: {e}", file=sys.stderr)
    except OSError as e:  # the model and history are written; a plot is not (a full disk, say)
        raise UsageError(f"cannot write the plots to {out}: {e.strerror or e} (the model is saved in "
                         f"{checkpoint})") from None
    print("wrote " + ", ".join(str(p) for p in written))
    return 0


def _diagnostics(args: argparse.Namespace, model: MLP, X: list[list[float]], optimizer: Any,
                 start: int) -> TrainingDiagnostics | None:
    """``--diagnose``: what measures the layers after each epoch (``None`` without it)."""
    if not args.diagnose:
        return None
    try:
        return TrainingDiagnostics(args.out, model, X, optimizer, start)
    except (OSError, ValueError) as e:
        raise UsageError(f"--diagnose: {e}") from None


def _history_csv(history: History) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=HISTORY_FIELDS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in history.rows:
        writer.writerow({k: (int(v) if k == "epoch" else v) for k, v in row.items()})
    return buffer.getvalue()


def _read_history(path: Path, epochs: int) -> History:
    history = History()
    if path.is_file():
        with path.open(newline="", encoding="utf-8") as f:
            for row in csv.DictReader(f):
                values = {k: float(v) for k, v in row.items() if v not in (None, "")}
                if values.get("epoch", 0) <= epochs:
                    history.rows.append(values)
    return history


def _expression_first(parser: argparse.ArgumentParser, argv: list[str]) -> list[str]:
    """``check`` and ``draw`` take an expression that may start with ``-`` (``"-x*y"``), which
    argparse would take for an unknown option. The first argument of theirs that starts with
    ``-`` (not ``--``) and is none of the command's options (nor the value of one), or the argument after
    ``--``, is the expression: it is moved right after the command, with a leading space so that
    argparse reads it as the positional argument it is (``main`` strips the space). So
    ``check "-x*y" --set x=1 y=2``, ``check --set x=1 y=2 -- "-x*y"`` and ``check -- -x --set x=1``
    all work, and options given anywhere still do."""
    if not argv or argv[0] not in ("check", "draw"):
        return argv
    # (argparse keeps the commands and their options in private attributes, stable since 2.7)
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    options = commands.choices[argv[0]]._option_string_actions

    def is_option(token: str) -> bool:
        if token.startswith("--"):  # a long option, abbreviated or with =VALUE
            name = token.partition("=")[0]
            return any(option.startswith(name) for option in options if option.startswith("--"))
        return token[:2] in options  # a short one, perhaps with its value attached (-oout.svg)

    rest = list(argv[1:])
    for i, token in enumerate(rest):
        if token == "--" and i + 1 < len(rest):
            del rest[i]
            break
        previous = options.get(rest[i - 1]) if i else None
        is_value = previous is not None and previous.nargs is None  # of an option taking one (-o FILE)
        if token.startswith("-") and not token.startswith("--") and not is_option(token) and not is_value:
            break
    else:
        return argv
    expression = rest.pop(i)
    return [argv[0], " " + expression if expression.startswith("-") else expression, *rest]


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status (0 ok, 2 bad arguments, 130 interrupted)."""
    parser = build_parser()
    try:
        args = parser.parse_args(_expression_first(parser, list(sys.argv[1:] if argv is None else argv)))
        if isinstance(getattr(args, "expression", None), str):
            args.expression = args.expression.lstrip()
        if args.command == "train":
            return train_command(args, _explicit(args, parser))
        if args.command == "check":
            return check_command(args)
        if args.command == "draw":
            return draw_command(args)
        if args.command == "export":
            try:
                print(export_command.run(args))
            except ValueError as e:
                raise UsageError(str(e)) from None
            return 0
        if args.command == "check-engine":
            try:
                status, report = check_engine_command.run(args)
            except ValueError as e:
                raise UsageError(str(e)) from None
            print(report)
            return status
        raise UsageError("say which command to run: train, check, check-engine, draw or export "
                         "(valuegrad COMMAND --help)")
    except UsageError as e:
        command = " ".join(["valuegrad", *(a for a in (argv or sys.argv[1:])[:1])])
        print(f"{command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # outside training's epochs (which say what is saved): no traceback
        print("\nvaluegrad: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
