"""The runner (simopt.runner), run for real: sandboxed runs of candidate netsim trees, and what they may answer.

Each test copies this repository's netsim into a fresh candidate tree (`<root>/simopt/netsim/`),
changes it the way an adversarial candidate would, and drives it through the same API the
judges use (`Runner`, `RemoteEngine`), on each sandbox backend that works here. Honest code
must pass untouched; each deception must end as the status the threat model promises
(docs/threat-model.md): `Tamper`, `RunCrash` or `RunTimeout`.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import py_compile
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from simopt.engine import load_engine
from simopt.runner.client import Runner, RunCrash, RunTimeout, Tamper
from simopt.runner.engine import RemoteEngine
from simopt.sandbox import CHOICE_VARIABLE, launch

HARNESS = Path(__file__).resolve().parents[1]
GBPS = 1_000_000_000


@pytest.fixture(params=("bwrap", "landlock"))
def backend(request, monkeypatch) -> str:
    """A sandbox backend that works here; RemoteEngine (which chooses by $SIMOPT_SANDBOX) uses it too."""
    if not launch.available(request.param):
        pytest.skip(f"the {request.param} sandbox does not work on this machine")
    monkeypatch.setenv(CHOICE_VARIABLE, request.param)
    return request.param


def candidate(tmp_path: Path, append: str = "", name: str = "candidate") -> Path:
    """A candidate tree `<root>/simopt/netsim/`: this repository's netsim with `append` added to its __init__."""
    root = tmp_path / name
    package = root / "simopt" / "netsim"
    shutil.copytree(HARNESS / "simopt" / "netsim", package, ignore=shutil.ignore_patterns("__pycache__"))
    if append:
        with open(package / "__init__.py", "a") as init:
            init.write("\n" + append)
    return root


def link(a, b, *, weight=1):
    return {"a": a, "b": b, "bandwidth_bps": GBPS, "delay_ns": 1000, "buffer_bytes": 15_000, "weight": weight}


def flow(fid, src, dst, nbytes, *, start=0, rate=GBPS):
    return {"id": fid, "src": src, "dst": dst, "bytes": nbytes, "start_ns": start, "rate_bps": rate}


# A 4-node ring with a shortcut: ECMP, a link that fails and recovers, queues that overflow
# (two flows paced at twice the line rate), and flows that finish or are cut off by the horizon.
INSTANCE = {
    "version": 1,
    "nodes": [{"name": f"n{i}", "kind": "host" if i % 2 else "switch"} for i in range(4)],
    "links": [link(0, 1), link(1, 2), link(2, 3), link(3, 0), link(0, 2, weight=2)],
    "flows": [flow(0, 0, 2, 30_000), flow(1, 3, 1, 20_000, start=5_000, rate=2 * GBPS),
              flow(2, 2, 0, 9_000, start=40_000), flow(3, 1, 3, 150_000, start=40_000, rate=2 * GBPS)],
    "link_events": [{"time_ns": 20_000, "a": 1, "b": 2, "action": "fail"},
                    {"time_ns": 120_000, "a": 2, "b": 1, "action": "recover"}],
    "mtu_bytes": 1500,
    "reconvergence_ns": 10_000,
    "horizon_ns": 600_000,
}


def stderr_lines(runner: Runner) -> list[str]:
    """Everything the runner's sandbox wrote to stderr so far (engine prints land there; stderr_tail keeps 12)."""
    runner._stderr.seek(0)
    return runner._stderr.read().decode("utf-8", "replace").splitlines()


# -- honest code passes ---------------------------------------------------------------------------

def test_honest_netsim_matches_the_in_process_engine(backend, tmp_path):
    """A copy of netsim run remotely (whole, traced, sliced) gives the results and digest of the in-process engine."""
    local = load_engine(HARNESS)
    expected = local.simulate(INSTANCE)
    assert expected["totals"]["completed"] >= 1 and expected["totals"]["dropped"]["link_failed"] >= 1
    assert expected["totals"]["dropped"]["queue_full"] >= 1  # the instance exercises what it claims to
    engine = RemoteEngine(candidate(tmp_path))
    try:
        result = engine.simulate(INSTANCE)
        assert result["digest"] == expected["digest"]
        assert result == expected
        traced = engine.simulate(INSTANCE, trace=True)
        assert traced == local.simulate(INSTANCE, trace=True)
        sliced = engine.Simulation(INSTANCE)
        for until in (1, 20_000, 20_001, 333_333):
            sliced.run(until)
        assert sliced.result() == expected
    finally:
        engine.close()


