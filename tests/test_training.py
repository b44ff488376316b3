"""Training end to end: the quality targets, the ``valuegrad train`` command, resuming."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from typing import Any

import pytest

import engine
import nn
import nn.cli
from nn import MLP, SGD, evaluate, fit, make_moons
from nn.cli import main


def run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    status = main(args)
    out, err = capsys.readouterr()
    return status, out, err


def accuracies(out: str) -> tuple[float, float]:
    line = next(line for line in out.splitlines() if line.startswith("after training: train accuracy"))
    words = line.split()
    return float(words[4]), float(words[7])


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
@pytest.mark.parametrize("dataset, epochs, target", [("iris", "60", 0.93), ("wine", "40", 0.95)])
def test_shipped_data_reaches_the_target(tmp_path, capsys, dataset: str, epochs: str,  # type: ignore[no-untyped-def]
                                         target: float) -> None:
    status, out, _ = run(["train", "--dataset", dataset, "--hidden", "16", "--epochs", epochs,
                          "--seed", "0", "--out", str(tmp_path), "--no-progress"], capsys)
    assert status == 0
    assert accuracies(out)[1] >= target


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


@pytest.mark.parametrize("settings", [
    ["--optimizer", "adam", "--lr", "0.05", "--weight-decay", "0.01"],
    ["--optimizer", "sgd", "--momentum", "0.9", "--weight-decay", "0.01", "--schedule", "linear"],
    ["--optimizer", "adam", "--lr", "0.05", "--compile"],  # the resumed run is compiled too
    ["--optimizer", "adam", "--lr", "0.05", "--eager"],  # ... and eager, when it was
])
def test_resume_continues_exactly_as_an_uninterrupted_run(tmp_path, capsys, monkeypatch,  # type: ignore[no-untyped-def]
                                                          settings) -> None:
    common = ["train", "--dataset", "iris", "--hidden", "4", "--seed", "3", "--epochs", "4", "--no-progress"]
    assert run([*common, *settings, "--out", str(tmp_path / "straight")], capsys)[0] == 0

    real_fit = nn.cli.fit

    def fit_interrupted_after_epoch_2(*args: Any, **kwargs: Any) -> Any:
        save = kwargs["on_epoch_end"]

        def save_then_interrupt(epoch: int, history: Any) -> None:
            save(epoch, history)
            if epoch == 2:
                raise KeyboardInterrupt

        return real_fit(*args, **{**kwargs, "on_epoch_end": save_then_interrupt})

    monkeypatch.setattr("nn.cli.fit", fit_interrupted_after_epoch_2)
    status, _, err = run([*common, *settings, "--out", str(tmp_path / "resumed")], capsys)
    assert status == 130 and "epoch 2 is saved" in err
    monkeypatch.setattr("nn.cli.fit", real_fit)
    status, out, _ = run(["train", "--resume", "--epochs", "4", "--out", str(tmp_path / "resumed"),
                          "--no-progress"], capsys)
    assert status == 0 and "resuming after epoch 2" in out
    straight = json.loads((tmp_path / "straight" / "model.json").read_text())
    resumed = json.loads((tmp_path / "resumed" / "model.json").read_text())
    assert resumed["state"] == straight["state"]
    assert resumed["extra"]["optimizer"] == straight["extra"]["optimizer"]
    history = {name: (tmp_path / name / "history.csv").read_text() for name in ("straight", "resumed")}
    assert history["resumed"] == history["straight"]


def test_train_is_compiled_by_default_says_so_first_and_eager_on_request(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    common = ["train", "--dataset", "iris", "--hidden", "4", "--epochs", "2", "--no-progress"]
    status, out, _ = run([*common, "--out", str(tmp_path / "a")], capsys)
    assert status == 0
    assert out.splitlines()[0].startswith("valuegrad: training compiled (traced once, trained by batched")
    status, out, _ = run([*common, "--eager", "--out", str(tmp_path / "b")], capsys)
    assert status == 0
    assert out.splitlines()[0].startswith("valuegrad: training eager (the step-by-step engine, --eager)")
    saved = [json.loads((tmp_path / d / "model.json").read_text())["extra"]["args"]["compile"] for d in "ab"]
    assert saved == [True, False]  # --resume goes on the same way


def test_train_falls_back_to_eager_with_a_reason(tmp_path, capsys, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    common = ["train", "--dataset", "iris", "--hidden", "4", "--epochs", "2", "--no-progress"]

    def untraceable(self: Any, n_features: int) -> None:
        raise nn.cli.TracingError("float() was called on a traced Value\n(more detail)")

    monkeypatch.setattr(nn.cli.CompiledSteps, "trace", untraceable)
    status, out, _ = run([*common, "--out", str(tmp_path / "a")], capsys)
    assert status == 0
    assert out.splitlines()[0].startswith("valuegrad: training eager, because the model or loss cannot be "
                                          "traced: float() was called on a traced Value; iris:")
    status, _, err = run([*common, "--compile", "--out", str(tmp_path / "b")], capsys)
    assert status == 2 and err.count("\n") == 1 and "--compile: the model or loss cannot be traced" in err
    monkeypatch.undo()
    monkeypatch.setitem(sys.modules, "numpy", None)  # as if numpy were not installed
    status, out, _ = run([*common, "--out", str(tmp_path / "c")], capsys)
    assert status == 0
    assert out.splitlines()[0].startswith("valuegrad: training eager, because numpy is not installed "
                                          "(pip install 'valuegrad[fast]' to train compiled)")


@pytest.mark.parametrize(("args", "message"), [
    (["train"], "say what to train on: --dataset NAME or --csv PATH"),
    (["train", "--dataset", "iris", "--csv", "x.csv"], "not allowed with argument"),
    (["train", "--dataset", "mnist"], "invalid choice: 'mnist'"),
    (["train", "--dataset", "iris", "--hidden", "16,x"], "expected layer widths"),
    (["train", "--dataset", "iris", "--lr", "-1"], "expected a number > 0"),
    (["train", "--csv", "nope.csv"], "--csv needs --target"),
    (["train", "--csv", "nope.csv", "--target", "y"], "no CSV file at nope.csv"),
    (["train", "--dataset", "iris", "--loss", "hinge"], "hinge loss is for two classes"),
    (["train", "--dataset", "moons", "--samples", "1"], "n_samples must be a whole number >= 2"),
    (["train", "--dataset", "moons", "--noise", "-1"], "noise must be a finite number >= 0"),
    (["train", "--dataset", "iris", "--noise", "0.2"], "--samples and --noise go with --dataset moons"),
    (["train", "--dataset", "iris", "--momentum", "0.9"], "--momentum goes with --optimizer sgd"),
    (["train", "--dataset", "iris", "--test-size", "0.01"], "leaves 150 training and 0 test samples"),
    (["train", "--dataset", "iris", "--test-size", "1"], "--test-size must be between 0 and 1"),
    (["train", "--dataset", "iris", "--hidden", "16,,16"], "expected layer widths like 16,16, got '16,,16'"),
    (["train", "--dataset", "iris", "--out", "/proc/valuegrad"], "cannot write to --out /proc/valuegrad"),
    (["train", "--resume", "--lr", "0.5"], "with its own settings; drop --lr"),
    (["train", "--resume", "--out", "/nonexistent/dir"], "cannot resume from /nonexistent/dir/model.json"),
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


def test_one_class_csv_is_rejected(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "one.csv"
    path.write_text("a,b,label\n1,2,x\n3,4,x\n")
    status, _, err = run(["train", "--csv", str(path), "--target", "label"], capsys)
    assert status == 2 and "has 1 class; a classifier needs at least two" in err


def test_a_diverging_run_stops_with_a_message_and_keeps_finite_numbers(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    # Adam moves each weight by about lr per step: with lr = 1e300 the logits overflow to inf
    # in the second step, and the loss becomes nan.
    status, _, err = run(["train", "--dataset", "iris", "--optimizer", "adam", "--lr", "1e300",
                          "--epochs", "5", "--out", str(tmp_path), "--no-progress"], capsys)
    assert status == 1
    assert "training diverged" in err and len(err.strip().splitlines()) == 1
    if (tmp_path / "model.json").exists():  # whatever was saved is standard JSON
        json.loads((tmp_path / "model.json").read_text(), parse_constant=pytest.fail)


def test_interrupted_before_the_first_epoch_says_nothing_was_saved(tmp_path, capsys, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    def interrupted(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr("nn.cli.fit", interrupted)
    status, _, err = run(["train", "--dataset", "iris", "--out", str(tmp_path), "--no-progress"], capsys)
    assert status == 130 and "no epoch had finished, so nothing was saved" in err


def test_files_get_the_usual_permissions(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    import os

    old = os.umask(0o022)
    try:
        assert run(["train", "--dataset", "iris", "--epochs", "1", "--out", str(tmp_path), "--no-progress"],
                   capsys)[0] == 0
    finally:
        os.umask(old)
    for path in tmp_path.iterdir():
        assert path.stat().st_mode & 0o777 == 0o644, path.name  # 0o666 less the umask 0o022


@pytest.mark.parametrize("damage", [
    lambda doc: doc.pop("config"),
    lambda doc: doc["config"].update(foo=1),
    lambda doc: doc["state"].update({"layers.0.neurons.0.b": "1.0"}),
    lambda doc: doc["extra"].pop("optimizer"),
    lambda doc: doc["extra"].update(epoch="x"),
    lambda doc: doc["extra"]["args"].update(batch_size=0),
    lambda doc: doc["extra"]["args"].update(dataset="mnist"),
    lambda doc: doc["extra"]["optimizer"].update(m=5),
])
def test_a_damaged_checkpoint_gets_one_line_and_status_2(tmp_path, capsys, damage) -> None:  # type: ignore[no-untyped-def]
    assert run(["train", "--dataset", "iris", "--hidden", "2", "--epochs", "1", "--out", str(tmp_path),
                "--no-progress"], capsys)[0] == 0
    path = tmp_path / "model.json"
    document = json.loads(path.read_text())
    damage(document)
    path.write_text(json.dumps(document))
    status, _, err = run(["train", "--resume", "--epochs", "2", "--out", str(tmp_path), "--no-progress"],
                         capsys)
    assert status == 2 and len(err.strip().splitlines()) == 1 and "Traceback" not in err, err


def test_eager_and_compiled_epochs_show_progress_within_the_epoch(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Each epoch of more than one batch gets a bar of its steps (``nn.progress.progress_bar``,
    which shows it when someone watches), counting every step; none with ``progress=False``."""
    shown: list[tuple[str, int]] = []

    def recording_bar(iterable: Any, enabled: bool = True, **options: Any) -> Any:
        if enabled and options.get("unit") == "step":
            shown.append((options["desc"], sum(1 for _ in iterable)))
        return iterable

    monkeypatch.setattr("nn.train.progress_bar", recording_bar)
    data = make_moons(50, 0.1, seed=0)
    for compile in (False, True):
        model = MLP(2, [4, 1], rng=0)
        fit(model, data.X, data.y, loss="hinge", optimizer=SGD(model.parameters(), lr=0.1), epochs=2,
            batch_size=16, progress=True, compile=compile)
        assert shown == [("epoch 1", 4), ("epoch 2", 4)]  # ceil(50 / 16) steps each
        shown.clear()
    fit(model, data.X, data.y, loss="hinge", optimizer=SGD(model.parameters(), lr=0.1), epochs=1,
        batch_size=16, progress=False)
    assert shown == []


