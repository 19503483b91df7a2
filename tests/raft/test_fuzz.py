"""Bounded fuzzing of everything a node reads from outside (issue 10, "must show"): the peer and
client decoders, a node's connections fed arbitrary bytes, and the WAL reader on random bytes,
truncations and bit flips of valid logs. Never a traceback; never a silently shorter log from
damage in the middle of a log.

Derandomized (the same examples every run) and bounded, so CI time is fixed.
"""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from splitbrain.raft import codec
from splitbrain.raft.messages import Entry, EntryType, HardState, Message, MessageType
from splitbrain.raft.server import _ClientConnection, _PeerInbound
from splitbrain.raft.wal import WAL, WALError, replay
from tests.raft.conn_fakes import FakeTransport, built_server

FUZZ = settings(max_examples=300, deadline=None, derandomize=True, database=None,
                suppress_health_check=list(HealthCheck))
SOME = settings(FUZZ, max_examples=100)  # examples that write files or drive a node
U64 = st.integers(0, 2**64 - 1)
COUNTER = st.one_of(st.integers(0, 40), st.integers(0, codec.MAX_COUNTER), U64)


@st.composite
def messages(draw) -> Message:
    """Any message the encoder can write: counters up to 2**64 - 1, entries of any shape."""
    kind = draw(st.sampled_from(MessageType))
    entries = draw(st.lists(st.builds(Entry, COUNTER, COUNTER, st.sampled_from(EntryType),
                                      st.binary(max_size=20)), max_size=4))
    return Message(kind, draw(st.sampled_from(["n2", "n1", "x"])), "n1", draw(COUNTER),
                   draw(COUNTER), draw(COUNTER), tuple(entries), draw(COUNTER), draw(st.booleans()),
                   draw(COUNTER), draw(COUNTER), draw(st.binary(max_size=8)))


def damaged(body: bytes, data) -> bytes:
    """`body` truncated, extended or with bytes flipped, as `data` draws."""
    how = data.draw(st.sampled_from(["as-is", "cut", "flip", "append"]))
    if how == "cut" and body:
        return body[: data.draw(st.integers(0, len(body) - 1))]
    if how == "flip" and body:
        at = data.draw(st.integers(0, len(body) - 1))
        return body[:at] + bytes([body[at] ^ data.draw(st.integers(1, 255))]) + body[at + 1 :]
    if how == "append":
        return body + data.draw(st.binary(min_size=1, max_size=8))
    return body


@FUZZ
@given(msg=messages(), data=st.data())
def test_the_peer_decoder_refuses_or_yields_what_a_core_could_have_sent(msg, data):
    body = damaged(codec.encode_message(msg), data)
    try:
        out = codec.decode_message(body)
    except codec.CodecError:
        return
    counters = (out.term, out.log_term, out.index, out.commit, out.reject_hint, out.reject_term)
    assert max(counters) <= codec.MAX_COUNTER
    assert [e.index for e in out.entries] == list(
        range(out.index + 1, out.index + 1 + len(out.entries)))
    assert all(e.term <= out.term for e in out.entries)
    assert codec.decode_message(codec.encode_message(out)) == out


@FUZZ
@given(body=st.binary(max_size=200))
def test_random_bytes_are_a_codec_error_or_a_value(body):
    for decode in (codec.decode_message, codec.decode_hello, codec.decode_json,
                   codec.decode_hard_state):
        with contextlib.suppress(codec.CodecError):
            decode(body)


JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=5),
                    lambda inner: st.lists(inner, max_size=3)
                    | st.dictionaries(st.text(max_size=5), inner, max_size=3), max_leaves=8)
REQUESTS = st.fixed_dictionaries({}, optional={
    "seq": JSON, "cid": st.one_of(st.text(max_size=5), JSON), "key": JSON, "value": JSON,
    "f": st.one_of(st.sampled_from(["get", "put", "append", "read", "write", "cas", "status",
                                    "crash-point"]), JSON)})


def frames(data, parts) -> bytes:
    """Frames of requests as a client would send them, sometimes mangled."""
    out = []
    for part in parts:
        body = part if isinstance(part, bytes) else codec.encode_json(part)
        out.append(damaged(codec.frame(body), data))
    return b"".join(out)


def test_a_client_connection_takes_any_bytes_without_a_traceback(tmp_path):
    with built_server(tmp_path) as server:

        @SOME
        @given(parts=st.lists(st.one_of(REQUESTS, st.binary(max_size=30)), max_size=5),
               split=st.integers(1, 50), data=st.data())
        def fuzz(parts, split, data):
            conn = _ClientConnection(server)
            transport = FakeTransport()
            conn.connection_made(transport)
            stream = frames(data, parts)
            for i in range(0, len(stream), split):
                conn.data_received(stream[i : i + split])
            for reply in transport.replies():
                assert reply["node"] == "n1" and isinstance(reply["ok"], bool)
            conn.connection_lost(None)
            assert server.buffers.used == 0

        fuzz()


