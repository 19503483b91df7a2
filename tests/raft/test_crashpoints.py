"""Crash points on real node processes: an armed node SIGKILLs itself at exactly that point.

Each test bounds its time (asyncio.timeout) and the LocalCluster kills and reaps every node
even when the test fails.
"""

import asyncio
import json
import signal

import pytest

from splitbrain.raft import kv
from splitbrain.raft.client import Client, arm_crash_point, node_status
from splitbrain.raft.local import free_ports
from splitbrain.raft.wal import WAL
from tests.raft.nodes import raw_request, run

pytestmark = pytest.mark.slow


def events(cluster, node):
    text = (cluster.node_dir(node) / "events.jsonl").read_text()
    return [json.loads(line) for line in text.splitlines()]


async def wait_dead(cluster, node, timeout=10.0):
    """The exit code of `node` once it has exited by itself."""
    async with asyncio.timeout(timeout):
        while cluster.alive(node):
            await asyncio.sleep(0.01)
    return cluster.procs[node].returncode


async def wait_applied(cluster, node, index):
    while (await node_status(cluster.client_addresses[node], 0.5) or {}).get("applied", 0) < index:
        await asyncio.sleep(0.02)


async def arm(cluster, node, point):
    return await arm_crash_point(cluster.client_addresses[node], point, timeout=5.0)


def recovered(cluster, node):
    """What `node`'s WAL holds (read while the node is down)."""
    wal, state = WAL.open(cluster.node_dir(node) / "data")
    wal.close()
    return state


async def leader_of_all(cluster):
    """The leader once every node serves (wait_leader alone is satisfied by a lone leader)."""
    for node in cluster.names:
        while await node_status(cluster.client_addresses[node], 0.5) is None:
            await asyncio.sleep(0.02)
    return await cluster.wait_leader()


async def settled_client(cluster, client_id):
    """A client of the leader once the leader has applied its own no-op (a write is ok)."""
    leader = await leader_of_all(cluster)
    client = Client(cluster.client_addresses, leader, client_id, timeout=5.0)
    assert (await client.invoke("write", "warm", 0)).type == "ok"
    return leader, client


def test_after_apply_dies_before_replying_and_the_write_survives_the_restart(cluster):
    async def scenario():
        leader, client = await settled_client(cluster, "c")
        assert await arm(cluster, leader, "after-apply")
        out = await client.invoke("write", "k", 7)  # applied, then the leader dies unanswered
        code = await wait_dead(cluster, leader)
        before = events(cluster, leader)
        cluster.start(leader)
        await wait_applied(cluster, leader, before[-2]["index"])  # the write, once more
        read = await client.invoke("read", "k", None)
        await client.close()
        return leader, out, code, before, read

    leader, out, code, before, read = run(scenario())
    assert (out.type, out.error) == ("info", "connection-lost")
    assert code == -signal.SIGKILL
    *_, apply, crash = before  # the write was applied (its event flushed), then the crash
    assert (apply["event"], apply["id"]) == ("apply", "c:2")
    assert crash.keys() == {"time", "event", "point"} and isinstance(crash["time"], int)
    assert (crash["event"], crash["point"]) == ("crash", "after-apply")
    assert read.type == "ok" and read.value == 7  # it was committed: the restart keeps it
    after = events(cluster, leader)[len(before):]
    assert after[0]["event"] == "start"
    assert "c:2" in [e.get("id") for e in after if e["event"] == "apply"]
    assert "crash point after-apply reached" in (cluster.node_dir(leader) / "node.log").read_text()


def test_after_vote_dies_with_the_granted_vote_on_disk(cluster):
    async def scenario():
        old = await leader_of_all(cluster)
        term = (await node_status(cluster.client_addresses[old], 1.0))["term"]
        followers = [n for n in cluster.names if n != old]
        for node in followers:
            assert await arm(cluster, node, "after-vote")
        cluster.kill(old)
        async with asyncio.timeout(15):  # one follower campaigns; the other grants and dies
            while all(cluster.alive(n) for n in followers):
                await asyncio.sleep(0.01)
        for node in followers:  # nobody is left to ask the survivor for its vote
            if cluster.alive(node):
                assert await arm(cluster, node, None)
        return term, [n for n in followers if not cluster.alive(n)]

    term, voters = run(scenario())
    votes = {}
    for voter in voters:
        assert cluster.procs[voter].returncode == -signal.SIGKILL
        crash = events(cluster, voter)[-1]
        assert (crash["event"], crash["point"]) == ("crash", "after-vote")
        votes[voter] = hard_state = recovered(cluster, voter).hard_state
        assert hard_state.vote in cluster.names and hard_state.vote != voter
        assert hard_state.term > term

    for node in cluster.names:
        if not cluster.alive(node):
            cluster.start(node)  # a voter recovers with its vote; the cluster serves again

    async def serves():
        client = Client(cluster.client_addresses, await leader_of_all(cluster), "after", 5.0)
        out = await client.invoke("write", "k", 1)
        await client.close()
        return out

    assert run(serves()).type == "ok"
    for voter, hs in votes.items():
        log = (cluster.node_dir(voter) / "node.log").read_text()
        assert f"recovered term {hs.term} vote {hs.vote}" in log


