"""Finding a target: `--target NAME|FILE` and its `--target-arg KEY=VALUE`s -> a Target.

    target = load_target("etcd", {"reads": "serializable"})

Resolution: a name ending in .toml, or naming an existing file, is a TOML target file
(targets/tomlfile.py); then the built-in names (BUILTIN); then the plugins registered under the
entry-point group `splitbrain.targets`, whose object is a factory `(args) -> Target`. Anything
else, a bad argument or a bad file is a TargetError naming the problem (a usage error, 64).
"""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Callable, Iterable, Mapping
from importlib.metadata import EntryPoint, entry_points
from pathlib import Path

from splitbrain.targets.target import Target

GROUP = "splitbrain.targets"
BUILTIN = {  # name -> "module:factory", imported only when chosen
    "raft": "splitbrain.targets.raft:target",
    "etcd": "splitbrain.targets.etcd:target",
}


class TargetError(ValueError):
    """An unknown target, a bad --target-arg or a bad target file; the message says which."""


def parse_args(pairs: Iterable[str]) -> dict[str, str]:
    """["reads=serializable", ...] -> {"reads": "serializable"}; a later KEY wins."""
    args: dict[str, str] = {}
    for pair in pairs:
        key, eq, value = pair.partition("=")
        if not eq or not key.strip():
            raise TargetError(f"--target-arg {pair!r} is not KEY=VALUE")
        args[key.strip()] = value
    return args


def plugins() -> dict[str, EntryPoint]:
    """The entry points of the plugin group, by name."""
    return {ep.name: ep for ep in entry_points(group=GROUP)}


def known() -> list[str]:
    return sorted(set(BUILTIN) | set(plugins()))


def load_target(spec: str, args: Mapping[str, str] | None = None) -> Target:
    args = dict(args or {})
    path = Path(spec)
    if spec.endswith(".toml") or (path.is_file() and spec not in BUILTIN):
        from splitbrain.targets.tomlfile import load

        return load(path, args)
    if spec in BUILTIN:
        module, _, name = BUILTIN[spec].partition(":")
        return _make(getattr(importlib.import_module(module), name), spec, args, "built-in")
    found = plugins().get(spec)
    if found is None:
        raise TargetError(f"unknown target {spec!r} (known: {', '.join(known())}, or a "
                          "TOML file)")
    try:
        factory = found.load()
    except Exception as exc:  # a plugin's import may fail any way: say which plugin
        raise TargetError(f"target plugin {spec!r} ({found.value}) could not be loaded: "
                          f"{type(exc).__name__}: {exc}") from exc
    return _make(factory, spec, args, f"plugin {found.value}")


def _make(factory: Callable[[Mapping[str, str]], Target], name: str, args: dict[str, str],
          source: str) -> Target:  # fmt: skip
    try:
        target = factory(args)
    except (ValueError, TypeError) as exc:
        raise TargetError(f"target {name}: {exc}") from exc
    if not isinstance(target, Target):
        raise TargetError(f"target {name}: its factory returned {type(target).__name__}, "
                          "not a splitbrain.targets.target.Target")
    return dataclasses.replace(target, source=source, args=args)
