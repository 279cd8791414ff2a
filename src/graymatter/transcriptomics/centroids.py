"""Parcel centroids on a spherical surface: the input of spin-test nulls.

A centroid is computed like ``neuromaps.nulls.spins.get_parcel_centroids(method="surface")``
(which is the code of ``netneurotools.freesurfer.find_parcel_centroids(method="surface")`` before
netneurotools 0.3 removed it): the arithmetic mean of the parcel's vertex coordinates, replaced by
the coordinates of the sphere vertex nearest to that mean (Euclidean distance). The centroid is
therefore exactly on the surface (a mesh vertex), not a radial projection of the mean.
"""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path

import numpy as np
import pandas as pd

from graymatter.errors import InputError, format_choices

logger = logging.getLogger("graymatter")

DEFAULT_DROP = ("unknown", "corpuscallosum", "medial_wall", "???",
                "Background+FreeSurfer_Defined_Medial_Wall")


def _norm(name: str) -> str:
    # "Medial_wall", "medial wall" and "medialwall" name the same non-parcel
    return re.sub(r"[\s_\-]", "", str(name)).lower()


def _read_sphere(sphere) -> np.ndarray:
    import nibabel as nib

    path = Path(sphere)
    if not path.is_file():
        raise InputError(f"sphere file {str(path)!r} does not exist; pass the path of a GIFTI "
                         "(.gii) or FreeSurfer (lh.sphere) spherical surface")
    try:
        if path.name.endswith(".gii") or path.name.endswith(".gii.gz"):
            img = nib.load(path)
            vertices = next(d.data for d in img.darrays
                            if d.intent == nib.nifti1.intent_codes["NIFTI_INTENT_POINTSET"])
        else:
            vertices, _ = nib.freesurfer.read_geometry(path)
    except StopIteration:
        raise InputError(f"sphere file {str(path)!r} has no POINTSET data array (vertex "
                         "coordinates); pass a surface GIFTI, not a label or shape file") from None
    except Exception as exc:  # nibabel raises many types for unreadable files
        raise InputError(f"could not read sphere file {str(path)!r} as a GIFTI or FreeSurfer "
                         f"surface: {exc}") from exc
    vertices = np.asarray(vertices)
    if vertices.ndim != 2 or vertices.shape[1] != 3:
        raise InputError(f"sphere file {str(path)!r}: expected vertex coordinates of shape "
                         f"(n_vertices, 3), found {vertices.shape}")
    return vertices


def parcel_centroids(annot, sphere, *,
                     labels_to_drop=DEFAULT_DROP) -> pd.DataFrame:
    """Centroids of the parcels of a FreeSurfer annotation on a spherical surface.

    Parameters
    ----------
    annot : str or os.PathLike
        FreeSurfer ``.annot`` file (e.g. ``lh.aparc.annot``) for one hemisphere.
    sphere : str or os.PathLike
        Spherical surface of the same hemisphere and mesh (GIFTI ``.gii`` or FreeSurfer
        geometry such as ``lh.sphere``); it must have one vertex per annotation entry.
    labels_to_drop : sequence of str, default=("unknown", "corpuscallosum", "medial_wall", "???", "Background+FreeSurfer_Defined_Medial_Wall")
        Names that are not parcels. Compared ignoring case, spaces, ``_`` and ``-`` (so
        ``"medial_wall"`` also drops ``"medialwall"`` and ``"Medial wall"``). Vertices whose
        annotation value is not in the colour table (label ``-1``) are always ignored.

    Returns
    -------
    centroids : (n_parcels, 3) pandas.DataFrame
        Index = parcel name (colour-table order, parcels with at least one vertex), columns
        ``x``, ``y``, ``z`` in the sphere's coordinates (mm). Each centroid is the sphere vertex
        nearest to the mean of the parcel's vertices (neuromaps' / netneurotools'
        ``method="surface"``).

    Raises
    ------
    InputError
        Missing or unreadable files, vertex counts that differ, duplicate parcel names, or no
        parcel left after dropping ``labels_to_drop``.

    Examples
    --------
    >>> c = parcel_centroids("fsa5_lh_aparc.annot", "fsa5_sphere_lh.gii")  # doctest: +SKIP
    >>> c.shape  # doctest: +SKIP
    (34, 3)
    """
    import nibabel as nib

    annot_path = Path(annot)
    if not annot_path.is_file():
        raise InputError(f"annotation file {str(annot_path)!r} does not exist; pass the path of "
                         "a FreeSurfer .annot file (e.g. lh.aparc.annot)")
    try:
        labels, _, names = nib.freesurfer.read_annot(annot_path)
    except Exception as exc:
        raise InputError(f"could not read {str(annot_path)!r} as a FreeSurfer annotation: "
                         f"{exc}") from exc
    names = [n.decode() if isinstance(n, bytes) else str(n) for n in names]
    vertices = _read_sphere(sphere)
    if len(labels) != len(vertices):
        raise InputError(f"annotation {str(annot_path)!r} has {len(labels)} vertices but sphere "
                         f"{str(sphere)!r} has {len(vertices)}; use the sphere of the same mesh "
                         "(e.g. fsaverage5: 10,242 vertices per hemisphere) and hemisphere")
    if isinstance(labels_to_drop, str):
        labels_to_drop = (labels_to_drop,)
    drop = {_norm(d) for d in labels_to_drop}

    coords64 = vertices.astype(np.float64)
    rows, index = [], []
    for lab in np.unique(labels):
        if lab < 0:  # value absent from the colour table: not a parcel
            continue
        name = names[lab]
        if _norm(name) in drop:
            continue
        mean = coords64[labels == lab].mean(axis=0)
        nearest = np.argmin(((coords64 - mean) ** 2).sum(axis=1))
        rows.append(coords64[nearest])
        index.append(name)
    if not rows:
        raise InputError(f"annotation {str(annot_path)!r} has no parcel left after dropping "
                         f"labels_to_drop={tuple(labels_to_drop)!r} (names: "
                         f"{format_choices(names)})")
    dup = pd.Index(index)[pd.Index(index).duplicated()]
    if len(dup):
        raise InputError(f"annotation {str(annot_path)!r} names several colour-table entries "
                         f"{format_choices(sorted(set(dup)))}; parcel names must be unique")
    frame = pd.DataFrame(np.vstack(rows), index=pd.Index(index, name="region", dtype=object),
                         columns=["x", "y", "z"])
    logger.debug("%d parcel centroids from %s", len(frame), annot_path.name)
    return frame


