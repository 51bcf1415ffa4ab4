"""The sandbox around candidate code (simopt.sandbox), run for real: what a confined process can and cannot do.

Every property is checked on each backend that works on this machine (bubblewrap, Landlock),
by starting a real confined Python and asking it to try. Where the same code, run by the
unconfined `none` backend, succeeds, that control shows the refusal comes from the sandbox and
not from the test. Landlock is documented as weaker (docs/threat-model.md: no pid namespace,
no path remapping or hiding): its tests assert what it promises and nothing more.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from contextlib import contextmanager
from pathlib import Path

import pytest

from simopt.sandbox import Policy, is_secret, launch, sandbox_env, spawn
from simopt.sandbox.cpu import CGROUP_ROOT, GROUP, ProcessTreeClock
from simopt.sandbox.policy import BASE_ENV, MiB

HARNESS = Path(__file__).resolve().parents[1]
BACKENDS = ("bwrap", "landlock")
SECRET = "sk-sandbox-test-0123456789abcdef"
SECRET_NAMES = ("OPENAI_API_KEY", "AWS_SECRET_ACCESS_KEY", "GITHUB_TOKEN", "SIMOPT_ANYTHING")


def require(backend: str) -> str:
    if not launch.available(backend):
        pytest.skip(f"the {backend} sandbox does not work on this machine")
    return backend


@pytest.fixture(params=BACKENDS)
def backend(request) -> str:
    return require(request.param)


@contextmanager
def sandboxed(backend: str, code: str, *args: str, policy: Policy | None = None, stdin=subprocess.DEVNULL):
    """A confined `python -c code args...` with piped output; closed (tree killed) on the way out."""
    sandbox = spawn([sys.executable, "-c", code, *args], policy or Policy(), backend=backend, stdin=stdin,
                    stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        yield sandbox
    finally:
        sandbox.close()


def run_python(backend: str, code: str, *args: str, policy: Policy | None = None,
               timeout_s: float = 30) -> subprocess.CompletedProcess:
    """Run `code` confined by `backend` (or unconfined: "none") to its end; its exit code and output."""
    with sandboxed(backend, code, *args, policy=policy) as sandbox:
        out, err = sandbox.process.communicate(timeout=timeout_s)
        return subprocess.CompletedProcess(code, sandbox.process.returncode, out.decode(), err.decode())


def answer(done: subprocess.CompletedProcess) -> dict:
    """The JSON object the confined code printed last."""
    assert done.stdout.strip(), f"no answer (exit {done.returncode}): {done.stderr[-800:]}"
    return json.loads(done.stdout.strip().splitlines()[-1])


def under(path: Path, roots) -> bool:
    path = Path(path).resolve()
    return any(path == Path(root).resolve() or Path(root).resolve() in path.parents for root in roots)


def wait_until(condition, timeout_s: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return bool(condition())


# -- the environment -----------------------------------------------------------------------------

def test_environment_is_allow_listed(backend, monkeypatch):
    """Secrets in the harness's environment never reach the sandbox; PATH and HOME are the policy's."""
    for name in SECRET_NAMES:
        monkeypatch.setenv(name, SECRET)
    monkeypatch.setenv("HOME", "/root/not-the-sandbox-home")
    policy = Policy()
    with sandboxed(backend, "import json, os; print(json.dumps(dict(os.environ)))", policy=policy) as sandbox:
        out, err = sandbox.process.communicate(timeout=30)
        private_tmp = sandbox.tmp
    assert sandbox.process.returncode == 0, err.decode()
    env = json.loads(out)
    assert not set(SECRET_NAMES) & set(env)
    assert SECRET not in out.decode() + err.decode()
    assert set(env) <= set(policy.env) | {"PWD"}, f"names that are not in the allow-list: {set(env) - set(policy.env)}"
    assert env["PATH"] == BASE_ENV["PATH"]
    if backend == "bwrap":
        assert env["HOME"] == env["TMPDIR"] == "/tmp"
    else:  # Landlock cannot remap: home and temporary directory are the sandbox's private directory
        assert env["HOME"] == env["TMPDIR"] == str(private_tmp)
        assert Path(private_tmp).name.startswith("simopt-sandbox-")


def test_secret_names_never_enter_a_policy():
    """A policy or extra environment naming a secret is refused; ordinary names pass the allow-list."""
    for name in (*SECRET_NAMES, "ANTHROPIC_API_KEY", "MY_PASSWORD", "SSH_AUTH_SOCK", "HF_TOKEN"):
        assert is_secret(name), name
        with pytest.raises(ValueError):
            sandbox_env({name: "x"})
        with pytest.raises(ValueError):
            Policy(env={**BASE_ENV, name: "x"})
    for name in ("PATH", "PYTHONHASHSEED", "LANG", "PAD"):
        assert not is_secret(name), name
    assert sandbox_env({"PYTHONHASHSEED": "7"})["PYTHONHASHSEED"] == "7"


# -- the file system -----------------------------------------------------------------------------

READ = """
import json, sys
try:
    with open(sys.argv[1]) as f:
        print(json.dumps({"read": f.read()}))
