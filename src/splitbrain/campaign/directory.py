"""The campaign directory: what a campaign keeps, so that it can be resumed and read offline.

    campaigns/<name>/<UTC timestamp>/      and campaigns/latest -> it
      plan.json        the matrix and every run it expands to (what --resume runs again)
      outcomes.jsonl   one RunOutcome per line, appended and flushed as each run finishes
      campaign.json    every run's config, verdict, duration and failure kind; rates per
                       configuration (rewritten at the end, and when interrupted)
      campaign.html    the same for a person: rates with confidence intervals, a matrix of
                       verdicts, a link to every report
      runs/<run id>/   console.log (the run command's output) and run/<timestamp>/, the
                       run directory (store.py): history, results, report; nodes/ only when
                       the run failed or --keep-nodes asked
      .token           a random word: a worker that reads the same word here shares this
                       filesystem and writes its run in place instead of sending it through Dask

Rules: outcomes.jsonl is the record of what finished — a torn last line (the driver was
killed mid-write) is ignored, and a run listed twice counts by its last line. A run directory
without an outcome is left over from a killed campaign and is deleted before the run is rerun.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from splitbrain.campaign.matrix import RunSpec
from splitbrain.campaign.outcome import RunOutcome
from splitbrain.store import RunDir, timestamp

RUN_NAME = "run"  # runs/<id>/run/<timestamp>/: the name each run command is given


@dataclass(frozen=True)
class Plan:
    """What a campaign runs: plan.json."""

    name: str
    specs: list[RunSpec]
    matrix: dict[str, Any]  # the matrix it was expanded from, for the record
    started: str  # ISO time the campaign was created


@dataclass(frozen=True)
class CampaignDir:
    path: Path

    @property
    def plan(self) -> Path:
        return self.path / "plan.json"

    @property
    def outcomes(self) -> Path:
        return self.path / "outcomes.jsonl"

    @property
    def json(self) -> Path:
        return self.path / "campaign.json"

    @property
    def html(self) -> Path:
        return self.path / "campaign.html"

    @property
    def runs(self) -> Path:
        return self.path / "runs"

    @property
    def token_file(self) -> Path:
        return self.path / ".token"

    def run_out(self, run_id: str) -> Path:
        """Where the run with this id writes: runs/<id>/ (its run dir is run/<timestamp>/)."""
        return self.runs / run_id

    def token(self) -> str:
        return self.token_file.read_text(encoding="utf-8").strip()

    def write_plan(self, plan: Plan) -> None:
        RunDir(self.path).write_json(self.plan, {
            "name": plan.name, "started": plan.started, "matrix": plan.matrix,
            "runs": [s.to_json() for s in plan.specs]})

    def read_plan(self) -> Plan:
        data = json.loads(self.plan.read_text(encoding="utf-8"))
        return Plan(str(data["name"]), [RunSpec.from_json(r) for r in data["runs"]],
                    dict(data.get("matrix") or {}), str(data.get("started", "")))

    def record(self, outcome: RunOutcome) -> None:
        """Append one finished run, flushed and synced: this line is what --resume trusts."""
        with self.outcomes.open("a", encoding="utf-8") as f:
            f.write(json.dumps(outcome.to_json(), default=str) + "\n")
            f.flush()
            os.fsync(f.fileno())

    def read_outcomes(self) -> dict[str, RunOutcome]:
        """Run id -> its last recorded outcome; a torn or unreadable line is skipped."""
        found: dict[str, RunOutcome] = {}
        try:
            lines = self.outcomes.read_text(encoding="utf-8").splitlines()
        except FileNotFoundError:
            return found
        for line in lines:
            try:
                outcome = RunOutcome.from_json(json.loads(line))
            except (ValueError, TypeError):
                continue
            found[outcome.id] = outcome
        return found

    def clear_run(self, run_id: str) -> None:
        """Delete what an unfinished run left, so its rerun starts clean."""
        shutil.rmtree(self.run_out(run_id), ignore_errors=True)


def create_campaign(base: str | os.PathLike[str], name: str) -> CampaignDir:
    """campaigns/<name>/<timestamp>/ with its token, and campaigns/latest pointing at it."""
    base = Path(base)
    path = base / name / timestamp()
    path.mkdir(parents=True)
    (path / "runs").mkdir()
    (path / ".token").write_text(secrets.token_hex(16) + "\n", encoding="utf-8")
    latest = base / "latest"
    tmp = base / f".latest-{os.getpid()}"
    tmp.unlink(missing_ok=True)
    tmp.symlink_to(path.relative_to(base))
    os.replace(tmp, latest)
    return CampaignDir(path)


def find_campaign(path: str | os.PathLike[str]) -> CampaignDir | None:
    """The campaign at `path`, or the one `path/latest` points to; None if neither has a plan."""
    for candidate in (Path(path), Path(path) / "latest"):
        if (candidate / "plan.json").is_file():
            return CampaignDir(candidate.resolve())
    return None


def find_campaigns(root: str | os.PathLike[str], depth: int = 3) -> list[CampaignDir]:
    """Campaign directories (holding campaign.json) at most `depth` levels under root; links
    such as `latest` are not followed, so each campaign is found once."""
    found: list[CampaignDir] = []

    def walk(d: Path, level: int) -> None:
        if (d / "campaign.json").is_file():
            found.append(CampaignDir(d))
            return
        if level >= depth:
            return
        try:
            children = sorted(p for p in d.iterdir() if p.is_dir() and not p.is_symlink())
        except OSError:
            return
        for child in children:
            if child.name != "runs":
                walk(child, level + 1)

    walk(Path(root), 0)
    return found
