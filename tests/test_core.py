"""The core a learner reads: ops as Python functions of ``engine``, your own op, the plain and the
fast chain-rule loop, and one concern per file with dependencies one way.

Expected numbers are worked out here by hand or with ``math`` (softsign's derivative is
1/(1 + |a|)², by the quotient rule), independently of the engine's table.
"""

from __future__ import annotations

import ast
import copy
import inspect
import math
import pickle
import struct
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

import engine
import engine.value as engine_value
from engine import OPS, OpError, Value, gradcheck
from engine.draw import draw
from engine.steps import backward_steps
from engine.testing import Expr, expressions, graphs, points

ROOT = Path(__file__).resolve().parent.parent


def bits(x: float) -> bytes:
    return struct.pack("<d", x)  # equal bits: the same number, the same sign of zero, nan is nan


# --------------------------------------------------------------------------------------------
# Every op is a function of engine


MATH = {"exp": math.exp, "log": math.log, "log1p": math.log1p, "sqrt": math.sqrt, "tanh": math.tanh,
        "sin": math.sin, "cos": math.cos, "abs": abs, "sigmoid": lambda a: 1 / (1 + math.exp(-a)),
        "relu": lambda a: max(a, 0.0), "neg": lambda a: -a}


@pytest.mark.parametrize("name", sorted(MATH))
def test_unary_ops_are_functions_of_engine_on_numbers_and_values(name: str) -> None:
    fn = getattr(engine, name)
    assert type(fn(0.75)) is float and fn(0.75) == pytest.approx(MATH[name](0.75), rel=1e-15)
    assert type(fn(2)) is float  # an int is a number too
    v = fn(Value(0.75))
    assert isinstance(v, Value) and v.op is OPS[name] and v.data == fn(0.75)


def test_binary_and_n_ary_ops_are_functions_of_engine() -> None:
    assert (engine.add(2, 3), engine.sub(2, 3), engine.mul(2, 3), engine.div(3, 4)) == (5.0, -1.0, 6.0, 0.75)
    assert (engine.pow(2, 10), engine.maximum(2, 3), engine.minimum(2, 3)) == (1024.0, 3.0, 2.0)
    assert engine.sum([1, 2, 3.5]) == 6.5 and type(engine.sum([1, 2])) is float
    a = Value(2.0)
    y = engine.pow(a, 3)
    y.backward()
    assert isinstance(y, Value) and y.data == 8.0 and a.grad == 12.0  # 3a²
    with pytest.raises(TypeError, match="real number"):
        engine.exp("2")
    with pytest.raises(TypeError, match="takes 2 operand"):
        engine.mul(1.0)


def test_every_op_is_python_with_a_source_line_not_compiled_text() -> None:
    for name, op in OPS.items():
        for fn in (op.forward, op.derivative):
            if inspect.isbuiltin(fn) or getattr(fn, "__module__", None) in ("_operator", "operator", "math"):
                continue
            file = inspect.getsourcefile(fn)
            assert file is not None and Path(file).name in ("ops.py", "operators.py"), (name, file)
            assert inspect.getsource(fn).strip(), name  # a learner can read it and set a breakpoint in it
    source = "\n".join(p.read_text() for p in (ROOT / "engine").glob("*.py"))
    assert "eval(" not in source  # generated programs are exec'd (codegen), ops never are


# --------------------------------------------------------------------------------------------
# The plain chain-rule loop and its fast twin


@given(graphs(max_nodes=8).flatmap(points))
@settings(suppress_health_check=list(HealthCheck), deadline=None)
@example((Expr("mul", (Expr(var=0), Expr(var=0))), [0.0]))  # a * a: both parent slots the same leaf
@example((Expr("sum", (Expr(var=0), Expr(var=1), Expr(var=0))), [-0.0, 1.5]))
def test_the_plain_and_the_fast_backward_loop_agree_bit_for_bit(case: tuple[Expr, list[float]]) -> None:
    expr, x = case
    grads = []
    for loop in (engine_value._backward_plain, engine_value._backward_floats):
        leaves = [Value(v) for v in x]
        root = expr.function(*leaves)
        order = engine.topological_order(root)
        loop(order, root, 0.7390851332151607)
        grads.append([bits(node.grad) for node in order])
    assert grads[0] == grads[1]


