"""The session's git side on a throwaway repository: keep, discard, resume, and clean errors."""

import subprocess
import time
from pathlib import Path

import pytest

from simopt.errors import UserError
from simopt.target import load_target
from simopt.workspace import create_workspace, open_repo, parse_trailer, reopen_workspace

CONFIG = 'editable = ["src/**"]\nprotected = ["tests/**", "simopt.toml"]\nbench = "true"\nguard_command = "true"\n'


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout


def make_repo(path: Path) -> Path:
    (path / "src").mkdir(parents=True)
    (path / "tests").mkdir()
    (path / "src" / "fast.py").write_text("def f():\n    return 1\n")
    (path / "tests" / "test_f.py").write_text("def test_f():\n    pass\n")
    (path / "simopt.toml").write_text(CONFIG)
    (path / "notes.txt").write_text("not part of the target\n")
    git(path, "init", "-q", "-b", "main")
    git(path, "config", "user.name", "Test")
    git(path, "config", "user.email", "test@example.com")
    git(path, "add", "-A")
    git(path, "commit", "-q", "-m", "initial")
    return path


def user_state(path: Path) -> tuple[str, str]:
    return git(path, "rev-parse", "HEAD"), git(path, "status", "--porcelain", "--untracked-files=all")


@pytest.fixture
def repo(tmp_path):
    return make_repo(tmp_path / "repo")


@pytest.fixture
def workspace(repo):
    ws = create_workspace(open_repo(repo), "t1", load_target(repo))
    yield ws
    ws.close()


def test_create_leaves_the_user_checkout_alone(repo):
    before = user_state(repo)
    ws = create_workspace(open_repo(repo), "t1", load_target(repo))
    try:
        assert user_state(repo) == before  # .simopt/ went to .git/info/exclude, not the checkout
        assert "/.simopt/" in (repo / ".git" / "info" / "exclude").read_text()
        assert git(ws.worktree, "rev-parse", "--abbrev-ref", "HEAD").strip() == "simopt/t1"
        assert ws.best_commit == ws.base_commit == before[0].strip()
        assert (ws.best_dir / "src" / "fast.py").is_file() and (ws.base_dir / "src" / "fast.py").is_file()
    finally:
        ws.close()


def test_keep_commits_with_a_trailer_and_moves_best(repo, workspace):
    (workspace.worktree / "src" / "fast.py").write_text("def f():\n    return 1  # faster\n")
    (workspace.worktree / "src" / "new.py").write_text("X = 1\n")
    paths = workspace.changed_paths()
    assert paths == ["src/fast.py", "src/new.py"]
    (workspace.worktree / "src" / "cache.pyc").write_bytes(b"\0")  # left by a check, not proposed
    sha = workspace.keep("Make f faster", {"n": 1, "ratio": 0.9}, paths)
    assert git(repo, "rev-parse", "simopt/t1").strip() == sha == workspace.best_commit
    message = git(repo, "log", "-1", "--format=%B", sha)
    assert message.startswith("Make f faster\n")
    assert parse_trailer(message) == {"n": 1, "ratio": 0.9}
    assert (workspace.best_dir / "src" / "new.py").read_text() == "X = 1\n"
    assert (workspace.base_dir / "src" / "fast.py").read_text() == "def f():\n    return 1\n"
    assert git(repo, "show", "--name-only", "--format=", sha).split() == ["src/fast.py", "src/new.py"]
    assert workspace.changed_paths() == []


def test_discard_saves_a_diff_with_new_files_and_resets(tmp_path, workspace):
    (workspace.worktree / "src" / "fast.py").write_text("def f():\n    return 2\n")
    (workspace.worktree / "src" / "extra.py").write_text("Y = 2\n")
    (workspace.worktree / "notes.txt").unlink()
    (workspace.worktree / "junk.pyc").write_bytes(b"\0")
    assert workspace.changed_paths() == ["junk.pyc", "notes.txt", "src/extra.py", "src/fast.py"]
    patch = tmp_path / "patches" / "0001.diff"
    assert workspace.save_diff(patch, ["notes.txt", "src/extra.py", "src/fast.py"])
    workspace.reset()
    assert workspace.changed_paths() == []
    assert not (workspace.worktree / "src" / "extra.py").exists()
    assert (workspace.worktree / "notes.txt").exists()
    git(workspace.worktree, "apply", str(patch))  # the saved diff reproduces the candidate exactly
    assert (workspace.worktree / "src" / "extra.py").read_text() == "Y = 2\n"
    assert not (workspace.worktree / "notes.txt").exists()
    assert not (workspace.worktree / "junk.pyc").exists()  # not among the paths saved
    workspace.reset()
    assert not workspace.save_diff(tmp_path / "empty.diff")


