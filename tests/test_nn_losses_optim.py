"""Losses against direct formulas (by hand and with mpmath at 50 digits) and optimizer steps
against hand-computed updates."""

from __future__ import annotations

import math

import mpmath
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from engine import Value
from nn import (
    SGD,
    Adam,
    binary_cross_entropy_with_logits,
    cross_entropy,
    hinge_loss,
    log_softmax,
    mse_loss,
    softmax,
)

mpmath.mp.dps = 50
logit = st.floats(min_value=-30, max_value=30, allow_nan=False, allow_subnormal=False)


def test_mse_loss_value_and_gradient() -> None:
    a, b = Value(1.0), Value(3.0)
    loss = mse_loss([a, b], [0.0, 1.0])
    assert loss.data == 2.5  # ((1-0)^2 + (3-1)^2) / 2
    loss.backward()
    assert (a.grad, b.grad) == (1.0, 2.0)  # 2 (o - t) / n
    # Vector outputs average over every element: ((1-1)^2 + (3-0)^2) / 2 = 4.5
    assert mse_loss([[Value(1.0), Value(3.0)]], [[1.0, 0.0]]).data == 4.5


def test_hinge_loss_value_and_gradient() -> None:
    s1, s2, s3 = Value(0.5), Value(-2.0), Value(3.0)
    loss = hinge_loss([s1, [s2], s3], [1, 1, -1])
    # max(0, 1-0.5) = 0.5, max(0, 1+2) = 3, max(0, 1+3) = 4; mean 7.5 / 3 = 2.5
    assert loss.data == 2.5
    loss.backward()
    assert (s1.grad, s2.grad, s3.grad) == pytest.approx((-1 / 3, -1 / 3, 1 / 3), rel=1e-15)
    with pytest.raises(ValueError, match=r"-1 or \+1"):
        hinge_loss([s1], [0])


@given(z=logit, y=st.sampled_from([0.0, 1.0, 0.25]))
@example(z=0.0, y=1.0)
@example(z=30.0, y=0.0)
@settings(max_examples=100, deadline=None)
def test_bce_with_logits_matches_the_direct_formula(z: float, y: float) -> None:
    v = Value(z)
    loss = binary_cross_entropy_with_logits([v], [y])
    loss.backward()
    zm = mpmath.mpf(z)
    sig = 1 / (1 + mpmath.exp(-zm))
    expected = -(y * mpmath.log(sig) + (1 - y) * mpmath.log(1 - sig))
    assert loss.data == pytest.approx(float(expected), rel=1e-12, abs=1e-15)
    assert v.grad == pytest.approx(float(sig - y), rel=1e-12, abs=1e-15)  # dL/dz = sigma(z) - y


def test_bce_with_logits_is_finite_at_extreme_logits() -> None:
    loss = binary_cross_entropy_with_logits([Value(1000.0), Value(-1000.0)], [0.0, 0.0])
    assert loss.data == 500.0  # (1000 + 0) / 2: no overflow in exp


@given(z=st.lists(logit, min_size=2, max_size=5), data=st.data())
@example(z=[1.0, 2.0, 3.0], data=None)
@settings(max_examples=100, deadline=None)
def test_cross_entropy_matches_minus_log_softmax(z: list[float], data: st.DataObject | None) -> None:
    t = data.draw(st.integers(0, len(z) - 1)) if data is not None else 2
    logits = [Value(v) for v in z]
    loss = cross_entropy(logits, t)
    loss.backward()
    exps = [mpmath.exp(mpmath.mpf(v)) for v in z]
    total = mpmath.fsum(exps)
    assert loss.data == pytest.approx(float(-mpmath.log(exps[t] / total)), rel=1e-12, abs=1e-13)
    for k, v in enumerate(logits):  # dL/dz_k = softmax_k - [k == t]
        assert v.grad == pytest.approx(float(exps[k] / total - (k == t)), rel=1e-9, abs=1e-13)


def test_cross_entropy_batch_is_the_mean_and_stable() -> None:
    batch = [[Value(1000.0), Value(0.0)], [Value(0.0), Value(0.0)]]
    loss = cross_entropy(batch, [1, 0])
    # sample 1: logsumexp(1000, 0) - 0 = 1000 (+ log(1 + e^-1000) = 0); sample 2: log 2
    assert loss.data == pytest.approx((1000.0 + math.log(2.0)) / 2, rel=1e-15)
    with pytest.raises(ValueError, match="out of range"):
        cross_entropy([Value(1.0), Value(2.0)], 2)
    with pytest.raises(ValueError, match="2 outputs but 1 targets"):
        cross_entropy(batch, [0])


