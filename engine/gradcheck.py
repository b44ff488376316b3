"""Gradient checking: compare the engine's gradients with an independent reference and, when
they disagree, name the op (or the part of the backward pass) at fault.

    >>> from engine import gradcheck
    >>> report = gradcheck(lambda x, y: (x * y).tanh() + x.log(), [2.0, 0.5])
    >>> report.ok
    True

What is checked, in order:

1. **Each gradient** ∂f/∂xᵢ from ``backward()`` against a reference that uses no derivative
   rule of the engine: central differences of ``f`` itself (``reference="central"``), or the
   graph re-evaluated in 50-digit ``mpmath`` with each op's own high-precision definition and
   differentiated numerically at that precision (``reference="exact"``).
2. **The backward pass as a whole**: a random upstream gradient scales every gradient, a zero
   one gives zeros, and a second ``backward()`` doubles every leaf gradient exactly.
3. **Blame**, when something fails: every node's local derivatives are re-checked at its actual
   inputs, and each op is probed for using its upstream gradient and for adding (not
   assigning) into its parents. The report names the first culprit, or says that every
   local derivative is right and the fault is in the backward pass itself.

With ``order=2`` the second derivatives from ``backward(create_graph=True)`` are checked the
same way (the Hessian, entry by entry), after the first order.

The central differences follow the textbook recipe (Press et al., *Numerical Recipes*, 3rd
ed., §5.7): step ``h = ∛ε·max(1, |x|)`` for first derivatives (``⁴√ε·max(1, |x|)`` for second),
a second step ``2h`` whose disagreement estimates the truncation error, and Richardson
extrapolation of the two. The tolerance of each row is ``atol + rtol·|gradient| +`` that
truncation estimate ``+`` a rounding floor: machine epsilon times a magnitude scale of the
whole computation (the sum over nodes of ``|∂f/∂node · node|``) divided by the step. So a
tiny gradient is checked as strictly as its computation allows, never skipped as "too small".
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

from engine.blame import SEED_GRADIENT, at_kink, blame, mp_reference
from engine.grad_mode import no_grad
from engine.numeric import (
    EPS,
    Budget,
    Estimate,
    central_first,
    central_second,
    complex_is_nan,
    exact,
    mpmath_module,
)
from engine.ops import Op
from engine.report import Check, GradcheckReport, Row
from engine.value import Value, chain_rule_steps, hessian_of, topological_order

# --------------------------------------------------------------------------------------------
# The function under test, as something that can be evaluated at any point
# --------------------------------------------------------------------------------------------


class _Subject:
    """``f`` and its inputs: builds the graph, evaluates ``f`` on floats, replays in mpmath."""

    def __init__(self, f: Callable[..., Value] | Value, inputs: Sequence[Value | float]) -> None:
        if not inputs:
            raise ValueError("gradcheck needs at least one input")
        self.x = [float(v.data if isinstance(v, Value) else Value(v).data) for v in inputs]
        self.names = [v.label if isinstance(v, Value) and v.label else f"x{i}" for i, v in enumerate(inputs)]
        if isinstance(f, Value):  # a built graph: its leaves are the inputs
            if not all(isinstance(v, Value) and v.is_leaf for v in inputs):
                raise TypeError("with a built graph, inputs must be the graph's leaf Values")
            self.call: Callable[..., Value] | None = None
            self.graph_root = f
            self.graph_leaves: list[Value] = [v for v in inputs if isinstance(v, Value)]
            self.name = "the graph"
        elif callable(f):
            self.call = f
            self.name = getattr(f, "__name__", "f")
            self.graph_root, self.graph_leaves = self.build()
        else:
            raise TypeError(f"gradcheck needs a function of Values or a built graph, got {type(f).__name__}")

    def build(self, x: Sequence[float] | None = None) -> tuple[Value, list[Value]]:
        """A fresh graph at ``x`` (default: the inputs), with fresh leaves."""
        point = self.x if x is None else x
        if self.call is None:
            root, leaves = self.graph_root, self.graph_leaves
            for leaf, v in zip(leaves, point):
                leaf.data = v
            _refresh(root)
            for node in topological_order(root):
                node.grad = 0.0
            return root, leaves
        leaves = [Value(v, name) for v, name in zip(point, self.names)]
        root = self.call(*leaves)
        if not isinstance(root, Value):
            raise TypeError(f"f must return a Value, got {type(root).__name__}")
        return root, leaves

    def value(self, x: Sequence[float]) -> float:
        """``f(x)`` on floats."""
        if self.call is None:
            return _replay(self.graph_root, dict(zip(self.graph_leaves, x)),
                           lambda op, args: op.forward(*args))
        with no_grad():
            out = self.call(*[Value(v) for v in x])
        return out.data if isinstance(out, Value) else float(out)

    def mp_value(self, mp: Any, x: Sequence[Any]) -> Any:
        """``f(x)`` in mpmath, replaying the recorded graph with each op's ``reference``."""
        return _replay(self.graph_root, dict(zip(self.graph_leaves, x)),
                       lambda op, args: mp_reference(op)(mp, *args))


