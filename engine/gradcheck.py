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

import html
import math
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from engine.ops import OPS, Op
from engine.value import Value, hessian_of, no_grad, node_names, topological_order

EPS = sys.float_info.epsilon
_SEED_GRADIENT = 0.7390851332151607  # a "random" upstream gradient: no power of two, no pattern


@dataclass
class Row:
    """One checked derivative: an input's gradient (order 1) or a Hessian entry (order 2).

    Attributes:
        name: the input's label (``"x"``), or ``"x, y"`` for the second derivative ∂²f/∂x∂y.
        value: the input's value (for order 2, the first input's).
        engine: what the engine computed. reference: what the reference says.
        error: ``|engine − reference|``. tolerance: the largest error accepted here.
        status: ``"ok"``, ``"FAIL"``, ``"kink"`` (not differentiable here: the one-sided
            derivatives differ, and the engine's value lies between them), or ``"skipped"``
            (the function or the reference is not finite here).
        order: 1 or 2.
        note: why a row is a kink or skipped.
    """

    name: str
    value: float
    engine: float
    reference: float
    error: float
    tolerance: float
    status: str
    order: int = 1
    note: str = ""


@dataclass
class Check:
    """A property of the backward pass as a whole (``ok`` with a sentence saying what was seen)."""

    name: str
    ok: bool
    detail: str


@dataclass
class Blame:
    """Where a failure comes from.

    Attributes:
        message: the sentence for people.
        kind: ``"local derivative"`` (an op's rule is wrong at this node), ``"upstream"`` (the
            backward pass ignores or misuses the upstream gradient at this op),
            ``"second order"`` (an op's rule is wrong on the ``create_graph`` path),
            ``"accumulation"`` (the backward pass replaces instead of adding into a parent),
            or ``"backward pass"`` (every op is right; the walk itself is wrong).
        op: the op's name for the first three kinds, else None.
        node: ``%k`` (the node's position in topological order) or its label.
    """

    message: str
    kind: str
    op: str | None = None
    node: str | None = None

    @property
    def culprit(self) -> str:
        """The op to blame, or ``"backward pass"`` when no op is."""
        return self.op or "backward pass"


