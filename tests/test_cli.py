"""The command registry: usage errors exit 64 (DESIGN.md), help works without importing all;
whatever goes wrong inside a command, the exit code is 3 with one line and a file holding the
traceback, never 1 (which means INVALID to a CI gate)."""

from __future__ import annotations

import importlib
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from splitbrain.cli import COMMANDS, main


def test_no_command_is_a_usage_error(capsys):
    assert main([]) == 64
    assert "COMMAND" in capsys.readouterr().err


def test_unknown_command_exits_64():
    with pytest.raises(SystemExit) as exc:
        main(["frobnicate"])
    assert exc.value.code == 64


def test_version_runs_as_a_module():
    out = subprocess.run([sys.executable, "-m", "splitbrain", "--version"], capture_output=True,
                         text=True, timeout=60, check=True)
    assert out.stdout.startswith("splitbrain ")


ARGV = {
    "run": ["run"],
    "check": ["check", "x"],
    "report": ["report", "x"],
    "campaign": ["campaign"],
    "sim": ["sim", "--seed", "1"],
    "serve": ["serve"],
    "clean": ["clean"],
    "node": ["node", "--id", "n1", "--cluster", "n1=127.0.0.1:1", "--client-port", "2",
             "--data-dir", "d"],
}


def test_every_command_is_covered():
    assert set(ARGV) == set(COMMANDS)


@pytest.mark.parametrize("command", sorted(ARGV))
def test_an_unexpected_error_exits_3_with_one_line_and_the_traceback_in_a_file(
        command, monkeypatch, capsys):
    """Issue 10 item 7: the failure is injected into the command's run()."""

    def broken(args):
        raise RuntimeError("injected failure")

    module = importlib.import_module(COMMANDS[command][0])
    monkeypatch.setattr(module, "run", broken)
    assert main(ARGV[command]) == 3
    err = capsys.readouterr().err
    match = re.fullmatch(rf"splitbrain {command}: internal error: RuntimeError: injected "
                         r"failure \(traceback in (\S+)\)\n", err)
    assert match, err
    path = Path(match.group(1))
    try:
        text = path.read_text()
        assert text.startswith("Traceback") and "raise RuntimeError" in text
    finally:
        path.unlink()


def test_ctrl_c_is_could_not_run(monkeypatch, capsys):
    def interrupted(args):
        raise KeyboardInterrupt

    monkeypatch.setattr(importlib.import_module("splitbrain.checker.command"), "run", interrupted)
    assert main(["check", "x"]) == 3
    assert capsys.readouterr().err == "splitbrain check: interrupted\n"


def test_check_ends_at_once_with_all_its_output_and_main_with_arguments_returns(tmp_path):
    """`check` sets EXIT_AT_ONCE: the program flushes and skips the interpreter's teardown; its
    whole output still arrives through a pipe, with the exit code. Called with arguments, main
    returns (this test goes on)."""
    history = tmp_path / "h.jsonl"
    lines = []
    for i in range(300):
        t = 2 * i
        lines.append({"index": t, "time": t, "process": 0, "type": "invoke", "f": "write",
                      "key": f"k{i}", "value": i})
        lines.append({"index": t + 1, "time": t + 1, "process": 0, "type": "ok", "f": "write",
                      "key": f"k{i}", "value": i})
    lines.append({"index": 600, "time": 600, "process": 0, "type": "invoke", "f": "read",
                  "key": "k0", "value": None})
    lines.append({"index": 601, "time": 601, "process": 0, "type": "ok", "f": "read",
                  "key": "k0", "value": 0})
    history.write_text("".join(json.dumps(line) + "\n" for line in lines))
    assert importlib.import_module(COMMANDS["check"][0]).EXIT_AT_ONCE
    out = subprocess.run([sys.executable, "-m", "splitbrain", "check", "--json", str(history)],
                         capture_output=True, text=True, timeout=60)  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["files"][0]["result"]["valid"] is True
    assert main(["check", str(history)]) == 0


def test_output_closed_by_its_reader_stops_with_one_line_and_exit_3(tmp_path):
    """`splitbrain sim --seeds N | head`: the reader goes away; the command says so and exits 3,
    with no traceback (nothing inside failed) and no error from the final flush."""
    proc = subprocess.Popen([sys.executable, "-m", "splitbrain", "sim", "--seeds", "20",
                             "--time-limit", "0.5", "--out", str(tmp_path)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
    proc.stdout.close()
    try:
        _, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
    text = err.decode()
    assert proc.returncode == 3, text
    assert text.endswith("splitbrain sim: stopped: its output was closed (broken pipe)\n"), text
    assert "Traceback" not in text and "internal error" not in text, text
