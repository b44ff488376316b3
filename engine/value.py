"""The engine core: the op table, the ``Value`` node, and the backward pass.

Read it top to bottom:

1. ``Op`` and the **op table** ``OPS``: one row per op, its forward function and its local
   derivatives side by side. Everything else that needs the list of ops (``Value``'s
   operators, pickling, the tests; drawing and gradient checking as they arrive) reads this
   table instead of keeping its own list.
2. ``Value``: a scalar node of the computation graph. An op applied to Values makes a new
   Value that remembers the op and its parents (operands).
3. ``backward``: walks the graph in reverse topological order and applies the chain rule,
   ``parent.grad += upstream gradient × local derivative``.

A local derivative is written once and serves both plain floats (an ordinary backward pass)
and Values (``backward(create_graph=True)``, which records the gradient computation so it can
itself be differentiated). The rule that makes that work: inside a derivative, ``+``, ``-``,
``*`` and comparisons are used directly (they never raise on floats), and anything that can
fail on a float (``/``, ``**``, ``log``, ``sin``, ...) calls the op itself, e.g. ``div(1.0, a)``.
An op called on plain numbers returns a plain float; called on any Value it records a node.

Reference: reverse-mode automatic differentiation as in Griewank and Walther, *Evaluating
Derivatives* (2nd ed., SIAM 2008), ch. 3; the design follows Karpathy's micrograd. Numerical
conventions (kinks, ``inf``/``nan``) follow PyTorch's documented behaviour.
"""

from __future__ import annotations

import ast
import numbers
import operator
from collections.abc import Callable, Iterable, Iterator
from typing import Any, Union

from engine import operators as F

Number = Union[int, float]
Operand = Union["Value", Number]


# --------------------------------------------------------------------------------------------
# 1. The op table
# --------------------------------------------------------------------------------------------


class Op:
    """One primitive operation: its forward function and its local derivatives.

    Both are written once, as Python expression text in the operands' names (``a``, ``b``,
    and ``out`` for the op's result; ``x`` and ``xs`` for an op of any arity), calling only
    the functions named in :data:`engine.operators.FUNCTIONS`. The text is compiled here into
    the functions the eager engine calls, and the tracer (:mod:`engine.trace`) writes the same
    text, operand names replaced, into the programs it generates, on floats or numpy arrays.
    So a row of the table is all there is to an op.

    Attributes:
        name: the table key (``"mul"``).
        symbol: a short symbol for the op (``"×"``), for printing and drawing graphs.
        arity: the number of operands, or ``0`` for any number (``sum``).
        source: the forward as an expression (``"a * b"``).
        derivative_source: the local derivatives ``∂out/∂operand_i`` as expressions, one per
            operand (``("b", "a")``); for any arity, one expression in ``x`` (the operand),
            ``xs`` (all operands) and ``out``, used for every operand.
        forward: ``forward(*operands) -> float`` on plain floats, IEEE-safe (never raises),
            compiled from ``source``.
        derivative: ``derivative(*operands, out) -> tuple`` of the local derivatives, compiled
            from ``derivative_source``. Works on floats and on Values alike (see the module
            docstring): the op names in it call the ops themselves.
        formula: the forward as text for people (``"a·b"``), for printing and reports.
        derivative_formula: the local derivatives as text (``"b, a"``).
        reference: ``reference(mp, *operands)``: the forward function written with the
            ``mpmath`` module ``mp`` (passed in, so the engine does not import it), for
            high-precision checks that use no derivative rule of the engine
            (``gradcheck(..., reference="exact")``).

    Calling an op applies it: on plain numbers it returns a float, on any Value it returns
    a new Value node (``mul(a, 2)`` is ``a * 2``).
    """

    __slots__ = ("name", "symbol", "arity", "source", "derivative_source", "forward", "derivative",
                 "formula", "derivative_formula", "reference")

    def __init__(self, name: str, symbol: str, arity: int, source: str,
                 derivative_source: tuple[str, ...], formula: str, derivative_formula: str,
                 reference: Callable[..., Any]) -> None:
        if arity and len(derivative_source) != arity or not arity and len(derivative_source) != 1:
            raise ValueError(f"op {name}: {len(derivative_source)} derivative expressions for arity {arity}")
        self.name = name
        self.symbol = symbol
        self.arity = arity
        self.source = source
        self.derivative_source = derivative_source
        self.forward = _compile_forward(source, arity)
        self.derivative = _compile_derivative(derivative_source, arity)
        self.formula = formula
        self.derivative_formula = derivative_formula
        self.reference = reference

    def __call__(self, *operands: Operand) -> Any:
        for x in operands:
            if type(x) is not float:
                break
        else:  # all plain floats (as inside a backward pass): just the forward function
            if operands and (len(operands) == self.arity or not self.arity):
                return self.forward(*operands)
        if self.arity and len(operands) != self.arity:
            raise TypeError(f"{self.name} takes {self.arity} operand(s), got {len(operands)}")
        if not operands:
            raise TypeError(f"{self.name} needs at least one operand")
        for x in operands:
            if isinstance(x, Value):
                return _record(self, operands)
        return self.forward(*[_to_float(x) for x in operands])

    def __reduce__(self) -> tuple[Any, ...]:
        # Pickle and copy an op by name, so nodes stay picklable and ops stay singletons.
        return (op_by_name, (self.name,))

    def __repr__(self) -> str:
        return f"<op {self.name}: {self.formula}; d = {self.derivative_formula}>"


