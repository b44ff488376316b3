"""Why is my loss nan? :class:`detect_anomaly`, as ``torch.autograd.detect_anomaly``.

Inside ``with engine.detect_anomaly():``

- each node made remembers the line of your code that made it (the first frame outside the
  ``engine/`` and ``nn/`` folders) and the numbers it was made from (its own and its operands');
- ``backward()`` runs the checked loop of this module instead of the fast one: the same
  arithmetic in the same order (the same gradients, bit for bit), and the first node whose step
  of the chain rule turns finite numbers into nan or inf raises :class:`AnomalyError`, naming the
  op, its operands, the upstream gradient, the local derivative (the op table's, on the floats)
  and your line;
- ``backward()`` refuses a graph whose numbers changed after the forward pass (an optimizer step,
  ``w.data += 0.1``) with :class:`GraphChangedError`, as PyTorch's version counters do.
  (``backward(create_graph=True)`` gets this check only: its gradients are Values.)

A nan or inf that comes in (an input, a gradient given to ``backward``) is not blamed on an op:
only a step whose upstream gradient and operands are all finite is. Nor is one that lands on a
constant an op made from a plain number (the ``2.0`` of ``x ** 2.0``, whose gradient
``x**2·log x`` is nan for ``x < 0``), or on a ``detach()``-ed Value: nobody reads those
gradients, and PyTorch computes none for a Python number or a tensor without ``requires_grad``.
Outside the context nothing is recorded and nothing is checked: IEEE-754 numbers flow through
silently, as documented.

The side table. ``Value`` has ``__slots__`` without ``__weakref__`` (one slot more per node would
cost every node, in or out of the context), so the table maps ``id(node)`` to an entry holding the
node itself, which keeps the id from being reused. So as not to keep every node of a training
loop alive, each time the table has doubled, the entries whose node nothing but the table holds
are dropped (``sys.getrefcount``), newest first so that a dropped node lets its parents go too.
"""

from __future__ import annotations

import linecache
import math
import os
import sys

from engine.grad_mode import Block, open_contexts, state
from engine.value import Value, chain_rule_steps, topological_order

# Frames in these folders are valuegrad's own; the site of a node is the first frame outside them.
# (nn/ is found as engine/'s sibling by its path: engine never imports nn.)
_ENGINE_DIR = os.path.dirname(os.path.abspath(__file__))
_OWN_DIRS = (_ENGINE_DIR + os.sep, os.path.join(os.path.dirname(_ENGINE_DIR), "nn") + os.sep)

_VALUE_PY = os.path.join(_ENGINE_DIR, "value.py")  # where an op makes a number operand a constant leaf

# (node, file, line, (its data, its operands' data), positions of the operands that are constants)
Entry = tuple[Value, str, int, tuple[float, ...], tuple[int, ...]]


class AnomalyError(ArithmeticError):
    """Raised by ``backward()`` inside :class:`detect_anomaly` where a gradient first became nan
    or inf from finite numbers. The ``.grad`` fields are left as the pass left them.

    Attributes:
        node (Value): the node whose step of the chain rule gave it. op (Op): its op.
        operands (tuple[float, ...]): the op's operands. upstream (float): ∂root/∂node.
        local (float): the local derivative ∂node/∂operand of the operand whose gradient it was.
        filename (str | None), lineno (int): where your code made the node; source (str): that line.
        where (str): ``"sqrt at node %3"``; detail (str): what that step of the chain rule
            computed (the message without the site, for a program that shows its own).
    """

    def __init__(self, message: str, node: Value, filename: str | None = None, lineno: int = 0,
                 operands: tuple[float, ...] = (), upstream: float = math.nan,
                 local: float = math.nan, where: str = "", detail: str = "") -> None:
        super().__init__(message)
        self.where, self.detail = where, detail
        self.node, self.op, self.operands = node, node.op, operands
        self.upstream, self.local = upstream, local
        self.filename, self.lineno = filename, lineno
        self.source = linecache.getline(filename, lineno).strip() if filename else ""


class GraphChangedError(AnomalyError):
    """Raised by ``backward()`` inside :class:`detect_anomaly` when a number the graph was built
    from changed after the forward pass (``w.data += 0.1``, an optimizer step): the gradients
    would mix the old graph with the new number. Do the forward pass again after the change.

    Attributes: as :class:`AnomalyError` (``node`` the Value that changed, ``filename`` and
    ``lineno`` where it was made or used), and ``was``, ``now`` (float): its number then and now.
    """

    def __init__(self, message: str, node: Value, filename: str | None, lineno: int, was: float,
                 now: float) -> None:
        super().__init__(message, node, filename, lineno)
        self.was, self.now = was, now


