"""Walk through docs/own-repo.md on a real third-party simulator: Ciw, from its PyPI sdist.

    python3 benchmarks/own_repo.py [--workdir DIR] [--sdist PATH] [--log benchmarks/own_repo/walkthrough.log]

Turns the sdist into a git repository in a temporary folder (or --workdir), gives it its own
virtual environment with Ciw's dependencies (not Ciw itself: the commands must import the
checkout's code), then does what a new user does, printing every command and its output:

1. `simopt init` (the config and bench template it writes), then fills in the bench's workload
   and deselects the two tests that read a data file the sdist does not ship, and commits;
2. `simopt check`: smoke, equal_output, guard and an A/A bench probe on HEAD;
3. `simopt bench` between two revisions: an A/A (main against itself) and the real speedup of
   benchmarks/own_repo/ciw_patches/0001 committed on a branch (benchmarks/command_precision.py
   then compares per-iteration and whole-process timing side by side on that repository);
4. `simopt optimize --agent patches:benchmarks/own_repo/ciw_patches` at the default budget: a
   real speedup, a no-op, a behaviour change and a scope violation, which must end keep,
   discard (not-faster, early), guard_fail and scope_violation; then `simopt history`.

Needs network access to PyPI (pip) unless --sdist names a downloaded Ciw 3.2.7 sdist and the
dependencies are cached. Takes 10-20 minutes on a 2-core machine.
"""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
PATCHES = HERE / "own_repo" / "ciw_patches"
CIW = "ciw==3.2.7"
EXPECTED = ["keep", "discard", "guard_fail", "scope_violation"]

WORKLOAD = '''\
    network = ciw.create_network(
        arrival_distributions=[ciw.dists.Exponential(rate=3.0), ciw.dists.Exponential(rate=2.0), None],
        service_distributions=[ciw.dists.Exponential(rate=4.0), ciw.dists.Exponential(rate=3.0),
                               ciw.dists.Exponential(rate=5.0)],
        routing=[[0.0, 0.3, 0.4], [0.0, 0.0, 0.5], [0.1, 0.0, 0.0]],
        number_of_servers=[2, 1, 2],
    )
    ciw.seed(seed)
    simulation = ciw.Simulation(network)
    simulation.simulate_until_max_time(300)
    records = simulation.get_all_records()
    return [(r.id_number, r.node, r.arrival_date, r.service_start_date, r.exit_date) for r in records]'''
MISSING_DATA_TESTS = ("tests/test_sampling.py::TestSampling::test_sampling_empirical_dist",
                      "tests/test_sampling.py::TestSampling::test_sampling_empirical_dist_hypothesis")


class Log:
    """Prints and records every command and its output."""

    def __init__(self, path: Path | None) -> None:
        self.lines: list[str] = []
        self.path = path

    def say(self, text: str) -> None:
        print(text, flush=True)
        self.lines.append(text)

    def run(self, argv: list[str], cwd: Path, *, check: bool = True, show: bool = True) -> subprocess.CompletedProcess:
        shown = " ".join(shlex.quote(a) for a in argv).replace(sys.executable + " -m simopt.cli", "simopt")
        self.say(f"$ {shown}")
        started = time.monotonic()
        completed = subprocess.run(argv, cwd=cwd, capture_output=True, text=True)
        if show:
            for line in (completed.stdout + completed.stderr).rstrip().splitlines():
                self.say(f"  {line}")
        self.say(f"  [exit {completed.returncode}, {time.monotonic() - started:.1f} s]")
        if check and completed.returncode != 0:
            raise SystemExit(f"failed: {shown}\n{completed.stderr}")
        return completed

    def save(self) -> None:
        if self.path:
            self.path.write_text("\n".join(self.lines) + "\n", encoding="utf-8")


def simopt(*args: str) -> list[str]:
    return [sys.executable, "-m", "simopt.cli", *args]


def git(log: Log, repo: Path, *args: str) -> None:
    log.run(["git", "-c", "user.name=walkthrough", "-c", "user.email=walkthrough@localhost", *args], repo, show=False)


def prepare(log: Log, workdir: Path, sdist: Path | None) -> Path:
    """The sdist as a git repository with its own virtual environment."""
    if sdist is None:
        log.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--no-binary", ":all:", "-d",
                 str(workdir), CIW], workdir)
        sdist = next(workdir.glob("ciw-*.tar.gz"))
    with tarfile.open(sdist) as archive:
        archive.extractall(workdir, filter="data")
    repo = next(path for path in workdir.iterdir() if path.is_dir() and path.name.lower().startswith("ciw-"))
    log.run(["git", "init", "-q", "-b", "main"], repo)
    (repo / ".git" / "info" / "exclude").write_text(".venv/\n", encoding="utf-8")
    git(log, repo, "add", "-A")
    git(log, repo, "commit", "-q", "-m", f"Ciw {sdist.name} as shipped")
    log.run([sys.executable, "-m", "venv", ".venv"], repo)
    log.run([".venv/bin/pip", "install", "-q", "-r", "requirements.txt", "pytest", "hypothesis"], repo, show=False)
    return repo


