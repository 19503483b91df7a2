"""Test support shipped with the package: a simulated network for the Raft core, synthetic
history builders and run directories (runs.py)."""
