"""Faults: pure plans (grudges, schedules) and the one component that applies them."""
