"""The nemesis: the one component that applies fault plans to a cluster and records them.

    nemesis = Nemesis(cluster, plan_schedule(...))
    await nemesis.run(record, stop)      # plans on schedule until `stop` is set
    await nemesis.heal_all(record)       # network healed, paused resumed, killed started

Rules it keeps:
- Every event is recorded with what was really done, after doing it: the grudge and the links
  it cut, the nodes actually killed, paused, resumed or started. Asked-for targets that were in
  no state to be acted on are listed apart (e.g. "not-running"), and a failure is recorded with
  its error instead of stopping the run.
- A plan's stop undoes only what its start did (the nodes it killed, the links it faulted).
- The schedule keeps its spacing: when applying runs late, later events shift by as much.
- "leader" targets are resolved when applied; with no leader known, the plan's seeded fallback
  node is used and the record says so ("leader": null).
- Two faults react while in force, each in its own task, which their stop asks to finish
  (never cancels: what a task does is done and recorded, or not begun):
  churn isolates the leader, then every new leader the plan's `lead` seconds after its role
  event is written (one churn-isolate event each, whose grudge replaces the one before; see
  cluster/roles.py), and its stop heals; crash arms a crash point on its targets
  (start-crash), then records each node that killed itself there (crash) and starts it again
  at once (start). Its stop disarms the nodes still armed (stop-crash).
- `heal_all` trusts the cluster's state, not this bookkeeping: it heals whatever is cut or
  faulty, resumes every paused node and starts every node that is not running.
"""

from __future__ import annotations

import asyncio
import heapq
import inspect
import itertools
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from splitbrain.cluster.network import NetworkError
from splitbrain.cluster.process import NodeError
from splitbrain.nemesis import grudges
from splitbrain.nemesis.control import ClusterControl
from splitbrain.nemesis.schedule import Plan

Record = Callable[[str, Any], Any]  # record(f, value); may return an awaitable
APPLY_ERRORS = (NodeError, NetworkError, OSError)
WATCH_INTERVAL = 0.002  # seconds between looks for new leaders (churn) or crashed nodes (crash)


@dataclass(slots=True)
class _Active:
    """A fault in force: its plan, a label for the progress display, what to undo."""

    plan: Plan
    label: str
    nodes: list[str] = field(default_factory=list)
    task: asyncio.Task[None] | None = None  # churn and crash react while in force
    stopping: asyncio.Event = field(default_factory=asyncio.Event)  # tells the task to finish


