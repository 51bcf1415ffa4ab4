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
