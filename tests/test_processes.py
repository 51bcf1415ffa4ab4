"""Process groups: a timeout kills the command and everything it started."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from simopt.processes import run_in_group


def test_output_and_exit_code_come_back(tmp_path):
    done = run_in_group([sys.executable, "-c", "import sys; print('out'); print('err', file=sys.stderr); sys.exit(3)"],
                        cwd=tmp_path, timeout_s=30)
    assert (done.returncode, done.stdout, done.stderr) == (3, "out\n", "err\n")


def test_merged_streams_keep_their_order(tmp_path):
    done = run_in_group("echo one; echo two >&2; echo three", cwd=tmp_path, timeout_s=30, merge_stderr=True)
    assert done.stdout.split() == ["one", "two", "three"]


def test_a_timeout_kills_the_grandchildren_too(tmp_path):
    pid_file = tmp_path / "grandchild.pid"
    command = f"sleep 60 & echo $! > {pid_file}; echo started; wait"
    started = time.monotonic()
    with pytest.raises(subprocess.TimeoutExpired) as timeout:
        run_in_group(command, cwd=tmp_path, timeout_s=1)
    assert time.monotonic() - started < 20
    assert "started" in timeout.value.output
    grandchild = int(pid_file.read_text())
    for _ in range(50):
        try:
            os.kill(grandchild, 0)
        except ProcessLookupError:
            break
        time.sleep(0.1)
    else:
        pytest.fail(f"the grandchild {grandchild} survived the timeout")


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _wait_dead(pids, seconds=10.0) -> list[int]:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        alive = [pid for pid in pids if _alive(pid)]
        if not alive:
            return []
        time.sleep(0.05)
    return alive


PARENT = """
import sys, time
from simopt.processes import spawn
child = spawn("sleep 300 & echo $! > {pids}/grandchild; echo $$ > {pids}/child; wait", cwd="{pids}")
print("ready", flush=True)
time.sleep(300)
"""


def test_children_and_grandchildren_die_with_a_killed_parent(tmp_path):
    parent = subprocess.Popen([sys.executable, "-c", PARENT.format(pids=tmp_path)], stdout=subprocess.PIPE, text=True)
    assert parent.stdout.readline().strip() == "ready"
    for name in ("child", "grandchild"):
        for _ in range(100):
            if (tmp_path / name).is_file() and (tmp_path / name).read_text().strip():
                break
            time.sleep(0.05)
    pids = [int((tmp_path / name).read_text()) for name in ("child", "grandchild")]
    assert all(_alive(pid) for pid in pids)
    parent.kill()  # SIGKILL: no cleanup code of the parent runs
    parent.wait()
    assert _wait_dead(pids) == [], "a child or grandchild outlived its killed parent"


def test_a_normal_exit_takes_what_the_command_left_running(tmp_path):
    pid_file = tmp_path / "daemon.pid"
    done = run_in_group(f"sleep 300 >/dev/null 2>&1 & echo $! > {pid_file}", cwd=tmp_path, timeout_s=30)
    assert done.returncode == 0
    assert _wait_dead([int(pid_file.read_text())]) == []


def test_marked_processes_of_another_invocation_are_found_and_killed(tmp_path):
    from simopt.processes import MARKER, kill_marked, marked

    env = {**os.environ, MARKER: "t1@/repo#1"}
    stray = subprocess.Popen(["sleep", "300"], env=env)
    other = subprocess.Popen(["sleep", "300"], env={**os.environ, MARKER: "t2@/repo#1"})
    try:
        assert stray.pid in marked("t1@/repo") and other.pid not in marked("t1@/repo")
        assert kill_marked("t1@/repo") == [stray.pid]
        assert stray.wait(timeout=10) == -9 and other.poll() is None
    finally:
        for process in (stray, other):
            process.kill()
            process.wait()


def test_a_helper_left_holding_the_output_neither_blocks_nor_survives(tmp_path):
    pid_file = tmp_path / "helper.pid"
    started = time.monotonic()
    done = run_in_group(f"sleep 300 & echo $! > {pid_file}; echo done", cwd=tmp_path, timeout_s=120)
    assert done.returncode == 0 and done.stdout == "done\n"
    assert time.monotonic() - started < 60  # not the 120 s time limit, nor the helper's 300 s
    assert _wait_dead([int(pid_file.read_text())]) == []
