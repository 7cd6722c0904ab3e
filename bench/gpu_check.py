"""One check of the GPU path: ONNX Runtime on CUDA with IO binding, CUDA/CPU parity, render-bank
and training on CUDA, with the CPU's figures beside them.

Parts, each a section of ``OUT/gpu_check.json`` and a table on stdout:

a. runtime: the ONNX Runtime version, its providers, whether CUDA starts (and if not, why),
   torch and its CUDA device;
b. engines: the ``ort`` engine (IO binding, rings on the device) streaming B voices of the
   ``paper`` config (random weights, seed 0: the speed does not depend on them) and of the
   shipped model (``presets/default/model``): samples/s, aggregate real-time factor, and the
   process's GPU memory (``nvidia-smi``) or, on the CPU, its peak resident memory;
c. parity: the same classes rendered on CUDA and on the CPU engine with the same seed (and the
   fused CPU engine against ``ort`` on the CPU, for the small model), counted up to float
   near-ties (:func:`nsynth_live.sampling.compare_streams`);
d. render-bank: a ``paper`` bank of ``--bank-notes`` notes through the library path the
   command runs (``host.render_bank``), notes per hour;
e. training: the project's trainer (``nsynth_live.train.Trainer``, checkpoint included) for
   ``--train-steps`` steps of the shipped config and of ``paper`` on CUDA (bf16) and on the CPU
   (``--cpu-train-steps``, its ``auto`` precision), on a synthetic NSynth-format dataset written
   under OUT (nothing downloads): steps/s after the first logged window.

Without a usable CUDA provider every CUDA part is skipped, saying why (the reason
``host.engines.onnx_sessions.cuda_status`` gives), and the CPU parts still run: ``--quick`` makes them small
enough for a test. Everything is written under ``--out``.

torch is imported before ONNX Runtime, so that an onnxruntime-gpu wheel built for the same CUDA
major finds torch's CUDA and cuDNN libraries; when the CUDA provider still does not start,
``onnxruntime.preload_dlls()`` (CUDA/cuDNN from the nvidia-* pip packages) is tried once and
the probe repeated (the JSON says so). Needs the project installed (``pip install --no-deps -e .``:
``nsynth_live.host`` is mapped from ``host/``).

Usage: python bench/gpu_check.py --out DIR [--quick] [--batches 1,64,256,1024] [--seconds 2]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import time
import traceback
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from nsynth_live import SAMPLE_RATE, sampling  # noqa: E402
from nsynth_live.benchmarks.machine import machine_info  # noqa: E402
from nsynth_live.benchmarks.report import print_table, write_report  # noqa: E402
from nsynth_live.cli.common import parse_int_list  # noqa: E402
from nsynth_live.errors import UserError  # noqa: E402

FULL = {"batches": [1, 64, 256, 1024], "cpu_batches": [1, 8], "seconds": 2.0, "parity_samples": 2000,
        "parity_voices": 4, "bank_notes": 64, "bank_seconds": 4.0, "cpu_bank_notes": 8, "cpu_bank_seconds": 0.25,
        "train_steps": 200, "cpu_train_steps": 5, "train_batch": 8, "train_crop": 6144}
QUICK = {"batches": [1, 4], "cpu_batches": [1, 2], "seconds": 0.05, "parity_samples": 300,
         "parity_voices": 2, "bank_notes": 2, "bank_seconds": 0.05, "cpu_bank_notes": 2, "cpu_bank_seconds": 0.05,
         "train_steps": 3, "cpu_train_steps": 3, "train_batch": 2, "train_crop": 1024}


# ----------------------------------------------------------------------------- measurements


def gpu_memory_mb() -> float | None:
    """This process's GPU memory per ``nvidia-smi`` (ONNX Runtime's CUDA arena is invisible to
    torch's allocator), or None without nvidia-smi or where it does not list this process (a
    container's own pid namespace): see :func:`gpu_device_used_mb` then."""
    if shutil.which("nvidia-smi") is None:
        return None
    try:
        out = subprocess.run(["nvidia-smi", "--query-compute-apps=pid,used_memory", "--format=csv,noheader,nounits"],
                             capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.TimeoutExpired):
        return None
    used = [float(m) for p, m in (line.split(",") for line in out.strip().splitlines() if "," in line)
            if p.strip() == str(os.getpid())]
    return sum(used) if used else None


