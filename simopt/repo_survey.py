"""What `simopt init` finds in a repository: package, tests, virtual environment, benchmarks."""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

_NOT_PACKAGES = {"tests", "test", "testing", "docs", "doc", "benchmarks", "benchmark", "bench", "examples",
                 "example", "scripts", "build", "dist", "site-packages", "results"}
_VENVS = (".venv", "venv", "env", ".env")
_MAKE_TEST = re.compile(r"^test\s*:", re.MULTILINE)


@dataclass
class Survey:
    """The findings; None or empty where nothing was found."""

    package: str | None = None  # a path relative to the root: "ciw" or "src/ciw"
    tests: str | None = None  # a test folder relative to the root
    test_command: str | None = None
    venv: str | None = None  # "<venv>/bin/python", relative to the root
    benchmarks: list[str] = field(default_factory=list)  # what exists, with its kind
    package_tests: str | None = None  # tests inside the package folder (would be editable otherwise)
    judging_files: list[str] = field(default_factory=list)  # test configuration an agent must not change


def survey(root: Path, tracked: list[str]) -> Survey:
    """Look at the repository at `root` whose committed (or staged) files are `tracked`."""
    found = Survey()
    files = set(tracked)
    found.package = _package(root, files)
    found.tests = next((name for name in ("tests", "test") if any(path.startswith(name + "/") for path in files)), None)
    if found.package and any(path.startswith(f"{found.package}/tests/") for path in files):
        found.package_tests = f"{found.package}/tests"
    found.test_command = _test_command(root, files, found)
    found.venv = next((f"{name}/bin/python" for name in _VENVS if (root / name / "bin" / "python").exists()), None)
    found.benchmarks = _benchmarks(root, files)
    found.judging_files = sorted(name for name in ("conftest.py", "pytest.ini", "tox.ini", "setup.cfg", "pyproject.toml",
                                                   "setup.py", "noxfile.py", "Makefile") if name in files)
    return found


def _package(root: Path, files: set[str]) -> str | None:
    """The importable package the project is about: its distribution's name first, else the only one."""
    candidates = sorted({
        "/".join(path.split("/")[:-1]) for path in files
        if path.endswith("/__init__.py") and (path.count("/") == 1 or (path.startswith("src/") and path.count("/") == 2))
    })
    candidates = [c for c in candidates if c.split("/")[-1].lower() not in _NOT_PACKAGES]
    wanted = _distribution_name(root)
    if wanted:
        for candidate in candidates:
            if candidate.split("/")[-1].lower().replace("-", "_") == wanted:
                return candidate
    return candidates[0] if len(candidates) == 1 else None


def _distribution_name(root: Path) -> str | None:
    """The project's name from pyproject.toml or setup.py, normalized to an import name."""
    name = None
    try:
        name = tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8")).get("project", {}).get("name")
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        pass
    if not name:
        try:
            match = re.search(r"name\s*=\s*['\"]([^'\"]+)['\"]", (root / "setup.py").read_text(encoding="utf-8"))
            name = match.group(1) if match else None
        except (OSError, UnicodeDecodeError):
            pass
    return name.lower().replace("-", "_").replace(".", "_") if isinstance(name, str) else None


def _test_command(root: Path, files: set[str], found: Survey) -> str | None:
    """pytest over the test folder, else tox, else `make test`."""
    folder = found.tests or found.package_tests
    if folder:
        return f"python -m pytest -q -x -p no:cacheprovider {folder}"
    if "tox.ini" in files:
        return "tox -q"
    if "Makefile" in files and _MAKE_TEST.search(_read(root / "Makefile")):
        return "make test"
    return None


def _benchmarks(root: Path, files: set[str]) -> list[str]:
    """Existing benchmarks: asv, pytest-benchmark, pyperf, and scripts or folders named bench*."""
    found = []
    if "asv.conf.json" in files:
        found.append("asv.conf.json (asv)")
    for path in sorted(files):
        name = path.split("/")[-1]
        top = path.split("/")[0]
        if not path.endswith(".py"):
            continue
        if name.startswith("bench") or top.startswith("bench"):
            text = _read(root / path)
            kind = "pyperf" if "pyperf" in text else "pytest-benchmark" if "benchmark(" in text else "script"
            found.append(f"{path} ({kind})")
        elif "/test" in "/" + path and "benchmark(" in _read(root / path):
            found.append(f"{path} (pytest-benchmark)")
    return found[:10]


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
