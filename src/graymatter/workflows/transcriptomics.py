"""Imaging transcriptomics end to end: brain map + AHBA expression -> PLS, spin test, gene lists.

``run_transcriptomics`` reads a regional map (e.g. Study B's t-map of GMV change, or an ENIGMA
Cohen's d map) and a regions x genes expression matrix (a file, a DataFrame, or a registry name
such as ``"ahba-dk83"`` fetched beforehand with ``graymatter fetch``), matches regions by label,
spins the parcellation on the sphere for the spatial null, fits the gene PLS with bootstrap Z
scores, and writes the tables and a JSON summary with provenance, each atomically.
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd

from graymatter.datasets.fetchers import dataset_record, resource
from graymatter.datasets.registry import REGISTRY
from graymatter.errors import GraymatterWarning, InputError, format_choices
from graymatter.io.atomic import write_json, write_text, write_tsv
from graymatter.io.outputs import owns_output_folder
from graymatter.io.provenance import input_record, provenance_record
from graymatter.transcriptomics.expression import (DEFAULT_HEMISPHERE, HEMISPHERES,
                                                   match_regions, normalise_region_name,
                                                   read_expression)
from graymatter.transcriptomics.gene_pls import GenePLSResult, gene_pls

__all__ = ["run_transcriptomics", "read_brain_map", "order_and_spin", "MatchedInputs",
           "DEFAULT_HEMISPHERE"]

logger = logging.getLogger("graymatter")


@dataclass(frozen=True, eq=False)
class MatchedInputs:
    """A regional map and an expression matrix matched by region, with the spins over them.

    Attributes
    ----------
    brain_map : (n_regions,) pandas.Series
    expression : (n_regions, n_genes) pandas.DataFrame
        Same rows as ``brain_map``, in centroid (spin) order when centroids were given.
    nulls : (n_regions, n_spins) int ndarray or None
        Spin indices over those rows; None without centroids or with ``n_spins=0``.
    report : MatchReport
    expression_record : dict
        Provenance of the expression matrix.
    no_centroid : list of str
        Matched regions left out because they have no centroid.
    """

    brain_map: pd.Series
    expression: pd.DataFrame
    nulls: np.ndarray | None
    report: object
    expression_record: dict
    no_centroid: list


def hemisphere_arg(hemisphere: str | None) -> str | None:
    """``match_regions``' hemisphere (None for both) from ``"lh"``, ``"rh"``, ``"both"`` or None."""
    if hemisphere is None or hemisphere == "both":
        return None
    if hemisphere not in HEMISPHERES:
        raise InputError(f"hemisphere must be one of {format_choices(HEMISPHERES)}; got "
                         f"{hemisphere!r}")
    return hemisphere


def order_and_spin(y: pd.Series, X: pd.DataFrame, frames, *, n_spins: int, spin_method: str,
                   seed, spin_cache=None):
    """Put matched regions in centroid order (hemisphere blocks) and spin them.

    Parameters
    ----------
    y : (n_regions,) pandas.Series
    X : (n_regions, n_genes) pandas.DataFrame
    frames : list of pandas.DataFrame
        Centroid tables per hemisphere block (see :func:`centroid_frames`).
    n_spins : int
        Rotations (0: order only, no spins).
    spin_method : str
    seed : numpy.random.SeedSequence
    spin_cache : path, optional

    Returns
    -------
    y, X : reordered, regions without a centroid left out (with a warning)
    cents : list of (n_block, 3) ndarray
    nulls : (n_regions, n_spins) int ndarray or None
    no_centroid : list of str

    Raises
    ------
    InputError
        No matched region has a centroid.
    """
    fold = {n.casefold(): n for n in y.index}
    used = [f.loc[[n for n in f.index if n.casefold() in fold]] for f in frames]
    order = [fold[n.casefold()] for f in used for n in f.index]
    if not order:
        raise InputError("no matched region has a centroid: the centroid names "
                         f"(e.g. {format_choices(list(frames[0].index[:4]))}) do not match "
                         f"the map's regions (e.g. {format_choices(list(y.index[:4]))})")
    no_centroid = [n for n in y.index if n not in set(order)]
    if no_centroid:
        warnings.warn(f"{len(no_centroid)} matched regions have no sphere centroid and are "
                      f"left out of the analysis (spins need one per region): "
                      f"{format_choices(no_centroid)}", GraymatterWarning, stacklevel=3)
    y, X = y[order], X.loc[order]
    cents = [f[["x", "y", "z"]].to_numpy(dtype=np.float64) for f in used if len(f)]
    nulls = None
    if n_spins > 0:
        from graymatter.transcriptomics.nulls import spin_permutations

        nulls = spin_permutations(cents[0], cents[1] if len(cents) > 1 else None,
                                  n_rotations=int(n_spins), method=spin_method,
                                  random_state=np.random.default_rng(seed), cache_dir=spin_cache)
    return y, X, cents, nulls, no_centroid

