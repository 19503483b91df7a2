"""Workloads: pure generators of client operations, the clients that perform them, a registry."""
