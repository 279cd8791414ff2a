"""One subject from T1 to modulated, smoothed GM, volumes and QC values (resumable).

Steps: check the image, canonical orientation, (denoise +) N4, head similarity from the
cranium's geometry (several starts when poor) / brain affine / brain SyN to the MNI template,
brain mask and tissue priors carried back to native space, Atropos (CSF, GM, deep GM, WM),
modulation by the Jacobian, smoothing, QC decision. A registration that raises or fails QC is
retried with other settings (:data:`ATTEMPTS`). Method and thresholds: docs/preprocessing.md.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd

from graymatter.errors import InputError
from graymatter.io.atomic import atomic_path, save_image, write_tsv
from graymatter.io.provenance import input_record as _input_record

from . import cache, initialise, normalise, qc, segment
from .antsbridge import import_ants, threads_in_use, to_ants, to_nib
from .inputs import T1Input, load_t1
from .templates import SPACE, load_templates

logger = logging.getLogger("graymatter")

VOLUME_COLUMNS = ("gm_ml", "wm_ml", "csf_ml", "tiv_ml")


@dataclass(frozen=True)
class PreprocessSettings:
    """Parameters of the preprocessing (all enter the cache key).

    Attributes
    ----------
    resolution_mm : float
        Output MNI grid: 1.5 (default, CAT12's), 2 or 1 mm.
    fwhm_mm : float
        Isotropic Gaussian smoothing of the modulated GM (default 10 mm; 0 = none).
    denoise : bool
        Non-local-means denoising before N4.
    threads_per_subject : int
        ITK threads per worker process (results repeat exactly for a fixed count).
    random_state : int
        Seed of the registration's metric sampling.
    syn_iterations : tuple of int
        SyN iterations per level, coarse to fine. Tests use fewer for speed.
    prior_weight : float
        Atropos prior weight.
    """

    resolution_mm: float = 1.5
    fwhm_mm: float = 10.0
    denoise: bool = False
    threads_per_subject: int = 1
    random_state: int = 0
    syn_iterations: tuple = (40, 20, 10)
    prior_weight: float = 0.25

    def parameters(self) -> dict:
        out = asdict(self)
        out["syn_iterations"] = [int(i) for i in self.syn_iterations]
        out["space"] = SPACE
        return out


def output_names(pid: str) -> dict:
    """File names of one subject's outputs (in its ``anat`` folder), keyed by role."""
    to = f"from-T1w_to-{SPACE}_mode-image"
    sp = f"space-{SPACE}"
    return {
        "biascorr": f"{pid}_desc-biascorr_T1w.nii.gz",
        "mask": f"{pid}_desc-brain_mask.nii.gz",
        "GM": f"{pid}_label-GM_probseg.nii.gz",
        "WM": f"{pid}_label-WM_probseg.nii.gz",
        "CSF": f"{pid}_label-CSF_probseg.nii.gz",
        "affine": f"{pid}_{to}_desc-affine_xfm.mat",
        "warp": f"{pid}_{to}_desc-warp_xfm.nii.gz",
        "inverse_warp": f"{pid}_from-{SPACE}_to-T1w_mode-image_desc-warp_xfm.nii.gz",
        "t1_mni": f"{pid}_{sp}_desc-preproc_T1w.nii.gz",
        "mask_mni": f"{pid}_{sp}_desc-brain_mask.nii.gz",
        "mwp1": f"{pid}_{sp}_label-GM_desc-modulated_probseg.nii.gz",
        "mwp2": f"{pid}_{sp}_label-WM_desc-modulated_probseg.nii.gz",
        "smwp1": f"{pid}_{sp}_label-GM_desc-smoothmodulated_probseg.nii.gz",
        "volumes": f"{pid}_desc-volumes_morph.tsv",
        "overlay": f"{pid}_{sp}_desc-overlay_qc.png",
        "sidecar": f"{pid}_desc-preproc.json",
    }


def _copy(src, dst) -> Path:
    with atomic_path(dst) as tmp:
        tmp.write_bytes(Path(src).read_bytes())
    return Path(dst)


def _hook(step: str) -> None:
    """Called after each step; a no-op (tests patch it to interrupt a run mid-subject)."""


def preprocess_subject(item: T1Input, out_dir, settings: PreprocessSettings = PreprocessSettings(),
                       *, force: bool = False) -> dict:
    """Preprocess one T1 image into ``out_dir/<folder>``, or skip it when already done.

    Parameters
    ----------
    item : T1Input
    out_dir : str or os.PathLike
    settings : PreprocessSettings
    force : bool
        Redo even when the sidecar says the outputs are up to date.

    Returns
    -------
    row : dict
        ``participant_id``, ``status`` ("done" or "skipped"), volumes (ml), QC values,
        ``seconds`` and ``folder``.

    Raises
    ------
    InputError
        A bad input image (see :func:`graymatter.preprocess.inputs.load_t1`).

    Examples
    --------
    >>> row = preprocess_subject(inputs_from_files(["s1_T1w.nii.gz"])[0], "out")  # doctest: +SKIP
    """
    start = time.perf_counter()
    folder = Path(out_dir) / item.folder
    names = output_names(item.participant_id)
    sidecar = folder / names["sidecar"]
    if not Path(item.path).is_file():
        raise InputError(f"T1 image '{item.path}' does not exist (or is not a file); check the "
                         "path.")
    record = _input_record(item.path)
    params = settings.parameters()
    key = cache.cache_key(record["sha256"], params)
    if not force and cache.is_complete(sidecar, key):
        logger.info("%s: up to date, skipped", item.participant_id)
        saved = cache.read_sidecar(sidecar)
        return {"participant_id": item.participant_id, "status": "skipped", "folder": str(folder),
                **saved.get("volumes", {}), **saved.get("qc", {}),
                "seconds": time.perf_counter() - start}
    cache.invalidate(sidecar)
    image = load_t1(item.path)
    import_ants(settings.threads_per_subject)
    result = _run_steps(image, folder, names, settings)
    files = [folder / names[k] for k in names if k != "sidecar"]
    cache.write_sidecar(sidecar, key=key, input_record=record, parameters=params, outputs=files,
                        extra={"participant_id": item.participant_id, "volumes": result["volumes"],
                               "qc": result["qc"], "itk_threads": threads_in_use()})
    _hook("sidecar")
    return {"participant_id": item.participant_id, "status": "done", "folder": str(folder),
            **result["volumes"], **result["qc"], "seconds": time.perf_counter() - start}


#: Registration settings of the attempts, in order: the second (tried when the first raises
#: or fails QC) starts from every rotation and uses another sampling seed.
ATTEMPTS = ({"exhaustive": False, "seed_offset": 0}, {"exhaustive": True, "seed_offset": 7919})


def _attempt(t1, tpl, settings: PreprocessSettings, options: dict) -> dict:
    """Register, segment and measure one subject with one set of registration options."""
    template, template_mask = to_ants(tpl.t1), to_ants(tpl.mask)
    reg = normalise.register_to_template(
        t1, template, template_mask, random_seed=settings.random_state + options["seed_offset"],
        syn_iterations=settings.syn_iterations, exhaustive=options["exhaustive"])
    mask = segment.brain_mask(segment.warp_to_native(template_mask, t1, reg))
    priors = {name: segment.warp_to_native(to_ants(getattr(tpl, attr)), t1, reg)
              for name, attr in (("CSF", "csf"), ("WM", "wm"), ("DGM", "deep_gm"))}
    gm = segment.warp_to_native(to_ants(tpl.gm), t1, reg)
    priors["GM"] = gm - priors["DGM"]
    probs, means = segment.segment_tissues(t1, mask, priors,
                                           prior_weight=settings.prior_weight)
    native_ml = float(np.prod(t1.spacing)) / 1000.0
    volumes = {f"{n.lower()}_ml": float(probs[n].sum(dtype=np.float64) * native_ml)
               for n in ("GM", "WM", "CSF")}
    volumes["tiv_ml"] = float(mask.numpy().sum(dtype=np.float64) * native_ml)
    jac = normalise.jacobian_determinant(template, reg)
    t1_mni = normalise.to_template(t1, template, reg)
    warped = {n: normalise.to_template(t1.new_image_like(probs[n]), template, reg).numpy()
              for n in ("GM", "WM")}
    tmask = tpl.mask.get_fdata() > 0.5
    sim = qc.registration_similarity(t1_mni.numpy(), tpl.t1.get_fdata(), tmask)
    parenchyma = (tpl.gm.get_fdata() + tpl.wm.get_fdata()) > 0.5
    inside = tmask & (jac > 0)
    values = {"similarity_ncc": sim["ncc"], "similarity_nmi": sim["nmi"],
              "brain_mask_dice": qc.dice(warped["GM"] + warped["WM"] > 0.5, parenchyma),
              "jacobian_min": float(jac[tmask].min()),
              "jacobian_max": float(jac[inside].max()) if inside.any() else float("nan"),
              "affine_scale": reg.affine_det, "start_ncc": reg.start_ncc,
              "contrast_ordered": bool(means["CSF"] < means["GM"] < means["WM"]),
              "csf_gm_wm_means": [round(means[n], 1) for n in ("CSF", "GM", "WM")]}
    status, reasons = qc.decide({**values, **volumes})
    return {"reg": reg, "mask": mask, "probs": probs, "volumes": volumes, "jac": jac,
            "t1_mni": t1_mni, "warped": warped, "values": values, "status": status,
            "reasons": reasons}


def _best_attempt(t1, tpl, settings: PreprocessSettings) -> dict:
    """Run the attempts until one passes or warns; keep the best; raise when all raise."""
    rank = {"pass": 0, "warn": 1, "fail": 2}
    best, errors = None, []
    for number, options in enumerate(ATTEMPTS, start=1):
        try:
            result = _attempt(t1, tpl, settings, options)
        except (RuntimeError, ValueError) as exc:  # ITK/ANTs errors arrive as RuntimeError
            errors.append(f"attempt {number}: {type(exc).__name__}: {exc}")
            logger.warning("registration attempt %d failed: %s", number, exc)
            continue
        result["attempt"] = number
        if best is None or rank[result["status"]] < rank[best["status"]]:
            if best is not None:
                normalise.remove_files(best["reg"].forward + best["reg"].inverse)
            best = result
        else:
            normalise.remove_files(result["reg"].forward + result["reg"].inverse)
        if best["status"] != "fail":
            break
        logger.warning("attempt %d failed QC (%s); retrying with other settings", number,
                       "; ".join(result["reasons"]))
    if best is None:
        raise RegistrationFailed("registration failed with every setting tried: "
                                 + " | ".join(errors))
    best["errors"] = errors
    return best


class RegistrationFailed(RuntimeError):
    """Every registration attempt raised; the message lists each attempt's error."""


def _run_steps(image: nib.Nifti1Image, folder: Path, names: dict,
               settings: PreprocessSettings) -> dict:
    tpl = load_templates(settings.resolution_mm)
    template = to_ants(tpl.t1)
    path = {k: folder / v for k, v in names.items()}
    canonical, back = initialise.to_canonical(image)

    def native(img, dtype=np.float32):
        return initialise.from_canonical(to_nib(img, dtype=dtype), back)

    t1 = segment.bias_correct(to_ants(canonical), denoise=settings.denoise)
    save_image(path["biascorr"], native(t1))
    _hook("biascorr")

    best = _best_attempt(t1, tpl, settings)
    reg = best["reg"]
    _copy(reg.forward[1], path["affine"])
    _copy(reg.forward[0], path["warp"])
    _copy(reg.inverse[1], path["inverse_warp"])
    normalise.remove_files(reg.forward + reg.inverse)
    reg = normalise.Registration([str(path["warp"]), str(path["affine"])],
                                 [str(path["affine"]), str(path["inverse_warp"])],
                                 reg.inverse_flags, reg.affine_det, reg.start_ncc)
    best["reg"] = reg
    _hook("registration")

    save_image(path["mask"], native(best["mask"], dtype=np.uint8))
    for name, data in best["probs"].items():
        save_image(path[name], native(t1.new_image_like(data)))
    _hook("segmentation")

    volumes = best["volumes"]
    write_tsv(path["volumes"], pd.DataFrame([volumes], index=pd.Index(
        [names["sidecar"].split("_desc-")[0]], name="participant_id")))
    _save_mni(path, tpl, settings, best)
    _hook("modulation")

    values = dict(best["values"])
    values["mwp1_ml"] = float(best["mwp1"].sum(dtype=np.float64) * tpl.voxel_ml)
    values.update(qc_status=best["status"], qc_reasons="; ".join(best["reasons"]),
                  attempts=best["attempt"], attempt_errors=" | ".join(best["errors"]))
    pid = names["sidecar"].split("_desc-")[0]
    qc.save_figure(path["overlay"], qc.overlay_figure(
        best["t1_mni"].numpy(), best["warped"]["GM"],
        title=f"{pid}: GM on normalised T1 (NCC {values['similarity_ncc']:.2f}, "
              f"QC {best['status']})", voxel_mm=settings.resolution_mm))
    return {"volumes": volumes, "qc": values}


def _save_mni(path: dict, tpl, settings: PreprocessSettings, best: dict) -> None:
    """Modulate, smooth and write the template-space outputs (``best["mwp1"]`` is set)."""
    template = to_ants(tpl.t1)
    mask_mni = normalise.to_template(best["mask"], template, best["reg"],
                                     interpolator="nearestNeighbor")
    mwp1 = normalise.modulate(best["warped"]["GM"], best["jac"])
    mwp2 = normalise.modulate(best["warped"]["WM"], best["jac"])
    smwp1 = normalise.smooth(mwp1, fwhm_mm=settings.fwhm_mm, voxel_mm=settings.resolution_mm)
    affine = tpl.t1.affine

    def mni(data, dtype=np.float32):
        img = nib.Nifti1Image(np.asarray(data, dtype=dtype), affine)
        img.set_sform(affine, code=4)
        img.set_qform(affine, code=4)
        return img

    save_image(path["t1_mni"], mni(best["t1_mni"].numpy()))
    save_image(path["mask_mni"], mni(mask_mni.numpy() > 0.5, np.uint8))
    save_image(path["mwp1"], mni(mwp1))
    save_image(path["mwp2"], mni(mwp2))
    save_image(path["smwp1"], mni(smwp1))
    best["mwp1"] = mwp1


__all__ = ["ATTEMPTS", "RegistrationFailed", "PreprocessSettings", "VOLUME_COLUMNS", "output_names", "preprocess_subject"]
