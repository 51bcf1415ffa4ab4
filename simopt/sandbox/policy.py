"""What a sandboxed process may see and use: paths, environment, limits.

A policy is plain data; the backends (bubblewrap, Landlock) turn it into a confined process.
Everything not granted is denied: the process sees the system's libraries and the Python
installation read-only, the directories the policy lists, a private temporary directory, and
nothing else of the file system; it has no network and an allow-listed environment.
"""

from __future__ import annotations

import fnmatch
import os
import site
import sys
from dataclasses import dataclass, field
from pathlib import Path

MiB = 1024 * 1024
GiB = 1024 * MiB

# Read-only everywhere: the dynamic linker, the C library, the interpreter's shared libraries.
SYSTEM_PATHS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/etc/ld.so.cache", "/etc/alternatives")
BASE_ENV = {
    "PATH": "/usr/local/bin:/usr/bin:/bin",
    "LANG": "C.UTF-8",
    "LC_ALL": "C.UTF-8",
    "HOME": "/tmp",
    "TMPDIR": "/tmp",
    "PYTHONDONTWRITEBYTECODE": "1",
    "PYTHONNOUSERSITE": "1",
}
# Names of variables that never enter a sandbox, whoever asks: keys, tokens, cloud credentials.
SECRET_PATTERNS = ("*KEY*", "*TOKEN*", "*SECRET*", "*PASSWORD*", "*PASSWD*", "*CREDENTIAL*", "*AUTH*",
                   "OPENAI_*", "ANTHROPIC_*", "AWS_*", "AZURE_*", "GOOGLE_*", "GCP_*", "GITHUB_*", "HF_*",
                   "SSH_*", "GPG_*", "KUBECONFIG", "DOCKER_*", "NETRC", "SIMOPT_*")


def is_secret(name: str) -> bool:
    """True for environment names that may hold a secret (or steer simopt itself)."""
    upper = name.upper()
    return any(fnmatch.fnmatchcase(upper, pattern) for pattern in SECRET_PATTERNS)


def sandbox_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The allow-listed environment: BASE_ENV plus `extra`, secrets refused whoever passes them."""
    env = dict(BASE_ENV)
    for name, value in (extra or {}).items():
        if is_secret(name):
            raise ValueError(f"environment variable {name!r} looks like a secret and never enters a sandbox")
        env[name] = value
    return env


def python_paths(executable: str | os.PathLike = sys.executable) -> list[Path]:
    """The directories an interpreter needs: its prefixes and site-packages (this interpreter's)."""
    found = {Path(sys.prefix), Path(sys.base_prefix), Path(sys.exec_prefix), Path(sys.base_exec_prefix)}
    found.update(Path(p) for p in site.getsitepackages())
    exe = Path(executable)
    found.update({exe.parent, exe.resolve().parent})
    return sorted(p for p in found if p.exists())


def hidden_harness_paths() -> list[Path]:
    """Installed copies of simopt itself: a candidate has no business reading the harness."""
    hidden = []
    for packages in site.getsitepackages():
        for entry in Path(packages).glob("*"):
            name = entry.name.lower()
            if name == "simopt" or name.startswith(("simopt-", "__editable__.simopt", "__editable___simopt")):
                hidden.append(entry)
    return hidden


@dataclass(frozen=True)
class Policy:
    """A sandbox: what is visible (read-only unless listed writable), the environment, the limits.

    `binds` maps host paths to paths inside the sandbox (bubblewrap); the Landlock backend cannot
    remap, so there a bind is visible at its host path and `inside()` says where to look.
    """

    binds: tuple[tuple[Path, str], ...] = ()
    writable: tuple[tuple[Path, str], ...] = ()
    read_only: tuple[Path, ...] = field(default_factory=lambda: tuple(python_paths()))
    hidden: tuple[Path, ...] = field(default_factory=lambda: tuple(hidden_harness_paths()))
    env: dict[str, str] = field(default_factory=sandbox_env)
    cwd: str = "/tmp"
    tmp_bytes: int = 256 * MiB
    memory_bytes: int = 3 * GiB
    max_processes: int = 12
    file_bytes: int = 256 * MiB
    fixed_layout: bool = False

    def __post_init__(self) -> None:
        for name in self.env:
            if is_secret(name):
                raise ValueError(f"environment variable {name!r} looks like a secret and never enters a sandbox")
        if self.memory_bytes < 64 * MiB:
            raise ValueError(f"memory_bytes(={self.memory_bytes}) must be >= 64 MiB")
        if self.max_processes < 3:
            raise ValueError(f"max_processes(={self.max_processes}) must be >= 3")
