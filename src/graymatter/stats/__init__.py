"""Statistics: design matrices, contrasts and the mass-univariate GLM engine (voxels and regions alike)."""
