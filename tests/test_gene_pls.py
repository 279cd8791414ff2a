"""Gene PLS: equality with scikit-learn, sign convention, p_spin counting, bootstrap Z and FDR lists."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps
from sklearn.cross_decomposition import PLSRegression

from graymatter.errors import GraymatterWarning, InputError
from graymatter.stats.multiple import fdr_bh
from graymatter.stats.pls import pls_bootstrap, pls_fit, pls_permutation
from graymatter.transcriptomics.gene_pls import block_bootstrap_indices, gene_pls


def _data(rng, n=36, p=120, sign=1.0):
    X = pd.DataFrame(rng.standard_normal((n, p)) * rng.uniform(0.5, 3, p) + rng.uniform(0, 5, p),
                     index=[f"lh_r{i}" for i in range(n)], columns=[f"G{j}" for j in range(p)])
    Z = (X - X.mean()) / X.std()
    y = pd.Series(sign * Z.iloc[:, :4].sum(axis=1) / 2 + 0.3 * rng.standard_normal(n), index=X.index,
                  name="t")
    return X, y


def test_fit_equals_sklearn(rng):
    X, y = _data(rng)
    res = gene_pls(X, y, n_components=3, n_boot=0)
    sk = PLSRegression(n_components=3, scale=True).fit(X.to_numpy(), y.to_numpy())
    for a in range(3):
        s = np.sign(sk.x_weights_[:, a] @ res.weights.iloc[:, a].to_numpy())
        np.testing.assert_allclose(res.weights.iloc[:, a], s * sk.x_weights_[:, a], atol=1e-6)
        np.testing.assert_allclose(res.scores.iloc[:, a], s * sk.x_scores_[:, a], atol=1e-6)
    # share of the standardised y's sum of squares reproduced by each component
    ys = (y - y.mean()) / y.std(ddof=1)
    ev = (sk.x_scores_ ** 2).sum(axis=0) * sk.y_loadings_[0] ** 2 / (ys ** 2).sum()
    np.testing.assert_allclose(res.explained_variance, ev, rtol=1e-8)


@pytest.mark.parametrize("sign", [1.0, -1.0])
def test_sign_convention(rng, sign):
    X, y = _data(rng, sign=sign)
    res = gene_pls(X, y, n_components=2, n_boot=0)
    for a in range(2):
        assert np.corrcoef(res.scores.iloc[:, a], y)[0, 1] > 0
    # weights flipped with the scores: the planted genes have the sign of their effect on y
    assert np.all(np.sign(res.weights["PLS1"].iloc[:4]) == sign)
    assert res.score_map_r[0] == pytest.approx(np.corrcoef(res.scores["PLS1"], y)[0, 1])


def test_p_spin_counting_rule(rng):
    X, y = _data(rng, n=30, p=60)
    n_null = 40
    nulls = np.stack([rng.permutation(30) for _ in range(n_null)], axis=1)
    nulls[:, 0] = np.arange(30)  # the identity "rotation" ties the observed value: counts as >=
    nulls[:, 1] = rng.integers(0, 30, 30)  # repeated indices (alexander-bloch style) are allowed
    res = gene_pls(X, y, n_components=2, nulls=nulls, n_boot=0)
    null = np.array([pls_fit(X.to_numpy(), y.to_numpy()[nulls[:, j]], n_components=2)
                     .explained_variance_y for j in range(n_null)])
    np.testing.assert_allclose(res.null_explained, null, rtol=1e-8)
    obs = res.explained_variance
    expected = (1 + (null >= obs * (1 - 1e-9)).sum(axis=0)) / (1 + n_null)
    np.testing.assert_allclose(res.p_spin, expected)
    assert res.p_spin[0] >= 2 / (1 + n_null)  # identity counted
    assert res.n_spins == n_null


def test_pls_permutation_accepts_given_permutations(rng):
    X = rng.standard_normal((20, 15))
    y = X[:, 0] + rng.standard_normal(20)
    perms = np.stack([rng.permutation(20) for _ in range(7)], axis=1)
    res = pls_permutation(X, y, n_components=2, permutations=perms)
    assert res.n_perm == 7
    np.testing.assert_array_equal(res.permutations, perms.T)
    for j in range(7):
        ref = pls_fit(X, y[perms[:, j]], n_components=2)
        np.testing.assert_allclose(res.null_explained_variance_y[j], ref.explained_variance_y,
                                   rtol=1e-8)
    with pytest.raises(InputError, match=r"\(20, n_null\)"):
        pls_permutation(X, y, permutations=perms.T)
    with pytest.raises(InputError, match=r"in \[0, 19\]"):
        pls_permutation(X, y, permutations=perms + 1)
    with pytest.raises(InputError, match="integer"):
        pls_permutation(X, y, permutations=perms.astype(float))


def test_bootstrap_z_and_fdr_lists(rng):
    X, y = _data(rng, n=40, p=150)
    res = gene_pls(X, y, n_components=2, n_boot=300, fdr_alpha=0.05, random_state=3)
    boot = pls_bootstrap(X.to_numpy(), y.to_numpy(), n_components=2, n_boot=300, random_state=3)
    flip = np.sign(res.weights.to_numpy()[0] / boot.weights[0])
    np.testing.assert_allclose(res.z.to_numpy(), boot.z * flip, rtol=1e-10)
    table = res.gene_table
    assert table["z"].is_monotonic_decreasing and table["rank"].tolist() == list(range(1, 151))
    np.testing.assert_allclose(table["p"], 2 * sps.norm.sf(np.abs(table["z"])))
    np.testing.assert_allclose(table["p_fdr"], fdr_bh(table["p"].to_numpy()))
    np.testing.assert_allclose(table.set_index("gene").loc[X.columns, "z"], res.z["PLS1"])
    sig = table["p_fdr"] < 0.05
    assert set(res.pls1_positive) == set(table.loc[sig & (table["z"] > 0), "gene"])
    assert set(res.pls1_negative) == set(table.loc[sig & (table["z"] < 0), "gene"])
    # planted genes: all positive, most of them significant (PLS1 with p > n also fits noise)
    assert (table.set_index("gene").loc[["G0", "G1", "G2", "G3"], "z"] > 0).all()
    assert len({"G0", "G1", "G2", "G3"} & set(res.pls1_positive)) >= 3
    again = gene_pls(X, y, n_components=2, n_boot=300, random_state=3)
    pd.testing.assert_frame_equal(again.gene_table, table)


def test_block_bootstrap(rng):
    blocks = np.repeat(np.arange(6), 5)
    idx = block_bootstrap_indices(blocks, 50, random_state=0)
    assert idx.shape == (50, 30)
    for row in idx:  # made of whole blocks (here equal-sized, so no cut)
        assert all(len(set(blocks[row[i:i + 5]])) == 1 for i in range(0, 30, 5))
    X, y = _data(rng, n=30, p=50)
    res = gene_pls(X, y, n_components=1, n_boot=100, bootstrap="blocks", blocks=blocks,
                   random_state=0)
    assert res.bootstrap == "blocks" and np.isfinite(res.z["PLS1"]).all()
    with pytest.raises(InputError, match="blocks="):
        gene_pls(X, y, n_components=1, n_boot=10, bootstrap="blocks")
    with pytest.raises(InputError, match="at least 2 spatial blocks"):
        block_bootstrap_indices(np.zeros(5), 3)


def test_zero_variance_genes_warned_and_dropped(rng):
    X, y = _data(rng, n=20, p=30)
    X["FLAT"] = 0.7
    with pytest.warns(GraymatterWarning, match="dropped 1 of 31 genes with zero variance"):
        res = gene_pls(X, y, n_components=1, n_boot=20, random_state=0)
    assert "FLAT" not in res.weights.index and res.weights.shape[0] == 30


def test_bad_inputs(rng):
    X, y = _data(rng, n=20, p=30)
    with pytest.raises(InputError, match="20 regions but brain_map has 19"):
        gene_pls(X, y.iloc[:19])
    shifted = y.rename(index=lambda s: s.replace("lh_", "rh_"))
    with pytest.raises(InputError, match="same region labels"):
        gene_pls(X, shifted)
    Xn = X.copy()
    Xn.iloc[3, 2] = np.nan
    with pytest.raises(InputError, match="missing values.*match_regions"):
        gene_pls(Xn, y)
    with pytest.raises(InputError, match="needs at least 5 regions, but only 4"):
        gene_pls(X.iloc[:4], y.iloc[:4], n_components=3)
    with pytest.raises(InputError, match="constant"):
        gene_pls(X, y * 0 + 1)
    with pytest.raises(InputError, match="bootstrap must be"):
        gene_pls(X, y, bootstrap="spatial")
    with pytest.raises(InputError, match="n_boot"):
        gene_pls(X, y, n_boot=1)
    with pytest.raises(InputError, match="permutations must be"):
        gene_pls(X, y, nulls=np.zeros((19, 5), dtype=int), n_boot=0)
