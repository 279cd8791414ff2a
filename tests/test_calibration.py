"""Family-wise error under a global null: 500 smooth-noise studies through the real pipeline."""

import pytest

from graymatter.stats.calibration import NullSettings, null_familywise_error


@pytest.mark.slow
def test_familywise_error_is_nominal_under_the_null():
    # 20 x 24 x 20 voxels, FWHM 3 voxels, n = 30 with nuisance covariates, 199 permutations:
    # each statistic's rejection rate must lie in the exact 95 % binomial interval of 0.05.
    table = null_familywise_error(500, settings=NullSettings(), random_state=2026)
    assert table["within"].all(), table
