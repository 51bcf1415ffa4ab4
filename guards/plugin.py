"""Guard-suite pytest plugin: settings profile, the target engine fixture, structured results.

Loaded with `-p guards.plugin` by `simopt.guard.run_guards`, for the visible guards and for any
holdout folder alike. Environment:
  SIMOPT_TARGET_ROOT     the directory holding the simopt/netsim/ under test (default: this repo)
  SIMOPT_GUARD_PROFILE   quick | standard | thorough (default: standard)
  SIMOPT_GUARD_RESULTS   where to write the JSON results (one entry per test; optional)
  SIMOPT_GUARD_SHRINK    0: report a failure as found, without shrinking it (when only "does it
                         fail?" matters, as in tests/test_guard_strength.py); default 1
The hypothesis seed comes from pytest's `--hypothesis-seed`.

Under pytest-xdist (`-n N`, as simopt.guard runs it on a machine with several CPUs) every worker
has its own runner and oracle worker and writes its own results (SIMOPT_GUARD_RESULTS.gwK, with
the feature ranges it drew); the controller merges them into SIMOPT_GUARD_RESULTS at the end.
"""

from __future__ import annotations

import glob
import json
import os
import sys
from pathlib import Path

import pytest
from hypothesis import Phase, settings

from guards import coverage, profiles, record

HARNESS_ROOT = Path(__file__).resolve().parents[1]
STEP_TIMEOUT_S = 120.0  # one step of one run: a candidate that hangs fails its guard, not the session


def pytest_configure(config: pytest.Config) -> None:
    try:
        config._guard_profile = profiles.active()
    except ValueError as error:
        raise pytest.UsageError(str(error)) from None
    settings.load_profile(config._guard_profile)
    if os.environ.get("SIMOPT_GUARD_SHRINK", "1") == "0":
        settings.register_profile("no-shrink", parent=settings.default,
                                  phases=[phase for phase in Phase if phase not in (Phase.shrink, Phase.explain)])
        settings.load_profile("no-shrink")
    profiles.set_run_seed(config.getoption("hypothesis_seed", None))
    _limit_shrinking(profiles.SHRINK_SECONDS[config._guard_profile])
    config.addinivalue_line("markers", "slow: takes more than a few seconds")
    config._guard_results = []


def _limit_shrinking(seconds: int) -> None:
    """Cap the time hypothesis spends shrinking one failure (default 300 s, no public setting):
    a failing candidate must not cost the optimize loop minutes per guard."""
    from hypothesis.internal.conjecture import engine as conjecture_engine

    if hasattr(conjecture_engine, "MAX_SHRINKING_SECONDS"):
        conjecture_engine.MAX_SHRINKING_SECONDS = seconds


@pytest.fixture(scope="session")
def target_root() -> Path:
    """The root directory of the version under test."""
    return Path(os.environ.get("SIMOPT_TARGET_ROOT", HARNESS_ROOT))


@pytest.fixture(scope="session")
def engine(target_root, request):
    """The target's engine API (Simulation, simulate), served by a sandboxed runner.

    Candidate code never enters this process: every call is a run in a fresh child of the
    runner (simopt.runner), and the digest of every result is computed here.
    """
    from simopt.runner.engine import RemoteEngine

    class Engine(RemoteEngine):
        def Simulation(self, *args, **kwargs):  # noqa: N802  (simulate comes through here too)
            _stop_if_another_failed(request.config)
            return super().Simulation(*args, **kwargs)

    remote = Engine(target_root, step_timeout_s=STEP_TIMEOUT_S, on_tamper=_end_the_run(request.config))
    remote.check_loads()  # a package that does not import fails every guard that uses it, at setup
    yield remote
    remote.close()


def _end_the_run(config: pytest.Config):
    """A tamper decides the verdict: record it against the running test and end the guard run at
    once (no shrinking, no more examples: every later call would fail the same way, after the
    oracle had worked for nothing)."""

    def end(tamper) -> None:
        test = record.current() or "(guard run)"
        config._guard_results.append({
            "test": test, "outcome": "failed", "when": "call",
            "message": _first_line(f"the runner caught the candidate tampering: {tamper.reason}"),
            "counterexample": record.last(test), "tamper": {"reason": tamper.reason, "evidence": tamper.evidence},
        })
        _write_results(config)
        print(f"guard run ended: tamper in {test}: {tamper.reason}", file=sys.stderr, flush=True)
        sys.stdout.flush()
        os._exit(1)

    return end