except OSError as e:
    print(json.dumps({"refused": type(e).__name__}))
"""


def test_reading_a_file_outside_the_policy_fails(backend, tmp_path):
    """A world-readable file in a directory the policy does not list cannot be read from inside."""
    secret = tmp_path / "secret.txt"
    secret.write_text(SECRET)
    secret.chmod(0o644)
    assert not under(secret, Policy().read_only)
    assert answer(run_python("none", READ, str(secret))) == {"read": SECRET}  # control: unconfined, it reads
    done = run_python(backend, READ, str(secret))
    assert "refused" in answer(done)
    assert SECRET not in done.stdout + done.stderr


def test_the_users_home_is_out_of_reach(backend):
    """A file planted in the user's home cannot be read, and does not show in a listing of the home."""
    home = Path(os.path.expanduser("~")).resolve()
    if not home.is_dir() or under(home, Policy().read_only) or home == Path(tempfile.gettempdir()).resolve():
        pytest.skip(f"the home directory {home} is missing or inside a path the policy grants")
    fd, planted = tempfile.mkstemp(dir=home, prefix=".simopt-sandbox-test-")
    try:
        os.write(fd, SECRET.encode())
        os.close(fd)
        os.chmod(planted, 0o644)
        code = READ + """
import os
try:
    listed = os.listdir(sys.argv[2])
except OSError as e:
    listed = type(e).__name__
print(json.dumps({"listed": listed}))
"""
        control = run_python("none", code, planted, str(home))
        assert {"read": SECRET} == json.loads(control.stdout.splitlines()[0])
        done = run_python(backend, code, planted, str(home))
        first, listing = (json.loads(line) for line in done.stdout.splitlines())
        assert "refused" in first
        assert SECRET not in done.stdout + done.stderr
        assert not isinstance(listing["listed"], list) or Path(planted).name not in listing["listed"]
    finally:
        os.unlink(planted)


def test_the_harness_checkout_is_unreadable(backend):
    """The harness's own sources (this checkout) are not readable by confined code."""
    source = HARNESS / "simopt" / "sandbox" / "policy.py"
    if under(source, Policy().read_only):
        pytest.skip("this checkout lies inside a path the policy grants (the Python installation)")
    done = run_python(backend, READ, str(source))
    assert "refused" in answer(done)


def test_bwrap_hides_the_installed_harness():
    """Under bubblewrap the policy's hidden paths (simopt's own install entries) are empty; simopt does not import."""
    require("bwrap")
    policy = Policy()
    code = """
import json, os, sys
seen = {}
for path in sys.argv[1:]:
    try:
        seen[path] = os.listdir(path) if os.path.isdir(path) else open(path, "rb").read().decode("latin-1")
    except OSError as e:
        seen[path] = type(e).__name__
try:
    import simopt
    imported = simopt.__file__
except ImportError:
    imported = None
print(json.dumps({"seen": seen, "imported": imported}))
"""
    hidden = [str(path) for path in policy.hidden]
    reply = answer(run_python("bwrap", code, *hidden, policy=policy))
    assert reply["imported"] is None
    for path in hidden:
        assert reply["seen"][path] in ([], "", "FileNotFoundError", "PermissionError"), path


WRITE = """
import json, sys
done = {}
for path in sys.argv[1:]:
    try:
        with open(path, "w") as f:
            f.write("planted")
        with open(path) as f:
            done[path] = f.read()
    except OSError as e:
        done[path] = type(e).__name__
print(json.dumps(done))
"""


def test_writing_outside_the_private_tmp_fails(backend, tmp_path):
    """A world-writable host directory, the Python installation and the host's /tmp take no write from inside."""
    tmp_path.chmod(0o777)
    name = f"simopt-sandbox-test-{uuid.uuid4().hex}"
    targets = [tmp_path / name, Path(sys.prefix) / name, Path("/tmp") / name]
    try:
        control = answer(run_python("none", WRITE, str(targets[0])))  # unconfined, the same code writes
        assert control == {str(targets[0]): "planted"}
        targets[0].unlink()
        answer(run_python(backend, WRITE, *map(str, targets)))
        for target in targets:  # refused, or (bwrap's /tmp) written to a private tmpfs nobody else sees
            assert not target.exists(), f"{target} was written from inside the sandbox"
    finally:
        for target in targets:
            target.unlink(missing_ok=True)


