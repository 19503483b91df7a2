"""The command registry: usage errors exit 64 (DESIGN.md), help works without importing all."""

from __future__ import annotations

import subprocess
import sys

import pytest

from splitbrain.cli import main


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