def test_backward_uses_the_fast_loop_and_the_lecture_loop_is_the_reference() -> None:
    x, w = Value(2.0), Value(-3.0)
    y = (x * w + x).tanh()
    y.backward()
    slope = 1 - math.tanh(2.0 * -3.0 + 2.0) ** 2  # by hand: y = tanh(x·w + x)
    assert x.grad == pytest.approx((w.data + 1) * slope, rel=1e-14)
    assert w.grad == pytest.approx(x.data * slope, rel=1e-14)


# --------------------------------------------------------------------------------------------
# Your own op


def softsign_derivative(a: float) -> float:
    return 1.0 / (1.0 + abs(a)) ** 2  # d/da a/(1 + |a|), by the quotient rule


@pytest.fixture(scope="module")
def softsign() -> engine.Op:
    return engine.define_op("soft_sign", forward=lambda a: a / (1 + abs(a)),
                            derivative=lambda a, out: (1 / (1 + engine.abs(a)) ** 2,), symbol="ss")


@pytest.fixture(scope="module")
def softsign_wrong() -> engine.Op:
    # the lecture's kind of slip: the quotient rule without the square
    return engine.define_op("softsign_slip", forward=lambda a: a / (1 + abs(a)),
                            derivative=lambda a, out: (1 / (1 + engine.abs(a)),))


def test_a_right_op_of_your_own_passes_gradcheck_and_replays_as_eager(softsign: engine.Op) -> None:
    x = Value(0.7, "x")
    y = softsign(x * 2.0) * x
    y.backward()
    expected = 1.4 / 2.4 + 0.7 * 2.0 * softsign_derivative(1.4)  # product rule, by hand
    assert x.grad == pytest.approx(expected, rel=1e-14)
    assert gradcheck(lambda x: softsign(x * 2.0) * x, [0.7]).ok
    assert gradcheck(lambda x: softsign(x * 2.0) * x, [0.7], order=2).ok  # create_graph through it
    program = engine.trace(lambda x: softsign(x * 2.0) * x, 0.7)
    assert "soft_sign(" in program.source()
    r = program([0.7])
    assert bits(r.outputs[0]) == bits(y.data) and bits(r.input_grads[0]) == bits(x.grad)
    batch = program.batch(np.array([[0.7], [-1.3]]))
    other = Value(-1.3)
    z = softsign(other * 2.0) * other
    z.backward()
    assert batch.outputs[:, 0].tolist() == pytest.approx([y.data, z.data], rel=1e-15)
    assert batch.input_grads[:, 0].tolist() == pytest.approx([x.grad, other.grad], rel=1e-15)


def test_a_wrong_op_of_your_own_is_blamed_by_name_traced_and_replayed(softsign_wrong: engine.Op) -> None:
    report = gradcheck(lambda x: softsign_wrong(x * 2.0), [0.7])
    assert not report.ok
    blame = report.blames[0]
    assert blame.kind == "local derivative" and blame.op == "softsign_slip"
    assert f"expected {softsign_derivative(1.4):.6g}" in blame.message
    # Tracing does not correct it: replay runs the same (wrong) derivative as eager.
    x = Value(0.7)
    y = softsign_wrong(x * 2.0)
    y.backward()
    assert x.grad == pytest.approx(2.0 / 2.4, rel=1e-15)  # what the slip computes
    r = engine.trace(lambda x: softsign_wrong(x * 2.0), 0.7)([0.7])
    assert bits(r.input_grads[0]) == bits(x.grad)


