"""Find each subject's image by id and load image sets as subjects x voxels matrices."""

from __future__ import annotations

import glob
import logging
import os
import re
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path

import nibabel as nib
import numpy as np

from graymatter.io.templates import mask_to_grid, template_overlap
from graymatter.errors import GraymatterWarning, InputError, format_choices
from graymatter.io.participants import match_subjects

logger = logging.getLogger("graymatter")

_IMAGE_SUFFIXES = (".nii.gz", ".nii", ".img", ".hdr", ".mgz", ".mgh")
# Filename prefixes SPM, CAT12 and FSL put before the subject id, e.g. "s8mwp1", "m0wp1",
# "wrc1", "mw". An id may start right after one of them without a delimiter.
_PREFIX = re.compile(r"(?:s\d*)?(?:m0?w?r?p[0-3]|m?w?r?c[1-6]|[mwr]{1,3})?")


def _stem(name: str) -> str:
    for suffix in _IMAGE_SUFFIXES:
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return name


def _id_spans(text: str, ids: set[str], lengths: list[int], *, filename: bool):
    """Yield (start, end, id) for every id that occurs in ``text`` as a whole token."""
    for start in range(len(text)):
        left_ok = start == 0 or not text[start - 1].isalnum()
        if not left_ok and filename and _PREFIX.fullmatch(text[:start]):
            left_ok = True
        if not left_ok:
            continue
        for n in lengths:
            end = start + n
            if end <= len(text) and text[start:end] in ids and (
                    end == len(text) or not text[end].isalnum()):
                yield start, end, text[start:end]


def _subjects_in_path(parts: Sequence[str], ids: set[str], lengths: list[int]) -> set[str]:
    found = set()
    for k, part in enumerate(parts):
        is_file = k == len(parts) - 1
        spans = list(_id_spans(_stem(part) if is_file else part, ids, lengths, filename=is_file))
        # An id inside a longer matching id ("01" in "sub-01") is part of that id, not a match.
        for s, e, sid in spans:
            if not any(s2 <= s and e <= e2 and (e2 - s2) > (e - s) for s2, e2, _ in spans):
                found.add(sid)
    return found


def _relative_parts(files: list[Path]) -> list[tuple[str, ...]]:
    # The folder shared by all files cannot tell subjects apart, so ids are only looked for in
    # the part of the path that varies (e.g. "/data/run-01/" must not match id "01").
    if len(files) < 2:
        return [f.parts for f in files]
    absolute = [os.path.abspath(f) for f in files]  # commonpath refuses mixed abs/rel paths
    common = os.path.commonpath([os.path.dirname(a) for a in absolute])
    return [Path(os.path.relpath(a, common)).parts for a in absolute]


def _expand(images) -> tuple[list[Path], str]:
    if isinstance(images, (str, os.PathLike)):
        pattern = os.fspath(images)
        if Path(pattern).is_dir():
            logger.info("%s is a folder: looking for NIfTI images anywhere below it", pattern)
            pattern = os.path.join(pattern, "**", "*.nii*")
        if Path(pattern).is_file():
            return [Path(pattern)], f"file '{pattern}'"  # a single image, e.g. a 1-subject study
        files = sorted(Path(p) for p in glob.glob(pattern, recursive=True) if Path(p).is_file())
        if not files:
            raise InputError(
                f"The image pattern '{pattern}' matches no file (relative to the current folder "
                f"'{Path.cwd()}'). Check the folder and the file names; use '**' to search "
                "subfolders, e.g. 'derivatives/cat12/**/mwp1*.nii*'.")
        return files, f"files matching '{pattern}'"
    try:
        files = [Path(p) for p in images]
    except TypeError as exc:
        raise InputError("images must be a glob pattern, a list of image paths or a mapping "
                         f"subject id -> path; found {type(images).__name__}.") from exc
    missing = [str(f) for f in files if not f.is_file()]
    if missing:
        raise InputError(f"{len(missing)} listed image file(s) do not exist: "
                         f"{format_choices(missing, 5)} (relative paths are read from "
                         f"'{Path.cwd()}'). Fix the paths or remove them from the list.")
    return files, "the image list"


