"""Kill -9 a session at random moments, then resume it: nothing lost, nothing left running or locked.

One session of `simopt optimize` (a patch queue against a tiny command target whose guard
starts a helper process of its own) is SIGKILLed as a process group, like a terminal's kill,
again and again: within its first 3 seconds, the moment it runs a git command, while its guard
and the guard's helper run, and at random later moments. After every kill:

- no process of the killed session survives (its marked children, its guard's helper);
- the user's checkout has no index.lock and `git status` works;
- history.jsonl only grew (the bytes before the kill are a prefix of the bytes after);
- experiment numbers are unique and contiguous, and the branch is at the last recorded keep
  or one commit past it (a keep committed just before its line was written);
- the same tag resumes (its start was recorded) or starts afresh (it was not), without any
  manual step: the next run prints no error.

The last run is left alone and must reach the budget, with the branch at the last keep.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from simopt.history import read_history
from simopt.processes import marked

BUDGET = 6
KILLS_IN_FIRST_3S = 5
KILLS_DURING_GIT = 3
KILLS_DURING_GUARD = 2
LATER_KILLS = 3
GRACE_S = 5.0
KNOBS = {1: 15, 2: -10, 3: 20, 4: None, 5: 10, 6: 5}  # percent faster per patch; None: a wrong result

CONFIG = """editable = ["slow.py", "knob*.py"]
protected = ["simopt.toml", "bench.py", "guard.py"]
bench = "{python} -S bench.py"
guard_command = "{python} -S guard.py"
smoke = "{python} -S -c 'import slow'"
"""
SLOW = "from knob1 import GAIN as G1\nfrom knob2 import GAIN as G2\nfrom knob3 import GAIN as G3\n" \
       "from knob4 import GAIN as G4\nfrom knob5 import GAIN as G5\nfrom knob6 import GAIN as G6\n\n" \
       "COST = 100 - (G1 + G2 + G3 + G5 + G6)\nWRONG = G4 != 0\n\n\ndef f(n):\n    return sum(range(n)) + WRONG\n"
BENCH = "import random\nimport slow\n\nprint(f'METRIC seconds={slow.COST * (1 + random.uniform(-0.002, 0.002)):.6f}')\n"
# the guard starts a long-lived helper process of its own (a grandchild of the session), which
# only the end of the guard's process group stops
GUARD = ("import subprocess, sys, time\nimport slow\n\nsubprocess.Popen(['sleep', '600'])\ntime.sleep(0.7)\n"
         "sys.exit(0 if slow.f(10) == 45 else 1)\n")


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout


def make_target(root: Path) -> tuple[Path, Path]:
    repo = root / "repo"
    repo.mkdir()
    (repo / "simopt.toml").write_text(CONFIG.format(python=sys.executable))
    (repo / "slow.py").write_text(SLOW)
    (repo / "bench.py").write_text(BENCH)
    (repo / "guard.py").write_text(GUARD)
    for knob in KNOBS:
        (repo / f"knob{knob}.py").write_text("GAIN = 0\n")
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", "-A")
    git(repo, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "tiny target")
    queue = root / "queue"
    queue.mkdir()
    for knob, gain in KNOBS.items():
        new = "GAIN = 1\n" if gain is None else f"GAIN = {gain}\n"
        (queue / f"{knob:04d}.diff").write_text(
            f"Description: knob {knob}\n--- a/knob{knob}.py\n+++ b/knob{knob}.py\n@@ -1 +1 @@\n-GAIN = 0\n+{new}")
    return repo, queue


class Session:
    """One run of `simopt optimize` in a process group of its own."""

    def __init__(self, repo: Path, queue: Path, tag: str, logs: Path, number: int):
        history = repo / "results" / tag / "history.jsonl"
        resume = history.is_file() and read_history(history).session is not None
        self.stderr_path = logs / f"run{number}.stderr"
        command = [sys.executable, "-m", "simopt.cli", "optimize", "--repo", str(repo), "--tag", tag, "--quiet",
                   "--agent", f"patches:{queue}", "--budget", str(BUDGET), "--max-seconds", "6"]
        self.resume = resume
        with open(logs / f"run{number}.stdout", "wb") as out, open(self.stderr_path, "wb") as err:
            self.process = subprocess.Popen(command + (["--resume"] if resume else []), stdout=out, stderr=err,
                                            stdin=subprocess.DEVNULL, start_new_session=True)
        self.started = time.monotonic()

    def kill(self) -> None:
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.process.wait()

    def errors(self) -> str:
        text = self.stderr_path.read_text(errors="replace")
        return "\n".join(line for line in text.splitlines() if "error" in line or "Traceback" in line)


def _stat(pid: int) -> tuple[int, str, int] | None:
    """(parent pid, state, start time) of `pid`, or None when it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return int(fields[1]), fields[0], int(fields[19])


