"""Out-of-core GLM and voxel-wise max-T permutation nulls, streamed in voxel blocks from a zarr store.

Memory is bounded by one block (``n_subjects x block_voxels``), not by the whole matrix.

* GLM: voxels are fitted independently, so each block's statistics equal the in-memory ones
  (:func:`streamed_contrasts` for every statistic of several contrasts, :func:`streamed_glm`
  for one t map).
* Voxel-wise max-T: :func:`graymatter.stats.permutation.permutation_test` draws every relabelling
  up front from ``random_state``, ``n_subjects`` and the design alone (never from the data or
  the number of voxels), so every block called with the same seed sees the *same* relabellings.
  The maximum over the whole map of permutation ``j`` is then the maximum over blocks of each
  block's maximum: ``null_max = max_b null_max_b``.
* Cluster extent/mass and TFCE need the whole permuted image (a cluster crosses block borders),
  so they cannot be reduced over voxel blocks. For them the right blocking is over permutations:
  each task holds all voxels and runs a slice of the relabellings, which is what
  :func:`~graymatter.stats.permutation.permutation_test` does with a dask ``executor``. This
  module implements the voxel-blocked, voxel-wise max-T.
"""

from __future__ import annotations

import dataclasses
import logging
import warnings

import numpy as np

from graymatter.errors import ContrastError, InputError
from graymatter.parallel import as_executor

__all__ = ["StreamedFit", "streamed_contrasts", "streamed_glm", "streamed_max_t",
           "default_block_voxels", "streamed_memory"]

logger = logging.getLogger("graymatter")

# Default block: the float64 working copies of one block (data + reduced residuals + GEMM
# temporaries, ~3 copies) stay around 256 MB.
_BLOCK_BYTES = 256_000_000
# Fixed batch of relabellings per GEMM, whatever the block width: the default of
# permutation_test depends on the number of features, and a different batch shape may round
# the last bits differently, so blocks would no longer match the whole-matrix run.
_BATCH = 64


def _open(store):
    from graymatter.io.zarr_store import open_matrix_zarr

    return open_matrix_zarr(store)[0]


def _design(X) -> np.ndarray:
    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 2:
        raise InputError(f"X must be a (n_subjects, n_regressors) matrix, got shape {X.shape}.")
    return X


def _t_vector(contrast, p: int) -> np.ndarray:
    kind = getattr(contrast, "kind", None)
    if kind is not None:
        if kind != "t":
            raise ContrastError(f"streamed_glm computes t statistics; contrast "
                                f"{getattr(contrast, 'name', contrast)!r} is an F contrast. Pass "
                                "a t contrast (one row of weights).")
        contrast = np.asarray(contrast.matrix, dtype=np.float64).reshape(-1)
    c = np.asarray(contrast, dtype=np.float64)
    if c.ndim != 1 or c.shape[0] != p:
        raise ContrastError(f"contrast must be a t vector of {p} weights (one per column of X); "
                            f"got shape {c.shape}.")
    return c


