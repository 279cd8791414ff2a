"""Option types shared by the subcommands."""

from __future__ import annotations

import argparse

__all__ = ["seed"]


def seed(text: str) -> int:
    """``type=`` of ``--seed`` options: a non-negative integer (what numpy's generators accept).

    Examples
    --------
    >>> seed("42")
    42
    """
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"a random seed is a non-negative integer such as 0 or "
                                         f"42; got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"a random seed is a non-negative integer such as 0 or "
                                         f"42; got {value}")
    return value
