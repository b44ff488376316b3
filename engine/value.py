"""The ``Value`` node and the backward pass.

Read it top to bottom: ``Value``, a scalar node that remembers the op that made it and its
parents; then the backward pass, the chain rule in reverse topological order. Each op's
forward and local derivatives are rows of the op table in :mod:`engine.ops` (``a * b`` is the
row ``mul``: its derivatives are ``(b, a)``).

Reference: reverse-mode automatic differentiation as in Griewank and Walther, *Evaluating
Derivatives* (2nd ed., SIAM 2008), ch. 3; the design follows Karpathy's micrograd.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from engine.operators import to_float
from engine.ops import (
    Op,
    OpError,
    add,
    cos,
    div,
    exp,
    log,
    log1p,
    mul,
    neg,
    relu,
    sigmoid,
    sin,
    sqrt,
    sub,
    tanh,
)
from engine.ops import abs as abs_op
from engine.ops import pow as pow_op
from engine.ops import sum as sum_op

Operand = Any  # a Value or a plain number


class Value:
    """A scalar node of the computation graph.

    ``Value(data, label=None)`` makes a **leaf**: a number the graph starts from (an input,
    a weight, a bias). An op applied to Values makes an interior node that remembers the op
    and its parents, so that :meth:`backward` can apply the chain rule.

    Args:
        data: the number, stored as a Python ``float`` (``int``, ``float`` and numpy scalars
            are accepted).
        label: an optional name shown by ``repr`` and drawings (``"w0"``).

    Attributes:
        data (float): the value computed in the forward pass.
        grad (float, or Value after ``backward(create_graph=True)``): ∂root/∂self after a
            backward pass; ``0.0`` before one.
        label (str | None): the name given by the user or a module.
        op (Op | None): the op that made this node; ``None`` for a leaf.
        parents (tuple[Value, ...]): the op's operands in order (``a * a`` has ``a`` twice).

    Raises:
        TypeError: ``data`` is not a real number, or ``label`` is not a string or ``None``.

    Equality and hashing are by identity, so Values work in sets and dicts; ``<``, ``<=``,
    ``>``, ``>=`` compare ``data``.
    """

    # The operands are kept in two slots, not a tuple (which would cost 56 more bytes per node):
    # ``_a`` and ``_b`` for a unary (``_b`` None) or binary op; for ``sum``, ``_a`` is the tuple.
    __slots__ = ("data", "grad", "label", "op", "_a", "_b")

    data: float
    grad: Any
    label: str | None
    op: Op | None
    _a: Any
    _b: Value | None

    def __init__(self, data: Any, label: str | None = None) -> None:
        if label is not None and not isinstance(label, str):
            raise TypeError(f"label must be a str or None, got {type(label).__name__}")
        self.data = to_float(data)
        self.grad = 0.0
        self.label = label
        self.op = None
        self._a = None
        self._b = None
        if _recorder is not None:  # made while engine.trace runs a function: a constant of its program
            _recorder.constants.add(self)

    @property
    def parents(self) -> tuple[Value, ...]:
        """The operands of ``op`` in order; ``()`` for a leaf."""
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

    # Arithmetic: each operator applies a row of the op table (engine.ops).
    def __add__(self, other: Operand) -> Value: return _binary(add, self, other)
    def __radd__(self, other: Operand) -> Value: return _binary(add, other, self)
    def __sub__(self, other: Operand) -> Value: return _binary(sub, self, other)
    def __rsub__(self, other: Operand) -> Value: return _binary(sub, other, self)
    def __mul__(self, other: Operand) -> Value: return _binary(mul, self, other)
    def __rmul__(self, other: Operand) -> Value: return _binary(mul, other, self)
    def __truediv__(self, other: Operand) -> Value: return _binary(div, self, other)
    def __rtruediv__(self, other: Operand) -> Value: return _binary(div, other, self)
    def __pow__(self, other: Operand) -> Value: return _binary(pow_op, self, other)
    def __rpow__(self, other: Operand) -> Value: return _binary(pow_op, other, self)
    def __neg__(self) -> Value: return _unary(neg, self)
    def __abs__(self) -> Value: return _unary(abs_op, self)

    def abs(self) -> Value:
        """``|self|``; the derivative at 0 is 0 (as PyTorch)."""
        return _unary(abs_op, self)

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
        """``max(self, 0)``; the derivative at 0 is 0 (as PyTorch)."""
        return _unary(relu, self)

    def sin(self) -> Value:
        """Sine (radians)."""
        return _unary(sin, self)

    def cos(self) -> Value:
        """Cosine (radians)."""
        return _unary(cos, self)

    # Comparisons look at data and return bool, so sorted(), max() and min() work on Values.
    # While engine.trace runs a function, each is also recorded as a guard of its program.
    def __lt__(self, other: Operand) -> bool: return _compared("<", self, other, self.data < _data(other))
    def __le__(self, other: Operand) -> bool: return _compared("<=", self, other, self.data <= _data(other))
    def __gt__(self, other: Operand) -> bool: return _compared(">", self, other, self.data > _data(other))
    def __ge__(self, other: Operand) -> bool: return _compared(">=", self, other, self.data >= _data(other))

    def __bool__(self) -> bool:
        """``data != 0``, as ``bool(torch.tensor(x))``; ``if value:`` branches on the number."""
        return _compared("!=", self, 0.0, self.data != 0.0)

    __hash__ = object.__hash__  # identity, stated because the class defines comparisons
    # numpy: let Value's own operators refuse ``array * value`` rather than numpy building an
    # object array of Values.
    __array_ufunc__ = None

    def __float__(self) -> float:
        if _recorder is not None:
            raise TracingError("float() of a traced Value would bake its number into the program (and "
                               "math.* functions call float()); use the Value's own ops (x.exp(), ...)")
        if _derivative_of is not None:
            raise OpError(f"op {_derivative_of}: its derivative called float() on a Value (math.* "
                          f"functions do) under backward(create_graph=True), which must record it; write "
                          f"it with engine's functions (engine.cos, engine.exp, ...) instead of math's")
        return self.data

    def detach(self) -> Value:
        """A new leaf with the same data and label, cut off from the graph, as
        ``torch.Tensor.detach``.

        Raises:
            TracingError: inside a function being traced (the number would be baked in).
        """
        if _recorder is not None:
            raise TracingError("detach() inside a traced function: the detached number would be baked "
                               "into the program, wrong for other inputs; trace without it")
        return Value(self.data, self.label)

    @staticmethod
    def _apply_op(fn: Any, operands: tuple[Any, ...]) -> Any:
        """How an op of the table (``fn``) applies to operands of which one is a Value: record
        a node. A helper of the derivatives (a comparison) reads the numbers instead."""
        if not isinstance(fn, Op):
            return fn.on_floats(*[_data(x) for x in operands])
        parents = tuple([x if isinstance(x, Value) else Value(x) for x in operands])
        data = fn.forward(*[p.data for p in parents])
        return _node(fn, data, parents) if fn.arity == 0 else _node(fn, data, *parents)

    def backward(self, gradient: Operand = 1.0, create_graph: bool = False) -> None:
        """Compute ∂self/∂node for every node of the graph below ``self``, into ``node.grad``.

        The chain rule in reverse topological order: starting from ``self.grad = gradient``,
        each node adds ``upstream gradient × local derivative`` into each parent's ``.grad``.

        Args:
            gradient: ∂L/∂self, the upstream gradient to start from (1.0 for a loss).
            create_graph: record the gradient computation itself, so every ``.grad`` is a
                Value that can be differentiated again (second derivatives).

        Leaves' gradients accumulate across calls (as in PyTorch: zero them between steps);
        interior nodes' are recomputed on each call.

        Raises:
            TypeError: ``gradient`` is not a number or a Value.
            OpError: under ``create_graph``, an op of yours whose derivative uses ``math``.
        """
        if not isinstance(gradient, Value):
            gradient = to_float(gradient)
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


def _data(x: Operand) -> float:
    """The number behind an operand: ``x.data`` for a Value, ``x`` for a plain number."""
    return x.data if isinstance(x, Value) else x


def _node(op: Op, data: float, a: Any, b: Value | None = None) -> Value:
    """The node ``op(a, b)`` (``op(a)``; ``op(*a)`` for a tuple ``a``) whose value is ``data``.
    Under :class:`no_grad` it is a leaf. (Speed: built with ``object.__new__`` and plain
    stores, twice as fast as ``Value(data)``.)"""
    out = _new_value(Value)
    out.data = data
    out.grad = 0.0
    out.label = None
    if _grad_enabled:
        out.op, out._a, out._b = op, a, b
    else:
        if _recorder is not None:
            raise TracingError("no_grad() inside a traced function: its results would be numbers baked "
                               "into the program, wrong for other inputs; trace without it")
        out.op, out._a, out._b = None, None, None
    return out


_new_value = object.__new__


def _unary(op: Op, a: Value) -> Value:
    return _node(op, op.forward(a.data), a)


def _binary(op: Op, a: Operand, b: Operand) -> Value:
    if not isinstance(a, Value):  # a number operand becomes a constant leaf
        a = Value(a)
    if not isinstance(b, Value):
        b = Value(b)
    return _node(op, op.forward(a.data, b.data), a, b)


def sum_values(values: Iterable[Operand]) -> Value:
    """``values[0] + … + values[n-1]`` as one ``sum`` node with ``n`` parents, so that
    ``w·x + b`` is one node over the products rather than a chain of adds (a float, if
    every value is a plain number).

    Raises:
        ValueError: ``values`` is empty.
    """
    operands = tuple(values)
    if not operands:
        raise ValueError("sum needs at least one value, got none")
    return sum_op(*operands)


# --------------------------------------------------------------------------------------------
# The backward pass: topological order, then each node's local step of the chain rule
# --------------------------------------------------------------------------------------------


def topological_order(root: Value) -> list[Value]:
    """Every node that ``root`` depends on, each once, parents before children (``root`` last).

    Depth-first search with an explicit stack instead of recursion, so that a chain of a
    million nodes works; parents are visited in operand order.
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
    """``{node: name}``: its label, or ``%k`` with ``k`` its position in topological order."""
    return {node: node.label or f"%{k}" for k, node in enumerate(topological_order(root))}