_REGION_COLUMNS = ("region", "structure", "label", "name", "roi", "parcel")
_VALUE_COLUMNS = ("value", "t", "stat", "d", "cohens_d", "effect", "z")


def read_brain_map(path_or_series, *, region_column: str | None = None,
                   value_column: str | None = None) -> pd.Series:
    """Read a regional map (one value per region) from a CSV/TSV table, or pass a Series through.

    Parameters
    ----------
    path_or_series : str, os.PathLike or pandas.Series
    region_column : str, optional
        Column of region labels (default: ``region``/``structure``/``label``/``name``..., else the
        first text column whose values are unique).
    value_column : str, optional
        Column of map values (default: ``value``/``t``/``d``/..., else the only numeric column).

    Returns
    -------
    (n_regions,) pandas.Series
        Float values indexed by region label, named after the value column.

    Raises
    ------
    InputError
        Missing file, no region column, or several numeric columns and no ``value_column``.

    Examples
    --------
    >>> read_brain_map("tmap.tsv")  # doctest: +SKIP
    """
    if isinstance(path_or_series, pd.Series):
        return path_or_series.astype(np.float64)
    path = Path(path_or_series)
    if not path.is_file():
        raise InputError(f"brain map file '{path}' does not exist")
    sep = "\t" if path.suffix.lower() in (".tsv", ".txt", ".tab") else ","
    frame = pd.read_csv(path, sep=sep, encoding="utf-8-sig")
    frame.columns = [str(c).strip() for c in frame.columns]
    lower = {c.lower(): c for c in frame.columns}
    text_cols = [c for c in frame.columns if not pd.api.types.is_numeric_dtype(frame[c])]
    if region_column is None:
        named = [lower[c] for c in _REGION_COLUMNS if c in lower and lower[c] in text_cols]
        unique = [c for c in text_cols if frame[c].is_unique]
        region_column = (named or unique or [None])[0]
        if region_column is None:
            raise InputError(f"brain map '{path}' has no column of region labels (columns: "
                             f"{format_choices(frame.columns)}); pass region_column= "
                             "(--region-column)")
    elif region_column not in frame.columns:
        raise InputError(f"region_column='{region_column}' is not a column of '{path}' "
                         f"(columns: {format_choices(frame.columns)})")
    numeric = [c for c in frame.columns
               if c != region_column and pd.api.types.is_numeric_dtype(frame[c])]
    if value_column is None:
        named = [lower[c] for c in _VALUE_COLUMNS if c in lower and lower[c] in numeric]
        if named:
            value_column = named[0]
        elif len(numeric) == 1:
            value_column = numeric[0]
        else:
            raise InputError(f"brain map '{path}' has {len(numeric)} numeric columns "
                             f"({format_choices(numeric)}); say which holds the map with "
                             "value_column= (--map-column)")
    elif value_column not in numeric:
        raise InputError(f"value_column='{value_column}' is not a numeric column of '{path}' "
                         f"(numeric columns: {format_choices(numeric) or 'none'})")
    series = pd.Series(frame[value_column].to_numpy(dtype=np.float64),
                       index=pd.Index(frame[region_column].astype(str).str.strip(), name="region"),
                       name=value_column)
    return series


