"""Fuzz the command line and every file simopt reads: never a traceback, only documented exit codes
(`--traceback`, which asks for one, is left out).

For each input hypothesis draws, the CLI (run in-process) must exit 0, 1 or 2 (0 and 1 as the
command documents, 2 with exactly one `simopt: error:` line and nothing on stdout), print
nothing but `simopt:` lines on stderr, and leave every file that existed before as it was
(a history may only grow). The expensive parts of `guard` and `bench` (running the suite,
timing) are replaced by a sentinel: reaching them means the input was accepted. Example counts
are bounded so CI pays about a minute (SIMOPT_FUZZ_EXAMPLES scales them).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import string
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from simopt.cli import COMMANDS, Env, main

SCALE = float(os.environ.get("SIMOPT_FUZZ_EXAMPLES", "1"))
RUN_LIMITS = ["--max-events", "300000", "--max-packets", "30000", "--max-routes", "200000"]


def examples(count: int):
    return settings(max_examples=max(1, int(count * SCALE)), deadline=None, derandomize=False,
                    suppress_health_check=list(HealthCheck))


class Reached(Exception):
    """Raised where a command would start its long work: the arguments were accepted."""


@pytest.fixture(autouse=True)
def no_long_work(monkeypatch):
    import simopt.guard
    import simopt.measure
    import simopt.measure.instructions

    def reached(*args, **kwargs):
        raise Reached

    monkeypatch.setattr(simopt.guard, "run_guards", reached)
    monkeypatch.setattr(simopt.measure, "compare_versions", reached)
    monkeypatch.setattr(simopt.measure.instructions, "compare_instructions", reached)
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)


def cli(*argv: str, cwd: Path) -> tuple[int, str, str]:
    """(exit code, stdout, stderr) of `simopt ARGV...` run in `cwd`; -1 when the long work was reached."""
    out, err = io.StringIO(), io.StringIO()
    previous = os.getcwd()
    os.chdir(cwd)
    try:
        code = main(list(argv), Env(stdout=out, stderr=err))
    except SystemExit as exit:  # argparse's --help and --version
        code = exit.code or 0
    except Reached:
        code = -1
    finally:
        os.chdir(previous)
    return int(code), out.getvalue(), err.getvalue()


def check_outcome(code: int, out: str, err: str, *, codes=(0, 1, 2)) -> None:
    assert code in (-1, *codes), f"exit code {code}: {err}"
    assert "Traceback" not in err and "Traceback" not in out
    for line in err.splitlines():
        assert line.startswith("simopt: "), f"stray stderr line {line!r}"
    if code == 2 and not err and out.startswith("usage: simopt "):
        return  # `simopt` without a command: its help, exit 2
    if code == 2:
        assert err.count("simopt: error: ") == 1 and err.splitlines()[-1].startswith("simopt: error: "), err
        assert out == "", out


def snapshot(root: Path) -> dict[str, str]:
    """Every file under `root` (outside .git and .simopt) with a hash of its bytes."""
    files = {}
    for directory, dirnames, filenames in os.walk(root):
        dirnames[:] = [name for name in dirnames if name not in (".git", ".simopt")]
        for name in filenames:
            path = Path(directory, name)
            if path.is_file() and not path.is_symlink():
                files[str(path.relative_to(root))] = hashlib.sha256(path.read_bytes()).hexdigest()
    return files


def assert_unchanged(root: Path, before: dict[str, str], *, growing: dict[str, bytes] | None = None) -> None:
    """Files that existed are still there with the same bytes; those in `growing` may only be appended to."""
    after = snapshot(root)
    for path, digest in before.items():
        assert path in after, f"{path} was deleted"
        if growing and path in growing:
            assert (root / path).read_bytes().startswith(growing[path]), f"{path} was rewritten, not appended to"
        else:
            assert after[path] == digest, f"{path} was changed"


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout


# -- the command line ---------------------------------------------------------------------------

FLAGS = ["--help", "--version", "--json", "--scenario", "--seed", "--repo", "--profile", "--target",
         "--baseline", "--candidate", "--max-seconds", "--min-effect", "--metric", "--agent", "--model", "--program",
         "--max-cost", "--tag", "--resume", "--budget", "--max-hours", "--holdout", "--guard-profile", "--quiet",
         "--format", "--html", "--plot", "--max-nodes", "--max-events", "--max-flows", "-h", "--", "-"]
NUMBERS = ["0", "-1", "1", "3", "1e9", "nan", "inf", "-inf", "NaN", "0.5", "1_000", "99999999999999999999", "0x10"]
WORDS = ["fattree", "mesh", "torus", "nope", "demo", "openai", "patches:", "patches:/nonexistent", "command:",
         "command:false", "quick", "thorough", "time", "instructions", "pi", "table", "HEAD", "main", "..", ".",
         "a/b", "t1", "x.toml", "out.png", "out.txt"]


@st.composite
def argvs(draw, paths: list[str]):
    command = draw(st.sampled_from([*COMMANDS, "nope", "", "--help", "--version"]))
    token = st.one_of(st.sampled_from(FLAGS), st.sampled_from(NUMBERS), st.sampled_from(WORDS), st.sampled_from(paths),
                      st.text(string.printable, max_size=12), st.text(max_size=8))
    tokens = draw(st.lists(token, max_size=8))
    if command == "guard" and "--target" not in tokens:
        tokens += ["--target", draw(st.sampled_from(paths))]  # never the whole suite of this checkout
    return [command, *tokens] if command else tokens


@pytest.fixture(scope="module")
def playground(tmp_path_factory) -> Path:
    """A folder that is no git repository, with a file, an empty folder and a junk scenario."""
    root = tmp_path_factory.mktemp("playground")
    (root / "file.txt").write_text("just a file\n")
    (root / "folder").mkdir()
    (root / "bad.toml").write_text("horizon_us = [\n")
    return root


def test_the_command_line(playground):
    paths = [str(playground / name) for name in ("file.txt", "folder", "bad.toml", "missing")]

    @examples(150)
    @given(argvs(paths))
    def check(argv):
        before = snapshot(playground)
        code, out, err = cli(*argv, cwd=playground)
        check_outcome(code, out, err)
        assert_unchanged(playground, before)

    check()


# -- scenario files -----------------------------------------------------------------------------

SCALARS = st.one_of(st.integers(-5, 10**6), st.sampled_from([0, 1, 2, 8, 10**12, -1]), st.floats(allow_nan=True),
                    st.booleans(), st.text(max_size=10), st.sampled_from(["fattree", "ring", "file", "permutation",
                                                                          "all_to_all", "incast", "fail", "g.txt"]))
VALUES = st.recursive(SCALARS, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                       st.dictionaries(st.sampled_from(["dist", "min", "max", "values", "weights"]), inner, max_size=3)),
                      max_leaves=6)
PLAUSIBLE = st.one_of(st.integers(1, 10), st.integers(2, 8), st.sampled_from([4, 6, 1500, 100_000]), VALUES)
KINDS = {"fattree": ["k"], "mesh": ["rows", "cols"], "torus": ["rows", "cols"], "ring": ["n"], "line": ["n"],
         "star": ["n"], "tree": ["depth", "fanout"], "dumbbell": ["hosts_per_side"], "gnm": ["n", "m"],
         "random_regular": ["n", "d"], "watts_strogatz": ["n", "k", "p"], "file": ["path"]}
TOPOLOGY = st.one_of(
    st.sampled_from(sorted(KINDS)).flatmap(lambda kind: st.fixed_dictionaries(
        {"kind": st.just(kind), **{key: PLAUSIBLE for key in KINDS[kind]}})),
    st.fixed_dictionaries({"kind": st.sampled_from([*KINDS, "cube"])},
                          optional={key: PLAUSIBLE for key in ("k", "n", "m", "d", "p", "rows", "cols", "path")}),
)
TRAFFIC = st.fixed_dictionaries({"pattern": st.sampled_from(["permutation", "all_to_all", "random_pairs", "incast", "x"])},
                                optional={key: PLAUSIBLE for key in ("bytes", "start_ns", "start_us", "rate_bps", "count",
                                                                    "senders", "dst")})
SCENARIOS = st.fixed_dictionaries(
    {"topology": TOPOLOGY, "horizon_us": PLAUSIBLE},
    optional={"horizon_ns": VALUES, "seed": VALUES, "mtu_bytes": VALUES, "traffic": TRAFFIC,
              "links": st.dictionaries(st.sampled_from(["bandwidth_bps", "delay_ns", "buffer_bytes", "weight", "core"]),
                                       VALUES, max_size=3),
              "random_failures": st.dictionaries(st.sampled_from(["count", "start_us", "end_us", "down_us", "tier"]),
                                                 VALUES, max_size=4),
              "flows": st.lists(st.dictionaries(st.sampled_from(["src", "dst", "bytes", "start_us"]), VALUES), max_size=2),
              "limits": st.dictionaries(st.sampled_from(["nodes", "events", "flows", "bogus"]), VALUES, max_size=2),
              "extra": VALUES},
)


def toml_text(document: dict) -> str:
    """A TOML rendering of a drawn document (values that TOML cannot hold are written as strings)."""
    def value(item) -> str:
        if isinstance(item, bool):
            return "true" if item else "false"
        if isinstance(item, (int, float)):
            return repr(item) if item == item and abs(item) != float("inf") else ("nan" if item != item else
                                                                                  ("inf" if item > 0 else "-inf"))
        if isinstance(item, str):
            return json.dumps(item, ensure_ascii=False)
        if isinstance(item, list):
            return "[" + ", ".join(value(x) for x in item) + "]"
        return "{" + ", ".join(f"{json.dumps(k)} = {value(v)}" for k, v in item.items()) + "}"

    lines, tables = [], []
    for key, item in document.items():
        if isinstance(item, dict) and key != "extra":
            tables.append(f"[{key}]\n" + "".join(f"{json.dumps(k)} = {value(v)}\n" for k, v in item.items()))
        elif isinstance(item, list) and key == "flows":
            tables += ["[[flows]]\n" + "".join(f"{json.dumps(k)} = {value(v)}\n" for k, v in flow.items()) for flow in item]
        else:
            lines.append(f"{key} = {value(item)}\n")
    return "".join(lines) + "".join(tables)


def mutated(text: str):
    """`text` as drawn, cut short, with bytes flipped or with random bytes."""
    data = text.encode()
    return st.one_of(
        st.just(data), st.just(data), st.just(data),
        st.integers(0, len(data)).map(lambda cut: data[:cut]),
        st.tuples(st.integers(0, max(len(data) - 1, 0)), st.binary(min_size=1, max_size=4)).map(
            lambda edit: data[:edit[0]] + edit[1] + data[edit[0] + 1:]),
        st.binary(max_size=200),
    )


def test_scenario_files(tmp_path):
    (tmp_path / "g.txt").write_text("a b\nb c bandwidth_bps=10\n")

    @examples(80)
    @given(st.data())
    def check(data):
        content = data.draw(SCENARIOS.map(toml_text).flatmap(mutated))
        path = tmp_path / "fuzz.toml"
        path.write_bytes(content)
        before = snapshot(tmp_path)
        code, out, err = cli("run", "--scenario", str(path), "--json", *RUN_LIMITS, cwd=tmp_path)
        check_outcome(code, out, err, codes=(0, 2))
        if code == 0:
            assert json.loads(out)["version"] == 1
        assert_unchanged(tmp_path, before)

    check()


# -- history files, config files, patch queues, program files --------------------------------------

CONFIG = ('editable = ["slow.py"]\nprotected = ["simopt.toml"]\nbench = "{python} -c \\"print(\'METRIC seconds=0.01\')\\""\n'
          'guard_command = "true"\nsmoke = "true"\n')


@pytest.fixture
def tinyrepo(tmp_path) -> Path:
    """A command target whose checks are instant, committed in a fresh git repository."""
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "slow.py").write_text("def f(n):\n    return sum(range(n))\n")
    (repo / "simopt.toml").write_text(CONFIG.format(python=sys.executable))
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", "-A")
    git(repo, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "tiny")
    return repo


def history_lines(base_commit: str):
    """Lines of a history.jsonl: well-formed records with drawn field values, JSON odds and ends, junk bytes."""
    sha = st.one_of(st.just(base_commit), st.text("0123456789abcdef", min_size=4, max_size=40), VALUES)
    number = st.one_of(st.integers(1, 25), VALUES)
    metric = st.one_of(st.none(), VALUES, st.fixed_dictionaries({}, optional={
        "ratio": st.one_of(st.floats(0.5, 1.5), VALUES), "ci": VALUES, "verdict": VALUES, "pairs": VALUES}))
    session = st.fixed_dictionaries({"type": st.just("session"), "base_commit": sha}, optional={
        "version": st.one_of(st.just(1), VALUES), "tag": VALUES, "agent": st.one_of(st.just("demo"), VALUES),
        "scenario": VALUES, "config": st.one_of(VALUES, st.dictionaries(st.sampled_from(
            ["budget", "max_seconds", "min_effect", "max_hours", "max_cost_usd", "guard_profile", "holdout", "program"]),
            VALUES, max_size=3))})
    experiment = st.fixed_dictionaries({"type": st.just("experiment"), "n": number, "status": st.one_of(
        st.sampled_from(["keep", "discard", "crash", "guard_fail"]), VALUES)}, optional={
        "commit": sha, "metric": metric, "description": VALUES, "usage": st.one_of(VALUES, st.fixed_dictionaries(
            {"cost_usd": VALUES})), "asi": VALUES, "timings": VALUES, "changed_paths": VALUES, "guards": VALUES})
    checkpoint = st.fixed_dictionaries({"type": st.just("checkpoint"), "after": number}, optional={
        "cumulative_speedup": VALUES, "best_commit": sha, "metric": metric})
    record = st.one_of(session, experiment, checkpoint, st.dictionaries(st.text(max_size=5), VALUES, max_size=3))
    line = st.one_of(record.map(lambda r: json.dumps(r, allow_nan=True).encode()), VALUES.map(lambda v: json.dumps(v).encode()),
                     st.binary(max_size=30))
    return st.lists(line, max_size=6).map(lambda lines: b"\n".join(lines) + b"\n")


def test_history_files_for_every_reader(tmp_path, tinyrepo):
    base = git(tinyrepo, "rev-parse", "HEAD").strip()
    history = tinyrepo / "results" / "h" / "history.jsonl"
    history.parent.mkdir(parents=True)
    git(tinyrepo, "branch", "simopt/h", base)

    @examples(40)
    @given(history_lines(base), st.sampled_from([["history", "h"], ["history", "h", "--json"],
                                                 ["history", "h", "--format", "pi"], ["compare", "h"],
                                                 ["finalize", "h"], ["report", "h"]]))
    def check(text, command):
        history.write_bytes(text)
        for output in ("report.md", "report.html", "progress.png", "stages.png"):  # simopt's own, rewritten
            (history.parent / output).unlink(missing_ok=True)
        subprocess.run(["git", "branch", "-D", "-q", "simopt/h-final"], cwd=tinyrepo, capture_output=True)
        before = snapshot(tinyrepo)
        code, out, err = cli(*command, "--repo", str(tinyrepo), cwd=tinyrepo)
        check_outcome(code, out, err, codes=(0, 2))
        assert_unchanged(tinyrepo, before)

    check()


def test_history_files_on_resume(tinyrepo, tmp_path):
    """A resumed session reads every field of its history: whatever is in it, one line or a clean run."""
    base = git(tinyrepo, "rev-parse", "HEAD").strip()
    queue = tmp_path / "queue"
    queue.mkdir()
    (queue / "0001.diff").write_text("Description: does not apply\n--- a/slow.py\n+++ b/slow.py\n@@ -9 +9 @@\n-x\n+y\n")
    tags = iter(range(10**6))

    @examples(15)
    @given(history_lines(base))
    def check(text):
        tag = f"r{next(tags)}"
        history = tinyrepo / "results" / tag / "history.jsonl"
        history.parent.mkdir(parents=True)
        history.write_bytes(text)
        before = snapshot(tinyrepo)
        code, out, err = cli("optimize", "--repo", str(tinyrepo), "--tag", tag, "--resume", "--quiet",
                             "--agent", f"patches:{queue}", "--max-seconds", "0.5", cwd=tinyrepo)
        check_outcome(code, out, err)
        assert_unchanged(tinyrepo, before, growing={str(history.relative_to(tinyrepo)): text})
        git(tinyrepo, "status")  # the user's git still works

    check()


CONFIG_KEYS = ["editable", "protected", "bench", "guard", "guard_command", "smoke", "engine", "scenarios", "scenario",
               "smoke_timeout", "propose_timeout", "guard_timeout", "tool", "bogus"]


def test_config_files(tinyrepo, tmp_path):
    """simopt.toml as drawn: read up to the proposer (which fails on purpose), so no command of it ever runs."""
    config = st.dictionaries(st.sampled_from(CONFIG_KEYS), st.one_of(VALUES, st.just(["slow.py"]), st.just("true")),
                             max_size=6)

    @examples(40)
    @given(st.data())
    def check(data):
        (tinyrepo / "simopt.toml").write_bytes(data.draw(config.map(toml_text).flatmap(mutated)))
        before = snapshot(tinyrepo)
        code, out, err = cli("optimize", "--repo", str(tinyrepo), "--tag", "c", "--quiet",
                             "--agent", f"patches:{tmp_path / 'no-such-queue'}", cwd=tinyrepo)
        assert code == 2  # a bad config, uncommitted changes (it was just rewritten) or the missing queue
        check_outcome(code, out, err)
        assert_unchanged(tinyrepo, before)

    check()


def test_patch_queues(tinyrepo, tmp_path):
    """Queues of drawn patches (headers, diffs, junk): each experiment ends in a verdict, the session in 0 or 1."""
    base_diff = ("Description: faster\n--- a/slow.py\n+++ b/slow.py\n@@ -1,2 +1,2 @@\n def f(n):\n"
                 "-    return sum(range(n))\n+    return n * (n - 1) // 2\n")
    patch = st.one_of(mutated(base_diff), st.binary(max_size=100))
    tags = iter(range(10**6))

    @examples(8)
    @given(st.lists(patch, min_size=1, max_size=2))
    def check(patches):
        queue = tmp_path / f"queue{next(tags)}"
        queue.mkdir()
        for index, content in enumerate(patches):
            (queue / f"{index:04d}.diff").write_bytes(content)
        before = snapshot(tinyrepo)
        code, out, err = cli("optimize", "--repo", str(tinyrepo), "--tag", queue.name, "--quiet", "--budget", "2",
                             "--agent", f"patches:{queue}", "--max-seconds", "0.5", cwd=tinyrepo)
        check_outcome(code, out, err)
        assert_unchanged(tinyrepo, before)

    check()


def test_program_files(tinyrepo, tmp_path, monkeypatch):
    """--program files as drawn: read in full, then the unpriced model's --max-cost stops before any request."""
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")
    program = tmp_path / "program.md"

    @examples(20)
    @given(st.one_of(st.text(max_size=200).map(str.encode), st.binary(max_size=200)))
    def check(content):
        program.write_bytes(content)
        before = snapshot(tinyrepo)
        code, out, err = cli("optimize", "--repo", str(tinyrepo), "--tag", "p", "--quiet", "--agent", "openai",
                             "--model", "unpriced-model", "--max-cost", "1", "--program", str(program), cwd=tinyrepo)
        assert code == 2
        check_outcome(code, out, err)
        assert_unchanged(tinyrepo, before)

    check()
