"""T1 inputs: find them (files or a BIDS dataset), name the subjects, and check each image.

Every check raises :class:`~graymatter.errors.InputError` naming the file, what was expected,
what was found and how to fix it; the workflow records the message for that subject and goes on.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import numpy as np

from graymatter.errors import InputError

_MIN_FOV_MM = 100.0  # a whole adult brain is ~140 x 170 x 120 mm
_ZOOM_RANGE = (0.2, 8.0)  # mm; outside it the header (not the scan) is almost surely wrong
_NIFTI_SUFFIXES = (".nii", ".nii.gz")


@dataclass(frozen=True)
class T1Input:
    """One T1 image to preprocess.

    Attributes
    ----------
    participant_id : str
        ``sub-<label>`` (plus ``_ses-<label>`` for BIDS sessions); names the outputs.
    path : pathlib.Path
    folder : pathlib.Path
        Output sub-folder relative to the output root, e.g. ``sub-01/anat``.
    """

    participant_id: str
    path: Path
    folder: Path


def _label(path: Path) -> str:
    name = path.name
    for suffix in (".nii.gz", ".nii", ".gz"):
        if name.endswith(suffix):
            name = name[: -len(suffix)]
            break
    name = re.sub(r"_(T1w|T1)$", "", name, flags=re.IGNORECASE)
    name = re.sub(r"^sub-", "", name)
    return re.sub(r"[^A-Za-z0-9]", "", name)


def inputs_from_files(paths) -> list[T1Input]:
    """Name T1 files as subjects: ``IXI012-HH-1211_T1.nii.gz`` -> ``sub-IXI012HH1211``.

    Parameters
    ----------
    paths : sequence of str or os.PathLike

    Returns
    -------
    inputs : list of T1Input

    Examples
    --------
    >>> inputs_from_files(["data/IXI012-HH-1211_T1.nii.gz"])[0].participant_id
    'sub-IXI012HH1211'
    """
    paths = [Path(p) for p in paths]
    if not paths:
        raise InputError("No T1 images given: pass one or more NIfTI files or --bids DIR.")
    out, seen = [], {}
    for path in paths:
        label = _label(path)
        if not label:
            raise InputError(f"Cannot derive a subject label from the file name '{path}': "
                             "rename it to contain letters or digits (e.g. sub-01_T1w.nii.gz).")
        pid = f"sub-{label}"
        if pid in seen:
            raise InputError(f"Files '{seen[pid]}' and '{path}' both give subject id '{pid}'; "
                             "rename one so that every subject has its own id.")
        seen[pid] = path
        out.append(T1Input(pid, path, Path(pid) / "anat"))
    return out


def inputs_from_bids(bids_dir) -> list[T1Input]:
    """All ``sub-*/[ses-*/]anat/*_T1w.nii[.gz]`` of a BIDS dataset, one subject-session each.

    Parameters
    ----------
    bids_dir : str or os.PathLike

    Returns
    -------
    inputs : list of T1Input
        Sorted by path; a second T1w of the same subject-session (e.g. ``run-2``) gets its
        entities in the id.

    Examples
    --------
    >>> inputs_from_bids("ds000001")  # doctest: +SKIP
    [T1Input(participant_id='sub-01', ...), ...]
    """
    root = Path(bids_dir)
    if not root.is_dir():
        raise InputError(f"--bids '{root}' is not a folder; give the root of a BIDS dataset "
                         "(the folder holding sub-*/).")
    files = sorted(p for p in root.glob("sub-*/**/anat/*_T1w.nii*")
                   if p.name.endswith(_NIFTI_SUFFIXES))
    if not files:
        raise InputError(f"No sub-*/anat/*_T1w.nii[.gz] under the BIDS folder '{root}'; "
                         "check the path or pass the T1 files directly.")
    out = []
    for path in files:
        stem = path.name.split("_T1w")[0]
        entities = dict(part.split("-", 1) for part in stem.split("_") if "-" in part)
        folder = Path(f"sub-{entities['sub']}")
        if "ses" in entities:
            folder = folder / f"ses-{entities['ses']}"
        out.append(T1Input(stem, path, folder / "anat"))
    return out


