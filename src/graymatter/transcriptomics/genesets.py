"""Gene sets: GMT and (gene, set) CSV readers, a GMT writer, restriction to the measured genes.

Conventions shared by every enrichment function in graymatter:

* **Case.** Gene symbols are compared upper-cased (HGNC symbols are upper-case; files often carry
  ``C1orf61``-style spellings). Readers upper-case and strip every symbol, and so does
  :meth:`GeneSets.restrict` for the background, so ``c1orf61`` and ``C1ORF61`` are the same gene.
* **Aliases.** No alias database is shipped. Pass ``aliases={"old symbol": "new symbol", ...}``
  (e.g. built from HGNC's "previous symbols" table) to the readers or to :meth:`GeneSets.restrict`;
  it is applied, after upper-casing, to the set genes before they are matched to the data.
* **Background.** Enrichment is only meaningful against the genes actually measured:
  :meth:`GeneSets.restrict` keeps the measured genes of each set, applies the size filters, and
  returns a report of how many genes and sets were dropped and why.
* **Empty GMT lines.** A GMT line with a set name but no genes is skipped with a
  :class:`~graymatter.errors.GraymatterWarning` naming the file and line (GSEA's own reader skips
  such lines too); a duplicated set name is an :class:`~graymatter.errors.InputError`.
"""

from __future__ import annotations

import logging
import operator
import os
import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from graymatter.errors import GraymatterWarning, InputError, format_choices
from graymatter.io.atomic import write_text

__all__ = ["GeneSets", "read_gmt", "write_gmt", "read_gene_table", "normalise_symbols"]

logger = logging.getLogger("graymatter")


def normalise_symbols(genes: Iterable, *, aliases: Mapping[str, str] | None = None) -> list[str]:
    """Upper-case and strip gene symbols, apply ``aliases``, drop blanks and repeats (order kept).

    Parameters
    ----------
    genes : iterable of str
    aliases : mapping of str to str, optional
        Old symbol -> current symbol; keys and values are compared upper-cased.

    Returns
    -------
    list of str

    Examples
    --------
    >>> normalise_symbols([" gfap", "GFAP", "c1orf61", ""], aliases={"C1ORF61": "CRNDE"})
    ['GFAP', 'CRNDE']
    """
    table = _alias_table(aliases)
    out: dict[str, None] = {}
    for gene in genes:
        if gene is None or (isinstance(gene, float) and gene != gene):
            continue
        symbol = str(gene).strip().upper()
        if not symbol:
            continue
        out.setdefault(table.get(symbol, symbol), None)
    return list(out)


def _alias_table(aliases: Mapping[str, str] | None) -> dict[str, str]:
    if aliases is None:
        return {}
    if not isinstance(aliases, Mapping):
        raise InputError(f"aliases must be a mapping of old -> new gene symbol (a dict); got "
                         f"{type(aliases).__name__}. Pass e.g. aliases={{'C1ORF61': 'CRNDE'}}.")
    return {str(k).strip().upper(): str(v).strip().upper() for k, v in aliases.items()}


