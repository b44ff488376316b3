"""The report of a gradient check: its rows, its whole-pass checks and its blame, as text and
as HTML for notebooks (:class:`GradcheckReport`, made by :func:`engine.gradcheck`)."""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from typing import Any

from engine.value import Value, node_names


@dataclass
class Row:
    """One checked derivative: an input's gradient (order 1) or a Hessian entry (order 2).

    Attributes:
        name: the input's label (``"x"``), or ``"x, y"`` for the second derivative ∂²f/∂x∂y.
        value: the input's value (for order 2, the first input's).
        engine: what the engine computed. reference: what the reference says.
        error: ``|engine − reference|``. tolerance: the largest error accepted here.
        status: ``"ok"``, ``"FAIL"``, ``"kink"`` (not differentiable here: the one-sided
            derivatives differ, and the engine's value lies between them), or ``"skipped"``
            (the function or the reference is not finite here).
        order: 1 or 2.
        note: why a row is a kink or skipped.
    """

    name: str
    value: float
    engine: float
    reference: float
    error: float
    tolerance: float
    status: str
    order: int = 1
    note: str = ""


@dataclass
class Check:
    """A property of the backward pass as a whole (``ok`` with a sentence saying what was seen)."""

    name: str
    ok: bool
    detail: str


@dataclass
class Blame:
    """Where a failure comes from.

    Attributes:
        message: the sentence for people.
        kind: ``"local derivative"`` (an op's rule is wrong at this node), ``"upstream"`` (the
            backward pass ignores or misuses the upstream gradient at this op),
            ``"second order"`` (an op's rule is wrong on the ``create_graph`` path),
            ``"accumulation"`` (the backward pass replaces instead of adding into a parent),
            or ``"backward pass"`` (every op is right; the walk itself is wrong).
        op: the op's name for the first three kinds, else None.
        node: ``%k`` (the node's position in topological order) or its label.
    """

    message: str
    kind: str
    op: str | None = None
    node: str | None = None

    @property
    def culprit(self) -> str:
        """The op to blame, or ``"backward pass"`` when no op is."""
        return self.op or "backward pass"


