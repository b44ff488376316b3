"""valuegrad export: a trained model read back by torch.load and by ONNX Runtime gives the
model's own outputs (computed by valuegrad's engine, independently of the export)."""

from __future__ import annotations

from pathlib import Path

import pytest

torch = pytest.importorskip("torch", reason="PyTorch is not installed: export writes its formats")

import nn  # noqa: E402
from nn.cli import main  # noqa: E402

ROWS = [[5.1, 3.5, 1.4, 0.2], [-1.0, 0.0, 2.5, 0.3], [0.0, 0.0, 0.0, 0.0]]


@pytest.fixture()
def model_file(tmp_path: Path) -> tuple[Path, nn.MLP]:
    model = nn.MLP(4, [6, 3], activation="tanh", rng=2)
    path = tmp_path / "model.json"
    model.save(path)
    return path, model


def test_torch_export_loads_into_the_sequential_with_the_models_outputs(model_file, tmp_path) -> None:  # type: ignore[no-untyped-def]
    path, model = model_file
    assert main(["export", str(path), "--to", "torch", "-o", str(tmp_path / "m.pt")]) == 0
    seq = torch.load(tmp_path / "m.pt", weights_only=False)
    assert isinstance(seq, torch.nn.Sequential) and isinstance(seq[1], torch.nn.Tanh)
    theirs = seq(torch.tensor(ROWS, dtype=torch.float64)).tolist()
    for row, their_row in zip(ROWS, theirs):
        assert [o.data for o in model(row)] == pytest.approx(their_row, rel=1e-12, abs=1e-15)


def test_onnx_export_runs_in_onnx_runtime_with_the_models_outputs(model_file, tmp_path) -> None:  # type: ignore[no-untyped-def]
    pytest.importorskip("onnx", reason="onnx is not installed (the onnx extra)")
    ort = pytest.importorskip("onnxruntime", reason="ONNX Runtime is not installed (the onnx extra)")
    np = pytest.importorskip("numpy")
    path, model = model_file
    assert main(["export", str(path), "--to", "onnx", "-o", str(tmp_path / "m.onnx")]) == 0
    session = ort.InferenceSession(str(tmp_path / "m.onnx"))
    (theirs,) = session.run(None, {"x": np.array(ROWS, dtype=np.float64)})
    for row, their_row in zip(ROWS, theirs.tolist()):
        assert [o.data for o in model(row)] == pytest.approx(their_row, rel=1e-9, abs=1e-12)


def test_bad_export_input_is_one_line_and_status_2(model_file, tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    path, _ = model_file
    before = path.read_bytes()
    cases = [(["--to", "torch", "-o", str(path)], "must end in .pt or .pth"),
             (["--to", "onnx", "-o", str(tmp_path / "m.pt")], "must end in .onnx")]
    for args, says in cases:
        assert main(["export", str(path), *args]) == 2
        err = capsys.readouterr().err
        assert says in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert main(["export", str(tmp_path / "none.json"), "--to", "torch", "-o", str(tmp_path / "x.pt")]) == 2
    assert "cannot read" in capsys.readouterr().err
    (tmp_path / "folder.pt").mkdir()
    for where in (tmp_path / "folder.pt", path / "x.pt"):  # a folder in the way; a file as a folder
        assert main(["export", str(path), "--to", "torch", "-o", str(where)]) == 2
        err = capsys.readouterr().err
        assert "cannot write" in err and len(err.strip().splitlines()) == 1
    assert path.read_bytes() == before  # the model file is never written over
