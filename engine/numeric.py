"""Numerical differentiation: central differences and a high-precision reference.

Nothing here knows about Values or the backward pass: each function takes a plain function
of floats (or of mpmath numbers) and a point, and estimates a derivative with an error bound.
:mod:`engine.gradcheck` compares the engine's gradients with these.

- :func:`central_first` and :func:`central_second`: central differences at steps ``h`` and
  ``2h``, Richardson extrapolation of the two, and their disagreement as the truncation error
  (Press et al., *Numerical Recipes*, 3rd ed., §5.7), refined to finer steps where the function
  varies faster than ``h`` can follow; a kink (one-sided derivatives that differ) is reported
  as one, not averaged.
- :func:`exact`: a derivative in ``mpmath`` at 50 digits and more (``mpmath.diff``), with
  one-sided checks for kinks, within a :class:`Budget` of digits and seconds.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

EPS = sys.float_info.epsilon

@dataclass
class Estimate:
    value: float  # the reference derivative
    truncation: float  # an estimate of its truncation error
    kink: bool = False  # one-sided derivatives disagree
    left: float = math.nan  # one-sided derivatives (for kinks)
    right: float = math.nan
    finite: bool = True
    rounding: float = 0.0  # the part of ``truncation`` that is rounding of the f values
    note: str = ""  # why there is no estimate (when not ``finite``), if not a non-finite f


@dataclass(frozen=True)
class Budget:
    """How far :func:`exact` may go before it gives up: at most ``max_digits`` decimal digits,
    and no new precision started after ``seconds`` from the budget's creation (a monotonic clock)."""

    max_digits: int = 2000
    seconds: float = 30.0
    start: float = 0.0  # time.monotonic() when the budget was made (0: now)

    def __post_init__(self) -> None:
        if not self.start:
            object.__setattr__(self, "start", time.monotonic())

    def spent(self) -> bool:
        return time.monotonic() - self.start >= self.seconds

    def give_up(self, why: str) -> Estimate:
        return Estimate(math.nan, math.nan, finite=False, note=f"reference could not converge {why}")


def central_first(fn: Callable[[float], float], x: float, h: float, scale: float = 0.0) -> Estimate:
    """The derivative of ``fn`` at ``x`` by central differences at steps h and 2h, checked
    against steps 16 times finer: where ``fn`` varies faster than h can follow (the sine of a
    large argument), the two disagree, and finer steps are taken, down to h/16⁵. A domain edge
    within 2h (log near 0) shrinks the step too. A kink must show at two scales (an aliased
    oscillation can look like one at a single scale).

    ``scale`` bounds how far rounding inside ``fn`` can move its value (see :func:`_magnitude`):
    the differences carry ε·scale/h more error than the f values alone show."""
    coarse = central_at(fn, x, h, scale)
    for _ in range(8):
        if coarse.finite or not math.isfinite(fn(x)):
            break
        h /= 16
        coarse = central_at(fn, x, h, scale)
    return refined(lambda k: coarse if k == 0 else central_at(fn, x, h / 16**k, scale), 5)


def refined(at: Callable[[int], Estimate], levels: int) -> Estimate:
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


def central_at(fn: Callable[[float], float], x: float, h: float, scale: float = 0.0) -> Estimate:
    if EPS * abs(x) > 0.01 * h:  # x ± h is not a step floats can take near x: no difference to form
        return Estimate(math.nan, math.nan, finite=False)
    f0 = fn(x)
    fp, fm, fp2, fm2 = fn(x + h), fn(x - h), fn(x + 2 * h), fn(x - 2 * h)
    if not all(math.isfinite(v) for v in (f0, fp, fm, fp2, fm2)):
        return Estimate(math.nan, math.nan, finite=False)
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
    return Estimate(d1 + (d1 - d2) / 3, abs(d1 - d2) + moved + rounding, kink, left, right,
                     rounding=rounding)


def central_second(fn: Callable[[float, float], float], x: float, y: float, hx: float, hy: float,
                    same: bool, noise: float) -> Estimate:
    """:func:`second_at`, checked against steps 8 times finer as :func:`central_first` does."""
    return refined(lambda k: second_at(fn, x, y, hx / 8**k, hy / 8**k, same, noise * 64**k), 4)


