"""PLS regression of regional gene expression onto a brain map (imaging transcriptomics).

X is the expression matrix (regions x genes, each gene z-scored across regions), y the brain map
(z-scored). The fit is scikit-learn's ``PLSRegression`` (see :mod:`graymatter.stats.pls`); the
significance of each component's share of variance in y is tested against spatial null maps
(spins), and each gene's PLS1 weight gets a bootstrap Z. Both resampling steps are batched matrix
products in the PLS core: no refit runs in a Python loop.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import stats as sps

from graymatter.errors import InputError, format_choices
from graymatter.parallel import as_executor
from graymatter.stats._pls_core import _batch, _bootstrap_moments, _fit_arrays
from graymatter.stats.multiple import fdr_bh
from graymatter.stats.pls import pls_bootstrap, pls_fit, pls_permutation
from graymatter.transcriptomics.expression import filter_genes

__all__ = ["GenePLSResult", "gene_pls", "block_bootstrap_indices"]

logger = logging.getLogger("graymatter")


@dataclass(frozen=True, eq=False)
class GenePLSResult:
    """Imaging-transcriptomics PLS: variance explained, spin p-values, gene weights and lists.

    Attributes
    ----------
    explained_variance : (k,) ndarray
        Share of the (z-scored) map's variance reproduced by each component.
    scores : (n_regions, k) pandas.DataFrame
        Region scores ``PLS1..PLSk``; each component's sign makes its score correlate positively
        with the map.
    weights : (n_genes, k) pandas.DataFrame
        Gene weights (unit norm per component), signs as ``scores``.
    z : (n_genes, k) pandas.DataFrame
        Bootstrap Z = weight / bootstrap SE, signs as ``weights``.
    p_spin : (k,) ndarray or None
        ``(1 + #{null >= observed}) / (1 + n_null)`` of each component's variance explained
        against the spatial null maps; None without nulls.
    null_explained : (n_null, k) ndarray or None
    gene_table : pandas.DataFrame
        Columns gene, weight, se, z, p, p_fdr, rank (PLS1), sorted by z (descending); rank 1 is
        the most positive Z.
    pls1_positive, pls1_negative : list of str
        Genes with Z > 0 (Z < 0) and p_fdr < ``fdr_alpha``, in table order (most extreme first for
        the positive list; most negative first for the negative list).
    n_boot, n_spins : int
    random_state : object
    fdr_alpha : float
    bootstrap : {"regions", "blocks"}
    score_map_r : (k,) ndarray
        Pearson r between each component's scores and the map.
    matched : object or None
        The inputs as analysed (set by ``workflows.transcriptomics.run_transcriptomics``: the
        matched map and expression and the spins), so a next step need not rebuild them.
    """

    explained_variance: np.ndarray
    scores: pd.DataFrame
    weights: pd.DataFrame
    z: pd.DataFrame
    p_spin: np.ndarray | None
    null_explained: np.ndarray | None
    gene_table: pd.DataFrame
    pls1_positive: list
    pls1_negative: list
    n_boot: int
    n_spins: int
    random_state: object
    fdr_alpha: float = 0.05
    bootstrap: str = "regions"
    score_map_r: np.ndarray | None = None
    matched: object = field(default=None, repr=False)

    def to_dict(self) -> dict:
        """JSON-able summary (no per-gene arrays)."""
        seed = self.random_state if isinstance(self.random_state, (int, type(None))) else "generator"
        return {"n_regions": int(self.scores.shape[0]), "n_genes": int(self.weights.shape[0]),
                "n_components": int(self.scores.shape[1]),
                "explained_variance": [float(v) for v in self.explained_variance],
                "p_spin": None if self.p_spin is None else [float(v) for v in self.p_spin],
                "n_spins": int(self.n_spins), "n_boot": int(self.n_boot),
                "bootstrap": self.bootstrap, "fdr_alpha": float(self.fdr_alpha),
                "n_pls1_positive": len(self.pls1_positive),
                "n_pls1_negative": len(self.pls1_negative),
                "score_map_r": None if self.score_map_r is None
                else [float(v) for v in self.score_map_r],
                "random_state": seed}


def block_bootstrap_indices(blocks, n_boot: int, random_state=None) -> np.ndarray:
    """Spatial block-bootstrap resamples: whole blocks drawn with replacement, cut to n rows.

    Parameters
    ----------
    blocks : (n_regions,) array-like
        Block label of each region (e.g. k-means clusters of parcel centroids, lobes).
    n_boot : int
    random_state : None, int or numpy.random.Generator

    Returns
    -------
    indices : (n_boot, n_regions) int32 ndarray
        Rows of each resample: blocks are drawn uniformly with replacement and their regions
        concatenated until ``n_regions`` rows are reached (the last block is cut).

    Examples
    --------
    >>> idx = block_bootstrap_indices([0, 0, 1, 1, 2, 2], 4, random_state=0)
    >>> idx.shape
    (4, 6)
    """
    labels = pd.factorize(pd.Series(np.asarray(blocks)))[0]
    n = labels.size
    n_blocks = labels.max() + 1 if n else 0
    if n_blocks < 2:
        raise InputError(f"blocks must define at least 2 spatial blocks, got {n_blocks}")
    members = [np.flatnonzero(labels == b) for b in range(n_blocks)]
    rng = np.random.default_rng(random_state)
    smallest = min(len(m) for m in members)
    draws = rng.integers(0, n_blocks, size=(n_boot, n // smallest + 1))
    out = np.empty((n_boot, n), dtype=np.int32)
    for b in range(n_boot):
        out[b] = np.concatenate([members[j] for j in draws[b]])[:n]
    return out


def _check_inputs(expression, brain_map, n_components) -> tuple[pd.DataFrame, pd.Series]:
    if not isinstance(expression, pd.DataFrame):
        raise InputError(f"expression must be a pandas DataFrame (regions x genes), got "
                         f"{type(expression).__name__}")
    if not isinstance(brain_map, pd.Series):
        raise InputError(f"brain_map must be a pandas Series indexed by region, got "
                         f"{type(brain_map).__name__}")
    if len(expression) != len(brain_map):
        raise InputError(f"expression has {len(expression)} regions but brain_map has "
                         f"{len(brain_map)}; match them by label first with "
                         "graymatter.transcriptomics.expression.match_regions")
    if set(expression.index) != set(brain_map.index) or expression.index.duplicated().any():
        only_e = expression.index.difference(brain_map.index)
        only_m = brain_map.index.difference(expression.index)
        raise InputError(f"expression and brain_map must be indexed by the same region labels "
                         f"(only in expression: {format_choices(only_e) or 'none'}; only in "
                         f"brain_map: {format_choices(only_m) or 'none'}); use match_regions")
    y = brain_map.reindex(expression.index).astype(np.float64)
    if y.isna().any() or expression.isna().to_numpy().any():
        raise InputError("expression or brain_map has missing values; match_regions drops NaN "
                         "regions and genes (and reports them): run it first")
    n = len(expression)
    if isinstance(n_components, bool) or not isinstance(n_components, (int, np.integer)) \
            or n_components < 1:
        raise InputError(f"n_components must be a positive integer, got {n_components!r}")
    if n <= n_components + 1:
        raise InputError(f"n_components={n_components} needs at least {n_components + 2} regions, "
                         f"but only {n} were matched; use fewer components or more regions")
    if y.std() == 0:
        raise InputError("brain_map is constant across the matched regions; there is nothing to "
                         "explain")
    X = filter_genes(expression)  # zero-variance genes cannot be z-scored: warn and drop
    return X, y


def gene_pls(expression: pd.DataFrame, brain_map: pd.Series, *, n_components: int = 3,
             nulls=None, n_boot: int = 1000, bootstrap: str = "regions", blocks=None,
             fdr_alpha: float = 0.05, random_state=None, executor=None) -> GenePLSResult:
    """PLS of gene expression (predictors) onto a regional brain map (response).

    Parameters
    ----------
    expression : (n_regions, n_genes) pandas.DataFrame
        Expression matched to the map (see :func:`~graymatter.transcriptomics.expression.match_regions`).
        Genes are z-scored across regions; zero-variance genes are dropped with a warning.
    brain_map : (n_regions,) pandas.Series
        Map values indexed by the same region labels (matched by label, not order).
    n_components : int, default=3
    nulls : (n_regions, n_null) int array-like, optional
        Spatial null reassignments (rows in ``expression``'s region order), e.g. from
        ``spin_permutations``: null map ``j`` is ``y[nulls[:, j]]``. Each null map is refitted
        (batched) and ``p_spin = (1 + #{null >= observed}) / (1 + n_null)`` per component.
    n_boot : int, default=1000
        Bootstrap resamples for the gene Z scores (0 skips: z, p and lists are NaN/empty).
    bootstrap : {"regions", "blocks"}, default="regions"
        ``"regions"`` resamples regions independently. Regions are not independent (neighbours
        have similar expression and map values), so this SE is optimistic and the gene lists too
        long; ``"blocks"`` resamples whole spatial blocks (``blocks=`` labels, e.g. k-means
        clusters of parcel centroids), which keeps dependence within blocks.
    blocks : (n_regions,) array-like, optional
        Block label per region, required for ``bootstrap="blocks"``.
    fdr_alpha : float, default=0.05
        PLS1+ = genes with Z > 0 and p_FDR < alpha; PLS1- = Z < 0 and p_FDR < alpha
        (Benjamini-Hochberg over all genes, p two-sided from the normal distribution of Z).
    random_state : None, int or numpy.random.Generator
        Seed of the bootstrap.
    executor : Executor, optional
        From :func:`graymatter.parallel.get_executor`: the spin and bootstrap batches become
        tasks (resamples are drawn here, so the results agree with a serial run to rounding).

    Returns
    -------
    GenePLSResult

    Raises
    ------
    InputError
        Labels that differ between expression and map, missing values, a constant map, fewer
        regions than ``n_components + 2``, bad ``nulls`` or ``blocks``.

    Notes
    -----
    The fit equals scikit-learn's ``PLSRegression(n_components, scale=True)`` up to each
    component's sign, which is chosen here so that the component's scores correlate positively
    with the map (weights flipped with them).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> expr = pd.DataFrame(rng.standard_normal((40, 200)),
    ...                     index=[f"lh_r{i}" for i in range(40)])
    >>> y = pd.Series(expr.iloc[:, :5].sum(axis=1) + rng.standard_normal(40), index=expr.index)
    >>> res = gene_pls(expr, y, n_components=2, n_boot=100, random_state=0)
    >>> res.weights.shape, bool(res.scores["PLS1"].corr(y) > 0)
    ((200, 2), True)
    """
    X, y = _check_inputs(expression, brain_map, n_components)
    if bootstrap not in ("regions", "blocks"):
        raise InputError(f"bootstrap must be 'regions' or 'blocks', got {bootstrap!r}")
    if not 0 < fdr_alpha < 1:
        raise InputError(f"fdr_alpha must lie in (0, 1), got {fdr_alpha!r}")
    if isinstance(n_boot, bool) or not isinstance(n_boot, (int, np.integer)) or n_boot < 0 \
            or n_boot == 1:
        raise InputError(f"n_boot must be 0 (no bootstrap) or an integer >= 2, got {n_boot!r}")
    k = int(n_components)
    Xa = X.to_numpy(dtype=np.float64)
    ya = y.to_numpy(dtype=np.float64)
    fit = pls_fit(Xa, ya, n_components=k, scale=True)
    ys = (ya - ya.mean()) / ya.std(ddof=1)
    r = np.array([np.corrcoef(fit.x_scores[:, a], ys)[0, 1] for a in range(k)])
    sign = np.where(r < 0, -1.0, 1.0)
    comps = [f"PLS{a + 1}" for a in range(k)]
    weights = pd.DataFrame(fit.x_weights * sign, index=X.columns, columns=comps)
    scores = pd.DataFrame(fit.x_scores * sign, index=X.index, columns=comps)

    p_spin = null_ev = None
    n_spins = 0
    if nulls is not None:
        perm = pls_permutation(Xa, ya, n_components=k, scale=True, permutations=nulls,
                               executor=executor)
        p_spin, null_ev = perm.p_explained_variance, perm.null_explained_variance_y
        n_spins = perm.n_perm

    if n_boot:
        if bootstrap == "regions":
            se = pls_bootstrap(Xa, ya, n_components=k, n_boot=int(n_boot), scale=True,
                               random_state=random_state, executor=executor).se
        else:
            if blocks is None or len(np.asarray(blocks)) != len(X):
                raise InputError(f"bootstrap='blocks' needs blocks= with one label per region "
                                 f"({len(X)}), got "
                                 f"{'none' if blocks is None else len(np.asarray(blocks))}")
            if isinstance(blocks, pd.Series):
                block_vals = blocks.reindex(X.index)
                if block_vals.isna().any():
                    raise InputError("blocks has no label for regions "
                                     f"{format_choices(X.index[block_vals.isna().to_numpy()])}")
                block_vals = block_vals.to_numpy()
            else:
                block_vals = np.asarray(blocks)
            indices = block_bootstrap_indices(block_vals, int(n_boot), random_state)
            se = _indexed_bootstrap_se(Xa, ya[:, None], indices, k, executor)
        with np.errstate(divide="ignore", invalid="ignore"):
            zvals = fit.x_weights * sign / se
    else:
        se = np.full_like(fit.x_weights, np.nan)
        zvals = np.full_like(fit.x_weights, np.nan)
    z = pd.DataFrame(zvals, index=X.columns, columns=comps)
    p = 2.0 * sps.norm.sf(np.abs(zvals[:, 0]))
    p_fdr = fdr_bh(p)
    table = pd.DataFrame({"gene": X.columns.astype(str), "weight": weights["PLS1"].to_numpy(),
                          "se": se[:, 0], "z": zvals[:, 0], "p": p, "p_fdr": p_fdr})
    table = table.sort_values("z", ascending=False, kind="stable", na_position="last")
    table = table.reset_index(drop=True)
    table["rank"] = np.arange(1, len(table) + 1)
    sig = table["p_fdr"] < fdr_alpha
    positive = table.loc[sig & (table["z"] > 0), "gene"].tolist()
    negative = table.loc[sig & (table["z"] < 0), "gene"].tolist()[::-1]
    logger.info("gene PLS: %d regions x %d genes, PLS1 explains %.1f%% of the map (p_spin=%s); "
                "PLS1+ %d, PLS1- %d genes at p_FDR < %g", X.shape[0], X.shape[1],
                100 * fit.explained_variance_y[0],
                "n/a" if p_spin is None else f"{p_spin[0]:.4g}", len(positive), len(negative),
                fdr_alpha)
    return GenePLSResult(explained_variance=fit.explained_variance_y.copy(), scores=scores,
                         weights=weights, z=z, p_spin=p_spin, null_explained=null_ev,
                         gene_table=table, pls1_positive=positive, pls1_negative=negative,
                         n_boot=int(n_boot), n_spins=int(n_spins), random_state=random_state,
                         fdr_alpha=float(fdr_alpha), bootstrap=bootstrap,
                         score_map_r=np.abs(r))


def _indexed_bootstrap_se(Xa: np.ndarray, Ya: np.ndarray, indices: np.ndarray, k: int,
                          executor=None) -> np.ndarray:
    """Bootstrap SE of the x-weights for given resamples (rows ``indices[b]``), as pls_bootstrap."""
    out, xs, ys = _fit_arrays(Xa, Ya, k, True)
    ref = out["w"][0]
    X0, Y0 = Xa - xs, Ya - ys
    bs = _batch(None, len(indices), Xa.shape[0], Xa.shape[1], 1, k)
    s1, s2, n_valid, _ = _bootstrap_moments(X0, X0 * X0, Y0, indices, ref, k, True, bs, keep=False,
                                            executor=as_executor(executor))
    if n_valid < 2:
        raise InputError(f"fewer than 2 of {len(indices)} block-bootstrap resamples could be "
                         "fitted; use more or smaller blocks")
    mean_d = s1 / n_valid
    return np.sqrt(np.maximum(s2 - n_valid * mean_d ** 2, 0.0) / (n_valid - 1))
