"""The same study file on this process and on a dask cluster, and ``run --dry-run``'s plan."""

import textwrap
import tracemalloc

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from graymatter.cli import main
from graymatter.config import load_study
from graymatter.datasets.simulate import simulate_vbm_cohort
from graymatter.io.images import MaskedGrid, load_image_matrix
from graymatter.stats.permutation import default_batch_size, permutation_memory, permutation_test
from graymatter.stats.tfce import TFCEStatistic
from graymatter.workflows import plan as plan_module
from graymatter.workflows.plan import plan_study

STUDY = """\
    name: scale
    participants: cohort/participants.tsv
    images: cohort/mri/*.nii.gz
    model: 0 + group + age + tiv
    levels:
      group: [HC, MDD]
    contrasts:
      MDD < HC: HC - MDD
    inference:
      methods: [permutation]
      n_perm: 300
      tfce: true
      random_state: 5
    output: {output}
    """


@pytest.fixture(scope="module")
def cohort(tmp_path_factory):
    folder = tmp_path_factory.mktemp("scale")
    simulate_vbm_cohort(folder / "cohort", groups={"HC": 8, "MDD": 8}, resolution=3,
                        random_state=2)
    return folder


def _study(folder, output):
    path = folder / f"{output}.yaml"
    path.write_text(textwrap.dedent(STUDY.format(output=output)))
    return path


def test_dry_run_prints_the_plan_and_writes_nothing(cohort, capsys):
    path = _study(cohort, "dry")
    assert main(["--quiet", "run", str(path), "--dry-run"]) == 0
    text = capsys.readouterr().out
    _, grid = load_image_matrix(sorted((cohort / "cohort" / "mri").glob("*.nii.gz")),
                                progress=False)
    assert f"16 subjects x {grid.n_voxels:,} voxels" in text
    batch = default_batch_size(grid.n_voxels)
    assert f"300 relabellings in {-(-300 // batch)} batches of {batch} (max-T, cluster, TFCE)" in text
    assert "peak memory: one process" in text
    assert not (cohort / "dry").exists()  # nothing was computed or written
    plan = plan_study(load_study(path), executor="dask", n_workers=2)
    assert plan.n_workers == 2 and plan.worker_bytes > 0
    assert plan.worker_bytes == permutation_memory(16, grid.n_voxels, batch_size=batch,
                                                   spatial=True)
    assert "WARNING" not in text
    small = plan.driver_bytes  # a machine whose memory the plan would nearly fill
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(plan_module, "_machine_memory", lambda: small)
        assert "WARNING: more than 80% of this machine's" in plan.to_text()


def test_dry_run_plans_only_what_run_does(cohort, capsys):
    """Without ``methods: [permutation]`` a run does no permutations, and neither does the plan."""
    text = textwrap.dedent(STUDY.format(output="noperm"))
    path = cohort / "noperm.yaml"
    path.write_text(text.replace("  methods: [permutation]\n", ""))
    # the plan checks the settings as the run does: TFCE without permutations is refused
    assert main(["--quiet", "run", str(path), "--dry-run"]) == 2
    assert "tfce=True needs permutation" in capsys.readouterr().err
    path.write_text(text.replace("  methods: [permutation]\n", "").replace("  tfce: true\n", ""))
    assert main(["--quiet", "run", str(path), "--dry-run"]) == 0
    printed = capsys.readouterr().out
    assert "load + GLM" in printed and "relabellings" not in printed
    assert not any(s.name.startswith("permutations") for s in plan_study(load_study(path)).steps)
    assert any(s.name.startswith("permutations") for s in plan_study(
        load_study(_study(cohort, "withperm"))).steps)


def test_same_study_file_on_dask_gives_the_same_maps(cohort):
    pytest.importorskip("distributed")
    serial = _study(cohort, "serial")
    on_dask = _study(cohort, "dask")
    assert main(["--quiet", "run", str(serial)]) == 0
    assert main(["--quiet", "run", str(on_dask), "--dask-local", "2"]) == 0
    maps = sorted(p.name for p in (cohort / "serial").glob("*logp*.nii.gz"))
    assert any("tfce" in name for name in maps) and any("cluster" in name for name in maps)
    for name in maps:
        a = np.asarray(nib.load(cohort / "serial" / name).dataobj)
        b = np.asarray(nib.load(cohort / "dask" / name).dataobj)
        np.testing.assert_array_equal(b, a, err_msg=name)
        assert np.nanmax(a) > np.nanmin(a), name  # p-values that vary: a real null was used
    tables = sorted(p.name for p in (cohort / "serial").glob("*clusters.tsv"))
    assert tables
    for name in tables:
        pd.testing.assert_frame_equal(pd.read_csv(cohort / "dask" / name, sep="\t"),
                                      pd.read_csv(cohort / "serial" / name, sep="\t"))


