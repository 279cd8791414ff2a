"""Wall time and peak memory of VBM preprocessing per subject (target: <= 3 min, <= 4 GB).

Run: ``python benchmarks/bench_preprocess.py [T1.nii.gz ...] [--resolution 1.5] [--threads 2]
[--no-synthetic] [--plain]``. Default inputs: the two IXI T1s of ../shared/data/t1 (2 mm, uint8,
LPS) and one synthetic scan (:mod:`graymatter.datasets.synthetic_t1`, seed 11, LPS, 2 mm),
preprocessed one at a time with the default settings. Each run is a fresh process; its peak
memory is measured two ways: the largest resident set of any one process (``ru_maxrss`` of the
children, as ``/usr/bin/time -v`` reports it; ITK's threads share their process's memory) and the
peak of the summed resident sets of the process tree, sampled every 0.2 s (psutil). The CPU
seconds used (user + system, all threads) and the 1-minute load average before and after each run
are printed: on a shared machine other work slows the wall time, not the CPU time.
For the synthetic scan the accuracy against its known tissue maps is printed too.
``--plain`` also times the bare antspyx calls (N4, SyN, Atropos) on each real input. Not run by CI.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "t1"
TARGET_SECONDS, TARGET_GB = 180.0, 4.0

_PLAIN = r"""
import os, sys, time, json
os.environ["ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS"] = sys.argv[3]
import ants
from graymatter.preprocess.templates import load_templates
tpl = load_templates(float(sys.argv[2]))
fixed = ants.from_nibabel_nifti(tpl.t1); mask = ants.from_nibabel_nifti(tpl.mask)
priors = [ants.from_nibabel_nifti(getattr(tpl, n)) for n in ("csf", "gm", "wm")]
t1 = ants.image_read(sys.argv[1])
n4 = ants.n4_bias_field_correction(t1, shrink_factor=4)
reg = ants.registration(fixed, n4, type_of_transform="SyN", random_seed=0,
                        reg_iterations=(40, 20, 10))
m = ants.apply_transforms(n4, mask, reg["invtransforms"], whichtoinvert=[True, False])
m = ants.threshold_image(m, 0.5, 1e9)
p = [ants.apply_transforms(n4, q, reg["invtransforms"], whichtoinvert=[True, False])
     for q in priors]
seg = ants.atropos(a=n4, x=m, i=p, m="[0.1,1x1x1]", c="[5,0]", priorweight=0.25)
import resource
use = [resource.getrusage(w) for w in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)]
print(json.dumps({"maxrss_gb": max(u.ru_maxrss for u in use) * 1024 / 1e9,
                  "cpu_s": sum(u.ru_utime + u.ru_stime for u in use)}))
"""

_WRAPPED = r"""
import sys, json, resource
from graymatter.workflows.preprocess import run_preprocess
res = run_preprocess([sys.argv[1]], out_dir=sys.argv[4], resolution_mm=float(sys.argv[2]),
                     threads_per_subject=int(sys.argv[3]), progress=False)
