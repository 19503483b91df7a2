"""The report and the index in headless Chromium: they load offline, with no console error and
no request leaving file://, and show what an engineer needs."""

import json

import pytest

from splitbrain.reports import write_index, write_report
from splitbrain.testing.runs import build_run
from tests.reports.conftest import ARTIFACTS, screenshot, serving

pytestmark = pytest.mark.browser


def assert_clean(p) -> None:
    assert p.console_errors == []
    assert p.blocked == []
    assert p.page.evaluate("window.__reportErrors") == []


def band_pixel(p, band) -> list[int]:
    """The canvas pixel in the middle of a fault band's label strip (CSS px -> device px)."""
    return p.page.evaluate(
        """(b) => { const c = document.getElementById('timeline-canvas');
                    const r = c.width / c.clientWidth;
                    const x = Math.round((b.x0 + b.x1) / 2 * r), y = Math.round((b.y + 6) * r);
                    return Array.from(c.getContext('2d').getImageData(x, y, 1, 1).data); }""",
        band)


def test_valid_report_shows_the_verdict_and_the_timeline_with_fault_bands(valid_run, open_page):
    write_report(valid_run)
    p = open_page(valid_run.report)
    page = p.page
    assert page.locator("#verdict-word").inner_text() == "VALID"
    drawn = page.evaluate("window.__timeline.drawn")
    assert drawn["ops"] > 100
    assert {b["kind"] for b in drawn["faults"]} == {"partition", "kill", "pause", "net"}
    kill = next(b for b in drawn["faults"] if b["kind"] == "kill")
    assert band_pixel(p, kill)[:3] == [0xC2, 0x41, 0x0C]  # --kill, painted on the canvas
    assert page.locator("#latency-chart canvas").count() == 1
    assert page.locator("#throughput-chart canvas").count() == 1
    screenshot(p, "report-valid")
    assert_clean(p)


def test_hover_and_click_show_op_details_and_the_wheel_zooms(valid_run, open_page):
    write_report(valid_run)
    p = open_page(valid_run.report)
    page = p.page
    canvas = page.locator("#timeline-canvas").bounding_box()
    pos = page.evaluate("window.__timeline.position(5)")
    page.mouse.move(canvas["x"] + pos["x"], canvas["y"] + pos["y"])
    tip = page.locator("#tooltip")
    tip.wait_for(state="visible")
    assert "invoked" in tip.inner_text() and "history index" in tip.inner_text()
    page.mouse.click(canvas["x"] + pos["x"], canvas["y"] + pos["y"])
    assert page.locator("#op-details").inner_text() == tip.inner_text()
    before = page.evaluate("window.__timeline.view()")
    page.mouse.wheel(0, -300)
    after = page.evaluate("window.__timeline.view()")
    assert after["t1"] - after["t0"] < before["t1"] - before["t0"]
    assert_clean(p)


def test_invalid_report_highlights_the_failing_op(invalid_run, open_page):
    write_report(invalid_run)
    p = open_page(invalid_run.report)
    page = p.page
    assert page.locator("#verdict-word").inner_text() == "INVALID"
    failed = page.locator("#failed-op")
    assert failed.is_visible()
    assert failed.text_content().strip().endswith("✗ read → 999999")
    assert "can't read 999999 from register" in page.locator("#failure .reason").inner_text()
    page.locator("#jump-failure").click()
    assert "could not be linearized" in page.locator("#op-details").inner_text()
    results = json.loads(invalid_run.results.read_text())
    key = results["checkers"]["linearizable"]["failure"]["key"]
    assert page.locator("#key-filter option:checked").inner_text() == key  # others dimmed
    drawn = page.evaluate("window.__timeline.drawn")
    assert drawn["failed"] is not None and drawn["failed"]["x"] > 96
    screenshot(p, "report-invalid")
    page.locator("#timeline-section").screenshot(path=str(ARTIFACTS / "report-invalid-zoom.png"))
    assert_clean(p)


def test_divergent_report_loads_cleanly(divergent_run, open_page):
    write_report(divergent_run)
    p = open_page(divergent_run.report)
    assert p.page.locator("#divergence tr.divergent").count() >= 1
    screenshot(p, "report-divergent")
    assert_clean(p)


