"""`simopt init`: look at a repository and write a simopt.toml (and a bench template) for it."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from simopt.errors import UserError
from simopt.target import CONFIG_FILE

if TYPE_CHECKING:
    from simopt.cli import Env
    from simopt.repo_survey import Survey

BENCH_FILE = "simopt_bench.py"

CONFIG = '''\
# simopt target config (written by `simopt init`): what an agent may change, how simopt checks
# and times it. Docs: docs/own-repo.md. Globs follow .gitignore rules: `*` stays within a
# folder, `**` spans folders, a pattern without `/` matches at any depth.

# A changed path is in scope when it matches an editable glob and no protected glob.
editable = [{editable}]
# What judges the target: the bench, the guard's tests and their configuration, this file.
protected = [{protected}]

# The benchmark, run in a checkout of each version: one `METRIC seconds=<float>` line per
# iteration (timed per iteration, the precise way), or one line per run.
bench = "python {bench}"
# Its METRIC is CPU time (time.thread_time()), so both versions' runs may execute at once on
# one CPU, their iterations interleaved by the scheduler: the machine's load weighs on both
# alike. Remove this line if your bench prints wall-clock time.
bench_clock = "cpu"

# Correctness: exits 0 when the version is correct.{guard_note}
{guard_line}

# Equality guard: run on the base and on every candidate for the fixed seeds (simopt records the
# base's outputs, the goldens) and for fresh seeds each time; the outputs must be identical.
equal_output = "python {bench} --output {{seed}}"
equal_output_seeds = [1, 2, 3]
equal_output_fresh = 3
# equal_output_ignore = ["^elapsed: .*$"]   # regular expressions removed before comparing

# The interpreter of every command: `python`/`python3` on PATH mean this one.{python_note}
{python_line}
# env = {{ PYTHONPATH = "src" }}   # more environment for the commands (relative to the checkout)

# A quick command that must succeed before the guard runs.
smoke = "python {bench} --output 0"

# Time limits in seconds (defaults: smoke 120, propose 1800, guard 1800).
# smoke_timeout = 120
# guard_timeout = 1800
'''

BENCH = '''\
"""simopt's benchmark for {name} (written by `simopt init`; protected: an agent may not change it).

Fill in `workload(seed)`: one representative, seeded run of the simulator that returns its
outcome. `python {bench}` times ITERATIONS runs, printing one `METRIC seconds=...` line each: the
CPU time of the thread that ran it (time.thread_time(): exact, and blind to other threads'
start-up work). `python {bench} --output SEED` prints one
run's outcome, which simopt compares between the base and every candidate (equal_output): return
everything that must not change.
"""

import sys
import time

{import_line}

ITERATIONS = 10


def workload(seed: int):
    """One seeded run of the simulator; return its outcome (anything with a stable repr)."""
    raise NotImplementedError("{bench}: write workload(seed), one representative seeded run of {name}")


def main(argv: list[str]) -> int:
    if argv[:1] == ["--output"]:
        print(repr(workload(int(argv[1]))))
        return 0
    for iteration in range(ITERATIONS):
        started = time.thread_time()
        workload(1000 + iteration)
        print(f"METRIC seconds={{time.thread_time() - started:.9f}}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
'''


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of `simopt init`."""
    parser.add_argument("--repo", type=Path, default=Path("."), help="the git repository (default: .)")


def main(args: argparse.Namespace, env: Env) -> int:
    """Write simopt.toml (and simopt_bench.py) at the repository's root, never over a config."""
    import tomllib

    from simopt.repo_survey import survey
    from simopt.workspace import open_repo

    if not args.repo.exists():
        raise UserError(f"{args.repo} does not exist: simopt init works in an existing git repository")
    if not args.repo.is_dir():
        raise UserError(f"{args.repo} is not a directory")
    repo = open_repo(args.repo)
    root = Path(repo.working_tree_dir)
    config = root / CONFIG_FILE
    if config.exists():
        raise UserError(f"{config} already exists: not overwriting it")
    pyproject = root / "pyproject.toml"
    if pyproject.is_file():
        try:
            has_table = "simopt" in tomllib.loads(pyproject.read_text(encoding="utf-8")).get("tool", {})
        except (UnicodeDecodeError, tomllib.TOMLDecodeError) as error:
            raise UserError(f"cannot read {pyproject}: {error}") from None
        if has_table:
            raise UserError(f"{pyproject} already has [tool.simopt], this repository's simopt config: edit it there "
                            "(simopt init writes simopt.toml only where no config exists)")
    found = survey(root, repo.git.ls_files().splitlines())
    bench = root / BENCH_FILE
    config.write_text(config_text(found), encoding="utf-8")
    wrote = [CONFIG_FILE]
    if not bench.exists():
        bench.write_text(bench_text(found), encoding="utf-8")
        wrote.append(BENCH_FILE)
    for line in summary(root, found, wrote):
        print(line, file=env.stdout)
    return 0


def config_text(found: Survey) -> str:
    """The simopt.toml for what the survey found."""
    editable = [f"{found.package}/**"] if found.package else ["src/**"]
    protected = [CONFIG_FILE, BENCH_FILE]
    protected += [f"{folder}/**" for folder in (found.tests, found.package_tests) if folder]
    protected += found.judging_files
    protected += [entry.split(" ")[0] for entry in found.benchmarks if not entry.startswith("asv.conf")]
    guard_note = "" if found.test_command else " Nothing found: write one."
    guard_line = (f'guard_command = "{found.test_command}"' if found.test_command
                  else 'guard_command = "python -m pytest -q tests"')
    python_note = (" Found a virtual environment." if found.venv
                   else " None configured: simopt's own interpreter.")
    python_line = f'python = "{found.venv}"' if found.venv else '# python = ".venv/bin/python"'
    return CONFIG.format(editable=_list(editable), protected=_list(dict.fromkeys(protected)), bench=BENCH_FILE,
                         guard_note=guard_note, guard_line=guard_line, python_note=python_note, python_line=python_line)


def bench_text(found: Survey) -> str:
    """The bench template, importing the package when one was found."""
    name = found.package.split("/")[-1] if found.package else "the simulator"
    import_line = f"import {name}" if found.package else "# import your simulator here"
    return BENCH.format(name=name, bench=BENCH_FILE, import_line=import_line)


def summary(root: Path, found: Survey, wrote: list[str]) -> list[str]:
    """What init found and wrote, and what the user does next."""
    lines = [f"wrote {' and '.join(wrote)} in {root}"]
    lines.append(f"  editable    {found.package + '/**' if found.package else 'src/** (no package found: edit it)'}")
    lines.append(f"  guard       {found.test_command or 'none found: write a guard_command'}")
    python = found.venv or "none found: simopt's own interpreter"
    lines.append(f"  python      {python}")
    lines.append(f"  benchmarks  {', '.join(found.benchmarks) or 'none found'}")
    next_steps = [f"write workload(seed) in {BENCH_FILE}" if BENCH_FILE in wrote else f"check {BENCH_FILE}",
                  f"git add {' '.join(wrote)} && git commit -m 'simopt config'",
                  f"simopt check --repo {root}"]
    lines.append("next: " + "; then ".join(next_steps) + " (a session starts from the committed HEAD)")
    return lines


def _list(items) -> str:
    return ", ".join(f'"{item}"' for item in items)

