"""Quality control: GM overlay figure, registration similarity, sample homogeneity (CAT12), and
the pass / warn / fail decision of each subject (:func:`decide`).

The thresholds in :data:`THRESHOLDS` are documented in docs/preprocessing.md with the values
measured on the IXI T1s, their hard variants, the SPM single subject and failure cases that
they were set from.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from graymatter.io.atomic import atomic_path


def registration_similarity(warped_t1: np.ndarray, template_t1: np.ndarray,
                            template_mask: np.ndarray, *, bins: int = 32) -> dict:
    """Similarity of the normalised T1 with the template inside the template brain mask.

    Parameters
    ----------
    warped_t1, template_t1 : (X, Y, Z) numpy.ndarray
    template_mask : (X, Y, Z) numpy.ndarray of bool
    bins : int
        Histogram bins of the mutual information.

    Returns
    -------
    similarity : dict
        ``ncc`` (Pearson correlation, 1 = identical up to a linear map) and ``nmi``
        (normalised mutual information (H(a) + H(b)) / H(a, b), 1 = independent, 2 = identical).

    Examples
    --------
    >>> a = np.random.default_rng(0).random((6, 7, 8))
    >>> round(registration_similarity(a, 2 * a + 1, a > -1)["ncc"], 6)
    1.0
    """
    a = np.asarray(warped_t1, float)[template_mask]
    b = np.asarray(template_t1, float)[template_mask]
    if a.size < 2 or a.std() == 0 or b.std() == 0:
        return {"ncc": float("nan"), "nmi": float("nan")}
    joint, _, _ = np.histogram2d(a, b, bins=bins)
    joint /= joint.sum()

    def entropy(p):
        p = p[p > 0]
        return float(-(p * np.log(p)).sum())

    nmi = (entropy(joint.sum(axis=0)) + entropy(joint.sum(axis=1))) / entropy(joint.ravel())
    return {"ncc": float(np.corrcoef(a, b)[0, 1]), "nmi": float(nmi)}


#: (warn below, fail below) for similarity and parenchyma Dice; limits of the Jacobian.
THRESHOLDS = {
    "similarity_ncc": (0.55, 0.35),
    "brain_mask_dice": (0.85, 0.75),
    "jacobian_min": (0.05, 0.0),     # <= 0: the warp folds
    "jacobian_max": (8.0, 20.0),     # warn / fail above
    "affine_scale": (0.45, 1.6),     # plausible native / template volume ratio
}

#: GM, WM and CSF fractions of TIV outside which a subject is flagged (warn), with no age given.
FRACTIONS = {"gm": (0.30, 0.60), "wm": (0.22, 0.50), "csf": (0.05, 0.45)}


def fraction_ranges(age: float | None = None) -> dict:
    """Plausible GM/WM/CSF fractions of TIV, narrowed by age when it is known.

    GM fraction falls from ~0.50 at 20 to ~0.40 at 80 and CSF rises from ~0.12 to ~0.30
    (adult lifespan studies of SPM/CAT12 volumes); the ranges are those trends +-0.09 (GM)
    and +-0.12 (CSF), wide enough for segmenter differences.

    Examples
    --------
    >>> fraction_ranges(80)["gm"]
    (0.31, 0.49)
    """
    if age is None or not np.isfinite(age):
        return dict(FRACTIONS)
    years = float(np.clip(age, 20, 95)) - 20.0
    gm = 0.50 - years * 0.10 / 60.0
    csf = 0.12 + years * 0.18 / 60.0
    return {"gm": (round(gm - 0.09, 3), round(gm + 0.09, 3)), "wm": FRACTIONS["wm"],
            "csf": (round(max(csf - 0.12, 0.02), 3), round(csf + 0.12, 3))}


def decide(values: dict, *, age: float | None = None) -> tuple[str, list]:
    """QC status (``pass``, ``warn`` or ``fail``) and its reasons from a subject's QC values.

    Parameters
    ----------
    values : dict
        ``similarity_ncc``, ``brain_mask_dice``, ``jacobian_min``, ``jacobian_max``,
        ``affine_scale``, ``contrast_ordered`` (bool), and volumes ``gm_ml``, ``wm_ml``,
        ``csf_ml``, ``tiv_ml``. Missing values are not judged.
    age : float, optional
        Age in years, for the tissue-fraction ranges.

    Returns
    -------
    status : str
    reasons : list of str
        Every criterion that failed or warned, with its value and limit.

    Examples
    --------
    >>> decide({"similarity_ncc": 0.2})
    ('fail', ['similarity_ncc 0.200 < 0.35'])
    """
    fails, warns = [], []
    for key in ("similarity_ncc", "brain_mask_dice"):
        value = values.get(key)
        if value is None:
            continue
        warn, fail = THRESHOLDS[key]
        if not np.isfinite(value) or value < fail:
            fails.append(f"{key} {value:.3f} < {fail}")
        elif value < warn:
            warns.append(f"{key} {value:.3f} < {warn}")
    jmin, jmax = values.get("jacobian_min"), values.get("jacobian_max")
    if jmin is not None and not jmin > THRESHOLDS["jacobian_min"][1]:
        fails.append(f"jacobian_min {jmin:.3f} <= 0 (the warp folds)")
    elif jmin is not None and jmin < THRESHOLDS["jacobian_min"][0]:
        warns.append(f"jacobian_min {jmin:.3f} < {THRESHOLDS['jacobian_min'][0]}")
    if jmax is not None and jmax > THRESHOLDS["jacobian_max"][1]:
        fails.append(f"jacobian_max {jmax:.1f} > {THRESHOLDS['jacobian_max'][1]}")
    elif jmax is not None and jmax > THRESHOLDS["jacobian_max"][0]:
        warns.append(f"jacobian_max {jmax:.1f} > {THRESHOLDS['jacobian_max'][0]}")
    scale = values.get("affine_scale")
    low, high = THRESHOLDS["affine_scale"]
    if scale is not None and not low <= scale <= high:
        fails.append(f"affine_scale {scale:.2f} outside {low}-{high}")
    if values.get("contrast_ordered") is False:
        fails.append("tissue intensities not ordered CSF < GM < WM")
    warns += _fraction_reasons(values, age)
    status = "fail" if fails else "warn" if warns else "pass"
    return status, fails + warns


def _fraction_reasons(values: dict, age) -> list:
    tiv = values.get("tiv_ml")
    if not tiv or not np.isfinite(tiv):
        return []
    out = []
    for tissue, (low, high) in fraction_ranges(age).items():
        volume = values.get(f"{tissue}_ml")
        if volume is not None and not low <= volume / tiv <= high:
            where = f" for age {age:g}" if age is not None and np.isfinite(age) else ""
            out.append(f"{tissue.upper()} fraction {volume / tiv:.2f} outside {low}-{high}{where}")
    return out


def dice(a: np.ndarray, b: np.ndarray) -> float:
    """Dice overlap 2|A & B| / (|A| + |B|) of two boolean masks (NaN when both are empty)."""
    a, b = np.asarray(a, bool), np.asarray(b, bool)
    total = a.sum() + b.sum()
    return float(2 * (a & b).sum() / total) if total else float("nan")


def sample_homogeneity(maps: dict, *, mask: np.ndarray | None = None,
                       threshold_sd: float = 2.0) -> pd.DataFrame:
    """Mean correlation of each subject's map with every other subject's (CAT12's check).

    Parameters
    ----------
    maps : dict of str to (X, Y, Z) numpy.ndarray
        Modulated GM maps on one grid, keyed by participant id.
    mask : (X, Y, Z) numpy.ndarray of bool, optional
        Voxels to compare (default: voxels non-zero in any map).
    threshold_sd : float
        A subject is an outlier when its mean correlation is more than this many SD below the
        sample's mean.

    Returns
    -------
    table : pandas.DataFrame
        Index ``participant_id``; columns ``mean_corr``, ``mean_corr_z`` and
        ``homogeneity_outlier`` (bool). With fewer than 3 subjects z is NaN and nobody is flagged.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> base = rng.random((4, 5, 6))
    >>> maps = {f"s{i}": base + 0.1 * rng.random((4, 5, 6)) for i in range(5)}
    >>> sample_homogeneity(maps)["homogeneity_outlier"].any()
    np.False_
    """
    ids = list(maps)
    index = pd.Index(ids, name="participant_id")
    if not ids:
        return pd.DataFrame({"mean_corr": [], "mean_corr_z": [], "homogeneity_outlier": []},
                            index=index)
    stack = np.stack([np.asarray(maps[i], float) for i in ids])
    keep = mask if mask is not None else np.any(stack != 0, axis=0)
    matrix = stack[:, np.asarray(keep, bool)]
    n = len(ids)
    if n < 2:
        mean = np.full(n, np.nan)
    else:
        corr = np.corrcoef(matrix)
        mean = (corr.sum(axis=1) - 1.0) / (n - 1)
    if n >= 3 and np.std(mean, ddof=1) > 0:
        z = (mean - mean.mean()) / np.std(mean, ddof=1)
    else:
        z = np.full(n, np.nan)
    return pd.DataFrame({"mean_corr": mean, "mean_corr_z": z,
                         "homogeneity_outlier": np.nan_to_num(z, nan=0.0) < -threshold_sd},
                        index=index)


def overlay_figure(t1: np.ndarray, gm: np.ndarray, *, title: str = "", voxel_mm=1.5):
    """Three orthogonal planes of a normalised T1 with its GM map overlaid.

    Parameters
    ----------
    t1, gm : (X, Y, Z) numpy.ndarray
        On one grid, voxel axes as stored (the MNI grid: x right-to-left, y, z).
    title : str
    voxel_mm : float
        Voxel size, for the aspect ratio.

    Returns
    -------
    figure : matplotlib.figure.Figure
        Not registered with pyplot (no global state).

    Examples
    --------
    >>> fig = overlay_figure(np.ones((9, 10, 11)), np.zeros((9, 10, 11)))
    >>> len(fig.axes)
    3
    """
    from matplotlib.figure import Figure

    t1, gm = np.asarray(t1, float), np.asarray(gm, float)
    centre = [s // 2 for s in t1.shape]
    planes = [("sagittal", np.s_[centre[0], :, :]), ("coronal", np.s_[:, centre[1], :]),
              ("axial", np.s_[:, :, centre[2]])]
    vmax = np.percentile(t1[t1 > 0], 99) if np.any(t1 > 0) else 1.0
    fig = Figure(figsize=(9, 3.4), dpi=100)
    for k, (name, sl) in enumerate(planes):
        ax = fig.add_subplot(1, 3, k + 1)
        ax.imshow(t1[sl].T, origin="lower", cmap="gray", vmin=0, vmax=vmax)
        overlay = np.ma.masked_less(gm[sl].T, 0.2)
        ax.imshow(overlay, origin="lower", cmap="autumn", alpha=0.45, vmin=0.2, vmax=1.0)
        ax.set_title(name, fontsize=9)
        ax.set_axis_off()
    if title:
        fig.suptitle(title, fontsize=10)
    return fig


def save_figure(path, figure) -> None:
    """Write a matplotlib Figure as PNG atomically."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(figure)
    with atomic_path(path) as tmp:
        figure.savefig(tmp, format="png", metadata={"Software": None})


__all__ = ["THRESHOLDS", "FRACTIONS", "fraction_ranges", "decide", "registration_similarity", "dice", "sample_homogeneity", "overlay_figure",
           "save_figure"]
