"""Fixtures of the Raft tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from splitbrain.raft.local import LocalCluster


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[LocalCluster]:
    """Three real nodes, started; every one is killed and reaped at teardown, pass or fail."""
    with LocalCluster(tmp_path) as c:
        c.start_all()
        yield c
