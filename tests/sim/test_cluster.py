"""SimCluster: the verbs the nemesis uses, on the real node code in simulated processes."""

from __future__ import annotations

import asyncio
from pathlib import Path

from splitbrain.cluster import damage
from splitbrain.cluster.faults import LinkFaults
from splitbrain.raft.client import Client
from splitbrain.sim.cluster import SimCluster
from splitbrain.sim.world import Physics, World
from splitbrain.store import RunDir

NODES = ["n1", "n2", "n3"]


def simulate(tmp_path, scenario, **kwargs):
    world = World(5, Physics())
    run = RunDir(tmp_path)
    (tmp_path / "nodes").mkdir(exist_ok=True)

    async def main():
        async with SimCluster(world, run, NODES, seed=5, **kwargs) as cluster:
            return await scenario(cluster)

    return world.run(main()), run


async def leader(cluster) -> str:
    while (found := await cluster.leader()) is None:
        await asyncio.sleep(0.05)
    return found


def test_kill_pause_resume_start_and_crash_points(tmp_path):
    async def scenario(cluster):
        first = await leader(cluster)
        client = Client(cluster.client_addresses, first, "c1", timeout=1.0)
        assert (await client.invoke("put", "k", "v1")).type == "ok"
        seen = {}
        assert await cluster.kill(first) and not await cluster.kill(first)
        seen["killed"] = (cluster.alive(first), cluster.crashed(first))
        second = await leader(cluster)
        assert await cluster.pause(second) and cluster.paused(second)
        seen["paused"] = await cluster.arm_crash_point(second, "after-apply")  # cannot answer
        assert await cluster.resume(second) and not cluster.paused(second)
        assert await cluster.start(first) and not await cluster.start(first)
        victim = await leader(cluster)
        assert await cluster.arm_crash_point(victim, "after-apply")
        await client.invoke("put", "k", "v2")  # the leader applies it, then dies at once
        for _ in range(100):
            if cluster.crashed(victim):
                break
            await asyncio.sleep(0.01)
        seen["crashed"] = (cluster.alive(victim), cluster.crashed(victim))
        await cluster.start(victim)
        seen["restarted"] = cluster.crashed(victim)
        await client.close()
        return first, victim, seen

    (_, victim, seen), run = simulate(tmp_path, scenario)
    assert seen == {"killed": (False, False), "paused": False, "crashed": (False, True),
                    "restarted": False}
    events = run.node_events(victim).read_text()
    assert '"event":"crash","point":"after-apply"' in events
    assert events.count('"event":"start"') == 2
    assert "crash point after-apply reached" in run.node_log(victim).read_text()


def test_a_power_loss_keeps_what_was_fsynced(tmp_path):
    async def scenario(cluster):
        first = await leader(cluster)
        client = Client(cluster.client_addresses, first, "c1", timeout=1.0)
        assert (await client.invoke("put", "k", "v1")).type == "ok"
        follower = next(n for n in NODES if n != first)
        wal = cluster.disks[follower].file(Path("nodes", follower, "data", "raft.wal"))
        wal.pwrite(b"unsynced", wal.size)  # as if written by the node, never fsynced
        assert await cluster.power_loss(follower) and not cluster.alive(follower)
        assert b"unsynced" not in wal.read() and b"v1" in wal.read()
        assert await cluster.start(follower)
        assert (await client.invoke("get", "k", None)).value == "v1"
        await client.close()

    simulate(tmp_path, scenario)


def test_a_full_disk_ends_the_node_that_must_write_and_the_cluster_goes_on(tmp_path):
    async def scenario(cluster):
        first = await leader(cluster)
        client = Client(cluster.client_addresses, first, "c1", timeout=1.0, retries=2)
        assert (await client.invoke("put", "k", "v1")).type == "ok"
        assert await cluster.set_disk_full(first, True)
        assert not await cluster.set_disk_full(first, True) and cluster.full_disks() == [first]
        outcome = await client.invoke("put", "k", "v2")  # the leader's WAL write fails
        for _ in range(500):  # virtual seconds: the node's next write fails at once
            if not cluster.alive(first):
                break
            await asyncio.sleep(0.01)
        status = cluster.exit_status(first)
        assert await cluster.set_disk_full(first, False) and cluster.full_disks() == []
        assert await cluster.start(first)
        read = await client.invoke("get", "k", None)
        await client.close()
        return outcome.type, status, read.value

    (outcome, status, value), _ = simulate(tmp_path, scenario)
    assert status is not None and status.startswith("exited 3") and "No space left" in status
    assert outcome in ("ok", "info")  # sent: it may have been appended before the node died
    assert value == "v2" if outcome == "ok" else value in ("v1", "v2")


