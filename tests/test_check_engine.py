"""check_engine and ``valuegrad check-engine`` judge learners' engines: a correct one passes,
and each planted bug is found, shrunk and blamed on the method that has it.

The expected blame is known by construction (tests/learner/engines.py plants each bug in one
method); the expected gradients in the findings are computed by hand (d(a + a)/da = 2).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from engine.testing import check_engine
from nn.cli import main

sys.path.insert(0, str(Path(__file__).parent / "learner"))
from engines import make  # noqa: E402

ENGINES = Path(__file__).parent / "learner" / "engines.py"


def test_a_correct_engine_passes_and_its_missing_methods_are_unsupported_not_wrong() -> None:
    report = check_engine(make())
    assert report.ok and report.examples >= 100
    assert {"__add__", "__mul__", "__rmul__", "__pow__", "__neg__", "tanh", "exp"} <= set(report.supported)
    assert {"relu", "log", "__rsub__"} <= set(report.unsupported)
    without = check_engine(make("no_rmul"))
    assert without.ok and "__rmul__" in without.unsupported


def test_micrograds_own_engine_passes() -> None:
    micrograd = pytest.importorskip("micrograd.engine")
    report = check_engine(micrograd.Value)
    assert report.ok and "relu" in report.supported


def test_the_lectures_assign_bug_is_shrunk_to_a_plus_a_and_blamed_on_add() -> None:
    report = check_engine(make("assign"))
    (finding,) = report.findings
    assert (finding.method, finding.kind, finding.expression) == ("__add__", "accumulate", "a + a")
    assert finding.expected == {"a": 2.0} and finding.actual == {"a": 1.0}
    assert "+=" in str(report)


@pytest.mark.parametrize(("bug", "method", "kind"), [
    ("upstream", "__mul__", "upstream"),
    ("tanh", "tanh", "local derivative"),
    ("order", "backward", "backward"),
    ("pow", "__pow__", "local derivative"),
    ("int_pow", "__pow__", "raised"),
])
def test_each_planted_bug_is_blamed_on_its_method(bug: str, method: str, kind: str) -> None:
    report = check_engine(make(bug))
    (finding,) = report.findings
    assert (finding.method, finding.kind) == (method, kind)
    assert finding.expression.count("(") <= 4  # shrunk: a small expression, not a random one


@pytest.mark.parametrize("seed", range(4))
def test_a_bug_that_shows_only_in_some_set_orders_is_reported_not_a_crash(seed: int) -> None:
    # build_topo without its visited set walks a node once per path to it: how often depends on
    # the order of the set _prev, which Python does not fix; the search must still report it
    report = check_engine(make("visit_twice"), seed=seed)
    (finding,) = report.findings
    assert finding.method == "backward" and finding.expected != finding.actual


def test_a_value_exponent_is_checked_where_the_class_takes_one() -> None:
    class Powered(make()):  # type: ignore[misc]
        def __pow__(self, other):  # type: ignore[no-untyped-def]
            other = other if isinstance(other, Powered) else Powered(other)
            out = Powered(self.data ** other.data, (self, other), "**")

            def _backward() -> None:
                self.grad += other.data * self.data ** (other.data - 1) * out.grad
                other.grad += out.data * self.data * out.grad  # should be out.data * log(self.data)

            out._backward = _backward
            return out

    report = check_engine(Powered)
    assert "__pow__" in report.supported
    (finding,) = report.findings
    assert finding.method == "__pow__" and finding.kind == "local derivative"


def test_a_wrong_forward_is_one_finding_on_the_method_that_has_it() -> None:
    report = check_engine(make("mul_forward"))
    (finding,) = report.findings  # not one more for each method built from __mul__ (-, /, neg)
    assert (finding.method, finding.kind, finding.expression) == ("__mul__", "forward", "a * b")
    assert finding.expected == {"value": 1.5 * 0.75} and finding.actual == {"value": 1.5 * 0.75 + 0.001}


def test_an_exception_in_the_learners_code_is_a_finding_with_its_expression() -> None:
    report = check_engine(make("raises"))
    (finding,) = report.findings
    assert finding.kind == "raised" and finding.expression == "exp(a)"
    assert "ZeroDivisionError" in finding.detail and finding.method == "_backward"


def test_the_command_exits_0_1_or_2_and_never_prints_a_traceback(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    assert main(["check-engine", str(ENGINES)]) == 0
    assert "OK" in capsys.readouterr().out
    assert main(["check-engine", f"{ENGINES}:AssignBug"]) == 1
    assert "a + a" in capsys.readouterr().out
    broken = tmp_path / "broken.py"
    broken.write_text("raise RuntimeError('half typed')\n")
    bad = [([str(tmp_path / "none.py")], "no such file"), ([f"{ENGINES}:Nope"], "no class 'Nope'"),
           ([str(broken)], "does not import: RuntimeError: half typed")]
    for args, says in bad:
        assert main(["check-engine", *args]) == 2
        err = capsys.readouterr().err
        assert says in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    done = subprocess.run([sys.executable, "-m", "nn", "check-engine", "--help"], capture_output=True,
                          text=True)
    assert done.returncode == 0 and "RUNS ITS CODE" in done.stdout
