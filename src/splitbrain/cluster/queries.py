"""What a cluster asks its nodes through their client API and events, whatever runs them.

`NodeQueries` is shared by the real cluster (cluster.py: node processes) and the simulated one
(splitbrain.sim.cluster): both provide `nodes`, `client_addresses`, `run`, `target` (what the
system under test can answer: targets/target.py), `alive(node)` and `paused(node)`, and get
from here the leader lookup, crash-point arming and the leader watch.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from splitbrain.cluster.roles import LeaderWatch
from splitbrain.store import RunDir

if TYPE_CHECKING:
    from splitbrain.targets.target import Target

STATUS_TIMEOUT = 1.0


class NodeQueries:
    nodes: tuple[str, ...]
    client_addresses: dict[str, tuple[str, int]]
    run: RunDir
    target: Target

    def alive(self, name: str) -> bool:
        raise NotImplementedError

    def paused(self, name: str) -> bool:
        raise NotImplementedError

    async def leader(self, timeout: float = STATUS_TIMEOUT) -> str | None:
        """The node that says it leads the highest term, among nodes running and not paused;
        None also when the target has no leader lookup."""
        role = self.target.leader
        if role is None:
            return None
        asked = [n for n in self.nodes if self.alive(n) and not self.paused(n)]
        roles = await asyncio.gather(*(role(self.client_addresses[n], timeout) for n in asked))
        leaders = [(r.term, n) for n, r in zip(asked, roles, strict=True) if r and r.leader]
        return max(leaders)[1] if leaders else None

    async def arm_crash_point(self, name: str, point: str | None) -> bool:
        """Arm one of the target's crash points on the node (None disarms): it SIGKILLs itself
        when it next reaches that point. False if the node is not running, is paused (it could
        not answer) or did not acknowledge; ValueError if the target has no crash points."""
        points = self.target.crash_points
        if points is None:
            raise ValueError(f"target {self.target.name} has no crash points")
        if not self.alive(name) or self.paused(name):
            return False
        return await points.arm(self.client_addresses[name], point, STATUS_TIMEOUT)

    def watch_leaders(self) -> LeaderWatch:
        """Leaderships announced in the nodes' role events from now on (see roles.py)."""
        return LeaderWatch({n: self.run.node_events(n) for n in self.nodes})
