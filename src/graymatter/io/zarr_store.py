"""A subjects x voxels matrix stored chunked on disk (zarr), written one image at a time.

Layout of a store (a zarr v3 group folder)::

    store.zarr/
      Y      (n_subjects, n_voxels) float32|float64, chunks (chunk_subjects, chunk_voxels)
      mask   (X, Y, Z) uint8, only when written from images (or with a grid)
      attrs  {"graymatter": "subjects x voxels", "affine": 4x4 or null,
              "subjects": row ids or null, "sources": {id: [path, bytes, mtime_ns]} or null}

Chunks span ``chunk_subjects`` rows rather than every subject: a chunk holding all subjects would
be rewritten once per image while streaming images in. Readers take voxel blocks over all rows
(``Y[:, lo:hi]``), reading ``n_subjects / chunk_subjects`` chunks per block.
"""

from __future__ import annotations

import errno
import logging
import os
import shutil
import tempfile
from pathlib import Path

import nibabel as nib
import numpy as np
from tqdm.auto import tqdm

from graymatter.io.templates import mask_to_grid
from graymatter.errors import InputError
from graymatter.io.images import (MaskedGrid, check_template_space, degenerate,
                                  refuse_degenerate)
from graymatter.io.outputs import write_error

__all__ = ["write_matrix_zarr", "open_matrix_zarr", "store_attributes", "image_fingerprint",
           "default_chunk_voxels"]

logger = logging.getLogger("graymatter")


def _image_rows(paths, mask, atol):
    """(n, m, grid, row(i)) reading one image per call, after checking every header."""
    paths = [Path(p) for p in paths]
    headers = []
    for path in paths:
        if not path.is_file():
            raise InputError(f"Image file '{path}' does not exist. Check the path.")
        try:
            img = nib.load(path)
        except Exception as exc:  # nibabel raises many types
            raise InputError(f"Cannot read image '{path}': {exc}. Expected a 3-D NIfTI image.") from exc
        if len(img.shape) < 3 or any(s != 1 for s in img.shape[3:]):
            raise InputError(f"Image '{path}' has shape {img.shape}: expected one 3-D volume per file.")
        if headers and (img.shape[:3] != headers[0][1].shape[:3]
                        or not np.allclose(img.affine, headers[0][1].affine, atol=atol)):
            raise InputError(f"Image '{path}' is not on the grid of the first image '{paths[0]}' "
                             f"(shape {img.shape[:3]} vs {headers[0][1].shape[:3]} or a different "
                             "affine); resample all images to one grid first.")
        headers.append((path, img))
    shape, affine = tuple(headers[0][1].shape[:3]), np.asarray(headers[0][1].affine, np.float64)
    if mask is None:  # the default mask is in MNI space: so must the images be
        check_template_space(paths, shape, affine)
    voxels = mask_to_grid(mask, shape, affine, atol=atol)
    if not voxels.any():
        raise InputError(f"The mask has no voxel inside the images' grid {shape}: pass a mask in "
                         "the images' space.")
    grid = MaskedGrid(voxels, affine)

    def row(i):
        path, img = headers[i]
        data = np.asanyarray(img.dataobj).reshape(shape)[grid.mask]
        img.uncache()
        why = degenerate(data)
        if why:  # images are streamed once: name the first bad one and stop
            refuse_degenerate([(path, why)], len(paths))
        return data

    return len(paths), grid.n_voxels, grid, row


def _array_rows(source):
    shape = getattr(source, "shape", None)
    if shape is None:
        source = np.asarray(source)
        shape = source.shape
    if len(shape) != 2 or shape[0] < 1 or shape[1] < 1:
        raise InputError(f"write_matrix_zarr: an array source must be (n_subjects, n_voxels) with "
                         f"both > 0; found shape {tuple(shape)}.")
    return int(shape[0]), int(shape[1]), None, lambda i: np.asarray(source[i])


def _zarr():
    """The zarr module, or an error that says how to install it."""
    try:
        import zarr
    except ImportError as exc:
        raise InputError("out-of-core data need the zarr package: pip install "
                         "'graymatter[scale]' (or pip install zarr).") from exc
    return zarr


def default_chunk_voxels(n_subjects: int) -> int:
    """Voxels per chunk for a store of ``n_subjects``: the largest power of two, between 1,024
    and 16,384, such that three float64 copies of all subjects x one chunk fit in ~1 GB.

    Examples
    --------
    >>> default_chunk_voxels(125), default_chunk_voxels(2_000), default_chunk_voxels(10_000)
    (16384, 16384, 4096)
    """
    fit = 1_000_000_000 // (3 * 8 * max(int(n_subjects), 1))
    return int(min(16384, max(1024, 2 ** int(np.floor(np.log2(max(fit, 1)))))))


