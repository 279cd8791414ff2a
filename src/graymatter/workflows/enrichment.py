"""Gene-set enrichment of a brain map end to end: GSEA, ORA of gene lists, spatial-null enrichment.

``run_enrichment`` reads a regional map and an AHBA expression matrix (as
:func:`~graymatter.workflows.transcriptomics.run_transcriptomics` does), ranks genes by their PLS1
weight for the map, and runs three analyses on one set collection (a registry name such as
``"celltypes-seidlitz2020"`` or ``"go-bp-2021"``, a GMT file, or a gene,set CSV):

* GSEA prerank on the PLS1 weights (gene-permutation null, NES, FDR q);
* ORA of each gene list (e.g. PLS1+ / PLS1- from ``run_transcriptomics``) against the measured
  genes, with Metascape-like redundancy reduction of the significant terms;
* category-score enrichment with a classic (random gene sets) and a spatial (spun maps) null
  side by side (Fulcher et al. 2021).

Tables (TSV), a bubble plot (PNG + SVG) and a JSON sidecar with provenance are written
atomically.
"""

from __future__ import annotations

import logging
import os
import re
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from graymatter.datasets.fetchers import dataset_record, resource
from graymatter.datasets.registry import REGISTRY
from graymatter.errors import GraymatterWarning, InputError, format_choices
from graymatter.io.atomic import write_json, write_tsv
from graymatter.io.outputs import owns_output_folder
from graymatter.io.provenance import input_record, provenance_record
from graymatter.transcriptomics.expression import match_regions
from graymatter.transcriptomics.genesets import GeneSets, read_gene_table, read_gmt
from graymatter.transcriptomics.gsea import GSEAResult, gsea_prerank
from graymatter.transcriptomics.ora import ora, reduce_redundancy
from graymatter.transcriptomics.spatial_enrichment import gene_scores, spatial_enrichment
from graymatter.workflows.transcriptomics import (DEFAULT_HEMISPHERE, MatchedInputs,
                                                  centroid_frames, hemisphere_arg,
                                                  load_expression, order_and_spin,
                                                  read_brain_map)

__all__ = ["EnrichmentOutputs", "run_enrichment", "load_gene_sets", "read_gene_lists"]

logger = logging.getLogger("graymatter")

_SPIN_METHODS = ("alexander-bloch", "vasa", "hungarian")
#: The analyses run_enrichment can run (all by default).
METHODS = ("gsea", "ora", "spatial")
#: Largest set size (measured genes) when none is given: cell-type tables (gene,set CSV/TSV,
#: e.g. the Seidlitz classes of ~100-1,100 AHBA genes) vs GMT collections of smaller terms.
MAX_SIZE_TABLE, MAX_SIZE_GMT = 2000, 500


def default_max_size(gene_sets) -> int:
    """``max_size`` when none is given: 2000 for gene,set tables, 500 for GMT files and others.

    Examples
    --------
    >>> default_max_size("sets.gmt"), default_max_size("cells.csv")
    (500, 2000)
    """
    source = gene_sets
    if isinstance(source, str) and source in REGISTRY:
        source = REGISTRY[source].filename
    if isinstance(source, (str, Path)):
        table = Path(source).suffix.lower() in (".csv", ".tsv", ".txt")
        return MAX_SIZE_TABLE if table else MAX_SIZE_GMT
    return MAX_SIZE_GMT


@dataclass(frozen=True, eq=False)
class EnrichmentOutputs:
    """What :func:`run_enrichment` computed and wrote.

    Attributes
    ----------
    ranking : (n_genes,) pandas.Series
        PLS1 weight of each measured gene (upper-cased symbols), the GSEA ranking and the ORA
        background.
    regions : list of str
        Matched regions, in the order of the rows of ``nulls``.
    gsea : GSEAResult or None
        None when ``"gsea"`` is not among the methods.
    ora : dict of str to pandas.DataFrame
        Gene-list name -> ORA table with ``cluster`` and ``representative`` columns; lists
        with no measured gene are absent (see ``summary["ora_skipped"]``).
    spatial : pandas.DataFrame or None
        :func:`spatial_enrichment` table (``p_classic`` and ``p_spatial``); None without
        centroids or with ``n_spins=0``.
    nulls : (n_regions, n_spins) int ndarray or None
        Spin indices of the matched regions.
    files : dict of str to pathlib.Path
    summary : dict
        The JSON sidecar's content.
    """

    ranking: pd.Series
    regions: list
    gsea: GSEAResult | None
    ora: dict
    spatial: pd.DataFrame | None
    nulls: np.ndarray | None
    files: dict = field(default_factory=dict)
    summary: dict = field(default_factory=dict)