def load_expression(expression, duplicate_genes) -> tuple[pd.DataFrame, dict]:
    """Expression (regions x genes) from a frame, a registry name or a file, with its record."""
    if isinstance(expression, pd.DataFrame):
        return read_expression(expression, duplicate_genes=duplicate_genes), {"source": "DataFrame"}
    if isinstance(expression, str) and expression in REGISTRY:
        path, record = dataset_record(expression)  # sha256 verified and recorded
        return read_expression(path, duplicate_genes=duplicate_genes), record
    path = Path(expression)
    if not path.is_file() and isinstance(expression, str) and "/" not in expression \
            and "." not in expression:
        resource(expression)  # raises InputError naming the registered datasets
    return (read_expression(path, duplicate_genes=duplicate_genes),
            {"source": "file", **input_record(path)})


def centroid_frames(centroids, centroid_names, annot_lh, sphere_lh, annot_rh, sphere_rh,
                     expression) -> list[pd.DataFrame]:
    """Centroid tables (index = canonical region names) per hemisphere block, in spin order."""
    from graymatter.transcriptomics.centroids import parcel_centroids, read_centroids

    frames = []
    if centroids is not None:
        names = centroid_names
        if isinstance(names, str) and names == "expression":
            names = list(expression.index)
        elif isinstance(names, (str, Path)):
            names = [ln.strip() for ln in Path(names).read_text().splitlines() if ln.strip()]
        if names is not None and len(names) > 0:
            count = len(read_centroids(centroids))
            names = list(names)[:count]
        table = read_centroids(centroids, names=names)
        table.index = [normalise_region_name(n) for n in table.index]
        if not any(str(n)[:3] in ("lh_", "rh_") for n in table.index):
            raise InputError(f"centroid file '{centroids}' has no hemisphere-labelled region names "
                             f"(found e.g. {format_choices(list(table.index[:4]))}); pass "
                             "centroid_names= (--centroid-names FILE, one name per row, or "
                             "'expression' to take the expression matrix's row names in order)")
        lh = table[[str(n).startswith("lh_") for n in table.index]]
        rh = table[[str(n).startswith("rh_") for n in table.index]]
        frames = [f for f in (lh, rh) if len(f)]
    for annot, sphere, hemi in ((annot_lh, sphere_lh, "lh"), (annot_rh, sphere_rh, "rh")):
        if annot is None and sphere is None:
            continue
        if annot is None or sphere is None:
            raise InputError(f"annot_{hemi} and sphere_{hemi} must be given together (an "
                             f"annotation and the sphere of the same hemisphere)")
        table = parcel_centroids(annot, sphere)
        canon = [normalise_region_name(n) for n in table.index]
        table.index = [c if c[:3] in ("lh_", "rh_") else f"{hemi}_{c}" for c in canon]
        frames.append(table)
    return frames


