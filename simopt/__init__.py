"""simopt: let AI agents optimize simulators against a precise benchmark, without cheating.

The harness (everything in this package except `simopt.netsim`) is fixed; `simopt.netsim` is
the flagship optimization target and never imports the harness.
"""

__version__ = "0.1.0"
