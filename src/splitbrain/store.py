"""The run directory: where one run keeps everything needed to re-check and re-render it offline.

    runs/<name>/<UTC timestamp>/      and runs/latest -> it
      config.json      every option, the seed, versions, the command line to reproduce
      history.jsonl
      nodes/<node>/node.log, events.jsonl, data/, output.log (its stdout and stderr)
      proxies.log      output of the link proxy process
      invariants.json  sim runs only: the sim-only invariants' results (splitbrain.sim)
      results.json
      report.html
      harness-error.txt  only when the run could not be carried out (the traceback)
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class RunDir:
    """Paths inside one run directory."""

    path: Path

    @property
    def config(self) -> Path:
        return self.path / "config.json"

    @property
    def history(self) -> Path:
        return self.path / "history.jsonl"

    @property
    def results(self) -> Path:
        return self.path / "results.json"

    @property
    def invariants(self) -> Path:
        return self.path / "invariants.json"

    @property
    def report(self) -> Path:
        return self.path / "report.html"

    @property
    def nodes(self) -> Path:
        return self.path / "nodes"

    def node_dir(self, node: str) -> Path:
        return self.nodes / node

    def node_log(self, node: str) -> Path:
        return self.node_dir(node) / "node.log"

    def node_events(self, node: str) -> Path:
        return self.node_dir(node) / "events.jsonl"

    def node_data(self, node: str) -> Path:
        return self.node_dir(node) / "data"

    def node_names(self) -> list[str]:
        """Nodes that have a directory here, sorted naturally (n2 before n10)."""
        if not self.nodes.is_dir():
            return []
        names = [p.name for p in self.nodes.iterdir() if p.is_dir()]
        return sorted(names, key=lambda n: (len(n), n))

    def read_json(self, path: Path) -> Any:
        with path.open(encoding="utf-8") as f:
            return json.load(f)

    def write_json(self, path: Path, data: Any) -> None:
        """Write atomically: a reader never sees half a results.json."""
        tmp = path.with_suffix(path.suffix + ".tmp")
        with tmp.open("w", encoding="utf-8") as f:
            json.dump(data, f, indent=2, sort_keys=False, default=str)
            f.write("\n")
        os.replace(tmp, path)

    def is_run(self) -> bool:
        return self.history.is_file()


def timestamp(now: datetime | None = None) -> str:
    """UTC timestamp used as a run directory name; sorts chronologically."""
    now = now or datetime.now(UTC)
    return now.strftime("%Y%m%dT%H%M%S.%fZ")


def create_run(base: str | os.PathLike[str], name: str) -> RunDir:
    """Create runs/<name>/<timestamp>/ and point runs/latest at it."""
    base = Path(base)
    path = base / name / timestamp()
    path.mkdir(parents=True)
    (path / "nodes").mkdir()
    latest = base / "latest"
    tmp = base / f".latest-{os.getpid()}"
    tmp.unlink(missing_ok=True)
    tmp.symlink_to(path.relative_to(base))
    os.replace(tmp, latest)
    return RunDir(path)


def find_runs(base: str | os.PathLike[str]) -> list[RunDir]:
    """Every run directory under base (runs/<name>/<timestamp>/), oldest first."""
    base = Path(base)
    if RunDir(base).is_run():
        return [RunDir(base)]
    runs = [RunDir(p.parent) for p in base.glob("*/*/history.jsonl") if not p.parent.is_symlink()]
    return sorted(runs, key=lambda r: (r.path.name, str(r.path)))
