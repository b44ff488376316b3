"""The expression parser: graphs, values and gradients of parsed expressions, the function
table derived from ``engine.OPS``, and the errors (with column and caret) for everything else,
hostile input included.

Every expected number is computed here with ``math`` from a formula written out by hand (in
the comment), independently of the engine.
"""

from __future__ import annotations

import ast
import builtins
import doctest
import math
import time
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest

import engine.parse as parse_module
from engine import OPS, Op, Value
from engine.parse import (
    MAX_DEPTH,
    MAX_LENGTH,
    MAX_NODES,
    ExpressionError,
    Parsed,
    function_names,
    parse_expression,
)

inf = math.inf


def grads(text: str, **values: float) -> tuple[float, dict[str, float]]:
    """Parse, run backward, and return (root data, {name: grad})."""
    parsed = parse_expression(text, values)
    parsed.root.backward()
    return parsed.root.data, {name: leaf.grad for name, leaf in parsed.leaves.items()}


def error(text: str, values: dict[str, Any] | None = None) -> ExpressionError:
    """The ExpressionError that parsing ``text`` raises."""
    with pytest.raises(ExpressionError) as info:
        parse_expression(text, {"x": 2.0, "y": 1.0} if values is None else values)
    return info.value


def caret_column(e: ExpressionError) -> int:
    """The 1-based column of the first caret under the echoed text (lines are indented 2)."""
    lines = str(e).splitlines()
    assert len(lines) == 3, str(e)
    return lines[2].index("^") - 2 + 1


# --------------------------------------------------------------------------------------------
# Values and gradients
# --------------------------------------------------------------------------------------------


def test_neuron_value_and_gradients() -> None:
    parsed = parse_expression("tanh(w*x + b)", {"w": -3, "x": 2, "b": 6.88})
    assert isinstance(parsed, Parsed) and parsed.text == "tanh(w*x + b)"
    assert list(parsed.leaves) == ["w", "x", "b"]
    assert [leaf.label for leaf in parsed.leaves.values()] == ["w", "x", "b"]
    assert parsed.root.op is OPS["tanh"]
    parsed.root.backward()
    # n = w·x + b = -3·2 + 6.88 = 0.88; out = tanh n; dout/dn = 1 − tanh² n
    n = -3.0 * 2.0 + 6.88
    d = 1.0 - math.tanh(n) ** 2
    assert parsed.root.data == pytest.approx(math.tanh(0.88), rel=1e-12)
    assert parsed.leaves["w"].grad == pytest.approx(2.0 * d, rel=1e-12)  # x · d
    assert parsed.leaves["x"].grad == pytest.approx(-3.0 * d, rel=1e-12)  # w · d
    assert parsed.leaves["b"].grad == pytest.approx(d, rel=1e-12)  # 1 · d
    assert parsed.leaves["w"].grad == pytest.approx(1.0019, abs=1e-4)  # the README's figure


def test_log_times_sin() -> None:
    out, g = grads("log(x) * sin(y)", x=2, y=1)
    # f = log x · sin y; ∂f/∂x = sin y / x; ∂f/∂y = log x · cos y
    assert out == pytest.approx(math.log(2) * math.sin(1), rel=1e-12)
    assert g["x"] == pytest.approx(math.sin(1) / 2, rel=1e-12)
    assert g["y"] == pytest.approx(math.log(2) * math.cos(1), rel=1e-12)


def test_a_variable_used_twice_is_one_leaf_and_its_gradients_add_up() -> None:
    parsed = parse_expression("x*x + 3*x", {"x": 1.5})
    assert list(parsed.leaves) == ["x"]
    parsed.root.backward()
    assert parsed.root.data == 6.75  # 1.5² + 3·1.5 = 2.25 + 4.5
    assert parsed.leaves["x"].grad == 6.0  # 2x + 3


