"""Both workers of a lane share one address-space layout; lanes differ."""

import json
from pathlib import Path

import pytest

from simopt.measure import compare_versions, layout
from simopt.measure.client import Worker, WorkerCrash, start_pair

from test_measure_paired import INSTANCE, stand_in

fixed_layout_possible = pytest.mark.skipif(
    layout._personality(layout.QUERY) == -1, reason="personality(2) is not available here"
)


def mappings(worker: Worker) -> dict[str, str]:
    """Start address of the worker's interpreter binary, heap and stack (from /proc/PID/maps)."""
    found = {}
    for line in Path(f"/proc/{worker.pid}/maps").read_text().splitlines():
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


def test_a_lanes_zygote_forks_two_workers_with_one_random_layout(tmp_path):
    base, other = stand_in(tmp_path, "base"), stand_in(tmp_path, "other", work=200)
    pairs = [start_pair(base, other, cpu=None, hash_seed=5) for _ in range(2)]
    try:
        for pair in pairs:
            assert pair.baseline.pid != pair.candidate.pid
            assert mappings(pair.baseline) == mappings(pair.candidate)
            for worker in (pair.baseline, pair.candidate):
                worker.request(op="load", path=str(write_instance(tmp_path)))
                worker.request(op="build")
        assert pairs[0].candidate.request(op="advance", until=10_000)["events"] == 40
        if layout.randomized():
            assert pairs[0].baseline.randomized and pairs[0].candidate.randomized
            assert mappings(pairs[0].baseline) != mappings(pairs[1].baseline)  # a fresh layout per lane
    finally:
        for pair in pairs:
            pair.close()
    for pair in pairs:
        assert pair._zygote.returncode == 0  # reaped, and its children ended cleanly


def test_a_zygote_child_that_fails_to_load_reports_its_traceback(tmp_path):
    broken = stand_in(tmp_path, "broken")
    (broken / "simopt" / "netsim" / "__init__.py").write_text("import no_such_module_in_a_zygote_child\n")
    with pytest.raises(WorkerCrash, match="no_such_module_in_a_zygote_child") as crash:
        start_pair(stand_in(tmp_path, "base"), broken, cpu=None, hash_seed=5)
    assert crash.value.role == "candidate"


@pytest.mark.parametrize("lane_layout, label", [("paired", "paired"), ("random", "randomized"),
                                                pytest.param("fixed", "fixed", marks=fixed_layout_possible)])
def test_a_comparison_reports_the_layout_its_lanes_had(tmp_path, lane_layout, label):
    root = stand_in(tmp_path, "base")
    result = compare_versions(root, root, INSTANCE, max_seconds=2, lane_layout=lane_layout)
    assert result["layout"] == label
    assert result["verdict"] in ("same", "inconclusive")


def test_an_unknown_lane_layout_is_refused(tmp_path):
    root = stand_in(tmp_path, "base")
    with pytest.raises(ValueError, match="lane_layout"):
        compare_versions(root, root, INSTANCE, max_seconds=2, lane_layout="sideways")


def write_instance(tmp_path: Path) -> Path:
    path = tmp_path / "instance.json"
    path.write_text(json.dumps(INSTANCE))
    return path


def test_lanes_differ_only_in_padding_length():
    assert layout.lane_environment(0)[layout.PADDING] == ""
    assert len(layout.lane_environment(4095)[layout.PADDING]) == 4095
    assert layout.lane_environment(5)[layout.REQUEST] == "1"
