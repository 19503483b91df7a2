"""campaign.html and the campaigns page (trends across nights): self-contained, script-free.

Rules they keep, as the run report does: everything from a run or a history (causes,
explanations, configuration values) is untrusted and autoescaped by the template; links are
built only from relative paths inside the campaign directory (anything else gets no link);
nothing is fetched. The pages have no script at all, and their Content-Security-Policy allows
only their one inline style element, by its SHA-256 hash — no 'unsafe-inline'.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from markupsafe import Markup

from splitbrain import __version__
from splitbrain.campaign.directory import CampaignDir, find_campaigns
from splitbrain.campaign.trends import trends
from splitbrain.reports.report import environment, static, write_text

SYMBOLS = {"valid": "✓", "invalid": "✗", "unknown": "?", "could not run": "!", "not run": "–"}
EXIT_MEANING = {0: "every run valid", 1: "a run was invalid", 2: "a run was unknown",
                3: "a run could not run"}
_SAFE_PATH = re.compile(r"[A-Za-z0-9_.+=-]+(/[A-Za-z0-9_.+=-]+)*")
CAMPAIGNS_PAGE = "campaigns.html"


def csp_for(css: str) -> str:
    """A policy that lets the page apply its one inline style and do nothing else."""
    digest = base64.b64encode(hashlib.sha256(css.encode("utf-8")).digest()).decode("ascii")
    return (f"default-src 'none'; style-src 'sha256-{digest}'; img-src data:; "
            "base-uri 'none'; form-action 'none'")


def _styles() -> Markup:
    return Markup(static("report.css") + "\n" + static("campaign.css"))


def safe_href(path: Any) -> str | None:
    """`path` if it is a plain relative path with no '..' (a link that stays put), else None."""
    if not isinstance(path, str) or not _SAFE_PATH.fullmatch(path):
        return None
    return None if ".." in path.split("/") else path


def _headline(counts: Mapping[str, int], total: int) -> tuple[str, str]:
    for verdict in ("invalid", "unknown", "could not run", "not run"):
        if counts.get(verdict):
            return f"{counts[verdict]} {verdict} of {total}".upper(), verdict.replace(" ", "-")
    return f"all {total} valid".upper(), "valid"


def render_campaign(doc: Mapping[str, Any], path: str) -> str:
    runs = [dict(r) for r in doc.get("runs") or [] if isinstance(r, Mapping)]
    for r in runs:
        r["href"] = safe_href(r.get("report"))
        r["files"] = safe_href(r.get("run_dir"))
    seeds = list(dict.fromkeys(r.get("seed") for r in runs))
    grid: dict[str, dict[Any, dict]] = {}
    for r in runs:
        grid.setdefault(str(r.get("configuration")), {})[r.get("seed")] = r
    matrix = [(label, [cells.get(seed) for seed in seeds]) for label, cells in grid.items()]
    headline, banner = _headline(doc.get("counts") or {}, len(runs))
    css = _styles()
    return environment().get_template("campaign.html.j2").render(
        doc=doc, path=path, runs=runs, seeds=seeds, matrix=matrix, symbols=SYMBOLS,
        failing=[r for r in runs if r.get("verdict") != "valid"], headline=headline,
        banner=banner, exit_meaning=EXIT_MEANING.get(doc.get("exit_code"), "?"), css=css,
        csp=csp_for(css), version=__version__, generated=_now())


def write_campaign_html(cdir: CampaignDir, doc: Mapping[str, Any]) -> Path:
    write_text(cdir.html, render_campaign(doc, str(cdir.path)))
    return cdir.html


def write_campaigns_page(root: str | os.PathLike[str]) -> Path:
    """root/campaigns.html: every campaign under root, by name, configuration trends per night."""
    root = Path(root)
    found = []
    for cdir in find_campaigns(root):
        try:
            doc = json.loads(cdir.json.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        href = safe_href((cdir.html.relative_to(root)).as_posix())
        if isinstance(doc, dict) and href:
            found.append((href, doc))
    shown = trends(found)
    css = _styles()
    html = environment().get_template("campaigns.html.j2").render(
        campaigns=[{"name": c.name, "nights": c.nights, "trends": c.trends,
                    "worse": sum(1 for t in c.trends if t.worse)} for c in shown],
        count=len(found), path=str(root.resolve()), css=css, csp=csp_for(css),
        version=__version__, generated=_now())
    page = root / CAMPAIGNS_PAGE
    write_text(page, html)
    return page


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
