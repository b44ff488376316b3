"""Step through the backward (or forward) pass of a small graph, one drawing per step.

    >>> from engine import Value
    >>> from engine.stepper import Stepper
    >>> w, x, b = Value(-3.0, "w"), Value(2.0, "x"), Value(6.88, "b")
    >>> stepper = Stepper((w * x + b).tanh())
    >>> len(stepper)                    # the start, then one step per op node
    4
    >>> stepper.save_html("steps.html")  # doctest: +SKIP

In a notebook, a ``Stepper`` shows the drawing of its current step (``stepper.index``) with
the step's chain-rule caption: a static SVG, so it reads the same when the notebook is run
headless or viewed without a kernel. ``stepper.widget()`` adds a slider (needs ipywidgets).
``save_html(path)`` writes one self-contained page (every step as inline SVG, previous/next
buttons and the arrow keys, no network access) that any browser opens.

In each backward step the current node is outlined in red, the edges that carry its gradient
to its parents are red, and every value shows its gradient as it stands after the step.
"""

from __future__ import annotations

import html
import os
from pathlib import Path
from typing import Any

from engine.atomic import write_atomic
from engine.draw import draw, render
from engine.foreign import checked_node, mirror, own_backward_steps
from engine.steps import backward_steps, forward_steps
from engine.value import Value

_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>
body {{ font-family: Helvetica, Arial, sans-serif; margin: 1.5em; }}
.frame {{ display: none; }} .frame.current {{ display: block; }}
.caption {{ font-family: Menlo, Consolas, monospace; white-space: pre-wrap; margin: 0.6em 0; }}
button {{ font-size: 1em; margin-right: 0.5em; }}
</style></head>
<body>
<h2>{title}</h2>
<p><button id="previous">&larr; previous</button><button id="next">next &rarr;</button>
<span id="counter"></span> <small>(arrow keys work too)</small></p>
{frames}
<script>
var frames = document.querySelectorAll(".frame"), current = 0;
function show(i) {{
  current = Math.max(0, Math.min(frames.length - 1, i));
  frames.forEach(function (f, k) {{ f.classList.toggle("current", k === current); }});
  document.getElementById("counter").textContent = "step " + current + " of " + (frames.length - 1);
  document.body.dataset.step = current;
}}
document.getElementById("previous").onclick = function () {{ show(current - 1); }};
document.getElementById("next").onclick = function () {{ show(current + 1); }};
document.addEventListener("keydown", function (e) {{
  if (e.key === "ArrowRight") show(current + 1);
  if (e.key === "ArrowLeft") show(current - 1);
}});
window.onerror = function (message) {{ document.body.dataset.error = message; }};
show(0);
if (location.hash === "#selftest") {{  // used by the tests: press next twice, then previous once
  document.getElementById("next").click(); document.getElementById("next").click();
  document.getElementById("previous").click();
  document.body.dataset.selftest = "step " + current;
}}
</script>
</body></html>
"""


class Stepper:
    """The frames of a pass over ``root`` with a drawing for each.

    Args:
        root: the output Value, or a node of your own micrograd-style class: its backward pass
            is then your own, each step one call of your ``_backward()`` (see
            :func:`engine.foreign.own_backward_steps`; your gradients are left as they were).
        direction: ``"backward"`` (default) or ``"forward"``.
        index: the step shown first.
        draw_options: passed to :func:`engine.draw.draw` (e.g. ``parameters=``, ``rankdir=``).

    Raises:
        ValueError: an unknown direction.
    """

    def __init__(self, root: Any, direction: str = "backward", index: int = 0, **draw_options: Any) -> None:
        if direction not in ("backward", "forward"):
            raise ValueError(f"direction must be 'backward' or 'forward', got {direction!r}")
        self.direction = direction
        self.steps: list[Any]
        if not isinstance(root, Value) and direction == "backward":  # your own class: its own _backward()
            self.root, self.steps = own_backward_steps(checked_node(root, "Stepper"))
        else:
            self.root = root if isinstance(root, Value) else mirror(checked_node(root, "Stepper"))[0]
            steps = backward_steps if direction == "backward" else forward_steps
            self.steps = list(steps(self.root))
        self.index = index % len(self.steps) if -len(self.steps) <= index < len(self.steps) else \
            max(0, min(index, len(self.steps) - 1))  # like a list: -1 is the last step
        self.draw_options = draw_options

    def __len__(self) -> int:
        return len(self.steps)

    def drawing(self, i: int | None = None) -> Any:
        """The drawing of step ``i`` (default: the current one)."""
        step = self._step(i)
        if self.direction == "backward":
            edges = [(parent, step.node) for parent, _ in step.contributions]
            return draw(self.root, grads=step.grads, highlight=[step.node], highlight_edges=edges,
                        **self.draw_options)
        computed = {s.node for s in self.steps[: step.index + 1]}
        return draw(self.root, show_grad=False, highlight=[step.node],
                    highlight_edges=[(p, step.node) for p in step.node.parents], **self.draw_options) \
            if step.node in computed else draw(self.root, show_grad=False, **self.draw_options)

    def svg(self, i: int | None = None) -> str:
        """Step ``i`` (default: the current one) as SVG text. Raises ``RuntimeError`` without Graphviz."""
        text = render(self.drawing(i).source, "svg").decode("utf-8")
        return text[text.find("<svg"):]  # inline: without the XML prolog and doctype

    def caption(self, i: int | None = None) -> str:
        """The chain-rule text of step ``i`` (default: the current one). Raises ``IndexError``."""
        return str(self._step(i).caption)

    def _step(self, i: int | None) -> Any:
        if i is None:
            return self.steps[self.index]
        if not -len(self.steps) <= i < len(self.steps):
            raise IndexError(f"step {i} is out of range: this pass has steps 0 to {len(self.steps) - 1}")
        return self.steps[i]

    def _repr_html_(self) -> str:
        return (f"<div><p><b>{self.direction} step {self.index} of {len(self) - 1}</b></p>{self.svg()}"
                f"<pre>{html.escape(self.caption())}</pre></div>")

    def widget(self) -> Any:
        """A slider over the steps with the drawing and caption (ipywidgets).

        Raises:
            ImportError: ipywidgets is not installed.
        """
        try:
            import ipywidgets
        except ImportError:
            raise ImportError("the stepper widget needs ipywidgets: pip install ipywidgets "
                              "(without it, the Stepper still shows its current step)") from None
        view = ipywidgets.HTML(self._repr_html_())
        slider = ipywidgets.IntSlider(value=self.index, min=0, max=len(self) - 1, description="step")

        def on_change(change: dict[str, Any]) -> None:
            self.index = change["new"]
            view.value = self._repr_html_()

        slider.observe(on_change, names="value")
        return ipywidgets.VBox([slider, view])

    def save_html(self, path: str | os.PathLike[str], title: str | None = None) -> Path:
        """Write every step to one self-contained HTML page (inline SVG, no network access),
        atomically. Returns the path.

        Raises:
            RuntimeError: no Graphviz to render the steps.
        """
        title = title or f"{self.direction} pass, step by step"
        frames = "\n".join(
            f'<div class="frame" data-step="{i}"><div class="caption">{html.escape(self.caption(i))}</div>'
            f"{self.svg(i)}</div>" for i in range(len(self)))
        page = _PAGE.format(title=html.escape(title), frames=frames)
        return write_atomic(path, page.encode("utf-8"))
