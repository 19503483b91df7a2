"""The per-run cluster secret: a fresh random key in a file only its owner can read.

Nodes get the file's path (the bundled Raft: `--secret-file`), never the secret on their command
line, which every local user can read. The file is created with mode 0600 from the start (no
window in which it is readable by others) and replaced atomically.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path

FILE_NAME = "cluster.secret"


def write_secret(path: Path) -> Path:
    """Write a new 256-bit secret (hex) to `path`, mode 0600; returns `path`."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, (secrets.token_hex(32) + "\n").encode())
    finally:
        os.close(fd)
    os.replace(tmp, path)
    return path
