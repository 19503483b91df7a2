"""Free TCP ports on 127.0.0.1 for node peer and client listeners.

A node keeps its ports across restarts, so while it is down nothing else may take them. The
kernel hands out ports for outgoing connections (and for bind to port 0) from its ephemeral
range; the proxies and clients of a run open thousands of such connections. So node ports are
chosen *below* that range, where the kernel never picks on its own: a killed node's port stays
free for its restart. A port is checked free by binding it; all sockets of one call stay open
until every port is chosen, so one call never returns a port twice. Where the range cannot be
read (not Linux), ports come from bind to port 0.
"""

from __future__ import annotations

import random
import socket
from pathlib import Path

HOST = "127.0.0.1"
LOWEST = 10_000  # below this are well-known and registered services' ports
EPHEMERAL_RANGE = Path("/proc/sys/net/ipv4/ip_local_port_range")


def ephemeral_start() -> int | None:
    """First port of the kernel's ephemeral range, or None if unknown."""
    try:
        return int(EPHEMERAL_RANGE.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def free_ports(count: int, rng: random.Random | None = None) -> list[int]:
    """`count` distinct ports on 127.0.0.1 that nothing uses right now."""
    rng = rng or random.SystemRandom()
    start = ephemeral_start()
    sockets: list[socket.socket] = []
    try:
        if start is not None and start - LOWEST >= 100 * count:
            tried = 0
            while len(sockets) < count and tried < 100 * count:
                tried += 1
                s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                try:
                    s.bind((HOST, rng.randrange(LOWEST, start)))
                except OSError:
                    s.close()  # taken: try another
                    continue
                sockets.append(s)
        while len(sockets) < count:
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sockets.append(s)
            s.bind((HOST, 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()