@dataclass
class GradcheckReport:
    """The result of :func:`gradcheck`: every row, every whole-pass check, and the blame.

    ``ok`` is True when no row failed and every check passed. ``str(report)`` is a readable
    table; in a notebook the report shows as an HTML table.
    """

    expression: str
    reference: str
    order: int
    rows: list[Row] = field(default_factory=list)
    checks: list[Check] = field(default_factory=list)
    blames: list[Blame] = field(default_factory=list)
    graph: Value | None = field(default=None, repr=False)  # the checked graph, for drawing()

    def drawing(self) -> Any:
        """The checked graph drawn (:func:`engine.draw.draw`), the blamed node outlined in red.

        Raises:
            ImportError: the graphviz package is not installed.
        """
        from engine.draw import draw

        if self.graph is None:
            raise ValueError("this report has no graph to draw")
        names = node_names(self.graph)
        blamed = {self.blames[0].node} if self.blames else set()
        return draw(self.graph, highlight=[n for n, name in names.items() if name in blamed],
                    title=f"gradcheck of {self.expression}")

    @property
    def ok(self) -> bool:
        """No row failed, every check passed, and at least one row was checked (a report whose
        every row was skipped has checked nothing and is not OK)."""
        checked = any(r.status in ("ok", "kink") for r in self.rows)
        return checked and all(r.status != "FAIL" for r in self.rows) and all(c.ok for c in self.checks)

    @property
    def failed_orders(self) -> list[int]:
        """The derivative orders that have a failing row (``[]``, ``[1]``, ``[2]`` or ``[1, 2]``)."""
        return sorted({r.order for r in self.rows if r.status == "FAIL"})

    def raise_if_failed(self) -> GradcheckReport:
        """Raise ``AssertionError`` carrying the whole report if anything failed; else return self."""
        if not self.ok:
            raise AssertionError("\n" + str(self))
        return self

    def summary(self) -> str:
        """One line: the verdict and the first blame."""
        if self.ok:
            counts = {status: sum(r.status == status for r in self.rows)
                      for status in ("ok", "kink", "skipped")}
            parts = [f"{counts['ok']} derivative{'s agree' if counts['ok'] != 1 else ' agrees'}"
                     if counts["ok"] or not counts["kink"] else "no derivative to compare"]
            if counts["kink"]:
                parts.append(f"{counts['kink']} at a kink (not differentiable here)")
            if counts["skipped"]:
                parts.append(f"{counts['skipped']} skipped (not finite)")
            return "OK: " + ", ".join(parts)
        failed = [r for r in self.rows if r.status == "FAIL"]
        if not failed and all(r.status == "skipped" for r in self.rows):
            return "NOTHING CHECKED: no reference could be computed for any derivative here"
        parts = []
        if failed:
            orders = " and ".join(("first", "second")[o - 1] for o in self.failed_orders)
            parts.append(f"{len(failed)} of {len(self.rows)} derivatives disagree ({orders} order)")
        parts += [f"check failed: {c.name}" for c in self.checks if not c.ok]
        blame = f"; blame: {self.blames[0].message}" if self.blames else ""
        return "FAILED: " + "; ".join(parts) + blame

    def __str__(self) -> str:
        lines = [f"gradcheck of {self.expression} (order {self.order}, reference: {self.reference})"]
        header = ("derivative", "value", "engine", "reference", "error", "tolerance", "")
        table = [header] + [
            (_row_name(r), _num(r.value),
             _num(r.engine), _num(r.reference), _num(r.error, 2), _num(r.tolerance, 2),
             r.status + (f" ({r.note})" if r.note else ""))
            for r in self.rows]
        widths = [max(len(row[k]) for row in table) for k in range(len(header))]
        lines += ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in table]
        for check in self.checks:
            lines.append(f"check {'ok  ' if check.ok else 'FAIL'} {check.name}: {check.detail}")
        for blame in self.blames:
            lines.append(f"blame: {blame.message}")
        lines.append("result: " + self.summary())
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        colour = {"ok": "#1a7f37", "FAIL": "#cf222e", "kink": "#9a6700", "skipped": "#57606a"}
        cells = "".join(f"<th>{h}</th>" for h in ("derivative", "value", "engine", "reference", "error",
                                                    "tolerance", "status"))
        rows = "".join(
            "<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in (
                _row_name(r), _num(r.value), _num(r.engine),
                _num(r.reference), _num(r.error, 2), _num(r.tolerance, 2)))
            + f"<td style='color:{colour[r.status]}'>{html.escape(r.status)}"
              f"{html.escape(' (' + r.note + ')' if r.note else '')}</td></tr>"
            for r in self.rows)
        extra = "".join(f"<li>{'✓' if c.ok else '✗'} {html.escape(c.name)}: {html.escape(c.detail)}</li>"
                        for c in self.checks)
        extra += "".join(f"<li><b>blame</b>: {html.escape(b.message)}</li>" for b in self.blames)
        verdict = f"<b style='color:{'#1a7f37' if self.ok else '#cf222e'}'>{html.escape(self.summary())}</b>"
        picture = ""
        if not self.ok and self.graph is not None:  # the graph with the blamed node, where drawing works
            try:
                from engine.draw import render

                svg = render(self.drawing().source, "svg").decode("utf-8")
                picture = svg[svg.find("<svg"):]
            except (ImportError, RuntimeError):
                picture = ""
        return (f"<div><p>gradcheck of <code>{html.escape(self.expression)}</code> (order {self.order}, "
                f"reference: {html.escape(self.reference)})</p><table><tr>{cells}</tr>{rows}</table>"
                f"<ul>{extra}</ul><p>{verdict}</p>{picture}</div>")


def _row_name(r: Row) -> str:
    return ("∂²f/∂" + r.name.replace(", ", "∂")) if r.order == 2 else f"∂f/∂{r.name}"


def _num(x: float, digits: int = 12) -> str:
    return f"{x:.{digits}g}" if isinstance(x, float) else str(x)


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


