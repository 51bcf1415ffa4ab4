"""The statistics of a paired comparison: pure functions, lists in, numbers out.

A pair is one unit of work timed once per version; its log ratio d = ln(t_candidate / t_baseline)
is below 0 when the candidate is faster. Pooled pairs: the median of d with the distribution-free
sign-test interval. Lanes (independent worker pairs, each a median of its own pairs): the mean of
the lane medians with a Student t interval (docs/measurement.md explains the choices).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction
from typing import Sequence

ALPHA = 0.05  # error rate of a whole sequential decision, split evenly across its looks
LOOKS = 6  # looks at 1/32, 1/16, 1/8, 1/4, 1/2 and all of the time budget
MIN_PAIRS = 20
MIN_LANES = 4  # fewer lane medians than this never give a verdict
LANE_TRIM = 0.2  # share of lane medians trimmed from each end before averaging
MAD_TO_SIGMA = 1.4826  # MAD of a normal sample times this estimates its standard deviation
MEDIAN_EFFICIENCY = math.sqrt(math.pi / 2)  # SE(median) = this * sigma / sqrt(n), normal data

VERDICTS = ("faster", "slower", "same", "inconclusive", "not-faster")


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


def median_standard_error(values: Sequence[float]) -> float:
    """The robust standard error of the median: sqrt(pi/2) * 1.4826 * MAD / sqrt(n)."""
    return MEDIAN_EFFICIENCY * MAD_TO_SIGMA * mad(values) / math.sqrt(len(values))


def confidence_score(values: Sequence[float]) -> float | None:
    """Effect over noise: |median d| over the robust standard error of the median; None at zero spread."""
    standard_error = median_standard_error(values)
    if standard_error == 0:
        return None
    return abs(median(values)) / standard_error


def student_t_cdf(t: float, df: int) -> float:
    """P(T <= t) for Student's t with `df` degrees of freedom (exact finite series, integer df)."""
    if df < 1:
        raise ValueError(f"df(={df}) must be >= 1")
    theta = math.atan(abs(t) / math.sqrt(df))
    cos2 = math.cos(theta) ** 2
    if df % 2:  # odd: (2/pi) (theta + sin cos (1 + 2/3 cos^2 + 2*4/(3*5) cos^4 + ...))
        term, series = 1.0, 1.0 if df > 1 else 0.0
        for k in range(1, (df - 1) // 2):
            term *= 2 * k / (2 * k + 1) * cos2
            series += term
        inside = 2 / math.pi * (theta + math.sin(theta) * math.cos(theta) * series)
    else:  # even: sin (1 + 1/2 cos^2 + 1*3/(2*4) cos^4 + ...)
        term, series = 1.0, 1.0
        for k in range(1, df // 2):
            term *= (2 * k - 1) / (2 * k) * cos2
            series += term
        inside = math.sin(theta) * series
    return 0.5 + math.copysign(inside / 2, t)


def student_t_quantile(p: float, df: int) -> float:
    """The t with P(T <= t) = p, by bisection on student_t_cdf (accurate to 1e-9)."""
    if not 0 < p < 1:
        raise ValueError(f"p(={p}) must be in (0, 1)")
    if p < 0.5:
        return -student_t_quantile(1 - p, df)
    low, high = 0.0, 1.0
    while student_t_cdf(high, df) < p:
        low, high = high, high * 2
    while high - low > 1e-9:
        middle = (low + high) / 2
        low, high = (middle, high) if student_t_cdf(middle, df) < p else (low, middle)
    return (low + high) / 2


def trimmed_mean(values: Sequence[float], trim: float) -> tuple[float, float, int] | None:
    """The trimmed mean, its Tukey-McLaughlin standard error and degrees of freedom.

    g = floor(trim * n) values are cut from each end (h = n - 2g remain); the standard error is
    sqrt((n - 1) s_w^2 / (h (h - 1))) with s_w^2 the winsorized variance, on h - 1 degrees of
    freedom (Yuen's interval). trim = 0 gives the plain mean and its t standard error.
    None when h < 2 or at zero spread.
    """
    n = len(values)
    cut = math.floor(trim * n)
    kept = n - 2 * cut
    if kept < 2:
        return None
    ordered = sorted(values)
    if ordered[cut] == ordered[n - 1 - cut]:
        return None  # the kept values are all equal: zero spread
    center = sum(ordered[cut:n - cut]) / kept
    winsorized = [min(max(value, ordered[cut]), ordered[n - 1 - cut]) for value in ordered]
    level = sum(winsorized) / n
    variance = sum((value - level) ** 2 for value in winsorized) / (n - 1)
    return center, math.sqrt((n - 1) * variance / (kept * (kept - 1))), kept - 1


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


def decide_lanes(lane_medians: Sequence[float], *, pairs: int, min_effect: float, alpha: float,
                 final: bool = False, futility_alpha: float | None = None) -> Decision:
    """Judge the per-lane median log ratios at one look: 20% trimmed mean, its t interval, verdict.

    A lane is one independent worker pair, so per-process effects (memory layout, hash seed, the
    load while it ran) vary between lanes and the interval over lanes includes them; pooled
    pairs would not. Trimming keeps one freak lane from deciding alone. Refuses to guess below
    MIN_LANES lanes or at zero spread. The confidence is the estimate over its standard error.

    `alpha` 0 is a look that may not give any of the four verdicts. With `futility_alpha`, a
    look (not the final one) without a verdict ends in `not-faster` when the interval at
    `futility_alpha` lies wholly above -ln(1 + min_effect): the candidate cannot be kept, so a
    caller that only keeps `faster` can stop. That never adds a `faster`, so it costs nothing in
    false keeps; it can only lose true speedups, which the calibration measures.
    """
    estimate = trimmed_mean(lane_medians, LANE_TRIM) if len(lane_medians) >= MIN_LANES else None
    if estimate is None:
        center = median(lane_medians) if lane_medians else None
        return Decision("inconclusive" if final else None, pairs, center, None, None)
    center, standard_error, df = estimate
    confidence = abs(center) / standard_error

    def interval(level: float) -> tuple[float, float]:
        half = student_t_quantile(1 - level / 2, df) * standard_error
        return center - half, center + half

    ci = interval(alpha) if alpha > 0 else None
    verdict = classify(ci, min_effect) if ci else None
    if verdict is None and futility_alpha and not final:
        futile = interval(futility_alpha)
        if futile[0] > -math.log1p(min_effect):
            return Decision("not-faster", pairs, center, futile, confidence)
    if verdict is None and final:
        verdict = "inconclusive"
    return Decision(verdict, pairs, center, ci, confidence)
