"""Regional gene expression (AHBA) matrices: read them, match their regions to a brain map, filter genes.

Regions are always matched by *label*, never by row order: atlas files name the same region
``L_bankssts``, ``lh_bankssts``, ``ctx-lh-bankssts``, ``lh.bankssts`` or ``bankssts_L``, and all of
them normalise to ``lh_bankssts`` (:func:`normalise_region_name`). What could not be matched,
what was duplicated and what was dropped for missing values is returned in a :class:`MatchReport`
and logged, so a silently shrunken analysis cannot happen.
"""

from __future__ import annotations

import csv
import inspect
import logging
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from graymatter.errors import GraymatterWarning, InputError, format_choices

__all__ = ["read_expression", "normalise_region_name", "hemisphere_label", "match_regions",
           "MatchReport", "filter_genes", "abagen_expression", "STUDY_B_ABAGEN"]

logger = logging.getLogger("graymatter")

#: Hemisphere(s) of the gene PLS and the enrichment when none is named, for the CLI, study files,
#: the API and the report alike: "both" analyses every region the map and the expression matrix
#: share. Study B's left-hemisphere-only analysis (the AHBA right hemisphere was sampled in two
#: of six donors) is a choice its study file states (``hemisphere: lh``), not a hidden default.
DEFAULT_HEMISPHERE = "both"
#: Accepted values of ``hemisphere``.
HEMISPHERES = ("lh", "rh", "both")

# Columns that name regions rather than genes (checked case-insensitively).
_NAME_COLUMNS = ("region", "regions", "name", "label_name", "structure", "roi")
_ID_COLUMNS = ("label", "id", "label_id", "index", "unnamed: 0", "")
_HEMI = {"l": "lh", "lh": "lh", "left": "lh", "r": "rh", "rh": "rh", "right": "rh"}
_PREFIX = re.compile(r"^(?:ctx[-_.])?(lh|rh|l|r|left|right)[-_.](.+)$", re.IGNORECASE)
_SUFFIX = re.compile(r"^(.+?)[-_.](lh|rh|l|r|left|right)$", re.IGNORECASE)
# Schaefer 2018 parcels carry the hemisphere after the network count: 7Networks_LH_Vis_1
_SCHAEFER = re.compile(r"^(\d+Networks)[-_](lh|rh)[-_](.+)$", re.IGNORECASE)
# FreeSurfer aparcstats2table columns carry the measure: lh_bankssts_thickness
_MEASURE = re.compile(r"[-_](thickness|thickavg|volume|grayvol|area|surfarea|meancurv)$",
                      re.IGNORECASE)

#: abagen.get_expression_data settings of Study B (see :func:`abagen_expression`).
STUDY_B_ABAGEN = {
    "reannotated": True,          # probes reannotated (Arnatkeviciute et al. 2019)
    "ibf_threshold": 0.5,         # drop probes below background in >= 50% of samples
    "probe_selection": "diff_stability",  # one probe per gene: highest differential stability
    "donor_probes": "aggregate",  # the same probe for every donor
    "tolerance": 2,               # samples assigned to parcels within 2 mm
    "corrected_mni": True,        # non-linear MNI coordinates of the samples
    "sample_norm": "srs",         # scaled robust sigmoid across genes, per sample
    "gene_norm": "srs",           # scaled robust sigmoid across samples, per gene and donor
    "norm_matched": True,         # normalise only samples matched to a parcel
    "region_agg": "donors",       # average samples within each donor, then across donors
    "agg_metric": "mean",
    "lr_mirror": None,            # no mirroring: the left hemisphere is selected afterwards
    "missing": None,              # regions without samples stay NaN (dropped and reported later)
}


# ================================================================================ names

