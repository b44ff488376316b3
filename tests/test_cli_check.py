"""``valuegrad check``: the report for an expression, its exit status, and bad input."""

from __future__ import annotations

import math

import pytest

from nn.cli import main
from tests.mutants import planted


def run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    status = main(args)
    out, err = capsys.readouterr()
    return status, out, err


def test_check_prints_the_report(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = run(["check", "log(x) * sin(y)", "--set", "x=2", "y=1"], capsys)
    assert status == 0 and "result: OK: 2 derivatives agree" in out
    row = next(line for line in out.splitlines() if line.startswith("∂f/∂x"))
    assert f"{math.sin(1) / 2:.12g}" in row  # ∂/∂x log(x)·sin(y) = sin(y)/x = 0.420735492404


def test_second_order_and_the_exact_reference(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = run(["check", "x * y * y", "--set", "x=1.5", "y=2", "--order", "2",
                          "--reference", "exact"], capsys)
    assert status == 0 and "reference: mpmath, 50 digits" in out
    row = next(line for line in out.splitlines() if line.startswith("∂²f/∂x∂y"))
    assert row.split()[2] == "4"  # 2y


def test_a_planted_fault_fails_with_status_1_and_a_blame(capsys: pytest.CaptureFixture[str]) -> None:
    with planted("sin", "sign"):
        status, out, _ = run(["check", "log(x) * sin(y)", "--set", "x=2", "y=1"], capsys)
    assert status == 1 and "blame: sin at node" in out


@pytest.mark.parametrize(("args", "message"), [
    (["check", "log(foo)", "--set", "x=1"], "unknown name 'foo'"),
    (["check", "x.__class__", "--set", "x=1"], "attribute access"),
    (["check", "x + 1", "--set", "x"], "--set takes NAME=VALUE"),
    (["check", "x + 1", "--set", "x=one"], "'one' is not a number"),
    (["check", "2 + 3"], "no variable"),
])
def test_bad_input_is_status_2_without_a_traceback(args: list[str], message: str,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    status, _, err = run(args, capsys)
    assert status == 2 and message in err and "Traceback" not in err
