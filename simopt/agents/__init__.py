"""Proposers: whatever changes the candidate worktree for one experiment."""