def image_fingerprint(path) -> list:
    """``[absolute path, size in bytes, modification time in ns]`` of an image file: cheap to
    compare, and changed whenever the file is rewritten."""
    stat = Path(path).stat()
    return [str(Path(path).resolve()), int(stat.st_size), int(stat.st_mtime_ns)]


def write_matrix_zarr(source, store, *, mask=None, grid: MaskedGrid | None = None,
                      chunk_voxels: int | None = None, chunk_subjects: int = 64,
                      dtype: str = "float32",
                      atol: float = 1e-3, overwrite: bool = False, subjects=None,
                      progress: bool = False) -> Path:
    """Write a subjects x voxels matrix to a chunked zarr store, one subject at a time.

    Memory holds one image plus one row block of ``chunk_subjects`` subjects x all voxels
    (whatever the number of subjects). The store is written in a temporary folder beside
    ``store`` and renamed when complete, so an interrupted write never leaves a store that looks
    finished.

    Parameters
    ----------
    source : sequence of paths, or (n_subjects, n_voxels) array-like
        3-D images on one grid (read lazily, one at a time), or a matrix: any object with
        ``.shape`` whose ``source[i]`` gives row ``i`` (an ndarray, a memmap, a lazy generator).
    store : str or os.PathLike
        Folder of the zarr store, e.g. ``"derivatives/gm.zarr"``.
    mask : None, path, nibabel image or (X, Y, Z) bool ndarray, default=None
        Images only: voxels to keep (None: the MNI152 gray-matter mask on the images' grid).
    grid : MaskedGrid, optional
        Arrays only: the grid the columns belong to, saved with the store.
    chunk_voxels : int, optional
        Voxels per chunk (the unit of a voxel block read). Default: :func:`default_chunk_voxels`
        (16,384 for small cohorts, down to 1,024 so that a block of all subjects stays ~1 GB).
    chunk_subjects : int, default=64
        Subjects per chunk (and rows buffered while writing).
    dtype : {"float32", "float64"}, default="float32"
    atol : float, default=1e-3
        Tolerance (mm) when comparing image affines.
    overwrite : bool, default=False
        Replace an existing store.
    subjects : sequence of str, optional
        Id of each row, saved with the store (and, for image sources, each image's
        :func:`image_fingerprint`) so that a later run can check the store still matches.
    progress : bool, default=False
        Progress bar over subjects.

    Returns
    -------
    store : pathlib.Path

    Raises
    ------
    InputError
        Bad parameters, an existing store without ``overwrite``, unreadable or mismatched images,
        a row of the wrong length.

    Examples
    --------
    >>> write_matrix_zarr(np.zeros((3, 10)), "m.zarr", chunk_voxels=4)  # doctest: +SKIP
    PosixPath('m.zarr')
    """
    zarr = _zarr()
    store = Path(store)
    if np.dtype(dtype) not in (np.dtype(np.float32), np.dtype(np.float64)):
        raise InputError(f"dtype must be 'float32' or 'float64', got {dtype!r}.")
    if chunk_voxels is None:
        chunk_voxels = default_chunk_voxels(len(source) if isinstance(source, (list, tuple))
                                            else getattr(source, "shape", np.shape(source))[0])
    for name, value in (("chunk_voxels", chunk_voxels), ("chunk_subjects", chunk_subjects)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise InputError(f"{name} must be a positive integer, got {value!r}.")
    if store.exists() and not overwrite:
        raise InputError(f"The zarr store '{store}' already exists; pass overwrite=True to replace "
                         "it or choose another path.")
    is_paths = isinstance(source, (list, tuple)) and source and isinstance(source[0], (str, os.PathLike))
    if isinstance(source, (str, os.PathLike)):
        raise InputError("write_matrix_zarr: pass a list of image paths (or an array), not a single "
                         f"path {str(source)!r}.")
    n, m, img_grid, row = _image_rows(source, mask, atol) if is_paths else _array_rows(source)
    grid = img_grid if img_grid is not None else grid
    if subjects is not None:
        subjects = [str(s) for s in subjects]
        if len(subjects) != n:
            raise InputError(f"write_matrix_zarr: {len(subjects)} subject ids for {n} rows; give "
                             "one id per row.")
    sources = ({sid: image_fingerprint(path) for sid, path in zip(subjects, source)}
               if is_paths and subjects is not None else None)
    if grid is not None and grid.n_voxels != m:
        raise InputError(f"grid has {grid.n_voxels} mask voxels but the matrix has {m} columns.")

    try:
        store.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{store.name}.", suffix=".tmp", dir=store.parent))
    except OSError as exc:
        raise write_error(store, exc) from None
    try:
        root = zarr.open_group(str(tmp), mode="w")
        Y = root.create_array("Y", shape=(n, m), chunks=(min(chunk_subjects, n), min(chunk_voxels, m)),
                              dtype=dtype)
        if grid is not None:
            root.create_array("mask", data=grid.mask.astype(np.uint8))
        root.attrs.update({"graymatter": "subjects x voxels",
                           "affine": None if grid is None else grid.affine.tolist(),
                           "subjects": subjects, "sources": sources})
        buf = np.empty((min(chunk_subjects, n), m), dtype=dtype)
        with tqdm(total=n, disable=not progress, desc="zarr store", unit="subject") as bar:
            for lo in range(0, n, chunk_subjects):
                hi = min(lo + chunk_subjects, n)
                for i in range(lo, hi):
                    r = np.asarray(row(i)).reshape(-1)
                    if r.shape[0] != m:
                        raise InputError(f"write_matrix_zarr: row {i} has {r.shape[0]} values, "
                                         f"expected {m} (one per voxel).")
                    buf[i - lo] = r
                    bar.update()
                Y[lo:hi] = buf[:hi - lo]  # whole chunks: each chunk is written once
        if store.exists():
            trash = Path(tempfile.mkdtemp(prefix=f".{store.name}.", suffix=".old", dir=store.parent))
            os.replace(store, trash / "old")
            os.replace(tmp, store)
            shutil.rmtree(trash, ignore_errors=True)
        else:
            os.replace(tmp, store)
    except OSError as exc:
        if exc.errno in (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)):
            raise write_error(store, exc) from None  # name the store, not a chunk file
        raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    logger.info("Wrote %d subjects x %d voxels to %s (chunks %d x %d, %s)", n, m, store,
                min(chunk_subjects, n), min(chunk_voxels, m), dtype)
    return store