def test_a_peer_connection_takes_any_messages_without_a_traceback(tmp_path):
    """After a valid hello, anything: arbitrary and damaged messages reach the core only if
    they decode, and whatever the core makes of them raises nothing."""

    def feed(server, stream: bytes) -> None:
        conn = _PeerInbound(server)
        conn.connection_made(FakeTransport())
        conn.data_received(codec.frame(codec.encode_hello(codec.Hello("splitbrain", "n2", "n1"))))
        conn.data_received(stream)
        conn.connection_lost(None)

    @SOME
    @given(msgs=st.lists(messages(), max_size=4), data=st.data())
    def fuzz(server, msgs, data):
        stream = b"".join(damaged(codec.frame(codec.encode_message(m)), data) for m in msgs)
        feed(server, stream)
        server.node.tick()
        while server.node.has_ready():
            server.node.advance(server.node.ready())

    async def in_a_loop() -> None:  # connections start a timer on the running loop
        with built_server(tmp_path) as server:
            fuzz(server)

    asyncio.run(in_a_loop())


# -- the WAL reader ----------------------------------------------------------------------------


@pytest.fixture
def small_files(monkeypatch):
    monkeypatch.setattr("splitbrain.raft.wal.PREALLOCATE", 512)  # zeros after the log, cheaply


BATCHES = st.lists(
    st.tuples(
        st.one_of(st.none(), st.builds(HardState, st.integers(0, 9),
                                       st.sampled_from([None, "n1", "n2"]), st.integers(0, 3))),
        st.lists(st.tuples(st.integers(1, 3), st.sampled_from(EntryType),
                           st.binary(max_size=12)), max_size=3),
        st.integers(1, 8),  # where the batch starts: at most one past the last entry
    ),
    min_size=1, max_size=6)


def write_wal(directory: Path, batches) -> list[tuple[int, int]]:
    """Save `batches`; the (start, end) offsets of every record written, in order."""
    wal, _ = WAL.open(directory, fsync=False)
    last = 0
    for hs, entries, first in batches:
        first = min(first, last + 1)
        batch = [Entry(term, first + i, kind, data) for i, (term, kind, data) in enumerate(entries)]
        wal.save(hs, batch)
        last = batch[-1].index if batch else last
    wal.close()
    data = (directory / "raft.wal").read_bytes()
    records, pos = [], 0
    while pos + 8 <= len(data) and (size := int.from_bytes(data[pos : pos + 4], "big")):
        records.append((pos, pos + 8 + size + 1))  # header, kind and payload, end mark
        pos += 8 + size + 1
    return records


def state(recovered):
    return recovered.hard_state, [(e.term, e.index, e.type, e.data) for e in recovered.entries]


def expect(data: bytes, records, upto: int):
    """What the first `upto` records of `data` say."""
    return state(replay(data[: records[upto - 1][1]] if upto else b"")[0])


@FUZZ
@given(data=st.binary(max_size=300))
def test_random_bytes_are_a_log_or_a_wal_error(data):
    try:
        recovered, good = replay(data)
    except WALError:
        return
    assert 0 <= good <= len(data) and recovered.truncated_bytes <= len(data) - good


def test_a_truncated_log_is_the_records_written_whole(tmp_path, small_files):
    counter = iter(range(10**6))

    @SOME
    @given(batches=BATCHES, data=st.data())
    def fuzz(batches, data):
        d = tmp_path / str(next(counter))
        records = write_wal(d, batches)
        full = (d / "raft.wal").read_bytes()
        end = records[-1][1] if records else 0
        cut = data.draw(st.integers(0, end))
        whole = sum(1 for _, stop in records if stop <= cut)
        assert state(replay(full[:cut])[0]) == expect(full, records, whole)  # a short file
        recovered, _ = replay(full[:cut] + bytes(len(full) - cut))  # what a kill -9 leaves
        assert state(recovered) == expect(full, records, whole)

    fuzz()


def test_a_bit_flip_in_the_log_is_refused_and_after_it_discarded(tmp_path, small_files):
    counter = iter(range(10**6))

    @settings(FUZZ, max_examples=200)
    @given(batches=BATCHES, data=st.data())
    def fuzz(batches, data):
        d = tmp_path / str(next(counter))
        records = write_wal(d, batches)
        full = (d / "raft.wal").read_bytes()
        end = records[-1][1] if records else 0
        at = data.draw(st.integers(0, min(len(full) - 1, end + 64)))
        flipped = bytearray(full)
        flipped[at] ^= 1 << data.draw(st.integers(0, 7))
        flipped = bytes(flipped)
        try:
            recovered, _ = replay(flipped)
        except WALError as exc:
            assert at < end, f"zeros after the log are no record: {exc}"
            return
        # Never a silently shorter log: every record ends with its end mark, which no bit
        # flip makes zero, so damage anywhere in the log (the last record too) is refused.
        assert at >= end, (at, records)
        assert state(recovered) == expect(full, records, len(records))  # garbage discarded

    fuzz()
