"""The bundled system under test: a Raft key-value server.

Pure core (no sockets, clocks, disk, threads or global random): `messages`, `log`, `quorum`,
`progress`, `raft`, `rawnode`, `kv`. Runtime: `wal` (durable storage), `codec` (wire format),
`events` (events.jsonl), `crashpoints` (where an armed node kills itself), `server` (asyncio),
`client` (used by the workloads), `command` (`splitbrain node`), `local` (nodes as local
processes, for tests and benchmarks).
"""
