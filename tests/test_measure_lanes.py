"""Lane-level statistics: the Student t machinery and decisions over per-lane medians."""

import itertools
import math
import random

import pytest

from simopt.measure import stats
from simopt.measure.paired import LANE_LOOKS
from simopt.measure.sequential import run_sequential

(_, EARLY_ALPHA), (_, FINAL_ALPHA) = LANE_LOOKS  # as compare_versions spends them


@pytest.mark.parametrize(
    "p, df, table",
    [(0.975, 1, 12.706), (0.975, 2, 4.303), (0.975, 4, 2.776), (0.975, 10, 2.228), (0.975, 30, 2.042),
     (0.995, 9, 3.250), (0.95, 3, 2.353), (0.99, 15, 2.602)],
)
def test_t_quantiles_match_the_tables(p, df, table):
    assert stats.student_t_quantile(p, df) == pytest.approx(table, abs=5e-4)
    assert stats.student_t_quantile(1 - p, df) == pytest.approx(-table, abs=5e-4)


def test_t_cdf_is_symmetric_and_approaches_the_normal():
    assert stats.student_t_cdf(0.0, 7) == 0.5
    assert stats.student_t_cdf(1.3, 5) + stats.student_t_cdf(-1.3, 5) == pytest.approx(1.0)
    assert stats.student_t_cdf(1.96, 2000) == pytest.approx(0.975, abs=1e-3)
    with pytest.raises(ValueError, match="df"):
        stats.student_t_cdf(1.0, 0)
    with pytest.raises(ValueError, match="p"):
        stats.student_t_quantile(1.0, 3)


@pytest.mark.parametrize("trim, low, high", [(0.0, 0.88, 0.92), (0.2, 0.87, 0.93)])
def test_trimmed_mean_intervals_cover_the_true_mean_as_often_as_promised(trim, low, high):
    rng = random.Random(2)
    trials, covered = 2000, 0
    t = stats.student_t_quantile(0.95, 10 - 2 * math.floor(trim * 10) - 1)
    for _ in range(trials):
        center, standard_error, _ = stats.trimmed_mean([rng.gauss(0.3, 1.0) for _ in range(10)], trim)
        covered += abs(center - 0.3) <= t * standard_error
    assert low <= covered / trials <= high


def test_trimming_cuts_both_ends_and_plain_mean_matches_the_t_formula():
    values = [1.0, 2.0, 3.0, 4.0, 100.0]
    center, standard_error, df = stats.trimmed_mean(values, 0.2)
    assert center == 3.0 and df == 2
    winsorized = [2.0, 2.0, 3.0, 4.0, 4.0]
    variance = sum((value - 3.0) ** 2 for value in winsorized) / 4
    assert standard_error == pytest.approx(math.sqrt(4 * variance / (3 * 2)))
    center, standard_error, df = stats.trimmed_mean([1.0, 2.0, 3.0], 0.0)
    assert (center, df) == (2.0, 2) and standard_error == pytest.approx(1 / math.sqrt(3))
    assert stats.trimmed_mean([5.0, 5.0, 5.0], 0.0) is None
    assert stats.trimmed_mean([1.0], 0.0) is None


def lane_medians(rng: random.Random, lanes: int, effect: float, *, offset: float = 0.02, pairs: int = 100,
                 noise: float = 0.1) -> list[float]:
    """Per-lane medians of synthetic pairs: a true effect, a per-lane offset up to +-offset, pair noise."""
    medians = []
    for _ in range(lanes):
        shift = math.log1p(effect) + rng.uniform(-offset, offset)
        medians.append(stats.median([rng.gauss(shift, noise) for _ in range(pairs)]))
    return medians


def test_lane_offsets_without_an_effect_are_not_faster_or_slower():
    rng = random.Random(7)
    false_calls = 0
    for index in range(200):
        medians = lane_medians(rng, 14, 0.0)
        if index % 10 == 0:
            medians[0] = math.log(0.72)  # a freak lane, as seen on the shared box: trimmed away
        decision = stats.decide_lanes(medians, pairs=1400, min_effect=0.01, alpha=FINAL_ALPHA, final=True)
        false_calls += decision.verdict in ("faster", "slower")
    assert false_calls <= 3


def test_pooled_pairs_are_fooled_by_the_same_lane_offsets():
    # Why lanes: three lanes of many pairs, offsets up to +-3% (lanes 4% apart were measured
    # here), pooled: the tight pooled interval misses the lanes' bias and gives false verdicts.
    rng = random.Random(7)
    false_calls = 0
    for _ in range(50):
        pooled = []
        for _ in range(3):
            shift = rng.uniform(-0.03, 0.03)
            pooled += [rng.gauss(shift, 0.05) for _ in range(600)]
        false_calls += stats.decide(pooled, min_effect=0.01, alpha=FINAL_ALPHA).verdict in ("faster", "slower")
    assert false_calls >= 4