def test_softmax_and_log_softmax() -> None:
    p = softmax([Value(1.0), Value(2.0), Value(3.0)])
    # e^k / (e + e^2 + e^3)
    denominator = math.e + math.e**2 + math.e**3
    assert [v.data for v in p] == pytest.approx([math.e**k / denominator for k in (1, 2, 3)], rel=1e-14)
    logp = log_softmax([Value(1000.0), Value(0.0)])
    assert [v.data for v in logp] == pytest.approx([0.0, -1000.0], abs=1e-12)


def test_empty_batches_are_rejected() -> None:
    for loss in (lambda: mse_loss([], []), lambda: hinge_loss([], []), lambda: cross_entropy([], [])):
        with pytest.raises(ValueError, match="empty"):
            loss()


def with_grad(value: float, grad: float) -> Value:
    p = Value(value)
    p.grad = grad
    return p


def test_sgd_step_by_hand() -> None:
    p = with_grad(1.0, 0.5)
    SGD([p], lr=0.1).step()
    assert p.data == 0.95  # 1 - 0.1 * 0.5
    p = with_grad(1.0, 0.5)
    SGD([p], lr=0.1, weight_decay=0.1).step()
    assert p.data == pytest.approx(0.94, rel=1e-15)  # g = 0.5 + 0.1 * 1 = 0.6


def test_sgd_momentum_by_hand() -> None:
    p = with_grad(1.0, 0.5)
    opt = SGD([p], lr=0.1, momentum=0.9)
    opt.step()  # buffer = g = 0.5: p = 1 - 0.05 = 0.95
    assert p.data == pytest.approx(0.95, rel=1e-15)
    opt.step()  # buffer = 0.9 * 0.5 + 0.5 = 0.95: p = 0.95 - 0.095 = 0.855
    assert p.data == pytest.approx(0.855, rel=1e-15)


def test_adam_steps_by_hand() -> None:
    p = with_grad(1.0, 0.5)
    opt = Adam([p], lr=0.1)
    opt.step()
    # m = 0.05, v = 0.00025; bias-corrected m^ = 0.5, v^ = 0.25; step = 0.1 * 0.5 / (0.5 + 1e-8)
    assert p.data == pytest.approx(1.0 - 0.1 * 0.5 / (0.5 + 1e-8), rel=1e-15)
    opt.step()
    # m = 0.9*0.05 + 0.1*0.5 = 0.095, m^ = 0.095 / 0.19 = 0.5; v = 0.999*0.00025 + 0.001*0.25
    # = 0.00049975, v^ = 0.00049975 / 0.001999 = 0.25: the same step again.
    assert p.data == pytest.approx(1.0 - 2 * 0.1 * 0.5 / (0.5 + 1e-8), rel=1e-14)


def test_optimizer_state_round_trip() -> None:
    p = with_grad(1.0, 0.5)
    opt = Adam([p], lr=0.1)
    opt.step()
    q = Value(p.data)
    other = Adam([q], lr=0.1)
    other.load_state_dict(opt.state_dict())
    p.grad = q.grad = 0.25
    opt.step()
    other.step()
    assert q.data == p.data


@pytest.mark.parametrize("make", [
    lambda: SGD([], lr=0.1), lambda: SGD([Value(1.0)], lr=-1.0), lambda: SGD([Value(1.0)], lr=math.nan),
    lambda: SGD([Value(1.0)], lr=0.1, momentum=1.0), lambda: Adam([Value(1.0)], betas=(0.9, 1.0)),
    lambda: Adam([Value(1.0)], eps=-1.0),
    lambda: Adam([Value(1.0)], eps=0.0),  # a zero gradient would divide 0 by 0
    lambda: (lambda p: SGD([p, Value(2.0), p], lr=0.1))(Value(1.0)),  # p would be stepped twice
])
def test_bad_hyperparameters_are_rejected(make: object) -> None:
    with pytest.raises(ValueError):
        make()  # type: ignore[operator]


