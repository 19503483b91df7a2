"""The bundled system under test: a Raft key-value server.

Pure core (no sockets, clocks, disk, threads or global random): `messages`, `log`, `raft`,
`rawnode`, `kv`. Runtime: `wal` (durable storage), `codec` (wire format), `server` (asyncio),
`client` (used by the workloads), `command` (`splitbrain node`).
"""
