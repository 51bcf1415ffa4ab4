"""Paired timing of two versions: statistics, workers, the sequential keep/discard decision."""

from simopt.measure.command import compare_commands
from simopt.measure.paired import compare_versions

__all__ = ["compare_commands", "compare_versions"]
