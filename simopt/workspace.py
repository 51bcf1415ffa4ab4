"""The git side of a session: branch, worktrees, keep = commit, discard = save the diff and reset.

A session `<tag>` owns the branch `simopt/<tag>` (started at the user's HEAD) checked out in the
candidate worktree `<repo>/.simopt/worktrees/<tag>`, plus two detached read-only checkouts under
`<repo>/.simopt/refs/<tag>/`: `best` (what a candidate is timed against) and `base` (the
session's start, for checkpoints). The user's own checkout is never touched: only `results/`
and the git-ignored `.simopt/` are written.
"""

from __future__ import annotations

import fcntl
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import git

from simopt.errors import UserError
from simopt.target import Target

BRANCH_PREFIX = "simopt/"
RESULTS_DIR = "results"
STATE_DIR = ".simopt"
TRAILER = "Simopt-Result"
_TAG = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
_OWN_PREFIXES = (RESULTS_DIR + "/", STATE_DIR + "/")


def open_repo(path: Path) -> git.Repo:
    """The git repository containing `path`; `UserError` when there is none or it has no commit."""
    try:
        repo = git.Repo(Path(path).resolve(), search_parent_directories=True)
    except git.NoSuchPathError:
        raise UserError(f"{path} does not exist") from None
    except git.InvalidGitRepositoryError:
        raise UserError(f"{path} is not a git repository") from None
    if repo.bare:
        raise UserError(f"{path} is a bare git repository: simopt needs a checkout")
    if not repo.head.is_valid():
        raise UserError(f"{repo.working_tree_dir} has no commit yet: commit the target first")
    return repo


def check_tag(tag: str) -> str:
    """`tag` if it is a valid session tag (letters, digits, `.`, `_`, `-`), else `UserError`."""
    if not _TAG.fullmatch(tag) or ".." in tag or tag.endswith((".lock", ".")):
        raise UserError(f"tag(={tag!r}) must be letters, digits, '.', '_' or '-', starting with a letter or digit")
    return tag


def results_dir(repo_root: Path, tag: str) -> Path:
    """Where a session's history, patches and report live."""
    return Path(repo_root) / RESULTS_DIR / tag


def branch_exists(repo: git.Repo, tag: str) -> bool:
    """True iff the session branch `simopt/<tag>` exists."""
    return f"{BRANCH_PREFIX}{tag}" in {head.name for head in repo.heads}


