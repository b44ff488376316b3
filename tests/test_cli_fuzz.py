"""A fuzzer of our own for the command line: hypothesis draws ``valuegrad`` commands with
arguments, CSV files and model files, from valid ones through careless to hostile ones, runs
each in this process (``nn.cli.main``) in a fresh folder, and checks three things:

- the run ends with exit status 0 or 2 (1 only where documented: ``check`` found a gradient
  that disagrees, or training diverged), never with an exception or a traceback;
- a failure (status 2) is one line on stderr;
- no file the command was given to read is changed.

``make test`` runs a short, derandomised form (the ``ci`` and ``dev`` profiles: a few dozen
runs); ``make fuzz`` runs it at the ``long`` profile's size, bounded by ``FUZZ_SECONDS``
(hypothesis stops drawing new runs when the time is up).

Sizes are kept small (epochs, samples, widths), so each run takes well under a second; the
CLI's limits on big sizes are tested on their own.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from nn.cli import main

FUZZ_SECONDS = float(os.environ.get("FUZZ_SECONDS", "600"))
START = time.monotonic()
PROFILE = os.environ.get("HYPOTHESIS_PROFILE", "dev")
RUNS = 2_000 if PROFILE == "long" else 30

# ---- what the fuzzer types -------------------------------------------------------------------

junk = st.sampled_from(["", " ", "-", "--", "x", "nan", "inf", "-inf", "1e309", "-1", "0", "1e-320",
                        "9" * 40, "0x10", "1,,2", "é", "\x00", "../..", "--help-not"])
small_int = st.integers(-2, 3).map(str)
number = st.sampled_from(["0.1", "0.01", "1", "0", "-0.5", "1e3", "nan", "inf", "1e-9"])


def option(name: str, values: st.SearchStrategy[str]) -> st.SearchStrategy[list[str]]:
    """``[name, value]``: a value of the option's own (three times in four) or junk."""
    return st.tuples(st.just(name), st.one_of(values, values, values, junk)).map(list)


TRAIN_OPTIONS = [
    option("--hidden", st.sampled_from(["4", "3,2", "0", "2,", "16"])),
    option("--epochs", small_int),
    option("--lr", number),
    option("--batch-size", st.sampled_from(["1", "7", "1000", "0"])),
    option("--test-size", st.sampled_from(["0.3", "0.5", "0", "1", "0.99"])),
    option("--loss", st.sampled_from(["cross_entropy", "hinge", "bce", "mse", "hinge2"])),
    option("--optimizer", st.sampled_from(["sgd", "adam", "rmsprop"])),
    option("--momentum", number),
    option("--weight-decay", number),
    option("--activation", st.sampled_from(["relu", "tanh", "sigmoid", "linear"])),
    option("--init", st.sampled_from(["pytorch", "micrograd", "zeros"])),
    option("--schedule", st.sampled_from(["constant", "linear"])),
    option("--seed", st.sampled_from(["0", "7", "-1", "1e3"])),
    option("--samples", st.sampled_from(["20", "60", "0", "1"])),
    option("--noise", number),
    st.sampled_from([["--eager"], ["--compile"], ["--resume"], ["--no-progress"], ["--diagnose"]]),
]

expression = st.recursive(
    st.sampled_from(["x", "y", "2", "0", "-1", "1e308", "nan", "z"]),
    lambda inner: st.one_of(
        st.tuples(inner, st.sampled_from(["+", "-", "*", "/", "**"]), inner)
        .map(lambda t: f"({t[0]}{t[1]}{t[2]})"),
        st.tuples(st.sampled_from(["tanh", "exp", "log", "sqrt", "relu", "sin", "abs", "sigmoid", "bogus"]),
                  inner).map(lambda t: f"{t[0]}({t[1]})"),
        st.tuples(st.just("-"), inner).map("".join)),
    max_leaves=6) | junk | st.text(alphabet="xy+-*/()., 0123456789e", max_size=12)
assignments = st.one_of(st.just(["x=1", "y=-2"]), st.just(["x=0.5", "y=3"]), st.lists(
    st.sampled_from(["x=1", "y=-2", "x=0", "y=nan", "x=", "=1", "x=1e309", "z=3"]), max_size=3))


@st.composite
def csv_text(draw: Any) -> str:
    """A CSV: a header (a target column ``label``, perhaps twice, perhaps absent) and rows of
    numbers, junk, empty cells or ragged lengths, perhaps with a BOM."""
    n_features = draw(st.integers(0, 3))
    header = [f"f{k}" for k in range(n_features)] + ["label"]
    if draw(st.booleans()):
        header = draw(st.permutations(header))
    if draw(st.integers(0, 9)) == 0:
        header.append(draw(st.sampled_from(["label", "f0", ""])))
    cell = st.one_of(st.floats(-5, 5, allow_subnormal=False).map(repr),
                     st.sampled_from(["1e308", "", "a", "nan"]))
    rows = draw(st.lists(st.lists(cell, min_size=len(header) - 1, max_size=len(header) + 1),
                         min_size=0, max_size=30))
    labels = draw(st.lists(st.sampled_from(["0", "1", "2", "a", "", "b"]), min_size=len(rows),
                           max_size=len(rows)))
    lines = [",".join(header)] + [",".join([*r, lab]) for r, lab in zip(rows, labels)]
    return ("\ufeff" if draw(st.booleans()) else "") + "\n".join(lines) + "\n"


