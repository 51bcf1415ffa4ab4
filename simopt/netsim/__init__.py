"""netsim: a deterministic packet-level network simulator on SimPy and networkx.

THIS PACKAGE IS THE OPTIMIZATION TARGET. Agents may change anything in it to make it faster,
as long as every run stays exactly as docs/semantics.md defines it: the same per-flow outcomes
and digest for every instance, however the run is sliced, with or without a trace. The guard
suite (guards/, protected) checks that against an independent oracle on topologies nobody can
predict; topology-specific fast paths are allowed only behind a structural check of the graph,
with the generic algorithm as fallback.

What must stay true of the package itself: it imports nothing from the rest of simopt (only its
own modules, via relative imports, the standard library, simpy and networkx), and it keeps the
public API below.

    sim = Simulation(instance, trace=False)
    sim.run(until_ns)      # process every event with time < until_ns
    sim.now, sim.events    # time reached, events processed so far
    sim.result()           # runs to the horizon; outcomes, totals, digest (and trace)
    simulate(instance)     # the same in one call
"""

from .simulation import Simulation, simulate

__all__ = ["Simulation", "simulate"]
