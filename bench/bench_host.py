"""The live host on a JACK device: OSC-to-sound latency, and how many voices play without xruns.

    python bench/bench_host.py [--trials 20] [--hold 30] [--min-voices 1] [--max-voices 16]
                               [--models shipped,live] [--json FILE]

Needs a running JACK server (scripts/jack.sh start: the dummy driver at 16 kHz, 256-frame
periods). Runs `nsynth-live play` as its own process with the fused engine and records its output
port with a separate JACK client, as the end-to-end tests do.

- latency: a `/nsynth/note` sent over UDP to the first non-zero sample of the host's output as
  the recording client receives it (perf_counter on both ends, one machine), with the hand-set
  sine model (tests/sine_model.py) so the first sample of a note is known to be non-zero; notes
  go out at random phases of the device period (a fixed gap between trials would always land at
  the same phase and measure one point of the latency's range);
- voices: per model of ``--models`` (``shipped``: the shipped default model, with its excitation;
  a config name: a random-weight export of it), V notes held for ``--hold`` seconds; the largest V
  with no xrun and no stolen voice.

Every figure is printed and written beside the CPU's name and SIMD level and the same run's ONNX
Runtime fp32 MatMul peak on the engine's 2 threads (the voices' GFLOP/s is its share of it).
"""

from __future__ import annotations

import argparse
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from nsynth_live import SAMPLE_RATE  # noqa: E402
from nsynth_live.benchmarks.machine import machine_info  # noqa: E402
from nsynth_live.benchmarks.peak import matmul_peak_gflops  # noqa: E402
from nsynth_live.benchmarks.report import write_report  # noqa: E402
from nsynth_live.configs import flops_per_sample  # noqa: E402
from nsynth_live.host.bank import Bank, Preset, save_bank  # noqa: E402
from nsynth_live.host.defaults import bank_or_default, model_or_default  # noqa: E402
from nsynth_live.host.model_files import load_export  # noqa: E402
from nsynth_live.host.osc_server import build_message  # noqa: E402
from nsynth_live.host.trajectory import default_regions  # noqa: E402

NL = str(Path(sys.executable).parent / "nsynth-live")


class Recorder:
    """A JACK client recording a port, with the perf_counter time of each period."""

    def __init__(self, source: str):
        import jack

        self.client = jack.Client("nsynth-bench-capture", no_start_server=True)
        self.rate = self.client.samplerate
        self.port = self.client.inports.register("in")
        self.first: float | None = None
        self.armed = False
        self.lock = threading.Lock()
        self.client.set_process_callback(self._process)
        self.client.activate()
        self.client.connect(source, self.port)

    def _process(self, frames: int) -> None:
        if self.armed and self.first is None:
            x = self.port.get_array()
            nz = np.flatnonzero(np.abs(x) > 1e-6)
            if nz.size:
                # The callback runs at the start of the period whose buffer holds the sample.
                self.first = time.perf_counter() + nz[0] / self.rate

    def close(self) -> None:
        self.client.deactivate()
        self.client.close()


def bank(path: Path) -> Path:
    rng = np.random.default_rng(0)
    presets = [Preset(f"p{i}", (e := rng.standard_normal((125, 16)).astype(np.float32)), 60,
                      regions=default_regions(e, 512)) for i in range(4)]
    save_bank(Bank(path, "bench", 512, 16000, 16, 125, presets, corners=[p.name for p in presets]))
    return path


