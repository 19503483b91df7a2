"""Skip conditions for tests that need root, namespaces or a system installed (CI has them)."""

from __future__ import annotations

import shutil

import pytest

from splitbrain.cluster import netns

NETNS_MISSING = netns.missing()
needs_netns = pytest.mark.skipif(NETNS_MISSING is not None,
                                 reason=f"netns mode cannot run here: {NETNS_MISSING}")
needs_etcd = pytest.mark.skipif(shutil.which("etcd") is None,
                                reason="etcd is not installed (Debian: etcd-server)")


def leftovers(rid: str) -> dict[str, list[str]]:
    """What of run `rid` is still there: namespaces, links and nftables tables of the root
    namespace named with it, and processes in its namespaces."""
    import subprocess

    ip, nft = netns.tool("ip"), netns.tool("nft")
    assert ip and nft
    names = [n for n in netns.list_namespaces() if n.startswith(f"sb-{rid}-")]
    links = subprocess.run([ip, "-o", "link"], capture_output=True, text=True).stdout
    tables = subprocess.run([nft, "list", "tables"], capture_output=True, text=True).stdout
    pids = [p for n in names for p in subprocess.run(
        [ip, "netns", "pids", n], capture_output=True, text=True).stdout.split()]
    return {"namespaces": names,
            "links": [line for line in links.splitlines() if f"sb{rid}" in line],
            "tables": [line for line in tables.splitlines() if rid in line],
            "processes": pids}
