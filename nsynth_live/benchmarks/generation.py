"""PyTorch generation with cached ring buffers against naive generation (the teacher-forced
decoder rerun over the whole receptive field for every sample). Imports torch."""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Sequence
from functools import partial
from typing import Any

from nsynth_live import SAMPLE_RATE
from nsynth_live.benchmarks.machine import machine_info
from nsynth_live.benchmarks.report import format_table, median_seconds
from nsynth_live.errors import BadValue


def bench_generation(configs: Sequence[str], batches: Sequence[int], samples: int = 256, naive_samples: int = 2,
                     repeats: int = 3, threads: int | None = None, log: Any = sys.stderr) -> tuple[dict[str, Any], str]:
    """Samples/s of cached and naive generation with random weights.

    Args:
        configs: model config names.
        batches: voices per batch.
        samples: cached samples per voice and repeat.
        naive_samples: naive samples per voice, after a full receptive field of history.
        repeats: timed repeats of the cached run; the median counts.
        threads: torch threads (None: torch's choice).
        log: where progress lines go.

    Returns:
        (the JSON report, the text table).
    """
    import torch

    from nsynth_live.configs import CONFIG_NAMES, get_config, receptive_field
    from nsynth_live.decoder import Decoder
    from nsynth_live.generate import generate_classes, generate_naive

    unknown = [c for c in configs if c not in CONFIG_NAMES]
    if unknown or not configs:
        raise BadValue("configs", ",".join(configs), f"expected some of {', '.join(CONFIG_NAMES)}")
    if not batches or min(batches) < 1:
        raise BadValue("batches", ",".join(map(str, batches)), "every batch must be at least 1")
    for name, value in (("samples", samples), ("naive_samples", naive_samples), ("repeats", repeats)):
        if value < 1:
            raise BadValue(name, value, "must be at least 1")
    if threads is not None:
        if threads < 1:
            raise BadValue("threads", threads, "must be at least 1")
        torch.set_num_threads(threads)

    warmup = 16
    rows: list[dict[str, Any]] = []
    ratios: list[dict[str, Any]] = []
    table: list[list[Any]] = []
    for name in configs:
        cfg = get_config(name)
        torch.manual_seed(0)
        decoder = Decoder(cfg).eval()
        rf = receptive_field(cfg)
        for batch in batches:
            frames = math.ceil((rf + max(samples, naive_samples, warmup)) / cfg.hop)
            embedding = torch.randn(batch, cfg.bottleneck, frames)
            pitch = torch.randint(0, 128, (batch,)) if cfg.pitch_conditioning else None

            generate_classes(decoder, embedding, pitch, warmup, seed=0)
            run = partial(generate_classes, decoder, embedding, pitch, samples, seed=1)
            seconds = median_seconds(run, repeats)
            cached = batch * samples / seconds

            # Naive at its steady state: a receptive field of history, so every window is full.
            history = torch.randint(0, 256, (batch, rf))
            generate_naive(decoder, embedding, pitch, 1, seed=0, history=history[:, :warmup])
            start = time.perf_counter()
            generate_naive(decoder, embedding, pitch, naive_samples, seed=1, history=history)
            naive = batch * naive_samples / (time.perf_counter() - start)

            for method, rate in (("cached", cached), ("naive", naive)):
                rows.append({"method": method, "config": name, "batch": batch, "samples_per_s": rate,
                             "realtime_factor": rate / SAMPLE_RATE})
            ratios.append({"config": name, "batch": batch, "cached_over_naive": cached / naive})
            table.append([name, batch, f"{cached:,.1f}", f"{naive:,.3f}", f"{cached / naive:,.0f}x"])
            print(f"  {name} B={batch}: cached {cached:,.1f}, naive {naive:,.3f} samples/s", file=log)

    machine = machine_info()
    text = (f"{machine['cpu']} ({machine['simd']})\n"
            + format_table(["config", "batch", "cached samples/s", "naive samples/s", "cached/naive"], table))
    report = {
        "benchmark": "generation",
        "rows": rows,
        "ratios": ratios,
        "settings": {
            "samples": samples, "naive_samples": naive_samples, "repeats": repeats,
            "warmup_samples": warmup, "weights": "random (torch.manual_seed(0))", "dtype": "float32",
        },
        "machine": machine,
    }
    return report, text
