"""Speed trick: Python's cyclic garbage collector paused while a program is traced or lowered.

Tracing makes a Value per op and then an Instruction per node, all alive until it ends. The
cyclic collector runs after every few hundred allocations, and each full collection walks every
live object, the growing graph included, so the time per traced instruction grew with the
program: 4.6 µs at 2.5k instructions, 9.1 µs at 100k (``make bench``, scaling table). With
the collector paused it stays flat. Nothing made while tracing is garbage before the trace
ends; the collector runs again afterwards as usual.

The plain version is the same code without :func:`gc_paused`.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def gc_paused() -> Iterator[None]:
    """Disable the cyclic garbage collector inside the block, and enable it again after it
    if it was enabled before (reference counting still frees what is no longer used)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