def test_an_op_whose_derivative_uses_math_works_on_floats_traced_and_fails_clearly_on_create_graph() -> None:
    msin = engine.define_op("math_sine", forward=math.sin, derivative=lambda a, out: (math.cos(a),))
    x = Value(0.3)
    y = msin(x) * x
    y.backward()
    assert x.grad == pytest.approx(math.cos(0.3) * 0.3 + math.sin(0.3), rel=1e-15)
    program = engine.trace(lambda x: msin(x) * x, 0.3)
    assert "d_math_sine(" in program.source()  # called as it is: it cannot run on code
    assert bits(program([0.3]).input_grads[0]) == bits(x.grad)
    batch = program.batch(np.array([[0.3], [0.3]]))
    assert batch.input_grads[:, 0].tolist() == pytest.approx([x.grad, x.grad], rel=1e-15)
    with pytest.raises(OpError, match="op math_sine: .*math"):
        msin(Value(0.3)).backward(create_graph=True)


def test_an_op_of_your_own_draws_steps_pickles_and_is_drawn_by_the_strategies(softsign: engine.Op) -> None:
    x = Value(0.5, "x")
    y = softsign(x)
    assert "ss" in draw(y).source  # its symbol
    steps = list(backward_steps(y))
    assert steps[-1].grads[x] == pytest.approx(softsign_derivative(0.5), rel=1e-15)
    for copied in (pickle.loads(pickle.dumps(y)), copy.deepcopy(y)):
        assert copied.op is softsign and copied.data == y.data
    seen = set()

    @given(expressions(ops=["soft_sign", "add", "mul"]).flatmap(points))
    @settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
    def check(case: tuple[Expr, list[float]]) -> None:
        expr, point = case
        seen.update(expr.ops())
        assert gradcheck(expr.function, point).ok

    check()
    assert "soft_sign" in seen
    assert "soft_sign" not in {op for op in OPS}  # opt-in: the built-in table is unchanged


def test_define_op_refuses_what_it_cannot_use() -> None:
    with pytest.raises(ValueError, match="'tanh' is a built-in op"):
        engine.define_op("tanh", forward=math.tanh, derivative=lambda a, out: (1.0,))
    with pytest.raises(ValueError, match="lower-case identifier"):
        engine.define_op("Soft Sign", forward=math.tanh, derivative=lambda a, out: (1.0,))
    for reserved in ("d_x", "v3", "max", "theta"):
        with pytest.raises(ValueError, match="a name generated code uses"):
            engine.define_op(reserved, forward=math.tanh, derivative=lambda a, out: (1.0,))
    with pytest.raises(TypeError, match="symbol must be a string"):
        engine.define_op("fivefold", forward=lambda a: 5 * a, derivative=lambda a, out: (5.0,),
                         symbol=5)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"must take \(\*operands_and_out\)"):
        engine.define_op("anyof", forward=lambda *xs: xs[0], derivative=lambda a, out: (1.0,))
    # a builtin whose signature Python does not give: the arity comes from the derivative
    hypot = engine.define_op("hypot", forward=math.hypot, derivative=lambda a, b, out: (a / out, b / out))
    a, b = Value(3.0), Value(4.0)
    hypot(a, b).backward()
    assert hypot.arity == 2 and (a.grad, b.grad) == (0.6, 0.8)  # 3/5, 4/5
    with pytest.raises(TypeError, match=r"must take \(a, out\): the 1 operand"):
        engine.define_op("twoargs", forward=lambda a: a, derivative=lambda a, b, out: (1.0, 1.0))
    halves = engine.define_op("halves", forward=lambda a, b: a / 2, derivative=lambda a, b, out: (0.5,))
    with pytest.raises(OpError, match="op halves: its derivative must return a tuple of 2"):
        halves(Value(1.0), Value(2.0)).backward()
    inverse = engine.define_op("inverse", forward=lambda a: 1 / a, derivative=lambda a, out: (-out * out,))
    with pytest.raises(OpError, match=r"op inverse: its forward raised ZeroDivisionError .* at 0.0"):
        inverse(Value(0.0))
    mylog = engine.define_op("mylog", forward=math.log, derivative=lambda a, out: (engine.div(1.0, a),))
    with pytest.raises(OpError, match=r"op mylog: its forward raised ValueError \(math domain error\) at -1"):
        mylog(-1.0)
    nothing = engine.define_op("nothing", forward=lambda a: None, derivative=lambda a, out: (0.0,))
    with pytest.raises(OpError, match="op nothing: its forward must return a real number, got NoneType"):
        nothing(Value(1.0))
    for bad in (None, "2", 1j, [1.0]):
        odd = engine.define_op("odd", forward=lambda a: a, derivative=lambda a, out, bad=bad: (bad,),
                               replace=True)
        with pytest.raises(OpError, match="op odd: each local derivative must be a real number"):
            odd(Value(1.0)).backward()