def test_writing_inside_the_private_tmp_works_and_is_removed_on_close(backend):
    """The private temporary directory takes writes; closing the sandbox removes it."""
    code = WRITE.replace("sys.argv[1:]", "[os.path.join(os.environ['TMPDIR'], 'probe.txt')]").replace(
        "import json, sys", "import json, os, sys")
    with sandboxed(backend, code) as sandbox:
        out, err = sandbox.process.communicate(timeout=30)
        assert sandbox.process.returncode == 0, err.decode()
        assert list(json.loads(out).values()) == ["planted"]
        private = sandbox.tmp
        if backend == "landlock":
            assert (private / "probe.txt").read_text() == "planted"
    if private is not None:
        assert not private.exists()


def test_a_file_larger_than_the_limit_cannot_be_written(backend):
    """`file_bytes` caps the size of any file the sandbox writes."""
    code = """
import json, os
try:
    with open(os.path.join(os.environ["TMPDIR"], "big"), "wb") as f:
        f.write(b"x" * (4 * 1024 * 1024))
    print(json.dumps({"wrote": os.path.getsize(os.path.join(os.environ["TMPDIR"], "big"))}))
except OSError as e:
    print(json.dumps({"refused": e.errno}))
"""
    assert "refused" in answer(run_python(backend, code, policy=Policy(file_bytes=1 * MiB)))


# -- network, processes, signals -----------------------------------------------------------------

CONNECT = """
import json, socket, sys
try:
    with socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=3) as c:
        c.sendall(b"exfiltrated")
    print(json.dumps({"connected": True}))
except OSError as e:
    print(json.dumps({"connected": False, "error": type(e).__name__}))
"""


def test_tcp_connect_to_the_hosts_loopback_fails(backend):
    """A listener on the host's 127.0.0.1 is unreachable from inside (and gets no connection)."""
    with socket.create_server(("127.0.0.1", 0)) as server:
        server.settimeout(0.5)
        port = str(server.getsockname()[1])
        assert answer(run_python("none", CONNECT, port)) == {"connected": True}  # control: it is reachable
        server.accept()[0].close()
        reply = answer(run_python(backend, CONNECT, port))
        assert reply["connected"] is False
        with pytest.raises(TimeoutError):
            server.accept()


FORK_LOOP = """
import json, os, time
forked, refused = 0, None
for _ in range(40):
    try:
        pid = os.fork()
    except OSError as e:
        refused = e.errno
        break
    if pid == 0:
        os.closerange(0, 1024)
        time.sleep(30)
        os._exit(0)
    forked += 1
print(json.dumps({"forked": forked, "refused": refused}))
"""


def test_the_process_limit_holds(backend):
    """With max_processes=5 a fork loop is refused after a few children, not 40."""
    reply = answer(run_python(backend, FORK_LOOP, policy=Policy(max_processes=5)))
    assert reply["refused"] is not None
    assert reply["forked"] < 5


def test_the_memory_limit_holds(backend):
    """Touching 192 MiB under a 64 MiB limit fails (MemoryError or the cgroup's OOM kill, which the sandbox reports)."""
    code = "x = b'\\x01' * (192 * 1024 * 1024); print('ALLOCATED', len(x))"
    assert "ALLOCATED" in run_python(backend, code, policy=Policy(memory_bytes=512 * MiB)).stdout  # control
    with sandboxed(backend, code, policy=Policy(memory_bytes=64 * MiB)) as sandbox:
        out, err = sandbox.process.communicate(timeout=60)
        assert sandbox.process.returncode != 0
        assert b"ALLOCATED" not in out
        if b"MemoryError" not in err:  # not refused by an rlimit: then the cgroup killed it, and says so
            assert sandbox.cgroup is not None
            assert sandbox.memory_exceeded(), "the cgroup killed the process for memory but memory_exceeded() is False"


@pytest.fixture
def victims():
    """Start host processes outside every sandbox, unconfined but without capabilities (like the sandbox's
    own), each holding a secret in its environment; all are killed at the end."""
    started = []

    def start() -> launch.Sandboxed:
        victim = spawn([sys.executable, "-c", "import time; time.sleep(60)"],
                       Policy(env={**BASE_ENV, "VICTIM_DATA": SECRET}), backend="none")
        started.append(victim)
        assert wait_until(lambda: SECRET.encode() in Path(f"/proc/{victim.pid}/environ").read_bytes())
        return victim

    yield start
    for victim in started:
        victim.close()


