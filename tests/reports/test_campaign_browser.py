"""A real 20-run campaign on a LocalCluster, and its campaign.html in headless Chromium: it loads
offline with no console error (a CSP violation would be one) and no request, shows the rates
and the matrix of verdicts, and every cell leads to its run's report. The campaigns page of
`splitbrain serve` loads cleanly too."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.campaign.test_pages import doc
from tests.reports.conftest import screenshot, serving

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def test_a_20_run_campaign_and_its_page_in_chromium(tmp_path, open_page):
    out = tmp_path / "campaigns"
    cmd = [sys.executable, "-m", "splitbrain", "campaign", "--seeds", "5",
           "--nemesis", "partition", "--nemesis", "kill", "--unsafe=", "--unsafe", "stale-reads",
           "--time-limit", "1", "--run-arg=--nodes=3", "--run-arg=--nemesis-interval=0.4",
           "--out", str(out), "--summary", str(tmp_path / "summary.md")]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=240)
    cdir = (out / "latest").resolve()
    campaign = json.loads((cdir / "campaign.json").read_text())
    runs = campaign["runs"]
    assert len(runs) == 20 and campaign["finished"], done.stdout + done.stderr
    by_config = {}
    for r in runs:
        by_config.setdefault(r["config"]["unsafe"], []).append(r["verdict"])
    assert set(by_config["none"]) == {"valid"}, runs  # the bundled Raft is linearizable
    assert "invalid" in by_config["stale-reads"]  # and the bug is caught
    assert done.returncode == 1 == campaign["exit_code"]

    p = open_page(cdir / "campaign.html", wait_ready=False)
    page = p.page
    assert page.locator("#exit-code").inner_text() == "1"
    assert page.locator("#rates tr.config").count() == 4
    cells = page.locator("#verdict-matrix td.cell")
    assert cells.count() == 20
    verdicts = [cells.nth(i).get_attribute("data-verdict") for i in range(20)]
    assert sorted(verdicts) == sorted(r["verdict"] for r in runs)
    screenshot(p, "campaign")
    assert p.console_errors == [] and p.blocked == []
    page.locator('#verdict-matrix td.cell[data-verdict="invalid"] a').first.click()
    page.wait_for_selector("html[data-ready=true]", state="attached")
    assert page.locator("#verdict-word").inner_text() == "INVALID"
    assert p.console_errors == [] and p.blocked == []


def test_served_campaigns_page_loads_cleanly_and_keeps_hostile_text_inert(tmp_path, browser):
    for stamp, verdicts in (("20261126", ["valid", "valid"]), ("20261127", ["valid", "invalid"])):
        d = tmp_path / "nightly" / f"{stamp}T060000.000000Z"
        d.mkdir(parents=True)
        data = doc("nightly", stamp, {"nemesis=<b>kill</b>": verdicts})
        (d / "campaign.json").write_text(json.dumps(data))
    with serving(tmp_path) as srv:
        ctx = browser.new_context()
        try:
            page = ctx.new_page()
            page.set_default_timeout(20_000)
            errors, outside = [], []
            page.on("console", lambda m: m.type == "error" and errors.append(m.text))
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.on("request", lambda r: "127.0.0.1" not in r.url and outside.append(r.url))
            page.goto(f"http://127.0.0.1:{srv.server_address[1]}/campaigns.html")
            worse = page.locator("tr.worse th.config")
            assert worse.count() == 1 and "nemesis=<b>kill</b>" in worse.inner_text()
            assert page.locator("b", has_text="kill").count() == 0
            assert page.evaluate("window.__pwned") is None
            page.screenshot(path=str(tmp_path / "campaigns.png"))
            assert errors == [] and outside == []
        finally:
            ctx.close()
