"""Drawing computation graphs with Graphviz, and stepping through the forward and backward pass.

    >>> from engine import Value
    >>> from engine.draw import draw
    >>> w, x, b = Value(-3.0, "w"), Value(2.0, "x"), Value(6.88, "b")
    >>> y = (w * x + b).tanh()
    >>> y.backward()
    >>> graph = draw(y)            # a graphviz.Digraph: shows inline in Jupyter
    >>> graph.save_as("neuron.svg")  # doctest: +SKIP
    >>> graph.render("neuron")       # neuron (the DOT source) and neuron.svg  # doctest: +SKIP

``draw`` takes your own micrograd-style ``Value`` class too (anything with ``data``, ``grad``,
``_prev``, ``_op`` and ``label``; see :mod:`engine.foreign`).

Each value is a box with its label, data and gradient; each op is a small ellipse with the op's
symbol from the op table (``+``, ``×``, ``tanh``, ``ReLU``, ``**2``). A value used twice is
drawn once, with two edges. Inputs and constants, parameters, and computed values are filled
differently and a legend says how. The DOT source is deterministic: nodes are named by their
position in topological order, never by ``id()``, so the same graph gives the same bytes.

Rendering needs Graphviz: a system ``dot`` when there is one, else the ``graphviz-pure``
program from PyPI (installed with valuegrad's ``draw`` extra). Building the DOT source needs
only the ``graphviz`` Python package.

Reference: micrograd's ``draw_dot`` (records for values, ellipses for ops, left to right);
the Graphviz DOT language (graphviz.org/doc/info/lang.html).
"""

from __future__ import annotations

import math
import os
import shutil
import subprocess
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from engine.atomic import write_atomic
from engine.foreign import checked_node, mirror
from engine.value import Value, node_names, topological_order

FORMATS = ("svg", "png", "dot", "gv")
_FILL = {"input": "#eeeeee", "parameter": "#fff2cc", "computed": "#ffffff"}


def _graphviz() -> Any:
    try:
        import graphviz
    except ImportError:
        raise ImportError("drawing needs the graphviz package: pip install 'valuegrad[draw]'") from None
    return graphviz


def renderer() -> str:
    """The Graphviz program used to render: ``dot`` on the PATH, else ``graphviz-pure``
    (next to this Python, as pip installs it, or on the PATH).

    Raises:
        RuntimeError: neither is installed; the message says how to install one.
    """
    candidates = [shutil.which("dot"), shutil.which("graphviz-pure"),
                  str(Path(sys.prefix) / "bin" / "graphviz-pure"),
                  str(Path(sys.executable).parent / "graphviz-pure")]
    for path in candidates:
        if path and os.access(path, os.X_OK):
            return path
    raise RuntimeError("rendering a drawing needs Graphviz: pip install graphviz-pure (or "
                       "'valuegrad[draw]'), or install your system's graphviz package (it provides 'dot')")


def render(source: str, fmt: str) -> bytes:
    """Lay out DOT ``source`` and return the image in ``fmt`` (``svg``, ``png``; ``dot``/``gv``
    give the source itself).

    Raises:
        ValueError: an unknown format. RuntimeError: no Graphviz, or Graphviz failed.
    """
    if fmt not in FORMATS:
        raise ValueError(f"unknown drawing format {fmt!r}; choose one of {', '.join(FORMATS)}")
    if fmt in ("dot", "gv"):
        return source.encode("utf-8")
    done = subprocess.run([renderer(), f"-T{fmt}"], input=source.encode("utf-8"), capture_output=True,
                          timeout=120)
    if done.returncode != 0:
        message = done.stderr.decode(errors="replace")[:500]
        raise RuntimeError(f"Graphviz could not render the drawing: {message}")
    return done.stdout


def save(source: str, path: str | os.PathLike[str]) -> Path:
    """Render DOT ``source`` to ``path``, the format taken from its suffix (``.svg``, ``.png``,
    ``.dot``); written atomically (a temporary file, then a rename). Returns the path.

    Raises:
        ValueError: a suffix that is not a known format. RuntimeError: no Graphviz.
    """
    path = Path(path)
    return write_atomic(path, render(source, path.suffix.lstrip(".").lower()))


def _number(x: Any, digits: int) -> str:
    x = x.data if isinstance(x, Value) else x
    return f"{x:.{digits}g}" if math.isfinite(x) else str(x)


def _escape(text: str) -> str:
    for ch in "\\{}|<>\"":
        text = text.replace(ch, "\\" + ch)
    return text