def test_script_and_img_onerror_in_a_history_stay_text(tmp_path, open_page):
    hostile = ["<script>window.__pwned = 1</script>", "<img src=x onerror=\"window.__pwned=2\">"]
    run = build_run(tmp_path, values=hostile, failure="linearizability", seed=11)
    write_report(run)
    p = open_page(run.report)
    page = p.page
    dialogs = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    assert page.evaluate("window.__pwned") is None
    assert page.locator("img").count() == 0
    # The hostile values are visible as text: in the failure table and in the op details.
    assert any(h in page.locator("#failure").inner_text() for h in hostile)
    write = page.evaluate(
        "(() => { const d = JSON.parse(document.getElementById('report-data').textContent);"
        " return d.ops.f.findIndex((f, i) => d.fs[f] === 'write' && d.ops.v[i] >= 0); })()")
    page.evaluate(f"window.__timeline.select({write})")
    assert any(h in page.locator("#op-details").inner_text() for h in hostile)
    screenshot(p, "report-injection")
    assert dialogs == []
    assert_clean(p)


def test_index_filters_runs_by_verdict(tmp_path, open_page):
    base = tmp_path / "runs"
    for seed, failure in [(1, None), (2, "linearizability"), (3, None)]:
        write_report(build_run(base, name=f"r{seed}", failure=failure, seed=seed))
    p = open_page(write_index(base), wait_ready=False)
    rows = p.page.locator("#runs-table tr.run")
    assert rows.count() == 3
    p.page.locator('input[data-verdict="valid"]').uncheck()
    visible = [r for r in rows.all() if r.is_visible()]
    assert [r.get_attribute("data-verdict") for r in visible] == ["invalid"]
    p.page.locator("#runs-table tr.run:visible a").click()
    p.page.wait_for_selector("html[data-ready=true]", state="attached")
    assert p.page.locator("#verdict-word").inner_text() == "INVALID"
    screenshot(p, "index")
    assert p.console_errors == [] and p.blocked == []


def test_served_index_and_report_load_cleanly_over_http(invalid_run, browser):
    write_report(invalid_run)
    with serving(invalid_run.path.parent.parent) as srv:
        ctx = browser.new_context()
        try:
            page = ctx.new_page()
            page.set_default_timeout(20_000)
            errors, outside = [], []
            page.on("console", lambda m: m.type == "error" and errors.append(m.text))
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.on("request", lambda r: "127.0.0.1" not in r.url and outside.append(r.url))
            page.goto(f"http://127.0.0.1:{srv.server_address[1]}/")
            page.locator("#runs-table tr.run a").click()
            page.wait_for_selector("html[data-ready=true]", state="attached")
            assert page.locator("#verdict-word").inner_text() == "INVALID"
            page.locator("#raw a", has_text="nodes/n1/node.log").click()
            assert "became" in page.locator("body").inner_text()
            assert errors == [] and outside == []
        finally:
            ctx.close()


def test_a_run_with_an_empty_history_still_loads_cleanly(tmp_path, open_page):
    run = build_run(tmp_path)
    run.history.write_text("")
    assert write_report(run) is None
    p = open_page(run.report)
    assert p.page.evaluate("window.__timeline.drawn.ops") == 0
    assert_clean(p)


def test_a_run_named_like_a_script_url_is_a_link_to_its_report(tmp_path, open_page):
    """Issue 10 item 10: a run directory named `javascript:alert(9)` (reachable with --name)
    became an href that ran script when clicked."""
    base = tmp_path / "runs"
    run = build_run(base, name="javascript:alert(9)", seed=6)
    write_report(run)
    p = open_page(write_index(base), wait_ready=False)
    dialogs = []
    p.page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    p.page.locator("#runs-table tr.run a").click()
    p.page.wait_for_selector("html[data-ready=true]", state="attached")
    assert p.page.url == run.report.resolve().as_uri().replace(":alert(9)", "%3Aalert%289%29")
    assert dialogs == []
    assert_clean(p)
