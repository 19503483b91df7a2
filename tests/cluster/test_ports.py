"""Node ports: distinct, free, and outside the kernel's ephemeral range."""

from __future__ import annotations

import random
import socket

from splitbrain.cluster.ports import HOST, ephemeral_start, free_ports


def test_ports_are_distinct_free_and_below_the_ephemeral_range() -> None:
    ports = free_ports(40)
    assert len(set(ports)) == 40
    start = ephemeral_start()
    if start is not None:
        assert all(p < start for p in ports)
    for p in ports:
        with socket.socket() as s:
            s.bind((HOST, p))


def test_a_taken_port_is_never_returned() -> None:
    first = free_ports(5, random.Random(3))
    with socket.socket() as taken:
        taken.bind((HOST, first[0]))
        # The same seed would pick the same port first: it must skip it now.
        assert first[0] not in free_ports(5, random.Random(3))
