"""Rendering report.html: one self-contained file, written without ever raising.

Rules it keeps:
- Self-contained: CSS, scripts (ours and the vendored uPlot, inlined once) and data are inside
  the file; nothing is fetched, so it opens offline and from a CI artifact.
- History values are untrusted. The template autoescapes everything it prints, and the data
  the script draws from is embedded with `json_script`, which escapes `<`, `>`, `&` and the two
  JavaScript line separators so no value can close the script element; the script shows values
  with textContent only. Links to files are built by `relative_href` (percent-encoded, from
  ./), so no file or run name can become a javascript: link.
- A Content-Security-Policy (`csp`) lets nothing load and allows exactly our inline styles and
  scripts, by their SHA-256: an injected element could run nothing ('unsafe-inline' is gone).
- A rendering failure is a warning, never a verdict: `write_report` catches everything, writes
  a minimal page that still states the verdict, and returns the warning for the caller to add
  to results.json's "warnings".
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import traceback
import urllib.parse
from collections.abc import Mapping
from functools import cache
from html import escape
from importlib import resources
from pathlib import Path
from typing import Any

import jinja2
from markupsafe import Markup

from splitbrain.reports.data import gather
from splitbrain.store import RunDir

_ESCAPES = {ord("<"): "\\u003c", ord(">"): "\\u003e", ord("&"): "\\u0026",
            0x2028: "\\u2028", 0x2029: "\\u2029"}


def json_script(data: Any, element_id: str) -> Markup:
    """A <script type="application/json"> element holding data, safe for any string inside."""
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"), default=str)
    return Markup('<script type="application/json" id="{}">{}</script>').format(
        element_id, Markup(text.translate(_ESCAPES)))


@cache
def static(name: str) -> Markup:
    """A file of reports/static, to inline. These are our own files, not history data."""
    return Markup(resources.files("splitbrain.reports").joinpath("static", name).read_text("utf-8"))


@cache
def _sha256(name: str) -> str:
    return base64.b64encode(hashlib.sha256(static(name).encode()).digest()).decode()


def csp(styles: tuple[str, ...] = (), scripts: tuple[str, ...] = ()) -> Markup:
    """The Content-Security-Policy of a page whose only styles and scripts are these static
    files, inlined verbatim (`<style>{{ static(name) }}</style>`): allowed by their hashes."""

    def sources(names: tuple[str, ...]) -> str:
        return " ".join(f"'sha256-{_sha256(n)}'" for n in names) or "'none'"

    return Markup(f"default-src 'none'; style-src {sources(styles)}; "  # our text: no escaping
                  f"script-src {sources(scripts)}; img-src data:")


def relative_href(path: str) -> str:
    """A link to `path` below the page's directory, whatever its name: percent-encoded and
    starting with ./, so no name (`javascript:...`, `//host`) is read as a scheme or a host."""
    return "./" + urllib.parse.quote(path)


@cache
def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("splitbrain.reports", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,  # a template typo fails loudly in tests
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.globals.update(static=static, json_script=json_script, csp=csp)
    env.filters["href"] = relative_href
    env.filters["seconds"] = lambda ns: "—" if ns is None else f"{ns / 1e9:.3f} s"
    env.filters["percent"] = lambda x: "—" if x is None else f"{x:.1%}"
    return env


def render_html(run: RunDir, results: Mapping[str, Any] | None = None) -> str:
    """The report's HTML; raises on any problem (write_report is the forgiving entry point)."""
    context, payload = gather(run, results)
    return environment().get_template("report.html.j2").render(
        **context, payload=json_script(payload, "report-data"))


def write_text(path: Path, text: str) -> None:
    """Write atomically: a browser or `serve` never reads half a page."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def _fallback(run: RunDir, results: Mapping[str, Any] | None, warning: str, detail: str) -> str:
    if results is None and run.results.is_file():
        results = run.read_json(run.results)
    valid = results.get("valid") if isinstance(results, Mapping) else None
    verdict = {True: "valid", False: "invalid"}.get(valid, "unknown")  # type: ignore[arg-type]
    return (
        "<!doctype html><meta charset=utf-8><title>splitbrain report</title>"
        "<meta http-equiv=Content-Security-Policy content=\"default-src 'none'\">"
        f"<h1>Verdict: {escape(verdict)}</h1>"
        f"<p>The full report could not be rendered: {escape(warning)}</p>"
        "<p>The verdict above comes from results.json and is not affected. Raw files: "
        '<a href="history.jsonl">history.jsonl</a>, <a href="results.json">results.json</a>, '
        '<a href="config.json">config.json</a>.</p>'
        f"<pre>{escape(detail)}</pre>"
    )


def write_report(run: RunDir, results: Mapping[str, Any] | None = None) -> str | None:
    """Write run/report.html. Returns None, or a one-line warning if rendering failed.

    Never raises. `results` defaults to the run's results.json. On failure a minimal page with
    the verdict and the error is written instead (if even that fails, the warning says so).
    """
    try:
        write_text(run.report, render_html(run, results))
        return None
    except Exception as exc:  # any bug in rendering must not cost the run its verdict
        warning = f"report.html could not be rendered: {type(exc).__name__}: {exc}"
        try:
            write_text(run.report, _fallback(run, results, warning, traceback.format_exc()))
        except Exception as again:
            warning += f" (and the fallback page failed too: {type(again).__name__}: {again})"
        return warning


def render_report(run: RunDir, results: Mapping[str, Any] | None = None) -> Path:
    """Write report.html and return its path; a failure is recorded as a warning in
    results.json (when the run has one). Never raises."""
    warning = write_report(run, results)
    if warning is not None:
        add_warning(run, warning)
    return run.report


def add_warning(run: RunDir, warning: str) -> bool:
    """Append a warning to the run's results.json; False if there is none to append to."""
    try:
        results = run.read_json(run.results)
        if not isinstance(results, dict):
            return False
        warnings = results.setdefault("warnings", [])
        if isinstance(warnings, list):
            warnings.append(warning)
        run.write_json(run.results, results)
        return True
    except (OSError, ValueError):
        return False