def op_by_name(name: str) -> Op:
    """Return the op called ``name`` from the table. Raises ``KeyError`` listing the ops."""
    try:
        return OPS[name]
    except KeyError:
        raise KeyError(f"no op named {name!r}; the ops are {', '.join(OPS)}") from None


def _data(x: Operand) -> float:
    """The number behind an operand: ``x.data`` for a Value, ``x`` for a plain number."""
    return x.data if isinstance(x, Value) else x


# The forward expressions run on floats, with engine.operators' functions. An expression that
# is just one function or Python operator applied to the operands in order compiles to that
# function itself, saving a call frame on the eager engine's hottest path.
_OPERATORS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul}


def _compile_forward(source: str, arity: int) -> Callable[..., float]:
    names = ["a", "b"][:arity]
    tree = ast.parse(source, mode="eval").body
    operands = [n.id for n in getattr(tree, "args", ()) if isinstance(n, ast.Name)]
    if isinstance(tree, ast.Call) and isinstance(tree.func, ast.Name) and operands == names \
            and len(tree.args) == arity and tree.func.id in F.FUNCTIONS:
        return F.FUNCTIONS[tree.func.id]
    if isinstance(tree, ast.BinOp) and type(tree.op) in _OPERATORS and names == ["a", "b"] \
            and [getattr(tree.left, "id", None), getattr(tree.right, "id", None)] == names:
        return _OPERATORS[type(tree.op)]
    if isinstance(tree, ast.UnaryOp) and isinstance(tree.op, ast.USub) and getattr(tree.operand, "id", None) == "a":
        return operator.neg
    signature = ", ".join(names) if arity else "*xs"
    return eval(f"lambda {signature}: {source}", dict(F.FUNCTIONS))


# The local derivatives run on floats and on Values (create_graph): an op name in them calls
# the op itself, and the helpers below read a Value's number where a derivative depends on
# which side of a kink the operand is. Filled in once the table exists.
_DERIVATIVE_FUNCTIONS: dict[str, Any] = {
    "step": lambda a: F.step(_data(a)),
    "sign": lambda a: F.sign(_data(a)),
    "where": F.where,
    "eq": lambda a, b: _data(a) == _data(b),
    "lt": lambda a, b: _data(a) < _data(b),
    "ge": lambda a, b: _data(a) >= _data(b),
    "isnan": lambda a: _data(a) != _data(a),
}