def normalise_region_name(name) -> str:
    """Canonical region name ``{lh|rh}_{region}`` used to match maps and expression matrices.

    Hemisphere markers are recognised as prefixes (``L_``, ``lh_``, ``lh.``, ``ctx-lh-``,
    ``Left-``), suffixes (``_L``, ``_rh``, ``.R``) or Schaefer's infix (``7Networks_LH_Vis_1``
    -> ``lh_7Networks_Vis_1``); HCP-MMP1's ``_ROI`` suffix and FreeSurfer
    table measure suffixes (``_thickness``, ``_volume``, ...) are removed. Names without a
    hemisphere (``brainstem``) are returned stripped. The region part keeps its case; matching
    compares names case-insensitively.

    Parameters
    ----------
    name : str or int

    Returns
    -------
    str

    Examples
    --------
    >>> [normalise_region_name(n) for n in ["L_bankssts", "ctx-lh-bankssts", "bankssts_L",
    ...                                     "lh.bankssts", "L_V1_ROI", "Right-Amygdala"]]
    ['lh_bankssts', 'lh_bankssts', 'lh_bankssts', 'lh_bankssts', 'lh_V1', 'rh_Amygdala']
    >>> normalise_region_name("17Networks_RH_DefaultA_PCC_1")
    'rh_17Networks_DefaultA_PCC_1'
    """
    text = str(name).strip()
    text = _MEASURE.sub("", text)
    if text.upper().endswith("_ROI"):
        text = text[:-4]
    m = _SCHAEFER.match(text)
    if m:
        return f"{m.group(2).lower()}_{m.group(1)}_{m.group(3)}"
    m = _PREFIX.match(text)
    if m:
        return f"{_HEMI[m.group(1).lower()]}_{m.group(2)}"
    m = _SUFFIX.match(text)
    if m:
        return f"{_HEMI[m.group(2).lower()]}_{m.group(1)}"
    return text


def hemisphere_label(value) -> str | None:
    """``"lh"`` / ``"rh"`` for a hemisphere label (``L``, ``lh``, ``left``... any case), else None.

    Examples
    --------
    >>> [hemisphere_label(v) for v in ("L", "rh", "Left", "both")]
    ['lh', 'rh', 'lh', None]
    """
    return _HEMI.get(str(value).strip().lower())


def _hemisphere_of(canonical: str) -> str | None:
    head = canonical[:3]
    return head[:2] if head in ("lh_", "rh_") else None


# ================================================================================ reading

def _read_table(path: Path) -> tuple[pd.DataFrame, list[str]]:
    if not path.is_file():
        raise InputError(f"expression file '{path}' does not exist")
    suffix = "".join(path.suffixes[-2:]).lower() if path.suffix == ".gz" else path.suffix.lower()
    if suffix.startswith(".parquet") or suffix == ".pq":
        try:
            frame = pd.read_parquet(path)
        except ImportError:
            raise InputError(f"reading '{path}' needs a parquet engine (pyarrow or fastparquet), "
                             "which is not installed; install pyarrow or save the matrix as "
                             "CSV/TSV") from None
        return frame.reset_index() if frame.index.name else frame, [str(c) for c in frame.columns]
    sep = "\t" if suffix.startswith((".tsv", ".txt", ".tab")) else ","
    with open(path, encoding="utf-8-sig", newline="") as handle:  # BOMs occur in the wild
        header = next(csv.reader(handle, delimiter=sep), [])
    try:
        frame = pd.read_csv(path, sep=sep, encoding="utf-8-sig")
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read expression file '{path}' as "
                         f"{'TSV' if sep == chr(9) else 'CSV'}: {exc}") from None
    return frame, [h.strip() for h in header]