def load_gene_sets(source) -> tuple[GeneSets, dict]:
    """Gene sets from a registry name, a GMT file, a gene,set CSV/TSV, a GeneSets or a dict.

    Parameters
    ----------
    source : str, os.PathLike, GeneSets or mapping of str to list of str
        A registered dataset (e.g. ``"celltypes-seidlitz2020"``, ``"go-bp-2021"``; fetch it
        first with ``graymatter fetch NAME``), a ``.gmt`` file, or a CSV/TSV with one
        (gene, set) pair per row.

    Returns
    -------
    sets : GeneSets
    record : dict
        Provenance (registry entry or file hash).

    Raises
    ------
    InputError
        Unknown name (registered names are suggested), unreadable file.

    Examples
    --------
    >>> cells, info = load_gene_sets("celltypes-seidlitz2020")  # doctest: +SKIP
    """
    if isinstance(source, GeneSets):
        return source, {"source": "GeneSets", "label": source.source}
    if isinstance(source, Mapping):
        return GeneSets(dict(source), {}, "dict"), {"source": "dict"}
    if isinstance(source, str) and source in REGISTRY:
        path, info = dataset_record(source)  # sha256 verified and recorded
    else:
        path = Path(source)
        if not path.is_file():
            if isinstance(source, str) and "/" not in source and "." not in source:
                resource(source)  # raises InputError naming the registered datasets
            raise InputError(f"gene_sets file '{path}' does not exist; pass a registered name "
                             f"(see `graymatter fetch --list`), a .gmt file or a gene,set CSV")
        info = {"source": "file", **input_record(path)}
    sets = read_gmt(path) if path.suffix.lower() == ".gmt" else read_gene_table(path)
    return sets, info


def read_gene_lists(gene_lists) -> tuple[dict[str, list[str]], dict]:
    """Gene lists by name from lists, one-gene-per-line files, or a run_transcriptomics folder.

    Parameters
    ----------
    gene_lists : None, path or mapping of str to (list of str or path)
        A mapping name -> genes or name -> file (one gene per line, ``#`` comments ignored), or
        the output folder of ``run_transcriptomics`` (its ``pls1_positive.txt`` and
        ``pls1_negative.txt`` become lists ``pls1_positive`` and ``pls1_negative``).

    Returns
    -------
    lists : dict of str to list of str
    records : dict of str to dict
        Provenance of the lists read from files.

    Examples
    --------
    >>> read_gene_lists({"up": ["GFAP", "AQP4"]})[0]
    {'up': ['GFAP', 'AQP4']}
    """
    if gene_lists is None:
        return {}, {}
    if isinstance(gene_lists, (str, Path)):
        folder = Path(gene_lists)
        files = {n: folder / f"{n}.txt" for n in ("pls1_positive", "pls1_negative")}
        if not folder.is_dir() or not all(f.is_file() for f in files.values()):
            raise InputError(f"gene_lists='{folder}' is not a run_transcriptomics output folder "
                             f"(with pls1_positive.txt and pls1_negative.txt); pass a dict "
                             f"name -> genes or name -> file instead")
        gene_lists = files
    if not isinstance(gene_lists, Mapping):
        raise InputError(f"gene_lists must be a dict name -> genes (or -> file) or a "
                         f"run_transcriptomics folder; got {type(gene_lists).__name__}")
    lists, records = {}, {}
    for name, value in gene_lists.items():
        if isinstance(value, (str, Path)):
            path = Path(value)
            if not path.is_file():
                raise InputError(f"gene list '{name}': file '{path}' does not exist (expected "
                                 f"one gene symbol per line)")
            lines = [ln.split("#")[0].strip() for ln in path.read_text().splitlines()]
            lists[str(name)] = [ln for ln in lines if ln]
            records[str(name)] = input_record(path)
        else:
            try:
                lists[str(name)] = [str(g) for g in value]
            except TypeError:
                raise InputError(f"gene list '{name}' must be a list of gene symbols or a file; "
                                 f"got {type(value).__name__}") from None
    return lists, records


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name.replace("+", "pos")).strip("_") or "list"