def _stop_file(config: pytest.Config) -> Path | None:
    """Where the first failure is announced to the other workers, when only the first one matters
    (`-x` under xdist: xdist would let every worker finish the tests already sent to it)."""
    path = os.environ.get("SIMOPT_GUARD_RESULTS")
    if path and config.getoption("maxfail", 0) == 1 and os.environ.get("PYTEST_XDIST_WORKER"):
        return Path(path + ".stop")
    return None


def _stop_if_another_failed(config: pytest.Config) -> None:
    """End this worker, its results written, once a guard failed anywhere in an `-x` run."""
    stop = _stop_file(config)
    if stop is not None and stop.exists():
        _write_results(config)
        sys.stdout.flush()
        os._exit(0)


def pytest_runtest_setup(item: pytest.Item) -> None:
    _stop_if_another_failed(item.config)
    record.start(item.nodeid)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call):
    outcome = yield
    report = outcome.get_result()
    if report.failed or (report.when == "call" and report.passed) or report.skipped:
        _remember(item.config, report, call.excinfo.value if call.excinfo is not None else None)


def _remember(config: pytest.Config, report: pytest.TestReport, error: BaseException | None) -> None:
    entry = {"test": report.nodeid, "outcome": report.outcome, "when": report.when}
    if report.failed:
        crash = getattr(report.longrepr, "reprcrash", None)
        text = crash.message if crash is not None else str(report.longrepr).splitlines()[-1]
        entry["message"] = _first_line(text)
        entry["counterexample"] = record.last(report.nodeid)
        tamper = _tamper_in(error)
        if tamper is not None:
            entry["tamper"] = {"reason": tamper.reason, "evidence": tamper.evidence}
        stop = _stop_file(config)
        if stop is not None:
            stop.touch()
    config._guard_results.append(entry)


def _tamper_in(error: BaseException | None, depth: int = 0):
    """The runner's Tamper behind a failure, if any (through exception groups and causes)."""
    from simopt.runner.client import Tamper

    if error is None or depth > 5:
        return None
    if isinstance(error, Tamper):
        return error
    for inner in [*getattr(error, "exceptions", ()), error.__cause__, error.__context__]:
        found = _tamper_in(inner, depth + 1)
        if found is not None:
            return found
    return None


def _first_line(message: str, limit: int = 600) -> str:
    """The exception's own line: pytest's assertion detail and hypothesis's example printout cut off
    (the counterexample travels separately, summarized)."""
    line = message.strip().splitlines()[0] if message.strip() else "failed"
    return line if len(line) <= limit else line[:limit] + " ..."


def pytest_sessionfinish(session: pytest.Session) -> None:
    _write_results(session.config)


def _write_results(config: pytest.Config) -> None:
    path = os.environ.get("SIMOPT_GUARD_RESULTS")
    if not path:
        return
    tests, drawn = list(config._guard_results), record.drawn_ranges()
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if worker:
        path = f"{path}.{worker}"
    elif config.pluginmanager.hasplugin("dsession"):  # the xdist controller: every worker's results, merged
        for part in sorted(glob.glob(glob.escape(path) + ".gw*")):
            document = json.loads(Path(part).read_text(encoding="utf-8"))
            tests += document["tests"]
            drawn = coverage.merged(drawn, document["drawn"])
    document = {"version": 1, "profile": config._guard_profile, "tests": tests, "drawn": drawn,
                "coverage": _coverage(drawn)}
    Path(path).write_text(json.dumps(document, indent=1), encoding="utf-8")


def _coverage(drawn: dict[str, list[int] | None]) -> dict | None:
    """The run's drawn feature ranges against every shipped scenario's (None when nothing was drawn)."""
    from guards import golden

    if not drawn:
        return None
    scenarios = {name: instance for name, (_, instance) in golden.scenario_instances().items()}
    return coverage.report(drawn, scenarios)