def read_expression(path_or_frame, *, label_column: str | None = None,
                    duplicate_genes: str = "error") -> pd.DataFrame:
    """Read a regions x genes expression matrix (CSV, TSV or parquet, or a DataFrame).

    Both common layouts are recognised: abagen's output (first column ``label`` with the atlas
    ids, or ids as the index) and the imaging-transcriptomics / ENIGMA layout (``label`` ids
    and/or a ``Region`` name column). A name column wins over an id column as the region label.

    Parameters
    ----------
    path_or_frame : str, os.PathLike or pandas.DataFrame
    label_column : str, optional
        Column holding the region labels (default: ``Region``/``name``-like column if present,
        else ``label``/``id``, else the index of a DataFrame).

    Returns
    -------
    expression : (n_regions, n_genes) pandas.DataFrame
        float64, index = region labels (str, named ``region``), columns = gene symbols.

    Raises
    ------
    InputError
        Missing file, unreadable format, a non-numeric gene column (named), duplicated genes or
        regions (named), no gene columns.

    Examples
    --------
    >>> frame = pd.DataFrame({"label": [1, 2, 3], "Region": ["L_a", "L_b", "L_c"],
    ...                       "GENE1": [0.1, 0.5, 0.9], "GENE2": [0.3, 0.2, 0.1]})
    >>> read_expression(frame).index.tolist()
    ['L_a', 'L_b', 'L_c']
    """
    if isinstance(path_or_frame, pd.DataFrame):
        frame, source = path_or_frame.copy(), "the expression table"
        header = [str(c) for c in frame.columns]
        if not isinstance(frame.index, pd.RangeIndex) and label_column is None:
            frame = frame.reset_index()
            header = [str(c) for c in frame.columns]
    else:
        path = Path(path_or_frame)
        frame, header = _read_table(path)
        source = f"expression file '{path}'"
    if duplicate_genes not in ("error", "drop"):
        raise InputError(f"duplicate_genes must be 'error' or 'drop', got {duplicate_genes!r}")
    header_index = pd.Index(header)
    dup_genes = header_index[header_index.duplicated()].unique()
    if len(dup_genes) and duplicate_genes == "error":
        raise InputError(f"{source} has duplicated columns {format_choices(dup_genes)}; each gene "
                         "must appear once (fix the names, or pass duplicate_genes='drop' / "
                         "--duplicate-genes drop to leave them out)")
    if len(dup_genes):
        if len(header) != frame.shape[1]:
            raise InputError(f"{source}: the header has {len(header)} names but the table "
                             f"{frame.shape[1]} columns")
        keep = ~header_index.isin(dup_genes)
        n_cols = int((~keep).sum())
        warnings.warn(f"{source}: dropped {n_cols} gene columns whose names occur more than "
                      f"once ({format_choices(dup_genes)}; often spreadsheet-mangled symbols "
                      "such as MARCH1/MARC1 -> Mar-01)", GraymatterWarning, stacklevel=2)
        frame = frame.iloc[:, np.flatnonzero(keep)]
    frame.columns = [str(c).strip() for c in frame.columns]
    lower = {c.lower(): c for c in frame.columns}
    if label_column is not None:
        if label_column not in frame.columns:
            raise InputError(f"label_column='{label_column}' is not a column of {source} "
                             f"(columns: {format_choices(frame.columns)})")
        label = label_column
    else:
        names = [lower[c] for c in _NAME_COLUMNS if c in lower
                 and not pd.api.types.is_numeric_dtype(frame[lower[c]])]
        ids = [lower[c] for c in _ID_COLUMNS if c in lower]
        label = names[0] if names else (ids[0] if ids else None)
        if label is None:
            raise InputError(f"{source} has no region label column (looked for "
                             f"{', '.join(_NAME_COLUMNS[:2] + _ID_COLUMNS[:2])}); pass "
                             "label_column= (or --label-column) naming it")
    drop = [label] + [c for c in frame.columns if c != label and (
        c.lower() in _ID_COLUMNS or (c.lower() in _NAME_COLUMNS
                                     and not pd.api.types.is_numeric_dtype(frame[c])))]
    labels = frame[label]
    if pd.api.types.is_float_dtype(labels) and np.all(np.mod(labels.dropna(), 1) == 0):
        labels = labels.astype("Int64")
    labels = pd.Index(labels.astype(str).str.strip(), name="region")
    genes = frame.drop(columns=drop)
    if genes.shape[1] == 0:
        raise InputError(f"{source} has no gene columns besides the labels ({format_choices(drop)})")
    bad = [c for c in genes.columns if not pd.api.types.is_numeric_dtype(genes[c])]
    if bad:
        col = genes[bad[0]]
        first = col[pd.to_numeric(col, errors="coerce").isna() & col.notna()]
        example = f" (e.g. {first.iloc[0]!r} in row {labels[first.index[0]]})" if len(first) else ""
        raise InputError(f"{source}: gene column(s) {format_choices(bad)} are not numeric"
                         f"{example}; expression values must be numbers (NaN for missing)")
    dup = labels[labels.duplicated()].unique()
    if len(dup):
        raise InputError(f"{source} has duplicated region labels {format_choices(dup)}; each "
                         "region must appear once")
    out = pd.DataFrame(genes.to_numpy(dtype=np.float64), index=labels,
                       columns=pd.Index(genes.columns, name="gene"))
    return out


