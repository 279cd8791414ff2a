"""The regions each FreeSurfer cortical parcellation must have, and the check of a subject's files.

A ``?h.aparc.stats`` cut at a line boundary parses cleanly (every remaining line is whole), so
only the region list can tell that it is incomplete. :func:`check_regions` compares each
hemisphere's ``StructName`` column with the parcellation's region list:

- ``aparc`` (Desikan-Killiany, 34 regions; FreeSurfer 5.3 to 7.4 all write the 34, some older
  versions add ``corpuscallosum``, and ``frontalpole``/``temporalpole`` are left out of a subject
  whose annotation gave them no vertex),
- ``aparc.DKTatlas`` / ``aparc.DKTatlas40`` (Desikan-Killiany-Tourville, 31 regions: DK without
  ``bankssts``, ``frontalpole``, ``temporalpole``).

A region that FreeSurfer can legitimately omit is a warning naming the subject and region; any
other missing region is an error naming the file, the expected count and the missing names.
For other parcellations (``aparc.a2009s``, ``HCP-MMP1``...) :func:`check_consistent_regions`
compares subjects and hemispheres with each other instead.
"""

from __future__ import annotations

import warnings
from pathlib import Path

from graymatter.errors import GraymatterWarning, format_choices
from graymatter.io.freesurfer import FreeSurferParseError

#: Desikan-Killiany regions in FreeSurfer's file order (``?h.aparc.stats``).
DK_REGIONS = (
    "bankssts", "caudalanteriorcingulate", "caudalmiddlefrontal", "cuneus", "entorhinal",
    "fusiform", "inferiorparietal", "inferiortemporal", "isthmuscingulate", "lateraloccipital",
    "lateralorbitofrontal", "lingual", "medialorbitofrontal", "middletemporal", "parahippocampal",
    "paracentral", "parsopercularis", "parsorbitalis", "parstriangularis", "pericalcarine",
    "postcentral", "posteriorcingulate", "precentral", "precuneus", "rostralanteriorcingulate",
    "rostralmiddlefrontal", "superiorfrontal", "superiorparietal", "superiortemporal",
    "supramarginal", "frontalpole", "temporalpole", "transversetemporal", "insula")

#: DK regions FreeSurfer leaves out of a subject's table when they got no vertex.
DK_OPTIONAL = frozenset({"frontalpole", "temporalpole"})

#: Desikan-Killiany-Tourville regions (``?h.aparc.DKTatlas[40].stats``).
DKT_REGIONS = tuple(r for r in DK_REGIONS if r not in ("bankssts", "frontalpole", "temporalpole"))

#: Annotation name (as in ``?h.<annot>.stats``) -> (atlas name, regions, regions that may be absent).
EXPECTED = {
    "aparc": ("Desikan-Killiany", DK_REGIONS, DK_OPTIONAL),
    "aparc.pial": ("Desikan-Killiany", DK_REGIONS, DK_OPTIONAL),
    "aparc.DKTatlas": ("Desikan-Killiany-Tourville", DKT_REGIONS, frozenset()),
    "aparc.DKTatlas40": ("Desikan-Killiany-Tourville", DKT_REGIONS, frozenset()),
}


def expected_regions(annot: str) -> tuple[str, tuple[str, ...], frozenset] | None:
    """The atlas name, region list and omissible regions of ``annot``; None when not known."""
    return EXPECTED.get(annot)


def check_regions(path, regions, annot: str, subject: str) -> None:
    """Raise when a hemisphere file lacks regions of its parcellation; warn for omissible ones.

    Parameters
    ----------
    path : path
        The ``?h.<annot>.stats`` file (named in the messages).
    regions : iterable of str
        Its ``StructName`` column.
    annot : str
        Annotation name from the file name (``aparc``, ``aparc.DKTatlas``...); unknown names
        are not checked here.
    subject : str
        Subject folder name (named in the warning).

    Raises
    ------
    FreeSurferParseError
        Regions missing that FreeSurfer always writes: the file is truncated or edited.

    Warns
    -----
    GraymatterWarning
        Only omissible regions (``frontalpole``, ``temporalpole`` in DK) are missing; their
        cells in the table will be empty.
    """
    known = expected_regions(annot)
    if known is None:
        return
    atlas, expected, optional = known
    present = set(regions)
    missing = [r for r in expected if r not in present]
    required = [r for r in missing if r not in optional]
    if required:
        raise FreeSurferParseError(
            path, None, f"has {len(expected) - len(missing)} of the {len(expected)} {atlas} "
                        f"({annot}) regions; missing {len(missing)}: {format_choices(missing, 40)}.",
            "The file looks truncated or edited: re-copy it from the subject's stats folder, or "
            "re-run recon-all for this subject.")
    if missing:
        warnings.warn(f"Subject {subject!r}: {Path(path).name} has no "
                      f"{format_choices(missing)} (FreeSurfer leaves out regions that got no "
                      "vertex); those cells of the table are missing (NaN).",
                      GraymatterWarning, stacklevel=3)


def check_consistent_regions(regions: dict[tuple[str, str], list[str]], annot: str) -> None:
    """Warn when a subject's file lacks regions that other subjects' files of that hemisphere have.

    Parameters
    ----------
    regions : dict of (subject, hemisphere) to list of str
        Region names read from each subject's ``?h.<annot>.stats``.
    annot : str
        Annotation name; parcellations with a known region list are checked by
        :func:`check_regions` instead.
    """
    if expected_regions(annot) is not None or len(regions) < 2:
        return
    # Per hemisphere: some parcellations prefix names by side (HCP-MMP1's 'L_V1_ROI').
    union: dict[str, set] = {}
    for (_, hemi), names in regions.items():
        union.setdefault(hemi, set()).update(names)
    holes = {key: sorted(union[key[1]] - set(names)) for key, names in regions.items()}
    holes = {key: names for key, names in holes.items() if names}
    if holes:
        listed = "; ".join(f"{subject} {hemi}: {format_choices(names, 6)}"
                           for (subject, hemi), names in list(holes.items())[:8])
        more = f" (and {len(holes) - 8} more files)" if len(holes) > 8 else ""
        warnings.warn(f"{len(holes)} {annot} stats file(s) lack regions that other subjects' "
                      f"files of that hemisphere have: {listed}{more}. Those cells of the table are "
                      "missing (NaN); check that the files are complete.",
                      GraymatterWarning, stacklevel=3)


__all__ = ["DKT_REGIONS", "DK_OPTIONAL", "DK_REGIONS", "EXPECTED", "check_consistent_regions",
           "check_regions", "expected_regions"]
