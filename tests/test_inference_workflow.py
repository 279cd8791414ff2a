"""Corrected inference through the GLM workflow: files, agreement with the engines, errors, power."""

import json

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
from scipy import stats
from scipy.ndimage import gaussian_filter

from graymatter.cli import main
from graymatter.datasets.atlases import load_atlas
from graymatter.datasets.templates import default_gm_mask
from graymatter.errors import InputError
from graymatter.io.images import MaskedGrid
from graymatter.stats.glm import MassUnivariateGLM
from graymatter.stats.permutation import permutation_test
from graymatter.stats.rft import peak_p_fwe
from graymatter.workflows.glm import run_glm
from graymatter.workflows.inference import InferenceSettings, infer_voxels

SHAPE = (17, 19, 15)
AFFINE = np.array([[2.0, 0, 0, 10.0], [0, 2.0, 0, -16.0], [0, 0, 2.0, -34.0], [0, 0, 0, 1]])


def _smooth_images(rng, n, fwhm_vox=2.5):
    sigma = fwhm_vox / np.sqrt(8 * np.log(2))
    data = np.stack([gaussian_filter(rng.standard_normal(SHAPE), sigma) for _ in range(n)])
    return data / data.std(axis=0, keepdims=True)


@pytest.fixture
def small_study(tmp_path, rng):
    """20 subjects in two groups with an effect in a corner blob, written as NIfTI files."""
    n = 20
    data = _smooth_images(rng, n)
    data[:10, 3:8, 4:9, 3:8] += 1.5
    ids = [f"sub-{i:02d}" for i in range(n)]
    for sid, volume in zip(ids, data):
        nib.save(nib.Nifti1Image(volume.astype(np.float32), AFFINE), tmp_path / f"mwp1{sid}.nii.gz")
    nib.save(nib.Nifti1Image(np.ones(SHAPE, np.uint8), AFFINE), tmp_path / "mask.nii.gz")
    pd.DataFrame({"participant_id": ids, "group": ["A"] * 10 + ["B"] * 10,
                  "age": rng.normal(40, 8, n).round(1)}
                 ).to_csv(tmp_path / "participants.tsv", sep="\t", index=False)
    return tmp_path


def _run(study, **settings):
    return run_glm(study / "participants.tsv", images=str(study / "mwp1*.nii.gz"),
                   mask=study / "mask.nii.gz", model="0 + group + age",
                   contrasts={"A > B": "A - B"}, out_dir=study / "out",
                   inference=InferenceSettings(**settings), progress=False)


