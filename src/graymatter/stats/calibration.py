"""Calibration of family-wise error control under a global null, by simulation.

Smooth Gaussian noise images with nuisance covariates and no effect are analysed exactly as a
study would be (GLM, Freedman–Lane permutations, max-T, cluster mass, TFCE); the fraction of
datasets with any family-wise significant result estimates the family-wise error rate, which must
sit at the nominal alpha for a valid procedure.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats
from scipy.ndimage import gaussian_filter

from ..io.images import MaskedGrid
from .clusters import ClusterStatistic, label_clusters
from .glm import MassUnivariateGLM
from .permutation import permutation_test
from .tfce import TFCEStatistic, tfce


@dataclass(frozen=True)
class NullSettings:
    """The simulated null studies (defaults follow the inference issue's calibration spec)."""

    shape: tuple[int, int, int] = (20, 24, 20)
    fwhm_vox: float = 3.0
    n_subjects: int = 30
    n_perm: int = 199         # (1 + count) / 200 <= 0.05 exactly when count <= 9: an exact 5 % test
    height_p: float = 0.01
    alpha: float = 0.05


def smooth_null_images(rng: np.random.Generator, settings: NullSettings) -> np.ndarray:
    """``(n_subjects, n_voxels)`` smooth Gaussian noise, unit variance per voxel, no signal."""
    sigma = settings.fwhm_vox / np.sqrt(8.0 * np.log(2.0))
    noise = rng.standard_normal((settings.n_subjects, *settings.shape))
    smooth = np.stack([gaussian_filter(img, sigma, mode="wrap") for img in noise])
    smooth /= smooth.std(axis=0, keepdims=True)
    return smooth.reshape(settings.n_subjects, -1)


def null_familywise_error(n_datasets: int = 500, *, settings: NullSettings | None = None,
                          random_state: int = 0) -> pd.DataFrame:
    """Family-wise error rates of max-T, cluster extent, cluster mass and TFCE under the null.

    Each dataset: ``n_subjects`` smooth noise images, a new design of intercept + age + sex
    (the tested effect is age, with intercept and sex as nuisance, so Freedman–Lane is
    exercised), ``n_perm`` permutations, one-sided test.

    Parameters
    ----------
    n_datasets : int, default=500
        Number of simulated null studies.
    settings : NullSettings, optional
        Image size, smoothness, sample size, permutations, cluster-forming height, alpha.
    random_state : int, default=0
        Seed of the whole simulation.

    Returns
    -------
    pandas.DataFrame
        One row per statistic: rejections, rate, and the exact 95 % binomial interval of the
        nominal alpha (``lower``, ``upper``), and ``within`` (the rate lies inside it).
    """
    settings = settings or NullSettings()
    rng = np.random.default_rng(random_state)
    grid = MaskedGrid(np.ones(settings.shape, dtype=bool), np.eye(4))
    n = settings.n_subjects
    contrast = np.array([0.0, 1.0, 0.0])
    df = n - contrast.size
    height = float(stats.t.isf(settings.height_p, df))
    cluster_stat = ClusterStatistic(grid, height=height, connectivity=18)
    tfce_stat = TFCEStatistic(grid)
    rejections = dict.fromkeys(("voxel max-T", "cluster extent", "cluster mass", "TFCE"), 0)
    for _ in range(n_datasets):
        # A new design per study, so the rate averages over designs as a literature would.
        X = np.column_stack([np.ones(n), rng.normal(size=n), rng.integers(0, 2, n)])
        X[:, 1:] -= X[:, 1:].mean(axis=0)
        Y = smooth_null_images(rng, settings)
        t = MassUnivariateGLM().fit(Y, X).t_contrast(contrast).t
        perm = permutation_test(Y, X, contrast, n_perm=settings.n_perm,
                                statistics=[cluster_stat, tfce_stat],
                                random_state=int(rng.integers(2**31)), progress=False)
        clusters = label_clusters(t, grid, height=height, connectivity=18)
        observed = {
            "voxel max-T": (t.max(), "max_stat"),
            "cluster extent": (clusters.sizes.max(initial=0), "cluster_extent"),
            "cluster mass": (clusters.masses.max(initial=0.0), "cluster_mass"),
            "TFCE": (tfce(t, grid).max(), "tfce"),
        }
        for name, (value, null_name) in observed.items():
            if value > 0 and perm.fwe_p(np.array([float(value)]), null_name)[0] <= settings.alpha:
                rejections[name] += 1
    lower, upper = (stats.binom.ppf([0.025, 0.975], n_datasets, settings.alpha) / n_datasets)
    rows = [{"statistic": k, "datasets": n_datasets, "rejections": v, "rate": v / n_datasets,
             "lower": lower, "upper": upper, "within": bool(lower <= v / n_datasets <= upper)}
            for k, v in rejections.items()]
    return pd.DataFrame(rows).set_index("statistic")