def _replay(root: Value, leaf_values: dict[Value, Any], apply: Callable[[Op, list[Any]], Any]) -> Any:
    values: dict[Value, Any] = {}
    for node in topological_order(root):
        if node.op is None:
            values[node] = leaf_values.get(node, node.data)
        else:
            values[node] = apply(node.op, [values[p] for p in node.parents])
    return values[root]


def _refresh(root: Value) -> None:
    """Recompute the data of every interior node from its parents (after leaves changed)."""
    for node in topological_order(root):
        if node.op is not None:
            node.data = node.op.forward(*[p.data for p in node.parents])


def _absolute_gradients(root: Value) -> dict[Value, float]:
    """For every node, the sum over all paths to ``root`` of |product of local derivatives|:
    the gradient the chain rule would give if no term could cancel another. It bounds how far
    rounding can move a gradient (each term carries a relative error of a few ε). Computed from
    the op table's local derivatives, apart from the engine's backward pass."""
    order = topological_order(root)
    absolute = {node: 0.0 for node in order}
    absolute[root] = 1.0
    for node, parents, local in chain_rule_steps(order):
        if absolute[node] == 0.0:
            continue
        for parent, d in zip(parents, local):
            term = absolute[node] * abs(float(d))
            if math.isfinite(term):
                absolute[parent] += term
    return absolute


def _roundings(root: Value) -> dict[Value, int]:
    """For every node, the most roundings any term of its gradient goes through in the backward
    pass: one product (upstream × local derivative) per edge of its path, and at each node on
    the way the additions that accumulate its gradient (k uses: k − 1 additions, the first
    lands on 0 exactly). A variable used 250 times has at least 249."""
    order = topological_order(root)
    worst = {node: 0 for node in order}  # roundings of the worst term arriving so far
    uses = {node: 0 for node in order}
    total: dict[Value, int] = {}
    for node in reversed(order):  # after every node that uses it: its gradient is complete
        total[node] = worst[node] + max(uses[node] - 1, 0)
        for parent in node.parents:
            uses[parent] += 1
            worst[parent] = max(worst[parent], total[node] + 1)
    return total


def _rounding_bound(roundings: int, absolute: float) -> float:
    """How far two computations of one gradient may differ by rounding alone. Each of its terms
    (a product of local derivatives along a path) is summed after at most m = ``roundings``
    roundings, so each computed gradient is Σ termⱼ·(1 + θⱼ) with |θⱼ| <= γ_m = m·u/(1 − m·u),
    u = ε/2, and is within γ_m·Σ|termⱼ| = γ_m·``absolute`` of the exact one (Higham, *Accuracy
    and Stability of Numerical Algorithms*, 2nd ed., §3.1 and §4.2: recursive summation of n
    terms errs by at most (n − 1)·u·Σ|terms|). Two computations: 2γ_m ≈ m·ε; 16ε more for the
    rounding of the products of local derivatives in ``absolute`` itself."""
    return (roundings + 16) * EPS * absolute + 1e-300


def _magnitude(root: Value, absolute: dict[Value, float]) -> float:
    """Σ over nodes of |∂root/∂node|·|node| (with the absolute gradients): how far rounding in
    the forward pass can move f."""
    total = abs(root.data)
    for node, a in absolute.items():
        term = a * abs(node.data)
        if math.isfinite(term):
            total += term
    return total


# --------------------------------------------------------------------------------------------
# gradcheck
# --------------------------------------------------------------------------------------------


