"""The statistics of a paired comparison: pure functions, lists in, numbers out.

A pair is one unit of work timed once per version; its log ratio d = ln(t_candidate / t_baseline)
is below 0 when the candidate is faster. The estimate is the median of d, with the
distribution-free sign-test confidence interval (docs/measurement.md explains the choices).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction
from typing import Sequence

ALPHA = 0.05  # error rate of a whole sequential decision, split evenly across its looks
LOOKS = 6  # looks at 1/32, 1/16, 1/8, 1/4, 1/2 and all of the time budget
MIN_PAIRS = 20
MAD_TO_SIGMA = 1.4826  # MAD of a normal sample times this estimates its standard deviation
MEDIAN_EFFICIENCY = math.sqrt(math.pi / 2)  # SE(median) = this * sigma / sqrt(n), normal data

VERDICTS = ("faster", "slower", "same", "inconclusive")


@dataclass(frozen=True)
class Decision:
    """The state of the evidence after one look."""

    verdict: str | None  # None: undecided, keep measuring
    pairs: int
    median: float | None
    ci: tuple[float, float] | None
    confidence: float | None


def log_ratios(baseline: Sequence[float], candidate: Sequence[float]) -> list[float]:
    """Per-pair d = ln(candidate / baseline); every time must be positive."""
    if len(baseline) != len(candidate):
        raise ValueError(f"pairs need as many baseline times (={len(baseline)}) as candidate times (={len(candidate)})")
    ratios = []
    for base, cand in zip(baseline, candidate):
        if base <= 0 or cand <= 0:
            raise ValueError(f"times must be > 0, got baseline={base} candidate={cand}")
        ratios.append(math.log(cand / base))
    return ratios


def median(values: Sequence[float]) -> float:
    """The median of a non-empty sample."""
    if not values:
        raise ValueError("the median of an empty sample is undefined")
    ordered = sorted(values)
    middle = len(ordered) // 2
    if len(ordered) % 2:
        return ordered[middle]
    return (ordered[middle - 1] + ordered[middle]) / 2


def mad(values: Sequence[float]) -> float:
    """The median absolute deviation from the median."""
    center = median(values)
    return median([abs(value - center) for value in values])


def sign_test_rank(n: int, alpha: float) -> int | None:
    """The largest k with P(Binomial(n, 1/2) <= k - 1) <= alpha / 2, or None when no k >= 1 fits.

    [x_(k), x_(n+1-k)] of the sorted sample then covers the median with probability >= 1 - alpha,
    whatever the distribution (continuous) of the sample.
    """
    if n < 1 or not 0 < alpha < 1:
        raise ValueError(f"need n(={n}) >= 1 and 0 < alpha(={alpha}) < 1")
    limit = Fraction(alpha) / 2 * 2**n  # compare exact integer tail sums against alpha/2 * 2^n
    term, tail, k = 1, 0, 0  # term = C(n, k); tail = sum of C(n, i) for i < k
    while k <= n // 2 and tail + term <= limit:
        tail += term
        term = term * (n - k) // (k + 1)
        k += 1
    return k if k >= 1 else None


def median_interval(values: Sequence[float], alpha: float) -> tuple[float, float] | None:
    """The sign-test (1 - alpha) confidence interval of the median, or None if n is too small."""
    k = sign_test_rank(len(values), alpha)
    if k is None:
        return None
    ordered = sorted(values)
    return ordered[k - 1], ordered[len(ordered) - k]


def confidence_score(values: Sequence[float]) -> float | None:
    """Effect over noise: |median d| over the robust standard error of the median; None at zero spread."""
    spread = mad(values)
    if spread == 0:
        return None
    standard_error = MEDIAN_EFFICIENCY * MAD_TO_SIGMA * spread / math.sqrt(len(values))
    return abs(median(values)) / standard_error


def look_alpha(alpha: float = ALPHA, looks: int = LOOKS) -> float:
    """The error rate each look may spend: Bonferroni, alpha split evenly across the looks."""
    return alpha / looks


def look_fractions(looks: int = LOOKS) -> list[float]:
    """The fractions of the time budget at which to look: 1/2^(looks-1), ..., 1/2, 1."""
    return [2.0 ** -(looks - 1 - index) for index in range(looks)]


def classify(ci: tuple[float, float], min_effect: float) -> str | None:
    """faster/slower when the whole interval is beyond -/+ min_effect, same when inside it, else None."""
    low, high = ci
    bound = math.log1p(min_effect)
    if high < -bound:
        return "faster"
    if low > bound:
        return "slower"
    if -bound < low and high < bound:
        return "same"
    return None


def decide(values: Sequence[float], *, min_effect: float, alpha: float, final: bool = False) -> Decision:
    """Judge the log ratios at one look; `final` turns an open question into `inconclusive`.

    Refuses to guess: fewer than MIN_PAIRS pairs or zero spread never give a verdict.
    """
    n = len(values)
    if n < MIN_PAIRS:
        return Decision("inconclusive" if final else None, n, median(values) if values else None, None, None)
    center = median(values)
    score = confidence_score(values)
    ci = median_interval(values, alpha)
    verdict = classify(ci, min_effect) if ci is not None and score is not None else None
    if verdict is None and final:
        verdict = "inconclusive"
    return Decision(verdict, n, center, ci, score)