def test_division_and_power_gradients() -> None:
    out, g = grads("x / y", x=3, y=4)
    assert (out, g["x"], g["y"]) == (0.75, 0.25, pytest.approx(-3 / 16))  # 1/y, −x/y²
    out, g = grads("x ** y", x=2, y=3)
    assert out == 8.0
    assert g["x"] == pytest.approx(12.0)  # y·x^(y−1) = 3·4
    assert g["y"] == pytest.approx(8 * math.log(2))  # x^y·log x


@pytest.mark.parametrize("text, expected", [
    ("-x ** 2", -9.0),  # −(x²): ** binds tighter than unary minus
    ("-2 ** 2", -4.0),
    ("2 ** -1", 0.5),
    ("2 ** 3 ** 2", 512.0),  # right-associative: 2^(3²)
    ("x / y / 2", 0.75),  # left-associative: (3/2)/2
    ("x - y - 1", 0.0),
    ("+x - -y", 5.0),
    ("((x))", 3.0),
    ("1_000 + 0x10 + 1e-3", 1016.001),
    ("  x + 1  ", 4.0),
])
def test_python_precedence_and_number_syntax(text: str, expected: float) -> None:
    assert parse_expression(text, {"x": 3, "y": 2}).root.data == pytest.approx(expected, rel=1e-15)


def test_negative_literal_is_one_constant_and_minus_a_variable_is_neg() -> None:
    root = parse_expression("-3", {}).root
    assert root.is_leaf and root.data == -3.0 and type(root.data) is float
    root = parse_expression("-x", {"x": 2}).root
    assert root.op is OPS["neg"] and root.data == -2.0


def test_constant_expression_has_no_leaves() -> None:
    parsed = parse_expression("2 * 3 + 1", {})
    assert parsed.leaves == {}
    assert parsed.root.data == 7.0 and type(parsed.root.data) is float
    parsed.root.backward()
    assert parsed.root.grad == 1.0


def test_leaves_in_order_of_first_appearance_and_unused_values_left_out() -> None:
    parsed = parse_expression("b + w*x + b", {"x": 1, "w": 2, "b": 3, "unused": 4})
    assert list(parsed.leaves) == ["b", "w", "x"]
    assert all(type(leaf.data) is float and leaf.is_leaf for leaf in parsed.leaves.values())
    assert parsed.root.data == 8.0  # 3 + 2·1 + 3


def test_a_bare_variable_is_its_own_leaf() -> None:
    parsed = parse_expression("x", {"x": 5})
    assert parsed.root is parsed.leaves["x"]
    parsed.root.backward()
    assert parsed.leaves["x"].grad == 1.0


# --------------------------------------------------------------------------------------------
# The function table comes from engine.OPS
# --------------------------------------------------------------------------------------------

UNARY_WITH_METHOD = [op for op in OPS.values() if op.arity == 1 and callable(getattr(Value, op.name, None))]


@pytest.mark.parametrize("op", UNARY_WITH_METHOD, ids=lambda op: op.name)
def test_every_unary_op_of_the_table_is_callable_by_name(op: Op) -> None:
    x = 0.5  # inside every unary op's domain (log, sqrt, log1p) and away from kinks
    parsed = parse_expression(f"{op.name}(x)", {"x": x})
    parsed.root.backward()
    direct = getattr(Value(x), op.name)()  # the same op through the Value method
    expected_grad = op.derivative(x, direct.data)[0]
    assert parsed.root.op is op
    assert parsed.root.data == direct.data
    assert parsed.leaves["x"].grad == expected_grad


def test_the_unary_functions_against_math() -> None:
    # Spot checks of the forward value against the math module (independent of the engine).
    x = 0.5
    expected = {"exp": math.exp(x), "log": math.log(x), "log1p": math.log1p(x), "sqrt": math.sqrt(x),
                "tanh": math.tanh(x), "sigmoid": 1 / (1 + math.exp(-x)), "relu": x, "abs": x,
                "sin": math.sin(x), "cos": math.cos(x)}
    for name, value in expected.items():
        assert parse_expression(f"{name}(x)", {"x": x}).root.data == pytest.approx(value, rel=1e-15), name


