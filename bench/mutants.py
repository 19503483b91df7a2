"""Mutation bench: how many realistic Raft bugs splitbrain catches, and how fast (JSON).

    python bench/mutants.py [--mutants ID,ID] [--configs default,all,sim,sim-all] [--seeds 1,2]
                            [--jobs 1] [--output FILE] [--keep DIR] [--no-control] [--list]
                            [--sim-seeds N] [--sim-arg ARG] [--run-arg ARG]
                            [--shrink [--shrink-budget S]]

The corpus is bench/mutants/<category>.toml: each mutant is one realistic bug in the bundled
Raft, written as an exact snippet of src/splitbrain/<file> that must occur exactly once and its
replacement (so a mutant survives unrelated edits, and a refactor that breaks one fails
tests/bench/test_mutants_apply.py rather than silently testing nothing). Nothing in src/ can
switch a mutant on: the bench copies src/splitbrain into a temporary directory, applies one
mutant there and runs each configuration with that copy first on PYTHONPATH, which every
process the run spawns (nodes, proxies) inherits; before running, it checks that a child
interpreter imports the copy. The unmutated copy runs as the `control` row: any catch there
is a false alarm and invalidates the measurement. A mutant may name run arguments of its own
(`args`, e.g. lease mutants: `--node-arg=--read-mode=lease`, without which the code they
break never runs): every configuration adds them to its command, and the unmutated copy runs
once more with each such set (row `control <args>`), so a false alarm of that mode shows.
A mutant may be `equivalent = "why no execution can observe it"`: a change of the code that
our runtime never lets show (argued in the corpus, from the code). Such a mutant is run only
when named with --mutants, never counts in a catch rate, and the JSON (`equivalent`) and the
table list it with its reason.

Configurations (CONFIGURATIONS, a registry): `default` (`splitbrain run` defaults, 30 s),
`all` (`splitbrain run --nemesis all --time-limit 60`), `sim` (`splitbrain sim --seeds N
--seed SEED`: its default swarm exploration from the bench's seed on, in a 60 s wall budget;
reported "not available" where the simulator does not exist; the first seed only; with
`--sim-seeds N`, exactly N seeds, and the share that fail is the mutant's per-seed catch rate:
one exploration that stops at its first failure is a noisy measure of a rare bug), and
`sim-all` (the same with the schedule of `all` pinned, SIM_ALL: a paired, seeded stand-in for
`all` runs, to judge a change to the nemesis over the corpus in minutes); `--sim-arg ARG`
gives both sim configurations a setting of their own (e.g. `--sim-arg=--timeouts=1,0` to
compare a setting the swarm draws with its alternative, paired seed for seed), and
`--run-arg ARG` gives `default` and `all` one (given after theirs, so it replaces theirs: e.g.
`--run-arg=--nemesis=all,clock`). Per mutant
x configuration x seed: the outcome (caught = exit 1; valid 0, unknown 2, could-not-run 3,
usage 64, timeout: a run that did not finish is no catch), the checker and violation kind that
caught it, the time to detection (run: seconds into the run of the first anomalous operation
or violation, splitbrain.testing.detection; sim: wall seconds until the first failing seed was
printed) and the wall time; for sim, how many seeds ran and how many failed (`seeds_run`,
`seeds_failed`). stdout: one JSON object; stderr: progress,
then a table with the catch rate of each configuration.

`--shrink` minimizes each failure the simulator found (`splitbrain sim --shrink` on the failing
seed's run, with the same mutated copy, in a --shrink-budget of wall seconds) and records its
size before and after (`shrunk`: ops and faults, from the line `minimized from X ops / Y
faults to x / y`); the summary gives the medians.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import tomllib
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

from splitbrain.config import RunConfig
from splitbrain.store import RunDir
from splitbrain.testing.detection import detect

REPO = Path(__file__).resolve().parent.parent
PACKAGE = REPO / "src" / "splitbrain"  # what the mutants patch (a copy of it)
CORPUS = REPO / "bench" / "mutants"
CONTROL = "control"

# The categories, one corpus file each (bench/mutants/<category>.toml).
CATEGORIES = {
    "reads": "read serving (ReadIndex, leases)",
    "append": "AppendEntries consistency and truncation",
    "commit": "commit-index rules",
    "elections": "elections and vote counting",
    "persistence": "persistence of term, vote and log; order of fsync and send",
    "wal-recovery": "WAL recovery",
    "sessions": "client sessions and exactly-once",
    "apply": "apply order",
    "snapshots": "snapshots, log compaction and InstallSnapshot",
}

OUTCOMES = {0: "valid", 1: "caught", 2: "unknown", 3: "could-not-run", 64: "usage"}


class CorpusError(Exception):
    """A corpus file or mutant that cannot be used (names the file, the mutant and the field)."""


@dataclass(frozen=True, slots=True)
class Mutant:
    id: str
    category: str  # a key of CATEGORIES: the corpus file it comes from
    description: str  # the real bug class it stands for, in one line
    file: str  # relative to src/splitbrain, e.g. "raft/raft.py"
    find: str  # occurs exactly once in that file
    replace: str
    # what every configuration adds to run it: a lease mutant matters only with lease reads
    args: tuple[str, ...] = ()
    equivalent: str | None = None  # why no execution can observe it (None: it is a real bug)


def load_corpus(directory: Path = CORPUS) -> list[Mutant]:
    """Every mutant of every category file, in category order; CorpusError on a bad entry."""
    mutants: list[Mutant] = []
    seen: dict[str, str] = {}
    for category in CATEGORIES:
        path = directory / f"{category}.toml"
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise CorpusError(f"{path}: {exc}") from None
        for n, entry in enumerate(data.get("mutant", []), start=1):
            where = f"{path}: mutant {n}"
            fields = {}
            for name in ("id", "description", "file", "find", "replace"):
                value = entry.get(name)
                if not isinstance(value, str) or (name != "replace" and not value.strip()):
                    raise CorpusError(f"{where}: field {name!r} must be a non-empty string")
                fields[name] = value
            mid = fields["id"]
            if mid in seen:
                raise CorpusError(f"{where}: id {mid!r} is already used in {seen[mid]}")
            if fields["find"] == fields["replace"]:
                raise CorpusError(f"{where} ({mid}): replace equals find")
            extra = entry.get("args", [])
            if not isinstance(extra, list) or not all(isinstance(a, str) for a in extra):
                raise CorpusError(f"{where} ({mid}): field 'args' must be a list of strings")
            equivalent = entry.get("equivalent")
            if equivalent is not None and (not isinstance(equivalent, str)
                                           or not equivalent.strip()):
                raise CorpusError(f"{where} ({mid}): field 'equivalent' must be a non-empty "
                                  "string (why no execution can observe the mutant)")
            seen[mid] = str(path)
            mutants.append(Mutant(category=category, args=tuple(extra), equivalent=equivalent,
                                  **fields))
    unknown = sorted(p.stem for p in directory.glob("*.toml") if p.stem not in CATEGORIES)
    if unknown:
        raise CorpusError(f"{directory}: unknown category file(s): {', '.join(unknown)}")
    return mutants


def mutate(mutant: Mutant, source: str) -> str:
    """`source` with the mutant applied; CorpusError unless its snippet occurs exactly once."""
    count = source.count(mutant.find)
    if count != 1:
        raise CorpusError(f"mutant {mutant.id}: its snippet occurs {count} times in "
                          f"src/splitbrain/{mutant.file} (must be exactly once):\n{mutant.find}")
    return source.replace(mutant.find, mutant.replace)


def mutated_tree(mutant: Mutant | None, dest: Path) -> Path:
    """Copy the package to dest/splitbrain with `mutant` applied (None: the control); returns
    the directory to put first on PYTHONPATH."""
    target = dest / "splitbrain"
    shutil.copytree(PACKAGE, target, ignore=shutil.ignore_patterns("__pycache__"))
    if mutant is not None:
        path = target / mutant.file
        path.write_text(mutate(mutant, path.read_text(encoding="utf-8")), encoding="utf-8")
    return dest


def child_env(tree: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(tree), env.get("PYTHONPATH")) if p)
    return env


def check_imports_copy(tree: Path) -> None:
    """A child interpreter with this environment (as every node is) must import the copy."""
    probe = subprocess.run(
        [sys.executable, "-c", "import splitbrain.raft.raft as m; print(m.__file__)"],
        env=child_env(tree), cwd=tree, capture_output=True, text=True, timeout=60,
    )
    where = Path(probe.stdout.strip() or "?").resolve()
    if probe.returncode != 0 or not where.is_relative_to(tree.resolve()):
        raise RuntimeError(f"a child process imports {where}, not the mutated copy in {tree}: "
                           f"{probe.stderr.strip()}")


# -- configurations --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Configuration:
    name: str
    argv: Callable[[int, Path], list[str]]  # (seed, output dir) -> splitbrain arguments
    timeout: float  # seconds before the bench gives up on one run (recorded as "timeout")
    kind: Literal["run", "sim"]  # how detection is timed: from the run directory, or the output


def run_argv(*extra: str) -> Callable[[int, Path], list[str]]:
    return lambda seed, out: ["run", *extra, "--seed", str(seed), "--out", str(out)]


SIM_SEEDS = 100_000  # more than 60 s can explore: the wall budget decides
SIM_BUDGET = 60.0
SIM_SEED_TIMEOUT = 2.0  # wall seconds a --sim-seeds run allows per seed, on a 2-core machine
# `sim-all`: the schedule of `all` (its faults, the bundled Raft's interval, the default five
# nodes) in the simulator, every other setting drawn per seed; SIM_ALL_TIME virtual seconds
# per seed. A seeded, paired stand-in for real `all` runs: two versions of the nemesis meet
# the same seeds, so a change to the schedule can be judged over the corpus in minutes.
SIM_ALL_TIME = 10.0
SIM_ALL = ("--nodes", str(RunConfig.nodes), "--nemesis", "all",
           "--nemesis-interval", f"{RunConfig.nemesis_interval:g}",
           "--time-limit", f"{SIM_ALL_TIME:g}")  # fmt: skip


def sim_configuration(seeds: int | None = None, name: str = "sim", pinned: Sequence[str] = (),
                      per_seed: float = SIM_SEED_TIMEOUT) -> Configuration:  # fmt: skip
    """`sim`: explore from the bench's seed until the first failing seed or SIM_BUDGET wall
    seconds; with `seeds`, run exactly that many seeds instead (a per-seed catch rate).
    `pinned`: settings given to every seed (the rest are drawn), `per_seed` its timeout."""
    if seeds is None:
        count, limits = SIM_SEEDS, ["--time-budget", f"{SIM_BUDGET:g}", "--stop-on-failure"]
        timeout = SIM_BUDGET + 240
    else:
        count, limits, timeout = seeds, [], seeds * per_seed + 240
    return Configuration(
        name,
        lambda seed, out: ["sim", "--seeds", str(count), "--seed", str(seed), *pinned, *limits,
                           "--out", str(out)],
        timeout=timeout, kind="sim")  # fmt: skip


def sim_all(seeds: int | None = None, extra: Sequence[str] = ()) -> Configuration:
    return sim_configuration(seeds, "sim-all", (*SIM_ALL, *extra), per_seed=SIM_SEED_TIMEOUT * 2)


def run_configurations(extra: Sequence[str] = ()) -> dict[str, Configuration]:
    """`default` and `all`, with `extra` arguments after their own."""
    return {
        "default": Configuration("default", run_argv(*extra), timeout=300, kind="run"),
        "all": Configuration("all", run_argv("--nemesis", "all", "--time-limit", "60", *extra),
                             timeout=400, kind="run"),
    }


CONFIGURATIONS: dict[str, Configuration] = {
    **run_configurations(),
    "sim": sim_configuration(),
    "sim-all": sim_all(),
}


def unavailable(config: Configuration) -> str | None:
    """Why `config` cannot run with this checkout (None if it can)."""
    command = config.argv(0, Path())[0]
    probe = subprocess.run([sys.executable, "-m", "splitbrain", command, "--help"],
                           env=child_env(PACKAGE.parent), capture_output=True, timeout=60)
    if probe.returncode != 0:
        return f"not available: `splitbrain {command}` does not exist in this checkout"
    return None


# -- one run -----------------------------------------------------------------------------------

_live: set[subprocess.Popen[bytes]] = set()
_live_lock = threading.Lock()
_stopping = threading.Event()  # set on the way out: start nothing more
_FAILING_SEED = re.compile(r"\b(fail|invalid)", re.IGNORECASE)
_EXPLORED = re.compile(r"^(\d+) seeds in .*?(\d+) invalid", re.MULTILINE)  # sim's summary


def outcome(code: int | None) -> str:
    """What an exit code means for the bench; only "caught" counts as a catch."""
    if code is None:
        return "timeout"
    return OUTCOMES.get(code, f"exit-{code}")


def _kill(proc: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):  # its own session: the driver and its children
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def execute(argv: Sequence[str], env: dict[str, str], cwd: Path, log: Path, timeout: float
            ) -> tuple[int | None, float, float | None]:  # fmt: skip
    """Run splitbrain; returns (exit code or None on timeout, wall s, wall s at the first output
    line that names a failing seed or an invalid verdict)."""
    began = time.monotonic()
    first_failure: float | None = None
    with _live_lock:
        if _stopping.is_set():
            raise KeyboardInterrupt
        proc = subprocess.Popen([sys.executable, "-m", "splitbrain", *argv], cwd=cwd, env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                start_new_session=True)
        _live.add(proc)
    timer = threading.Timer(timeout, _kill, (proc,))
    timer.start()
    try:
        with proc, log.open("wb") as sink:
            assert proc.stdout is not None
            for line in proc.stdout:
                sink.write(line)
                if first_failure is None and _FAILING_SEED.search(line.decode(errors="replace")):
                    first_failure = time.monotonic() - began
    finally:
        timer.cancel()
        if proc.poll() is None:
            _kill(proc)
        with _live_lock:
            _live.discard(proc)
    code = proc.returncode
    timed_out = code == -signal.SIGKILL and time.monotonic() - began >= timeout
    return (None if timed_out else code), time.monotonic() - began, first_failure


@dataclass(frozen=True, slots=True)
class Subject:
    """What one row runs: a mutant, or the unmutated copy (a control) with some arguments."""

    mutant: Mutant | None
    args: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        if self.mutant is not None:
            return self.mutant.id
        return " ".join((CONTROL, *self.args))


def subjects(mutants: Sequence[Mutant], control: bool) -> list[Subject]:
    """The control (and one per distinct set of mutant arguments), then the mutants."""
    controls = dict.fromkeys([(), *(m.args for m in mutants if m.args)]) if control else {}
    return [Subject(None, a) for a in controls] + [Subject(m, m.args) for m in mutants]


_MINIMIZED = re.compile(r"minimized from (\d+) ops / (\d+) faults to (\d+) / (\d+)")


def shrink_failure(run: Path, tree: Path, work: Path, budget: float) -> dict[str, Any]:
    """`splitbrain sim --shrink` on a failing sim run: its size before and after, or why not."""
    argv = ["sim", "--shrink", str(run), "--shrink-budget", f"{budget:g}",
            "--out", str(work / "shrunk")]  # fmt: skip
    code, wall, _ = execute(argv, child_env(tree), work, work / "shrink.log", budget + 240)
    found = _MINIMIZED.search((work / "shrink.log").read_text(errors="replace"))
    if found is None:
        return {"outcome": outcome(code), "wall_s": round(wall, 1)}
    ops, faults, new_ops, new_faults = map(int, found.groups())
    return {"ops": [ops, new_ops], "faults": [faults, new_faults], "exit": code,
            "wall_s": round(wall, 1)}


def run_one(subject: Subject, config: Configuration, seed: int, tree: Path, base: Path,
            shrink_budget: float | None = None) -> dict[str, Any]:  # fmt: skip
    mutant, name = subject.mutant, subject.name
    work = base / name.replace(" ", "_").replace("/", "_") / f"{config.name}-{seed}"
    work.mkdir(parents=True)
    argv = [*config.argv(seed, work / "runs"), *subject.args]
    code, wall, first_failure = execute(argv, child_env(tree), work, work / "output.log",
                                        config.timeout)
    record: dict[str, Any] = {
        "mutant": name, "category": mutant.category if mutant else None,
        "config": config.name, "seed": seed,
        "outcome": outcome(code), "caught": code == 1, "exit": code,
        "checker": None, "kind": None, "detect_s": None, "wall_s": round(wall, 1),
        "cause": None, "dir": str(work),
    }
    runs = sorted(work.glob("**/results.json"), key=lambda p: p.stat().st_mtime)
    invalid = [r for r in runs if _invalid(r)]
    if runs:
        found = detect(RunDir((invalid or runs)[0].parent))
        record.update(checker=found.checker, kind=found.kind, cause=found.cause)
        if config.kind == "run":
            record["detect_s"] = found.detect_s
    if config.kind == "sim":
        explored = _EXPLORED.search((work / "output.log").read_text(errors="replace"))
        if explored is not None:
            record["seeds_run"], record["seeds_failed"] = map(int, explored.groups())
    if config.kind == "sim" and code == 1:
        record["detect_s"] = round(first_failure if first_failure is not None else wall, 1)
        if shrink_budget is not None and invalid:
            record["shrunk"] = shrink_failure(invalid[0].parent, tree, work, shrink_budget)
    if code not in (0, 1, 2):
        tail = (work / "output.log").read_text(errors="replace").strip().splitlines()[-3:]
        record["output_tail"] = tail
    return record


def _invalid(results: Path) -> bool:
    try:
        return json.loads(results.read_text()).get("valid") is False
    except (OSError, ValueError, AttributeError):
        return False


# -- summary -----------------------------------------------------------------------------------


def summarize(records: Sequence[dict[str, Any]], configs: Sequence[str],
              equivalent: Sequence[str] = ()) -> dict[str, Any]:  # fmt: skip
    """Per configuration: mutants caught (in any seed), runs caught, median time to detection,
    and the control's false alarms (any > 0 invalidates that configuration's numbers). The
    `equivalent` mutants count nowhere (nothing can catch them)."""
    out: dict[str, Any] = {}
    for config in configs:
        mine = [r for r in records if r["config"] == config]
        control = [r for r in mine if r["category"] is None]
        mutants = [r for r in mine if r["category"] is not None and r["mutant"] not in equivalent]
        ids = sorted({r["mutant"] for r in mutants})
        caught = sorted({r["mutant"] for r in mutants if r["caught"]})
        times = [r["detect_s"] for r in mutants if r["caught"] and r["detect_s"] is not None]
        shrunk = [r["shrunk"] for r in mutants if "ops" in r.get("shrunk", {})]
        out[config] = {
            "mutants": len(ids),
            "mutants_caught": len(caught),
            "mutant_rate": round(len(caught) / len(ids), 3) if ids else None,
            "runs": len(mutants),
            "runs_caught": sum(r["caught"] for r in mutants),
            "detect_s_median": statistics.median(times) if times else None,
            "escaped": [i for i in ids if i not in caught],
            "control_runs": len(control),
            "false_alarms": sum(r["caught"] for r in control),
            "harness_failures": sum(r["outcome"] not in ("caught", "valid", "unknown")
                                    for r in mine),
        }
        if shrunk:
            out[config]["shrunk"] = {
                "failures": len(shrunk),
                "ops_median": [statistics.median(x["ops"][i] for x in shrunk) for i in (0, 1)],
                "faults_median": [statistics.median(x["faults"][i] for x in shrunk)
                                  for i in (0, 1)],
                "smaller": sum(x["ops"][1] < x["ops"][0] or x["faults"][1] < x["faults"][0]
                               for x in shrunk),
            }
    return out


def cell(records: Sequence[dict[str, Any]]) -> str:
    """One table cell: the outcome (one seed) or `caught/runs` (several seeds), then the median
    time to detection and the violation kind of the first catch."""
    if not records:
        return "-"
    caught = [r for r in records if r["caught"]]
    text = records[0]["outcome"] if len(records) == 1 else f"{len(caught)}/{len(records)}"
    if len(records) == 1 and "seeds_run" in records[0]:  # sim: how many seeds failed
        text += f" {records[0]['seeds_failed']}/{records[0]['seeds_run']} seeds"
    times = [r["detect_s"] for r in caught if r["detect_s"] is not None]
    if times:
        text += f" {statistics.median(times):.1f}s"
    if caught and caught[0]["kind"]:
        text += f" {caught[0]['kind']}"
    return text


def table(records: Sequence[dict[str, Any]], configs: Sequence[str], rows: Sequence[str],
          summary: dict[str, Any], skipped: dict[str, str], equivalent: Sequence[Mutant] = ()
          ) -> str:  # fmt: skip
    category = {r["mutant"]: r["category"] or "-" for r in records}
    lines = [[ "mutant", "category", *configs]]
    for row in rows:
        lines.append([row, category.get(row, "-"), *(
            "n/a" if c in skipped
            else cell([r for r in records if r["mutant"] == row and r["config"] == c])
            for c in configs)])
    widths = [max(len(line[i]) for line in lines) for i in range(len(lines[0]))]
    text = ["  ".join(v.ljust(w) for v, w in zip(line, widths, strict=True)).rstrip()
            for line in lines]
    for config in configs:
        if config in skipped:
            text.append(f"{config}: {skipped[config]}")
            continue
        s = summary[config]
        median = s["detect_s_median"]
        text.append(
            f"{config}: {s['mutants_caught']}/{s['mutants']} mutants caught "
            f"({s['runs_caught']}/{s['runs']} runs), median detection "
            f"{'-' if median is None else f'{median:.1f} s'}; control: "
            f"{s['false_alarms']} false alarm(s) in {s['control_runs']} run(s)"
            + ("  ** INVALID MEASUREMENT **" if s["false_alarms"] else ""))
        if "shrunk" in s:
            k = s["shrunk"]
            text.append(
                f"{config}: shrinking made {k['smaller']} of {k['failures']} failures smaller; "
                f"median {k['ops_median'][0]:g} -> {k['ops_median'][1]:g} ops, "
                f"{k['faults_median'][0]:g} -> {k['faults_median'][1]:g} faults")
    if equivalent:
        text.append(f"equivalent, not counted ({len(equivalent)}): "
                    + ", ".join(m.id for m in equivalent))
    return "\n".join(text)


# -- main --------------------------------------------------------------------------------------


def _pick(text: str, known: Sequence[str], what: str, parser: argparse.ArgumentParser
          ) -> list[str]:  # fmt: skip
    chosen = [x for x in text.split(",") if x]
    unknown = [x for x in chosen if x not in known]
    if unknown:
        parser.error(f"unknown {what} {unknown[0]!r} (known: {', '.join(known)})")
    return chosen


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--mutants", default="", help="comma-separated ids (default: all)")
    parser.add_argument("--configs", default="default,all,sim",
                        help=f"comma-separated, of {', '.join(CONFIGURATIONS)}")
    parser.add_argument("--seeds", default="1", help="seeds of each run configuration (1,2,3)")
    parser.add_argument("--jobs", type=int, default=1,
                        help="runs at once (each run is a whole cluster: mind the cores)")
    parser.add_argument("--output", type=Path, help="also write the JSON here")
    parser.add_argument("--keep", type=Path, help="keep the copies and run directories here")
    parser.add_argument("--no-control", action="store_true", help="skip the unmutated control")
    parser.add_argument("--list", action="store_true", help="print the corpus and exit")
    parser.add_argument("--shrink", action="store_true",
                        help="minimize each failure the simulator found and record its size")
    parser.add_argument("--shrink-budget", type=float, default=60.0, metavar="S",
                        help="wall seconds for each shrink (%(default)s)")
    parser.add_argument("--sim-seeds", type=int, metavar="N",
                        help="sim: run exactly N seeds (no budget, no stop at the first "
                             "failure): the share of seeds that fail is a per-seed catch rate")
    parser.add_argument("--sim-arg", action="append", default=[], metavar="ARG",
                        help="sim, sim-all: an argument of `splitbrain sim` for every seed, "
                             "e.g. --sim-arg=--timeouts=1,0 (repeatable)")
    parser.add_argument("--run-arg", action="append", default=[], metavar="ARG",
                        help="default, all: an argument of `splitbrain run` after theirs, "
                             "e.g. --run-arg=--nemesis=all,clock (repeatable)")
    args = parser.parse_args()
    try:
        corpus = load_corpus()
    except CorpusError as exc:
        print(f"bench/mutants.py: {exc}", file=sys.stderr)
        return 3
    if args.list:
        for m in corpus:
            mark = "\tequivalent" if m.equivalent else ""
            print(f"{m.id}\t{m.category}\t{m.file}\t{m.description}{mark}")
        return 0
    by_id = {m.id: m for m in corpus}
    chosen = [by_id[i] for i in _pick(args.mutants, list(by_id), "mutant", parser)] or [
        m for m in corpus if not m.equivalent]  # an equivalent mutant runs only when named
    configs = _pick(args.configs, list(CONFIGURATIONS), "configuration", parser)
    try:
        seeds = [int(s) for s in args.seeds.split(",") if s]
    except ValueError:
        parser.error(f"--seeds: {args.seeds!r} is not a comma-separated list of integers")
    if args.jobs < 1:
        parser.error("--jobs must be at least 1")
    if args.sim_seeds is not None and args.sim_seeds < 1:
        parser.error("--sim-seeds must be at least 1")
    catalog = {**run_configurations(args.run_arg),
               "sim": sim_configuration(args.sim_seeds, pinned=args.sim_arg),
               "sim-all": sim_all(args.sim_seeds, args.sim_arg)}
    if args.keep and args.keep.exists() and any(args.keep.iterdir()):
        parser.error(f"--keep {args.keep}: not empty (each run gets a fresh directory there)")

    skipped = {c: why for c in configs if (why := unavailable(catalog[c]))}
    rows = subjects(chosen, control=not args.no_control)
    base = args.keep or Path(tempfile.mkdtemp(prefix="bench-mutants-"))
    base.mkdir(parents=True, exist_ok=True)
    tasks = []
    trees: dict[str | None, Path] = {}  # one copy per mutant; the controls share one
    for subject in rows:
        key = subject.mutant.id if subject.mutant else None
        if key not in trees:
            trees[key] = mutated_tree(subject.mutant, base / (key or CONTROL) / "src")
            check_imports_copy(trees[key])
        tree = trees[key]
        for name in configs:
            if name in skipped:
                continue
            config = catalog[name]
            for seed in seeds if config.kind == "run" else seeds[:1]:
                tasks.append((subject, config, seed, tree))
    print(f"{len(tasks)} runs, {args.jobs} at a time, in {base}", file=sys.stderr)

    def task(t: tuple[Subject, Configuration, int, Path]) -> dict[str, Any]:
        record = run_one(*t, base, args.shrink_budget if args.shrink else None)
        print(f"{record['mutant']} {record['config']} seed {record['seed']}: {record['outcome']}"
              f" {record['kind'] or ''} detect {record['detect_s']} s, wall {record['wall_s']} s",
              file=sys.stderr, flush=True)
        return record

    pool = ThreadPoolExecutor(max_workers=args.jobs)
    try:
        records = list(pool.map(task, tasks))
    finally:  # also on Ctrl-C: kill the runs in flight rather than wait for them
        pool.shutdown(wait=False, cancel_futures=True)
        with _live_lock:
            _stopping.set()
            running = list(_live)
        for proc in running:
            _kill(proc)
        pool.shutdown(wait=True)
        if not args.keep:
            shutil.rmtree(base, ignore_errors=True)
    if not args.keep:
        for r in records:
            r.pop("dir")
    ran = [c for c in configs if c not in skipped]
    equivalent = [m for m in corpus if m.equivalent]
    summary = summarize(records, ran, [m.id for m in equivalent])
    print(table(records, configs, [r.name for r in rows], summary, skipped, equivalent),
          file=sys.stderr)
    report = {
        "configurations": {c: {"argv": ["splitbrain", *catalog[c].argv(0, Path("OUT"))],
                               "available": c not in skipped,
                               **({"reason": skipped[c]} if c in skipped else {})}
                           for c in configs},
        "seeds": seeds,
        "jobs": args.jobs,
        "shrink_budget_s": args.shrink_budget if args.shrink else None,
        "cpus": os.cpu_count(),
        "corpus": [{k: v for k, v in asdict(m).items() if k not in ("find", "replace")}
                   for m in chosen],
        "equivalent": [{"id": m.id, "reason": m.equivalent} for m in equivalent],
        "summary": summary,
        "results": records,
    }
    text = json.dumps(report, indent=2)
    print(text)
    if args.output:
        args.output.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
