"""Wire encoding of the bundled Raft: frames, the peer hello, Raft messages, client requests.

Rules it keeps (DESIGN.md, "Wire protocols"):
- Every frame is a 4-byte big-endian length, then the body. A frame longer than the reader's
  limit is a protocol error, so a garbled length cannot make us buffer gigabytes: `MAX_FRAME`
  for an authenticated peer, `MAX_HELLO` before the hello, `MAX_CLIENT_FRAME` for clients.
- The first frame of a peer connection is a hello naming the cluster, the sender and the
  receiver (JSON, so a person reading a capture can see it), with a MAC when the cluster has a
  secret (auth.py). Then each frame is one Raft message in a compact binary struct format:
  peer traffic is the hot path.
- Client requests and replies are small JSON objects: their values are arbitrary JSON, except
  NaN and the infinities (not JSON).
- Decoding errors raise `CodecError` naming the problem; they never pass garbage on. Decoding
  refuses what our encoder could not have produced from a core's message, before it reaches the
  core or the disk: a counter (term, index, commit) above `MAX_COUNTER`, a length inconsistent
  with the frame, text that is not UTF-8, JSON nested too deep, an AppendEntries whose
  entries are not the consecutive, term-ordered run of a log, and snapshot bytes outside a
  SNAPSHOT message or over `MAX_SNAPSHOT_CHUNK`.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass
from typing import Any

from splitbrain.raft.messages import Entry, EntryType, HardState, Message, MessageType

MAX_FRAME = 64 * 1024 * 1024
MAX_HELLO = 4096  # a hello is a few names and a MAC: the limit before a peer is known
MAX_CLIENT_FRAME = 4 * 1024 * 1024  # > kv.MAX_COMMAND written out in JSON, whatever its escapes
# No honest cluster gets near 2**63 terms or entries (one a nanosecond for 292 years): a counter
# beyond it can only be forged, and a term of 2**64 - 1 would make our next election unencodable.
MAX_COUNTER = 2**63 - 1
_LEN = struct.Struct(">I")
# The bytes of a snapshot one SNAPSHOT message carries at most (raft.Config.snapshot_chunk
# stays below it): a chunk is one frame, far below MAX_FRAME.
MAX_SNAPSHOT_CHUNK = 4 * 1024 * 1024
# type, term, log_term, index, commit, reject, reject_hint, reject_term,
# len(src), len(dst), len(context), number of entries, offset, done, len(data)
_MSG = struct.Struct(">BQQQQBQQHHIIQBI")
_ENTRY = struct.Struct(">QQBI")  # term, index, type, len(data)
_HARD = struct.Struct(">QQH")  # term, commit, len(vote) (0xFFFF = no vote)
_NO_VOTE = 0xFFFF
_PEEK = struct.Struct(">BQ")  # the head of _MSG: type, term

# The names a link proxy's kind filter uses for the message types (cluster/faults.py).
MESSAGE_KINDS: dict[str, MessageType] = {t.name.lower().replace("_", "-"): t for t in MessageType}
_KIND_NAMES = {t: name for name, t in MESSAGE_KINDS.items()}

# The codec must carry every field of Message; a test checks this list against messages.py.
MESSAGE_FIELDS = (
    "type",
    "src",
    "dst",
    "term",
    "log_term",
    "index",
    "entries",
    "commit",
    "reject",
    "reject_hint",
    "reject_term",
    "context",
    "offset",
    "done",
    "data",
)


class CodecError(ValueError):
    """Bytes that are not a valid frame, hello, message or request."""


def frame(body: bytes) -> bytes:
    return _LEN.pack(len(body)) + body


class FrameReader:
    """Splits a byte stream into frames: feed(data) returns the frames it completed.

    `first_frame`, if given, is a smaller limit for the first frame (a peer's hello).
    """

    def __init__(self, max_frame: int = MAX_FRAME, *, first_frame: int | None = None) -> None:
        self._buf = bytearray()
        self._max = max_frame if first_frame is None else first_frame
        self._then = max_frame

    @property
    def buffered(self) -> int:
        """Bytes held: the part of a frame received so far."""
        return len(self._buf)

    def feed(self, data: bytes) -> list[bytes]:
        buf = self._buf
        buf += data
        frames = []
        pos, end = 0, len(buf)
        while end - pos >= 4:
            (size,) = _LEN.unpack_from(buf, pos)
            if size > self._max:
                del buf[:]
                raise CodecError(f"frame of {size} bytes exceeds the {self._max}-byte limit")
            if end - pos - 4 < size:
                break
            frames.append(bytes(buf[pos + 4 : pos + 4 + size]))
            pos += 4 + size
            self._max = self._then
        del buf[:pos]
        return frames


# -- peer hello ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Hello:
    """The first frame of a peer link. `time`, `nonce` and `mac` are set when the sender has
    the cluster's secret (auth.py): they prove membership and keep a recorded hello from being
    replayed."""

    cluster: str
    src: str
    dst: str
    time: int | None = None  # wall-clock ns when sent
    nonce: str | None = None
    mac: str | None = None  # hex HMAC-SHA256, see auth.py


def encode_hello(hello: Hello) -> bytes:
    fields: dict[str, Any] = {"hello": 1, "cluster": hello.cluster, "src": hello.src,
                              "dst": hello.dst}
    if hello.mac is not None:
        fields.update(time=hello.time, nonce=hello.nonce, mac=hello.mac)
    return json.dumps(fields).encode()


def decode_hello(body: bytes) -> Hello:
    obj = _loads(body, "bad hello")
    if not isinstance(obj, dict) or obj.get("hello") != 1:
        raise CodecError("first frame is not a hello")
    names = obj.get("cluster"), obj.get("src"), obj.get("dst")
    if not all(isinstance(x, str) for x in names):
        raise CodecError("bad hello: cluster, src and dst must be strings")
    time, nonce, mac = obj.get("time"), obj.get("nonce"), obj.get("mac")
    if mac is not None and not (
        isinstance(mac, str)
        and isinstance(nonce, str)
        and type(time) is int
        and 0 <= time <= MAX_COUNTER
    ):
        raise CodecError("bad hello: a mac needs a string nonce and an integer time")
    return Hello(*names, time=time, nonce=nonce, mac=mac)  # type: ignore[arg-type]


# -- entries, hard state, messages -------------------------------------------------------------


def encode_entry(e: Entry) -> bytes:
    return _ENTRY.pack(e.term, e.index, e.type, len(e.data)) + e.data


def decode_entry_from(buf: bytes | memoryview, pos: int) -> tuple[Entry, int]:
    """The entry at `pos` of `buf` and the position after it."""
    try:
        term, index, etype, size = _ENTRY.unpack_from(buf, pos)
    except struct.error:
        raise CodecError("truncated entry") from None
    start = pos + _ENTRY.size
    if start + size > len(buf):
        raise CodecError("truncated entry data")
    try:
        kind = EntryType(etype)
    except ValueError:
        raise CodecError(f"unknown entry type {etype}") from None
    if term > MAX_COUNTER or not 1 <= index <= MAX_COUNTER:
        raise CodecError(f"entry term {term} or index {index} is out of range")
    return Entry(term, index, kind, bytes(buf[start : start + size])), start + size


def encode_hard_state(hs: HardState) -> bytes:
    if hs.vote is None:
        return _HARD.pack(hs.term, hs.commit, _NO_VOTE)
    vote = hs.vote.encode()
    return _HARD.pack(hs.term, hs.commit, len(vote)) + vote


def decode_hard_state(buf: bytes) -> HardState:
    try:
        term, commit, size = _HARD.unpack_from(buf, 0)
    except struct.error:
        raise CodecError("truncated hard state") from None
    if term > MAX_COUNTER or commit > MAX_COUNTER:
        raise CodecError(f"hard state term {term} or commit {commit} is out of range")
    if size == _NO_VOTE:
        return HardState(term=term, vote=None, commit=commit)
    vote = buf[_HARD.size : _HARD.size + size]
    if len(vote) != size:
        raise CodecError("truncated hard state vote")
    return HardState(term=term, vote=_text(vote, "vote"), commit=commit)


def encode_message(m: Message) -> bytes:
    src, dst = m.src.encode(), m.dst.encode()
    parts = [
        _MSG.pack(
            m.type,
            m.term,
            m.log_term,
            m.index,
            m.commit,
            m.reject,
            m.reject_hint,
            m.reject_term,
            len(src),
            len(dst),
            len(m.context),
            len(m.entries),
            m.offset,
            m.done,
            len(m.data),
        ),
        src,
        dst,
        m.context,
        m.data,
    ]
    for e in m.entries:
        parts.append(_ENTRY.pack(e.term, e.index, e.type, len(e.data)))
        parts.append(e.data)
    return b"".join(parts)


def peek(body: bytes | memoryview) -> tuple[str, int]:
    """(kind, term) of an encoded message from its header alone, kind as in MESSAGE_KINDS
    ("app", "app-resp", "heartbeat", ...): what a link proxy needs to aim faults at message
    kinds without decoding whole messages. CodecError if `body` is not one of our messages."""
    try:
        mtype, term = _PEEK.unpack_from(body, 0)
    except struct.error:
        raise CodecError("truncated message header") from None
    try:
        return _KIND_NAMES[MessageType(mtype)], term
    except ValueError:
        raise CodecError(f"unknown message type {mtype}") from None


def decode_message(body: bytes) -> Message:
    try:
        (
            mtype,
            term,
            log_term,
            index,
            commit,
            reject,
            reject_hint,
            reject_term,
            n_src,
            n_dst,
            n_ctx,
            n_entries,
            offset,
            done,
            n_data,
        ) = _MSG.unpack_from(body, 0)
    except struct.error:
        raise CodecError("truncated message header") from None
    try:
        kind = MessageType(mtype)
    except ValueError:
        raise CodecError(f"unknown message type {mtype}") from None
    if max(term, log_term, index, commit, reject_hint, reject_term) > MAX_COUNTER:
        raise CodecError(
            f"{kind.name} with a counter out of range: term {term}, log term {log_term}, "
            f"index {index}, commit {commit}, reject hint {reject_hint}/{reject_term}"
        )
    if reject > 1 or done > 1:
        raise CodecError(f"{kind.name} with reject flag {reject} or done flag {done}")
    if offset > MAX_COUNTER:
        raise CodecError(f"{kind.name} with offset {offset} out of range")
    if n_data and (kind is not MessageType.SNAPSHOT or n_data > MAX_SNAPSHOT_CHUNK):
        raise CodecError(f"{kind.name} cannot carry {n_data} bytes of snapshot "
                         f"(at most {MAX_SNAPSHOT_CHUNK}, in a SNAPSHOT)")
    pos = _MSG.size
    data_end = pos + n_src + n_dst + n_ctx + n_data
    end = data_end - n_data
    if data_end > len(body):
        raise CodecError("truncated message")
    if n_entries and (kind is not MessageType.APP
                      or n_entries * _ENTRY.size > len(body) - end - n_data):
        raise CodecError(f"{kind.name} cannot hold {n_entries} entries in {len(body)} bytes")
    src = _text(body[pos : pos + n_src], "source")
    dst = _text(body[pos + n_src : pos + n_src + n_dst], "destination")
    context = body[pos + n_src + n_dst : end]
    data = body[end:data_end]
    entries = []
    pos = data_end
    prev_index, prev_term = index, log_term
    for _ in range(n_entries):
        entry, pos = decode_entry_from(body, pos)
        # The run the core sends: consecutive after prevLogIndex, terms never going down and
        # never above the leader's. The follower's log relies on it.
        if entry.index != prev_index + 1 or not prev_term <= entry.term <= term:
            raise CodecError(
                f"entry ({entry.term}, {entry.index}) cannot follow ({prev_term}, {prev_index}) "
                f"in an append of term {term}"
            )
        prev_index, prev_term = entry.index, entry.term
        entries.append(entry)
    if pos != len(body):
        raise CodecError(f"{len(body) - pos} bytes after the message")
    return Message(
        type=kind,
        src=src,
        dst=dst,
        term=term,
        log_term=log_term,
        index=index,
        entries=tuple(entries),
        commit=commit,
        reject=bool(reject),
        reject_hint=reject_hint,
        reject_term=reject_term,
        context=context,
        offset=offset,
        done=bool(done),
        data=data,
    )


# -- client requests and replies ---------------------------------------------------------------


def encode_json(obj: dict[str, Any]) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


def decode_json(body: bytes) -> dict[str, Any]:
    obj = _loads(body, "bad JSON")
    if not isinstance(obj, dict):
        raise CodecError("expected a JSON object")
    return obj


def _not_json(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _loads(body: bytes, problem: str) -> Any:
    """JSON from bytes; CodecError for anything else: not UTF-8, NaN or the infinities, too
    deep to parse (RecursionError), integers beyond Python's digit limit."""
    try:
        return json.loads(body, parse_constant=_not_json)
    except (ValueError, RecursionError) as exc:
        detail = "nested too deep" if isinstance(exc, RecursionError) else str(exc)
        raise CodecError(f"{problem}: {detail}") from None


def _text(raw: bytes, what: str) -> str:
    try:
        return raw.decode()
    except UnicodeDecodeError:
        raise CodecError(f"{what} is not UTF-8: {raw[:40]!r}") from None