def test_defining_an_op_again_is_refused_unless_it_is_the_same_or_replace_is_given() -> None:
    first = engine.define_op("square", forward=lambda a: a * a, derivative=lambda a, out: (2.0 * a,))
    again = engine.define_op("square", forward=lambda a: a * a, derivative=lambda a, out: (2.0 * a,))
    assert again is first  # a notebook cell run twice
    with pytest.raises(ValueError, match="op 'square' is already defined"):
        engine.define_op("square", forward=lambda a: a * a * a, derivative=lambda a, out: (3.0 * a * a,))
    cube = engine.define_op("square", forward=lambda a: a * a * a, derivative=lambda a, out: (3.0 * a * a,),
                            replace=True)
    assert cube is not first and engine.op_by_name("square") is cube


def test_an_op_of_three_operands_records_and_replays() -> None:
    fma = engine.define_op("fma", forward=lambda a, b, c: a * b + c,
                           derivative=lambda a, b, c, out: (b, a, 1.0))
    a, b, c = Value(2.0), Value(-3.0), Value(0.5)
    y = fma(a, b, c) * a
    y.backward()
    assert (y.data, a.grad, b.grad, c.grad) == (-11.0, -3.0 * 2.0 + (-5.5), 4.0, 2.0)  # by hand
    assert gradcheck(lambda a, b, c: fma(a, b, c) * a, [2.0, -3.0, 0.5]).ok
    r = engine.trace(lambda a, b, c: fma(a, b, c) * a, 2.0, -3.0, 0.5)([2.0, -3.0, 0.5])
    assert r.input_grads == [a.grad, b.grad, c.grad]
    assert pickle.loads(pickle.dumps(y)).data == y.data


def test_replay_calls_an_op_of_yours_as_it_is_now() -> None:
    scale = {"t": 2.0}
    scaled = engine.define_op("scaled", forward=lambda a: a / scale["t"],
                              derivative=lambda a, out: (1.0 / scale["t"],))
    program = engine.trace(lambda x: scaled(x), 0.3)
    assert program([0.3]).input_grads == [0.5]
    scale["t"] = 4.0
    assert program([0.3]).input_grads == [0.25] and program([0.3]).outputs == [0.3 / 4.0]


def test_backward_inside_a_traced_function_is_refused() -> None:
    def f(x: Value) -> Value:
        y = x.relu() * x
        y.backward(create_graph=True)
        return x.grad

    with pytest.raises(engine.TracingError, match="backward"):
        engine.trace(f, 2.0)
    with pytest.raises(engine.TracingError, match="backward"):
        engine.trace(lambda x: engine.hessian_of(x.relu() * x, [x])[0][0] * x, 2.0)


def test_exact_gradcheck_needs_each_op_in_mpmath(softsign: engine.Op) -> None:
    with pytest.raises(ValueError, match="op soft_sign has none"):
        gradcheck(lambda x: softsign(x).tanh(), [0.7], reference="exact")
    exact = engine.define_op("softsign_mp", forward=lambda a: a / (1 + abs(a)),
                             derivative=lambda a, out: (1 / (1 + engine.abs(a)) ** 2,),
                             reference=lambda mp, a: a / (1 + abs(a)))
    assert gradcheck(lambda x: exact(x).tanh(), [0.7], reference="exact").ok


