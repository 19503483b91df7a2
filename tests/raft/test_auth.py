"""Peer-link authentication: signed hellos, what a verifier refuses, and the secret file."""

import dataclasses
import os
import stat

import pytest

from splitbrain.cluster.secret import write_secret
from splitbrain.raft import codec
from splitbrain.raft.auth import WINDOW_NS, AuthError, ReplayGuard, read_secret, sign

SECRET = b"0123456789abcdef0123456789abcdef"
NOW = 1_700_000_000 * 10**9


def test_a_signed_hello_is_accepted_once():
    hello = sign(SECRET, "c", "n1", "n2", NOW)
    wire = codec.decode_hello(codec.encode_hello(hello))
    guard = ReplayGuard()
    guard.verify(SECRET, wire, NOW + 10**9)
    with pytest.raises(AuthError, match="replayed hello from 'n1'"):
        guard.verify(SECRET, wire, NOW + 2 * 10**9)
    guard.verify(SECRET, sign(SECRET, "c", "n1", "n2", NOW), NOW)  # a new nonce is fine


@pytest.mark.parametrize("field", ["cluster", "src", "dst", "time", "nonce"])
def test_a_hello_signed_for_something_else_is_refused(field):
    hello = sign(SECRET, "c", "n1", "n2", NOW)
    changed = dataclasses.replace(hello, **{field: NOW + 1 if field == "time" else "x"})
    with pytest.raises(AuthError, match="wrong MAC"):
        ReplayGuard().verify(SECRET, changed, NOW)


def test_unsigned_wrongly_signed_and_stale_hellos_are_refused():
    guard = ReplayGuard()
    with pytest.raises(AuthError, match="unauthenticated hello from 'n1' \\(no MAC\\)"):
        guard.verify(SECRET, sign(None, "c", "n1", "n2", NOW), NOW)
    with pytest.raises(AuthError, match="wrong MAC"):
        guard.verify(SECRET, sign(b"another secret of 32 bytes......", "c", "n1", "n2", NOW), NOW)
    for skew in (WINDOW_NS + 1, -WINDOW_NS - 1):
        with pytest.raises(AuthError, match="stale hello"):
            guard.verify(SECRET, sign(SECRET, "c", "n1", "n2", NOW + skew), NOW)


def test_the_secret_file_is_private_and_read_back(tmp_path):
    path = write_secret(tmp_path / "cluster.secret")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    first = read_secret(path)
    assert len(first) == 64
    assert read_secret(write_secret(path)) != first  # a new one each time
    assert [p.name for p in tmp_path.iterdir()] == ["cluster.secret"]


def test_a_secret_file_that_others_can_read_or_that_is_short_is_refused(tmp_path):
    path = tmp_path / "s"
    path.write_bytes(SECRET)
    os.chmod(path, 0o644)
    with pytest.raises(AuthError, match="readable by others \\(mode 644; chmod 600 it\\)"):
        read_secret(path)
    os.chmod(path, 0o600)
    assert read_secret(path) == SECRET
    path.write_bytes(b"short\n")
    with pytest.raises(AuthError, match="at least 16 bytes"):
        read_secret(path)
    with pytest.raises(AuthError, match="No such file"):
        read_secret(tmp_path / "missing")
    os.mkfifo(tmp_path / "fifo", 0o600)
    with pytest.raises(AuthError, match="not a regular file"):
        read_secret(tmp_path / "fifo")  # and does not block