def _given_ranking(ranking, column, brain_map, expression, surfaces):
    """A pre-ranked gene list, validated, with its input record."""
    from graymatter.transcriptomics.gsea import check_ranking
    from graymatter.transcriptomics.ranking import read_ranking

    if brain_map is not None or expression is not None:
        raise InputError("give either a pre-ranked gene list (ranking=, --ranking) or a brain map "
                         "and an expression matrix, not both: the ranking replaces the map's "
                         "PLS1 weights")
    if any(s is not None for s in surfaces):
        raise InputError("centroids/annotations are for the spatial null of a brain map; a "
                         "pre-ranked gene list has no map to spin: remove them")
    if isinstance(ranking, pd.Series):
        return check_ranking(ranking), {"ranking": {"source": "Series", "n_genes": len(ranking)}}
    return (read_ranking(ranking, score_column=column),
            {"ranking": {**input_record(ranking), "score_column": column}})


@owns_output_folder(("enrichment.json",), caches=("spin_cache",))
def run_enrichment(brain_map, expression, gene_sets, *, out_dir, centroids=None,
                   centroid_names=None, annot_lh=None, sphere_lh=None, annot_rh=None,
                   sphere_rh=None, hemisphere: str | None = DEFAULT_HEMISPHERE,
                   region_column: str | None = None, map_column: str | None = None,
                   gene_lists=None, n_perm: int = 10000, n_spins: int = 1000,
                   spin_method: str = "alexander-bloch", min_size: int = 5,
                   max_size: int | None = None, redundancy: str | None = "kappa",
                   redundancy_threshold: float = 0.3, top: int = 15, random_state=0,
                   spin_cache=None, duplicate_genes: str = "drop", methods=METHODS,
                   weight: float = 1.0, ranking="pls1_weight",
                   ranking_column: str | None = None,
                   matched: MatchedInputs | None = None) -> EnrichmentOutputs:
    """GSEA, ORA and spatially constrained enrichment of a brain map's gene ranking.

    Parameters
    ----------
    brain_map : str, os.PathLike or (n_regions,) pandas.Series
        Regional map table (see :func:`~graymatter.workflows.transcriptomics.read_brain_map`).
    expression : str, os.PathLike or (n_regions, n_genes) pandas.DataFrame
        Expression file, DataFrame, or registry name (e.g. ``"ahba-dk83"``).
    gene_sets : str, os.PathLike, GeneSets or mapping
        Registry name (``"celltypes-seidlitz2020"``, ``"go-bp-2021"``, ``"genesets-lake"``...),
        GMT file, or gene,set CSV (see :func:`load_gene_sets`).
    out_dir : str or os.PathLike
        Output folder: ``gsea.tsv``, ``ora_<list>.tsv`` per gene list, ``spatial_enrichment.tsv``,
        ``gene_ranking.tsv``, ``gene_set_restriction.tsv``, ``enrichment_bubbles.png``/``.svg``
        and ``enrichment.json``.
    centroids, centroid_names, annot_lh, sphere_lh, annot_rh, sphere_rh
        Parcel sphere centroids for the spins, as in ``run_transcriptomics``. Without them the
        spatial analysis is skipped with a warning.
    hemisphere : {"lh", "rh", "both"} or None, default=DEFAULT_HEMISPHERE ("both")
    region_column, map_column : str, optional
    gene_lists : None, path or mapping, optional
        Lists for ORA (see :func:`read_gene_lists`), e.g. ``{"PLS1+": [...], "PLS1-": [...]}``
        or a ``run_transcriptomics`` output folder. A list with no measured gene is skipped with
        a warning.
    n_perm : int, default=10000
        GSEA gene permutations, and random gene sets of the classic null of the spatial analysis.
    n_spins : int, default=1000
        Spherical rotations for the spatial null (0 skips the spatial analysis).
    spin_method : {"alexander-bloch", "vasa", "hungarian"}, default="alexander-bloch"
    min_size, max_size : int, default=5, None
        Set sizes (measured genes) kept by all three analyses. ``max_size=None`` is 2000 for
        gene,set tables (the Seidlitz classes hold ~100-1,100 AHBA genes) and 500 for GMT
        files (see :func:`default_max_size`).
    redundancy : {"kappa", "jaccard"} or None, default="kappa"
        Similarity for clustering significant ORA terms (None: no clustering).
    redundancy_threshold : float, default=0.3
    top : int, default=15
        Sets per panel of the bubble plot.
    random_state : int or None, default=0
        ``np.random.SeedSequence(random_state).spawn(3)`` gives the streams of the rotations,
        the GSEA permutations and the classic null, in that order.
    spin_cache : str or os.PathLike, optional
    duplicate_genes : {"drop", "error"}, default="drop"
    methods : sequence of {"gsea", "ora", "spatial"}, default=all
        The analyses to run.
    weight : float, default=1.0
        GSEA's weight on the ranking (0: Kolmogorov-Smirnov; 1: the classic weighted score).
    ranking : "pls1_weight", str, os.PathLike or (n_genes,) pandas.Series, default="pls1_weight"
        The GSEA ranking and ORA background: each gene's PLS1 weight for the map, or given
        scores per gene (e.g. a gene PLS's bootstrap Z). A file (a GSEA ``.rnk`` or a gene,score
        CSV/TSV, see :func:`graymatter.transcriptomics.ranking.read_ranking`), or a Series given
        without ``brain_map``/``expression``/``matched``, is a pre-ranked gene list: GSEA runs on
        it with the same seed stream as for a map's PLS1 weights (so the same ranking gives the
        same table), ORA uses its genes as background, and the spatial analysis, which needs a
        map, is skipped. A file cannot be combined with a map.
    ranking_column : str, optional
        Score column of a ``ranking`` table (default: its only non-gene column, or ``score``).
    matched : MatchedInputs, optional
        The map and expression as a gene PLS matched them, with its spins (``run_transcriptomics``'
        ``result.matched``): used instead of reading and matching ``brain_map`` and
        ``expression`` again. Its spins were drawn from the same seed stream, so the result
        equals a run from the files with the same seed, centroids and spin settings.

    Returns
    -------
    EnrichmentOutputs

    Raises
    ------
    InputError
        Unreadable inputs, no matching regions, no set within the size limits, bad options.

    Notes
    -----
    The ranking is each gene's PLS1 weight (:func:`gene_scores` with ``score="pls1_weight"``:
    gene-map correlations over their norm, equal to ``gene_pls``' PLS1 weights). The classic
    p-values of GSEA and of the category scores treat genes as exchangeable and ignore the
    spatial autocorrelation of the map; ``p_spatial`` does not (Fulcher et al. 2021).

    Examples
    --------
    >>> out = run_enrichment("tmap.tsv", "ahba-dk83", "celltypes-seidlitz2020", out_dir="enr",
    ...                      annot_lh="lh.aparc.annot", sphere_lh="lh.sphere",
    ...                      hemisphere="lh", max_size=2000,
    ...                      gene_lists="tx")  # doctest: +SKIP
    >>> out.spatial[["score", "p_classic", "p_spatial"]]  # doctest: +SKIP
    """
    out = Path(out_dir)
    _check_options(spin_method, n_perm, n_spins, top, redundancy, methods)
    sets, sets_info = load_gene_sets(gene_sets)
    max_size = default_max_size(gene_sets) if max_size is None else max_size
    lists, list_records = read_gene_lists(gene_lists)
    spin_seed, gsea_seed, classic_seed = np.random.SeedSequence(random_state).spawn(3)
    default = ranking is None or (isinstance(ranking, str) and ranking == "pls1_weight")
    given = not default and (isinstance(ranking, (str, os.PathLike)) or (
        matched is None and brain_map is None and expression is None))
    y = X = nulls = None
    if given:
        ranking, inputs = _given_ranking(ranking, ranking_column, brain_map, expression,
                                         (centroids, annot_lh, annot_rh))
        ranking = ranking.rename("score")
    else:
        if matched is None:
            matched = _match(brain_map, expression, dict(
                centroids=centroids, centroid_names=centroid_names, annot_lh=annot_lh,
                sphere_lh=sphere_lh, annot_rh=annot_rh, sphere_rh=sphere_rh),
                hemisphere=hemisphere, region_column=region_column, map_column=map_column,
                duplicate_genes=duplicate_genes, n_spins=n_spins, spin_method=spin_method,
                seed=spin_seed, spin_cache=spin_cache, warn="spatial" in methods)
        elif matched.nulls is None and "spatial" in methods:
            warnings.warn("spatial enrichment skipped: the matched inputs have no spins (no "
                          "centroids or n_spins=0)", GraymatterWarning, stacklevel=2)
        y, X, nulls = matched.brain_map, matched.expression, matched.nulls
        ranking, inputs = _map_ranking(None if default else ranking, matched, brain_map)
    sizes = dict(min_size=min_size, max_size=max_size)
    background = list(ranking.index)
    gsea = None
    if "gsea" in methods:
        gsea = gsea_prerank(ranking, sets, weight=float(weight), n_perm=int(n_perm),
                            random_state=np.random.default_rng(gsea_seed), **sizes)
    ora_tables, skipped = {}, {}
    if "ora" in methods:
        ora_tables, skipped = _ora_tables(lists, sets, background, sizes, redundancy,
                                          redundancy_threshold)
    spatial = None
    if nulls is not None and "spatial" in methods:
        spatial = spatial_enrichment(X, y, sets, nulls=nulls, score="pls1_weight",
                                     n_perm_classic=int(n_perm),
                                     random_state=np.random.default_rng(classic_seed), **sizes)
    label = "PLS1 weights" if default else ("given ranking" if given else str(ranking.name))
    files = _write_tables(out, ranking, gsea, ora_tables, spatial, sets, top, label)

    inputs.update({"gene_sets": sets_info,
                   "gene_lists": {n: list_records.get(n, {"source": "list", "n_genes": len(g)})
                                  for n, g in lists.items()}})
    for key, value in dict(centroids=centroids, annot_lh=annot_lh, sphere_lh=sphere_lh,
                           annot_rh=annot_rh, sphere_rh=sphere_rh).items():
        if value is not None:
            inputs[key] = input_record(value)
    parameters = dict(hemisphere=hemisphere, region_column=region_column,
                      map_column=map_column, n_perm=n_perm, n_spins=n_spins,
                      spin_method=spin_method, min_size=min_size, max_size=max_size,
                      redundancy=redundancy, redundancy_threshold=redundancy_threshold,
                      random_state=random_state, duplicate_genes=duplicate_genes,
                      methods=list(methods), weight=weight,
                      ranking="given" if given else str(ranking.name),
                      seeds="SeedSequence(random_state).spawn(3): rotations, GSEA, "
                            "classic null")
    summary = {
        **provenance_record(step="enrichment", parameters=parameters, inputs=inputs,
                            outputs={k: p.name for k, p in files.items()},
                            random_state=random_state),
        "analysis": "gene-set enrichment of a brain map: GSEA prerank, ORA, spatial-null "
                    "category scores",
        "n_regions": None if given else int(len(y)), "n_genes": int(len(ranking)),
        "n_sets_tested": {"gsea": None if gsea is None else int(len(gsea.table)),
                          "spatial": None if spatial is None else int(len(spatial)),
                          **{f"ora_{n}": int(len(t)) for n, t in ora_tables.items()}},
        "ora_skipped": skipped,
        "match_report": None if given else {**matched.report.to_dict(),
                                            "dropped_no_centroid": list(matched.no_centroid)},
        "files": {k: p.name for k, p in files.items()},
        "notes": "Permutation p = (1 + #{null as extreme}) / (1 + n). p_classic (random gene "
                 "sets) and GSEA's p ignore spatial autocorrelation and gene co-expression; "
                 "p_spatial uses spun maps (Fulcher et al. 2021).",
    }
    files["summary"] = write_json(out / "enrichment.json", summary)
    logger.info("enrichment: wrote %d files to %s", len(files), out)
    return EnrichmentOutputs(ranking=ranking, regions=[] if given else list(y.index),
                             gsea=gsea, ora=ora_tables,
                             spatial=spatial, nulls=nulls, files=files, summary=summary)


