"""Log agreement over synthetic nodes/*/events.jsonl files, one violation at a time."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from splitbrain.checker import eventfile
from splitbrain.checker.agreement import Agreement, _Entries, _Firsts, check_agreement
from splitbrain.history import Call, HistoryError


def _start():
    return {"time": 0, "event": "start"}


def _leader(term):
    return {"time": 0, "event": "role", "role": "leader", "term": term}


def _apply(index, term, rid):
    return {"time": 0, "event": "apply", "index": index, "term": term, "id": rid}


def _crash(point):
    return {"time": 0, "event": "crash", "point": point}


def _log(n, term=1):
    """n applies: a no-op then client requests c1:1, c1:2, ..."""
    return [_apply(1, term, "noop")] + [_apply(i, term, f"c1:{i - 1}") for i in range(2, n + 1)]


def _write(tmp_path, node, events, tail=""):
    """The node's events file: (node, path), as check_agreement takes them."""
    path = tmp_path / node / "events.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(e) + "\n" for e in events) + tail)
    return node, path


def _read(node, path):
    """One node's events, checked alone: HistoryError on a bad line."""
    agreement = Agreement()
    return agreement, agreement.add(node, path)


def _acked(rid, f="put"):
    return Call(0, f, "k", "v", None, "ok", 0, 1, 0, 1, request=rid)


def _kinds(result):
    return sorted({v["kind"] for v in result["violations"]})


def test_agreeing_nodes_are_valid(tmp_path):
    nodes = [_write(tmp_path, "n1", [_start(), _leader(1), *_log(4)]),
             _write(tmp_path, "n2", [_start(), *_log(4)]),
             _write(tmp_path, "n3", [_start(), *_log(2)])]
    result = check_agreement(nodes, [_acked("c1:1"), _acked("c1:3")])
    assert result["valid"] is True, result["violations"]
    assert result["leaders"] == {"1": ["n1"]}
    assert result["committed"] == 4


def test_different_entry_at_one_index(tmp_path):
    other = [*_log(2), _apply(3, 2, "c9:1"), _apply(4, 1, "c1:3")]
    nodes = [_write(tmp_path, "n1", [_start(), *_log(4)]),
             _write(tmp_path, "n2", [_start(), *other])]
    result = check_agreement(nodes)
    assert _kinds(result) == ["divergent-entry"]
    violation = result["violations"][0]
    assert violation["index"] == 3
    assert violation["entries"] == {"n1": {"term": 1, "id": "c1:2"},
                                    "n2": {"term": 2, "id": "c9:1"}}
    assert result["valid"] is False and "index 3" in result["cause"]


def test_one_entry_with_different_contents_is_divergent(tmp_path):
    """A damaged log (a bit flipped in a value the WAL did not check) applies the same (term,
    id) with other bytes: the entries' CRCs differ, on two nodes and across one node's lives."""
    good, bad = _log(3), _log(3)
    good[2] = {**good[2], "crc": 0x1234}
    bad[2] = {**bad[2], "crc": 0x1235}
    result = check_agreement([_write(tmp_path, "n1", [_start(), *good]),
                              _write(tmp_path, "n2", [_start(), *bad])])
    assert _kinds(result) == ["divergent-entry"]
    assert result["violations"][0]["entries"] == {"n1": {"term": 1, "id": "c1:2", "crc": 0x1234},
                                                  "n2": {"term": 1, "id": "c1:2", "crc": 0x1235}}
    assert "crc 00001234" in result["cause"] and "crc 00001235" in result["cause"]
    restarted = check_agreement([_write(tmp_path, "n3", [_start(), *good, _start(), *bad])])
    assert _kinds(restarted) == ["lost-committed-entry"]
    agreed = check_agreement([_write(tmp_path, "n4", [_start(), *good, _start(), *good])])
    assert agreed["valid"] is True


def test_gap_in_applies(tmp_path):
    events = [_start(), *_log(2), _apply(4, 1, "c1:3")]
    result = check_agreement([_write(tmp_path, "n1", events)])
    assert _kinds(result) == ["apply-gap"]
    assert result["violations"][0]["index"] == 4


