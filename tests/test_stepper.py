"""The stepper: one drawing per step, a static fallback, and a self-contained HTML page that
works in a real headless browser."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from engine import Value
from engine.stepper import Stepper
from nn.cli import main


def neuron() -> tuple[Value, Value, Value, Value]:
    w, x, b = Value(-3.0, "w"), Value(2.0, "x"), Value(6.88, "b")
    return (w * x + b).tanh(), w, x, b


def test_each_step_is_drawn_with_its_node_and_edges_marked() -> None:
    y, w, _, b = neuron()
    stepper = Stepper(y, parameters=[w, b])
    assert len(stepper) == 4  # the start, then tanh, +, ×
    last = stepper.drawing(3).source
    # after the last step: ∂y/∂w = x·tanh'(0.88) = 2 · 0.501 = 1.002; the × node is outlined
    assert 'label="{ w | data -3 | grad 1.002 }"' in last
    assert last.count('color="#cf222e"') == 3  # the node and its two incoming edges
    first = stepper.drawing(0).source
    assert 'label="{ w | data -3 | grad 0 }"' in first  # nothing has flowed back yet
    assert stepper.caption(3).startswith("∂L/∂w += ∂L/∂%2 · ∂%2/∂w = 0.501 · 2 = 1.002")


def test_the_static_view_is_an_svg_of_the_current_step() -> None:
    y, *_ = neuron()
    stepper = Stepper(y, index=2)
    view = stepper._repr_html_()
    assert "backward step 2 of 3" in view and "<svg" in view and "∂L/∂%2 +=" in view


def test_the_forward_pass_too() -> None:
    y, *_ = neuron()
    stepper = Stepper(y, direction="forward")
    assert [stepper.caption(i) for i in (2, 5)] == ["%2 = mul(w, x) = mul(-3, 2) = -6",
                                                    "%5 = tanh(%4) = tanh(0.88) = 0.7064"]
    with pytest.raises(ValueError, match="direction"):
        Stepper(y, direction="sideways")


def test_the_html_page_is_self_contained(tmp_path: Path) -> None:
    y, *_ = neuron()
    page = Stepper(y).save_html(tmp_path / "steps.html").read_text(encoding="utf-8")
    assert page.count('class="frame"') == 4 and page.count("<svg") == 4
    assert "<script src" not in page and "<link" not in page and "@import" not in page
    assert "https://" not in page.replace("http://www.w3.org", "")


def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


@pytest.mark.skipif(_chromium() is None, reason="no chromium here (Debian's chromium; .ci/run installs it)")
def test_the_html_page_works_in_a_headless_browser(tmp_path: Path) -> None:
    y, *_ = neuron()
    path = Stepper(y).save_html(tmp_path / "steps.html")
    browser = _chromium()
    assert browser is not None
    done = subprocess.run(
        [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run",
         f"--user-data-dir={tmp_path / 'profile'}", "--virtual-time-budget=2000", "--dump-dom",
         path.as_uri() + "#selftest"],
        capture_output=True, text=True, timeout=120)
    dom = done.stdout
    assert 'data-selftest="step 1"' in dom, done.stderr[-2000:]  # next, next, previous: step 1
    assert "data-error" not in dom  # no script error on the page
    assert 'data-step="1"' in dom


def test_the_draw_command_writes_the_steps(tmp_path: Path) -> None:
    steps = tmp_path / "steps.html"
    assert main(["draw", "tanh(w*x + b)", "--set", "w=-3", "x=2", "b=6.88", "-o", str(tmp_path / "n.svg"),
                 "--steps", str(steps)]) == 0
    assert steps.read_text(encoding="utf-8").count('class="frame"') == 4


def test_steps_index_like_a_list() -> None:
    y, *_ = neuron()
    stepper = Stepper(y, index=-1)
    assert stepper.index == 3
    with pytest.raises(IndexError, match="steps 0 to 3"):
        stepper.caption(99)
    from engine.draw import draw

    with pytest.raises(TypeError, match="draw needs a Value"):
        draw(3.0)  # type: ignore[arg-type]


def test_the_notebook_slider_moves_the_step() -> None:
    pytest.importorskip("ipywidgets", reason="the slider needs ipywidgets (valuegrad's notebook extra)")
    y, *_ = neuron()
    stepper = Stepper(y)
    slider, view = stepper.widget().children
    assert (slider.min, slider.max) == (0, 3) and "backward step 0 of 3" in view.value
    slider.value = 2
    assert stepper.index == 2 and "backward step 2 of 3" in view.value and "∂L/∂%2 +=" in view.value
