"""Synthetic run directories for tests and benchmarks of the report, the index and `check`.

`build_run` writes a complete run directory per DESIGN.md — config.json, history.jsonl with
nemesis events, nodes/<node>/events.jsonl and node.log, results.json — from one seed, so the
same arguments always give the same bytes. The history is made linearizable by construction:
every call gets a hidden linearization point inside its interval and the register state is
evolved in that order. `failure="linearizability"` then corrupts one read on one key (and writes
the failure results.json a checker would); `failure="divergence"` makes one node apply a
different entry at one index. Nothing here starts a process or touches the network.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

from splitbrain.history import Call
from splitbrain.store import RunDir, timestamp

Failure = Literal["linearizability", "divergence"] | None

_START = datetime(2026, 11, 27, 6, 0, 0, tzinfo=UTC)  # wall clock of time 0 in every fake run
_MS = 1_000_000


@dataclass(slots=True)
class _Call:
    """A call being simulated: the hidden linearization point decides what it observes."""

    process: int
    f: str
    key: str
    value: Any
    start: int
    end: int | None
    point: int  # when it takes effect (ns); only meaningful for calls that take effect
    type: str = "ok"
    output: Any = None
    error: str | None = None
    node: str = "n1"
    index: int = -1  # invoke index in the history, once written
    effect: bool = False  # whether it took effect (a linearizable history orders it)
    after: Any = None  # the register's value after it took effect


def _iso(start: datetime, ns: int) -> str:
    return (start + timedelta(microseconds=ns // 1000)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _wall(start: datetime, ns: int) -> int:
    return int(start.timestamp() * 1e6) * 1000 + ns


def _nemesis_plan(rng: random.Random, nodes: list[str], end: int, interval: int) -> list[tuple]:
    """(time, f, value) fault events cycling through partition, kill, pause and net faults."""
    events: list[tuple[int, str, Any]] = []
    kinds = ["partition", "kill", "pause", "net"]
    t = interval
    i = 0
    while t + interval // 2 < end:
        kind = kinds[i % len(kinds)]
        stop = t + interval // 2
        victim = rng.choice(nodes)
        others = [n for n in nodes if n != victim]
        if kind == "partition":
            grudge = {victim: others, **{n: [victim] for n in others}}
            events += [(t, "start-partition", {"grudge": grudge, "kind": "isolate-leader"}),
                       (stop, "stop-partition", None)]
        elif kind == "kill":
            events += [(t, "kill", {"nodes": [victim]}), (stop, "start", {"nodes": [victim]})]
        elif kind == "pause":
            events += [(t, "pause", {"nodes": [victim]}), (stop, "resume", {"nodes": [victim]})]
        else:
            links = [[victim, n] for n in others]
            events += [(t, "start-net-fault", {"links": links, "delay_ms": 50, "drop": 0.2}),
                       (stop, "stop-net-fault", None)]
        t += interval
        i += 1
    return events


def _in_fault(t: int, windows: list[tuple[int, int]]) -> bool:
    return any(a <= t < b for a, b in windows)


def _simulate(rng: random.Random, *, calls: int, concurrency: int, keys: int, nodes: list[str],
              fault_windows: list[tuple[int, int]], values: list[Any]) -> list[_Call]:
    """Calls with intervals, outcomes and linearizable observations, in invocation order."""
    clocks = [rng.randrange(0, 2 * _MS) for _ in range(concurrency)]
    process = list(range(concurrency))
    out: list[_Call] = []
    for _ in range(calls):
        w = min(range(concurrency), key=clocks.__getitem__)
        start = clocks[w]
        faulty = _in_fault(start, fault_windows)
        dur = int(rng.lognormvariate(1.0, 0.6) * _MS) + 200_000
        if faulty:
            dur *= 4
        f = rng.choice(("read", "read", "write", "cas"))
        value: Any = None
        if f == "write":
            value = rng.choice(values)
        elif f == "cas":
            value = [rng.choice(values), rng.choice(values)]
        call = _Call(process[w], f, f"k{rng.randrange(keys)}", value, start, start + dur,
                     start + rng.randrange(dur), node=rng.choice(nodes))
        roll = rng.random()
        if roll < (0.25 if faulty else 0.02):
            call.type, call.error = "info", "timeout"
            process[w] += concurrency  # after info the worker continues as a new process
        elif roll < (0.45 if faulty else 0.04) and f != "read":
            call.type, call.error = "fail", "not-leader"
        out.append(call)
        clocks[w] = call.end + rng.randrange(0, _MS // 2)  # type: ignore[operator]
    # Evolve each key's register in linearization-point order to decide what was observed.
    state: dict[str, Any] = {}
    for call in sorted(out, key=lambda c: c.point):
        if call.type == "fail":
            continue
        current = state.get(call.key)
        # Reads that timed out are left out; half of the timed-out updates took effect.
        call.effect = call.type == "ok" or (call.f != "read" and call.point % 2 == 1)
        if call.f == "read":
            call.output = current
        elif call.f == "write" and call.effect:
            state[call.key] = call.value
        elif call.f == "cas" and current != call.value[0]:
            if call.type == "ok":
                call.type, call.error = "fail", "cas-mismatch"
            call.effect = False
        elif call.f == "cas" and call.effect:
            state[call.key] = call.value[1]
        call.after = state.get(call.key)
    return out


def _history_lines(calls: list[_Call], nemesis: list[tuple], open_tail: int) -> list[dict]:
    """history.jsonl objects in time order; the last `open_tail` calls never complete."""
    # At equal times a completion goes first: a process may invoke the instant it completed.
    events: list[tuple[int, int, dict, _Call | None]] = []
    for n, call in enumerate(calls):
        inv = {"process": call.process, "type": "invoke", "f": call.f, "key": call.key,
               "value": call.value if call.f != "read" else None}
        events.append((call.start, 1, inv, call))
        if n >= len(calls) - open_tail:
            call.end = None
            continue
        done: dict[str, Any] = {"process": call.process, "type": call.type, "f": call.f,
                                "key": call.key, "value": call.output if call.f == "read"
                                else call.value, "node": call.node}
        if call.error:
            done["error"] = call.error
        events.append((call.end, 0, done, None))  # type: ignore[arg-type]
    for t, f, value in nemesis:
        events.append((t, 2, {"process": "nemesis", "type": "info", "f": f, "value": value}, None))
    events.sort(key=lambda e: (e[0], e[1]))
    lines = []
    for i, (t, _, obj, call) in enumerate(events):
        if call is not None:
            call.index = i
        lines.append({"index": i, "time": t, **obj})
    return lines


def _call_json(call: _Call) -> dict[str, Any]:
    """history.Call.to_json() of a simulated call."""
    return Call(call.process, call.f, call.key, call.value,
                call.output if call.type == "ok" else None, call.type, call.start, call.end,
                call.index, None, call.node, call.error).to_json()


def _corrupt_read(calls: list[_Call]) -> _Call:
    """Make one ok read of the busiest key return a value nobody wrote; return that call."""
    counts: dict[str, int] = {}
    for c in calls:
        counts[c.key] = counts.get(c.key, 0) + 1
    key = max(sorted(counts), key=counts.__getitem__)
    reads = [c for c in calls if c.key == key and c.f == "read" and c.type == "ok"]
    bad = reads[len(reads) * 2 // 3]
    bad.output = 999_999
    return bad


def _failure(calls: list[_Call], bad: _Call) -> dict[str, Any]:
    """The linearizable checker's failure for the corrupted read, per docs/architecture.md."""
    prefix = sorted((c for c in calls if c.key == bad.key and c.effect and c.point < bad.point),
                    key=lambda c: c.point)
    current = prefix[-1].after if prefix else None
    return {
        "key": bad.key,
        "op": _call_json(bad),
        "reason": f"can't read {bad.output} from register {json.dumps(current)}",
        "prefix": [{"op": _call_json(c), "state": json.dumps(c.after)} for c in prefix],
        "model": "register",
    }


