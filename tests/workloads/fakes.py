"""In-memory stand-ins for the cluster's client and the nemesis, for interpreter tests.

The fake store applies every operation atomically at one instant, so any history it produces is
linearizable; it also answers some operations `info` (applying them or not) and some `fail`.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Outcome:
    type: str
    value: Any = None
    error: str | None = None
    node: str | None = None
    request: str | None = None


class FakeStore:
    def __init__(self, seed: int = 0, info_rate: float = 0.05, fail_rate: float = 0.05) -> None:
        self.data: dict[str, Any] = {}
        self.rng = random.Random(seed)
        self.info_rate = info_rate
        self.fail_rate = fail_rate
        self.clients: list[FakeClient] = []
        self.available = True  # False: every op fails (no leader)

    def apply(self, f: str, key: str, value: Any) -> Outcome:
        cur = self.data.get(key)
        if f in ("read", "get"):
            return Outcome("ok", cur if f == "read" else (cur or ""))
        if f in ("write", "put"):
            self.data[key] = value
        elif f == "append":
            self.data[key] = (cur or "") + value
        elif f == "cas":
            if cur != value[0]:
                return Outcome("fail", error="cas-mismatch")
            self.data[key] = value[1]
        return Outcome("ok", value)


class FakeClient:
    def __init__(self, store: FakeStore, process: int, home: str) -> None:
        self.store, self.process, self.home = store, process, home
        self.seq = 0
        self.connected = False
        self.connections = 0  # opened lazily by invoke, after each close
        store.clients.append(self)

    async def invoke(self, f: str, key: str, value: Any) -> Outcome:
        if not self.connected:
            self.connected = True
            self.connections += 1
        await asyncio.sleep(0.001)
        self.seq += 1
        request = f"c{self.process}:{self.seq}"
        if not self.store.available:
            return Outcome("fail", error="no-leader", request=request)
        roll = self.store.rng.random()
        if roll < self.store.fail_rate:
            return Outcome("fail", error="not-leader", node=self.home, request=request)
        if roll < self.store.fail_rate + self.store.info_rate:
            if self.store.rng.random() < 0.5:
                self.store.apply(f, key, value)  # it happened, but we never learn so
            return Outcome("info", error="timeout", node=self.home, request=request)
        out = self.store.apply(f, key, value)
        return Outcome(out.type, out.value, out.error, self.home, request)

    async def close(self) -> None:
        self.connected = False


class FakeNemesis:
    """Records a fault every `interval` seconds and heals at the end."""

    def __init__(self, interval: float = 0.05) -> None:
        self.interval = interval
        self.active: list[str] = []
        self.healed = False

    async def run(self, record, stop: asyncio.Event) -> None:
        while not stop.is_set():
            if self.active:
                record("stop-partition", {"grudge": {}})
                self.active = []
            else:
                record("start-partition", {"grudge": {"n1": ["n2"]}, "kind": "one-way"})
                self.active = ["partition n1-/-n2"]
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.interval)

    async def heal_all(self, record) -> None:
        if self.active:
            record("stop-partition", {"grudge": {}})
        self.active = []
        self.healed = True

    def in_force(self) -> list[str]:
        return list(self.active)
