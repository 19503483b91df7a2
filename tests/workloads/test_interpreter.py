"""The interpreter records a valid history: pairs, fresh processes after info, final reads."""

from __future__ import annotations

import asyncio
import random
from collections import Counter

import pytest

from splitbrain.history import HistoryWriter, pair_calls, read_jsonl
from splitbrain.workloads.generator import KeyRotation
from splitbrain.workloads.interpreter import Interpreter, Options
from splitbrain.workloads.registry import WORKLOADS
from tests.workloads.fakes import FakeClient, FakeNemesis, FakeStore

NODES = ["n1", "n2", "n3"]


def run_interpreter(tmp_path, workload="register", *, store=None, nemesis=None, leader=None,
                    **options):
    store = store or FakeStore(seed=1)
    path = tmp_path / "history.jsonl"
    opts = Options(**{"concurrency": 4, "time_limit": 0.3, "op_timeout": 0.5, "seed": 7,
                      "final_timeout": 2.0, "recovery_timeout": 1.0, **options})
    with HistoryWriter(path) as writer:
        interp = Interpreter(WORKLOADS[workload], NODES,
                             lambda p, home: FakeClient(store, p, home),
                             nemesis, writer, opts, leader=leader)
        tally = asyncio.run(asyncio.wait_for(interp.run(), 20))
    return read_jsonl(path), tally, interp, store


@pytest.mark.parametrize("workload", sorted(WORKLOADS))
def test_history_is_well_formed_and_counts_match(tmp_path, workload):
    history, tally, _, _ = run_interpreter(tmp_path, workload)
    calls = pair_calls(history.ops)
    assert len(calls) > 20
    assert all(c.end is not None for c in calls), "every invoke got its completion"
    counts = Counter(c.type for c in calls)
    assert counts == tally.counts
    assert counts["info"] > 0 and counts["fail"] > 0 and counts["ok"] > 0
    assert {c.f for c in calls} <= {"read", "write", "cas", "get", "put", "append"}


@pytest.fixture
def info_history(tmp_path):
    store = FakeStore(seed=3, info_rate=0.2)
    history, _, _, store = run_interpreter(tmp_path, store=store)
    return history, store


def test_after_info_a_process_never_invokes_again(info_history):
    history, store = info_history
    calls = pair_calls(history.ops)
    crashed = {c.process for c in calls if c.type == "info"}
    assert crashed
    for process in crashed:
        last = max(c.invoke_index for c in calls if c.process == process)
        info = [c for c in calls if c.process == process and c.type == "info"]
        assert info[0].invoke_index == last
    # the worker continued as process p + concurrency
    assert any(p + 4 in {c.process for c in calls} for p in crashed)
    assert not any(client.connected for client in store.clients), "every client was closed"


def test_after_info_the_worker_keeps_its_client_on_fresh_connections(info_history):
    """One session per worker: the new process's requests go on under the client id and
    sequence numbers of the one before, after its connections were closed."""
    history, store = info_history
    calls = pair_calls(history.ops)
    worker = next(c.process for c in calls if c.type == "info" and c.process < 4)
    mine = [c for c in calls if c.request.startswith(f"c{worker}:")]
    processes = {c.process for c in mine}
    assert len(processes) > 1 and {p % 4 for p in processes} == {worker}
    assert [int(c.request.split(":")[1]) for c in mine] == list(range(1, len(mine) + 1))
    client = next(c for c in store.clients if c.process == worker)
    assert client.connections == len(processes), "fresh connections for each process"
    assert len(store.clients) == 4 + min(4, len({c.key for c in calls}))  # workers, readers


def test_final_reads_cover_every_key_and_succeed(tmp_path):
    history, tally, interp, _ = run_interpreter(tmp_path)
    calls = pair_calls(history.ops)
    keys = {c.key for c in calls}
    ok_reads = {c.key for c in calls if c.f == "read" and c.type == "ok"}
    assert keys == set(interp.keys) and keys <= ok_reads
    assert tally.final_unread == 0


def test_nemesis_events_are_recorded_and_healed(tmp_path):
    nemesis = FakeNemesis(interval=0.05)
    history, tally, _, _ = run_interpreter(tmp_path, nemesis=nemesis)
    faults = [op for op in history.ops if op.is_nemesis]
    assert faults and faults[0].f == "start-partition" and faults[0].type == "info"
    assert nemesis.healed and faults[-1].f == "stop-partition"
    assert tally.faults == len(faults)


