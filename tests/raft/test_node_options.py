"""`splitbrain node`'s options reach the parts of the node they configure."""

from __future__ import annotations

from pathlib import Path

from splitbrain.raft.command import parse
from splitbrain.raft.raft import MAX_MSG_ENTRIES, SNAPSHOT_CHUNK
from tests.raft.conn_fakes import built_server


def _argv(tmp_path: Path, *more: str) -> list[str]:
    return ["--id", "n1", "--cluster", "n1=127.0.0.1:1,n2=127.0.0.1:2", "--client-port", "3",
            "--data-dir", str(tmp_path / "data"), *more]  # fmt: skip


def test_message_sizes_default_to_the_core_s_and_reach_its_configuration(tmp_path):
    default = parse(_argv(tmp_path))
    assert (default.max_msg_entries, default.snapshot_chunk) == (MAX_MSG_ENTRIES, SNAPSHOT_CHUNK)
    config = parse(_argv(tmp_path, "--max-msg-entries", "2", "--snapshot-chunk=64"))
    assert (config.max_msg_entries, config.snapshot_chunk) == (2, 64)
    with built_server(tmp_path, max_msg_entries=2, snapshot_chunk=64) as server:
        core = server.node._raft.config
        assert (core.max_msg_entries, core.snapshot_chunk) == (2, 64)