def start_host(model: Path, bank_dir: Path, port: int, voices: int, block: int) -> subprocess.Popen:
    proc = subprocess.Popen([NL, "play", "--model", str(model), "--bank", str(bank_dir), "--engine", "fused",
                             "--no-midi", "--osc-port", str(port), "--voices", str(voices), "--block", str(block),
                             "--quiet"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = proc.stdout.readline()
    if "playing" not in line:
        raise SystemExit(f"host did not start: {proc.stderr.read()}")
    return proc


def status(sock: socket.socket, port: int) -> list:
    from pythonosc.osc_message import OscMessage

    sock.sendto(build_message("/nsynth/status"), ("127.0.0.1", port))
    return list(OscMessage(sock.recvfrom(65536)[0]).params)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=20)
    ap.add_argument("--hold", type=float, default=30.0)
    ap.add_argument("--max-voices", type=int, default=16)
    ap.add_argument("--min-voices", type=int, default=1, help="first voice count to try (assumes fewer pass)")
    ap.add_argument("--block", type=int, default=256)
    ap.add_argument("--models", default="shipped,live",
                    help="shipped (the shipped default model) and/or config names (random-weight exports)")
    ap.add_argument("--peak-size", type=int, default=4096, help="side of the square MatMul of the peak")
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)
    from nsynth_live.exporters.export import export_model, export_random
    from sine_model import sine_model

    tmp = Path(tempfile.mkdtemp(prefix="nsynth-bench-host-"))
    sine = export_model(sine_model(), tmp / "sine")
    models = {m: model_or_default(None) if m == "shipped" else export_random(m, tmp / m, seed=0)
              for m in args.models.split(",")}
    b = bank(tmp / "bank")
    # The shipped model plays its own bank (its presets' measured harmonics and noise are part of
    # what the host renders per block); random-weight exports play random embeddings.
    banks = {m: bank_or_default(None) if m == "shipped" else b for m in models}
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.settimeout(3)
    machine = machine_info()
    peak = matmul_peak_gflops(2, args.peak_size)
    where = f"{machine['cpu']} ({machine['simd']}), fp32 MatMul peak {peak:,.1f} GFLOP/s (ONNX Runtime, 2 threads)"
    print(where, flush=True)
    report: dict = {"block": args.block, "machine": machine, "matmul_peak_gflops": peak}

    # Latency.
    port = 9311
    host = start_host(sine, b, port, 8, args.block)
    rec = Recorder("PortAudio:out_0")
    lat = []
    rng = np.random.default_rng(0)
    try:
        time.sleep(1.0)
        for i in range(args.trials):
            rec.first, rec.armed = None, True
            t0 = time.perf_counter()
            sock.sendto(build_message("/nsynth/note", 60, 100), ("127.0.0.1", port))
            deadline = time.time() + 2
            while rec.first is None and time.time() < deadline:
                time.sleep(0.001)
            rec.armed = False
            if rec.first is not None:
                lat.append((rec.first - t0) * 1000)
            sock.sendto(build_message("/nsynth/panic"), ("127.0.0.1", port))
            time.sleep(0.3 + float(rng.uniform(0, args.block / 16000)))  # notes at random phases of the period
    finally:
        rec.close()
        host.terminate()
        host.wait()
    if not lat:
        raise SystemExit(f"no note reached the output in {args.trials} trials ({where})")
    lat_a = np.array(lat)
    report["latency_ms"] = {"median": float(np.median(lat_a)), "p90": float(np.percentile(lat_a, 90)),
                            "max": float(lat_a.max()), "trials": len(lat), "goal": args.block / 16 + 10}
    print(f"OSC note -> first sample: median {np.median(lat_a):.1f} ms, p90 {np.percentile(lat_a, 90):.1f} ms, "
          f"max {lat_a.max():.1f} ms over {len(lat)} notes (goal <= one block {args.block / 16:.0f} ms + 10 ms); {where}")

    # Voices held without xruns, per model.
    report["voices"] = {}
    for label, model in models.items():
        cfg = load_export(model).config
        best = args.min_voices - 1
        rows = []
        for v in range(args.min_voices, args.max_voices + 1):
            port += 1
            host = start_host(model, banks[label], port, v, args.block)
            try:
                time.sleep(1.0)
                for k in range(v):
                    sock.sendto(build_message("/nsynth/note", 48 + 3 * k, 100), ("127.0.0.1", port))
                time.sleep(1.0)
                _, x0, _, _, _ = status(sock, port)
                time.sleep(args.hold)
                voices, x1, engine, rtf, _ = status(sock, port)
            finally:
                host.terminate()
                host.wait()
            ok = voices == v and x1 == x0
            gflops = v * SAMPLE_RATE * flops_per_sample(cfg) / 1e9  # what v voices in real time compute
            rows.append({"voices": v, "sounding": voices, "xruns": x1 - x0, "rtf": rtf, "gflops": gflops,
                         "fraction_of_peak": gflops / peak, "matmul_peak_gflops": peak, "cpu": machine["cpu"],
                         "simd": machine["simd"]})
            print(f"  {label} ({cfg.name}): {v:2d} voices held {args.hold:.0f} s: {voices} sounding, {x1 - x0} xruns, "
                  f"rtf {rtf:.2f}, {gflops:.1f} GFLOP/s = {100 * gflops / peak:.0f}% of the {peak:,.0f} GFLOP/s peak, "
                  f"{machine['simd']}", flush=True)
            if not ok:
                break
            best = v
        report["voices"][label] = {"config": cfg.name, "excitation": bool(cfg.excitation_channels),
                                   "max_without_xrun": best, "hold_s": args.hold, "rows": rows, "goal": 8}
        print(f"most {label} ({cfg.name}) voices held {args.hold:.0f} s without an xrun: {best} (goal >= 8); {where}")
    if args.json:
        write_report(Path(args.json), report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
