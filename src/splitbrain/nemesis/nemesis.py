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
- Each fault timeline of the schedule (schedule.timeline) runs on its own, so a node start that
  takes seconds delays only the faults of its own kind, and faults overlap as planned. Within
  a timeline the schedule keeps its spacing: when applying runs late, its later faults shift by
  as much, and every fault is held for its full duration. Verbs on one node never overlap
  (one lock per node: a kill waits for a start of the same node to finish).
- "leader" targets are resolved when applied; with no leader known, the plan's seeded fallback
  node is used and the record says so ("leader": null).
- Some faults react while in force, each in its own task, which their stop asks to finish
  (never cancels: what a task does is done and recorded, or not begun):
  churn isolates the leader (or cuts it off with a minority of followers: plan kind
  "minority"), then every new leader the plan's `lead` seconds after its role event is
  written (one churn-isolate event each, whose grudge replaces the one before; see
  cluster/roles.py), and its stop heals; crash arms a crash point on its targets
  (start-crash), then records each node that killed itself there (crash) and starts it again
  at once (start). Its stop disarms the nodes still armed (stop-crash). A running node that
  did not confirm its arm is treated as armed: the ask may still have armed it. Leader pauses
  (start-leader-pauses) pause each new leader the plan's `lead` after its role event, or the
  leader right after a client request was sent (a RequestPulse from the interpreter), for the
  plan's `pause_for`, then resume it (one pause and one resume event each); at most a
  minority of the nodes at once, and a request-timed pause rests as long before the next.
- A clock fault sets its targets' clock rate or makes them jump (start-clock, with its kind
  and the rate or jump); a strobe makes them jump forth and back every STROBE_PERIOD while in
  force (one clock-strobe event per jump, with the jump). Its stop sets them back to normal
  (stop-clock): the normal rate, their jumps taken back. A node killed meanwhile keeps its
  clock when it starts again.
- Disk faults: power-loss is kill's twin (a `power-loss` event with what each node forgot,
  then `start` at its stop). disk-full fills the targets' disks (start-disk-full) and at its
  stop empties them (stop-disk-full) and starts those that exited meanwhile, as after a crash;
  a node that exits within DISK_FULL_GRACE after (a write refused while its disk was full can
  end it once the disk is emptied; for a node paused then, after its resume) is started as the
  fault's, not recorded as an exit.
  corrupt is instantaneous: it kills its targets (`kill`), damages each one's files
  (`corrupt`: file, kind, offset; a flipped bit or a cut) and starts it; a node that refuses
  to start on its damaged files did what it should — `corrupt-refused` records its message
  (which names the file and offset) — and is repaired (the damage undone) and started.
