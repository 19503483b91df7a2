"""Peer-link authentication: a per-cluster secret, and a MAC in the hello that proves membership.

`splitbrain run` (cluster/secret.py) writes a fresh random secret for every run to a file only
its owner can read and gives each node its path (`--secret-file`), never the secret itself
(argv is visible to every local user). A node that has the secret signs its hellos and refuses
every inbound link whose hello does not carry a valid MAC, so a process that is not a member
cannot speak for one; a node without a secret file neither signs nor checks (the behaviour
before authentication existed).

Rules it keeps:
- The MAC is HMAC-SHA256 over (cluster, src, dst, time, nonce), encoded unambiguously, and is
  compared in constant time. A hello is signed for one directed link of one cluster.
- A hello is fresh: its time is within `WINDOW` of the receiver's clock, and its nonce was not
  seen in that window (`ReplayGuard`), so a recorded hello cannot be replayed. Nodes of one
  cluster must have clocks within `WINDOW` of each other; a hello refused as stale costs only
  a reconnection (the sender signs a new one).
- Only the hello is authenticated: the connection that follows is trusted as TCP delivers it
  (no per-message MAC, no encryption; peer links are meant for loopback or a private network).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
import stat
from pathlib import Path

from splitbrain.raft.codec import Hello

WINDOW_NS = 300 * 10**9  # how far a hello's time may be from ours, either way
MIN_SECRET = 16  # bytes


class AuthError(Exception):
    """A hello that does not prove membership, or a secret file that cannot be used."""


def read_secret(path: Path) -> bytes:
    """The secret in `path` (surrounding whitespace dropped). AuthError if the file is missing,
    readable by group or others (as ssh refuses such a key), or holds under MIN_SECRET bytes."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
        try:
            info = os.fstat(fd)
            if not stat.S_ISREG(info.st_mode):
                raise AuthError(f"{path}: not a regular file")
            if info.st_mode & 0o077:
                raise AuthError(
                    f"{path}: readable by others (mode {stat.S_IMODE(info.st_mode):o}; "
                    "chmod 600 it)"
                )
            data = os.read(fd, 4096)
        finally:
            os.close(fd)
    except OSError as exc:
        raise AuthError(f"{path}: {exc.strerror or exc}") from None
    secret = data.strip()
    if len(secret) < MIN_SECRET:
        raise AuthError(f"{path}: a secret needs at least {MIN_SECRET} bytes")
    return secret


def _mac(secret: bytes, cluster: str, src: str, dst: str, time: int, nonce: str) -> str:
    message = json.dumps(["splitbrain-hello", cluster, src, dst, time, nonce]).encode()
    return hmac.new(secret, message, hashlib.sha256).hexdigest()


def sign(secret: bytes | None, cluster: str, src: str, dst: str, now_ns: int) -> Hello:
    """The hello `src` sends to `dst`: signed if there is a secret."""
    if secret is None:
        return Hello(cluster, src, dst)
    nonce = secrets.token_hex(16)
    return Hello(cluster, src, dst, now_ns, nonce, _mac(secret, cluster, src, dst, now_ns, nonce))


class ReplayGuard:
    """The nonces of the hellos accepted within the window, so none is accepted twice."""

    def __init__(self) -> None:
        self._seen: dict[str, int] = {}  # nonce -> its hello's time

    def verify(self, secret: bytes, hello: Hello, now_ns: int) -> None:
        """Accept `hello` (and remember its nonce) or raise AuthError saying why not."""
        if hello.mac is None or hello.time is None or hello.nonce is None:
            raise AuthError(f"unauthenticated hello from {hello.src!r} (no MAC)")
        expected = _mac(secret, hello.cluster, hello.src, hello.dst, hello.time, hello.nonce)
        if not hmac.compare_digest(expected, hello.mac):
            raise AuthError(f"hello from {hello.src!r} with a wrong MAC")
        if abs(now_ns - hello.time) > WINDOW_NS:
            raise AuthError(
                f"stale hello from {hello.src!r}: its time is {(now_ns - hello.time) / 1e9:+.0f} "
                f"s from ours (window {WINDOW_NS // 10**9} s)"
            )
        self._seen = {n: t for n, t in self._seen.items() if abs(now_ns - t) <= WINDOW_NS}
        if hello.nonce in self._seen:
            raise AuthError(f"replayed hello from {hello.src!r}")
        self._seen[hello.nonce] = hello.time