def _compile_derivative(sources: tuple[str, ...], arity: int) -> Callable[..., tuple[Any, ...]]:
    if arity:
        names = ", ".join(["a", "b"][:arity])
        return eval(f"lambda {names}, out: ({', '.join(sources)},)", _DERIVATIVE_FUNCTIONS)
    each = eval(f"lambda x, xs, out: {sources[0]}", _DERIVATIVE_FUNCTIONS)

    def derivative(*operands_and_out: Any) -> tuple[Any, ...]:
        *xs, out = operands_and_out
        return tuple([each(x, xs, out) for x in xs])

    return derivative


# fmt: off
# One row per op:    name       symbol arity forward            local derivatives ∂out/∂a, ∂out/∂b                                                                            formula        derivative text                      high-precision reference, in mpmath
add     = Op("add",     "+",    2, "a + b",         ("1.0", "1.0"),                                                                                       "a + b",       "1, 1",                              lambda mp, a, b: a + b)
sub     = Op("sub",     "−",    2, "a - b",         ("1.0", "-1.0"),                                                                                      "a − b",       "1, −1",                             lambda mp, a, b: a - b)
mul     = Op("mul",     "×",    2, "a * b",         ("b", "a"),                                                                                           "a·b",         "b, a",                              lambda mp, a, b: a * b)
div     = Op("div",     "÷",    2, "div(a, b)",     ("div(1.0, b)", "-div(out, b)"),                                                                      "a / b",       "1/b, −a/b²",                        lambda mp, a, b: a / b)
neg     = Op("neg",     "−",    1, "-a",            ("-1.0",),                                                                                            "−a",          "−1",                                lambda mp, a: -a)
# pow: d/da is 0 where b == 0 and a is 0 or nan (where b·a**(b−1) would be 0·inf); d/db is 0 where a == 0 and b >= 0 (PyTorch's pow_backward, masking only where needed so second derivatives through b stay right)
power   = Op("pow",     "**",   2, "pow(a, b)",     ("where(eq(b, 0.0) & (eq(a, 0.0) | isnan(a)), 0.0, b * pow(a, b - 1.0))", "where(eq(a, 0.0) & ge(b, 0.0), 0.0, out * log(a))"), "a ** b", "b·a**(b−1), a**b·log a", lambda mp, a, b: mp.power(a, b))
exp     = Op("exp",     "exp",  1, "exp(a)",        ("out",),                                                                                             "exp a",       "exp a",                             lambda mp, a: mp.exp(a))
log     = Op("log",     "log",  1, "log(a)",        ("div(1.0, a)",),                                                                                     "log a",       "1/a",                               lambda mp, a: mp.log(a))
log1p   = Op("log1p",   "log1p", 1, "log1p(a)",     ("div(1.0, 1.0 + a)",),                                                                               "log(1 + a)",  "1/(1 + a)",                         lambda mp, a: mp.log1p(a))
sqrt    = Op("sqrt",    "√",    1, "sqrt(a)",       ("div(0.5, out)",),                                                                                   "√a",          "1/(2√a)",                           lambda mp, a: mp.sqrt(a))
tanh    = Op("tanh",    "tanh", 1, "tanh(a)",       ("4.0 * sigmoid(2.0 * a) * sigmoid(-2.0 * a)",),                                                      "tanh a",      "1 − tanh² a = 4σ(2a)σ(−2a)",        lambda mp, a: mp.tanh(a))
sigmoid = Op("sigmoid", "σ",    1, "sigmoid(a)",    ("out * sigmoid(-a)",),                                                                               "σ(a)",        "σ(a)·(1 − σ(a)) = σ(a)·σ(−a)",      lambda mp, a: 1 / (1 + mp.exp(-a)))
relu    = Op("relu",    "ReLU", 1, "relu(a)",       ("step(a)",),                                                                                         "max(a, 0)",   "1 if a > 0 else 0",                 lambda mp, a: a if a > 0 else mp.mpf(0))
absval  = Op("abs",     "abs",  1, "abs(a)",        ("sign(a)",),                                                                                         "|a|",         "sign a (0 at 0)",                   lambda mp, a: mp.fabs(a))
sin     = Op("sin",     "sin",  1, "sin(a)",        ("cos(a)",),                                                                                          "sin a",       "cos a",                             lambda mp, a: mp.sin(a))
cos     = Op("cos",     "cos",  1, "cos(a)",        ("-sin(a)",),                                                                                         "cos a",       "−sin a",                            lambda mp, a: mp.cos(a))
# max and min (PyTorch's rule): the smaller (for min, the larger) operand gets 0, a tie ½ each, otherwise (also either side of a nan) the whole upstream gradient
maximum = Op("maximum", "max",  2, "maximum(a, b)", ("where(eq(a, b), 0.5, where(lt(a, b), 0.0, 1.0))", "where(eq(a, b), 0.5, where(lt(b, a), 0.0, 1.0))"), "max(a, b)",   "1 to the larger, ½ each on a tie",  lambda mp, a, b: max(a, b))
minimum = Op("minimum", "min",  2, "minimum(a, b)", ("where(eq(a, b), 0.5, where(lt(b, a), 0.0, 1.0))", "where(eq(a, b), 0.5, where(lt(a, b), 0.0, 1.0))"), "min(a, b)",   "1 to the smaller, ½ each on a tie", lambda mp, a, b: min(a, b))
total   = Op("sum",     "Σ",    0, "sum(xs, 0.0)",  ("1.0",),                                                                                             "a₁ + … + aₙ", "1 each",                            lambda mp, *xs: mp.fsum(xs))
# fmt: on