def test_after_append_dies_with_the_new_entry_on_disk(cluster):
    async def scenario():
        leader, client = await settled_client(cluster, "c")
        follower = next(n for n in cluster.names if n != leader)
        await cluster.wait_caught_up(follower)  # it holds every entry so far
        assert await arm(cluster, follower, "after-append")
        out = await client.invoke("append", "k", "x")  # the other follower acknowledges it
        code = await wait_dead(cluster, follower)
        await client.close()
        return follower, out, code

    follower, out, code = run(scenario())
    assert out.type == "ok" and code == -signal.SIGKILL
    crash = events(cluster, follower)[-1]
    assert (crash["event"], crash["point"]) == ("crash", "after-append")
    entries = recovered(cluster, follower).entries
    assert [kv.decode_command(e.data).request_id for e in entries if e.data][-1] == "c:2"


def test_after_term_dies_with_the_new_term_on_disk_and_nothing_sent(cluster):
    async def scenario():
        old = await leader_of_all(cluster)
        term = (await node_status(cluster.client_addresses[old], 1.0))["term"]
        followers = [n for n in cluster.names if n != old]
        for node in followers:
            assert await arm(cluster, node, "after-term")
        cluster.kill(old)  # the first follower to campaign dies before asking for votes
        async with asyncio.timeout(15):
            while all(cluster.alive(n) for n in followers):
                await asyncio.sleep(0.01)
        dead = [n for n in followers if not cluster.alive(n)]
        for node in followers:
            if cluster.alive(node):
                assert await arm(cluster, node, None)
        return term, dead

    term, dead = run(scenario())
    for node in dead:
        *_, persisted, crash = events(cluster, node)
        assert (crash["event"], crash["point"]) == ("crash", "after-term")
        hs = recovered(cluster, node).hard_state
        assert hs.term > term
        assert persisted == {"time": persisted["time"], "event": "persisted", "term": hs.term,
                             "vote": hs.vote, "commit": hs.commit}


def test_before_save_dies_after_sending_appends_with_nothing_written(cluster):
    async def scenario():
        leader, client = await settled_client(cluster, "c")
        assert await arm(cluster, leader, "before-save")
        out = await client.invoke("write", "k", 3)  # its entry leaves, unwritten here
        code = await wait_dead(cluster, leader)
        await client.close()
        return leader, out, code

    leader, out, code = run(scenario())
    assert (out.type, code) == ("info", -signal.SIGKILL)
    assert (events(cluster, leader)[-1]["point"]) == "before-save"
    ids = [kv.decode_command(e.data).request_id for e in recovered(cluster, leader).entries
           if e.data]
    assert ids[-1] == "c:1" and "c:2" not in ids  # the warm-up write is there, not this one


def test_torn_write_leaves_half_a_batch_that_recovery_discards(cluster):
    async def scenario():
        leader, client = await settled_client(cluster, "c")
        follower = next(n for n in cluster.names if n != leader)
        await cluster.wait_caught_up(follower)
        assert await arm(cluster, follower, "torn-write")
        out = await client.invoke("append", "k", "x" * 200)  # the other follower acknowledges
        code = await wait_dead(cluster, follower)
        await client.close()
        return follower, out, code

    follower, out, code = run(scenario())
    assert out.type == "ok" and code == -signal.SIGKILL
    assert events(cluster, follower)[-1]["point"] == "torn-write"
    state = recovered(cluster, follower)
    assert state.truncated_bytes > 0  # the torn record, discarded
    ids = [kv.decode_command(e.data).request_id for e in state.entries if e.data]
    assert ids[-1] == "c:1"


