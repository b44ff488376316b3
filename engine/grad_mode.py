"""Whether ops record the graph (:class:`no_grad`), and the one hook tracing uses (:func:`recording`).

The state is one object, :data:`state`, read by :mod:`engine.value` whenever it makes a node.
It is per thread, as PyTorch's grad mode: ``no_grad`` or tracing in one thread changes nothing
in another, and a new thread starts with recording on and no tracer.
"""

from __future__ import annotations

import contextlib
import functools
import threading
from collections.abc import Callable, Iterator
from typing import Any


class _State(threading.local):
    """What :mod:`engine.value` consults when it makes a node, one per thread.

    The class attributes are each thread's starting values: a thread reads them until it sets
    its own (speed: no ``__init__`` runs per thread, and a read is one attribute lookup).

    Attributes:
        grad_enabled (bool): ops record nodes (False inside :class:`no_grad`).
        recorder: while :func:`engine.trace` runs a function, what it records beyond the graph.
        derivative_of (str | None): the name of an op of yours whose derivative is being
            recorded (``backward(create_graph=True)``), so that ``float()`` can name it.
        anomaly: inside :class:`engine.detect_anomaly`, its side table (:mod:`engine.anomaly`).
    """

    grad_enabled: bool = True
    recorder: Any = None
    derivative_of: str | None = None
    anomaly: Any = None


state = _State()


class _OpenContexts:
    """**Speed trick:** how many ``no_grad``, tracing and ``detect_anomaly`` blocks are open, in
    all threads together. While none is (nearly always), :mod:`engine.value` makes a node
    without reading the thread-local :data:`state`: a ``threading.local`` read costs about a
    sixth of making a node (forward of ``acc * x + x``: 0.26 µs an op with a plain global
    state, 0.335 with two thread-local reads a node, 0.27 with this count). The plain version
    reads ``state`` for every node; the answer is the same, since with no block open anywhere
    every thread's state is the starting one."""

    def __init__(self) -> None:
        self.count = 0
        self._lock = threading.Lock()  # (+= on an attribute is not atomic across threads)

    def opened(self) -> None:
        with self._lock:
            self.count += 1

    def closed(self) -> None:
        with self._lock:
            self.count -= 1


open_contexts = _OpenContexts()


class TracingError(RuntimeError):
    """Something a traced function did cannot be captured in a program (see :mod:`engine.tracing`)."""


@contextlib.contextmanager
def recording(recorder: Any) -> Iterator[None]:
    """Recording on, with ``recorder`` told of what the graph alone does not show: each leaf
    made (``recorder.constants.add(value)``) and each comparison on a Value
    (``recorder.comparisons.append((relation, a, b, outcome))``). The one hook
    :func:`engine.trace` uses."""
    saved = state.recorder, state.grad_enabled
    open_contexts.opened()
    state.recorder, state.grad_enabled = recorder, True
    try:
        yield
    finally:
        state.recorder, state.grad_enabled = saved
        open_contexts.closed()


def compared(relation: str, a: Any, b: Any, outcome: bool) -> bool:
    """Return ``outcome`` of the comparison ``a relation b`` on a Value, told to the recorder
    when tracing (the program's path depends on it)."""
    if state.recorder is not None:
        state.recorder.comparisons.append((relation, a, b, outcome))
    return outcome


class Block:
    """A context manager that is also a decorator: ``@block()`` runs the function inside a
    fresh ``block()`` per call (an instance keeps what to restore, so it is one block at a
    time). Subclasses: :class:`no_grad`, :class:`engine.detect_anomaly`."""

    def __enter__(self) -> None:
        raise NotImplementedError

    def __exit__(self, *exc: object) -> None:
        raise NotImplementedError

    def __call__(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with type(self)():
                return fn(*args, **kwargs)

        return wrapper


class no_grad(Block):
    """Context manager (and decorator) inside which ops record nothing: results are leaves.

    Use it for optimizer steps and evaluation, as ``torch.no_grad``. Thread-local, as
    PyTorch's: it switches recording off in the thread that entered it only. One instance is
    one block at a time (it keeps the mode to restore); ``with no_grad():`` makes a new one.
    """

    def __enter__(self) -> None:
        self._previous = state.grad_enabled
        open_contexts.opened()
        state.grad_enabled = False

    def __exit__(self, *exc: object) -> None:
        state.grad_enabled = self._previous
        open_contexts.closed()



def is_grad_enabled() -> bool:
    """True unless inside :class:`no_grad` (in this thread)."""
    return state.grad_enabled