OPS: dict[str, Op] = {op.name: op for op in (
    add, sub, mul, div, neg, power, exp, log, log1p, sqrt, tanh, sigmoid, relu, absval, sin, cos,
    maximum, minimum, total,
)}
"""The op table: every primitive of the engine, by name."""

_DERIVATIVE_FUNCTIONS.update(OPS)  # the derivatives' op names call the ops


# --------------------------------------------------------------------------------------------
# 2. The Value node
# --------------------------------------------------------------------------------------------

_grad_enabled = True


def _to_float(x: Any) -> float:
    """Convert a real number to a Python float; reject anything else with ``TypeError``."""
    if type(x) is float:
        return x
    if isinstance(x, bool) or not isinstance(x, numbers.Real):
        raise TypeError(
            f"a Value holds a real number (int, float or a numpy scalar), "
            f"got {type(x).__name__}: {x!r}"[:200])
    try:
        return float(x)
    except OverflowError:  # an int too large for a float is ±inf, as everywhere else
        return F.inf if operator.gt(x, 0) else -F.inf


class Value:
    """A scalar node of the computation graph.

    ``Value(data, label=None)`` makes a **leaf**: a number the graph starts from (an input,
    a weight, a bias). Applying an op to Values makes an interior node that remembers the op
    and its parents, so that :meth:`backward` can apply the chain rule.

    Args:
        data: the number, stored as a Python ``float``; ``int``, ``float`` and numpy scalars
            (anything ``numbers.Real``) are accepted.
        label: an optional name shown by ``repr`` (``"w0"``).

    Attributes:
        data (float): the value computed in the forward pass.
        grad (float, or Value after ``backward(create_graph=True)``): ∂root/∂self after a
            backward pass; ``0.0`` before one.
        label (str | None): the name given by the user or a module.
        op (Op | None): the op that made this node; ``None`` for a leaf.
        parents (tuple[Value, ...]): the operands of ``op`` in order, duplicates kept
            (``a * a`` has two parent slots holding ``a``); ``()`` for a leaf.

    Raises:
        TypeError: ``data`` is not a real number (``bool``, ``str``, ``None``, complex and
            sequences are rejected), or ``label`` is not a string or ``None``.

    Equality and hashing are by identity (two nodes with equal data are different nodes),
    so Values work in sets and dicts; ``<``, ``<=``, ``>``, ``>=`` compare ``data``.
    """

    # The operands are kept in two slots rather than a tuple: a tuple would cost 56 more bytes
    # per node, a third of the node. ``_a`` and ``_b`` are the operands of a unary (``_b`` is
    # None) or binary op; for the n-ary ``sum``, ``_a`` is the tuple of operands. Read them
    # through ``parents``.
    __slots__ = ("data", "grad", "label", "op", "_a", "_b")

    data: float
    grad: Any
    label: str | None
    op: Op | None
    _a: Any
    _b: Value | None

    def __init__(self, data: Number, label: str | None = None) -> None:
        if label is not None and not isinstance(label, str):
            raise TypeError(f"label must be a str or None, got {type(label).__name__}")
        self.data = _to_float(data)
        self.grad = 0.0
        self.label = label
        self.op = None
        self._a = None
        self._b = None
        if _tracing is not None:  # made while engine.trace runs a function: a constant of its program
            _tracing.constants.add(self)

    @property
    def parents(self) -> tuple[Value, ...]:
        """The operands of ``op`` in order, duplicates kept (``a * a`` has two parent slots
        holding ``a``); ``()`` for a leaf."""
        a, b = self._a, self._b
        if a is None:
            return ()
        if b is not None:
            return (a, b)
        return a if type(a) is tuple else (a,)

    @property
    def is_leaf(self) -> bool:
        """True when no op made this Value (an input, a weight, a constant)."""
        return self.op is None

    def __repr__(self) -> str:
        label = f", label={self.label!r}" if self.label is not None else ""
        return f"Value(data={self.data!r}, grad={self.grad!r}{label})"

    # Arithmetic: each operator applies a row of the op table.
    def __add__(self, other: Operand) -> Value:
        return _binary(add, self, other)

    def __radd__(self, other: Operand) -> Value:
        return _binary(add, other, self)

    def __sub__(self, other: Operand) -> Value:
        return _binary(sub, self, other)

    def __rsub__(self, other: Operand) -> Value:
        return _binary(sub, other, self)

    def __mul__(self, other: Operand) -> Value:
        return _binary(mul, self, other)

    def __rmul__(self, other: Operand) -> Value:
        return _binary(mul, other, self)

    def __truediv__(self, other: Operand) -> Value:
        return _binary(div, self, other)

    def __rtruediv__(self, other: Operand) -> Value:
        return _binary(div, other, self)

    def __pow__(self, other: Operand) -> Value:
        return _binary(power, self, other)

    def __rpow__(self, other: Operand) -> Value:
        return _binary(power, other, self)

    def __neg__(self) -> Value:
        return _unary(neg, self)

    def __abs__(self) -> Value:
        return _unary(absval, self)

    def abs(self) -> Value:
        """``|self|``; its derivative at 0 is 0 (as PyTorch)."""
        return _unary(absval, self)

    def exp(self) -> Value:
        """``e ** self``."""
        return _unary(exp, self)

    def log(self) -> Value:
        """Natural logarithm; ``-inf`` at 0, ``nan`` below."""
        return _unary(log, self)

    def log1p(self) -> Value:
        """``log(1 + self)``, accurate when ``self`` is tiny (as ``torch.log1p``)."""
        return _unary(log1p, self)

    def sqrt(self) -> Value:
        """Square root; ``nan`` below 0."""
        return _unary(sqrt, self)

    def tanh(self) -> Value:
        """Hyperbolic tangent."""
        return _unary(tanh, self)

    def sigmoid(self) -> Value:
        """Logistic sigmoid ``1 / (1 + e**-self)``."""
        return _unary(sigmoid, self)

    def relu(self) -> Value:
        """``max(self, 0)``; its derivative at 0 is 0 (as PyTorch)."""
        return _unary(relu, self)

    def sin(self) -> Value:
        """Sine (radians)."""
        return _unary(sin, self)

    def cos(self) -> Value:
        """Cosine (radians)."""
        return _unary(cos, self)

    # Comparisons look at data and return bool, so sorted(), max() and min() work on Values.
    # While engine.trace runs a function, each comparison is also recorded as a guard: the
    # traced program takes the branch the comparison chose, and checks it on replay.
    def __lt__(self, other: Operand) -> bool:
        return _compared("<", self, other, self.data < _data(other))

    def __le__(self, other: Operand) -> bool:
        return _compared("<=", self, other, self.data <= _data(other))

    def __gt__(self, other: Operand) -> bool:
        return _compared(">", self, other, self.data > _data(other))

    def __ge__(self, other: Operand) -> bool:
        return _compared(">=", self, other, self.data >= _data(other))

    def __bool__(self) -> bool:
        """``data != 0``, as ``bool(torch.tensor(x))``; ``if value:`` branches on the number."""
        return _compared("!=", self, 0.0, self.data != 0.0)

    __hash__ = object.__hash__  # identity, stated here because the class defines comparisons

    # numpy: let Value's own operators handle ``array * value`` (which then rejects the array
    # with a TypeError) instead of numpy building an object array of Values.
    __array_ufunc__ = None

    def __float__(self) -> float:
        if _tracing is not None:
            raise TracingError(
                "float() of a traced Value would bake its number into the program (and math.* "
                "functions call float()); use the Value's own ops (x.exp(), x.log(), ...) instead")
        return self.data

    def __reduce__(self) -> tuple[Any, ...]:
        # Pickle and copy without recursion, however deep the graph: an interior node is
        # saved as its whole graph, flat, in topological order, each node naming its parents
        # by position. Leaves are saved as themselves, so a leaf that is also referenced
        # elsewhere (a model's weight) stays one shared object after loading.
        if self.op is None:
            return (_leaf, (self.data, self.grad, self.label))
        position: dict[Value, int] = {}
        records: list[Any] = []
        for node in topological_order(self):
            position[node] = len(records)
            if node.op is None:
                records.append(node)
            else:
                records.append((node.data, node.grad, node.label, node.op.name,
                                [position[p] for p in node.parents]))
        return (_rebuild, (records,))

    def detach(self) -> Value:
        """A new leaf with the same data and label, cut off from the graph (no gradient
        flows through it), as ``torch.Tensor.detach``.

        Raises:
            TracingError: inside a function being traced (the program has no op that stops
                gradients, and the detached number would be baked in).
        """
        if _tracing is not None:
            raise TracingError("detach() inside a traced function: the detached number would be baked "
                               "into the program, wrong for other inputs; trace without it")
        return Value(self.data, self.label)

    def backward(self, gradient: Operand = 1.0, create_graph: bool = False) -> None:
        """Compute ∂self/∂node for every node of the graph below ``self``, into ``node.grad``.

        The chain rule in reverse topological order: starting from ``self.grad = gradient``,
        each node passes ``upstream gradient × local derivative`` to each of its parents.

        Args:
            gradient: ∂L/∂self, the upstream gradient to start from (1.0 for a loss).
            create_graph: record the gradient computation itself, so every ``.grad`` is a
                Value that can be differentiated again (second derivatives).

        Gradients of leaves accumulate across calls (as in PyTorch: zero them between steps);
        gradients of interior nodes are recomputed on each call and stay readable after it.

        Raises:
            TypeError: ``gradient`` is not a number (or a Value).
        """
        if not isinstance(gradient, Value):
            gradient = _to_float(gradient)
        order = topological_order(self)
        earlier = []  # leaves' gradients from earlier calls: this call's are added to them at the end
        for node in order:
            if node.op is None and not (type(node.grad) is float and node.grad == 0.0):
                earlier.append((node, node.grad))
            node.grad = 0.0
        if create_graph:
            _backward_recorded(order, self, gradient)
        else:
            _backward_floats(order, self, _data(gradient))
        for leaf, grad in earlier:  # as PyTorch: .grad += (this call's gradient), so that a
            leaf.grad = grad + leaf.grad  # second call gives exactly twice the first


