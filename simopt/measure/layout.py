"""One address-space layout for both workers of a lane.

With address-space layout randomization (ASLR) every process places the interpreter's machine
code, its libraries, heap and stack at fresh random addresses, and that placement alone moves a
process's speed by about 1.5% here (A/A lane medians spread 1.5% with ASLR, 0.4-0.6% without;
docs/measurement.md). The two versions of a comparison run the same interpreter, so that luck is
not part of any change: a worker asked for a fixed layout re-executes itself once with ASLR
disabled for its own process (Linux `personality(ADDR_NO_RANDOMIZE)`, what `setarch -R` does),
and both workers of a lane share one environment padding, which still moves the stack by the same
amount in both, differently from lane to lane. Where the kernel refuses (seccomp, not Linux), the
worker runs with whatever layout it got and says so.
"""

from __future__ import annotations

import ctypes
import os
import sys

ADDR_NO_RANDOMIZE = 0x0040000
QUERY = 0xFFFFFFFF  # personality(0xffffffff) reads the persona without changing it
REQUEST = "SIMOPT_FIXED_LAYOUT"  # set by the orchestrator: "1" asks the worker for a fixed layout
PADDING = "SIMOPT_LAYOUT_PADDING"  # shared by the two workers of a lane; its length shifts the stack
_REEXECUTED = "SIMOPT_FIXED_LAYOUT_REEXECUTED"  # guards against a second re-exec if the flag did not stick


def _personality(persona: int) -> int:
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.personality(ctypes.c_ulong(persona))
    except (OSError, AttributeError):
        return -1


def randomized() -> bool:
    """Whether this process was laid out with ASLR (True when that cannot be told)."""
    persona = _personality(QUERY)
    return persona == -1 or not persona & ADDR_NO_RANDOMIZE


def fix_layout() -> None:
    """Re-execute this process without ASLR when the orchestrator asked for it and the kernel allows.

    Called first thing in a worker; returns (without exec) when nothing was asked, the layout is
    already fixed, or disabling ASLR is refused.
    """
    if os.environ.get(REQUEST) != "1" or os.environ.get(_REEXECUTED):
        return
    persona = _personality(QUERY)
    if persona == -1 or persona & ADDR_NO_RANDOMIZE or _personality(persona | ADDR_NO_RANDOMIZE) == -1:
        return
    os.environ[_REEXECUTED] = "1"
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(sys.executable, sys.orig_argv)


def lane_environment(padding: int) -> dict[str, str]:
    """Environment for both workers of one lane: ask for a fixed layout, shift the stack by `padding`."""
    return {REQUEST: "1", PADDING: "x" * padding}