def test_function_names_are_derived_from_the_table() -> None:
    unary = {op.name for op in UNARY_WITH_METHOD}
    assert {"exp", "log", "log1p", "sqrt", "tanh", "sigmoid", "relu", "abs", "sin", "cos"} <= unary
    assert set(function_names()) == unary | {"maximum", "minimum", "sum", "max", "min"}
    assert function_names() == sorted(function_names())


def test_neg_has_no_method_so_it_is_written_as_minus() -> None:
    e = error("neg(x)")
    assert "unknown function 'neg'" in e.reason and e.column == 1


@pytest.mark.parametrize("name", ["max", "maximum"])
def test_maximum_and_its_alias(name: str) -> None:
    parsed = parse_expression(f"{name}(x, y)", {"x": 2, "y": 5})
    assert parsed.root.op is OPS["maximum"]
    parsed.root.backward()
    assert parsed.root.data == 5.0
    assert (parsed.leaves["x"].grad, parsed.leaves["y"].grad) == (0.0, 1.0)  # the larger gets it


@pytest.mark.parametrize("name", ["min", "minimum"])
def test_minimum_and_its_alias(name: str) -> None:
    parsed = parse_expression(f"{name}(x, y)", {"x": 2, "y": 5})
    assert parsed.root.op is OPS["minimum"]
    parsed.root.backward()
    assert parsed.root.data == 2.0
    assert (parsed.leaves["x"].grad, parsed.leaves["y"].grad) == (1.0, 0.0)


def test_sum_with_one_and_many_arguments() -> None:
    out, g = grads("sum(x, y, x*y)", x=2, y=3)
    assert out == 11.0  # 2 + 3 + 6
    assert g == {"x": 4.0, "y": 3.0}  # ∂/∂x = 1 + y, ∂/∂y = 1 + x
    parsed = parse_expression("sum(x)", {"x": 2})
    assert parsed.root.op is OPS["sum"] and parsed.root.parents == (parsed.leaves["x"],)
    assert parsed.root.data == 2.0


# --------------------------------------------------------------------------------------------
# Errors: message, column and caret
# --------------------------------------------------------------------------------------------


def test_unknown_name_message_points_at_the_name() -> None:
    e = error("log(foo) * sin(y)", {"x": 2, "y": 1})
    assert isinstance(e, ValueError)
    lines = str(e).splitlines()
    assert lines[0].startswith("expression error at column 5: unknown name 'foo'")
    assert "--set foo=VALUE" in lines[0]
    assert "(known: x, y; functions: abs, cos, exp, log, " in lines[0]
    assert lines[1:] == ["  log(foo) * sin(y)", "      ^^^"]
    assert (e.column, e.end_column, e.text) == (5, 8, "log(foo) * sin(y)")


def test_missing_value_with_no_values_at_all() -> None:
    e = error("x + z", {})
    assert "unknown name 'x'" in e.reason and "--set x=VALUE" in e.reason and "known: none" in e.reason
    e = error("x + z", {"x": 1})
    assert "unknown name 'z'" in e.reason and e.column == 5 and caret_column(e) == 5


def test_close_names_are_suggested() -> None:
    assert "did you mean 'tanh'?" in error("tahn(x)").reason
    assert "did you mean 'weight'?" in error("weigth * 2", {"weight": 1}).reason