def test_mid_apply_dies_with_part_of_a_committed_batch_applied_and_nobody_answered(cluster):
    async def scenario():
        leader, warm = await settled_client(cluster, "warm")
        await warm.close()
        assert await arm(cluster, leader, "mid-apply")
        clients = [Client(cluster.client_addresses, leader, f"c{i}", 5.0) for i in range(12)]
        outs = {}
        async with asyncio.timeout(20):
            while True:  # concurrent writes commit together, sooner or later
                batch = await asyncio.gather(*(c.invoke("write", f"k{i}", 1)
                                               for i, c in enumerate(clients)))
                outs.update({o.request: o for o in batch})
                if any(o.type != "ok" for o in batch):
                    break  # the leader died in this batch: a later one would go to its successor
        for c in clients:
            await c.close()
        return leader, outs, await wait_dead(cluster, leader)

    leader, outs, code = run(scenario())
    assert code == -signal.SIGKILL
    life = events(cluster, leader)
    life = life[max(i for i, e in enumerate(life) if e["event"] == "start"):]
    *_, last_apply, crash = life
    assert (crash["event"], crash["point"]) == ("crash", "mid-apply")
    assert last_apply["event"] == "apply"
    assert outs[last_apply["id"]].type == "info"  # applied, but the node died before replying
    applied = {e["id"] for e in life if e["event"] == "apply"}
    unapplied = [r for r, o in outs.items() if r not in applied]
    assert unapplied and all(outs[r].type == "info" for r in unapplied)


def test_a_bad_crash_point_is_refused_and_disarming_keeps_the_node_alive(cluster):
    async def scenario():
        leader, client = await settled_client(cluster, "c")
        addr = cluster.client_addresses[leader]
        bad = await raw_request(addr, {"seq": 5, "f": "crash-point", "value": "x"})
        refused = await arm_crash_point(addr, "x")
        assert await arm_crash_point(addr, "after-apply")
        assert await arm_crash_point(addr, None)
        out = await client.invoke("write", "k", 1)
        await client.close()
        unreachable = await arm_crash_point(("127.0.0.1", free_ports(1)[0]), None, timeout=0.5)
        return leader, bad, refused, out, unreachable

    leader, bad, refused, out, unreachable = run(scenario())
    assert bad == {
        "seq": 5,
        "ok": False,
        "error": "bad-request",
        "message": "unknown crash point 'x' (known: after-vote, after-append, after-apply, "
                   "before-save, after-term, torn-write, mid-apply, mid-snapshot)",
        "node": leader,
    }
    assert refused is False and unreachable is False
    assert out.type == "ok" and cluster.alive(leader)
    assert "crash" not in [e["event"] for e in events(cluster, leader)]



def test_mid_snapshot_dies_between_the_snapshot_file_and_the_compaction_and_restarts_twice(
        tmp_path):
    """Killed with a snapshot on disk and its log not compacted: the restart finishes the
    compaction (snapshot.resume), so the entries it appends leave no gap that would make the
    next restart refuse."""
    from splitbrain.raft.local import LocalCluster

    with LocalCluster(tmp_path, node_args=["--snapshot-every=5"]) as cluster:
        cluster.start_all()

        async def writes(leader, client_id, n):
            """n writes (elections under load, or the armed node dying, may cost a few)."""
            client = Client(cluster.client_addresses, leader, client_id, 5.0)
            outs = [await client.invoke("write", f"k{i}", i) for i in range(n)]
            await client.close()
            assert sum(o.type == "ok" for o in outs) >= n // 2, outs

        async def scenario():
            leader, warm = await settled_client(cluster, "warm")
            await warm.close()
            follower = next(n for n in cluster.names if n != leader)
            assert await arm(cluster, follower, "mid-snapshot")
            await writes(leader, "a", 12)
            return leader, follower, await wait_dead(cluster, follower)

        leader, follower, code = run(scenario())
        assert code == -signal.SIGKILL
        assert events(cluster, follower)[-1]["point"] == "mid-snapshot"
        assert recovered(cluster, follower).snapshot[0] == 0  # the log was not compacted
        assert (cluster.node_dir(follower) / "data" / "snapshot").is_file()
        for life in ("b", "c"):  # a restart, entries appended, and another restart
            cluster.start(follower)

            async def more(life=life):
                await writes(leader, life, 6)
                async with asyncio.timeout(20):
                    await wait_applied(cluster, follower, 20)

            run(more())
            cluster.kill(follower)
        assert recovered(cluster, follower).snapshot[0] >= 5  # compacted since
        cluster.start(follower)
        assert cluster.alive(follower)
