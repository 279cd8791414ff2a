"""Permutation inference for the mass-univariate GLM: Freedman–Lane and sign-flipping, max-statistic FWE.

Freedman–Lane (Winkler et al. 2014, NeuroImage 92:381) with the partition of Smith et al. (2007):
for a contrast ``C`` the nuisance is ``Z = X (I - C⁺C)``, the residuals of the reduced model
``E = R_Z Y`` are permuted (or sign-flipped), the nuisance fit is added back and the full model is
refitted. Permuted data are never formed. With ``U = [U_z, U_c]`` an orthonormal basis of
``col(X)`` whose last columns ``U_c`` span the tested effect (``col(X) ⊖ col(Z)``):

* ``C X⁺ (P E + H_Z Y) = C X⁺ P E`` (the nuisance fit is invisible to the contrast), which is
  ``K U_c' P E`` for a small matrix ``K``, so ``t = U_c' P E / σ`` and
  ``F = ||U_c' P E||² / (q σ²)``;
* ``RSS = ||P E||² - ||U' P E||² = ||E||² - ||U' P E||²`` (permutations and sign flips keep norms).

Each batch of ``B`` relabellings is one ``(B r, n) @ (n, m)`` GEMM per feature chunk (``r`` =
rank of ``X``, minus the nuisance directions that within-block permutations leave unchanged, such
as the intercept) followed by a sum of squares: the cost is linear in ``n``, ``m`` and the number
of relabellings. For small samples ``E = W Ẽ``, with ``W`` an orthonormal basis of
``col(Z)^⊥``, shortens every GEMM to height ``n - r_Z`` (see :func:`_basis_pays`).
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np

from graymatter.errors import ContrastError, GraymatterWarning, InputError, format_choices
from graymatter.parallel import as_executor
from graymatter.stats.glm import MassUnivariateGLM
from graymatter.stats.multiple import TIE_RTOL, fwe_p_from_null
from graymatter.stats.relabel import block_codes, draw_relabellings, n_relabellings

__all__ = ["PermutationStatistic", "PermutationResult", "permutation_test", "default_batch_size",
           "permutation_memory", "auto_method"]

logger = logging.getLogger("graymatter")

_METHODS = ("auto", "freedman-lane", "sign-flip")
# GEMM output per feature chunk (B r x chunk): ~2 MB stays in L2/L3 for the squaring and the sum.
_CHUNK_BYTES = 2_000_000
# Default batch: (batch, n_features) float64 maps for the spatial statistics stay under ~64 MB.
_MAPS_BYTES = 64_000_000


@runtime_checkable
class PermutationStatistic(Protocol):
    """A spatial (or any map-wide) statistic whose maximum is collected in every permutation.

    Attributes
    ----------
    names : tuple of str
        Names of the statistics it computes, e.g. ``("cluster_extent", "cluster_mass")``.

    Notes
    -----
    :meth:`maxima` is called from worker threads (``n_jobs > 1``), so it must not mutate shared
    state. It sees the upper tail only: with ``two_sided=True`` the engine calls it on ``t`` and on
    ``-t`` and keeps the larger maximum, so the caller computes the observed statistic on both
    ``t`` and ``-t`` and compares each with the same null. A statistic with an attribute
    ``two_sided = True`` handles both tails itself and is called once, on ``t``.
    """

    names: tuple[str, ...]

    def maxima(self, maps: np.ndarray) -> dict[str, np.ndarray]:
        """``maps`` (B, m) float64 permuted statistic maps (features in the data's order; features
        excluded from the model are 0) -> ``{name: (B,) maximum over the map, 0 when nothing}``."""
        ...


@dataclass(frozen=True, eq=False)
class PermutationResult:
    """Outcome of :func:`permutation_test`.

    Attributes
    ----------
    statistic : (m,) ndarray
        Observed t (or F), identical to :class:`MassUnivariateGLM`'s; NaN at excluded features.
    kind : {"t", "F"}
    null_max : dict of str to (n_perm,) ndarray
        Per-permutation maxima over the map: ``"max_stat"`` (max t, max |t| when two-sided, or max
        F) and every name of the :class:`PermutationStatistic` objects.
    p_fwe : (m,) ndarray
        Family-wise error corrected p from ``null_max["max_stat"]``; NaN at excluded features.
    p_unc : (m,) ndarray
        Uncorrected permutation p per feature, ``(1 + #{stat_perm >= stat_obs}) / (1 + n_perm)``.
    n_perm : int
        Number of relabellings run (smaller than requested when all were enumerated).
    method : {"freedman-lane", "sign-flip"}
    two_sided : bool
    random_state : int or None
    """

    statistic: np.ndarray
    kind: str
    null_max: dict[str, np.ndarray]
    p_fwe: np.ndarray
    p_unc: np.ndarray
    n_perm: int
    method: str
    two_sided: bool
    random_state: int | None

    def fwe_p(self, observed: np.ndarray, name: str = "max_stat") -> np.ndarray:
        """FWE-corrected p of observed statistics against ``null_max[name]``.

        Parameters
        ----------
        observed : array-like of any shape
            Observed values on the scale of the null (|t| for a two-sided max-stat, cluster mass...).
        name : str, default="max_stat"

        Returns
        -------
        p : ndarray of the shape of ``observed``, ``(1 + #{null >= obs}) / (1 + n_perm)``

        Examples
        --------
        >>> res = permutation_test(Y, X, c, statistics=[clusters], random_state=0)  # doctest: +SKIP
        >>> res.fwe_p(observed_masses, name="cluster_mass")  # doctest: +SKIP
        """
        if name not in self.null_max:
            raise InputError(f"fwe_p: no null distribution named {name!r}; available: "
                             f"{format_choices(self.null_max)}.")
        return fwe_p_from_null(observed, self.null_max[name])


# ----------------------------------------------------------------------------- validation
def _as_contrast(contrast, p: int) -> tuple[str, np.ndarray]:
    kind, matrix = getattr(contrast, "kind", None), getattr(contrast, "matrix", None)
    if kind is not None or matrix is not None:
        if kind not in ("t", "F") or matrix is None:
            raise ContrastError(f"contrast must have .kind 't' or 'F' and a .matrix, got {contrast!r}.")
        C = np.array(matrix, dtype=np.float64, ndmin=2)
        return kind, (C[:1] if kind == "t" and C.shape[0] == 1 else C)
    try:
        C = np.array(contrast, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ContrastError(f"contrast must be numeric weights, got {contrast!r}: {exc}") from exc
    if C.ndim == 1:
        return "t", C[None, :]
    if C.ndim == 2:
        return "F", C
    raise ContrastError(f"contrast must be a ({p},) t vector or a (q, {p}) F matrix, got shape {C.shape}.")


def _orth(A: np.ndarray, rank: int | None = None, rtol: float = 1e-10) -> np.ndarray:
    """Orthonormal basis (n, k) of col(A); ``rank`` forces k, else singular values > rtol * s_max."""
    if A.shape[1] == 0:
        return np.zeros((A.shape[0], 0))
    u, s, _ = np.linalg.svd(A, full_matrices=False)
    if rank is None:
        rank = int(np.sum(s > rtol * max(s[0], np.finfo(float).tiny)))
    return u[:, :rank]


# ----------------------------------------------------------------------------- the engine
def _basis_pays(n: int, rz: int, r: int, m: int, n_perm: int) -> bool:
    """Whether to project the data once onto ``W`` (n, n - r_Z), a basis of ``col(Z)^⊥``.

    It costs ``n (n - r_Z)`` multiply-adds per feature once, plus ``r n (n - r_Z)`` per
    relabelling to rotate its rows (and ``n²`` memory); it saves ``r r_Z`` per feature and
    relabelling. It pays for small samples with many nuisance columns and many features (Study A:
    n = 125, 14 nuisance columns, 235,000 voxels); for large ``n`` it would make the run grow as
    ``n²``, so the data then stay at full height.
    """
    return rz > 0 and n * (n - rz) * (m + r * n_perm) <= r * rz * m * n_perm


class _Engine:
    """Precomputed bases and reduced data; :meth:`run_batch` evaluates a batch of relabellings."""

    def __init__(self, Y, X, C, kind, q, valid, method, codes, dtype, two_sided, observed, statistics,
                 transforms, chunk_rows):
        n = X.shape[0]
        self.kind, self.method, self.two_sided, self.statistics = kind, method, two_sided, statistics
        self.transforms, self.wd = transforms, np.dtype(dtype)
        Ux = _orth(X)
        r = Ux.shape[1]
        self.df = n - r
        # Tested-effect basis: the span of the rows of C X⁺ (t: oriented like c so that t keeps its sign).
        CXp = C @ np.linalg.pinv(X)
        if kind == "t":
            Uc = (CXp[0] / np.linalg.norm(CXp[0]))[:, None]
        else:
            Uc = _orth(CXp.T, rank=q)  # q = rank(C (X'X)⁺ C'), the GLM's numerator df
        qc = Uc.shape[1]
        # Nuisance = the rest of col(X); equal to col(X (I - C⁺C)) for an estimable C.
        Uz = Uz_full = _orth(Ux - Uc @ (Uc.T @ Ux), rank=r - qc)
        rz = Uz.shape[1]
        if method == "freedman-lane" and Uz.shape[1]:
            # Nuisance directions constant within blocks are fixed by every permutation, so U'PE has
            # zero rows there (E ⊥ col(Z)): drop them (the intercept: 1/r of the GEMM).
            Bi = np.eye(int(codes.max()) + 1)[codes] if codes is not None else np.ones((n, 1))
            Qb = Bi / np.sqrt(Bi.sum(axis=0))
            left, s, _ = np.linalg.svd(Uz.T @ Qb, full_matrices=True)
            n_inv = int(np.sum(s > 1 - 1e-9))
            Uz = Uz @ left[:, n_inv:]
        self.U = np.hstack([Uz, Uc])  # (n, r') with the tested effect last
        self.r, self.qc = self.U.shape[1], qc
        self.W = None
        if _basis_pays(n, rz, self.r, int(valid.sum()), len(transforms)):
            self.W = np.linalg.svd(Uz_full, full_matrices=True)[0][:, rz:]  # (n, n - r_Z) ⊥ col(Z)
        self.valid_idx = np.flatnonzero(valid)
        self.m = valid.shape[0]
        self._reduce(Y, Uz_full)
        obs = observed[self.valid_idx]
        eff = np.abs(obs) if two_sided else obs
        self.thr = eff - TIE_RTOL * np.abs(eff)
        self.chunk_rows = chunk_rows

    def _reduce(self, Y, Uz_full) -> None:
        """Ẽ = W'Y (or R_Z Y) over valid features, in the working dtype; ss = ||Ẽ||² per feature."""
        k = self.W.shape[1] if self.W is not None else Y.shape[0]
        mv = self.valid_idx.size
        self.Et = np.empty((k, mv), dtype=self.wd)
        self.ss = np.empty(mv, dtype=np.float64)
        Qz = None if self.W is not None else Uz_full
        step = max(1024, 4_000_000 // (8 * Y.shape[0]))
        all_valid = mv == Y.shape[1]
        for s in range(0, mv, step):
            idx = slice(s, s + step) if all_valid else self.valid_idx[s:s + step]  # slices: no copy
            Yc = np.asarray(Y[:, idx], dtype=np.float64)
            if self.W is not None:
                Ec = self.W.T @ Yc
            elif Qz is not None and Qz.shape[1]:
                Ec = Yc - Qz @ (Qz.T @ Yc)
            else:
                Ec = Yc
            self.ss[s:s + step] = np.einsum("ij,ij->j", Ec, Ec)
            self.Et[:, s:s + step] = Ec
        self.ss_w = self.ss.astype(self.wd)

    def rows(self, lo: int, hi: int) -> np.ndarray:
        """``U' T_b W`` for the relabellings ``T_b`` of the batch, stacked: (B r, k) working dtype."""
        T = self.transforms[lo:hi]
        if self.method == "sign-flip":
            Ut = self.U.T[None, :, :] * T[:, None, :].astype(np.float64)  # U' S_b, (B, r, n)
        else:
            Ut = np.swapaxes(self.U[np.argsort(T, axis=1)], 1, 2)  # U' P_b: column j is U[perm⁻¹(j)]
        A = Ut if self.W is None else Ut @ self.W
        return np.ascontiguousarray(A.reshape(-1, A.shape[-1]), dtype=self.wd)

    def run_batch(self, lo: int, hi: int):
        B, r, mv = hi - lo, self.r, self.valid_idx.size
        A = self.rows(lo, hi)
        chunk = max(64, self.chunk_rows // (B * r))
        max_stat = np.full(B, -np.inf)
        counts = np.zeros(mv, dtype=np.int64)
        maps = np.zeros((B, self.m)) if self.statistics else None
        scale = self.wd.type(self.df)
        tiny = self.wd.type(np.finfo(self.wd).tiny)
        for s in range(0, mv, chunk):
            e = min(s + chunk, mv)
            G = A @ self.Et[:, s:e]  # (B r, c)
            G3 = G.reshape(B, r, e - s)
            num = G3[:, -1, :].copy() if self.kind == "t" else None
            np.square(G, out=G)
            rss = self.ss_w[s:e] - G3.sum(axis=1)  # (B, c)
            np.maximum(rss, tiny, out=rss)  # an exact permuted fit: a huge statistic, not a NaN
            rss /= scale
            if self.kind == "t":
                stat = num / np.sqrt(rss)
            else:
                stat = G3[:, r - self.qc:, :].sum(axis=1) / self.wd.type(self.qc) / rss
            eff = np.abs(stat) if self.two_sided else stat
            np.maximum(max_stat, eff.max(axis=1), out=max_stat)
            counts[s:e] += np.count_nonzero(eff >= self.thr[s:e], axis=0)
            if maps is not None:
                maps[:, self.valid_idx[s:e]] = stat
        maxima = {"max_stat": max_stat}
        for statistic in self.statistics:
            found = _call_statistic(statistic, maps, B)
            if self.two_sided and not getattr(statistic, "two_sided", False):
                np.negative(maps, out=maps)
                for name, v in _call_statistic(statistic, maps, B).items():
                    found[name] = np.maximum(found[name], v)
                np.negative(maps, out=maps)
            maxima.update(found)
        return lo, hi, maxima, counts


def _call_statistic(statistic, maps: np.ndarray, B: int) -> dict[str, np.ndarray]:
    out = statistic.maxima(maps)
    found = {}
    for name in statistic.names:
        v = np.asarray(out.get(name) if isinstance(out, dict) else None, dtype=np.float64)
        if v.shape != (B,) or np.isnan(v).any():
            raise InputError(f"statistic {type(statistic).__name__}.maxima returned {v.shape} for "
                             f"{name!r}; expected ({B},) finite maxima, one per permutation (0 when "
                             "nothing).")
        found[name] = v
    return found


def _constant_is_tested(X: np.ndarray, C: np.ndarray) -> bool:
    """True when the constant lies in col(X) but not in col(Z): permutation cannot test it."""
    n = X.shape[0]
    one = np.ones(n) / np.sqrt(n)
    Ux = _orth(X)
    if np.linalg.norm(one - Ux @ (Ux.T @ one)) > 1e-8:
        return False
    Z = X @ (np.eye(X.shape[1]) - np.linalg.pinv(C) @ C)
    Uz = _orth(Z, rtol=1e-9)
    return bool(np.linalg.norm(one - Uz @ (Uz.T @ one)) > 1e-6)


# ----------------------------------------------------------------------------- public function
def auto_method(X, contrast) -> str:
    """The relabelling ``method="auto"`` picks for this design and contrast.

    ``"sign-flip"`` when the constant is part of the tested effect (one-sample tests, the mean of
    change scores with covariates), else ``"freedman-lane"``.

    Examples
    --------
    >>> X = np.column_stack([np.ones(6), np.arange(6.0)])
    >>> auto_method(X, [1.0, 0.0]), auto_method(X, [0.0, 1.0])
    ('sign-flip', 'freedman-lane')
    """
    X = np.asarray(X, dtype=np.float64)
    C = _as_contrast(contrast, X.shape[1])[1]
    return "sign-flip" if _constant_is_tested(X, C) else "freedman-lane"


def default_batch_size(n_features: int) -> int:
    """Relabellings per batch by default: ``(batch, n_features)`` float64 maps of ~64 MB, 16 to 256.

    Examples
    --------
    >>> default_batch_size(235_375), default_batch_size(68)
    (33, 256)
    """
    return int(np.clip(_MAPS_BYTES // (8 * max(int(n_features), 1)), 16, 256))


def permutation_memory(n_subjects: int, n_features: int, *, batch_size: int | None = None,
                       dtype: str = "float64", spatial: bool = False) -> int:
    """Peak bytes one process needs to run batches of :func:`permutation_test` (an estimate).

    The GLM fit of the observed statistic (float64) and the prepared data (working dtype), both
    ``n_subjects x n_features``, per-feature arrays, one batch's GEMM chunk and, with spatial
    statistics (clusters, TFCE), the batch's maps and a working copy. The caller's ``Y`` is not
    included. Used by ``graymatter run --dry-run``.

    Examples
    --------
    >>> round(permutation_memory(125, 235_375, spatial=True) / 1e6)  # MB
    607
    """
    n, m = int(n_subjects), int(n_features)
    batch = default_batch_size(m) if batch_size is None else int(batch_size)
    data = n * m * (8 + np.dtype(dtype).itemsize)
    per_feature = m * 8 * 4  # ss, threshold, counts, valid index
    maps = 2 * batch * m * 8 if spatial else 0  # the maps and one working copy (or -t)
    return int(data + per_feature + maps + 2 * _CHUNK_BYTES)


def permutation_test(Y, X, contrast, *, n_perm: int = 5000, method: str = "auto", blocks=None,
                     two_sided: bool = False, statistics: Sequence[PermutationStatistic] = (),
                     random_state: int | None = None, n_jobs: int = 1, batch_size: int | None = None,
                     dtype: str = "float64", progress: bool = True,
                     executor=None) -> PermutationResult:
    """Permutation (Freedman–Lane) or sign-flipping test of one contrast, with max-statistic FWE.

    Parameters
    ----------
    Y : (n_subjects, n_features) array-like
        Data (voxels or regions). Features the GLM excludes (NaN/inf, constant, exactly fitted) get
        NaN statistics and p-values and are left out of every maximum.
    X : (n_subjects, n_regressors) array-like
        Design; any coding (cell means included), rank-deficient allowed if the contrast is estimable.
    contrast : (n_regressors,) or (q, n_regressors) array-like, or Contrast
        A 1-D vector is a t contrast, a 2-D matrix an F contrast; or an object with ``.kind``
        ("t"/"F") and ``.matrix``.
    n_perm : int, default=5000
        Number of relabellings. If it is at least the number of distinct ones minus one (tiny
        samples), all of them are enumerated instead, which gives exact p-values (with a
        GraymatterWarning when fewer than requested).
    method : {"auto", "freedman-lane", "sign-flip"}, default="auto"
        ``"auto"`` sign-flips when the constant is part of the tested effect (one-sample tests,
        the mean of change scores with covariates), else Freedman–Lane permutation.
    blocks : (n_subjects,) array-like, optional
        Exchangeability block of each subject; permutations stay within blocks (each block needs
        at least 2 subjects). Sign flips are per subject and ignore blocks.
    two_sided : bool, default=False
        t contrasts: test ``|t|`` instead of ``t > 0``. Ignored (with a warning) for F.
    statistics : sequence of PermutationStatistic
        Map-wide statistics (cluster extent/mass, TFCE, ...) whose per-permutation maxima are
        added to ``null_max``; they receive (B, n_features) float64 t/F maps.
    random_state : int, optional
        Seed of ``np.random.default_rng``; all relabellings are drawn up front, so the
        relabellings do not depend on ``n_jobs`` or ``batch_size``.
    n_jobs : int, default=1
        Worker threads over batches (-1: all CPUs). BLAS runs single-threaded inside each batch
        (also when ``n_jobs=1``), so the numbers never depend on ``n_jobs``; use ``n_jobs=-1``
        to use every core.
    batch_size : int, optional
        Relabellings per GEMM batch. Default: ``(batch, n_features)`` float64 maps of ~64 MB,
        between 16 and 256. The default depends on the data only (not on ``n_jobs``), so the
        same seed gives identical numbers whatever the number of workers; a different batch
        size changes the shapes of the matrix products, which BLAS may round differently in
        the last bits (relative differences around 1e-15).
    dtype : {"float64", "float32"}, default="float64"
        Precision of the permutation GEMMs (the observed statistic is always float64). float32 is
        ~2x faster with ~1e-6 relative error on permuted statistics.
    progress : bool, default=True
        Show a tqdm progress bar over permutations (over batches with an executor).
    executor : Executor, optional
        From :func:`graymatter.parallel.get_executor`. ``"dask"``: the batches of relabellings
        are tasks on the cluster (blocks over permutations: every task sees whole maps, as
        cluster and TFCE statistics need); the prepared data are sent to each worker once.
        ``"joblib"``: ``n_jobs`` becomes the executor's ``n_jobs`` (threads share the data).
        The numbers are identical to a serial run with the same seed.

    Returns
    -------
    PermutationResult

    Raises
    ------
    InputError
        Bad ``n_perm``, ``method``, ``blocks``, ``batch_size``, ``n_jobs``, ``dtype``, shapes, or no
        feature left to test.
    ContrastError
        The contrast has the wrong length or is not estimable.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> X = np.column_stack([np.ones(20), np.repeat([0.0, 1.0], 10)])
    >>> Y = rng.standard_normal((20, 100))
    >>> res = permutation_test(Y, X, [0, 1], n_perm=999, random_state=0, progress=False)
    >>> res.method, res.p_fwe.shape
    ('freedman-lane', (100,))
    """
    if isinstance(n_perm, bool) or not isinstance(n_perm, (int, np.integer)) or n_perm < 1:
        raise InputError(f"n_perm must be a positive integer (e.g. 5000), got {n_perm!r}.")
    if method not in _METHODS:
        raise InputError(f"method must be one of {format_choices(_METHODS)}, got {method!r}.")
    if batch_size is not None and (isinstance(batch_size, bool) or int(batch_size) < 1):
        raise InputError(f"batch_size must be a positive integer or None, got {batch_size!r}.")
    if not isinstance(n_jobs, (int, np.integer)) or n_jobs == 0 or n_jobs < -1:
        raise InputError(f"n_jobs must be a positive integer or -1 (all CPUs), got {n_jobs!r}.")
    if np.dtype(dtype) not in (np.dtype(np.float32), np.dtype(np.float64)):
        raise InputError(f"dtype must be 'float64' or 'float32', got {dtype!r}.")
    executor = as_executor(executor)
    statistics = tuple(statistics)
    names = ["max_stat"] + [str(nm) for s in statistics for nm in getattr(s, "names", ())]
    if not all(callable(getattr(s, "maxima", None)) and getattr(s, "names", None)
               for s in statistics) or len(set(names)) != len(names):
        raise InputError(f"statistics must be PermutationStatistic objects (a tuple .names and "
                         f".maxima(maps)) with distinct names other than 'max_stat'; got names {names}.")

    model = MassUnivariateGLM().fit(Y, X)  # validates Y and X; observed statistic and valid mask
    Xf = model.design_
    n, p = Xf.shape
    kind, C = _as_contrast(contrast, p)
    res = model.t_contrast(C[0] if C.shape[0] == 1 and kind == "t" else C) if kind == "t" \
        else model.f_contrast(C)
    C = np.atleast_2d(res.contrast)
    observed = res.t if kind == "t" else res.f
    if kind == "F" and two_sided:
        warnings.warn("two_sided=True is ignored for an F contrast (F tests are one-sided).",
                      GraymatterWarning, stacklevel=2)
        two_sided = False
    valid = model.valid_
    if not valid.any():
        raise InputError(f"permutation_test: none of the {valid.size} features can be tested (all "
                         "are NaN, constant or fitted exactly by the design); check Y.")

    constant_tested = _constant_is_tested(Xf, C)
    if method == "auto":
        method = "sign-flip" if constant_tested else "freedman-lane"
    elif method == "freedman-lane" and constant_tested:
        warnings.warn("The tested effect includes the constant (e.g. a one-sample mean), which "
                      "permutations leave unchanged: every permuted statistic equals the observed "
                      "one. Use method='sign-flip' (or 'auto').", GraymatterWarning, stacklevel=2)
    codes = block_codes(blocks, n)
    if codes is not None and method == "freedman-lane":
        labels = np.unique(np.asarray(blocks).astype(str))
        single = labels[np.bincount(codes) < 2]
        if single.size:
            raise InputError(f"blocks: block(s) {format_choices(single)} contain a single subject, "
                             "who cannot be permuted with anyone; merge them into other blocks or "
                             "drop them.")

    n_distinct = n_relabellings(method, n, codes)
    exhaustive = n_perm >= n_distinct - 1
    if exhaustive:
        if n_perm > n_distinct - 1:
            warnings.warn(f"n_perm={n_perm} exceeds the {n_distinct - 1} distinct non-identity "
                          f"{'sign flips' if method == 'sign-flip' else 'permutations'} of {n} "
                          "subjects; running all of them (exact test).", GraymatterWarning, stacklevel=2)
        n_perm = n_distinct - 1
    rng = np.random.default_rng(random_state)
    transforms = draw_relabellings(method, n, n_perm, codes, rng, exhaustive)

    wd = np.dtype(dtype)
    m = valid.size
    if batch_size is None:
        batch_size = default_batch_size(m)
    batch_size = min(int(batch_size), n_perm)
    engine = _Engine(np.asarray(Y), Xf, C, kind, 1 if kind == "t" else res.df_num, valid, method, codes, wd, two_sided, observed, statistics,
                     transforms, _CHUNK_BYTES // wd.itemsize)
    logger.info("permutation test: %s, %d %s, %d features (%d tested), rank %d (%d rows per "
                "relabelling), batches of %d, n_jobs=%d, %s", kind, n_perm, method, m, int(valid.sum()),
                n - engine.df, engine.r, batch_size, n_jobs, wd.name)

    null_max = {name: np.empty(n_perm) for name in names}
    counts = np.zeros(int(valid.sum()), dtype=np.int64)
    bounds = [(lo, min(lo + batch_size, n_perm)) for lo in range(0, n_perm, batch_size)]
    if executor.kind == "dask":
        handle = executor.share(engine)
        batches = executor.map(_batch_task, [(handle, lo, hi) for lo, hi in bounds],
                               progress=progress, desc="permutations", unit="batch")
    else:
        batches = _run(engine, bounds, executor.n_jobs if executor.kind == "joblib" else n_jobs,
                       progress, n_perm)
    for lo, hi, maxima, c in batches:
        for name, v in maxima.items():
            null_max[name][lo:hi] = v
        counts += c

    p_unc = np.full(m, np.nan)
    p_unc[valid] = (1.0 + counts) / (1.0 + n_perm)
    p_fwe = fwe_p_from_null(np.abs(observed) if two_sided else observed, null_max["max_stat"])
    return PermutationResult(statistic=observed, kind=kind, null_max=null_max, p_fwe=p_fwe,
                             p_unc=p_unc, n_perm=int(n_perm), method=method, two_sided=bool(two_sided),
                             random_state=random_state)


def _batch_task(item):
    """One batch of relabellings on a worker (dask), with single-threaded BLAS as in :func:`_run`."""
    from threadpoolctl import threadpool_limits

    engine, lo, hi = item
    with threadpool_limits(limits=1, user_api="blas"):
        return engine.run_batch(lo, hi)


def _run(engine: _Engine, bounds, n_jobs: int, progress: bool, total: int):
    """Yield batch results in order, serially or from joblib threads, updating a progress bar."""
    from joblib import Parallel, delayed
    from threadpoolctl import threadpool_limits
    from tqdm.auto import tqdm

    # Every batch runs its GEMMs on one BLAS thread, serially or in parallel: multi-threaded
    # BLAS may split a product differently and round the last bits differently, and the same
    # seed must give the same numbers whatever n_jobs. Parallelism comes from the workers:
    # threads, not processes, because the GEMMs and the numba statistics release the GIL and
    # the reduced data are shared, not copied.
    with tqdm(total=total, disable=not progress, desc="permutations", unit="perm") as bar, \
            threadpool_limits(limits=1, user_api="blas"):
        if n_jobs == 1 or len(bounds) == 1:
            for lo, hi in bounds:
                out = engine.run_batch(lo, hi)
                bar.update(hi - lo)
                yield out
            return
        jobs = Parallel(n_jobs=n_jobs, prefer="threads", return_as="generator")(
            delayed(engine.run_batch)(lo, hi) for lo, hi in bounds)
        for out in jobs:
            bar.update(out[1] - out[0])
            yield out
