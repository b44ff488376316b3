"""``valuegrad export MODEL.json --to torch|onnx -o PATH``: a trained model for PyTorch or ONNX.

``torch`` writes the model's ``torch.nn.Sequential`` (:func:`nn.to_torch`, float64) with
``torch.save``, which ``torch.load(PATH, weights_only=False)`` reads back. ``onnx`` goes through
``torch.onnx.export``, so the model opens in Netron or any ONNX runtime (its input ``x`` of shape
``(N, inputs)``, float64, its output ``y``). Inputs are what the model saw in training: when it
was trained on standardized data, standardize the same way (the statistics are in MODEL.json's
``extra.standardize``). Bad input gets one line on stderr and exit status 2; the output is
written atomically and never over the model file.

Reference: PyTorch documentation, ``torch.save`` and ``torch.onnx.export``.
"""

from __future__ import annotations

import argparse
import io
from pathlib import Path
from typing import Any

from engine.atomic import write_atomic
from nn.checks import check_outputs
from nn.module import MLP, read_model_document
from nn.torch_bridge import to_torch

SUFFIXES = {"torch": (".pt", ".pth"), "onnx": (".onnx",)}


def add_parser(commands: Any) -> None:
    export = commands.add_parser(
        "export", help="write a trained model for PyTorch (torch.load) or ONNX",
        description="Write MODEL.json's MLP as a torch.nn.Sequential (torch.save; --to torch) or as an "
                    "ONNX graph (torch.onnx.export; --to onnx). Needs torch (and onnx for --to onnx).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    export.add_argument("model", type=Path, metavar="MODEL.json", help="written by valuegrad train")
    export.add_argument("--to", choices=tuple(SUFFIXES), required=True, help="the format")
    export.add_argument("-o", "--output", type=Path, required=True, metavar="PATH",
                        help="where to write: .pt or .pth for torch, .onnx for onnx")


def run(args: argparse.Namespace) -> str:
    """Write the export; returns the line to print. Raises ``ValueError`` for bad input."""
    check_outputs([(f"-o for --to {args.to}", args.output, SUFFIXES[args.to])], [args.model])
    try:
        model = MLP.from_document(read_model_document(args.model))
    except OSError as error:
        raise ValueError(f"cannot read {args.model}: {error.strerror or error}") from None
    try:
        import torch
    except ImportError:
        raise ValueError("export needs torch: pip install 'valuegrad[torch]'") from None
    seq = to_torch(model)
    buffer = io.BytesIO()
    if args.to == "torch":
        torch.save(seq, buffer)
    else:
        try:
            import onnx  # noqa: F401  (torch.onnx.export needs it)
        except ImportError:
            raise ValueError("--to onnx needs onnx: pip install 'valuegrad[onnx]'") from None
        import warnings

        with warnings.catch_warnings():  # the TorchScript exporter is deprecated, not broken
            warnings.simplefilter("ignore")
            example = (torch.zeros(1, model.nin, dtype=torch.float64),)
            torch.onnx.export(seq, example, buffer, dynamo=False,  # type: ignore[arg-type, unused-ignore]
                              input_names=["x"], output_names=["y"],
                              dynamic_axes={"x": {0: "N"}, "y": {0: "N"}})
    try:
        path = write_atomic(args.output, buffer.getvalue())
    except OSError as error:  # a folder in the way, no permission, a missing parent
        raise ValueError(f"cannot write {args.output}: {error.strerror or error}") from None
    return f"wrote {path} ({model}, float64)"
