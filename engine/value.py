"""The ``Value`` node, then the backward pass: the chain rule in reverse topological order.

Each op's forward and local derivatives are a row of the op table, :mod:`engine.ops`: ``a * b``
is the row ``mul``, whose local derivatives are ``(b, a)``.

Reference: reverse-mode automatic differentiation as in Griewank and Walther, *Evaluating
Derivatives* (2nd ed., SIAM 2008), ch. 3; the design follows Karpathy's micrograd.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from engine import ops
from engine.define import OpError
from engine.grad_mode import TracingError, compared, open_contexts, state
from engine.operators import to_float

Operand = Any  # a Value or a plain number
_new_value = object.__new__  # (speed: see _node)


def _method(op: ops.Op, doc: str) -> Callable[[Value], Value]:
    """``x.exp()`` for the unary op ``exp``: a method that applies ``op`` to its Value."""
    def method(self: Value) -> Value:
        return _unary(op, self)

    method.__name__ = method.__qualname__ = op.name
    method.__doc__ = doc
    return method


class Value:
    """A scalar node of the computation graph. ``Value(data, label=None)`` makes a **leaf** (an
    input, a weight); an op applied to Values makes a node that remembers the op and its parents.

    Args:
        data: the number (``int``, ``float`` or a numpy scalar), kept as a ``float``.
        label: an optional name for ``repr`` and drawings (``"w0"``).

    Attributes:
        data (float): the forward value. grad (float; a Value after ``create_graph``):
            ∂root/∂self after ``root.backward()``, else 0.0. label (str | None): its name.
        op (Op | None): the op that made it (None for a leaf). parents: the op's operands.

    Raises:
        TypeError: ``data`` is not a real number, or ``label`` is not a string or ``None``.

    Equality and hashing are by identity (Values work in sets); ``<``, ``<=``, ``>``, ``>=``
    compare ``data``.
    """

    # The operands: ``_a`` and ``_b`` (None for a unary op), or for ``sum`` the tuple in ``_a``;
    # two slots rather than one tuple, which would cost 56 more bytes per node.
    __slots__ = ("data", "grad", "label", "op", "_a", "_b")

    grad: Any
    op: ops.Op | None
    _a: Any
    _b: Value | None

    def __init__(self, data: Any, label: str | None = None) -> None:
        if label is not None and not isinstance(label, str):
            raise TypeError(f"label must be a str or None, got {type(label).__name__}")
        self.data, self.grad, self.label = to_float(data), 0.0, label
        self.op = self._a = self._b = None  # a leaf
        if open_contexts.count and state.recorder is not None:  # made while engine.trace runs: a constant
            state.recorder.constants.add(self)
        if open_contexts.count and state.anomaly is not None:  # in detect_anomaly: a constant (x ** 2.0)?
            state.anomaly.leaf(self)

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

    # Arithmetic: each operator applies a row of the op table (engine/ops.py: ops.mul for a * b).
    def __add__(self, other: Operand) -> Value: return _binary(ops.add, self, other)
    def __radd__(self, other: Operand) -> Value: return _binary(ops.add, other, self)
    def __sub__(self, other: Operand) -> Value: return _binary(ops.sub, self, other)
    def __rsub__(self, other: Operand) -> Value: return _binary(ops.sub, other, self)
    def __mul__(self, other: Operand) -> Value: return _binary(ops.mul, self, other)
    def __rmul__(self, other: Operand) -> Value: return _binary(ops.mul, other, self)
    def __truediv__(self, other: Operand) -> Value: return _binary(ops.div, self, other)
    def __rtruediv__(self, other: Operand) -> Value: return _binary(ops.div, other, self)
    def __pow__(self, other: Operand) -> Value: return _binary(ops.pow, self, other)
    def __rpow__(self, other: Operand) -> Value: return _binary(ops.pow, other, self)
    def __neg__(self) -> Value: return _unary(ops.neg, self)

    def __abs__(self) -> Value:
        """``|self|``; the derivative at 0 is 0 (as PyTorch)."""
        return _unary(ops.abs, self)

    # The unary ops as methods, as micrograd's ``x.tanh()``: each applies its row of the table.
    abs = __abs__
    exp = _method(ops.exp, "``e ** self``.")
    log = _method(ops.log, "Natural logarithm; ``-inf`` at 0, ``nan`` below.")
    log1p = _method(ops.log1p, "``log(1 + self)``, accurate when ``self`` is tiny (as ``torch.log1p``).")
    sqrt = _method(ops.sqrt, "Square root; ``nan`` below 0.")
    tanh = _method(ops.tanh, "Hyperbolic tangent.")
    sigmoid = _method(ops.sigmoid, "Logistic sigmoid ``1 / (1 + e**-self)``.")
    relu = _method(ops.relu, "``max(self, 0)``; the derivative at 0 is 0 (as PyTorch).")
    sin = _method(ops.sin, "Sine (radians).")
    cos = _method(ops.cos, "Cosine (radians).")

    # micrograd's names, for the lecture's code: its parents, its op, its own chain-rule step.
    @property
    def _prev(self) -> set[Value]: return set(self.parents)

    @property
    def _op(self) -> str: return self.op.symbol if self.op is not None else ""

    def _backward(self) -> None:
        """This node's own step of the chain rule, as micrograd's: each parent's ``grad`` gets
        ``self.grad × local derivative`` added. Nothing else is touched."""
        if self.op is not None:
            parents = self.parents
            for parent, d in zip(parents, self.op.derivative(*[p.data for p in parents], self.data)):
                parent.grad += self.grad * d

    # Comparisons look at data and return bool, so sorted(), max() and min() work on Values.
    # While engine.trace runs a function, each is also recorded as a guard of its program.
    def __lt__(self, other: Operand) -> bool: return compared("<", self, other, self.data < _data(other))
    def __le__(self, other: Operand) -> bool: return compared("<=", self, other, self.data <= _data(other))
    def __gt__(self, other: Operand) -> bool: return compared(">", self, other, self.data > _data(other))
    def __ge__(self, other: Operand) -> bool: return compared(">=", self, other, self.data >= _data(other))

    def __bool__(self) -> bool:
        """``data != 0``, as ``bool(torch.tensor(x))``; ``if value:`` branches on the number."""
        return compared("!=", self, 0.0, self.data != 0.0)

    __hash__ = object.__hash__  # identity, stated because the class defines comparisons
    __array_ufunc__ = None  # numpy: ``array * value`` is refused by Value, not made an array of Values

    def __float__(self) -> float:
        if state.recorder is not None:
            raise TracingError("float() of a traced Value would bake its number into the program (math.* "
                               "calls float()); use the Value's own ops (x.exp(), ...)")
        if state.derivative_of is not None:
            raise OpError(f"op {state.derivative_of}: its derivative calls float() on a Value (math.* does) "
                          f"under backward(create_graph=True); write it with engine.cos, engine.exp, ...")
        return self.data

    def detach(self) -> Value:
        """A new leaf with the same data and label, cut off from the graph (``torch.Tensor.detach``).
        Raises ``TracingError`` inside a traced function (the number would be baked in)."""
        if state.recorder is not None:
            raise TracingError("detach() inside a traced function: the detached number would be baked "
                               "into the program, wrong for other inputs; trace without it")
        return Value(self.data, self.label)

    @staticmethod
    def _apply_op(fn: Any, operands: tuple[Any, ...]) -> Any:
        """An op called on a Value records a node; a helper (a comparison) reads the numbers."""
        if not isinstance(fn, ops.Op):
            return fn.on_floats(*[_data(x) for x in operands])
        parents = tuple([x if isinstance(x, Value) else Value(x) for x in operands])
        data = fn.forward(*[p.data for p in parents])
        return _node(fn, data, *parents) if 0 < len(parents) <= 2 and fn.arity else _node(fn, data, parents)

    def backward(self, gradient: Operand = 1.0, create_graph: bool = False) -> None:
        """Compute ∂self/∂node for every node of the graph below ``self``, into ``node.grad``:
        the chain rule in reverse topological order (see :func:`_backward_plain`). Leaves'
        gradients accumulate across calls (as in PyTorch); interior nodes' are recomputed.

        Args:
            gradient: ∂L/∂self, the upstream gradient to start from (1.0 for a loss).
            create_graph: record the gradients' computation: each ``.grad`` a Value, to differentiate.

        Raises:
            TypeError: ``gradient`` is not a number or a Value. TracingError: inside ``engine.trace``.
            OpError: under ``create_graph``, an op of yours whose derivative uses ``math``.
            AnomalyError: inside ``engine.detect_anomaly``, a gradient made nan or inf, or a graph changed.
        """
        if state.recorder is not None:
            raise TracingError("backward() inside a traced function bakes gradients in; trace the forward")
        gradient = gradient if isinstance(gradient, Value) else to_float(gradient)
        order = topological_order(self) if state.anomaly is None else state.anomaly.order(self)
        earlier = []  # leaves' gradients from earlier calls: this call's are added to them at the end
        for node in order:
            if node.op is None and not (type(node.grad) is float and node.grad == 0.0):
                earlier.append((node, node.grad))
            node.grad = 0.0
        if create_graph:
            _backward_recorded(order, self, gradient)
        elif state.anomaly is not None:  # inside engine.detect_anomaly: the checked loop (engine/anomaly.py)
            state.anomaly.backward(order, self, _data(gradient))
        else:
            _backward_floats(order, self, _data(gradient))
        for leaf, grad in earlier:  # as PyTorch: .grad += (this call's gradient), so that a
            leaf.grad = grad + leaf.grad  # second call gives exactly twice the first


def _data(x: Operand) -> float:  # the number behind an operand
    return x.data if isinstance(x, Value) else x


def _node(op: ops.Op, data: float, a: Any, b: Value | None = None) -> Value:
    """The node ``op(a, b)`` (``op(*a)`` for a tuple ``a``) holding ``data``; a leaf under ``no_grad``.
    (Speed: ``object.__new__`` and plain stores are twice as fast as ``Value(data)``.)"""
    out = _new_value(Value)
    out.data, out.grad, out.label = data, 0.0, None
    if not open_contexts.count:  # (speed: no no_grad, trace or detect_anomaly open: see grad_mode.py)
        out.op, out._a, out._b = op, a, b
    elif state.grad_enabled:
        out.op, out._a, out._b = op, a, b
        if state.anomaly is not None:  # inside engine.detect_anomaly: remember where it was made
            state.anomaly.record(out)
    elif state.recorder is not None:
        raise TracingError("no_grad() inside a traced function: its results would be numbers baked "
                           "into the program, wrong for other inputs; trace without it")
    else:
        out.op, out._a, out._b = None, None, None
    return out


def _unary(op: ops.Op, a: Value) -> Value:
    return _node(op, op.forward(a.data), a)


def _binary(op: ops.Op, a: Operand, b: Operand) -> Value:
    if not isinstance(a, Value):  # a number operand becomes a constant leaf
        a = Value(a)
    if not isinstance(b, Value):
        b = Value(b)
    return _node(op, op.forward(a.data, b.data), a, b)


# ---- The backward pass: topological order, then each node's local step of the chain rule ----


def topological_order(*roots: Value) -> list[Value]:
    """Every node the ``roots`` depend on, once each, parents before children: one depth-first
    search for all roots, with a stack, not recursion (a chain of a million nodes works)."""
    order: list[Value] = []
    visited: set[Value] = set()
    for root in (r for r in roots if r not in visited):
        visited.add(root)
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
    """The backward walk: ``(node, parents, local derivatives)`` for each interior node, in reverse
    topological order (after every node that uses it); the local derivatives are the op
    table's, on the numbers. The stepper and gradcheck's bounds walk the chain rule with it."""
    for node in reversed(order):
        op = node.op
        if op is not None:
            parents = node.parents
            yield node, parents, op.derivative(*[p.data for p in parents], node.data)


def _backward_plain(order: list[Value], root: Value, gradient: float) -> None:
    """The chain rule on floats, as the lecture writes it: in reverse topological order, each
    node takes its own step (:meth:`Value._backward`)."""
    root.grad = gradient
    for node in reversed(order):
        node._backward()


def _backward_floats(order: list[Value], root: Value, gradient: float) -> None:
    """Speed: :func:`_backward_plain` with each node's step inlined and unrolled for one and two
    parents (no method call, no zip). The same arithmetic in the same order: bit for bit the
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
    root.grad = gradient if isinstance(gradient, Value) else Value(gradient)
    for node in reversed(order):
        op = node.op
        if op is None:
            continue
        state.derivative_of = None if op.builtin else op.name  # (float() of a Value then says which op)
        try:
            local = op.derivative(*node.parents, node)
        finally:
            state.derivative_of = None
        for parent, d in zip(node.parents, local):
            parent.grad = parent.grad + node.grad * d


def hessian_of(root: Value, leaves: list[Value]) -> list[list[float]]:
    """The second derivatives ``H[i][j] = ∂²root/∂leafᵢ∂leafⱼ``: ``backward(create_graph=True)``
    records each gradient as a graph; a backward pass through gradient ``i`` gives row ``i``.
    The leaves' ``.grad`` end at 0.0. Raises ``TypeError`` if ``root`` is not a Value."""
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
