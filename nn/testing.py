"""Hypothesis strategies for small random MLPs, for property tests of training code.

Lives in ``nn`` (not in :mod:`engine.testing`, which has the expression strategies) because
``nn`` depends on ``engine`` and never the reverse. Needs ``hypothesis``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from hypothesis import strategies as st

from engine.testing import values
from nn.module import ACTIVATIONS, MLP


@st.composite
def mlps(draw: Callable[..., Any], max_inputs: int = 3, max_width: int = 4, max_layers: int = 2,
         activations: tuple[str, ...] = ("tanh", "sigmoid", "relu")) -> tuple[MLP, list[float]]:
    """``(model, x)``: an ``MLP`` with 1 to ``max_inputs`` inputs, 1 to ``max_layers`` layers of
    1 to ``max_width`` neurons, a hidden activation from ``activations``, seeded weights, and
    one input ``x`` with coordinates in [-2, 2].

    Raises:
        ValueError: an activation that is not one of ``nn.module.ACTIVATIONS``.
    """
    unknown = sorted(set(activations) - set(ACTIVATIONS))
    if unknown:
        raise ValueError(f"unknown activations {unknown}; choose from {', '.join(ACTIVATIONS)}")
    nin = draw(st.integers(1, max_inputs))
    widths = draw(st.lists(st.integers(1, max_width), min_size=1, max_size=max_layers))
    model = MLP(nin, widths, activation=draw(st.sampled_from(activations)), rng=draw(st.integers(0, 2**32)))
    x = draw(st.lists(values(-2.0, 2.0), min_size=nin, max_size=nin))
    return model, x