def mutated_model(document: dict[str, Any]) -> st.SearchStrategy[str]:
    """A model file: valid, or with one field replaced (wrong type, out of range, huge, null,
    deep nesting), or not JSON at all."""
    deep: Any = 0
    for _ in range(50):
        deep = [deep]
    replacement = st.sampled_from([None, "x", -1, 0, 10**9, 1e308, float("nan"), [], {}, True, deep])

    @st.composite
    def mutate(draw: Any) -> str:
        doc = json.loads(json.dumps(document))
        kind = draw(st.integers(0, 5))
        if kind == 0:
            return json.dumps(doc)
        if kind == 1:
            return draw(st.sampled_from(["", "{", "[]", "null", "\ufeff" + json.dumps(doc), "{" * 100_000]))
        paths = list(_paths(doc))
        path = draw(st.sampled_from(paths))
        target = doc
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = draw(replacement)
        return json.dumps(doc, allow_nan=True)

    return mutate()


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> Any:
    """Every (key or index) path into ``node``, but only the first two items of a long list."""
    items = node.items() if isinstance(node, dict) else enumerate(node[:2]) if isinstance(node, list) else ()
    for key, child in items:
        yield (*prefix, key)
        yield from _paths(child, (*prefix, key))


# ---- one run ---------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def trained_model(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    out = tmp_path_factory.mktemp("trained")
    assert main(["train", "--dataset", "iris", "--hidden", "3", "--epochs", "1", "--no-progress",
                 "--out", str(out)]) == 0
    return json.loads((out / "model.json").read_text())


def run_cli(argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            status = main(argv)
        except SystemExit as e:  # argparse's --help and usage errors
            status = e.code if isinstance(e.code, int) else 2
    return status, out.getvalue(), err.getvalue()


def check_run(argv: list[str], inputs: list[Path], documented_1: Callable[[str], bool]) -> None:
    """Run ``argv`` and check the three promises (see the module docstring)."""
    before = {p: p.read_bytes() for p in inputs if p.is_file()}
    status, _, err = run_cli(argv)
    event(f"{argv[0]} exit {status}")  # (pytest --hypothesis-show-statistics shows the mix)
    assert "Traceback" not in err, (argv, err)
    assert status in (0, 2) or (status == 1 and documented_1(err)), (argv, status, err)
    if status == 2:
        assert err.strip() and len(err.strip().splitlines()) == 1, (argv, err)
    for p, content in before.items():
        assert p.is_file() and p.read_bytes() == content, f"{argv} changed its input {p}"


def diverged(err: str) -> bool:
    return "diverged" in err


fuzz = settings(max_examples=RUNS, deadline=None, suppress_health_check=list(HealthCheck),
                derandomize=PROFILE != "long", database=None)


@fuzz
@given(data=st.data())
def test_train_never_crashes_and_never_writes_over_its_csv(data: st.DataObject) -> None:
    if time.monotonic() - START > FUZZ_SECONDS:
        return  # the time budget is spent: the remaining runs pass without running
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        csv_path = folder / data.draw(st.sampled_from(["data.csv", "history.csv", "model.json", "x.txt"]))
        csv_path.write_text(data.draw(csv_text()), encoding="utf-8")
        source = data.draw(st.sampled_from([["--dataset", "iris"], ["--dataset", "moons", "--samples", "30"],
                                            ["--csv", str(csv_path), "--target", "label"],
                                            ["--csv", str(csv_path), "--target", "f0"],
                                            ["--dataset", "mnist"], []]))
        out = data.draw(st.sampled_from([str(folder / "run"), str(folder), str(csv_path), "",
                                         str(folder / "a/b")]))
        options = data.draw(st.lists(st.sampled_from(TRAIN_OPTIONS).flatmap(lambda s: s), max_size=4))
        argv = ["train", *source, "--epochs", "2", *[a for o in options for a in o], "--no-progress",
                "--out", out]
        check_run(argv, [csv_path] if "--csv" in source else [], diverged)  # (else it is not an input)


@fuzz
@given(data=st.data())
def test_check_and_draw_never_crash_and_never_write_over_their_inputs(data: st.DataObject,
                                                                       trained_model: dict[str, Any]) -> None:
    if time.monotonic() - START > FUZZ_SECONDS:
        return  # the time budget is spent: the remaining runs pass without running
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        model = folder / "model.json"
        model.write_text(data.draw(mutated_model(trained_model)), encoding="utf-8")
        expr = data.draw(expression)
        sets = data.draw(assignments)
        command = data.draw(st.sampled_from(["check", "draw", "draw-model", "export"]))
        output = data.draw(st.one_of(st.just(str(folder / "g.svg")), st.sampled_from(
            [str(folder / "g.png"), str(model), str(folder / "g.dot"), "", str(folder), str(folder / "m.pt"),
             str(folder / "m.onnx")])))
        if command == "check":
            argv = ["check", expr, *(["--set", *sets] if sets else []),
                    *data.draw(st.sampled_from([[], ["--order", "2"], ["--order", "3"]]))]
        elif command == "draw":
            steps = data.draw(st.sampled_from([[], ["--steps", str(folder / "s.html")],
                                               ["--steps", str(model)], ["--steps", output]]))
            argv = ["draw", expr, *(["--set", *sets] if sets else []), "-o", output, *steps]
        elif command == "draw-model":
            steps = data.draw(st.sampled_from([[], ["--steps", str(model)],
                                               ["--steps", str(folder / "s.html")]]))
            raw = data.draw(st.sampled_from(["1,2,3,4", "1,2", "x"]))
            argv = ["draw", "--model", str(model), "--input", raw, "-o", output, *steps,
                    *data.draw(st.sampled_from([[], ["--collapse", "neuron"]]))]
        else:
            to = data.draw(st.sampled_from(["torch", "onnx", "tf"]))
            argv = ["export", "--to", to, "-o", output, str(model)]
        check_run(argv, [model], lambda err: command == "check")