def test_reordered_applies(tmp_path):
    events = [_start(), *_log(3), _apply(2, 1, "c1:1")]
    result = check_agreement([_write(tmp_path, "n1", events)])
    assert _kinds(result) == ["apply-reorder"]


def test_restart_may_reapply_from_the_start_or_a_snapshot(tmp_path):
    events = [_start(), *_log(3), _start(), *_log(4), _start(), *_log(4)[2:]]
    assert check_agreement([_write(tmp_path, "n1", events)])["valid"] is True


def test_a_crash_event_is_neither_an_apply_nor_a_new_life(tmp_path):
    events = [_start(), _leader(1), *_log(3), _crash("after-apply"), _start(), *_log(4),
              _crash("after-vote")]
    agreement, node = _read(*_write(tmp_path, "n1", events))
    assert node.applied == 7 and node.leader_terms == [1]
    result = agreement.result([_acked("c1:2")])
    assert result["valid"] is True and result["committed"] == 4
    changed = [_start(), *_log(3), _crash("after-apply"), _start(), _apply(1, 1, "noop"),
               _apply(2, 2, "c9:1")]
    (lost,) = check_agreement([_write(tmp_path, "n2", changed)])["violations"]
    assert (lost["before"]["life"], lost["after"]["life"]) == (1, 2)


def test_two_leaders_in_one_term(tmp_path):
    nodes = [_write(tmp_path, "n1", [_start(), _leader(3)]),
             _write(tmp_path, "n2", [_start(), _leader(3), _leader(4)])]
    result = check_agreement(nodes)
    assert _kinds(result) == ["two-leaders"]
    assert result["violations"][0]["nodes"] == ["n1", "n2"]
    assert result["leaders"] == {"3": ["n1", "n2"], "4": ["n2"]}


def test_acknowledged_write_missing(tmp_path):
    nodes = [_write(tmp_path, "n1", [_start(), *_log(3)])]
    result = check_agreement(nodes, [_acked("c1:2"), _acked("c7:1", "append")])
    assert _kinds(result) == ["lost-write"]
    assert result["violations"][0]["request"] == "c7:1"


def test_unacknowledged_writes_may_be_missing(tmp_path):
    nodes = [_write(tmp_path, "n1", [_start(), *_log(3)])]
    info = Call(0, "put", "k", "v", None, "info", 0, 1, 0, 1, request="c7:1")
    read = Call(0, "get", "k", None, "v", "ok", 0, 1, 0, 1, request="c7:2")
    assert check_agreement(nodes, [info, read])["valid"] is True


def test_request_applied_twice(tmp_path):
    events = [_start(), *_log(3), _apply(4, 1, "c1:2")]
    result = check_agreement([_write(tmp_path, "n1", events)], [_acked("c1:2")])
    assert _kinds(result) == ["duplicate-apply"]
    assert result["violations"][0]["indexes"] == [3, 4]


def test_noops_may_repeat(tmp_path):
    events = [_start(), *_log(2), _apply(3, 2, "noop"), _apply(4, 3, None)]
    assert check_agreement([_write(tmp_path, "n1", events)])["valid"] is True


def test_committed_entry_lost_after_restart(tmp_path):
    events = [_start(), *_log(4), _start(), *_log(2), _apply(3, 2, "c5:1")]
    result = check_agreement([_write(tmp_path, "n1", events)])
    assert _kinds(result) == ["lost-committed-entry"]
    violation = result["violations"][0]
    assert violation["index"] == 3 and violation["before"]["id"] == "c1:2"


def test_torn_tail_is_tolerated(tmp_path):
    agreement, node = _read(*_write(tmp_path, "n1", [_start(), *_log(3)],
                                    tail='{"time": 5, "event": "app'))
    assert node.applied == 3
    assert "torn last line" in node.warnings[0]
    assert agreement.result()["warnings"] == node.warnings


