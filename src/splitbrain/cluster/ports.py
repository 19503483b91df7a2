"""Free TCP ports on 127.0.0.1 for node peer and client listeners.

The kernel picks each port (bind to port 0); all sockets of one call stay open until every port
is chosen, so one call never returns the same port twice. A port is free when returned, not
reserved: the node that binds it must do so soon. Proxies avoid even that race by binding port 0
themselves and reporting what they got.
"""

from __future__ import annotations

import socket

HOST = "127.0.0.1"


def free_ports(count: int) -> list[int]:
    """`count` distinct ports on 127.0.0.1 that nothing listens on right now."""
    sockets: list[socket.socket] = []
    try:
        for _ in range(count):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sockets.append(s)
            s.bind((HOST, 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()