@dataclass
class GradcheckReport:
    """The result of :func:`gradcheck`: every row, every whole-pass check, and the blame.

    ``ok`` is True when no row failed and every check passed. ``str(report)`` is a readable
    table; in a notebook the report shows as an HTML table.
    """

    expression: str
    reference: str
    order: int
    rows: list[Row] = field(default_factory=list)
    checks: list[Check] = field(default_factory=list)
    blames: list[Blame] = field(default_factory=list)
    graph: Value | None = field(default=None, repr=False)  # the checked graph, for drawing()

    def drawing(self) -> Any:
        """The checked graph drawn (:func:`engine.draw.draw`), the blamed node outlined in red.

        Raises:
            ImportError: the graphviz package is not installed.
        """
        from engine.draw import draw

        if self.graph is None:
            raise ValueError("this report has no graph to draw")
        names = node_names(self.graph)
        blamed = {self.blames[0].node} if self.blames else set()
        return draw(self.graph, highlight=[n for n, name in names.items() if name in blamed],
                    title=f"gradcheck of {self.expression}")

    @property
    def ok(self) -> bool:
        """No row failed, every check passed, and at least one row was checked (a report whose
        every row was skipped has checked nothing and is not OK)."""
        checked = any(r.status in ("ok", "kink") for r in self.rows)
        return checked and all(r.status != "FAIL" for r in self.rows) and all(c.ok for c in self.checks)

    @property
    def failed_orders(self) -> list[int]:
        """The derivative orders that have a failing row (``[]``, ``[1]``, ``[2]`` or ``[1, 2]``)."""
        return sorted({r.order for r in self.rows if r.status == "FAIL"})

    def raise_if_failed(self) -> GradcheckReport:
        """Raise ``AssertionError`` carrying the whole report if anything failed; else return self."""
        if not self.ok:
            raise AssertionError("\n" + str(self))
        return self

    def summary(self) -> str:
        """One line: the verdict and the first blame."""
        if self.ok:
            counts = {status: sum(r.status == status for r in self.rows)
                      for status in ("ok", "kink", "skipped")}
            parts = [f"{counts['ok']} derivative{'s agree' if counts['ok'] != 1 else ' agrees'}"
                     if counts["ok"] or not counts["kink"] else "no derivative to compare"]
            if counts["kink"]:
                parts.append(f"{counts['kink']} at a kink (not differentiable here)")
            if counts["skipped"]:
                parts.append(f"{counts['skipped']} skipped ({self._skip_reason() or 'not finite'})")
            return "OK: " + ", ".join(parts)
        failed = [r for r in self.rows if r.status == "FAIL"]
        if not failed and all(r.status == "skipped" for r in self.rows):
            return ("NOTHING CHECKED: " + (self._skip_reason()
                                           or "no reference could be computed for any derivative here"))
        parts = []
        if failed:
            orders = " and ".join(("first", "second")[o - 1] for o in self.failed_orders)
            parts.append(f"{len(failed)} of {len(self.rows)} derivatives disagree ({orders} order)")
        parts += [f"check failed: {c.name}" for c in self.checks if not c.ok]
        blame = f"; blame: {self.blames[0].message}" if self.blames else ""
        return "FAILED: " + "; ".join(parts) + blame

    def _skip_reason(self) -> str:
        """The exact reference's "could not converge ..." note of a skipped row, if any."""
        return next((r.note for r in self.rows
                     if r.status == "skipped" and r.note.startswith("reference could not converge")), "")

    def __str__(self) -> str:
        lines = [f"gradcheck of {self.expression} (order {self.order}, reference: {self.reference})"]
        header = ("derivative", "value", "engine", "reference", "error", "tolerance", "")
        table = [header] + [
            (_row_name(r), _num(r.value),
             _num(r.engine), _num(r.reference), _num(r.error, 2), _num(r.tolerance, 2),
             r.status + (f" ({r.note})" if r.note else ""))
            for r in self.rows]
        widths = [max(len(row[k]) for row in table) for k in range(len(header))]
        lines += ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in table]
        for check in self.checks:
            lines.append(f"check {'ok  ' if check.ok else 'FAIL'} {check.name}: {check.detail}")
        for blame in self.blames:
            lines.append(f"blame: {blame.message}")
        lines.append("result: " + self.summary())
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        colour = {"ok": "#1a7f37", "FAIL": "#cf222e", "kink": "#9a6700", "skipped": "#57606a"}
        cells = "".join(f"<th>{h}</th>" for h in ("derivative", "value", "engine", "reference", "error",
                                                    "tolerance", "status"))
        rows = "".join(
            "<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in (
                _row_name(r), _num(r.value), _num(r.engine),
                _num(r.reference), _num(r.error, 2), _num(r.tolerance, 2)))
            + f"<td style='color:{colour[r.status]}'>{html.escape(r.status)}"
              f"{html.escape(' (' + r.note + ')' if r.note else '')}</td></tr>"
            for r in self.rows)
        extra = "".join(f"<li>{'✓' if c.ok else '✗'} {html.escape(c.name)}: {html.escape(c.detail)}</li>"
                        for c in self.checks)
        extra += "".join(f"<li><b>blame</b>: {html.escape(b.message)}</li>" for b in self.blames)
        verdict = f"<b style='color:{'#1a7f37' if self.ok else '#cf222e'}'>{html.escape(self.summary())}</b>"
        picture = ""
        if not self.ok and self.graph is not None:  # the graph with the blamed node, where drawing works
            try:
                from engine.draw import render

                svg = render(self.drawing().source, "svg").decode("utf-8")
                picture = svg[svg.find("<svg"):]
            except (ImportError, RuntimeError):
                picture = ""
        return (f"<div><p>gradcheck of <code>{html.escape(self.expression)}</code> (order {self.order}, "
                f"reference: {html.escape(self.reference)})</p><table><tr>{cells}</tr>{rows}</table>"
                f"<ul>{extra}</ul><p>{verdict}</p>{picture}</div>")


def _row_name(r: Row) -> str:
    return ("∂²f/∂" + r.name.replace(", ", "∂")) if r.order == 2 else f"∂f/∂{r.name}"


def _num(x: float, digits: int = 12) -> str:
    return f"{x:.{digits}g}" if isinstance(x, float) else str(x)