def test_a_torn_line_ended_by_the_next_life_is_tolerated(tmp_path):
    path = tmp_path / "events.jsonl"
    lines = [json.dumps(e) for e in [_start(), *_log(2)]]
    path.write_text("\n".join([*lines, '{"time": 5, "event": "app', json.dumps(_start()),
                               json.dumps(_apply(1, 1, "noop")),
                               json.dumps(_apply(3, 1, "c1:2"))]) + "\n")
    agreement, node = _read("n1", path)
    assert node.applied == 4
    assert "events.jsonl:4: torn line dropped" in node.warnings[0]
    # The second life is a life of its own (it may start again at 1), and lines keep counting
    # the torn one: the gap is on line 7.
    (gap,) = agreement.result()["violations"]
    assert (gap["kind"], gap["index"], gap["after"], gap["line"]) == ("apply-gap", 3, 1, 7)


def test_a_torn_line_not_followed_by_a_start_is_an_error(tmp_path):
    path = tmp_path / "events.jsonl"
    path.write_text('{"event": "start"}\n{"time": 5, "event": "app\n{"event": "start"\n')
    with pytest.raises(HistoryError, match=r"events.jsonl:2: bad JSON"):
        _read("n1", path)


def test_bad_line_in_the_middle_names_file_and_line(tmp_path):
    path = tmp_path / "events.jsonl"
    path.write_text('{"event": "start"}\n{"event": "apply", "index": "x"}\n')
    with pytest.raises(HistoryError, match=r"events.jsonl:2: field 'index' must be an integer"):
        _read("n1", path)
    path.write_text('{"event": "start"}\n{"event": "apply", "index": 1, "term": 1, "crc": "x"}\n')
    with pytest.raises(HistoryError, match=r"events.jsonl:2: field 'crc' must be an integer"):
        _read("n1", path)


# Repeated requests, durable state across lives, and invariants the nodes report.


def _repeat(index, term, rid):
    return {**_apply(index, term, rid), "repeat": True}


def _hs(event, term, vote, commit=0, time=0):
    return {"time": time, "event": event, "term": term, "vote": vote, "commit": commit}


def test_a_retried_request_committed_twice_is_executed_once(tmp_path):
    events = [_start(), *_log(3), _repeat(4, 1, "c1:2")]
    result = check_agreement([_write(tmp_path, "n1", events)], [_acked("c1:2")])
    assert result["valid"] is True, result["violations"]
    executed_twice = [_start(), *_log(3), _apply(4, 1, "c1:2")]
    result = check_agreement([_write(tmp_path, "n2", executed_twice)])
    assert _kinds(result) == ["duplicate-apply"]
    assert "executed 2 times (indexes 3, 4)" in result["violations"][0]["message"]


def test_replicas_that_disagree_about_a_repeat_diverge(tmp_path):
    n1 = _write(tmp_path, "n1", [_start(), *_log(3), _repeat(4, 1, "c1:2")])
    n2 = _write(tmp_path, "n2", [_start(), *_log(3), _apply(4, 1, "c1:2")])
    result = check_agreement([n1, n2])
    assert "divergent-entry" in _kinds(result)
    (v,) = [v for v in result["violations"] if v["kind"] == "divergent-entry"]
    assert v["entries"] == {"n1": {"term": 1, "id": "c1:2", "repeat": True},
                            "n2": {"term": 1, "id": "c1:2"}}


def test_durable_term_vote_and_commit_survive_restarts(tmp_path):
    good = [_start(), _hs("recovered", 0, None), _hs("persisted", 1, "n1"),
            _hs("persisted", 2, None, 3), _hs("persisted", 2, "n3", 3), _start(),
            _hs("recovered", 2, "n3", 5), _hs("persisted", 3, "n2", 6)]
    assert check_agreement([_write(tmp_path, "n1", good)])["valid"] is True

    forgot = [_start(), _hs("recovered", 0, None), _hs("persisted", 4, "n2", time=7), _start(),
              _hs("recovered", 4, None), _hs("persisted", 4, "n3")]
    result = check_agreement([_write(tmp_path, "n2", forgot)])
    assert _kinds(result) == ["lost-vote"]
    (v,) = result["violations"]
    assert v["message"] == "n2 had recorded its vote for n2 in term 4, then restarted without it"
    assert (v["node"], v["term"], v["vote"], v["line"]) == ("n2", 4, "n2", 5)

    two = [_start(), _hs("persisted", 4, "n2"), _hs("persisted", 4, "n3")]
    result = check_agreement([_write(tmp_path, "n3", two)])
    assert _kinds(result) == ["double-vote"]
    assert result["violations"][0]["votes"] == ["n2", "n3"]

    back = [_start(), _hs("persisted", 5, "n1", 9), _start(), _hs("recovered", 4, "n1", 2)]
    result = check_agreement([_write(tmp_path, "n4", back)])
    assert _kinds(result) == ["commit-regress", "term-regress"]
    messages = sorted(v["message"] for v in result["violations"])
    assert messages == ["n4 restarted with commit index 2, below the 9 it had recorded",
                        "n4 went back from term 5 to 4 after a restart"]


