"""SimPy events that fire a callback at a time, in the canonical order of equal-time events.

SimPy orders its queue by (time, priority, insertion id). Encoding docs/semantics.md §6 (event
class first, then the class's key) into the integer priority makes SimPy's own order the
canonical one, so no two correct runs can process equal-time events differently.
"""

from __future__ import annotations

from typing import Any, Callable

import simpy

LINK_EVENT = 0
ROUTE_INSTALL = 1
ARRIVAL = 2
INJECTION = 3
TRANSMISSION_START = 4

_KEY_BITS = 96
_HALF_BITS = 32


def priority(event_class: int, first: int = 0, second: int = 0) -> int:
    """The SimPy priority of an event of `event_class` with key (first, second).

    Always above SimPy's URGENT (0), so `env.run(until=t)` stops before any event at t.
    """
    return ((event_class + 1) << _KEY_BITS) | (first << _HALF_BITS) | second


class At(simpy.events.Event):
    """An event that calls `callback(event)` at `env.now + delay`; `event.value` is `value`."""

    def __init__(self, env: simpy.Environment, delay: int, prio: int,
                 callback: Callable[[simpy.events.Event], None], value: Any = None):
        self.env = env
        self.callbacks = [callback]
        self._value = value
        self._ok = True
        env.schedule(self, prio, delay)