@pytest.mark.parametrize("text, reason, column", [
    ("__import__('os')", "unknown function '__import__'", 1),
    ("__import__('os').system('ls')", "only a function name can be called", 1),
    ("x.__class__.__bases__", "attribute access", 1),
    ("x + x.__class__", "attribute access", 5),
    ("[x][0]", "subscripts", 1),
    ("lambda: 1", "lambda is not allowed", 1),
    ("(x for x in y)", "generator expressions are not allowed", 1),
    ("[x for x in y]", "comprehensions are not allowed", 1),
    ("'a'", "strings are not allowed", 1),
    ("x * b'a'", "strings are not allowed", 5),
    ("f'{x}'", "f-strings are not allowed", 1),
    ("x if x else y", "conditional expressions", 1),
    ("x < y", "comparisons are not allowed", 1),
    ("x and y", "'and' / 'or' are not allowed", 1),
    ("not x", "'not' is not allowed", 1),
    ("~x", "'~' is not allowed", 1),
    ("x % y", "operator '%' is not supported", 3),
    ("(x) // y", "operator '//' is not supported", 5),
    ("x ^ 2", "for a power use **", 3),
    ("x @ y", "operator '@' is not supported", 3),
    ("True + x", "True is not a number", 1),
    ("x + None", "None is not allowed", 5),
    ("1j * x", "complex numbers are not allowed", 1),
    ("...", "Ellipsis is not allowed", 1),
    ("x, y", "tuples are not allowed", 1),
    ("{x: 1}", "dicts are not allowed", 1),
    ("{x}", "sets are not allowed", 1),
    ("(x := 1)", "assignment", 2),
    ("(tanh)(x)", "only a function name can be called", 2),
    ("tanh(x)(y)", "only a function name can be called", 1),
    ("getattr(x, 'y')", "unknown function 'getattr'", 1),
    ("tanh(x=1)", "keyword arguments are not allowed", 6),
    ("tanh(**x)", "keyword arguments are not allowed", 6),
    ("sum(*x)", "'*' arguments are not allowed", 5),
    ("exp + 1", "'exp' is a function, not a variable", 1),
    ("x(1)", "'x' is a variable, not a function", 1),
])
def test_rejected_syntax_points_at_the_node(text: str, reason: str, column: int) -> None:
    e = error(text)
    assert reason in e.reason
    assert e.column == column and caret_column(e) == column
    assert str(e).splitlines()[1] == "  " + text


@pytest.mark.parametrize("text, message, column", [
    ("tanh(x, y)", "tanh() takes 1 argument, got 2", 1),
    ("exp()", "exp() takes 1 argument, got 0", 1),
    ("max(x)", "max() takes 2 arguments, got 1", 1),
    ("x + minimum(x, y, x)", "minimum() takes 2 arguments, got 3", 5),
    ("sum()", "sum() takes at least 1 argument, got 0", 1),
])
def test_wrong_number_of_arguments(text: str, message: str, column: int) -> None:
    e = error(text)
    assert e.reason == message and e.column == column


@pytest.mark.parametrize("text, reason, column", [
    ("f(x)=1", "syntax error: invalid syntax", 5),
    ("x +", "syntax error: the expression ends too early", 4),
    ("(x", "syntax error: '(' was never closed", 1),
    ("x)", "syntax error: unmatched ')'", 2),
    ("3x", "syntax error: invalid decimal literal", 1),
    ("  1 +* 2", "syntax error: invalid syntax", 6),  # leading spaces count in the column
    ("x = 1", "syntax error", 3),
])
def test_syntax_errors_give_the_column(text: str, reason: str, column: int) -> None:
    e = error(text)
    assert e.reason.startswith(reason) and e.column == column and caret_column(e) == column


def test_columns_count_characters_not_utf8_bytes() -> None:
    e = error("é + x.y", {"é": 1, "x": 2})
    assert (e.column, e.end_column) == (5, 8) and caret_column(e) == 5  # "é" is 2 bytes


def test_an_error_far_into_a_long_expression_is_shown_in_a_window() -> None:
    text = " + ".join(["x"] * 200) + " + q.w"
    e = error(text)
    assert "attribute access" in e.reason and e.column == len(text) - 2
    _, shown, carets = str(e).splitlines()
    assert len(shown) < 100 and shown.startswith("  ...")
    assert shown[carets.index("^"):] == "q.w" and carets.endswith("^^^")


