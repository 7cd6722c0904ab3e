"""Voices streamed through the host's engines: steps/s, real-time factor, GFLOP/s and their share
of the same run's fp32 MatMul peak, for every config including the shipped one.

Random-weight exports (the speed does not depend on the weights' values) of each config, written
to a temporary folder; a config with an excitation (the shipped ``live-sine``) gets its excitation
computed per block, in the timing, as the live host computes it.
"""

from __future__ import annotations

import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from nsynth_live import SAMPLE_RATE
from nsynth_live.benchmarks.machine import cpu_label, machine_info
from nsynth_live.benchmarks.peak import matmul_peak_gflops
from nsynth_live.benchmarks.report import format_table
from nsynth_live.configs import CONFIG_NAMES, ModelConfig, flops_per_sample, get_config
from nsynth_live.errors import BadValue, UserError

ENGINES = ("ort", "fused")


def shipped_config() -> str:
    """The config name of the shipped default model (``presets/default/model``)."""
    from nsynth_live.host.defaults import model_or_default
    from nsynth_live.host.model_files import load_export

    return load_export(model_or_default(None)).config.name


def default_configs() -> list[str]:
    """``paper``, ``live`` and the shipped default's config (``live-sine``), each once."""
    names = ["paper", "live"]
    try:
        shipped = shipped_config()
    except UserError:  # no shipped default in this install: the excitation config stands in
        shipped = "live-sine"
    return names + [shipped] if shipped not in names else names


def block_excitation(cfg: ModelConfig, pitch: np.ndarray, start: int, n: int,
                     amplitudes: np.ndarray | None = None) -> np.ndarray | None:
    """The excitation of ``n`` samples from ``start`` of voices at ``pitch`` (None for a model
    without one): float32 [B, n, E], as the live host hands it to :meth:`Engine.render`, its
    cost included (a learned source's ``amplitudes`` [B, F, K] from :meth:`Engine.source_amplitudes`)."""
    if not cfg.excitation_channels:
        return None
    from nsynth_live.host.engines import voice_excitation

    return voice_excitation(cfg, pitch, start, n, amplitudes=amplitudes)


