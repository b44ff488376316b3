"""Issue 14 (reliability): damaged checkpoints and model files are refused whole, with one
line naming the field; no command writes over its input; interrupted runs leave no litter."""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from engine import Value
from engine.atomic import atomic_path
from nn import MLP, SGD, Adam
from nn.cli import main
from nn.module import Module
from nn.optim import Optimizer


def run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    status = main(args)
    out, err = capsys.readouterr()
    return status, out, err


def snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Real checkpoints after one epoch of iris: one with Adam, one with SGD and momentum."""
    made = {}
    for name, settings in {"adam": [], "sgd": ["--optimizer", "sgd", "--momentum", "0.9"]}.items():
        out = tmp_path_factory.mktemp(name)
        assert main(["train", "--dataset", "iris", "--hidden", "2", "--epochs", "1", "--out", str(out),
                     "--no-progress", *settings]) == 0
        made[name] = out
    return made


def put(document: dict[str, Any], dotted: str, value: Any) -> None:
    if dotted.startswith("state."):  # (parameter names have dots of their own)
        document["state"][dotted.removeprefix("state.")] = value
        return
    *path, last = dotted.split(".")
    node: Any = document
    for key in path:
        node = node[int(key)] if isinstance(node, list) else node[key]
    if isinstance(node, list):
        node[int(last)] = value
    else:
        node[last] = value


NAN = math.nan
CORRUPTIONS = [  # (field to set, the value; the field named in the error)
    ("extra.optimizer.m", [0.0], "extra.optimizer.m"),                     # wrong length
    ("extra.optimizer.m", "zeros", "extra.optimizer.m"),                   # wrong type
    ("extra.optimizer.m.3", NAN, "extra.optimizer.m.3"),                   # nan
    ("extra.optimizer.m.3", True, "extra.optimizer.m.3"),                  # bool for number
    ("extra.optimizer.v.0", -1e-3, "extra.optimizer.v.0"),                 # a negative mean of squares
    ("extra.optimizer.steps", -1, "extra.optimizer.steps"),
    ("extra.optimizer.steps", 2.5, "extra.optimizer.steps"),
    ("extra.optimizer.steps", True, "extra.optimizer.steps"),
    ("extra.optimizer.steps", 7, "extra.optimizer.steps"),                 # not 4 steps per epoch
    ("extra.optimizer.betas", [0.9], "extra.optimizer.betas"),
    ("extra.optimizer.betas.1", 1.0, "extra.optimizer.betas.1"),
    ("extra.optimizer.eps", "tiny", "extra.optimizer.eps"),
    ("extra.optimizer.lr", NAN, "extra.optimizer.lr"),
    ("extra.optimizer", None, "extra.optimizer"),
    ("extra.epoch", 0, "extra.epoch"),
    ("extra.epoch", True, "extra.epoch"),
    ("extra.epoch", 1.5, "extra.epoch"),
    ("extra.epoch", NAN, "extra.epoch"),
    ("extra.standardize.std.2", 0.0, "extra.standardize.std.2"),
    ("extra.standardize.std.2", -1.0, "extra.standardize.std.2"),
    ("extra.standardize.std.0", NAN, "extra.standardize.std.0"),
    ("extra.standardize.mean", [1.0], "extra.standardize.mean"),
    ("extra.standardize.mean.1", "5", "extra.standardize.mean.1"),
    ("extra.standardize", None, "extra.standardize"),
    ("extra.args.compile", 1, "extra.args.compile"),
    ("extra.args.compile", "yes", "extra.args.compile"),
    ("extra.args.dataset", "mnist", "extra.args.dataset"),
    ("extra.args.optimizer", "rmsprop", "extra.args.optimizer"),
    ("extra.args.activation", "swish", "extra.args.activation"),
    ("extra.args.activation", "tanh", "extra.args.activation"),            # not the model's
    ("extra.args.init", "xavier", "extra.args.init"),
    ("extra.args.loss", "nll", "extra.args.loss"),
    ("extra.args.schedule", "cosine", "extra.args.schedule"),
    ("extra.args.lr", True, "extra.args.lr"),
    ("extra.args.lr", NAN, "extra.args.lr"),
    ("extra.args.lr", -0.1, "extra.args.lr"),
    ("extra.args.momentum", 1.0, "extra.args.momentum"),
    ("extra.args.weight_decay", -1.0, "extra.args.weight_decay"),
    ("extra.args.batch_size", 0, "extra.args.batch_size"),
    ("extra.args.batch_size", 32.0, "extra.args.batch_size"),
    ("extra.args.test_size", 1.0, "extra.args.test_size"),
    ("extra.args.seed", 1.5, "extra.args.seed"),
    ("extra.args.samples", True, "extra.args.samples"),
    ("extra.args.noise", -1.0, "extra.args.noise"),
    ("extra.args.hidden", [0], "extra.args.hidden.0"),
    ("extra.args.hidden", [3], "extra.args.hidden"),                       # not the model's
    ("extra.args.target", "species", "extra.args.target"),                 # a target without a csv
    ("extra.args", [], "extra.args"),
    ("extra", None, "extra"),
    ("state.layers.0.neurons.0.b", NAN, "state.layers.0.neurons.0.b"),
    ("state.layers.0.neurons.0.b", True, "state.layers.0.neurons.0.b"),
    ("config.nin", 10**9, "config.nin"),                                   # refused before it allocates
    ("config.nouts", [2, 3.0], "config.nouts.1"),
    ("config.activation", None, "config.activation"),
]


def resume_corrupted(tmp_path: Path, capsys: pytest.CaptureFixture[str], checkpoint: Path, field: str,
                     value: Any) -> tuple[int, str]:
    """``valuegrad train --resume`` on a copy of ``checkpoint``'s folder whose model.json has
    ``field`` set to ``value``: the exit status and stderr, after checking that nothing in the
    folder changed."""
    out = tmp_path / "run"
    shutil.copytree(checkpoint, out)
    document = json.loads((out / "model.json").read_text())
    put(document, field, value)
    (out / "model.json").write_text(json.dumps(document))
    before = snapshot(out)
    status, _, err = run(["train", "--resume", "--epochs", "2", "--out", str(out), "--no-progress"], capsys)
    assert snapshot(out) == before
    return status, err


@pytest.mark.parametrize(("field", "value", "named"), CORRUPTIONS)
def test_resume_refuses_a_checkpoint_with_one_bad_field_and_writes_nothing(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], checkpoints: dict[str, Path],
        field: str, value: Any, named: str) -> None:
    status, err = resume_corrupted(tmp_path, capsys, checkpoints["adam"], field, value)
    assert status == 2, err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert f"{named}:" in err and "cannot resume from" in err, err


@pytest.mark.parametrize(("field", "value"), [
    ("extra.optimizer.momentum_buffer", [0.0] * 3), ("extra.optimizer.momentum_buffer.0", NAN),
    ("extra.optimizer.momentum", 1.0), ("extra.args.optimizer", "adam"),  # an SGD state for Adam
])
def test_resume_refuses_a_bad_sgd_state(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                         checkpoints: dict[str, Path], field: str, value: Any) -> None:
    status, err = resume_corrupted(tmp_path, capsys, checkpoints["sgd"], field, value)
    assert status == 2 and len(err.strip().splitlines()) == 1 and "extra.optimizer" in err, err


def test_an_untouched_checkpoint_still_resumes(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                               checkpoints: dict[str, Path]) -> None:
    for name in ("adam", "sgd"):
        shutil.copytree(checkpoints[name], tmp_path / name)
        status, out, err = run(["train", "--resume", "--epochs", "2", "--out", str(tmp_path / name),
                                "--no-progress"], capsys)
        assert status == 0 and "resuming after epoch 1" in out, err
        assert json.loads((tmp_path / name / "model.json").read_text())["extra"]["epoch"] == 2


def test_a_checkpoint_never_echoes_the_file_it_names(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                     checkpoints: dict[str, Path]) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("TOPSECRET,password\nhunter2,x\n")
    out = tmp_path / "run"
    shutil.copytree(checkpoints["adam"], out)
    document = json.loads((out / "model.json").read_text())
    document["extra"]["args"].update(dataset=None, csv=str(secret), target="label")
    (out / "model.json").write_text(json.dumps(document))
    status, _, err = run(["train", "--resume", "--epochs", "2", "--out", str(out), "--no-progress"], capsys)
    assert status == 2 and str(secret) in err and len(err.strip().splitlines()) == 1, err
    assert "TOPSECRET" not in err and "hunter2" not in err


def test_load_refuses_hostile_model_files(tmp_path: Path) -> None:
    path = tmp_path / "m.json"
    good = {"format": "valuegrad-model", "format_version": 1, "extra": {},
            "config": MLP(2, [1], rng=0).config(), "state": MLP(2, [1], rng=0).state_dict()}
    cases: list[tuple[str, str]] = [
        (json.dumps({**good, "config": {**good["config"], "nin": 10**9}}), "config.nin"),
        (json.dumps({**good, "config": {**good["config"], "nouts": [1000] * 1001}}), "at most 1000000"),
        (json.dumps({**good, "extra": None}), "extra"),
        (json.dumps({**good, "extra": [1]}), "extra"),
        (json.dumps({**good, "state": {**good["state"], "layers.0.neurons.0.b": math.inf}}),
         "state.layers.0.neurons.0.b"),
        (json.dumps({**good, "pad": [[[]]]}).replace("[[[]]]", "[" * 5000 + "]" * 5000), "nests 5001"),
        (json.dumps(good).replace('"format_version": 1', '"format_version": 1' + "0" * 5000 + "e-5000"),
         "a number of"),
        (json.dumps({**good, "config": {**good["config"], "nin": int("9" * 39)}}), "config.nin"),
        (json.dumps({**good, "config": {**good["config"], "rng": 3}}), "config.rng"),
        (json.dumps({**good, "state": None}), "state"),
    ]
    for text, message in cases:
        path.write_text(text)
        with pytest.raises(ValueError, match=message):
            MLP.load(path)
    path.write_bytes(b"\xef\xbb\xbf" + json.dumps(good).encode())  # a byte order mark is fine
    assert MLP.load(path).state_dict() == good["state"]


def test_load_state_dict_refuses_nan_and_changes_nothing() -> None:
    model = MLP(2, [2], rng=0)
    before = model.state_dict()
    with pytest.raises(ValueError, match="layers.0.neurons.1.b: expected a finite number, got nan"):
        model.load_state_dict({**{k: 0.5 for k in before}, "layers.0.neurons.1.b": math.nan})
    with pytest.raises(TypeError, match="state_dict"):
        Module.load_state_dict(model, None)  # type: ignore[arg-type]
    assert model.state_dict() == before


@pytest.mark.parametrize(("key", "value", "named"), [
    ("m", [0.0], "m: expected a list of 2 numbers"), ("v", [0.0, -1.0], "v.1: expected a finite number in"),
    ("m", [0.0, math.nan], "m.1"), ("steps", -1, "steps"), ("steps", True, "steps"), ("steps", 1.5, "steps"),
    ("betas", [0.9, 1.0], "betas.1"), ("betas", 0.9, "betas"), ("eps", -1.0, "eps"), ("lr", math.nan, "lr"),
    ("weight_decay", None, "weight_decay"),
])
def test_adam_load_state_dict_checks_every_field_and_changes_nothing(key: str, value: Any,
                                                                    named: str) -> None:
    source = Adam([Value(1.0), Value(2.0)], lr=0.1)
    for p in source.params:
        p.grad = 0.5
    source.step()
    target = Adam([Value(1.0), Value(2.0)], lr=0.2)
    before = target.state_dict()
    with pytest.raises(ValueError, match=named):
        target.load_state_dict({**source.state_dict(), key: value})
    assert target.state_dict() == before


def test_sgd_load_state_dict_checks_its_buffer_and_changes_nothing() -> None:
    target: Optimizer = SGD([Value(1.0)], lr=0.2, momentum=0.5)
    before = target.state_dict()
    for key, value in [("momentum_buffer", [0.0, 0.0]), ("momentum_buffer", [math.inf]), ("momentum", 1.0)]:
        with pytest.raises(ValueError, match=key):
            target.load_state_dict({**before, "lr": 0.9, key: value})
        assert target.state_dict() == before


def test_draw_refuses_bad_statistics_and_never_writes_over_its_model(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], checkpoints: dict[str, Path]) -> None:
    model = tmp_path / "model.json"
    shutil.copy(checkpoints["adam"] / "model.json", model)
    before = model.read_bytes()
    for args, message in [
        (["-o", str(tmp_path / "g.svg"), "--steps", str(model)], "--steps must end in .html"),
        (["-o", str(model)], "-o must end in .svg"),
    ]:
        status, _, err = run(["draw", "--model", str(model), "--input", "1,2,3,4", *args], capsys)
        assert status == 2 and message in err and len(err.strip().splitlines()) == 1, err
    page = tmp_path / "model.html"
    os.link(model, page)  # the same file under an HTML name
    status, _, err = run(["draw", "--model", str(page), "-o", str(tmp_path / "g.svg"), "--steps", str(page)],
                         capsys)
    assert status == 2 and "is the input" in err, err
    assert model.read_bytes() == before
    document = json.loads(before)
    for field, value in [("std", [1.0, 0.0, 1.0, 1.0]), ("mean", [1.0])]:
        document["extra"]["standardize"] = {**json.loads(before)["extra"]["standardize"], field: value}
        model.write_text(json.dumps(document))
        status, _, err = run(["draw", "--model", str(model), "--input", "1,2,3,4", "-o",
                              str(tmp_path / "g.svg")], capsys)
        assert status == 2 and f"extra.standardize.{field}" in err and "Traceback" not in err, err
    model.write_text(json.dumps({**document, "extra": None}))
    status, _, err = run(["draw", "--model", str(model), "-o", str(tmp_path / "g.svg")], capsys)
    assert status == 2 and "extra: expected an object" in err, err


def test_train_never_writes_over_its_csv(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "history.csv"  # a CSV that --out's history would replace
    data.write_text("a,b,label\n" + "".join(f"{i},{i % 3},{i % 2}\n" for i in range(20)))
    before = data.read_bytes()
    status, _, err = run(["train", "--csv", str(data), "--target", "label", "--epochs", "1",
                          "--out", str(tmp_path), "--no-progress"], capsys)
    assert status == 2 and "is the input" in err and len(err.strip().splitlines()) == 1, err
    assert data.read_bytes() == before and not (tmp_path / "model.json").exists()


def test_export_never_writes_over_its_model_even_through_a_hard_link(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], checkpoints: dict[str, Path]) -> None:
    model = tmp_path / "model.json"
    shutil.copy(checkpoints["adam"] / "model.json", model)
    before = model.read_bytes()
    os.link(model, tmp_path / "model.pt")
    status, _, err = run(["export", str(model), "--to", "torch", "-o", str(tmp_path / "model.pt")], capsys)
    assert status == 2 and "is the input" in err, err
    assert model.read_bytes() == before


def test_an_empty_out_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    status, _, err = run(["train", "--dataset", "iris", "--epochs", "1", "--out", "", "--no-progress"],
                         capsys)
    assert status == 2 and "--out: expected a folder name" in err and len(err.strip().splitlines()) == 1
    assert list(tmp_path.iterdir()) == []


def test_the_next_run_removes_what_a_killed_writer_left_and_nothing_else(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], checkpoints: dict[str, Path]) -> None:
    out = tmp_path / "run"
    shutil.copytree(checkpoints["adam"], out)
    with pytest.raises(RuntimeError), atomic_path(out / "model.json") as tmp:  # the writer's own name
        name = tmp.name
        raise RuntimeError("killed")
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    left = out / name.replace(f".{os.getpid()}.", f".{dead.pid}.")     # its writer was killed
    live = out / name.replace(f".{os.getpid()}.", f".{os.getppid()}.")  # a running process's
    other = [out / ".model.json.swp", out / f".notes.{dead.pid}.abcdefgh.json", out / "data.tmp.json"]
    for path in [left, live, *other]:
        path.write_text("{")
    status, _, err = run(["train", "--resume", "--epochs", "2", "--out", str(out), "--no-progress"], capsys)
    assert status == 0, err
    assert not left.exists() and live.exists() and all(p.exists() for p in other)


def test_a_run_killed_after_its_last_epoch_finishes_with_resume(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], checkpoints: dict[str, Path]) -> None:
    out = tmp_path / "run"
    shutil.copytree(checkpoints["adam"], out)
    (out / "training.png").unlink()  # the checkpoint of epoch 1 was saved, the plot not
    before = snapshot(out)
    status, stdout, err = run(["train", "--resume", "--epochs", "1", "--out", str(out), "--no-progress"],
                              capsys)
    assert status == 0, err
    assert "after training: train accuracy" in stdout and (out / "training.png").exists()
    assert {k: v for k, v in snapshot(out).items() if k != "training.png"} == before  # not trained on
