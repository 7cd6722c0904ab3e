"""The GPU check (bench/gpu_check.py) on a machine without CUDA, its near-tie counting, and what
asking for CUDA does where ONNX Runtime cannot use it.

No GPU runs here: the check's CUDA parts must be skipped, each saying why, while its CPU parts
run end to end (quick sizes). The parity counting is checked against the engine tests' own
near-tie assertion (the reference) on real ort and fused streams of the same seed, and on
streams with a real difference put in.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from nsynth_live import SAMPLE_RATE, sampling
from nsynth_live.errors import UserError
from nsynth_live.exporters.export import export_random
from nsynth_live.host.engines import open_engine, render_frames
from nsynth_live.host.engines.onnx_sessions import CPU, cuda_status

sys.path.insert(0, str(Path(__file__).parent))
from test_engine_ort import first_difference_is_a_near_tie  # noqa: E402 - the reference

ROOT = Path(__file__).resolve().parents[1]
no_cuda = pytest.mark.skipif(cuda_status()[0], reason="CUDA is usable here: the CPU-only behaviour cannot show")


@pytest.fixture(scope="module")
def tiny_export(tmp_path_factory):
    return export_random("tiny", tmp_path_factory.mktemp("gpu-check") / "tiny", seed=0)


@no_cuda
def test_quick_check_runs_on_the_cpu_and_names_every_skipped_cuda_part(tmp_path):
    out = tmp_path / "check"
    proc = subprocess.run([sys.executable, str(ROOT / "bench" / "gpu_check.py"), "--out", str(out), "--quick",
                           "--paper-config", "tiny", "--cpu-train-steps", "2", "--train-crop", "512"],
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    report = json.loads((out / "gpu_check.json").read_text())
    import onnxruntime as ort

    rt = report["runtime"]
    assert rt["onnxruntime"] == ort.__version__ and rt["providers"] == ort.get_available_providers()
    assert rt["cuda_usable"] is False and rt["cuda_status"].startswith(cuda_status()[1])
    assert report["errors"] == []
    # Every CUDA part skipped, with the reason; nothing else skipped.
    skipped = {s["part"]: s["why"] for s in report["skipped"]}
    assert set(skipped) == {"engines paper cuda", "engines shipped cuda", "parity paper cuda vs cpu",
                            "parity shipped cuda vs cpu", "render-bank paper cuda",
                            "training live-hn-res cuda", "training tiny cuda"}
    for part, why in skipped.items():
        assert (cuda_status()[1] in why) if not part.startswith("training") else "no CUDA device" in why
        assert f"SKIPPED {part}: {why}" in proc.stdout
    assert report["models"]["paper"]["config"] == "tiny" and report["models"]["shipped"]["config"] == "live-hn-res"
    assert "random" in report["models"]["paper"]["weights"]
    # The CPU figures, at the quick sizes.
    engines = report["engines"]
    assert {(r["config"], r["batch"]) for r in engines} == {(c, b) for c in ("paper", "shipped") for b in (1, 2)}
    for r in engines:
        assert r["device"] == "cpu" and r["provider"] == CPU and r["gpu_memory_mb"] is r["gpu_device_used_mb"] is None
        assert r["samples_per_s"] > 0 and r["rtf_aggregate"] == pytest.approx(r["samples_per_s"] / SAMPLE_RATE)
        assert r["rtf_per_voice"] == pytest.approx(r["rtf_aggregate"] / r["batch"])
    # Both models are small enough for the fused engine: their CPU-vs-CPU parity ran.
    assert [(p["config"], p["other"], p["reference"]) for p in report["parity"]] == [
        ("paper", "fused/cpu", "ort/cpu"), ("shipped", "fused/cpu", "ort/cpu")]
    for p in report["parity"]:
        assert p["voices"] == 2 and p["samples"] == 300 and p["real_differences"] == 0 and p["equal"]
    recommended = json.loads((ROOT / "presets" / "default" / "model" / "model.json").read_text())["decoding"]["temperature"]
    assert report["parity"][1]["temperature"] == pytest.approx(recommended)  # the shipped model's, not 1
    [bank] = report["render_bank"]
    assert bank["device"] == "cpu" and bank["notes"] == 2 and bank["notes_4s_per_hour"] > 0
    assert {(t["config"], t["device"], t["steps"]) for t in report["training"]} == {
        ("live-hn-res", "cpu", 2), ("tiny", "cpu", 2)}
    assert all(t["steps_per_s"] > 0 for t in report["training"])
    assert not (out / "train").exists()  # the checkpoints went; the report stays
    for header in ("engines (ort, IO binding)", "parity (same seed", "render-bank", "training (the project's trainer)"):
        assert header in proc.stdout


def _streams(export, kinds, n=600, voices=3, seed=5):
    out = {}
    for kind in kinds:
        with open_engine(export, kind, max_voices=voices, threads=1, device="cpu") as engine:
            rng = np.random.default_rng(0)
            emb = rng.standard_normal((voices, 16, -(-n // engine.cfg.hop))).astype(np.float32)
            slots = [engine.add_voice() for _ in range(voices)]
            logits = np.empty((voices, n, 256), np.float32)
            pitch = np.array([60, 64, 67][:voices])
            out[kind] = render_frames(engine, slots, engine.condition(emb, pitch), n,
                                      sampling.voice_noise(seed, voices, n), logits_out=logits), logits
    return out, sampling.voice_noise(seed, voices, n)


def test_compare_streams_agrees_with_the_reference_on_ort_and_fused(tiny_export):
    pytest.importorskip("nsynth_live.host.engines.fused_engine")
    streams, noise = _streams(tiny_export, ("ort", "fused"))
    (ort_classes, ort_logits), (fused_classes, _) = streams["ort"], streams["fused"]
    result = sampling.compare_streams(fused_classes, ort_classes, ort_logits, noise)
    first_difference_is_a_near_tie(fused_classes, ort_classes, ort_logits, noise, "reference")  # passes
    assert result["equal"] and result["real_differences"] == 0
    assert result["identical_voices"] == sum((fused_classes[v] == ort_classes[v]).all() for v in range(3))
    assert result["voices"] == 3 and result["samples"] == 600

    # A real difference put into voice 1: at a sample whose draw was far from any boundary.
    margins = [sampling.tie_margin(ort_logits[1, t], noise[1, t], 1.0, int(ort_classes[1, t]),
                                   int(ort_classes[1, t]) + 1 if ort_classes[1, t] < 255 else 254) for t in range(50, 400)]
    t = 50 + int(np.argmax(margins))
    assert max(margins) > 10 * 1e-4  # ten times the near-tie tolerance
    broken = ort_classes.copy()
    broken[1, t] = (broken[1, t] + 1) % 256
    broken[1, t + 1:] = (broken[1, t + 1:] + 7) % 256  # the diverged rest does not count again
    result = sampling.compare_streams(broken, ort_classes, ort_logits, noise)
    assert result["real_differences"] == 1 and not result["equal"] and result["identical_voices"] == 2
    [first] = result["first_differences"]
    assert (first["voice"], first["sample"], first["near_tie"]) == (1, t, False)
    with pytest.raises(AssertionError, match="margin"):
        first_difference_is_a_near_tie(broken, ort_classes, ort_logits, noise, "reference")


def test_compare_streams_counts_a_near_tie_as_equal():
    logits = np.zeros((2, 3, 256), np.float32)  # uniform: class boundaries at j / 256
    noise = np.full((2, 3), 0.5 + 0.5 / 256)  # inside class 128, far from a boundary
    noise[0, 1] = 129 / 256 - 1e-7  # a hair below the 128|129 boundary
    expected = np.full((2, 3), 128)
    got = expected.copy()
    got[0, 1] = 129  # one engine's rounding tipped it
    result = sampling.compare_streams(got, expected, logits, noise)
    assert (result["near_ties"], result["real_differences"], result["identical_voices"], result["equal"]) == (1, 0, 1, True)
    first_difference_is_a_near_tie(got, expected, logits, noise, "reference")
    got[1, 2] = 130  # far from any boundary: real
    result = sampling.compare_streams(got, expected, logits, noise)
    assert (result["near_ties"], result["real_differences"], result["equal"]) == (1, 1, False)
    with pytest.raises(ValueError, match="shapes"):
        sampling.compare_streams(got[:, :2], expected, logits, noise)


@no_cuda
def test_asking_for_cuda_without_it_is_one_clear_error_or_an_explicit_fallback(tiny_export):
    why = cuda_status()[1]
    for kind in ("ort", "auto"):
        with pytest.raises(UserError, match="device cuda: no usable CUDA for ONNX Runtime here") as err:
            open_engine(tiny_export, kind, device="cuda")
        assert why in str(err.value) and "\n" not in str(err.value)
    with pytest.warns(RuntimeWarning, match="running on the CPU"):
        engine = open_engine(tiny_export, "ort", device="cuda", cuda_fallback=True)
    with engine:
        assert engine.execution_provider == CPU and engine.device == "cpu"
        slot = engine.add_voice()
        cond = engine.condition(np.zeros((1, 16, 1), np.float32), [60])  # the front end on the CPU, no second warning
        out = render_frames(engine, [slot], cond, 64, sampling.voice_noise(0, 1, 64))
        assert out.shape == (1, 64)


def test_a_spent_time_budget_skips_the_remaining_parts_and_still_writes_the_report(tmp_path):
    out = tmp_path / "check"
    proc = subprocess.run([sys.executable, str(ROOT / "bench" / "gpu_check.py"), "--out", str(out), "--quick",
                           "--paper-config", "tiny", "--budget-s", "0.001"], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads((out / "gpu_check.json").read_text())
    budget = [s for s in report["skipped"] if "time budget (--budget-s 0.001) was spent" in s["why"]]
    assert {s["part"] for s in budget} >= {"engines paper cpu", "engines shipped cpu", "render-bank paper cpu",
                                           "training live-hn-res cpu", "training tiny cpu"}
    assert report["engines"] == [] and report["training"] == [] and report["runtime"]["onnxruntime"]
