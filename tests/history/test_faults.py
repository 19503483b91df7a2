from splitbrain.history import Op
from splitbrain.history.faults import fault_windows, grudge_label


def nem(index: int, time: int, f: str, value=None) -> Op:
    return Op(index, time, "nemesis", "info", f, value)


def test_partition_window_is_labelled_with_the_sides_of_the_grudge():
    grudge = {"n1": ["n2", "n3"], "n2": ["n1"], "n3": ["n1"]}
    ops = [nem(0, 10, "start-partition", {"grudge": grudge, "kind": "isolate-leader"}),
           nem(1, 50, "stop-partition")]
    [w] = fault_windows(ops, end=100)
    assert (w.kind, w.start, w.end, w.closed) == ("partition", 10, 50, True)
    assert w.label == "partition (isolate-leader) n1 | n2 n3"
    assert w.nodes == ("n1", "n2", "n3")
    stalled = [nem(0, 10, "start-partition", {"grudge": grudge, "kind": "bridge", "stall": True})]
    assert fault_windows(stalled, end=100)[0].label == "partition (bridge, stalled) n1 | n2 n3"


def test_a_grudge_that_is_not_a_clean_split_names_who_drops_whom():
    ring = {"n1": ["n3"], "n2": ["n4"], "n3": ["n1"], "n4": ["n2"]}
    assert grudge_label({"n1": ["n2"]}) == "n1 drops n2"
    assert grudge_label(ring) == "n1 drops n3; n2 drops n4; n3 drops n1; n4 drops n2"


def test_kill_and_pause_are_per_node_and_unclosed_windows_last_to_the_end():
    ops = [nem(0, 10, "kill", {"nodes": ["n1", "n2"]}),
           nem(1, 20, "start", {"nodes": ["n2"]}),
           nem(2, 30, "pause", {"nodes": ["n3"]}),
           nem(3, 40, "resume", {"nodes": ["n3"]}),
           nem(4, 60, "start-net-fault", {"links": [["n1", "n2"]], "drop": 0.5})]
    windows = [(w.label, w.start, w.end, w.closed) for w in fault_windows(ops, end=90)]
    assert windows == [("kill n2", 10, 20, True), ("kill n1", 10, 90, False),
                       ("pause n3", 30, 40, True), ("net n1 n2", 60, 90, False)]


def test_start_without_nodes_ends_every_kill_and_client_ops_are_ignored():
    ops = [nem(0, 10, "kill", {"nodes": ["n1"]}), nem(1, 11, "kill", {"nodes": ["n2"]}),
           Op(2, 12, 0, "invoke", "read", None, "k"), nem(3, 30, "start")]
    assert [(w.label, w.end) for w in fault_windows(ops, end=99)] == [("kill n1", 30),
                                                                        ("kill n2", 30)]


def test_nodes_killed_and_restarted_together_share_one_window():
    ops = [nem(0, 10, "kill", {"nodes": ["n3", "n1"], "target": "majority"}),
           nem(1, 20, "start", {"nodes": ["n1", "n3"], "fault": "restart"}),
           nem(2, 30, "pause", {"nodes": [], "unchanged": ["n1"]})]
    [w] = fault_windows(ops, end=99)
    assert (w.label, w.nodes, w.start, w.end) == ("kill n1 n3", ("n1", "n3"), 10, 20)


def test_a_crash_at_a_crash_point_is_a_window_per_node_closed_by_its_start():
    ops = [nem(0, 5, "start-crash", {"nodes": ["n1", "n2"], "point": "after-vote"}),
           nem(1, 10, "kill", {"nodes": ["n3"]}),
           nem(2, 12, "crash", {"nodes": ["n2"], "point": "after-vote"}),
           nem(3, 20, "start", {"nodes": ["n2"], "fault": "crash"}),
           nem(4, 25, "stop-crash", {"nodes": ["n1"], "point": "after-vote"}),
           nem(5, 30, "start", {"nodes": ["n3"]})]
    windows = [(w.kind, w.label, w.start, w.end) for w in fault_windows(ops, end=99)]
    assert windows == [("crash", "crash (after-vote) n1 n2", 5, 25), ("kill", "kill n3", 10, 30),
                       ("crash", "crash n2", 12, 20)]


def test_a_node_that_exited_by_itself_is_down_until_it_is_started_again():
    ops = [nem(0, 5, "exit", {"nodes": ["n2"], "status": "exited with 1 (Traceback ...)"}),
           nem(1, 9, "start", {"nodes": ["n2"], "fault": "exit"})]
    assert [(w.kind, w.label, w.start, w.end) for w in fault_windows(ops, end=50)] == [
        ("exit", "exit n2", 5, 9)]


def test_a_churn_is_one_window_whatever_it_isolated_meanwhile():
    isolate_n1 = {"n1": ["n2", "n3"], "n2": ["n1"], "n3": ["n1"]}
    ops = [nem(0, 5, "start-churn", {"kind": "new-leaders", "lead": 0.01}),
           nem(1, 6, "churn-isolate", {"leader": "n1", "term": 3, "grudge": isolate_n1}),
           nem(2, 9, "stop-churn", {"kind": "new-leaders", "healed": [["n1", "n2"]]})]
    [w] = fault_windows(ops, end=99)
    assert (w.kind, w.label, w.start, w.end) == ("churn", "churn (new-leaders)", 5, 9)


def test_overlapping_faults_close_only_what_their_events_name():
    ops = [nem(0, 10, "pause", {"nodes": ["n1"], "target": "one"}),
           nem(1, 11, "pause", {"nodes": ["n2"], "target": "new-leader", "leader": "n2"}),
           nem(2, 15, "kill", {"nodes": ["n1", "n3"], "target": "majority"}),  # n1 was paused
           nem(3, 20, "resume", {"nodes": [], "unchanged": ["n1"]}),  # killed meanwhile
           nem(4, 25, "start", {"nodes": ["n1", "n3"]}),
           nem(5, 30, "resume", {"nodes": ["n2"]}),
           nem(6, 31, "start-leader-pauses", {"kind": "after-request", "for": 0.5}),
           nem(7, 40, "stop-leader-pauses", {"kind": "after-request"})]
    windows = [(w.label, w.start, w.end) for w in fault_windows(ops, end=99)]
    assert windows == [("pause n1", 10, 15), ("pause n2", 11, 30), ("kill n1 n3", 15, 25),
                       ("leader-pauses (after-request)", 31, 40)]