def find_images(subject_ids: Sequence[str], images) -> dict[str, Path]:
    """Find each subject's image, matching by subject id (never by order).

    Parameters
    ----------
    subject_ids : sequence of str, shape (n_subjects,)
        Participant ids, e.g. ``participants.index``.
    images : str, os.PathLike, sequence of paths or mapping of str to path
        A glob pattern (``**`` searches subfolders; relative to the current folder; a folder
        means every ``*.nii*`` below it), a list of image paths, or a mapping subject id ->
        path. For a pattern or list, an id matches a file when it appears in the path as a
        whole token: after the start of a name, a non-alphanumeric character or an
        SPM/CAT12/FSL prefix (``mwp1``, ``smwp1``, ``s8mwp1``, ``m0wp1``, ``wrc1``, ``mw``...),
        and before the end (``.nii``/``.nii.gz`` removed) or a non-alphanumeric character. So
        ``sub-01`` matches ``mwp1sub-01_T1w.nii.gz`` and ``sub-01/anat/x.nii`` but not
        ``sub-010.nii``. Folders shared by all files are ignored.

    Returns
    -------
    paths : dict of str to pathlib.Path
        One image per subject, in ``subject_ids`` order.

    Raises
    ------
    InputError
        No file matches the pattern; a listed file is missing; subjects without an image; a
        file matching several subjects; a subject matching several files.

    Warns
    -----
    GraymatterWarning
        Files that match no participant (they are ignored).

    Examples
    --------
    >>> paths = find_images(participants.index, "cat12/mri/mwp1*.nii")  # doctest: +SKIP
    >>> paths["sub-01"]  # doctest: +SKIP
    PosixPath('cat12/mri/mwp1sub-01_T1w.nii')
    """
    subjects = [str(s) for s in subject_ids]
    if isinstance(images, Mapping):
        mapping = {str(k): Path(v) for k, v in images.items()}
        match_subjects(subjects, list(mapping), what="the image mapping")
        _expand([mapping[s] for s in subjects])  # raises if a mapped file is missing
        return {s: mapping[s] for s in subjects}

    files, what = _expand(images)
    return match_files(subjects, files, what)


def match_files(subject_ids: Sequence[str], files: Sequence, what: str) -> dict[str, Path]:
    """Match files (or file names that need not exist) to subjects by id, as find_images does.

    Parameters
    ----------
    subject_ids : sequence of str, shape (n_subjects,)
    files : sequence of str or pathlib.Path
        Paths or bare names, e.g. the names a CAT12 ``TIV.txt`` lists.
    what : str
        How to name the source in messages, e.g. ``"files matching 'mwp1*'"``.

    Returns
    -------
    paths : dict of str to pathlib.Path
        One entry per subject, in ``subject_ids`` order.

    Raises
    ------
    InputError
        Subjects without a file, a file matching several subjects, a subject matching several
        files.

    Examples
    --------
    >>> match_files(["sub-01"], ["cat_sub-01_T1w", "cat_sub-02_T1w"], "TIV.txt")  # doctest: +SKIP
    {'sub-01': PosixPath('cat_sub-01_T1w')}
    """
    subjects = [str(s) for s in subject_ids]
    files = [Path(f) for f in files]
    ids = set(subjects)
    lengths = sorted({len(s) for s in ids}, reverse=True)
    by_subject: dict[str, list[Path]] = {}
    unmatched = []
    for f, parts in zip(files, _relative_parts(files)):
        found = _subjects_in_path(parts, ids, lengths)
        if len(found) > 1:
            raise InputError(
                f"Image '{f}' matches several subjects: {format_choices(sorted(found))}. Each "
                "image must contain exactly one subject id; rename the file or pass a mapping "
                "subject id -> path.")
        if found:
            by_subject.setdefault(found.pop(), []).append(f)
        else:
            unmatched.append(f)
    for s, matched in by_subject.items():
        if len(matched) > 1:
            raise InputError(
                f"Subject {s!r} matches {len(matched)} images in {what}: "
                f"{format_choices([str(m) for m in matched], 4)}. Narrow the pattern (e.g. "
                "'mwp1*' instead of '*') or pass a mapping subject id -> path.")
    missing = [s for s in subjects if s not in by_subject]
    if missing:
        examples = format_choices([f.name for f in files[:4]], 4)
        hint = ""
        bare = {s.removeprefix("sub-") for s in missing} - set(subjects)
        if bare and any(_subjects_in_path(p, bare, sorted({len(b) for b in bare}, reverse=True))
                        for p in _relative_parts(files)):
            hint = (" Some file names contain the ids without their 'sub-' prefix: make the "
                    "participant ids and the file names use the same ids.")
        raise InputError(
            f"{len(missing)} of {len(subjects)} subjects have no image in {what}: "
            f"{format_choices(missing, 8)}. Example file names: {examples}. Each file name (or "
            f"folder) must contain the subject id exactly as in the participants table.{hint} "
            "Add the images or remove those participants.")
    if unmatched:
        warnings.warn(f"{len(unmatched)} image(s) in {what} match no participant and are "
                      f"ignored, e.g. {format_choices([str(u) for u in unmatched], 3)}",
                      GraymatterWarning, stacklevel=2)
    logger.info("Matched %d images to subjects by id", len(subjects))
    return {s: by_subject[s][0] for s in subjects}


