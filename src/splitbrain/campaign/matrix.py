"""The campaign matrix: seeds × axes, expanded into one `RunSpec` per run. Pure.

A matrix names axes — `nemesis`, `workload`, later `target`, anything a run command takes as
`--NAME VALUE` — and every combination of their values runs once per seed. `mode` is the one
axis that is not a flag: it picks the subcommand (`run` or `sim`), so a new
kind of run or a new target is one more axis value, never a change here. Options every run gets
(`--nodes 3`) are `args`; the campaign adds `--seed`, `--time-limit`, `--out` and `--name`.

Rules it keeps:
- A *configuration* is one combination of axis values; its label ("nemesis=kill workload=kv")
  is stable from night to night, so trends line up by it. Seeds are not part of it.
- Run ids are unique in a campaign, stable for the same matrix, and safe as directory names.
- Bad input (TOML syntax, an unknown key, a value of the wrong type) is a `MatrixError` naming
  the file, the key and the problem.
"""

from __future__ import annotations

import itertools
import re
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

MODES = ("run",)  # default subcommand; `sim` joins as a value of the mode axis, not a change here
RESERVED = {"seed", "seeds", "out", "name", "time-limit"}  # the campaign sets these itself
_AXIS = re.compile(r"[a-z][a-z0-9-]*")
_UNSAFE_ID = re.compile(r"[^A-Za-z0-9_.+-]+")
DEFAULT_TIME_LIMIT = 30.0


class MatrixError(ValueError):
    """A matrix that cannot be run: the message names the file or flag, the key and why."""


@dataclass(frozen=True)
class RunSpec:
    """One run of a campaign: the subcommand, its seed, and the arguments of its configuration."""

    id: str  # unique in the campaign; the name of its directory under runs/
    mode: str  # the subcommand: run (or sim)
    seed: int
    config: tuple[tuple[str, str], ...]  # (axis, value as written) in matrix order
    args: tuple[str, ...]  # every argument but --seed/--out/--name: axes, time limit, options
    time_limit: float  # seconds of the run's main phase (bounds how long it may take in all)

    @property
    def configuration(self) -> str:
        """The label that groups runs across seeds and campaigns."""
        return " ".join(f"{k}={v}" for k, v in self.config) or "default"

    def argv(self, out: str | Path, name: str) -> list[str]:
        """The `splitbrain` arguments of this run, writing into out/name/<timestamp>/."""
        return [self.mode, "--seed", str(self.seed), *self.args, "--out", str(out),
                "--name", name]

    def command(self) -> str:
        """What a person types to reproduce it."""
        import shlex

        return shlex.join(["splitbrain", self.mode, "--seed", str(self.seed), *self.args])

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "mode": self.mode, "seed": self.seed,
                "config": dict(self.config), "args": list(self.args),
                "time_limit": self.time_limit}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> RunSpec:
        return cls(str(data["id"]), str(data["mode"]), int(data["seed"]),
                   tuple((str(k), str(v)) for k, v in dict(data["config"]).items()),
                   tuple(str(a) for a in data["args"]), float(data["time_limit"]))


@dataclass(frozen=True)
class Matrix:
    """What to run: seeds × every combination of the axes, each run with `args`."""

    name: str = "campaign"
    seeds: tuple[int, ...] = (1,)
    axes: tuple[tuple[str, tuple[Any, ...]], ...] = ()  # (axis, its values) in order
    args: tuple[str, ...] = ()  # options every run gets
    time_limit: float = DEFAULT_TIME_LIMIT
    modes: tuple[str, ...] = field(default=MODES)

    def expand(self) -> list[RunSpec]:
        """Every run, configuration by configuration, seeds innermost."""
        axes = list(self.axes)
        if self.modes != MODES:  # a sim configuration must never share a run's label
            axes.insert(0, ("mode", self.modes))
        specs: list[RunSpec] = []
        seen: set[str] = set()
        for combo in itertools.product(*(values for _, values in axes)):
            chosen = list(zip((name for name, _ in axes), combo, strict=True))
            mode = next((str(v) for k, v in chosen if k == "mode"), self.modes[0])
            flags = [a for k, v in chosen if k != "mode" for a in flag_args(k, v)]
            config = tuple((k, label(v)) for k, v in chosen)
            base = slug(config)
            for seed in self.seeds:
                run_id = f"{base}-s{seed}"
                while run_id in seen:  # two labels that slug alike: keep ids unique
                    run_id += "x"
                seen.add(run_id)
                args = (*flags, "--time-limit", f"{self.time_limit:g}", *self.args)
                specs.append(RunSpec(run_id, mode, seed, config, args, self.time_limit))
        return specs


def flag_args(name: str, value: Any) -> list[str]:
    """`--name value`; a list repeats the flag; true is a bare flag; "", false, [] add nothing."""
    if value is True:
        return [f"--{name}"]
    if value is False or value is None or value == "":
        return []
    if isinstance(value, list | tuple):
        return [a for v in value for a in flag_args(name, v)]
    return [f"--{name}", _text(value)]


def label(value: Any) -> str:
    """How an axis value reads in a configuration label."""
    if isinstance(value, list | tuple):
        return "+".join(label(v) for v in value) or "none"
    if value is True or value is False:
        return str(value).lower()
    return _text(value) or "none"


def slug(config: Sequence[tuple[str, str]]) -> str:
    """A directory-safe id for a configuration (axis values only; the label has the names)."""
    text = "-".join(_UNSAFE_ID.sub("_", v) for _, v in config) or "default"
    return text[:80]


