"""What a session's history shows: summaries, tables, plots, reports and the final squash."""
