"""What a cluster asks its nodes through their client API and events, whatever runs them.

`NodeQueries` is shared by the real cluster (cluster.py: node processes) and the simulated one
(splitbrain.sim.cluster): both provide `nodes`, `client_addresses`, `run`, `alive(node)` and
`paused(node)`, and get from here the leader lookup, crash-point arming and the leader watch.
"""

from __future__ import annotations

import asyncio

from splitbrain.cluster.roles import LeaderWatch
from splitbrain.store import RunDir

STATUS_TIMEOUT = 1.0


class NodeQueries:
    nodes: tuple[str, ...]
    client_addresses: dict[str, tuple[str, int]]
    run: RunDir

    def alive(self, name: str) -> bool:
        raise NotImplementedError

    def paused(self, name: str) -> bool:
        raise NotImplementedError

    async def leader(self, timeout: float = STATUS_TIMEOUT) -> str | None:
        """The node that says it leads the highest term, among nodes running and not paused."""
        from splitbrain.raft.client import node_status  # imported late: cluster/ runs without it

        asked = [n for n in self.nodes if self.alive(n) and not self.paused(n)]
        statuses = await asyncio.gather(
            *(node_status(self.client_addresses[n], timeout) for n in asked)
        )
        leaders = [
            (st.get("term", 0), n)
            for n, st in zip(asked, statuses, strict=True)
            if st and st.get("role") == "leader"
        ]
        return max(leaders)[1] if leaders else None

    async def arm_crash_point(self, name: str, point: str | None) -> bool:
        """Arm a crash point of the bundled Raft on the node (None disarms; raft/crashpoints.py):
        it SIGKILLs itself when it next reaches that point. False if the node is not running,
        is paused (it could not answer) or did not acknowledge."""
        from splitbrain.raft.client import arm_crash_point  # late: cluster/ runs without raft

        if not self.alive(name) or self.paused(name):
            return False
        return await arm_crash_point(self.client_addresses[name], point, STATUS_TIMEOUT)

    def watch_leaders(self) -> LeaderWatch:
        """Leaderships announced in the nodes' role events from now on (see roles.py)."""
        return LeaderWatch({n: self.run.node_events(n) for n in self.nodes})