def test_remote_simulation_now_reaches_the_horizon(backend, tmp_path):
    """RemoteSimulation.now follows run(until) and equals the horizon after result(); events matches the result."""
    engine = RemoteEngine(candidate(tmp_path))
    try:
        sim = engine.Simulation(INSTANCE)
        assert sim.now == 0
        sim.run(50_000)
        assert sim.now == 50_000 and sim.events > 0
        result = sim.result()
        assert sim.now == INSTANCE["horizon_ns"]
        assert sim.events == result["events"]
    finally:
        engine.close()


# -- forged or broken answers ---------------------------------------------------------------------

def test_forged_digest_is_tamper(backend, tmp_path):
    """A result whose digest is not the hash of its own outcomes ends as Tamper, and the engine stays condemned."""
    forge = '''
_plain_result = Simulation.result


def _forged(self):
    result = _plain_result(self)
    result["digest"] = "0" * 64
    return result


Simulation.result = _forged
'''
    engine = RemoteEngine(candidate(tmp_path, forge))
    try:
        with pytest.raises(Tamper, match="forged digest"):
            engine.simulate(INSTANCE)
        with pytest.raises(Tamper, match="forged digest"):  # every later call fails at once
            engine.simulate(INSTANCE)
    finally:
        engine.close()


# The candidate breaks its result as the file `breakage` beside its source says (re-read every
# run, so one runner serves every case); "none" leaves the result alone.
BREAK = '''
import os as _os

_plain_result = Simulation.result


def _broken(self):
    result = _plain_result(self)
    with open(_os.path.join(_os.path.dirname(__file__), "breakage")) as f:
        how = f.read().strip()
    first = result["flows"][0]
    if how == "missing-totals":
        del result["totals"]
    elif how == "missing-flow-field":
        del first["hop_sum"]
    elif how == "extra-field":
        result["speedup"] = 10
    elif how == "events-as-text":
        result["events"] = str(result["events"])
    elif how == "count-as-float":
        first["delivered"] = float(first["delivered"])
    elif how == "count-as-bool":
        first["dropped"]["no_route"] = bool(first["dropped"]["no_route"])
    elif how == "flows-as-dict":
        result["flows"] = {str(f["id"]): f for f in result["flows"]}
    elif how == "a-flow-missing":
        result["flows"] = result["flows"][1:]
    elif how == "not-a-dict":
        result = [result]
    return result


Simulation.result = _broken
'''
BREAKAGES = ("missing-totals", "missing-flow-field", "extra-field", "events-as-text", "count-as-float",
             "count-as-bool", "flows-as-dict", "a-flow-missing", "not-a-dict")


def test_results_breaking_the_schema_are_crashes(backend, tmp_path):
    """Missing fields, unknown fields or wrong types in a result end as RunCrash (not accepted, not Tamper)."""
    root = candidate(tmp_path, BREAK)
    breakage = root / "simopt" / "netsim" / "breakage"
    expected = load_engine(HARNESS).simulate(INSTANCE)
    with Runner(root, backend=backend) as runner:
        breakage.write_text("none")
        assert runner.simulate(INSTANCE) == expected  # control: the wrapper itself changes nothing
        for how in BREAKAGES:
            breakage.write_text(how)
            with pytest.raises(RunCrash) as raised:
                runner.simulate(INSTANCE)
            assert type(raised.value) is RunCrash, how
            assert "contract" in raised.value.reason, (how, raised.value.reason)


# -- hidden work, refused operations, crashes and hangs -------------------------------------------

BACKGROUND = '''
import threading as _threading

_plain_init = Simulation.__init__


def _work_while_nobody_looks():
    state = 0
    while True:
        state = (state * 31 + 7) % 1000003


def _init(self, *args, **kwargs):
    _plain_init(self, *args, **kwargs)
    _threading.Thread(target=_work_while_nobody_looks, daemon=True).start()


Simulation.__init__ = _init
'''