class MaskedGrid:
    """A voxel grid (shape, affine) plus a boolean mask; converts images <-> matrices.

    Voxels are ordered as ``data[mask]`` (C order of the grid), the same order as nilearn's
    ``NiftiMasker``.

    Parameters
    ----------
    mask : numpy.ndarray of bool, shape (X, Y, Z)
        Voxels kept (True).
    affine : numpy.ndarray of float, shape (4, 4)
        Voxel indices to world (mm) coordinates.

    Examples
    --------
    >>> grid = MaskedGrid(np.ones((2, 3, 4), bool), np.eye(4))
    >>> grid.n_voxels
    24
    >>> grid.to_image(np.arange(24.0)).shape
    (2, 3, 4)
    """

    def __init__(self, mask: np.ndarray, affine: np.ndarray):
        mask = np.asarray(mask)
        affine = np.asarray(affine, dtype=np.float64)
        if mask.ndim != 3:
            raise InputError(f"mask must be a 3-D array; found shape {mask.shape}.")
        if affine.shape != (4, 4):
            raise InputError(f"affine must be a 4 x 4 matrix; found shape {affine.shape}.")
        self.mask = mask.astype(bool)  # a private copy: callers cannot change the voxel set
        self.mask.flags.writeable = False
        self.affine = affine
        self.affine.flags.writeable = False
        self.n_voxels = int(self.mask.sum())

    @property
    def shape(self) -> tuple[int, int, int]:
        """Grid shape (X, Y, Z)."""
        return tuple(self.mask.shape)

    def __repr__(self) -> str:
        zooms = np.round(np.sqrt((self.affine[:3, :3] ** 2).sum(axis=0)), 3).tolist()
        return f"MaskedGrid(shape={self.shape}, voxel_mm={zooms}, n_voxels={self.n_voxels})"

    def to_image(self, values, *, fill: float = 0.0) -> nib.Nifti1Image:
        """Put mask-voxel values back on the grid.

        Parameters
        ----------
        values : array-like, shape (n_voxels,) or (k, n_voxels)
            One value per mask voxel (in ``data[mask]`` order), or k maps.
        fill : float, default=0.0
            Value outside the mask (e.g. ``np.nan``).

        Returns
        -------
        image : nibabel.Nifti1Image of float32, shape (X, Y, Z) or (X, Y, Z, k)
            NaN values stay NaN.
        """
        values = np.asarray(values)
        if values.ndim not in (1, 2) or values.shape[-1] != self.n_voxels:
            raise InputError(f"values must have shape (n_voxels,) or (k, n_voxels) with "
                             f"n_voxels={self.n_voxels} (this grid's mask voxels); found shape "
                             f"{values.shape}.")
        extra = () if values.ndim == 1 else (values.shape[0],)
        data = np.full(self.shape + extra, fill, dtype=np.float32)
        data[self.mask] = values.T  # boolean indexing over the 3 grid axes -> (n_voxels, k)
        image = nib.Nifti1Image(data, self.affine)
        image.header.set_xyzt_units("mm")
        return image

    def coordinates(self) -> np.ndarray:
        """World (mm) coordinates of the mask voxels, shape (n_voxels, 3), in voxel order."""
        return nib.affines.apply_affine(self.affine, np.argwhere(self.mask))

    def mask_image(self) -> nib.Nifti1Image:
        """The mask as a uint8 image (1 inside), shape (X, Y, Z)."""
        return nib.Nifti1Image(self.mask.astype(np.uint8), self.affine)


