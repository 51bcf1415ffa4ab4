"""One run of candidate code, in a child of the zygote: the data protocol. Harness code, stdlib only.

Everything before `serve` imports the engine is the harness's; after that the process belongs to
the candidate, and nothing it answers is trusted: the harness validates every reply, computes
digests itself and reads the CPU clock from outside.

Requests and replies on the run's data socket, one JSON object per line:
    {"op": "load"}                              -> {"ok": true}      import the engine package
    {"op": "build", "instance": I, "trace": B}  -> {"ok": true}      Simulation(I, trace=B)
    {"op": "advance", "until": T}               -> {"now": N, "events": E}
    {"op": "finish"}                            -> {"result": R, "now": N, "events": E}   Simulation.result()
    {"op": "profile", "instance": I, "top": K}  -> {"result": R, "profile": TEXT}   one run under cProfile
    {"op": "exit"}                              (the run ends)
An engine exception answers {"error": "<the traceback's last lines>"}.
"""

from __future__ import annotations

import gc
import importlib.machinery
import importlib.util
import json
import os
import site
import socket
import sys
import traceback

from audit import install  # loaded by the zygote with this module, before any fork

TRACEBACK_LINES = 12
MAX_REQUEST = 1 << 30


def _readable_roots(engine: str, tmp: str) -> tuple[str, ...]:
    roots = {sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix, *site.getsitepackages(),
             os.path.dirname(os.path.abspath(__file__)), engine, "/dev/null", "/dev/urandom", "/proc/self",
             f"/proc/{os.getpid()}", "/usr/lib", "/usr/share/zoneinfo"}
    return tuple(sorted(root for root in roots if root))


def _traceback_tail() -> str:
    return "".join(traceback.format_exc().splitlines(keepends=True)[-TRACEBACK_LINES:]).rstrip()


class SourceOnlyLoader(importlib.machinery.SourceFileLoader):
    """Loads an engine module from the code the zygote compiled from its source, never from a .pyc.

    A cached .pyc in the candidate's tree could hold other code than the source everyone reads;
    source compiled by the zygote cannot.
    """

    def __init__(self, fullname: str, path: str, codes: dict) -> None:
        super().__init__(fullname, path)
        self.codes = codes

    def get_code(self, fullname: str):
        code = self.codes.get(self.get_filename(fullname))
        return code if code is not None else self.source_to_code(self.get_data(self.get_filename(fullname)), self.path)


class EngineFinder:
    """Finds the engine's submodules and gives them a SourceOnlyLoader."""

    def __init__(self, package: str, directory: str, codes: dict) -> None:
        self.package, self.directory, self.codes = package, directory, codes

    def find_spec(self, fullname: str, path=None, target=None):
        if not fullname.startswith(self.package + "."):
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is not None and isinstance(spec.loader, (importlib.machinery.SourcelessFileLoader,
                                                         importlib.machinery.ExtensionFileLoader)):
            # a .pyc without its source, or a native extension: code nobody can read, never run
            raise ImportError(f"{fullname} is compiled code without source ({spec.origin}): only source is imported",
                              name=fullname, path=spec.origin)
        if spec is None or not str(spec.origin or "").endswith(".py"):
            return spec
        spec.loader = SourceOnlyLoader(fullname, spec.origin, self.codes)
        return spec


class Run:
    """The state of one run: the engine module and its simulation."""

    def __init__(self, engine: str, module: str, codes: dict) -> None:
        self.engine_dir, self.module_name, self.codes = engine, module, codes
        self.engine = None
        self.simulation = None

    def handle(self, request: dict) -> dict:
        op = request.get("op")
        if op == "load":
            self.engine = self._import()
            gc.freeze()  # the engine's modules never die: keep them out of every later collection
            return {"ok": True}
        if op == "build":
            self.simulation = self.engine.Simulation(request["instance"], trace=bool(request.get("trace")))
            return {"ok": True}
        if op == "advance":
            self.simulation.run(request["until"])
            return {"now": self.simulation.now, "events": self.simulation.events}
        if op == "finish":
            result = self.simulation.result()
            return {"result": result, "now": self.simulation.now, "events": self.simulation.events}
        if op == "profile":
            return self._profile(request["instance"], int(request.get("top", 25)))
        raise ValueError(f"unknown op {op!r}")

    def _import(self):
        sys.meta_path.insert(0, EngineFinder(self.module_name, self.engine_dir, self.codes))
        init = os.path.join(self.engine_dir, "__init__.py")
        spec = importlib.util.spec_from_file_location(self.module_name, init,
                                                      loader=SourceOnlyLoader(self.module_name, init, self.codes),
                                                      submodule_search_locations=[self.engine_dir])
        module = importlib.util.module_from_spec(spec)
        sys.modules[self.module_name] = module
        spec.loader.exec_module(module)
        return module

    def _profile(self, instance: dict, top: int) -> dict:
        import cProfile
        import io
        import pstats

        profiler = cProfile.Profile()
        profiler.enable()
        result = self.engine.simulate(instance)
        profiler.disable()
        text = io.StringIO()
        pstats.Stats(profiler, stream=text).sort_stats("cumulative").print_stats(top)
        return {"result": result, "profile": text.getvalue()}


def serve(data_fd: int, audit_fd: int, engine: str, module: str, tmp: str, codes: dict) -> int:
    """Serve one run on `data_fd`; refused operations are reported on `audit_fd`."""
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.dup2(2, 1)  # whatever the engine prints goes to stderr, never into the protocol
    sys.stdout = sys.stderr
    os.chdir(tmp)
    sock = socket.socket(fileno=data_fd)
    reader = sock.makefile("rb", buffering=1 << 16)
    install(audit_fd, readable=_readable_roots(engine, tmp), writable=(tmp,))
    run = Run(engine, module, codes)
    dumps, loads = json.dumps, json.loads
    payload = b""
    while True:
        line = reader.readline(MAX_REQUEST)
        if not line:
            return 0
        request = loads(line)
        if request.get("op") == "exit":
            return 0
        # Everything a step allocated is freed inside the next timed step (or never: the run
        # ends with os._exit). Freed between steps, a big reply cost milliseconds of CPU outside
        # any timed step, which the harness counts against the run as hidden work.
        payload = b""
        try:
            answer = run.handle(request)
            data = dumps(answer, allow_nan=False)
        except Exception:
            data = dumps({"error": _traceback_tail()})
        payload = data.encode() + b"\n"
        sock.sendall(payload)