def test_rate_limit_bounds_the_number_of_operations(tmp_path):
    history, _, _, _ = run_interpreter(tmp_path, rate=50.0, time_limit=0.4)
    main = [op for op in history.ops if op.type == "invoke" and op.time < 0.4e9]
    assert len(main) <= 50 * 0.4 + 2


def test_recovery_waits_for_a_leader(tmp_path):
    answers = iter([None, None, "n2"])

    async def leader():
        return next(answers, "n2")

    _, tally, _, _ = run_interpreter(tmp_path, leader=leader)
    assert tally.leader_after_heal is True


def test_unavailable_cluster_leaves_final_reads_unread(tmp_path):
    store = FakeStore(seed=1, info_rate=0.0, fail_rate=0.0)
    store.available = False
    _, tally, interp, _ = run_interpreter(tmp_path, store=store, final_timeout=0.3)
    assert tally.final_unread == len(interp.keys) > 0


def test_keys_run_hot_for_a_while_after_a_heal_and_the_generator_stays_pure():
    rotation = KeyRotation(prefix="r")
    cold = {rotation.key(random.Random(i), 130) for i in range(100)}
    hot = {rotation.key(random.Random(i), 130, heal_age=0.2) for i in range(100)}
    later = {rotation.key(random.Random(i), 130, heal_age=rotation.hot_for) for i in range(100)}
    assert cold == later == {"r2", "r3", "r4"} and hot == {"r2"}
    for workload in WORKLOADS.values():  # same seed, counter and heal age: same operation
        hot_ops = {workload.next_op(random.Random(i), 1, 130, 0.1).key for i in range(50)}
        assert len(hot_ops) == 1
        assert workload.next_op(random.Random(5), 1, 130, 0.1) == workload.next_op(
            random.Random(5), 1, 130, 0.1)


def test_the_interpreter_tells_the_workload_how_long_ago_a_fault_healed(tmp_path):
    noted = []
    with HistoryWriter(tmp_path / "history.jsonl") as writer:
        interp = Interpreter(WORKLOADS["register"], NODES, lambda p, h: None, None, writer,
                             Options(), on_invoke=lambda: noted.append(1))
        assert interp.heal_age() is None
        interp.record_fault("kill", {"nodes": ["n1"]})
        assert interp.heal_age() is None  # a fault began: nothing healed yet
        interp.record_fault("start", {"nodes": ["n1"]})
        assert 0 <= interp.heal_age() < 1.0  # type: ignore[operator]

        async def one():
            await interp._invoke(FakeClient(FakeStore(), 0, "n1"), 0,
                                 WORKLOADS["register"].next_op(random.Random(1), 0, 0, None))

        asyncio.run(one())
    assert noted == [1]  # told right before the request


@pytest.mark.parametrize("workload", sorted(WORKLOADS))
def test_the_share_of_reads_decides_the_mix_of_a_run(tmp_path, workload):
    reads = {"register": "read", "kv": "get"}[workload]
    next_op = WORKLOADS[workload].next_op

    def share(r: float) -> float:
        rng = random.Random(3)
        return sum(next_op(rng, 0, n, None, r).f == reads for n in range(4000)) / 4000

    assert share(0.0) == 0.0 and share(1.0) == 1.0
    # The default mix draws exactly what it drew before the share was a setting.
    rng = random.Random(3)
    assert "".join(next_op(rng, 0, n).f[0] for n in range(40)) == {
        "register": "wcwwwrrcrrrccccwwwrwwccwrwrwrccwrrrrcrcc",
        "kv": "agagpggaaaagaggaapagaaggaaaaagaaaapaaagg"}[workload]
    assert 0.83 < share(0.85) < 0.87 and 0.38 < share(0.4) < 0.42
    rng, mix = random.Random(3), Counter()  # the rest keeps its proportions
    for n in range(4000):
        mix[next_op(rng, 0, n, None, 0.85).f] += 1
    del mix[reads]
    first, second = sorted(mix.values())
    assert {"register": 0.8 < first / second <= 1, "kv": 0.15 < first / second < 0.25}[workload]
    # A run's operations follow its share: with reads 1.0 the main phase only reads.
    history, _, _, _ = run_interpreter(tmp_path, workload, reads=1.0)
    assert {c.f for c in pair_calls(history.ops)} == {reads}
