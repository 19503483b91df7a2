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
    ],
)
def test_messages_round_trip(msg):
    assert codec.decode_message(codec.encode_message(msg)) == msg


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
    assert codec.decode_hello(codec.encode_hello("c", "n1", "n2")) == ("c", "n1", "n2")
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
