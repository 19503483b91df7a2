"""`splitbrain check`: files of every format, directories, run directories, exit codes."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

import splitbrain
from splitbrain.checker.command import check_run
from splitbrain.cli import main
from splitbrain.store import RunDir
from splitbrain.testing.runs import build_run
from tests.checker.corpus import CORPUS, needs_corpus

EXAMPLE = Path(splitbrain.__file__).parent / "examples" / "history.jsonl"


def test_bundled_example_is_valid(capsys):
    assert main(["check", str(EXAMPLE)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith(f"{EXAMPLE}: valid (10 calls, 2 keys, cas-register")
    assert out[-1] == "checked 1: 1 valid, 0 invalid, 0 unknown, 0 could not be read"


@needs_corpus
def test_several_formats_and_a_directory(tmp_path, capsys):
    shutil.copy(CORPUS / "kv" / "c01-ok.txt", tmp_path / "a.txt")
    shutil.copy(CORPUS / "jepsen" / "etcd_002.log", tmp_path / "b.log")
    code = main(["check", str(CORPUS / "jepsen" / "etcd_000.log"), str(tmp_path), str(EXAMPLE)])
    assert code == 1  # the worst verdict: etcd_000 is not linearizable
    lines = capsys.readouterr().out.splitlines()
    verdicts = [line for line in lines if not line.startswith("    ")]
    assert [v.split(": ")[1].split(" ")[0] for v in verdicts[:-1]] == [
        "INVALID", "valid", "valid", "valid"]
    assert "can't read 2 from register 0" in verdicts[0]
    assert verdicts[-1] == "checked 4: 3 valid, 1 invalid, 0 unknown, 0 could not be read"


@needs_corpus
def test_json_output(capsys):
    assert main(["check", "--json", str(CORPUS / "kv" / "c10-bad.txt")]) == 1
    doc = json.loads(capsys.readouterr().out)
    assert doc["exit_code"] == 1
    result = doc["files"][0]["result"]
    assert result["valid"] is False and result["failure"]["key"] == "0"


def test_malformed_file_is_one_line_naming_file_and_line(tmp_path, capsys):
    bad = tmp_path / "history.jsonl"
    bad.write_text('{"index": 0, "time": 0, "process": 0, "type": "ok", "f": "read"}\n')
    assert main(["check", str(bad), str(EXAMPLE)]) == 3
    out = capsys.readouterr().out.splitlines()
    assert out[0] == f"{bad}: error: {bad}:1: ok for process 0 with no open invoke"
    assert "Traceback" not in "".join(out)


@pytest.mark.parametrize("argv", [
    ["check"],
    ["check", "/no/such/path"],
    ["check", "--model", "nope", "x"],
    ["check", "--time-limit", "0", "x"],
])
def test_usage_errors_exit_64(argv, tmp_path, capsys):
    if argv[-1] == "x":
        argv[-1] = str(EXAMPLE)
    with pytest.raises(SystemExit) as exit_:
        code = main(argv)
        raise SystemExit(code)
    assert exit_.value.code == 64


def test_options_reach_the_checker(tmp_path, capsys):
    path = tmp_path / "h.jsonl"
    lines = [{"index": 0, "time": 0, "process": 0, "type": "invoke", "f": "read", "value": None},
             {"index": 1, "time": 1, "process": 0, "type": "ok", "f": "read", "value": 0}]
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    assert main(["check", str(path)]) == 1
    assert main(["check", "--initial", "0", str(path)]) == 0
    assert main(["check", "--model", "cas-register", "--initial", "1", str(path)]) == 1


def test_run_directory_gets_every_checker_and_results_json(tmp_path, capsys):
    run = build_run(tmp_path, calls=150, seed=3)
    run.results.unlink()
    assert main(["check", str(run.path)]) == 0
    results = json.loads(run.results.read_text())
    assert results["valid"] is True
    assert set(results["checkers"]) == {"linearizable", "log-agreement", "stats", "restarts"}
    assert results["checkers"]["linearizable"]["model"] == "cas-register"
    assert results["checkers"]["log-agreement"]["nodes"] == ["n1", "n2", "n3"]
    assert results["checkers"]["stats"]["fault_windows"]


def test_run_with_a_linearizability_failure(tmp_path):
    run = build_run(tmp_path, calls=150, seed=4, failure="linearizability")
    results = check_run(run)
    assert results["valid"] is False
    failure = results["checkers"]["linearizable"]["failure"]
    assert failure["op"]["output"] == 999_999
    assert results["cause"].startswith("linearizable: key ")
    assert json.loads(run.results.read_text())["valid"] is False


def test_run_with_divergent_logs(tmp_path):
    run = build_run(tmp_path, calls=150, seed=5, failure="divergence")
    results = check_run(run)
    assert results["valid"] is False
    assert results["checkers"]["linearizable"]["valid"] is True
    kinds = {v["kind"] for v in results["checkers"]["log-agreement"]["violations"]}
    assert kinds == {"divergent-entry"}


def test_run_whose_driver_was_killed(tmp_path):
    run = build_run(tmp_path, calls=150, seed=6, open_tail=3)
    with run.history.open("a") as f:
        f.write('{"index": 999, "time": 1')  # torn last line
    with run.node_events("n2").open("a") as f:
        f.write('{"time": 1, "event": "ap')  # torn node event
    results = check_run(run, time_limit=10)
    assert results["valid"] is True
    assert any("torn last line" in w for w in results["warnings"])
    assert len(results["warnings"]) == 2


def test_directory_of_runs(tmp_path, capsys):
    build_run(tmp_path / "runs", calls=80, seed=7)
    build_run(tmp_path / "runs", name="other", calls=80, seed=8, failure="linearizability")
    assert main(["check", str(tmp_path / "runs")]) == 1
    out = capsys.readouterr().out
    assert out.count(": valid") == 1 and out.count(": INVALID") == 1
    assert RunDir(next((tmp_path / "runs" / "other").iterdir())).results.is_file()


def test_a_checker_the_target_cannot_feed_is_not_run_and_said_so(tmp_path, capsys):
    run = build_run(tmp_path, calls=60)
    config = run.read_json(run.config)
    run.write_json(run.config, {**config, "target_name": "kvd", "target_capabilities": ["leader"]})
    assert main(["check", str(run.path)]) == 0  # valid: not-run neither passes nor fails it
    results = json.loads(run.results.read_text())
    assert results["valid"] is True
    assert results["checkers"]["log-agreement"] == {
        "valid": "not-run", "reason": "target kvd writes no node events (events.jsonl)"}
    line = capsys.readouterr().out.splitlines()[0]
    assert line.startswith(f"{run.path}: valid (linearizable; restarts; log-agreement not run: "
                           "target kvd writes no node events (events.jsonl)) (")

    from splitbrain.reports import render_report

    render_report(run, results)
    assert "Not run: target kvd writes no node events (events.jsonl)." in run.report.read_text()


@pytest.mark.parametrize(("value", "problem"), [
    ("NaN", "NaN is not allowed"),
    ("Infinity", "Infinity is not allowed"),
    ("-Infinity", "-Infinity is not allowed"),
    ("1e999", "too large for a float"),
    ("9" * 4301, "4300 digits"),
    ("[" * 900 + "]" * 900, "nested more than 100 deep"),
    ("[" * 100_000 + "]" * 100_000, "nested too deeply"),
])
def test_values_that_cannot_be_compared_exit_3_naming_file_and_line(tmp_path, capsys, value,
                                                                    problem):
    """A write NaN / read NaN pair was reported INVALID, deep or huge values crashed the
    checker ("unknown - checker crashed"): now each is bad input, exit 3, file:line."""
    bad = tmp_path / "history.jsonl"
    lines = [{"index": 0, "time": 0, "process": 0, "type": "invoke", "f": "write", "value": 1},
             {"index": 1, "time": 1, "process": 0, "type": "ok", "f": "write", "value": 1}]
    text = "\n".join(json.dumps(line) for line in lines)
    text += ('\n{"index": 2, "time": 2, "process": 1, "type": "invoke", "f": "write", '
             f'"value": {value}}}\n')
    bad.write_text(text)
    assert main(["check", str(bad)]) == 3
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith(f"{bad}: error: {bad}:3: ")
    assert problem in out[0]
    assert "crashed" not in out[0]


def test_edn_under_knossos_semantics_reads_nil_as_unknown(tmp_path, capsys):
    """Jepsen's independent [key value] tuples are unpacked; with --fail-means-no-effect an ok
    read of nil matches any value (Knossos), and the output says so."""
    edn = tmp_path / "h.edn"
    edn.write_text("\n".join([
        "{:type :invoke, :f :write, :value [1 3], :process 0}",
        "{:type :ok, :f :write, :value [1 3], :process 0}",
        "{:type :invoke, :f :read, :value [1 nil], :process 1}",
        "{:type :ok, :f :read, :value [1 nil], :process 1}",
        "{:type :invoke, :f :cas, :value [2 [0 4]], :process 0}",
        "{:type :ok, :f :cas, :value [2 [0 4]], :process 0}",
    ]))
    assert main(["check", "--initial", "0", str(edn)]) == 1  # nil is a value by default
    assert "key 1: can't read null from register 3" in capsys.readouterr().out
    assert main(["check", "--initial", "0", "--fail-means-no-effect", str(edn)]) == 0
    out = capsys.readouterr().out
    assert "2 keys" in out and "an ok read of nil matches any value (1 such reads)" in out


def test_a_null_read_in_history_jsonl_is_still_no_value(tmp_path, capsys):
    path = tmp_path / "history.jsonl"
    ops = [("invoke", "write", 3), ("ok", "write", 3), ("invoke", "read", None),
           ("ok", "read", None)]
    path.write_text("".join(json.dumps({"index": i, "time": i, "process": 0, "type": t, "f": f,
                                        "value": v}) + "\n" for i, (t, f, v) in enumerate(ops)))
    assert main(["check", "--fail-means-no-effect", str(path)]) == 1
    assert "can't read null from register 3" in capsys.readouterr().out


def test_json_output_names_the_engine(capsys):
    assert main(["check", "--json", str(EXAMPLE)]) == 0
    result = json.loads(capsys.readouterr().out)["files"][0]["result"]
    assert result["engine"] in ("compiled", "python")


def history_lines(*calls) -> str:
    """history.jsonl text: each call is (f, key, value, type, output) for process 0, in order."""
    lines, t = [], 0
    for f, key, value, type_, output in calls:
        for kind, v in (("invoke", value), (type_, output)):
            lines.append(json.dumps({"index": len(lines), "time": t, "process": 0, "type": kind,
                                     "f": f, "key": key, "value": v}))
            t += 10
    return "\n".join(lines) + "\n"


def test_a_key_that_cannot_be_printed_is_escaped(tmp_path, capsys):
    """Issue 10 item 8: a lone surrogate in a key made the printing crash (exit 1)."""
    path = tmp_path / "h.jsonl"
    path.write_text(history_lines(("write", "\ud800", 1, "ok", 1),
                                  ("read", "\ud800", None, "ok", 2)))
    assert main(["check", str(path)]) == 1
    out = capsys.readouterr().out
    assert "    key \\ud800\n" in out and "can't read 2" in out


def test_a_single_torn_line_is_mentioned_without_json(tmp_path, capsys):
    path = tmp_path / "h.jsonl"
    path.write_text('{"index": 0, "time": 0, "process": 0, "type": "invoke", "f": "re')
    assert main(["check", str(path)]) == 2
    out = capsys.readouterr().out.splitlines()
    assert out[0] == f"{path}: unknown - no client operations to check (0 calls, 0 keys, register)"
    assert out[1].startswith("    warning: ") and "torn" in out[1] and ":1" in out[1]


@pytest.mark.parametrize("calls, cause", [
    ([("read", "k", None, "fail", None), ("write", "k", 1, "info", None)],
     "no operation succeeded (2 calls): nothing could be checked"),
    ([("write", "k", 1, "ok", 1), ("write", "k", 2, "ok", 2), ("read", "k", None, "fail", None)],
     "no read succeeded (2 writes did): writes alone cannot show a violation"),
])
def test_a_history_in_which_nothing_was_observed_proves_nothing(tmp_path, calls, cause, capsys):
    """Issue 10 item 9: `--op-timeout 0` made every op fail and the run was 'valid'."""
    path = tmp_path / "h.jsonl"
    path.write_text(history_lines(*calls))
    assert main(["check", str(path)]) == 2
    assert f"unknown - {cause}" in capsys.readouterr().out


def test_devices_and_fifos_are_could_not_read_and_never_opened(tmp_path):
    """Issue 10 item 8: /dev/null was a traceback read as INVALID, a FIFO hung."""
    import os
    import subprocess
    import sys

    os.mkfifo(tmp_path / "pipe")
    runs = tmp_path / "runs"
    runs.mkdir()
    os.mkfifo(runs / "stuck.jsonl")
    shutil.copy(EXAMPLE, runs / "good.jsonl")
    cmd = [sys.executable, "-m", "splitbrain", "check", "/dev/null", str(tmp_path / "pipe"),
           str(runs)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 3, proc.stdout + proc.stderr
    assert proc.stdout.splitlines() == [
        "/dev/null: error: /dev/null: not a history file: a character device",
        f"{tmp_path / 'pipe'}: error: {tmp_path / 'pipe'}: not a history file: a FIFO",
        proc.stdout.splitlines()[2],
        f"{runs / 'stuck.jsonl'}: error: {runs / 'stuck.jsonl'}: not a history file: a FIFO",
        "checked 4: 1 valid, 0 invalid, 0 unknown, 3 could not be read",
    ]
    assert proc.stdout.splitlines()[2].startswith(f"{runs / 'good.jsonl'}: valid")
    assert proc.stderr == ""