def second_at(fn: Callable[[float, float], float], x: float, y: float, hx: float, hy: float,
               same: bool, noise: float) -> Estimate:
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
        return Estimate(math.nan, math.nan, finite=False)
    if abs(d1 - d2) > 0.25 * abs(d1) and abs(d1 - d2) > 10 * noise:
        return Estimate(d1, abs(d1 - d2), kink=True, left=-math.inf, right=math.inf)
    if same:  # a jump in f'' (x·relu(x) at 0): the one-sided second differences disagree
        f0, h = fn(x, y), hx
        right = (fn(x + 2 * h, y) - 2 * fn(x + h, y) + f0) / (h * h)
        left = (f0 - 2 * fn(x - h, y) + fn(x - 2 * h, y)) / (h * h)
        if abs(right - left) > 0.25 * max(abs(right), abs(left)) and abs(right - left) > 10 * noise:
            return Estimate(d1, abs(d1 - d2), kink=True, left=left, right=right)
    return Estimate(d1 + (d1 - d2) / 3, abs(d1 - d2) + noise, rounding=rounding)


def mpmath_module() -> Any:
    try:
        import mpmath
    except ImportError:
        raise ImportError("reference='exact' needs mpmath: pip install mpmath "
                          "(it comes with valuegrad's test extra)") from None
    return mpmath


def exact(mp: Any, fn: Callable[..., Any], point: list[Any], orders: tuple[int, ...],
           hint: float | None = None, budget: Budget | None = None) -> Estimate:
    """A partial derivative of ``fn`` at ``point`` in mpmath (at ``mp.mp.dps`` digits and more);
    one-sided checks for first derivatives, so a kink is reported rather than averaged.

    Each variable is differentiated along ``x + s·u`` with ``u = |x|`` (1 at 0), so the
    steps mpmath takes are relative to the point: a derivative at x = 1e-270 is resolved.
    (The caller must give enough digits that such a step, ``|x|·10^-digits``, is small where f
    varies: sin at 1e60 needs more than 60.) The digits are doubled until two results agree;
    past ``budget.max_digits`` digits or ``budget.seconds`` the estimate is not finite and its
    ``note`` says "reference could not converge"."""
    budget = budget or Budget()
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
            if dps > budget.max_digits:
                return budget.give_up(f"within {budget.max_digits} digits")
            with mp.workdps(dps):
                d = mp.diff(scaled, zero, orders) / factor
            if isinstance(d, mp.mpc) or not mp.isfinite(d):
                return Estimate(math.nan, math.nan, finite=False)
            converged = previous is not None and abs(d - previous) <= mp.mpf(10) ** -25 * (abs(d) + 1)
            # (the + 1: a derivative that is 0 converges to noise around 0). But a 0 that the
            # engine (``hint``) says is not 0 may be a change below these digits (tanh'(300) is
            # e^-600): keep doubling then.
            if converged and not (d == 0 and hint and math.isfinite(hint)):
                break
            if budget.spent():
                return budget.give_up(f"within the time budget of {budget.seconds:g} s")
            previous, dps = d, 2 * dps
        error = abs(d - previous)
        if sum(orders) == 1:
            i = orders.index(1)

            def along(t: Any) -> Any:
                return scaled(*(zero[:i] + [t] + zero[i + 1:]))

            with mp.workdps(dps):  # at the digits that converged (fewer may resolve only noise)
                right = mp.diff(along, 0, 1, direction=1) / factor
                left = mp.diff(along, 0, 1, direction=-1) / factor
            if abs(right - left) > mp.mpf(10) ** -20 * (1 + abs(d)) + 4 * error:
                return Estimate(float(d), float(error), True, float(left), float(right))
        return Estimate(float(d), float(4 * error))
    except (ZeroDivisionError, ValueError, TypeError, OverflowError):
        return Estimate(math.nan, math.nan, finite=False)


def complex_is_nan(mp: Any, fn: Callable[..., Any]) -> Callable[..., Any]:
    def wrapped(*args: Any) -> Any:
        v = fn(*args)
        if isinstance(v, mp.mpc):
            raise ValueError("complex")  # outside the real domain, as the engine's nan
        return v

    return wrapped
