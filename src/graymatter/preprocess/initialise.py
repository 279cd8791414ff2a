"""Orientation and the first head-to-template alignment, for any real T1 header.

A T1 arrives in any voxel order (LPS, PSR, ...), data type, voxel size and origin, often with the
neck in the field of view. The first registration stage must not depend on any of that, so:

- the image is put in canonical (RAS) voxel order, and the outputs in native space are put back
  in the file's own order (:func:`to_canonical`, :func:`from_canonical`);
- a head mask (foreground of the smoothed image, largest component) gives the top of the head,
  which the neck cannot move; the brain centre is estimated from the cranium (the head above its
  top minus ~110 mm) and the brain size from the cranium's width;
- that centre and scale give a starting similarity transform onto the template brain
  (:func:`starting_transform`), and :func:`rotations` lists further starts (pitch, roll and yaw
  of 15-30 degrees) for when the first one ends poorly.
"""

from __future__ import annotations

import os
import tempfile

import nibabel as nib
import numpy as np
from scipy import ndimage

from .antsbridge import import_ants

#: Scalp + skull thickness at the vertex and at the sides (mm): brain extent = head extent - 2x.
SCALP_MM = 12.0
#: Height (mm) of the cranium slab below the top of the head used for the centre and width.
CRANIUM_MM = 110.0


def to_canonical(img: nib.Nifti1Image):
    """The image in RAS voxel order, and the orientation change that undoes it.

    Parameters
    ----------
    img : nibabel.Nifti1Image

    Returns
    -------
    canonical : nibabel.Nifti1Image
    back : numpy.ndarray
        nibabel orientation array mapping canonical voxel axes back to the file's.

    Examples
    --------
    >>> img = nib.Nifti1Image(np.zeros((2, 3, 4), np.float32), np.diag([-2., 2, 2, 1]))
    >>> canonical, back = to_canonical(img)
    >>> nib.aff2axcodes(canonical.affine)
    ('R', 'A', 'S')
    """
    own = nib.io_orientation(img.affine)
    ras = nib.orientations.axcodes2ornt(("R", "A", "S"))
    forward = nib.orientations.ornt_transform(own, ras)
    canonical = img.as_reoriented(forward)
    return canonical, nib.orientations.ornt_transform(ras, own)


def from_canonical(img: nib.Nifti1Image, back) -> nib.Nifti1Image:
    """Put a canonical-order image back in the file's voxel order (inverse of
    :func:`to_canonical`); the data and the world coordinates do not change."""
    out = img.as_reoriented(back)
    out.set_sform(out.affine, code=1)
    out.set_qform(out.affine, code=1)
    return out


def _physical(image, index) -> np.ndarray:
    """Physical (ITK LPS) coordinates of voxel indices (N, 3) of an ANTsImage."""
    direction = np.asarray(image.direction, float)
    spacing = np.asarray(image.spacing, float)
    return np.asarray(image.origin, float) + (np.asarray(index, float) * spacing) @ direction.T


def head_mask(t1) -> np.ndarray:
    """Foreground (head) of a T1 as a boolean array on its grid.

    Threshold: the mean of the smoothed image above its 2nd percentile (background noise and
    air are far darker than any tissue); then the largest connected component with holes filled.

    Parameters
    ----------
    t1 : ants.ANTsImage

    Returns
    -------
    mask : numpy.ndarray of bool
    """
    data = ndimage.gaussian_filter(t1.numpy().astype(np.float32), 1.0)
    low = np.percentile(data, 2)
    fg = data > low + 0.5 * (data[data > low].mean() - low)
    fg = ndimage.binary_opening(fg, iterations=1)
    labels, n = ndimage.label(fg)
    if n == 0:
        return fg
    sizes = ndimage.sum_labels(fg, labels, index=np.arange(1, n + 1))
    fg = labels == (1 + int(np.argmax(sizes)))
    return ndimage.binary_fill_holes(ndimage.binary_closing(fg, iterations=2))


