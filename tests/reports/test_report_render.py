import json
import re

from splitbrain.reports import nodes, render_report, report, write_report
from splitbrain.testing.runs import build_run

HOSTILE = ["</script><script>alert(1)</script>", "<img src=x onerror=alert(2)>",
           "a & b \u2028 c \u2029", "<!--"]


def payload(html: str) -> dict:
    m = re.search(r'<script type="application/json" id="report-data">(.*?)</script>', html, re.S)
    assert m is not None
    return json.loads(m.group(1))


def test_json_script_keeps_every_string_inside_the_element_and_round_trips():
    data = {"values": HOSTILE}
    html = str(report.json_script(data, "x"))
    inner = html.removeprefix('<script type="application/json" id="x">').removesuffix("</script>")
    assert not re.search(r"[<>&\u2028\u2029]", inner)
    assert json.loads(inner) == data


def test_valid_report_states_the_verdict_how_to_reproduce_and_the_fault_windows(valid_run):
    assert write_report(valid_run) is None
    html = valid_run.report.read_text()
    assert 'class="verdict-word" id="verdict-word">VALID<' in html
    assert "splitbrain run --workload register --seed 3" in html
    assert 'id="failure"' not in html
    data = payload(html)
    assert {f["kind"] for f in data["faults"]} == {"partition", "kill", "pause", "net"}
    # nothing is fetched: no src= or href= to another origin, only relative links
    assert not re.search(r'(src|href)="(https?:)?//', html)