class detect_anomaly(Block):
    """Context manager (and decorator) that records where each node is made and checks backward
    passes, as ``torch.autograd.detect_anomaly``. See :mod:`engine.anomaly`.

        >>> from engine import Value, detect_anomaly
        >>> x = Value(2.0, "x")
        >>> with detect_anomaly():  # doctest: +ELLIPSIS
        ...     y = (x - 2.0).sqrt()
        ...     (y * y).backward()
        Traceback (most recent call last):
        ...
        engine.anomaly.AnomalyError: sqrt at node %3 ...1/(2√a) = inf, times upstream gradient 0.0, gives nan

    Nested contexts share the outer one's table; leaving the outermost drops it. The mode is
    restored on leaving, also by an exception. A graph's forward and backward take about 4x
    as long inside it, and each node holds about 2.5x the bytes until the context ends
    (``benchmarks/measure_anomaly.py``): a tool for finding a bug, not for training.

    Raises (from ``backward()`` inside it): :class:`AnomalyError`, :class:`GraphChangedError`.
    """

    def __enter__(self) -> None:
        self._previous = state.anomaly
        open_contexts.opened()
        if state.anomaly is None:
            state.anomaly = _Anomaly()

    def __exit__(self, *exc: object) -> None:
        state.anomaly = self._previous
        open_contexts.closed()



def _held_only_here(entries: dict[int, Entry], key: int) -> int:
    return sys.getrefcount(entries[key][0])


# What _held_only_here counts for a node that only its entry holds (the interpreter's own
# references differ between Python versions: measured rather than assumed).
_ONLY_HERE = _held_only_here({0: (Value(0.0), "", 0, (), ())}, 0)


