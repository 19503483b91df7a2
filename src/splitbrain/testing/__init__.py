"""Test support shipped with the package: a simulated network for the Raft core, history builders."""