def open_matrix_zarr(store):
    """Open a store written by :func:`write_matrix_zarr` (lazily: nothing is read yet).

    Parameters
    ----------
    store : str or os.PathLike

    Returns
    -------
    Y : (n_subjects, n_voxels) zarr.Array
        Slice it to read, e.g. ``Y[:, lo:hi]`` -> ndarray.
    grid : MaskedGrid or None
        The voxel grid, when the store was written from images or with ``grid=``.

    Raises
    ------
    InputError
        The folder is missing or is not a graymatter matrix store.

    Examples
    --------
    >>> Y, grid = open_matrix_zarr("derivatives/gm.zarr")  # doctest: +SKIP
    >>> block = Y[:, :16384]  # doctest: +SKIP
    """
    zarr = _zarr()
    store = Path(store)
    if not store.is_dir():
        raise InputError(f"The zarr store '{store}' does not exist; write it with "
                         "write_matrix_zarr(images, store).")
    try:
        root = zarr.open_group(str(store), mode="r")
        Y = root["Y"]
    except Exception as exc:  # zarr raises several types for a foreign folder
        raise InputError(f"'{store}' is not a graymatter matrix store (no array 'Y'): {exc}. "
                         "Write it with write_matrix_zarr.") from exc
    if np.dtype(Y.dtype).kind not in "fiu":  # never object arrays (their codecs may unpickle)
        raise InputError(f"'{store}' is not a graymatter matrix store: its array 'Y' holds "
                         f"{Y.dtype} values, not numbers. Write it with write_matrix_zarr.")
    affine = root.attrs.get("affine")
    grid = None
    if affine is not None and "mask" in root:
        grid = MaskedGrid(np.asarray(root["mask"][...]).astype(bool), np.asarray(affine))
    return Y, grid


def store_attributes(store) -> dict:
    """The attributes saved with a store: ``subjects`` (row ids or None), ``sources`` (image
    fingerprints by id, or None), ``affine``.

    Raises
    ------
    InputError
        As :func:`open_matrix_zarr`.
    """
    zarr = _zarr()
    open_matrix_zarr(store)  # checks that it is a matrix store
    return dict(zarr.open_group(str(store), mode="r").attrs)