def test_memory_estimate_matches_traced_peak(rng):
    """The plan's permutation memory is within a factor of 1.5 of what numpy really allocates."""
    shape = (30, 30, 20)
    grid = MaskedGrid(np.ones(shape, bool), np.eye(4))
    n, m = 40, grid.n_voxels
    X = np.column_stack([np.ones(n), rng.standard_normal(n), np.repeat([0.0, 1.0], n // 2)])
    Y = rng.standard_normal((n, m))
    for stats in ((), (TFCEStatistic(grid),)):
        tracemalloc.start()
        base = tracemalloc.get_traced_memory()[0]
        permutation_test(Y, X, [0, 0, 1], n_perm=64, statistics=stats, random_state=0,
                         progress=False)
        peak = tracemalloc.get_traced_memory()[1] - base
        tracemalloc.stop()
        estimate = permutation_memory(n, m, batch_size=64, spatial=bool(stats))
        assert peak / 1.5 < estimate < 1.5 * peak, (stats, peak, estimate)


def test_longitudinal_dry_run_is_refused_clearly(tmp_path, capsys):
    path = tmp_path / "b.yaml"
    pd.DataFrame({"participant_id": ["a", "b"]}).to_csv(tmp_path / "p.tsv", sep="\t", index=False)
    pd.DataFrame({"participant_id": ["a", "b"], "r1": [1.0, 2.0]}).to_csv(tmp_path / "pre.csv",
                                                                         index=False)
    path.write_text("type: longitudinal\nname: b\nparticipants: p.tsv\npre: pre.csv\n"
                    "post: pre.csv\noutput: out\n")
    assert main(["run", str(path), "--dry-run"]) == 2
    assert "plans cross-sectional" in capsys.readouterr().err


STREAMED = STUDY.replace("      tfce: true\n", "").replace("    output: {output}\n",
                                                         "    output: {output}\n    store: gm.zarr\n")


def _streamed(folder, output, text=STREAMED):
    path = folder / f"{output}.yaml"
    path.write_text(textwrap.dedent(text.format(output=output)))
    return path


def test_study_streamed_through_a_zarr_store_equals_the_in_memory_study(cohort, capsys):
    in_memory = _study(cohort, "memory")
    in_memory.write_text(in_memory.read_text().replace("  tfce: true\n", ""))
    assert main(["--quiet", "run", str(in_memory)]) == 0
    streamed = _streamed(cohort, "streamed")
    assert main(["--quiet", "run", str(streamed), "--dry-run"]) == 0
    assert "write gm.zarr" in capsys.readouterr().out and not (cohort / "gm.zarr").exists()
    assert main(["--quiet", "run", str(streamed)]) == 0
    assert (cohort / "gm.zarr").is_dir() and (cohort / "streamed" / "report.html").is_file()
    for stat in ("t", "p", "z", "estimate", "se", "cohens_d", "logpFDR", "logpFWEvoxelPerm"):
        name = f"contrast-MDDltHC_stat-{stat}.nii.gz"
        a = np.asarray(nib.load(cohort / "memory" / name).dataobj, dtype=np.float64)
        b = np.asarray(nib.load(cohort / "streamed" / name).dataobj, dtype=np.float64)
        np.testing.assert_allclose(b, a, rtol=1e-6, atol=1e-6, equal_nan=True, err_msg=stat)
    p_fwe = np.asarray(nib.load(cohort / "streamed" / "contrast-MDDltHC_stat-logpFWEvoxelPerm"
                                ".nii.gz").dataobj)
    assert np.nanmax(p_fwe) > np.nanmin(p_fwe)
    # Cluster-level permutation p needs whole images: absent from the streamed run's table.
    mem = pd.read_csv(cohort / "memory" / "contrast-MDDltHC_clusters.tsv", sep="\t")
    stream = pd.read_csv(cohort / "streamed" / "contrast-MDDltHC_clusters.tsv", sep="\t")
    assert "cluster_p_fwe_perm" in mem.columns and "cluster_p_fwe_perm" not in stream.columns
    shared = [c for c in stream.columns if c in mem.columns]
    pd.testing.assert_frame_equal(stream[shared], mem[shared], rtol=1e-6)
    # A second run reuses the store (not rewritten).
    before = (cohort / "gm.zarr" / "zarr.json").stat().st_mtime_ns
    assert main(["--quiet", "run", str(streamed)]) == 0
    assert (cohort / "gm.zarr" / "zarr.json").stat().st_mtime_ns == before
    # `graymatter glm --zarr` takes the same store (same subjects, images and mask): same t map.
    assert main(["--quiet", "glm", "--participants", str(cohort / "cohort" / "participants.tsv"),
                 "--images", str(cohort / "cohort" / "mri" / "*.nii.gz"),
                 "--model", "0 + group + age + tiv", "--level", "group=HC,MDD",
                 "--contrast", "MDD < HC=HC - MDD", "--zarr", str(cohort / "gm.zarr"),
                 "--out", str(cohort / "glm_cli")]) == 0
    assert (cohort / "gm.zarr" / "zarr.json").stat().st_mtime_ns == before
    name = "contrast-MDDltHC_stat-t.nii.gz"
    np.testing.assert_array_equal(np.asarray(nib.load(cohort / "glm_cli" / name).dataobj),
                                  np.asarray(nib.load(cohort / "streamed" / name).dataobj))


def test_store_that_no_longer_matches_is_refused(cohort, tmp_path, capsys):
    import shutil

    work = tmp_path / "study"
    shutil.copytree(cohort / "cohort", work / "cohort")
    path = _streamed(work, "out")
    assert main(["--quiet", "run", str(path)]) == 0
    image = sorted((work / "cohort" / "mri").glob("*.nii.gz"))[3]
    image.write_bytes(image.read_bytes())  # same content, rewritten: a new modification time
    assert main(["--quiet", "run", str(path)]) == 2
    err = capsys.readouterr().err
    assert "is not the file the zarr store" in err and "delete" in err
    table = pd.read_csv(work / "cohort" / "participants.tsv", sep="\t")
    table.iloc[:-1].to_csv(work / "cohort" / "participants.tsv", sep="\t", index=False)
    assert main(["--quiet", "run", str(path)]) == 2
    assert "holds 16 subjects, the study 15" in capsys.readouterr().err
    tfce = _streamed(work, "tfce", STREAMED.replace("      random_state: 5\n",
                                                    "      random_state: 5\n      tfce: true\n"))
    assert main(["--quiet", "run", str(tfce), "--dry-run"]) == 2
    assert "TFCE needs whole permuted images" in capsys.readouterr().err
