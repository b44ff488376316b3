"""The benchmark's workloads compute the same numbers in every engine it compares (``make bench``
times them; these tests check them, on small sizes): the mixed-op graphs and chains against
micrograd's own results and forward-mode derivatives on floats, the demo step against
micrograd's and PyTorch's, and its traced steps (replay, and batched replay by
``nn.train.CompiledSteps``) against the eager engine's.

A test that needs micrograd, numpy or torch skips, with the reason, when it is not installed
(``make bench`` installs them; ``make test`` installs numpy, and CI torch).
"""

from __future__ import annotations

import math

import pytest

from benchmarks.workload_demo import (
    demo_data,
    l2,
    micrograd_demo,
    model_weights,
    torch_demo,
    traced_demo,
    valuegrad_demo,
)
from benchmarks.workload_graphs import (
    ADD_MUL,
    MICRO,
    MIXED_OPS,
    OURS,
    Engine,
    bind_program,
    chain,
    make_op_program,
    run_program,
)

REL = 1e-9


def needs(module: str) -> None:
    reasons = {"micrograd": "micrograd is not installed: `pip install 'valuegrad[bench]'`",
               "numpy": "batched replay needs numpy", "torch": "PyTorch is not installed"}
    pytest.importorskip(module, reason=reasons[module])


def rel_diff(a: float, b: float) -> float:
    return abs(a - b) / max(1.0, abs(b))


@pytest.mark.parametrize("ops", [MIXED_OPS, ADD_MUL], ids=["mixed", "add_mul"])
@pytest.mark.parametrize("seed", [0, 1])
def test_op_program_agrees_with_micrograd(ops: tuple[str, ...], seed: int) -> None:
    needs("micrograd")
    program = make_op_program(2_000, ops, seed)
    results = {}
    for eng in (OURS, MICRO):
        leaves, lanes = bind_program(program, eng)
        root = run_program((leaves, lanes))
        root.backward()
        results[eng.name] = (root.data, [leaf.grad for leaf in leaves])
    (ours, ours_grads), (micro, micro_grads) = results[OURS.name], results[MICRO.name]
    assert rel_diff(ours, micro) <= REL
    assert max(rel_diff(g, h) for g, h in zip(ours_grads, micro_grads)) <= REL
    assert any(g != 0.0 for g in micro_grads)


def chain_by_forward_mode(depth: int, a: float = 0.5, b: float = 0.25) -> tuple[float, float, float]:
    """The end of :func:`chain` and its derivatives in ``a`` and ``b``, by dual numbers on floats."""
    x, dx_da, dx_db = 1.0, 0.0, 0.0
    for i in range(depth):
        if i % 2 == 0:
            x, dx_da, dx_db = x * a, dx_da * a + x, dx_db * a
        else:
            x = x + b
            dx_db += 1.0
    return x, dx_da, dx_db


@pytest.mark.parametrize("eng", [OURS, MICRO], ids=lambda eng: eng.name)
def test_chain_agrees_with_forward_mode(eng: Engine) -> None:
    if eng is MICRO:
        needs("micrograd")
    depth = 400  # within micrograd's recursion limit
    root, (a, b) = chain(eng, depth)
    root.backward()
    assert [root.data, a.grad, b.grad] == pytest.approx(chain_by_forward_mode(depth), rel=REL)


def test_deep_chain_backward_matches_forward_mode() -> None:
    depth = 100_000  # the benchmark runs a million; micrograd fails near a thousand
    root, (a, b) = chain(OURS, depth)
    root.backward()
    expected = chain_by_forward_mode(depth)
    assert math.isfinite(a.grad)
    assert [root.data, a.grad, b.grad] == pytest.approx(expected, rel=REL)


def test_demo_models_start_from_micrograds_weights() -> None:
    needs("micrograd")
    X, y = demo_data(0, points=10)
    _, micro_init = micrograd_demo(0, X, y)
    _, model = valuegrad_demo(0, X, y)
    assert [p.data for p in model.parameters()] == micro_init


def test_demo_eager_steps_match_micrograd() -> None:
    needs("micrograd")
    X, y = demo_data(0, points=20)
    micro_step, _ = micrograd_demo(0, X, y)
    ours_step, _ = valuegrad_demo(0, X, y)
    for k in range(3):
        (micro_loss, micro_acc), (ours_loss, ours_acc) = micro_step(k), ours_step(k)
        assert ours_loss == pytest.approx(micro_loss, rel=REL)
        assert ours_acc == micro_acc


@pytest.mark.parametrize("batched", [False, True], ids=["replay", "batched"])
def test_traced_demo_first_loss_matches_eager(batched: bool) -> None:
    if batched:
        needs("numpy")
    X, y = demo_data(0)
    eager_step, _ = valuegrad_demo(0, X, y)
    expected = eager_step(0)[0]
    assert traced_demo(0, X, y, batched).loss_step(0) == pytest.approx(expected, rel=REL)


@pytest.mark.parametrize("batched", [False, True], ids=["replay", "batched"])
def test_traced_demo_trains_as_eager(batched: bool) -> None:
    if batched:
        needs("numpy")
    X, y = demo_data(0, points=50)
    eager_step, eager_model = valuegrad_demo(0, X, y)
    traced = traced_demo(0, X, y, batched)
    for k in range(10):
        eager_loss, _ = eager_step(k)
        assert traced.loss_step(k) == pytest.approx(eager_loss, rel=REL), f"step {k}"
    eager_w = [p.data for p in eager_model.parameters()]
    traced_w = [p.data for p in traced.model.parameters()]
    assert max(rel_diff(a, b) for a, b in zip(traced_w, eager_w)) <= REL
    assert l2(traced.model.parameters()) == pytest.approx(l2(eager_model.parameters()), rel=REL)


def test_torch_demo_step_matches_eager() -> None:
    needs("torch")
    X, y = demo_data(0, points=50)
    eager_step, model = valuegrad_demo(0, X, y)
    torch_step = torch_demo(model_weights(model), X, y)
    for k in range(3):
        assert torch_step(k) == pytest.approx(eager_step(k)[0], rel=REL), f"step {k}"


@pytest.mark.parametrize("size", __import__("benchmarks.workload_scaling", fromlist=["SIZES"]).SIZES,
                         ids=lambda size: size.label)
def test_compiled_training_takes_the_eager_steps_at_every_scaling_size(size) -> None:  # type: ignore[no-untyped-def]
    """At each size of the scaling table: two Adam steps (weight decay on) of compiled training
    (the parameters in a numpy vector, stepped by ``Adam.step_vector``) and of eager training
    (Values) give the same parameters, gradients and moments to 1e-9."""
    pytest.importorskip("numpy")
    import nn
    from benchmarks.workload_scaling import scaling_data

    X, y = scaling_data(size, 0, samples=4)
    runs = []
    for compile in (False, True):
        model = nn.MLP(size.features, [size.hidden, 10], rng=1)
        optimizer = nn.Adam(model.parameters(), lr=0.01, weight_decay=1e-3)
        nn.train.fit(model, X, y, loss="cross_entropy", optimizer=optimizer, epochs=1, batch_size=2,
                     n_classes=10, progress=False, compile=compile)
        state = optimizer.state_dict()
        runs.append([[p.data for p in model.parameters()], [p.grad for p in model.parameters()],
                     state["m"], state["v"]])
    assert optimizer.steps == 2
    for eager, compiled in zip(*runs):
        assert len(eager) == len(compiled) == model.num_parameters()
        assert max(abs(a - b) for a, b in zip(eager, compiled)) < 1e-9
