"""``graymatter run ect.yaml`` for ``type: longitudinal`` study files (Study B) end to end.

The chain, each step writing into its own folder under the study's ``output``:

1. ``paired/``: regional paired change post vs pre with covariates (e.g. ΔTIV), max-T FWE and
   FDR (:func:`~graymatter.workflows.longitudinal.run_longitudinal`); the t column is the map.
2. ``clinical_pls/``: PLS of clinical change on regional change (ΔGMV -> ΔHAMD).
3. ``transcriptomics/``: gene PLS of expression onto the t-map, spins, bootstrap Z, PLS1+/PLS1-.
4. ``enrichment/``: per gene-set collection, GSEA of the PLS1 ranking, ORA of the PLS1+ and
   PLS1- lists against the measured genes, and category scores with a classic and a spatial
   (spin ensemble, Fulcher et al. 2021) null.

``study_b.json`` at the top records the parameters, inputs (SHA-256), datasets, software versions,
the headline numbers and the run time.
"""

from __future__ import annotations

import logging
import os
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ..config import LongitudinalSpec, StudyFileError, load_longitudinal_study
from ..errors import DesignError, GraymatterWarning
from ..io.atomic import write_json, write_tsv
from ..io.outputs import output_folder
from ..io.participants import read_participants
from ..io.provenance import input_record, provenance_record
from ..stats.paired import PairedResult
from ..stats.pls import ClinicalPLSResult
from ..transcriptomics.gene_pls import GenePLSResult

__all__ = ["StudyBOutputs", "run_study_b"]

logger = logging.getLogger("graymatter")

#: The run's summary, written last: its presence means the run finished.
SIDECAR = "study_b.json"
#: Spin indices cached inside the output folder (kept across runs).
SPIN_CACHE = "transcriptomics/spins"


@dataclass
class StudyBOutputs:
    """What :func:`run_study_b` produced.

    Attributes
    ----------
    spec : LongitudinalSpec
    paired : PairedResult
        ``paired.table`` has one row per region (t, p, p_fwe, p_fdr, cohens_dz ...).
    clinical : ClinicalPLSResult or None
    transcriptomics : GenePLSResult or None
    enrichment : dict of str to pandas.DataFrame
        ``"<sets>/gsea"``, ``"<sets>/ora_pls1_positive"``, ``"<sets>/ora_pls1_negative"``,
        ``"<sets>/spatial"`` tables (those computed).
    out_dir : pathlib.Path
    seconds : float
    """

    spec: LongitudinalSpec
    paired: PairedResult
    clinical: ClinicalPLSResult | None
    transcriptomics: GenePLSResult | None
    enrichment: dict = field(default_factory=dict)
    out_dir: Path = Path(".")
    seconds: float = 0.0


def _participants(spec: LongitudinalSpec) -> pd.DataFrame:
    table = read_participants(spec.participants, id_column=spec.id_column)
    if spec.tiv:
        for key in ("pre", "post"):
            if spec.tiv[key] not in table.columns:
                raise StudyFileError(f"{spec.where('tiv', key)}: participants has no column "
                                     f"{spec.tiv[key]!r} (columns: {', '.join(table.columns)}).")
        pre = pd.to_numeric(table[spec.tiv["pre"]], errors="coerce")
        post = pd.to_numeric(table[spec.tiv["post"]], errors="coerce")
        table["delta_tiv"] = post - pre
    return table


def _regions(spec: LongitudinalSpec, out: Path):
    """Pre and post tables (paths) and the column patterns, building them from FreeSurfer."""
    if spec.freesurfer is None:
        return spec.pre, spec.post, spec.columns
    from .longitudinal import freesurfer_table

    fs = spec.freesurfer
    table = out / "freesurfer" / "regions.tsv"
    freesurfer_table(fs["subjects_dir"], out=table, annot=fs.get("annot", "aparc"),
                     measure=fs.get("measure", "GrayVol"), subjects=fs.get("subjects"))
    return table, table, spec.columns or ["lh_*", "rh_*"]


