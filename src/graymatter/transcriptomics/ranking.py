"""Pre-ranked gene lists: GSEA ``.rnk`` files and gene,score tables (as gseapy's prerank takes).

A ``.rnk`` file (GSEA's format) has two tab-separated columns, gene and score, no header, and
``#`` comment lines; a header row whose score cell is not a number is tolerated. Any other file
is a CSV/TSV table with a header, read by column name: the gene column and a score column.
"""

from __future__ import annotations

import csv
import logging
from pathlib import Path

import numpy as np
import pandas as pd

from graymatter.errors import InputError, format_choices
from graymatter.transcriptomics.gsea import check_ranking

__all__ = ["read_ranking"]

logger = logging.getLogger("graymatter")

# Header names of the gene column of a ranking table (compared case-insensitively).
GENE_COLUMNS = ("gene", "genes", "gene_symbol", "symbol", "gene_name", "name")


def read_ranking(path, *, score_column: str | None = None) -> pd.Series:
    """Read a pre-ranked gene list: a GSEA ``.rnk`` file or a gene,score CSV/TSV table.

    Parameters
    ----------
    path : str or os.PathLike
        ``.rnk``: two tab-separated columns, gene and score (``#`` lines are comments; a first
        row with a non-numeric score is a header). Other files (``.csv``, ``.tsv``, ``.txt``):
        a table with a header; the gene column is the one named ``gene``, ``gene_symbol``,
        ``symbol``, ``gene_name`` or ``name`` (any case), else the first column.
    score_column : str, optional
        Column of the scores in a table. Default: the only column besides the gene column, or
        the one named ``score``.

    Returns
    -------
    ranking : (n_genes,) pandas.Series of float64
        Scores indexed by upper-cased gene symbol, in file order (validated by
        :func:`graymatter.transcriptomics.gsea.check_ranking`).

    Raises
    ------
    InputError
        Missing file, a row with the wrong number of cells, a score that is not a number, no
        score column, missing or infinite scores, or a gene named twice (the message names the
        file, and the line or column).

    Examples
    --------
    >>> ranking = read_ranking("mdd_thickness.rnk")  # doctest: +SKIP
    >>> ranking.head(2)  # doctest: +SKIP
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"ranked gene list '{path}' does not exist; pass a .rnk file (gene<TAB>"
                         "score per line) or a CSV/TSV table with gene and score columns")
    if path.suffix.lower() == ".rnk":
        if score_column is not None:
            raise InputError(f"'{path}' is a .rnk file (gene and score, no column names): "
                             f"score_column={score_column!r} does not apply")
        genes, scores = _read_rnk(path)
    else:
        genes, scores = _read_table(path, score_column)
    ranking = check_ranking(pd.Series(scores, index=genes, dtype=np.float64),
                            name=f"ranked gene list '{path}'")
    logger.info("Read a ranking of %d genes from %s", len(ranking), path)
    return ranking


def _number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def _read_rnk(path: Path) -> tuple[list[str], list[float]]:
    genes, scores = [], []
    lines = path.read_text(encoding="utf-8-sig", errors="replace").splitlines()
    for number, line in enumerate(lines, start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        cells = [c.strip() for c in line.split("\t")]
        if len(cells) != 2:
            raise InputError(f"ranked gene list '{path}', line {number}: expected 2 tab-separated "
                             f"cells (gene, score), found {len(cells)}: {line.strip()[:80]!r}. A "
                             ".rnk file holds one gene and its score per line.")
        score = _number(cells[1])
        if score is None:
            if not genes and not scores:  # a header row (e.g. "gene<TAB>score")
                continue
            raise InputError(f"ranked gene list '{path}', line {number}: the score of gene "
                             f"{cells[0]!r} is {cells[1]!r}, not a number")
        if not cells[0]:
            raise InputError(f"ranked gene list '{path}', line {number}: the gene is blank")
        genes.append(cells[0])
        scores.append(score)
    if not genes:
        raise InputError(f"ranked gene list '{path}' has no gene<TAB>score line")
    return genes, scores


def _read_table(path: Path, score_column: str | None) -> tuple[list[str], list[float]]:
    text = path.read_text(encoding="utf-8-sig", errors="replace")
    lines = [ln for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    if not lines:
        raise InputError(f"ranked gene list '{path}' is empty")
    delimiter = "\t" if "\t" in lines[0] else ","
    rows = list(csv.reader(lines, delimiter=delimiter))
    header = [h.strip() for h in rows[0]]
    lower = [h.lower() for h in header]
    k_gene = next((lower.index(c) for c in GENE_COLUMNS if c in lower), 0)
    k_score = _score_index(path, header, k_gene, score_column)
    genes, scores = [], []
    for number, row in enumerate(rows[1:], start=2):
        if len(row) != len(header):
            raise InputError(f"ranked gene list '{path}', data row {number - 1}: {len(row)} "
                             f"cells but the header has {len(header)}")
        cell = row[k_score].strip()
        score = np.nan if cell.lower() in ("", "na", "n/a", "nan") else _number(cell)
        if score is None:
            raise InputError(f"ranked gene list '{path}', data row {number - 1}, column "
                             f"{header[k_score]!r}: expected a number, found {cell!r}")
        if not row[k_gene].strip():
            raise InputError(f"ranked gene list '{path}', data row {number - 1}: the gene "
                             f"(column {header[k_gene]!r}) is blank")
        genes.append(row[k_gene].strip())
        scores.append(score)
    return genes, scores


def _score_index(path: Path, header: list[str], k_gene: int, score_column) -> int:
    if score_column is not None:
        if score_column not in header:
            raise InputError(f"ranked gene list '{path}' has no column {score_column!r}; "
                             f"columns: {format_choices(header)}")
        return header.index(score_column)
    others = [k for k in range(len(header)) if k != k_gene]
    named = [k for k in others if header[k].lower() == "score"]
    if len(others) == 1 or named:
        return (named or others)[0]
    raise InputError(f"ranked gene list '{path}': which column holds the scores? Columns "
                     f"besides the gene column {header[k_gene]!r}: "
                     f"{format_choices([header[k] for k in others])}. Name it 'score' or pass "
                     "its name (--ranking-column / score_column=).")