def test_invariants_a_node_reports_are_violations_of_their_rule(tmp_path):
    events = [_start(), *_log(2),
              {"time": 5, "event": "invariant", "rule": "ack-before-durable", "to": "n1",
               "term": 2, "index": 7, "durable": 5},
              {"time": 6, "event": "invariant", "rule": "flux-capacitor", "level": 11},
              {"time": 7, "event": "mystery", "anything": [1]}]  # unknown events are skipped
    result = check_agreement([_write(tmp_path, "n2", events)])
    assert _kinds(result) == ["ack-before-durable", "flux-capacitor"]
    ack, flux = result["violations"]
    assert ack["message"] == ("n2 acknowledged entries up to 7 to n1 in term 2 with only 5 "
                              "durable")
    assert (ack["node"], ack["line"], ack["time"]) == ("n2", 4, 5)
    assert flux["message"] == 'n2 broke invariant flux-capacitor: {"level": 11}'


def test_malformed_durability_events_name_the_line(tmp_path):
    with pytest.raises(HistoryError, match=r"events.jsonl:2: field 'term' must be an integer"):
        _read(*_write(tmp_path, "n1", [_start(), {"event": "persisted", "term": "x",
                                                  "vote": None, "commit": 0}]))
    with pytest.raises(HistoryError, match=r":1: field 'rule' must be a string"):
        _read(*_write(tmp_path, "n2", [{"event": "invariant", "rule": 3}]))


def test_a_refused_overwrite_of_a_committed_entry_names_its_index(tmp_path):
    events = [_start(), *_log(3),
              {"time": 9, "event": "invariant", "rule": "overwrite-committed", "index": 3,
               "from": "n5", "term": 7}]
    result = check_agreement([_write(tmp_path, "n1", events)])
    (v,) = result["violations"]
    assert (v["kind"], v["index"], v["node"]) == ("overwrite-committed", 3, "n1")
    assert v["message"] == ("n1 was told by n5 in term 7 to overwrite entry 3, which it knew "
                            "committed")


def _snapshot(index, term, digest, kind="taken"):
    return {"time": 0, "event": "snapshot", "index": index, "term": term, "digest": digest,
            "kind": kind}


def test_lives_may_start_from_a_snapshot_and_go_on_after_an_installed_one(tmp_path):
    nodes = [_write(tmp_path, "n1", [_start(), _leader(1), *_log(4), _snapshot(4, 1, "d4"),
                                     *_log(8)[4:]]),
             # restarted from its snapshot of 4: the life starts at 5
             _write(tmp_path, "n2", [_start(), *_log(4), _snapshot(4, 1, "d4"), _start(),
                                     *_log(8)[4:]]),
             # a follower far behind installs the snapshot of 4, then applies from 5
             _write(tmp_path, "n3", [_start(), *_log(2), _snapshot(4, 1, "d4", "installed"),
                                     *_log(6)[4:]])]
    result = check_agreement(nodes, [_acked("c1:1"), _acked("c1:7")])
    assert result["valid"] is True, result["violations"]


def test_snapshots_that_disagree_are_divergent(tmp_path):
    nodes = [_write(tmp_path, "n1", [_start(), *_log(4), _snapshot(4, 1, "d4")]),
             _write(tmp_path, "n2", [_start(), *_log(4), _snapshot(4, 1, "e4")]),
             # the right digest, tagged with the wrong term
             _write(tmp_path, "n3", [_start(), *_log(3), _snapshot(3, 2, "d3")])]
    result = check_agreement(nodes)
    assert _kinds(result) == ["divergent-snapshot"]
    four, three = sorted(result["violations"], key=lambda v: -v["index"])
    assert four["snapshots"]["n1"]["digest"] == "d4" and four["snapshots"]["n2"]["digest"] == "e4"
    assert "the entry applied there is of term 1" in three["message"]