def _tree(root: int) -> dict[int, int]:
    """Every live descendant of `root`, and `root`: pid -> start time. Sandboxed processes carry no
    marker (their environment is allow-listed), so they are found by descent while the session lives."""
    parents, starts = {}, {}
    for entry in os.listdir("/proc"):
        if entry.isdigit() and (stat := _stat(int(entry))) is not None:
            parents[int(entry)], starts[int(entry)] = stat[0], stat[2]
    found, frontier = {root}, [root]
    while frontier:
        parent = frontier.pop()
        children = [pid for pid, ppid in parents.items() if ppid == parent and pid not in found]
        found.update(children)
        frontier.extend(children)
    return {pid: starts[pid] for pid in found if pid in starts}


def _running(name: str, word: bytes, root: int) -> bool:
    """Whether a process of the session runs with `word` in its command line."""
    for pid in set(marked(name)) | set(_tree(root)):
        try:
            if word in Path(f"/proc/{pid}/cmdline").read_bytes():
                return True
        except OSError:
            continue
    return False


def _git_running(name: str) -> bool:
    """Whether the session runs a git command (other than gitpython's long-lived object readers)."""
    for pid in marked(name):
        try:
            command = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if Path(command[0].decode(errors="replace")).name == "git" and b"cat-file" not in command:
            return True
    return False


def _survivors(name: str, state: Path, tree: dict[int, int] | None = None) -> list[int]:
    """Processes of the session still alive: marked ones, any with a working directory in .simopt/,
    and any of `tree` (the session's descendants just before the kill) that still runs."""
    found = set(marked(name))
    for pid, start in (tree or {}).items():
        stat = _stat(pid)
        if stat is not None and stat[2] == start:  # the same process, not a reused pid
            found.add(pid)
    for entry in os.listdir("/proc"):
        if entry.isdigit() and int(entry) != os.getpid():
            try:
                if os.readlink(f"/proc/{entry}/cwd").startswith(str(state)):
                    found.add(int(entry))
            except OSError:
                continue
    alive = []
    for pid in found:
        try:
            if Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z":
                alive.append(pid)
        except OSError:
            continue
    return alive


def _check_history(history: Path, before: bytes) -> bytes:
    data = history.read_bytes() if history.is_file() else b""
    assert data.startswith(before), "history.jsonl was rewritten, not appended to"
    if data:
        numbers = [e["n"] for e in read_history(history).experiments]
        assert numbers == list(range(1, len(numbers) + 1)), f"experiment numbers {numbers}"
    return data


def _last_keep(repo: Path, history: Path) -> str | None:
    if not history.is_file():
        return None
    parsed = read_history(history)
    if parsed.session is None:
        return None
    kept = [e["commit"] for e in parsed.experiments if e["status"] == "keep"]
    return kept[-1] if kept else parsed.session["base_commit"]


