"""The one error type the engine raises for bad input; its message is a single line for the user."""


class NstError(Exception):
    """A problem with what the caller asked for (a file, a size, an option): say what and what to do."""


class NstWarning(UserWarning):
    """Something the engine changed from what was asked so that the run can go on (one line to show)."""
