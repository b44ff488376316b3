"""Grad mode and tracing are per thread, as PyTorch's grad mode: ``no_grad`` or ``engine.trace``
in one thread changes nothing in another, and a new thread starts with recording on.

Each overlap between threads is forced with a ``threading.Barrier`` or ``Event`` (no sleeps, no
timing), and each expected gradient is worked by hand in the comments.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from typing import Any

import pytest

import engine
from engine import Value, no_grad

TIMEOUT = 30  # seconds; only so that a broken test fails instead of hanging


def run_in_thread(fn: Callable[[], Any]) -> threading.Thread:
    """Start ``fn`` in a thread; an exception in it is re-raised by :func:`finish`."""
    def body() -> None:
        try:
            fn()
        except BaseException as error:  # noqa: BLE001 (handed to the main thread)
            errors.append(error)

    errors: list[BaseException] = []
    thread = threading.Thread(target=body)
    thread.errors = errors  # type: ignore[attr-defined]
    thread.start()
    return thread


def finish(*threads: threading.Thread) -> None:
    for thread in threads:
        thread.join(TIMEOUT)
        assert not thread.is_alive(), "a thread did not finish"
        for error in thread.errors:  # type: ignore[attr-defined]
            raise error


def test_overlapping_no_grad_blocks_in_two_threads_leave_recording_on() -> None:
    # A enters, B enters, A leaves, B leaves: with one shared flag, B's exit restores the False
    # that B saw on entry (A's), and recording stays off for everyone.
    a_entered, b_entered, a_left = threading.Event(), threading.Event(), threading.Event()
    seen: dict[str, bool] = {}

    def a() -> None:
        with no_grad():
            a_entered.set()
            assert b_entered.wait(TIMEOUT)
        a_left.set()

    def b() -> None:
        assert a_entered.wait(TIMEOUT)
        with no_grad():
            b_entered.set()
            assert a_left.wait(TIMEOUT)
            seen["inside"] = engine.is_grad_enabled()
        seen["after"] = engine.is_grad_enabled()

    finish(run_in_thread(a), run_in_thread(b))
    assert seen == {"inside": False, "after": True}
    assert engine.is_grad_enabled()
    x = Value(3.0, "x")
    y = x * x * x + 2 * x  # dy/dx = 3x² + 2 = 29 at x = 3
    y.backward()
    assert y.op is not None and x.grad == 29.0


def test_no_grad_in_one_thread_does_not_stop_recording_in_another() -> None:
    # The evaluating thread sits inside no_grad while the main thread builds and differentiates.
    inside, done = threading.Event(), threading.Event()
    evaluated: list[Value] = []

    def evaluate() -> None:
        with no_grad():
            inside.set()
            assert done.wait(TIMEOUT)
            evaluated.append(Value(2.0) * 5)

    thread = run_in_thread(evaluate)
    assert inside.wait(TIMEOUT)
    assert engine.is_grad_enabled()
    w = Value(-1.5, "w")
    loss = (w * 4.0 - 1.0) ** 2  # d/dw = 2(4w − 1)·4 = 8(−7) = −56 at w = −1.5
    loss.backward()
    done.set()
    finish(thread)
    assert w.grad == -56.0
    assert evaluated[0].data == 10.0 and evaluated[0].op is None  # its own block did hold


def test_a_new_thread_starts_with_recording_on() -> None:
    seen: list[bool] = []
    with no_grad():
        finish(run_in_thread(lambda: seen.append(engine.is_grad_enabled())))
    assert seen == [True]


def test_tracing_in_one_thread_does_not_record_ops_built_in_another() -> None:
    # While the main thread's traced function runs, another thread builds a graph of its own
    # (constants, no_grad, float(), backward: all refused inside a trace) and differentiates it.
    tracing, built = threading.Event(), threading.Event()
    other: dict[str, Any] = {}

    def build() -> None:
        assert tracing.wait(TIMEOUT)
        try:
            x = Value(2.0, "x")
            y = x * 3.0 + x.exp()
            with no_grad():
                other["number"] = float(y.detach() * 0.5)
            y.backward()  # dy/dx = 3 + e² at x = 2
            other["x"] = x
        finally:
            built.set()  # (on failure too, so the traced function does not wait in vain)

    def f(a: Value) -> Value:
        tracing.set()
        assert built.wait(TIMEOUT)
        return a * a  # the program: one mul, no constants from the other thread

    thread = run_in_thread(build)
    program = engine.trace(f, 1.0)
    finish(thread)
    assert other["x"].grad == 3.0 + math.exp(2.0)
    assert other["number"] == (6.0 + math.exp(2.0)) * 0.5
    assert [op.name for op in program.ops()] == ["mul"] and program.constants == {}
    replay = program([4.0])
    assert replay.outputs == [16.0] and replay.input_grads == [8.0]  # d(a²)/da = 2a


def test_the_count_of_open_blocks_returns_to_zero_after_errors_in_any_nesting() -> None:
    """The speed trick of grad_mode: with no block open anywhere, nodes are made without reading
    the thread-local state; so every block must close its count, errors included."""
    from engine.grad_mode import open_contexts

    def fails() -> None:
        with engine.no_grad(), engine.detect_anomaly(), engine.no_grad():
            raise RuntimeError("inside")

    with pytest.raises(RuntimeError):
        fails()
    with pytest.raises(engine.TracingError):
        engine.trace(lambda x: x.detach(), 1.0)
    assert open_contexts.count == 0
    x = engine.Value(3.0)
    y = x * x
    y.backward()
    assert y.op is not None and x.grad == 6.0  # recording, as a thread with no block open does