def mp_reference(op: Op) -> Callable[..., Any]:
    """The op's forward in mpmath, ``reference(mp, *operands)``.

    Raises:
        ValueError: the op has none (an op of yours defined without ``reference=``).
    """
    if op.reference is None:
        raise ValueError(f"reference='exact' needs every op's forward in mpmath, and op {op.name} has "
                         f"none: pass reference=lambda mp, ...: ... to engine.define_op, or use "
                         f"reference='central'")
    return op.reference


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
    for node in reversed(order):
        if node.op is None or absolute[node] == 0.0:
            continue
        local = node.op.derivative(*[p.data for p in node.parents], node.data)
        for parent, d in zip(node.parents, local):
            term = absolute[node] * abs(float(d))
            if math.isfinite(term):
                absolute[parent] += term
    return absolute


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
# Numerical references
# --------------------------------------------------------------------------------------------


@dataclass
class _Estimate:
    value: float  # the reference derivative
    truncation: float  # an estimate of its truncation error
    kink: bool = False  # one-sided derivatives disagree
    left: float = math.nan  # one-sided derivatives (for kinks)
    right: float = math.nan
    finite: bool = True
    rounding: float = 0.0  # the part of ``truncation`` that is rounding of the f values


def _central_first(fn: Callable[[float], float], x: float, h: float, scale: float = 0.0) -> _Estimate:
    """The derivative of ``fn`` at ``x`` by central differences at steps h and 2h, checked
    against steps 16 times finer: where ``fn`` varies faster than h can follow (the sine of a
    large argument), the two disagree, and finer steps are taken, down to h/16⁵. A domain edge
    within 2h (log near 0) shrinks the step too. A kink must show at two scales (an aliased
    oscillation can look like one at a single scale).

    ``scale`` bounds how far rounding inside ``fn`` can move its value (see :func:`_magnitude`):
    the differences carry ε·scale/h more error than the f values alone show."""
    coarse = _central_at(fn, x, h, scale)
    for _ in range(8):
        if coarse.finite or not math.isfinite(fn(x)):
            break
        h /= 16
        coarse = _central_at(fn, x, h, scale)
    return _refined(lambda k: coarse if k == 0 else _central_at(fn, x, h / 16**k, scale), 5)


def _refined(at: Callable[[int], _Estimate], levels: int) -> _Estimate:
    """The coarsest trustworthy estimate of ``at(0), at(1), …`` (each a finer step): one that
    the next finer step agrees with, or a kink that shows at two scales; failing that, the
    estimate with the smallest truncation error."""
    coarse = at(0)
    tried = [coarse]
    for k in range(1, levels + 1):
        if not coarse.finite:
            return coarse
        finer = at(k)
        if coarse.kink and (finer.kink or not finer.finite):
            return coarse
        if (not coarse.kink and finer.finite
                and abs(finer.value - coarse.value) <= 4 * coarse.truncation + 4 * finer.rounding):
            return coarse
        coarse = finer
        tried.append(finer)
    smooth = [e for e in tried if e.finite and not e.kink] or tried
    return min(smooth, key=lambda e: e.truncation)


def _central_at(fn: Callable[[float], float], x: float, h: float, scale: float = 0.0) -> _Estimate:
    if EPS * abs(x) > 0.01 * h:  # x ± h is not a step floats can take near x: no difference to form
        return _Estimate(math.nan, math.nan, finite=False)
    f0 = fn(x)
    fp, fm, fp2, fm2 = fn(x + h), fn(x - h), fn(x + 2 * h), fn(x - 2 * h)
    if not all(math.isfinite(v) for v in (f0, fp, fm, fp2, fm2)):
        return _Estimate(math.nan, math.nan, finite=False)
    d1 = (fp - fm) / (2 * h)
    d2 = (fp2 - fm2) / (4 * h)
    # x ± h is rounded to a float, which moves the point the difference is centred on by up to
    # ε·(|x| + h): that costs |f''| times as much.
    curvature = abs(fp - 2 * f0 + fm) / (h * h)
    moved = curvature * 2 * EPS * (abs(x) + h)
    # Each f value carries at least half an ulp of rounding, which the difference divides by h.
    largest = max(abs(f0), abs(fp), abs(fm), abs(fp2), abs(fm2)) + 4 * scale
    rounding = 2 * EPS * largest / h
    right, left = (fp - f0) / h, (f0 - fm) / h
    right2, left2 = (fp2 - f0) / (2 * h), (f0 - fm2) / (2 * h)
    jump, jump2 = right - left, right2 - left2
    # Smooth: the one-sided slopes differ by about f''·h, so doubling h doubles the jump.
    # A kink (relu at 0): the jump stays put as h shrinks. A step in f itself: the change of f
    # over h stays put, so the slopes grow like 1/h.
    slope = max(abs(right), abs(left), abs(d1), 1e-300)
    kink = abs(jump) > 1e-6 * slope and abs(jump2 - jump) < 0.25 * abs(jump)
    for step, step2, other in ((fp - f0, fp2 - f0, f0 - fm), (f0 - fm, f0 - fm2, fp - f0)):
        # a step in f: the change over h stays put as h grows, and is not negligible beside the
        # change on the other side (relu at 1e-9 has a tiny constant change on its left: a kink)
        if step != 0.0 and abs(step2 - step) < 0.25 * abs(step) and abs(step) > 0.1 * abs(other):
            kink, left, right = True, -math.inf, math.inf  # no derivative to bracket
    return _Estimate(d1 + (d1 - d2) / 3, abs(d1 - d2) + moved + rounding, kink, left, right,
                     rounding=rounding)