def _node(op: Op, data: float, a: Any, b: Value | None = None) -> Value:
    """The node ``op(a, b)`` (or ``op(a)``, or ``op(*a)`` for a tuple ``a``) whose forward
    value is ``data``.

    Under :class:`no_grad` nothing is recorded: the node is a leaf with no op and no parents.
    (Built with ``object.__new__`` and plain stores, twice as fast as calling ``Value(...)``.)
    """
    out = _new_value(Value)
    out.data = data
    out.grad = 0.0
    out.label = None
    if _grad_enabled:
        out.op = op
        out._a = a
        out._b = b
    else:
        if _tracing is not None:
            raise TracingError("no_grad() inside a traced function: its results would be numbers baked "
                               "into the program, wrong for other inputs; trace without it")
        out.op = None
        out._a = None
        out._b = None
    return out


_new_value = object.__new__


def _constant(x: Operand) -> Value:
    """An operand as a Value: a Value as it is, a number as a new leaf."""
    return x if isinstance(x, Value) else Value(x)


def _unary(op: Op, a: Value) -> Value:
    return _node(op, op.forward(a.data), a)


def _binary(op: Op, a: Operand, b: Operand) -> Value:
    if not isinstance(a, Value):  # a number operand becomes a constant leaf
        a = Value(a)
    if not isinstance(b, Value):
        b = Value(b)
    return _node(op, op.forward(a.data, b.data), a, b)


