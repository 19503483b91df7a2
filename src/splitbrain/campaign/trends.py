"""Trends across nights: each configuration's results in every campaign of the same name. Pure.

A night is one campaign directory (campaign.json). For each configuration label the trend is
its failure rate night by night — runs that were not valid (invalid, unknown, could not run) —
so one number reads the same for a system that should pass and for a bug a configuration
should catch. A configuration *got worse* when its last night, compared with the night before
it: found invalid runs where that night found none, or failed at a rate above the upper bound
of that night's 95% Wilson interval (more than chance explains).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from splitbrain.campaign.summary import wilson

NIGHTS_SHOWN = 14


@dataclass(frozen=True)
class Night:
    """One configuration in one campaign."""

    campaign: str  # href of that campaign's campaign.html, relative to the page
    started: str
    runs: int
    invalid: int
    failed: int  # runs that were not valid

    @property
    def rate(self) -> float:
        return self.failed / self.runs if self.runs else 0.0


@dataclass(frozen=True)
class Trend:
    configuration: str
    nights: tuple[Night | None, ...]  # one per night of the campaign name, oldest first
    worse: str  # why it got worse, "" if it did not


@dataclass(frozen=True)
class CampaignTrends:
    name: str
    nights: tuple[tuple[str, str], ...]  # (started, href) of each campaign, oldest first
    trends: tuple[Trend, ...]  # configurations that got worse first


def got_worse(before: Night, after: Night) -> str:
    """Why `after` is worse than `before`, or ""."""
    if after.invalid and not before.invalid:
        return f"{after.invalid} invalid of {after.runs}, none the night before"
    _, high = wilson(before.failed, before.runs)
    if after.runs and after.rate > high:
        return (f"failed {after.failed} of {after.runs} ({after.rate:.0%}), above the "
                f"{high:.0%} the night before could explain")
    return ""


def _nights_of(doc: Mapping[str, Any], href: str) -> dict[str, Night]:
    out = {}
    for c in doc.get("configurations") or []:
        if not isinstance(c, Mapping) or not isinstance(c.get("counts"), Mapping):
            continue
        counts = c["counts"]
        runs = _int(c.get("runs"))
        out[str(c.get("configuration"))] = Night(
            href, str(doc.get("started") or ""), runs, _int(counts.get("invalid")),
            runs - _int(counts.get("valid")))
    return out


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else 0


def trends(campaigns: Sequence[tuple[str, Mapping[str, Any]]]) -> list[CampaignTrends]:
    """From (href, campaign.json) pairs: per campaign name, each configuration's nights."""
    by_name: dict[str, list[tuple[str, Mapping[str, Any]]]] = {}
    for href, doc in campaigns:
        by_name.setdefault(str(doc.get("name") or "campaign"), []).append((href, doc))
    out = []
    for name in sorted(by_name):
        docs = sorted(by_name[name], key=lambda d: str(d[1].get("started") or ""))[-NIGHTS_SHOWN:]
        per_night = [_nights_of(doc, href) for href, doc in docs]
        labels: list[str] = []
        for night in reversed(per_night):  # the latest night's configurations first
            labels += [label for label in night if label not in labels]
        rows = []
        for label in labels:
            series = tuple(night.get(label) for night in per_night)
            present = [n for n in series if n is not None]
            worse = got_worse(present[-2], present[-1]) if len(present) >= 2 else ""
            rows.append(Trend(label, series, worse))
        rows.sort(key=lambda t: not t.worse)  # stable: worse first, then as they came
        out.append(CampaignTrends(name, tuple((str(d.get("started") or ""), h)
                                              for h, d in docs), tuple(rows)))
    return out