def _central_second(fn: Callable[[float, float], float], x: float, y: float, hx: float, hy: float,
                    same: bool, noise: float) -> _Estimate:
    """:func:`_second_at`, checked against steps 8 times finer as :func:`_central_first` does."""
    return _refined(lambda k: _second_at(fn, x, y, hx / 8**k, hy / 8**k, same, noise * 64**k), 4)


def _second_at(fn: Callable[[float, float], float], x: float, y: float, hx: float, hy: float,
               same: bool, noise: float) -> _Estimate:
    """∂²f/∂x∂y (or ∂²f/∂x² when ``same``) by second differences at steps h and 2h. Where the
    first derivative has a kink (relu at 0), the difference grows like 1/h as h shrinks: that
    is reported as a kink (not twice differentiable here), not as a number."""

    seen: list[float] = []

    def f(a: float, b: float) -> float:
        v = fn(a, b)
        seen.append(abs(v))
        return v

    def diff(k: float) -> float:
        if same:
            return (f(x + k * hx, y) - 2 * f(x, y) + f(x - k * hx, y)) / (k * hx) ** 2
        return (f(x + k * hx, y + k * hy) - f(x + k * hx, y - k * hy) - f(x - k * hx, y + k * hy)
                + f(x - k * hx, y - k * hy)) / (4 * k * k * hx * hy)

    d1, d2 = diff(1.0), diff(2.0)
    rounding = 8 * EPS * max(seen) / (hx * hy)  # the rounding of the f values themselves
    noise += rounding
    if not (math.isfinite(d1) and math.isfinite(d2)):
        return _Estimate(math.nan, math.nan, finite=False)
    if abs(d1 - d2) > 0.25 * abs(d1) and abs(d1 - d2) > 10 * noise:
        return _Estimate(d1, abs(d1 - d2), kink=True, left=-math.inf, right=math.inf)
    if same:  # a jump in f'' (x·relu(x) at 0): the one-sided second differences disagree
        f0, h = fn(x, y), hx
        right = (fn(x + 2 * h, y) - 2 * fn(x + h, y) + f0) / (h * h)
        left = (f0 - 2 * fn(x - h, y) + fn(x - 2 * h, y)) / (h * h)
        if abs(right - left) > 0.25 * max(abs(right), abs(left)) and abs(right - left) > 10 * noise:
            return _Estimate(d1, abs(d1 - d2), kink=True, left=left, right=right)
    return _Estimate(d1 + (d1 - d2) / 3, abs(d1 - d2) + noise, rounding=rounding)


def _mpmath() -> Any:
    try:
        import mpmath
    except ImportError:
        raise ImportError("reference='exact' needs mpmath: pip install mpmath "
                          "(it comes with valuegrad's test extra)") from None
    return mpmath


