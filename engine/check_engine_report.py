"""The report of :func:`engine.check_engine.check_engine`: what was found in a learner's engine,
with one sentence on what each kind of mistake usually is."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

EXPLAINED = {
    "local derivative": "its local derivative is wrong: check the formula in its _backward",
    "upstream": "it ignores the upstream gradient: each parent must get local derivative * out.grad",
    "accumulate": "it assigns (=) where it must accumulate (+=): a value used twice gets the "
                  "gradient of one use only",
    "backward": "every op is right alone, but backward() is not: it must visit the nodes in reverse "
                "topological order, each once, starting from grad = 1",
    "forward": "its forward value is wrong",
    "raised": "your code raised an exception here",
}
HINTS = {
    "__add__": "1 for each operand", "__radd__": "1 for each operand", "__sub__": "1 and -1",
    "__mul__": "other.data for self, self.data for other", "__rmul__": "as __mul__",
    "__truediv__": "1/b for a, -a/b**2 for b", "__neg__": "-1",
    "__pow__": "n * x**(n - 1) for x; out * log(x) for an exponent that is a Value",
    "tanh": "1 - t**2 with t = tanh(x)", "exp": "out.data", "relu": "1 where out.data > 0, else 0",
    "log": "1/x", "sigmoid": "s * (1 - s) with s = sigmoid(x)", "sin": "cos(x)", "cos": "-sin(x)",
    "sqrt": "0.5 / out.data",
}
"""The textbook local derivative of each method, for the report."""


@dataclass
class Finding:
    """One thing wrong: the method at fault, what kind of mistake, and the evidence."""

    method: str
    kind: str  # local derivative | upstream | accumulate | backward | forward | raised
    expression: str = ""
    inputs: dict[str, float] = field(default_factory=dict)
    expected: dict[str, float] = field(default_factory=dict)
    actual: dict[str, float] = field(default_factory=dict)
    central: dict[str, float] = field(default_factory=dict)
    detail: str = ""

    def __str__(self) -> str:
        lines = [f"{self.method}: {EXPLAINED[self.kind]}"]
        if self.kind == "local derivative" and self.method in HINTS:
            lines[0] += f" (for {self.method}: {HINTS[self.method]})"
        if self.expression:
            at = ", ".join(f"{k} = {v!r}" for k, v in self.inputs.items())
            lines.append(f"  expression: {self.expression}   at {at}")
        for name in self.expected:
            what = "value" if self.kind == "forward" else f"d/d{name}"
            row = f"  {what}: expected {self.expected[name]!r}, yours {self.actual.get(name, math.nan)!r}"
            if name in self.central:
                row += f" (central difference of your forward: {self.central[name]:.10g})"
            lines.append(row)
        if self.detail:
            lines.append(f"  {self.detail}")
        return "\n".join(lines)


@dataclass
class EngineReport:
    """What :func:`check_engine` found: ``ok``, the ``supported`` and ``unsupported`` methods,
    the ``findings`` (each printable), and how many ``examples`` were checked."""

    name: str
    supported: list[str] = field(default_factory=list)
    unsupported: list[str] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    examples: int = 0

    @property
    def ok(self) -> bool:
        return not self.findings

    def __str__(self) -> str:
        lines = [f"check_engine({self.name}): " + ("OK" if self.ok else f"{len(self.findings)} finding(s)"),
                 "supported: " + (", ".join(self.supported) or "none")]
        if self.unsupported:
            lines.append("unsupported (not checked): " + ", ".join(self.unsupported))
        lines += [str(f) for f in self.findings]
        if self.ok:
            lines.append(f"every gradient of {self.examples} random expressions and DAGs agrees with "
                         f"valuegrad's")
        return "\n".join(lines)
