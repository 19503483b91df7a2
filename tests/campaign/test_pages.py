"""campaign.html and the campaigns page: untrusted text stays text, links stay inside the
campaign, the CSP hash matches the style, and a configuration that got worse stands out."""

from __future__ import annotations

import base64
import hashlib
import json
import re
from html import unescape

from splitbrain.campaign.pages import render_campaign, safe_href, write_campaigns_page
from splitbrain.campaign.trends import Night, got_worse

HOSTILE = '<script>window.__pwned=1</script><img src=x onerror="window.__pwned=2">'


def doc(name: str, started: str, results: dict[str, list[str]]) -> dict:
    """A campaign.json with the given verdicts per configuration (seeds 1..n)."""
    runs, configs = [], []
    for label, verdicts in results.items():
        for seed, verdict in enumerate(verdicts, 1):
            runs.append({"id": f"{label}-s{seed}", "configuration": label, "seed": seed,
                         "verdict": verdict, "cause": HOSTILE if verdict != "valid" else "",
                         "explanation": HOSTILE, "failure_kind": "linearizable",
                         "command": "splitbrain run", "duration_s": 1.0, "worker": "w",
                         "run_dir": f"runs/{label}-s{seed}/run/x",
                         "report": f"runs/{label}-s{seed}/run/x/report.html"})
        counts = {v: verdicts.count(v) for v in
                  ("valid", "invalid", "unknown", "could not run", "not run")}
        rate = {"count": 0, "runs": len(verdicts), "rate": 0.0, "low": 0.0, "high": 0.5}
        configs.append({"configuration": label, "runs": len(verdicts), "counts": counts,
                        "catch_rate": rate, "flake_rate": rate})
    counts = {v: sum(c["counts"][v] for c in configs) for v in configs[0]["counts"]}
    return {"name": name, "started": started, "finished": started, "where": "local",
            "exit_code": 1 if counts["invalid"] else 0, "counts": counts,
            "configurations": configs, "runs": runs}


def test_campaign_page_escapes_history_text_and_hashes_its_only_style():
    html = render_campaign(doc("n", "2026-11-27", {"nemesis=kill": ["valid", "invalid"]}),
                           "/c")
    assert "<script" not in html and "<img" not in html
    assert "&lt;script&gt;window.__pwned=1" in html
    css = re.search(r"<style>(.*?)</style>", html, re.S).group(1)
    digest = base64.b64encode(hashlib.sha256(css.encode()).digest()).decode()
    csp = unescape(re.search(r'http-equiv="Content-Security-Policy" content="([^"]*)"',
                             html).group(1))
    assert f"style-src 'sha256-{digest}'" in csp
    assert "unsafe-inline" not in csp and "script-src" not in csp and "default-src 'none'" in csp
    assert 'href="runs/nemesis=kill-s2/run/x/report.html"' in html


def test_links_only_to_relative_paths_inside():
    assert safe_href("runs/a-s1/run/20261127T060000.000000Z/report.html")
    for bad in ("javascript:alert(1)", "/etc/passwd", "../../x", "runs/../../x", "a b", None,
                "https://example.org/x", "runs//x"):
        assert safe_href(bad) is None, bad


def test_a_configuration_gets_worse_when_invalid_appears_or_its_rate_jumps():
    def night(failed, runs, invalid=0):
        return Night("c.html", "", runs, invalid, failed)

    assert got_worse(night(0, 10), night(1, 10, invalid=1))
    assert not got_worse(night(1, 10, invalid=1), night(1, 10, invalid=1))
    assert not got_worse(night(1, 20), night(2, 20))  # within what chance explains
    assert got_worse(night(0, 20), night(10, 20))
    assert not got_worse(night(3, 10), night(0, 10))


def test_campaigns_page_shows_nights_per_configuration_worse_first(tmp_path):
    nights = [("20261125", {"a": ["valid"] * 4, "b": ["valid"] * 4}),
              ("20261126", {"a": ["valid"] * 4, "b": ["valid"] * 4}),
              ("20261127", {"a": ["valid"] * 4, "b": ["valid", "invalid", "valid", "valid"]})]
    for stamp, results in nights:
        d = tmp_path / "nightly" / f"{stamp}T060000.000000Z"
        d.mkdir(parents=True)
        (d / "campaign.json").write_text(json.dumps(doc("nightly", stamp, results)))
    (tmp_path / "latest").symlink_to("nightly/20261127T060000.000000Z")  # found once
    html = write_campaigns_page(tmp_path).read_text()
    assert html.count('<section class="campaign"') == 1
    rows = re.findall(r'<tr class="(worse|same)">\s*<th class="config">(\w)', html)
    assert rows == [("worse", "b"), ("same", "a")]
    assert "1 invalid of 4, none the night before" in html
    assert html.count('href="nightly/20261127T060000.000000Z/campaign.html"') >= 3
