"""Checkers: models, the linearizability search, per-key partitioning, log agreement, stats."""
