"""Hypothesis settings profiles, chosen by SIMOPT_GUARD_PROFILE (quick | standard | thorough)."""

from __future__ import annotations

import os

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
