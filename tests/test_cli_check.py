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


@pytest.mark.parametrize("args", [
    ["check", "-x*y", "--set", "x=1", "y=2"],
    ["check", "--set", "x=1", "y=2", "-x*y"],
    ["check", "--set", "x=1", "y=2", "--", "-x*y"],
    ["check", "--", "-x*y", "--set", "x=1", "y=2"],
    ["check", "--reference=exact", "-x*y", "--set", "x=1", "y=2"],
])
def test_an_expression_may_start_with_a_minus(args: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    status, out, err = run(args, capsys)
    assert status == 0 and err == "" and "gradcheck of -x*y (order 1" in out
    # ∂/∂x (−x·y) = −y = −2, ∂/∂y = −x = −1
    rows = [line.split()[:3] for line in out.splitlines() if line.startswith("∂f/∂")]
    assert rows == [["∂f/∂x", "1", "-2"], ["∂f/∂y", "2", "-1"]]


@pytest.mark.parametrize(("args", "message"), [
    (["check", "--bogus", "x"], "unrecognized arguments: --bogus"),
    (["check", "--"], "required: expression"),
    (["draw", "-o", "-x*y"], "argument -o/--output: expected one argument"),
])
def test_bad_usage_around_a_minus_is_one_line_and_status_2(args: list[str], message: str,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    status, out, err = run(args, capsys)
    assert status == 2 and out == "" and message in err and len(err.splitlines()) == 1


def test_draw_takes_an_expression_that_starts_with_a_minus(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    for args in (["-x*y", "--set", "x=1", "y=2", "-o"], ["--set", "x=1", "y=2", "-o"]):
        path = tmp_path / "minus.dot"
        extra = [] if args[0] == "-x*y" else ["--", "-x*y"]
        status, out, _ = run(["draw", *args, str(path), *extra], capsys)
        assert status == 0 and out == f"wrote {path}\n"
        source = path.read_text()
        assert "grad -2" in source or "grad -2.0" in source  # ∂(−x·y)/∂x = −y = −2
        path.unlink()