def test_other_processes_environments_are_unreadable(backend, victims):
    """/proc/PID/environ of a host process holding a secret cannot be read from inside."""
    path = f"/proc/{victims().pid}/environ"
    assert SECRET in answer(run_python("none", READ, path)).get("read", "")  # control: unconfined, it reads
    done = run_python(backend, READ, path)
    assert SECRET not in done.stdout + done.stderr


SIGNAL = """
import json, os, signal, sys
try:
    os.kill(int(sys.argv[1]), signal.SIGKILL)
    print(json.dumps({"sent": True}))
except OSError as e:
    print(json.dumps({"sent": False, "error": type(e).__name__}))
"""


def test_signals_cannot_reach_processes_outside(backend, victims):
    """SIGKILL to a host process of the same uid fails from inside; the process lives on."""
    control = victims()
    assert answer(run_python("none", SIGNAL, str(control.pid)))["sent"] is True  # unconfined, the same code kills
    assert wait_until(lambda: control.process.poll() is not None)
    victim = victims()
    assert answer(run_python(backend, SIGNAL, str(victim.pid)))["sent"] is False
    time.sleep(0.1)
    assert victim.process.poll() is None


def test_bwrap_has_its_own_pid_namespace():
    """Under bubblewrap /proc lists only the sandbox's own processes."""
    require("bwrap")
    code = "import json, os; print(json.dumps(sorted(int(p) for p in os.listdir('/proc') if p.isdigit())))"
    pids = answer(run_python("bwrap", code))
    assert len(pids) <= 3 and max(pids) < 10, pids


# -- the tree ends with the sandbox --------------------------------------------------------------

# A child that leaves its session and forks a grandchild, then exits (the grandchild is orphaned,
# outside the sandbox's process group); the main process then sleeps too. Each carries a marker
# in its command line, so the test finds them from outside by their host pids.
SPAWN_TREE = r"""
import os, sys
marker = sys.argv[1]
sleeper = [sys.executable, "-c", "import time; time.sleep(120)", marker]
child = os.fork()
if child == 0:
    os.setsid()
    if os.fork() == 0:
        os.closerange(0, 1024)
        os.execv(sys.executable, sleeper)
    os._exit(0)
os.waitpid(child, 0)
print("spawned", flush=True)
os.closerange(0, 1024)
os.execv(sys.executable, sleeper)
"""


def marked(marker: str) -> dict[int, list[bytes]]:
    """Host pids (and argv) of live processes whose command line holds `marker` (zombies have none)."""
    found = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit() and int(entry) != os.getpid():
            try:
                with open(f"/proc/{entry}/cmdline", "rb") as cmdline:
                    argv = cmdline.read().split(b"\0")
            except OSError:
                continue
            if marker.encode() in argv:
                found[int(entry)] = argv
    return found


def sleepers(marker: str) -> list[int]:
    """The marked sleepers of SPAWN_TREE (not bwrap, nor the processes whose code holds the marker)."""
    return [pid for pid, argv in marked(marker).items() if argv[2:3] == [b"import time; time.sleep(120)"]]


@pytest.mark.parametrize("end", ["close", "kill"])
def test_closing_or_killing_the_sandbox_ends_the_whole_tree(backend, end):
    """A grandchild that left the session, and the main process, are gone once the sandbox is closed/killed."""
    marker = f"simopt-tree-{uuid.uuid4().hex}"
    try:
        with sandboxed(backend, SPAWN_TREE, marker) as sandbox:
            assert sandbox.process.stdout.readline() == b"spawned\n"
            assert wait_until(lambda: len(sleepers(marker)) == 2), f"expected 2 sleepers, found {sleepers(marker)}"
            getattr(sandbox, end)()
            assert wait_until(lambda: not marked(marker)), f"alive after {end}(): {marked(marker)}"
    finally:
        for pid in marked(marker):
            os.kill(pid, signal.SIGKILL)


