"""The examples in the README and in the package docstrings run and print what they say."""

from __future__ import annotations

import doctest
import importlib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_readme_examples() -> None:
    result = doctest.testfile(str(ROOT / "README.md"), module_relative=False, optionflags=doctest.ELLIPSIS)
    assert result.attempted >= 10 and result.failed == 0


def test_docstring_examples() -> None:
    for name in ("engine", "nn", "engine.tracing", "engine.define", "engine.steps", "engine.anomaly"):
        module = importlib.import_module(name)
        result = doctest.testmod(module)
        assert result.attempted >= 1 and result.failed == 0, module.__name__


def test_readme_excerpts_are_the_code_as_it_is() -> None:
    text = (ROOT / "README.md").read_text()
    blocks = [b.split("```", 1)[0] for b in text.split("```python\n")[1:]]
    excerpts = [b for b in blocks if b.startswith("# engine/")]
    assert excerpts
    for block in excerpts:
        path, *lines = block.splitlines()
        source = (ROOT / path.removeprefix("# ")).read_text()
        for line in lines:
            assert line in source, f"README quotes {path} as {line!r}, which it no longer has"


def test_readme_scripts_run(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    text = (ROOT / "README.md").read_text()
    blocks = [b.split("```", 1)[0] for b in text.split("```python\n")[1:]]
    excerpts = [b for b in blocks if b.startswith("# engine/")]
    with_torch = [b for b in blocks if b.startswith("# needs torch")]
    scripts = [b for b in blocks if not b.lstrip().startswith(">>>") and b not in excerpts + with_torch]
    assert len(scripts) == 2 and len(with_torch) == 1
    try:
        import torch  # noqa: F401
    except ImportError:
        pass
    else:  # the PyTorch section's script runs where torch is installed
        exec(compile(with_torch[0], "README.md", "exec"), {})
    monkeypatch.chdir(tmp_path)  # the drawing script writes its page here
    drawing, training = sorted(scripts, key=lambda b: "cross_entropy" in b)
    exec(compile(drawing, "README.md", "exec"), {})
    assert (tmp_path / "neuron_steps.html").read_text(encoding="utf-8").count('class="frame"') == 4
    namespace: dict[str, object] = {}
    exec(compile(training, "README.md", "exec"), namespace)
    final_loss = namespace["loss"].data  # type: ignore[attr-defined]
    # Three balanced classes start near log 3 = 1.0986 (uniform guesses); 60 Adam steps on
    # standardized iris bring the mean cross-entropy far below that.
    assert final_loss < 0.25