def default_block_voxels(n_subjects: int, chunk_voxels: int) -> int:
    """Voxels per block by default: a multiple of the store's chunk width whose float64 working
    copies (~3 of ``n_subjects x block``) stay near 256 MB, and at least one chunk.

    Examples
    --------
    >>> default_block_voxels(125, 16384), default_block_voxels(10_000, 4096)
    (81920, 4096)
    """
    width = int(chunk_voxels)
    return max(width, (_BLOCK_BYTES // (3 * 8 * int(n_subjects))) // width * width)


def streamed_memory(n_subjects: int, block_voxels: int, n_perm: int = 0) -> int:
    """Peak bytes of one streamed task (an estimate, used by ``graymatter run --dry-run``).

    Three float64 copies of the block (read, prepared, GEMM temporaries) plus, for max-T, the
    relabellings (``n_perm x n_subjects`` integers).
    """
    return int(3 * 8 * n_subjects * block_voxels + 8 * n_perm * n_subjects)


def _blocks(Y, n: int, block_voxels: int | None) -> list[tuple[int, int]]:
    m = Y.shape[1]
    if Y.shape[0] != n:
        raise InputError(f"X has {n} rows but the store holds {Y.shape[0]} subjects; X must have "
                         "one row per stored subject, in the store's order.")
    if block_voxels is None:
        block_voxels = default_block_voxels(n, Y.chunks[1])
    elif isinstance(block_voxels, bool) or not isinstance(block_voxels, (int, np.integer)) \
            or block_voxels < 1:
        raise InputError(f"block_voxels must be a positive integer or None, got {block_voxels!r}.")
    return [(lo, min(lo + int(block_voxels), m)) for lo in range(0, m, int(block_voxels))]


@dataclasses.dataclass(frozen=True)
class StreamedFit:
    """What a streamed GLM knows of its fit: the summary attributes of a fitted
    :class:`~graymatter.stats.glm.MassUnivariateGLM` that reports and provenance read."""

    n_features_: int
    df_resid_: int
    n_nan_features_: int
    n_constant_features_: int
    n_zero_variance_features_: int


def _contrasts_block(item):
    from graymatter.stats.glm import MassUnivariateGLM

    store, lo, hi, X, contrasts = item
    Yb = np.asarray(_open(store)[:, lo:hi], dtype=np.float64)
    with warnings.catch_warnings():  # per-block exclusion counts are summed by the caller
        warnings.filterwarnings("ignore", message=".*excluded from the model")
        glm = MassUnivariateGLM().fit(Yb, X)
    counts = (glm.df_resid_, glm.n_nan_features_, glm.n_constant_features_,
              glm.n_zero_variance_features_)
    return [_contrast(glm, c) for c in contrasts], counts


def _contrast(glm, c):
    """A Contrast object, a t vector (1-D weights) or an F matrix (2-D weights)."""
    if hasattr(c, "kind"):
        return glm.contrast(c)
    c = np.asarray(c, dtype=np.float64)
    return glm.t_contrast(c) if c.ndim == 1 else glm.f_contrast(c)


def _concatenate(parts: list):
    """One contrast result from its voxel blocks: per-voxel arrays joined, the rest from block 0."""
    names = parts[0].maps()  # the per-voxel statistics
    return dataclasses.replace(parts[0], **{name: np.concatenate([getattr(part, name)
                                                                   for part in parts])
                                            for name in names})


def streamed_contrasts(store, X, contrasts, *, block_voxels: int | None = None, executor=None,
                       progress: bool = False) -> tuple[list, StreamedFit]:
    """Every statistic of several t/F contrasts per voxel, fitting the GLM block by block.

    Parameters
    ----------
    store : str or os.PathLike
        A store from :func:`graymatter.io.zarr_store.write_matrix_zarr` with ``n_subjects`` rows.
    X : (n_subjects, n_regressors) array-like
        Design, rows in the store's subject order.
    contrasts : sequence of Contrast, t weight vectors or F weight matrices
    block_voxels : int, optional
        Voxels per block (default as in :func:`streamed_glm`).
    executor : Executor, optional
        Blocks are independent tasks.
    progress : bool, default=False
        Progress bar over blocks.

    Returns
    -------
    results : list of TContrastResult or FContrastResult
        One per contrast, equal to the in-memory results (voxels are fitted independently).
    fit : StreamedFit
        Number of voxels, residual df and the counts of excluded voxels.

    Examples
    --------
    >>> results, fit = streamed_contrasts("gm.zarr", X, [[0, 1, -1]])  # doctest: +SKIP
    """
    X = _design(X)
    contrasts = list(contrasts)
    Y = _open(store)
    bounds = _blocks(Y, X.shape[0], block_voxels)
    out = as_executor(executor).map(_contrasts_block,
                                    [(str(store), lo, hi, X, contrasts) for lo, hi in bounds],
                                    progress=progress, desc="GLM", unit="block")
    results = [_concatenate([block[0][i] for block in out]) for i in range(len(contrasts))]
    counts = np.sum([block[1][1:] for block in out], axis=0)
    fit = StreamedFit(int(Y.shape[1]), int(out[0][1][0]), *(int(c) for c in counts))
    return results, fit


def _max_t_block(item):
    from graymatter.stats.glm import MassUnivariateGLM
    from graymatter.stats.permutation import permutation_test

    store, lo, hi, X, contrast, n_perm, seed, two_sided, dtype = item
    Yb = np.asarray(_open(store)[:, lo:hi], dtype=np.float64)
    with warnings.catch_warnings():  # per-block exclusion counts are noise
        warnings.filterwarnings("ignore", message=".*excluded from the model")
        if not MassUnivariateGLM().fit(Yb, X).valid_.any():
            return None  # nothing testable here (e.g. all-constant voxels): no say in the maximum
        res = permutation_test(Yb, X, contrast, n_perm=n_perm, random_state=seed,
                               two_sided=two_sided, statistics=(), batch_size=_BATCH, dtype=dtype,
                               progress=False)
    return res.null_max["max_stat"]


def streamed_glm(store, X, contrast, *, block_voxels: int | None = None,
                 executor=None, progress: bool = False) -> tuple[np.ndarray, int]:
    """GLM t statistic per voxel, reading the store in voxel blocks.

    Parameters
    ----------
    store : str or os.PathLike
        A store from :func:`graymatter.io.zarr_store.write_matrix_zarr` with ``n_subjects`` rows.
    X : (n_subjects, n_regressors) array-like
        Design, rows in the store's subject order.
    contrast : (n_regressors,) array-like or t Contrast
    block_voxels : int, optional
        Voxels per block. Default: a multiple of the store's chunk width with float64 working
        copies of ~256 MB.
    executor : Executor, optional
        From :func:`graymatter.parallel.get_executor`; default serial. Workers read their
        blocks from ``store`` themselves, so it must be on a file system they share.
    progress : bool, default=False
        Progress bar over voxel blocks, advancing as any worker finishes one.

    Returns
    -------
    t : (n_voxels,) ndarray
        Identical (to rounding, ~1e-12) to ``MassUnivariateGLM().fit(Y, X).t_contrast(c).t``;
        NaN at voxels the GLM excludes.
    df : int
        Residual degrees of freedom.

    Raises
    ------
    InputError
        Missing store, ``X`` with the wrong number of rows, bad ``block_voxels``.
    ContrastError
        An F contrast, or weights of the wrong length.

    Examples
    --------
    >>> t, df = streamed_glm("gm.zarr", X, [0, 1, 0])  # doctest: +SKIP
    """
    X = _design(X)
    c = _t_vector(contrast, X.shape[1])
    (result,), fit = streamed_contrasts(store, X, [c], block_voxels=block_voxels,
                                        executor=executor, progress=progress)
    return result.t, fit.df_resid_


def streamed_max_t(store, X, contrast, *, n_perm: int, random_state: int, two_sided: bool = False,
                   executor=None, block_voxels: int | None = None,
                   dtype: str = "float64", progress: bool = False) -> np.ndarray:
    """Permutation null of the maximum voxel-wise t (or F), streamed in voxel blocks.

    Each block runs :func:`~graymatter.stats.permutation.permutation_test` with the same
    ``random_state``, hence the same relabellings (they depend on the seed, the number of
    subjects and the design only); the per-permutation maxima are reduced over blocks by max.
    The result equals ``permutation_test(Y, X, contrast, ...).null_max["max_stat"]`` on the
    whole matrix (to ~1e-12). Cluster and TFCE nulls need whole images: block over
    permutations for those (not implemented here).

    Parameters
    ----------
    store : str or os.PathLike
        A store from :func:`graymatter.io.zarr_store.write_matrix_zarr`.
    X : (n_subjects, n_regressors) array-like
    contrast : (n_regressors,) or (q, n_regressors) array-like, or Contrast
    n_perm : int
    random_state : int
        Seed of the relabellings; the same seed gives the same null whatever the executor,
        the number of workers or ``block_voxels``.
    two_sided : bool, default=False
        Null of max |t|.
    executor : Executor, optional
        Default serial; blocks are independent tasks.
    block_voxels : int, optional
        Voxels per block (default as in :func:`streamed_glm`).
    dtype : {"float64", "float32"}, default="float64"
        Precision of the permutation GEMMs.
    progress : bool, default=False
        Progress bar over voxel blocks, advancing as any worker finishes one.

    Returns
    -------
    null_max : (n_perm,) ndarray
        Maximum statistic over all voxels of each relabelling. FWE p of an observed t:
        ``(1 + #{null_max >= t}) / (1 + n_perm)``.

    Raises
    ------
    InputError
        Missing store, ``X`` rows, ``random_state`` not an int, no testable voxel.

    Examples
    --------
    >>> null = streamed_max_t("gm.zarr", X, [0, 1, 0], n_perm=1000, random_state=0)  # doctest: +SKIP
    """
    if isinstance(random_state, bool) or not isinstance(random_state, (int, np.integer)):
        raise InputError(f"random_state must be an int seed (every block must draw the same "
                         f"relabellings), got {random_state!r}.")
    X = _design(X)
    bounds = _blocks(_open(store), X.shape[0], block_voxels)
    logger.info("streamed max-T: %d permutations x %d blocks", n_perm, len(bounds))
    items = [(str(store), lo, hi, X, contrast, n_perm, int(random_state), two_sided, dtype)
             for lo, hi in bounds]
    parts = [p for p in as_executor(executor).map(_max_t_block, items, progress=progress,
                                                         desc="max-T", unit="block")
             if p is not None]
    if not parts:
        raise InputError(f"streamed_max_t: no voxel of the store '{store}' can be tested (all NaN, "
                         "constant or fitted exactly by the design); check the data.")
    return np.maximum.reduce(parts)