@pytest.mark.parametrize("which", ["bwrap", "landlock"])
def test_the_tree_dies_with_its_parent(which):
    """When the process that spawned the sandbox is SIGKILLed, every process of the sandbox dies too:
    bwrap's pid namespace ends with its first process; under Landlock the watchdog of
    simopt.processes kills the sandbox's cgroup (a setsid() grandchild escapes everything else)."""
    require(which)
    if which == "landlock" and not CGROUP_ROOT.is_dir():
        pytest.skip("no cgroup here: under Landlock a setsid() grandchild outlives a dead parent (docs/threat-model.md)")
    marker = f"simopt-parent-{uuid.uuid4().hex}"
    parent_code = f"""
import subprocess, sys, time
from simopt.sandbox import Policy, spawn
sandbox = spawn([sys.executable, "-c", {SPAWN_TREE!r}, {marker!r}], Policy(), backend={which!r}, stdout=subprocess.PIPE)
print(sandbox.process.stdout.readline().decode().strip(), flush=True)
time.sleep(120)
"""
    parent = subprocess.Popen([sys.executable, "-c", parent_code], stdout=subprocess.PIPE, cwd=HARNESS)
    private_tmps = set()
    try:
        assert parent.stdout.readline() == b"spawned\n"
        assert wait_until(lambda: len(sleepers(marker)) == 2), f"expected 2 sleepers, found {sleepers(marker)}"
        for pid in sleepers(marker):  # Landlock's private tmp is their cwd; the dead parent cannot remove it
            cwd = Path(os.readlink(f"/proc/{pid}/cwd"))
            if cwd.name.startswith("simopt-sandbox-"):
                private_tmps.add(cwd)
        parent.kill()
        parent.wait()
        assert wait_until(lambda: not sleepers(marker), 2.0), f"alive after the parent died: {sleepers(marker)}"

        def leftovers() -> list[Path]:
            groups = [group for controller in ("cpuacct", "pids", "memory", "unified")
                      for group in (CGROUP_ROOT / controller / GROUP).glob(f"{GROUP}-{parent.pid}-*")]
            return groups + [private for private in private_tmps if private.exists()]

        assert wait_until(lambda: not leftovers(), 5.0), f"left behind by the dead parent: {leftovers()}"
    finally:
        parent.kill()
        parent.wait()
        for pid in marked(marker):
            os.kill(pid, signal.SIGKILL)
        for controller in ("cpuacct", "pids", "memory", "unified"):  # the dead parent could not remove its cgroup
            for group in (CGROUP_ROOT / controller / GROUP).glob(f"{GROUP}-{parent.pid}-*"):
                wait_until(lambda: _rmdir(group), 5.0)
        for private in private_tmps:
            shutil.rmtree(private, ignore_errors=True)


def _rmdir(path: Path) -> bool:
    try:
        path.rmdir()
        return True
    except OSError:
        return False


# -- the CPU clock, read from outside ------------------------------------------------------------

# Burn ~0.3 s of CPU in a thread or a child process while every clock the process can read is
# patched to say nothing happened; then keep the tree alive until stdin closes, so the
# process-tree clock (which sees live processes only) can read it too. The thread has exited by then.
BURN = r"""
import json, os, sys, threading, time
real = time.thread_time
for name in ("time", "perf_counter", "process_time", "monotonic", "thread_time"):
    setattr(time, name, lambda *args: 0.0)
    setattr(time, name + "_ns", lambda *args: 0)
os.times = lambda: os.times_result((0.0, 0.0, 0.0, 0.0, 0.0))

def burn():
    start = real()
    while real() - start < 0.3:
        pass

if sys.argv[1] == "thread":
    worker = threading.Thread(target=burn)
    worker.start()
    worker.join()
else:
    read, write = os.pipe()
    child = os.fork()
    if child == 0:
        burn()
        os.write(write, b"x")
        sys.stdin.read()  # stay alive (for the schedstat clock) until the harness lets go
        os._exit(0)
    os.read(read, 1)
print(json.dumps({"process_time": time.process_time(), "os_times": list(os.times())}), flush=True)
sys.stdin.read()
if sys.argv[1] == "process":
    os.waitpid(child, 0)
"""


@pytest.mark.parametrize("burner", ["thread", "process"])
def test_the_cpu_clock_counts_threads_and_children_whatever_the_code_claims(backend, burner):
    """CPU burnt in a thread or a child process counts on the cgroup and process-tree clocks, whatever `time` says."""
    with sandboxed(backend, BURN, burner, stdin=subprocess.PIPE) as sandbox:
        claimed = json.loads(sandbox.process.stdout.readline())
        assert claimed == {"process_time": 0.0, "os_times": [0.0] * 5}  # what the code says of itself
        tree = ProcessTreeClock(sandbox.pid).usage_ns()  # the fallback where no cgroup can be made
        live = sandbox.usage_ns()
        sandbox.process.stdin.close()
        assert sandbox.process.wait(timeout=30) == 0, sandbox.process.stderr.read().decode()
        assert tree >= 0.2e9, f"the process-tree clock read {tree / 1e9:.3f} s"
        assert live >= 0.2e9, f"the sandbox's clock read {live / 1e9:.3f} s"
        if sandbox.cgroup is not None:  # the cgroup also keeps the time of processes that exited
            assert sandbox.usage_ns() >= live