def _folded_exponent(node: Value) -> Value | None:
    """The exponent of ``a ** 2``: a constant that is drawn as part of the op (``**2``)."""
    if node.op is not None and node.op.name == "pow":
        exponent = node.parents[1]
        if exponent.is_leaf and exponent.label is None and exponent is not node.parents[0]:
            return exponent
    return None


def _op_symbol(node: Value) -> str:
    assert node.op is not None
    exponent = _folded_exponent(node)
    return f"**{_number(exponent.data, 6)}" if exponent is not None else node.op.symbol


def _diverging(grad: float, scale: float) -> str:
    """Blue for negative, red for positive, white for 0; stronger for larger |grad| / scale."""
    if not math.isfinite(grad) or scale <= 0:
        return "#ffffff"
    t = min(1.0, abs(grad) / scale)
    faint = int(255 - 155 * t)
    return f"#{faint:02x}{faint:02x}ff" if grad < 0 else f"#ff{faint:02x}{faint:02x}"


def draw(root: Value, *, rankdir: str = "LR", show_grad: bool = True, digits: int = 4,
         grad_colors: bool = False, highlight: Iterable[Value] = (), parameters: Iterable[Value] = (),
         max_nodes: int = 250, title: str | None = None, grads: Mapping[Value, float] | None = None,
         highlight_edges: Iterable[tuple[Value, Value]] = (),
         groups: Mapping[Value, tuple[str, ...]] | None = None, collapse: int | None = None) -> Any:
    """Draw the graph that ``root`` depends on.

    Args:
        root: the output Value.
        rankdir: ``"LR"`` (left to right, default) or ``"TB"`` (top to bottom).
        show_grad: show each value's ``grad`` (run ``backward()`` first).
        digits: significant digits of data and gradients.
        grad_colors: fill values by the sign and size of their gradient (blue negative, red
            positive, white 0, relative to the largest |grad|; the legend gives the scale).
        highlight: Values to draw with a thick red border (e.g. the node a check blames).
        parameters: leaves to draw as parameters (e.g. ``model.parameters()``); other labelled
            leaves are drawn as inputs.
        max_nodes: the most values drawn; a larger graph keeps the ``max_nodes`` values
            nearest the output and says how many it left out.
        title: a caption above the drawing.
        grads: gradients to show instead of each node's ``.grad`` (a frame of
            :func:`engine.steps.backward_steps`); nodes missing from it show 0.
        highlight_edges: ``(parent, child)`` pairs whose edge into the child's op is drawn thick
            and red (the edges carrying gradient in a backward step).
        groups: ``{node: (outer group, inner group, ...)}``: nested clusters to draw the nodes in
            (``nn.module.graph_groups`` gives an MLP's layers and neurons).
        collapse: draw each group at this depth (0: outermost) as one box showing its output
            values, with its inputs and outputs, instead of its nodes. With ``groups`` given,
            a graph with more than ``max_nodes`` values is collapsed automatically (innermost
            depth first) and the title says so.

    Returns:
        A ``Drawing`` (a ``graphviz.Digraph``, format ``svg``): ``.source`` is the DOT text, it
        shows inline in Jupyter, ``.save_as(path)`` writes SVG, PNG or DOT, and ``.render()``
        and ``.pipe()`` work as graphviz's, all without a system Graphviz (see :func:`renderer`).

    Raises:
        ValueError: an unknown ``rankdir``, ``digits < 1`` or ``max_nodes < 1``.
        ImportError: the graphviz package is not installed.
    """
    if not isinstance(root, Value):  # your own micrograd-style class: drawn from its mirror
        root = mirror(checked_node(root, "draw"))[0]
    if rankdir not in ("LR", "TB"):
        raise ValueError(f"rankdir must be 'LR' or 'TB', got {rankdir!r}")
    if digits < 1 or max_nodes < 1:
        raise ValueError("digits and max_nodes must be >= 1")
    names = node_names(root)  # label or %k: the names captions and gradcheck reports use
    order = topological_order(root)
    folded = {e for e in map(_folded_exponent, order) if e is not None}
    order = [node for node in order if node not in folded]
    groups = dict(groups or {})
    depth = max((len(g) for g in groups.values()), default=0)
    if collapse is None and groups and len(order) > max_nodes:  # too big: collapse, innermost first
        for level in range(depth - 1, -1, -1):
            if _collapsed_size(order, groups, level) <= max_nodes or level == 0:
                collapse = level
                title = (title + ": " if title else "") + f"collapsed to depth {level} ({len(order)} values)"
                break
    if collapse is not None:
        return _draw_collapsed(root, order, groups, collapse, names, rankdir, digits, title, show_grad)
    shown = order[-max_nodes:]
    index = {node: k for k, node in enumerate(order)}
    visible = set(shown)
    params = set(parameters)
    marked = set(highlight)
    def _grad(node: Value) -> float:
        return float(grads.get(node, 0.0)) if grads is not None else _grad_of(node)

    hot_edges = set(highlight_edges)
    scale = max((abs(_grad(n)) for n in shown if math.isfinite(_grad(n))), default=0.0)

    graph = _new_graph(rankdir, title, nodesep="0.25", ranksep="0.35")
    clusters: dict[tuple[str, ...], Any] = {}

    def target(node: Value) -> Any:  # the (nested) cluster a node is drawn in, or the graph
        path = groups.get(node, ())
        return clusters[path] if path else graph

    _open_clusters(graph, clusters, {groups[n] for n in shown if n in groups})
    for node in shown:
        k = index[node]
        where = target(node)
        kind = ("parameter" if node in params else "input") if node.op is None else "computed"
        fields = [_escape(names[node])]
        fields.append(f"data {_number(node.data, digits)}")
        if show_grad:
            fields.append(f"grad {_number(_grad(node), digits)}")
        fill = _diverging(_grad(node), scale) if grad_colors else _FILL[kind]
        attrs = {"shape": "record", "style": "filled" + (",bold" if node in marked else ""),
                 "fillcolor": fill, "label": "{ " + " | ".join(fields) + " }"}
        if kind == "parameter" and not grad_colors:
            attrs["style"] += ",rounded"
        if node in marked:
            attrs.update(color="#cf222e", penwidth="3")
        where.node(f"v{k}", **attrs)
        if node.op is not None:
            where.node(f"o{k}", label=_escape(_op_symbol(node)), shape="ellipse", style="filled",
                       fillcolor="#dde8f5", width="0.3", height="0.3", margin="0.02")
            graph.edge(f"o{k}", f"v{k}")
            for parent in node.parents:
                if parent in visible:
                    hot = {"color": "#cf222e", "penwidth": "2.5"} if (parent, node) in hot_edges else {}
                    graph.edge(f"v{index[parent]}", f"o{k}", **hot)
    _close_clusters(graph, clusters)
    hidden = len(order) - len(shown)
    _legend(graph, grad_colors, scale, hidden, digits)
    return graph


