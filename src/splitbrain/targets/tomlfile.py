"""TOML target files: any executable as a target, with the generic client protocol.

    splitbrain run --target path/to/kvd.toml --target-arg reads=local

docs/targets.md documents every field; in short:

    name = "kvd"                                   # required
    description = "..."
    workloads = ["register", "kv"]                 # what its client protocol serves (default both)
    networks = ["proxy", "netns"]                  # the first is the default mode
    nemesis_interval = 3.0                         # seconds between faults (default 3)
    [args]                                         # --target-arg names it takes, with defaults
    reads = "primary"
    [start]
    command = ["python3", "kvd.py", "--id", "{node}", "--peers", "{peers}"]   # required
    env = { KVD_LOG = "{log}" }
    cwd = "."                                      # relative to this file (default: its directory)
    peer = "{node}={host}:{port}"                  # one entry of {peers}; joined by peer_separator
    peer_separator = ","
    requires = ["python3"]                         # executables needed (default: command[0])
    ready = { http = "/health" }                   # or { port = "client" } (default), or
                                                   # { command = [...] }
    [client]
    protocol = "http"                              # or "tcp" (newline-delimited JSON)
    path = "/"                                     # http: where requests are POSTed
    [capabilities]
    events = false                                 # nodes write events.jsonl (DESIGN.md)
    leader = false                                 # nodes answer {"f": "role"} (docs/targets.md)
    clock = false                                  # nodes read time through libc (clock fault)
    disk = false                                   # all durable state in the data dir (disk faults)

Templates are Python format strings over PLACEHOLDERS (`{args[reads]}` for an argument); every
one is tried when the file is loaded, so a typo is an error naming the file and field, like a
syntax error (with its line), an unknown key or a wrong type (TargetError: a usage error).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from splitbrain.cluster.targets import NodeLaunch
from splitbrain.nemesis.interval import interval_problem
from splitbrain.targets.client import Client, Lost, NotSent, Redirect
from splitbrain.targets.generic import HttpJsonClient, NdjsonClient
from splitbrain.targets.registry import TargetError
from splitbrain.targets.target import (
    DEFAULT_NEMESIS_INTERVAL,
    NETWORKS,
    Command,
    CommandProbe,
    HttpProbe,
    PortOpen,
    Readiness,
    Role,
    Target,
)
from splitbrain.workloads.registry import WORKLOADS

PLACEHOLDERS = {
    "node": "the node's name (n1, n2, ...)",
    "index": "its position, from 1",
    "host": "its own address: it listens there for peers and clients",
    "peer_port": "the port it listens on for peers",
    "client_port": "the port it listens on for clients",
    "peers": "every node as `peer` formats it, joined by `peer_separator`; its own address "
             "for itself, for the others where to reach them (a link proxy in proxy mode)",
    "nodes": "every node's name, comma-separated",
    "data_dir": "its durable state directory (kept across restarts)",
    "events": "where it may write events.jsonl",
    "log": "where it may write its log (node.log)",
    "cluster_id": "an id unique to the run",
    "lifeline_fd": "a file descriptor that reads EOF when the driver dies: exit then",
    "args": "the target arguments: {args[NAME]}",
}
_TOP = {"name", "description", "workloads", "networks", "nemesis_interval", "args", "start",
        "client", "capabilities"}  # fmt: skip
_START = {"command", "env", "cwd", "peer", "peer_separator", "requires", "ready"}
_CLIENT = {"protocol", "path"}
_CAPABILITIES = {"events", "leader", "clock", "disk"}


def load(path: Path, args: Mapping[str, str]) -> Target:
    where = str(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise TargetError(f"{where}: cannot read: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise TargetError(f"{where}: {exc}") from None
    return _Loader(path, data, args).target()


class _Loader:
    def __init__(self, path: Path, data: dict[str, Any], args: Mapping[str, str]) -> None:
        self.path, self.data, self.where = path, data, str(path)
        self.base = path.resolve().parent
        self.args_given = dict(args)

    def error(self, field: str, problem: str) -> TargetError:
        return TargetError(f"{self.where}: {field}: {problem}")

    def table(self, data: dict[str, Any], name: str, known: set[str]) -> dict[str, Any]:
        value = data.get(name, {})
        if not isinstance(value, dict):
            raise self.error(f"[{name}]", "must be a table")
        self.no_unknown(value, known, f"[{name}]")
        return value

    def no_unknown(self, table: dict[str, Any], known: set[str], where: str) -> None:
        for key in table:
            if key not in known:
                raise self.error(f"{where} {key}",
                                 f"unknown key (known: {', '.join(sorted(known))})")

    def string(self, table: dict[str, Any], key: str, where: str, default: str | None = None
               ) -> str:  # fmt: skip
        value = table.get(key, default)
        if isinstance(value, str) and (value or default is not None):
            return value
        raise self.error(f"{where}{key}", "must be a non-empty string")

    def strings(self, table: dict[str, Any], key: str, where: str,
                default: list[str] | None = None) -> list[str]:  # fmt: skip
        value = table.get(key, default)
        if (not isinstance(value, list) or not value
                or not all(isinstance(v, str) for v in value)):
            raise self.error(f"{where}{key}", "must be a non-empty list of strings")
        return value

    def target(self) -> Target:
        data = self.data
        self.no_unknown(data, _TOP, "top level:")
        name = self.string(data, "name", "")
        description = self.string(data, "description", "", default="")
        workloads = self.strings(data, "workloads", "", list(WORKLOADS))
        for w in workloads:
            if w not in WORKLOADS:
                raise self.error("workloads", f"unknown workload {w!r} (known: "
                                 f"{', '.join(WORKLOADS)})")  # fmt: skip
        networks = self.strings(data, "networks", "", list(NETWORKS))
        for n in networks:
            if n not in NETWORKS:
                raise self.error("networks", f"unknown network mode {n!r} (known: "
                                 f"{', '.join(NETWORKS)})")  # fmt: skip
        interval = data.get("nemesis_interval", DEFAULT_NEMESIS_INTERVAL)
        if isinstance(interval, bool) or not isinstance(interval, int | float):
            raise self.error("nemesis_interval", "must be a number of seconds")
        problem = interval_problem(interval)
        if problem:
            raise self.error("nemesis_interval", problem)
        declared = data.get("args", {})
        if not isinstance(declared, dict) or not all(
                isinstance(v, str) for v in declared.values()):  # fmt: skip
            raise self.error("[args]", "must be a table of strings (name = default value)")
        for key in self.args_given:
            if key not in declared:
                known = ", ".join(sorted(declared)) or "none"
                raise TargetError(f"target {name} has no --target-arg {key!r} (known: {known})")
        args = {**declared, **self.args_given}

        start = self.table(data, "start", _START)
        command = self.strings(start, "command", "[start] ")
        env = start.get("env", {})
        if not isinstance(env, dict) or not all(isinstance(v, str) for v in env.values()):
            raise self.error("[start] env", "must be a table of strings")
        cwd = self.base / self.string(start, "cwd", "[start] ", default=".")
        peer = self.string(start, "peer", "[start] ", default="{node}={host}:{port}")
        sep = self.string(start, "peer_separator", "[start] ", default=",")
        try:
            peer.format_map({"node": "n1", "host": "127.0.0.1", "port": 7001})
        except (KeyError, ValueError, IndexError, AttributeError) as exc:
            raise self.error("[start] peer", f"bad template {peer!r} (placeholders: node, host, "
                             f"port): {type(exc).__name__}: {exc}") from None
        requires = self.strings(start, "requires", "[start] ", [command[0]])
        render = _Renderer(args, peer, sep)
        self.check_templates(render, {f"[start] command[{i}]": t for i, t in enumerate(command)})
        self.check_templates(render, {f"[start] env.{k}": v for k, v in env.items()})

        def start_command(launch: NodeLaunch) -> Command:
            argv = tuple(render(t, launch) for t in command) + launch.extra_args
            return Command(argv, {k: render(v, launch) for k, v in env.items()}, cwd)

        ready = self.readiness(start.get("ready", {}), render, cwd)
        client_table = self.table(data, "client", _CLIENT)
        protocol = self.string(client_table, "protocol", "[client] ", default="http")
        if protocol not in ("http", "tcp"):
            raise self.error("[client] protocol", f"must be http or tcp, not {protocol!r}")
        http_path = self.string(client_table, "path", "[client] ", default="/")
        if protocol == "tcp" and "path" in client_table:
            raise self.error("[client] path", "only for protocol = \"http\"")

        def client(nodes: Mapping[str, tuple[str, int]], home: str, client_id: str,
                   timeout: float) -> Client:  # fmt: skip
            if protocol == "http":
                return HttpJsonClient(nodes, home, client_id, timeout, http_path)
            return NdjsonClient(nodes, home, client_id, timeout)

        caps = self.table(data, "capabilities", _CAPABILITIES)
        for key, value in caps.items():
            if not isinstance(value, bool):
                raise self.error(f"[capabilities] {key}", "must be true or false")

        async def role(address: tuple[str, int], timeout: float) -> Role | None:
            return await ask_role(client({"node": address}, "node", "role", timeout))

        base = self.base
        return Target(
            name=name, description=description, command=start_command, client=client,
            ready=ready, source=f"file {self.path.resolve()}", args=args,
            workloads=tuple(workloads), networks=tuple(networks),
            events=caps.get("events", False), leader=role if caps.get("leader") else None,
            clock=caps.get("clock", False),
            disk=caps.get("disk", False), nemesis_interval=float(interval),
            missing=lambda: _missing(requires, cwd, base),
        )  # fmt: skip

    def readiness(self, ready: Any, render: _Renderer, cwd: Path) -> Readiness:
        where = "[start] ready"
        if not isinstance(ready, dict):
            raise self.error(where, "must be a table")
        kinds = [k for k in ("port", "http", "command") if k in ready]
        self.no_unknown(ready, {"port", "http", "command"}, where)
        if len(kinds) > 1:
            raise self.error(where, "give one of port, http, command")
        if "http" in ready:
            return HttpProbe(self.string(ready, "http", f"{where} "))
        if "command" in ready:
            argv = self.strings(ready, "command", f"{where} ")
            self.check_templates(render, {f"{where} command[{i}]": t
                                          for i, t in enumerate(argv)})  # fmt: skip
            return CommandProbe(lambda launch: Command(
                tuple(render(t, launch) for t in argv), {}, cwd))
        port = self.string(ready, "port", f"{where} ", default="client")
        if port not in ("client", "peer"):
            raise self.error(f"{where} port", f"must be client or peer, not {port!r}")
        return PortOpen(port)  # type: ignore[arg-type]

    def check_templates(self, render: _Renderer, templates: Mapping[str, str]) -> None:
        for field, template in templates.items():
            try:
                render(template, _SAMPLE)
            except KeyError as exc:
                raise self.error(field, f"unknown placeholder {{{exc.args[0]}}} in {template!r}"
                                 f" (known: {', '.join(PLACEHOLDERS)})") from None
            except (ValueError, IndexError, AttributeError) as exc:
                raise self.error(field, f"bad template {template!r}: {exc}") from None


class _Renderer:
    """Fills a template from a NodeLaunch."""

    def __init__(self, args: Mapping[str, str], peer: str, separator: str) -> None:
        self.args, self.peer, self.separator = dict(args), peer, separator

    def __call__(self, template: str, launch: NodeLaunch) -> str:
        peers = self.separator.join(
            self.peer.format_map({"node": n, "host": h, "port": p})
            for n, (h, p) in launch.peers.items()
        )
        values = {
            "node": launch.node, "index": launch.index, "host": launch.host,
            "peer_port": launch.peer_port, "client_port": launch.client_port, "peers": peers,
            "nodes": ",".join(launch.nodes), "data_dir": launch.data_dir,
            "events": launch.events, "log": launch.log, "cluster_id": launch.cluster_id,
            "lifeline_fd": launch.lifeline_fd, "args": self.args,
        }  # fmt: skip
        return template.format_map(values)


_SAMPLE = NodeLaunch(
    node="n1", peers={"n1": ("127.0.0.1", 7001), "n2": ("127.0.0.1", 7002)}, client_port=8001,
    data_dir=Path("data"), events=Path("events.jsonl"), log=Path("node.log"),
    cluster_id="sample", lifeline_fd=3, nodes=("n1", "n2"),
)


async def ask_role(client: HttpJsonClient | NdjsonClient) -> Role | None:
    """A node's answer to {"f": "role"}: {"type": "ok", "value": {"leader": bool, "term": int}}."""
    try:
        loop = asyncio.get_running_loop()
        out = await client.perform(client.home, "role", None, None, "role:0",
                                   loop.time() + client.timeout)  # fmt: skip
    except (NotSent, Lost, Redirect):
        return None
    finally:
        await client.close()
    value = out.value if out.type == "ok" else None
    if not isinstance(value, dict) or not isinstance(value.get("term"), int):
        return None
    return Role(value.get("leader") is True, value["term"])


def _missing(requires: list[str], cwd: Path, base: Path) -> str | None:
    for name in requires:
        if "{" in name:
            continue  # filled in per node: cannot be checked up front
        if os.sep in name:
            found = (cwd / name).is_file() or (base / name).is_file()
        else:
            found = shutil.which(name) is not None or (cwd / name).is_file()
        if not found:
            return f"`{name}` was not found (on PATH, or relative to {cwd})"
    return None