def _exact(mp: Any, fn: Callable[..., Any], point: list[Any], orders: tuple[int, ...],
           hint: float | None = None) -> _Estimate:
    """A partial derivative of ``fn`` at ``point`` in mpmath (50 digits); one-sided checks for
    first derivatives, so a kink is reported rather than averaged.

    Each variable is differentiated along ``x + s·u`` with ``u = |x|`` (1 at 0), so the
    steps mpmath takes are relative to the point: a derivative at x = 1e-270 is resolved.
    The same derivative at 30 more digits bounds the error."""
    scale = [abs(v) if v != 0 and k else mp.mpf(1) for v, k in zip(point, orders)]

    def scaled(*s: Any) -> Any:
        return fn(*[v + si * u for v, si, u in zip(point, s, scale)])

    zero = [mp.mpf(0)] * len(point)
    factor = mp.fprod(u**k for u, k in zip(scale, orders))
    try:
        # Double the digits until two results agree: where f's change is far below its size
        # (x² at x = 1e-200), the first precision may resolve nothing and say 0.
        previous, dps = None, mp.mp.dps
        while True:
            with mp.workdps(dps):
                d = mp.diff(scaled, zero, orders) / factor
            if isinstance(d, mp.mpc) or not mp.isfinite(d):
                return _Estimate(math.nan, math.nan, finite=False)
            converged = previous is not None and abs(d - previous) <= mp.mpf(10) ** -25 * (abs(d) + 1)
            # (the + 1: a derivative that is 0 converges to noise around 0). But a 0 that the
            # engine (``hint``) says is not 0 may be a change below these digits (tanh'(300) is
            # e^-600): keep doubling then.
            if converged and not (d == 0 and hint and math.isfinite(hint)):
                break
            if dps > 1600:
                return _Estimate(math.nan, math.nan, finite=False)
            previous, dps = d, 2 * dps
        error = abs(d - previous)
        if sum(orders) == 1:
            i = orders.index(1)

            def along(t: Any) -> Any:
                return scaled(*(zero[:i] + [t] + zero[i + 1:]))

            right = mp.diff(along, 0, 1, direction=1) / factor
            left = mp.diff(along, 0, 1, direction=-1) / factor
            if abs(right - left) > mp.mpf(10) ** -20 * (1 + abs(d)) + 4 * error:
                return _Estimate(float(d), float(error), True, float(left), float(right))
        return _Estimate(float(d), float(4 * error))
    except (ZeroDivisionError, ValueError, TypeError, OverflowError):
        return _Estimate(math.nan, math.nan, finite=False)


def _complex_is_nan(mp: Any, fn: Callable[..., Any]) -> Callable[..., Any]:
    def wrapped(*args: Any) -> Any:
        v = fn(*args)
        if isinstance(v, mp.mpc):
            raise ValueError("complex")  # outside the real domain, as the engine's nan
        return v

    return wrapped


# --------------------------------------------------------------------------------------------
# gradcheck
# --------------------------------------------------------------------------------------------


def gradcheck(f: Callable[..., Value] | Value, inputs: Sequence[Value | float], *, eps: float | None = None,
              rtol: float = 1e-5, atol: float = 0.0, reference: str = "central", order: int = 1,
              name: str | None = None) -> GradcheckReport:
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

    Returns:
        A :class:`GradcheckReport` (never a bare bool): ``.ok``, ``.raise_if_failed()``,
        ``str()``, and the rows, checks and blame.

    Raises:
        TypeError: ``f`` is not a function or a graph, or does not return a Value.
        ValueError: no inputs, an unknown ``reference`` or ``order``, or ``rtol``/``atol``/``eps``
            that are not finite and >= 0.
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
    subject = _Subject(f, inputs)
    if subject.call is None:  # a built graph: leave its gradients as the caller had them
        saved = {node: node.grad for node in topological_order(subject.graph_root)}
        try:
            return _gradcheck(subject, eps, rtol, atol, reference, order, name)
        finally:
            for node, grad in saved.items():
                node.grad = grad
    return _gradcheck(subject, eps, rtol, atol, reference, order, name)