def _spins(spec: LongitudinalSpec, t_map: pd.Series, expression_index, cache: Path):
    """Spin indices over the regions of the gene PLS, in its order (same seed, same cache)."""
    from ..transcriptomics.nulls import spin_permutations
    from .transcriptomics import centroid_frames

    tx = spec.transcriptomics
    frames = centroid_frames(tx.get("centroids"), tx.get("centroid_names"), tx.get("annot_lh"),
                              tx.get("sphere_lh"), tx.get("annot_rh"), tx.get("sphere_rh"),
                              pd.DataFrame(index=expression_index))
    if not frames or int(tx.get("n_spins", 1000)) == 0:
        return None
    regions = [n.casefold() for n in t_map.index]
    blocks = [f.loc[[n for n in f.index if n.casefold() in set(regions)]] for f in frames]
    blocks = [b for b in blocks if len(b)]
    spin_seed = np.random.SeedSequence(spec.random_state).spawn(2)[0]
    idx = spin_permutations(*[b[["x", "y", "z"]].to_numpy(np.float64) for b in blocks],
                            n_rotations=int(tx.get("n_spins", 1000)),
                            method=tx.get("spin_method", "alexander-bloch"),
                            random_state=np.random.default_rng(spin_seed), cache_dir=cache)
    order = [n for b in blocks for n in b.index]
    return pd.Index(order), idx


def _read_sets(entry: dict):
    from ..transcriptomics.genesets import read_gene_table, read_gmt

    return read_gene_table(entry["path"]) if entry["format"] == "table" else read_gmt(entry["path"])


def _enrichment(spec: LongitudinalSpec, genes: GenePLSResult, t_map: pd.Series, expression,
                out: Path, spins) -> tuple[dict, dict]:
    from ..transcriptomics.gsea import gsea_prerank
    from ..transcriptomics.ora import ora
    from ..transcriptomics.spatial_enrichment import spatial_enrichment

    cfg = spec.enrichment
    ranking_col = "weight" if cfg.get("ranking", "weight") == "weight" else "z"
    table = genes.gene_table.dropna(subset=[ranking_col])
    ranking = pd.Series(table[ranking_col].to_numpy(np.float64), index=table["gene"].to_numpy())
    n_perm = int(cfg.get("n_perm", 10000))
    seeds = iter(np.random.SeedSequence([spec.random_state, 1]).spawn(2 * len(cfg["gene_sets"])))
    tables, summary = {}, {}
    for entry in cfg["gene_sets"]:
        sets, name = _read_sets(entry), entry["name"]
        folder = out / name
        sizes = dict(min_size=entry["min_size"], max_size=entry["max_size"])
        info: dict = {"source": str(entry["path"]), "methods": entry["methods"], **sizes}
        gsea_seed, classic_seed = next(seeds), next(seeds)
        if "gsea" in entry["methods"]:
            res = gsea_prerank(ranking, sets, weight=float(cfg.get("weight", 1.0)), n_perm=n_perm,
                               random_state=np.random.default_rng(gsea_seed), **sizes)
            tables[f"{name}/gsea"] = res.table
            write_tsv(folder / "gsea.tsv", res.table)
            info["gsea_top"] = str(res.table.index[0])
        if "ora" in entry["methods"]:
            for label, genes_list in (("pls1_positive", genes.pls1_positive),
                                      ("pls1_negative", genes.pls1_negative)):
                if not genes_list:
                    info[f"ora_{label}"] = "empty list: skipped"
                    continue
                res = ora(genes_list, sets, background=list(genes.gene_table["gene"]), **sizes)
                tables[f"{name}/ora_{label}"] = res
                write_tsv(folder / f"ora_{label}.tsv", res, index=False)
        if "spatial" in entry["methods"]:
            if spins is None:
                info["spatial"] = "skipped: no centroids / n_spins = 0"
            else:
                order, idx = spins
                bmap = t_map.copy()
                bmap.index = [str(n) for n in bmap.index]
                fold = {n.casefold(): n for n in bmap.index}
                bmap = bmap[[fold[n.casefold()] for n in order]]
                expr = expression.copy()
                expr.index = bmap.index  # already matched, same order
                res = spatial_enrichment(expr, bmap, sets, nulls=idx, n_perm_classic=n_perm,
                                         random_state=np.random.default_rng(classic_seed), **sizes)
                tables[f"{name}/spatial"] = res
                write_tsv(folder / "spatial.tsv", res)
        summary[name] = info
    return tables, summary


