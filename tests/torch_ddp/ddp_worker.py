"""One process of the distributed-training test (tests/test_torch_ddp.py): trains the traced
program of an MLP, as a torch Module wrapped in DistributedDataParallel, on its half of each
batch, and (rank 0) saves the parameters it ends with."""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = str(Path(__file__).resolve().parents[2])
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)


def model_and_data():  # type: ignore[no-untyped-def]
    """The same traced model and batches in every process (fixed seeds)."""
    import torch

    import engine
    import nn

    model = nn.MLP(4, [6, 3], activation="tanh", rng=3)
    program = engine.trace(lambda x: model(x), [0.0] * 4, params=model)
    generator = torch.Generator().manual_seed(5)
    X = torch.randn(5, 8, 4, generator=generator, dtype=torch.float64)  # 5 batches of 8
    y = torch.randint(0, 3, (5, 8), generator=generator)
    return program.to_torch(), X, y


def train(module, X, y, rows):  # type: ignore[no-untyped-def]
    """Plain SGD on cross-entropy over ``rows`` of each batch."""
    import torch

    optimizer = torch.optim.SGD(module.parameters(), lr=0.5)
    for batch in range(X.shape[0]):
        optimizer.zero_grad()
        loss = torch.nn.functional.cross_entropy(module(X[batch, rows]), y[batch, rows])
        loss.backward()
        optimizer.step()


def run(rank: int, world: int, port: int, out: str) -> None:
    import torch
    import torch.distributed as dist

    os.environ["MASTER_ADDR"], os.environ["MASTER_PORT"] = "127.0.0.1", str(port)
    dist.init_process_group("gloo", rank=rank, world_size=world)
    try:
        module, X, y = model_and_data()
        ddp = torch.nn.parallel.DistributedDataParallel(module)
        half = X.shape[1] // world  # each process takes its half of each batch
        train(ddp, X, y, slice(rank * half, (rank + 1) * half))
        if rank == 0:
            torch.save([p.detach() for p in module.parameters()], out)
    finally:
        dist.destroy_process_group()
