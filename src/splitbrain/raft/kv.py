"""The key-value state machine the Raft log drives, and the encoding of its commands.

Pure: no I/O. Keys are strings; two workloads share one key space:
- kv: `get` (an absent key reads as ""), `put` v, `append` v (string concatenation);
- register: `read` (an absent key reads as None), `write` v, `cas` [expected, new].

Rules it keeps:
- Exactly once per client request: a command is identified by (client id, seq). Applying the same
  (client id, seq) again — a client retry that was appended twice — returns the first result and
  changes nothing. The last `SESSION_WINDOW` results of each client are remembered, evicted
  in apply order, so every replica forgets the same ones; a seq at or below a forgotten one is
  refused ("stale-request") rather than applied again. Sessions themselves never expire (one
  per client id ever seen: expiring one safely needs registered sessions, Raft thesis §6.3);
  splitbrain's workers keep one client id each for the whole run (interpreter.py).
- Deterministic: the result depends only on the sequence of applied commands.
- `state()` encodes everything that decides future results — the data AND every session (its
  remembered results in apply order, and the highest seq forgotten) — canonically (keys and
  client ids sorted), so equal states encode to equal bytes on every replica and `digest`
  compares them; `KV.restore(state)` rebuilds the same state (CommandError if malformed).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field, replace
from typing import Any

READS = frozenset({"get", "read"})
WRITES = frozenset({"put", "append", "write", "cas"})
SESSION_WINDOW = 64
# Bytes of an encoded command (client id, key, value...): one log entry. etcd's default request
# limit is 1.5 MiB; ours keeps every entry far below a frame (codec.MAX_FRAME) and lets a
# follower catch up in messages of raft.Config.max_msg_bytes. Above it: "value-too-large".
MAX_COMMAND = 1024 * 1024


class CommandError(ValueError):
    """A command that the state machine cannot accept (wrong f, key or value shape)."""


@dataclass(frozen=True, slots=True)
class Command:
    client_id: str
    seq: int
    f: str
    key: str
    value: Any = None

    @property
    def request_id(self) -> str:
        """The id the node events and the history use: "<client id>:<seq>"."""
        return f"{self.client_id}:{self.seq}"


@dataclass(frozen=True, slots=True)
class Result:
    ok: bool
    value: Any = None  # the value read (reads), or the input value (writes)
    error: str | None = None  # e.g. "cas-mismatch"
    repeat: bool = False  # a repeated (client id, seq): not executed again (exactly once)


def validate(f: str, key: Any, value: Any) -> None:
    """Raise CommandError unless (f, key, value) is a well-formed operation."""
    if not isinstance(f, str) or (f not in READS and f not in WRITES):
        raise CommandError(f"unknown operation {f!r}")
    if not isinstance(key, str):
        raise CommandError(f"key must be a string, not {type(key).__name__}")
    if f in ("put", "append") and not isinstance(value, str):
        raise CommandError(f"{f} needs a string value, not {type(value).__name__}")
    if f == "cas" and not (isinstance(value, list | tuple) and len(value) == 2):
        raise CommandError("cas needs a value [expected, new]")


def encode_command(cmd: Command) -> bytes:
    return json.dumps(
        [cmd.client_id, cmd.seq, cmd.f, cmd.key, cmd.value], separators=(",", ":")
    ).encode()


def decode_command(data: bytes) -> Command:
    try:
        client_id, seq, f, key, value = json.loads(data)
    except (ValueError, TypeError) as exc:
        raise CommandError(f"undecodable command: {exc}") from None
    if not isinstance(client_id, str) or not isinstance(seq, int):
        raise CommandError("command needs a string client id and an integer seq")
    validate(f, key, value)
    return Command(client_id, seq, f, key, value)


@dataclass(slots=True)
class _Session:
    """One client's remembered results, in the order they were applied."""

    results: dict[int, Result] = field(default_factory=dict)
    forgotten: int = 0  # the highest seq whose result was evicted


class KV:
    """The replicated state: string keys to values, plus each client's recent results."""

    def __init__(self) -> None:
        self._data: dict[str, Any] = {}
        self._sessions: dict[str, _Session] = {}

    def state(self) -> bytes:
        """The whole state, canonically encoded (the body of a snapshot)."""
        sessions = [
            [cid, s.forgotten, [[seq, r.ok, r.value, r.error] for seq, r in s.results.items()]]
            for cid, s in sorted(self._sessions.items())
        ]
        body = {"data": sorted(self._data.items()), "sessions": sessions}
        return json.dumps(body, separators=(",", ":"), sort_keys=True).encode()

    @classmethod
    def restore(cls, state: bytes) -> KV:
        """The KV that `state()` encoded; CommandError if `state` is no such encoding."""
        kv = cls()
        try:
            body = json.loads(state)
            for key, value in body["data"]:
                if not isinstance(key, str):
                    raise TypeError("a key is not a string")
                kv._data[key] = value
            for cid, forgotten, results in body["sessions"]:
                if not isinstance(cid, str) or type(forgotten) is not int:
                    raise TypeError("a session needs a client id and the seq forgotten")
                session = kv._sessions[cid] = _Session(forgotten=forgotten)
                for seq, ok, value, error in results:
                    if type(seq) is not int or type(ok) is not bool:
                        raise TypeError("a result needs an integer seq and a boolean ok")
                    session.results[seq] = Result(ok, value, error)
        except (ValueError, TypeError, KeyError) as exc:
            raise CommandError(f"not a state machine snapshot: {exc}") from None
        return kv

    def read(self, f: str, key: str) -> Result:
        """A read from local state (the caller decides whether that is linearizable)."""
        if key in self._data:
            return Result(True, self._data[key])
        return Result(True, "" if f == "get" else None)

    def apply(self, cmd: Command) -> Result:
        """Apply one committed command; a repeated (client id, seq) returns its first result."""
        session = self._sessions.get(cmd.client_id)
        if session is None:
            session = self._sessions[cmd.client_id] = _Session()
        first = session.results.get(cmd.seq)
        if first is not None:
            return replace(first, repeat=True)
        if cmd.seq <= session.forgotten:
            # At or below a result already forgotten: it may have been applied.
            return Result(False, None, "stale-request", repeat=True)
        result = self._execute(cmd)
        session.results[cmd.seq] = result
        if len(session.results) > SESSION_WINDOW:
            oldest = next(iter(session.results))  # in apply order: the same on every replica
            del session.results[oldest]
            session.forgotten = max(session.forgotten, oldest)
        return result

    def _execute(self, cmd: Command) -> Result:
        f, key, value = cmd.f, cmd.key, cmd.value
        if f in READS:
            return self.read(f, key)
        if f in ("put", "write"):
            self._data[key] = value
        elif f == "append":
            current = self._data.get(key, "")
            if not isinstance(current, str):
                return Result(False, value, "not-a-string")
            self._data[key] = current + value
        else:  # cas
            expected, new = value
            if self._data.get(key) != expected:
                return Result(False, value, "cas-mismatch")
            self._data[key] = new
        return Result(True, value)


def digest(state: bytes) -> str:
    """A short digest of an encoded state (`KV.state()`), for the `snapshot` events."""
    return hashlib.sha256(state).hexdigest()[:32]
