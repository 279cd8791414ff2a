"""Wall time and peak memory of VBM preprocessing per subject, next to the plain antspyx calls.

Run: ``python benchmarks/bench_preprocess.py [T1.nii.gz ...] [--resolution 1.5] [--threads 2]``
(default: the IXI images of ../shared/data/t1). Each measurement runs in a fresh process so the
peak resident memory (ru_maxrss) and ITK's thread count belong to that run alone. Not run by CI.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "t1"

_PLAIN = r"""
import os, sys, time, json, resource, tempfile
os.environ["ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS"] = sys.argv[3]
import ants, nibabel as nib, numpy as np
from graymatter.preprocess.templates import load_templates
tpl = load_templates(float(sys.argv[2]))
fixed = ants.from_nibabel_nifti(tpl.t1); mask = ants.from_nibabel_nifti(tpl.mask)
priors = [ants.from_nibabel_nifti(getattr(tpl, n)) for n in ("csf", "gm", "wm")]
t0 = time.perf_counter()
t1 = ants.image_read(sys.argv[1])
n4 = ants.n4_bias_field_correction(t1, shrink_factor=4)
reg = ants.registration(fixed, n4, type_of_transform="SyN", random_seed=0,
                        reg_iterations=(40, 20, 10))
m = ants.apply_transforms(n4, mask, reg["invtransforms"], whichtoinvert=[True, False])
m = ants.threshold_image(m, 0.5, 1e9)
p = [ants.apply_transforms(n4, q, reg["invtransforms"], whichtoinvert=[True, False])
     for q in priors]
seg = ants.atropos(a=n4, x=m, i=p, m="[0.1,1x1x1]", c="[5,0]", priorweight=0.25)
jac = ants.create_jacobian_determinant_image(fixed, reg["fwdtransforms"][0])
gm = ants.apply_transforms(fixed, seg["probabilityimages"][1], reg["fwdtransforms"])
print(json.dumps({"seconds": time.perf_counter() - t0,
                  "peak_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6}))
"""

_WRAPPED = r"""
import sys, time, json, resource, tempfile
from graymatter.workflows.preprocess import run_preprocess
t0 = time.perf_counter()
res = run_preprocess([sys.argv[1]], out_dir=tempfile.mkdtemp(), resolution_mm=float(sys.argv[2]),
                     threads_per_subject=int(sys.argv[3]), progress=False)
assert not res.failed, res.qc["error"].tolist()
row = res.qc.iloc[0]
print(json.dumps({"seconds": time.perf_counter() - t0,
                  "peak_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6,
                  "tiv_ml": float(row["tiv_ml"]), "ncc": float(row["similarity_ncc"])}))
"""


def _measure(code: str, t1: Path, resolution: float, threads: int) -> dict:
    env = {**os.environ, "ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS": str(threads)}
    out = subprocess.run([sys.executable, "-c", code, str(t1), str(resolution), str(threads)],
                         capture_output=True, text=True, env=env, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("t1", nargs="*", type=Path)
    parser.add_argument("--resolution", type=float, default=1.5)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    files = args.t1 or sorted(DATA.glob("IXI*_T1.nii.gz"))
    print(f"resolution {args.resolution} mm, {args.threads} ITK thread(s), one subject at a time")
    print(f"{'subject':<28}{'what':<22}{'wall s':>8}{'peak GB':>9}{'TIV ml':>9}{'NCC':>7}")
    for t1 in files:
        for label, code in (("plain antspyx calls", _PLAIN), ("graymatter preprocess", _WRAPPED)):
            r = _measure(code, t1, args.resolution, args.threads)
            print(f"{t1.name[:27]:<28}{label:<22}{r['seconds']:8.1f}{r['peak_gb']:9.2f}"
                  f"{r.get('tiv_ml', float('nan')):9.0f}{r.get('ncc', float('nan')):7.3f}")


if __name__ == "__main__":
    main()
