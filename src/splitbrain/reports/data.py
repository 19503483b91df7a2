"""Everything report.html shows, gathered from one run directory into plain data.

`gather` reads config.json, history.jsonl, results.json and the nodes' files, tolerating any of
them missing or malformed: what cannot be read becomes a problem listed on the page, never an
exception that would cost the engineer the rest of the report. The result has two parts: the
template's context (rendered server-side with autoescaping) and the payload the page's script
draws from (embedded as JSON).
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from splitbrain import __version__
from splitbrain.checker import stats
from splitbrain.history import Call, HistoryError, pair_calls, read_jsonl
from splitbrain.history.faults import fault_windows
from splitbrain.reports import explain, failure, nodes, timeline
from splitbrain.store import RunDir

LOG_MARGIN_S = 2.0  # seconds of node log shown either side of the failure


def _read_json(path: Path, problems: list[str]) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        problems.append(f"{path.name} is missing")
    except (OSError, ValueError) as exc:
        problems.append(f"{path.name} cannot be read: {exc}")
    return None


def started_at(config: Mapping[str, Any], run: RunDir, field: str = "started"
               ) -> datetime | None:  # fmt: skip
    """When the run started (history time 0, roughly), from config.started or the directory's
    timestamp name; None if neither says."""
    text = config.get(field)
    if isinstance(text, str):
        try:
            when = datetime.fromisoformat(text.replace("Z", "+00:00"))
            return when.astimezone(UTC) if when.tzinfo else when.replace(tzinfo=UTC)
        except ValueError:
            pass
    try:
        return datetime.strptime(run.path.name, "%Y%m%dT%H%M%S.%fZ").replace(tzinfo=UTC)
    except ValueError:
        return None


def clock_started_at(config: Mapping[str, Any], run: RunDir) -> datetime | None:
    """History time 0 on the nodes' clock (their log lines and events): config.clock_started
    when the run says (a simulation's virtual clock), else when it started."""
    if "clock_started" in config:
        return started_at(config, run, "clock_started")
    return started_at(config, run)


def _config_rows(config: Mapping[str, Any]) -> list[tuple[str, str]]:
    return [(str(k), v if isinstance(v, str) else json.dumps(v, default=str))
            for k, v in config.items() if k not in ("command", "argv")]


def _command(config: Mapping[str, Any]) -> str | None:
    if isinstance(config.get("command"), str):
        return config["command"]
    argv = config.get("argv")
    if isinstance(argv, list):
        return shlex.join(str(a) for a in argv)
    return None


def _shrunk_from(config: Mapping[str, Any]) -> dict[str, Any] | None:
    """{"ops", "faults", "run"} of the run a shrunk simulation was minimized from."""
    shrunk = config.get("shrunk_from")
    if not isinstance(shrunk, Mapping):
        return None
    ops, faults = shrunk.get("ops"), shrunk.get("faults")
    if not (isinstance(ops, int) and isinstance(faults, int)):
        return None
    return {"ops": ops, "faults": faults, "run": str(shrunk.get("run") or "")}


def _raw_links(run: RunDir, node_names: list[str]) -> list[str]:
    """The run's files a person may want raw: top level (not the report) and each node's
    (logs, events, captured output; not its data directory)."""
    dirs = [run.path, *(run.node_dir(n) for n in node_names)]
    files = [p for d in dirs if d.is_dir() for p in sorted(d.iterdir())
             if p.is_file() and p != run.report and not p.name.startswith(".")]
    return [p.relative_to(run.path).as_posix() for p in files]


def _divergence(run: RunDir, agreement: Mapping[str, Any], node_names: list[str]
                ) -> dict[str, Any] | None:
    if agreement.get("valid") is not False:
        return None
    violations = [v for v in agreement.get("violations") or [] if isinstance(v, Mapping)]
    leaders = agreement.get("leaders")
    if not isinstance(leaders, Mapping) or not leaders:
        leaders = nodes.leaders_from_events(run, node_names)
    leader_rows = sorted(((str(t), ", ".join(map(str, ns if isinstance(ns, list) else [ns])))
                          for t, ns in leaders.items()),
                         key=lambda r: (len(r[0]), r[0]))
    indexed = [v for v in violations if isinstance(v.get("index"), int)]
    first = min(indexed, key=lambda v: v["index"]) if indexed else None
    # Durable state and the nodes' own invariants carry when they broke, not an index.
    timed = [v["time"] for v in violations if type(v.get("time")) is int and v["time"] > 0]
    out: dict[str, Any] = {"violations": [(str(v.get("kind", "?")), str(v.get("message", "")))
                                          for v in violations],
                           "leaders": leader_rows, "when": min(timed) if timed else None}
    if first is not None:
        index = first["index"]
        names = list(node_names)
        entries = first.get("entries") if isinstance(first.get("entries"), Mapping) else {}
        names += [str(n) for n in entries if str(n) not in names]
        indexes, table, when = nodes.applied_around(run, names, index)
        for node, e in entries.items():  # the checker's word for the divergent index wins
            if isinstance(e, Mapping):
                table.setdefault(str(node), {})[index] = f"term {e.get('term')} · {e.get('id')}"
        out.update(index=index, indexes=indexes, nodes=names, table=table,
                   when=min(when.values()) if when else None)
    return out


def _minimal(shrunk: Any) -> dict[str, Any] | None:
    """The minimal failing set `check --shrink` found, laid out like the failure."""
    if not isinstance(shrunk, Mapping) or not isinstance(shrunk.get("failure"), Mapping):
        return None
    calls = [c for c in shrunk.get("calls") or [] if isinstance(c, Mapping)]
    return {"key": shrunk.get("key"), "before": shrunk.get("before"), "after": len(calls),
            "minimal": shrunk.get("minimal", True),
            "view": failure.layout(shrunk["failure"], calls),
            "calls": [{"what": explain.describe_call(c), "start": c.get("start"),
                       "end": c.get("end")} for c in calls]}


def _log_window(started: datetime | None, fail_view: Mapping[str, Any] | None,
                divergence: Mapping[str, Any] | None) -> tuple[float, float] | None:
    """Unix seconds of node log to show: around the failing op, else the divergent apply
    (None: no failure, or no way to place history time on the wall clock)."""
    if fail_view is not None and started is not None:
        lo = started.timestamp() + fail_view["op_start"] / 1e9
        hi = lo if fail_view["op_end"] is None else started.timestamp() + fail_view["op_end"] / 1e9
        return lo - LOG_MARGIN_S, hi + LOG_MARGIN_S
    if divergence and divergence.get("when") is not None:
        t = divergence["when"] / 1e9
        return t - LOG_MARGIN_S, t + LOG_MARGIN_S
    return None


def run_size(run: RunDir) -> tuple[int, int]:
    """(operations, fault windows) of a run, counted as its report counts them (a shrunk
    simulation's report compares these with the run it was minimized from)."""
    history = read_jsonl(run.history)
    calls = pair_calls(history.ops)
    windows = fault_windows(history.nemesis_ops, stats.history_end(calls, history.nemesis_ops))
    return len(calls), len(windows)


def gather(run: RunDir, results: Mapping[str, Any] | None) -> tuple[dict[str, Any], dict]:
    """(template context, script payload) for the run's report."""
    problems: list[str] = []
    config = _read_json(run.config, problems)
    config = config if isinstance(config, Mapping) else {}
    if results is None:
        results = _read_json(run.results, problems) if run.results.exists() else None
    results = results if isinstance(results, Mapping) else None
    calls: list[Call] = []
    nemesis: tuple = ()
    try:
        history = read_jsonl(run.history)
        problems += history.warnings
        calls = pair_calls(history.ops)
        nemesis = history.nemesis_ops
    except HistoryError as exc:
        problems.append(f"the history cannot be read: {exc}")
    end = stats.history_end(calls, nemesis)  # as the stats checker: the same windows and numbers
    windows = fault_windows(nemesis, end)
    node_names = run.node_names() or [str(n) for n in config.get("nodes") or []]
    checkers = results.get("checkers") if results else None
    checkers = checkers if isinstance(checkers, Mapping) else {}
    concurrency = config.get("concurrency")
    concurrency = concurrency if isinstance(concurrency, int) and concurrency > 0 else None

    linear = checkers.get("linearizable")
    fail_doc = linear.get("failure") if isinstance(linear, Mapping) else None
    fail_view = None
    if isinstance(fail_doc, Mapping):
        key = fail_doc.get("key")
        fail_view = failure.layout(fail_doc, [c.to_json() for c in calls if c.key == key])
    minimal = _minimal(linear.get("shrunk") if isinstance(linear, Mapping) else None)
    agreement = checkers.get("log-agreement")
    divergence = (_divergence(run, agreement, node_names)
                  if isinstance(agreement, Mapping) else None)

    window = _log_window(clock_started_at(config, run), fail_view, divergence)
    excerpts = [e for n in node_names if (e := nodes.excerpt(run, n, window)) is not None]

    valid = results.get("valid") if results else None
    context = {
        "title": f"{config.get('name') or run.path.parent.name} · {run.path.name}",
        "run_path": str(run.path),
        "generated": datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S UTC"),
        "version": __version__,
        "verdict": explain.verdict_name(valid) if results else "not checked",
        "cause": results.get("cause") if results else "results.json is missing: run "
                                                        "`splitbrain check` on this directory",
        "accounts": explain.accounts(results),
        "warnings": [str(w) for w in (results.get("warnings") or [])] if results else [],
        "problems": problems,
        "seed": config.get("seed"),
        "command": _command(config),
        "config": _config_rows(config),
        "summary": {"workload": config.get("workload"), "nodes": node_names,
                    "target": config.get("target_name") or config.get("target"),
                    "network": config.get("network"),
                    "calls": len(calls), "duration": end / 1e9, "started": config.get("started"),
                    "faults": len(windows),
                    "unsafe": [str(u) for u in config.get("unsafe") or []],
                    "mode": config.get("mode"),
                    "shrunk_from": _shrunk_from(config)},
        "availability": stats.availability(calls, windows, end),
        "latency": stats.latency_quantiles(calls),
        "quantiles": stats.QUANTILES,
        "failure": fail_view,
        "minimal": minimal,
        "divergence": divergence,
        "logs": excerpts,
        "raw": _raw_links(run, node_names),
    }
    payload = {
        **timeline.columns(calls, concurrency),
        "end": end // 1000,
        "faults": [{**w.to_json(), "start": w.start // 1000, "end": w.end // 1000}
                   for w in windows],
        "failure": None if fail_view is None else {
            "invoke_index": fail_view["invoke_index"], "key": fail_view["key"],
            "window": [t // 1000 for t in fail_view["window"]]},
    }
    return context, payload
