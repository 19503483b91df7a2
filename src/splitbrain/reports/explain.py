"""Plain-English accounts of checker results for the verdict banner.

Each account is one or two sentences a person can act on without opening the history: what
was checked, what went wrong and where, or why no verdict could be reached. Results come from
results.json and may lack any field, so every lookup tolerates absence. Pure.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from splitbrain.checker.agreement import NODE_KINDS
from splitbrain.checker.read_safety import RULES as READ_RULES


@dataclass(frozen=True, slots=True)
class Account:
    """What one checker concluded, for people."""

    checker: str
    verdict: str  # valid, invalid, unknown, not-run
    text: str


def verdict_name(valid: Any) -> str:
    if valid is True:
        return "valid"
    if valid is False:
        return "invalid"
    return "unknown"


def seconds(ns: Any) -> str:
    return f"{ns / 1e9:.3f} s" if isinstance(ns, int | float) else "an unknown time"


def describe_call(op: Mapping[str, Any]) -> str:
    """'process 3's read of k1 (returned 4)' from a Call.to_json() dict."""
    f = op.get("f", "?")
    key = f" of {op['key']}" if op.get("key") is not None else ""
    value = op.get("value")
    what = f"{f}{key}"
    if f in ("write", "put", "append", "cas") and value is not None:
        what += f" {json.dumps(value, default=str)}"
    if op.get("type") == "ok" and op.get("output") not in (None, value):
        what += f" (returned {json.dumps(op['output'], default=str)})"
    elif op.get("type") in ("fail", "info"):
        what += f" ({op['type']}{': ' + str(op['error']) if op.get('error') else ''})"
    return f"process {op.get('process', '?')}'s {what}"


def _linearizable(result: Mapping[str, Any]) -> str:
    valid = result.get("valid")
    if valid is True:
        n = result.get("calls")
        keys = result.get("keys")
        counts = f" all {n} operations" if n is not None else " the operations"
        where = f" on {keys} keys" if keys is not None else ""
        return (f"Linearizable:{counts}{where} fit one order that respects real time and the "
                "register's rules.")
    failure = result.get("failure")
    if valid is False and isinstance(failure, Mapping):
        op = failure.get("op")
        prefix = failure.get("prefix") or []
        if not isinstance(op, Mapping):
            return (f"Not linearizable on key {failure.get('key', '?')}: after the "
                    f"{len(prefix)} operations that could be ordered, "
                    f"{failure.get('reason', 'no reason given')}.")
        return (f"Not linearizable on key {failure.get('key', '?')}: {describe_call(op)}, "
                f"invoked at {seconds(op.get('start'))}, cannot be placed after the "
                f"{len(prefix)} operations that could be ordered before it — "
                f"{failure.get('reason', 'no reason given')}.")
    if valid is False:
        return f"Not linearizable: {result.get('cause', 'no cause given')}."
    return (f"No verdict: {result.get('cause', 'no cause given')}. The search for an order gave "
            "up (time or memory limit) or could not run; the history is neither proven "
            "linearizable nor shown to be wrong.")


def _log_agreement(result: Mapping[str, Any]) -> str:
    valid = result.get("valid")
    if valid is True:
        return ("Logs agree: every node that applied an index applied the same entry, with at "
                "most one leader per term and every acknowledged write committed exactly once.")
    if valid is False:
        violations = result.get("violations") or []
        first = violations[0] if violations and isinstance(violations[0], Mapping) else {}
        entries = first.get("entries")
        if first.get("kind") == "divergent-entry" and isinstance(entries, Mapping):
            sides = "; ".join(
                f"{node} applied term {e.get('term')} id {e.get('id')}"
                for node, e in entries.items() if isinstance(e, Mapping)
            )
            return f"Logs disagree at index {first.get('index', '?')}: {sides}."
        more = f" ({len(violations)} violations)" if len(violations) > 1 else ""
        msg = first.get("message") or result.get("cause", "no cause given")
        if first.get("kind") in NODE_KINDS or "event" in first:
            return f"A node broke a Raft invariant: {msg}{more}."
        if first.get("kind") == "unsafe-commit":
            return f"An entry was committed that an election could still replace: {msg}{more}."
        if first.get("kind") in READ_RULES:
            return f"A read was answered from a view that may be stale: {msg}{more}."
        return f"Logs disagree: {msg}{more}."
    return f"Log agreement could not be decided: {result.get('cause', 'no cause given')}."


def _restarts(result: Mapping[str, Any]) -> str:
    if result.get("valid") is True:
        return (f"No node exited by itself, and every node a fault stopped started again on "
                f"its own files ({result.get('checked', 0)} starts).")
    if result.get("valid") is False and result.get("exit_count"):
        return (f"A node exited by itself while running, with no fault to stop it (an "
                f"exception, an assertion, a self-check that gave up; its output ends the "
                f"message): {result.get('cause', 'no cause given')}.")
    if result.get("valid") is False:
        return (f"A node refused to start on the files its earlier lives left, after a fault "
                f"that should not stop it (a kill, a power loss, a crash point, a pause): "
                f"{result.get('cause', 'no cause given')}.")
    return f"Restarts could not be judged: {result.get('cause', 'no cause given')}."


_EXPLAIN = {"linearizable": _linearizable, "log-agreement": _log_agreement,
            "restarts": _restarts}


def accounts(results: Mapping[str, Any] | None) -> list[Account]:
    """One account per checker that reached a verdict or was not run (stats and others without
    a verdict are skipped)."""
    if not isinstance(results, Mapping):
        return []
    checkers = results.get("checkers")
    out = []
    for name, result in (checkers.items() if isinstance(checkers, Mapping) else ()):
        if not isinstance(result, Mapping) or "valid" not in result:
            continue
        explain = _EXPLAIN.get(name)
        if result["valid"] == "not-run":  # the target lacks what it needs: said, never green
            out.append(Account(name, "not-run", f"Not run: {result.get('reason', 'no reason')}."))
            continue
        if explain is not None:
            text = explain(result)
        elif result["valid"] is True:
            text = "Passed."
        else:
            text = str(result.get("cause", "no cause given"))
        out.append(Account(name, verdict_name(result["valid"]), text))
    return out
