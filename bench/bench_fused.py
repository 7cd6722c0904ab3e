"""Time the ``fused`` engine: samples/s, real-time factor per voice and GFLOP/s per batch size.

Random weights (the speed does not depend on their values), blocks of ``--block`` samples as a
real-time host would run them (16 ms at 16 kHz for 256), every voice conditioned and sampled.
For each thread count and batch B: ``--repeats`` timed runs of ``--seconds`` of audio per voice
after one untimed warm-up block; the table shows the median run, and the per-block times' median,
99th percentile and maximum (the jitter a real-time host sees against its block deadline).

Usage: python bench/bench_fused.py [--config live] [--batches 1,4,8,16,64] [--threads 1,2]
       [--json bench/results/fused.json]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from nsynth_live.host.engines.fused_engine import FusedEngine  # noqa: E402
from nsynth_live.configs import N_CLASSES, ModelConfig, flops_per_sample, get_config  # noqa: E402
from nsynth_live.sampling import NoiseStream  # noqa: E402

SAMPLE_RATE = 16000


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
    return w


def bench_one(engine: FusedEngine, batch: int, block: int, seconds: float, repeats: int, seed: int) -> dict:
    """Median of ``repeats`` runs of ``seconds`` of audio for ``batch`` voices."""
    cfg = engine.cfg
    rng = np.random.default_rng(seed)
    cond = (0.1 * rng.standard_normal((batch, 2, cfg.cond_width))).astype(np.float32)
    slots = np.arange(batch)
    switch = np.full(batch, block // 2, np.int64)  # a frame boundary inside every block
    noise = NoiseStream(seed, range(batch))
    n_blocks = max(1, round(seconds * SAMPLE_RATE / block))
    engine.reset()
    engine.generate(slots, cond, switch, noise.draw(block))  # untimed
    totals, block_times = [], []
    for _ in range(repeats):
        u = [noise.draw(block) for _ in range(n_blocks)]
        start = time.perf_counter()
        for b in range(n_blocks):
            t0 = time.perf_counter()
            engine.generate(slots, cond, switch, u[b])
            block_times.append(time.perf_counter() - t0)
        totals.append(time.perf_counter() - start)
    elapsed = statistics.median(totals)
    samples_per_s = batch * n_blocks * block / elapsed
    ms = np.array(block_times) * 1e3
    return {
        "engine": "fused", "config": cfg.name, "batch": batch, "threads": engine.threads, "block": block,
        "steps_per_s": samples_per_s / batch, "samples_per_s": samples_per_s,
        "rtf_per_voice": samples_per_s / batch / SAMPLE_RATE,
        "gflops": samples_per_s * flops_per_sample(cfg) / 1e9,
        "block_ms_median": float(np.median(ms)), "block_ms_p99": float(np.percentile(ms, 99)),
        "block_ms_max": float(ms.max()), "block_deadline_ms": 1e3 * block / SAMPLE_RATE,
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--config", default="live")
    p.add_argument("--batches", default="1,4,8,16,64")
    p.add_argument("--threads", default="1,2")
    p.add_argument("--parallel", default="pool", help="pool, prange, or both (comma-separated)")
    p.add_argument("--block", type=int, default=256, help="samples per call (<= hop)")
    p.add_argument("--seconds", type=float, default=1.0, help="audio per voice per timed run")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", type=Path, default=None)
    args = p.parse_args(argv)
    cfg = get_config(args.config)
    batches = [int(b) for b in args.batches.split(",")]
    weights = random_weights(cfg, args.seed)
    rows = []
    print(f"fused engine, config {cfg.name} (L={cfg.decoder_layers} R={cfg.residual} S={cfg.skip} "
          f"k={cfg.decoder_kernel}), {flops_per_sample(cfg) / 1e6:.3f} MFLOP/sample, block {args.block}")
    header = ("parallel", "threads", "B", "samples/s", "rtf/voice", "GFLOP/s", "block ms p50", "p99", "max")
    print("| " + " | ".join(header) + " |\n|" + "---|" * len(header))
    runs = [(par, int(t)) for par in args.parallel.split(",") for t in args.threads.split(",")]
    for parallel, threads in runs:
        if parallel == "prange" and threads == 1 and ("pool", 1) in runs:
            continue  # one thread is the same kernel call either way
        engine = FusedEngine(cfg, weights, max_voices=max(batches), threads=threads, parallel=parallel)
        try:
            for batch in batches:
                row = bench_one(engine, batch, args.block, args.seconds, args.repeats, args.seed)
                row["parallel"] = parallel
                rows.append(row)
                print(f"| {parallel} | {threads} | {batch} | {row['samples_per_s']:,.0f} | {row['rtf_per_voice']:.2f} | "
                      f"{row['gflops']:.1f} | {row['block_ms_median']:.2f} | {row['block_ms_p99']:.2f} | "
                      f"{row['block_ms_max']:.2f} |", flush=True)
        finally:
            engine.close()
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        report = {"config": cfg.name, "flops_per_sample": flops_per_sample(cfg), "machine": platform.processor()
                  or platform.machine(), "rows": rows}
        args.json.write_text(json.dumps(report, indent=1) + "\n")
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
