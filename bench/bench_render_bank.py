"""Throughput of ``render-bank``: 4 s notes per hour, and the paper batch's share of the matmul peak.

Random-weight exports of the ``paper`` and ``live`` configs (the speed does not depend on the
weights) render ``--batch`` notes in one chunk (8 presets x 8 pitches for 64) through the library
path the command runs (:func:`host.render_bank.render_bank`: conditioning, engine, decoding,
velocity copies, atomic WAV writes, manifest, SFZ). Notes are ``--seconds`` long (short, so the
paper config finishes in minutes); notes per hour are quoted for 4 s notes: the generation time
scaled by the length, plus the per-note file writing as measured (five fsync'ed files per note,
which at 0.25 s weigh far more than at 4 s). GFLOP/s count the decoder step's matrix products
(``flops_per_sample``) over the whole render's wall time, files included, against the same
run's ONNX Runtime fp32 MatMul peak (best of before
and after, as ``nsynth-live bench engines`` does). Each row also times the bare engine right after
(``bench engines``' loop, same batch): the render path's cost on top of the engine, measured
under the same machine load.

Usage: python bench/bench_render_bank.py [--seconds 0.25] [--batch 64] [--threads 2]
       [--json bench/results/render_bank.json]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from nsynth_live.exporters.export import export_random  # noqa: E402
from nsynth_live.host import render_bank as rb  # noqa: E402
from nsynth_live.host.bank import Bank, Preset, load_bank, save_bank  # noqa: E402
from nsynth_live.host.engines import open_engine  # noqa: E402
from nsynth_live.host.model_files import load_export  # noqa: E402
from nsynth_live.host.trajectory import default_regions  # noqa: E402
from nsynth_live import SAMPLE_RATE  # noqa: E402
from nsynth_live.benchmarks.engines import time_engine  # noqa: E402
from nsynth_live.benchmarks.machine import machine_info  # noqa: E402
from nsynth_live.benchmarks.peak import matmul_peak_gflops  # noqa: E402
from nsynth_live.benchmarks.report import print_table, write_report  # noqa: E402
from nsynth_live.configs import flops_per_sample, get_config  # noqa: E402

RUNS = [("paper", "ort"), ("live", "fused"), ("live", "ort")]
NOTE_SAMPLES = 4 * SAMPLE_RATE


def random_bank(path: Path, presets: int, frames: int = 125) -> Bank:
    """Presets of random trajectories (NSynth length: 125 frames of 512 samples)."""
    rng = np.random.default_rng(0)
    items = []
    for i in range(presets):
        e = rng.standard_normal((frames, 16)).astype(np.float32)
        items.append(Preset(f"r{i}", e, 60, regions=default_regions(e, 512)))
    save_bank(Bank(path, "bench", 512, SAMPLE_RATE, 16, frames, items))
    return load_bank(path)


def bench_one(export: Path, bank: Bank, engine_kind: str, args: argparse.Namespace, out: Path) -> dict:
    """One untimed warm-up note, then the timed render of ceil(batch / 8) presets x 8 pitches."""
    info = load_export(export)
    cfg = info.config
    pitches = list(range(48, 48 + min(8, args.batch)))
    sounds = rb.preset_sounds(bank)[: -(-args.batch // len(pitches))]
    with open_engine(info, engine_kind, max_voices=args.batch, threads=args.threads, device="cpu") as engine:
        warm = rb.Job(out / "warm", sounds[:1], pitches[:1], [127], seconds=cfg.hop / SAMPLE_RATE, batch=1)
        rb.render_bank(warm, engine, info)
        job = rb.Job(out / "run", sounds, pitches, [25, 50, 75, 100, 127], seconds=args.seconds, batch=args.batch)
        start = time.perf_counter()
        report = rb.render_bank(job, engine, info)
        wall = time.perf_counter() - start
        # The bare engine right after, as `bench engines` streams it: what the path costs on top.
        engine_steps = time_engine(engine, args.batch, seconds=args.engine_seconds)
    n, _ = rb.note_lengths(args.seconds)
    samples_per_s = report.rendered * n / wall
    # A 4 s note: the generation scaled by its length, the per-note work (files) as measured.
    generate, write = (wall - report.write_seconds) / report.rendered, report.write_seconds / report.rendered
    per_note = generate * NOTE_SAMPLES / n + write
    return {
        "config": cfg.name, "engine": engine_kind, "batch": args.batch, "threads": args.threads,
        "notes": report.rendered, "note_seconds": args.seconds, "files": report.files_written,
        "wall_s": wall, "write_s": report.write_seconds, "samples_per_s": samples_per_s,
        "notes_4s_per_hour": 3600 / per_note,
        "realtime_factor": samples_per_s / SAMPLE_RATE,
        "flops_per_sample": flops_per_sample(cfg), "gflops": samples_per_s * flops_per_sample(cfg) / 1e9,
        "engine_only_samples_per_s": engine_steps * args.batch,
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seconds", type=float, default=0.25, help="note length rendered (default 0.25)")
    p.add_argument("--batch", type=int, default=64, help="notes per chunk (default 64)")
    p.add_argument("--threads", type=int, default=2, help="engine threads and peak threads (default 2)")
    p.add_argument("--peak-size", type=int, default=4096)
    p.add_argument("--engine-seconds", type=float, default=5.0, help="timed bare-engine run per row (default 5)")
    p.add_argument("--runs", default=",".join(f"{c}:{e}" for c, e in RUNS), help="config:engine,... (default all)")
    p.add_argument("--json", type=Path, default=Path(__file__).parent / "results" / "render_bank.json")
    args = p.parse_args(argv)
    runs = [tuple(r.split(":")) for r in args.runs.split(",")]

    peaks = [matmul_peak_gflops(args.threads, args.peak_size)]
    print(f"ONNX Runtime fp32 MatMul {args.peak_size}^2, {args.threads} threads: {peaks[0]:,.1f} GFLOP/s", flush=True)
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-render-bank-") as tmp:
        root = Path(tmp)
        bank = random_bank(root / "bank", -(-args.batch // 8))
        exports = {}
        for config, engine in runs:
            if config not in exports:
                exports[config] = export_random(get_config(config), root / config, seed=0)
            row = bench_one(exports[config], bank, engine, args, root / f"{config}-{engine}")
            rows.append(row)
            print(f"  {config} {engine} B={args.batch}: {row['notes']} notes of {args.seconds} s "
                  f"in {row['wall_s']:.1f} s, "
                  f"{row['samples_per_s']:,.0f} samples/s, {row['gflops']:.1f} GFLOP/s", flush=True)
    peaks.append(matmul_peak_gflops(args.threads, args.peak_size))
    peak = max(peaks)
    table = []
    for row in rows:
        row["fraction_of_peak"] = row["gflops"] / peak
        row["engine_only_fraction_of_peak"] = row["engine_only_samples_per_s"] * row["flops_per_sample"] / 1e9 / peak
        table.append([row["config"], row["engine"], row["batch"], f"{row['samples_per_s']:,.0f}",
                      f"{row['realtime_factor']:.2f}x", f"{row['notes_4s_per_hour']:,.0f}", f"{row['gflops']:.1f}",
                      f"{100 * row['fraction_of_peak']:.0f}%", f"{row['engine_only_samples_per_s']:,.0f}",
                      f"{100 * row['engine_only_fraction_of_peak']:.0f}%"])
    print(f"peak: {peak:,.1f} GFLOP/s (runs {', '.join(f'{x:.1f}' for x in peaks)})")
    print_table(["config", "engine", "batch", "samples/s", "real time", "4 s notes/hour", "GFLOP/s", "of peak",
                 "bare engine samples/s", "of peak"], table)
    write_report(args.json, {
        "benchmark": "render_bank", "matmul_peak_gflops": peak, "matmul_peak_runs_gflops": peaks, "rows": rows,
        "settings": {"seconds": args.seconds, "batch": args.batch, "threads": args.threads,
                     "velocities": 5, "weights": "random (seed 0)", "device": "cpu",
                     "peak_matmul": f"{args.peak_size}x{args.peak_size} fp32, ONNX Runtime CPU",
                     "notes_per_hour": "for 4 s notes, from samples/s of the whole render path"},
        "machine": machine_info(),
    })
    print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