def test_a_commit_made_by_the_proposer_is_still_seen_and_undone(workspace):
    (workspace.worktree / "src" / "fast.py").write_text("def f():\n    return 3\n")
    git(workspace.worktree, "commit", "-qam", "sneaky")
    assert workspace.changed_paths() == ["src/fast.py"]
    workspace.reset()
    assert git(workspace.worktree, "rev-parse", "HEAD").strip() == workspace.best_commit


def test_writes_to_the_user_checkout_are_detected(repo, workspace):
    before = workspace.user_checkout_state()
    (repo / "results").mkdir()
    (repo / "results" / "ok.txt").write_text("results are ours\n")
    assert workspace.escaped_writes(before) == []
    (repo / "src" / "fast.py").write_text("tampered\n")
    (repo / "stray.txt").write_text("x\n")
    assert workspace.escaped_writes(before) == ["<checkout>/src/fast.py", "<checkout>/stray.txt"]


def test_reopen_puts_the_branch_back_at_the_last_kept_commit(repo, workspace):
    (workspace.worktree / "src" / "fast.py").write_text("def f():\n    return 4\n")
    kept = workspace.keep("kept", {"n": 1}, ["src/fast.py"])
    (workspace.worktree / "src" / "fast.py").write_text("def f():\n    return 5\n")
    workspace.keep("committed but never recorded: a kill came first", {"n": 2}, ["src/fast.py"])
    (workspace.worktree / "src" / "half.py").write_text("half-applied\n")
    gitdir = Path(git(workspace.worktree, "rev-parse", "--absolute-git-dir").strip())
    (gitdir / "index.lock").write_text("")  # left by a kill in the middle of a git command
    workspace.close()

    again = reopen_workspace(open_repo(repo), "t1", workspace.base_commit, kept)
    try:
        assert git(repo, "rev-parse", "simopt/t1").strip() == kept
        assert again.changed_paths() == []
        assert (again.best_dir / "src" / "fast.py").read_text() == "def f():\n    return 4\n"
    finally:
        again.close()


def test_reopen_recreates_a_deleted_worktree(repo, workspace):
    base = workspace.base_commit
    workspace.close()
    subprocess.run(["rm", "-rf", str(workspace.worktree)], check=True)
    again = reopen_workspace(open_repo(repo), "t1", base, base)
    try:
        assert (again.worktree / "src" / "fast.py").is_file()
        assert git(again.worktree, "rev-parse", "--abbrev-ref", "HEAD").strip() == "simopt/t1"
    finally:
        again.close()


def test_one_process_per_session(repo, workspace):
    with pytest.raises(UserError, match="running in another process"):
        reopen_workspace(open_repo(repo), "t1", workspace.base_commit, workspace.base_commit)


def test_errors(tmp_path, repo):
    with pytest.raises(UserError, match="not a git repository"):
        open_repo(tmp_path)
    empty = tmp_path / "empty"
    empty.mkdir()
    git(empty, "init", "-q")
    with pytest.raises(UserError, match="no commit yet"):
        open_repo(empty)
    target = load_target(repo)
    (repo / "src" / "fast.py").write_text("dirty\n")
    with pytest.raises(UserError, match=r"uncommitted changes in the target's files \(src/fast.py\)"):
        create_workspace(open_repo(repo), "t2", target)
    git(repo, "checkout", "-q", "--", "src/fast.py")
    (repo / "notes.txt").write_text("edited, but not a target file\n")
    ws = create_workspace(open_repo(repo), "t2", target)
    ws.close()
    with pytest.raises(UserError, match=r"never recorded its start: .* \(git branch -D simopt/t2\) and start again"):
        create_workspace(open_repo(repo), "t2", target)
    (ws.results / "history.jsonl").parent.mkdir(parents=True)
    (ws.results / "history.jsonl").write_text(f'{{"version": 1, "type": "session", "base_commit": "{ws.base_commit}"}}\n')
    with pytest.raises(UserError, match="already exists: pass --resume"):
        create_workspace(open_repo(repo), "t2", target)
    with pytest.raises(UserError, match="its last kept commit 0123456789ab is not in the repository"):
        reopen_workspace(open_repo(repo), "t2", ws.base_commit, "0123456789abcdef0123456789abcdef01234567")


