"""Input-space guards: the benchmark's size and 1.5-2x it, parameter extremes, clustered link
events and near-equal parameters, each against the oracle (guards/big.py, guards/rare.py).

Each test draws its rare case in every example, so every run of every profile reaches past the
shipped scenarios on every feature (guards/coverage.py; `simopt guard --coverage` shows it).
"""

from __future__ import annotations

import pytest
from hypothesis import Phase, given, strategies as st

from guards import big, checks, rare
from guards.differential import assert_same_as_oracle
from guards.profiles import examples, salted, thorough

SHAPES = big.SHAPES if thorough() else ("fattree-1x", "2x")


@pytest.mark.parametrize("shape", SHAPES)
@examples(1, phases=[Phase.explicit, Phase.generate])  # too big to shrink usefully; fresh each run through `salted`
@given(seed=st.integers(0, 2**64 - 1))
def test_benchmark_scale_matches_oracle(engine, shape, seed):
    """Benchmark-size and 1.5-2x instances with failures, weights, extra links and several flows per pair
    (traces compared at the benchmark's size; at 2x the digest, events and packet-hops, which costs a third less)."""
    assert_same_as_oracle(engine, big.build(shape, salted(seed)), trace=not shape.startswith("2x"))


@pytest.mark.parametrize("side", ("low", "high"))
@examples(2)
@given(data=st.data())
def test_parameter_extremes_match_oracle(engine, side, data):
    """kb/s to Tb/s links, 0 to ms delays, 0 to 2^40-byte buffers, MTUs from 1 to 65535 bytes, huge weights."""
    case = data.draw(rare.extremes(side=side))
    result = assert_same_as_oracle(engine, case)
    checks.check_event_count(case.instance, result)


@pytest.mark.parametrize("pattern", rare.PATTERNS)
@examples(2)
@given(data=st.data())
def test_clustered_link_events_match_oracle(engine, pattern, data):
    """Flaps, adjacent changes within one reconvergence, no-op events, a failure as a packet arrives, the horizon right after."""
    case = data.draw(rare.clustered_events(pattern=pattern))
    result = assert_same_as_oracle(engine, case)
    checks.check_event_count(case.instance, result)


@examples(6)
@given(rare.near_equal())
def test_near_equal_parameters_match_oracle(engine, case):
    """Rates, bandwidths, sizes and weights within one part in a thousand of each other."""
    assert_same_as_oracle(engine, case)
