"""``graymatter run STUDY --dry-run``: the task plan of a study and the memory it needs, unrun.

:func:`plan_study` reads only the participants table, the study file and one image header (or,
before preprocessing, the output grid), so it answers in seconds for any number of subjects: how
many tasks each step hands to the executor, and the peak memory of the driver and of each worker.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field

import nibabel as nib
import numpy as np

from ..config import StudySpec
from ..datasets.templates import mask_to_grid, mni_grid
from ..io.images import find_images
from ..io.participants import read_participants
from ..stats.permutation import default_batch_size, permutation_memory

__all__ = ["PlannedStep", "StudyPlan", "plan_study"]

# Peak RSS of one subject's ANTs preprocessing at 1.5 mm, 2 threads (measured on the IXI T1s,
# docs/performance.md); it depends on the native T1 more than on the output grid.
PREPROCESS_BYTES = int(1.21e9)
# The GLM engine's working memory relative to the data it holds (measured: 1.18).
GLM_OVERHEAD = 1.2


@dataclass(frozen=True)
class PlannedStep:
    """One step of the plan.

    Attributes
    ----------
    name : str
    tasks : int
        Independent tasks handed to the executor (1: runs in the driver).
    detail : str
    driver_bytes, worker_bytes : int
        Peak memory of the driver process and of each worker while the step runs.
    """

    name: str
    tasks: int
    detail: str
    driver_bytes: int
    worker_bytes: int = 0


@dataclass
class StudyPlan:
    """What ``graymatter run`` would do; :meth:`to_text` is what ``--dry-run`` prints."""

    study: str
    n_subjects: int
    n_features: int
    features: str
    executor: str
    n_workers: int
    steps: list[PlannedStep] = field(default_factory=list)

    @property
    def driver_bytes(self) -> int:
        """Peak memory of the driver over all steps."""
        return max((s.driver_bytes for s in self.steps), default=0)

    @property
    def worker_bytes(self) -> int:
        """Peak memory of each worker over all steps."""
        return max((s.worker_bytes for s in self.steps), default=0)

    def to_text(self) -> str:
        """The plan as a table with the memory totals."""
        lines = [f"study '{self.study}': {self.n_subjects} subjects x {self.n_features:,} "
                 f"{self.features}; executor {self.executor} ({self.n_workers} worker(s))", "",
                 f"{'step':<28} {'tasks':>6} {'driver':>9} {'per worker':>10}  detail"]
        for s in self.steps:
            lines.append(f"{s.name:<28} {s.tasks:>6} {_gb(s.driver_bytes):>9} "
                         f"{_gb(s.worker_bytes):>10}  {s.detail}")
        if self.executor == "serial":  # tasks run in the driver, one after the other
            where = f"one process, {_gb(max(s.driver_bytes + s.worker_bytes for s in self.steps))}"
        else:
            total = self.driver_bytes + self.n_workers * self.worker_bytes
            where = (f"driver {_gb(self.driver_bytes)}, each worker {_gb(self.worker_bytes)}; "
                     f"at most {_gb(total)} with the driver and {self.n_workers} workers on "
                     "one host")
        lines += ["", f"peak memory: {where}",
                  "estimates: data and working arrays; Python and library overhead (~0.3 GB "
                  "per process) come on top."]
        ram = _machine_memory()
        if ram and max(s.driver_bytes + s.worker_bytes for s in self.steps) > 0.8 * ram:
            lines.append(f"WARNING: more than 80% of this machine's {_gb(ram)}: use dtype: float32, "
                         "fewer voxels (a coarser grid or a tighter mask), workers on other "
                         "hosts (--scheduler), or voxel-wise max-T streamed from a zarr store "
                         "('store:' in the study file; docs/scaling.md).")
        return "\n".join(lines)


def _machine_memory() -> int:
    """Physical memory of this machine in bytes (0 when the OS does not say)."""
    try:
        return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):
        return 0


def _gb(n: int) -> str:
    return "-" if not n else f"{n / 1e9:.2f} GB"


def _voxel_count(spec: StudySpec, subject_ids) -> tuple[int, str]:
    """Mask voxels on the data grid, and where the grid came from."""
    if spec.preprocess:
        shape, affine = mni_grid(spec.preprocess.get("resolution", 1.5))
        source = f"MNI {spec.preprocess.get('resolution', 1.5)} mm grid after preprocessing"
    else:
        paths = find_images(subject_ids, spec.images)
        first = nib.load(paths[subject_ids[0]])
        shape, affine = first.shape[:3], first.affine
        source = f"grid of {paths[subject_ids[0]].name}"
    mask = mask_to_grid(spec.mask, shape, np.asarray(affine))
    return int(mask.sum()), source


def plan_study(spec: StudySpec, *, executor: str = "serial", n_workers: int = 1) -> StudyPlan:
    """The task plan and memory estimate of a (cross-sectional) study file, without running it.

    Parameters
    ----------
    spec : StudySpec
        From :func:`graymatter.config.load_study`.
    executor : {"serial", "joblib", "dask"}, default="serial"
        Where tasks would run. Permutation batches run as threads of the driver (serial, joblib)
        or as tasks on dask workers, each of which then holds a copy of the prepared data.
    n_workers : int, default=1

    Returns
    -------
    StudyPlan

    Examples
    --------
    >>> plan = plan_study(load_study("study.yaml"), executor="dask", n_workers=2)  # doctest: +SKIP
    >>> print(plan.to_text())  # doctest: +SKIP
    """
    participants = read_participants(spec.participants, id_column=spec.id_column)
    ids = [str(i) for i in participants.index]
    n = len(ids)
    steps = []
    if spec.preprocess:
        steps.append(PlannedStep("preprocess (ANTs)", n, "one task per subject; finished "
                                 "subjects are skipped on a rerun", 0, PREPROCESS_BYTES))
    if spec.regions is not None:
        m, features, grid_note = len(_region_columns(spec)), "regions", "region table"
    else:
        (m, grid_note), features = _voxel_count(spec, ids), "voxels"
    from .study import study_inference

    settings = study_inference(spec)  # the settings `run` uses: plan only what it will do
    methods = settings.methods
    if spec.store is not None:
        steps += _streamed_steps(spec, n, m, grid_note, methods, settings)
        return StudyPlan(spec.name, n, m, features, executor,
                         n_workers if executor != "serial" else 1, steps)
    itemsize = np.dtype(spec.dtype).itemsize
    data = n * m * itemsize
    steps.append(PlannedStep("load + GLM", 1, f"{n} x {m:,} {spec.dtype} ({grid_note})",
                             int(data * GLM_OVERHEAD)))
    if "permutation" in methods:
        n_perm = int(settings.n_perm)
        spatial = features == "voxels"
        batch = min(default_batch_size(m), n_perm)
        batches = math.ceil(n_perm / batch)
        engine = permutation_memory(n, m, batch_size=batch, spatial=spatial)
        stats = ("max-T" + (", cluster" if spatial else "")
                 + (", TFCE" if settings.tfce else ""))
        distributed = executor == "dask"
        for name in spec.contrasts:
            steps.append(PlannedStep(
                f"permutations: {name}"[:28], batches,
                f"{n_perm} relabellings in {batches} batches of {batch} ({stats})",
                data + (2 * engine if distributed else engine),  # dask: the engine is pickled once
                engine if distributed else 0))
    return StudyPlan(spec.name, n, m, features, executor, n_workers if executor != "serial" else 1,
                     steps)


def _streamed_steps(spec: StudySpec, n: int, m: int, grid_note: str, methods, settings) -> list:
    """Steps of a study whose subjects x voxels go through a zarr store (``store:``)."""
    from ..io.zarr_store import default_chunk_voxels
    from ..stats.streaming import default_block_voxels, streamed_memory
    from .streamed import check_streamable

    check_streamable(settings)
    itemsize = np.dtype(spec.dtype).itemsize
    exists = spec.store.exists()
    if exists:
        from ..io.zarr_store import open_matrix_zarr

        chunk = int(open_matrix_zarr(spec.store)[0].chunks[1])
    else:
        chunk = default_chunk_voxels(n)
    block = min(default_block_voxels(n, chunk), m)
    blocks = math.ceil(m / block)
    steps = [PlannedStep("zarr store", 1,
                         f"{'reuse' if exists else 'write'} {spec.store.name}: {n} x {m:,} "
                         f"{spec.dtype}, {n * m * itemsize / 1e9:.1f} GB on disk ({grid_note})",
                         0 if exists else 64 * m * itemsize),
             PlannedStep("GLM (streamed)", blocks, f"{blocks} voxel blocks of {block:,}",
                         8 * 10 * m * len(spec.contrasts), streamed_memory(n, block))]
    if "permutation" in methods:
        n_perm = int(settings.n_perm)
        for name in spec.contrasts:
            steps.append(PlannedStep(
                f"max-T: {name}"[:28], blocks,
                f"{n_perm} relabellings x {blocks} voxel blocks (voxel-wise max-T)",
                8 * m, streamed_memory(n, block, n_perm)))
    return steps


def _region_columns(spec: StudySpec) -> list[str]:
    from ..io.regions import read_regions
    from .longitudinal import select_columns

    table = read_regions(spec.regions, id_column=spec.id_column)
    return list(select_columns(table, spec.columns).columns) if spec.columns else list(table.columns)
