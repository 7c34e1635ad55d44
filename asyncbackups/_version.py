"""The package version, kept in one place (read by hatchling and the User-Agent)."""

__version__ = "0.2.0"
"""The version of asyncbackups (this round's: hardening, architecture, options, fleets)."""
