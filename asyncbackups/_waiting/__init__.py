"""Waiting for backups: the one shared poller of a client, its planner, and fleets."""