def chain_rule_steps(order: list[Value]) -> Iterator[tuple[Value, tuple[Value, ...], tuple[Any, ...]]]:
    """The backward walk: ``(node, parents, local derivatives)`` for each interior node, in
    reverse topological order, so that a node comes after every node that uses it. The local
    derivatives are the op table's, on the numbers. Every walk of the chain rule reads this:
    the backward pass below, the steps a stepper shows, gradient checking's bounds."""
    for node in reversed(order):
        op = node.op
        if op is not None:
            parents = node.parents
            yield node, parents, op.derivative(*[p.data for p in parents], node.data)


def _backward_plain(order: list[Value], root: Value, gradient: float) -> None:
    """The chain rule on floats, as the lecture writes it: for each node, each parent gets
    ``upstream gradient × local derivative`` added to its gradient."""
    root.grad = gradient
    for node, parents, local in chain_rule_steps(order):
        for parent, d in zip(parents, local):
            parent.grad += node.grad * d


def _backward_floats(order: list[Value], root: Value, gradient: float) -> None:
    """Speed: :func:`_backward_plain` with the walk inlined and unrolled for one and two
    parents (no generator, no zip). The same arithmetic in the same order: bit for bit the
    same gradients (a test checks)."""
    root.grad = gradient
    for node in reversed(order):
        op = node.op
        if op is None:
            continue
        upstream = node.grad
        a, b = node._a, node._b
        if b is not None:
            da, db = op.derivative(a.data, b.data, node.data)
            a.grad += upstream * da
            b.grad += upstream * db
        elif type(a) is not tuple:
            (da,) = op.derivative(a.data, node.data)
            a.grad += upstream * da
        else:
            for parent, d in zip(a, op.derivative(*[p.data for p in a], node.data)):
                parent.grad += upstream * d


