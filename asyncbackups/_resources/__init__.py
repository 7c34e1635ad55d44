"""The API's resources as the client exposes them: backups (and fleets of them),
servers, and raw responses, on a small base that builds every call.
"""