def _load(path) -> tuple[nib.spatialimages.SpatialImage, tuple[int, ...]]:
    """Open an image lazily (header only); return it with its 3-D shape."""
    if not Path(path).is_file():
        raise InputError(f"Image file '{path}' does not exist. Check the path.")
    try:
        img = nib.load(path)
    except Exception as exc:  # nibabel raises many types (ImageFileError, gzip, EOF...)
        raise InputError(f"Cannot read image '{path}': {exc}. Expected a NIfTI image (.nii or "
                         ".nii.gz); the file may be truncated or corrupt: re-create it.") from exc
    shape = tuple(int(s) for s in img.shape)
    if len(shape) < 3 or any(s != 1 for s in shape[3:]):
        raise InputError(f"Image '{path}' has shape {shape}: expected one 3-D volume per file "
                         "(a 4-D series must be split, e.g. with nilearn.image.iter_img).")
    return img, shape[:3]


def _read(img, shape, path) -> np.ndarray:
    try:
        return np.asanyarray(img.dataobj).reshape(shape)
    except Exception as exc:
        raise InputError(f"Cannot read the voxel data of image '{path}': {exc}. The file may "
                         "be truncated or corrupt: re-create it.") from exc


#: Below this fraction of the MNI152 gray matter inside the images' field of view, images are
#: not in template space (native-space images with the origin at a corner cover about 10%).
MIN_TEMPLATE_OVERLAP = 0.5
#: Below this fraction, part of the brain is cut off: a warning.
WARN_TEMPLATE_OVERLAP = 0.95


def check_template_space(paths: Sequence, shape, affine) -> None:
    """Refuse images whose field of view misses the MNI152 brain (the default mask's space).

    Parameters
    ----------
    paths : sequence of path
        The images (all on one grid: ``shape``, ``affine``); the first is named.
    shape : tuple of int
    affine : numpy.ndarray, shape (4, 4)

    Raises
    ------
    InputError
        Less than :data:`MIN_TEMPLATE_OVERLAP` of the MNI152 gray matter is inside the field of
        view (native-space images, a wrong affine).

    Warns
    -----
    GraymatterWarning
        Less than :data:`WARN_TEMPLATE_OVERLAP` is inside (part of the brain cut off).
    """
    overlap = template_overlap(shape, affine)
    if overlap >= WARN_TEMPLATE_OVERLAP:
        return
    which, verb = ((f"Image '{paths[0]}'", "is") if len(paths) == 1 else
                   (f"The {len(paths)} images (all on the grid of the first, '{paths[0]}')",
                    "are"))
    found = (f"the field of view (shape {tuple(shape)}, voxel (0,0,0) at "
             f"{np.round(np.asarray(affine)[:3, 3], 1).tolist()} mm) covers "
             f"{overlap:.0%} of the MNI152 brain")
    if overlap < MIN_TEMPLATE_OVERLAP:
        raise InputError(f"{which} {verb} not in MNI template space: "
                         f"{found}. The default mask is the MNI152 gray matter, so the images "
                         "must be normalised to MNI first (e.g. CAT12/SPM 'mwp1' images, or "
                         "`graymatter preprocess`); or pass --mask with a mask in the images' "
                         "own space.")
    warnings.warn(f"{which}: {found}; the rest of the brain is outside "
                  "the images and is not analysed. Check that the images are in MNI space.",
                  GraymatterWarning, stacklevel=3)


def degenerate(values: np.ndarray) -> str | None:
    """Why an image's values at the mask voxels cannot be analysed (all NaN, constant), or None."""
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return "all NaN or infinite"
    low, high = float(finite.min()), float(finite.max())
    if low == high:
        return f"constant ({low:g} at every voxel)" if low else "all zero"
    return None


def refuse_degenerate(bad: list[tuple[Path, str]], n_images: int) -> None:
    """Raise an InputError naming every degenerate image (see :func:`degenerate`)."""
    if bad:
        listed = "; ".join(f"'{path}': {why}" for path, why in bad[:10])
        more = f" (and {len(bad) - 10} more)" if len(bad) > 10 else ""
        raise InputError(f"{len(bad)} of {n_images} image(s) hold no usable data inside the "
                         f"mask: {listed}{more}. Such an image is a failed preprocessing step or "
                         "a wrong file, and would distort every voxel's statistics: re-create "
                         "it, or remove the subject from the participants table.")