def gradcheck(f: Callable[..., Value] | Value, inputs: Sequence[Value | float], *, eps: float | None = None,
              rtol: float = 1e-5, atol: float = 0.0, reference: str = "central", order: int = 1,
              name: str | None = None, max_digits: int = 2000, time_budget: float = 30.0) -> GradcheckReport:
    """Check the engine's derivatives of ``f`` at ``inputs`` against an independent reference.

    Args:
        f: a function taking one Value per input and returning a Value, or a built graph
            (its root Value; ``inputs`` are then its leaves).
        inputs: the point: numbers or leaf Values (whose labels name the rows).
        eps: the finite-difference step; default ``∛ε·max(1, |x|)`` per input (``⁴√ε·…``
            for second derivatives).
        rtol: relative tolerance (default 1e-5; the reference's own error estimate and a
            rounding floor are added, see the module docstring). atol: absolute tolerance.
        reference: ``"central"`` (central differences of ``f``) or ``"exact"`` (the graph
            re-evaluated in 50-digit mpmath from each op's own definition).
        order: 1 (gradients) or 2 (also second derivatives, from ``create_graph=True``).
        name: how the report names ``f`` (default: the function's name).
        max_digits, time_budget: ``reference="exact"`` only: the most decimal digits mpmath may
            work at (default 2000), and the seconds (default 30, wall clock) after which no
            higher precision is tried. A derivative whose reference has not converged within
            them is skipped with the note "reference could not converge ...".

    Returns:
        A :class:`GradcheckReport` (never a bare bool): ``.ok``, ``.raise_if_failed()``,
        ``str()``, and the rows, checks and blame.

    Raises:
        TypeError: ``f`` is not a function or a graph, or does not return a Value.
        ValueError: no inputs, an unknown ``reference`` or ``order``, ``rtol``/``atol``/``eps``
            that are not finite and >= 0, or ``max_digits``/``time_budget`` not > 0.
        ImportError: ``reference="exact"`` without mpmath installed.

    References: PyTorch's ``torch.autograd.gradcheck`` (per-input central differences, upstream
    gradient and determinism checks) and JAX's ``check_grads`` (orders); the step and
    extrapolation follow *Numerical Recipes* §5.7.
    """
    if reference not in ("central", "exact"):
        raise ValueError(f"reference must be 'central' or 'exact', got {reference!r}")
    if order not in (1, 2):
        raise ValueError(f"order must be 1 or 2, got {order!r}")
    for label, v in (("rtol", rtol), ("atol", atol), ("eps", 0.0 if eps is None else eps)):
        if not (isinstance(v, (int, float)) and math.isfinite(v) and v >= 0):
            raise ValueError(f"{label} must be a finite number >= 0, got {v!r}")
    if not (isinstance(max_digits, int) and max_digits > 0):
        raise ValueError(f"max_digits must be a whole number > 0, got {max_digits!r}")
    if not (isinstance(time_budget, (int, float)) and time_budget > 0):
        raise ValueError(f"time_budget must be a number of seconds > 0, got {time_budget!r}")
    budget = Budget(max_digits, float(time_budget))
    subject = _Subject(f, inputs)
    if subject.call is None:  # a built graph: leave its gradients as the caller had them
        saved = {node: node.grad for node in topological_order(subject.graph_root)}
        try:
            return _gradcheck(subject, eps, rtol, atol, reference, order, name, budget)
        finally:
            for node, grad in saved.items():
                node.grad = grad
    return _gradcheck(subject, eps, rtol, atol, reference, order, name, budget)