# ================================================================================ matching

@dataclass
class MatchReport:
    """How a brain map's regions were matched to an expression matrix's.

    Attributes
    ----------
    matched : list of str
        Canonical names of the regions kept, in the order of the returned objects.
    unmatched_map : list of str
        Map regions with no expression row (original labels).
    unmatched_expression : list of str
        Expression regions absent from the map (original labels; after hemisphere selection).
    duplicates : list of str
        Map labels that normalise to the same region (identical values: kept once).
    dropped_missing_map : list of str
        Map regions whose value is NaN.
    dropped_missing_expression : list of str
        Matched regions whose expression row is all NaN.
    genes_dropped_missing : int
        Genes dropped because they are NaN in some of the kept regions.
    hemisphere : str or None
    """

    matched: list = field(default_factory=list)
    unmatched_map: list = field(default_factory=list)
    unmatched_expression: list = field(default_factory=list)
    duplicates: list = field(default_factory=list)
    dropped_missing_map: list = field(default_factory=list)
    dropped_missing_expression: list = field(default_factory=list)
    genes_dropped_missing: int = 0
    hemisphere: str | None = None

    @property
    def n_matched(self) -> int:
        return len(self.matched)

    def to_dict(self) -> dict:
        """JSON-able copy."""
        return {"n_matched": self.n_matched, "hemisphere": self.hemisphere,
                "matched": list(self.matched), "unmatched_map": list(self.unmatched_map),
                "unmatched_expression": list(self.unmatched_expression),
                "duplicates": list(self.duplicates),
                "dropped_missing_map": list(self.dropped_missing_map),
                "dropped_missing_expression": list(self.dropped_missing_expression),
                "genes_dropped_missing": int(self.genes_dropped_missing)}

    def __str__(self) -> str:
        parts = [f"{self.n_matched} regions matched"
                 + (f" ({self.hemisphere})" if self.hemisphere else "")]
        for key, text in (("unmatched_map", "map regions without expression"),
                          ("unmatched_expression", "expression regions not in the map"),
                          ("duplicates", "duplicated map labels"),
                          ("dropped_missing_map", "map regions with missing values"),
                          ("dropped_missing_expression", "regions without expression (all NaN)")):
            vals = getattr(self, key)
            if vals:
                parts.append(f"{len(vals)} {text}: {format_choices(vals, limit=8)}")
        if self.genes_dropped_missing:
            parts.append(f"{self.genes_dropped_missing} genes dropped for NaN in kept regions")
        return "; ".join(parts)


def _keys(labels) -> pd.Series:
    return pd.Series([normalise_region_name(x) for x in labels], index=pd.Index(labels, dtype=object))


