"""Errors a user can act on: the CLI prints their message, never a traceback."""


class UserError(Exception):
    """A problem with what the user asked for (bad path, bad value, missing store)."""