def read_centroids(path, *, names=None) -> pd.DataFrame:
    """Read parcel centroids from a text file of ``n x 3`` numbers.

    Parameters
    ----------
    path : str or os.PathLike
        Whitespace-, comma- or tab-separated file with three numeric columns (x, y, z), one row
        per parcel, e.g. ``sphere_HCP_centroids.txt`` of Váša's ``rotate_parcellation``
        (360 rows, left hemisphere first). A first line that is not numeric is taken as a header.
        A fourth leading non-numeric column is taken as the parcel names. A header with a
        ``hemi`` (or ``hemisphere``) column is read by column name: ``x``, ``y``, ``z``, the
        hemisphere (``L``/``R``, ``lh``/``rh``, ``left``/``right``, any case) and optionally
        the names (``name``, ``region``, ``label``, ``parcel`` or ``roi``); a name without its
        own hemisphere marker is then prefixed ``lh_`` / ``rh_`` (``bankssts`` on an ``L`` row
        becomes ``lh_bankssts``), and a name whose marker disagrees with the column is refused.
    names : sequence of str, optional
        Parcel names, one per row (overrides names in the file). Default: names from the
        file, else ``"0"``, ``"1"``, ...

    Returns
    -------
    centroids : (n_parcels, 3) pandas.DataFrame
        Index = parcel name, columns ``x``, ``y``, ``z`` (float64).

    Raises
    ------
    InputError
        Missing file, not three numeric columns, missing / non-finite values, ``names`` of
        the wrong length or with duplicates, or a ``hemi`` value that is not a hemisphere.

    Examples
    --------
    >>> c = read_centroids("sphere_HCP_centroids.txt")  # doctest: +SKIP
    >>> c.shape  # doctest: +SKIP
    (360, 3)
    """
    path = Path(os.fspath(path))
    if not path.is_file():
        raise InputError(f"centroid file {str(path)!r} does not exist; pass a text file with "
                         "three columns x, y, z (one row per parcel)")
    text = path.read_text(encoding="utf-8", errors="replace")
    lines = [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.startswith("#")]
    if not lines:
        raise InputError(f"centroid file {str(path)!r} is empty; expected one row of x, y, z "
                         "per parcel")
    rows = [re.split(r"[\s,;]+", ln) for ln in lines]

    def numeric(tokens):
        try:
            [float(t) for t in tokens]
            return True
        except ValueError:
            return False

    if not numeric(rows[0][-3:]):
        header, rows = rows[0], rows[1:]  # header line
        if any(t.lower() in _HEMI_COLUMNS for t in header):
            coords, hemis, file_names = _hemi_table(path, header, rows, numeric)
            return _with_hemispheres(path, coords, hemis, file_names if names is None else names)
    file_names, values = [], []
    for i, tokens in enumerate(rows):
        lineno = i + 1 + (len(lines) - len(rows))
        if len(tokens) == 4 and not numeric(tokens[:1]):
            file_names.append(tokens[0])
            tokens = tokens[1:]
        if len(tokens) != 3 or not numeric(tokens):
            raise InputError(f"centroid file {str(path)!r}, data row {lineno}: expected three "
                             f"numbers x y z (optionally after a name), found {tokens!r}; fix "
                             "that row")
        values.append([float(t) for t in tokens])
    coords = np.asarray(values, dtype=np.float64)
    if not np.isfinite(coords).all():
        bad = np.flatnonzero(~np.isfinite(coords).all(axis=1))
        raise InputError(f"centroid file {str(path)!r}: rows {format_choices(bad + 1)} have "
                         "missing or infinite coordinates; every parcel needs a centroid")
    if names is None:
        if file_names and len(file_names) != len(coords):
            raise InputError(f"centroid file {str(path)!r}: some rows have names and others "
                             "do not; name every row or none")
        names = file_names or [str(i) for i in range(len(coords))]
    names = [str(n) for n in names]
    if len(names) != len(coords):
        raise InputError(f"names has {len(names)} entries but centroid file {str(path)!r} has "
                         f"{len(coords)} rows; pass one name per row")
    index = pd.Index(names, name="region", dtype=object)
    if index.has_duplicates:
        raise InputError(f"names has duplicates ({format_choices(index[index.duplicated()])}); "
                         "parcel names must be unique")
    return pd.DataFrame(coords, index=index, columns=["x", "y", "z"])


