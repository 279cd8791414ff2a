"""Over-representation analysis (ORA) of a gene list and redundancy reduction of enriched terms.

ORA asks whether a gene list (e.g. the PLS1+ genes) holds more members of a set than a random
draw of the same size from the background would. With ``M`` background genes, ``n`` of them in
the set, ``N`` listed genes of which ``k`` are in the set, the p-value is the hypergeometric upper
tail ``P(X >= k) = hypergeom.sf(k - 1, M, n, N)``, identical to the one-sided Fisher exact test
(``alternative="greater"``). The background must be the genes actually measured: listed genes
outside it are dropped (logged), and sets are restricted to it before the size filters.

:func:`reduce_redundancy` condenses a long list of significant GO terms the way Metascape does:
terms are compared by their gene membership (Cohen's kappa, as in DAVID and Metascape, or
Jaccard), clustered by average linkage at a similarity threshold, and the most significant term of
each cluster is marked as its representative.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy.cluster.hierarchy import fcluster, linkage
from scipy.spatial.distance import squareform
from scipy.stats import hypergeom

from graymatter.errors import InputError, format_choices
from graymatter.stats.multiple import fdr_bh
from graymatter.transcriptomics.genesets import GeneSets, normalise_symbols

__all__ = ["ora", "reduce_redundancy", "set_similarity"]

logger = logging.getLogger("graymatter")

_COLUMNS = ["set", "description", "size", "overlap", "expected", "fold_enrichment", "p", "q",
            "genes"]


def _gene_list(values, name: str) -> list[str]:
    if isinstance(values, str):
        raise InputError(f"{name} must be a list of gene symbols, not one string "
                         f"({values[:40]!r}); pass e.g. ['GFAP', 'AQP4'].")
    try:
        return normalise_symbols(values)
    except TypeError:
        raise InputError(f"{name} must be a list of gene symbols; got "
                         f"{type(values).__name__}.") from None


def ora(genes: Sequence[str], gene_sets: GeneSets, *, background: Sequence[str],
        min_size: int = 5, max_size: int = 500) -> pd.DataFrame:
    """Hypergeometric (one-sided Fisher) over-representation of a gene list in each set.

    Parameters
    ----------
    genes : sequence of str
        The gene list (e.g. PLS1+ genes at FDR < 0.001); compared upper-cased.
    gene_sets : GeneSets
    background : sequence of str
        All measured genes (e.g. the expression matrix columns). Listed genes outside it are
        dropped; sets are restricted to it.
    min_size, max_size : int, default=5, 500
        Keep sets with this many background genes.

    Returns
    -------
    (n_sets, 9) pandas.DataFrame
        One row per kept set, sorted by ``p``: ``set``, ``description``, ``size`` (``n``, set genes
        in the background), ``overlap`` (``k``), ``expected`` (``N n / M``),
        ``fold_enrichment`` (``k / expected``), ``p`` (``P(X >= k)``), ``q`` (Benjamini-Hochberg
        over the kept sets) and ``genes`` (overlapping genes, ';'-joined, sorted).
        ``table.attrs`` holds ``n_list`` (N), ``n_background`` (M) and ``restriction`` (the
        per-set report of :meth:`GeneSets.restrict`).

    Raises
    ------
    InputError
        If no listed gene is in the background, or no set passes the size filters.

    Examples
    --------
    >>> table = ora(pls1_plus, go_bp, background=expression.columns)  # doctest: +SKIP
    >>> table.loc[table["q"] < 0.05, ["set", "overlap", "fold_enrichment", "q"]]  # doctest: +SKIP
    """
    if not isinstance(gene_sets, GeneSets):
        raise InputError(f"gene_sets must be a GeneSets (from read_gmt or read_gene_table); got "
                         f"{type(gene_sets).__name__}.")
    universe = _gene_list(background, "background")
    listed = _gene_list(genes, "genes")
    in_bg = set(universe)
    outside = [g for g in listed if g not in in_bg]
    listed = [g for g in listed if g in in_bg]
    if outside:
        logger.info("ORA: %d of %d listed genes are not in the background and were dropped (%s)",
                    len(outside), len(outside) + len(listed), format_choices(outside, limit=5))
    if not listed:
        raise InputError(f"none of the {len(outside)} listed genes is in the background of "
                         f"{len(universe)} measured genes (e.g. {format_choices(outside, 5)}); "
                         f"check that both use gene symbols.")
    sets, report = gene_sets.restrict(universe, min_size=min_size, max_size=max_size)
    big_m, big_n = len(universe), len(listed)
    chosen = set(listed)
    rows = []
    for name, members in sets.sets.items():
        hits = sorted(g for g in members if g in chosen)
        rows.append((name, sets.descriptions.get(name, ""), len(members), len(hits),
                     ";".join(hits)))
    table = pd.DataFrame(rows, columns=["set", "description", "size", "overlap", "genes"])
    n, k = table["size"].to_numpy(), table["overlap"].to_numpy()
    table["expected"] = big_n * n / big_m
    table["fold_enrichment"] = k / table["expected"]
    table["p"] = hypergeom.sf(k - 1, big_m, n, big_n)
    table["q"] = fdr_bh(table["p"].to_numpy())
    table = table[_COLUMNS].sort_values(["p", "fold_enrichment"], ascending=[True, False],
                                        kind="stable").reset_index(drop=True)
    table.attrs.update(n_list=big_n, n_background=big_m, restriction=report)
    return table


def set_similarity(gene_sets: GeneSets, names: Sequence[str], *, similarity: str = "kappa",
                   background: Sequence[str] | None = None) -> np.ndarray:
    """Pairwise similarity of gene sets by membership: Cohen's kappa or Jaccard.

    Parameters
    ----------
    gene_sets : GeneSets
    names : sequence of str
        The sets to compare.
    similarity : {"kappa", "jaccard"}
        ``kappa`` treats each gene of the background as a rating "in set / not in set" by the two
        terms: ``(o - e) / (1 - e)`` with observed agreement ``o`` and chance agreement ``e``.
    background : sequence of str, optional
        The genes kappa counts (default: the union of all genes in ``gene_sets``).

    Returns
    -------
    (n, n) ndarray
        Symmetric with ones on the diagonal.

    Examples
    --------
    >>> gs = GeneSets({"a": ["X", "Y"], "b": ["X", "Y"], "c": ["Z"]}, {}, "")
    >>> set_similarity(gs, ["a", "b", "c"], similarity="jaccard")[0]
    array([1., 1., 0.])
    """
    if similarity not in ("kappa", "jaccard"):
        raise InputError(f"similarity must be 'kappa' or 'jaccard'; got {similarity!r}.")
    universe = normalise_symbols(background) if background is not None else gene_sets.genes()
    col = {g: i for i, g in enumerate(universe)}
    member = np.zeros((len(names), len(universe)), dtype=np.float64)
    for i, name in enumerate(names):
        idx = [col[g] for g in gene_sets[name] if g in col]
        member[i, idx] = 1.0
    both = member @ member.T
    size = member.sum(axis=1)
    if similarity == "jaccard":
        union = size[:, None] + size[None, :] - both
        with np.errstate(invalid="ignore", divide="ignore"):
            sim = np.where(union > 0, both / union, 0.0)
    else:
        g = float(len(universe))
        neither = g - size[:, None] - size[None, :] + both
        observed = (both + neither) / g
        a, b = size[:, None], size[None, :]
        expected = (a * b + (g - a) * (g - b)) / g**2
        with np.errstate(invalid="ignore", divide="ignore"):
            sim = np.where(expected < 1, (observed - expected) / (1 - expected), 1.0)
    np.fill_diagonal(sim, 1.0)
    return sim


def reduce_redundancy(table: pd.DataFrame, gene_sets: GeneSets, *, similarity: str = "kappa",
                      threshold: float = 0.3, q_threshold: float = 0.05,
                      background: Sequence[str] | None = None) -> pd.DataFrame:
    """Cluster significant terms by gene overlap and mark one representative per cluster.

    Terms with ``q <= q_threshold`` are clustered by average linkage on ``1 - similarity`` and
    cut so that clusters join terms whose average similarity is at least ``threshold``
    (Metascape: kappa > 0.3). The representative is the cluster's term with the smallest ``p``
    (ties: larger ``fold_enrichment``, then table order).

    Parameters
    ----------
    table : pandas.DataFrame
        An :func:`ora` table (columns ``set``, ``p``, ``q``; ``fold_enrichment`` used for ties).
    gene_sets : GeneSets
        The sets the table was computed from.
    similarity : {"kappa", "jaccard"}, default="kappa"
    threshold : float, default=0.3
        Similarity at which terms join a cluster (0.3 is Metascape's kappa default; for Jaccard
        0.5 is common).
    q_threshold : float, default=0.05
        Only terms at or below this q are clustered.
    background : sequence of str, optional
        Genes kappa counts (default: union of ``gene_sets``); pass the ORA background to match
        DAVID's definition.

    Returns
    -------
    pandas.DataFrame
        ``table`` plus ``cluster`` (int, 1 = cluster of the most significant term; ``-1`` for
        terms above ``q_threshold``) and ``representative`` (bool).

    Examples
    --------
    >>> go = ora(pls1_plus, go_bp, background=genes)  # doctest: +SKIP
    >>> summary = reduce_redundancy(go, go_bp)  # doctest: +SKIP
    >>> summary[summary["representative"]]  # doctest: +SKIP
    """
    missing = [c for c in ("set", "p", "q") if c not in getattr(table, "columns", [])]
    if missing:
        raise InputError(f"table lacks column(s) {format_choices(missing)}; pass the table "
                         f"returned by ora().")
    if not 0 <= float(q_threshold) <= 1:
        raise InputError(f"q_threshold must be in [0, 1]; got {q_threshold}.")
    lo = -1.0 if similarity == "kappa" else 0.0
    if not lo <= float(threshold) <= 1:
        raise InputError(f"threshold must be a similarity in [{lo:g}, 1]; got {threshold}.")
    unknown = [s for s in table["set"] if s not in gene_sets.sets]
    if unknown:
        raise InputError(f"table names set(s) not in gene_sets: {format_choices(unknown)}; pass "
                         f"the GeneSets the table was computed from.")
    out = table.copy()
    out["cluster"] = -1
    out["representative"] = False
    sig = np.flatnonzero(out["q"].to_numpy() <= q_threshold)
    if sig.size == 0:
        return out
    names = out["set"].iloc[sig].tolist()
    if sig.size == 1:
        labels = np.array([1])
    else:
        sim = set_similarity(gene_sets, names, similarity=similarity, background=background)
        dist = np.clip(1.0 - sim, 0.0, None)
        np.fill_diagonal(dist, 0.0)
        tree = linkage(squareform(dist, checks=False), method="average")
        labels = fcluster(tree, t=1.0 - float(threshold), criterion="distance")
    fold = out["fold_enrichment"].to_numpy() if "fold_enrichment" in out else np.zeros(len(out))
    order = np.lexsort((np.arange(sig.size), -fold[sig], out["p"].to_numpy()[sig]))
    rename: dict[int, int] = {}
    for i in order:  # number clusters by their best term
        rename.setdefault(labels[i], len(rename) + 1)
    clusters = np.array([rename[c] for c in labels])
    rep = np.zeros(sig.size, dtype=bool)
    seen = set()
    for i in order:
        if clusters[i] not in seen:
            seen.add(clusters[i])
            rep[i] = True
    out.iloc[sig, out.columns.get_loc("cluster")] = clusters
    out.iloc[sig, out.columns.get_loc("representative")] = rep
    return out
