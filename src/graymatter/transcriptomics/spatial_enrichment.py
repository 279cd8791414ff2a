"""Spatially constrained gene-category enrichment of a brain map (Fulcher et al. 2021, Nat Commun
12:2669, "ensemble-based null").

Each gene gets a score for the map: its PLS1 weight or its Pearson correlation with the map across
regions. A category (gene set) scores the mean of its genes' scores. Two nulls for that score:

* **classic** (what most papers do): random gene sets of the same size from the measured genes.
  It assumes genes are independent draws and ignores that the map is spatially smooth and that
  genes of a category are co-expressed. Fulcher et al. showed it flags categories far more often
  than nominal for maps unrelated to any gene set;
* **spatial** (ensemble null): the same pipeline run on spatially autocorrelated null maps
  (spins of the map, ``map[idx[:, k]]``, or surrogate maps such as variogram-matched ones);
  gene-gene co-expression and spatial autocorrelation are kept, so the null is calibrated.

Both p-values and their Benjamini-Hochberg q-values are reported per set.

PLS1 weights
------------
With the expression columns standardised and the map centred, the PLS1 weight vector is
``w = X'y / ||X'y||`` (scikit-learn's ``PLSRegression`` with ``scale=True``), and ``X'y`` is
proportional to the gene-map correlations. So PLS1 weights are the correlations divided by their
Euclidean norm, signed so that a positive weight means higher expression where the map is higher
(``gene_pls`` may flip the sign of a whole component; enrichment here keeps this orientation).
All null maps are scored at once with matrix products, in batches that bound memory.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Mapping

import numpy as np
import pandas as pd
from scipy import sparse

from graymatter.errors import GraymatterWarning, InputError, format_choices
from graymatter.stats.multiple import fdr_bh
from graymatter.transcriptomics.genesets import GeneSets, check_size_limits
from graymatter.transcriptomics.gsea import _fisher_yates_positions, _positive_int, _rng

__all__ = ["category_scores", "gene_scores", "spatial_enrichment"]

logger = logging.getLogger("graymatter")

_SCORES = ("pls1_weight", "correlation")
_ALTERNATIVES = ("two-sided", "greater", "less")


# ================================================================================ inputs

def _check_expression(expression) -> pd.DataFrame:
    if not isinstance(expression, pd.DataFrame):
        raise InputError(f"expression must be a pandas DataFrame (regions x genes); got "
                         f"{type(expression).__name__}. Read one with read_expression().")
    try:
        values = expression.to_numpy(dtype=np.float64, na_value=np.nan)
    except (TypeError, ValueError):
        bad = [c for c in expression.columns if not pd.api.types.is_numeric_dtype(expression[c])]
        raise InputError(f"expression has non-numeric column(s) {format_choices(bad, 5)}; keep "
                         f"only gene columns (regions as the index).") from None
    genes = pd.Index([str(g).strip().upper() for g in expression.columns])
    dup = genes.duplicated(keep=False)
    if dup.any():
        raise InputError(f"expression names gene(s) more than once (compared upper-cased): "
                         f"{format_choices(genes[dup].unique(), 8)}; keep one column per gene.")
    return pd.DataFrame(values, index=expression.index, columns=genes)


def _check_map(brain_map) -> pd.Series:
    if not isinstance(brain_map, pd.Series):
        raise InputError(f"brain_map must be a pandas Series indexed by region name; got "
                         f"{type(brain_map).__name__}.")
    try:
        values = pd.to_numeric(brain_map).to_numpy(dtype=np.float64, na_value=np.nan)
    except (TypeError, ValueError):
        raise InputError("brain_map holds non-numeric values; expected one number per region.") \
            from None
    bad = ~np.isfinite(values)
    if bad.any():
        raise InputError(f"brain_map has missing or infinite values for region(s) "
                         f"{format_choices(brain_map.index[bad], 6)}. Drop those regions and build "
                         f"the spatial nulls for the remaining regions, so that null maps stay "
                         f"complete.")
    if brain_map.index.duplicated().any():
        dup = brain_map.index[brain_map.index.duplicated()].unique()
        raise InputError(f"brain_map names region(s) twice: {format_choices(dup)}; keep one "
                         f"value per region.")
    return pd.Series(values, index=brain_map.index, name=brain_map.name)


def _null_maps(nulls, brain_map: pd.Series) -> np.ndarray:
    """(n_regions, n_null) float null maps from spin indices or from surrogate maps."""
    arr = np.asarray(nulls)
    n = len(brain_map)
    if arr.ndim != 2 or arr.shape[0] != n:
        raise InputError(f"nulls must have shape (n_regions, n_null) = ({n}, n_null), one row per "
                         f"brain_map region in the same order; got shape {arr.shape}. Spin indices "
                         f"from spin_permutations() or surrogate maps both qualify.")
    if arr.shape[1] < 1:
        raise InputError("nulls has no columns; pass at least one null map (1,000 is usual).")
    if np.issubdtype(arr.dtype, np.integer):
        if arr.min() < 0 or arr.max() >= n:
            raise InputError(f"nulls are integer resampling indices but range {arr.min()}-"
                             f"{arr.max()}, outside 0-{n - 1}; they must index brain_map's "
                             f"{n} regions.")
        return brain_map.to_numpy()[arr]
    if not np.issubdtype(arr.dtype, np.floating):
        raise InputError(f"nulls must be integer indices or float null maps; got dtype "
                         f"{arr.dtype}.")
    if not np.isfinite(arr).all():
        raise InputError("nulls (surrogate maps) contain NaN or infinite values; pass complete "
                         "maps for the brain_map regions.")
    return arr.astype(np.float64)


def _align(expression: pd.DataFrame, brain_map: pd.Series):
    """Rows of brain_map with expression; genes complete and non-constant there."""
    common = brain_map.index.isin(expression.index)
    if common.sum() < 3:
        raise InputError(f"brain_map and expression share {int(common.sum())} region names "
                         f"(map e.g. {format_choices(brain_map.index[:3])}; expression e.g. "
                         f"{format_choices(expression.index[:3])}); match the region labels, e.g. "
                         f"with match_regions().")
    if not common.all():
        logger.info("spatial enrichment: %d map region(s) without expression are left out (%s)",
                    int((~common).sum()), format_choices(brain_map.index[~common], 5))
    rows = np.flatnonzero(common)
    X = expression.loc[brain_map.index[rows]].to_numpy()
    bad = ~np.isfinite(X).all(axis=0) | (np.nanstd(X, axis=0) == 0)
    if bad.all():
        raise InputError("no gene has complete, non-constant expression over the matched regions.")
    if bad.any():
        warnings.warn(f"spatial enrichment: {int(bad.sum())} gene(s) with missing or constant "
                      f"expression over the {rows.size} regions were left out "
                      f"({format_choices(expression.columns[bad], 5)}).", GraymatterWarning,
                      stacklevel=3)
    return rows, X[:, ~bad], expression.columns[~bad]


def _standardise(a: np.ndarray) -> np.ndarray:
    centred = a - a.mean(axis=0)
    norm = np.sqrt((centred**2).sum(axis=0))
    with np.errstate(invalid="ignore", divide="ignore"):
        return centred / norm


def _scores(Xz: np.ndarray, maps: np.ndarray, score: str) -> np.ndarray:
    """Gene scores (n_genes, n_maps) of standardised expression for each map column."""
    yz = _standardise(maps)
    r = Xz.T @ yz
    if score == "pls1_weight":
        with np.errstate(invalid="ignore", divide="ignore"):
            r = r / np.sqrt((r**2).sum(axis=0))
    return r


def _membership(sets: GeneSets, genes: pd.Index) -> sparse.csr_matrix:
    """(n_sets, n_genes) matrix of 1/size at members: ``A @ scores`` = category means."""
    rows, cols, vals = [], [], []
    for i, name in enumerate(sets.names()):
        idx = genes.get_indexer(sets[name])
        rows.extend([i] * idx.size)
        cols.extend(idx.tolist())
        vals.extend([1.0 / idx.size] * idx.size)
    return sparse.csr_matrix((vals, (rows, cols)), shape=(len(sets), len(genes)))


def _p_values(observed: np.ndarray, null: np.ndarray, alternative: str) -> np.ndarray:
    """Permutation p per set; ``null`` is (n_sets, n_null). p = (1 + #as extreme) / (1 + n)."""
    n = null.shape[1]
    greater = (1 + (null >= observed[:, None]).sum(axis=1)) / (1 + n)
    less = (1 + (null <= observed[:, None]).sum(axis=1)) / (1 + n)
    if alternative == "greater":
        return greater
    if alternative == "less":
        return less
    return np.minimum(1.0, 2 * np.minimum(greater, less))


# ================================================================================ public

def gene_scores(expression: pd.DataFrame, brain_map: pd.Series, *,
                score: str = "pls1_weight") -> pd.Series:
    """Score each gene for a brain map: PLS1 weight or Pearson correlation across regions.

    Parameters
    ----------
    expression : (n_regions, n_genes) pandas.DataFrame
        Regions as index (matched to ``brain_map``'s index), gene symbols as columns.
    brain_map : (n_regions,) pandas.Series
    score : {"pls1_weight", "correlation"}, default="pls1_weight"
        ``pls1_weight`` = correlations / their Euclidean norm (unit-norm PLS1 weights,
        positive = expression higher where the map is higher).

    Returns
    -------
    (n_genes,) pandas.Series
        Indexed by upper-cased gene symbol (genes with missing or constant expression dropped).

    Examples
    --------
    >>> w = gene_scores(expression, thickness_map)  # doctest: +SKIP
    >>> w.sort_values().tail()  # doctest: +SKIP
    """
    if score not in _SCORES:
        raise InputError(f"score must be one of {format_choices(_SCORES)}; got {score!r}.")
    expr, bmap = _check_expression(expression), _check_map(brain_map)
    rows, X, genes = _align(expr, bmap)
    y = bmap.to_numpy()[rows][:, None]
    if np.ptp(y) == 0:
        raise InputError("brain_map is constant over the regions with expression; nothing to "
                         "correlate.")
    return pd.Series(_scores(_standardise(X), y, score)[:, 0], index=genes, name=score)


def category_scores(gene_scores: pd.Series, gene_sets: GeneSets | Mapping) -> pd.Series:
    """Mean score of each set's genes that have a score.

    Parameters
    ----------
    gene_scores : (n_genes,) pandas.Series
        Indexed by gene symbol (compared upper-cased).
    gene_sets : GeneSets or mapping of str to list of str

    Returns
    -------
    (n_sets,) pandas.Series
        Indexed by set name; NaN for a set with no scored gene.

    Examples
    --------
    >>> s = pd.Series([1.0, 3.0, -2.0], index=["A", "B", "C"])
    >>> category_scores(s, {"ab": ["a", "B"], "cz": ["C", "Z"]}).tolist()
    [2.0, -2.0]
    """
    if not isinstance(gene_sets, GeneSets):
        gene_sets = GeneSets(dict(gene_sets), {}, "")
    if not isinstance(gene_scores, pd.Series):
        raise InputError(f"gene_scores must be a pandas Series indexed by gene; got "
                         f"{type(gene_scores).__name__}.")
    scores = pd.Series(gene_scores.to_numpy(dtype=np.float64),
                       index=[str(g).strip().upper() for g in gene_scores.index])
    if scores.index.duplicated().any():
        raise InputError(f"gene_scores names gene(s) twice: "
                         f"{format_choices(scores.index[scores.index.duplicated()].unique(), 8)}.")
    out = {}
    for name, genes in gene_sets.sets.items():
        inside = scores.reindex(genes).dropna()
        out[name] = float(inside.mean()) if len(inside) else np.nan
    return pd.Series(out, dtype=np.float64, name="category_score")


def spatial_enrichment(expression: pd.DataFrame, brain_map: pd.Series, gene_sets: GeneSets, *,
                       nulls, score: str = "pls1_weight", n_perm_classic: int = 10000,
                       min_size: int = 5, max_size: int = 500, alternative: str = "two-sided",
                       random_state=None, batch_size: int = 256) -> pd.DataFrame:
    """Category-score enrichment of a brain map with a classic and a spatial (ensemble) null.

    Parameters
    ----------
    expression : (n_regions, n_genes) pandas.DataFrame
        Regional expression (e.g. AHBA), regions as index matching ``brain_map``'s index.
    brain_map : (n_map_regions,) pandas.Series
        The map, complete (no NaN). Regions without expression are left out after the null maps
        are built, so spins over the full parcellation stay valid.
    gene_sets : GeneSets
        Restricted to the scored genes (the background) and filtered by size.
    nulls : (n_map_regions, n_null) ndarray
        Integer resampling indices (``brain_map[idx[:, k]]`` is null map k, e.g. from
        ``spin_permutations``) or float surrogate maps (e.g. variogram-matched).
    score : {"pls1_weight", "correlation"}, default="pls1_weight"
    n_perm_classic : int, default=10000
        Random gene sets per category for the classic null.
    min_size, max_size : int, default=5, 500
    alternative : {"two-sided", "greater", "less"}, default="two-sided"
        Two-sided p = min(1, 2 min(p_greater, p_less)).
    random_state : None, int or numpy.random.Generator
        For the classic null's random gene sets (the spatial nulls are given).
    batch_size : int, default=256
        Null maps scored per matrix product (memory ~ 8 n_genes batch_size bytes).

    Returns
    -------
    (n_sets, 11) pandas.DataFrame
        Indexed by set, sorted by ``p_spatial``: ``description``, ``size``, ``score`` (category
        score), ``null_mean_classic``, ``p_classic``, ``q_classic``, ``null_mean_spatial``,
        ``null_sd_spatial``, ``z_spatial`` (``(score - mean) / sd`` of the spatial null),
        ``p_spatial``, ``q_spatial``. ``attrs`` hold ``restriction`` (per-set report), ``n_null``,
        ``n_perm_classic``, ``n_regions``, ``n_genes``, ``score``, ``alternative``.

    Raises
    ------
    InputError
        Bad shapes or values (named), no shared regions, or no set within the size limits.

    Examples
    --------
    >>> idx = spin_permutations(lh, rh, n_rotations=1000, random_state=0)  # doctest: +SKIP
    >>> res = spatial_enrichment(ahba, thickness, cells, nulls=idx, max_size=2000)  # doctest: +SKIP
    >>> res[["score", "p_classic", "p_spatial"]]  # doctest: +SKIP
    """
    if score not in _SCORES:
        raise InputError(f"score must be one of {format_choices(_SCORES)}; got {score!r}.")
    if alternative not in _ALTERNATIVES:
        raise InputError(f"alternative must be one of {format_choices(_ALTERNATIVES)}; got "
                         f"{alternative!r}.")
    if not isinstance(gene_sets, GeneSets):
        raise InputError(f"gene_sets must be a GeneSets (from read_gmt or read_gene_table); got "
                         f"{type(gene_sets).__name__}.")
    n_perm_classic = _positive_int(n_perm_classic, "n_perm_classic")
    batch_size = _positive_int(batch_size, "batch_size")
    min_size, max_size = check_size_limits(min_size, max_size)
    rng = _rng(random_state)
    expr, bmap = _check_expression(expression), _check_map(brain_map)
    null_maps = _null_maps(nulls, bmap)
    rows, X, genes = _align(expr, bmap)
    y = bmap.to_numpy()[rows][:, None]
    null_maps = null_maps[rows]
    if np.ptp(y) == 0:
        raise InputError("brain_map is constant over the regions with expression.")
    flat = np.ptp(null_maps, axis=0) == 0
    if flat.any():
        raise InputError(f"{int(flat.sum())} null map(s) are constant over the {rows.size} regions "
                         f"with expression (e.g. column {int(np.flatnonzero(flat)[0])}); spins "
                         f"that land all regions on one value cannot be correlated.")

    sets, report = gene_sets.restrict(genes, min_size=min_size, max_size=max_size)
    names = sets.names()
    A = _membership(sets, genes)
    sizes = np.asarray(A.getnnz(axis=1))
    Xz = _standardise(X)
    observed_genes = _scores(Xz, y, score)[:, 0]
    observed = A @ observed_genes

    n_null = null_maps.shape[1]
    logger.info("spatial enrichment: %d sets, %d genes, %d regions, %d null maps, %d classic "
                "permutations", len(names), len(genes), rows.size, n_null, n_perm_classic)
    spatial = np.empty((len(names), n_null))
    for start in range(0, n_null, batch_size):
        stop = min(start + batch_size, n_null)
        spatial[:, start:stop] = A @ _scores(Xz, null_maps[:, start:stop], score)
    classic = _classic_null(observed_genes, sizes, n_perm_classic, rng)

    p_classic = _p_values(observed, classic, alternative)
    p_spatial = _p_values(observed, spatial, alternative)
    sd = spatial.std(axis=1, ddof=1) if n_null > 1 else np.full(len(names), np.nan)
    with np.errstate(invalid="ignore", divide="ignore"):
        z = (observed - spatial.mean(axis=1)) / sd
    table = pd.DataFrame({
        "description": [sets.descriptions.get(s, "") for s in names],
        "size": sizes, "score": observed,
        "null_mean_classic": classic.mean(axis=1),
        "p_classic": p_classic, "q_classic": fdr_bh(p_classic),
        "null_mean_spatial": spatial.mean(axis=1), "null_sd_spatial": sd, "z_spatial": z,
        "p_spatial": p_spatial, "q_spatial": fdr_bh(p_spatial),
    }, index=pd.Index(names, name="set")).sort_values(["p_spatial", "p_classic"], kind="stable")
    table.attrs.update(restriction=report, n_null=n_null, n_perm_classic=n_perm_classic,
                       n_regions=int(rows.size), n_genes=len(genes), score=score,
                       alternative=alternative)
    return table


def _classic_null(scores: np.ndarray, sizes: np.ndarray, n_perm: int,
                 rng: np.random.Generator) -> np.ndarray:
    """(n_sets, n_perm) means of random gene sets of each set's size.

    Each permutation draws one random ordering of ``max(sizes)`` distinct genes; a set of size k
    takes its first k (a uniform random k-subset), so one cumulative sum serves every size.
    """
    g = scores.size
    kmax = int(sizes.max())
    out = np.empty((sizes.size, n_perm))
    step = max(1, min(n_perm, (32 * 2**20) // (16 * kmax)))
    picked = np.empty((step, kmax), dtype=np.int64)
    for start in range(0, n_perm, step):
        stop = min(start + step, n_perm)
        _fisher_yates_positions(rng.random((stop - start, kmax)), g, picked[: stop - start])
        csum = np.cumsum(scores[picked[: stop - start]], axis=1)
        out[:, start:stop] = (csum[:, sizes - 1] / sizes).T
    return out