def configure(log: Log, repo: Path) -> None:
    """simopt init, then what the user fills in: the workload, the guard's deselections; commit."""
    log.run(simopt("init", "--repo", str(repo)), repo)
    bench = repo / "simopt_bench.py"
    text = bench.read_text(encoding="utf-8")
    stub = '    raise NotImplementedError("simopt_bench.py: write workload(seed), one representative seeded run of ciw")'
    bench.write_text(text.replace(stub, WORKLOAD), encoding="utf-8")
    config = repo / "simopt.toml"
    deselect = " ".join(f"--deselect {test}" for test in MISSING_DATA_TESTS)
    text = config.read_text(encoding="utf-8")
    config.write_text(text.replace("-p no:cacheprovider tests", f"-p no:cacheprovider tests {deselect}"), encoding="utf-8")
    log.say("# filled in workload(seed) in simopt_bench.py; deselected the two tests whose data file the sdist lacks")
    log.say("# simopt.toml as committed:")
    for line in config.read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            log.say(f"  {line}")
    git(log, repo, "add", "simopt.toml", "simopt_bench.py")
    git(log, repo, "commit", "-q", "-m", "simopt config and bench")


def bench(log: Log, repo: Path) -> dict:
    """A/A and the real speedup, each as one JSON result (per-iteration and whole-process side by side)."""
    git(log, repo, "checkout", "-q", "-b", "fast")
    log.run(["git", "apply", str(PATCHES / "0001-plain-node-fast-path.diff")], repo)
    git(log, repo, "commit", "-q", "-am", "fast path for the next event of a plain node")
    git(log, repo, "checkout", "-q", "main")
    results = {}
    for name, candidate in (("aa", "main"), ("speedup", "fast")):
        completed = log.run(simopt("bench", "--repo", str(repo), "--baseline", "main", "--candidate", candidate,
                                   "--json"), repo, show=False)
        result = json.loads(completed.stdout)
        results[name] = result
        for line in precision_lines(name, result):
            log.say(f"  {line}")
    log.run(simopt("bench", "--repo", str(repo), "--baseline", "main", "--candidate", "fast"), repo)
    return results


def precision_lines(name: str, result: dict) -> list[str]:
    """The decision's per-iteration interval next to the whole-process interval of the same lanes."""
    def width(ci):
        return f"{(ci[1] - ci[0]) / 2:.2%}" if ci else "n/a"

    ci, process = result.get("ci"), result.get("process_ci")
    shared = " (interleaved runs: pulled toward 1)" if result.get("interleaved") else ""
    lines = [f"{name}: verdict {result['verdict']}, {result['lanes']} lanes ({result['pairs']} iteration pairs) "
             f"in {result['seconds']:.0f} s, {result['run_seconds']:.2f} s per run",
             f"{name}: per iteration  ratio {result['ratio']:.4f} CI {_ci(ci)} half-width {width(ci)}",
             f"{name}: wall clock     ratio {result['process_ratio']:.4f} CI {_ci(process)} half-width "
             f"{width(process)}{shared}"]
    if ci and process and not result.get("interleaved"):
        lines.append(f"{name}: the whole-process interval is {(process[1] - process[0]) / (ci[1] - ci[0]):.1f}x wider "
                     f"(it would need ~{((process[1] - process[0]) / (ci[1] - ci[0])) ** 2:.0f}x the lanes)")
    return lines


def _ci(ci) -> str:
    return f"[{ci[0]:.4f}, {ci[1]:.4f}]" if ci else "n/a"


def optimize(log: Log, repo: Path) -> list[str]:
    log.run(simopt("optimize", "--repo", str(repo), "--tag", "walkthrough", "--agent", f"patches:{PATCHES}",
                   "--quiet"), repo)
    log.run(simopt("history", "walkthrough", "--repo", str(repo)), repo)
    lines = (repo / "results" / "walkthrough" / "history.jsonl").read_text(encoding="utf-8").splitlines()
    records = [json.loads(line) for line in lines]
    log.say("# the session line's config: " + json.dumps({k: records[0]["config"][k] for k in ("max_seconds", "min_effect", "budget")}))
    for record in records[1:]:
        if record.get("type") == "experiment":
            log.say(f"# experiment {record['n']}: {record['status']}, timings {record['timings']}, "
                    f"metric {json.dumps(record['metric'])}")
    return [record["status"] for record in records if record.get("type") == "experiment"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, help="where to build the repository, not under /tmp (default: a "
                        "temporary folder in ~/.cache)")
    parser.add_argument("--sdist", type=Path, help="a downloaded Ciw 3.2.7 sdist (default: pip download it)")
    parser.add_argument("--log", type=Path, help="also write everything printed to this file")
    args = parser.parse_args()
    log = Log(args.log)
    # not under /tmp: the sandbox gives commands a private /tmp, which would hide the repository's .venv
    cache = Path.home() / ".cache"
    cache.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="simopt-own-repo-", dir=cache) as scratch:
        workdir = args.workdir or Path(scratch)
        workdir.mkdir(parents=True, exist_ok=True)
        started = time.monotonic()
        repo = prepare(log, workdir, args.sdist.resolve() if args.sdist else None)
        configure(log, repo)
        log.run(simopt("check", "--repo", str(repo)), repo)
        bench(log, repo)
        statuses = optimize(log, repo)
        log.say(f"# statuses {statuses} (expected {EXPECTED}); walkthrough took {time.monotonic() - started:.0f} s")
        log.save()
        return 0 if statuses == EXPECTED else 1


if __name__ == "__main__":
    sys.exit(main())
