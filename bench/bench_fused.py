"""Time the ``fused`` engine: samples/s, real-time factor per voice and GFLOP/s per batch size.

Random weights (the speed does not depend on their values), blocks of ``--block`` samples as a
real-time host would run them (16 ms at 16 kHz for 256), every voice conditioned and sampled.
For each thread count and batch B: ``--repeats`` timed runs of ``--seconds`` of audio per voice
after one untimed warm-up block; the table shows the median run, and the per-block times' median,
99th percentile and maximum (the jitter a real-time host sees against its block deadline), and
the fastest block with its real-time factor (the kernel's speed when no neighbour holds its cores:
on a shared machine the medians measure the neighbours as much as the kernel). ``--kernels``
times the native C kernel and the numba one side by side (``NSYNTH_FUSED_ISA=avx2`` forces the
native kernel's AVX2 build on an AVX-512 CPU).

Every config runs, the shipped one (``live-sine``) with its excitation computed per block inside
the timing, as the live host computes it. Each row stands beside the same run's ONNX Runtime fp32
MatMul peak (on the row's thread count) and the CPU's name and SIMD level, in the table and the JSON.

Usage: python bench/bench_fused.py [--configs live,live-sine] [--batches 1,4,8,16,64] [--threads 1,2]
       [--json bench/results/fused.json]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from nsynth_live import SAMPLE_RATE  # noqa: E402
from nsynth_live.benchmarks.engines import block_excitation, default_configs  # noqa: E402
from nsynth_live.benchmarks.machine import machine_info  # noqa: E402
from nsynth_live.benchmarks.peak import matmul_peak_gflops  # noqa: E402
from nsynth_live.benchmarks.report import write_report  # noqa: E402
from nsynth_live.cli.common import parse_int_list  # noqa: E402
from nsynth_live.configs import N_CLASSES, ModelConfig, flops_per_sample, get_config  # noqa: E402
from nsynth_live.host.engines.fused_engine import FusedEngine  # noqa: E402
from nsynth_live.sampling import NoiseStream  # noqa: E402


def random_weights(cfg: ModelConfig, seed: int = 0) -> dict[str, np.ndarray]:
    """Step weights with PyTorch's default conv init scale (uniform +-1/sqrt(fan_in)).

    Returns:
        the dict :class:`FusedEngine` takes (keys of ``host.model_files.step_weights_from_onnx``).
    """
    rng = np.random.default_rng(seed)
    r, s, k, n = cfg.residual, cfg.skip, cfg.decoder_kernel, cfg.decoder_layers

    def u(fan_in: int, *shape: int) -> np.ndarray:
        bound = 1.0 / np.sqrt(fan_in)
        return rng.uniform(-bound, bound, shape).astype(np.float32)

    w = {"start_w": u(k, k, r + s), "start_b": u(k, r + s), "out1_w": u(s, s, s),
         "logits_w": u(s, s, N_CLASSES), "logits_b": u(s, N_CLASSES)}
    for i in range(n):
        width = s if i == n - 1 else r + s
        w[f"layers.{i}.gate_w"] = u(k * r, k * r, 2 * r)
        w[f"layers.{i}.out_w"] = u(r, r, width)
        w[f"layers.{i}.out_b"] = u(r, width)
    if cfg.excitation_channels:  # the excitation's projection onto every layer's conditioning
        w["exc_w"] = u(cfg.excitation_channels, cfg.excitation_channels, cfg.cond_width)
    return w


def bench_one(engine: FusedEngine, batch: int, block: int, seconds: float, repeats: int, seed: int) -> dict:
    """Median of ``repeats`` runs of ``seconds`` of audio for ``batch`` voices."""
    cfg = engine.cfg
    rng = np.random.default_rng(seed)
    cond = (0.1 * rng.standard_normal((batch, 2, cfg.cond_width))).astype(np.float32)
    slots = np.arange(batch)
    switch = np.full(batch, block // 2, np.int64)  # a frame boundary inside every block
    noise = NoiseStream(seed, range(batch))
    pitch = rng.integers(36, 85, batch)
    # A learned source's per-frame amplitudes (random: what counts here is the synthesis's cost).
    amps = rng.random((batch, 2, cfg.source_harmonics)).astype(np.float32) if cfg.source_harmonics else None
    n_blocks = max(1, round(seconds * SAMPLE_RATE / block))
    engine.reset()
    engine.generate(slots, cond, switch, noise.draw(block), exc=block_excitation(cfg, pitch, 0, block, amps))  # untimed
    position = block
    totals, block_times = [], []
    for _ in range(repeats):
        u = [noise.draw(block) for _ in range(n_blocks)]
        start = time.perf_counter()
        for b in range(n_blocks):
            t0 = time.perf_counter()
            # The excitation is part of a block's work in the live host (host/synth.py).
            engine.generate(slots, cond, switch, u[b], exc=block_excitation(cfg, pitch, position, block, amps))
            position += block
            block_times.append(time.perf_counter() - t0)
        totals.append(time.perf_counter() - start)
    elapsed = statistics.median(totals)
    samples_per_s = batch * n_blocks * block / elapsed
    ms = np.array(block_times) * 1e3
    return {
        "engine": "fused", "config": cfg.name, "excitation": bool(cfg.excitation_channels), "batch": batch, "threads": engine.threads, "block": block,
        "steps_per_s": samples_per_s / batch, "samples_per_s": samples_per_s,
        "rtf_per_voice": samples_per_s / batch / SAMPLE_RATE,
        "gflops": samples_per_s * flops_per_sample(cfg) / 1e9,
        "block_ms_median": float(np.median(ms)), "block_ms_p99": float(np.percentile(ms, 99)),
        "block_ms_max": float(ms.max()), "block_deadline_ms": 1e3 * block / SAMPLE_RATE,
        # The fastest block: what the kernel does when no neighbour takes its cores (shared machines).
        "block_ms_min": float(ms.min()), "rtf_per_voice_best_block": block / SAMPLE_RATE / (ms.min() / 1e3),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--configs", default=None,
                   help="comma-separated model configs (default: live and the shipped default's, live-sine)")
    p.add_argument("--batches", type=parse_int_list, default=[1, 4, 8, 16, 64])
    p.add_argument("--threads", type=parse_int_list, default=[1, 2])
    p.add_argument("--parallel", default="pool", help="pool, prange, or both (comma-separated)")
    p.add_argument("--kernels", default="auto",
                   help="the fused engine's kernels to time: auto (what the engine picks), native, numba "
                        "(comma-separated; NSYNTH_FUSED_ISA=avx2 forces the native kernel's AVX2 build)")
    p.add_argument("--block", type=int, default=256, help="samples per call (<= hop)")
    p.add_argument("--seconds", type=float, default=1.0, help="audio per voice per timed run")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--peak-size", type=int, default=4096, help="side of the square MatMul of the peak")
    p.add_argument("--json", type=Path, default=None)
    args = p.parse_args(argv)
    configs = args.configs.split(",") if args.configs else [c for c in default_configs() if c != "paper"]
    machine = machine_info()
    # The yardstick: the same run's fp32 MatMul peak on each thread count the rows use.
    peaks = {t: matmul_peak_gflops(t, args.peak_size) for t in sorted(set(args.threads))}
    print(f"{machine['cpu']} ({machine['simd']}); ONNX Runtime fp32 MatMul peak "
          + ", ".join(f"{g:,.1f} GFLOP/s on {t} thread{'s' * (t > 1)}" for t, g in peaks.items()), flush=True)
    header = ("config", "kernel", "parallel", "threads", "B", "samples/s", "rtf/voice", "GFLOP/s", "of peak", "peak",
              "block ms p50", "p99", "max", "min", "rtf/voice best block", "SIMD")
    print("| " + " | ".join(header) + " |\n|" + "---|" * len(header))
    rows = []
    runs = [(kernel, par, t) for kernel in args.kernels.split(",") for par in args.parallel.split(",")
            for t in args.threads]
    for name in configs:
        cfg = get_config(name)
        weights = random_weights(cfg, args.seed)
        for kernel, parallel, threads in runs:
            if parallel == "prange" and (threads == 1 and (kernel, "pool", 1) in runs or kernel == "native"):
                continue  # one thread is the same kernel call either way; the native kernel has no prange
            engine = FusedEngine(cfg, weights, max_voices=max(args.batches), threads=threads, parallel=parallel,
                                 kernel=kernel)
            try:
                for batch in args.batches:
                    row = bench_one(engine, batch, args.block, args.seconds, args.repeats, args.seed)
                    peak = peaks[threads]
                    row.update(kernel=engine.kernel, parallel=parallel, matmul_peak_gflops=peak, fraction_of_peak=row["gflops"] / peak,
                               cpu=machine["cpu"], simd=machine["simd"])
                    rows.append(row)
                    print(f"| {name} | {engine.kernel} | {parallel} | {threads} | {batch} | {row['samples_per_s']:,.0f} | "
                          f"{row['rtf_per_voice']:.2f} | {row['gflops']:.1f} | {100 * row['fraction_of_peak']:.0f}% | "
                          f"{peak:,.0f} | {row['block_ms_median']:.2f} | {row['block_ms_p99']:.2f} | "
                          f"{row['block_ms_max']:.2f} | {row['block_ms_min']:.2f} | {row['rtf_per_voice_best_block']:.2f} | "
                          f"{machine['simd']} |", flush=True)
            finally:
                engine.close()
    if args.json:
        report = {"benchmark": "fused", "configs": configs,
                  "flops_per_sample": {c: flops_per_sample(get_config(c)) for c in configs},
                  "matmul_peak_gflops": {str(t): g for t, g in peaks.items()}, "machine": machine, "rows": rows}
        write_report(args.json, report)
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