def test_ops_columns_decode_back_to_the_calls(valid_run):
    from splitbrain.history import pair_calls, read_jsonl

    calls = pair_calls(read_jsonl(valid_run.history).ops)
    write_report(valid_run)
    ops = payload(valid_run.report.read_text())["ops"]
    starts, t = [], 0
    for delta in ops["s"]:
        t += delta
        starts.append(t)
    assert starts == [c.start // 1000 for c in calls]
    assert ops["d"][-1] == -1  # the synthetic run ends with an invoke that never completed
    assert [["ok", "fail", "info"][x] for x in ops["t"]] == [c.type for c in calls]


def test_invalid_report_explains_the_failure_and_draws_the_prefix(invalid_run):
    write_report(invalid_run)
    html = invalid_run.report.read_text()
    failure = json.loads(invalid_run.results.read_text())["checkers"]["linearizable"]["failure"]
    assert ">INVALID<" in html
    assert 'id="failed-op"' in html
    assert "can&#39;t read 999999 from register" in html
    assert "Not linearizable on key " + failure["key"] in html
    assert html.count('class="lin-point"') == min(10, len(failure["prefix"]))
    recent, full = html.split('class="steps"')[1:3]
    n = len(failure["prefix"])
    assert [int(i) for i in re.findall(r"<tr><td>(\d+)</td><td>", recent)] == list(
        range(max(1, n - 19), n + 1))
    assert [int(i) for i in re.findall(r"<tr><td>(\d+)</td><td>", full)] == list(range(1, n + 1))
    assert payload(html)["failure"]["invoke_index"] == failure["op"]["invoke_index"]
    assert 'href="#failure"' in html


def test_divergent_report_shows_each_nodes_entry_side_by_side_and_leaders(divergent_run):
    write_report(divergent_run)
    html = divergent_run.report.read_text()
    agreement = json.loads(divergent_run.results.read_text())["checkers"]["log-agreement"]
    v = agreement["violations"][0]
    row = html.split(f'<tr class="divergent"><td>{v["index"]}</td>')[1].split("</tr>")[0]
    for node, e in v["entries"].items():
        assert f"term {e['term']} · {e['id']}" in row, node
    assert "Leaders per term" in html
    assert f"Logs disagree at index {v['index']}" in html


def test_crash_events_change_neither_the_applied_entries_nor_the_leaders(divergent_run):
    names = divergent_run.node_names()
    index = json.loads(divergent_run.results.read_text())["checkers"]["log-agreement"][
        "violations"][0]["index"]
    before = nodes.applied_around(divergent_run, names, index), nodes.leaders_from_events(
        divergent_run, names)
    for node in names:  # a crash after every line, as if each life ended at a crash point
        path = divergent_run.node_events(node)
        crash = json.dumps({"time": 0, "event": "crash", "point": "after-apply"})
        path.write_text("".join(f"{line}\n{crash}\n" for line in path.read_text().splitlines()))
    after = nodes.applied_around(divergent_run, names, index), nodes.leaders_from_events(
        divergent_run, names)
    assert after == before


def test_the_report_skips_event_lines_the_checker_would_refuse(divergent_run):
    """The report shows what it can read: a line that is not JSON, or not an object, in the
    middle of a node's events (the checker names it as an error) is passed over."""
    names = divergent_run.node_names()
    index = json.loads(divergent_run.results.read_text())["checkers"]["log-agreement"][
        "violations"][0]["index"]
    before = nodes.applied_around(divergent_run, names, index), nodes.leaders_from_events(
        divergent_run, names)
    for node in names:
        path = divergent_run.node_events(node)
        first, *rest = path.read_text().splitlines()
        path.write_text("\n".join([first, "not json", "[1, 2]", *rest]) + "\n")
    after = nodes.applied_around(divergent_run, names, index), nodes.leaders_from_events(
        divergent_run, names)
    assert after == before and before[0][1]  # the entries around the index are there


def test_node_log_excerpts_come_from_the_window_around_the_failure(invalid_run):
    write_report(invalid_run)
    html = invalid_run.report.read_text()
    assert re.search(r"lines from \d\d:\d\d:\d\d\.\d{3} to \d\d:\d\d:\d\d\.\d{3} UTC", html)
    assert 'href="./nodes/n1/node.log"' in html and 'href="./history.jsonl"' in html


def test_hostile_values_are_text_everywhere(tmp_path):
    run = build_run(tmp_path, values=HOSTILE, failure="linearizability", seed=9)
    config = json.loads(run.config.read_text())
    config["name"] = HOSTILE[1]
    run.config.write_text(json.dumps(config))
    assert write_report(run) is None
    html = run.report.read_text()
    for bad in ("<img src=x", "<script>alert"):
        assert bad not in html
    assert "&lt;img src=x onerror=alert(2)&gt;" in html  # shown, escaped
    assert HOSTILE[0] in payload(html)["strings"]


def test_a_rendering_error_is_a_warning_and_never_changes_the_verdict(invalid_run, monkeypatch):
    def broken(*args):
        raise RuntimeError("template exploded")

    monkeypatch.setattr(report, "gather", broken)
    before = json.loads(invalid_run.results.read_text())
    assert render_report(invalid_run) == invalid_run.report
    after = json.loads(invalid_run.results.read_text())
    assert after["valid"] is before["valid"] is False
    warning = "report.html could not be rendered: RuntimeError: template exploded"
    assert after["warnings"] == [warning]
    page = invalid_run.report.read_text()
    assert "Verdict: invalid" in page and "template exploded" in page


def test_a_run_with_a_broken_history_and_no_results_still_gets_a_report(tmp_path):
    run = build_run(tmp_path)
    run.results.unlink()
    run.history.write_text('{"index": 0, "time": 1}\n')
    assert write_report(run) is None
    html = run.report.read_text()
    assert ">NOT CHECKED<" in html
    assert "the history cannot be read" in html and "missing field &#39;process&#39;" in html


def test_the_checkers_concurrent_calls_are_drawn_and_a_failure_without_an_op_renders(invalid_run):
    results = json.loads(invalid_run.results.read_text())
    failure = results["checkers"]["linearizable"]["failure"]
    failure["concurrent"] = [dict(failure["op"], invoke_index=10**6, f="write", value="other")]
    write_report(invalid_run, results)
    assert 'class="bar other"' in invalid_run.report.read_text()
    failure["op"] = None
    failure["reason"] = "no linearization found"
    assert write_report(invalid_run, results) is None
    html = invalid_run.report.read_text()
    assert 'id="failed-op"' not in html
    assert "could be ordered, no linearization found." in html


def test_log_lines_are_placed_in_time_by_their_leading_timestamp():
    from datetime import datetime

    from splitbrain.reports.nodes import line_time

    local = datetime(2026, 11, 27, 7, 32, 10, 909000).timestamp()
    assert line_time("2026-11-27 07:32:10,909 n1 INFO role follower") == local
    assert line_time("2026-11-27T07:32:10.909Z INFO x") == 1795764730.909
    assert line_time("2026-11-27T07:32:10.909+01:00 x") == 1795764730.909 - 3600
    assert line_time("1795764730.5 started") == 1795764730.5
    assert line_time("Traceback (most recent call last):") is None


def test_a_long_prefix_is_listed_from_its_end_and_points_to_results_json(invalid_run, monkeypatch):
    from splitbrain.reports import failure

    monkeypatch.setattr(failure, "MAX_LISTED", 30)
    write_report(invalid_run)
    html = invalid_run.report.read_text()
    total = len(json.loads(invalid_run.results.read_text())
                ["checkers"]["linearizable"]["failure"]["prefix"])
    assert f"the last 30 of {total} steps" in html
    full = html.split('class="steps"')[2]
    assert [int(i) for i in re.findall(r"<tr><td>(\d+)</td><td>", full)] == list(
        range(total - 29, total + 1))


def test_a_broken_node_invariant_is_explained_with_the_nodes_logs_around_it(valid_run):
    from splitbrain.checker.command import check_run

    events = [json.loads(line) for line in valid_run.node_events("n2").read_text().splitlines()]
    when = events[len(events) // 2]["time"]  # a moment the node logs cover
    lost = [{"time": when - 1, "event": "persisted", "term": 9, "vote": "n3", "commit": 0},
            {"time": when, "event": "start"},
            {"time": when, "event": "recovered", "term": 9, "vote": None, "commit": 0,
             "last": 0}]
    with valid_run.node_events("n2").open("a") as f:
        f.write("".join(json.dumps(e) + "\n" for e in lost))
    results = check_run(valid_run)
    assert results["checkers"]["log-agreement"]["valid"] is False
    write_report(valid_run, results)
    html = valid_run.report.read_text()
    message = "n2 had recorded its vote for n3 in term 9, then restarted without it"
    assert f"<li><b>lost-vote</b> {message}</li>" in html
    assert f"A node broke a Raft invariant: {message}." in html
    assert re.search(r"lines from \d\d:\d\d:\d\d\.\d{3} to \d\d:\d\d:\d\d\.\d{3} UTC", html)


def test_an_unsafe_commit_is_explained(valid_run):
    from splitbrain.checker.command import check_run
    from splitbrain.raft.events import term_runs
    from splitbrain.raft.messages import Entry

    nodes = valid_run.node_names()
    events = [json.loads(line) for node in nodes
              for line in valid_run.node_events(node).read_text().splitlines()]
    applied = sorted({(e["index"], e["term"]) for e in events if e["event"] == "apply"})
    runs = term_runs([Entry(term, index) for index, term in applied])
    end = max(e["time"] for e in events) + 1
    # After the run, every node stored what was applied; then n2 restarts with a log of a
    # later term than anyone's, without those entries.
    for node in nodes:
        with valid_run.node_events(node).open("a") as f:
            f.write(json.dumps({"time": end, "event": "stored", "first": 1,
                                "last": applied[-1][0], "terms": runs}) + "\n")
    with valid_run.node_events("n2").open("a") as f:
        f.write(json.dumps({"time": end + 1, "event": "start"}) + "\n")
        f.write(json.dumps({"time": end + 1, "event": "recovered", "term": 99, "vote": None,
                            "commit": 0, "last": 5, "terms": [[1, 99]]}) + "\n")
    results = check_run(valid_run)
    violations = results["checkers"]["log-agreement"]["violations"]
    assert [(v["kind"], v["node"], v["last_term"]) for v in violations] == [
        ("unsafe-commit", "n2", 99)], violations
    write_report(valid_run, results)
    html = valid_run.report.read_text()
    assert "An entry was committed that an election could still replace: n2" in html


def test_both_pages_allow_exactly_their_own_inline_styles_and_scripts(valid_run):
    """Issue 10 item 10: the CSP allowed 'unsafe-inline'; now each inline element is allowed
    by its SHA-256 and nothing else may run or load."""
    import base64
    import hashlib
    import re

    from splitbrain.reports import write_index

    write_report(valid_run)
    for page in (valid_run.report, write_index(valid_run.path.parent.parent)):
        html = page.read_text()
        policy = re.search(r'http-equiv="Content-Security-Policy" content="([^"]+)"', html)[1]
        assert "unsafe" not in policy and policy.startswith("default-src 'none'; ")
        allowed = {kind: set(re.findall(r"'sha256-([^']+)'", re.search(
            rf"{kind}-src ([^;]+)", policy)[1])) for kind in ("style", "script")}
        inline = {kind: {base64.b64encode(hashlib.sha256(body.encode()).digest()).decode()
                         for body in re.findall(rf"<{kind}>(.*?)</{kind}>", html, re.S)}
                  for kind in ("style", "script")}
        assert inline == allowed and all(inline.values())
        markup = re.sub(r"<(script|style)>.*?</\1>", "", html, flags=re.S)
        assert not re.search(r"<[^>]*\s(style|on[a-z]+)=", markup)  # attributes CSP would block


def test_a_read_answered_below_what_was_applied_is_explained(valid_run):
    from splitbrain.checker.command import check_run

    events = [json.loads(line) for line in valid_run.node_events("n1").read_text().splitlines()]
    end = max(e["time"] for e in events) + 1
    with valid_run.node_events("n1").open("a") as f:  # long after every apply, at index 0
        f.write(json.dumps({"time": end + 1, "event": "read", "asked": end, "term": 1,
                            "index": 0}) + "\n")
    results = check_run(valid_run)
    violations = results["checkers"]["log-agreement"]["violations"]
    assert [(v["kind"], v["node"], v["index"]) for v in violations] == [
        ("read-sees-applied", "n1", 0)], violations
    write_report(valid_run, results)
    html = valid_run.report.read_text()
    assert ("A read was answered from a view that may be stale: n1 answered a read at index 0"
            in html)
