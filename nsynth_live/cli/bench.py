"""``nsynth-live bench``: speed measurements, one sub-subcommand each, every one writing JSON.

``bench generation`` times PyTorch generation with cached ring buffers against naive generation
(the teacher-forced decoder rerun over the whole receptive field for every sample). ``bench
engines`` streams voices of random-weight exports through the host's engines (``ort``, ``fused``)
and reports them against the same run's ONNX Runtime matmul peak. Other
benchmarks join the group by adding their ``add_*`` function to :data:`BENCHMARKS`; the helpers
here (timing, machine description, table, atomic JSON) are shared.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

from nsynth_live import SAMPLE_RATE
from nsynth_live.cli.common import parse_int_list
from nsynth_live.errors import UserError


def parse_name_list(text: str) -> list[str]:
    """``"paper,live"`` -> ["paper", "live"]."""
    names = [x.strip() for x in text.split(",") if x.strip()]
    if not names:
        raise argparse.ArgumentTypeError(f"{text!r} names no config")
    return names


# ----------------------------------------------------------------------------- shared helpers


def machine_info() -> dict[str, Any]:
    """What the numbers were measured on."""
    import numpy as np

    cpu = platform.processor()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")), cpu)
    except OSError:
        pass
    info: dict[str, Any] = {
        "cpu": cpu,
        "cores_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "numpy": np.__version__,
    }
    if "torch" in sys.modules:
        torch = sys.modules["torch"]
        info.update(torch=torch.__version__, torch_threads=torch.get_num_threads())
    return info


def median_seconds(run: Callable[[], object], repeats: int) -> float:
    """Median wall time of ``repeats`` calls of ``run``."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def print_table(headers: list[str], rows: list[list[Any]]) -> None:
    """A right-aligned text table on stdout."""
    cells = [headers] + [[str(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    for i, row in enumerate(cells):
        print("  ".join(c.rjust(w) for c, w in zip(row, widths)))
        if i == 0:
            print("  ".join("-" * w for w in widths))


def write_report(path: Path, report: dict[str, Any]) -> None:
    """Write JSON atomically (a crash never leaves half a report)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(report, indent=2) + "\n")
        os.replace(tmp, path)
    except OSError as err:
        raise UserError(f"{path}: cannot write the report ({err.strerror or err})") from None


def _positive(name: str, value: int) -> None:
    if value < 1:
        raise UserError(f"{name} must be at least 1, got {value}")


# ----------------------------------------------------------------------------- bench generation


def add_generation(group: argparse._SubParsersAction) -> None:
    p = group.add_parser(
        "generation",
        help="cached vs naive PyTorch generation, samples/s",
        description="Times sample-by-sample generation with random weights: cached ring buffers "
        "against rerunning the teacher-forced decoder over the receptive field for every sample.",
    )
    p.add_argument("--json", type=Path, required=True, metavar="FILE", help="write the results here")
    p.add_argument("--configs", type=parse_name_list, default=["paper", "live"], help="default: paper,live")
    p.add_argument("--batches", type=parse_int_list, default=[1, 8], help="voices per batch (default: 1,8)")
    p.add_argument("--samples", type=int, default=256, help="cached samples per voice and repeat (default: 256)")
    p.add_argument(
        "--naive-samples", type=int, default=2,
        help="naive samples per voice, after a full receptive field of history (default: 2; "
        "one costs ~6k teacher-forced positions for paper)",
    )
    p.add_argument("--repeats", type=int, default=3, help="timed repeats of the cached run; the median counts (default: 3)")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    p.set_defaults(func=run_generation)


def run_generation(args: argparse.Namespace) -> int:
    import torch

    from nsynth_live.configs import CONFIG_NAMES, get_config, receptive_field
    from nsynth_live.decoder import Decoder
    from nsynth_live.generate import generate_classes, generate_naive

    unknown = [c for c in args.configs if c not in CONFIG_NAMES]
    if unknown:
        raise UserError(f"--configs: unknown config {unknown[0]!r}; expected some of {', '.join(CONFIG_NAMES)}")
    if not args.batches:
        raise UserError("--batches names no batch size")
    for name, value in [("--samples", args.samples), ("--naive-samples", args.naive_samples),
                        ("--repeats", args.repeats), *[("--batches", b) for b in args.batches]]:
        _positive(name, value)
    if args.threads is not None:
        _positive("--threads", args.threads)
        torch.set_num_threads(args.threads)

    warmup = 16
    rows: list[dict[str, Any]] = []
    ratios: list[dict[str, Any]] = []
    table: list[list[Any]] = []
    for name in args.configs:
        cfg = get_config(name)
        torch.manual_seed(0)
        decoder = Decoder(cfg).eval()
        rf = receptive_field(cfg)
        for batch in args.batches:
            frames = math.ceil((rf + max(args.samples, args.naive_samples, warmup)) / cfg.hop)
            embedding = torch.randn(batch, cfg.bottleneck, frames)
            pitch = torch.randint(0, 128, (batch,)) if cfg.pitch_conditioning else None

            generate_classes(decoder, embedding, pitch, warmup, seed=0)
            run = partial(generate_classes, decoder, embedding, pitch, args.samples, seed=1)
            seconds = median_seconds(run, args.repeats)
            cached = batch * args.samples / seconds

            # Naive at its steady state: a receptive field of history, so every window is full.
            history = torch.randint(0, 256, (batch, rf))
            generate_naive(decoder, embedding, pitch, 1, seed=0, history=history[:, :warmup])
            start = time.perf_counter()
            generate_naive(decoder, embedding, pitch, args.naive_samples, seed=1, history=history)
            naive = batch * args.naive_samples / (time.perf_counter() - start)

            for method, rate in (("cached", cached), ("naive", naive)):
                rows.append({"method": method, "config": name, "batch": batch, "samples_per_s": rate,
                             "realtime_factor": rate / SAMPLE_RATE})
            ratios.append({"config": name, "batch": batch, "cached_over_naive": cached / naive})
            table.append([name, batch, f"{cached:,.1f}", f"{naive:,.3f}", f"{cached / naive:,.0f}x"])
            print(f"  {name} B={batch}: cached {cached:,.1f}, naive {naive:,.3f} samples/s", file=sys.stderr)

    print_table(["config", "batch", "cached samples/s", "naive samples/s", "cached/naive"], table)
    write_report(args.json, {
        "benchmark": "generation",
        "rows": rows,
        "ratios": ratios,
        "settings": {
            "samples": args.samples, "naive_samples": args.naive_samples, "repeats": args.repeats,
            "warmup_samples": warmup, "weights": "random (torch.manual_seed(0))", "dtype": "float32",
        },
        "machine": machine_info(),
    })
    return 0


# ----------------------------------------------------------------------------- bench training


def add_training(group: argparse._SubParsersAction) -> None:
    p = group.add_parser(
        "training",
        help="training steps/s: fp32 vs bf16 autocast vs torch.compile, and their loss curves",
        description="Trains one config from the same initial weights over the same fixed batches "
        "under each setting; reports steps/s (after a warm-up that includes compilation) and the "
        "mean loss of the last quarter of steps, so a faster setting that hurts the curve shows.",
    )
    p.add_argument("--json", type=Path, required=True, metavar="FILE", help="write the results here")
    p.add_argument("--config", default="live", help="model config (default: live)")
    p.add_argument("--settings", type=parse_name_list, default=["fp32", "bf16", "compile", "compile+bf16"],
                   help="default: fp32,bf16,compile,compile+bf16")
    p.add_argument("--data", default=None, help="dataset root for real crops (default: synthetic harmonic notes)")
    p.add_argument("--steps", type=int, default=60, help="steps per setting (default: 60)")
    p.add_argument("--batch-size", type=int, default=8, help="default: 8")
    p.add_argument("--crop", type=int, default=6144, help="default: 6144")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    p.set_defaults(func=run_training)


def run_training(args: argparse.Namespace) -> int:
    import torch

    from nsynth_live import train_bench

    bad = [s for s in args.settings if s not in train_bench.SETTINGS]
    if bad:
        raise UserError(f"--settings: unknown setting {bad[0]!r}; expected some of {', '.join(train_bench.SETTINGS)}")
    _positive("--steps", args.steps)
    if args.threads is not None:
        _positive("--threads", args.threads)
        torch.set_num_threads(args.threads)
    if args.data:
        batches = train_bench.dataset_batches(args.data, args.steps, args.batch_size, args.crop)
    else:
        batches = train_bench.synthetic_batches(args.steps, args.batch_size, args.crop)
    rows, table = [], []
    base = None
    for setting in args.settings:
        r = train_bench.measure(args.config, batches, setting)
        tail = train_bench.tail_mean(r["losses"])
        base = base or r
        row = {"config": args.config, "setting": setting, "steps_per_s": r["steps_per_s"],
               "samples_per_s": r["steps_per_s"] * args.batch_size * args.crop,
               "speedup_vs_fp32": r["steps_per_s"] / base["steps_per_s"] if base["setting"] == "fp32" else None,
               "final_loss_bits": tail, "losses": r["losses"]}
        rows.append(row)
        table.append([setting, f"{r['steps_per_s']:.3f}", f"{row['samples_per_s']:,.0f}",
                      f"{row['speedup_vs_fp32']:.2f}x" if row["speedup_vs_fp32"] else "-", f"{tail:.3f}"])
        print(f"  {setting}: {r['steps_per_s']:.3f} steps/s, last-quarter loss {tail:.3f} bits", file=sys.stderr)
    print_table(["setting", "steps/s", "samples/s", "vs fp32", "last-quarter loss (bits)"], table)
    write_report(args.json, {
        "benchmark": "training", "rows": rows,
        "settings": {"config": args.config, "steps": args.steps, "batch_size": args.batch_size, "crop": args.crop,
                     "data": args.data or "synthetic"},
        "machine": machine_info(),
    })
    return 0


# ----------------------------------------------------------------------------- bench engines


def add_engines(group: argparse._SubParsersAction) -> None:
    p = group.add_parser(
        "engines",
        help="decoder-step engines (ort, fused): steps/s, real-time factor, GFLOP/s",
        description="Exports random-weight models to a temporary folder and streams B voices through "
        "each engine: steps/s per voice, aggregate samples/s, real-time factor per voice at 16 kHz and "
        "GFLOP/s, next to the same run's ONNX Runtime fp32 MatMul peak (4096x4096, --threads threads).",
    )
    p.add_argument("--json", type=Path, required=True, metavar="FILE", help="write the results here")
    p.add_argument("--configs", type=parse_name_list, default=["paper", "live"], help="default: paper,live")
    p.add_argument("--batches", type=parse_int_list, default=[1, 4, 8, 16, 64], help="voices (default: 1,4,8,16,64)")
    p.add_argument("--engines", type=parse_name_list, default=["ort", "fused"], help="default: ort,fused")
    p.add_argument("--threads", type=int, default=2, help="ONNX Runtime intra-op threads / fused workers (default: 2)")
    p.add_argument("--seconds", type=float, default=0.5, help="timed seconds per repeat, roughly (default: 0.5)")
    p.add_argument("--repeats", type=int, default=3,
                   help="timed repeats per row; the fastest counts, as for the peak: on a shared machine the "
                   "slower ones measure the neighbours (default: 3)")
    p.add_argument("--peak-size", type=int, default=4096, help="side of the square MatMul of the peak (default: 4096)")
    p.set_defaults(func=run_engines)


def matmul_peak_gflops(threads: int, n: int = 4096, repeats: int = 3) -> float:
    """Best fp32 GFLOP/s of one n x n MatMul through ONNX Runtime on the CPU."""
    import numpy as np
    from onnx import TensorProto, helper

    from nsynth_live.host.engines.onnx_sessions import CPU, make_session

    graph = helper.make_graph(
        [helper.make_node("MatMul", ["a", "b"], ["c"])], "matmul_peak",
        [helper.make_tensor_value_info(x, TensorProto.FLOAT, [n, n]) for x in "ab"],
        [helper.make_tensor_value_info("c", TensorProto.FLOAT, [n, n])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    session = make_session(model.SerializeToString(), [CPU], threads)
    rng = np.random.default_rng(0)
    feeds = {x: rng.standard_normal((n, n), dtype=np.float32) for x in "ab"}
    session.run(None, feeds)
    best = min(median_seconds(lambda: session.run(None, feeds), 1) for _ in range(repeats))
    return 2 * n**3 / best / 1e9


def time_engine(engine: Any, batch: int, seconds: float, repeats: int = 1) -> float:
    """Steps per second of ``batch`` voices streamed through ``engine`` (blocks of <= hop), the
    best of ``repeats`` timed runs of about ``seconds`` each."""
    import numpy as np

    cfg = engine.cfg
    rng = np.random.default_rng(0)
    embedding = rng.standard_normal((batch, cfg.bottleneck, 2)).astype(np.float32)
    pitch = rng.integers(36, 85, batch) if cfg.pitch_conditioning else None
    cond = engine.condition(embedding, pitch)  # [B, 2, C]: two frames, switching mid-block
    slots = np.array([engine.add_voice() for _ in range(batch)])

    def run(steps: int) -> float:
        start = time.perf_counter()
        done = 0
        while done < steps:
            n = min(cfg.hop, steps - done)
            engine.render(slots, cond, np.full(batch, n // 2), rng.random((batch, n)))
            done += n
        return time.perf_counter() - start

    run(2)  # warm-up: first-run allocations, binding
    per_step = run(4) / 4
    steps = int(min(max(seconds / per_step, 8), 20 * cfg.hop))
    return max(steps / run(steps) for _ in range(repeats))


def run_engines(args: argparse.Namespace) -> int:
    import tempfile

    from nsynth_live.exporters.export import export_random
    from nsynth_live.host.engines import open_engine
    from nsynth_live.host.model_files import load_export
    from nsynth_live.configs import CONFIG_NAMES, flops_per_sample, get_config

    unknown = [c for c in args.configs if c not in CONFIG_NAMES]
    if unknown:
        raise UserError(f"--configs: unknown config {unknown[0]!r}; expected some of {', '.join(CONFIG_NAMES)}")
    bad = [e for e in args.engines if e not in ("ort", "fused")]
    if bad:
        raise UserError(f"--engines: unknown engine {bad[0]!r}; expected some of ort, fused")
    if not args.batches:
        raise UserError("--batches names no batch size")
    for name, value in [("--threads", args.threads), ("--repeats", args.repeats),
                        *[("--batches", b) for b in args.batches]]:
        _positive(name, value)
    if not args.seconds > 0:
        raise UserError(f"--seconds must be > 0, got {args.seconds}")

    notes: list[str] = []
    engines = list(args.engines)
    if "fused" in engines:
        try:
            import nsynth_live.host.engines.fused_engine  # noqa: F401
        except Exception as err:  # missing module or a failing compiler: measure the rest
            notes.append(f"fused skipped: nsynth_live.host.engines.fused_engine does not load ({type(err).__name__}: {err})")
            engines.remove("fused")
            print(f"  {notes[-1]}", file=sys.stderr)

    _positive("--peak-size", args.peak_size)
    # Measured before and after the engines; the better one counts (a busy neighbour during one
    # of them would otherwise inflate every "of peak" figure).
    peaks = [matmul_peak_gflops(args.threads, args.peak_size)]
    print(f"  ONNX Runtime fp32 MatMul {args.peak_size}^2, {args.threads} threads: {peaks[0]:,.1f} GFLOP/s", file=sys.stderr)
    rows: list[dict[str, Any]] = []
    table: list[list[Any]] = []
    with tempfile.TemporaryDirectory(prefix="nsynth-bench-") as tmp:
        for name in args.configs:
            cfg = get_config(name)
            info = load_export(export_random(name, Path(tmp) / name, seed=0))  # validated once per config
            for kind in engines:
                for batch in args.batches:
                    try:
                        engine = open_engine(info, kind, max_voices=batch, threads=args.threads, device="cpu")
                    except UserError as err:
                        notes.append(f"{kind} {name} B={batch} skipped: {err}")
                        print(f"  {notes[-1]}", file=sys.stderr)
                        continue
                    try:
                        steps = time_engine(engine, batch, args.seconds, args.repeats)
                    finally:
                        engine.close()
                    samples = steps * batch
                    gflops = samples * flops_per_sample(cfg) / 1e9
                    rows.append({"engine": kind, "config": name, "batch": batch, "steps_per_s": steps,
                                 "samples_per_s": samples, "rtf_per_voice": steps / SAMPLE_RATE, "gflops": gflops})
                    table.append([kind, name, batch, f"{steps:,.0f}", f"{samples:,.0f}", f"{steps / SAMPLE_RATE:.3g}",
                                  f"{gflops:,.1f}"])
                    print(f"  {kind} {name} B={batch}: {steps:,.0f} steps/s per voice, "
                          f"{steps / SAMPLE_RATE:.3g}x real time per voice, {gflops:,.1f} GFLOP/s", file=sys.stderr)
    peaks.append(matmul_peak_gflops(args.threads, args.peak_size))
    peak = max(peaks)
    print(f"  ONNX Runtime fp32 MatMul again: {peaks[1]:,.1f} GFLOP/s; peak {peak:,.1f}", file=sys.stderr)
    for row, line in zip(rows, table):
        row["fraction_of_peak"] = row["gflops"] / peak
        line.append(f"{100 * row['fraction_of_peak']:.0f}%")
    print_table(["engine", "config", "batch", "steps/s", "samples/s", "RTF/voice", "GFLOP/s", "of peak"], table)
    write_report(args.json, {
        "benchmark": "engines",
        "matmul_peak_gflops": peak,
        "matmul_peak_runs_gflops": peaks,
        "rows": rows,
        "notes": notes,
        "settings": {"threads": args.threads, "seconds": args.seconds, "repeats": args.repeats,
                     "statistic": "best of repeats", "weights": "random (seed 0)",
                     "dtype": "float32", "device": "cpu",
                     "peak_matmul": f"{args.peak_size}x{args.peak_size} fp32, ONNX Runtime CPU"},
        "machine": machine_info(),
    })
    return 0


# ----------------------------------------------------------------------------- the group

BENCHMARKS: list[Callable[[argparse._SubParsersAction], None]] = [add_generation, add_training, add_engines]
"""Each adds one ``bench`` sub-subcommand (a parser whose ``func`` runs it)."""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "bench", help="measure generation and engine speed", description="Speed measurements, each written as JSON."
    )
    group = parser.add_subparsers(dest="benchmark", metavar="BENCHMARK", required=True)
    for add in BENCHMARKS:
        add(group)
