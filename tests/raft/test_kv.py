"""The KV state machine: operations, and exactly-once application per (client id, seq)."""

import itertools

import pytest

from splitbrain.raft.kv import (
    KV,
    SESSION_WINDOW,
    Command,
    CommandError,
    Result,
    decode_command,
    encode_command,
)

_seqs = itertools.count(1)


def apply(kv: KV, f: str, key: str, value=None):
    return kv.apply(Command("c1", next(_seqs), f, key, value))


def test_kv_get_put_append():
    kv = KV()
    assert kv.read("get", "k") == Result(True, "")
    assert apply(kv, "put", "k", "a") == Result(True, "a")
    assert apply(kv, "append", "k", "bc") == Result(True, "bc")
    assert apply(kv, "get", "k") == Result(True, "abc")
    assert apply(kv, "append", "new", "x") == Result(True, "x")
    assert kv.read("get", "new").value == "x"


def test_register_read_write_cas():
    kv = KV()
    assert kv.read("read", "r") == Result(True, None)
    assert apply(kv, "write", "r", 3) == Result(True, 3)
    assert apply(kv, "cas", "r", [2, 5]) == Result(False, [2, 5], "cas-mismatch")
    assert kv.read("read", "r").value == 3
    assert apply(kv, "cas", "r", [3, 5]) == Result(True, [3, 5])
    assert kv.read("read", "r").value == 5


def test_append_to_a_non_string_fails_deterministically():
    kv = KV()
    apply(kv, "write", "r", 1)
    assert apply(kv, "append", "r", "x") == Result(False, "x", "not-a-string")


def test_a_retried_request_returns_its_first_result_and_changes_nothing():
    kv = KV()
    first = kv.apply(Command("c1", 1, "cas", "r", [None, 1]))
    assert first.ok
    kv.apply(Command("c2", 1, "write", "r", 7))
    # The same (client, seq) applied again, e.g. appended twice after a retry:
    again = kv.apply(Command("c1", 1, "cas", "r", [None, 1]))
    assert again == Result(first.ok, first.value, first.error, repeat=True)
    assert not first.repeat  # the node events tell the two apart
    assert kv.read("read", "r").value == 7


def test_sessions_remember_a_window_of_results_and_refuse_older_ones():
    kv = KV()
    for seq in range(1, SESSION_WINDOW + 11):
        kv.apply(Command("c", seq, "append", "k", "x"))
    assert kv.apply(Command("c", 1, "append", "k", "x")) == Result(False, None, "stale-request",
                                                                  repeat=True)
    assert kv.read("get", "k").value == "x" * (SESSION_WINDOW + 10)
    # Out-of-order seqs inside the window are still executed once each.
    assert kv.apply(Command("d", 2, "put", "a", "2")).ok
    assert kv.apply(Command("d", 1, "put", "a", "1")).ok
    assert kv.read("get", "a").value == "1"


def test_command_encoding_round_trips():
    cmd = Command("c9", 17, "cas", "k2", [1, 4])
    back = decode_command(encode_command(cmd))
    assert back == Command("c9", 17, "cas", "k2", [1, 4])
    assert back.request_id == "c9:17"


@pytest.mark.parametrize(
    "data, problem",
    [
        (b"not json", "undecodable"),
        (b'["c", 1, "frob", "k", null]', "unknown operation"),
        (b'["c", 1, "put", 3, "v"]', "key must be a string"),
        (b'["c", 1, "put", "k", 3]', "string value"),
        (b'["c", 1, "cas", "k", [1]]', "cas needs"),
        (b'["c", "x", "put", "k", "v"]', "integer seq"),
    ],
)
def test_bad_commands_are_refused_with_a_reason(data, problem):
    with pytest.raises(CommandError, match=problem):
        decode_command(data)