@dataclass
class Workspace:
    """A session's branch and checkouts. `best_commit` moves on every keep."""

    repo_root: Path
    tag: str
    base_commit: str
    best_commit: str
    worktree: Path = field(init=False)
    best_dir: Path = field(init=False)
    base_dir: Path = field(init=False)
    _lock: Any = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        self.repo_root = Path(self.repo_root)
        self.worktree = self.repo_root / STATE_DIR / "worktrees" / self.tag
        refs = self.repo_root / STATE_DIR / "refs" / self.tag
        self.best_dir = refs / "best"
        self.base_dir = refs / "base"

    @property
    def branch(self) -> str:
        """The session branch, `simopt/<tag>`."""
        return f"{BRANCH_PREFIX}{self.tag}"

    @property
    def results(self) -> Path:
        """The session's results folder."""
        return results_dir(self.repo_root, self.tag)

    def changed_paths(self) -> list[str]:
        """Every path changed, added or deleted in the candidate worktree relative to the best commit."""
        wt = self._wt()
        wt.git.add("-A")
        out = wt.git.diff("--cached", "--name-only", "--no-renames", "-z", self.best_commit)
        return sorted(path for path in out.split("\0") if path)

    def keep(self, description: str, result: dict[str, Any], paths: list[str]) -> str:
        """Commit `paths` with `result` as a `Simopt-Result:` trailer; the commit becomes the best.

        Only the proposal's paths are committed: files the checks left behind (caches) are not.
        """
        wt = self._stage(paths)
        subject = " ".join(description.split()) or "(no description)"
        trailer = f"{TRAILER}: {json.dumps(result, sort_keys=True, separators=(',', ':'))}"
        wt.git(c=_identity(wt)).commit("--no-verify", "--allow-empty", "-q", "-m", subject, "-m", trailer)
        self.best_commit = wt.head.commit.hexsha
        self.reset()
        _checkout_detached(self.best_dir, self.best_commit)
        return self.best_commit

    def save_diff(self, path: Path, paths: list[str] | None = None) -> bool:
        """Write the changes to `paths` (default: all) against the best, new files included; False if none."""
        if paths is None:
            paths = self.changed_paths()
        if not paths:
            return False
        wt = self._stage(paths)
        diff = wt.git(literal_pathspecs=True).diff(
            "--cached", "--binary", "--no-renames", self.best_commit, "--", *paths, stdout_as_string=False
        )
        if not diff:
            return False
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(diff if diff.endswith(b"\n") else diff + b"\n")
        return True

    def reset(self) -> None:
        """Put the candidate worktree and the session branch back at the best commit, nothing else in it."""
        wt = self._wt()
        wt.git.checkout("-f", "-q", "-B", self.branch, self.best_commit)
        wt.git.clean("-ffdxq")

    def user_checkout_state(self) -> tuple[str, frozenset[str]]:
        """HEAD and the changed paths of the user's checkout, ignoring results/ and .simopt/."""
        return _checkout_state(self.repo_root)

    def escaped_writes(self, before: tuple[str, frozenset[str]]) -> list[str]:
        """Paths of the user's checkout that changed since `before` (writes outside the worktree)."""
        head, paths = _checkout_state(self.repo_root)
        escaped = sorted(paths.symmetric_difference(before[1]))
        if head != before[0]:
            escaped.insert(0, "HEAD")
        return [f"<checkout>/{path}" for path in escaped]

    def close(self, *, remove_candidate: bool = False) -> None:
        """Release the session lock and drop the reference checkouts (a resume recreates them).

        `remove_candidate`: drop the candidate worktree too (the branch keeps every kept change),
        so the branch can be checked out elsewhere once the session is over.
        """
        repo = git.Repo(self.repo_root)
        directories = (self.best_dir, self.base_dir) + ((self.worktree,) if remove_candidate else ())
        for directory in directories:
            if directory.exists():
                repo.git.worktree("remove", "--force", str(directory))
        if self._lock is not None:
            self._lock.close()
            self._lock = None

    def destroy(self) -> None:
        """Remove the session's worktrees and branch: for a session that never started."""
        self.close()
        repo = git.Repo(self.repo_root)
        repo.git.worktree("remove", "--force", str(self.worktree))
        repo.git.branch("-D", self.branch)

    def _stage(self, paths: list[str]) -> git.Repo:
        """Stage exactly `paths` (added, changed or deleted) and nothing else."""
        wt = self._wt()
        wt.git.reset("-q")
        if paths:
            wt.git(literal_pathspecs=True).add("-A", "--", *paths)
        return wt

    def _wt(self) -> git.Repo:
        return git.Repo(self.worktree)


def ensure_new(repo: git.Repo, tag: str) -> None:
    """`UserError` when session `tag` already exists (its branch or its history)."""
    has_history = (results_dir(Path(repo.working_tree_dir), tag) / "history.jsonl").exists()
    if branch_exists(repo, tag) and not has_history:
        raise UserError(
            f"branch {BRANCH_PREFIX}{tag} exists but session {tag!r} never recorded anything: choose another "
            f"--tag, or delete it (git worktree remove --force {STATE_DIR}/worktrees/{tag}; git branch -D {BRANCH_PREFIX}{tag})"
        )
    if has_history:
        raise UserError(f"session {tag!r} already exists: pass --resume to continue it, or choose another --tag")


def ensure_clean(repo: git.Repo, target: Target) -> None:
    """`UserError` when the user's checkout has uncommitted changes in the target's files."""
    dirty = [path for path in _checkout_state(Path(repo.working_tree_dir))[1] if target.touches(path)]
    if dirty:
        shown = ", ".join(sorted(dirty)[:5]) + (" ..." if len(dirty) > 5 else "")
        raise UserError(f"uncommitted changes in the target's files ({shown}): commit or stash them first")


def create_workspace(repo: git.Repo, tag: str, target: Target) -> Workspace:
    """Start session `tag`: branch from HEAD, worktrees; `UserError` when the repo is not ready."""
    root = Path(repo.working_tree_dir)
    ensure_new(repo, tag)
    ensure_clean(repo, target)
    _ensure_ignored(repo, STATE_DIR)
    _ensure_ignored(repo, RESULTS_DIR if not repo.git.ls_files(RESULTS_DIR) else f"{RESULTS_DIR}/{tag}")
    base = repo.head.commit.hexsha
    workspace = Workspace(root, tag, base, base)
    workspace._lock = _acquire_lock(root, tag)
    workspace.worktree.parent.mkdir(parents=True, exist_ok=True)
    repo.git.worktree("add", "-q", "-b", workspace.branch, str(workspace.worktree), base)
    _checkout_detached(workspace.best_dir, base, repo)
    _checkout_detached(workspace.base_dir, base, repo)
    return workspace


