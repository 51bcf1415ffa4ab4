"""Seeded random link failure and recovery schedules."""

from __future__ import annotations

import random

from simopt.workload.traffic import draw


def random_failures(
    links: list[tuple[int, int]],
    rng: random.Random,
    *,
    count: int,
    start_ns: int,
    end_ns: int,
    down_ns: int | dict | None = None,
) -> list[dict]:
    """Fail `count` distinct links at uniform times in [start_ns, end_ns); recover each `down_ns` later, if set."""
    if not 1 <= count <= len(links):
        raise ValueError(f"count(={count}) must be between 1 and the number of candidate links ({len(links)})")
    if end_ns <= start_ns:
        raise ValueError(f"end_ns(={end_ns}) must be > start_ns(={start_ns})")
    chosen = rng.sample(range(len(links)), count)
    times = [rng.randrange(start_ns, end_ns) for _ in chosen]
    downs = draw(down_ns, count, rng) if down_ns is not None else [None] * count
    events = []
    for index, time_ns, down in zip(chosen, times, downs):
        a, b = links[index]
        events.append({"time_ns": time_ns, "a": a, "b": b, "action": "fail"})
        if down is not None:
            events.append({"time_ns": time_ns + down, "a": a, "b": b, "action": "recover"})
    return events