- A node that exits by itself while running — no fault stopped it: an exception, an
  assertion, a self-check that gave up — is recorded (`exit`, with its status and the end of
  its output; checker/restarts.py judges it) and started again at once (`start`, fault
  "exit"). Excused and not recorded: a node armed with a crash point (the crash fault records
  it) and a node whose disk is full (it may exit on ENOSPC; the fault's end starts it). Nodes
  a verb is acting on (under their lock) are looked at again later, and a node whose start
  failed was judged by that start.
- `heal_all` trusts the cluster's state, not this bookkeeping: it heals whatever is cut or
  faulty, resumes every paused node and starts every node that is not running.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import itertools
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from splitbrain.cluster.disks import DiskError
from splitbrain.cluster.network import NetworkError
from splitbrain.cluster.process import NodeError
from splitbrain.nemesis import grudges
from splitbrain.nemesis.control import ClusterControl
from splitbrain.nemesis.pulse import RequestPulse
from splitbrain.nemesis.schedule import LEADER_PAUSES, STROBE_PERIOD, Plan, timeline

Record = Callable[[str, Any], Any]  # record(f, value); may return an awaitable
APPLY_ERRORS = (NodeError, NetworkError, DiskError, OSError)
WATCH_INTERVAL = 0.002  # seconds between looks for new leaders (churn) or crashed nodes (crash)
DISARM_FOR = 10.0  # seconds a crash fault's end keeps asking a paused or silent node to disarm
DISARM_RETRY = 0.05  # seconds between those asks
EXIT_WATCH = 0.05  # seconds between looks for nodes that exited by themselves
# Seconds after its disk was emptied in which a node's exit is still the disk-full fault's: a
# write refused with ENOSPC while the disk was full may end the node after the disk is emptied.
# A node that was paused when its disk was emptied gets them from its resume: it can only act
# on the refusal once it runs again.
DISK_FULL_GRACE = 0.5


@dataclass(slots=True)
class _Active:
    """A fault in force: its plan, a label for the progress display, what to undo."""

    plan: Plan
    label: str
    nodes: list[str] = field(default_factory=list)
    task: asyncio.Task[None] | None = None  # churn, crash, leader pauses react while in force
    stopping: asyncio.Event = field(default_factory=asyncio.Event)  # tells the task to finish


class Nemesis:
    def __init__(self, cluster: ClusterControl, plans: Iterable[Plan],
                 requests: RequestPulse | None = None) -> None:  # fmt: skip
        self.cluster = cluster
        self.plans = plans
        self.requests = requests or RequestPulse()  # none noted: request-timed pauses wait
        self._active: dict[int, _Active] = {}
        self._ids = itertools.count()
        self._locks: dict[str, asyncio.Lock] = {}  # per node: its verbs never overlap
        self._armed: set[str] = set()  # nodes a crash fault armed: their exits are its own
        self._judged: set[str] = set()  # stopped nodes whose end was recorded or excused
        self._emptied: dict[str, float] = {}  # node -> when a disk-full fault last emptied it
        self._emptied_paused: set[str] = set()  # ... while it was paused (the grace waits)

    def in_force(self) -> list[str]:
        return [a.label for a in self._active.values()]

    async def run(self, record: Record, stop: asyncio.Event) -> None:
        """Apply the plans on schedule until `stop` is set; faults still in force then are
        left to heal_all. Each plan runs in a task of its own, after its timeline's previous.
        An error applying a plan (a harness bug) ends the run and is raised."""
        began = asyncio.get_running_loop().time()
        late: dict[str, float] = {}  # timeline -> seconds it runs behind the schedule
        latest: dict[str, asyncio.Task[None]] = {}  # timeline -> the task of its latest plan
        tasks: set[asyncio.Task[None]] = set()
        failed: list[BaseException] = []
        halt = asyncio.Event()  # stop, or a plan failed
        relay = asyncio.create_task(_relay(stop, halt))

        def done(task: asyncio.Task[None]) -> None:
            tasks.discard(task)
            if not task.cancelled() and task.exception() is not None:
                failed.append(task.exception())  # type: ignore[arg-type]
                halt.set()

        watch = asyncio.create_task(self._watch_exits(record, halt))  # until halted
        tasks.add(watch)
        watch.add_done_callback(done)
        try:
            for plan in self.plans:
                if await _stopped(halt, began + plan.start):
                    break
                line = timeline(plan.fault)
                task = asyncio.create_task(
                    self._run_plan(plan, record, halt, began, late, line, latest.get(line)))
                latest[line] = task
                tasks.add(task)
                task.add_done_callback(done)
            else:
                await halt.wait()
            await asyncio.gather(*list(tasks), return_exceptions=True)  # prompt once halted
        finally:
            relay.cancel()
            for task in tasks:
                task.cancel()
        if failed:
            raise failed[0]

    async def _run_plan(self, plan: Plan, record: Record, stop: asyncio.Event, began: float,
                        late: dict[str, float], line: str, before: asyncio.Task[None] | None,
                        ) -> None:  # fmt: skip
        """Start the plan when due, hold it, stop it; lateness shifts the rest of its timeline."""
        loop = asyncio.get_running_loop()
        if before is not None:
            await before
        due = began + plan.start + late.get(line, 0.0)
        if await _stopped(stop, due):
            return
        active = await self._start(plan, record)
        started = loop.time()
        late[line] = late.get(line, 0.0) + max(0.0, started - due)
        if active is None:
            return
        fid = next(self._ids)
        self._active[fid] = active
        if await _stopped(stop, started + plan.stop - plan.start):
            return  # still in force: heal_all undoes it
        del self._active[fid]
        held = loop.time()
        await self._stop(active, record, stop)
        late[line] += loop.time() - held

    async def heal_all(self, record: Record) -> None:
        net = self.cluster.network
        crashes = [a for a in self._active.values() if a.plan.fault == "crash"]
        for active in self._active.values():
            if active.task is not None and active not in crashes:  # stop reacting first
                await self._stop(active, record)
        if crashes:  # resumed first: a paused node cannot answer its disarm
            await self._resume_paused(record)
        for active in crashes:
            await self._stop(active, record)
        self._active.clear()
        if net.cut:
            links = sorted(net.cut)
            await _attempt(net.heal(), record, "stop-partition", {"healed": links})
        if net.faults:
            links = sorted(net.faults)
            await _attempt(net.clear_link_faults(), record, "stop-net-fault", {"links": links})
        skewed = self.cluster.skewed()
        if skewed:
            await self._each(self.cluster.normal_clock, skewed, record, "stop-clock", {})
        full = self.cluster.full_disks()
        if full:
            await self._each(self._empty_disk, full, record, "stop-disk-full", {})
        await self._resume_paused(record)
        dead = [n for n in self.cluster.nodes if not self.cluster.alive(n)]
        if dead:
            await self._each(self._start_node, dead, record, "start", {})

    async def _resume_paused(self, record: Record) -> None:
        paused = [n for n in self.cluster.nodes if self.cluster.paused(n)]
        if paused:
            await self._each(self._resume, paused, record, "resume", {})

    # Applying one plan.

    def _stall(self, plan: Plan) -> dict[str, bool]:
        """What a cut's record says of how it cut: {"stall": true} when its links stall."""
        return {"stall": True} if plan.stall or self.cluster.network.always_stalls else {}

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
            value = {"kind": plan.kind, **extra, "grudge": grudges.to_json(grudge),
                     **self._stall(plan)}  # fmt: skip
            ok = await _attempt(
                self.cluster.network.apply_grudge(grudge, plan.stall), record,
                "start-partition", value,
            )  # fmt: skip
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
        if plan.kind in LEADER_PAUSES:
            active = _Active(plan, f"pause {plan.kind}")
            active.task = asyncio.create_task(self._pause_leaders(active, record))
            return active
        info = {"target": plan.kind, **extra}
        if plan.fault == "crash":
            assert plan.point is not None
            asked: list[str] = []  # running when asked: armed, or maybe (an ask timed out)

            async def arm(node: str) -> bool:
                # Before the ask, under the node's lock (after any start that clears it): a
                # node may reach the point at once. One that does not confirm is kept too, until
                # its next start: the ask may have armed it all the same.
                if self.cluster.alive(node):
                    self._armed.add(node)
                    asked.append(node)
                return await self.cluster.arm_crash_point(node, plan.point)

            armed = await self._each(arm, nodes, record, "start-crash",
                                     {**info, "point": plan.point})  # fmt: skip
            active = _Active(plan, f"crash {plan.point} {','.join(armed)}", asked)
            active.task = asyncio.create_task(self._restart_crashed(active, record))
            return active
        if plan.fault == "clock":
            return await self._start_clock(plan, nodes, info, record)
        if plan.fault == "pause":
            done = await self._each(self.cluster.pause, nodes, record, "pause", info)
            return _Active(plan, f"pause {','.join(done)}", done) if done else None
        if plan.fault == "disk-full":
            done = await self._each(lambda n: self.cluster.set_disk_full(n, True), nodes, record,
                                    "start-disk-full", info)  # fmt: skip
            return _Active(plan, f"disk-full {','.join(done)}", done) if done else None
        if plan.fault == "corrupt":
            await self._corrupt(plan, nodes, info, record)
            return None
        if plan.fault == "power-loss":
            done = await self._each(self.cluster.power_loss, nodes, record, "power-loss", info)
            return _Active(plan, f"power-loss {','.join(done)}", done) if done else None
        done = await self._each(self.cluster.kill, nodes, record, "kill", info)
        if plan.fault == "restart":
            if done:
                await self._each(self._start_node, done, record, "start", {"fault": "restart"})
            return None
        return _Active(plan, f"kill {','.join(done)}", done) if done else None

    async def _stop(self, active: _Active, record: Record, halt: asyncio.Event | None = None
                    ) -> None:  # fmt: skip
        plan = active.plan
        if active.task is not None:
            active.stopping.set()
            await active.task
        if plan.fault == "churn":
            healed = [list(link) for link in sorted(self.cluster.network.cut)]
            await _attempt(self.cluster.network.heal(), record, "stop-churn",
                           {"kind": plan.kind, "healed": healed})  # fmt: skip
        elif plan.fault == "crash":
            await self._disarm(active, record, halt)
        elif plan.kind in LEADER_PAUSES:
            await _call(record, "stop-leader-pauses", {"kind": plan.kind})
        elif plan.fault == "partition":
            links = sorted(self.cluster.network.cut)
            value = {"kind": plan.kind, "healed": [list(link) for link in links]}
            await _attempt(self.cluster.network.heal(), record, "stop-partition", value)
        elif plan.fault == "net":
            value = {"kind": plan.kind, "links": [list(link) for link in plan.links]}
            await _attempt(self.cluster.network.clear_link_faults(), record, "stop-net-fault",
                           value)  # fmt: skip
        elif plan.fault == "clock":
            await self._each(self.cluster.normal_clock, active.nodes, record, "stop-clock", {})
        elif plan.fault == "pause":
            await self._each(self._resume, active.nodes, record, "resume", {})
        elif plan.fault in ("kill", "power-loss"):
            await self._each(self._start_node, active.nodes, record, "start", {})
        elif plan.fault == "disk-full":
            await self._each(self._empty_disk, active.nodes, record, "stop-disk-full", {})
            exited = [n for n in active.nodes if not self.cluster.alive(n)]
            if exited:  # a node may exit on ENOSPC: a crash, started again after the fault
                await self._each(self._start_node, exited, record, "start",
                                 {"fault": "disk-full"})  # fmt: skip

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
        results = await asyncio.gather(*(self._locked(verb, n) for n in nodes),
                                       return_exceptions=True)
        done, idle, errors, details, refused = [], [], {}, {}, []
        for n, r in zip(nodes, results, strict=True):
            if isinstance(r, APPLY_ERRORS):
                errors[n] = str(r)
                if not self.cluster.alive(n):
                    self._judged.add(n)  # its failed start (or kill) says how it ended
                if isinstance(r, NodeError) and r.refused:
                    refused.append(n)  # checker/restarts.py judges these
            elif isinstance(r, BaseException):
                raise r
            elif r is False:
                idle.append(n)
            else:
                done.append(n)
                if isinstance(r, dict):
                    details[n] = r  # what the verb did to it (a power loss: what it forgot)
        value: dict[str, Any] = {"nodes": done, **info}
        if details:
            value["details"] = details
        if idle:
            value["unchanged"] = idle  # already in that state (e.g. killed by another fault)
        if errors:
            value["errors"] = errors
        if refused:
            value["refused"] = refused
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
                    shape = grudges.minority_with if active.plan.kind == "minority" else (
                        grudges.isolate)
                    grudge = shape(self.cluster.nodes, node)  # heals the one before
                    value = {"leader": node, "term": term or None,
                             "grudge": grudges.to_json(grudge), **self._stall(active.plan)}
                    await _attempt(self.cluster.network.apply_grudge(grudge, active.plan.stall),
                                   record, "churn-isolate", value)  # fmt: skip
            await asyncio.sleep(WATCH_INTERVAL)

    async def _pause_leaders(self, active: _Active, record: Record) -> None:
        """Pause new leaders, or the leader right after a request, while in force."""
        plan = active.plan
        await _call(record, "start-leader-pauses",
                    {"kind": plan.kind, "lead": plan.lead, "for": plan.pause_for})  # fmt: skip
        watch = self.cluster.watch_leaders()
        leader, newest = await self._leader(), 0
        requests = self.requests.count
        pausing: dict[str, asyncio.Task[None]] = {}  # node -> its pause, until it ends
        limit = max(1, (len(self.cluster.nodes) - 1) // 2)  # a majority stays unpaused
        while not active.stopping.is_set():
            elected = [(node, term) for node, term in watch.poll() if term > newest]
            if elected:
                leader, newest = max(elected, key=lambda lt: lt[1])
            target, info = None, {}
            if plan.kind == "new-leader" and elected:
                target, info = leader, {"term": newest}
            elif plan.kind == "after-request":
                ago = self.requests.since(requests)
                requests = self.requests.count
                if ago is not None and not pausing:
                    target, info = leader, {"after_ms": round(ago * 1000, 1)}
            if (target is not None and target not in pausing and len(pausing) < limit
                    and self.cluster.alive(target) and not self.cluster.paused(target)):
                pausing[target] = asyncio.create_task(
                    self._pause_leader(target, plan, info, record, active.stopping))
                pausing[target].add_done_callback(lambda _, n=target: pausing.pop(n, None))
            await asyncio.sleep(WATCH_INTERVAL)
        await asyncio.gather(*pausing.values())

    async def _pause_leader(self, node: str, plan: Plan, info: dict[str, Any], record: Record,
                            stopping: asyncio.Event) -> None:  # fmt: skip
        await asyncio.sleep(plan.lead if plan.kind == "new-leader" else 0.0)
        if stopping.is_set():
            return
        info = {"target": plan.kind, "leader": node, **info}
        done = await self._each(self.cluster.pause, [node], record, "pause", info)
        if done:
            await asyncio.sleep(plan.pause_for)  # held in full, even when asked to stop
            await self._each(self._resume, done, record, "resume", {})
        if plan.kind == "after-request" and not stopping.is_set():
            with contextlib.suppress(TimeoutError):  # rest before the next request-timed one
                await asyncio.wait_for(stopping.wait(), plan.pause_for)

    async def _restart_crashed(self, active: _Active, record: Record) -> None:
        """Record each armed node that killed itself at the crash point and start it again."""
        while active.nodes and not active.stopping.is_set():
            await self._start_crashed(active, record)
            await asyncio.sleep(WATCH_INTERVAL)

    async def _start_crashed(self, active: _Active, record: Record) -> None:
        crashed = [n for n in active.nodes if self.cluster.crashed(n)]
        if crashed:
            active.nodes = [n for n in active.nodes if n not in crashed]
            # Armed until started again (a start unarms): the exit watcher runs while the crash
            # is recorded, and must not take it for an exit of the node's own.
            await _call(record, "crash", {"nodes": crashed, "point": active.plan.point})
            await self._each(self._start_node, crashed, record, "start", {"fault": "crash"})
            self._armed.difference_update(crashed)  # one that could not start: the watcher's

    async def _disarm(self, active: _Active, record: Record, halt: asyncio.Event | None = None
                      ) -> None:  # fmt: skip
        """Start the targets that crashed and were not started yet; disarm the others. A node
        that is paused or does not answer is still armed: it is asked again, for up to
        DISARM_FOR seconds, and started if it reaches the point meanwhile. (Left armed, it
        would kill itself after the fault and stay down for the rest of the run.) Once the run
        is halting (`halt` set), a paused one is resumed first, as heal_all would resume it
        next: heal_all waits for this stop, and its pause may be the one heal_all ends."""
        await self._start_crashed(active, record)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + DISARM_FOR
        targets, pending, disarmed = list(active.nodes), list(active.nodes), []

        def disarm(node: str) -> Awaitable[bool]:
            return self.cluster.arm_crash_point(node, None)

        while pending:
            answers = await asyncio.gather(*(self._locked(disarm, n) for n in pending))
            disarmed += [n for n, ok in zip(pending, answers, strict=True) if ok]
            pending = [n for n, ok in zip(pending, answers, strict=True)
                       if not ok and self.cluster.alive(n)]  # fmt: skip
            if loop.time() >= deadline:
                break
            paused = [n for n in pending if self.cluster.paused(n)]
            if halt is not None and halt.is_set() and paused:
                await self._each(self._resume, paused, record, "resume", {})
            if pending:
                await asyncio.sleep(DISARM_RETRY)
        self._armed.difference_update(disarmed)  # those that never answered may still be
        value: dict[str, Any] = {"nodes": disarmed, "point": active.plan.point}
        down = [n for n in targets if n not in disarmed and n not in pending]
        if down:
            value["unchanged"] = down  # not running: its next life starts unarmed
        if pending:
            value["errors"] = {n: f"{n} did not answer a disarm within {DISARM_FOR:g} s: its "
                                  f"crash point may still be armed" for n in pending}
        await _call(record, "stop-crash", value)
        active.nodes = [n for n in targets if n not in disarmed]
        await self._start_crashed(active, record)  # those that reached it while asked
        active.nodes = []

    async def _watch_exits(self, record: Record, halt: asyncio.Event) -> None:
        """Record and start again each node that exits by itself while running, until halted."""
        loop = asyncio.get_running_loop()
        while not await _stopped(halt, loop.time() + EXIT_WATCH):
            for node in self.cluster.nodes:
                if self.cluster.alive(node):
                    self._judged.discard(node)
                    continue
                if node in self._judged or self._locks.setdefault(node, asyncio.Lock()).locked():
                    continue
                status = self.cluster.exit_status(node)
                if status is None:
                    continue  # never started, or stopped by a fault: its fault starts it
                self._judged.add(node)
                if node in self._armed or node in self.cluster.full_disks():
                    continue  # its fault records it and starts it
                emptied = self._emptied.get(node, -DISK_FULL_GRACE)
                fault = "disk-full" if loop.time() - emptied < DISK_FULL_GRACE else "exit"
                if fault == "exit":
                    await _call(record, "exit", {"nodes": [node], "status": status})
                await self._each(self._start_node, [node], record, "start", {"fault": fault})

    async def _start_node(self, node: str) -> bool:
        """Start `node` (a verb: its callers hold the node's lock). A new life starts unarmed,
        and the crash fault arms under the lock too, so no start can forget a later arm. A node
        that refuses to start on a full disk is the disk-full fault's (which starts it when it
        empties the disk), not a refusal to judge: its record may come after the disk-full's
        end, which waited for this start to let go of the node."""
        full = node in self.cluster.full_disks()
        try:
            started = await self.cluster.start(node)
        except NodeError as exc:
            if full and exc.refused:
                raise NodeError(f"{exc} (its disk was full)") from None
            raise
        if started:
            self._armed.discard(node)
            self._emptied_paused.discard(node)  # a new life: the old one's refusal is gone
        return started

    async def _locked(self, verb: Callable[[str], Any], node: str) -> Any:
        """`verb(node)` under the node's lock: verbs on one node never overlap."""
        async with self._locks.setdefault(node, asyncio.Lock()):
            return await verb(node)

    async def _start_clock(self, plan: Plan, nodes: list[str], info: dict[str, Any],
                           record: Record) -> _Active | None:  # fmt: skip
        if plan.jump:  # offset, strobe
            change, what = {"jump": plan.jump}, f"{plan.clock} {plan.jump:+g}s"
        else:  # slow, fast
            change, what = {"rate": plan.rate}, f"x{plan.rate:g}"
        done = await self._each(lambda n: self.cluster.set_clock(n, **change), nodes, record,
                                "start-clock", {**info, "kind": plan.clock, **change})  # fmt: skip
        if not done:
            return None
        active = _Active(plan, f"clock {what} {','.join(done)}", done)
        if plan.clock == "strobe":
            active.task = asyncio.create_task(self._strobe(active, record))
        return active

    async def _strobe(self, active: _Active, record: Record) -> None:
        """Jump the targets' clocks back and forth every STROBE_PERIOD until stopped: the
        start jumped them forth; the stop takes the last jump back."""
        jump = -active.plan.jump
        while not await _stopped(active.stopping, asyncio.get_running_loop().time()
                                 + STROBE_PERIOD):  # fmt: skip
            await self._each(lambda n, j=jump: self.cluster.set_clock(n, jump=j), active.nodes,
                             record, "clock-strobe", {"jump": jump})  # fmt: skip
            jump = -jump

    async def _empty_disk(self, node: str) -> bool:
        emptied = await self.cluster.set_disk_full(node, False)
        self._emptied[node] = asyncio.get_running_loop().time()
        if self.cluster.paused(node):
            self._emptied_paused.add(node)
        return emptied

    async def _resume(self, node: str) -> bool:
        """Resume `node` (a verb); a disk emptied while it was paused starts its grace now."""
        resumed = await self.cluster.resume(node)
        if node in self._emptied_paused:
            self._emptied_paused.discard(node)
            self._emptied[node] = asyncio.get_running_loop().time()
        return resumed

    async def _corrupt(self, plan: Plan, nodes: list[str], info: dict[str, Any],
                       record: Record) -> None:  # fmt: skip
        """Kill, damage, start; a refusal to start is the right answer: repair and start. Each
        node goes through the three under its lock at once: another fault's end (a disk-full
        starting what exited) must not start it between the kill and the damage. A node that
        was not running is left to the fault that stopped it."""
        async def kill_damage_start(node: str, seed: int) -> None:
            async with self._locks.setdefault(node, asyncio.Lock()):
                if not await self.cluster.kill(node):
                    await _call(record, "kill", {"nodes": [], **info, "fault": "corrupt",
                                                 "unchanged": [node]})  # fmt: skip
                    return
                await _call(record, "kill", {"nodes": [node], **info, "fault": "corrupt"})
                done = await self.cluster.corrupt(node, seed)
                await _call(record, "corrupt", {"node": node, **done})
                try:
                    await self._start_node(node)
                except NodeError as exc:
                    await _call(record, "corrupt-refused", {"node": node, "message": str(exc)})
                    if not await self.cluster.repair(node):
                        raise
                    await self._start_node(node)
                await _call(record, "start", {"nodes": [node], "fault": "corrupt"})

        results = await asyncio.gather(
            *(kill_damage_start(n, plan.damage_seed + i) for i, n in enumerate(nodes)),
            return_exceptions=True)
        errors = {n: str(r) for n, r in zip(nodes, results, strict=True)
                  if isinstance(r, APPLY_ERRORS)}  # fmt: skip
        self._judged.update(n for n in errors if not self.cluster.alive(n))
        for r in results:
            if isinstance(r, BaseException) and not isinstance(r, APPLY_ERRORS):
                raise r
        if errors:  # a node that could not start even repaired: heal_all tries again
            await _call(record, "start", {"nodes": [], "fault": "corrupt", "errors": errors})

    async def _leader(self) -> str | None:
        try:
            return await self.cluster.leader()
        except APPLY_ERRORS:
            return None


async def _relay(source: asyncio.Event, target: asyncio.Event) -> None:
    await source.wait()
    target.set()


async def _stopped(stop: asyncio.Event, at: float) -> bool:
    """Wait until loop time `at`; True if `stop` was set first."""
    delay = at - asyncio.get_running_loop().time()
    if stop.is_set() or delay <= 0:
        return stop.is_set()
    try:
        await asyncio.wait_for(stop.wait(), delay)
    except TimeoutError:
        return False
    return True


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
