"""Hypothesis settings profiles, chosen by SIMOPT_GUARD_PROFILE (quick | standard | thorough)."""

from __future__ import annotations

import hashlib
import os
import secrets

from hypothesis import HealthCheck, settings

SCALE = {"quick": 0.25, "standard": 1.0, "thorough": 5.0}  # of every guard's standard example budget
SHRINK_SECONDS = {"quick": 5, "standard": 10, "thorough": 60}  # per failing guard

for _name in SCALE:
    settings.register_profile(
        _name, deadline=None, database=None, derandomize=False, print_blob=False,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
    )


def active() -> str:
    """The profile named by SIMOPT_GUARD_PROFILE (default standard); ValueError for an unknown one."""
    name = os.environ.get("SIMOPT_GUARD_PROFILE", "standard")
    if name not in SCALE:
        raise ValueError(f"SIMOPT_GUARD_PROFILE(={name!r}) must be one of {', '.join(SCALE)}")
    return name


def examples(standard: int, **overrides) -> settings:
    """Settings for a guard that runs `standard` examples in the standard profile, scaled by profile."""
    return settings(max_examples=max(1, round(standard * SCALE[active()])), **overrides)


def thorough() -> bool:
    """Whether the thorough profile is active (FatTree k=8, larger budgets)."""
    return active() == "thorough"


_run_seed: int = secrets.randbelow(2**32)  # replaced by the run's --hypothesis-seed (guards/plugin.py)


def set_run_seed(seed: object) -> None:
    """Use the run's hypothesis seed (`--hypothesis-seed`, any text) for `salted`; None keeps a random one."""
    global _run_seed
    if seed is not None:
        text = str(seed)
        _run_seed = int(text) if text.isdigit() else int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big")


def salted(value: int) -> int:
    """`value` mixed with the run's seed: a seed drawn by hypothesis that differs run to run.

    Hypothesis makes its first example of a test the simplest one (a drawn seed of 0), so a guard
    with one example would build the same instance every run; mixing in the run's seed (printed,
    and given back with --seed) keeps each run fresh and reproducible.
    """
    from guards.oracle import splitmix64

    return splitmix64((value ^ (_run_seed * 0x9E3779B97F4A7C15)) & ((1 << 64) - 1))