def _gradcheck(subject: _Subject, eps: float | None, rtol: float, atol: float, reference: str,
               order: int, name: str | None, budget: Budget) -> GradcheckReport:
    mp = mpmath_module() if reference == "exact" else None
    if mp is not None:  # every op needs its forward in mpmath (an op of yours may have none)
        for node in topological_order(subject.graph_root):
            if node.op is not None:
                mp_reference(node.op)
    if mp is not None:
        # 50 digits, and as many more as the smallest input is below 1: at x = 1e-120 the
        # changes of f that carry the derivative are 120 digits down. And as many more as the
        # largest value in the graph is above 1: mpmath steps x by |x|·10^-digits, and sin at
        # 1e60 needs that step far below its period, so more than 60 digits.
        tiny = min((abs(v) for v in subject.x if v != 0.0 and math.isfinite(v)), default=1.0)
        huge = max((abs(n.data) for n in topological_order(subject.graph_root) if math.isfinite(n.data)),
                   default=1.0)
        mp.mp.dps = (50 + min(400, max(0, -math.floor(math.log10(tiny))))
                     + max(0, math.floor(math.log10(max(huge, 1.0)))))
    report = GradcheckReport(name or subject.name, "central differences" if mp is None
                             else "mpmath, 50 digits", order)
    root, leaves = subject.build()
    root.backward()
    engine = [leaf.grad for leaf in leaves]
    absolute_by_node = _absolute_gradients(root)
    absolute = [absolute_by_node.get(leaf, 0.0) for leaf in leaves]  # bounds each gradient's rounding
    roundings_by_node = _roundings(root)
    bounds = [_rounding_bound(roundings_by_node.get(leaf, 0), a) for leaf, a in zip(leaves, absolute)]
    magnitude = _magnitude(root, absolute_by_node)

    for i, x in enumerate(subject.x):
        h = eps or EPS ** (1 / 3) * max(1.0, abs(x))
        if mp is None:
            def along(t: float, i: int = i) -> float:
                return subject.value(subject.x[:i] + [t] + subject.x[i + 1:])

            est = central_first(along, x, h, magnitude)
            floor = 16 * EPS * absolute[i]
        else:
            est = exact(mp, complex_is_nan(mp, lambda *p: subject.mp_value(mp, p)),
                         [mp.mpf(v) for v in subject.x], tuple(int(k == i) for k in range(len(subject.x))),
                         hint=engine[i], budget=budget)
            floor = 16 * EPS * absolute[i]
        report.rows.append(_row(subject.names[i], x, engine[i], est, rtol, atol, floor, 1))

    report.checks += _whole_pass_checks(subject, engine, bounds)
    if order == 2:
        kinked = {i for i, row in enumerate(report.rows) if row.status == "kink"}
        if any(at_kink(node, mp=mp, budget=budget) for node in topological_order(root)):
            # an op at its kink (relu(x)·relu(y) at 0): f has no second derivatives there
            kinked = set(range(len(subject.x)))
        report.rows += _second_order_rows(subject, mp, eps, rtol, atol, magnitude, kinked, budget)
        report.checks.append(_create_graph_check(subject, engine, bounds))
    if report.failed_orders or not all(c.ok for c in report.checks):  # (not for "nothing checked")
        report.blames = blame(root, mp, failed_orders=report.failed_orders, budget=budget)
    report.graph = root
    return report


def _row(name: str, x: float, engine: float, est: Estimate, rtol: float, atol: float, floor: float,
         order: int) -> Row:
    if not (est.finite and math.isfinite(engine)):
        return Row(name, x, engine, est.value, math.nan, math.nan, "skipped", order,
                   "not finite here" if est.finite else
                   est.note or "no reference: f is not finite at the steps tried")
    if est.kink:
        low, high = min(est.left, est.right), max(est.left, est.right)
        slack = atol + rtol * max(abs(low), abs(high)) + floor
        inside = low - slack <= engine <= high + slack
        note = (f"not differentiable here: one-sided derivatives {low:.6g} and {high:.6g}" if order == 1
                else "not twice differentiable here")
        return Row(name, x, engine, est.value, 0.0 if inside else min(abs(engine - low), abs(engine - high)),
                   slack, "kink" if inside else "FAIL", order, note)
    error = abs(engine - est.value)
    tolerance = atol + rtol * max(abs(engine), abs(est.value)) + est.truncation + floor
    return Row(name, x, engine, est.value, error, tolerance, "ok" if error <= tolerance else "FAIL", order)


