"""Why isn't it learning: ``nn.layer_statistics`` on hand-built layers, and
``valuegrad train --diagnose``."""

from __future__ import annotations

import csv
import importlib.util
import json
import math
from pathlib import Path
from statistics import pstdev

import pytest

from nn import MLP, SGD, Adam, Standardizer, fit, layer_statistics, load_iris, standardize, train_test_split
from nn.cli import main
from nn.diagnostics import layer_activations


def set_layer(model: MLP, k: int, weights: list[list[float]], biases: list[float]) -> None:
    for neuron, ws, b in zip(model.layers[k].neurons, weights, biases):
        for w, v in zip(neuron.w, ws):
            w.data = v
        neuron.b.data = b


def test_dead_relu_units_and_the_activation_mean_and_std_by_hand() -> None:
    model = MLP(2, [4, 1], activation="relu", rng=0)
    # unit 0: x0 (alive); unit 1: -x0 - x1 (<= 0 on these samples: dead); unit 2: -1 (dead);
    # unit 3: x1 + 0.5 (alive)
    set_layer(model, 0, [[1.0, 0.0], [-1.0, -1.0], [0.0, 0.0], [0.0, 1.0]], [0.0, 0.0, -1.0, 0.5])
    X = [[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]
    hidden, output = layer_statistics(model, X)
    assert hidden["layer"] == 1 and hidden["activation"] == "relu"
    assert hidden["dead_fraction"] == 0.5  # 2 of 4 units are 0 on every sample
    assert hidden["saturated_fraction"] is None
    # activations: [1, 0, 0, .5], [0, 0, 0, 1.5], [1, 0, 0, 1.5]: sum 5.5, sum of squares 6.75
    assert hidden["activation_mean"] == pytest.approx(5.5 / 12, rel=1e-15)
    assert hidden["activation_std"] == pytest.approx(math.sqrt(6.75 / 12 - (5.5 / 12) ** 2), rel=1e-14)
    assert output["layer"] == 2 and output["dead_fraction"] is None and output["saturated_fraction"] is None
    assert hidden["grad_norm"] is None and hidden["update_to_data"] is None  # no backward, no optimizer


def test_a_unit_alive_on_one_sample_only_is_not_dead() -> None:
    model = MLP(1, [2, 1], rng=0)
    set_layer(model, 0, [[1.0], [-1.0]], [0.0, 0.0])
    assert layer_statistics(model, [[1.0], [2.0]])[0]["dead_fraction"] == 0.5  # unit 1: -1, -2
    assert layer_statistics(model, [[1.0], [-2.0]])[0]["dead_fraction"] == 0.0  # each unit lives once


def test_saturated_tanh_and_sigmoid_pairs_by_hand() -> None:
    model = MLP(1, [4, 1], activation="tanh", rng=0)
    # on x = 1 and x = -1: tanh(±10) both saturated; tanh(3) = 0.99505 saturated, tanh(1) not;
    # tanh(±0.1) and tanh(0) not: 3 of the 8 (sample, unit) pairs
    set_layer(model, 0, [[10.0], [1.0], [0.1], [0.0]], [0.0, 2.0, 0.0, 0.0])
    hidden = layer_statistics(model, [[1.0], [-1.0]])[0]
    assert hidden["saturated_fraction"] == 3 / 8 and hidden["dead_fraction"] is None
    values = [math.tanh(10), math.tanh(3), math.tanh(0.1), 0.0,
              math.tanh(-10), math.tanh(1), math.tanh(-0.1), 0.0]
    assert hidden["activation_mean"] == pytest.approx(sum(values) / 8, rel=1e-12)
    assert hidden["activation_std"] == pytest.approx(pstdev(values), rel=1e-12)

    model = MLP(1, [2, 1], activation="sigmoid", rng=0)
    # sigmoid(5) = 0.9933 and sigmoid(-5) = 0.0067: both outside [0.01, 0.99];
    # sigmoid(4.5) = 0.989 on both samples (its weight is 0): inside
    set_layer(model, 0, [[5.0], [0.0]], [0.0, 4.5])
    assert layer_statistics(model, [[1.0], [-1.0]])[0]["saturated_fraction"] == 0.5


def two_layer_model() -> MLP:
    model = MLP(2, [2, 1], rng=0)
    set_layer(model, 0, [[1.0, 0.0], [0.0, -1.0]], [0.0, 0.0])
    set_layer(model, 1, [[3.0, 4.0]], [0.5])
    return model


def test_grad_norm_by_hand() -> None:
    model = two_layer_model()
    x = [1.0, 2.0]
    # hidden: z = (1, -2), a = (1, 0); y = 3·1 + 4·0 + 0.5. dy/d(output w) = a = (1, 0), dy/db = 1;
    # hidden unit 0: dy/dz0 = 3, so (3·x0, 3·x1, 3) = (3, 6, 3); unit 1 is off (relu' = 0)
    model(x)[0].backward()
    hidden, output = layer_statistics(model, [x])
    assert hidden["grad_norm"] == pytest.approx(math.sqrt(9 + 36 + 9), rel=1e-15)
    assert output["grad_norm"] == pytest.approx(math.sqrt(1 + 0 + 1), rel=1e-15)
    model.zero_grad()
    assert layer_statistics(model, [x])[0]["grad_norm"] is None  # no gradients to measure


def test_update_to_data_after_one_sgd_step_by_hand() -> None:
    model = two_layer_model()
    optimizer = SGD(model.parameters(), lr=0.1)
    assert layer_statistics(model, [[1.0, 2.0]], optimizer)[0]["update_to_data"] is None  # no step yet
    model([1.0, 2.0])[0].backward()
    optimizer.step()
    hidden, output = layer_statistics(model, [[1.0, 2.0]], optimizer)
    # the hidden weights (1, 0, 0, -1) get -0.1·(3, 6, 0, 0): now (0.7, -0.6, 0, -1)
    assert hidden["update_to_data"] == pytest.approx(pstdev([-0.3, -0.6, 0, 0]) / pstdev([0.7, -0.6, 0, -1]),
                                                     rel=1e-12)
    # the output weights (3, 4) get -0.1·(1, 0): now (2.9, 4); std(update) 0.05, std(data) 0.55
    assert output["update_to_data"] == pytest.approx(0.05 / 0.55, rel=1e-12)
    other = SGD(model.layers[1].parameters(), lr=0.1)  # steps only the output layer
    model([1.0, 2.0])[0].backward()
    other.step()
    hidden, output = layer_statistics(model, [[1.0, 2.0]], other)
    assert hidden["update_to_data"] is None and output["update_to_data"] is not None


def test_layer_activations_are_the_models_own_numbers() -> None:
    model = MLP(3, [5, 4, 2], activation="tanh", rng=3)
    X = [[0.3, -1.2, 2.0], [4.0, 0.5, -0.7]]
    activations = layer_activations(model, X)
    for i, x in enumerate(X):
        out: list = x
        for k, layer in enumerate(model.layers):
            out = layer(out)
            assert activations[k][i] == [v.data for v in out]  # bit for bit


def test_bad_input_is_refused_by_name() -> None:
    model = MLP(2, [3, 1], rng=0)
    with pytest.raises(ValueError, match="at least one sample"):
        layer_statistics(model, [])
    with pytest.raises(ValueError, match="sample 1 must be a list of 2 numbers"):
        layer_statistics(model, [[1.0, 2.0], [1.0]])
    with pytest.raises(TypeError, match="nn.MLP"):
        layer_statistics(model.layers[0], [[1.0, 2.0]])


@pytest.mark.parametrize("make", [lambda ps: SGD(ps, lr=0.1, momentum=0.9), lambda ps: Adam(ps, lr=0.01)])
def test_compiled_training_gives_the_update_to_data_of_eager_training(make) -> None:  # type: ignore[no-untyped-def]
    pytest.importorskip("numpy")
    data = load_iris()
    X, _, y, _ = train_test_split(data.X, data.y, 0.3, seed=0)
    X, _, _ = standardize(X, X)
    found = []
    for compile in (False, True):
        model = MLP(4, [8, 6, 3], rng=0)
        optimizer = make(model.parameters())
        fit(model, X, y, optimizer=optimizer, epochs=2, batch_size=16, progress=False, compile=compile)
        found.append(layer_statistics(model, X, optimizer))
    eager, compiled = found
    for a, b in zip(eager, compiled):
        assert a["update_to_data"] is not None and 1e-5 < a["update_to_data"] < 1
        assert b["update_to_data"] == pytest.approx(a["update_to_data"], rel=1e-9)
        assert b["grad_norm"] == pytest.approx(a["grad_norm"], rel=1e-9)


FIELDS = ["epoch", "layer", "dead_fraction", "saturated_fraction", "activation_mean", "activation_std",
          "grad_norm", "update_to_data"]


def read_csv(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    with path.open(newline="") as f:
        reader = csv.DictReader(f)
        return list(reader.fieldnames or []), list(reader)


def test_train_diagnose_writes_a_row_per_epoch_and_layer_and_the_plot(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "run"
    status = main(["train", "--dataset", "iris", "--epochs", "3", "--out", str(out), "--diagnose",
                   "--no-progress"])
    stdout, stderr = capsys.readouterr()
    assert status == 0, stderr
    header, rows = read_csv(out / "diagnostics.csv")
    assert header == FIELDS
    assert [(r["epoch"], r["layer"]) for r in rows] == [(str(e), str(k)) for e in (1, 2, 3) for k in (1, 2)]
    for r in rows:
        assert float(r["activation_std"]) >= 0
        assert float(r["grad_norm"]) > 0 and float(r["update_to_data"]) > 0
        assert r["saturated_fraction"] == ""  # relu and linear layers do not saturate
        assert (r["dead_fraction"] == "") == (r["layer"] == "2")  # the output layer is linear
    assert all(0 <= float(r["dead_fraction"]) <= 1 for r in rows if r["layer"] == "1")
    # the last epoch's rows are the statistics of the saved model on the standardized training set
    document = json.loads((out / "model.json").read_text())
    data = load_iris()
    X_train, _, _, _ = train_test_split(data.X, data.y, 0.3, seed=0)
    stats = document["extra"]["standardize"]
    X = Standardizer(stats["mean"], stats["std"]).transform(X_train)
    expected = layer_statistics(MLP.from_document(document), X)
    for r, s in zip(rows[-2:], expected):
        assert float(r["activation_mean"]) == pytest.approx(s["activation_mean"], rel=1e-12)
        assert float(r["activation_std"]) == pytest.approx(s["activation_std"], rel=1e-12)
        assert r["dead_fraction"] == ("" if s["dead_fraction"] is None else repr(s["dead_fraction"]))
    if importlib.util.find_spec("matplotlib") is None:
        assert "no plots" in stderr
    else:
        assert (out / "diagnostics.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert str(out / "diagnostics.png") in stdout


def test_dead_relus_are_warned_about_once_naming_the_layer_and_the_flag(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    # SGD at lr 2 on iris kills 10 of the second hidden layer's 16 ReLUs by epoch 4 (this seed)
    status = main(["train", "--dataset", "iris", "--hidden", "16,16", "--optimizer", "sgd", "--lr", "2",
                   "--epochs", "5", "--out", str(tmp_path), "--diagnose", "--no-progress"])
    _, stderr = capsys.readouterr()
    assert status == 0, stderr
    _, rows = read_csv(tmp_path / "diagnostics.csv")
    dead = {(r["epoch"], r["layer"]): float(r["dead_fraction"]) for r in rows if r["dead_fraction"]}
    assert dead[("4", "2")] > 0.5 and dead[("5", "2")] > 0.5  # dead after two epochs, warned once
    warnings = [line for line in stderr.splitlines() if "dead" in line]
    assert warnings == ["valuegrad: warning: layer 2: 62% of its ReLU units are dead (0 on every training "
                        "sample) after epoch 4; likely cause: a learning rate too high, or the bias "
                        "initialisation; try --lr 0.2 (or --activation tanh)"]


def test_without_diagnose_nothing_extra_is_written(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    status = main(["train", "--dataset", "iris", "--hidden", "16,16", "--optimizer", "sgd", "--lr", "2",
                   "--epochs", "5", "--out", str(tmp_path), "--no-progress"])
    _, stderr = capsys.readouterr()
    assert status == 0
    assert not list(tmp_path.glob("diagnostics*")) and "warning" not in stderr


def test_resume_continues_the_diagnostics_file(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    whole, part = tmp_path / "whole", tmp_path / "part"
    common = ["--dataset", "wine", "--no-progress", "--diagnose", "--eager"]
    assert main(["train", *common, "--epochs", "3", "--out", str(whole)]) == 0
    assert main(["train", *common, "--epochs", "1", "--out", str(part)]) == 0
    # a row of an epoch the checkpoint does not hold (as if stopped between the two writes) is dropped
    (part / "diagnostics.csv").write_text((part / "diagnostics.csv").read_text() + "2,1,,,9,9,9,9\n")
    resume = ["train", "--resume", "--out", str(part), "--diagnose", "--no-progress"]
    assert main([*resume, "--epochs", "3"]) == 0
    capsys.readouterr()
    assert read_csv(part / "diagnostics.csv") == read_csv(whole / "diagnostics.csv")
    (part / "diagnostics.csv").write_text("a,b\n1,2\n")
    assert main([*resume, "--epochs", "4"]) == 2
    assert "--diagnose:" in capsys.readouterr().err


def test_saturation_is_warned_about_in_the_first_epochs_only() -> None:
    """A layer saturated from the start (weights too large) is warned about; one that saturates
    late, as a healthy tanh network grows confident (24% by epoch 23 on iris at test accuracy
    1.0), is not."""
    from nn.diagnose_command import _warnings

    stats = {"layer": 2, "activation": "tanh", "dead_fraction": None, "saturated_fraction": 0.24,
             "update_to_data": None}
    early = _warnings(stats, epoch=2, lr=0.01, init="pytorch")
    assert [kind for kind, _ in early] == ["saturated"] and "24% of its tanh outputs" in early[0][1]
    assert _warnings(stats, epoch=23, lr=0.01, init="pytorch") == []