@dataclass(frozen=True, eq=False)
class GeneSets:
    """Named gene sets (upper-cased symbols, no repeats within a set).

    Attributes
    ----------
    sets : dict of str to list of str
        Set name -> member genes, in file order.
    descriptions : dict of str to str
        Set name -> description (GMT second column; ``""`` when absent).
    source : str
        Where the sets came from (a file path or a free label).

    Examples
    --------
    >>> gs = GeneSets({"a": ["GFAP", "AQP4"]}, {"a": "astrocytes"}, "example")
    >>> len(gs), int(gs.sizes()["a"])
    (1, 2)
    """

    sets: dict[str, list[str]]
    descriptions: dict[str, str] = field(default_factory=dict)
    source: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.sets, Mapping):
            raise InputError(f"GeneSets.sets must be a dict of set name -> list of genes; got "
                             f"{type(self.sets).__name__}.")
        clean = {}
        for name, genes in self.sets.items():
            if isinstance(genes, str):
                raise InputError(f"gene set {name!r} is a single string ({genes[:40]!r}); expected "
                                 f"a list of gene symbols, e.g. ['GFAP', 'AQP4'].")
            clean[str(name)] = normalise_symbols(genes)
        object.__setattr__(self, "sets", clean)
        desc = {name: str(self.descriptions.get(name, "")) for name in clean}
        object.__setattr__(self, "descriptions", desc)

    def __len__(self) -> int:
        return len(self.sets)

    def __iter__(self):
        return iter(self.sets)

    def __getitem__(self, name: str) -> list[str]:
        try:
            return self.sets[name]
        except KeyError:
            raise InputError(f"no gene set named {name!r} in {self.source or 'these gene sets'} "
                             f"(sets: {format_choices(self.sets)})") from None

    def names(self) -> list[str]:
        """Set names in order."""
        return list(self.sets)

    def sizes(self) -> pd.Series:
        """Number of genes in each set (a Series indexed by set name)."""
        return pd.Series({k: len(v) for k, v in self.sets.items()}, dtype="int64", name="size")

    def genes(self) -> list[str]:
        """All genes in any set (union, first-seen order)."""
        return list(dict.fromkeys(g for genes in self.sets.values() for g in genes))

    def restrict(self, background: Iterable[str], *, min_size: int = 5, max_size: int = 500,
                 aliases: Mapping[str, str] | None = None) -> tuple[GeneSets, pd.DataFrame]:
        """Keep the measured genes of each set and the sets whose size is within the limits.

        Parameters
        ----------
        background : iterable of str
            The genes actually measured (e.g. the columns of the expression matrix); compared
            upper-cased.
        min_size, max_size : int, default=5, 500
            Keep a set when ``min_size <= n_in_background <= max_size``.
        aliases : mapping of str to str, optional
            Old -> current symbols applied to the set genes before matching.

        Returns
        -------
        restricted : GeneSets
            The kept sets, members restricted to the background (set order kept).
        report : (n_sets, 5) pandas.DataFrame
            Indexed by set name: ``n_genes`` (in the set), ``n_in_background``, ``n_dropped``
            (not measured), ``kept`` (bool) and ``reason`` (``""`` when kept, else
            ``"no genes in background"``, ``"smaller than min_size=…"`` or ``"larger than
            max_size=…"``).

        Raises
        ------
        InputError
            If the limits are invalid, the background is empty, or no set survives (the message
            gives the size range that was found).

        Examples
        --------
        >>> gs = GeneSets({"a": ["X1", "X2", "Y9"]}, {}, "ex")
        >>> kept, report = gs.restrict(["x1", "X2", "X3"], min_size=1)
        >>> kept["a"], int(report.loc["a", "n_dropped"])
        (['X1', 'X2'], 1)
        """
        min_size, max_size = check_size_limits(min_size, max_size)
        measured = set(normalise_symbols(background))
        if not measured:
            raise InputError("background is empty: pass the genes that were measured (e.g. the "
                             "expression matrix columns or the ranked genes).")
        table = _alias_table(aliases)
        kept: dict[str, list[str]] = {}
        rows = []
        for name, genes in self.sets.items():
            mapped = list(dict.fromkeys(table.get(g, g) for g in genes))
            inside = [g for g in mapped if g in measured]
            n_in = len(inside)
            if n_in == 0:
                reason = "no genes in background"
            elif n_in < min_size:
                reason = f"smaller than min_size={min_size}"
            elif n_in > max_size:
                reason = f"larger than max_size={max_size}"
            else:
                reason = ""
                kept[name] = inside
            rows.append((name, len(mapped), n_in, len(mapped) - n_in, reason == "", reason))
        report = pd.DataFrame(rows, columns=["set", "n_genes", "n_in_background", "n_dropped",
                                             "kept", "reason"]).set_index("set")
        n_dropped_sets = int((~report["kept"]).sum())
        if n_dropped_sets:
            logger.info("gene sets: %d of %d sets dropped (%s)", n_dropped_sets, len(report),
                        "; ".join(f"{r}: {n}" for r, n in
                                  report.loc[~report["kept"], "reason"].value_counts().items()))
        if not kept:
            sizes = report["n_in_background"]
            raise InputError(
                f"no gene set of {self.source or 'the gene sets'} has between min_size={min_size} "
                f"and max_size={max_size} measured genes (sizes after restriction to the "
                f"{len(measured)} background genes range {int(sizes.min())}-{int(sizes.max())}). "
                f"Check that the gene symbols match (case is ignored; pass aliases= for renamed "
                f"genes) or widen min_size/max_size.")
        restricted = GeneSets(kept, {k: self.descriptions.get(k, "") for k in kept}, self.source)
        return restricted, report