def reopen_workspace(repo: git.Repo, tag: str, base_commit: str, best_commit: str) -> Workspace:
    """Reopen session `tag` after a stop or a kill: branch head and worktree back at `best_commit`."""
    root = Path(repo.working_tree_dir)
    if not branch_exists(repo, tag):
        raise UserError(f"cannot resume {tag!r}: its branch {BRANCH_PREFIX}{tag} no longer exists")
    workspace = Workspace(root, tag, base_commit, best_commit)
    workspace._lock = _acquire_lock(root, tag)
    _ensure_ignored(repo, STATE_DIR)
    _remove_stale_locks(repo, workspace)
    repo.git.worktree("prune")
    if not (workspace.worktree / ".git").exists():
        workspace.worktree.parent.mkdir(parents=True, exist_ok=True)
        repo.git.worktree("add", "-q", "-f", str(workspace.worktree), workspace.branch)
    workspace.reset()
    _checkout_detached(workspace.best_dir, best_commit, repo)
    _checkout_detached(workspace.base_dir, base_commit, repo)
    return workspace


def parse_trailer(message: str) -> dict[str, Any] | None:
    """The `Simopt-Result:` JSON of a kept commit's message, or None."""
    for line in reversed(message.splitlines()):
        if line.startswith(TRAILER + ":"):
            return json.loads(line[len(TRAILER) + 1 :])
    return None


def _checkout_state(root: Path) -> tuple[str, frozenset[str]]:
    repo = git.Repo(root)
    out = repo.git.status("--porcelain", "-z", "--untracked-files=all", "--no-renames")
    paths = frozenset(
        entry[3:] for entry in out.split("\0") if len(entry) > 3 and not entry[3:].startswith(_OWN_PREFIXES)
    )
    return repo.head.commit.hexsha, paths


def _checkout_detached(directory: Path, commit: str, repo: git.Repo | None = None) -> None:
    if (directory / ".git").exists():
        checkout = git.Repo(directory)
        checkout.git.checkout("-f", "-q", "--detach", commit)
        checkout.git.clean("-ffdxq")
        return
    directory.parent.mkdir(parents=True, exist_ok=True)
    repo.git.worktree("add", "-q", "-f", "--detach", str(directory), commit)


def _ensure_ignored(repo: git.Repo, name: str) -> None:
    """Make git ignore `name/` in the user's checkout, through .git/info/exclude if needed."""
    try:
        repo.git.check_ignore("-q", f"{name}/probe")
        return
    except git.GitCommandError:
        pass
    exclude = Path(repo.git.rev_parse("--git-common-dir"))
    if not exclude.is_absolute():
        exclude = Path(repo.working_tree_dir) / exclude
    exclude = exclude / "info" / "exclude"
    exclude.parent.mkdir(parents=True, exist_ok=True)
    text = exclude.read_text(encoding="utf-8") if exclude.exists() else ""
    exclude.write_text(text + ("" if text.endswith("\n") or not text else "\n") + f"/{name}/\n", encoding="utf-8")


def _acquire_lock(root: Path, tag: str):
    """Hold an exclusive lock for the session; the kernel drops it if the process dies."""
    path = root / STATE_DIR / "locks" / f"{tag}.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    handle = open(path, "w")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        raise UserError(f"session {tag!r} is running in another process") from None
    return handle


def _remove_stale_locks(repo: git.Repo, workspace: Workspace) -> None:
    """Git lock files left by a killed session (we hold the session lock, so nobody else uses them)."""
    common = Path(repo.git.rev_parse("--git-common-dir"))
    if not common.is_absolute():
        common = Path(repo.working_tree_dir) / common
    locks = [common / "refs" / "heads" / f"{workspace.branch}.lock"]
    for directory in (workspace.worktree, workspace.best_dir, workspace.base_dir):
        link = directory / ".git"
        if link.is_file():
            gitdir = Path(link.read_text(encoding="utf-8").partition("gitdir:")[2].strip())
            locks.append(gitdir / "index.lock")
    for lock in locks:
        lock.unlink(missing_ok=True)


def _identity(wt: git.Repo) -> list[str]:
    """`-c` settings so a commit works without the user's identity or signing setup."""
    settings = ["commit.gpgsign=false"]
    reader = wt.config_reader()
    if not reader.has_option("user", "name") or not reader.has_option("user", "email"):
        settings += ["user.name=simopt", "user.email=simopt@localhost"]
    return settings