def test_the_first_error_reported_is_the_leftmost_outermost() -> None:
    e = error("foo(x.y) + bar")
    assert "unknown function 'foo'" in e.reason and e.column == 1


@pytest.mark.parametrize("text, column", [("x\n+ y", 2), ("x\ty", 2), ("x\x00", 2), ("x\x7f", 2)])
def test_control_characters_are_rejected(text: str, column: int) -> None:
    e = error(text)
    assert "control character" in e.reason and e.column == column


@pytest.mark.parametrize("text", ["", "   "])
def test_empty_expression(text: str) -> None:
    assert error(text).reason == "the expression is empty"


# --------------------------------------------------------------------------------------------
# The values
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("value, reason", [
    (True, "must be a number, got bool"),
    ("2", "must be a number, got str"),
    (None, "must be a number, got NoneType"),
    (1 + 2j, "must be a number, got complex"),
    (Value(1.0), "must be a number, got Value"),
    (math.nan, "got nan"),
])
def test_bad_values_are_rejected(value: Any, reason: str) -> None:
    e = error("x", {"x": value})
    assert reason in e.reason and e.column is None
    assert str(e) == f"expression error: {e.reason}"


@pytest.mark.parametrize("name, reason", [
    ("exp", "it is a function"), ("max", "it is a function"), ("sum", "it is a function"),
    ("2x", "cannot be a variable name"), ("lambda", "cannot be a variable name"),
    ("a.b", "cannot be a variable name"),
])
def test_names_that_cannot_be_variables(name: str, reason: str) -> None:
    e = error("1", {name: 1.0})
    assert reason in e.reason and repr(name) in e.reason


@pytest.mark.parametrize("value, expected", [
    (3, 3.0), (Fraction(1, 4), 0.25), (-inf, -inf), (inf, inf), (10**400, inf), (-(10**400), -inf),
])
def test_values_become_floats(value: Any, expected: float) -> None:
    leaf = parse_expression("x", {"x": value}).leaves["x"]
    assert type(leaf.data) is float and leaf.data == expected


def test_type_errors_for_wrong_argument_types() -> None:
    with pytest.raises(TypeError, match="must be a str"):
        parse_expression(b"x", {"x": 1})  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="mapping"):
        parse_expression("x", [("x", 1)])  # type: ignore[arg-type]


# --------------------------------------------------------------------------------------------
# Hostile input: limits, huge numbers, and no evaluation ever
# --------------------------------------------------------------------------------------------


def test_500_nested_parentheses_is_a_clear_error() -> None:
    e = error("(" * 500 + "x" + ")" * 500)
    assert f"nested too deeply: more than {MAX_DEPTH} levels" in e.reason
    assert e.column == MAX_DEPTH + 1  # the first bracket past the limit


def test_nesting_up_to_the_limit_parses() -> None:
    text = "(" * MAX_DEPTH + "x" + ")" * MAX_DEPTH
    assert parse_expression(text, {"x": 7}).root.data == 7.0
    text = "tanh(" * 60 + "x" + ")" * 60  # 60 nested calls: a 60-deep graph
    assert parse_expression(text, {"x": 0.0}).root.data == 0.0


def test_a_100k_character_string_is_rejected_quickly_with_a_short_message() -> None:
    text = "x+" * 50_000
    start = time.perf_counter()
    e = error(text)
    assert time.perf_counter() - start < 1.0
    assert e.reason == f"the expression is 100000 characters long; the limit is {MAX_LENGTH}"
    assert e.column == MAX_LENGTH + 1
    _, shown, carets = str(e).splitlines()
    assert len(shown) < 100 and shown.startswith("  ...") and shown.endswith("...")  # a window
    under = shown[carets.index("^"):].removesuffix("...")  # the text from the caret on
    assert len(under) > 10 and text[MAX_LENGTH:].startswith(under)


