"""Training steps/s under fp32, bf16 autocast and torch.compile, with their loss curves. Imports torch."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

from nsynth_live.benchmarks.machine import machine_info
from nsynth_live.benchmarks.report import format_table
from nsynth_live.errors import BadValue


def bench_training(config: str, settings: Sequence[str], steps: int = 60, batch_size: int = 8, crop: int = 6144,
                   data: str | None = None, threads: int | None = None,
                   log: Any = sys.stderr) -> tuple[dict[str, Any], str]:
    """Train one config from the same initial weights over the same fixed batches per setting.

    Args:
        config: model config name.
        settings: some of :data:`nsynth_live.train_bench.SETTINGS`.
        steps: steps per setting.
        batch_size: crops per step.
        crop: samples per crop.
        data: dataset root for real crops (None: synthetic harmonic notes).
        threads: torch threads (None: torch's choice).
        log: where progress lines go.

    Returns:
        (the JSON report, the text table).
    """
    import torch

    from nsynth_live import train_bench

    bad = [s for s in settings if s not in train_bench.SETTINGS]
    if bad or not settings:
        raise BadValue("settings", ",".join(settings), f"expected some of {', '.join(train_bench.SETTINGS)}")
    if steps < 1:
        raise BadValue("steps", steps, "must be at least 1")
    if threads is not None:
        if threads < 1:
            raise BadValue("threads", threads, "must be at least 1")
        torch.set_num_threads(threads)
    if data:
        batches = train_bench.dataset_batches(data, steps, batch_size, crop)
    else:
        batches = train_bench.synthetic_batches(steps, batch_size, crop)
    rows, table = [], []
    base = None
    for setting in settings:
        r = train_bench.measure(config, batches, setting)
        tail = train_bench.tail_mean(r["losses"])
        base = base or r
        row = {"config": config, "setting": setting, "steps_per_s": r["steps_per_s"],
               "samples_per_s": r["steps_per_s"] * batch_size * crop,
               "speedup_vs_fp32": r["steps_per_s"] / base["steps_per_s"] if base["setting"] == "fp32" else None,
               "final_loss_bits": tail, "losses": r["losses"]}
        rows.append(row)
        table.append([setting, f"{r['steps_per_s']:.3f}", f"{row['samples_per_s']:,.0f}",
                      f"{row['speedup_vs_fp32']:.2f}x" if row["speedup_vs_fp32"] else "-", f"{tail:.3f}"])
        print(f"  {setting}: {r['steps_per_s']:.3f} steps/s, last-quarter loss {tail:.3f} bits", file=log)
    machine = machine_info()
    text = (f"{machine['cpu']} ({machine['simd']})\n"
            + format_table(["setting", "steps/s", "samples/s", "vs fp32", "last-quarter loss (bits)"], table))
    report = {
        "benchmark": "training", "rows": rows,
        "settings": {"config": config, "steps": steps, "batch_size": batch_size, "crop": crop,
                     "data": data or "synthetic"},
        "machine": machine,
    }
    return report, text
