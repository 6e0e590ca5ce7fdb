"""Scheduled and recurring runs: a task sent at a time, or on every tick of a cron expression."""
