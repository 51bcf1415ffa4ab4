"""Load a version of the scenario engine (netsim) into this process: for tests and benchmarks only.

The harness never calls this on a candidate: candidate code runs only in sandboxed runners
(simopt.runner). Tests of netsim itself and benchmark scripts load versions they trust this way,
under a module name that cannot collide with the installed `simopt`.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

from simopt.errors import UserError

DEFAULT_ENGINE = "simopt/netsim"


def load_engine(root: Path, engine: str = DEFAULT_ENGINE, *, name: str = "netsim_target") -> ModuleType:
    """Import the engine package at `root/engine` as module `name` and return it."""
    package_dir = (Path(root) / engine).resolve()
    init = package_dir / "__init__.py"
    if not init.is_file():
        raise UserError(f"no engine package at {package_dir} (expected {init.name} there)")
    if name in sys.modules:
        loaded = sys.modules[name]
        if Path(loaded.__file__).resolve() != init:
            raise RuntimeError(f"module {name!r} is already loaded from {loaded.__file__}")
        return loaded
    spec = importlib.util.spec_from_file_location(name, init, submodule_search_locations=[str(package_dir)])
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    return module
