"""The step specs: every option of every analysis step, declared once.

Each class is one step of a study chain. Its fields are the step's options (not its inputs:
files, tables and the results of earlier steps come in separately). The study-file block of a
step has the step's name; the command-line subcommand builds the same spec from its flags.
"""

from __future__ import annotations

from dataclasses import dataclass

from .base import SpecError, StepSpec, option

__all__ = [
    "SPIN_METHODS", "HEMISPHERES", "ENRICHMENT_METHODS", "INFERENCE_METHODS", "EXCLUDE_QC",
    "PreprocessSpec", "InferenceSpec", "GLMSpec", "PairedChangeSpec", "ClinicalPLSSpec",
    "GenePLSSpec", "EnrichmentSpec", "ReportSpec", "STEP_SPECS",
]

#: Spatial null models of regional maps (see docs/spin_calibration.md).
SPIN_METHODS = ("alexander-bloch", "vasa", "hungarian")
#: Which cortical hemispheres enter a gene analysis.
HEMISPHERES = ("lh", "rh", "both")
#: Enrichment analyses of a gene ranking.
ENRICHMENT_METHODS = ("gsea", "ora", "spatial")
#: Family-wise error methods of the GLM (FDR is always reported).
INFERENCE_METHODS = ("permutation", "rft")
#: Which preprocessing QC statuses keep a subject out of the GLM.
EXCLUDE_QC = ("none", "fail", "warn")


def _seed(doc: str = "Random seed; the same seed gives the same numbers whatever n_jobs."):
    return option(0, kind="seed", flag="--seed", doc=doc)


def _n_jobs():
    return option(1, kind="int", doc="Parallel workers (-1: all CPUs); results do not depend "
                                     "on it.")


@dataclass(frozen=True)
class PreprocessSpec(StepSpec):
    """Options of T1 preprocessing (segmentation, normalisation, modulation, smoothing, QC)."""

    step = "preprocess"
    title = "T1 preprocessing to modulated gray matter in MNI space"

    resolution: float = option(1.5, kind="number", minimum=0.5,
                               doc="Voxel size in mm of the MNI output grid (CAT12: 1.5).")
    fwhm: float = option(10.0, kind="number", minimum=0,
                         doc="FWHM in mm of the Gaussian smoothing of modulated GM (0: none).")
    denoise: bool = option(False, kind="bool", doc="Non-local-means denoising before N4.")
    n_jobs: int = _n_jobs()
    threads_per_subject: int = option(1, kind="int", minimum=1,
                                      doc="ITK threads per subject; outputs repeat exactly for a "
                                          "fixed count.")
    random_state: int = _seed("Seed of the registration's metric sampling.")
    syn_iterations: tuple = option((40, 20, 10), kind="list",
                                   doc="SyN iterations per level, coarse to fine.")
    exclude_qc: str = option("none", kind="text", choices=EXCLUDE_QC,
                             doc="Keep subjects of this QC status or worse out of the GLM "
                                 "(none keeps all, and says so).")


@dataclass(frozen=True)
class InferenceSpec(StepSpec):
    """Corrected inference of a GLM: permutation, random field theory, TFCE, FDR."""

    step = "inference"
    title = "Corrected inference of the GLM"

    methods: tuple = option((), kind="list", choices=INFERENCE_METHODS, flag="--inference",
                            doc="Family-wise error methods (FDR is always added); rft applies "
                                "to voxel data only.")
    n_perm: int = option(5000, kind="int", minimum=1, doc="Number of permutations.")
    height_p: float | None = option(None, kind="number", minimum=0,
                                    doc="Cluster-forming height as an uncorrected p (0.001 when "
                                        "neither height is given).")
    height_t: float | None = option(None, kind="number",
                                    doc="Cluster-forming height as a t (or F) value.")
    connectivity: int = option(18, kind="int", choices=(6, 18, 26),
                               doc="Voxel neighbourhood of clusters (18, like SPM).")
    tfce: bool = option(False, kind="bool",
                        doc="Threshold-free cluster enhancement (E=0.5, H=2) with permutation "
                            "FWE.")
    two_sided: bool = option(False, kind="bool",
                             doc="Regions only: test |t| (voxel contrasts are one-sided, like "
                                 "SPM).")
    random_state: int = _seed("Seed of the permutations.")
    n_jobs: int = _n_jobs()
    atlas: str | None = option(None, kind="path",
                               doc="Label atlas NIfTI of the cluster table (default: "
                                   "Desikan-Killiany).")
    atlas_labels: str | None = option(None, kind="path", doc="Label table (TSV/CSV) of atlas.")

    def check(self) -> None:
        if self.height_p is not None and self.height_t is not None:
            raise SpecError("InferenceSpec: give height_p or height_t, not both.")
        if self.height_p is not None and not 0 < self.height_p < 1:
            raise SpecError(f"InferenceSpec: 'height_p' is a p-value in (0, 1); got "
                            f"{self.height_p}.")