def _record(op: Op, operands: tuple[Operand, ...]) -> Value:
    """Apply ``op`` to ``operands`` (Values or numbers, any count) and return the new node."""
    parents = tuple([_constant(x) for x in operands])
    data = op.forward(*[p.data for p in parents])
    if op.arity == 0:  # n-ary: the operands are kept as one tuple
        return _node(op, data, parents)
    return _node(op, data, *parents)


def _leaf(data: float, grad: Any, label: str | None) -> Value:
    leaf = Value(data, label)
    leaf.grad = grad
    return leaf


def _rebuild(records: list[Any]) -> Value:
    """The inverse of ``Value.__reduce__``: rebuild a graph from its flat records."""
    nodes: list[Value] = []
    for record in records:
        if isinstance(record, Value):
            nodes.append(record)
            continue
        data, grad, label, name, positions = record
        op = op_by_name(name)
        parents = [nodes[i] for i in positions]
        node = Value(data, label)
        node.grad = grad
        node.op = op
        if op.arity == 0:
            node._a = tuple(parents)
        else:
            node._a = parents[0]
            node._b = parents[1] if len(parents) == 2 else None
        nodes.append(node)
    return nodes[-1]


def sum_values(values: Iterable[Operand]) -> Value:
    """``values[0] + values[1] + … + values[n-1]`` as one node with ``n`` parents (the ``sum``
    op), so that ``w·x + b`` is one sum node over the products rather than a chain of adds.

    Raises:
        ValueError: ``values`` is empty.
    """
    operands = tuple(values)
    if not operands:
        raise ValueError("sum needs at least one value, got none")
    return _record(total, operands)


