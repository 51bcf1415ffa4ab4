"""Traffic patterns (who sends to whom) and seeded value draws (flow sizes, start times).

A pattern returns (src, dst) node-id pairs in a canonical order; flow ids follow that order.
"""

from __future__ import annotations

import random
from itertools import accumulate


def permutation(endpoints: list[int], rng: random.Random) -> list[tuple[int, int]]:
    """Every endpoint sends to one other and receives from one: a uniformly random derangement."""
    if len(endpoints) < 2:
        raise ValueError(f"permutation needs >= 2 endpoints, the topology has {len(endpoints)}")
    targets = list(endpoints)
    while True:  # rejection: about e tries on average, each a uniform shuffle
        rng.shuffle(targets)
        if all(src != dst for src, dst in zip(endpoints, targets)):
            return list(zip(endpoints, targets))


def all_to_all(endpoints: list[int], rng: random.Random) -> list[tuple[int, int]]:
    """Every ordered pair of distinct endpoints."""
    return [(src, dst) for src in endpoints for dst in endpoints if src != dst]


def random_pairs(endpoints: list[int], rng: random.Random, *, count: int) -> list[tuple[int, int]]:
    """`count` pairs, each a uniform source and a uniform different destination."""
    if not isinstance(count, int) or isinstance(count, bool) or count < 1:
        raise ValueError(f"count(={count!r}) must be an integer >= 1")
    if len(endpoints) < 2:
        raise ValueError(f"random_pairs needs >= 2 endpoints, the topology has {len(endpoints)}")
    pairs = []
    for _ in range(count):
        src, dst = rng.sample(endpoints, 2)
        pairs.append((src, dst))
    return pairs


def incast(endpoints: list[int], rng: random.Random, *, senders: int | None = None, dst: int | None = None) -> list[tuple[int, int]]:
    """`senders` random endpoints (default: all others) send to one receiver (`dst`, default random)."""
    receiver = rng.choice(endpoints) if dst is None else dst
    others = [node for node in endpoints if node != receiver]
    if senders is None:
        senders = len(others)
    if not isinstance(senders, int) or isinstance(senders, bool) or not 1 <= senders <= len(others):
        raise ValueError(f"senders(={senders!r}) must be an integer between 1 and {len(others)} (the other endpoints)")
    return [(src, receiver) for src in sorted(rng.sample(others, senders))]


PATTERNS = {
    "permutation": permutation,
    "all_to_all": all_to_all,
    "random_pairs": random_pairs,
    "incast": incast,
}


def draw(spec: int | dict, count: int, rng: random.Random) -> list[int]:
    """`count` integers: a fixed value, or seeded draws from {dist = uniform | choice, ...}."""
    if isinstance(spec, int):
        return [spec] * count
    if spec["dist"] == "uniform":
        return [rng.randint(spec["min"], spec["max"]) for _ in range(count)]
    values, weights = spec["values"], spec.get("weights") or [1] * len(spec["values"])
    cumulative = list(accumulate(weights))
    return [values[_index(cumulative, rng.randrange(cumulative[-1]))] for _ in range(count)]


def _index(cumulative: list[int], ticket: int) -> int:
    """The first position whose cumulative weight exceeds the ticket (integers only, no floats)."""
    return next(i for i, bound in enumerate(cumulative) if ticket < bound)
