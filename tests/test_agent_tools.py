"""The worktree-confined tools of the openai proposer."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from simopt.agents.tools import MAX_RESULT_CHARS, TOOLS, ToolError, WorktreeTools, parse_arguments

REPO = Path(__file__).resolve().parents[1]
EDITABLE = ("simopt/netsim/**",)
PROTECTED = ("guards/**", "scenarios/**", "tests/**")


@pytest.fixture
def tools(tmp_path: Path) -> WorktreeTools:
    root = tmp_path / "wt"
    (root / "simopt" / "netsim" / "sub").mkdir(parents=True)
    (root / "simopt" / "netsim" / "core.py").write_text("a = 1\nb = 2\na = 1\nc = 3\n")
    (root / "simopt" / "netsim" / "sub" / "deep.py").write_text("def hot():\n    return 42\n")
    (root / "simopt" / "cli.py").write_text("print('harness')\n")
    (root / "guards").mkdir()
    (root / "guards" / "oracle.py").write_text("ORACLE = True\n")
    (root / ".git").mkdir()
    (root / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    (tmp_path / "outside.py").write_text("SECRET = 1\n")
    return WorktreeTools(root, editable=EDITABLE, protected=PROTECTED, scenario="fattree", run_timeout_s=60)


def test_paths_outside_the_worktree_are_refused(tools, tmp_path):
    (tools.root / "simopt" / "netsim" / "link").symlink_to(tmp_path / "outside.py")
    (tools.root / "simopt" / "netsim" / "up").symlink_to(tmp_path)
    for path, message in [("../outside.py", "'..' is refused"),
                          ("simopt/../../outside.py", "'..' is refused"),
                          (str(tmp_path / "outside.py"), "absolute paths are refused"),
                          ("~/outside.py", "absolute paths are refused"),
                          ("simopt/netsim/link", "outside the worktree"),
                          ("simopt/netsim/up/outside.py", "outside the worktree"),
                          (".git/HEAD", ".git directory is off limits"),
                          ("", "empty path")]:
        with pytest.raises(ToolError, match=message):
            tools.resolve(path)
        assert tools.call("read_file", json.dumps({"path": path})).startswith("error: ")
    assert tools.call("write_file", json.dumps({"path": "simopt/netsim/link", "content": "x"})).startswith("error: ")
    assert (tmp_path / "outside.py").read_text() == "SECRET = 1\n"


def test_a_symlink_inside_the_worktree_is_followed(tools):
    (tools.root / "simopt" / "netsim" / "alias.py").symlink_to(tools.root / "simopt" / "netsim" / "core.py")
    assert "b = 2" in tools.read_file("simopt/netsim/alias.py")
    guard_alias = tools.root / "simopt" / "netsim" / "guard_alias.py"
    guard_alias.symlink_to(tools.root / "guards" / "oracle.py")
    assert "protected glob 'guards/**'" in tools.call("write_file", json.dumps({"path": "simopt/netsim/guard_alias.py", "content": ""}))


def test_writes_name_the_rule_that_refuses_them(tools):
    protected = tools.call("write_file", json.dumps({"path": "guards/oracle.py", "content": "ORACLE = False\n"}))
    assert protected == ("error: refused: guards/oracle.py is protected (it matches the protected glob 'guards/**'); "
                         "you may read it, not change it")
    harness = tools.call("edit_file", json.dumps({"path": "simopt/cli.py", "old_text": "harness", "new_text": "x"}))
    assert harness == "error: refused: simopt/cli.py is not editable (it matches none of the editable globs: simopt/netsim/**)"
    created = tools.call("write_file", json.dumps({"path": "guards/new_test.py", "content": "x"}))
    assert "is protected" in created
    assert (tools.root / "guards" / "oracle.py").read_text() == "ORACLE = True\n"
    assert not (tools.root / "guards" / "new_test.py").exists()
    assert "ORACLE = True" in tools.call("read_file", json.dumps({"path": "guards/oracle.py"}))


def test_edit_needs_exactly_one_occurrence(tools):
    core = tools.root / "simopt" / "netsim" / "core.py"
    assert "found 2 times" in tools.call("edit_file", json.dumps({"path": "simopt/netsim/core.py", "old_text": "a = 1", "new_text": "a = 9"}))
    assert "not found" in tools.call("edit_file", json.dumps({"path": "simopt/netsim/core.py", "old_text": "z = 0", "new_text": "z = 1"}))
    assert "not found" in tools.call("edit_file", json.dumps({"path": "simopt/netsim/core.py", "old_text": "", "new_text": "z = 1"}))
    assert core.read_text() == "a = 1\nb = 2\na = 1\nc = 3\n"
    done = tools.call("edit_file", json.dumps({"path": "simopt/netsim/core.py", "old_text": "b = 2\na = 1", "new_text": "b = 5\na = 1"}))
    assert done == "edited simopt/netsim/core.py: replaced 2 line(s) with 2"
    assert core.read_text() == "a = 1\nb = 5\na = 1\nc = 3\n"
    assert "no such file" in tools.call("edit_file", json.dumps({"path": "simopt/netsim/nope.py", "old_text": "a", "new_text": "b"}))


def test_changed_paths_track_real_changes_only(tools):
    assert tools.changed_paths == []
    tools.write_file("simopt/netsim/core.py", "a = 1\nb = 2\na = 1\nc = 3\n")
    assert tools.changed_paths == []
    tools.write_file("simopt/netsim/new/fast.py", "FAST = True\n")
    tools.edit_file("simopt/netsim/sub/deep.py", "42", "43")
    assert tools.changed_paths == ["simopt/netsim/new/fast.py", "simopt/netsim/sub/deep.py"]
    tools.edit_file("simopt/netsim/sub/deep.py", "43", "42")
    assert tools.changed_paths == ["simopt/netsim/new/fast.py"]


def test_read_file_shows_numbered_line_ranges(tools):
    assert tools.read_file("simopt/netsim/core.py", start_line=2, end_line=3) == (
        "simopt/netsim/core.py (lines 2-3 of 4)\n    2  b = 2\n    3  a = 1")
    assert tools.read_file("simopt/netsim/core.py", start_line=3).endswith("    4  c = 3")
    assert "nothing at line 9" in tools.read_file("simopt/netsim/core.py", start_line=9)
    (tools.root / "simopt" / "netsim" / "blob.bin").write_bytes(b"\xff\xfe\x00")
    assert "not a UTF-8 text file" in tools.call("read_file", json.dumps({"path": "simopt/netsim/blob.bin"}))


def test_list_and_search(tools):
    listing = tools.list_files()
    assert "simopt/netsim/sub/deep.py  25 bytes  editable" in listing
    assert "guards/oracle.py  14 bytes  read-only" in listing
    assert ".git" not in listing
    assert tools.list_files("simopt/netsim/sub") == "simopt/netsim/sub/deep.py  25 bytes  editable"
    assert tools.search(r"return \d+") == "simopt/netsim/sub/deep.py:2: return 42"
    assert tools.search("a = 1", "simopt/netsim/core.py") == "simopt/netsim/core.py:1: a = 1\nsimopt/netsim/core.py:3: a = 1"
    assert "no match" in tools.search("nothing-like-this")
    assert "bad regular expression" in tools.call("search", json.dumps({"pattern": "("}))


def test_long_results_are_truncated(tools):
    tools.write_file("simopt/netsim/big.py", "\n".join(f"x{i} = {'y' * 100}" for i in range(300)))
    result = tools.call("read_file", json.dumps({"path": "simopt/netsim/big.py"}))
    assert len(result) < MAX_RESULT_CHARS + 100
    assert result.endswith("more characters)")


def test_arguments_are_checked():
    assert parse_arguments("read_file", '{"path": "a.py", "start_line": "3", "extra": 1}') == {"path": "a.py", "start_line": 3}
    assert parse_arguments("run_scenario", "") == {}
    for name, raw, message in [("nope", "{}", "unknown tool 'nope'"),
                               ("read_file", "{", "not valid JSON"),
                               ("read_file", '"a.py"', "must be a JSON object"),
                               ("read_file", "{}", "needs the argument 'path'"),
                               ("read_file", '{"path": 3}', "'path' must be of type string"),
                               ("read_file", '{"path": "a", "end_line": true}', "'end_line' must be of type integer")]:
        with pytest.raises(ToolError, match=message):
            parse_arguments(name, raw)


def test_every_tool_has_a_valid_schema():
    for tool in TOOLS:
        schema = tool.schema()["function"]
        assert schema["name"] == tool.name and schema["description"]
        assert set(schema["parameters"]["required"]) <= set(schema["parameters"]["properties"])


def _copy_repo(tmp_path: Path) -> Path:
    root = tmp_path / "candidate"
    for name in ("simopt/netsim", "scenarios"):
        shutil.copytree(REPO / name, root / name, ignore=shutil.ignore_patterns("__pycache__"))
    return root


needs_scenarios = pytest.mark.skipif(not (REPO / "simopt" / "scenario.py").exists() or not (REPO / "scenarios" / "fattree.toml").exists(),
                                     reason="simopt.scenario and scenarios/fattree.toml have not landed yet")


@needs_scenarios
def test_run_and_profile_the_candidate_not_the_installed_engine(tmp_path):
    root = _copy_repo(tmp_path)
    tools = WorktreeTools(root, editable=EDITABLE, protected=PROTECTED, scenario="fattree", run_timeout_s=120)
    outcome = json.loads(tools.call("run_scenario", "{}"))
    assert len(outcome["digest"]) == 64 and outcome["events"] > 0 and outcome["wall_s"] > 0
    profile = tools.call("profile_scenario", "{}")
    assert profile.startswith(f"digest {outcome['digest']}") and "tottime" in profile
    assert "simopt/netsim/simulation.py:" in profile and str(root) not in profile

    simulation = root / "simopt" / "netsim" / "simulation.py"
    simulation.write_text(simulation.read_text() + "\nraise RuntimeError('broken candidate')\n")
    failed = tools.call("run_scenario", "{}")
    assert failed.startswith("error: the run failed") and "broken candidate" in failed


@needs_scenarios
def test_a_hanging_candidate_times_out(tmp_path):
    root = _copy_repo(tmp_path)
    init = root / "simopt" / "netsim" / "__init__.py"
    init.write_text(init.read_text() + "\nimport time\ntime.sleep(30)\n")
    tools = WorktreeTools(root, editable=EDITABLE, protected=PROTECTED, scenario="fattree", run_timeout_s=1)
    assert tools.call("run_scenario", "{}") == "error: the run did not finish within 1 s (timeout)"


def test_a_command_target_runs_its_benchmark_command(tmp_path):
    root = tmp_path / "wt"
    root.mkdir()
    (root / "bench.py").write_text("import slow\nprint('METRIC seconds=0.5')\n")
    (root / "slow.py").write_text("")
    tools = WorktreeTools(root, editable=("slow.py",), protected=("bench.py",), scenario="python3 bench.py",
                          bench_command="python3 bench.py", run_timeout_s=30)
    assert tools.call("run_scenario", "{}").startswith("`python3 bench.py`: exit code 0, wall ")
    assert tools.call("run_scenario", "{}").endswith("METRIC seconds=0.5")
    (root / "slow.py").write_text("raise SystemExit('slow is broken')\n")
    assert "exit code 1" in tools.call("run_scenario", "{}") and "slow is broken" in tools.call("run_scenario", "{}")
    assert "profiling needs a scenario target" in tools.call("profile_scenario", "{}")
    hanging = WorktreeTools(root, editable=("slow.py",), protected=(), scenario="sleep",
                            bench_command="sleep 30", run_timeout_s=0.5)
    assert hanging.call("run_scenario", "{}") == "error: the run did not finish within 0.5 s (timeout)"


def test_search_and_listings_skip_symlinks_that_lead_outside(tools, tmp_path):
    (tools.root / "simopt" / "netsim" / "leak.py").symlink_to(tmp_path / "outside.py")
    (tools.root / "simopt" / "netsim" / "dangling.py").symlink_to(tmp_path / "missing.py")
    (tools.root / "simopt" / "netsim" / "alias.py").symlink_to(tools.root / "guards" / "oracle.py")
    assert tools.search("SECRET") == "no match for 'SECRET'"
    assert "leak.py" not in tools.list_files("simopt") and "dangling.py" not in tools.list_files("simopt")
    assert "leak.py" not in "\n".join(tools.editable_files())
    # a symlink to another file of the worktree is still searched
    assert tools.search("ORACLE", "simopt") == "simopt/netsim/alias.py:1: ORACLE = True"


def test_nothing_named_git_can_be_written_anywhere(tools):
    for path in ("simopt/netsim/.git", "simopt/netsim/.GIT", "simopt/netsim/.git/config", "simopt/netsim/sub/.git"):
        assert "off limits" in tools.call("write_file", json.dumps({"path": path, "content": "gitdir: x\n"}))
    assert not (tools.root / "simopt" / "netsim" / ".git").exists()


def test_paths_git_ignores_cannot_be_written(tmp_path):
    import subprocess

    root = tmp_path / "repo"
    (root / "simopt" / "netsim").mkdir(parents=True)
    (root / "simopt" / "netsim" / "core.py").write_text("a = 1\n")
    (root / ".gitignore").write_text("__pycache__/\n*.so\n")
    subprocess.run(["git", "init", "-q"], cwd=root, check=True)
    tools = WorktreeTools(root, editable=EDITABLE, protected=PROTECTED, scenario="fattree")
    for path in ("simopt/netsim/__pycache__/core.cpython-311.pyc", "simopt/netsim/fast.so"):
        assert "ignored by git" in tools.call("write_file", json.dumps({"path": path, "content": "x"}))
    assert tools.call("write_file", json.dumps({"path": "simopt/netsim/new.py", "content": "b = 2\n"})).startswith("wrote")


def test_a_catastrophic_regex_is_stopped(tools, monkeypatch):
    import time

    import simopt.agents.tools as tools_module

    monkeypatch.setattr(tools_module, "SEARCH_TIMEOUT_S", 0.5)
    tools.write_file("simopt/netsim/evil.py", "a" * 48 + "!\n")
    started = time.monotonic()
    result = tools.call("search", json.dumps({"pattern": "(a|aa)+$", "path": "simopt/netsim/evil.py"}))
    assert result.startswith("error: the search for '(a|aa)+$' took more than 0.5 s")
    assert time.monotonic() - started < 30
