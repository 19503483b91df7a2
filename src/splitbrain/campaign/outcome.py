"""What one run of a campaign came to, and the campaign's exit code over all of them.

A `RunOutcome` is read from the run's exit code and its results.json on the worker that ran it;
it is what campaign.json, campaign.html, the JUnit XML and the summary are made of.

Verdicts: valid, invalid, unknown (the checker could not decide; the cause says why) and
"could not run" (no verdict: the run failed to start, its harness crashed, it exceeded its
time, or the worker running it was lost). The failure kind names what failed: the checkers
that found the history invalid ("linearizable", "log-agreement: divergent-entry"), those that
could not decide, or why there was no verdict ("harness", "usage", "timeout", "worker-lost",
"interrupted").
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from splitbrain.campaign.matrix import RunSpec
from splitbrain.exitcodes import COULD_NOT_RUN, INVALID, UNKNOWN, USAGE, VALID

VERDICTS = ("valid", "invalid", "unknown", "could not run")
_BY_CODE = {VALID: "valid", INVALID: "invalid", UNKNOWN: "unknown"}


@dataclass(frozen=True)
class RunOutcome:
    """One run's result, as campaign.json records it."""

    id: str
    configuration: str  # the label runs of the same configuration share
    config: dict[str, str]  # axis -> value
    mode: str
    seed: int
    command: str  # reproduces the run
    verdict: str  # one of VERDICTS
    cause: str  # one line: why it is not valid ("" when valid)
    failure_kind: str  # what failed ("" when valid)
    explanation: str  # cause and, for a linearizability failure, the steps before it
    exit_code: int | None  # of the run command; None if it never ran to an end
    duration_s: float
    run_dir: str | None  # relative to the campaign directory
    report: str | None  # relative to the campaign directory, when the run wrote one
    worker: str = ""  # the Dask worker that ran it

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> RunOutcome:
        return cls(**{k: data[k] for k in cls.__dataclass_fields__ if k in data})


def without_verdict(spec: RunSpec, kind: str, cause: str, *, duration_s: float = 0.0,
                    worker: str = "", exit_code: int | None = None,
                    run_dir: str | None = None) -> RunOutcome:
    """A run that gave no verdict ("could not run")."""
    return RunOutcome(spec.id, spec.configuration, dict(spec.config), spec.mode, spec.seed,
                      spec.command(), "could not run", cause, kind, cause, exit_code,
                      round(duration_s, 3), run_dir, None, worker)


def read_outcome(spec: RunSpec, code: int | None, run_dir: Path | None, rel_dir: str | None,
                 duration_s: float, console_tail: str, worker: str = "") -> RunOutcome:
    """The outcome of a run that ended with `code`, from its run directory (if it made one)."""
    results = _results(run_dir)
    if code in _BY_CODE and results is not None and "valid" in results:
        verdict = _verdict(results.get("valid"))
        cause = "" if verdict == "valid" else str(results.get("cause") or verdict)
        report = f"{rel_dir}/report.html" if run_dir and (run_dir / "report.html").is_file() \
            else None
        return RunOutcome(spec.id, spec.configuration, dict(spec.config), spec.mode, spec.seed,
                          spec.command(), verdict, cause, _failure_kind(results, verdict),
                          _explanation(results, cause), code, round(duration_s, 3), rel_dir,
                          report, worker)
    if code is None:
        kind, cause = "timeout", f"did not finish in time; {console_tail}".rstrip("; ")
    elif code == USAGE:
        kind, cause = "usage", console_tail or "bad usage (exit 64)"
    elif code == COULD_NOT_RUN:
        kind, cause = "harness", _harness_error(run_dir) or console_tail or "could not run"
    elif code < 0:
        kind, cause = "killed", f"killed by signal {-code}"
    else:
        kind, cause = f"exit {code}", console_tail or f"exited with {code}"
    return without_verdict(spec, kind, cause, duration_s=duration_s, worker=worker,
                           exit_code=code, run_dir=rel_dir)


def _results(run_dir: Path | None) -> dict[str, Any] | None:
    if run_dir is None:
        return None
    try:
        data = json.loads((run_dir / "results.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _verdict(valid: Any) -> str:
    return {True: "valid", False: "invalid"}.get(valid, "unknown")  # type: ignore[arg-type]


def _failure_kind(results: Mapping[str, Any], verdict: str) -> str:
    """The checkers that gave the verdict, with the kinds of violations they found."""
    if verdict == "valid":
        return ""
    checkers = results.get("checkers")
    kinds = []
    for name, result in (checkers.items() if isinstance(checkers, Mapping) else []):
        if not isinstance(result, Mapping) or _verdict(result.get("valid")) != verdict \
                or result.get("valid") not in (True, False, "unknown"):
            continue
        violations = result.get("violations")
        found = sorted({str(v.get("kind")) for v in violations if isinstance(v, Mapping)}) \
            if isinstance(violations, list) else []
        kinds.append(f"{name}: {', '.join(found)}" if found else str(name))
    return "; ".join(kinds) or verdict


def _explanation(results: Mapping[str, Any], cause: str) -> str:
    from splitbrain.checker.command import failure_story

    lines = [cause] if cause else []
    checkers = results.get("checkers")
    linear = checkers.get("linearizable") if isinstance(checkers, Mapping) else None
    failure = linear.get("failure") if isinstance(linear, Mapping) else None
    # a results.json of another shape still has its cause: keep that and go on
    with contextlib.suppress(KeyError, TypeError, AttributeError):
        if isinstance(failure, Mapping):
            lines += failure_story(dict(failure))
    return "\n".join(lines)


def _harness_error(run_dir: Path | None) -> str:
    """The last line of the run's traceback (harness-error.txt), if it wrote one."""
    if run_dir is None:
        return ""
    try:
        lines = (run_dir / "harness-error.txt").read_text(errors="replace").strip().splitlines()
    except OSError:
        return ""
    return lines[-1] if lines else ""


def exit_code(verdicts: Iterable[str]) -> int:
    """The campaign's exit code: 1 if any run is invalid, else 2 if any is unknown, else 3 if
    any could not run (or never ran), else 0 (DESIGN.md)."""
    seen = set(verdicts)
    if "invalid" in seen:
        return INVALID
    if "unknown" in seen:
        return UNKNOWN
    if seen - {"valid"}:
        return COULD_NOT_RUN
    return VALID