def _whole_pass_checks(subject: _Subject, engine: list[float], bounds: list[float]) -> list[Check]:
    """Upstream gradient, zero upstream gradient, a second backward(). ``bounds``: per input,
    how far rounding alone can move its gradient between two runs (:func:`_rounding_bound`)."""
    if not all(math.isfinite(g) for g in engine):
        return [Check("whole-pass checks", True, "skipped: a gradient is not finite")]
    checks = []
    root, leaves = subject.build()
    root.backward(gradient=SEED_GRADIENT)
    scaled = [leaf.grad for leaf in leaves]
    # Scaling the seed changes the rounding of each term: within the bound, scaled by the seed.
    bad = [i for i, (g, s, b) in enumerate(zip(engine, scaled, bounds))
           if abs(s - SEED_GRADIENT * g) > SEED_GRADIENT * b]
    checks.append(Check("upstream gradient", not bad,
                        f"backward(gradient={SEED_GRADIENT:.4f}) scales every gradient" if not bad else
                        f"backward(gradient={SEED_GRADIENT:.4f}) gives {scaled[bad[0]]!r} for "
                        f"{subject.names[bad[0]]}, expected {SEED_GRADIENT * engine[bad[0]]!r}"))
    root, leaves = subject.build()
    root.backward(gradient=0.0)
    nonzero = [leaf.grad for leaf in leaves if leaf.grad != 0.0]
    checks.append(Check("zero upstream gradient", not nonzero,
                        "backward(gradient=0) leaves every gradient 0" if not nonzero else
                        f"backward(gradient=0) gives {nonzero[0]!r}"))
    root, leaves = subject.build()
    root.backward()
    first = [leaf.grad for leaf in leaves]
    root.backward()
    twice = [leaf.grad for leaf in leaves]
    same = first == engine
    doubled = all(t == 2 * g for t, g in zip(twice, first))
    checks.append(Check("repeatable and accumulating", same and doubled,
                        "a second backward() doubles every leaf gradient exactly" if same and doubled else
                        ("backward() is not repeatable: a second run gave other gradients" if not same else
                         "a second backward() does not double the leaf gradients")))
    return checks


def _create_graph_check(subject: _Subject, engine: list[float], bounds: list[float]) -> Check:
    """The gradients that ``backward(create_graph=True)`` records must be the plain ones."""
    root, leaves = subject.build()
    root.backward(create_graph=True)
    recorded = [leaf.grad.data if isinstance(leaf.grad, Value) else float(leaf.grad) for leaf in leaves]
    bad = [i for i, (r, g, b) in enumerate(zip(recorded, engine, bounds))
           if math.isfinite(g) and abs(r - g) > b]
    return Check("create_graph gradients", not bad,
                 "backward(create_graph=True) records the same gradients" if not bad else
                 f"backward(create_graph=True) gives {recorded[bad[0]]!r} for {subject.names[bad[0]]}, "
                 f"the plain backward {engine[bad[0]]!r}")


def _second_order_rows(subject: _Subject, mp: Any, eps: float | None, rtol: float, atol: float,
                       magnitude: float, kinked: set[int], budget: Budget) -> list[Row]:
    """Hessian rows; an entry along an input where f itself has a kink is a kink too."""
    n = len(subject.x)
    root, leaves = subject.build()
    hessian = hessian_of(root, leaves)
    rows = []
    x = subject.x
    for i in range(n):
        for j in range(i, n):
            if mp is None:
                hi = eps or EPS ** 0.25 * max(1.0, abs(x[i]))
                hj = eps or EPS ** 0.25 * max(1.0, abs(x[j]))

                def fn(a: float, b: float, i: int = i, j: int = j) -> float:
                    point = list(x)
                    point[i] = a
                    if j != i:
                        point[j] = b
                    return subject.value(point)

                floor = 16 * EPS * magnitude / (hi * hj)
                est = central_second(fn, x[i], x[j], hi, hj, i == j, floor)
            else:
                orders = tuple((k == i) + (k == j) for k in range(n))
                est = exact(mp, complex_is_nan(mp, lambda *p: subject.mp_value(mp, p)),
                             [mp.mpf(v) for v in x], orders, hint=hessian[i][j], budget=budget)
                floor = 256 * EPS * magnitude / max(abs(x[i]) * abs(x[j]), 1.0)
            name = subject.names[i] if i == j else f"{subject.names[i]}, {subject.names[j]}"
            if i == j:
                name = f"{name}²"
            if kinked & {i, j}:
                est = Estimate(est.value, est.truncation, kink=True, left=-math.inf, right=math.inf)
            rows.append(_row(name, x[i], hessian[i][j], est, max(rtol, 1e-4) if mp is None else rtol,
                             atol, floor, 2))
    return rows