def _map_ranking(scores, matched: MatchedInputs, brain_map) -> tuple[pd.Series, dict]:
    """The map's PLS1 weights (``scores`` None) or given scores per gene; input records."""
    if scores is None:
        ranking = gene_scores(matched.expression, matched.brain_map,
                              score="pls1_weight").rename("pls1_weight")
    else:
        ranking = pd.Series(scores, dtype=np.float64).dropna().rename(scores.name or "score")
        ranking.index = [str(g).strip().upper() for g in ranking.index]
    inputs = {"expression": matched.expression_record}
    if brain_map is not None and not isinstance(brain_map, pd.Series):
        inputs["brain_map"] = input_record(brain_map)
    return ranking, inputs


def _check_options(spin_method, n_perm, n_spins, top, redundancy, methods) -> None:
    if spin_method not in _SPIN_METHODS:
        raise InputError(f"spin_method must be one of {format_choices(_SPIN_METHODS)}; got "
                         f"{spin_method!r}")
    for name, value, low in (("n_perm", n_perm, 1), ("n_spins", n_spins, 0), ("top", top, 1)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
            raise InputError(f"{name} must be an integer >= {low}; got {value!r}")
    if redundancy not in (None, "kappa", "jaccard"):
        raise InputError(f"redundancy must be 'kappa', 'jaccard' or None; got {redundancy!r}")
    bad = [m for m in methods if m not in METHODS]
    if bad or isinstance(methods, str):
        raise InputError(f"methods must be a list drawn from {format_choices(METHODS)}; got "
                         f"{methods!r}")


def _match(brain_map, expression, centroid_args: dict, *, hemisphere, region_column,
           map_column, duplicate_genes, n_spins, spin_method, seed, spin_cache,
           warn) -> MatchedInputs:
    """Read and match the map and the expression; order by centroids and spin when asked."""
    ymap = read_brain_map(brain_map, region_column=region_column, value_column=map_column)
    expr, expr_info = load_expression(expression, duplicate_genes)
    y, X, report = match_regions(ymap, expr, hemisphere=hemisphere_arg(hemisphere))
    frames = centroid_frames(*centroid_args.values(), expr)
    nulls, no_centroid = None, []
    if frames and n_spins > 0:
        y, X, _, nulls, no_centroid = order_and_spin(y, X, frames, n_spins=n_spins,
                                                     spin_method=spin_method, seed=seed,
                                                     spin_cache=spin_cache)
    elif warn:
        warnings.warn("spatial enrichment skipped: " + (
            "n_spins=0" if frames else "no centroids given (centroids= or annot/sphere pairs)")
            + "; only classic p-values, which ignore spatial autocorrelation, are reported",
            GraymatterWarning, stacklevel=3)
    return MatchedInputs(brain_map=y, expression=X, nulls=nulls, report=report,
                         expression_record=expr_info, no_centroid=no_centroid)


def _ora_tables(lists, sets, background, sizes, redundancy, threshold):
    """ORA per gene list (lists without a measured gene skipped with a warning)."""
    tables, skipped = {}, {}
    for name, genes in lists.items():
        measured = [g for g in genes if str(g).strip().upper() in set(background)]
        if not measured:
            skipped[name] = f"none of its {len(genes)} genes is measured"
            warnings.warn(f"gene list '{name}' skipped: {skipped[name]}", GraymatterWarning,
                          stacklevel=3)
            continue
        table = ora(genes, sets, background=background, **sizes)
        if redundancy is not None:
            table = reduce_redundancy(table, sets, similarity=redundancy, threshold=threshold,
                                      background=background)
        tables[name] = table
    return tables, skipped


def _write_tables(out: Path, ranking, gsea, ora_tables, spatial, sets, top,
                  label: str) -> dict:
    """The TSV tables and the bubble plot; returns name -> path."""
    from graymatter.report.enrichment_figures import bubble_frame, plot_enrichment_bubbles
    from graymatter.report.figures import save_figure

    out.mkdir(parents=True, exist_ok=True)
    files = {"gene_ranking": write_tsv(out / "gene_ranking.tsv", ranking.rename_axis("gene")
                                       .sort_values(ascending=False).to_frame())}
    if gsea is not None:
        files["gsea"] = write_tsv(out / "gsea.tsv", gsea.table)
        files["gene_set_restriction"] = write_tsv(out / "gene_set_restriction.tsv",
                                                  gsea.restriction)
    slugs: dict = {}
    for name, table in ora_tables.items():
        slug = _slug(name)
        if slug in slugs.values():
            raise InputError(f"gene lists '{name}' and "
                             f"'{[k for k, v in slugs.items() if v == slug][0]}' would both be "
                             f"written to ora_{slug}.tsv; rename one")
        slugs[name] = slug
        files[f"ora_{slug}"] = write_tsv(out / f"ora_{slug}.tsv", table, index=False)
    if spatial is not None:
        files["spatial_enrichment"] = write_tsv(out / "spatial_enrichment.tsv", spatial)
    panels = {}
    if gsea is not None:
        panels[f"GSEA ({label})"] = bubble_frame(gsea.table, kind="gsea", top=top)
    panels.update({f"ORA {name}": bubble_frame(t, kind="ora", top=top)
                   for name, t in ora_tables.items()})
    if panels:
        fig = plot_enrichment_bubbles(panels, title=f"Enrichment: {Path(str(sets.source)).name}")
        files["bubbles_png"] = save_figure(fig, out / "enrichment_bubbles.png")
        files["bubbles_svg"] = save_figure(fig, out / "enrichment_bubbles.svg")
    return files
