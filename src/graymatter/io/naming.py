"""File-name-safe labels shared by the workflows that write files and the report that reads them."""

from __future__ import annotations

import re

_SYMBOLS = {">": "gt", "<": "lt", "+": "plus", "=": "eq"}


def contrast_slug(name: str) -> str:
    """Turn a contrast name into a file-name-safe label (``"HC > MDD"`` -> ``"HCgtMDD"``).

    Letters and digits are kept, ``> < + =`` become ``gt lt plus eq``, other characters separate
    words (joined in camel case), so the label is a valid BIDS entity value.

    Parameters
    ----------
    name : str
        The contrast name.

    Returns
    -------
    slug : str
        ``""`` when the name has no letter, digit or symbol.

    Examples
    --------
    >>> contrast_slug("HC > MDD"), contrast_slug("TRD vs non-TRD")
    ('HCgtMDD', 'TRDVsNonTRD')
    """
    parts = re.split(r"([<>+=])", name)
    label = ""
    for part in parts:
        if part in _SYMBOLS:
            label += _SYMBOLS[part]
            continue
        for word in re.split(r"[^A-Za-z0-9]+", part):
            if word:
                label += word[:1].upper() + word[1:] if label else word
    return label


__all__ = ["contrast_slug"]
