"""Exceptions and warnings that graymatter raises on purpose.

Every error graymatter raises for bad input is a :class:`GraymatterError`; the command line prints
its message (one readable paragraph: what was expected, what was found, how to fix it) and exits
with status 2. Anything else reaching the user is a bug.
"""

from __future__ import annotations


class GraymatterError(Exception):
    """Base class of errors caused by the user's input or environment."""


class InputError(GraymatterError, ValueError):
    """An input file or argument is missing, malformed or inconsistent."""


class DesignError(GraymatterError, ValueError):
    """The model formula or design matrix cannot be built or is not estimable."""


class ContrastError(DesignError):
    """A contrast expression cannot be parsed, names unknown terms or is not estimable."""


class OutputError(GraymatterError):
    """An output file or folder cannot be written (a file in the way, read-only, disk full)."""


class GraymatterWarning(UserWarning):
    """Something was handled for the user but deserves attention (e.g. features masked out)."""


def format_choices(values, limit: int = 12) -> str:
    """Return ``values`` as a short comma-separated list for error messages.

    Parameters
    ----------
    values : iterable of str
        The allowed or offending values.
    limit : int, default=12
        Show at most this many, then ``… (N more)``.
    """
    values = [str(v) for v in values]
    shown = ", ".join(values[:limit])
    if len(values) > limit:
        shown += f", … ({len(values) - limit} more)"
    return shown
