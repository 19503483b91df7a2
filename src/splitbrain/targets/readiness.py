"""Readiness probes: is a node that was just started up yet? One look, bounded in time.

The cluster polls `probe` until it says yes or the node exits (cluster/process.py wait_ready).
Probes run in the driver, which reaches every node's address in both network modes.
"""

from __future__ import annotations

import asyncio
import contextlib
import os

from splitbrain.cluster.targets import NodeLaunch
from splitbrain.targets.client import Lost, NotSent
from splitbrain.targets.http import HttpConnection
from splitbrain.targets.target import CommandProbe, HttpProbe, PortOpen, Readiness

PROBE_TIMEOUT = 1.0  # seconds one look may take


def _address(launch: NodeLaunch, port: str) -> tuple[str, int]:
    return (launch.host, launch.client_port if port == "client" else launch.peer_port)


async def probe(ready: Readiness, launch: NodeLaunch) -> bool:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + PROBE_TIMEOUT
    if isinstance(ready, PortOpen):
        try:
            async with asyncio.timeout_at(deadline):
                _, writer = await asyncio.open_connection(*_address(launch, ready.port))
        except (OSError, TimeoutError):
            return False
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
        return True
    if isinstance(ready, HttpProbe):
        conn = HttpConnection(_address(launch, ready.port))
        try:
            status, _ = await conn.request("GET", ready.path, deadline=deadline)
        except (NotSent, Lost):
            return False
        finally:
            await conn.close()
        return 200 <= status < 300
    assert isinstance(ready, CommandProbe)
    cmd = ready.command(launch)
    try:
        proc = await asyncio.create_subprocess_exec(
            *cmd.argv, cwd=cmd.cwd, env={**os.environ, **cmd.env},
            stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
    except OSError:
        return False
    try:
        async with asyncio.timeout_at(deadline + 4):  # a command gets a little longer
            return await proc.wait() == 0
    except TimeoutError:
        proc.kill()
        await proc.wait()
        return False
