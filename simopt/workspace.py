"""The git side of a session: branch, worktrees, keep = commit, discard = save the diff and reset.

A session `<tag>` owns the branch `simopt/<tag>` (started at the user's HEAD) checked out in the
candidate worktree `<repo>/.simopt/worktrees/<tag>`, plus two detached read-only checkouts under
`<repo>/.simopt/refs/<tag>/`: `best` (what a candidate is timed against) and `base` (the
session's start, for checkpoints). The user's own checkout is never touched: only `results/`
and the git-ignored `.simopt/` are written, and git never takes the user's index lock for us
(every command runs with GIT_OPTIONAL_LOCKS=0).

Opening a session's workspace is idempotent: whatever a kill left (a half-made worktree still
locked by `git worktree add`, a missing branch, stale lock files of our own, processes of the
killed run), `open_workspace` removes or recreates it, so a session whose start was recorded
always reopens.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import shutil
import tempfile
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
        repo = _user_repo(Path(path).resolve(), search_parent_directories=True)
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


def ensure_results(repo_root: Path, tag: str) -> Path:
    """The session's results folder, created and checked writable; `UserError` otherwise."""
    parent = Path(repo_root) / RESULTS_DIR
    if parent.exists() and not parent.is_dir():
        raise UserError(f"{parent} is not a directory: simopt writes each session's history there")
    folder = results_dir(repo_root, tag)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".simopt-probe-"):
            pass
    except OSError as error:
        raise UserError(f"cannot write in {folder}: {error.strerror or error}") from None
    return folder


def session_name(repo_root: Path, tag: str) -> str:
    """What marks the processes of session `tag` of the repository at `repo_root`."""
    return f"{tag}@{Path(repo_root).resolve()}"


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
        _checkout_detached(_user_repo(self.repo_root), self.best_dir, self.best_commit)
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
        for path in self.hidden_paths():  # git never sees nor cleans an entry named .git
            _remove(self.worktree / path)

    def hidden_paths(self) -> list[str]:
        """Entries named `.git` below the worktree's root: invisible to git, so to the scope check."""
        found = []
        for directory, dirnames, filenames in os.walk(self.worktree):
            top = Path(directory) == self.worktree
            for name in dirnames + filenames:
                if name.lower() == ".git" and not (top and name == ".git"):
                    found.append((Path(directory) / name).relative_to(self.worktree).as_posix())
            dirnames[:] = [name for name in dirnames if name.lower() != ".git"]
        return sorted(found)

    def drop_ignored(self) -> None:
        """Delete what git ignores in the candidate worktree: only what git sees is checked and kept."""
        self._wt().git.clean("-ffdXq")

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
        repo = _user_repo(self.repo_root)
        directories = (self.best_dir, self.base_dir) + ((self.worktree,) if remove_candidate else ())
        for directory in directories:
            _forget_worktree(repo, directory)
        if self._lock is not None:
            self._lock.close()
            self._lock = None

    def destroy(self) -> None:
        """Remove the session's worktrees and branch: for a session that never ran an experiment."""
        repo = _user_repo(self.repo_root)
        for directory in (self.best_dir, self.base_dir, self.worktree):
            _forget_worktree(repo, directory)
        if branch_exists(repo, self.tag):
            repo.git.branch("-D", self.branch)
        self.close()

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
    """`UserError` when session `tag` already exists (its recorded start, or a branch of its name).

    Call it holding the session lock: it removes checkouts of ours that a run killed long ago
    (before simopt made session creation atomic) left at this tag's paths, so that the branch
    can be deleted with the plain `git branch -D` the message names.
    """
    from simopt.history import read_history

    root = Path(repo.working_tree_dir)
    history = results_dir(root, tag) / "history.jsonl"
    if history.is_file() and read_history(history).session is not None:
        raise UserError(f"session {tag!r} already exists: pass --resume to continue it, or choose another --tag")
    if branch_exists(repo, tag):
        workspace = Workspace(root, tag, "", "")
        for directory in (workspace.worktree, workspace.best_dir, workspace.base_dir):
            _forget_worktree(repo, directory)
        raise UserError(
            f"branch {BRANCH_PREFIX}{tag} exists but session {tag!r} never recorded its start: choose another "
            f"--tag, or delete the branch (git branch -D {BRANCH_PREFIX}{tag}) and start again"
        )


def ensure_clean(repo: git.Repo, target: Target) -> None:
    """`UserError` when the user's checkout has uncommitted changes in the target's files."""
    dirty = [path for path in _checkout_state(Path(repo.working_tree_dir))[1] if target.touches(path)]
    if dirty:
        shown = ", ".join(sorted(dirty)[:5]) + (" ..." if len(dirty) > 5 else "")
        raise UserError(f"uncommitted changes in the target's files ({shown}): commit or stash them first")


