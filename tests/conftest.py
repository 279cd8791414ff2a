"""Shared fixtures: seeded synthetic data and the real data folder."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]


def _shared_data_dir() -> Path | None:
    env = os.environ.get("GRAYMATTER_SHARED_DATA")
    candidates = [Path(env)] if env else []
    candidates.append(REPO.parent / "shared" / "data")
    for candidate in candidates:
        if (candidate / "MANIFEST.tsv").is_file():
            return candidate
    return None


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real data folder (``../shared/data`` or ``$GRAYMATTER_SHARED_DATA``).

    In CI (``CI=true``) a missing folder fails the test; elsewhere the test is skipped.
    """
    found = _shared_data_dir()
    if found is None:
        reason = ("real data folder not found: expected ../shared/data beside the repository or "
                  "a folder named by $GRAYMATTER_SHARED_DATA (with MANIFEST.tsv)")
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    return found


@pytest.fixture
def rng() -> np.random.Generator:
    """A seeded generator so every test sees the same numbers."""
    return np.random.default_rng(20261122)
