"""Shared set-up: make the repository importable without installing it, and load the
hypothesis settings profile named by HYPOTHESIS_PROFILE (dev by default; .ci/run uses ci,
``make fuzz`` long). The profiles are defined in engine.testing."""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = str(Path(__file__).resolve().parent.parent)
if ROOT not in sys.path:  # `pytest` (not `python -m pytest`) from a checkout that is not pip-installed
    sys.path.insert(0, ROOT)

from hypothesis import settings  # noqa: E402

import engine.testing  # noqa: E402, F401  (registers the profiles)

settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))