def time_engine(engine: Any, batch: int, seconds: float, repeats: int = 1) -> float:
    """Steps per second of ``batch`` voices streamed through ``engine`` (blocks of <= hop), the
    best of ``repeats`` timed runs of about ``seconds`` each.

    Args:
        engine: an open :class:`~nsynth_live.host.engines.Engine` with ``batch`` free slots.
        batch: voices.
        seconds: timed seconds per run, roughly.
        repeats: timed runs; the fastest counts.
    """
    cfg = engine.cfg
    rng = np.random.default_rng(0)
    embedding = rng.standard_normal((batch, cfg.bottleneck, 2)).astype(np.float32)
    pitch = rng.integers(36, 85, batch)
    cond = engine.condition(embedding, pitch if cfg.pitch_conditioning else None)  # [B, 2, C]: two frames
    amps = engine.source_amplitudes(embedding, pitch) if cfg.source_harmonics else None
    slots = np.array([engine.add_voice() for _ in range(batch)])
    position = [0]

    def run(steps: int) -> float:
        start = time.perf_counter()
        done = 0
        while done < steps:
            n = min(cfg.hop, steps - done)
            exc = block_excitation(cfg, pitch, position[0], n, amps)
            engine.render(slots, cond, np.full(batch, n // 2), rng.random((batch, n)), exc=exc)
            done += n
            position[0] += n
        return time.perf_counter() - start

    run(2)  # warm-up: first-run allocations, binding
    per_step = run(4) / 4
    steps = int(min(max(seconds / per_step, 8), 20 * cfg.hop))
    return max(steps / run(steps) for _ in range(repeats))


@dataclass(frozen=True)
class EngineBench:
    """What ``bench engines`` measures.

    Attributes:
        configs: model config names (every one of :data:`nsynth_live.configs.CONFIG_NAMES` works).
        batches: voices per row.
        engines: ``ort`` and/or ``fused``.
        threads: ONNX Runtime intra-op threads / fused workers, and the peak's threads.
        seconds: timed seconds per repeat, roughly.
        repeats: timed repeats per row; the fastest counts.
        peak_size: side of the square MatMul of the peak.
    """

    configs: Sequence[str]
    batches: Sequence[int] = (1, 4, 8, 16, 64)
    engines: Sequence[str] = ENGINES
    threads: int = 2
    seconds: float = 0.5
    repeats: int = 3
    peak_size: int = 4096

    def check(self) -> None:
        """Raises BadValue naming the setting at fault."""
        unknown = [c for c in self.configs if c not in CONFIG_NAMES]
        if unknown or not self.configs:
            raise BadValue("configs", ",".join(self.configs), f"expected some of {', '.join(CONFIG_NAMES)}")
        bad = [e for e in self.engines if e not in ENGINES]
        if bad or not self.engines:
            raise BadValue("engines", ",".join(self.engines), f"expected some of {', '.join(ENGINES)}")
        if not self.batches or min(self.batches) < 1:
            raise BadValue("batches", ",".join(map(str, self.batches)), "every batch must be at least 1")
        for name in ("threads", "repeats", "peak_size"):
            if getattr(self, name) < 1:
                raise BadValue(name, getattr(self, name), "must be at least 1")
        if not self.seconds > 0:
            raise BadValue("seconds", self.seconds, "must be > 0")


def bench_engines(s: EngineBench, log: Any = sys.stderr) -> tuple[dict[str, Any], str]:
    """Stream voices of random-weight exports of each config through each engine.

    Args:
        s: what to measure.
        log: where progress lines go.

    Returns:
        (the JSON report, the text table). Every row carries the run's MatMul peak, its share of
        it, and the CPU's name and SIMD level.
    """
    from nsynth_live.exporters.export import export_random
    from nsynth_live.host.engines import open_engine
    from nsynth_live.host.model_files import load_export

    s.check()
    notes: list[str] = []
    engines = list(s.engines)
    if "fused" in engines:
        try:
            import nsynth_live.host.engines.fused_engine  # noqa: F401
        except Exception as err:  # missing module or a failing compiler: measure the rest
            notes.append(f"fused skipped: nsynth_live.host.engines.fused_engine does not load ({type(err).__name__}: {err})")
            engines.remove("fused")
            print(f"  {notes[-1]}", file=log)

    machine = machine_info()
    # Measured before and after the engines; the better one counts (a busy neighbour during one
    # of them would otherwise inflate every "of peak" figure).
    peaks = [matmul_peak_gflops(s.threads, s.peak_size)]
    print(f"  {cpu_label()}: ONNX Runtime fp32 MatMul {s.peak_size}^2, {s.threads} threads: {peaks[0]:,.1f} GFLOP/s",
          file=log)
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="nsynth-bench-") as tmp:
        for name in s.configs:
            cfg = get_config(name)
            info = load_export(export_random(name, Path(tmp) / name, seed=0))  # validated once per config
            for kind in engines:
                for batch in s.batches:
                    try:
                        engine = open_engine(info, kind, max_voices=batch, threads=s.threads, device="cpu")
                    except UserError as err:
                        notes.append(f"{kind} {name} B={batch} skipped: {err}")
                        print(f"  {notes[-1]}", file=log)
                        continue
                    # The fused engine's kernel and instruction set (native-avx512, ..., numba).
                    label = getattr(getattr(engine, "engine", None), "kernel", None)
                    try:
                        steps = time_engine(engine, batch, s.seconds, s.repeats)
                    finally:
                        engine.close()
                    samples = steps * batch
                    gflops = samples * flops_per_sample(cfg) / 1e9
                    rows.append({"engine": kind, "kernel": label, "config": name, "batch": batch,
                                 "excitation": bool(cfg.excitation_channels), "steps_per_s": steps,
                                 "samples_per_s": samples, "rtf_per_voice": steps / SAMPLE_RATE, "gflops": gflops})
                    print(f"  {kind} {name} B={batch}: {steps:,.0f} steps/s per voice, "
                          f"{steps / SAMPLE_RATE:.3g}x real time per voice, {gflops:,.1f} GFLOP/s", file=log)
    peaks.append(matmul_peak_gflops(s.threads, s.peak_size))
    peak = max(peaks)
    print(f"  ONNX Runtime fp32 MatMul again: {peaks[1]:,.1f} GFLOP/s; peak {peak:,.1f}", file=log)
    table = []
    for row in rows:
        row.update(fraction_of_peak=row["gflops"] / peak, matmul_peak_gflops=peak, cpu=machine["cpu"],
                   simd=machine["simd"])
        table.append([row["engine"] + (f" ({row['kernel']})" if row["kernel"] else ""), row["config"], row["batch"], f"{row['steps_per_s']:,.0f}",
                      f"{row['samples_per_s']:,.0f}", f"{row['rtf_per_voice']:.3g}", f"{row['gflops']:,.1f}",
                      f"{100 * row['fraction_of_peak']:.0f}%", f"{peak:,.0f}", machine["simd"]])
    text = (f"{machine['cpu']} ({machine['simd']}), fp32 MatMul peak {peak:,.1f} GFLOP/s "
            f"(ONNX Runtime, {s.threads} threads, this run)\n"
            + format_table(["engine", "config", "batch", "steps/s", "samples/s", "RTF/voice", "GFLOP/s", "of peak",
                            "peak GFLOP/s", "SIMD"], table))
    report = {
        "benchmark": "engines",
        "matmul_peak_gflops": peak,
        "matmul_peak_runs_gflops": peaks,
        "rows": rows,
        "notes": notes,
        "settings": {**asdict(s), "configs": list(s.configs), "batches": list(s.batches), "engines": list(s.engines),
                     "statistic": "best of repeats", "weights": "random (seed 0)", "dtype": "float32",
                     "device": "cpu", "excitation": "computed per block inside the timing, as the live host does",
                     "peak_matmul": f"{s.peak_size}x{s.peak_size} fp32, ONNX Runtime CPU"},
        "machine": machine,
    }
    return report, text