def run_study_b(study: str | os.PathLike | LongitudinalSpec, *, progress: bool = True,
                executor=None) -> StudyBOutputs:
    """Run a longitudinal (Study B) study file end to end.

    Parameters
    ----------
    study : path or LongitudinalSpec
        A ``type: longitudinal`` YAML study file (see
        :func:`graymatter.config.load_longitudinal_study`) or a loaded spec.
    progress : bool, default=True
        Show progress bars.
    executor : Executor, optional
        Where the sign-flip, PLS permutation, spin and bootstrap batches run (e.g. a dask
        cluster from :func:`graymatter.parallel.get_executor`); the results agree with a serial
        run (to rounding for the PLS steps). GSEA and the spatial enrichment null run here.

    Returns
    -------
    StudyBOutputs

    Raises
    ------
    StudyFileError
        A problem in the study file (file, line and key named).
    InputError
        A problem in the data files.

    Examples
    --------
    >>> out = run_study_b("ect.yaml")  # doctest: +SKIP
    >>> out.paired.table.sort_values("t").tail(3)  # doctest: +SKIP
    """
    spec = study if isinstance(study, LongitudinalSpec) else load_longitudinal_study(study)
    # Checked before any work; the spin cache keeps its own bookkeeping (see io.outputs).
    with output_folder(spec.output, final=(SIDECAR,), exclude=(SPIN_CACHE,)):
        return _run_study_b(spec, progress, executor)


