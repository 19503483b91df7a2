"""TOML target files: what a good one becomes, and a clear error naming file and field for
every kind of mistake."""

from __future__ import annotations

from pathlib import Path

import pytest

from splitbrain.cluster.targets import NodeLaunch
from splitbrain.targets.registry import TargetError, load_target
from splitbrain.targets.target import CommandProbe, HttpProbe, PortOpen

KVD = Path(__file__).with_name("kvd.toml")
LAUNCH = NodeLaunch(
    node="n2", peers={"n1": ("127.0.0.1", 7101), "n2": ("127.0.0.1", 7002)}, client_port=8002,
    data_dir=Path("/runs/x/nodes/n2/data"), events=Path("e"), log=Path("l"), cluster_id="c",
    lifeline_fd=5, extra_args=("--verbose",), index=2, nodes=("n1", "n2"),
)


def test_kvd_loads_and_fills_its_command_per_node():
    target = load_target(str(KVD), {"reads": "local"})
    assert target.name == "kvd" and target.capabilities == ("leader",)
    assert target.ready == HttpProbe("/health") and target.networks == ("proxy", "netns")
    assert target.source == f"file {KVD.resolve()}" and target.args == {"reads": "local"}
    cmd = target.command(LAUNCH)
    assert cmd.cwd == KVD.parent
    assert cmd.argv == (
        "python3", "kvd.py", "--id", "n2", "--host", "127.0.0.1", "--client-port", "8002",
        "--peer-port", "7002", "--peers", "n1=127.0.0.1:7101,n2=127.0.0.1:7002",
        "--data-dir", "/runs/x/nodes/n2/data", "--lifeline-fd", "5", "--reads", "local",
        "--verbose")
    assert load_target(str(KVD)).command(LAUNCH).argv[-2] == "primary"  # the declared default
    assert target.missing() is None


def write(tmp_path: Path, text: str) -> str:
    path = tmp_path / "t.toml"
    path.write_text(text)
    return str(path)


GOOD = 'name = "x"\n[start]\ncommand = ["true", "{node}"]\n'


@pytest.mark.parametrize(("text", "message"), [
    ('name = "x"\n[start\n', r"t\.toml: .*line 2"),
    ('name = "x"\ncolour = 1\n' + GOOD[11:], r"t\.toml: top level: colour: unknown key"),
    ('name = "x"\n', r"t\.toml: \[start\] command: must be a non-empty list of strings"),
    ('[start]\ncommand = ["a"]\n', r"t\.toml: name: must be a non-empty string"),
    (GOOD.replace("{node}", "{nod}"),
     r"t\.toml: \[start\] command\[1\]: unknown placeholder \{nod\} in '\{nod\}' \(known: node"),
    (GOOD + 'env = { A = "{args[x]}" }\n',
     r"t\.toml: \[start\] env\.A: unknown placeholder \{x\}"),
    (GOOD + 'ready = { port = "client", http = "/" }\n',
     r"t\.toml: \[start\] ready: give one of port, http, command"),
    (GOOD + 'ready = { port = "admin" }\n',
     r"t\.toml: \[start\] ready port: must be client or peer"),
    (GOOD + 'peer = "{name}@{host}"\n',
     r"t\.toml: \[start\] peer: bad template '\{name\}@\{host\}' \(placeholders: node, host"),
    (GOOD + '[client]\nprotocol = "grpc"\n', r"t\.toml: \[client\] protocol: must be http or tcp"),
    (GOOD + '[capabilities]\ncrash-points = true\n',
     r"t\.toml: \[capabilities\] crash-points: unknown key \(known: clock, disk, events, leader\)"),
    ('workloads = ["bank"]\n' + GOOD, r"t\.toml: workloads: unknown workload 'bank'"),
    *(("nemesis_interval = " + bad + "\n" + GOOD,
       rf"t\.toml: nemesis_interval: must be at least 0\.01 seconds and finite, got {bad}$")
      for bad in ("0", "-1", "0.001", "inf", "nan")),
    *(("nemesis_interval = " + bad + "\n" + GOOD,
       r"t\.toml: nemesis_interval: must be a number of seconds$") for bad in ("true", '"3"')),
])
def test_mistakes_are_named_with_file_and_field(tmp_path, text, message):
    with pytest.raises(TargetError, match=message):
        load_target(write(tmp_path, text))


def test_target_args_must_be_declared(tmp_path):
    path = write(tmp_path, GOOD + '[args]\nmode = "a"\n')
    assert load_target(path, {"mode": "b"}).args == {"mode": "b"}
    with pytest.raises(TargetError, match=r"target x has no --target-arg 'speed' \(known: mode\)"):
        load_target(path, {"speed": "9"})


def test_readiness_kinds_and_what_is_missing(tmp_path):
    path = write(tmp_path, GOOD.replace('"true"', '"no-such-server"')
                 + 'ready = { command = ["probe", "{host}:{client_port}"] }\n')
    target = load_target(path)
    assert isinstance(target.ready, CommandProbe)
    assert target.ready.command(LAUNCH).argv == ("probe", "127.0.0.1:8002")
    assert "`no-such-server` was not found" in str(target.missing())
    assert load_target(write(tmp_path, GOOD)).ready == PortOpen("client")
