"""VBM preprocessing: T1-weighted image -> modulated gray-matter map, TIV and QC (ANTs via antspyx).

Modules, one step each: :mod:`~.inputs` (find and check T1 images), :mod:`~.templates`
(MNI152 2009 template and priors from nilearn), :mod:`~.initialise` (canonical orientation,
head geometry, starting transforms), :mod:`~.segment` (N4, brain mask, Atropos),
:mod:`~.normalise` (registration, Jacobian modulation, smoothing), :mod:`~.qc` (figures,
similarity, sample homogeneity, pass/warn/fail decision), :mod:`~.cache` (sidecars, resume)
and :mod:`~.pipeline` (one subject). Many subjects at once:
:func:`graymatter.workflows.preprocess.run_preprocess`.
antspyx is imported only when a step needs it (``pip install 'graymatter[preprocess]'``).
"""
