"""The SPM-style results table: one row per reported peak, cluster statistics on the cluster's
first (highest) peak, anatomical labels for peaks and clusters.

Inputs are plain arrays over the ``m`` in-mask voxels (statistic map, cluster labels, per-voxel
p-values) plus per-cluster p-values, so the table does not care which inference produced them.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from graymatter.errors import InputError
from graymatter.io.atomic import write_tsv
from graymatter.stats.peaks import check_grid, cluster_label_vector, cluster_peaks, grid_vector

logger = logging.getLogger("graymatter")

_MAX_CLUSTER_LABELS = 3  # labels listed per cluster, largest overlap first
_MIN_CLUSTER_PERCENT = 1.0  # smaller overlaps are noise from the atlas's edges


def _side(x: float) -> str:
    # MNI: x > 0 is right; a peak on the midline plane belongs to neither hemisphere.
    if abs(x) < 1e-6:
        return "M"
    return "R" if x > 0 else "L"


def _peak_label(atlas, xyz) -> str:
    name, distance = atlas.label_at(xyz)
    if distance > 0:  # NaN (unlabelled) compares False
        return f"{name} (nearest, {distance:.1f} mm)"
    return name


def _cluster_label(atlas, grid, voxel_mask) -> str:
    percent = atlas.overlap(grid, voxel_mask)
    shown = percent[percent >= _MIN_CLUSTER_PERCENT].head(_MAX_CLUSTER_LABELS)
    if shown.empty:
        return "unlabelled"
    return "; ".join(f"{name} {value:.0f}%" for name, value in shown.items())


def _per_cluster(cluster_p, n_clusters: int) -> dict[str, np.ndarray]:
    out = {}
    for method, values in (cluster_p or {}).items():
        arr = np.asarray(values, dtype=np.float64)
        if arr.shape != (n_clusters,):
            raise InputError(f"cluster_p[{method!r}] must hold one p-value per cluster, shape "
                             f"({n_clusters},) for the labels' {n_clusters} clusters (ids "
                             f"1..{n_clusters}); found shape {arr.shape}. Pass the p-values "
                             "computed for these same labels.")
        out[f"cluster_p_fwe_{method}"] = arr
    return out


def _peak_column(name: str) -> str:
    # "peak_" keeps a z-score apart from the z coordinate and mirrors "cluster_p_fwe_*".
    name = str(name)
    return name if name.startswith("peak_") else f"peak_{name}"


def _table_columns(stat_name, cluster_cols, peak_cols) -> list[str]:
    return (["contrast", "cluster", "peak", "k", "volume_mm3", *cluster_cols,
             "x", "y", "z", _peak_column(stat_name), *peak_cols, "side", "peak_label",
             "cluster_labels"])


def cluster_table(stat, grid, labels, *, contrast: str,
                  cluster_p: Mapping[str, np.ndarray] | None = None,
                  peak_values: Mapping[str, np.ndarray] | None = None, atlas=None,
                  max_peaks: int = 3, min_distance_mm: float = 8.0,
                  stat_name: str = "t") -> pd.DataFrame:
    """Build the SPM-style table of clusters and their peaks.

    Each cluster gets up to ``max_peaks`` rows: its highest local maximum, then further
    maxima by decreasing height that lie more than ``min_distance_mm`` from those already
    listed (SPM's ``spm_list``: one exactly 8 mm away is not listed). The first row of a
    cluster carries the cluster columns (``k``, ``volume_mm3``, ``cluster_p_fwe_*``,
    ``cluster_labels``); sub-peak rows leave them empty (NA). Clusters are listed by size,
    largest first (ties: higher peak first).

    Parameters
    ----------
    stat : (m,) array-like of float
        The t or F map over the grid's in-mask voxels.
    grid : MaskedGrid
        The voxel grid; coordinates are its world (MNI mm) coordinates.
    labels : (m,) array-like of int
        Cluster ids, 0 = none, 1..K (e.g. ``label_clusters(...).labels``); K = ``labels.max()``.
    contrast : str
        Contrast name, repeated on every row (tables of several contrasts can be stacked).
    cluster_p : mapping of str to (K,) array-like of float, optional
        Cluster-level FWE p-values per method, entry ``k - 1`` for cluster id ``k``; method
        ``"perm"`` gives column ``cluster_p_fwe_perm``.
    peak_values : mapping of str to (m,) array-like of float, optional
        Per-voxel values reported at each peak, name -> map, e.g. ``{"z": z, "p_unc": p,
        "p_fwe_perm": ..., "p_fwe_rft": ..., "p_fdr": q}``. Column ``peak_<name>`` (so the
        z-score ``peak_z`` is not confused with the z coordinate), in this order after the
        statistic. A map of strings (e.g. ``"fwe_rft_method"``: ``"RFT"`` or
        ``"Bonferroni"``) gives a text column.
    atlas : Atlas, optional
        Names each peak (``peak_label``; the nearest label within 5 mm is marked
        ``"name (nearest, 3.2 mm)"``) and each cluster (``cluster_labels``: its most
        overlapped labels, at most 3 with >= 1 % of the voxels, e.g.
        ``"amygdala (R) 41%; insula (R) 22%"``). Without it both columns are NA.
    max_peaks : int, default=3
        Peaks listed per cluster.
    min_distance_mm : float, default=8.0
        The listed peaks of a cluster are more than this far apart, in mm.
    stat_name : str, default="t"
        The statistic's name (``"t"``, ``"F"``...): column ``peak_t``, ``peak_F``.

    Returns
    -------
    table : (n_peaks, n_columns) pandas.DataFrame
        Columns ``contrast``, ``cluster`` (id, every row), ``peak`` (rank within the
        cluster), ``k`` (voxels), ``volume_mm3``, ``cluster_p_fwe_<method>``..., ``x``,
        ``y``, ``z`` (mm), ``peak_<stat_name>``, the ``peak_<name>`` columns, ``side``
        (``L``/``R`` from x; ``M`` at x = 0), ``peak_label``, ``cluster_labels``. No rows (same
        columns) when there is no cluster.

    Raises
    ------
    InputError
        Maps of the wrong length; ``cluster_p`` arrays not of length K; a ``peak_values``
        name that clashes with a fixed column; an empty ``contrast``.

    Examples
    --------
    >>> table = cluster_table(t, grid, clusters.labels, contrast="TRD > nonTRD",
    ...                       cluster_p={"perm": p_perm}, peak_values={"p_unc": p},
    ...                       atlas=load_atlas())  # doctest: +SKIP
    >>> print(format_cluster_table(table))  # doctest: +SKIP
    """
    check_grid(grid)
    if not isinstance(contrast, str) or not contrast.strip():
        raise InputError(f"contrast must be a non-empty name, e.g. 'TRD > nonTRD'; found "
                         f"{contrast!r}.")
    stat = grid_vector(stat, grid, "stat").astype(np.float64)
    labels = cluster_label_vector(labels, grid)
    n_clusters = int(labels.max()) if labels.size else 0
    cluster_cols = _per_cluster(cluster_p, n_clusters)
    peak_maps = {}
    fixed = _table_columns(stat_name, cluster_cols, [])
    for key, values in (peak_values or {}).items():
        column = _peak_column(key)
        if column in fixed or column in peak_maps:
            raise InputError(f"peak_values name {key!r} gives column {column!r}, which the "
                             f"table already has ({', '.join([*fixed, *peak_maps])}); rename "
                             "it.")
        peak_maps[column] = grid_vector(values, grid, f"peak_values[{key!r}]")
    columns = _table_columns(stat_name, list(cluster_cols), list(peak_maps))
    stat_column = _peak_column(stat_name)

    peaks = cluster_peaks(stat, grid, labels, max_peaks=max_peaks,
                          min_distance_mm=min_distance_mm)
    if peaks.empty:
        return _typed(pd.DataFrame(columns=columns), cluster_cols, peak_maps, stat_name)
    sizes = np.bincount(labels, minlength=n_clusters + 1)
    voxel_mm3 = float(abs(np.linalg.det(np.asarray(grid.affine)[:3, :3])))
    top = peaks[peaks["peak_rank"] == 1].set_index("cluster")["value"]
    order = sorted(top.index, key=lambda k: (-sizes[k], -top[k], k))

    rows = []
    for k in order:
        members = labels == k
        cluster_label = _cluster_label(atlas, grid, members) if atlas is not None else None
        for peak in peaks[peaks["cluster"] == k].itertuples(index=False):
            first = peak.peak_rank == 1
            xyz = (peak.x, peak.y, peak.z)
            row = {"contrast": contrast, "cluster": k, "peak": peak.peak_rank,
                   "k": int(sizes[k]) if first else None,
                   "volume_mm3": sizes[k] * voxel_mm3 if first else math.nan,
                   **{c: (v[k - 1] if first else math.nan) for c, v in cluster_cols.items()},
                   "x": peak.x, "y": peak.y, "z": peak.z, stat_column: peak.value,
                   **{c: _peak_cell(v, peak.voxel) for c, v in peak_maps.items()},
                   "side": _side(peak.x),
                   "peak_label": _peak_label(atlas, xyz) if atlas is not None else None,
                   "cluster_labels": cluster_label if first else None}
            rows.append(row)
    table = pd.DataFrame(rows, columns=columns)
    logger.info("Cluster table for %s: %d clusters, %d peaks", contrast, len(order), len(table))
    return _typed(table, cluster_cols, peak_maps, stat_name)


def _is_numeric(values: np.ndarray) -> bool:
    return values.dtype.kind in "biuf"


def _peak_cell(values: np.ndarray, voxel: int):
    # Numeric maps give floats; text maps (e.g. which FWE bound was used) give their string.
    return float(values[voxel]) if _is_numeric(values) else str(values[voxel])


def _typed(table, cluster_cols, peak_maps, stat_name) -> pd.DataFrame:
    floats = ["volume_mm3", *cluster_cols, "x", "y", "z", _peak_column(stat_name),
              *(c for c, v in peak_maps.items() if _is_numeric(v))]
    texts = [c for c, v in peak_maps.items() if not _is_numeric(v)]
    types = {"contrast": "str", "cluster": "int64", "peak": "int64", "k": "Int64",
             "side": "str", "peak_label": "str", "cluster_labels": "str",
             **{c: "float64" for c in floats}, **{c: "str" for c in texts}}
    return table.astype(types).reset_index(drop=True)


def _format_p(value: float, corrected: bool) -> str:
    if pd.isna(value):
        return ""
    if corrected:  # FWE/FDR p: three decimals are all a reader uses
        return "<0.001" if value < 0.001 else f"{value:.3f}"
    return f"{value:.3g}"  # uncorrected p: keep the magnitude, e.g. 2.32e-06


def _is_p(column: str) -> bool:
    return column.startswith(("peak_p_", "cluster_p_")) or column in ("peak_p", "peak_q")


def format_cluster_table(table: pd.DataFrame) -> str:
    """Render a cluster table as fixed-width text for the console, like SPM's results table.

    Cluster columns are printed on a cluster's first row only; coordinates as integers (mm);
    statistics with 2 decimals; corrected p-values (FWE, FDR) with 3 decimals or
    ``"<0.001"``, uncorrected ones in ``%.3g`` (e.g. ``2.32e-06``). A table of one contrast
    shows it as a title instead of a column.

    Parameters
    ----------
    table : pandas.DataFrame
        As returned by :func:`cluster_table` (possibly several stacked).

    Returns
    -------
    text : str
        Header, separator and one line per peak (or ``(no clusters)``).

    Examples
    --------
    >>> print(format_cluster_table(table))  # doctest: +SKIP
    contrast: TRD > nonTRD
    cluster  k     ...  x    y    z     t     p_unc     side label
    1        1145  ...  28   4  -20  4.82  2.32e-06  R    amygdala
    """
    required = {"cluster", "peak", "x", "y", "z"}
    if not isinstance(table, pd.DataFrame) or not required <= set(table.columns):
        raise InputError("format_cluster_table needs a table from cluster_table() (columns "
                         f"{', '.join(sorted(required))}, ...); found "
                         f"{type(table).__name__}.")
    contrasts = table["contrast"].dropna().unique() if "contrast" in table else []
    title = f"contrast: {contrasts[0]}" if len(contrasts) == 1 else None
    shown = [c for c in table.columns if c not in ("peak",)
             and not (c == "contrast" and len(contrasts) <= 1)]
    first = (table["peak"] == 1).to_numpy()
    cells = {}
    for c in shown:
        col = table[c]
        if c in ("x", "y", "z"):
            text = [f"{v:.0f}" for v in col]
        elif c == "cluster":
            text = [str(v) if f else "" for v, f in zip(col, first)]
        elif c in ("k", "volume_mm3"):
            text = ["" if pd.isna(v) else f"{v:.0f}" for v in col]
        elif _is_p(c):
            corrected = "unc" not in c
            text = [_format_p(v, corrected) for v in col]
        elif pd.api.types.is_numeric_dtype(col):
            text = ["" if pd.isna(v) else f"{v:.2f}" for v in col]
        else:
            text = ["" if pd.isna(v) else str(v) for v in col]
        cells[c] = text
    widths = {c: max([len(c), *(len(t) for t in cells[c])]) for c in shown}
    right = {c for c in shown if c not in ("contrast", "side", "peak_label", "cluster_labels")}

    def line(values):
        parts = [v.rjust(widths[c]) if c in right else v.ljust(widths[c])
                 for c, v in zip(shown, values)]
        return "  ".join(parts).rstrip()

    out = [title] if title else []
    header = line(shown)
    out += [header, "-" * len(header)]
    if table.empty:
        out.append("(no clusters)")
    out += [line([cells[c][i] for c in shown]) for i in range(len(table))]
    return "\n".join(out) + "\n"


def write_cluster_table(table: pd.DataFrame, path: str | os.PathLike) -> Path:
    """Write a cluster table as TSV atomically (missing values as ``n/a``).

    Parameters
    ----------
    table : pandas.DataFrame
        As returned by :func:`cluster_table`.
    path : str or os.PathLike
        Target file, e.g. ``"results/TRD_gt_nonTRD_clusters.tsv"``.

    Returns
    -------
    path : pathlib.Path

    Examples
    --------
    >>> write_cluster_table(table, "clusters.tsv")  # doctest: +SKIP
    PosixPath('clusters.tsv')
    """
    if not isinstance(table, pd.DataFrame):
        raise InputError(f"table must be a pandas DataFrame from cluster_table(); found "
                         f"{type(table).__name__}.")
    return write_tsv(path, table, index=False)


__all__ = ["cluster_table", "format_cluster_table", "write_cluster_table"]