@owns_output_folder(("transcriptomics.json",), caches=("spin_cache",))
def run_transcriptomics(brain_map, expression, *, out_dir, centroids=None, centroid_names=None,
                        annot_lh=None, sphere_lh=None, annot_rh=None, sphere_rh=None,
                        hemisphere: str | None = DEFAULT_HEMISPHERE,
                        region_column: str | None = None,
                        map_column: str | None = None, n_components: int = 3,
                        n_spins: int = 1000, spin_method: str = "alexander-bloch", n_boot: int = 1000,
                        bootstrap: str = "regions", n_blocks: int = 10, fdr_alpha: float = 0.05,
                        random_state=0, spin_cache=None,
                        duplicate_genes: str = "drop", executor=None) -> GenePLSResult:
    """Gene PLS of an expression matrix onto a regional brain map, with spins and gene lists.

    Parameters
    ----------
    brain_map : str, os.PathLike or (n_regions,) pandas.Series
        Table with a region column and a value column (see :func:`read_brain_map`), or a Series.
    expression : str, os.PathLike or (n_regions, n_genes) pandas.DataFrame
        Expression file, DataFrame, or registry name (e.g. ``"ahba-dk83"``; fetch it first with
        ``graymatter fetch ahba-dk83``).
    out_dir : str or os.PathLike
        Output folder: ``gene_table.tsv``, ``pls1_positive.txt``, ``pls1_negative.txt``,
        ``pls_scores.tsv``, ``transcriptomics.json``.
    centroids : str or os.PathLike, optional
        Parcel sphere centroids (x, y, z per row; see ``read_centroids``), names ``L_x``/``lh_x``.
    centroid_names : sequence of str, path or "expression", optional
        Names of the rows of a ``centroids`` file without names.
    annot_lh, sphere_lh, annot_rh, sphere_rh : str or os.PathLike, optional
        FreeSurfer annotation + sphere per hemisphere, to compute centroids instead.
    hemisphere : {"lh", "rh", "both"} or None, default=DEFAULT_HEMISPHERE ("both")
        Analyse one hemisphere only (Study B: "lh"); None is "both".
    region_column, map_column : str, optional
        Columns of the map table (see :func:`read_brain_map`).
    n_components : int, default=3
    n_spins : int, default=1000
        Spherical rotations for p_spin (0, or no centroids: no spatial p-value, with a warning).
    spin_method : {"alexander-bloch", "vasa", "hungarian"}, default="alexander-bloch"
        Parcel reassignment after each rotation. Alexander-Bloch (nearest rotated parcel)
        stays at the nominal error rate for smooth maps in our calibration
        (docs/spin_calibration.md); Váša (Study B's choice) and Hungarian reached 0.09 and
        0.07 at alpha 0.05 for very smooth maps, so use them to replicate published analyses.
    n_boot : int, default=1000
    bootstrap : {"regions", "blocks"}, default="regions"
        ``"blocks"`` resamples ``n_blocks`` k-means clusters of the centroids (per hemisphere).
    n_blocks : int, default=10
    fdr_alpha : float, default=0.05
    random_state : int or None, default=0
        One seed; independent streams for the rotations and the bootstrap are derived from it.
    spin_cache : str or os.PathLike, optional
        Folder where spin indices are cached (see ``spin_permutations``).
    duplicate_genes : {"drop", "error"}, default="drop"
        Gene columns named more than once (e.g. ``Mar-01`` twice in the published AHBA DK
        matrix) are dropped with a warning, or raise (see ``read_expression``).
    executor : Executor, optional
        Where the spin and bootstrap batches of the gene PLS run (see
        :func:`graymatter.transcriptomics.gene_pls.gene_pls`).

    Returns
    -------
    GenePLSResult
        Its ``matched`` (:class:`MatchedInputs`) holds the matched map and expression in the
        analysed order and the spins, for the next step (e.g. ``run_enrichment(matched=...)``).

    Raises
    ------
    InputError
        Unreadable inputs, no matching regions, expression not fetched (the message names the
        ``graymatter fetch`` command), bad options.

    Examples
    --------
    >>> res = run_transcriptomics("tmap.tsv", "ahba-dk83", out_dir="tx",
    ...                           annot_lh="lh.aparc.annot", sphere_lh="lh.sphere",
    ...                           hemisphere="lh")  # doctest: +SKIP
    """
    out = Path(out_dir)
    if spin_method not in ("vasa", "hungarian", "alexander-bloch"):
        raise InputError(f"spin_method must be one of vasa, hungarian, alexander-bloch; got "
                         f"{spin_method!r}")
    if isinstance(n_spins, bool) or not isinstance(n_spins, (int, np.integer)) or n_spins < 0:
        raise InputError(f"n_spins must be an integer >= 0, got {n_spins!r}")
    ymap = read_brain_map(brain_map, region_column=region_column, value_column=map_column)
    expr, expr_info = load_expression(expression, duplicate_genes)
    y, X, report = match_regions(ymap, expr, hemisphere=hemisphere_arg(hemisphere))
    spin_seed, boot_seed = np.random.SeedSequence(random_state).spawn(2)

    frames = centroid_frames(centroids, centroid_names, annot_lh, sphere_lh, annot_rh,
                              sphere_rh, expr)
    nulls = blocks = None
    no_centroid: list[str] = []
    if frames:
        y, X, cents, nulls, no_centroid = order_and_spin(
            y, X, frames, n_spins=n_spins, spin_method=spin_method, seed=spin_seed,
            spin_cache=spin_cache)
        if bootstrap == "blocks":
            from sklearn.cluster import KMeans

            labels, offset = [], 0
            for c in cents:
                k = max(2, min(int(n_blocks), len(c) // 2))
                lab = KMeans(n_clusters=k, n_init=10,
                             random_state=int(boot_seed.generate_state(1)[0])).fit_predict(c)
                labels.append(lab + offset)
                offset += k
            blocks = np.concatenate(labels)
    elif n_spins > 0:
        warnings.warn("no centroids given (centroids= or annot/sphere pairs): p_spin is not "
                      "computed, and naive permutation would ignore spatial autocorrelation",
                      GraymatterWarning, stacklevel=2)
    if bootstrap == "blocks" and blocks is None:
        raise InputError("bootstrap='blocks' needs parcel centroids (centroids= or annot/sphere "
                         "pairs) to build the spatial blocks")

    result = gene_pls(X, y, n_components=n_components, nulls=nulls, n_boot=n_boot,
                      bootstrap=bootstrap, blocks=blocks, fdr_alpha=fdr_alpha,
                      random_state=np.random.default_rng(boot_seed), executor=executor)
    result = replace(result, random_state=random_state, matched=MatchedInputs(
        brain_map=y, expression=X, nulls=nulls, report=report, expression_record=expr_info,
        no_centroid=list(no_centroid)))

    files = _write_outputs(out, result, y, report, expr_info, brain_map, locals_=dict(
        centroids=centroids, annot_lh=annot_lh, sphere_lh=sphere_lh, annot_rh=annot_rh,
        sphere_rh=sphere_rh), params=dict(
        hemisphere=hemisphere, n_components=n_components, n_spins=n_spins,
        spin_method=spin_method, n_boot=n_boot, bootstrap=bootstrap, n_blocks=n_blocks,
        fdr_alpha=fdr_alpha, random_state=random_state, region_column=region_column,
        map_column=map_column, duplicate_genes=duplicate_genes), no_centroid=no_centroid)
    logger.info("wrote %d files to %s", len(files), out)
    return result


def _write_outputs(out: Path, result: GenePLSResult, y: pd.Series, report, expr_info, brain_map,
                   *, locals_, params, no_centroid) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    files = [write_tsv(out / "gene_table.tsv", result.gene_table, index=False),
             write_text(out / "pls1_positive.txt", "".join(g + "\n" for g in result.pls1_positive)),
             write_text(out / "pls1_negative.txt", "".join(g + "\n" for g in result.pls1_negative))]
    scores = result.scores.copy()
    scores.insert(0, "map", y.reindex(scores.index).to_numpy())
    files.append(write_tsv(out / "pls_scores.tsv", scores))
    inputs = {"expression": expr_info}
    if not isinstance(brain_map, pd.Series):
        inputs["brain_map"] = input_record(brain_map)
    for key, value in locals_.items():
        if value is not None:
            inputs[key] = input_record(value)
    summary = {
        **provenance_record(step="transcriptomics", parameters=params, inputs=inputs,
                            outputs={p.stem: p.name for p in files},
                            random_state=params.get("random_state")),
        "analysis": "imaging transcriptomics: PLS of gene expression onto a regional map",
        "results": result.to_dict(),
        "match_report": {**report.to_dict(), "dropped_no_centroid": list(no_centroid)},
        "notes": ("p_spin counts (1 + #{null >= observed}) / (1 + n_spins). Bootstrap Z "
                  + ("resamples regions independently, ignoring spatial dependence between "
                     "regions: SEs are optimistic and the gene lists too long."
                     if result.bootstrap == "regions" else
                     "resamples spatial blocks (k-means clusters of parcel centroids), keeping "
                     "dependence within blocks.")),
    }
    files.append(write_json(out / "transcriptomics.json", summary))
    return files