def check_size_limits(min_size, max_size) -> tuple[int, int]:
    """Validate ``min_size``/``max_size`` (positive integers, min <= max) and return them."""
    for name, value in (("min_size", min_size), ("max_size", max_size)):
        try:
            value = operator.index(value)
        except TypeError:
            raise InputError(f"{name} must be a positive integer; got {value!r}.") from None
        if isinstance(value, bool) or value < 1:
            raise InputError(f"{name} must be a positive integer (>= 1); got {value!r}.")
    if int(min_size) > int(max_size):
        raise InputError(f"min_size ({min_size}) is larger than max_size ({max_size}); "
                         f"swap them or widen the range.")
    return int(min_size), int(max_size)


def read_gmt(path: str | os.PathLike, *, aliases: Mapping[str, str] | None = None) -> GeneSets:
    """Read a GMT file: one set per line, tab-separated ``name, description, gene, gene, …``.

    Symbols are upper-cased and stripped; repeated genes within a set are kept once. Blank lines
    are ignored. A line with a name but no genes is skipped with a
    :class:`~graymatter.errors.GraymatterWarning` naming the line.

    Parameters
    ----------
    path : path-like
    aliases : mapping of str to str, optional
        Old -> current gene symbols, applied after upper-casing.

    Returns
    -------
    GeneSets

    Raises
    ------
    InputError
        If the file is missing or unreadable, two lines use the same set name (both line numbers
        are given), or no line holds any gene.

    Examples
    --------
    >>> sets = read_gmt("cells.gmt")  # doctest: +SKIP
    >>> sets.sizes().head()  # doctest: +SKIP
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"GMT file {path} does not exist; pass the path of a tab-separated GMT "
                         f"file (name, description, genes...).")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (UnicodeDecodeError, OSError) as exc:
        raise InputError(f"cannot read GMT file {path}: {exc}. Expected UTF-8 text.") from None
    table = _alias_table(aliases)
    sets: dict[str, list[str]] = {}
    descriptions: dict[str, str] = {}
    first_line: dict[str, int] = {}
    empty: list[str] = []
    for lineno, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        fields = line.rstrip("\r\n").split("\t")
        name = fields[0].strip()
        if not name:
            raise InputError(f"GMT file {path}, line {lineno}: the first field (set name) is "
                             f"empty. Every line must start with a set name, then a tab.")
        if name in first_line:
            raise InputError(f"GMT file {path}, line {lineno}: set name {name!r} was already used "
                             f"on line {first_line[name]}. Set names must be unique; rename or "
                             f"merge the two sets.")
        first_line[name] = lineno
        genes = [table.get(g, g) for g in normalise_symbols(fields[2:])]
        genes = list(dict.fromkeys(genes))
        if not genes:
            empty.append(f"line {lineno} ({name!r})")
            continue
        sets[name] = genes
        descriptions[name] = fields[1].strip() if len(fields) > 1 else ""
    if empty:
        warnings.warn(f"GMT file {path}: skipped {len(empty)} set(s) with no genes: "
                      f"{format_choices(empty, limit=5)}.", GraymatterWarning, stacklevel=2)
    if not sets:
        raise InputError(f"GMT file {path} holds no gene set with genes; expected lines like "
                         f"'name<TAB>description<TAB>GENE1<TAB>GENE2'.")
    return GeneSets(sets, descriptions, str(path))


def write_gmt(sets: GeneSets | Mapping[str, Iterable[str]], path: str | os.PathLike) -> Path:
    """Write gene sets as a GMT file (atomically) and return its path.

    Parameters
    ----------
    sets : GeneSets or mapping of str to list of str
    path : path-like

    Returns
    -------
    pathlib.Path

    Examples
    --------
    >>> write_gmt({"a": ["GFAP", "AQP4"]}, "a.gmt")  # doctest: +SKIP
    """
    if not isinstance(sets, GeneSets):
        sets = GeneSets(dict(sets), {}, "")
    lines = []
    for name, genes in sets.sets.items():
        if "\t" in name or "\n" in name:
            raise InputError(f"set name {name!r} contains a tab or newline, which GMT cannot "
                             f"store; rename the set.")
        desc = sets.descriptions.get(name, "").replace("\t", " ").replace("\n", " ")
        lines.append("\t".join([name, desc, *genes]))
    return write_text(path, "\n".join(lines) + "\n")


def read_gene_table(path: str | os.PathLike, *, gene_column: str = "gene",
                    set_column: str | None = None,
                    aliases: Mapping[str, str] | None = None) -> GeneSets:
    """Read gene sets from a CSV/TSV with one (gene, set) pair per row.

    Parameters
    ----------
    path : path-like
        Comma-separated, or tab-separated when the name ends in ``.tsv``/``.txt``.
    gene_column : str, default="gene"
    set_column : str, optional
        The column naming the set; by default the only other column (e.g. ``class`` in
        ``celltypes_seidlitz2020_PSP.csv``).
    aliases : mapping of str to str, optional

    Returns
    -------
    GeneSets
        Sets in order of first appearance; a gene may belong to several sets.

    Raises
    ------
    InputError
        If the file or a column is missing, or ``set_column`` is ambiguous.

    Examples
    --------
    >>> cells = read_gene_table("celltypes_seidlitz2020_PSP.csv")  # doctest: +SKIP
    >>> cells.names()  # doctest: +SKIP
    ['Astro', 'Endo', 'Micro', 'Neuro-Ex', 'Neuro-In', 'OPC', 'Oligo']
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"gene table {path} does not exist; expected a CSV with columns "
                         f"{gene_column!r} and a set column.")
    sep = "\t" if path.suffix.lower() in (".tsv", ".txt") else ","
    try:
        frame = pd.read_csv(path, sep=sep, dtype=str, keep_default_na=False,
                            encoding="utf-8-sig")
    except pd.errors.EmptyDataError:
        raise InputError(f"gene table {path} is empty ({path.stat().st_size} bytes, no header "
                         f"line); expected a CSV with a header such as '{gene_column},set' and "
                         "one gene per line.") from None
    except (pd.errors.ParserError, UnicodeDecodeError, OSError) as exc:
        raise InputError(f"cannot read gene table {path}: {exc}") from None
    frame.columns = [str(c).strip() for c in frame.columns]
    if gene_column not in frame.columns:
        raise InputError(f"gene table {path} has no column {gene_column!r} (columns: "
                         f"{format_choices(frame.columns)}); pass gene_column=.")
    if set_column is None:
        others = [c for c in frame.columns if c != gene_column]
        if len(others) != 1:
            raise InputError(f"gene table {path}: cannot tell which column names the sets "
                             f"(candidates: {format_choices(others)}); pass set_column=.")
        set_column = others[0]
    elif set_column not in frame.columns:
        raise InputError(f"gene table {path} has no column {set_column!r} (columns: "
                         f"{format_choices(frame.columns)}); pass set_column=.")
    labels = frame[set_column].astype(str).str.strip()
    blank = labels == ""
    if blank.any():
        rows = (frame.index[blank] + 2).tolist()  # +2: header line and 1-based numbering
        raise InputError(f"gene table {path}: column {set_column!r} is empty on line(s) "
                         f"{format_choices(rows, limit=5)}; every gene needs a set name.")
    sets: dict[str, list[str]] = {}
    for name, genes in frame[gene_column].groupby(labels, sort=False):
        sets[str(name)] = normalise_symbols(genes, aliases=aliases)
    sets = {k: v for k, v in sets.items() if v}
    if not sets:
        raise InputError(f"gene table {path} holds no genes in column {gene_column!r}.")
    return GeneSets(sets, {k: "" for k in sets}, str(path))
