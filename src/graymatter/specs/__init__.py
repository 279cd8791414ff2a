"""Step specifications: the options of each analysis step, declared once (see ``base``)."""

from .base import Option, SpecError, StepSpec, option
from .steps import (
    ENRICHMENT_METHODS, EXCLUDE_QC, HEMISPHERES, INFERENCE_METHODS, SPIN_METHODS, STEP_SPECS,
    ClinicalPLSSpec, EnrichmentSpec, GenePLSSpec, GLMSpec, InferenceSpec, PairedChangeSpec,
    PreprocessSpec, ReportSpec)


def reference_markdown() -> str:
    """The study-file reference of every step, generated from the specs (for the docs)."""
    return "\n".join(cls.reference() for cls in STEP_SPECS.values())


__all__ = ["Option", "SpecError", "StepSpec", "option", "reference_markdown", "STEP_SPECS",
           "ENRICHMENT_METHODS", "EXCLUDE_QC", "HEMISPHERES", "INFERENCE_METHODS",
           "SPIN_METHODS", "ClinicalPLSSpec", "EnrichmentSpec", "GenePLSSpec", "GLMSpec",
           "InferenceSpec", "PairedChangeSpec", "PreprocessSpec", "ReportSpec"]