def gpu_device_used_mb() -> float | None:
    """Memory in use on GPU 0, every process's (``cudaMemGetInfo`` through torch), or None."""
    try:
        import torch

        if not torch.cuda.is_available():
            return None
        free, total = torch.cuda.mem_get_info(0)
        return (total - free) / 2**20
    except Exception:  # noqa: BLE001 - a figure beside the others, not worth failing a row
        return None


def host_rss_mb() -> float:
    """Peak resident memory of this process so far (MB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def stream_rate(engine: Any, batch: int, seconds: float) -> float:
    """Aggregate samples/s of ``batch`` voices streamed through ``engine`` in blocks of one hop
    for about ``seconds`` (after two warm-up blocks), with the excitation for models with one."""
    from nsynth_live.host.engines import voice_excitation

    cfg = engine.cfg
    rng = np.random.default_rng(0)
    embedding = rng.standard_normal((batch, cfg.bottleneck, 2)).astype(np.float32)
    pitch = rng.integers(36, 85, batch)
    cond = engine.condition(embedding, pitch if cfg.pitch_conditioning else None)  # [B, 2, C]
    amps = engine.source_amplitudes(embedding, pitch) if cfg.source_harmonics else None
    slots = np.array([engine.add_voice() for _ in range(batch)])
    hop = cfg.hop
    switch = np.full(batch, hop // 2)
    noise = rng.random((batch, hop))
    exc = voice_excitation(cfg, pitch, 0, hop, amplitudes=amps) if cfg.excitation_channels else None

    def block() -> None:
        engine.render(slots, cond, switch, noise, exc=exc)

    block(), block()
    start, blocks = time.perf_counter(), 0
    while blocks < 2 or time.perf_counter() - start < seconds:
        block()
        blocks += 1
    return batch * hop * blocks / (time.perf_counter() - start)


def engine_rows(name: str, export: Path, device: str, batches: list[int], seconds: float, threads: int | None) -> list[dict]:
    from nsynth_live.host.engines import open_engine

    rows = []
    for batch in batches:
        engine = open_engine(export, "ort", max_voices=batch, threads=threads, device=device)
        try:
            provider = engine.execution_provider
            rate = stream_rate(engine, batch, seconds)
            memory = gpu_memory_mb() if device == "cuda" else None
            device_used = gpu_device_used_mb() if device == "cuda" else None
        finally:
            engine.close()
        rows.append({"config": name, "device": device, "provider": provider, "batch": batch, "samples_per_s": rate,
                     "rtf_aggregate": rate / SAMPLE_RATE, "rtf_per_voice": rate / batch / SAMPLE_RATE,
                     "gpu_memory_mb": memory, "gpu_device_used_mb": device_used, "host_peak_rss_mb": host_rss_mb()})
        print(f"  engines {name} {device} B={batch}: {rate:,.0f} samples/s, {rate / SAMPLE_RATE:,.2f}x real time"
              + (f", GPU {memory:,.0f} MB" if memory is not None else ""), file=sys.stderr, flush=True)
    return rows


def render_classes(export: Path, kind: str, device: str, voices: int, n: int, seed: int,
                   threads: int | None) -> tuple[np.ndarray, np.ndarray, float]:
    """(classes [V, n], logits [V, n, 256], temperature) of ``voices`` voices rendered from the
    same random embeddings and pitches with noise seed ``seed``."""
    from nsynth_live.host.engines import open_engine, render_frames

    with open_engine(export, kind, max_voices=voices, threads=threads, device=device) as engine:
        cfg = engine.cfg
        rng = np.random.default_rng(1)
        frames = -(-n // cfg.hop)
        embedding = rng.standard_normal((voices, cfg.bottleneck, frames)).astype(np.float32)
        pitch = rng.integers(48, 73, voices)
        slots = [engine.add_voice() for _ in range(voices)]
        cond = engine.condition(embedding, pitch if cfg.pitch_conditioning else None)
        amps = engine.source_amplitudes(embedding, pitch) if cfg.source_harmonics else None
        logits = np.empty((voices, n, 256), np.float32)
        noise = sampling.voice_noise(seed, voices, n)
        classes = render_frames(engine, slots, cond, n, noise, logits_out=logits, pitch=pitch, amplitudes=amps)
        return classes, logits, engine.decoding.temperature


def parity_row(name: str, export: Path, ref: tuple[str, str], other: tuple[str, str], voices: int, n: int,
               threads: int | None, seed: int = 7) -> dict:
    """``other`` (kind, device) against ``ref`` on the same seed, counted up to near-ties."""
    want, logits, temperature = render_classes(export, *ref, voices, n, seed, threads)
    got, _, _ = render_classes(export, *other, voices, n, seed, threads)
    result = sampling.compare_streams(got, want, logits, sampling.voice_noise(seed, voices, n), temperature)
    row = {"config": name, "reference": "/".join(ref), "other": "/".join(other), "temperature": temperature, **result}
    print(f"  parity {name} {row['other']} vs {row['reference']}: {voices} voices x {n} samples, "
          f"{result['identical_voices']} identical, {result['near_ties']} near-ties, "
          f"{result['real_differences']} real differences", file=sys.stderr, flush=True)
    return row


def render_bank_row(name: str, export: Path, device: str, notes: int, seconds: float, out: Path,
                    threads: int | None) -> dict:
    """Time ``host.render_bank`` of ``notes`` notes (8 pitches per preset, one velocity) in one batch."""
    from bench_render_bank import random_bank

    from nsynth_live.host import render_bank as rb
    from nsynth_live.host.engines import open_engine
    from nsynth_live.host.model_files import load_export

    info = load_export(export)
    pitches = list(range(48, 48 + min(8, notes)))
    bank = random_bank(out / "bank", -(-notes // len(pitches)))
    sounds = rb.preset_sounds(bank)
    with open_engine(info, "ort", max_voices=notes, threads=threads, device=device) as engine:
        warm = rb.Job(out / "warm", sounds[:1], pitches[:1], [127], seconds=info.config.hop / SAMPLE_RATE, batch=1)
        rb.render_bank(warm, engine, info)  # sessions, arena and binding before the clock starts
        job = rb.Job(out / "run", sounds, pitches, [100], seconds=seconds, batch=notes)
        start = time.perf_counter()
        report = rb.render_bank(job, engine, info)
        wall = time.perf_counter() - start
        memory = gpu_memory_mb() if device == "cuda" else None
    n, _ = rb.note_lengths(seconds)
    row = {"config": name, "device": device, "notes": report.rendered, "note_seconds": seconds, "wall_s": wall,
           "write_s": report.write_seconds, "samples_per_s": report.rendered * n / wall,
           "notes_per_hour": 3600 * report.rendered / wall,
           # Generation scales with the note's length, the files barely: a 4 s note's cost.
           "notes_4s_per_hour": 3600 / ((wall - report.write_seconds) / report.rendered * 4.0 / seconds
                                        + report.write_seconds / report.rendered),
           "gpu_memory_mb": memory}
    shutil.rmtree(out / "run", ignore_errors=True)
    print(f"  render-bank {name} {device}: {report.rendered} notes of {seconds} s in {wall:.1f} s, "
          f"{row['notes_4s_per_hour']:,.0f} 4-s notes/hour", file=sys.stderr, flush=True)
    return row


def synthetic_dataset(root: Path, notes: int = 32, seed: int = 0) -> Path:
    """An NSynth-format train split of harmonic notes (4 s, random pitches and partials)."""
    from nsynth_live import gm
    from nsynth_live.atomic import atomic_write_many
    from nsynth_live.nsynth import NOTE_SAMPLES, NoteInfo, note_str_of, write_examples
    from nsynth_live.soundfont import to_pcm16, wav_bytes

    split = root / "nsynth-train"
    (split / "audio").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    t = np.arange(NOTE_SAMPLES) / SAMPLE_RATE
    infos, files = [], []
    family = gm.FAMILIES.index("synth_lead")
    source = gm.SOURCES.index("synthetic")
    for i in range(notes):
        pitch = int(rng.integers(36, 85))
        f0 = 440.0 * 2.0 ** ((pitch - 69) / 12.0)
        amps = rng.uniform(0.1, 1.0, 6) / np.arange(1, 7)
        x = sum(a * np.sin(2 * np.pi * f0 * (h + 1) * t) for h, a in enumerate(amps))
        x = 0.3 * x * np.exp(-t * rng.uniform(0.2, 3.0)) / amps.sum()
        instrument = f"synthetic_check_{i:03d}"
        info = NoteInfo(note_str=note_str_of(instrument, pitch, 100), pitch=pitch, velocity=100, instrument=i,
                        instrument_str=instrument, instrument_family=family, instrument_family_str="synth_lead",
                        instrument_source=source, instrument_source_str="synthetic",
                        qualities=(0,) * len(gm.QUALITIES), qualities_str=())
        infos.append(info)
        files.append((info.wav_path(split), wav_bytes(to_pcm16(x.astype(np.float32))[0])))
    atomic_write_many(files)
    write_examples(split, infos)
    return root


def training_row(config: str, device: str, precision: str, steps: int, batch: int, crop: int, data: Path,
                 out: Path, threads: int | None) -> dict:
    """Train ``steps`` steps with the project's trainer; steps/s from its metrics after the first
    logged window (which holds the warm-up: allocator, cuDNN autotuning)."""
    import torch

    from nsynth_live.train import Trainer, TrainSettings

    from nsynth_live.configs import get_config

    log_every = max(1, min(10, steps // 4))
    # A residual-form config trains only on the locked phase (as its long run does).
    lock = {"excitation_lock": True} if get_config(config).source_residual else {}
    settings = TrainSettings(config=config, data=str(data), out=str(out), steps=steps, batch_size=batch, crop=crop,
                             device=device, precision=precision, checkpoint_every=steps, valid_every=steps + 1,
                             log_every=log_every, progress=False, threads=threads, **lock)
    shutil.rmtree(out, ignore_errors=True)
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    trainer = Trainer(settings)
    start = time.perf_counter()
    try:
        trainer.fit()
    finally:
        trainer.close(finished=True)
    wall = time.perf_counter() - start
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines() if line.strip()]
    windows = [r["steps_per_s"] for r in records if "steps_per_s" in r]
    timed = windows[1:] or windows
    row = {"config": config, "device": device, "precision": trainer.precision, "steps": steps, "batch_size": batch,
           "crop": crop, "steps_per_s": float(np.median(timed)) if timed else steps / wall, "wall_s": wall,
           "gpu_peak_allocated_mb": torch.cuda.max_memory_allocated() / 2**20 if device == "cuda" else None}
    print(f"  training {config} {device} {row['precision']}: {row['steps_per_s']:.2f} steps/s", file=sys.stderr, flush=True)
    return row


# ----------------------------------------------------------------------------- the check


def runtime_info() -> dict[str, Any]:
    info: dict[str, Any] = {}
    try:  # first: its CUDA libraries, once loaded, serve ONNX Runtime's CUDA provider too
        import torch

        info.update(torch=torch.__version__, torch_cuda=torch.cuda.is_available(),
                    torch_cuda_version=torch.version.cuda,
                    gpu=torch.cuda.get_device_name(0) if torch.cuda.is_available() else None)
    except ImportError:
        info.update(torch=None, torch_cuda=False, gpu=None)
    import onnxruntime as ort

    from nsynth_live.host.engines.onnx_sessions import CUDA, cuda_status

    usable, why = cuda_status()
    info["preload_dlls"] = None
    if not usable and CUDA in ort.get_available_providers() and hasattr(ort, "preload_dlls"):
        try:
            ort.preload_dlls()
            info["preload_dlls"] = "called"
        except Exception as err:  # noqa: BLE001 - reported; the probe below says what it changed
            info["preload_dlls"] = f"failed: {type(err).__name__}: {err}"
        first = why
        usable, why = cuda_status(refresh=True)
        if not usable:
            why = f"{first} (also after onnxruntime.preload_dlls())"
    info.update(onnxruntime=ort.__version__, providers=ort.get_available_providers(), device=ort.get_device(),
                cuda_usable=usable, cuda_status=why)
    return info


def run(args: argparse.Namespace) -> dict[str, Any]:
    from nsynth_live.exporters.export import export_random
    from nsynth_live.host.defaults import model_or_default
    from nsynth_live.configs import flops_per_sample
    from nsynth_live.host.engines.factory import FUSED_MAX_FLOPS
    from nsynth_live.host.model_files import load_export

    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    report: dict[str, Any] = {"benchmark": "gpu_check", "quick": args.quick, "skipped": [], "errors": [],
                              "settings": {k: v for k, v in vars(args).items() if k != "out"} | {"out": str(out)}}

    def save() -> None:
        """The report so far: a run cut short (the GPU lease, a crash) still leaves its figures."""
        report["wall_s"] = time.perf_counter() - started
        write_report(out / "gpu_check.json", report)
    rt = runtime_info()
    report["runtime"] = rt
    report["machine"] = machine_info()
    save()
    print(f"onnxruntime {rt['onnxruntime']}, providers {', '.join(rt['providers'])}; CUDA: "
          f"{'usable' if rt['cuda_usable'] else 'not usable'} ({rt['cuda_status']}); torch {rt['torch']}, "
          f"torch CUDA {rt['torch_cuda']}" + (f" ({rt['gpu']})" if rt.get("gpu") else ""), flush=True)
    ort_cuda, torch_cuda = rt["cuda_usable"], rt["torch_cuda"]

    def skip(part: str, why: str) -> None:
        report["skipped"].append({"part": part, "why": why})
        print(f"  SKIPPED {part}: {why}", file=sys.stderr, flush=True)

    def attempt(part: str, fn: Any) -> Any:
        """Run one measurement unless the time budget is spent; a failure is recorded (and the
        rest still runs); the report is saved after each."""
        spent = time.perf_counter() - started
        if spent > args.budget_s:
            skip(part, f"the time budget (--budget-s {args.budget_s:g}) was spent ({spent:.0f} s)")
            return None
        try:
            return fn()
        except Exception as err:  # noqa: BLE001 - one broken part must not hide the others' figures
            report["errors"].append({"part": part, "error": f"{type(err).__name__}: {err}",
                                     "traceback": traceback.format_exc(limit=8)})
            print(f"  FAILED {part}: {type(err).__name__}: {err}", file=sys.stderr, flush=True)
            return None
        finally:
            save()

    no_ort_cuda = f"ONNX Runtime cannot use CUDA here: {rt['cuda_status']}"
    exports = {"paper": export_random(args.paper_config, out / "exports" / "paper", seed=0),
               "shipped": Path(model_or_default(args.shipped))}
    report["models"] = {"paper": {"config": args.paper_config, "weights": "random (torch.manual_seed(0))",
                                  "export": str(exports["paper"])},
                        "shipped": {"config": load_export(exports["shipped"]).config.name, "weights": "trained (shipped)",
                                    "export": str(exports["shipped"])}}

    # (b) engines
    rows: list[dict] = []
    report["engines"] = rows  # filled in place: each save shows the rows so far
    for name, export in exports.items():
        if ort_cuda:
            rows += attempt(f"engines {name} cuda", lambda: engine_rows(name, export, "cuda", args.batches,
                                                                         args.seconds, args.threads)) or []
        else:
            skip(f"engines {name} cuda", no_ort_cuda)
        rows += attempt(f"engines {name} cpu", lambda: engine_rows(name, export, "cpu", args.cpu_batches,
                                                                    args.seconds, args.threads)) or []

    # (c) parity
    parity: list[dict] = []
    report["parity"] = parity
    for name, export in exports.items():
        if ort_cuda:
            row = attempt(f"parity {name} cuda", lambda: parity_row(
                name, export, ("ort", "cpu"), ("ort", "cuda"), args.parity_voices, args.parity_samples, args.threads))
            parity += [row] if row else []
        else:
            skip(f"parity {name} cuda vs cpu", no_ort_cuda)
        if flops_per_sample(load_export(export).config) <= FUSED_MAX_FLOPS:
            row = attempt(f"parity {name} fused", lambda: parity_row(
                name, export, ("ort", "cpu"), ("fused", "cpu"), args.parity_voices, args.parity_samples, args.threads))
            parity += [row] if row else []

    # (d) render-bank
    banks: list[dict] = []
    report["render_bank"] = banks
    if ort_cuda:
        row = attempt("render-bank paper cuda", lambda: render_bank_row(
            "paper", exports["paper"], "cuda", args.bank_notes, args.bank_seconds, out / "render_bank_cuda", args.threads))
        banks += [row] if row else []
    else:
        skip("render-bank paper cuda", no_ort_cuda)
    row = attempt("render-bank paper cpu", lambda: render_bank_row(
        "paper", exports["paper"], "cpu", args.cpu_bank_notes, args.cpu_bank_seconds, out / "render_bank_cpu", args.threads))
    banks += [row] if row else []

    # (e) training
    training: list[dict] = []
    report["training"] = training
    data = synthetic_dataset(out / "train_data")
    configs = (report["models"]["shipped"]["config"], args.paper_config)
    for config in configs:  # CUDA first: the figures the GPU time is for
        if torch_cuda:
            row = attempt(f"training {config} cuda", lambda: training_row(
                config, "cuda", "bf16", args.train_steps, args.train_batch, args.train_crop, data,
                out / "train" / f"{config}-cuda", args.threads))
            training += [row] if row else []
        else:
            skip(f"training {config} cuda", "torch sees no CUDA device (torch.cuda.is_available() is False)")
    for config in configs:
        row = attempt(f"training {config} cpu", lambda: training_row(
            config, "cpu", "auto", args.cpu_train_steps, args.train_batch, args.train_crop, data,
            out / "train" / f"{config}-cpu", args.threads))
        training += [row] if row else []
    shutil.rmtree(out / "train", ignore_errors=True)  # checkpoints: only their speed mattered
    save()
    return report


def print_report(report: dict[str, Any]) -> None:
    print("\nengines (ort, IO binding)")
    def mb(x: float | None) -> str:
        return "-" if x is None else f"{x:,.0f}"

    print_table(["config", "device", "batch", "samples/s", "RTF aggregate", "RTF/voice", "GPU MB (process)",
                 "GPU MB (device)"],
                [[r["config"], r["device"], r["batch"], f"{r['samples_per_s']:,.0f}", f"{r['rtf_aggregate']:,.2f}x",
                  f"{r['rtf_per_voice']:.3g}x", mb(r["gpu_memory_mb"]), mb(r["gpu_device_used_mb"])]
                 for r in report["engines"]])
    print("\nparity (same seed, first difference per voice)")
    print_table(["config", "other", "vs", "voices x samples", "identical", "near-ties", "real", "equal"],
                [[r["config"], r["other"], r["reference"], f"{r['voices']} x {r['samples']}", r["identical_voices"],
                  r["near_ties"], r["real_differences"], "yes" if r["equal"] else "NO"] for r in report["parity"]])
    print("\nrender-bank")
    print_table(["config", "device", "notes", "note s", "wall s", "samples/s", "4 s notes/hour"],
                [[r["config"], r["device"], r["notes"], r["note_seconds"], f"{r['wall_s']:.1f}", f"{r['samples_per_s']:,.0f}",
                  f"{r['notes_4s_per_hour']:,.0f}"] for r in report["render_bank"]])
    print("\ntraining (the project's trainer)")
    print_table(["config", "device", "precision", "steps", "steps/s"],
                [[r["config"], r["device"], r["precision"], r["steps"], f"{r['steps_per_s']:.2f}"] for r in report["training"]])
    for s in report["skipped"]:
        print(f"SKIPPED {s['part']}: {s['why']}")
    for e in report["errors"]:
        print(f"FAILED {e['part']}: {e['error']}")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, required=True, help="folder for everything (gpu_check.json, exports, renders)")
    p.add_argument("--quick", action="store_true", help="small sizes everywhere (a CPU test run); flags below override")
    p.add_argument("--batches", type=parse_int_list, help=f"CUDA batch sizes (default {FULL['batches']})")
    p.add_argument("--cpu-batches", type=parse_int_list, help=f"CPU batch sizes (default {FULL['cpu_batches']})")
    p.add_argument("--seconds", type=float, help=f"timed seconds per engine row (default {FULL['seconds']})")
    p.add_argument("--parity-samples", type=int, help=f"samples per voice (default {FULL['parity_samples']})")
    p.add_argument("--parity-voices", type=int, help=f"default {FULL['parity_voices']}")
    p.add_argument("--bank-notes", type=int, help=f"notes of the CUDA render-bank (default {FULL['bank_notes']})")
    p.add_argument("--bank-seconds", type=float, help=f"their length (default {FULL['bank_seconds']})")
    p.add_argument("--cpu-bank-notes", type=int, help=f"notes of the CPU render-bank (default {FULL['cpu_bank_notes']})")
    p.add_argument("--cpu-bank-seconds", type=float, help=f"their length (default {FULL['cpu_bank_seconds']})")
    p.add_argument("--train-steps", type=int, help=f"CUDA training steps (default {FULL['train_steps']})")
    p.add_argument("--cpu-train-steps", type=int, help=f"CPU training steps (default {FULL['cpu_train_steps']})")
    p.add_argument("--train-batch", type=int, help=f"default {FULL['train_batch']}")
    p.add_argument("--train-crop", type=int, help=f"default {FULL['train_crop']}")
    p.add_argument("--budget-s", type=float, default=420.0,
                   help="start no part after this many seconds (default 420: the run stays under 8 minutes)")
    p.add_argument("--threads", type=int, default=None, help="CPU threads (default: the libraries' own choice)")
    p.add_argument("--paper-config", default="paper", help="config of the large model (default paper; tests: tiny)")
    p.add_argument("--shipped", default=None, metavar="EXPORT", help="the trained model (default: the shipped one)")
    args = p.parse_args(argv)
    sizes = QUICK if args.quick else FULL
    for key, value in sizes.items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    for key in ("parity_samples", "parity_voices", "bank_notes", "cpu_bank_notes", "train_steps", "cpu_train_steps",
                "train_batch", "train_crop"):
        if getattr(args, key) < 1:
            p.error(f"--{key.replace('_', '-')} must be at least 1, got {getattr(args, key)}")
    for key in ("batches", "cpu_batches"):
        if not getattr(args, key) or min(getattr(args, key)) < 1:
            p.error(f"--{key.replace('_', '-')}: batch sizes must be at least 1")
    for key in ("seconds", "bank_seconds", "cpu_bank_seconds"):
        if not getattr(args, key) > 0:
            p.error(f"--{key.replace('_', '-')} must be > 0, got {getattr(args, key)}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    start = time.perf_counter()
    try:
        report = run(args)
    except UserError as err:
        print(f"gpu_check: error: {err}", file=sys.stderr)
        return 2
    report["wall_s"] = time.perf_counter() - start
    path = args.out / "gpu_check.json"
    write_report(path, report)
    print_report(report)
    print(f"\n{report['wall_s']:.0f} s; wrote {path}")
    return 1 if report["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
