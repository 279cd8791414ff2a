"""``graymatter fetch``, ``transcriptomics`` and ``enrich``: thin wrappers over the fetchers and workflows.

:func:`register` adds them to the main parser (see :mod:`graymatter.cli`) and returns their handlers.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

from ..errors import InputError
from ..transcriptomics.expression import DEFAULT_HEMISPHERE, HEMISPHERES
from .options import seed

_TOP = 10  # genes listed in the printed summary


def _add_fetch(sub) -> None:
    p = sub.add_parser(
        "fetch", help="download reference data (AHBA matrices, gene sets, centroids) to the cache",
        description="Put registered data files in the cache ($GRAYMATTER_DATA, else "
                    "~/.cache/graymatter), checking each file's sha256. --from imports a local "
                    "copy instead of downloading.",
        epilog="examples: graymatter fetch --list; graymatter fetch ahba-dk83; "
               "graymatter fetch ahba-dk83 --from ~/Downloads/ahba")
    p.add_argument("names", nargs="*", metavar="NAME", help="registered dataset names")
    p.add_argument("--list", action="store_true", help="list the registered datasets and exit")
    p.add_argument("--from", dest="from_dir", metavar="DIR",
                   help="import the files from this folder (searched recursively by file name)")
    p.add_argument("--force", action="store_true", help="replace files already in the cache")


def _run_fetch(args) -> int:
    from ..datasets.fetchers import data_home, fetch
    from ..datasets.registry import REGISTRY

    if args.list:
        home = data_home()
        for res in REGISTRY.values():
            state = "cached" if (home / res.filename).is_file() else "-"
            print(f"{res.name:28s} {res.size / 1e6:7.2f} MB  {state:6s}  {res.description}")
            print(f"{'':28s} licence: {res.licence}")
        print(f"\ncache: {home}")
        return 0
    if not args.names:
        raise InputError("name the dataset(s) to fetch (see `graymatter fetch --list`)")
    for name in args.names:
        path = fetch(name, from_dir=args.from_dir, force=args.force, progress=not args.quiet)
        print(f"{name}: {path}")
    return 0


def _add_transcriptomics(sub) -> None:
    p = sub.add_parser(
        "transcriptomics", help="PLS of AHBA gene expression onto a regional map, spin test, "
                                "gene lists",
        description="Match a regional map to a regions x genes expression matrix by label, fit "
                    "PLS (genes z-scored -> map), test variance explained against spherical "
                    "rotations of the parcellation, bootstrap gene weights into Z scores and "
                    "write PLS1+/PLS1- gene lists at an FDR threshold.",
        epilog="example: graymatter transcriptomics --map tmap.tsv --expression ahba-dk83 "
               "--annot-lh lh.aparc.annot --sphere-lh lh.sphere --hemisphere lh "
               "--n-spins 1000 --n-boot 1000 --out tx")
    p.add_argument("--map", required=True, metavar="TABLE",
                   help="regional map: CSV/TSV with a region column and a value column")
    p.add_argument("--region-column", metavar="NAME", help="region column of --map")
    p.add_argument("--map-column", metavar="NAME",
                   help="value column of --map (needed when it has several numeric columns)")
    p.add_argument("--expression", required=True, metavar="NAME|FILE",
                   help="registered dataset (e.g. ahba-dk83, see `graymatter fetch --list`) or a "
                        "regions x genes CSV/TSV/parquet")
    p.add_argument("--duplicate-genes", choices=["drop", "error"], default="drop",
                   help="gene columns named twice: drop them with a warning (default) or stop")
    cent = p.add_mutually_exclusive_group()
    cent.add_argument("--centroids", metavar="FILE",
                      help="parcel centroids on the sphere (x y z per row; a header with a "
                           "hemi column, L/R, adds the side to the names)")
    p.add_argument("--centroid-names", metavar="FILE|expression",
                   help="names of the --centroids rows (one per line), or 'expression' to use "
                        "the expression matrix's row names in order")
    cent.add_argument("--annot-lh", metavar="ANNOT", help="left annotation (.annot)")
    p.add_argument("--sphere-lh", metavar="SURF", help="left sphere (GIFTI or FreeSurfer)")
    p.add_argument("--annot-rh", metavar="ANNOT", help="right annotation (.annot)")
    p.add_argument("--sphere-rh", metavar="SURF", help="right sphere")
    p.add_argument("--hemisphere", choices=HEMISPHERES, default=DEFAULT_HEMISPHERE,
                   help=f"analyse one hemisphere only (default {DEFAULT_HEMISPHERE})")
    p.add_argument("--n-components", type=int, default=3, metavar="K", help="PLS components (3)")
    p.add_argument("--n-spins", type=int, default=1000, metavar="N",
                   help="spherical rotations for p_spin (default 1000)")
    p.add_argument("--spin-method", choices=["vasa", "hungarian", "alexander-bloch"],
                   default="alexander-bloch",
                   help="parcel reassignment after rotation (default alexander-bloch, which "
                        "stays calibrated for smooth maps; vasa replicates Study B)")
    p.add_argument("--n-boot", type=int, default=1000, metavar="N",
                   help="bootstrap resamples for gene Z scores (default 1000)")
    p.add_argument("--bootstrap", choices=["regions", "blocks"], default="regions",
                   help="resample regions (ignores spatial dependence) or spatial blocks")
    p.add_argument("--n-blocks", type=int, default=10, metavar="N",
                   help="k-means blocks of centroids per hemisphere for --bootstrap blocks")
    p.add_argument("--fdr", type=float, default=0.05, metavar="ALPHA",
                   help="p_FDR threshold of the PLS1+/PLS1- lists (default 0.05)")
    p.add_argument("--seed", type=seed, default=0, help="random seed (rotations and bootstrap)")
    p.add_argument("--spin-cache", metavar="DIR", help="folder to cache spin indices in")
    p.add_argument("--out", required=True, metavar="DIR", help="output folder")


def _run_transcriptomics(args) -> int:
    from ..workflows.transcriptomics import run_transcriptomics

    res = run_transcriptomics(
        args.map, args.expression, out_dir=args.out, centroids=args.centroids,
        centroid_names=args.centroid_names, annot_lh=args.annot_lh, sphere_lh=args.sphere_lh,
        annot_rh=args.annot_rh, sphere_rh=args.sphere_rh, hemisphere=args.hemisphere,
        region_column=args.region_column, map_column=args.map_column,
        n_components=args.n_components, n_spins=args.n_spins, spin_method=args.spin_method,
        n_boot=args.n_boot, bootstrap=args.bootstrap, n_blocks=args.n_blocks,
        fdr_alpha=args.fdr, random_state=args.seed, spin_cache=args.spin_cache,
        duplicate_genes=args.duplicate_genes)
    print(f"{res.scores.shape[0]} regions x {res.weights.shape[0]} genes")
    for a, ev in enumerate(res.explained_variance):
        p = "n/a" if res.p_spin is None else f"{res.p_spin[a]:.4g}"
        print(f"PLS{a + 1}: {100 * ev:.1f}% of the map's variance, p_spin = {p}")
    print(f"PLS1+ {len(res.pls1_positive)} genes, PLS1- {len(res.pls1_negative)} genes at "
          f"p_FDR < {res.fdr_alpha:g}")
    top = res.gene_table.head(_TOP)[["gene", "weight", "z", "p_fdr"]]
    print(top.to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    print(f"wrote results to {args.out}")
    return 0


def _add_enrich(sub) -> None:
    p = sub.add_parser(
        "enrich", help="gene-set enrichment of a regional map: GSEA, ORA, spatial-null p-values",
        description="Rank genes by their PLS1 weight for a regional map (AHBA expression), then "
                    "run GSEA prerank, ORA of gene lists against the measured genes, and "
                    "category-score enrichment with both a classic (random gene sets) and a "
                    "spatial (spun maps) null. Writes TSV tables, a bubble plot and a JSON "
                    "sidecar. With --ranking (a .rnk file or gene,score table) instead of "
                    "--map and --expression: GSEA and ORA of that ranking.",
        epilog="example: graymatter enrich --map d.csv --map-column d_icv --expression ahba-dk83 "
               "--gene-sets celltypes-seidlitz2020 --max-size 2000 --annot-lh lh.annot "
               "--sphere-lh lh.sphere.gii --annot-rh rh.annot --sphere-rh rh.sphere.gii "
               "--gene-list PLS1+=tx/pls1_positive.txt --out enr")
    p.add_argument("--map", metavar="TABLE",
                   help="regional map: CSV/TSV with a region column and a value column")
    p.add_argument("--region-column", metavar="NAME", help="region column of --map")
    p.add_argument("--map-column", metavar="NAME", help="value column of --map")
    p.add_argument("--expression", metavar="NAME|FILE",
                   help="registered dataset (e.g. ahba-dk83) or a regions x genes table")
    p.add_argument("--ranking", metavar="FILE",
                   help="a pre-ranked gene list instead of --map and --expression: a GSEA .rnk "
                        "file (gene<TAB>score) or a CSV/TSV with gene and score columns; GSEA "
                        "and ORA only (no map to spin)")
    p.add_argument("--ranking-column", metavar="NAME",
                   help="score column of a --ranking table (default: the only non-gene column, "
                        "or 'score')")
    p.add_argument("--duplicate-genes", choices=["drop", "error"], default="drop")
    p.add_argument("--gene-sets", required=True, metavar="NAME|FILE",
                   help="registered gene sets (celltypes-seidlitz2020, go-bp-2021, "
                        "genesets-lake, ...), a .gmt file or a gene,set CSV")
    p.add_argument("--gene-list", action="append", default=[], metavar="NAME=FILE",
                   help="gene list for ORA (one gene per line); repeat for several. A "
                        "`graymatter transcriptomics` output folder gives its PLS1+/PLS1- lists")
    cent = p.add_mutually_exclusive_group()
    cent.add_argument("--centroids", metavar="FILE",
                      help="parcel centroids on the sphere (x y z per row; optional name and "
                           "hemi columns)")
    p.add_argument("--centroid-names", metavar="FILE|expression",
                   help="names of the --centroids rows")
    cent.add_argument("--annot-lh", metavar="ANNOT", help="left annotation (.annot)")
    p.add_argument("--sphere-lh", metavar="SURF", help="left sphere")
    p.add_argument("--annot-rh", metavar="ANNOT", help="right annotation")
    p.add_argument("--sphere-rh", metavar="SURF", help="right sphere")
    p.add_argument("--hemisphere", choices=HEMISPHERES, default=DEFAULT_HEMISPHERE,
                   help=f"analyse one hemisphere only (default {DEFAULT_HEMISPHERE})")
    p.add_argument("--n-perm", type=int, default=10000, metavar="N",
                   help="GSEA permutations and classic-null gene sets (default 10000)")
    p.add_argument("--n-spins", type=int, default=1000, metavar="N",
                   help="rotations for the spatial null (default 1000; 0 skips it)")
    p.add_argument("--spin-method", choices=["alexander-bloch", "vasa", "hungarian"],
                   default="alexander-bloch")
    p.add_argument("--min-size", type=int, default=5, metavar="N",
                   help="smallest set (measured genes) tested (default 5)")
    p.add_argument("--max-size", type=int, default=None, metavar="N",
                   help="largest set tested (default 2000 for gene,set tables such as the "
                        "Seidlitz classes, 500 for GMT files)")
    p.add_argument("--top", type=int, default=10, metavar="N",
                   help="sets printed per analysis and plotted (default 10)")
    p.add_argument("--seed", type=seed, default=0, help="random seed")
    p.add_argument("--spin-cache", metavar="DIR", help="folder to cache spin indices in")
    p.add_argument("--out", required=True, metavar="DIR", help="output folder")


def _gene_list_args(values):
    from pathlib import Path

    if len(values) == 1 and "=" not in values[0] and Path(values[0]).is_dir():
        return values[0]
    lists = {}
    for item in values:
        name, sep, path = item.partition("=")
        if not sep or not name.strip() or not path.strip():
            raise InputError(f"--gene-list expects NAME=FILE (e.g. PLS1+=tx/pls1_positive.txt) "
                             f"or one transcriptomics output folder; got {item!r}")
        if name.strip() in lists:
            raise InputError(f"--gene-list names '{name.strip()}' twice; give each list a "
                             f"distinct name")
        lists[name.strip()] = path.strip()
    return lists or None


def _check_enrich_inputs(args) -> None:
    """Either a map and an expression matrix, or a pre-ranked gene list."""
    if args.ranking is None:
        if args.map is None or args.expression is None:
            raise InputError("enrich needs --map and --expression (a brain map ranks the genes "
                             "by PLS1 weight), or --ranking FILE (a pre-ranked gene list)")
        if args.ranking_column is not None:
            raise InputError("--ranking-column names a column of --ranking; give --ranking too")


def _run_enrich(args) -> int:
    from ..workflows.enrichment import run_enrichment

    _check_enrich_inputs(args)
    res = run_enrichment(
        args.map, args.expression, args.gene_sets, ranking=args.ranking,
        ranking_column=args.ranking_column, out_dir=args.out, centroids=args.centroids,
        centroid_names=args.centroid_names, annot_lh=args.annot_lh, sphere_lh=args.sphere_lh,
        annot_rh=args.annot_rh, sphere_rh=args.sphere_rh, hemisphere=args.hemisphere,
        region_column=args.region_column, map_column=args.map_column,
        gene_lists=_gene_list_args(args.gene_list), n_perm=args.n_perm, n_spins=args.n_spins,
        spin_method=args.spin_method, min_size=args.min_size, max_size=args.max_size,
        top=args.top, random_state=args.seed, spin_cache=args.spin_cache,
        duplicate_genes=args.duplicate_genes)

    def show(frame):
        print(frame.head(args.top).to_string(float_format=lambda v: f"{v:.4g}"))

    if args.ranking is not None:
        print(f"{len(res.ranking)} genes ranked by {args.ranking}")
    else:
        print(f"{len(res.regions)} regions x {len(res.ranking)} genes ranked by PLS1 weight")
    if res.spatial is not None:
        print(f"\ncategory scores, classic vs spatial null ({res.spatial.attrs['n_null']} spins):")
        show(res.spatial[["size", "score", "p_classic", "q_classic", "p_spatial", "q_spatial"]])
    elif args.ranking is None:
        print("\nno spatial null (give centroids or annot/sphere pairs and --n-spins > 0)")
    print(f"\nGSEA ({res.gsea.n_perm} permutations; p ignores spatial autocorrelation):")
    show(res.gsea.table[["size", "nes", "p", "fdr_q"]])
    for name, table in res.ora.items():
        print(f"\nORA {name} ({table.attrs['n_list']} genes in a background of "
              f"{table.attrs['n_background']}):")
        show(table.set_index("set")[["size", "overlap", "fold_enrichment", "p", "q"]])
    print(f"\nwrote results to {args.out}")
    return 0


def register(subparsers) -> dict[str, Callable[[argparse.Namespace], int]]:
    """Add ``fetch``, ``transcriptomics`` and ``enrich`` to ``subparsers``; return the handlers.

    Parameters
    ----------
    subparsers : argparse._SubParsersAction
        The ``add_subparsers()`` object of the ``graymatter`` parser.

    Returns
    -------
    dict of str to callable
        Each handler takes the parsed arguments (with the global ``quiet``) and returns 0.

    Examples
    --------
    >>> import argparse
    >>> parser = argparse.ArgumentParser(prog="graymatter")
    >>> handlers = register(parser.add_subparsers(dest="command"))
    >>> sorted(handlers)
    ['enrich', 'fetch', 'transcriptomics']
    """
    _add_fetch(subparsers)
    _add_transcriptomics(subparsers)
    _add_enrich(subparsers)
    return {"fetch": _run_fetch, "transcriptomics": _run_transcriptomics, "enrich": _run_enrich}
