"""Training end to end: the quality targets, the ``valuegrad train`` command, resuming."""

from __future__ import annotations

import csv
import json
import subprocess
import sys

import pytest

from nn import MLP, SGD, evaluate, fit, make_moons
from nn.cli import main


def run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    status = main(args)
    out, err = capsys.readouterr()
    return status, out, err


def accuracies(out: str) -> tuple[float, float]:
    line = next(line for line in out.splitlines() if line.startswith("train accuracy"))
    words = line.split()
    return float(words[2]), float(words[5])


def test_micrograd_demo_workload_reaches_full_training_accuracy() -> None:
    # micrograd's demo: 100 moons points (noise 0.1), MLP(2, [16, 16, 1]) with micrograd's
    # initialisation, hinge loss + 1e-4 * sum(p^2) (= weight decay 2e-4 in the gradient),
    # full-batch SGD, lr falling linearly from 1.0 to 0.1 over 100 steps.
    data = make_moons(100, 0.1, seed=0)
    model = MLP(2, [16, 16, 1], init="micrograd", rng=0)
    optimizer = SGD(model.parameters(), lr=1.0, weight_decay=2e-4)
    fit(model, data.X, data.y, loss="hinge", optimizer=optimizer, epochs=100, batch_size=None,
        lr_schedule=(1.0, 0.1), progress=False)
    assert optimizer.steps == 100 and optimizer.lr == pytest.approx(0.1)
    assert evaluate(model, data.X, data.y, "hinge", 2)[1] == 1.0


@pytest.mark.slow
def test_iris_reaches_the_target(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    status, out, _ = run(["train", "--dataset", "iris", "--hidden", "16", "--epochs", "60",
                          "--seed", "0", "--out", str(tmp_path), "--no-progress"], capsys)
    assert status == 0
    assert accuracies(out)[1] >= 0.93


@pytest.mark.slow
def test_wine_reaches_the_target(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    status, out, _ = run(["train", "--dataset", "wine", "--hidden", "16", "--epochs", "40",
                          "--seed", "0", "--out", str(tmp_path), "--no-progress"], capsys)
    assert status == 0
    assert accuracies(out)[1] >= 0.95


def test_train_writes_model_history_and_plots(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    status, out, _ = run(["train", "--dataset", "moons", "--samples", "60", "--hidden", "8",
                          "--epochs", "3", "--out", str(tmp_path), "--no-progress"], capsys)
    assert status == 0
    assert {p.name for p in tmp_path.iterdir()} == {
        "model.json", "history.csv", "training.png", "decision_boundary.png"}
    assert (tmp_path / "training.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    rows = list(csv.DictReader((tmp_path / "history.csv").open()))
    assert [r["epoch"] for r in rows] == ["1", "2", "3"]
    model = MLP.load(tmp_path / "model.json")
    assert model.nouts == [8, 1]  # moons defaults to the hinge loss: one score
    assert "wrote" in out


def test_resume_continues_exactly_as_an_uninterrupted_run(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    common = ["train", "--dataset", "iris", "--hidden", "4", "--seed", "3", "--no-progress"]
    assert run([*common, "--epochs", "4", "--out", str(tmp_path / "straight")], capsys)[0] == 0
    assert run([*common, "--epochs", "2", "--out", str(tmp_path / "resumed")], capsys)[0] == 0
    status, out, _ = run(["train", "--resume", "--epochs", "4", "--out", str(tmp_path / "resumed"),
                          "--no-progress"], capsys)
    assert status == 0 and "resuming after epoch 2" in out
    straight = json.loads((tmp_path / "straight" / "model.json").read_text())
    resumed = json.loads((tmp_path / "resumed" / "model.json").read_text())
    assert resumed["state"] == straight["state"]
    history = {name: (tmp_path / name / "history.csv").read_text() for name in ("straight", "resumed")}
    assert history["resumed"] == history["straight"]


@pytest.mark.parametrize(("args", "message"), [
    (["train"], "say what to train on: --dataset NAME or --csv PATH"),
    (["train", "--dataset", "iris", "--csv", "x.csv"], "not allowed with argument"),
    (["train", "--dataset", "mnist"], "invalid choice: 'mnist'"),
    (["train", "--dataset", "iris", "--hidden", "16,x"], "expected layer widths"),
    (["train", "--dataset", "iris", "--lr", "-1"], "expected a number > 0"),
    (["train", "--csv", "nope.csv"], "--csv needs --target"),
    (["train", "--csv", "nope.csv", "--target", "y"], "no CSV file at nope.csv"),
    (["train", "--dataset", "iris", "--loss", "hinge"], "hinge loss is for two classes"),
    (["train", "--resume", "--out", "/nonexistent/dir"], "cannot resume: no model file"),
])
def test_bad_arguments_get_one_line_and_status_2(args: list[str], message: str, capsys) -> None:  # type: ignore[no-untyped-def]
    status, out, err = run(args, capsys)
    assert status == 2
    assert message in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_python_dash_m_nn_is_the_command(tmp_path) -> None:  # type: ignore[no-untyped-def]
    result = subprocess.run([sys.executable, "-m", "nn", "train", "--dataset", "iris", "--epochs", "1",
                             "--out", str(tmp_path), "--no-progress"], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "train accuracy" in result.stdout
    result = subprocess.run([sys.executable, "-m", "nn", "train", "--epochs", "0", "--dataset", "iris"],
                            capture_output=True, text=True)
    assert result.returncode == 2 and "expected a number > 0" in result.stderr