def _text(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


# --- building a matrix from TOML and flags ------------------------------------------------


def parse_seeds(text: str | int | Sequence[int], where: str = "--seeds") -> tuple[int, ...]:
    """`20` (seeds 1..20), `5-9`, `1,4,7`, or a TOML list of ints."""
    if isinstance(text, bool):
        raise MatrixError(f"{where}: expected a count, a range A-B or a list of seeds")
    if isinstance(text, int):
        seeds: Sequence[int] = range(1, text + 1)
    elif isinstance(text, str):
        try:
            if "-" in text.strip("-") and "," not in text:
                lo, hi = (int(p) for p in text.split("-", 1))
                seeds = range(lo, hi + 1)
            elif "," in text:
                seeds = [int(p) for p in text.split(",") if p.strip()]
            else:
                seeds = range(1, int(text) + 1)
        except ValueError:
            raise MatrixError(f"{where}: not a count, a range A-B or a list: {text!r}") from None
    else:
        if not all(isinstance(s, int) and not isinstance(s, bool) for s in text):
            raise MatrixError(f"{where}: every seed must be an integer")
        seeds = list(text)
    out = tuple(dict.fromkeys(seeds))
    if not out:
        raise MatrixError(f"{where}: no seeds")
    return out


def _axis_values(name: str, raw: Any, where: str) -> tuple[Any, ...]:
    if not _AXIS.fullmatch(name):
        raise MatrixError(f"{where}: axis {name!r}: names are lower-case words like 'nemesis'")
    if name in RESERVED:
        raise MatrixError(f"{where}: axis {name!r}: the campaign sets --{name} itself")
    values = raw if isinstance(raw, list) else [raw]
    if not values:
        raise MatrixError(f"{where}: axis {name!r} has no values")
    for v in values:
        ok = isinstance(v, str | int | float | bool) or (
            isinstance(v, list) and all(isinstance(x, str | int | float) for x in v))
        if not ok:
            raise MatrixError(f"{where}: axis {name!r}: {v!r} is not a string, number, "
                              "boolean or list of them")
    return tuple(tuple(v) if isinstance(v, list) else v for v in values)


def _table_args(table: Any, where: str) -> tuple[str, ...]:
    if not isinstance(table, dict):
        raise MatrixError(f"{where}: expected a table of options, like nodes = 3")
    out: list[str] = []
    for key, value in table.items():
        _axis_values(key, value, where)  # same rules as an axis value
        out += flag_args(key, value)
    return tuple(out)


_TOP = {"name", "seeds", "time-limit", "mode", "matrix", "args"}


def from_toml(path: str | Path) -> Matrix:
    """A matrix from a TOML file:

        name = "nightly"
        seeds = 20                      # or "5-9", or [1, 4, 7]
        time-limit = 30                 # seconds per run
        mode = ["run"]                  # the subcommand: run and/or sim
        [matrix]                        # axes: every combination runs once per seed
        nemesis = ["partition", "kill,pause"]
        workload = ["register", "kv"]
        [args]                          # options of every run
        nodes = 3
    """
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise MatrixError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise MatrixError(f"{path}: {exc}") from None
    unknown = sorted(set(data) - _TOP)
    if unknown:
        raise MatrixError(f"{path}: unknown key {unknown[0]!r} (known: {', '.join(sorted(_TOP))})")
    matrix = Matrix(name=path.stem)
    if "name" in data:
        if not isinstance(data["name"], str) or not data["name"].strip():
            raise MatrixError(f"{path}: name: expected a non-empty string")
        matrix = replace(matrix, name=data["name"])
    if "seeds" in data:
        matrix = replace(matrix, seeds=parse_seeds(data["seeds"], f"{path}: seeds"))
    if "time-limit" in data:
        matrix = replace(matrix, time_limit=_time_limit(data["time-limit"], f"{path}: time-limit"))
    if "mode" in data:
        modes = data["mode"] if isinstance(data["mode"], list) else [data["mode"]]
        if not modes or not all(isinstance(m, str) and _AXIS.fullmatch(m) for m in modes):
            raise MatrixError(f"{path}: mode: expected a subcommand name or a list of them")
        matrix = replace(matrix, modes=tuple(modes))
    if "matrix" in data:
        if not isinstance(data["matrix"], dict):
            raise MatrixError(f"{path}: [matrix]: expected a table of axes")
        matrix = replace(matrix, axes=tuple(
            (k, _axis_values(k, v, f"{path}: [matrix]")) for k, v in data["matrix"].items()))
    if "args" in data:
        matrix = replace(matrix, args=_table_args(data["args"], f"{path}: [args]"))
    return matrix


def _time_limit(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise MatrixError(f"{where}: expected a positive number of seconds")
    return float(value)


def with_overrides(matrix: Matrix, *, name: str | None = None, seeds: str | None = None,
                   time_limit: float | None = None, modes: Sequence[str] = (),
                   axes: Sequence[tuple[str, Sequence[str]]] = (),
                   args: Sequence[str] = ()) -> Matrix:
    """The matrix with what flags said: a flag replaces the file's setting of the same name."""
    if name:
        matrix = replace(matrix, name=name)
    if seeds is not None:
        matrix = replace(matrix, seeds=parse_seeds(seeds))
    if time_limit is not None:
        matrix = replace(matrix, time_limit=_time_limit(time_limit, "--time-limit"))
    if modes:
        matrix = replace(matrix, modes=tuple(dict.fromkeys(modes)))
    given = dict(matrix.axes)
    for axis, values in axes:
        if values:
            given[axis] = _axis_values(axis, list(dict.fromkeys(values)), f"--{axis}")
    matrix = replace(matrix, axes=tuple(given.items()))
    if args:
        matrix = replace(matrix, args=(*matrix.args, *args))
    return matrix
