"""Both workers of a lane share one address-space layout; lanes differ by their stack padding."""

from pathlib import Path

import pytest

from simopt.measure import compare_versions, layout
from simopt.measure.client import Worker

from test_measure_paired import INSTANCE, stand_in

fixed_layout_possible = pytest.mark.skipif(
    layout._personality(layout.QUERY) == -1, reason="personality(2) is not available here"
)


def mappings(worker: Worker) -> dict[str, str]:
    """Start address of the worker's interpreter binary, heap and stack (from /proc/PID/maps)."""
    found = {}
    for line in Path(f"/proc/{worker._process.pid}/maps").read_text().splitlines():
        fields = line.split()
        name = fields[5] if len(fields) > 5 else ""
        key = "heap" if name == "[heap]" else "stack" if name == "[stack]" else "binary" if "python" in name else None
        if key and key not in found:
            found[key] = fields[0].split("-")[0]
    return found


@fixed_layout_possible
def test_two_workers_asking_for_a_fixed_layout_get_the_same_one(tmp_path):
    root = stand_in(tmp_path, "base")
    workers = [Worker(root, cpu=None, hash_seed=7, environment=layout.lane_environment(123)) for _ in range(2)]
    try:
        assert [worker.randomized for worker in workers] == [False, False]
        first, second = (mappings(worker) for worker in workers)
        assert set(first) == {"binary", "heap", "stack"}
        assert first == second
    finally:
        for worker in workers:
            worker.close()


def test_workers_without_the_request_keep_their_random_layouts(tmp_path):
    root = stand_in(tmp_path, "base")
    workers = [Worker(root, cpu=None, hash_seed=7) for _ in range(2)]
    try:
        if not layout.randomized():
            pytest.skip("this process itself runs without ASLR, so its children do too")
        assert [worker.randomized for worker in workers] == [True, True]
        assert mappings(workers[0]) != mappings(workers[1])
    finally:
        for worker in workers:
            worker.close()


@fixed_layout_possible
def test_a_comparison_reports_the_layout_its_workers_had(tmp_path):
    root = stand_in(tmp_path, "base")
    assert compare_versions(root, root, INSTANCE, max_seconds=2)["layout"] == "fixed"
    assert compare_versions(root, root, INSTANCE, max_seconds=2, fixed_layout=False)["layout"] == "randomized"


def test_lanes_differ_only_in_padding_length():
    assert layout.lane_environment(0)[layout.PADDING] == ""
    assert len(layout.lane_environment(4095)[layout.PADDING]) == 4095
    assert layout.lane_environment(5)[layout.REQUEST] == "1"