def test_permutation_rft_tfce_outputs_agree_with_engines(small_study):
    out = _run(small_study, methods=("permutation", "rft"), n_perm=99, tfce=True,
               height_p=0.01, random_state=7)
    inf = out.inference["A > B"]
    # The workflow's voxel FWE p are the engine's, for the same data, design and seed.
    design = out.design.X
    Y = np.stack([nib.load(small_study / f"mwp1{s}.nii.gz").get_fdata()[out.grid.mask]
                  for s in out.design.matrix.index])
    direct = permutation_test(Y, design, out.contrasts[0], n_perm=99, random_state=7,
                              progress=False)
    np.testing.assert_array_equal(inf.permutation.p_fwe, direct.p_fwe)
    logp = nib.load(small_study / "out" / "contrast-AgtB_stat-logpFWEvoxelPerm.nii.gz")
    np.testing.assert_allclose(logp.get_fdata()[out.grid.mask], -np.log10(direct.p_fwe),
                               rtol=1e-6)
    # The largest cluster holds the planted blob and is significant by permutation and RFT.
    table = inf.table
    first = table.iloc[0]
    assert first["k"] == inf.clusters.sizes.max()
    assert first["cluster_p_fwe_perm"] == inf.cluster_p["perm"][0] <= 0.05
    assert first["cluster_p_fwe_rft"] < 0.05
    assert inf.maps["p_fwe_tfce"].min() <= 0.05
    labels = nib.load(small_study / "out" / "contrast-AgtB_stat-clusters.nii.gz").get_fdata()
    np.testing.assert_array_equal(labels[out.grid.mask], inf.clusters.labels)
    assert (small_study / "out" / "contrast-AgtB_clusters.tsv").is_file()
    sidecar = json.loads((small_study / "out" / "glm.json").read_text())
    assert sidecar["inference"]["settings"]["n_perm"] == 99
    assert sidecar["inference"]["smoothness"]["fwhm_vox"][0] > 1.0
    # Voxel RFT FWE as SPM12: min(RFT, Bonferroni over the search volume's voxels), per peak.
    s, df = out.smoothness, int(out.model.df_resid_)
    p_bonf = np.minimum(1.0, s.n_voxels * stats.t.sf(table["peak_t"], df))
    p_rft = peak_p_fwe(table["peak_t"].to_numpy(), s, df=df)  # RFT alone (see test_rft)
    np.testing.assert_allclose(table["peak_p_fwe_rft"], np.minimum(p_rft, p_bonf), rtol=1e-9)
    assert table["peak_fwe_rft_method"].tolist() == np.where(
        p_bonf < p_rft, "Bonferroni", "RFT").tolist()
    threshold = sidecar["inference"]["contrasts"]["A > B"]["rft_height_fwe"]
    u_bonf = stats.t.isf(0.05 / s.n_voxels, df)
    assert threshold["u_bonferroni"] == pytest.approx(u_bonf, rel=1e-10)
    assert threshold["u"] == min(threshold["u_rft"], u_bonf)
    assert threshold["method"] == ("Bonferroni" if u_bonf < threshold["u_rft"] else "RFT")
    assert threshold["n_voxels"] == s.n_voxels == out.grid.n_voxels


def test_same_seed_same_numbers_whatever_n_jobs(small_study):
    one = _run(small_study, methods=("permutation",), n_perm=49, random_state=3, n_jobs=1)
    two = _run(small_study, methods=("permutation",), n_perm=49, random_state=3, n_jobs=2)
    np.testing.assert_array_equal(one.inference["A > B"].permutation.null_max["cluster_mass"],
                                  two.inference["A > B"].permutation.null_max["cluster_mass"])


def test_inference_errors(small_study):
    with pytest.raises(InputError, match="not both"):
        InferenceSettings(methods=("permutation",), height_p=0.001, height_t=3.1)
    with pytest.raises(InputError, match="n_perm must be a positive"):
        InferenceSettings(methods=("permutation",), n_perm=0)
    with pytest.raises(InputError, match="tfce=True needs permutation"):
        InferenceSettings(methods=("rft",), tfce=True)
    with pytest.raises(InputError, match="one-sided, like SPM"):
        _run(small_study, methods=("permutation",), n_perm=9, two_sided=True)
    with pytest.raises(InputError, match="F contrast"):
        run_glm(small_study / "participants.tsv", images=str(small_study / "mwp1*.nii.gz"),
                mask=small_study / "mask.nii.gz", model="0 + group + age",
                contrasts={"F": ["A - B"]}, out_dir=small_study / "out",
                inference=InferenceSettings(methods=("permutation",), n_perm=9, tfce=True),
                progress=False)


def test_regions_get_max_t_and_fdr_and_refuse_rft(tmp_path, rng):
    participants = pd.DataFrame({"group": ["A"] * 12 + ["B"] * 12},
                                index=[f"s{i}" for i in range(24)])
    regions = pd.DataFrame(rng.normal(size=(24, 6)), index=participants.index,
                           columns=[f"r{i}" for i in range(6)])
    out = run_glm(participants, regions=regions, model="0 + group", contrasts={"d": "A - B"},
                  out_dir=tmp_path, inference=InferenceSettings(methods=("permutation",),
                                                                n_perm=99, two_sided=True),
                  progress=False)
    table = pd.read_csv(tmp_path / "contrast-d_stat.tsv", sep="\t", index_col=0)
    assert (table.p_fwe_perm >= table.p - 1e-12).all()
    assert (table.p_fdr >= table.p - 1e-12).all()
    with pytest.raises(InputError, match="random field theory"):
        run_glm(participants, regions=regions, model="0 + group", contrasts={"d": "A - B"},
                out_dir=tmp_path, inference=InferenceSettings(methods=("rft",)), progress=False)


