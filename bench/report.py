"""Benchmark of report.html on a synthetic 100,000-call history; prints one JSON object.

    python bench/report.py [--calls N] [--keep DIR]

Measures: building the run is not timed; rendering (read + pair + gather + template) is; the
file size (goal <= 10 MB); in headless Chromium (Debian's /usr/bin/chromium), the time from
navigation start until the page is interactive, i.e. everything drawn and handlers attached
(goal <= 3 s); and the time to redraw the timeline at full view and zoomed in (smooth panning
wants well under 16 ms per frame).
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path

from splitbrain.reports import write_report
from splitbrain.testing.runs import build_run

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run",
                 "--disable-quic"]


def browser_times(report: Path) -> dict[str, float]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            errors: list[str] = []
            page.on("console", lambda m: m.type == "error" and errors.append(m.text))
            page.on("pageerror", lambda e: errors.append(str(e)))
            t0 = time.perf_counter()
            page.goto(report.resolve().as_uri(), timeout=60_000)
            page.wait_for_selector("html[data-ready=true]", state="attached", timeout=60_000)
            wall = time.perf_counter() - t0
            ready = page.evaluate("window.__reportReadyAt")
            draw = page.evaluate("""() => {
                const t = window.__timeline, out = {};
                const time = (n) => { const a = performance.now();
                                      for (let i = 0; i < n; i++) t.draw();
                                      return (performance.now() - a) / n; };
                out.full = time(5);
                for (let k = 0; k < 3; k++) document.getElementById('zoom-in').click();
                out.zoomed = time(5);
                return out; }""")
            return {"interactive_s": round(ready / 1000, 3), "load_wall_s": round(wall, 3),
                    "timeline_draw_full_ms": round(draw["full"], 1),
                    "timeline_draw_zoomed_ms": round(draw["zoomed"], 1),
                    "console_errors": errors}
        finally:
            browser.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=100_000)
    parser.add_argument("--keep", type=Path, help="build the run here and keep it")
    args = parser.parse_args()
    base = args.keep or Path(tempfile.mkdtemp(prefix="splitbrain-bench-"))
    try:
        run = build_run(base, calls=args.calls, concurrency=10, keys=20,
                        failure="linearizability", seed=42)
        lines = sum(1 for _ in run.history.open())
        t0 = time.perf_counter()
        warning = write_report(run)
        render_s = time.perf_counter() - t0
        size = run.report.stat().st_size
        out = {"calls": args.calls, "history_lines": lines,
               "history_mb": round(run.history.stat().st_size / 1e6, 2),
               "render_s": round(render_s, 3), "warning": warning,
               "report_mb": round(size / 1e6, 2), "report_goal_mb": 10,
               "interactive_goal_s": 3, **browser_times(run.report)}
        print(json.dumps(out))
    finally:
        if args.keep is None:
            shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
