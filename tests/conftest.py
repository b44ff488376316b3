"""Shared set-up for the engine tests: make the repository importable without installing it."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = str(Path(__file__).resolve().parent.parent)
if ROOT not in sys.path:  # `pytest` (not `python -m pytest`) from a checkout that is not pip-installed
    sys.path.insert(0, ROOT)
