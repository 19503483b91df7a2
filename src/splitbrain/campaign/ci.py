"""What a CI job shows of a campaign: JUnit XML and a markdown summary.

JUnit: one testsuite per configuration, one testcase per run (name "seed N"). Invalid is a
<failure>, unknown and could-not-run are <error>s (type says which), and "not run" is
<skipped>; the message is the cause, the body the explanation, the report's path and the
command that reproduces the run. It follows the Jenkins/Surefire JUnit schema (the one pytest
validates its own --junitxml against). Text from histories may hold any character: those XML
1.0 cannot carry are replaced, so the file always parses.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from splitbrain.campaign.directory import CampaignDir

_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_ELEMENT = {"invalid": "failure", "unknown": "error", "could not run": "error",
            "not run": "skipped"}


def _text(value: Any) -> str:
    return _NOT_XML.sub("\ufffd", str(value))


def _report_path(run: Mapping[str, Any], cdir: CampaignDir) -> str:
    rel = run.get("report") or run.get("run_dir")
    return str(cdir.path / rel) if isinstance(rel, str) else "(none)"


def junit_xml(doc: Mapping[str, Any], cdir: CampaignDir) -> str:
    runs = [r for r in doc.get("runs") or [] if isinstance(r, Mapping)]
    root = ET.Element("testsuites", name=_text(f"splitbrain campaign {doc.get('name')}"),
                      tests=str(len(runs)),
                      failures=str(sum(1 for r in runs if r.get("verdict") == "invalid")),
                      errors=str(sum(1 for r in runs if _ELEMENT.get(r.get("verdict")) == "error")),
                      time=f"{sum(float(r.get('duration_s') or 0) for r in runs):.3f}")
    by_config: dict[str, list[Mapping[str, Any]]] = {}
    for r in runs:
        by_config.setdefault(str(r.get("configuration")), []).append(r)
    for label, group in by_config.items():
        suite = ET.SubElement(
            root, "testsuite", name=_text(label), tests=str(len(group)),
            failures=str(sum(1 for r in group if r.get("verdict") == "invalid")),
            errors=str(sum(1 for r in group if _ELEMENT.get(r.get("verdict")) == "error")),
            skipped=str(sum(1 for r in group if r.get("verdict") == "not run")),
            time=f"{sum(float(r.get('duration_s') or 0) for r in group):.3f}")
        for r in group:
            case = ET.SubElement(suite, "testcase", name=f"seed {r.get('seed')}",
                                 classname=_text(f"{doc.get('name')}.{label}"),
                                 time=f"{float(r.get('duration_s') or 0):.3f}")
            verdict = str(r.get("verdict"))
            report = _report_path(r, cdir)
            element = _ELEMENT.get(verdict)
            if element is not None:
                problem = ET.SubElement(case, element, type=_text(verdict),
                                        message=_text(r.get("cause") or verdict))
                problem.text = _text(f"{verdict}: {r.get('explanation') or r.get('cause')}\n"
                                     f"what failed: {r.get('failure_kind')}\n"
                                     f"report: {report}\nreproduce: {r.get('command')}")
            out = ET.SubElement(case, "system-out")
            out.text = _text(f"verdict: {verdict}\nreport: {report}\n"
                             f"reproduce: {r.get('command')}")
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"


def write_junit(path: Path, doc: Mapping[str, Any], cdir: CampaignDir) -> None:
    path.write_text(junit_xml(doc, cdir), encoding="utf-8")


def _cell(text: Any) -> str:
    """Markdown table cell text: one line, pipes and HTML escaped, not too long."""
    line = " ".join(str(text).split()).replace("|", "\\|")
    line = line.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return line if len(line) <= 160 else line[:157] + "..."


def summary_markdown(doc: Mapping[str, Any], cdir: CampaignDir) -> str:
    counts = doc.get("counts") or {}
    runs = [r for r in doc.get("runs") or [] if isinstance(r, Mapping)]
    lines = [f"## splitbrain campaign {_cell(doc.get('name'))}: exit {doc.get('exit_code')}", "",
             ", ".join(f"**{n}** {v}" for v, n in counts.items() if n) + f" of {len(runs)} runs"
             + ("" if doc.get("finished") else " (interrupted: resume with --resume)"), "",
             "| configuration | runs | invalid | unknown | could not run | catch rate | "
             "flake rate |", "|---|---:|---:|---:|---:|---|---|"]
    for c in doc.get("configurations") or []:
        k = c["counts"]
        lines.append(
            f"| {_cell(c['configuration'])} | {c['runs']} | {k['invalid']} | {k['unknown']} | "
            f"{k['could not run'] + k['not run']} | {_rate(c['catch_rate'])} | "
            f"{_rate(c['flake_rate'])} |")
    failing = [r for r in runs if r.get("verdict") != "valid"]
    if failing:
        lines += ["", "| run | verdict | cause | report |", "|---|---|---|---|"]
        lines += [f"| {_cell(r.get('id'))} | {r.get('verdict')} | {_cell(r.get('cause'))} | "
                  f"`{_cell(_report_path(r, cdir))}` |" for r in failing[:50]]
        if len(failing) > 50:
            lines.append(f"\n{len(failing) - 50} more in campaign.json")
    lines += ["", f"Campaign report: `{cdir.html}`", ""]
    return "\n".join(lines)


def _rate(r: Mapping[str, Any]) -> str:
    return f"{r['rate']:.0%} ({r['low']:.0%}–{r['high']:.0%})"


def write_summary(path: Path, doc: Mapping[str, Any], cdir: CampaignDir) -> None:
    path.write_text(summary_markdown(doc, cdir), encoding="utf-8")