def test_too_many_parts() -> None:
    terms = MAX_NODES // 2 + 1  # n terms of "x + x + …" are 2n − 1 parts
    e = error("+".join(["x"] * terms))
    assert f"{2 * terms - 1} parts" in e.reason and f"limit is {MAX_NODES}" in e.reason
    out = parse_expression("+".join(["x"] * (MAX_NODES // 2)), {"x": 1}).root.data
    assert out == MAX_NODES // 2


@pytest.mark.parametrize("text", ["-" * 1999 + "x", "x**" * 666 + "x"])
def test_long_unbracketed_chains_are_rejected_not_a_recursion_error(text: str) -> None:
    assert "parts" in error(text).reason


@pytest.mark.parametrize("exc", [RecursionError, MemoryError])
def test_parser_recursion_and_memory_errors_become_expression_errors(
        monkeypatch: pytest.MonkeyPatch, exc: type[BaseException]) -> None:
    def failing_parse(*args: Any, **kwargs: Any) -> Any:
        raise exc()

    monkeypatch.setattr(parse_module.ast, "parse", failing_parse)
    e = error("x + y")
    assert "too deeply or is too complex" in e.reason and e.column == 1


@pytest.mark.parametrize("text", ["2 ** 10000", "10 ** 10 ** 10", "9 ** 9 ** 9", "1" + "0" * 400, "1e999"])
def test_huge_numbers_are_inf_at_once(text: str) -> None:
    # 9 ** 9 ** 9 in Python integers has 370 million digits: this only returns fast because
    # every number is a float before any arithmetic.
    start = time.perf_counter()
    root = parse_expression(text, {}).root
    assert time.perf_counter() - start < 1.0
    assert root.data == inf


def test_huge_power_gradient_is_inf() -> None:
    out, g = grads("2 ** x", x=10000)
    assert out == inf and g["x"] == inf  # ∂/∂x 2^x = 2^x · log 2


def test_inf_times_zero_is_nan_not_an_exception() -> None:
    root = parse_expression("2 ** 10000 * 0", {}).root
    assert math.isnan(root.data)


def test_no_code_is_ever_compiled_or_evaluated(monkeypatch: pytest.MonkeyPatch) -> None:
    # ast.parse compiles only to an AST (PyCF_ONLY_AST); anything else would be code.
    real_compile = builtins.compile
    flags_seen: list[int] = []

    def checked_compile(source: Any, filename: Any, mode: Any, flags: int = 0, *args: Any,
                        **kwargs: Any) -> Any:
        flags_seen.append(flags)
        assert flags & ast.PyCF_ONLY_AST, "compiled to code"
        return real_compile(source, filename, mode, flags, *args, **kwargs)

    def forbidden(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("eval/exec called")

    monkeypatch.setattr(builtins, "compile", checked_compile)
    monkeypatch.setattr(builtins, "eval", forbidden)
    monkeypatch.setattr(builtins, "exec", forbidden)
    assert parse_expression("tanh(w*x + b) + max(x, 1) ** 2", {"w": 1, "x": 2, "b": 3}).root.data > 0
    with pytest.raises(ExpressionError):
        parse_expression("__import__('os').system('echo hacked')", {})
    assert flags_seen  # ast.parse went through compile, with PyCF_ONLY_AST


def test_the_module_source_calls_no_eval_exec_or_compile() -> None:
    tree = ast.parse(Path(parse_module.__file__).read_text())
    called = {node.func.id for node in ast.walk(tree)
              if isinstance(node, ast.Call) and isinstance(node.func, ast.Name)}
    assert called, "the walk found no calls at all"
    assert not called & {"eval", "exec", "compile", "__import__"}


def test_the_module_docstring_example_runs() -> None:
    result = doctest.testmod(parse_module)
    assert result.attempted >= 2 and result.failed == 0
