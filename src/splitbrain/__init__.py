"""splitbrain: Jepsen-style chaos testing for Raft.

The public vocabulary, used the same way everywhere in the code:

- *process*: one logical client thread of control; it performs one operation at a time. After an
  indeterminate (`info`) completion a process never invokes again; its worker carries on as a new
  process.
- *client*: the connection a process uses to talk to the cluster.
- *nemesis*: the special process that injects faults (partitions, kills, pauses, network faults).
- *history*: the ordered record of every invocation and completion (history.jsonl).
- *checker*: a pure function from a history (and node events) to a verdict.
"""

__version__ = "0.1.0"
