"""MNI152 grids and the default gray-matter mask: re-exported from :mod:`graymatter.io.templates`.

The templates ship with nilearn (nothing is downloaded) and the image readers in :mod:`graymatter.io`
need them, so they live in ``io``; this name is kept for existing imports.
"""

from graymatter.io.templates import default_gm_mask, mask_to_grid, mni_grid, template_overlap

__all__ = ["default_gm_mask", "mni_grid", "mask_to_grid", "template_overlap"]