def load_image_matrix(paths: Sequence, *, mask=None, dtype="float64", atol: float = 1e-3,
                      progress: bool = True) -> tuple[np.ndarray, MaskedGrid]:
    """Load 3-D images on one grid into a subjects x voxels matrix.

    Memory holds the result plus one image at a time (images are read lazily).

    Parameters
    ----------
    paths : sequence of str or os.PathLike, shape (n_images,)
        Images on a common grid, e.g. ``list(find_images(ids, pattern).values())``. A 4-D image
        with one volume counts as 3-D.
    mask : None, str, os.PathLike, nibabel image or numpy.ndarray of bool, default=None
        Voxels to keep. None: the MNI152 gray-matter mask on the images' grid
        (:func:`graymatter.io.templates.default_gm_mask`). An image on another grid is
        resampled with nearest-neighbour interpolation. Voxels > 0 are kept.
    dtype : str or numpy.dtype, default="float64"
        Floating dtype of the matrix (``"float32"`` halves memory).
    atol : float, default=1e-3
        Tolerance (mm) when comparing affines.
    progress : bool, default=True
        Show a progress bar (only for more than 3 images and on a terminal).

    Returns
    -------
    data : numpy.ndarray, shape (n_images, n_voxels)
        Row i is image i at the mask voxels, in ``image_data[mask]`` (C) order. NaN kept.
    grid : MaskedGrid
        The grid and mask, to turn result vectors back into images.

    Raises
    ------
    InputError
        Missing, unreadable or 4-D image; an image whose shape or affine differs from the first
        image's; an empty mask; with the default mask, images not in MNI space (see
        :func:`check_template_space`); images that are all NaN, all zero or constant inside
        the mask (every such file is named).

    Examples
    --------
    >>> data, grid = load_image_matrix(["a.nii.gz", "b.nii.gz"])  # doctest: +SKIP
    >>> grid.to_image(data.mean(axis=0)).to_filename("mean.nii.gz")  # doctest: +SKIP
    """
    from tqdm import tqdm

    paths = [Path(p) for p in paths]
    if not paths:
        raise InputError("load_image_matrix got no image paths: pass at least one image.")
    dtype = np.dtype(dtype)
    if dtype.kind != "f":
        raise InputError(f"dtype must be a floating type such as 'float64' or 'float32'; "
                         f"found {dtype}.")
    # Check every header first: a grid mismatch should fail before minutes of reading.
    images = []
    for path in paths:
        img, shape = _load(path)
        if images:
            ref_path, ref_img, ref_shape = images[0]
            if shape != ref_shape or not np.allclose(img.affine, ref_img.affine, atol=atol):
                raise InputError(
                    f"Image '{path}' is not on the same voxel grid as the first image "
                    f"'{ref_path}': shape {shape} vs {ref_shape}, affine "
                    f"{np.round(img.affine, 3).tolist()} vs {np.round(ref_img.affine, 3).tolist()}."
                    " All images must share one grid: resample them to the first image (e.g. "
                    "nilearn.image.resample_to_img(img, first_img)) or preprocess them all with "
                    "the same template and voxel size.")
        images.append((path, img, shape))
    _, ref_img, ref_shape = images[0]
    affine = np.asarray(ref_img.affine, dtype=np.float64)
    if mask is None:  # the default mask is in MNI space: so must the images be
        check_template_space(paths, ref_shape, affine)
    voxels = mask_to_grid(mask, ref_shape, affine, atol=atol)
    if not voxels.any():
        raise InputError(f"The mask has no voxel inside the images' grid {ref_shape} (after "
                         "resampling): pass a mask that overlaps the images, e.g. in the same "
                         "space (MNI).")
    grid = MaskedGrid(voxels, affine)
    data = np.empty((len(paths), grid.n_voxels), dtype=dtype)
    bar = tqdm(images, desc="Loading images", unit="image",
               disable=None if progress and len(paths) > 3 else True)
    bad = []
    for i, (path, img, shape) in enumerate(bar):
        data[i] = _read(img, shape, path)[grid.mask]
        img.uncache()  # keep one image in memory, not all of them
        why = degenerate(data[i])
        if why:
            bad.append((path, why))
    refuse_degenerate(bad, len(paths))
    logger.info("Loaded %d images x %d voxels (%s)", len(paths), grid.n_voxels, grid)
    return data, grid


__all__ = ["find_images", "match_files", "MaskedGrid", "check_template_space", "degenerate",
           "load_image_matrix", "refuse_degenerate"]