# --------------------------------------------------------------------------------------------
# 3. Backward: topological order and the chain rule
# --------------------------------------------------------------------------------------------


def topological_order(root: Value) -> list[Value]:
    """Every node that ``root`` depends on, each once, parents before children (``root`` last).

    Depth-first search with an explicit stack instead of recursion, so a chain of a million
    nodes works under Python's default recursion limit. The order is deterministic: parents
    are visited in operand order.
    """
    order: list[Value] = []
    visited = {root}
    stack: list[tuple[Value, Iterator[Value]]] = [(root, iter(root.parents))]
    while stack:
        node, unvisited_parents = stack[-1]
        for parent in unvisited_parents:
            if parent not in visited:
                visited.add(parent)
                stack.append((parent, iter(parent.parents)))
                break  # descend first; come back to this node's remaining parents later
        else:  # all parents are placed: the node can follow them
            stack.pop()
            order.append(node)
    return order


def node_names(root: Value) -> dict[Value, str]:
    """``{node: name}`` for every node below ``root``: its label, or ``%k`` with ``k`` its
    position in topological order (the names captions, reports and drawings share)."""
    return {node: node.label or f"%{k}" for k, node in enumerate(topological_order(root))}


def _backward_floats(order: list[Value], root: Value, gradient: float) -> None:
    """The chain rule on plain floats (an ordinary backward pass)."""
    root.grad = gradient
    for node in reversed(order):
        op = node.op
        if op is None:
            continue
        upstream = node.grad
        a, b = node._a, node._b
        if b is not None:  # the chain rule, unrolled for two parents (the common case)
            da, db = op.derivative(a.data, b.data, node.data)
            a.grad += upstream * da
            b.grad += upstream * db
        elif type(a) is not tuple:  # ... and for one parent
            (da,) = op.derivative(a.data, node.data)
            a.grad += upstream * da
        else:  # the chain rule for any number of parents
            parents = node.parents
            local = op.derivative(*[p.data for p in parents], node.data)
            for parent, d in zip(parents, local):
                parent.grad += upstream * d