@pytest.mark.parametrize("mode", ["--eager", "--compile"])
def test_a_diverging_run_names_the_op_through_anomaly_detection(tmp_path, capsys, mode: str) -> None:  # type: ignore[no-untyped-def]
    """SGD with lr 1e200 on iris: after one step the weights are near 1e199, and a product of
    two of them overflows to inf in the forward pass; eager and compiled stop at the same step
    and name the same op. No epoch had finished, so nothing is said to be kept."""
    status, _, err = run(["train", "--dataset", "iris", "--hidden", "8", "--optimizer", "sgd", "--lr",
                          "1e200", "--epochs", "2", "--no-progress", mode, "--out", str(tmp_path)], capsys)
    assert status == 1 and err.count("\n") == 1
    assert "the loss became nan in epoch 1, step 2: training diverged" in err
    assert "anomaly detection on that batch: mul at node %" in err
    assert "inf from finite operands)" in err  # (the sign depends on the batch's shuffling)
    assert err.rstrip().endswith("no epoch had finished, so nothing was saved")
    assert not (tmp_path / "model.json").exists()


def test_a_forward_overflow_with_finite_gradients_is_named_too(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    """moons, hinge loss, SGD lr 1e8: by epoch 5 a product of two weights near 1e155 overflows
    in the forward pass; the hinge's gradient stays finite, so backward finds no anomaly, and
    the run names the first op whose forward made inf from finite operands."""
    status, _, err = run(["train", "--dataset", "moons", "--optimizer", "sgd", "--lr", "1e8", "--epochs", "5",
                          "--no-progress", "--out", str(tmp_path)], capsys)
    assert status == 1 and "training diverged" in err
    assert "anomaly detection on that batch: mul at node %" in err and "inf in the forward pass" in err


def test_a_loss_beyond_709_trains_on_compiled_as_eager(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    """SGD with lr 5 on iris makes a wrong logit beat the right one by more than 709 (e^709
    overflows): compiled training's cross-entropy subtracts the largest gap, as eager's does,
    so both train all 30 epochs to the same weights (it overflowed to inf in epoch 3)."""
    common = ["train", "--dataset", "iris", "--optimizer", "sgd", "--lr", "5", "--epochs", "30",
              "--no-progress"]
    states = []
    for mode in ("--eager", "--compile"):
        status, _, err = run([*common, mode, "--out", str(tmp_path / mode)], capsys)
        assert status == 0, err
        states.append(json.loads((tmp_path / mode / "model.json").read_text())["state"])
    # the traced form at a gap of 800: -log softmax([0, 800])[0] = 800 + log1p(e^-800) = 800 (it was inf)
    z, t = [engine.Value(0.0), engine.Value(800.0)], [engine.Value(1.0), engine.Value(0.0)]
    assert nn.losses.sample_loss("cross_entropy", z, t).data == 800.0
    assert max(abs(states[0][k] - states[1][k]) for k in states[0]) < 1e-6 * max(map(abs, states[0].values()))


def test_a_model_too_big_to_read_back_is_refused_before_anything_is_made(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    """--hidden 1000,1000 on iris is (4+1)·1000 + (1000+1)·1000 + (1000+1)·3 = 1,009,003
    parameters, over the 1,000,000 a model file may hold; the run is refused at once, and its
    --out folder is not even made (nor by a run refused for another reason)."""
    out = tmp_path / "a" / "b"
    status, _, err = run(["train", "--dataset", "iris", "--hidden", "1000,1000", "--out", str(out)], capsys)
    assert status == 2 and "makes a model of 1,009,003 parameters" in err and err.count("\n") == 1
    status, _, _ = run(["train", "--csv", str(tmp_path / "none.csv"), "--target", "y", "--out", str(out)],
                       capsys)
    assert status == 2
    assert not (tmp_path / "a").exists()


def test_fit_refuses_to_train_inside_no_grad_in_either_mode() -> None:
    """Eager steps would record nothing (every node a leaf, every gradient 0) while compiled
    steps, which trace with recording on, would train: both refuse instead."""
    data = make_moons(20, 0.1, seed=0)
    for compile in (False, True):
        model = MLP(2, [4, 1], rng=0)
        before = [p.data for p in model.parameters()]
        with engine.no_grad(), pytest.raises(RuntimeError, match="inside no_grad"):
            fit(model, data.X, data.y, loss="hinge", optimizer=SGD(model.parameters(), lr=0.1), epochs=1,
                progress=False, compile=compile)
        assert [p.data for p in model.parameters()] == before


def test_resume_names_the_mode_flag_given_and_ctrl_c_before_training_is_one_line(tmp_path, capsys,  # type: ignore[no-untyped-def]
                                                                              monkeypatch) -> None:
    status, _, err = run(["train", "--resume", "--eager", "--out", str(tmp_path)], capsys)
    assert status == 2 and "drop --compile/--eager" in err

    def interrupted(*args: Any, **kwargs: Any) -> Any:
        raise KeyboardInterrupt

    monkeypatch.setattr("nn.cli.load_dataset", interrupted)
    status, _, err = run(["train", "--dataset", "iris", "--out", str(tmp_path / "x")], capsys)
    assert status == 130 and err.strip() == "valuegrad: interrupted" and "Traceback" not in err


def test_resume_refuses_changed_data_and_warns_of_a_lost_history(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    """The checkpoint keeps a SHA-256 of the samples and labels: a CSV whose labels were swapped
    after the run started (same rows, same count) is refused; a deleted history.csv is said."""
    data = tmp_path / "data.csv"
    points = [(i * 0.1 - 1, 1 - i * 0.07) for i in range(40)]
    rows = [f"{x},{y},{'yes' if x + y > 0 else 'no'}" for x, y in points]
    data.write_text("x,y,label\n" + "\n".join(rows) + "\n", encoding="utf-8")
    out = tmp_path / "run"
    common = ["train", "--csv", str(data), "--target", "label", "--hidden", "4", "--no-progress"]
    assert run([*common, "--epochs", "2", "--out", str(out)], capsys)[0] == 0
    (out / "history.csv").unlink()
    status, _, err = run(["train", "--resume", "--epochs", "3", "--out", str(out), "--no-progress"], capsys)
    assert status == 0 and "has 0 of the 2 epochs done" in err
    swapped = data.read_text(encoding="utf-8").replace("yes", "tmp").replace("no", "yes").replace("tmp", "no")
    data.write_text(swapped, encoding="utf-8")
    before = (out / "model.json").read_bytes()
    status, _, err = run(["train", "--resume", "--epochs", "4", "--out", str(out), "--no-progress"], capsys)
    assert status == 2 and "the data differ from the data the run started on" in err
    assert (out / "model.json").read_bytes() == before


def test_valuegrad_train_traces_its_program_once(tmp_path, capsys, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Choosing the mode, training and the final evaluation share one traced program (they
    traced it three times: half a second each for a 100k-parameter model)."""
    traced = []
    real_trace = nn.train.trace

    def counting_trace(*args: Any, **kwargs: Any) -> Any:
        traced.append(1)
        return real_trace(*args, **kwargs)

    monkeypatch.setattr("nn.train.trace", counting_trace)
    status, out, _ = run(["train", "--dataset", "iris", "--hidden", "4", "--epochs", "2", "--no-progress",
                          "--out", str(tmp_path)], capsys)
    assert status == 0 and "training compiled" in out
    assert len(traced) == 1
