"""Wire encoding: frames, hello, Raft messages (round trips and damage), client JSON."""

import dataclasses

import pytest

from splitbrain.raft import codec
from splitbrain.raft.messages import Entry, EntryType, HardState, Message, MessageType


def test_codec_carries_every_field_of_message():
    fields = {f.name for f in dataclasses.fields(Message)}
    assert fields == set(codec.MESSAGE_FIELDS)


@pytest.mark.parametrize(
    "msg",
    [
        Message(MessageType.HEARTBEAT, "n1", "n2", term=3, commit=9, context=b"\x00r7"),
        Message(
            MessageType.APP,
            "n1",
            "n3",
            term=5,
            log_term=4,
            index=10,
            commit=8,
            entries=(
                Entry(5, 11, EntryType.NOOP),
                Entry(5, 12, EntryType.NORMAL, b'["c1",1,"put","k","v"]'),
            ),
        ),
        Message(
            MessageType.APP_RESP,
            "n3",
            "n1",
            term=5,
            index=7,
            reject=True,
            reject_hint=4,
            reject_term=2,
        ),
        Message(MessageType.VOTE, "nodé-ü", "n2", term=2**40, log_term=1, index=2**33),
        Message(MessageType.SNAPSHOT, "n1", "n2", term=3, log_term=2, index=40, commit=41,
                offset=2**20, done=True, data=b"\x00chunk"),
        Message(MessageType.SNAPSHOT_RESP, "n2", "n1", term=3, index=40, offset=7, reject=True),
    ],
)
def test_messages_round_trip(msg):
    assert codec.decode_message(codec.encode_message(msg)) == msg


def test_snapshot_bytes_only_in_a_snapshot_and_within_the_chunk_limit():
    for msg, problem in [
        (Message(MessageType.APP, "n1", "n2", term=1, data=b"x"), "APP cannot carry 1 bytes"),
        (Message(MessageType.SNAPSHOT, "n1", "n2", term=1, index=1,
                 data=bytes(codec.MAX_SNAPSHOT_CHUNK + 1)), "cannot carry"),
    ]:
        with pytest.raises(codec.CodecError, match=problem):
            codec.decode_message(codec.encode_message(msg))
    done = bytearray(codec.encode_message(Message(MessageType.SNAPSHOT, "n1", "n2", done=True)))
    done[codec._MSG.size - 5] = 2  # the done flag
    with pytest.raises(codec.CodecError, match="done flag 2"):
        codec.decode_message(bytes(done))


def test_every_truncation_of_a_message_is_refused():
    body = codec.encode_message(
        Message(MessageType.APP, "n1", "n2", term=1, entries=(Entry(1, 1, data=b"abc"),))
    )
    for cut in range(len(body)):
        with pytest.raises(codec.CodecError):
            codec.decode_message(body[:cut])
    with pytest.raises(codec.CodecError, match="after the message"):
        codec.decode_message(body + b"x")


def test_unknown_message_type_is_refused():
    body = bytearray(codec.encode_message(Message(MessageType.HEARTBEAT)))
    body[0] = 200
    with pytest.raises(codec.CodecError, match="unknown message type 200"):
        codec.decode_message(bytes(body))


def test_hard_state_round_trips():
    for hs in (HardState(), HardState(7, "n2", 5), HardState(1, None, 0)):
        assert codec.decode_hard_state(codec.encode_hard_state(hs)) == hs


def test_frame_reader_reassembles_frames_split_anywhere():
    bodies = [b"", b"a", b"hello world" * 50]
    stream = b"".join(codec.frame(b) for b in bodies)
    for step in (1, 3, 7, len(stream)):
        reader = codec.FrameReader()
        got = []
        for i in range(0, len(stream), step):
            got.extend(reader.feed(stream[i : i + step]))
        assert got == bodies


def test_frame_reader_refuses_an_oversized_length():
    with pytest.raises(codec.CodecError, match="exceeds"):
        codec.FrameReader(max_frame=10).feed(codec.frame(b"x" * 11))


def test_hello_round_trips_and_rejects_garbage():
    for hello in (codec.Hello("c", "n1", "n2"), codec.Hello("c", "n1", "n2", 7, "ab", "cd")):
        assert codec.decode_hello(codec.encode_hello(hello)) == hello
    for bad in (b"xx", b"[]", b'{"hello": 1, "cluster": "c"}', b'{"hello": 2}'):
        with pytest.raises(codec.CodecError):
            codec.decode_hello(bad)


def test_json_objects_only():
    assert codec.decode_json(codec.encode_json({"f": "get", "key": "k"})) == {
        "f": "get",
        "key": "k",
    }
    with pytest.raises(codec.CodecError, match="JSON object"):
        codec.decode_json(b"[1]")


def test_peek_reads_kind_and_term_from_the_header_alone():
    body = codec.encode_message(Message(MessageType.APP_RESP, "n1", "n2", term=2**35, index=9))
    assert codec.peek(body) == ("app-resp", 2**35)
    assert codec.peek(body[:9]) == ("app-resp", 2**35)
    assert set(codec.MESSAGE_KINDS) >= {"app", "app-resp", "heartbeat", "vote-resp"}
    with pytest.raises(codec.CodecError, match="truncated"):
        codec.peek(body[:8])
    with pytest.raises(codec.CodecError, match="unknown message type 99"):
        codec.peek(bytes([99]) + body[1:])