@pytest.mark.slow
def test_kill_nine_at_random_moments_then_resume(tmp_path):
    rng = random.Random(os.environ.get("SIMOPT_KILL_SEED", "13"))
    repo, queue = make_target(tmp_path)
    logs = tmp_path / "logs"
    logs.mkdir()
    tag = "k"
    name = f"{tag}@{repo.resolve()}"
    history = repo / "results" / tag / "history.jsonl"
    plan = ([("early", rng.uniform(0.05, 3.0)) for _ in range(KILLS_IN_FIRST_3S)]
            + [("git", rng.uniform(0.5, 4.0)) for _ in range(KILLS_DURING_GIT)]
            + [("guard", 0.0) for _ in range(KILLS_DURING_GUARD)]
            + [("later", rng.uniform(3.0, 10.0)) for _ in range(LATER_KILLS)])
    rng.shuffle(plan)
    figures = {"kills": 0, "early": 0, "during_git": 0, "during_guard": 0, "orphans": 0, "failed_resumes": 0,
               "resumes": 0}
    before = b""
    for number, (kind, delay) in enumerate(plan, start=1):
        session = Session(repo, queue, tag, logs, number)
        figures["resumes"] += session.resume
        deadline = session.started + {"git": delay + 10, "guard": 30}.get(kind, delay)
        during_git = during_guard = False
        while time.monotonic() < deadline and session.process.poll() is None:
            if kind == "git" and time.monotonic() >= session.started + delay and _git_running(name):
                during_git = True  # killed a few milliseconds after seeing git run: usually still running
                break
            if kind == "guard" and _running(name, b"guard.py", session.process.pid) and _running(name, b"600", session.process.pid):
                during_guard = True  # the guard and the helper it started, each in the guard's group
                break
            time.sleep(0.002 if kind == "git" else 0.01)
        if session.process.poll() is not None:  # it ended on its own: too few kills, as asserted below
            break
        elapsed = time.monotonic() - session.started
        tree = _tree(session.process.pid)
        tree.pop(session.process.pid, None)
        session.kill()
        figures["kills"] += 1
        figures["early"] += elapsed < 3.0
        figures["during_git"] += during_git
        figures["during_guard"] += during_guard
        if session.errors():
            figures["failed_resumes"] += 1
        grace = time.monotonic() + GRACE_S
        while _survivors(name, repo / ".simopt", tree) and time.monotonic() < grace:
            time.sleep(0.05)
        orphans = _survivors(name, repo / ".simopt", tree)
        figures["orphans"] += len(orphans)
        for pid in orphans:  # so that later checks are not disturbed
            os.kill(pid, signal.SIGKILL)
        assert not (repo / ".git" / "index.lock").exists(), f"kill {number}: the user's index is locked"
        git(repo, "status")
        before = _check_history(history, before)
        keep = _last_keep(repo, history)
        if keep is not None:
            head = git(repo, "rev-parse", f"simopt/{tag}").strip()
            assert head == keep or git(repo, "rev-parse", f"{head}^").strip() == keep, f"kill {number}: branch at {head}"

    final = Session(repo, queue, tag, logs, len(plan) + 1)
    code = final.process.wait(timeout=600)
    figures["resumes"] += final.resume
    print("kill test figures:", json.dumps(figures))
    assert code == 0, final.stderr_path.read_text()
    assert figures["kills"] >= 10 and figures["early"] >= KILLS_IN_FIRST_3S and figures["during_git"] >= KILLS_DURING_GIT
    assert figures["during_guard"] >= KILLS_DURING_GUARD
    assert figures["orphans"] == 0 and figures["failed_resumes"] == 0
    assert "budget of 6 experiments reached" in (logs / f"run{len(plan) + 1}.stdout").read_text()
    _check_history(history, before)
    parsed = read_history(history)
    assert [e["n"] for e in parsed.experiments] == list(range(1, BUDGET + 1))
    assert git(repo, "rev-parse", f"simopt/{tag}").strip() == _last_keep(repo, history)
    statuses = {e["n"]: e["status"] for e in parsed.experiments}
    assert statuses[1] == "keep" and statuses[4] == "guard_fail"
    assert not (repo / ".git" / "index.lock").exists() and not _survivors(name, repo / ".simopt")
