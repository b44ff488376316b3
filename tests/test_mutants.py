"""A short form of ``make mutants`` inside ``make test``: faults planted in six ops (a binary,
a unary, a domain-restricted, an n-ary, a kinked op and pow) must each be caught by the property
tests with gradcheck, shrunk to at most three ops, and blamed on the right culprit."""

from __future__ import annotations

import pytest

from tests.mutants import FAULTS, hunt


@pytest.mark.parametrize("fault", FAULTS)
@pytest.mark.parametrize("op", ["mul", "tanh", "log", "sum", "maximum", "pow"])
def test_the_mutant_is_caught_shrunk_and_blamed(op: str, fault: str) -> None:
    result = hunt(op, fault, max_examples=300)
    assert result.caught, f"{op} {fault}: no failing expression found"
    assert result.n_ops <= 3, f"{op} {fault}: shrunk only to {result.expression}"
    assert result.blamed == result.expected_culprit, f"{op} {fault}: blamed {result.blamed}"
