"""The error of the expression parser (:mod:`engine.parse`): a message with the column and a
caret line under the part of the expression at fault."""

from __future__ import annotations

import difflib

_SHOWN = 80  # the most characters of the expression echoed in an error message



class ExpressionError(ValueError):
    """An expression that cannot be parsed or is not allowed; the message points at the part.

    ``str(error)`` is the whole message: a first line giving the reason (and the column when
    the problem is in the text), then the expression and a caret line under the offending
    part, e.g.::

        expression error at column 5: unknown name 'foo' (known: x, y; functions: abs, ...)
          log(foo) * sin(y)
              ^^^

    Attributes:
        reason (str): the first line without the prefix ("unknown name 'foo' (...)").
        text (str): the expression as given.
        column (int | None): 1-based column of the first offending character; ``None`` when
            the problem is not in the text (a bad entry of ``values``).
        end_column (int | None): 1-based column just past the offending part.
    """

    def __init__(self, reason: str, text: str = "", column: int | None = None,
                 end_column: int | None = None) -> None:
        self.reason = reason
        self.text = text
        self.column = column
        self.end_column = end_column
        super().__init__(format_message(reason, text, column, end_column))



def suggest(name: str, candidates: list[str]) -> str:
    close = difflib.get_close_matches(name, candidates, n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def format_message(reason: str, text: str, column: int | None, end_column: int | None) -> str:
    """The error's message: the reason, then (with a column) the text and a caret line.

    Text longer than 80 characters is shown as a window around the column, cut with "...".
    """
    if column is None:
        return f"expression error: {reason}"
    start, stop = 0, len(text)
    if stop > _SHOWN:
        start = max(0, min(column - 1 - _SHOWN // 3, stop - _SHOWN))
        stop = min(stop, start + _SHOWN)
    prefix = "..." if start > 0 else ""
    suffix = "..." if stop < len(text) else ""
    end = end_column if end_column is not None and end_column > column else column + 1
    first = column - 1  # 0-based
    last = stop + 1 if stop == len(text) else stop  # a caret may sit just past the text's end
    width = max(1, min(end - 1, last) - first)
    carets = " " * (len(prefix) + first - start) + "^" * width
    return (f"expression error at column {column}: {reason}\n"
            f"  {prefix}{text[start:stop]}{suffix}\n"
            f"  {carets}")