def test_corrupt_damages_what_a_real_disk_would_and_repair_undoes_it(tmp_path):
    """Each seed draws the same damage as damage.py on the node's files written out, a bit
    flipped or the file cut short; the damage is in what the node reads at its next start;
    repair restores every byte."""
    seeds = range(12)

    async def scenario(cluster):
        first = await leader(cluster)
        client = Client(cluster.client_addresses, first, "c1", timeout=1.0)
        assert (await client.invoke("put", "k", "v1")).type == "ok"
        await client.close()
        victim = next(n for n in NODES if n != first)
        try:
            await cluster.corrupt(victim, 7)
        except ValueError as exc:
            refused = str(exc)
        await cluster.kill(victim)
        disk = cluster.disks[victim]
        before = {path: f.read() for path, f in disk.files.items()}
        seen = []
        for seed in seeds:
            done = await cluster.corrupt(victim, seed)
            damaged = {path: f.read() for path, f in disk.files.items()}
            assert await cluster.repair(victim) and not await cluster.repair(victim)
            assert {path: f.read() for path, f in disk.files.items()} == before
            seen.append((done, damaged))
        return refused, victim, before, seen

    (refused, victim, before, seen), _ = simulate(tmp_path, scenario)
    assert refused == f"{victim} is running: only a stopped node's files are damaged"
    data = Path("nodes", victim, "data")
    assert {done["kind"] for done, _ in seen} == {"flip", "truncate"}
    for seed, (done, damaged) in zip(seeds, seen, strict=True):
        real = tmp_path / f"copy{seed}"
        for path, content in before.items():
            (real / path.relative_to(data)).parent.mkdir(parents=True, exist_ok=True)
            (real / path.relative_to(data)).write_bytes(content)
        assert done == damage.damage(real, seed).to_json()
        hit = data / done["file"]
        assert damaged[hit] == (real / done["file"]).read_bytes()
        assert {p for p in before if before[p] != damaged[p]} == {hit}
        if done["kind"] == "flip":
            assert damaged[hit][done["offset"]] == done["after"] == done["before"] ^ (
                1 << done["bit"])
        else:
            assert damaged[hit] == before[hit][: done["offset"]]
            assert done["size"] == len(before[hit]) and done["cut"] > 0


def test_a_partition_and_a_net_fault_act_on_the_links(tmp_path):
    async def scenario(cluster):
        old = await leader(cluster)
        others = [n for n in NODES if n != old]
        cut = await cluster.network.apply_grudge({old: others, **{n: [old] for n in others}})
        await asyncio.sleep(1.0)  # the others elect a leader of their own
        new = await cluster.leader()
        await cluster.network.heal()
        await cluster.network.set_link_faults(cut, LinkFaults(drop=1.0))
        await asyncio.sleep(0.5)
        stats = await cluster.network.stats()
        await cluster.network.clear_link_faults()
        return old, new, len(cut), sum(stats[link]["dropped"] for link in cut)

    old, new, cut, dropped = simulate(tmp_path, scenario)[0]
    assert new != old and new is not None
    assert cut == 4 and dropped > 0


def test_files_of_a_run_are_written_like_a_real_runs(tmp_path):
    async def scenario(cluster):
        await leader(cluster)

    _, run = simulate(tmp_path, scenario)
    for node in NODES:
        assert run.node_data(node).joinpath("raft.wal").stat().st_size % 4096 == 0
        log = run.node_log(node).read_text().splitlines()
        assert log[0].startswith("2000-01-01T00:00:00.") and f" {node} INFO starting node" in log[0]
        assert "stopping:" in log[-1]  # a graceful stop at the end, as SIGTERM