def cranium_geometry(t1) -> tuple[np.ndarray, float, float]:
    """Cranium centre (LPS, mm), top of the head (z, mm) and brain width (mm) of a T1.

    Parameters
    ----------
    t1 : ants.ANTsImage
        Whole-head (or skull-stripped) T1 with a valid orientation.

    Returns
    -------
    centre : numpy.ndarray, shape (3,)
        Mean of the head voxels less than ``CRANIUM_MM`` below the top (the neck and most of
        the face are below that).
    top : float
        Superior extent of the head.
    width : float
        Left-right extent of the cranium minus the scalp on both sides.
    """
    mask = head_mask(t1)
    idx = np.argwhere(mask)
    if idx.shape[0] < 100:
        raise ValueError("no head found: the image has almost no foreground")
    # Subsample for speed; the geometry needs only a few thousand points.
    step = max(1, idx.shape[0] // 200000)
    pts = _physical(t1, idx[::step])
    top = np.percentile(pts[:, 2], 99.8)
    cranium = pts[pts[:, 2] > top - CRANIUM_MM]
    lr = np.percentile(cranium[:, 0], [1, 99])
    width = max(float(lr[1] - lr[0]) - 2 * SCALP_MM, 60.0)
    return cranium.mean(axis=0), float(top), width


def template_geometry(template_mask) -> tuple[np.ndarray, float, float]:
    """Centre (LPS), left-right width and top-to-centre height (mm) of the template brain."""
    idx = np.argwhere(template_mask.numpy() > 0.5)
    pts = _physical(template_mask, idx)
    lr = np.percentile(pts[:, 0], [1, 99])
    centre = pts.mean(axis=0)
    return centre, float(lr[1] - lr[0]), float(np.percentile(pts[:, 2], 99.8) - centre[2])


def rotation(pitch: float = 0.0, roll: float = 0.0, yaw: float = 0.0) -> np.ndarray:
    """Rotation matrix (LPS axes) from angles in degrees about x (pitch), y (roll), z (yaw)."""
    a, b, c = np.deg2rad([pitch, roll, yaw])
    rx = np.array([[1, 0, 0], [0, np.cos(a), -np.sin(a)], [0, np.sin(a), np.cos(a)]])
    ry = np.array([[np.cos(b), 0, np.sin(b)], [0, 1, 0], [-np.sin(b), 0, np.cos(b)]])
    rz = np.array([[np.cos(c), -np.sin(c), 0], [np.sin(c), np.cos(c), 0], [0, 0, 1]])
    return rz @ ry @ rx


def rotations() -> list[tuple[float, float, float]]:
    """Starting rotations (pitch, roll, yaw in degrees) tried when the first start is poor.

    Head pitch varies most between scanners and subjects (chin up/down), so it gets +-15 and
    +-30 degrees; roll and yaw +-15.
    """
    return [(15, 0, 0), (-15, 0, 0), (30, 0, 0), (-30, 0, 0),
            (0, 15, 0), (0, -15, 0), (0, 0, 15), (0, 0, -15)]


def starting_transform(t1, template_mask, angles=(0.0, 0.0, 0.0), *, folder=None) -> str:
    """Write the ITK transform (template -> subject) of one start and return its file.

    The template brain's centre goes to the estimated brain centre of the subject, scaled by
    the ratio of brain widths and rotated by ``angles`` about that centre.

    Parameters
    ----------
    t1 : ants.ANTsImage
    template_mask : ants.ANTsImage
    angles : tuple of float
        Pitch, roll, yaw (degrees).
    folder : str, optional
        Where to write the ``.mat`` file (default: the temporary folder).

    Returns
    -------
    path : str
    """
    ants = import_ants()
    centre, top, width = cranium_geometry(t1)
    t_centre, t_width, t_height = template_geometry(template_mask)
    scale = float(np.clip(width / t_width, 0.7, 1.2))
    # Brain top = head top - scalp; the brain centre lies (scaled) template height below it.
    brain_centre = centre.copy()
    brain_centre[2] = top - SCALP_MM - scale * t_height
    matrix = scale * rotation(*angles)
    tx = ants.create_ants_transform(transform_type="AffineTransform", dimension=3,
                                    matrix=matrix, center=tuple(t_centre),
                                    translation=tuple(brain_centre - t_centre))
    fd, path = tempfile.mkstemp(suffix=".mat", dir=folder)
    os.close(fd)
    ants.write_transform(tx, path)
    return path


__all__ = ["to_canonical", "from_canonical", "head_mask", "cranium_geometry",
           "template_geometry", "rotation", "rotations", "starting_transform"]