row = res.qc.iloc[0]
keep = ("status", "qc_status", "gm_ml", "wm_ml", "csf_ml", "tiv_ml", "folder")
out = {k: (row[k] if isinstance(row[k], str) else float(row[k])) for k in keep if k in row.index}
use = [resource.getrusage(w) for w in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)]
out["maxrss_gb"] = max(u.ru_maxrss for u in use) * 1024 / 1e9
out["cpu_s"] = sum(u.ru_utime + u.ru_stime for u in use)
print(json.dumps(out))
"""


def _tree_rss(proc) -> int:
    import psutil

    total = 0
    for p in [proc, *proc.children(recursive=True)]:
        try:
            total += p.memory_info().rss
        except psutil.Error:  # exited between listing and reading
            pass
    return total


def _measure(code: str, t1: Path, resolution: float, threads: int, out_dir: str) -> dict:
    """Run ``code`` in a fresh process; its wall time, peak memory and printed JSON."""
    import psutil

    env = {**os.environ, "ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS": str(threads)}
    load_before = os.getloadavg()[0]
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-c", code, str(t1), str(resolution), str(threads),
                             out_dir], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env)
    watched, peak = psutil.Process(proc.pid), 0
    while proc.poll() is None:
        try:
            peak = max(peak, _tree_rss(watched))
        except psutil.Error:
            pass
        time.sleep(0.2)
    stdout, stderr = proc.communicate()
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"{t1.name}: exit {proc.returncode}\n{stderr[-2000:]}")
    return {"seconds": seconds, "tree_gb": peak / 1e9,
            "load": (load_before, os.getloadavg()[0]),
            **json.loads(stdout.strip().splitlines()[-1])}


def _synthetic(folder: Path):
    from graymatter.datasets.synthetic_t1 import make_synthetic_t1

    scan = make_synthetic_t1(seed=11, orientation="LPS")
    path = folder / "sub-synthetic_T1w.nii.gz"
    import nibabel as nib

    nib.save(scan.image, path)
    return path, scan


def _accuracy(scan, out_dir: str, folder: str) -> str:
    import nibabel as nib

    from graymatter.datasets.synthetic_t1 import compare_to_truth
    from graymatter.preprocess.pipeline import output_names

    names = output_names("sub-synthetic")
    maps = {t: nib.load(Path(out_dir) / folder / names[t]) for t in ("GM", "WM", "CSF")}
    m = compare_to_truth(scan, maps)
    return (f"  accuracy vs truth: GM Dice {m['gm_dice']:.3f}, volume errors GM "
            f"{m['gm_err_pct']:+.1f} %, WM {m['wm_err_pct']:+.1f} %, CSF {m['csf_err_pct']:+.1f} %")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("t1", nargs="*", type=Path)
    parser.add_argument("--resolution", type=float, default=1.5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--no-synthetic", action="store_true")
    parser.add_argument("--plain", action="store_true", help="also time bare antspyx calls")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench_preprocess_"))
    files = [(p, None) for p in (args.t1 or sorted(DATA.glob("IXI*_T1.nii.gz")))]
    if not args.no_synthetic:
        files.append(_synthetic(work))
    print(f"output {args.resolution} mm, default settings, {args.threads} ITK thread(s), one "
          f"subject at a time, {os.cpu_count()} cores; targets <= {TARGET_SECONDS:.0f} s and "
          f"<= {TARGET_GB:.0f} GB per subject")
    print(f"{'subject':<26}{'what':<12}{'wall s':>8}{'CPU s':>7}{'RSS GB':>8}{'tree GB':>8}"
          f"{'load':>11}{'status':>8}{'QC':>6}{'GM ml':>7}{'TIV ml':>8}")
    for t1, scan in files:
        runs = [("graymatter", _WRAPPED)] + ([("antspyx", _PLAIN)] if args.plain and not scan
                                             else [])
        for label, code in runs:
            out_dir = tempfile.mkdtemp(dir=work)
            r = _measure(code, t1, args.resolution, args.threads, out_dir)
            over = (r["seconds"] > TARGET_SECONDS
                    or max(r["tree_gb"], r["maxrss_gb"]) > TARGET_GB)
            print(f"{t1.name[:25]:<26}{label:<12}{r['seconds']:8.1f}{r['cpu_s']:7.0f}"
                  f"{r['maxrss_gb']:8.2f}"
                  f"{r['tree_gb']:8.2f}{r['load'][0]:5.1f}->{r['load'][1]:<4.1f}"
                  f"{r.get('status', ''):>8}{r.get('qc_status', '-'):>6}"
                  f"{r.get('gm_ml', float('nan')):7.0f}{r.get('tiv_ml', float('nan')):8.0f}"
                  f"{'  OVER TARGET' if over else ''}", flush=True)
            if scan is not None and r.get("status") != "failed":
                print(_accuracy(scan, out_dir, r["folder"]), flush=True)


if __name__ == "__main__":
    main()