def _backward_recorded(order: list[Value], root: Value, gradient: Operand) -> None:
    """The chain rule on Values: the same loop, with operands and results passed as nodes,
    so every gradient is itself a node of a new graph (``create_graph=True``)."""
    root.grad = gradient if isinstance(gradient, Value) else Value(gradient)
    for node in reversed(order):
        op = node.op
        if op is None:
            continue
        upstream = node.grad
        local = op.derivative(*node.parents, node)
        for parent, d in zip(node.parents, local):
            parent.grad = parent.grad + upstream * d


# --------------------------------------------------------------------------------------------
# What a trace in progress (engine.trace) records beyond the graph
# --------------------------------------------------------------------------------------------


class TracingError(RuntimeError):
    """Something a traced function did cannot be captured in a program (see :mod:`engine.trace`)."""


class _Tracing:
    """The comparisons made on Values and the leaves made (numbers met as operands, Values
    created) while :func:`engine.trace.trace` runs a function."""

    def __init__(self) -> None:
        self.comparisons: list[tuple[str, Value, Operand, bool]] = []
        self.constants: set[Value] = set()


_tracing: _Tracing | None = None


def _compared(relation: str, a: Value, b: Operand, result: bool) -> bool:
    """Return ``result``, the outcome of ``a <relation> b``, noting it as a guard when tracing."""
    if _tracing is not None:
        _tracing.comparisons.append((relation, a, b, result))
    return result


# --------------------------------------------------------------------------------------------
# Recording on and off
# --------------------------------------------------------------------------------------------


class no_grad:
    """Context manager (and decorator) inside which ops record nothing: results are leaves.

    Use it for optimizer steps and evaluation, as ``torch.no_grad``. Not thread-local:
    it switches recording off for the whole interpreter while active.
    """

    def __enter__(self) -> None:
        global _grad_enabled
        self._previous = _grad_enabled
        _grad_enabled = False

    def __exit__(self, *exc: object) -> None:
        global _grad_enabled
        _grad_enabled = self._previous

    def __call__(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        import functools

        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with no_grad():
                return fn(*args, **kwargs)

        return wrapper


def is_grad_enabled() -> bool:
    """True unless inside :class:`no_grad`."""
    return _grad_enabled
