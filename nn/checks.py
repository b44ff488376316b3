"""Checking values read back from files (model files, checkpoints, optimizer states) and the
paths a command writes to.

Each checker takes a field's dotted name and its value, returns the value as the type the
caller uses, and raises :class:`FieldError` naming the field and what was expected
(``extra.optimizer.steps: expected a whole number >= 0, got -3``). A file is checked field by
field before anything is built from it or written, so a damaged file is refused whole.
"""

from __future__ import annotations

import math
import numbers
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

MISSING: Any = object()
"""What a checker is given for a field that is not in the file (``mapping.get(key, MISSING)``)."""


class FieldError(ValueError, TypeError):
    """A field of a file does not hold what it should. Both a ``ValueError`` and a
    ``TypeError`` (a wrong type and a wrong value are refused alike)."""

    def __init__(self, field: str, expected: str, got: Any) -> None:
        self.field, self.expected, self.got = field, expected, got
        super().__init__(f"{field}: expected {expected}, got {_shown(got)}")

    def under(self, prefix: str) -> FieldError:
        """The same error for the field seen from one level up (``prefix.field``)."""
        return FieldError(f"{prefix}.{self.field}", self.expected, self.got)


def _shown(value: Any) -> str:
    """A short description of ``value``: its repr cut to 40 characters, never a whole file."""
    if value is MISSING:
        return "nothing (the field is missing)"
    if isinstance(value, (list, tuple, dict)):
        return f"a {type(value).__name__} of {len(value)}"
    if value is None:
        return "null"
    text = repr(value)  # (repr escapes control characters)
    if not isinstance(value, numbers.Real) or isinstance(value, bool):
        text = f"{type(value).__name__} {text}"
    return text if len(text) <= 40 else text[:37] + "..."


def real(field: str, value: Any, low: float = -math.inf, high: float = math.inf, *,
         low_open: bool = False, high_open: bool = False) -> float:
    """``value`` as a float: a finite int or float (not a bool) in the range given."""
    left, right = "(" if low_open else "[", ")" if high_open else "]"
    expected = "a finite number" + ("" if (low, high) == (-math.inf, math.inf) else
                                    f" in {left}{low:g}, {high:g}{right}")
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise FieldError(field, expected, value)
    x = float(value) if not isinstance(value, int) or abs(value) < 2**1000 else math.inf
    if not math.isfinite(x) or x < low or x > high or (low_open and x == low) or (high_open and x == high):
        raise FieldError(field, expected, value)
    return x


def whole(field: str, value: Any, low: int = 0, high: int | None = None) -> int:
    """``value`` as an int: a whole number (not a bool, not ``2.0``) in ``[low, high]``."""
    expected = f"a whole number >= {low}" + ("" if high is None else f" and <= {high}")
    if isinstance(value, bool) or not isinstance(value, int) or value < low \
            or (high is not None and value > high):
        raise FieldError(field, expected, value)
    return value


def reals(field: str, value: Any, length: int, low: float = -math.inf, *, low_open: bool = False
          ) -> list[float]:
    """``value`` as a list of ``length`` floats, each checked by :func:`real` (``field.i``)."""
    if not isinstance(value, list) or len(value) != length:
        raise FieldError(field, f"a list of {length} numbers", value)
    return [real(f"{field}.{i}", x, low, low_open=low_open) for i, x in enumerate(value)]


def boolean(field: str, value: Any) -> bool:
    """``value`` if it is ``true`` or ``false`` (not ``0``, ``1`` or ``"true"``)."""
    if not isinstance(value, bool):
        raise FieldError(field, "true or false", value)
    return value


def choice(field: str, value: Any, names: Sequence[Any]) -> Any:
    """``value`` if it is one of ``names`` (compared by type too: ``1`` is not ``True``)."""
    if not any(type(value) is type(n) and value == n for n in names):
        raise FieldError(field, "one of " + ", ".join(map(repr, names)), value)
    return value


def mapping(field: str, value: Any) -> dict[str, Any]:
    """``value`` if it is a JSON object (a dict)."""
    if not isinstance(value, dict):
        raise FieldError(field, "an object {...}", value)
    return value


def check_outputs(outputs: Sequence[tuple[str, Path, Sequence[str]]], inputs: Sequence[Path]) -> None:
    """Refuse output paths that would write over an input or over each other.

    Args:
        outputs: ``(flag, path, suffixes)`` for each file a command writes; the path's suffix
            (any case) must be one of ``suffixes``.
        inputs: the files the command reads (those that do not exist are skipped).

    Raises:
        ValueError: a wrong suffix, an output that is an input (the same file, also through a
            link), or two outputs that are the same file; the message names the flag.
    """
    seen: list[tuple[str, Path]] = []
    for flag, path, suffixes in outputs:
        if str(path) in ("", ".") or path.suffix.lower() not in suffixes:
            raise ValueError(f"{flag} must end in {' or '.join(suffixes)}, got {str(path)!r}")
        for source in inputs:
            if _same_file(path, source):
                raise ValueError(f"{flag} {path} is the input {source}; write it elsewhere")
        for other_flag, other in seen:
            if _same_file(path, other):
                raise ValueError(f"{flag} and {other_flag} name the same file {path}")
        seen.append((flag, path))


def _same_file(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)  # (follows links; hard links are one file too)
    except OSError:  # one does not exist: compare where they would be
        return os.path.abspath(a) == os.path.abspath(b)
