"""Distributed training with PyTorch's own engine: a traced valuegrad model as a torch Module in
DistributedDataParallel, two processes (gloo, on the loopback address), each taking half of each
batch, ends with the parameters that one process training on the whole batches ends with: DDP
averages the two halves' gradients, and the mean of the halves' mean losses is the whole batch's."""

from __future__ import annotations

import socket
import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch", reason="PyTorch is not installed: distributed training is PyTorch's")
dist = pytest.importorskip("torch.distributed")
if not dist.is_available() or not dist.is_gloo_available():
    pytest.skip("this torch build has no gloo backend", allow_module_level=True)

sys.path.insert(0, str(Path(__file__).parent / "torch_ddp"))
import ddp_worker as worker  # noqa: E402


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_two_processes_each_on_half_of_each_batch_train_as_one_on_the_whole(tmp_path) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "rank0.pt"
    torch.multiprocessing.spawn(worker.run, args=(2, free_port(), str(out)), nprocs=2, join=True)
    distributed = torch.load(out)
    module, X, y = worker.model_and_data()
    before = [p.detach().clone() for p in module.parameters()]
    worker.train(module, X, y, slice(None))
    single = [p.detach() for p in module.parameters()]
    assert max(float((a - b).abs()) for a, b in zip(single, before)) > 1e-3  # it did train
    assert max(float((a - b).abs()) for a, b in zip(distributed, single)) <= 1e-10