def create_workspace(repo: git.Repo, tag: str, target: Target) -> Workspace:
    """Start session `tag` from HEAD (branch, worktrees); `UserError` when the repo is not ready."""
    root = Path(repo.working_tree_dir)
    _ensure_ignored(repo, STATE_DIR)
    _ensure_ignored(repo, RESULTS_DIR if not repo.git.ls_files(RESULTS_DIR) else f"{RESULTS_DIR}/{tag}")
    lock = lock_session(root, tag)
    try:
        ensure_new(repo, tag)
        ensure_clean(repo, target)
        base = repo.head.commit.hexsha
        return open_workspace(repo, tag, base, base, lock=lock)
    except BaseException:
        lock.close()
        raise


def reopen_workspace(repo: git.Repo, tag: str, base_commit: str, best_commit: str) -> Workspace:
    """Reopen session `tag` after a stop or a kill: branch head and worktree back at `best_commit`."""
    return open_workspace(repo, tag, base_commit, best_commit)


def open_workspace(repo: git.Repo, tag: str, base_commit: str, best_commit: str, *, lock=None) -> Workspace:
    """Session `tag`'s branch at `best_commit` and its three checkouts, made or repaired as needed.

    First stops any process a killed run of the session left behind and removes the git lock
    files it may have left; then recreates what is missing or half-made. `lock` is the session
    lock when the caller holds it already.
    """
    from simopt.processes import kill_marked

    root = Path(repo.working_tree_dir)
    _ensure_ignored(repo, STATE_DIR)
    _ensure_ignored(repo, RESULTS_DIR if not repo.git.ls_files(RESULTS_DIR) else f"{RESULTS_DIR}/{tag}")
    workspace = Workspace(root, tag, base_commit, best_commit)
    workspace._lock = lock or lock_session(root, tag)
    try:
        try:
            kill_marked(session_name(root, tag))
        except TimeoutError as error:
            raise UserError(f"session {tag!r}: a process of its earlier run would not stop: {error}") from None
        _remove_stale_locks(repo, workspace)
        for commit, what in ((base_commit, "its base commit"), (best_commit, "its last kept commit")):
            if not _commit_exists(repo, commit):
                raise UserError(f"cannot open session {tag!r}: {what} {commit[:12]} is not in the repository")
        if not branch_exists(repo, tag):
            repo.git.branch(workspace.branch, best_commit)
        if not _usable_worktree(repo, workspace.worktree):
            _forget_worktree(repo, workspace.worktree)
            workspace.worktree.parent.mkdir(parents=True, exist_ok=True)
            repo.git.worktree("add", "-q", "-f", str(workspace.worktree), workspace.branch)
        workspace.reset()
        _checkout_detached(repo, workspace.best_dir, best_commit)
        _checkout_detached(repo, workspace.base_dir, base_commit)
    except git.GitCommandError as error:
        workspace.close()
        detail = " ".join(str(error.stderr or error).split()).removeprefix("stderr: ").strip("' ")
        raise UserError(f"cannot set up the checkouts of session {tag!r}: {detail}") from None
    except BaseException:
        workspace.close()
        raise
    return workspace


def parse_trailer(message: str) -> dict[str, Any] | None:
    """The `Simopt-Result:` JSON of a kept commit's message, or None."""
    for line in reversed(message.splitlines()):
        if line.startswith(TRAILER + ":"):
            return json.loads(line[len(TRAILER) + 1 :])
    return None


def _user_repo(path: Path, **options) -> git.Repo:
    """A handle on the user's repository whose git commands never take optional locks (the index's)."""
    repo = git.Repo(path, **options)
    repo.git.update_environment(GIT_OPTIONAL_LOCKS="0")
    return repo


def _checkout_state(root: Path) -> tuple[str, frozenset[str]]:
    repo = _user_repo(root)
    out = repo.git(no_optional_locks=True).status("--porcelain", "-z", "--untracked-files=all", "--no-renames")
    paths = frozenset(
        entry[3:] for entry in out.split("\0") if len(entry) > 3 and not entry[3:].startswith(_OWN_PREFIXES)
    )
    return repo.head.commit.hexsha, paths


def _commit_exists(repo: git.Repo, sha: str) -> bool:
    try:
        repo.git.cat_file("-e", f"{sha}^{{commit}}")
    except git.GitCommandError:
        return False
    return True