def test_tiny_losses_keep_full_precision() -> None:
    # When the true class dominates, the loss is tiny; log(1 + tiny) would round it away.
    expected = -mpmath.log(1 / (1 + mpmath.exp(-40)))  # BCE at z = 40, y = 1: 4.2483542552915889e-18
    loss = binary_cross_entropy_with_logits([Value(40.0)], [1.0])
    assert loss.data == pytest.approx(float(expected), rel=1e-14, abs=0.0)
    exps = [mpmath.exp(0), mpmath.exp(0), mpmath.exp(20)]
    expected = -mpmath.log(exps[2] / mpmath.fsum(exps))  # 2 e^-20 / (1 + 2 e^-20) ≈ 4.1223072e-09
    logits = [Value(0.0), Value(0.0), Value(20.0)]
    assert cross_entropy(logits, 2).data == pytest.approx(float(expected), rel=1e-14, abs=0.0)


def test_bce_at_an_infinite_logit_is_infinite_not_nan() -> None:
    assert binary_cross_entropy_with_logits([Value(math.inf)], [0.0]).data == math.inf  # as torch
    assert binary_cross_entropy_with_logits([Value(-math.inf)], [1.0]).data == math.inf


def test_numpy_class_indices_and_targets_are_accepted() -> None:
    np = pytest.importorskip("numpy", reason="numpy scalars are what this test feeds in")
    logits = [Value(1.0), Value(2.0)]
    # -log(e^2 / (e + e^2)) = log(1 + e^-1)
    assert cross_entropy([logits], [np.int64(1)]).data == pytest.approx(math.log1p(math.exp(-1)), rel=1e-15)
    assert cross_entropy(logits, np.int64(1)).data == pytest.approx(math.log1p(math.exp(-1)), rel=1e-15)
    assert mse_loss([Value(1.0)], [np.float32(3.0)]).data == 4.0  # (1 - 3)^2
    with pytest.raises(TypeError, match="class index must be an int, got bool"):
        cross_entropy([logits], [True])
    with pytest.raises(TypeError, match="list of Values"):
        cross_entropy([1.0, 2.0], 1)  # type: ignore[list-item]


def test_optimizer_state_restores_the_hyperparameters() -> None:
    p = with_grad(1.0, 0.5)
    source = Adam([p], lr=0.1, betas=(0.5, 0.6), eps=0.1, weight_decay=0.2)
    target = Adam([Value(1.0)])
    target.load_state_dict(source.state_dict())
    assert (target.lr, target.betas, target.eps, target.weight_decay) == (0.1, (0.5, 0.6), 0.1, 0.2)
    sgd = SGD([Value(1.0)], lr=1.0)
    sgd.load_state_dict(SGD([p], lr=0.3, momentum=0.5, weight_decay=0.1).state_dict())
    assert (sgd.lr, sgd.momentum, sgd.weight_decay) == (0.3, 0.5, 0.1)


@given(points=st.lists(st.tuples(*[st.floats(-10, 10, allow_subnormal=False)] * 3), min_size=1, max_size=6),
       which=st.sampled_from(["sgd", "momentum", "adam", "adam_wd"]))
@example(points=[(1.0, 0.0, 0.0)], which="adam")  # a zero gradient: m = v = 0, the step is 0
@settings(max_examples=50, deadline=None)
def test_one_update_rule_steps_values_and_numpy_vectors_bit_for_bit(points: list[tuple[float, float, float]],
                                                                    which: str) -> None:
    """The update is written once (``Optimizer.update``): two steps on Values (floats, math.sqrt)
    and on one numpy vector (np.sqrt) give the same bits, as IEEE-754's + - * / and sqrt are
    correctly rounded in both."""
    np = pytest.importorskip("numpy")

    def make(params: list[Value]) -> SGD | Adam:
        return {"sgd": lambda: SGD(params, lr=0.1, weight_decay=0.01),
                "momentum": lambda: SGD(params, lr=0.1, momentum=0.9),
                "adam": lambda: Adam(params, lr=0.01),
                "adam_wd": lambda: Adam(params, lr=0.01, betas=(0.8, 0.99), weight_decay=0.1)}[which]()

    values = [Value(p) for p, _, _ in points]
    eager = make(values)
    vector = make([Value(p) for p, _, _ in points])
    theta = np.array([p for p, _, _ in points])
    for k in (1, 2):  # two steps: the second reads the buffers the first wrote
        for v, point in zip(values, points):
            v.grad = point[k]
        eager.step()
        theta = vector.step_vector(theta, np.array([point[k] for point in points]))
    assert theta.tolist() == [v.data for v in values]
    assert vector.state_dict() == eager.state_dict()
