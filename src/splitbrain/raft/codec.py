"""Wire encoding of the bundled Raft: frames, the peer hello, Raft messages, client requests.

Rules it keeps (DESIGN.md, "Wire protocols"):
- Every frame is a 4-byte big-endian length, then the body. A frame longer than `MAX_FRAME` is
  a protocol error, so a garbled length cannot make us buffer gigabytes.
- The first frame of a peer connection is a hello naming the cluster, the sender and the
  receiver (JSON, so a person reading a capture can see it). Then each frame is one Raft message
  in a compact binary struct format: peer traffic is the hot path.
- Client requests and replies are small JSON objects: their values are arbitrary JSON.
- Decoding errors raise `CodecError` naming the problem; they never pass garbage on.
"""

from __future__ import annotations

import json
import struct
from typing import Any

from splitbrain.raft.messages import Entry, EntryType, HardState, Message, MessageType

MAX_FRAME = 64 * 1024 * 1024
_LEN = struct.Struct(">I")
# type, term, log_term, index, commit, reject, reject_hint, reject_term,
# len(src), len(dst), len(context), number of entries
_MSG = struct.Struct(">BQQQQBQQHHII")
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
)


class CodecError(ValueError):
    """Bytes that are not a valid frame, hello, message or request."""


def frame(body: bytes) -> bytes:
    return _LEN.pack(len(body)) + body


class FrameReader:
    """Splits a byte stream into frames: feed(data) returns the frames it completed."""

    def __init__(self, max_frame: int = MAX_FRAME) -> None:
        self._buf = bytearray()
        self._max = max_frame

    def feed(self, data: bytes) -> list[bytes]:
        buf = self._buf
        buf += data
        frames = []
        pos, end = 0, len(buf)
        while end - pos >= 4:
            (size,) = _LEN.unpack_from(buf, pos)
            if size > self._max:
                raise CodecError(f"frame of {size} bytes exceeds the {self._max}-byte limit")
            if end - pos - 4 < size:
                break
            frames.append(bytes(buf[pos + 4 : pos + 4 + size]))
            pos += 4 + size
        del buf[:pos]
        return frames


# -- peer hello ---------------------------------------------------------------------------------


def encode_hello(cluster: str, src: str, dst: str) -> bytes:
    return json.dumps({"hello": 1, "cluster": cluster, "src": src, "dst": dst}).encode()


def decode_hello(body: bytes) -> tuple[str, str, str]:
    """(cluster, src, dst) of a hello frame."""
    try:
        hello = json.loads(body)
        if not isinstance(hello, dict) or hello.get("hello") != 1:
            raise CodecError("first frame is not a hello")
        cluster, src, dst = hello["cluster"], hello["src"], hello["dst"]
    except (ValueError, KeyError, TypeError) as exc:
        raise CodecError(f"bad hello: {exc}") from None
    if not all(isinstance(x, str) for x in (cluster, src, dst)):
        raise CodecError("bad hello: cluster, src and dst must be strings")
    return cluster, src, dst


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
    if size == _NO_VOTE:
        return HardState(term=term, vote=None, commit=commit)
    vote = buf[_HARD.size : _HARD.size + size]
    if len(vote) != size:
        raise CodecError("truncated hard state vote")
    return HardState(term=term, vote=vote.decode(), commit=commit)


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
        ),
        src,
        dst,
        m.context,
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
        ) = _MSG.unpack_from(body, 0)
    except struct.error:
        raise CodecError("truncated message header") from None
    try:
        kind = MessageType(mtype)
    except ValueError:
        raise CodecError(f"unknown message type {mtype}") from None
    pos = _MSG.size
    end = pos + n_src + n_dst + n_ctx
    if end > len(body):
        raise CodecError("truncated message")
    src = body[pos : pos + n_src].decode()
    dst = body[pos + n_src : pos + n_src + n_dst].decode()
    context = body[pos + n_src + n_dst : end]
    entries = []
    pos = end
    for _ in range(n_entries):
        entry, pos = decode_entry_from(body, pos)
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
    )


# -- client requests and replies ---------------------------------------------------------------


def encode_json(obj: dict[str, Any]) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


def decode_json(body: bytes) -> dict[str, Any]:
    try:
        obj = json.loads(body)
    except ValueError as exc:
        raise CodecError(f"bad JSON: {exc}") from None
    if not isinstance(obj, dict):
        raise CodecError("expected a JSON object")
    return obj
