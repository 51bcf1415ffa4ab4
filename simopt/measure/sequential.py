"""The sequential decision: collect pairs, look at growing counts, stop at the first verdict.

Shared by the scenario comparison (lockstep slices in workers) and the generic command
comparison (whole process runs): both hand it a function that measures one more pair.
"""

from __future__ import annotations

import math
import time
from dataclasses import replace
from typing import Callable, Sequence

from simopt.measure.stats import ALPHA, Decision, decide, look_alpha, look_fractions

NextPair = Callable[[], "tuple[float, float] | None"]  # (baseline, candidate) times, or None: not a pair
Progress = Callable[[float, int], None]  # (elapsed seconds, pairs so far)
Judge = Callable[[list, float, bool], Decision]  # (pooled log ratios, look alpha, final) -> decision


def run_sequential(
    next_pair: NextPair,
    *,
    max_seconds: float,
    min_effect: float,
    progress: Progress | None = None,
    confirm: Callable[[str], bool] | None = None,
    started: float | None = None,
    clock: Callable[[], float] = time.monotonic,
    judge: Judge | None = None,
    looks: Sequence[tuple[float, float]] | None = None,
) -> tuple[Decision, list[float]]:
    """Measure pairs until a look gives a verdict or the budget is spent; return it and the log ratios.

    Looks happen at fixed fractions of the budget, counted from `started` (default: now); when
    several are due at once they count as one, which only lowers the error rate spent. `looks`
    gives (fraction of the budget, error rate spent) per look, default: ALPHA split evenly across
    look_fractions(). `judge` (default: the pooled sign-test `decide`) turns the evidence into a
    decision at each look. A `faster` or `slower` verdict stands only if
    `confirm(verdict)` agrees; otherwise measuring goes on, and at the budget the verdict is
    `inconclusive`.
    """
    if max_seconds <= 0 or min_effect <= 0:
        raise ValueError(f"max_seconds(={max_seconds}) and min_effect(={min_effect}) must be > 0")
    start = clock() if started is None else started
    if looks is None:
        looks = [(fraction, look_alpha()) for fraction in look_fractions()]
    if sum(alpha for _, alpha in looks) > ALPHA + 1e-12:
        raise ValueError(f"the looks spend more than alpha(={ALPHA})")
    looks_at = [(fraction * max_seconds, alpha) for fraction, alpha in looks]
    if judge is None:
        def judge(values: list, look: float, final: bool) -> Decision:
            return decide(values, min_effect=min_effect, alpha=look, final=final)
    ratios: list[float] = []
    while True:
        pair = next_pair()
        if pair is not None:
            baseline, candidate = pair
            ratios.append(math.log(candidate / baseline))
        elapsed = clock() - start
        if progress is not None:
            progress(elapsed, len(ratios))
        if elapsed < looks_at[0][0]:
            continue
        while len(looks_at) > 1 and elapsed >= looks_at[1][0]:
            looks_at.pop(0)
        final = len(looks_at) == 1
        decision = judge(ratios, looks_at[0][1], final)
        if decision.verdict in ("faster", "slower") and confirm is not None and not confirm(decision.verdict):
            decision = replace(decision, verdict="inconclusive" if final else None)
        if decision.verdict is not None:
            return decision, ratios
        looks_at.pop(0)