@dataclass(frozen=True)
class GLMSpec(StepSpec):
    """A mass-univariate GLM: model formula, contrasts, coding of factors, precision."""

    step = "glm"
    title = "General linear model (voxels or regions)"

    model: str = option(kind="formula", cli=False,
                        doc="Model formula, e.g. '0 + group + age + sex + tiv'.")
    contrasts: dict = option(kind="mapping", cli=False,
                             doc="name: expression (t) or list of expressions (F).")
    levels: dict | None = option(None, kind="mapping", cli=False,
                                 doc="Explicit level order of categorical factors.")
    center: bool = option(True, kind="bool", doc="Mean-centre numeric covariates.")
    dtype: str = option("float64", kind="text", choices=("float64", "float32"),
                        doc="Precision of the fit (float32 halves the memory).")
    columns: tuple | None = option(None, kind="list", cli=False,
                                   doc="Regions only: shell patterns of the columns to test "
                                       "(e.g. '*_thickavg').")

    def check(self) -> None:
        if not self.contrasts:
            raise SpecError("GLMSpec: 'contrasts' is empty: give at least one, e.g. "
                            "'HC > MDD: HC - MDD'.")


@dataclass(frozen=True)
class PairedChangeSpec(StepSpec):
    """Within-subject change of regional measures (post - pre), tested by sign-flipping."""

    step = "paired_change"
    title = "Paired (longitudinal) change of regional measures"

    covariates: str = option("1", kind="formula",
                             doc="Formula of the change model, e.g. '1 + delta_tiv'.")
    columns: tuple | None = option(None, kind="list",
                                   doc="Shell patterns of the region columns to test.")
    n_perm: int = option(5000, kind="int", minimum=1, doc="Number of sign-flips.")
    two_sided: bool = option(True, kind="bool", flag="--one-sided",
                             doc="Test |t| (--one-sided: t > 0 only).")
    random_state: int = _seed("Seed of the sign-flips.")
    n_jobs: int = _n_jobs()


@dataclass(frozen=True)
class ClinicalPLSSpec(StepSpec):
    """PLS between regional change and clinical change, with permutation and bootstrap."""

    step = "clinical_pls"
    title = "Clinical PLS (regional change x clinical change)"

    clinical_pre: str = option(kind="text", doc="Participants column of the score before.")
    clinical_post: str = option(kind="text", doc="Participants column of the score after.")
    n_components: int = option(1, kind="int", minimum=1, doc="PLS components.")
    n_perm: int = option(1000, kind="int", minimum=1, doc="Permutations of the subjects.")
    n_boot: int = option(1000, kind="int", minimum=1, doc="Bootstrap resamples of loadings.")
    cv: object = option("loo", kind="any",
                        doc="Cross-validation: loo, an integer number of folds >= 2, or null.")
    random_state: int = _seed()

    def check(self) -> None:
        cv = self.cv
        if not (cv is None or cv == "loo" or (isinstance(cv, int) and not isinstance(cv, bool)
                                              and cv >= 2)):
            raise SpecError(f"ClinicalPLSSpec: 'cv' must be loo, an integer >= 2 or null; got "
                            f"{cv!r}.")


