"""One path per analysis: the CLI, the study file (`graymatter run`) and the Python API write
byte-identical tables on the same inputs and seed.

The longitudinal chain (paired change -> clinical PLS -> gene PLS -> enrichment) runs once from
the Study B demo's simulated study file; each step is then rerun from its own subcommand and
from its API function on the same files, and the TSV bytes are compared.
"""

import warnings

import numpy as np
import pandas as pd
import pytest

from graymatter.cli import main
from graymatter.errors import GraymatterWarning
from graymatter.workflows.demo import write_study_b_demo

N = 49  # permutations, spins and bootstraps: few, to stay fast
SEED = 0


@pytest.fixture(scope="module")
def chain(tmp_path_factory):
    """The demo's ect.yaml (simulated data) run with `graymatter run`."""
    root = tmp_path_factory.mktemp("equivalence")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("GRAYMATTER_DATA", str(root / "empty-cache"))  # simulated stand-ins only
        study_file, sources = write_study_b_demo(root / "study", n_perm=N, random_state=SEED)
        assert sources["expression"] == "simulated"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", GraymatterWarning)
            assert main(["--quiet", "run", str(study_file)]) == 0
    folder = study_file.parent
    return {"folder": folder, "data": folder / "data", "out": folder / "results",
            "root": root}


def _same_bytes(a, b, names):
    for name in names:
        assert (a / name).read_bytes() == (b / name).read_bytes(), name


def _run(args):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", GraymatterWarning)
        assert main(["--quiet", *map(str, args)]) == 0


def test_paired_change_cli_with_tiv_equals_study_file_and_api(chain):
    from graymatter.workflows.longitudinal import run_longitudinal

    data, root = chain["data"], chain["root"]
    common = ["--participants", data / "participants.tsv", "--pre", data / "gmv_pre.tsv",
              "--post", data / "gmv_post.tsv"]
    _run(["longitudinal", *common, "--tiv", "tiv_pre", "tiv_post", "--covariates",
          "1 + delta_tiv", "--n-perm", N, "--seed", SEED, "--out", root / "cli_paired"])
    run_longitudinal(data / "participants.tsv", pre=data / "gmv_pre.tsv",
                     post=data / "gmv_post.tsv", out_dir=root / "api_paired",
                     covariates_formula="1 + delta_tiv", tiv=("tiv_pre", "tiv_post"),
                     n_perm=N, random_state=SEED, progress=False)
    for other in ("cli_paired", "api_paired"):
        _same_bytes(chain["out"] / "paired", root / other, ["paired_change.tsv"])
    # the covariate mattered: without ΔTIV the table differs
    _run(["longitudinal", *common, "--n-perm", N, "--seed", SEED, "--out", root / "no_tiv"])
    assert ((root / "no_tiv" / "paired_change.tsv").read_bytes()
            != (root / "cli_paired" / "paired_change.tsv").read_bytes())


def test_clinical_pls_cli_equals_study_file_and_api(chain):
    from graymatter.workflows.longitudinal import run_pls_clinical

    data, root = chain["data"], chain["root"]
    _run(["pls-clinical", "--participants", data / "participants.tsv",
          "--pre", data / "gmv_pre.tsv", "--post", data / "gmv_post.tsv",
          "--clinical-pre", "hamd_pre", "--clinical-post", "hamd_post", "--n-components", 1,
          "--n-perm", N, "--n-boot", N, "--cv", "loo", "--seed", SEED,
          "--out", root / "cli_pls"])
    run_pls_clinical(data / "participants.tsv", pre=data / "gmv_pre.tsv",
                     post=data / "gmv_post.tsv", clinical_pre="hamd_pre",
                     clinical_post="hamd_post", out_dir=root / "api_pls", n_components=1,
                     n_perm=N, n_boot=N, cv="loo", random_state=SEED)
    study = chain["out"] / "clinical_pls"
    tables = sorted(p.name for p in study.glob("*.tsv"))
    assert tables, list(study.iterdir())
    for other in ("cli_pls", "api_pls"):
        _same_bytes(study, root / other, tables)


def _tx_args(data):
    return ["--expression", data / "expression_SIMULATED.tsv",
            "--centroids", data / "dk_centroids_fsaverage5.tsv", "--hemisphere", "lh",
            "--n-spins", N, "--spin-method", "alexander-bloch", "--seed", SEED]