class _Anomaly:
    """The side table of one outermost :class:`detect_anomaly`, and the checked backward pass.
    :mod:`engine.value` calls :meth:`record` for each node it makes, :meth:`order` and
    :meth:`backward` in ``Value.backward`` (through ``engine.grad_mode.state.anomaly``)."""

    def __init__(self) -> None:
        self.entries: dict[int, Entry] = {}
        self.prune_at = 1024
        self.constants: list[Value] = []  # leaves made by engine/value.py since the last node

    def leaf(self, value: Value) -> None:
        """Note ``value``, a new leaf, if :mod:`engine.value` made it (a number operand of an op,
        or ``detach()``): a constant, whose gradient is not checked."""
        maker = sys._getframe(1).f_back  # (the caller of Value(...); None if none is Python)
        if state.grad_enabled and maker is not None and maker.f_code.co_filename == _VALUE_PY:
            self.constants.append(value)

    def record(self, node: Value) -> None:
        """Remember where ``node`` was made and its and its operands' data."""
        frame = sys._getframe(1)
        while frame is not None and frame.f_code.co_filename.startswith(_OWN_DIRS):
            frame = frame.f_back  # type: ignore[assignment]
        parents = node.parents
        numbers = (node.data, *[p.data for p in parents])
        constants = tuple([i for i, p in enumerate(parents) if p in self.constants]) if self.constants else ()
        self.constants.clear()
        if frame is None:
            self.entries[id(node)] = (node, "", 0, numbers, constants)
        else:
            self.entries[id(node)] = (node, frame.f_code.co_filename, frame.f_lineno, numbers, constants)
        if len(self.entries) >= self.prune_at:
            for key in list(reversed(self.entries)):  # newest first: children before their parents
                if _held_only_here(self.entries, key) == _ONLY_HERE:
                    del self.entries[key]
            self.prune_at = max(1024, 2 * len(self.entries))

    def order(self, root: Value) -> list[Value]:
        """``topological_order(root)``, after checking that no number the graph was made from
        has changed since. Raises :class:`GraphChangedError` naming the first that has."""
        order = topological_order(root)
        for node in order:
            entry = self.entries.get(id(node))
            if entry is None:
                continue
            for x, was in zip((node, *node.parents), entry[3]):
                now = x.data
                if now != was and not (now != now and was != was):  # (nan equals nan here)
                    raise self._changed(order, x, node, was, now)
        return order

    def _changed(self, order: list[Value], x: Value, user: Value, was: float,
                 now: float) -> GraphChangedError:
        name = _name(order, x)
        own = self.entries.get(id(x))
        if own is not None:  # an interior node: where it was made
            filename, lineno = own[1], own[2]
            where = f"{name}, made at {self._site(filename, lineno)},"
        else:  # a leaf: where it was used (leaves are not recorded when made)
            filename, lineno = self.entries[id(user)][1:3]
            where = (f"{name} (used by {user.op.name if user.op else '?'} at node {_name(order, user)}, "
                     f"{self._site(filename, lineno)})")
        return GraphChangedError(
            f"{where} changed after the forward pass: it was {was!r} when the graph was built, it is "
            f"{now!r} now (an optimizer step or .data = ... between forward and backward?); backward "
            f"would mix the old graph with the new number: do the forward pass again",
            x, filename or None, lineno, was, now)

    @staticmethod
    def _site(filename: str, lineno: int) -> str:
        if not filename:
            return "made inside valuegrad"
        source = linecache.getline(filename, lineno).strip()
        site = f"{_short(filename)}:{lineno}"
        return f"{source}, {site}" if source else site

    def backward(self, order: list[Value], root: Value, gradient: float) -> None:
        """The chain rule on floats as ``engine.value._backward_floats`` computes it (the same
        arithmetic in the same order), checking each gradient it adds to.

        Raises:
            AnomalyError: at the first node (from the root down) where an operand's gradient
                becomes nan or inf although it was finite, the node's operands are finite, and
                the upstream gradient is finite (or is not, because the node's own forward made
                nan or inf from those finite operands).
        """
        isfinite = math.isfinite
        root.grad = gradient
        for node, parents, local in chain_rule_steps(order):  # the op table's local derivatives
            upstream = node.grad
            operands = [p.data for p in parents]
            for i, (parent, d) in enumerate(zip(parents, local)):
                before = parent.grad
                parent.grad = before + upstream * d
                if not isfinite(parent.grad) and isfinite(before) and all(map(isfinite, operands)) \
                        and (isfinite(upstream) or not isfinite(node.data)) and not self._constant(node, i):
                    raise self._anomaly(order, node, operands, i, d, upstream, before)

    def _constant(self, node: Value, i: int) -> bool:
        entry = self.entries.get(id(node))
        return entry is not None and i in entry[4]

    def _anomaly(self, order: list[Value], node: Value, operands: list[float], i: int, d: float,
                 upstream: float, before: float) -> AnomalyError:
        op = node.op
        assert op is not None
        letters = ["a", "b"] if len(operands) <= 2 else [f"a{k + 1}" for k in range(len(operands))]
        formulas = op.derivative_formula.split(", ")  # "1/b, −a/b²": one per operand, when it is
        formula = f" = {formulas[i]}" if len(formulas) == len(operands) else ""
        product = upstream * d
        text = (f"{op.name}({', '.join(f'{l} = {v!r}' for l, v in zip(letters, operands))}) = {node.data!r}; "
                f"local derivative ∂/∂{letters[i]}{formula} = {d!r}, times upstream gradient {upstream!r}, "
                f"gives {product!r}")
        if math.isfinite(product):  # each term finite: their sum overflowed
            text += f", added to the gradient so far {before!r} gives {before + product!r}"
        if not math.isfinite(upstream):
            text += f" (the forward gave {node.data!r} from finite operands)"
        entry = self.entries.get(id(node))
        filename, lineno = (entry[1], entry[2]) if entry is not None else ("", 0)
        site = self._site(filename, lineno) if entry is not None else "made outside detect_anomaly"
        where = f"{op.name} at node {_name(order, node)}"
        return AnomalyError(f"{where} ({site}): {text}", node, filename or None, lineno,
                            operands=tuple(operands), upstream=upstream, local=d, where=where, detail=text)


def _name(order: list[Value], node: Value) -> str:
    """As :func:`engine.value.node_names`: its label, or ``%k`` (its place in topological order)."""
    return node.label or f"%{order.index(node)}"


def _short(filename: str) -> str:
    """``filename`` relative to the current directory when it is inside it."""
    try:
        relative = os.path.relpath(filename)
    except ValueError:  # (Windows: another drive)
        return filename
    return filename if relative.startswith(os.pardir) else relative