def _gradcheck(subject: _Subject, eps: float | None, rtol: float, atol: float, reference: str,
               order: int, name: str | None) -> GradcheckReport:
    mp = _mpmath() if reference == "exact" else None
    if mp is not None:
        # 50 digits, and as many more as the smallest input is below 1: at x = 1e-120 the
        # changes of f that carry the derivative are 120 digits down.
        tiny = min((abs(v) for v in subject.x if v != 0.0 and math.isfinite(v)), default=1.0)
        mp.mp.dps = 50 + min(400, max(0, -math.floor(math.log10(tiny))))
    report = GradcheckReport(name or subject.name, "central differences" if mp is None
                             else "mpmath, 50 digits", order)
    root, leaves = subject.build()
    root.backward()
    engine = [leaf.grad for leaf in leaves]
    absolute_by_node = _absolute_gradients(root)
    absolute = [absolute_by_node.get(leaf, 0.0) for leaf in leaves]  # bounds each gradient's rounding
    magnitude = _magnitude(root, absolute_by_node)

    for i, x in enumerate(subject.x):
        h = eps or EPS ** (1 / 3) * max(1.0, abs(x))
        if mp is None:
            def along(t: float, i: int = i) -> float:
                return subject.value(subject.x[:i] + [t] + subject.x[i + 1:])

            est = _central_first(along, x, h, magnitude)
            floor = 16 * EPS * absolute[i]
        else:
            est = _exact(mp, _complex_is_nan(mp, lambda *p: subject.mp_value(mp, p)),
                         [mp.mpf(v) for v in subject.x], tuple(int(k == i) for k in range(len(subject.x))),
                         hint=engine[i])
            floor = 16 * EPS * absolute[i]
        report.rows.append(_row(subject.names[i], x, engine[i], est, rtol, atol, floor, 1))

    report.checks += _whole_pass_checks(subject, engine, absolute)
    if order == 2:
        kinked = {i for i, row in enumerate(report.rows) if row.status == "kink"}
        if any(at_kink(node) for node in topological_order(root)):
            # an op at its kink (relu(x)·relu(y) at 0): f has no second derivatives there
            kinked = set(range(len(subject.x)))
        report.rows += _second_order_rows(subject, mp, eps, rtol, atol, magnitude, kinked)
        report.checks.append(_create_graph_check(subject, engine, absolute))
    if report.failed_orders or not all(c.ok for c in report.checks):  # (not for "nothing checked")
        report.blames = _blame(subject, root, mp, failed_orders=report.failed_orders)
    report.graph = root
    return report


def _row(name: str, x: float, engine: float, est: _Estimate, rtol: float, atol: float, floor: float,
         order: int) -> Row:
    if not (est.finite and math.isfinite(engine)):
        return Row(name, x, engine, est.value, math.nan, math.nan, "skipped", order,
                   "not finite here" if est.finite else "no reference: f is not finite at the steps tried")
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


def _whole_pass_checks(subject: _Subject, engine: list[float], absolute: list[float]) -> list[Check]:
    if not all(math.isfinite(g) for g in engine):
        return [Check("whole-pass checks", True, "skipped: a gradient is not finite")]
    checks = []
    root, leaves = subject.build()
    root.backward(gradient=_SEED_GRADIENT)
    scaled = [leaf.grad for leaf in leaves]
    # Scaling the seed changes the rounding of each term, by a few ε of the absolute gradient.
    bad = [i for i, (g, s, a) in enumerate(zip(engine, scaled, absolute))
           if abs(s - _SEED_GRADIENT * g) > 16 * EPS * _SEED_GRADIENT * a + 1e-300]
    checks.append(Check("upstream gradient", not bad,
                        f"backward(gradient={_SEED_GRADIENT:.4f}) scales every gradient" if not bad else
                        f"backward(gradient={_SEED_GRADIENT:.4f}) gives {scaled[bad[0]]!r} for "
                        f"{subject.names[bad[0]]}, expected {_SEED_GRADIENT * engine[bad[0]]!r}"))
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


def _create_graph_check(subject: _Subject, engine: list[float], absolute: list[float]) -> Check:
    """The gradients that ``backward(create_graph=True)`` records must be the plain ones."""
    root, leaves = subject.build()
    root.backward(create_graph=True)
    recorded = [leaf.grad.data if isinstance(leaf.grad, Value) else float(leaf.grad) for leaf in leaves]
    bad = [i for i, (r, g, a) in enumerate(zip(recorded, engine, absolute))
           if math.isfinite(g) and abs(r - g) > 16 * EPS * a + 1e-300]
    return Check("create_graph gradients", not bad,
                 "backward(create_graph=True) records the same gradients" if not bad else
                 f"backward(create_graph=True) gives {recorded[bad[0]]!r} for {subject.names[bad[0]]}, "
                 f"the plain backward {engine[bad[0]]!r}")