def _open_clusters(graph: Any, clusters: dict[tuple[str, ...], Any], paths: set[tuple[str, ...]]) -> None:
    """A graphviz subgraph per group path and every prefix of it (nested clusters)."""
    graphviz = _graphviz()
    for path in sorted({p[:i] for p in paths for i in range(1, len(p) + 1)}, key=lambda p: (len(p), p)):
        clusters[path] = graphviz.Digraph(name=f"cluster_{len(clusters)}",
                                          graph_attr={"label": path[-1], "style": "rounded,dashed",
                                                      "color": "#8c959f", "fontsize": "9"})


def _close_clusters(graph: Any, clusters: dict[tuple[str, ...], Any]) -> None:
    """Nest each cluster in its parent, innermost first, then add the outermost to the graph."""
    for path in sorted(clusters, key=lambda p: (-len(p), p)):
        parent = clusters[path[:-1]] if len(path) > 1 else graph
        parent.subgraph(clusters[path])


def _collapsed_size(order: list[Value], groups: Mapping[Value, tuple[str, ...]], level: int) -> int:
    return len({groups[n][: level + 1] if len(groups.get(n, ())) > level else n for n in order})


def _draw_collapsed(root: Value, order: list[Value], groups: Mapping[Value, tuple[str, ...]], level: int,
                    names: Mapping[Value, str], rankdir: str, digits: int, title: str | None,
                    show_grad: bool) -> Any:
    """Each group at ``level`` as one box with its output values; other values as usual."""
    key = {n: groups[n][: level + 1] for n in order if len(groups.get(n, ())) > level}
    ids: dict[Any, str] = {}
    for n in order:
        ids.setdefault(key.get(n, n), f"b{len(ids)}")
    graph = _new_graph(rankdir, title, ranksep="0.4")
    consumers: dict[Value, set[Any]] = {}
    for n in order:
        for p in n.parents:
            consumers.setdefault(p, set()).add(key.get(n, n))
    drawn: set[Any] = set()
    edges: set[tuple[str, str]] = set()
    for n in order:
        box = key.get(n, n)
        if box not in drawn:
            drawn.add(box)
            if isinstance(box, tuple):
                outputs = [m for m in order if key.get(m) == box
                           and (m is root or any(c != box for c in consumers.get(m, ())))]
                lines = [box[-1]] + [f"{names[m]} = {_number(m.data, digits)}"
                                     + (f", grad {_number(_grad_of(m), digits)}" if show_grad else "")
                                     for m in outputs]
                graph.node(ids[box], label="\\n".join(lines), shape="box", style="rounded,filled",
                           fillcolor="#f6f8fa")
            else:
                fields = [_escape(names[n]), f"data {_number(n.data, digits)}"]
                if show_grad:
                    fields.append(f"grad {_number(_grad_of(n), digits)}")
                graph.node(ids[box], label="{ " + " | ".join(fields) + " }", shape="record")
        for p in n.parents:
            edge = (ids[key.get(p, p)], ids[box])
            if edge[0] != edge[1] and edge not in edges:
                edges.add(edge)
                graph.edge(*edge)
    return graph


