"""The fp32 GEMM peak of one vector width on this CPU: a yardstick for a forced kernel build.

``NSYNTH_FUSED_ISA=avx2`` runs the fused engine's AVX2 build on an AVX-512 CPU, but the same run's
ONNX Runtime MatMul peak (what ``bench engines`` quotes) then still uses AVX-512: the share it
gives is of a peak the AVX2 build cannot reach. numpy's OpenBLAS can be held to one kernel family
(``OPENBLAS_CORETYPE``; its DYNAMIC_ARCH build holds Haswell = AVX2+FMA and SkylakeX = AVX-512), so
this times one n x n fp32 product per family, each in its own process (the variable is read when
the library loads), beside ONNX Runtime's. An AVX2 machine's own peak is still the one to quote
for it: this says what share of the AVX2 rate a kernel reaches on this core, not on another one.

Usage: python bench/blas_peak.py [--families Haswell,SkylakeX] [--threads 2] [--size 4096]
       [--json bench/results/blas_peak.json]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from nsynth_live.benchmarks.machine import machine_info  # noqa: E402
from nsynth_live.benchmarks.peak import matmul_peak_gflops  # noqa: E402
from nsynth_live.benchmarks.report import format_table, write_report  # noqa: E402
from nsynth_live.errors import UserError  # noqa: E402

# Run in a child: best of 5 products after one warm-up; on its last stdout line the GFLOP/s and
# the family OpenBLAS reports it loaded (threadpoolctl, which scikit-learn brings: a family this
# build lacks is refused, not silently replaced).
CHILD = """
import sys, time, numpy as np
from threadpoolctl import threadpool_info
n = int(sys.argv[1]); rng = np.random.default_rng(0)
a, b = (rng.standard_normal((n, n), dtype=np.float32) for _ in range(2))
a @ b
best = min((lambda t0: (a @ b, time.perf_counter() - t0)[1])(time.perf_counter()) for _ in range(5))
core = next((i.get("architecture") or "unknown" for i in threadpool_info() if i.get("internal_api") == "openblas"),
            "no-OpenBLAS")
print(2 * n ** 3 / best / 1e9, core)
"""


def openblas_peak(family: str, threads: int, size: int) -> tuple[float, str]:
    """(GFLOP/s, the kernel family OpenBLAS says it loaded) of one fp32 product held to ``family``."""
    env = dict(os.environ, OPENBLAS_CORETYPE=family, OPENBLAS_NUM_THREADS=str(threads))
    try:
        res = subprocess.run([sys.executable, "-c", CHILD, str(size)], env=env, capture_output=True, text=True,
                             timeout=600)
    except subprocess.TimeoutExpired:
        raise SystemExit(f"blas_peak.py: the {family} run took over 600 s (--size {size})") from None
    if res.returncode:
        raise SystemExit(f"blas_peak.py: the {family} run failed: {(res.stderr.strip().splitlines() or ['no output'])[-1]}")
    gflops, loaded = (res.stdout.strip().splitlines() or [" "])[-1].split()[:2]
    if loaded.lower() != family.lower():  # OpenBLAS replaces a family it lacks with its own choice
        raise SystemExit(f"blas_peak.py: OPENBLAS_CORETYPE={family}: this OpenBLAS loaded {loaded} kernels instead")
    return float(gflops), loaded


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--families", default="Haswell,SkylakeX", help="OPENBLAS_CORETYPE values (default Haswell,SkylakeX)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--size", type=int, default=4096)
    ap.add_argument("--json", default="bench/results/blas_peak.json")
    args = ap.parse_args()
    for flag, value in (("--threads", args.threads), ("--size", args.size)):
        if value < 1:
            ap.error(f"{flag} {value}: must be at least 1")
    families = [f for f in args.families.split(",") if f]
    if not families:
        ap.error(f"--families {args.families!r}: names no kernel family")
    machine = machine_info()
    rows = []
    for family in families:
        gflops, loaded = openblas_peak(family, args.threads, args.size)
        rows.append({"gemm": f"OpenBLAS ({family})", "loaded": loaded, "gflops": gflops})
    rows.append({"gemm": "ONNX Runtime (MLAS, its own choice)", "loaded": f"CPU: {machine['simd']}",
                 "gflops": matmul_peak_gflops(args.threads, args.size)})
    print(f"{machine['cpu']} ({machine['simd']}), fp32 {args.size}^2 product, {args.threads} threads")
    print(format_table(["GEMM", "kernels loaded", "GFLOP/s"], [[r["gemm"], r["loaded"], f"{r['gflops']:,.1f}"] for r in rows]))
    try:
        write_report(Path(args.json), {"machine": machine, "threads": args.threads, "size": args.size, "rows": rows})
    except UserError as err:
        raise SystemExit(f"blas_peak.py: {err}") from None
    print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