def _second_order_rows(subject: _Subject, mp: Any, eps: float | None, rtol: float, atol: float,
                       magnitude: float, kinked: set[int]) -> list[Row]:
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
                est = _central_second(fn, x[i], x[j], hi, hj, i == j, floor)
            else:
                orders = tuple((k == i) + (k == j) for k in range(n))
                est = _exact(mp, _complex_is_nan(mp, lambda *p: subject.mp_value(mp, p)),
                             [mp.mpf(v) for v in x], orders, hint=hessian[i][j])
                floor = 256 * EPS * magnitude / max(abs(x[i]) * abs(x[j]), 1.0)
            name = subject.names[i] if i == j else f"{subject.names[i]}, {subject.names[j]}"
            if i == j:
                name = f"{name}²"
            if kinked & {i, j}:
                est = _Estimate(est.value, est.truncation, kink=True, left=-math.inf, right=math.inf)
            rows.append(_row(name, x[i], hessian[i][j], est, max(rtol, 1e-4) if mp is None else rtol,
                             atol, floor, 2))
    return rows


# --------------------------------------------------------------------------------------------
# Blame
# --------------------------------------------------------------------------------------------


def at_kink(node: Value, distance: float = 1e-6) -> bool:
    """True when ``node``'s op is not differentiable within ``distance`` (relative) of its
    operands: relu or abs at 0, maximum or minimum at a tie. Found numerically from the op's
    forward function (one-sided differences), so it holds for any op of the table."""
    op = node.op
    if op is None:
        return False
    args = [p.data for p in node.parents]
    for k, a in enumerate(args):
        def along(t: float, k: int = k) -> float:
            return op.forward(*(args[:k] + [t] + args[k + 1:]))

        if _central_at(along, a, distance * max(1.0, abs(a))).kink:
            return True
    return False


def _local_reference(op: Op, args: list[float], k: int, mp: Any) -> _Estimate:
    """∂op/∂operand_k at ``args``, from the op's forward (or mpmath reference) alone."""

    def along(t: float) -> float:
        return op.forward(*(args[:k] + [t] + args[k + 1:]))

    if mp is None:
        return _central_first(along, args[k], EPS ** (1 / 3) * max(1.0, abs(args[k])))
    return _exact(mp, _complex_is_nan(mp, lambda *p: mp_reference(op)(mp, *p)), [mp.mpf(a) for a in args],
                  tuple(int(i == k) for i in range(len(args))))


def _local_ok(engine: float, est: _Estimate) -> bool:
    if not est.finite or not math.isfinite(engine):
        return True  # nothing to say here
    if est.kink:
        return min(est.left, est.right) - 1e-6 <= engine <= max(est.left, est.right) + 1e-6
    return abs(engine - est.value) <= 1e-6 * abs(est.value) + 4 * est.truncation + 1e-300


def _blame(subject: _Subject, root: Value, mp: Any, failed_orders: list[int]) -> list[Blame]:
    """The first culprit: an op's local derivative at some node (checked for every node first,
    since the probes below run through other ops), then each op's use of the upstream
    gradient and accumulation into parents, then second-order rules; else the backward pass."""
    names = node_names(root)
    interior = [node for node in topological_order(root) if node.op is not None]
    locals_at: dict[Value, list[float]] = {}
    for node in interior:
        op = node.op
        assert op is not None
        args = [p.data for p in node.parents]
        local = [float(d.data if isinstance(d, Value) else d) for d in op.derivative(*args, node.data)]
        locals_at[node] = local
        for k, d in enumerate(local):
            est = _local_reference(op, args, k, mp)
            if not _local_ok(d, est):
                where = f"input {_args(args)}" + (f", operand {k + 1}" if len(args) > 1 else "")
                return [Blame(f"{op.name} at node {names[node]}, {where}: engine {d:.6g}, "
                              f"expected {est.value:.6g}", "local derivative", op.name, names[node])]
    for node in interior:  # the create_graph path must compute the same local derivatives
        op = node.op
        assert op is not None
        leaves = [Value(p.data) for p in node.parents]
        recorded = [d.data if isinstance(d, Value) else float(d)
                    for d in op.derivative(*leaves, op(*leaves))]
        for k, (r, d) in enumerate(zip(recorded, locals_at[node])):
            if math.isfinite(d) and abs(r - d) > 16 * EPS * abs(d) + 1e-300:
                return [Blame(f"{op.name} at node {names[node]}, input {_args([v.data for v in leaves])}: "
                              f"on the create_graph path its local derivative (operand {k + 1}) is {r:.6g}, "
                              f"on floats {d:.6g}", "second order", op.name, names[node])]
    probed: set[str] = set()
    for node in interior:
        op = node.op
        assert op is not None
        if op.name in probed:
            continue
        probed.add(op.name)
        problem = _probe_backward(op, [p.data for p in node.parents], locals_at[node])
        if problem:
            kind, text = problem
            return [Blame(f"{op.name} at node {names[node]}: {text}", kind,
                          op.name if kind == "upstream" else None, names[node])]
    if 2 in failed_orders:
        blame = _blame_second_order(root, names)
        if blame:
            return [blame]
    return [Blame("every op's local derivative is right at its inputs, but the total is wrong: the "
                  "fault is in the backward pass itself (how gradients are accumulated or the order "
                  "nodes are visited in), not in an op", "backward pass")]