def test_cpu_burnt_between_steps_is_tamper(backend, tmp_path):
    """A thread burning CPU while the harness is between two steps ends the run as Tamper; honest idling does not."""
    honest = RemoteEngine(candidate(tmp_path, name="honest"))
    try:
        sim = honest.Simulation(INSTANCE)
        time.sleep(0.2)  # the judges may take their time between steps
        sim.run(50_000)
        time.sleep(0.2)
        sim.result()
    finally:
        honest.close()
    engine = RemoteEngine(candidate(tmp_path, BACKGROUND))
    try:
        sim = engine.Simulation(INSTANCE)
        time.sleep(0.2)
        with pytest.raises(Tamper) as raised:
            sim.run(50_000)
        assert raised.value.evidence.get("check") == "idle cpu"
    finally:
        engine.close()


def test_opening_a_socket_at_import_is_tamper(backend, tmp_path):
    """A socket opened at import is refused and reported by the tripwire, even if the candidate swallows the error."""
    sneaky = '''
import socket as _socket

try:
    _socket.socket(_socket.AF_INET, _socket.SOCK_STREAM)
except OSError:
    pass  # refused: carry on as if nothing happened
'''
    engine = RemoteEngine(candidate(tmp_path, sneaky))
    try:
        with pytest.raises(Tamper) as raised:
            engine.check_loads()
        assert raised.value.evidence.get("check") == "audit"
        assert any(r["event"].startswith("socket.") for r in raised.value.evidence["refused"])
    finally:
        engine.close()


def test_exiting_at_import_is_a_crash(backend, tmp_path):
    """A candidate that os._exit(0)s at import ends as RunCrash (an exit status 0 is no success)."""
    engine = RemoteEngine(candidate(tmp_path, "import os as _os\n_os._exit(0)\n"))
    try:
        with pytest.raises(RunCrash) as raised:
            engine.check_loads()
        assert type(raised.value) is RunCrash
        assert "exit code 0" in raised.value.reason
    finally:
        engine.close()


def test_a_hanging_step_times_out(backend, tmp_path):
    """A build that never returns ends as RunTimeout within the step timeout, and takes its sandbox down."""
    hang = '''
import time as _time

Simulation.__init__ = lambda self, *args, **kwargs: _time.sleep(3600)
'''
    with Runner(candidate(tmp_path, hang), backend=backend, step_timeout_s=1.0) as runner:
        run = runner.start_run()
        run.load()
        started = time.monotonic()
        with pytest.raises(RunTimeout):
            run.build(INSTANCE)
        elapsed = time.monotonic() - started
        assert 1.0 <= elapsed < 5.0, elapsed
        assert runner.sandbox.process.poll() is not None  # the runner closed its sandbox with the run


# -- nothing survives a run; the source is what runs ----------------------------------------------

MEMO = '''
import os as _os
import sys as _sys
import tempfile as _tempfile

_BUILT = [0]
_plain_init = Simulation.__init__


def _init(self, *args, **kwargs):
    _BUILT[0] += 1
    memo = _os.path.join(_tempfile.gettempdir(), "memo")
    print(f"BUILT {_BUILT[0]} memo-seen={_os.path.exists(memo)}", file=_sys.stderr, flush=True)
    with open(memo, "w") as f:
        f.write("left for the next run")
    _plain_init(self, *args, **kwargs)


Simulation.__init__ = _init
'''


def test_memory_and_tmp_do_not_survive_between_runs(backend, tmp_path):
    """A module-level counter bumped in Simulation.__init__ reads 1 in every run, and /tmp starts empty each run."""
    with Runner(candidate(tmp_path, MEMO), backend=backend) as runner:
        run = runner.start_run()  # control: within one run the counter and the file do carry over
        run.load()
        run.build(INSTANCE)
        run.build(INSTANCE)
        run.close()
        assert [line for line in stderr_lines(runner) if line.startswith("BUILT")] == [
            "BUILT 1 memo-seen=False", "BUILT 2 memo-seen=True"]
        for _ in range(3):
            runner.simulate(INSTANCE)
        assert [line for line in stderr_lines(runner) if line.startswith("BUILT")][2:] == [
            "BUILT 1 memo-seen=False"] * 3


def write_pyc(source_text: str, scratch: Path, cfile: Path) -> None:
    """Compile `source_text` into `cfile` as an unchecked .pyc (valid whatever the source beside it says)."""
    wrong = scratch / f"wrong-{cfile.stem}.py"
    wrong.write_text(source_text)
    cfile.parent.mkdir(parents=True, exist_ok=True)
    py_compile.compile(str(wrong), cfile=str(cfile), doraise=True,
                       invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH)