# Header names of the hemisphere column, and of the parcel-name column beside it.
_HEMI_COLUMNS = ("hemi", "hemisphere")
_NAME_COLUMNS = ("name", "region", "label", "parcel", "roi")


def _hemi_table(path: Path, header: list[str], rows: list[list[str]], numeric):
    """Coordinates, hemispheres and names (or None) of a centroid file with a hemi column."""
    from graymatter.transcriptomics.expression import hemisphere_label

    lower = [t.lower() for t in header]
    absent = [c for c in ("x", "y", "z") if c not in lower]
    if absent:
        raise InputError(f"centroid file {str(path)!r} has a hemisphere column, so its header "
                         f"must name the coordinate columns x, y, z; {format_choices(absent)} "
                         f"not found in the header {format_choices(header)}")
    k_hemi = next(lower.index(c) for c in _HEMI_COLUMNS if c in lower)
    k_name = next((lower.index(c) for c in _NAME_COLUMNS if c in lower), None)
    k_xyz = [lower.index(c) for c in ("x", "y", "z")]
    coords, hemis, names = [], [], []
    for i, tokens in enumerate(rows, start=1):
        where = f"centroid file {str(path)!r}, data row {i}"
        if len(tokens) != len(header):
            raise InputError(f"{where}: {len(tokens)} cells but the header has {len(header)} "
                             f"({format_choices(header)}); fix that row")
        hemi = hemisphere_label(tokens[k_hemi])
        if hemi is None:
            raise InputError(f"{where}: column {header[k_hemi]!r} holds {tokens[k_hemi]!r}; "
                             "expected a hemisphere: L/R, lh/rh or left/right")
        xyz = [tokens[k] for k in k_xyz]
        if not numeric(xyz):
            raise InputError(f"{where}: expected numbers in columns x, y, z, found {xyz!r}")
        coords.append([float(t) for t in xyz])
        hemis.append(hemi)
        names.append(tokens[k_name] if k_name is not None else None)
    return coords, hemis, (names if k_name is not None else None)


def _with_hemispheres(path: Path, coords, hemis, names) -> pd.DataFrame:
    """Centroids whose names carry the hemisphere of the file's hemi column."""
    from graymatter.transcriptomics.expression import normalise_region_name

    if names is None:
        names = [str(i) for i in range(len(coords))]
    names = [str(n) for n in names]
    if len(names) != len(coords):
        raise InputError(f"names has {len(names)} entries but centroid file {str(path)!r} has "
                         f"{len(coords)} rows; pass one name per row")
    labelled = []
    for name, hemi in zip(names, hemis, strict=True):
        own = normalise_region_name(name)[:3]
        if own in ("lh_", "rh_") and own[:2] != hemi:
            raise InputError(f"centroid file {str(path)!r}: region {name!r} is on the "
                             f"{own[:2]} side by its name but the hemisphere column says {hemi}; "
                             "fix the name or the hemisphere")
        labelled.append(name if own in ("lh_", "rh_") else f"{hemi}_{name}")
    frame = pd.DataFrame(np.asarray(coords, dtype=np.float64).reshape(-1, 3),
                         index=pd.Index(labelled, name="region", dtype=object),
                         columns=["x", "y", "z"])
    if not np.isfinite(frame.to_numpy()).all():
        raise InputError(f"centroid file {str(path)!r} has missing or infinite coordinates; "
                         "every parcel needs a centroid")
    if frame.index.has_duplicates:
        raise InputError(f"centroid file {str(path)!r}: repeated region names "
                         f"{format_choices(frame.index[frame.index.duplicated()])}; parcel "
                         "names must be unique")
    return frame