def _new_graph(rankdir: str, title: str | None, **graph_attr: str) -> Any:
    graph = _drawing_class()(name="valuegrad", format="svg",
                             graph_attr={"rankdir": rankdir, "fontname": "Helvetica", "fontsize": "11",
                                         **graph_attr},
                             node_attr={"fontname": "Helvetica", "fontsize": "10"},
                             edge_attr={"arrowsize": "0.6"})
    if title:
        graph.attr(label=title, labelloc="t")
    return graph


def _grad_of(node: Value) -> float:
    g = node.grad
    return g.data if isinstance(g, Value) else float(g)


def _legend(graph: Any, grad_colors: bool, scale: float, hidden: int, digits: int) -> None:
    rows = ["<TR><TD COLSPAN=\"2\"><B>legend</B></TD></TR>"]
    if grad_colors:
        rows.append(f"<TR><TD BGCOLOR=\"{_diverging(-scale, scale)}\">grad −{_number(scale, digits)}</TD>"
                    f"<TD BGCOLOR=\"{_diverging(scale, scale)}\">grad +{_number(scale, digits)}</TD></TR>")
    else:
        for kind, text in (("input", "input or constant"), ("parameter", "parameter"),
                           ("computed", "computed")):
            rows.append(f"<TR><TD BGCOLOR=\"{_FILL[kind]}\"> </TD><TD ALIGN=\"LEFT\">{text}</TD></TR>")
    rows.append("<TR><TD BGCOLOR=\"#dde8f5\">op</TD><TD ALIGN=\"LEFT\">an op from the op table</TD></TR>")
    if hidden:
        rows.append(f"<TR><TD COLSPAN=\"2\">{hidden} value{'s' if hidden != 1 else ''} nearer the inputs "
                    f"not drawn (max_nodes)</TD></TR>")
    table = ("<<TABLE BORDER=\"0\" CELLBORDER=\"1\" CELLSPACING=\"0\" CELLPADDING=\"3\">"
             + "".join(rows) + "</TABLE>>")
    graph.node("legend", label=table, shape="plaintext", fontsize="9")


_DRAWING: Any = None


def _drawing_class() -> Any:
    """``Drawing``, made on first use so that importing this module needs no graphviz."""
    global _DRAWING
    if _DRAWING is None:
        graphviz = _graphviz()

        class Drawing(graphviz.Digraph):  # type: ignore[name-defined]
            """A ``graphviz.Digraph`` that renders with :func:`renderer` (a system ``dot`` or
            ``graphviz-pure``) in Jupyter and in :meth:`save_as`."""

            def save_as(self, path: str | os.PathLike[str]) -> Path:
                """Write the drawing to ``path`` (``.svg``, ``.png`` or ``.dot``), atomically."""
                return save(self.source, path)

            def pipe(self, format: str | None = None, encoding: str | None = None,  # noqa: A002
                     **_: Any) -> Any:
                """The rendered image (``format``, default ``svg``) as bytes, or text with
                ``encoding``, as ``graphviz.Digraph.pipe`` but with :func:`renderer`."""
                data = render(self.source, format or self.format or "svg")
                return data.decode(encoding) if encoding else data

            def render(self, filename: str | os.PathLike[str] | None = None,
                       directory: str | os.PathLike[str] | None = None, view: bool = False,
                       cleanup: bool = False, format: str | None = None, **_: Any) -> str:  # noqa: A002
                """Save the DOT source to ``filename`` (default ``valuegrad.gv``) and the image
                beside it as ``filename.format`` (default ``svg``), as ``graphviz.Digraph.render``
                but with :func:`renderer`; ``view`` is not supported. Returns the image's path."""
                source = Path(directory or self.directory or "") / (filename or self.filename)
                if not cleanup:
                    write_atomic(source, self.source.encode("utf-8"))
                return str(save(self.source, f"{source}.{format or self.format or 'svg'}"))

            def _repr_image_svg_xml(self) -> str:
                return render(self.source, "svg").decode("utf-8")

            def _repr_image_png(self) -> bytes:
                return render(self.source, "png")

        _DRAWING = Drawing
    return _DRAWING