def test_a_true_three_percent_effect_under_lane_offsets_is_faster():
    rng = random.Random(8)
    verdicts = [stats.decide_lanes(lane_medians(rng, 14, -0.03), pairs=1400, min_effect=0.01, alpha=FINAL_ALPHA,
                                   final=True).verdict for _ in range(50)]
    assert verdicts.count("faster") >= 48
    decision = stats.decide_lanes(lane_medians(random.Random(9), 14, 0.05), pairs=1400, min_effect=0.01,
                                  alpha=EARLY_ALPHA)
    assert decision.verdict == "slower"
    assert decision.ci[0] <= decision.median <= decision.ci[1]
    assert decision.confidence > 5


def test_lane_decisions_refuse_to_guess():
    few = [-0.05, -0.06, -0.055][: stats.MIN_LANES - 1]
    assert stats.decide_lanes(few, pairs=300, min_effect=0.01, alpha=0.05).verdict is None
    assert stats.decide_lanes(few, pairs=300, min_effect=0.01, alpha=0.05, final=True).verdict == "inconclusive"
    flat = stats.decide_lanes([-0.05] * 8, pairs=800, min_effect=0.01, alpha=0.05, final=True)
    assert flat.verdict == "inconclusive" and flat.confidence is None
    tight = stats.decide_lanes([0.001, -0.002, 0.0005, -0.001, 0.0], pairs=500, min_effect=0.01, alpha=0.05)
    assert tight.verdict == "same"


def test_sequential_looks_at_the_given_fractions_spending_the_given_alphas():
    clock = itertools.count(0.0, 1.0).__next__  # every call advances 1 s
    looks = []

    def judge(ratios, alpha, final):
        looks.append((len(ratios), alpha, final))
        return stats.Decision("inconclusive" if final else None, len(ratios), None, None, None)

    decision, _ = run_sequential(lambda: (1.0, 1.0), max_seconds=40, min_effect=0.01, clock=clock, judge=judge,
                                 looks=((0.25, 0.01), (0.5, 0.01), (1.0, 0.03)))
    assert decision.verdict == "inconclusive"
    assert looks == [(10, 0.01, False), (20, 0.01, False), (40, 0.03, True)]
    with pytest.raises(ValueError, match="alpha"):
        run_sequential(lambda: (1.0, 1.0), max_seconds=4, min_effect=0.01, looks=((0.5, 0.04), (1.0, 0.04)))


def test_a_look_ruling_out_the_minimum_speedup_stops_as_not_faster():
    # +0.5% with a lane spread of 1%: neither same nor slower at a strict look, but surely not 1% faster
    rng = random.Random(12)
    medians = [rng.gauss(0.005, 0.01) for _ in range(12)]
    plain = stats.decide_lanes(medians, pairs=1200, min_effect=0.01, alpha=EARLY_ALPHA)
    assert plain.verdict is None
    early = stats.decide_lanes(medians, pairs=1200, min_effect=0.01, alpha=EARLY_ALPHA, futility_alpha=0.05)
    assert early.verdict == "not-faster"
    assert early.ci[0] > -math.log1p(0.01)
    final = stats.decide_lanes(medians, pairs=1200, min_effect=0.01, alpha=FINAL_ALPHA, final=True, futility_alpha=0.05)
    assert final.verdict in ("same", "inconclusive")  # the last look answers the full question


def test_a_look_without_error_rate_gives_no_verdict_but_may_stop_for_futility():
    slower = [0.05 + 0.001 * index for index in range(10)]
    assert stats.decide_lanes(slower, pairs=1000, min_effect=0.01, alpha=0.0).verdict is None
    assert stats.decide_lanes(slower, pairs=1000, min_effect=0.01, alpha=0.0, futility_alpha=0.05).verdict == "not-faster"


def test_the_early_stop_drops_no_true_two_percent_speedup_but_many_no_ops_in_simulated_lanes():
    def stopped(effect: float) -> int:
        rng = random.Random(13)
        return sum(stats.decide_lanes(lane_medians(rng, 8, effect, offset=0.011), pairs=800, min_effect=0.01,
                                      alpha=0.0, futility_alpha=0.05).verdict == "not-faster" for _ in range(200))

    assert stopped(-0.02) <= 2
    assert stopped(0.0) >= 40  # 62 of 200 with these seeds: eight lanes already rule out 1% for a third