def _node_files(run: RunDir, rng: random.Random, nodes: list[str], calls: list[_Call],
                divergence: bool, end: int, started: datetime) -> dict[str, Any]:
    """events.jsonl and node.log per node; returns the log-agreement checker's result."""
    writes = [c for c in calls if c.type == "ok" and c.f in ("write", "cas")]
    writes.sort(key=lambda c: c.point)
    terms: list[tuple[int, int, str]] = []  # (from time, term, leader)
    t, term = 0, 1
    while t < end:
        terms.append((t, term, nodes[(term - 1) % len(nodes)]))
        t += rng.randrange(3_000, 9_000) * _MS
        term += 1
    leaders = {str(term): [leader] for _, term, leader in terms}

    def term_at(time: int) -> int:
        return max(tm for t0, tm, _ in terms if t0 <= time)

    entries = [(i + 1, term_at(c.point), f"c{c.process}:{i}", c.point + 100_000)
               for i, c in enumerate(writes)]
    div_index = entries[len(entries) // 2][0] if divergence and entries else None
    violations = []
    for node in nodes:
        d = run.node_dir(node)
        d.mkdir(parents=True, exist_ok=True)
        events = [{"time": _wall(started, 0), "event": "start"}]
        log = [f"{_iso(started, 0)} INFO {node} starting, peers {','.join(nodes)}"]
        for t0, tm, leader in terms:
            role = "leader" if leader == node else "follower"
            events.append({"time": _wall(started, t0), "event": "role", "role": role, "term": tm})
            log.append(f"{_iso(started, t0)} INFO {node} became {role} at term {tm}")
        for index, tm, rid, at in entries:
            if index == div_index and node == nodes[-1]:
                rid, tm = f"c99:{index}", tm + 1
            events.append({"time": _wall(started, at), "event": "apply", "index": index, "term": tm,
                           "id": rid})
            log.append(f"{_iso(started, at)} DEBUG {node} applied index {index} term {tm} id {rid}")
        events.sort(key=lambda e: e["time"])
        log.sort()
        (d / "events.jsonl").write_text("".join(json.dumps(e) + "\n" for e in events))
        (d / "node.log").write_text("\n".join(log) + "\n")
    if div_index is not None:
        index, tm, rid, _ = entries[div_index - 1]
        got = {n: {"term": tm, "id": rid} for n in nodes[:-1]}
        got[nodes[-1]] = {"term": tm + 1, "id": f"c99:{index}"}
        violations.append({"kind": "divergent-entry", "index": index, "entries": got,
                           "message": f"nodes applied different entries at index {index}"})
    return {
        "valid": not violations,
        **({"cause": violations[0]["message"]} if violations else {}),
        "violations": violations,
        "leaders": leaders,
    }


def build_run(
    base: str | Path,
    *,
    name: str = "register",
    calls: int = 400,
    concurrency: int = 5,
    keys: int = 3,
    nodes: tuple[str, ...] = ("n1", "n2", "n3"),
    seed: int = 1,
    duration_s: float | None = None,
    failure: Failure = None,
    values: list[Any] | None = None,
    open_tail: int = 1,
    when: datetime | None = None,
) -> RunDir:
    """Write a synthetic run under base/<name>/<timestamp>/ and return it.

    `values` are what writes write (default small ints); pass hostile strings to test escaping.
    `when` sets the run's start (and directory name), so indexes over several runs sort.
    """
    rng = random.Random(seed)
    values = values if values is not None else list(range(10))
    node_list = list(nodes)
    started = when or _START
    run = RunDir(Path(base) / name / timestamp(started))
    run.nodes.mkdir(parents=True, exist_ok=True)
    # A duration that keeps `concurrency` workers busy for `calls` calls of ~3 ms each.
    end = int((duration_s or max(2.0, calls * 0.004 / concurrency)) * 1e9)
    interval = max(end // 8, 200 * _MS)
    nemesis = _nemesis_plan(rng, node_list, end, interval)
    windows = [(a[0], b[0]) for a, b in zip(nemesis[::2], nemesis[1::2], strict=True)]
    # Stretch the workload to fill the run: calls are spread over [0, end].
    sim = _simulate(rng, calls=calls, concurrency=concurrency, keys=keys, nodes=node_list,
                    fault_windows=windows, values=values)
    scale = end / max(c.end or c.start for c in sim)
    for c in sim:
        c.start, c.point = int(c.start * scale), int(c.point * scale)
        c.end = int(c.end * scale) if c.end is not None else None
    bad = _corrupt_read(sim) if failure == "linearizability" else None
    lines = _history_lines(sim, nemesis, open_tail)
    failure_doc = _failure(sim, bad) if bad is not None else None
    with run.history.open("w", encoding="utf-8") as f:
        for obj in lines:
            f.write(json.dumps(obj, separators=(",", ":")) + "\n")
    agreement = _node_files(run, rng, node_list, sim, failure == "divergence", end,
                           started)
    config = {
        "name": name, "seed": seed, "workload": "register", "nodes": node_list,
        "nemesis": ["partition", "kill", "pause", "net"], "nemesis_interval": interval / 1e9,
        "time_limit": end / 1e9, "concurrency": concurrency, "rate": 100, "unsafe": [],
        "command": f"splitbrain run --workload register --seed {seed} --nemesis "
                   "partition,kill,pause,net",
        "argv": ["splitbrain", "run", "--workload", "register", "--seed", str(seed)],
        "versions": {"splitbrain": "0.1.0", "python": "3.11"},
        "started": started.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
    }
    run.write_json(run.config, config)
    linear: dict[str, Any] = {"valid": True, "keys": keys, "calls": len(sim)}
    if failure_doc is not None:
        linear = {"valid": False, "cause": f"key {failure_doc['key']}: {failure_doc['reason']}",
                  "failure": failure_doc}
    verdicts = [linear["valid"], agreement["valid"]]
    results: dict[str, Any] = {
        "valid": all(verdicts),
        "checkers": {"linearizable": linear, "log-agreement": agreement,
                     "stats": {"calls": len(sim)}},
        "warnings": [],
        "check_time_s": 0.01,
    }
    if not results["valid"]:
        results["cause"] = linear.get("cause") or agreement.get("cause")
    run.write_json(run.results, results)
    return run