def _backward_recorded(order: list[Value], root: Value, gradient: Operand) -> None:
    """The chain rule on Values (``create_graph=True``): the same loop, with the derivatives
    called on the nodes themselves, so every gradient is a node of a new graph."""
    global _derivative_of
    root.grad = gradient if isinstance(gradient, Value) else Value(gradient)
    for node in reversed(order):
        op = node.op
        if op is None:
            continue
        _derivative_of = None if op.builtin else op.name  # (float() of a Value then says which op)
        try:
            local = op.derivative(*node.parents, node)
        finally:
            _derivative_of = None
        for parent, d in zip(node.parents, local):
            parent.grad = parent.grad + node.grad * d


def hessian_of(root: Value, leaves: list[Value]) -> list[list[float]]:
    """The second derivatives ``H[i][j] = ∂²root/∂leafᵢ∂leafⱼ``: ``backward(create_graph=True)``
    records each gradient as a graph, and a backward pass through gradient ``i`` gives row
    ``i``. The leaves' ``.grad`` are left at 0.0.

    Raises:
        TypeError: ``root`` is not a Value.
    """
    if not isinstance(root, Value):
        raise TypeError(f"hessian_of needs a Value, got {type(root).__name__}")
    root.backward(create_graph=True)
    first = [leaf.grad for leaf in leaves]
    rows = []
    for g in first:
        for leaf in leaves:
            leaf.grad = 0.0
        if isinstance(g, Value):
            g.backward()
        rows.append([float(leaf.grad) for leaf in leaves])
    for leaf in leaves:
        leaf.grad = 0.0
    return rows