def test_a_read_only_look_never_rewrites_the_user_index(repo, workspace):
    index = repo / ".git" / "index"
    before = index.stat()
    time.sleep(1.1)
    (repo / "notes.txt").write_text("not part of the target\n")  # same content, newer mtime: the index is stale
    workspace.user_checkout_state()
    workspace.escaped_writes(workspace.user_checkout_state())
    after = index.stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    # a plain `git status` would refresh (rewrite) it: the check above can fail
    git(repo, "status", "--porcelain")
    assert index.stat().st_ino != before.st_ino


def _half_made(repo: Path, directory: Path, commit: str) -> None:
    """What a kill inside `git worktree add` leaves: a registered, locked, half-populated worktree."""
    git(repo, "worktree", "add", "-q", "-f", "--detach", str(directory), commit)
    admin = Path(git(directory, "rev-parse", "--absolute-git-dir").strip())
    (admin / "locked").write_text("initializing")
    (directory / "src" / "fast.py").unlink()


def test_reopen_repairs_worktrees_a_kill_left_half_made(repo, workspace):
    base = workspace.base_commit
    workspace.close()
    for directory in (workspace.worktree, workspace.best_dir):
        subprocess.run(["rm", "-rf", str(directory)], check=True)
        git(repo, "worktree", "prune")
    _half_made(repo, workspace.best_dir, base)
    git(repo, "branch", "-D", "simopt/t1")
    (repo / ".git" / "refs" / "heads" / "simopt").mkdir(parents=True, exist_ok=True)
    (repo / ".git" / "refs" / "heads" / "simopt" / "t1.lock").write_text("")
    again = reopen_workspace(open_repo(repo), "t1", base, base)
    try:
        assert git(repo, "rev-parse", "simopt/t1").strip() == base  # the branch is back
        assert (again.worktree / "src" / "fast.py").is_file() and (again.best_dir / "src" / "fast.py").is_file()
        assert git(again.worktree, "rev-parse", "--abbrev-ref", "HEAD").strip() == "simopt/t1"
        listed = git(repo, "worktree", "list", "--porcelain")
        assert "locked" not in listed and listed.count(str(again.best_dir)) == 1
        assert not (repo / ".git" / "refs" / "heads" / "simopt" / "t1.lock").exists()
    finally:
        again.close()
    assert git(repo, "worktree", "list").count(".simopt/refs") == 0
    git(repo, "status")  # the user's git still works


def test_the_recipe_for_a_branch_without_a_session_works(repo):
    """A tag blocked by a branch and locked worktrees (what old versions left): the printed recipe frees it."""
    base = git(repo, "rev-parse", "HEAD").strip()
    git(repo, "branch", "simopt/t3", base)
    (repo / ".simopt" / "worktrees").mkdir(parents=True)
    git(repo, "worktree", "add", "-q", str(repo / ".simopt" / "worktrees" / "t3"), "simopt/t3")
    _half_made(repo, repo / ".simopt" / "refs" / "t3" / "best", base)
    target = load_target(repo)
    with pytest.raises(UserError) as error:
        create_workspace(open_repo(repo), "t3", target)
    recipe = str(error.value).split("(", 1)[1].split(")", 1)[0]
    assert recipe == "git branch -D simopt/t3"
    git(repo, *recipe.split()[1:])
    ws = create_workspace(open_repo(repo), "t3", target)
    ws.close()


def test_entries_named_git_are_reported_and_removed(workspace):
    (workspace.worktree / "src" / ".git").write_text("gitdir: /nowhere\n")
    (workspace.worktree / "src" / "deep").mkdir()
    (workspace.worktree / "src" / "deep" / ".GIT").mkdir()
    (workspace.worktree / "src" / "deep" / ".GIT" / "answers").write_text("42\n")
    assert workspace.hidden_paths() == ["src/.git", "src/deep/.GIT"]
    workspace.reset()
    assert workspace.hidden_paths() == [] and (workspace.worktree / ".git").is_file()


def test_results_must_be_a_writable_folder(tmp_path):
    from simopt.workspace import ensure_results

    (tmp_path / "results").write_text("a file\n")
    with pytest.raises(UserError, match=r"results is not a directory"):
        ensure_results(tmp_path, "t")
    (tmp_path / "results").unlink()
    (tmp_path / "results").mkdir()
    (tmp_path / "results" / "t").write_text("a file\n")
    with pytest.raises(UserError, match=r"cannot write in .*results/t"):
        ensure_results(tmp_path, "t")
    assert ensure_results(tmp_path, "u") == tmp_path / "results" / "u"
