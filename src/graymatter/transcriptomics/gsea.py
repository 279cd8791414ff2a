"""Preranked gene-set enrichment analysis (GSEA prerank; Subramanian et al. 2005, PNAS 102:15545).

Method
------
Genes are sorted by score, descending (ties keep input order). For a set ``S`` of ``k`` genes
among ``N``, the running sum walks down the list adding ``|r_g|^p / sum_{h in S} |r_h|^p`` at each
member and subtracting ``1 / (N - k)`` at each non-member; ES is the running sum's largest
deviation from zero (the maximum if ``|max| > |min|``, else the minimum, as in GSEA and gseapy).

The null is GSEA's prerank null: the gene labels of the ranking are shuffled (one shuffle per
permutation, shared by all sets, so overlapping sets keep their overlap). Then, per set,

* ``NES = ES / mean(|null ES| of the same sign)``;
* nominal ``p = (1 + #{same-sign null ES at least as extreme}) / (1 + #{same-sign null ES})``
  (GSEA's ratio with the observed statistic counted, so p is never 0);
* FDR ``q`` by GSEA's definition: the fraction of all sets' null NES (same sign) at least as
  extreme as the set's NES, divided by the fraction of observed NES (same sign) at least as
  extreme, capped at 1 (numerator counted the same way as p, so q is never 0);
* leading edge: the set members ranked at or before the running-sum peak (ES >= 0), or at or
  after the trough (ES < 0).

Speed
-----
Only the positions of set members matter: the running sum peaks at a member and bottoms out just
before one, so ES follows from the members' positions in rank order. Each permutation draws the
positions of the union of set genes with a partial Fisher-Yates shuffle (O(union size)), then one
pass down the list updates the running sums of every set a gene belongs to: O(n_genes +
memberships) per permutation for all sets together, instead of O(n_genes) per set. A numba
kernel runs the permutations of a batch in parallel. Memory is one batch of positions (~64 MB at
most) plus the ``(n_perm, n_sets)`` float64 null ES; the latter dominates for thousands of GO sets
(8 bytes x n_perm x n_sets).

Randomness comes from one ``np.random.default_rng(random_state)``; uniforms are drawn in fixed
blocks of 128 permutations, so the numbers do not depend on ``batch_size`` or on numba's thread
count.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from numba import njit, prange

from graymatter.errors import InputError, format_choices
from graymatter.transcriptomics.genesets import GeneSets, check_size_limits

__all__ = ["GSEAResult", "gsea_prerank", "check_ranking", "enrichment_score"]

logger = logging.getLogger("graymatter")

_BLOCK = 128  # permutations per random-number draw (fixed, so batch_size never changes results)


# ================================================================================ kernels

@njit(cache=True, nogil=True)
def _es_sorted(pos, w, n):
    """ES of one set from its sorted member positions: (es, index of the peak/trough member, sign).

    Returns the member index ``j`` so that the leading edge is members ``[0, j]`` (ES >= 0) or
    ``[j, k)`` (ES < 0).
    """
    k = pos.size
    total = 0.0
    for i in range(k):
        total += w[pos[i]]
    classic = total <= 0.0  # all member scores 0: fall back to unweighted steps
    inv = 1.0 / k if classic else 1.0 / total
    miss = 1.0 / (n - k)
    cum = 0.0
    best_max = -np.inf
    j_max = 0
    best_min = 0.0  # the running sum ends at 0 after the last gene
    j_min = k
    for j in range(k):
        before = (pos[j] - j) * miss  # non-members ranked before member j
        if pos[j] > 0:
            cand = cum * inv - before
            if cand < best_min:
                best_min = cand
                j_min = j
        cum += 1.0 if classic else w[pos[j]]
        cand = cum * inv - before
        if cand > best_max:
            best_max = cand
            j_max = j
    if abs(best_max) > abs(best_min):
        return best_max, j_max
    return best_min, j_min


@njit(cache=True, nogil=True)
def _fisher_yates_positions(uniforms, n, out):
    """Row b of ``out``: distinct positions for the union genes from a partial shuffle of 0..n-1.

    Step i swaps slot i with slot ``i + floor(u * (n - i))``, ``u = uniforms[b, i]`` in [0, 1)
    (uniform up to double rounding, ~2**-53); the scratch array is restored after each row.
    """
    scratch = np.arange(n)
    n_rows, m = uniforms.shape
    for b in range(n_rows):
        for i in range(m):
            j = i + min(int(uniforms[b, i] * (n - i)), n - i - 1)
            t = scratch[i]
            scratch[i] = scratch[j]
            scratch[j] = t
            out[b, i] = scratch[i]
        for i in range(m - 1, -1, -1):
            j = i + min(int(uniforms[b, i] * (n - i)), n - i - 1)
            t = scratch[i]
            scratch[i] = scratch[j]
            scratch[j] = t


@njit(cache=True, parallel=True)
def _null_es(positions, gene_ptr, gene_sets, sizes, w, n, out):
    """``out[b, s]`` = ES of set s when the union genes sit at ``positions[b]``.

    One pass down the ranked list per permutation: each union gene met updates the running sums
    of the sets it belongs to (CSR ``gene_ptr``/``gene_sets``), so a permutation costs
    O(n + memberships) for all sets together. Same arithmetic, in the same order, as
    :func:`_es_sorted`, hence the same numbers.
    """
    n_rows, m = positions.shape
    n_sets = sizes.size
    miss = np.empty(n_sets)
    for s in range(n_sets):
        miss[s] = 1.0 / (n - sizes[s])
    for b in prange(n_rows):
        owner = np.full(n, -1, np.int32)
        total = np.zeros(n_sets)
        for i in range(m):
            p = positions[b, i]
            owner[p] = i
            for t in range(gene_ptr[i], gene_ptr[i + 1]):
                total[gene_sets[t]] += w[p]
        classic = total <= 0.0
        inv = np.empty(n_sets)
        for s in range(n_sets):
            inv[s] = 1.0 / sizes[s] if classic[s] else 1.0 / total[s]
        cum = np.zeros(n_sets)
        seen = np.zeros(n_sets, np.int64)
        best_max = np.full(n_sets, -np.inf)
        best_min = np.zeros(n_sets)
        for p in range(n):
            u = owner[p]
            if u < 0:
                continue
            for t in range(gene_ptr[u], gene_ptr[u + 1]):
                s = gene_sets[t]
                before = (p - seen[s]) * miss[s]
                if p > 0:
                    cand = cum[s] * inv[s] - before
                    if cand < best_min[s]:
                        best_min[s] = cand
                cum[s] += 1.0 if classic[s] else w[p]
                cand = cum[s] * inv[s] - before
                if cand > best_max[s]:
                    best_max[s] = cand
                seen[s] += 1
        for s in range(n_sets):
            out[b, s] = best_max[s] if abs(best_max[s]) > abs(best_min[s]) else best_min[s]


# ================================================================================ helpers

def check_ranking(ranking, *, name: str = "ranking") -> pd.Series:
    """Validate a gene ranking and return it with upper-cased gene symbols as index.

    Raises
    ------
    InputError
        If it is not a numeric Series indexed by gene, has missing or infinite scores, or names
        a gene twice (after upper-casing); the offending genes are listed.

    Examples
    --------
    >>> check_ranking(pd.Series([0.5, -1.0], index=["gfap", "Snap25"]))
    Traceback (most recent call last):
    ...
    graymatter.errors.InputError: ranking has 2 genes; GSEA needs a ranking of many genes.
    >>> check_ranking(pd.Series([0.5, -1.0, 2.0], index=["gfap", "Snap25", "AQP4"])).index.tolist()
    ['GFAP', 'SNAP25', 'AQP4']
    """
    if isinstance(ranking, pd.DataFrame) and ranking.shape[1] == 1:
        ranking = ranking.iloc[:, 0]
    if not isinstance(ranking, pd.Series):
        raise InputError(f"{name} must be a pandas Series of scores indexed by gene symbol; got "
                         f"{type(ranking).__name__}. Build one with "
                         f"pd.Series(scores, index=genes).")
    try:
        values = pd.to_numeric(ranking, errors="raise").to_numpy(dtype=np.float64, na_value=np.nan)
    except (TypeError, ValueError):
        raise InputError(f"{name} holds non-numeric scores (e.g. {ranking.iloc[0]!r}); expected "
                         f"one number per gene.") from None
    genes = pd.Index([str(g).strip().upper() for g in ranking.index])
    if len(genes) < 3:
        raise InputError(f"{name} has {len(genes)} genes; GSEA needs a ranking of many genes.")
    bad = ~np.isfinite(values)
    if bad.any():
        raise InputError(f"{name} has {int(bad.sum())} missing or infinite score(s), for "
                         f"{format_choices(genes[bad], limit=8)}. Drop those genes (e.g. "
                         f"ranking.dropna()) or give them a score; they cannot be ranked.")
    dup = genes.duplicated(keep=False)
    if dup.any():
        raise InputError(f"{name} names {int(genes[dup].nunique())} gene(s) more than once "
                         f"(symbols compared upper-cased): "
                         f"{format_choices(genes[dup].unique(), 8)}. "
                         f"Keep one score per gene, e.g. average the duplicates with "
                         f"ranking.groupby(level=0).mean().")
    return pd.Series(values, index=genes, name=ranking.name)


def _sorted_ranking(ranking: pd.Series) -> pd.Series:
    order = np.argsort(-ranking.to_numpy(), kind="stable")
    return ranking.iloc[order]


def _weights(values: np.ndarray, weight) -> np.ndarray:
    try:
        weight = float(weight)
    except (TypeError, ValueError):
        raise InputError(f"weight must be a number >= 0 (GSEA's p: 0 classic, 1 default); "
                         f"got {weight!r}.") from None
    if not np.isfinite(weight) or weight < 0:
        raise InputError(f"weight must be a finite number >= 0 (0 classic, 1 weighted); "
                         f"got {weight}.")
    return np.ones_like(values) if weight == 0 else np.abs(values) ** weight


def _rng(random_state) -> np.random.Generator:
    try:
        return np.random.default_rng(random_state)
    except (TypeError, ValueError):
        raise InputError(f"random_state must be None, an int or a numpy Generator; got "
                         f"{random_state!r}.") from None


def _positive_int(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise InputError(f"{name} must be a positive integer; got {value!r}.")
    return int(value)


def enrichment_score(ranking: pd.Series, genes, *, weight: float = 1.0) -> tuple[float, list[str]]:
    """ES and leading-edge genes of one gene set in a ranking (no permutations).

    Parameters
    ----------
    ranking : (n_genes,) pandas.Series
        Scores indexed by gene symbol (sorted here, descending).
    genes : list of str
        The set; genes absent from the ranking are ignored.
    weight : float, default=1.0
        GSEA's exponent ``p`` on ``|score|``.

    Returns
    -------
    es : float
    leading_edge : list of str
        In ranking order.

    Examples
    --------
    >>> r = pd.Series([3.0, 2.0, 1.0, 0.5], index=["A", "B", "C", "D"])
    >>> enrichment_score(r, ["A", "B"])
    (1.0, ['A', 'B'])
    """
    ranked = _sorted_ranking(check_ranking(ranking))
    where = pd.Index(ranked.index).get_indexer([str(g).strip().upper() for g in genes])
    pos = np.sort(np.unique(where[where >= 0])).astype(np.int64)
    if pos.size == 0 or pos.size == len(ranked):
        raise InputError(f"the gene set shares {pos.size} of its {len(genes)} genes with the "
                         f"{len(ranked)} ranked genes; ES needs some members and some non-members.")
    es, j = _es_sorted(pos, _weights(ranked.to_numpy(), weight), len(ranked))
    lead = pos[: j + 1] if es >= 0 else pos[j:]
    return float(es), ranked.index[lead].tolist()


# ================================================================================ result

@dataclass(frozen=True, eq=False)
class GSEAResult:
    """Preranked GSEA of several gene sets.

    Attributes
    ----------
    table : (n_sets, 8) pandas.DataFrame
        Indexed by set name, sorted by ``fdr_q`` then ``p``: ``description``, ``size`` (genes in
        the ranking), ``es``, ``nes``, ``p`` (nominal, same-sign null), ``fdr_q`` (GSEA's FDR),
        ``leading_edge_size`` and ``leading_edge`` (';'-joined genes in ranking order).
    n_perm : int
    weight : float
    random_state : int, Generator or None
        As passed.
    restriction : pandas.DataFrame
        :meth:`GeneSets.restrict`'s report: every input set, its measured size and why it was
        dropped, if it was.
    null_es : (n_perm, n_sets) ndarray
        Null ES; columns follow ``null_sets``.
    null_sets : list of str
    """

    table: pd.DataFrame
    n_perm: int
    weight: float
    random_state: object
    restriction: pd.DataFrame = field(repr=False)
    null_es: np.ndarray = field(repr=False)
    null_sets: list = field(repr=False)


def _normalise(es: np.ndarray, null: np.ndarray):
    """NES of observed and null ES, nominal p, each set scaled by its same-sign null mean."""
    pos = null >= 0
    n_pos = pos.sum(axis=0)
    n_neg = null.shape[0] - n_pos
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_pos = np.where(pos, null, 0.0).sum(axis=0) / n_pos
        mean_neg = -np.where(~pos, null, 0.0).sum(axis=0) / n_neg
        scale_obs = np.where(es >= 0, mean_pos, mean_neg)
        nes = es / scale_obs
        null_nes = null / np.where(pos, mean_pos, mean_neg)
    up = es >= 0
    count_up = (pos & (null >= es)).sum(axis=0)
    count_down = (~pos & (null <= es)).sum(axis=0)
    p = np.where(up, (1 + count_up) / (1 + n_pos), (1 + count_down) / (1 + n_neg))
    return nes, null_nes, p


def _gsea_fdr(nes: np.ndarray, null_nes: np.ndarray) -> np.ndarray:
    """GSEA's FDR q: same-sign tail fraction of all null NES over that of the observed NES."""
    flat = null_nes[np.isfinite(null_nes)]
    null_pos = np.sort(flat[flat >= 0])
    null_neg = np.sort(flat[flat < 0])
    obs = nes[np.isfinite(nes)]
    obs_pos = np.sort(obs[obs >= 0])
    obs_neg = np.sort(obs[obs < 0])
    q = np.full(nes.shape, np.nan)
    for i, value in enumerate(nes):
        if not np.isfinite(value):
            continue
        if value >= 0:
            tail_null = null_pos.size - np.searchsorted(null_pos, value, side="left")
            pi_null = (1 + tail_null) / (1 + null_pos.size)
            pi_obs = (obs_pos.size - np.searchsorted(obs_pos, value, side="left")) / obs_pos.size
        else:
            tail_null = np.searchsorted(null_neg, value, side="right")
            pi_null = (1 + tail_null) / (1 + null_neg.size)
            pi_obs = np.searchsorted(obs_neg, value, side="right") / obs_neg.size
        q[i] = min(1.0, pi_null / pi_obs)
    return q


# ================================================================================ main

def gsea_prerank(ranking: pd.Series, gene_sets: GeneSets, *, weight: float = 1.0,
                 n_perm: int = 10000, min_size: int = 15, max_size: int = 500,
                 random_state=None, batch_size: int | None = None) -> GSEAResult:
    """Preranked GSEA with a gene-permutation null (Subramanian et al. 2005).

    Parameters
    ----------
    ranking : (n_genes,) pandas.Series
        One score per gene (e.g. PLS1 weight or correlation with a brain map), indexed by gene
        symbol (compared upper-cased). Sorted here, descending. Every score must be finite and
        every gene unique.
    gene_sets : GeneSets
        Restricted here to the ranked genes (the background).
    weight : float, default=1.0
        Exponent ``p`` of ``|score|`` in the running sum (0 = classic Kolmogorov-Smirnov steps).
    n_perm : int, default=10000
        Gene-label permutations.
    min_size, max_size : int, default=15, 500
        Keep sets with this many ranked genes (GSEA's defaults; the Seidlitz cell classes have
        ~100-1,100 AHBA genes, so use ``max_size=2000`` for them).
    random_state : None, int or numpy.random.Generator
    batch_size : int, optional
        Permutations scored per kernel call (rounded up to a multiple of 128); by default as many
        as keep the positions array under ~64 MB. Does not change the results.

    Returns
    -------
    GSEAResult

    Raises
    ------
    InputError
        For duplicated genes, missing/infinite scores, bad options, or when no set has between
        ``min_size`` and ``max_size`` ranked genes.

    Examples
    --------
    >>> cells = read_gene_table("celltypes_seidlitz2020_PSP.csv")  # doctest: +SKIP
    >>> res = gsea_prerank(weights, cells, max_size=2000, random_state=0)  # doctest: +SKIP
    >>> res.table[["nes", "p", "fdr_q"]]  # doctest: +SKIP
    """
    if not isinstance(gene_sets, GeneSets):
        raise InputError(f"gene_sets must be a GeneSets (from read_gmt or read_gene_table); got "
                         f"{type(gene_sets).__name__}.")
    ranked = _sorted_ranking(check_ranking(ranking))
    n_perm = _positive_int(n_perm, "n_perm")
    min_size, max_size = check_size_limits(min_size, max_size)
    rng = _rng(random_state)
    w = _weights(ranked.to_numpy(), weight)
    n = len(ranked)
    # a set holding every ranked gene has no non-members to step down on
    sets, report = gene_sets.restrict(ranked.index, min_size=min_size,
                                      max_size=min(max_size, n - 1))
    names = sets.names()
    index = pd.Index(ranked.index)
    true_pos = [np.sort(index.get_indexer(sets[s])).astype(np.int64) for s in names]

    union = np.unique(np.concatenate(true_pos))  # positions of all set genes in the ranking
    m = union.size
    # CSR: union gene -> the sets it belongs to
    gene_of = np.concatenate([np.searchsorted(union, p) for p in true_pos])
    set_of = np.repeat(np.arange(len(names)), [p.size for p in true_pos])
    order = np.argsort(gene_of, kind="stable")
    gene_sets_csr = set_of[order].astype(np.int64)
    gene_ptr = np.concatenate([[0], np.cumsum(np.bincount(gene_of, minlength=m))]).astype(np.int64)
    sizes = np.array([p.size for p in true_pos], dtype=np.int64)

    es = np.empty(len(names))
    lead = []
    for s, pos in enumerate(true_pos):
        es[s], j = _es_sorted(pos, w, n)
        lead.append(pos[: j + 1] if es[s] >= 0 else pos[j:])

    if batch_size is None:
        batch_size = max(_BLOCK, (64 * 2**20) // (16 * max(m, 1)))
    batch = _BLOCK * -(-_positive_int(batch_size, "batch_size") // _BLOCK)
    null = np.empty((n_perm, len(names)))
    logger.info("GSEA prerank: %d sets, %d genes, %d permutations", len(names), n, n_perm)
    for start in range(0, n_perm, batch):
        stop = min(start + batch, n_perm)
        uniforms = np.vstack([rng.random((min(_BLOCK, stop - b), m))
                              for b in range(start, stop, _BLOCK)])
        positions = np.empty(uniforms.shape, dtype=np.int64)
        _fisher_yates_positions(uniforms, n, positions)
        _null_es(positions, gene_ptr, gene_sets_csr, sizes, w, n, null[start:stop])
        logger.debug("GSEA prerank: %d/%d permutations", stop, n_perm)

    nes, null_nes, p = _normalise(es, null)
    q = _gsea_fdr(nes, null_nes)
    table = pd.DataFrame({
        "description": [sets.descriptions.get(s, "") for s in names],
        "size": [pos.size for pos in true_pos],
        "es": es, "nes": nes, "p": p, "fdr_q": q,
        "leading_edge_size": [le.size for le in lead],
        "leading_edge": [";".join(ranked.index[le]) for le in lead],
    }, index=pd.Index(names, name="set"))
    table = table.sort_values(["fdr_q", "p"], kind="stable")
    return GSEAResult(table=table, n_perm=n_perm, weight=float(weight), random_state=random_state,
                      restriction=report, null_es=null, null_sets=names)