def test_graphs_without_add_still_reuse_a_value() -> None:
    @given(graphs(ops=["sin"]))
    @settings(max_examples=20, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
    def check(expr: Expr) -> None:
        assert expr.op == "add" and len(expr.nodes()) < 2 * len(list(_walk(expr)))  # something is shared

    check()


def _walk(expr: Expr):  # type: ignore[no-untyped-def]
    stack = [expr]
    while stack:
        e = stack.pop()
        yield e
        stack.extend(e.args)


@given(st.floats(-5, 5, allow_nan=False, allow_subnormal=False))
@example(0.0)
def test_a_unary_derivative_may_return_a_bare_number(a: float) -> None:
    cube = engine.define_op("cube3", forward=lambda a: a * a * a, derivative=lambda a, out: 3 * a * a)
    x = Value(a)
    cube(x).backward()
    assert x.grad == pytest.approx(3 * a * a, rel=1e-15, abs=0.0)


# --------------------------------------------------------------------------------------------
# One concern per file, dependencies one way


def modules() -> dict[str, Path]:
    found = {}
    for package in ("engine", "nn"):
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def imports_of(name: str, path: Path, known: set[str]) -> set[str]:
    """Every project module ``name`` imports, anywhere in the file (inside functions too, and
    under ``TYPE_CHECKING``)."""
    out = set()
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from the package, up level - 1
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(parts + ([base] if base else []))
            for alias in node.names:
                out.add(f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base)
    return {m for m in out if m in known and m != name}


def test_no_import_cycle_in_engine_or_nn() -> None:
    found = modules()
    graph = {name: imports_of(name, path, set(found)) for name, path in found.items()}
    state: dict[str, int] = {}

    def visit(start: str) -> None:  # depth-first search with a stack: a grey node met again is a cycle
        stack = [(start, iter(sorted(graph[start])))]
        state[start] = 1
        path = [start]
        while stack:
            node, children = stack[-1]
            for child in children:
                if state.get(child) == 1:
                    pytest.fail("import cycle: " + " -> ".join(path[path.index(child):] + [child]))
                if child not in state:
                    state[child] = 1
                    path.append(child)
                    stack.append((child, iter(sorted(graph[child]))))
                    break
            else:
                state[node] = 2
                path.pop()
                stack.pop()

    for name in graph:
        if name not in state:
            visit(name)
    assert "engine.value" in graph["engine.gradcheck"] and "engine" not in graph["engine.value"]
    from_engine = set().union(*(graph[n] for n in graph if n.startswith("engine")))
    assert not any(m.startswith("nn") for m in from_engine)  # nn depends on engine, never the reverse


def test_files_are_small_and_value_py_reads_in_one_sitting() -> None:
    sizes = {path.name: len(path.read_text().splitlines()) for path in (ROOT / "engine").glob("*.py")}
    assert max(sizes.values()) <= 450, sizes
    assert sizes["value.py"] <= 350
    tree = ast.parse((ROOT / "engine" / "value.py").read_text())
    top = [node.name for node in tree.body if isinstance(node, (ast.ClassDef, ast.FunctionDef))]
    assert top[: top.index("Value")] == ["_method"]  # the class first (after the helper it uses
    # to make x.tanh() and the like), then the backward pass
    assert top.index("topological_order") < top.index("_backward_plain") < top.index("_backward_floats")


def test_no_module_rewrites_another_modules_globals() -> None:
    for name, path in modules().items():
        tree = ast.parse(path.read_text())
        imported = {a.asname or a.name for node in ast.walk(tree)
                    if isinstance(node, (ast.Import, ast.ImportFrom)) for a in node.names}
        for node in ast.walk(tree):
            for target in getattr(node, "targets", []):
                if isinstance(target, ast.Attribute) and isinstance(target.value, ast.Name):
                    assert not (target.value.id in imported and target.value.id[0].islower()
                                and target.value.id in {"value", "_value", "engine", "ops", "grad_mode"}), \
                        f"{name} assigns {target.value.id}.{target.attr}"


def test_a_class_name_means_one_class() -> None:
    names: dict[str, list[str]] = {}
    for folder in ("engine", "nn", "benchmarks"):
        for path in (ROOT / folder).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.ClassDef):
                    names.setdefault(node.name, []).append(str(path.relative_to(ROOT)))
    # nn/micrograd.py is micrograd's nn on this engine, under micrograd's own names (its Module,
    # Neuron, Layer and MLP), so that the lecture's code runs unchanged.
    twice = {n: [w for w in where if w != "nn/micrograd.py"] for n, where in names.items()}
    assert {n: where for n, where in twice.items() if len(where) > 1} == {}