def test_gene_pls_cli_equals_study_file_and_api(chain):
    from graymatter.workflows.transcriptomics import run_transcriptomics

    data, root, out = chain["data"], chain["root"], chain["out"]
    _run(["transcriptomics", "--map", out / "t_map.tsv", *_tx_args(data), "--n-components", 3,
          "--n-boot", N, "--fdr", 0.05, "--out", root / "cli_tx"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", GraymatterWarning)
        api = run_transcriptomics(out / "t_map.tsv", data / "expression_SIMULATED.tsv",
                                  out_dir=root / "api_tx",
                                  centroids=data / "dk_centroids_fsaverage5.tsv",
                                  hemisphere="lh", n_spins=N, n_boot=N, random_state=SEED)
    names = ["gene_table.tsv", "pls_scores.tsv", "pls1_positive.txt", "pls1_negative.txt"]
    for other in ("cli_tx", "api_tx"):
        _same_bytes(out / "transcriptomics", root / other, names)
    assert api.scores.shape[0] == 34  # the left hemisphere, as the study file says
    # what the gene PLS matched is returned for the next step, in its analysed order
    assert list(api.matched.brain_map.index) == list(api.scores.index)
    assert api.matched.nulls.shape == (34, N)


def test_enrichment_cli_equals_study_file_and_api(chain):
    from graymatter.workflows.enrichment import run_enrichment

    data, root, out = chain["data"], chain["root"], chain["out"]
    tx_folder = out / "transcriptomics"
    for name, sets in (("cell_types", "celltypes_SIMULATED.tsv"), ("go", "go_SIMULATED.gmt")):
        _run(["enrich", "--map", out / "t_map.tsv", *_tx_args(data),
              "--gene-sets", data / sets, "--gene-list", tx_folder, "--n-perm", 10 * N,
              "--out", root / f"cli_enr_{name}"])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", GraymatterWarning)
            run_enrichment(out / "t_map.tsv", data / "expression_SIMULATED.tsv", data / sets,
                           out_dir=root / f"api_enr_{name}", gene_lists=tx_folder,
                           centroids=data / "dk_centroids_fsaverage5.tsv", hemisphere="lh",
                           n_perm=10 * N, n_spins=N, random_state=SEED)
    study = out / "enrichment"
    cells = ["gene_ranking.tsv", "gsea.tsv", "gene_set_restriction.tsv",
             "spatial_enrichment.tsv", "ora_pls1_positive.tsv"]
    assert (study / "cell_types" / "spatial_enrichment.tsv").is_file()
    for kind in ("cli", "api"):
        _same_bytes(study / "cell_types", root / f"{kind}_enr_cell_types", cells)
        # the study file asks only for ORA on the GO sets
        _same_bytes(study / "go", root / f"{kind}_enr_go", ["ora_pls1_positive.tsv"])
    # one default for the largest set: 2000 for gene,set tables, 500 for GMT files
    spatial = pd.read_csv(study / "cell_types" / "spatial_enrichment.tsv", sep="\t")
    assert spatial["size"].max() > 0
    gsea = pd.read_csv(study / "cell_types" / "gsea.tsv", sep="\t", index_col=0)
    assert np.isfinite(gsea["nes"]).all()


# ------------------------------------------------------------------ cross-sectional: regions

REGIONAL_STUDY = """\
name: regional equivalence
participants: participants.tsv
regions: regions.csv
columns: ["*_thickavg"]
model: 0 + group + age
levels:
  group: [HC, MDD]
contrasts:
  MDD > HC: MDD - HC
inference:
  methods: [permutation]
  n_perm: {n}
  two_sided: true
  random_state: 3
output: study_out
"""


@pytest.fixture(scope="module")
def regional(tmp_path_factory):
    """Subjects x regions with ENIGMA-style summary columns (ICV, mean thickness) beside them."""
    folder = tmp_path_factory.mktemp("regional")
    rng = np.random.default_rng(11)
    n = 30
    ids = [f"sub-{i:02d}" for i in range(n)]
    group = np.repeat(["HC", "MDD"], n // 2)
    pd.DataFrame({"participant_id": ids, "group": group,
                  "age": rng.normal(40, 10, n).round(1)}).to_csv(
        folder / "participants.tsv", sep="\t", index=False)
    values = rng.normal(2.5, 0.1, size=(n, 8)) - 0.08 * (group == "MDD")[:, None]
    table = pd.DataFrame(values, columns=[f"L_r{i}_thickavg" for i in range(8)])
    table.insert(0, "participant_id", ids)
    table["LThickness"] = table.filter(like="_thickavg").mean(axis=1)
    table["ICV"] = rng.normal(1.5e6, 1e5, n)
    table.to_csv(folder / "regions.csv", index=False)
    (folder / "study.yaml").write_text(REGIONAL_STUDY.format(n=N + 50))
    return folder


def test_regional_glm_cli_equals_study_file_and_api(regional):
    from graymatter.workflows.inference import InferenceSettings
    from graymatter.workflows.longitudinal import run_regional

    f = regional
    _run(["run", f / "study.yaml"])
    _run(["regional", "--participants", f / "participants.tsv", "--regions", f / "regions.csv",
          "--columns", "*_thickavg", "--model", "0 + group + age", "--level", "group=HC,MDD",
          "--contrast", "MDD > HC=MDD - HC", "--inference", "permutation", "--n-perm", N + 50,
          "--two-sided", "--seed", 3, "--out", f / "cli_out"])
    run_regional(f / "participants.tsv", regions=f / "regions.csv", columns="*_thickavg",
                 model="0 + group + age", levels={"group": ["HC", "MDD"]},
                 contrasts={"MDD > HC": "MDD - HC"}, out_dir=f / "api_out",
                 inference=InferenceSettings(methods=("permutation",), n_perm=N + 50,
                                             two_sided=True, random_state=3), progress=False)
    names = ["contrast-MDDgtHC_stat.tsv", "design.tsv"]
    for other in ("cli_out", "api_out"):
        _same_bytes(f / "study_out", f / other, names)
    stat = pd.read_csv(f / "study_out" / names[0], sep="\t", index_col=0)
    # `columns:` keeps the summaries (ICV, mean thickness) out of the FWE family
    assert list(stat.index) == [f"L_r{i}_thickavg" for i in range(8)]
    assert "p_fwe_perm" in stat.columns


def test_columns_without_regions_is_refused_at_its_line(regional, tmp_path):
    from graymatter.config import StudyFileError, load_study

    text = (regional / "study.yaml").read_text().replace("regions: regions.csv",
                                                         "images: mri/*.nii.gz")
    path = regional / "bad.yaml"
    path.write_text(text)
    with pytest.raises(StudyFileError, match=r"bad.yaml, line 4: 'columns' selects columns"):
        load_study(path)


# ------------------------------------------------------------------- cross-sectional: voxels

VOXEL_STUDY = """\
name: voxel equivalence
participants: cohort/participants.tsv
images: cohort/mri/*.nii.gz
model: 0 + group + age + tiv
levels:
  group: [HC, MDD]
contrasts:
  MDD < HC: HC - MDD
inference:
  methods: [permutation]
  n_perm: {n}
  random_state: 5
output: study_out
"""


def test_voxel_glm_cli_equals_study_file_and_api(tmp_path):
    import nibabel as nib

    from graymatter.datasets.simulate import simulate_vbm_cohort
    from graymatter.workflows.glm import run_glm
    from graymatter.workflows.inference import InferenceSettings

    simulate_vbm_cohort(tmp_path / "cohort", groups={"HC": 8, "MDD": 8}, resolution=3,
                        random_state=2)
    (tmp_path / "study.yaml").write_text(VOXEL_STUDY.format(n=N))
    images = sorted(str(p) for p in (tmp_path / "cohort" / "mri").glob("*.nii.gz"))
    participants = tmp_path / "cohort" / "participants.tsv"
    _run(["run", tmp_path / "study.yaml"])
    _run(["glm", "--participants", participants, "--images", *images,
          "--model", "0 + group + age + tiv", "--level", "group=HC,MDD",
          "--contrast", "MDD < HC=HC - MDD", "--inference", "permutation", "--n-perm", N,
          "--seed", 5, "--out", tmp_path / "cli_out"])
    run_glm(participants, images=images, model="0 + group + age + tiv",
            levels={"group": ["HC", "MDD"]}, contrasts={"MDD < HC": "HC - MDD"},
            out_dir=tmp_path / "api_out", progress=False,
            inference=InferenceSettings(methods=("permutation",), n_perm=N, random_state=5))
    study = tmp_path / "study_out"
    tables = sorted(p.name for p in study.glob("*.tsv"))
    assert "contrast-MDDltHC_clusters.tsv" in tables and "design.tsv" in tables
    maps = sorted(p.name for p in study.glob("contrast-*.nii.gz"))
    assert maps
    for other in ("cli_out", "api_out"):
        _same_bytes(study, tmp_path / other, tables)
        for name in maps:  # gzip headers carry a time stamp: compare the voxels
            a = np.asanyarray(nib.load(study / name).dataobj)
            b = np.asanyarray(nib.load(tmp_path / other / name).dataobj)
            assert np.array_equal(a, b, equal_nan=True), name


def test_regional_study_gets_a_report_with_its_region_table(regional):
    f = regional
    if not (f / "study_out" / "report.html").is_file():
        _run(["run", f / "study.yaml"])
    html = (f / "study_out" / "report.html").read_text()
    stat = pd.read_csv(f / "study_out" / "contrast-MDDgtHC_stat.tsv", sep="\t", index_col=0)
    n_sig = int((stat["p_fwe_perm"] < 0.05).sum())
    assert f"{n_sig} of 8 regions with p_fwe_perm &lt; 0.05" in html or \
        f"{n_sig} of 8 regions with p_fwe_perm < 0.05" in html
    for region in stat.index:
        assert f"<td>{region}</td>" in html
    assert "ICV" not in html.split('id="results"')[1].split('id="parameters"')[0]
    assert "Benjamini" in html and "max" in html