def test_an_apply_that_skips_past_an_installed_snapshot_is_a_gap(tmp_path):
    node = _write(tmp_path, "n1", [_start(), *_log(2), _snapshot(4, 1, "d4", "installed"),
                                   _apply(6, 1, "c1:5")])
    assert _kinds(check_agreement([node])) == ["apply-gap"]


def test_a_snapshot_event_without_a_digest_is_a_bad_line(tmp_path):
    with pytest.raises(HistoryError, match="digest"):
        _read(*_write(tmp_path, "n1", [_start(), {"time": 0, "event": "snapshot", "index": 1,
                                                  "term": 1, "kind": "taken"}]))


# Streaming: each file is read a block at a time and checked as it is read; what is kept is one
# entry per index and, per node, ranges of indexes (agreement.py's module docstring).


@pytest.mark.parametrize("block", [16, 64, 100, 1 << 20])
def test_a_file_read_in_blocks_of_any_size_says_the_same(tmp_path, monkeypatch, block):
    """Lines longer than a block, a torn line whose next life starts in the next block, a
    blank line, an invariant read whole, and a torn last line."""
    monkeypatch.setattr(eventfile, "BLOCK", block)
    invariant = {"time": 9, "event": "invariant", "rule": "flux-capacitor", "level": 11}
    second_life = [_start(), _apply(1, 1, "noop"), invariant, _apply(2, 2, "c9:1"),
                   _apply(4, 2, "c9:2")]
    lines = [*(json.dumps(e) for e in [_start(), *_log(2)]), "", '{"time": 5, "event": "app',
             *(json.dumps(e) for e in second_life), '{"event": "app']
    path = tmp_path / "events.jsonl"
    path.write_text("\n".join(lines))
    result = check_agreement([("n1", path)])
    assert result["warnings"] == [
        f"{path}:5: torn line dropped (node killed mid-write, then restarted)",
        f"{path}:11: torn last line dropped (node killed mid-write)"]
    gap, flux, lost = result["violations"]
    assert (gap["kind"], gap["line"], gap["index"]) == ("apply-gap", 10, 4)
    assert (flux["kind"], flux["line"], flux["event"]) == ("flux-capacitor", 8, invariant)
    assert (lost["kind"], lost["index"], lost["before"]["id"], lost["after"]["id"]) == (
        "lost-committed-entry", 2, "c1:1", "c9:1")
    assert result["committed"] == 3  # indexes 1, 2 and 4


