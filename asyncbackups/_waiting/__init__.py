"""Waiting for backups: the records of waits, the plan of when to poll (pure functions
of time), the one shared poller of a client, and fleets.
"""