def _run_study_b(spec: LongitudinalSpec, progress: bool, executor) -> StudyBOutputs:
    """:func:`run_study_b` inside its output folder."""
    from .longitudinal import run_longitudinal, run_pls_clinical
    from .transcriptomics import run_transcriptomics

    started = time.perf_counter()
    out = Path(spec.output)
    participants = _participants(spec)
    pre, post, columns = _regions(spec, out)
    common = dict(id_column=spec.id_column, session_pre=spec.session_pre,
                  session_post=spec.session_post, columns=columns)
    logger.info("Study B '%s': paired regional change", spec.name)
    for key in ("clinical_pre", "clinical_post"):  # fail before any work, at the file's line
        column = (spec.clinical_pls or {}).get(key)
        if column is not None and column not in participants.columns:
            raise StudyFileError(f"{spec.where('clinical_pls', key)}: participants has no column "
                                 f"{column!r} (columns: {', '.join(participants.columns)}).")
    try:
        paired = run_longitudinal(participants, pre=pre, post=post, out_dir=out / "paired",
                                  covariates_formula=spec.covariates, n_perm=spec.n_perm,
                                  two_sided=spec.two_sided, random_state=spec.random_state,
                                  n_jobs=spec.n_jobs, progress=progress, executor=executor,
                                  **common)
    except DesignError as err:  # the covariates formula
        raise StudyFileError(f"{spec.where('covariates')}: {err}") from None
    t_map = paired.table["t"].astype(np.float64)
    write_tsv(out / "t_map.tsv", pd.DataFrame({"t": t_map}).rename_axis("region"))
    summary: dict = {"paired": {"n_regions": int(len(t_map)),
                                "n_fdr_05": int((paired.table["p_fdr"] < 0.05).sum()),
                                "n_fwe_05": int((paired.table["p_fwe"] < 0.05).sum())
                                if "p_fwe" in paired.table else None}}

    clinical = None
    if spec.clinical_pls:
        cfg = spec.clinical_pls
        logger.info("Study B: clinical PLS (%s -> %s)", "regional change", cfg["clinical_post"])
        clinical = run_pls_clinical(participants, pre=pre, post=post,
                                    clinical_pre=cfg["clinical_pre"],
                                    clinical_post=cfg["clinical_post"],
                                    out_dir=out / "clinical_pls",
                                    n_components=cfg.get("n_components", 1),
                                    n_perm=cfg.get("n_perm", 1000), n_boot=cfg.get("n_boot", 1000),
                                    cv=cfg.get("cv", "loo"), random_state=spec.random_state,
                                    executor=executor, **common)
        summary["clinical_pls"] = {"r": clinical.r, "p_perm": clinical.p_perm,
                                   "cv_r": clinical.cv_r,
                                   "variance_explained": clinical.variance_explained.tolist()}

    genes, tables = None, {}
    if spec.transcriptomics:
        tx = spec.transcriptomics
        hemisphere = tx.get("hemisphere", "lh")
        logger.info("Study B: gene PLS of expression onto the t-map")
        genes = run_transcriptomics(
            t_map, tx["expression"], out_dir=out / "transcriptomics",
            centroids=tx.get("centroids"), centroid_names=tx.get("centroid_names"),
            annot_lh=tx.get("annot_lh"), sphere_lh=tx.get("sphere_lh"),
            annot_rh=tx.get("annot_rh"), sphere_rh=tx.get("sphere_rh"),
            hemisphere=None if hemisphere == "both" else hemisphere,
            n_components=tx.get("n_components", 3), n_spins=tx.get("n_spins", 1000),
            spin_method=tx.get("spin_method", "alexander-bloch"), n_boot=tx.get("n_boot", 1000),
            bootstrap=tx.get("bootstrap", "regions"), n_blocks=tx.get("n_blocks", 10),
            fdr_alpha=tx.get("fdr_alpha", 0.05), random_state=spec.random_state,
            spin_cache=out / SPIN_CACHE, executor=executor)
        summary["transcriptomics"] = genes.to_dict()
        if spec.enrichment:
            from ..transcriptomics.expression import match_regions
            from .transcriptomics import load_expression

            with warnings.catch_warnings():  # run_transcriptomics already warned about these
                warnings.simplefilter("ignore", GraymatterWarning)
                expr, _ = load_expression(str(tx["expression"]), "drop")
            y, X, _ = match_regions(t_map, expr, hemisphere=None if hemisphere == "both"
                                    else hemisphere)
            regions = list(genes.scores.index)
            kept = set(genes.gene_table["gene"])
            X = X.loc[regions, [g for g in X.columns if g in kept]]
            spins = _spins(spec, y.loc[regions], X.index, out / SPIN_CACHE)
            if spins is not None:
                X = X.loc[list(spins[0])]
            logger.info("Study B: enrichment")
            tables, summary["enrichment"] = _enrichment(spec, genes, y.loc[list(X.index)], X,
                                                        out / "enrichment", spins)

    seconds = time.perf_counter() - started
    inputs = {"study_file": input_record(spec.source), "participants":
              input_record(spec.participants)}
    for key in ("pre", "post"):
        if getattr(spec, key) is not None:
            inputs[key] = input_record(getattr(spec, key))
    record = {**provenance_record(
                  step="study_b", inputs=inputs, random_state=spec.random_state,
                  parameters={"covariates": spec.covariates, "n_perm": spec.n_perm,
                              "two_sided": spec.two_sided, "tiv": spec.tiv,
                              "columns": spec.columns, "freesurfer": None if spec.freesurfer is None
                              else {k: str(v) for k, v in spec.freesurfer.items()},
                              "clinical_pls": spec.clinical_pls,
                              "transcriptomics": None if spec.transcriptomics is None else
                              {k: str(v) if isinstance(v, Path) else v
                               for k, v in spec.transcriptomics.items()},
                              "enrichment": None if spec.enrichment is None else
                              {**spec.enrichment, "gene_sets": [
                                  {**e, "path": str(e["path"])}
                                  for e in spec.enrichment["gene_sets"]]}}),
              "analysis": "study_b (longitudinal)", "name": spec.name,
              "datasets": spec.datasets, "results": summary, "run_time_s": round(seconds, 3)}
    write_json(out / SIDECAR, record)
    logger.info("Study B '%s' done in %.0f s: results in %s", spec.name, seconds, out)
    outputs = StudyBOutputs(spec=spec, paired=paired, clinical=clinical, transcriptomics=genes,
                            enrichment=tables, out_dir=out, seconds=seconds)
    from ..report.html_study_b import write_study_b_report  # matplotlib/nilearn only when needed

    write_study_b_report(outputs)
    return outputs
