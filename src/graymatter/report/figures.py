"""Figures: drawn on matplotlib ``Figure`` objects directly, so no global pyplot state is touched."""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from ..io.atomic import atomic_path


def plot_design_matrix(matrix: pd.DataFrame, *, title: str | None = None) -> Figure:
    """Draw a design matrix as an image, one column per regressor, like SPM and nilearn.

    Each column is scaled by its maximum absolute value so indicator columns and centred
    covariates share one colour scale (the TSV holds the real values).

    Parameters
    ----------
    matrix : (n_subjects, n_columns) pandas.DataFrame
        The design matrix; column names label the x axis.
    title : str, optional
        Figure title.

    Returns
    -------
    matplotlib.figure.Figure
    """
    values = matrix.to_numpy(dtype=float)
    scale = np.abs(values).max(axis=0)
    scale[scale == 0] = 1.0
    n_rows, n_cols = values.shape
    fig = Figure(figsize=(max(3.0, 0.45 * n_cols + 1.5), max(3.0, min(10.0, 0.04 * n_rows + 2.5))))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    ax.imshow(values / scale, aspect="auto", interpolation="nearest", cmap="gray", vmin=-1, vmax=1)
    ax.set_xticks(range(n_cols))
    ax.set_xticklabels(matrix.columns, rotation=60, ha="right", fontsize=8)
    ax.set_ylabel(f"subjects (n = {n_rows})")
    ax.set_yticks([])
    if title:  # long formulas wrap to the figure's width instead of being cut off
        ax.set_title(textwrap.fill(title, width=max(30, int(9 * fig.get_figwidth()))), fontsize=9)
    fig.tight_layout()
    return fig


def save_figure(fig: Figure, path: str | os.PathLike, *, dpi: int = 150) -> Path:
    """Save ``fig`` atomically; the format follows the suffix (.png, .svg, .pdf)."""
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=dpi, format=path.suffix.lstrip("."))
    return path
