"""Workload builders: topologies, traffic and failure schedules for scenario instances.

This is harness code (protected): the simulator only ever receives the plain-data instance
built here, so an optimization of the simulator can never shrink the workload. All randomness
comes from per-component generators derived from the scenario seed (see `rng.py`).
"""
