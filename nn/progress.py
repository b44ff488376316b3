"""Progress bars: tqdm's, when it is installed and someone is watching (a terminal or Jupyter).

A log file or a pipe gets no bar frames, and without tqdm nothing is shown: tqdm is an
optional extra (``pip install valuegrad[plot]``), never needed to load data or train.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from typing import Any, TypeVar

T = TypeVar("T")


def watched() -> bool:
    """Whether a bar would be seen: stderr is a terminal, or this runs in a Jupyter kernel."""
    return sys.stderr.isatty() or "ipykernel" in sys.modules


def progress_bar(iterable: Iterable[T], enabled: bool = True, **options: Any) -> Iterable[T]:
    """``iterable`` wrapped in a ``tqdm.auto.tqdm`` bar on stderr, or ``iterable`` itself when
    ``enabled`` is false, stderr is not :func:`watched`, or tqdm is not installed.

    Args:
        iterable: what to iterate over (the bar counts its items).
        enabled: false for no bar (e.g. ``--no-progress``).
        options: passed to tqdm, e.g. ``total``, ``unit``, ``desc``, ``leave=False`` (the bar
            disappears when done), ``delay`` (seconds before it appears, so quick work shows
            nothing).

    Returns:
        An iterable of the same items; a tqdm bar has ``close()``, so close it when stopping
        early (``contextlib.closing``).
    """
    if not enabled or not watched():
        return iterable
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return iterable
    return tqdm(iterable, dynamic_ncols=True, **options)