def plain_import_stderr(root: Path) -> str:
    """Import the candidate with Python's ordinary loaders, unconfined, in a child: what it prints."""
    code = f"from pathlib import Path; from simopt.engine import load_engine; load_engine(Path({str(root)!r}))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=HARNESS, timeout=60)
    return done.stdout + done.stderr


def test_stale_pycache_bytecode_is_never_used(backend, tmp_path):
    """An unchecked .pyc in __pycache__ that differs from its source is ignored: the source runs."""
    root = candidate(tmp_path)
    source = root / "simopt" / "netsim" / "outcome.py"
    cfile = Path(importlib.util.cache_from_source(str(source)))
    write_pyc(source.read_text() + "\nimport sys\nprint('RAN-THE-PYC', file=sys.stderr)\n", tmp_path, cfile)
    assert "RAN-THE-PYC" in plain_import_stderr(root)  # control: an ordinary import runs the .pyc
    with Runner(root, backend=backend) as runner:
        assert runner.simulate(INSTANCE) == load_engine(HARNESS).simulate(INSTANCE)
        assert not any("RAN-THE-PYC" in line for line in stderr_lines(runner))


def test_sourceless_pyc_beside_the_source_is_never_run(backend, tmp_path):
    """A .pyc without a source in the package, imported by the source, is not executed in a run."""
    root = candidate(tmp_path, "from . import extra  # noqa: F401\n")
    write_pyc("import sys\nprint('RAN-THE-PYC', file=sys.stderr)\n", tmp_path, root / "simopt" / "netsim" / "extra.pyc")
    assert "RAN-THE-PYC" in plain_import_stderr(root)  # control: an ordinary import runs the .pyc
    with Runner(root, backend=backend) as runner:
        run = runner.start_run()
        with pytest.raises(RunCrash, match="compiled code without source"):
            run.load()
        assert not any("RAN-THE-PYC" in line for line in stderr_lines(runner))


def stdlib_extension() -> Path | None:
    """A native extension module of the standard library (a shared object), if this Python has one."""
    for name in ("_bisect", "_heapq", "_json", "_random", "_statistics", "math"):
        spec = importlib.util.find_spec(name)
        origin = str(spec.origin if spec else "")
        if origin.endswith(tuple(importlib.machinery.EXTENSION_SUFFIXES)):
            return Path(origin)
    return None


def test_native_extension_beside_the_source_is_never_loaded(backend, tmp_path):
    """A shared-object extension module shipped in the package, imported by the source, is not loaded in a run."""
    extension = stdlib_extension()
    if extension is None:
        pytest.skip("this Python has no standard extension module in a shared object to copy")
    name = extension.name.split(".")[0]
    root = candidate(tmp_path, f"from . import {name} as _native\nimport sys\n"
                               "print('LOADED-NATIVE', _native.__file__, file=sys.stderr)\n")
    shutil.copy(extension, root / "simopt" / "netsim" / extension.name)
    assert "LOADED-NATIVE" in plain_import_stderr(root)  # control: an ordinary import loads the shared object
    with Runner(root, backend=backend) as runner:
        run = runner.start_run()
        with pytest.raises(RunCrash, match="compiled code without source"):
            run.load()
        assert not any("LOADED-NATIVE" in line for line in stderr_lines(runner))


def test_the_zygote_empties_a_runs_tmp_whatever_it_left(tmp_path):
    """Files, nested directories (deep ones too), a symlink out: all gone, the symlink's target
    left alone."""
    from simopt.runner.inside.zygote import _empty

    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep.txt").write_text("keep")
    tmp = tmp_path / "tmp"
    (tmp / "a" / "b").mkdir(parents=True)
    (tmp / "a" / "b" / "f").write_text("x")
    (tmp / "top").write_text("y")
    (tmp / "link").symlink_to(outside)
    deep = tmp / "deep"
    path = deep
    for _ in range(300):
        path = path / "d"
    path.mkdir(parents=True)
    _empty(str(tmp))
    assert list(tmp.iterdir()) == []
    assert (outside / "keep.txt").read_text() == "keep"