@pytest.mark.parametrize("max_ranges", [3, _Firsts.MAX_RANGES])  # past it: a map itself
@given(applies=st.lists(st.tuples(st.integers(1, 40), st.integers(1, 4)), max_size=80))
@settings(max_examples=300, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_ranges_of_first_applies_answer_as_a_map_would(monkeypatch, max_ranges, applies):
    monkeypatch.setattr(_Firsts, "MAX_RANGES", max_ranges)
    firsts, model = _Firsts(), {}
    for index, life in sorted(applies, key=lambda a: a[1]):  # lives come one after another
        assert firsts.life_of(index) == model.get(index)
        if index not in model:
            firsts.add(index, life)
            model[index] = life
    assert all(firsts.life_of(i) == model.get(i) for i in range(0, 42))


def test_applies_that_go_back_grow_one_range_and_scattered_ones_become_a_map():
    """Applies going back one by one grow one range down; a file whose applies jump about
    turns the ranges into a map: neither is quadratic."""
    back = _Firsts()
    for index in range(200_000, 0, -1):
        assert back.life_of(index) is None
        back.add(index, 1)
    assert back.life_of(1) == back.life_of(200_000) == 1 and back.life_of(200_001) is None
    assert len(back._starts) == 1
    scattered = _Firsts()
    for index in range(199_999, 0, -2):
        scattered.add(index, 2)
    assert scattered._map is not None and len(scattered._map) == 100_000
    assert scattered.life_of(1) == 2 and scattered.life_of(2) is None


def test_entries_far_past_the_end_or_beyond_64_bits_are_kept_aside():
    entries = _Entries()
    kept = {1: (1, "noop", False, None), 2: (2, "c1:1", True, 7),
            1 << 40: (3, "c1:2", False, None), 3: (1 << 70, "c1:3", False, -(1 << 70)),
            -5: (1, None, False, 0)}
    for index, entry in kept.items():
        entries.put(index, entry)
    assert all(entries.get(i) == e for i, e in kept.items()) and entries.get(4) is None
    assert list(entries.items()) == sorted(kept.items()) and entries.count == 5
    for step in range(1, 1000):  # indexes a million apart do not grow the columns each time
        entries.put(step << 20, (1, None, False, None))
    assert len(entries._flags) < 1 << 22


_ENTRIES = st.tuples(st.integers(1, 2), st.sampled_from(["noop", "c1:1", "c1:2", None]),
                     st.booleans(), st.sampled_from([None, 7]))
_LIFE = st.tuples(st.integers(1, 6), st.lists(st.tuples(st.integers(-1, 2), _ENTRIES),
                                              max_size=8))
_NODES = st.lists(st.lists(_LIFE, min_size=1, max_size=3), min_size=1, max_size=3)


@given(_NODES)
@settings(max_examples=300, deadline=None, derandomize=True, database=None)
def test_streamed_checks_agree_with_the_rules_over_whole_logs(tmp_path_factory, nodes):
    """Lives that start anywhere, step back, skip and re-apply different entries: the streamed
    checker reports what the rules say over the nodes' whole logs held at once."""
    root = tmp_path_factory.mktemp("nodes")
    files, logs = [], {}
    for n, lives in enumerate(nodes, start=1):
        events, applies = [], []
        for life, (index, steps) in enumerate(lives, start=1):
            events.append(_start())
            for step, (term, rid, repeat, crc) in steps:
                index = max(1, index + step)
                event = {**_apply(index, term, rid), "repeat": repeat, "crc": crc}
                events.append(event)
                applies.append((index, (term, rid, repeat, crc), life, len(events)))
        files.append(_write(root, f"n{n}", events))
        logs[f"n{n}"] = applies
    said = [{k: v[k] for k in ("kind", *_SAYS[v["kind"]])} for v in check_agreement(files)[
        "violations"]]
    assert said == _whole_log_rules(logs)


_SAYS = {"apply-reorder": ("node", "index", "after", "line"),  # what the rules below name
         "apply-gap": ("node", "index", "after", "line"),
         "lost-committed-entry": ("node", "index"), "divergent-entry": ("index",),
         "duplicate-apply": ("request", "indexes")}


def _whole_log_rules(logs):
    """The apply rules, stated over every node's whole list of (index, entry, life, line)."""
    found = {}

    def report(kind, **data):
        found.setdefault(kind, []).append(data)

    first_seen = {}
    for node, applies in logs.items():
        mine, previous = {}, None
        for index, entry, life, line in applies:
            if previous is not None and previous[1] == life:
                if index <= previous[0]:
                    report("apply-reorder", node=node, index=index, after=previous[0], line=line)
                elif index > previous[0] + 1:
                    report("apply-gap", node=node, index=index, after=previous[0], line=line)
            previous = (index, life)
            if index not in mine:
                mine[index] = (entry, life)
            elif mine[index][1] != life and (
                    [mine[index][0][k] for k in (0, 1, 3)] != [entry[k] for k in (0, 1, 3)]):
                report("lost-committed-entry", node=node, index=index)
        first_seen[node] = mine
    committed = {}
    for index in sorted({i for mine in first_seen.values() for i in mine}):
        entries = [mine[index][0] for mine in first_seen.values() if index in mine]
        if len(set(entries)) > 1:
            report("divergent-entry", index=index)
        committed[index] = entries[0]
    executed = {}
    for index, (_, rid, repeat, _) in committed.items():
        if rid is not None and not rid.startswith("noop") and not repeat:
            executed.setdefault(rid, []).append(index)
    for rid, at in executed.items():
        if len(at) > 1:
            report("duplicate-apply", request=rid, indexes=at)
    return [{"kind": kind, **v} for kind in sorted(found) for v in found[kind]]
