"""Turn a REV|PATH argument into a directory holding that version, for as long as it is needed."""

from __future__ import annotations

import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from simopt.errors import UserError


@contextmanager
def materialize(spec: str, *, repo_dir: Path, engine: str | None) -> Iterator[Path]:
    """Yield a version root: an existing directory as is, or a git revision in a temporary worktree.

    `engine`: the package every version must hold (None: any directory or revision will do).
    """
    path = Path(spec)
    if path.is_dir():
        root = path.resolve()
        if engine is not None and not (root / engine / "__init__.py").is_file():
            raise UserError(f"{spec}: not a version of the target (no {engine}/__init__.py in it)")
        yield root
        return
    import git

    try:
        repo = git.Repo(repo_dir, search_parent_directories=True)
    except (git.InvalidGitRepositoryError, git.NoSuchPathError):
        raise UserError(f"{spec}: neither a directory nor a revision ({repo_dir} is not in a git repository)") from None
    try:
        commit = repo.commit(spec)
    except (git.BadName, ValueError):
        raise UserError(f"{spec}: neither a directory nor a revision of {repo.working_dir}") from None
    with tempfile.TemporaryDirectory(prefix="simopt-version-") as scratch:
        worktree = Path(scratch) / commit.hexsha[:12]
        repo.git.worktree("add", "--detach", str(worktree), commit.hexsha)
        try:
            if engine is not None and not (worktree / engine / "__init__.py").is_file():
                raise UserError(f"{spec}: revision {commit.hexsha[:12]} has no {engine}/__init__.py")
            yield worktree
        finally:
            repo.git.worktree("remove", "--force", str(worktree))
