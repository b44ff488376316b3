"""Testing autograd, with hypothesis (valuegrad's test extra; the engine itself does not need it).

- Strategies for property tests of valuegrad and of ops of your own: :func:`values`,
  :func:`expressions`, :func:`graphs` and :func:`points` (:mod:`engine.strategies`).
- :func:`check_engine`: property-based gradient checking of *your own* micrograd-style
  ``Value`` class, with the mistake shrunk to the smallest expression and blamed on the method
  that makes it (:mod:`engine.check_engine`).
"""

from engine.check_engine import EngineReport, Finding, check_engine
from engine.strategies import (
    CALL_NAMES,
    DOMAINS,
    INFIX,
    PREFIX,
    Expr,
    expressions,
    graphs,
    near_kink,
    points,
    values,
)

__all__ = ["CALL_NAMES", "DOMAINS", "INFIX", "PREFIX", "EngineReport", "Expr", "Finding", "check_engine",
           "expressions", "graphs", "near_kink", "points", "values"]
