"""Sandboxes for candidate code: every process that runs it is confined and clocked from outside.

    spawn(argv, policy)              a confined process tree (bubblewrap, else Landlock)
    run_command(cmd, tree=..., ...)  a target's shell command on a throwaway copy of its tree
    choose()                         the backend: $SIMOPT_SANDBOX (auto|bwrap|landlock|none)

The threat model, what each backend does and does not stop: docs/threat-model.md.
"""

from simopt.sandbox.command import run_command
from simopt.sandbox.launch import (BACKENDS, CHOICE_VARIABLE, SandboxUnavailable, Sandboxed, available, choose,
                                   description, spawn)
from simopt.sandbox.policy import Policy, is_secret, sandbox_env

__all__ = ["BACKENDS", "CHOICE_VARIABLE", "Policy", "SandboxUnavailable", "Sandboxed", "available", "choose",
           "description", "is_secret", "run_command", "sandbox_env", "spawn"]
