"""``nsynth-live bench``: speed measurements, one sub-subcommand each, every one writing JSON.

A thin front over :mod:`nsynth_live.benchmarks`: ``bench generation`` (PyTorch cached vs naive
generation), ``bench training`` (fp32 / bf16 / torch.compile steps/s) and ``bench engines`` (voices
streamed through the host's engines against the same run's MatMul peak, every config including
the shipped one). Other benchmarks join the group by adding their ``add_*`` function to
:data:`BENCHMARKS`.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

from nsynth_live.cli.common import parse_int_list


def parse_name_list(text: str) -> list[str]:
    """``"paper,live"`` -> ["paper", "live"]."""
    names = [x.strip() for x in text.split(",") if x.strip()]
    if not names:
        raise argparse.ArgumentTypeError(f"{text!r} names no config")
    return names


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
    from nsynth_live.benchmarks.generation import bench_generation
    from nsynth_live.benchmarks.report import write_report

    report, table = bench_generation(args.configs, args.batches, samples=args.samples,
                                     naive_samples=args.naive_samples, repeats=args.repeats, threads=args.threads)
    print(table)
    write_report(args.json, report)
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
    from nsynth_live.benchmarks.report import write_report
    from nsynth_live.benchmarks.training import bench_training

    report, table = bench_training(args.config, args.settings, steps=args.steps, batch_size=args.batch_size,
                                   crop=args.crop, data=args.data, threads=args.threads)
    print(table)
    write_report(args.json, report)
    return 0


# ----------------------------------------------------------------------------- bench engines


def add_engines(group: argparse._SubParsersAction) -> None:
    p = group.add_parser(
        "engines",
        help="decoder-step engines (ort, fused): steps/s, real-time factor, GFLOP/s",
        description="Exports random-weight models to a temporary folder and streams B voices through "
        "each engine: steps/s per voice, aggregate samples/s, real-time factor per voice at 16 kHz and "
        "GFLOP/s, next to the same run's ONNX Runtime fp32 MatMul peak (4096x4096, --threads threads) "
        "and the CPU's name and SIMD level. Configs with an excitation (the shipped one) get it per block.",
    )
    p.add_argument("--json", type=Path, required=True, metavar="FILE", help="write the results here")
    p.add_argument("--configs", type=parse_name_list, default=None,
                   help="default: paper, live and the shipped default's config (live-sine)")
    p.add_argument("--batches", type=parse_int_list, default=[1, 4, 8, 16, 64], help="voices (default: 1,4,8,16,64)")
    p.add_argument("--engines", type=parse_name_list, default=["ort", "fused"], help="default: ort,fused")
    p.add_argument("--threads", type=int, default=2, help="ONNX Runtime intra-op threads / fused workers (default: 2)")
    p.add_argument("--seconds", type=float, default=0.5, help="timed seconds per repeat, roughly (default: 0.5)")
    p.add_argument("--repeats", type=int, default=3,
                   help="timed repeats per row; the fastest counts, as for the peak: on a shared machine the "
                   "slower ones measure the neighbours (default: 3)")
    p.add_argument("--peak-size", type=int, default=4096, help="side of the square MatMul of the peak (default: 4096)")
    p.set_defaults(func=run_engines)


def run_engines(args: argparse.Namespace) -> int:
    from nsynth_live.benchmarks.engines import EngineBench, bench_engines, default_configs
    from nsynth_live.benchmarks.report import write_report

    report, table = bench_engines(EngineBench(
        configs=args.configs or default_configs(), batches=args.batches, engines=args.engines, threads=args.threads,
        seconds=args.seconds, repeats=args.repeats, peak_size=args.peak_size))
    print(table)
    write_report(args.json, report)
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
