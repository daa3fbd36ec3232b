"""The one error type the engine raises for bad input; its message is a single line for the user."""


class NstError(Exception):
    """A problem with what the caller asked for (a file, a size, an option): say what and what to do."""