# --------------------------------------------------------------------------------------------
# Recording on and off, and the one hook tracing uses
# --------------------------------------------------------------------------------------------

_grad_enabled = True
_recorder: Any = None  # while engine.trace runs a function: what it records beyond the graph
_derivative_of: str | None = None  # the defined op whose derivative is being recorded


class TracingError(RuntimeError):
    """Something a traced function did cannot be captured in a program (see :mod:`engine.tracing`)."""


@contextlib.contextmanager
def recording(recorder: Any) -> Iterator[None]:
    """Recording on, with ``recorder`` told of what the graph alone does not show: each leaf
    made (``recorder.constants.add(value)``) and each comparison (``recorder.comparisons``,
    ``(relation, a, b, outcome)``). The one hook :func:`engine.trace` uses."""
    global _recorder, _grad_enabled
    saved = _recorder, _grad_enabled
    _recorder, _grad_enabled = recorder, True
    try:
        yield
    finally:
        _recorder, _grad_enabled = saved


def _compared(relation: str, a: Value, b: Operand, result: bool) -> bool:
    if _recorder is not None:
        _recorder.comparisons.append((relation, a, b, result))
    return result


class no_grad:
    """Context manager (and decorator) inside which ops record nothing: results are leaves.

    Use it for optimizer steps and evaluation, as ``torch.no_grad``. Not thread-local: it
    switches recording off for the whole interpreter while active.
    """

    def __enter__(self) -> None:
        global _grad_enabled
        self._previous = _grad_enabled
        _grad_enabled = False

    def __exit__(self, *exc: object) -> None:
        global _grad_enabled
        _grad_enabled = self._previous

    def __call__(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with no_grad():
                return fn(*args, **kwargs)

        return wrapper


def is_grad_enabled() -> bool:
    """True unless inside :class:`no_grad`."""
    return _grad_enabled
