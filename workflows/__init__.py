"""Temporal workflows: they orchestrate (deterministic, no I/O); activities and the domain do the work."""