def _args(args: list[float]) -> str:
    return ", ".join(f"{a:.6g}" for a in args)


def _probe_backward(op: Op, args: list[float], local: list[float]) -> tuple[str, str] | None:
    """Run the engine's backward pass through one node of ``op`` on fresh leaves: it must pass
    ``upstream × local`` to each parent, and add to (not replace) what a parent already has."""
    if not all(math.isfinite(v) for v in (*args, *local)):
        return None
    leaves = [Value(a) for a in args]
    out = op(*leaves)
    out.backward(gradient=_SEED_GRADIENT)
    for k, (leaf, d) in enumerate(zip(leaves, local)):
        want = _SEED_GRADIENT * d
        if abs(leaf.grad - want) > 1e-9 * abs(want) + 1e-300:
            return ("upstream", f"the backward pass does not use the upstream gradient here: with "
                    f"upstream {_SEED_GRADIENT:.4f}, operand {k + 1} got {leaf.grad:.6g}, "
                    f"expected {want:.6g}")
    leaves = [Value(a) for a in args]
    total = op(*leaves) + _sum_leaves(leaves)  # every leaf is used twice: gradients must add up
    total.backward()
    for k, (leaf, d) in enumerate(zip(leaves, local)):
        if abs(leaf.grad - (d + 1.0)) > 1e-9 * abs(d + 1.0) + 1e-300:
            return ("accumulation", f"the backward pass assigns instead of adding into a parent "
                    f"(operand {k + 1}): got {leaf.grad:.6g}, expected {d:.6g} + 1 = {d + 1.0:.6g}")
    return None


def _sum_leaves(leaves: list[Value]) -> Value:
    return OPS["sum"](*leaves) if len(leaves) > 1 else leaves[0] * 1.0


def _blame_second_order(root: Value, names: dict[Value, str]) -> Blame | None:
    """Check each op's local derivatives as functions (the create_graph path): their own
    derivatives, computed by the engine, against central differences of the float rule."""
    for node in topological_order(root):
        op = node.op
        if op is None:
            continue
        args = [p.data for p in node.parents]
        for k in range(len(args)):
            for j in range(len(args)):
                leaves = [Value(a) for a in args]
                d = op.derivative(*leaves, op(*leaves))[k]
                engine = 0.0
                if isinstance(d, Value):
                    d.backward()
                    engine = leaves[j].grad

                def along(t: float, k: int = k, j: int = j, op: Op = op, args: list[float] = args) -> float:
                    point = args[:j] + [t] + args[j + 1:]
                    return float(op.derivative(*point, op.forward(*point))[k])

                est = _central_first(along, args[j], EPS ** (1 / 3) * max(1.0, abs(args[j])))
                if not _local_ok(engine, est):
                    return Blame(f"{op.name} at node {names[node]}, input {_args(args)}: the derivative of "
                                 f"its local derivative ∂/∂operand {k + 1} with respect to operand {j + 1} "
                                 f"(the create_graph path) is {engine:.6g}, expected {est.value:.6g}",
                                 "second order", op.name, names[node])
    return None
