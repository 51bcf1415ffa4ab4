import math
import random
import statistics

import pytest

from simopt.measure import stats


def noisy_pairs(rng: random.Random, n: int, effect: float, noise: float) -> list[float]:
    """Synthetic log ratios: a true effect plus heavy-tailed noise (a normal with occasional spikes)."""
    values = []
    for _ in range(n):
        value = rng.gauss(math.log1p(effect), noise)
        if rng.random() < 0.05:
            value += rng.expovariate(1 / (5 * noise)) * rng.choice((-1, 1))
        values.append(value)
    return values


def test_sign_test_rank_matches_the_binomial_tables():
    # P(Bin(10, 1/2) <= 1) = 11/1024 <= 0.025 < P(<= 2) = 56/1024
    assert stats.sign_test_rank(10, 0.05) == 2
    assert stats.sign_test_rank(6, 0.05) == 1  # 1/64 <= 0.025
    assert stats.sign_test_rank(5, 0.05) is None  # 1/32 > 0.025: no interval from 5 values
    assert stats.sign_test_rank(100, 0.05) == 40  # the textbook value for n = 100


def test_sign_test_rank_rejects_nonsense():
    with pytest.raises(ValueError, match="alpha"):
        stats.sign_test_rank(10, 1.5)


def test_median_interval_covers_the_true_median_at_least_as_often_as_promised():
    rng = random.Random(7)
    true_median = math.log(2)  # of an exponential with rate 1: skewed on purpose
    trials, covered = 2000, 0
    for _ in range(trials):
        low, high = stats.median_interval([rng.expovariate(1) for _ in range(30)], 0.05)
        covered += low <= true_median <= high
    assert covered / trials >= 0.94


def test_median_and_mad():
    assert stats.median([3, 1, 2]) == 2
    assert stats.median([4, 1, 3, 2]) == 2.5
    assert stats.mad([1, 2, 3, 4, 100]) == 1
    with pytest.raises(ValueError):
        stats.median([])


def test_log_ratios_are_negative_when_the_candidate_is_faster():
    assert stats.log_ratios([2.0, 1.0], [1.0, 1.0]) == [math.log(0.5), 0.0]
    with pytest.raises(ValueError, match="> 0"):
        stats.log_ratios([0.0], [1.0])
    with pytest.raises(ValueError, match="as many"):
        stats.log_ratios([1.0], [])


@pytest.mark.parametrize(
    "effect, expected",
    [(-0.05, "faster"), (0.05, "slower"), (-0.02, "faster"), (0.02, "slower"), (0.0, "same")],
)
def test_known_effects_are_classified(effect, expected):
    values = noisy_pairs(random.Random(11), 4000, effect, noise=0.1)
    decision = stats.decide(values, min_effect=0.01, alpha=stats.look_alpha(), final=True)
    assert decision.verdict == expected
    assert decision.ci[0] <= decision.median <= decision.ci[1]


def test_too_little_evidence_stays_open_then_inconclusive():
    values = noisy_pairs(random.Random(3), 200, -0.015, noise=0.2)
    assert stats.decide(values, min_effect=0.01, alpha=stats.look_alpha()).verdict is None
    assert stats.decide(values, min_effect=0.01, alpha=stats.look_alpha(), final=True).verdict == "inconclusive"


def test_refuses_to_guess_on_few_pairs_or_zero_spread():
    few = [-0.5] * (stats.MIN_PAIRS - 1)
    assert stats.decide(few, min_effect=0.01, alpha=0.05, final=True).verdict == "inconclusive"
    flat = [-0.5] * 500  # a huge effect, but no spread: a broken timer, not evidence
    decision = stats.decide(flat, min_effect=0.01, alpha=0.05, final=True)
    assert decision.verdict == "inconclusive"
    assert decision.confidence is None


def test_a_null_effect_is_almost_never_called_faster_or_slower():
    rng = random.Random(5)
    calls = 0
    for _ in range(200):
        values = noisy_pairs(rng, 300, 0.0, noise=0.2)
        calls += stats.decide(values, min_effect=0.01, alpha=stats.look_alpha()).verdict in ("faster", "slower")
    assert calls <= 2


def test_classify_needs_the_whole_interval_beyond_the_minimum_effect():
    assert stats.classify((-0.05, -0.02), 0.01) == "faster"
    assert stats.classify((-0.05, -0.005), 0.01) is None
    assert stats.classify((0.02, 0.05), 0.01) == "slower"
    assert stats.classify((-0.005, 0.005), 0.01) == "same"
    assert stats.classify((-0.005, 0.02), 0.01) is None


def test_confidence_grows_with_effect_and_pairs():
    rng = random.Random(9)
    small = stats.confidence_score(noisy_pairs(rng, 400, -0.01, 0.1))
    large = stats.confidence_score(noisy_pairs(rng, 400, -0.05, 0.1))
    more = stats.confidence_score(noisy_pairs(rng, 4000, -0.05, 0.1))
    assert small < large < more


def test_looks_spend_alpha_evenly_and_end_at_the_budget():
    fractions = stats.look_fractions()
    assert len(fractions) == stats.LOOKS and fractions[-1] == 1.0
    assert fractions == sorted(fractions)
    assert stats.look_alpha() * stats.LOOKS == pytest.approx(stats.ALPHA)


def test_median_standard_error_matches_the_spread_of_medians():
    rng = random.Random(11)
    samples = [[rng.gauss(0.0, 0.1) for _ in range(101)] for _ in range(400)]
    medians = [stats.median(sample) for sample in samples]
    observed = statistics.stdev(medians)
    estimated = statistics.median(stats.median_standard_error(sample) for sample in samples)
    assert estimated == pytest.approx(math.sqrt(math.pi / 2) * 0.1 / math.sqrt(101), rel=0.1)
    assert estimated == pytest.approx(observed, rel=0.15)