@dataclass(frozen=True)
class GenePLSSpec(StepSpec):
    """PLS of AHBA gene expression onto a regional brain map, with spatial nulls."""

    step = "gene_pls"
    title = "Gene PLS (imaging transcriptomics)"

    hemisphere: str = option("both", kind="text", choices=HEMISPHERES,
                             doc="Cortical hemispheres analysed.")
    n_components: int = option(3, kind="int", minimum=1, doc="PLS components.")
    n_spins: int = option(1000, kind="int", minimum=1, doc="Spatial-null rotations.")
    spin_method: str = option("alexander-bloch", kind="text", choices=SPIN_METHODS,
                              doc="Spatial null model of the brain map.")
    n_boot: int = option(1000, kind="int", minimum=1, doc="Bootstrap resamples of the gene "
                                                          "weights.")
    bootstrap: str = option("regions", kind="text", choices=("regions", "blocks"),
                            doc="Resample regions, or spatial blocks of regions.")
    n_blocks: int = option(10, kind="int", minimum=2, doc="Spatial blocks (bootstrap=blocks).")
    fdr_alpha: float = option(0.05, kind="number", minimum=0, flag="--fdr",
                              doc="FDR level of the gene lists.")
    duplicate_genes: str = option("drop", kind="text", choices=("drop", "error"),
                                  doc="What to do with genes listed twice in the expression.")
    random_state: int = _seed("Seed of the rotations and the bootstrap.")


@dataclass(frozen=True)
class EnrichmentSpec(StepSpec):
    """GSEA, ORA and spatially constrained enrichment of a gene ranking."""

    step = "enrichment"
    title = "Gene-set enrichment (GSEA, ORA, spatial null)"

    methods: tuple = option(ENRICHMENT_METHODS, kind="list", choices=ENRICHMENT_METHODS,
                            doc="Enrichment analyses to run.")
    ranking: str = option("weight", kind="text", choices=("weight", "z"),
                          doc="Rank genes by PLS1 weight or by its bootstrap z.")
    weight: float = option(1.0, kind="number", minimum=0, flag="--gsea-weight",
                           doc="GSEA weight p of the running sum (1: classic weighted GSEA).")
    n_perm: int = option(10000, kind="int", minimum=1, doc="GSEA gene-set permutations.")
    n_spins: int = option(1000, kind="int", minimum=1, doc="Spatial-null rotations.")
    spin_method: str = option("alexander-bloch", kind="text", choices=SPIN_METHODS,
                              doc="Spatial null model of the brain map.")
    min_size: int = option(5, kind="int", minimum=1, doc="Smallest gene set tested.")
    max_size: int | None = option(None, kind="int", minimum=1,
                                  doc="Largest gene set tested (none: 2000 for tables, 500 for "
                                      "GMT collections).")
    redundancy: str | None = option("kappa", kind="text", choices=("kappa",),
                                    doc="Redundancy reduction of ORA terms (null: none).")
    redundancy_threshold: float = option(0.3, kind="number", minimum=0,
                                         doc="Kappa similarity that groups two terms.")
    top: int = option(15, kind="int", minimum=1, doc="Rows shown per table in the report.")
    random_state: int = _seed()


@dataclass(frozen=True)
class ReportSpec(StepSpec):
    """The HTML report: one section per step that ran."""

    step = "report"
    title = "HTML report"

    title_text: str | None = option(None, kind="text", flag="--title",
                                    doc="Title of the report (default: the study name).")
    top: int = option(15, kind="int", minimum=1, doc="Rows shown per table.")
    max_overlays: int = option(6, kind="int", minimum=0,
                               doc="Preprocessing QC overlays shown.")


#: Step name -> spec class, in chain order.
STEP_SPECS = {cls.step: cls for cls in (PreprocessSpec, GLMSpec, InferenceSpec,
                                        PairedChangeSpec, ClinicalPLSSpec, GenePLSSpec,
                                        EnrichmentSpec, ReportSpec)}
