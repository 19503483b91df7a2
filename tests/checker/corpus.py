"""Where the Porcupine corpus lives (../shared beside the repository) and the marker for tests
that need it: skipped on a machine without ../shared, but never in CI, where it must be there."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

CORPUS = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "porcupine"

needs_corpus = pytest.mark.skipif(
    not CORPUS.is_dir() and not os.environ.get("CI"), reason=f"corpus not found at {CORPUS}"
)