def load_t1(path) -> nib.Nifti1Image:
    """Read and check one T1 image; return it as a 3-D float32 NIfTI image.

    Parameters
    ----------
    path : str or os.PathLike

    Returns
    -------
    image : nibabel.Nifti1Image
        3-D float32, with the file's affine.

    Raises
    ------
    InputError
        Unreadable or missing file, not a NIfTI image, 4-D with several volumes, no valid
        orientation header, a field of view too small for a brain, or constant intensities.

    Examples
    --------
    >>> img = load_t1("sub-01_T1w.nii.gz")  # doctest: +SKIP
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"T1 image '{path}' does not exist (or is not a file); check the path.")
    try:
        img = nib.load(path)
    except Exception as exc:  # nibabel raises many types for unknown or broken files
        raise InputError(f"T1 image '{path}' cannot be read as a NIfTI image ({exc}); give a "
                         ".nii or .nii.gz file (convert DICOM with dcm2niix).") from exc
    if not isinstance(img, (nib.Nifti1Image, nib.Nifti2Image)):
        raise InputError(f"T1 image '{path}' is a {type(img).__name__}, not NIfTI; convert it "
                         "to .nii.gz (e.g. mri_convert or nibabel).")
    shape = img.shape
    if len(shape) == 4 and shape[3] == 1:
        shape = shape[:3]
    if len(shape) != 3:
        raise InputError(f"T1 image '{path}' has shape {tuple(img.shape)}; expected one 3-D "
                         "volume. Extract the T1 volume first (e.g. fslroi or nilearn.image."
                         "index_img).")
    _check_header(img, path)
    zooms = np.asarray(img.header.get_zooms()[:3], dtype=float)
    fov = zooms * np.asarray(shape)
    if np.any(fov < _MIN_FOV_MM):
        raise InputError(f"T1 image '{path}' covers only {np.round(fov).astype(int).tolist()} mm;"
                         f" a whole brain needs at least {_MIN_FOV_MM:.0f} mm along every axis. "
                         "Give the uncropped whole-head scan.")
    try:
        data = np.asarray(img.dataobj, dtype=np.float32).reshape(shape)
    except Exception as exc:  # truncated or corrupt data block
        raise InputError(f"T1 image '{path}' has a readable header but its voxel data cannot be "
                         f"read ({exc}); the file is probably truncated: copy it again.") from exc
    finite = data[np.isfinite(data)]
    if finite.size == 0 or float(finite.max() - finite.min()) == 0.0:
        value = "NaN" if finite.size == 0 else f"{float(finite[0]):g}"
        raise InputError(f"T1 image '{path}' is constant (every voxel {value}): there is no brain "
                         "to segment. Check that the right file was exported.")
    data = np.nan_to_num(data, nan=0.0, posinf=0.0, neginf=0.0)
    return nib.Nifti1Image(data, img.affine)


def _check_header(img, path: Path) -> None:
    sform = int(img.header["sform_code"])
    qform = int(img.header["qform_code"])
    if sform == 0 and qform == 0:
        raise InputError(f"T1 image '{path}' has no orientation (sform_code and qform_code are "
                         "both 0), so left/right and the axes are unknown. Fix the header "
                         "(e.g. fslorient -copyqform2sform after setting it) or re-export it.")
    affine = np.asarray(img.affine, dtype=float)
    lin = affine[:3, :3]
    zooms = np.sqrt((lin ** 2).sum(axis=0))
    problem = None
    if not np.all(np.isfinite(affine)):
        problem = "contains non-finite numbers"
    elif abs(np.linalg.det(lin)) < 1e-6 or np.any(zooms < _ZOOM_RANGE[0]):
        problem = "is singular (a voxel axis of (near) zero length)"
    elif np.any(zooms > _ZOOM_RANGE[1]):
        problem = (f"gives voxel sizes {np.round(zooms, 3).tolist()} mm, outside the plausible "
                   f"{_ZOOM_RANGE[0]}-{_ZOOM_RANGE[1]} mm")
    else:
        cosines = lin / zooms
        if np.max(np.abs(cosines.T @ cosines - np.eye(3))) > 1e-3:
            problem = "is sheared (its voxel axes are not perpendicular)"
    if problem is not None:
        raise InputError(f"T1 image '{path}' has an invalid orientation header: its affine "
                         f"{problem}. Fix the sform/qform (e.g. re-export from the scanner "
                         "DICOM with dcm2niix).")


__all__ = ["T1Input", "inputs_from_files", "inputs_from_bids", "load_t1"]
