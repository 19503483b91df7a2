"""campaign.json: every run's outcome and the rates per configuration. Pure.

Rates per configuration, each with a 95% Wilson score interval (it stays inside [0, 1] and is
honest for the handful of seeds a nightly campaign runs, where the normal approximation is
not):
- catch rate: invalid runs / runs — how often this configuration finds a bug;
- flake rate: runs with no definite verdict (unknown, could not run, not run) / runs — how
  often it wastes a run.
A run of the plan with no outcome (the campaign was interrupted) is "not run".
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from splitbrain.campaign.matrix import RunSpec
from splitbrain.campaign.outcome import VERDICTS, RunOutcome, exit_code, without_verdict

Z95 = 1.959964
ALL_VERDICTS = (*VERDICTS, "not run")


def wilson(k: int, n: int, z: float = Z95) -> tuple[float, float]:
    """The Wilson score interval of k successes in n trials ((0, 1) when n is 0)."""
    if n == 0:
        return 0.0, 1.0
    p = k / n
    denominator = 1 + z * z / n
    center = (p + z * z / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    return max(0.0, center - half), min(1.0, center + half)


def rate(k: int, n: int) -> dict[str, float | int]:
    low, high = wilson(k, n)
    return {"count": k, "runs": n, "rate": round(k / n, 4) if n else 0.0,
            "low": round(low, 4), "high": round(high, 4)}


@dataclass(frozen=True)
class Row:
    """One run of the plan with what became of it."""

    spec: RunSpec
    outcome: RunOutcome | None

    @property
    def verdict(self) -> str:
        return self.outcome.verdict if self.outcome else "not run"


def rows(specs: Sequence[RunSpec], outcomes: Mapping[str, RunOutcome]) -> list[Row]:
    return [Row(s, outcomes.get(s.id)) for s in specs]


def configurations(plan: Sequence[Row]) -> list[dict[str, Any]]:
    """Per configuration, in plan order: counts of each verdict, catch and flake rates."""
    groups: dict[str, list[Row]] = {}
    for row in plan:
        groups.setdefault(row.spec.configuration, []).append(row)
    out = []
    for label, group in groups.items():
        counts = {v: sum(1 for r in group if r.verdict == v) for v in ALL_VERDICTS}
        n = len(group)
        flaky = counts["unknown"] + counts["could not run"] + counts["not run"]
        out.append({"configuration": label, "config": dict(group[0].spec.config), "runs": n,
                    "counts": counts, "catch_rate": rate(counts["invalid"], n),
                    "flake_rate": rate(flaky, n)})
    return out


def campaign_json(name: str, plan: Sequence[Row], *, started: str, finished: str | None,
                  where: str) -> dict[str, Any]:
    """The whole of campaign.json."""
    counts = {v: sum(1 for r in plan if r.verdict == v) for v in ALL_VERDICTS}
    return {
        "name": name,
        "started": started,
        "finished": finished,  # null: interrupted (resume it with --resume)
        "where": where,  # "local: N workers" or the scheduler address
        "exit_code": exit_code(r.verdict for r in plan),
        "counts": counts,
        "configurations": configurations(plan),
        "runs": [(r.outcome or _not_run(r.spec)).to_json() for r in plan],
    }


def _not_run(spec: RunSpec) -> RunOutcome:
    return replace(without_verdict(spec, "", ""), verdict="not run")
