"""Per-component random generators derived from one scenario seed."""

from __future__ import annotations

import hashlib
import random


def derive_seed(seed: int, component: str) -> int:
    """A 64-bit sub-seed for `component`, stable across processes and machines."""
    digest = hashlib.sha256(f"{seed}:{component}".encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big")


def component_rng(seed: int, component: str) -> random.Random:
    """A generator of its own for one component, so components never share a stream."""
    return random.Random(derive_seed(seed, component))