def match_regions(brain_map: pd.Series, expression: pd.DataFrame, *, hemisphere: str | None = None,
                  ) -> tuple[pd.Series, pd.DataFrame, MatchReport]:
    """Match a regional brain map to an expression matrix by normalised region label.

    Parameters
    ----------
    brain_map : (n_map_regions,) pandas.Series
        Values indexed by region label (e.g. a t-map or Cohen's d per region).
    expression : (n_regions, n_genes) pandas.DataFrame
        As returned by :func:`read_expression`.
    hemisphere : {"lh", "rh"} or None
        Keep only regions of this hemisphere (names without a hemisphere are then dropped).

    Returns
    -------
    brain_map : (n_matched,) pandas.Series
    expression : (n_matched, n_genes_kept) pandas.DataFrame
        Both indexed by the canonical names (``lh_bankssts``), in the map's order.
    report : MatchReport
        Also logged at INFO level; dropped genes also raise a :class:`GraymatterWarning`.

    Raises
    ------
    InputError
        Nothing matches (examples of both label sets are shown), one region appears twice in the
        map with different values, or a bad ``hemisphere``.

    Examples
    --------
    >>> m = pd.Series([1.0, 2.0, 3.0], index=["L_a", "L_b", "L_c"])
    >>> e = pd.DataFrame({"G": [0.1, 0.2, 0.4, 0.5]}, index=["lh_c", "lh_a", "lh_b", "rh_a"])
    >>> y, x, rep = match_regions(m, e)
    >>> x["G"].tolist(), rep.unmatched_expression
    ([0.2, 0.4, 0.1], ['rh_a'])
    """
    if not isinstance(brain_map, pd.Series):
        raise InputError(f"brain_map must be a pandas Series indexed by region label, got "
                         f"{type(brain_map).__name__}")
    if not isinstance(expression, pd.DataFrame):
        raise InputError(f"expression must be a pandas DataFrame (regions x genes), got "
                         f"{type(expression).__name__}; read files with read_expression()")
    if hemisphere is not None and hemisphere not in ("lh", "rh"):
        raise InputError(f"hemisphere must be 'lh', 'rh' or None, got {hemisphere!r}")
    report = MatchReport(hemisphere=hemisphere)
    if brain_map.index.duplicated().any():
        same = brain_map.groupby(level=0, sort=False).nunique(dropna=False) <= 1
        if not same.all():
            raise InputError(f"brain map label(s) {format_choices(same.index[~same])} appear more "
                             "than once with different values; keep one row per region")
        report.duplicates.extend(str(x) for x in brain_map.index[brain_map.index.duplicated()])
        brain_map = brain_map[~brain_map.index.duplicated()]
    mkeys = _keys(brain_map.index)
    ekeys = _keys(expression.index)
    if hemisphere is not None:
        mkeys = mkeys[[_hemisphere_of(k) == hemisphere for k in mkeys]]
        ekeys = ekeys[[_hemisphere_of(k) == hemisphere for k in ekeys]]
    values = pd.Series(np.asarray(brain_map.to_numpy(), dtype=np.float64),
                       index=pd.Index(brain_map.index, dtype=object))
    fold_m = mkeys.str.casefold()
    fold_e = ekeys.str.casefold()
    if fold_e.duplicated().any():
        dup = ekeys[fold_e.duplicated(keep=False).to_numpy()]
        raise InputError(f"expression regions {format_choices(dup.index)} normalise to the same "
                         f"names ({format_choices(dup.unique())}); rename them to be distinct")
    keep_m = []
    seen: dict[str, object] = {}
    for label, key in zip(mkeys.index, fold_m):
        if key in seen:
            a, b = values[seen[key]], values[label]
            if not (a == b or (np.isnan(a) and np.isnan(b))):
                raise InputError(f"brain map labels '{seen[key]}' and '{label}' name the same "
                                 f"region ({mkeys[label]}) with different values ({a} vs {b}); "
                                 "keep one of them")
            report.duplicates.append(str(label))
            continue
        seen[key] = label
        keep_m.append(label)
    e_by_key = pd.Series(ekeys.index, index=fold_e.to_numpy())
    matched_m = [lab for lab in keep_m if fold_m[lab] in e_by_key.index]
    report.unmatched_map = [str(lab) for lab in keep_m if fold_m[lab] not in e_by_key.index]
    in_map = {fold_m[lab] for lab in keep_m}
    report.unmatched_expression = [str(lab) for lab, k in zip(ekeys.index, fold_e) if k not in in_map]
    if not matched_m:
        raise InputError(
            "no region of the brain map matches a region of the expression matrix"
            + (f" in hemisphere {hemisphere}" if hemisphere else "")
            + f" (map labels e.g. {format_choices(list(brain_map.index[:4]))}; expression labels "
            f"e.g. {format_choices(list(expression.index[:4]))}). Labels are compared after "
            "normalisation (L_x, lh_x, ctx-lh-x, x_L -> lh_x); rename one side to the other's "
            "atlas names")
    y = values[matched_m]
    X = expression.loc[[e_by_key[fold_m[lab]] for lab in matched_m]]
    canon = pd.Index([mkeys[lab] for lab in matched_m], name="region")
    y.index, X.index = canon, canon
    miss_y = y.isna().to_numpy()
    miss_x = X.isna().all(axis=1).to_numpy()
    report.dropped_missing_map = list(canon[miss_y])
    report.dropped_missing_expression = list(canon[miss_x & ~miss_y])
    keep = ~(miss_y | miss_x)
    y, X = y[keep], X[keep]
    partial = X.isna().any(axis=0)
    if partial.any():
        report.genes_dropped_missing = int(partial.sum())
        warnings.warn(f"dropped {int(partial.sum())} of {X.shape[1]} genes that have missing "
                      f"expression in some of the {len(X)} matched regions (e.g. "
                      f"{format_choices(partial.index[partial][:5])})", GraymatterWarning,
                      stacklevel=2)
        X = X.loc[:, ~partial]
    report.matched = list(y.index)
    y.name = brain_map.name
    logger.info("region matching: %s", report)
    return y, X, report


