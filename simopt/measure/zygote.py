"""The parent of one lane's two workers: started with a fresh random layout, it forks them both.

Run by the orchestrator (simopt.measure.client.start_pair) as

    python -P -m simopt.measure.zygote --engine DIR [--cpu N] \\
        --worker ROOT IN_FD OUT_FD ERR_FD --worker ROOT IN_FD OUT_FD ERR_FD

A forked child inherits its parent's address space as it is, so the two workers of a lane see
the interpreter, its libraries, the heap and the stack at the same addresses, and a fresh
zygote per lane draws a fresh random placement (ASLR): the layout luck is paired away within a
lane and still averaged across lanes. Each child serves the simopt.measure.worker protocol on
the pipe ends it was given (IN_FD becomes its stdin, OUT_FD its stdout, ERR_FD its stderr: all
passed down open by the orchestrator); the zygote itself only waits for both and exits.
"""

from __future__ import annotations

import argparse
import os
import sys
import traceback

from simopt.engine import DEFAULT_ENGINE
from simopt.measure import worker  # imported before forking, so both children start from one heap


def _become_worker(root: str, engine: str, fds: tuple[int, int, int], every_fd: set[int]) -> int:
    """In a forked child: make `fds` its stdin, stdout and stderr and serve the worker protocol."""
    for fd in every_fd - set(fds):
        os.close(fd)
    for target, fd in enumerate(fds):
        os.dup2(fd, target)
    for fd in set(fds) - {0, 1, 2}:
        os.close(fd)
    os.chdir(root)
    return worker.main([root, "--engine", engine])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="simopt lane zygote")
    parser.add_argument("--engine", default=DEFAULT_ENGINE)
    parser.add_argument("--cpu", type=int, default=None)
    parser.add_argument("--worker", nargs=4, action="append", required=True,
                        metavar=("ROOT", "IN_FD", "OUT_FD", "ERR_FD"))
    args = parser.parse_args(argv)
    if args.cpu is not None:
        os.sched_setaffinity(0, {args.cpu})  # before forking: both workers inherit it
    workers = [(root, (int(in_fd), int(out_fd), int(err_fd))) for root, in_fd, out_fd, err_fd in args.worker]
    every_fd = {fd for _, fds in workers for fd in fds}
    children = []
    for root, fds in workers:
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                code = _become_worker(root, args.engine, fds, every_fd)
            except BaseException:
                traceback.print_exc()
            finally:
                os._exit(code)
        children.append(pid)
    for fd in every_fd:
        os.close(fd)
    for pid in children:
        os.waitpid(pid, 0)
    return 0


if __name__ == "__main__":
    sys.exit(main())
