"""Finding a target: built in, a TOML file, or a plugin's entry point; errors name the choices."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from splitbrain.targets.registry import TargetError, load_target, parse_args

PLUGIN = '''
import dataclasses
from splitbrain.targets import raft

def make(args):
    if args.get("size") not in (None, "big"):
        raise ValueError("size must be big")
    return dataclasses.replace(raft.target({}), name="myraft")

def wrong(args):
    return "not a target"
'''


@pytest.fixture
def plugin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "sbplugin.py").write_text(PLUGIN)
    meta = tmp_path / "sbplugin-0.1.dist-info"
    meta.mkdir()
    (meta / "METADATA").write_text("Metadata-Version: 2.1\nName: sbplugin\nVersion: 0.1\n")
    (meta / "entry_points.txt").write_text(
        "[splitbrain.targets]\nmyraft = sbplugin:make\nbroken = sbplugin:wrong\n"
        "missing = sbplugin_nope:make\n")
    monkeypatch.syspath_prepend(str(tmp_path))


def test_built_in_targets_and_their_capabilities():
    raft = load_target("raft")
    assert raft.capabilities == ("events", "leader", "crash-points", "framed", "sessions",
                                 "raft-messages", "clock", "disk")
    assert raft.default_network == "proxy" and raft.source == "built-in"
    etcd = load_target("etcd", {"reads": "serializable"})
    assert etcd.capabilities == ("leader", "disk") and etcd.networks == ("netns",)
    assert etcd.args == {"reads": "serializable"}


@pytest.mark.parametrize(("spec", "args", "message"), [
    ("nope", {}, r"unknown target 'nope' \(known: etcd, raft.*, or a TOML file\)"),
    ("raft", {"x": "1"}, r"target raft: target raft takes no --target-arg \(got x\)"),
    ("etcd", {"reads": "stale"}, r"reads=stale: must be linearizable or serializable"),
    ("etcd", {"color": "red"}, r"no --target-arg 'color' \(known: reads\)"),
    ("missing.toml", {}, r"missing\.toml: cannot read"),
])
def test_bad_choices_are_named(spec, args, message):
    with pytest.raises(TargetError, match=message):
        load_target(spec, args)


def test_plugins_come_from_the_entry_point_group(plugin):
    target = load_target("myraft", {"size": "big"})
    assert target.name == "myraft" and target.source == "plugin sbplugin:make"
    assert dataclasses.asdict(target)["args"] == {"size": "big"}
    with pytest.raises(TargetError, match="target myraft: size must be big"):
        load_target("myraft", {"size": "small"})
    with pytest.raises(TargetError, match=r"returned str, not a splitbrain\.targets"):
        load_target("broken")
    with pytest.raises(TargetError, match=r"'missing' \(sbplugin_nope:make\) could not be loaded"):
        load_target("missing")


def test_target_args_are_key_value_pairs():
    assert parse_args(["reads=serializable", "a=b=c", "reads=linearizable"]) == {
        "reads": "linearizable", "a": "b=c"}
    with pytest.raises(TargetError, match="'reads' is not KEY=VALUE"):
        parse_args(["reads"])