def _checkout_detached(repo: git.Repo, directory: Path, commit: str) -> None:
    """A detached checkout of `commit` at `directory`, repaired or made anew as needed."""
    if _usable_worktree(repo, directory):
        try:
            checkout = git.Repo(directory)
            checkout.git.checkout("-f", "-q", "--detach", commit)
            checkout.git.clean("-ffdxq")
            return
        except git.GitCommandError:
            pass
    _forget_worktree(repo, directory)
    directory.parent.mkdir(parents=True, exist_ok=True)
    repo.git.worktree("add", "-q", "-f", "--detach", str(directory), commit)


def _common_dir(repo: git.Repo) -> Path:
    common = Path(repo.git.rev_parse("--git-common-dir"))
    return common if common.is_absolute() else Path(repo.working_tree_dir) / common


def _admin_dirs(repo: git.Repo, directory: Path) -> list[Path]:
    """Git's administrative folders (.git/worktrees/<id>) registered for a worktree at `directory`."""
    admin_root = _common_dir(repo) / "worktrees"
    if not admin_root.is_dir():
        return []
    wanted = os.path.realpath(directory / ".git")
    found = []
    for admin in admin_root.iterdir():
        try:
            pointed = (admin / "gitdir").read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError):
            continue
        if os.path.realpath(pointed) == wanted:
            found.append(admin)
    return found


def _usable_worktree(repo: git.Repo, directory: Path) -> bool:
    """Whether `directory` is a complete worktree of `repo` (not one a kill interrupted while it was made)."""
    link = directory / ".git"
    if not link.is_file():
        return False
    try:
        gitdir = Path(link.read_text(encoding="utf-8").partition("gitdir:")[2].strip())
    except (OSError, UnicodeDecodeError):
        return False
    admins = _admin_dirs(repo, directory)
    return (len(admins) == 1 and os.path.realpath(gitdir) == os.path.realpath(admins[0])
            and not (admins[0] / "locked").exists() and (admins[0] / "HEAD").is_file())


def _forget_worktree(repo: git.Repo, directory: Path) -> None:
    """Remove the worktree at `directory` and git's record of it, whatever state a kill left them in."""
    for admin in _admin_dirs(repo, directory):
        # the `gitdir` file goes last: until then a later call still recognises the folder as ours
        for entry in admin.iterdir():
            if entry.name != "gitdir":
                _remove(entry)
        _remove(admin / "gitdir")
        _remove(admin)
    _remove(directory)


def _remove(path: Path) -> None:
    if path.is_symlink() or path.is_file():
        path.unlink(missing_ok=True)
    elif path.is_dir():
        shutil.rmtree(path, ignore_errors=True)


def _ensure_ignored(repo: git.Repo, name: str) -> None:
    """Make git ignore `name/` in the user's checkout, through .git/info/exclude if needed."""
    try:
        repo.git.check_ignore("-q", f"{name}/probe")
        return
    except git.GitCommandError:
        pass
    exclude = _common_dir(repo) / "info" / "exclude"
    exclude.parent.mkdir(parents=True, exist_ok=True)
    text = exclude.read_text(encoding="utf-8") if exclude.exists() else ""
    # a new file renamed over the old one: a kill leaves the old exclude file or the new, never a torn one
    with tempfile.NamedTemporaryFile("w", dir=exclude.parent, prefix=".simopt-exclude-", delete=False,
                                     encoding="utf-8") as new:
        new.write(text + ("" if text.endswith("\n") or not text else "\n") + f"/{name}/\n")
    os.replace(new.name, exclude)


def lock_session(root: Path, tag: str):
    """Hold an exclusive lock for session `tag`; the kernel drops it if the process dies."""
    path = Path(root) / STATE_DIR / "locks" / f"{tag}.lock"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle = open(path, "w")
    except OSError as error:
        raise UserError(f"cannot create the session lock {path}: {error.strerror or error}") from None
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        raise UserError(f"session {tag!r} is running in another process") from None
    return handle


def _remove_stale_locks(repo: git.Repo, workspace: Workspace) -> None:
    """Git lock files a killed run of the session left (we hold the session lock and its processes
    are gone, so nobody else uses them): its branch's, and those of its worktrees."""
    locks = [_common_dir(repo) / "refs" / "heads" / f"{workspace.branch}.lock"]
    for directory in (workspace.worktree, workspace.best_dir, workspace.base_dir):
        for admin in _admin_dirs(repo, directory):
            locks += admin.glob("*.lock")
    for lock in locks:
        lock.unlink(missing_ok=True)


def _identity(wt: git.Repo) -> list[str]:
    """`-c` settings so a commit works without the user's identity or signing setup."""
    settings = ["commit.gpgsign=false", "gc.auto=0", "maintenance.auto=false"]  # no gc left running in the background
    reader = wt.config_reader()
    if not reader.has_option("user", "name") or not reader.has_option("user", "email"):
        settings += ["user.name=simopt", "user.email=simopt@localhost"]
    return settings
