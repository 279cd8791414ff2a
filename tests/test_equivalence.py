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
