"""The base of every error caused by a user's input or setup: the CLI prints it in one line, no traceback."""


class P2MedError(Exception):
    """A user-facing error whose message names the file, record or field and what was expected."""
