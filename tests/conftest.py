"""Shared set-up: make the repository importable without installing it, and register and load
the hypothesis settings profiles: HYPOTHESIS_PROFILE names one (dev by default; .ci/run uses
ci, ``make fuzz`` long)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = str(Path(__file__).resolve().parent.parent)
if ROOT not in sys.path:  # `pytest` (not `python -m pytest`) from a checkout that is not pip-installed
    sys.path.insert(0, ROOT)

from hypothesis import HealthCheck, settings  # noqa: E402

settings.register_profile("dev", max_examples=100, deadline=None)
settings.register_profile("ci", max_examples=300, deadline=None, derandomize=True, database=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("long", max_examples=10_000, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))