def test_cli_prints_cluster_table(small_study, capsys):
    code = main(["--quiet", "glm", "--participants", str(small_study / "participants.tsv"),
                 "--images", str(small_study / "mwp1*.nii.gz"), "--mask",
                 str(small_study / "mask.nii.gz"), "--model", "0 + group + age",
                 "--contrast", "A > B=A - B", "--inference", "permutation", "rft",
                 "--n-perm", "49", "--tfce", "--height-p", "0.01", "--out",
                 str(small_study / "cli")])
    out = capsys.readouterr().out
    assert code == 0
    assert "cluster_p_fwe_perm" in out and "A > B" in out
    assert (small_study / "cli" / "contrast-AgtB_stat-tfce.nii.gz").is_file()


def test_planted_amygdala_effect_is_found_and_labelled(rng):
    """Power: Study A's amygdala-sized effect (t about 4.5 at n = 125) is found and labelled."""
    atlas = load_atlas()
    amygdala = np.argwhere(atlas.data == atlas.labels.index[(atlas.labels.name == "amygdala")
                                                            & (atlas.labels.hemisphere == "R")][0])
    centre = np.round(amygdala.mean(axis=0) @ atlas.image.affine[:3, :3].T
                      + atlas.image.affine[:3, 3])                   # about (23, -3, -21) mm
    shape, affine = (40, 40, 40), np.eye(4) * 2.0
    affine[3, 3] = 1.0
    affine[:3, 3] = centre - 2.0 * 20
    mask = default_gm_mask((shape, affine)).get_fdata() > 0
    grid = MaskedGrid(mask, affine)
    n_groups = {"TRD": 41, "nonTRD": 40, "HC": 44}
    n = sum(n_groups.values())
    group = np.repeat(list(n_groups), list(n_groups.values()))
    sigma = 8.0 / 2.0 / np.sqrt(8 * np.log(2))                      # 8 mm FWHM noise
    noise = np.stack([gaussian_filter(rng.standard_normal(shape), sigma)[mask] for _ in range(n)])
    noise /= noise.std(axis=0)
    # A sphere of Study A's cluster size (k = 1145 at 1.5 mm) blurred by the same 8 mm kernel
    # (anatomical effects taper), scaled so that the expected peak t is 4.5.
    ijk = np.indices(shape).reshape(3, -1).T
    xyz = ijk * 2.0 + affine[:3, 3]
    radius = (1145 * 1.5 ** 3 * 3 / (4 * np.pi)) ** (1 / 3)
    sphere = (np.linalg.norm(xyz - centre, axis=1) <= radius).reshape(shape).astype(float)
    profile = gaussian_filter(sphere, sigma)[mask]
    d = 4.5 * np.sqrt(1 / 41 + 1 / 40)                               # Cohen's d giving t = 4.5
    Y = noise + np.outer(group == "TRD", profile / profile.max() * d)
    X = np.column_stack([group == g for g in n_groups] + [rng.normal(size=n)]).astype(float)
    contrast = type("C", (), {"name": "TRD > nonTRD", "kind": "t",
                              "matrix": np.array([[1.0, -1.0, 0.0, 0.0]])})()
    result = MassUnivariateGLM().fit(Y, X).contrast(contrast)
    settings = InferenceSettings(methods=("permutation",), n_perm=199, random_state=1)
    inf = infer_voxels(Y, X, contrast, result, grid, settings, atlas=atlas, progress=False)
    top = inf.table.iloc[0]
    assert top["cluster_p_fwe_perm"] <= 0.05
    assert np.linalg.norm(np.array([top.x, top.y, top.z], dtype=float) - centre) <= 8.0
    assert "amygdala" in top["peak_label"]