# ================================================================================ gene filters

def filter_genes(expression: pd.DataFrame, *, genes=None, min_variance: float = 0.0,
                 stability: pd.Series | None = None, min_stability: float | None = None,
                 ) -> pd.DataFrame:
    """Keep the genes worth analysing: a requested list, non-constant, stable enough.

    Parameters
    ----------
    expression : (n_regions, n_genes) pandas.DataFrame
    genes : list of str, optional
        Keep only these genes (matched case-insensitively); requested genes that are missing are
        reported in a :class:`GraymatterWarning`.
    min_variance : float, default=0.0
        Drop genes whose variance across regions (ddof=1) is <= this; constant genes are always
        dropped (they cannot be z-scored). Dropping is reported in a GraymatterWarning.
    stability : (n_genes,) pandas.Series, optional
        Differential stability per gene (e.g. from abagen); with ``min_stability``, genes below it
        (or without a value) are dropped.
    min_stability : float, optional

    Returns
    -------
    (n_regions, n_kept) pandas.DataFrame

    Raises
    ------
    InputError
        No requested gene is present, or no gene survives the filters.

    Examples
    --------
    >>> e = pd.DataFrame({"A": [1.0, 2.0, 3.0], "B": [1.0, 1.0, 1.0]})
    >>> import warnings
    >>> with warnings.catch_warnings():
    ...     warnings.simplefilter("ignore")
    ...     filter_genes(e).columns.tolist()
    ['A']
    """
    if not isinstance(expression, pd.DataFrame):
        raise InputError(f"expression must be a pandas DataFrame, got {type(expression).__name__}")
    out = expression
    if genes is not None:
        wanted = [str(g) for g in ([genes] if isinstance(genes, str) else genes)]
        by_fold = {str(c).casefold(): c for c in out.columns}
        present = [by_fold[g.casefold()] for g in wanted if g.casefold() in by_fold]
        missing = [g for g in wanted if g.casefold() not in by_fold]
        if not present:
            raise InputError(f"none of the {len(wanted)} requested genes "
                             f"({format_choices(wanted, limit=6)}) is in the expression matrix "
                             f"(genes e.g. {format_choices(out.columns[:6])})")
        if missing:
            warnings.warn(f"{len(missing)} of {len(wanted)} requested genes are not in the "
                          f"expression matrix: {format_choices(missing, limit=10)}",
                          GraymatterWarning, stacklevel=2)
        out = out.loc[:, list(dict.fromkeys(present))]
    if stability is not None and min_stability is not None:
        ds = pd.Series(stability).reindex(out.columns)
        low = ~(ds >= float(min_stability)).to_numpy()
        if low.any():
            logger.info("dropped %d genes with differential stability < %g", int(low.sum()),
                        min_stability)
            out = out.loc[:, ~low]
    values = out.to_numpy(dtype=np.float64)
    with np.errstate(invalid="ignore"):
        var = np.nanvar(values, axis=0, ddof=1) if len(values) > 1 else np.zeros(values.shape[1])
        spread = np.nanmax(values, axis=0) - np.nanmin(values, axis=0) if len(values) else var
    constant = ~(spread > 0)  # exact constants (and all-NaN genes), whatever min_variance is
    low = constant | (var <= float(min_variance)) if min_variance > 0 else constant
    if low.any():
        what = "zero variance" if min_variance <= 0 else f"variance <= {min_variance:g}"
        warnings.warn(f"dropped {int(low.sum())} of {out.shape[1]} genes with {what} across the "
                      f"{out.shape[0]} regions (e.g. {format_choices(out.columns[low][:5])})",
                      GraymatterWarning, stacklevel=2)
        out = out.loc[:, ~low]
    if out.shape[1] == 0:
        raise InputError("no gene is left after filtering (requested list, variance, stability); "
                         "relax the filters")
    return out