class Nemesis:
    def __init__(self, cluster: ClusterControl, plans: Iterable[Plan]) -> None:
        self.cluster = cluster
        self.plans = plans
        self._active: dict[int, _Active] = {}
        self._ids = itertools.count()

    def in_force(self) -> list[str]:
        return [a.label for a in self._active.values()]

    async def run(self, record: Record, stop: asyncio.Event) -> None:
        loop = asyncio.get_running_loop()
        began = loop.time()
        plans = iter(self.plans)
        upcoming = next(plans, None)
        stops: list[tuple[float, int]] = []  # (stop time, active id): a heap
        while not stop.is_set():
            next_stop = stops[0][0] if stops else float("inf")
            next_start = upcoming.start if upcoming else float("inf")
            due = min(next_stop, next_start)
            if due == float("inf"):
                await stop.wait()
                return
            try:
                await asyncio.wait_for(stop.wait(), max(0.0, began + due - loop.time()))
                return
            except TimeoutError:
                pass
            if next_stop <= next_start:  # stops first: a fault ends before the next begins
                _, fid = heapq.heappop(stops)
                await self._stop(self._active.pop(fid), record)
            else:
                assert upcoming is not None
                fid = next(self._ids)
                active = await self._start(upcoming, record)
                if active is not None:
                    self._active[fid] = active
                    heapq.heappush(stops, (upcoming.stop, fid))
                upcoming = next(plans, None)
            # Applying takes time (a node start can take seconds): shift the rest of the
            # schedule by any lateness, so every fault is held for its full duration.
            began = max(began, loop.time() - due)

    async def heal_all(self, record: Record) -> None:
        net = self.cluster.network
        for active in self._active.values():
            if active.task is not None:  # churn and crash: stop reacting first
                await self._stop(active, record)
        self._active.clear()
        if net.cut:
            links = sorted(net.cut)
            await _attempt(net.heal(), record, "stop-partition", {"healed": links})
        if net.faults:
            links = sorted(net.faults)
            await _attempt(net.clear_link_faults(), record, "stop-net-fault", {"links": links})
        paused = [n for n in self.cluster.nodes if self.cluster.paused(n)]
        if paused:
            await self._each(self.cluster.resume, paused, record, "resume", {})
        dead = [n for n in self.cluster.nodes if not self.cluster.alive(n)]
        if dead:
            await self._each(self.cluster.start, dead, record, "start", {})

    # Applying one plan.

    async def _start(self, plan: Plan, record: Record) -> _Active | None:
        extra: dict[str, Any] = {}
        nodes = list(plan.nodes)
        grudge = plan.grudge
        if plan.needs_leader:
            leader = await self._leader()
            extra["leader"] = leader
            target = leader or plan.nodes[0]
            nodes = [target]
            if plan.fault == "partition":
                grudge = grudges.isolate(self.cluster.nodes, target)
        if plan.fault == "partition":
            assert grudge is not None
            value = {"kind": plan.kind, **extra, "grudge": grudges.to_json(grudge)}
            ok = await _attempt(
                self.cluster.network.apply_grudge(grudge), record, "start-partition", value
            )
            return _Active(plan, f"partition {plan.kind}") if ok else None
        if plan.fault == "net":
            assert plan.link_faults is not None
            links = [list(link) for link in plan.links]
            value = {"kind": plan.kind, **plan.link_faults.to_json(), "links": links}
            ok = await _attempt(
                self.cluster.network.set_link_faults(plan.links, plan.link_faults),
                record, "start-net-fault", value,
            )  # fmt: skip
            label = f"net {' '.join(f'{k}={v}' for k, v in plan.link_faults.to_json().items())}"
            return _Active(plan, label) if ok else None
        if plan.fault == "churn":
            active = _Active(plan, "churn")
            active.task = asyncio.create_task(self._churn(active, record))
            return active
        info = {"target": plan.kind, **extra}
        if plan.fault == "crash":
            assert plan.point is not None
            armed = await self._each(
                lambda n: self.cluster.arm_crash_point(n, plan.point), nodes, record,
                "start-crash", {**info, "point": plan.point},
            )  # fmt: skip
            active = _Active(plan, f"crash {plan.point} {','.join(armed)}", armed)
            active.task = asyncio.create_task(self._restart_crashed(active, record))
            return active
        if plan.fault == "pause":
            done = await self._each(self.cluster.pause, nodes, record, "pause", info)
            return _Active(plan, f"pause {','.join(done)}", done) if done else None
        done = await self._each(self.cluster.kill, nodes, record, "kill", info)
        if plan.fault == "restart":
            if done:
                await self._each(self.cluster.start, done, record, "start", {"fault": "restart"})
            return None
        return _Active(plan, f"kill {','.join(done)}", done) if done else None

    async def _stop(self, active: _Active, record: Record) -> None:
        plan = active.plan
        if active.task is not None:
            active.stopping.set()
            await active.task
        if plan.fault == "churn":
            healed = [list(link) for link in sorted(self.cluster.network.cut)]
            await _attempt(self.cluster.network.heal(), record, "stop-churn",
                           {"kind": plan.kind, "healed": healed})  # fmt: skip
        elif plan.fault == "crash":
            await self._disarm(active, record)
        elif plan.fault == "partition":
            links = sorted(self.cluster.network.cut)
            value = {"kind": plan.kind, "healed": [list(link) for link in links]}
            await _attempt(self.cluster.network.heal(), record, "stop-partition", value)
        elif plan.fault == "net":
            value = {"kind": plan.kind, "links": [list(link) for link in plan.links]}
            await _attempt(self.cluster.network.clear_link_faults(), record, "stop-net-fault",
                           value)  # fmt: skip
        elif plan.fault == "pause":
            await self._each(self.cluster.resume, active.nodes, record, "resume", {})
        elif plan.fault == "kill":
            await self._each(self.cluster.start, active.nodes, record, "start", {})

    async def _each(
        self,
        verb: Callable[[str], Any],
        nodes: list[str],
        record: Record,
        f: str,
        info: dict[str, Any],
    ) -> list[str]:
        """Apply a node verb to every node at once; record which it changed, which it could
        not act on, and errors. Returns the nodes changed."""
        results = await asyncio.gather(*(verb(n) for n in nodes), return_exceptions=True)
        done, idle, errors = [], [], {}
        for n, r in zip(nodes, results, strict=True):
            if isinstance(r, APPLY_ERRORS):
                errors[n] = str(r)
            elif isinstance(r, BaseException):
                raise r
            elif r is False:
                idle.append(n)
            else:
                done.append(n)
        value: dict[str, Any] = {"nodes": done, **info}
        if idle:
            value["unchanged"] = idle  # already in that state (e.g. killed by another fault)
        if errors:
            value["errors"] = errors
        await _call(record, f, value)
        return done

    # The faults that react while in force.

    async def _churn(self, active: _Active, record: Record) -> None:
        """Isolate the current leader, then each new leader `lead` seconds after its role event
        appears."""
        lead = active.plan.lead
        watch = self.cluster.watch_leaders()
        await _call(record, "start-churn", {"kind": active.plan.kind, "lead": lead})
        newest = 0  # the highest term isolated so far: each leadership once, newest first
        leader = await self._leader()
        pending = [(leader, 0)] if leader is not None else []
        while not active.stopping.is_set():
            pending += watch.poll()
            if pending:
                node, term = max(pending, key=lambda lt: lt[1])
                pending = []
                if term >= newest:
                    newest = term
                    await asyncio.sleep(lead)  # let it lead a little: see schedule.LEAD_TIMES
                    if active.stopping.is_set():
                        break
                    grudge = grudges.isolate(self.cluster.nodes, node)  # heals the one before
                    value = {"leader": node, "term": term or None,
                             "grudge": grudges.to_json(grudge)}  # fmt: skip
                    await _attempt(self.cluster.network.apply_grudge(grudge), record,
                                   "churn-isolate", value)  # fmt: skip
            await asyncio.sleep(WATCH_INTERVAL)

    async def _restart_crashed(self, active: _Active, record: Record) -> None:
        """Record each armed node that killed itself at the crash point and start it again."""
        while active.nodes and not active.stopping.is_set():
            await self._start_crashed(active, record)
            await asyncio.sleep(WATCH_INTERVAL)

    async def _start_crashed(self, active: _Active, record: Record) -> None:
        crashed = [n for n in active.nodes if self.cluster.crashed(n)]
        if crashed:
            active.nodes = [n for n in active.nodes if n not in crashed]
            await _call(record, "crash", {"nodes": crashed, "point": active.plan.point})
            await self._each(self.cluster.start, crashed, record, "start", {"fault": "crash"})

    async def _disarm(self, active: _Active, record: Record) -> None:
        """Start the targets that crashed and were not started yet; disarm the others."""
        await self._start_crashed(active, record)
        await self._each(lambda n: self.cluster.arm_crash_point(n, None), active.nodes, record,
                         "stop-crash", {"point": active.plan.point})  # fmt: skip
        active.nodes = []

    async def _leader(self) -> str | None:
        try:
            return await self.cluster.leader()
        except APPLY_ERRORS:
            return None


async def _attempt(action: Any, record: Record, f: str, value: dict[str, Any]) -> bool:
    """Await a network action, then record it — with its error if it failed."""
    try:
        await action
    except APPLY_ERRORS as exc:
        await _call(record, f, {**value, "error": str(exc)})
        return False
    await _call(record, f, value)
    return True


async def _call(record: Record, f: str, value: Any) -> None:
    result = record(f, value)
    if inspect.isawaitable(result):
        await result