HEADER_FIELDS = ("term", "log_term", "index", "commit", "reject_hint", "reject_term")


@pytest.mark.parametrize("field", HEADER_FIELDS)
@pytest.mark.parametrize("value", [2**63, 2**64 - 1])
def test_a_counter_no_core_could_reach_is_refused(field, value):
    """Issue 10 item 1: a HEARTBEAT of term 2**64 - 1 used to reach the core (and the WAL) and
    crash every node when it answered; the encoder accepts it, the decoder must not."""
    body = codec.encode_message(Message(MessageType.HEARTBEAT, "n2", "n1", **{field: value}))
    with pytest.raises(codec.CodecError, match="out of range"):
        codec.decode_message(body)
    ok = codec.encode_message(Message(MessageType.HEARTBEAT, "n2", "n1", **{field: 2**63 - 1}))
    assert getattr(codec.decode_message(ok), field) == 2**63 - 1


@pytest.mark.parametrize(
    "entries, problem",
    [
        ((Entry(2, 12),), "cannot follow"),  # a gap after prevLogIndex 10
        ((Entry(2, 11), Entry(2, 11)), "cannot follow"),  # not consecutive
        ((Entry(2, 11), Entry(1, 12)), "cannot follow"),  # a term going down
        ((Entry(3, 11),), "cannot follow"),  # above the leader's term
        ((Entry(2**63, 11),), "out of range"),
    ],
)
def test_entries_that_are_not_a_run_of_a_log_are_refused(entries, problem):
    msg = Message(MessageType.APP, "n1", "n2", term=2, log_term=1, index=10, entries=entries)
    with pytest.raises(codec.CodecError, match=problem):
        codec.decode_message(codec.encode_message(msg))


def test_lengths_inconsistent_with_the_frame_are_refused_at_once():
    body = bytearray(codec.encode_message(Message(MessageType.APP, "n1", "n2", term=1)))
    body[_N_ENTRIES : _N_ENTRIES + 4] = (2**32 - 1).to_bytes(4, "big")  # no room for them
    with pytest.raises(codec.CodecError, match="cannot hold 4294967295 entries"):
        codec.decode_message(bytes(body))
    heartbeat = Message(MessageType.HEARTBEAT, "n1", "n2", term=1)
    body = codec.encode_message(dataclasses.replace(heartbeat, entries=(Entry(1, 1),)))
    with pytest.raises(codec.CodecError, match="HEARTBEAT cannot hold 1 entries"):
        codec.decode_message(body)


_N_ENTRIES = 1 + 8 * 4 + 1 + 8 * 2 + 2 * 2 + 4  # offset of the entry count in the header


def test_names_that_are_not_utf8_are_refused():
    body = codec.encode_message(Message(MessageType.HEARTBEAT, "zq", "n2", term=1))
    with pytest.raises(codec.CodecError, match="source is not UTF-8"):
        codec.decode_message(body.replace(b"zq", b"\xff\xfe"))
    hs = codec.encode_hard_state(HardState(1, "zq", 0))
    with pytest.raises(codec.CodecError, match="vote is not UTF-8"):
        codec.decode_hard_state(hs.replace(b"zq", b"\xff\xfe"))


def test_a_hard_state_out_of_range_is_refused():
    with pytest.raises(codec.CodecError, match="out of range"):
        codec.decode_hard_state(codec.encode_hard_state(HardState(2**64 - 1, None, 0)))


@pytest.mark.parametrize(
    "body, problem",
    [
        (b"[" * 100_000, "nested too deep"),  # issue 10 item 5: a RecursionError traceback
        (b'{"k": ' * 100_000, "nested too deep"),
        (b'{"f": "\xff\xfe"}', "can't decode"),
        (b'{"value": NaN}', "NaN is not JSON"),
        (b'{"value": -Infinity}', "-Infinity is not JSON"),
        (b'{"seq": ' + b"9" * 5000 + b"}", "digits"),
    ],
    ids=["deep-list", "deep-object", "not-utf8", "nan", "infinity", "huge-int"],
)
def test_bad_json_in_a_request_or_hello_is_a_codec_error(body, problem):
    with pytest.raises(codec.CodecError, match=problem):
        codec.decode_json(body)
    with pytest.raises(codec.CodecError, match=problem):
        codec.decode_hello(body)


def test_a_hello_mac_needs_a_nonce_and_an_integer_time():
    for bad in ('"time": "7", "nonce": "n"', '"time": 7, "nonce": 5', '"time": -1, "nonce": "n"'):
        body = f'{{"hello": 1, "cluster": "c", "src": "a", "dst": "b", "mac": "m", {bad}}}'
        with pytest.raises(codec.CodecError, match="a mac needs"):
            codec.decode_hello(body.encode())


def test_the_first_frame_may_have_a_smaller_limit():
    reader = codec.FrameReader(100, first_frame=10)
    assert reader.feed(codec.frame(b"x" * 10) + codec.frame(b"y" * 100)) == [b"x" * 10, b"y" * 100]
    with pytest.raises(codec.CodecError, match="exceeds the 10-byte limit"):
        codec.FrameReader(100, first_frame=10).feed(codec.frame(b"x" * 11))
    reader = codec.FrameReader(100)
    assert reader.feed(codec.frame(b"abc")[:5]) == [] and reader.buffered == 5