# ================================================================================ abagen bridge

def abagen_expression(atlas, *, atlas_info=None, **overrides) -> pd.DataFrame:
    """Regional AHBA expression for any atlas with abagen, using Study B's processing.

    Calls ``abagen.get_expression_data(atlas, atlas_info, **STUDY_B_ABAGEN, **overrides)``:

    ======================================  ===============================================
    Study B step                            abagen 0.1.3 argument
    ======================================  ===============================================
    probes reannotated                      ``reannotated=True``
    drop probes below background in >=50%   ``ibf_threshold=0.5``
    one probe per gene by diff. stability   ``probe_selection="diff_stability"``,
                                            ``donor_probes="aggregate"``
    samples within 2 mm of a parcel         ``tolerance=2``, ``corrected_mni=True``
    scaled robust sigmoid per donor         ``sample_norm="srs"``, ``gene_norm="srs"``,
                                            ``norm_matched=True``
    mean within, then across donors         ``region_agg="donors"``, ``agg_metric="mean"``
    left hemisphere only                    ``lr_mirror=None``, then ``match_regions(...,
                                            hemisphere="lh")``
    ======================================  ===============================================

    Needs the AHBA microarray data (abagen downloads it to ``data_dir`` on first use, ~4 GB).

    Parameters
    ----------
    atlas : str, os.PathLike, nibabel image or tuple of GIFTI images
        Parcellation, as for abagen.
    atlas_info : str, os.PathLike or pandas.DataFrame, optional
        abagen's atlas table (id, label, hemisphere, structure). When given, the returned index
        holds ``{lh|rh}_{label}`` names instead of ids, ready for :func:`match_regions`.
    **overrides
        Any other ``abagen.get_expression_data`` argument (e.g. ``data_dir``, ``donors``,
        ``n_proc``), or a replacement of a Study B setting.

    Returns
    -------
    expression : (n_regions, n_genes) pandas.DataFrame

    Raises
    ------
    InputError
        abagen is not installed, or an override is not an argument of abagen's function.

    Examples
    --------
    >>> expr = abagen_expression("atlas.nii.gz", atlas_info="atlas.csv",
    ...                          data_dir="~/abagen-data")  # doctest: +SKIP
    """
    try:
        import abagen
    except ImportError:
        raise InputError("abagen_expression needs abagen: pip install 'graymatter[abagen]' "
                         "(or pip install abagen)") from None
    params = inspect.signature(abagen.get_expression_data).parameters
    allowed = set(params) - {"atlas", "atlas_info"}
    open_ended = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    unknown = sorted(set(overrides) - allowed)
    if unknown and not open_ended:
        raise InputError(f"abagen.get_expression_data has no argument(s) {format_choices(unknown)}; "
                         f"allowed: {format_choices(sorted(allowed), limit=40)}")
    kwargs = {k: v for k, v in STUDY_B_ABAGEN.items() if k in allowed or open_ended}
    kwargs.update(overrides)
    logger.info("abagen.get_expression_data with %s", kwargs)
    result = abagen.get_expression_data(atlas, atlas_info, **kwargs)
    frame = result[0] if isinstance(result, tuple) else result
    if isinstance(frame, dict):  # return_donors=True: average the donors' matrices
        frame = pd.concat(list(frame.values())).groupby(level=0).mean()
    expr = pd.DataFrame(frame).astype(np.float64)
    if atlas_info is not None:
        info = atlas_info if isinstance(atlas_info, pd.DataFrame) else pd.read_csv(atlas_info)
        cols = {c.lower(): c for c in info.columns}
        if {"id", "label", "hemisphere"} <= set(cols):
            hemi = info[cols["hemisphere"]].astype(str).str.upper().map(
                {"L": "lh_", "R": "rh_"}).fillna("")
            names = dict(zip(info[cols["id"]].astype(int),
                             hemi + info[cols["label"]].astype(str)))
            expr.index = pd.Index([names.get(int(i), str(i)) for i in expr.index], name="region")
    expr.columns.name = "gene"
    return expr
