"""The ``ort`` engine (IO binding on the CPU provider) against the PyTorch reference."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from nsynth_live.exporters.export import export_model
from nsynth_live.host.engines import open_engine, render_frames
from nsynth_live.host.engines.ring_state import RingState
from nsynth_live.host.engines.ort_engine import OrtEngine
from nsynth_live.host.model_files import load_export
from nsynth_live import mulaw, sampling
from nsynth_live.autoencoder import WaveNetAutoencoder
from nsynth_live.configs import get_config
from nsynth_live.decoder import decoder_step
from nsynth_live.errors import UserError
from nsynth_live.generate import RingCache, generate_classes

SEED = 3


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module", params=["tiny", "live"])
def case(request, tmp_path_factory):
    """(model, export dir, embedding [2, 16, 4], pitch [2])."""
    torch.manual_seed(0)
    model = WaveNetAutoencoder(get_config(request.param)).eval()
    out = export_model(model, tmp_path_factory.mktemp(request.param) / "export")
    rng = np.random.default_rng(0)
    embedding = rng.standard_normal((2, 16, 4)).astype(np.float32)
    return model, out, embedding, np.array([60, 43])


def first_difference_is_a_near_tie(got, expected, logits, noise, where: str) -> None:
    """Where the classes differ, the first difference must be a float near-tie: the sampling
    threshold within 1e-4 (relative to the total mass) of the cdf boundary between the classes,
    computed from the engine's logits at that step (later samples then follow other histories)."""
    diff = np.argwhere(got != expected)
    if not len(diff):
        return
    t = diff[:, 1].min()
    b = diff[diff[:, 1] == t][0, 0]
    z = logits[b, t].astype(np.float32)
    z = z - z.max()
    cdf = np.cumsum(np.exp(z.astype(np.float64)).astype(np.float32), dtype=np.float64).astype(np.float32)
    threshold = np.float32(noise[b, t]) * cdf[-1]
    lo = min(got[b, t], expected[b, t])
    margin = abs(float(cdf[lo]) - float(threshold)) / float(cdf[-1])
    assert margin < 1e-4, f"{where}: voice {b} sample {t}: {got[b, t]} vs {expected[b, t]}, margin {margin:.2e}"


@pytest.mark.parametrize("separate_ring", [False, True], ids=["ring-is-host-memory", "ring-as-on-a-gpu"])
def test_generated_classes_equal_pytorch(case, separate_ring):
    model, export_dir, embedding, pitch = case
    n = 2000 if not separate_ring else 700
    engine = OrtEngine(load_export(export_dir), max_voices=4, threads=1, device="cpu", separate_ring=separate_ring)
    engine.add_voice()
    engine.remove_voice(0)  # a used slot comes back zeroed
    assert isinstance(engine, OrtEngine) and engine.execution_provider == "CPUExecutionProvider"
    slots = [engine.add_voice(), engine.add_voice()]
    cond = engine.condition(embedding, pitch)
    logits = np.empty((2, n, 256), np.float32)
    noise = sampling.voice_noise(SEED, 2, n)
    # Blocks of 300 straddle the frame boundaries at 512, 1024, ... (the switch path).
    got = render_frames(engine, slots, cond, n, sampling.NoiseStream(SEED, range(2)), block=300, logits_out=logits)
    expected = generate_classes(model, torch.from_numpy(embedding), torch.from_numpy(pitch), n, seed=SEED).numpy()
    first_difference_is_a_near_tie(got, expected, logits, noise, model.cfg.name)
    assert engine._bound == 2  # the IO binding path ran, bound for this batch
    if (got == expected).all():
        # Same history: the engine's rings equal the PyTorch RingCache after replaying the classes.
        cache = RingCache(model.cfg, 2)
        cond_t = model.decoder.condition(torch.from_numpy(embedding), torch.from_numpy(pitch))
        w = model.decoder.step_weights()
        with torch.no_grad():
            for t in range(n):
                _, columns = decoder_step(w, cache.x_hist, cache.taps(), cond_t[:, t // model.cfg.hop])
                cache.push(mulaw.to_input(torch.from_numpy(got[:, t])), columns)
        for b, slot in enumerate(slots):
            hist, x_hist, pos = engine.state(slot)
            assert pos == n
            np.testing.assert_allclose(hist, cache.hist[b].numpy(), atol=1e-5)
            np.testing.assert_array_equal(x_hist, cache.x_hist[b].numpy())


def test_teacher_forced_logits_equal_the_parallel_forward(case):
    model, export_dir, embedding, pitch = case
    n = 1300
    engine = open_engine(export_dir, "ort", max_voices=2, threads=1)
    slots = [engine.add_voice(), engine.add_voice()]
    classes = np.random.default_rng(5).integers(0, 256, (2, n))
    cond = engine.condition(embedding, pitch)
    logits = np.zeros((2, n, 256), np.float32)
    hop = model.cfg.hop
    for t0 in range(0, n, 200):  # a block crossing a frame boundary switches rows mid-block
        m = min(200, n - t0)
        f = t0 // hop
        lo = np.empty((2, m, 256), np.float32)
        engine.render(slots, cond[:, f : f + 2], [hop - t0 % hop] * 2, np.full((2, m), 0.5), logits_out=lo,
                      feed=classes[:, t0 : t0 + m])
        logits[:, t0 : t0 + m] = lo
    with torch.no_grad():
        x = mulaw.to_input(torch.from_numpy(classes))
        expected = model.decoder(x, torch.from_numpy(embedding), torch.from_numpy(pitch)).permute(0, 2, 1).numpy()
    scale = np.abs(expected).max()
    np.testing.assert_allclose(logits, expected, rtol=1e-4, atol=1e-4 * scale)


def render_alone(export_dir, cond, start_block: int, blocks: int, voice: int, block: int) -> np.ndarray:
    engine = open_engine(export_dir, "ort", max_voices=1, threads=1)
    slot = engine.add_voice()
    noise = sampling.NoiseStream(SEED, [voice])
    return np.concatenate([engine.render([slot], cond[None], [block], noise.draw(block)) for _ in range(blocks)], 1)


def test_voices_come_and_go_without_changing_the_others(case):
    model, export_dir, embedding, pitch = case
    cond_frames = open_engine(export_dir, "ort", max_voices=1, threads=1).condition(embedding, pitch)
    rows = {v: cond_frames[v % 2, :2] for v in range(3)}  # [2, C] per voice id
    block = 100
    engine = open_engine(export_dir, "ort", max_voices=3, threads=1)
    noise = {v: sampling.NoiseStream(SEED, [v]) for v in range(3)}
    slot_of = {0: engine.add_voice(), 1: engine.add_voice()}
    outputs: dict[int, list[np.ndarray]] = {0: [], 1: [], 2: []}
    for step in range(6):
        if step == 2:
            slot_of[2] = engine.add_voice()  # joins mid-stream
        if step == 4:
            engine.remove_voice(slot_of.pop(1))  # leaves mid-stream
        voices = sorted(slot_of)
        out = engine.render([slot_of[v] for v in voices], np.stack([rows[v] for v in voices]), [block] * len(voices),
                            np.concatenate([noise[v].draw(block) for v in voices]))
        for i, v in enumerate(voices):
            outputs[v].append(out[i])
    for v, blocks in outputs.items():
        alone = render_alone(export_dir, rows[v], 0, len(blocks), v, block)
        np.testing.assert_array_equal(np.concatenate(blocks), alone[0], err_msg=f"voice {v}")
    # A freed slot comes back zeroed.
    slot = engine.add_voice()
    hist, x_hist, pos = engine.state(slot)
    assert pos == 0 and not hist.any() and not x_hist.any()


def test_ring_state_equals_ring_cache():
    """RingState (numpy, one position per slot) gathers the same taps as RingCache, also for a
    voice that starts later than another."""
    import dataclasses

    cfg = dataclasses.replace(get_config("tiny"), decoder_kernel=3)
    state = RingState(cfg, 3)
    np.testing.assert_array_equal(state.read, RingCache(cfg, 1)._read.numpy())
    caches = {0: RingCache(cfg, 1), 2: RingCache(cfg, 1)}
    rng = np.random.default_rng(0)
    n, r, k = cfg.decoder_layers, cfg.residual, cfg.decoder_kernel
    for t in range(300):
        slots = np.array([0, 2]) if t >= 100 else np.array([0])  # slot 2 joins at t = 100
        taps = np.empty((len(slots), n, (k - 1) * r), np.float32)
        x_hist = np.empty((len(slots), k), np.float32)
        state.gather(slots, taps, x_hist)
        columns = rng.standard_normal((len(slots), n, r)).astype(np.float32)
        x = rng.uniform(-1, 1, len(slots)).astype(np.float32)
        for i, s in enumerate(slots):
            np.testing.assert_array_equal(taps[i], caches[s].taps()[0].numpy())
            np.testing.assert_array_equal(x_hist[i], caches[s].x_hist[0].numpy())
            caches[s].push(torch.from_numpy(x[i : i + 1]), torch.from_numpy(columns[i : i + 1]))
        state.push(slots, x, columns)


def test_engine_refuses_bad_calls(case):
    _, export_dir, embedding, pitch = case
    engine = open_engine(export_dir, "ort", max_voices=1, threads=1)
    slot = engine.add_voice()
    with pytest.raises(UserError, match="all 1 voices"):
        engine.add_voice()
    c = engine.cfg.cond_width
    with pytest.raises(ValueError, match="not active"):
        engine.render([slot + 1], np.zeros((1, 2, c), np.float32), [1], np.zeros((1, 1)))
    with pytest.raises(ValueError, match="cond must be"):
        engine.render([slot], np.zeros((1, 2, c + 1), np.float32), [1], np.zeros((1, 1)))
    with pytest.raises(ValueError, match="temperature"):
        engine.render([slot], np.zeros((1, 2, c), np.float32), [1], np.zeros((1, 1)), temperature=0)
    with pytest.raises(ValueError, match="multiple of the hop"):
        engine.encode(np.zeros((1, 100), np.float32))
    with pytest.raises(ValueError, match="MIDI notes"):
        engine.condition(embedding[:1], [128])
    with pytest.raises(UserError, match="unknown engine"):
        open_engine(export_dir, "tpu")


def test_fused_adapter_renders_the_same_classes(case):
    """``open_engine(kind="fused")`` behind the common interface: same classes as ``ort``."""
    pytest.importorskip("nsynth_live.host.engines.fused_engine")
    model, export_dir, embedding, pitch = case
    n = 2000
    results = {}
    for kind in ("ort", "fused"):
        engine = open_engine(export_dir, kind, max_voices=3, threads=1)
        assert engine.name == kind
        engine.add_voice()  # slot 0 stays idle: the voices need not be the first slots
        slots = [engine.add_voice(), engine.add_voice()]
        logits = np.empty((2, n, 256), np.float32)
        results[kind] = render_frames(engine, slots, engine.condition(embedding, pitch), n,
                                      sampling.NoiseStream(SEED, range(2)), block=256, logits_out=logits), logits
        engine.close()
    first_difference_is_a_near_tie(results["fused"][0], results["ort"][0], results["ort"][1],
                                   sampling.voice_noise(SEED, 2, n), f"{model.cfg.name} fused vs ort")


def test_bench_engines_writes_the_report(tmp_path):
    from nsynth_live.benchmarks.engines import EngineBench, bench_engines

    report, table = bench_engines(EngineBench(configs=["tiny"], batches=[1, 2], engines=["ort", "fused"], threads=1,
                                              seconds=0.02, repeats=2, peak_size=256))
    assert report["matmul_peak_gflops"] > 0
    kinds = {r["engine"] for r in report["rows"]}
    assert "ort" in kinds and ("fused" in kinds or any("fused" in n for n in report["notes"]))
    for row in report["rows"]:
        assert set(row) >= {"engine", "config", "batch", "steps_per_s", "samples_per_s", "rtf_per_voice", "gflops"}
        assert row["samples_per_s"] == pytest.approx(row["steps_per_s"] * row["batch"])
        assert row["rtf_per_voice"] == pytest.approx(row["steps_per_s"] / 16000)


def test_bench_engines_measures_the_shipped_config_with_its_excitation(tmp_path, capsys):
    """The shipped model's config (live-hn-res: a learned source, a 2-channel excitation) streams through both engines,
    each row beside the same run's MatMul peak and the CPU's name and SIMD level (table and JSON)."""
    from nsynth_live.benchmarks.engines import shipped_config
    from nsynth_live.benchmarks.machine import SIMD_LEVELS
    from nsynth_live.cli import main

    shipped = shipped_config()
    assert shipped == "live-hn-res"
    path = tmp_path / "engines.json"
    assert main(["bench", "engines", "--json", str(path), "--batches", "2", "--seconds", "0.01", "--repeats", "1",
                 "--peak-size", "128", "--threads", "1", "--configs", f"live,{shipped}"]) == 0
    report = json.loads(path.read_text())
    rows = {(r["engine"], r["config"]): r for r in report["rows"]}
    assert set(rows) == {(e, c) for e in ("ort", "fused") for c in ("live", shipped)}, report["notes"]
    assert rows[("fused", shipped)]["excitation"] and not rows[("fused", "live")]["excitation"]
    machine = report["machine"]
    assert machine["cpu"] and machine["simd"] in SIMD_LEVELS + ("none",)
    for row in report["rows"]:
        assert row["steps_per_s"] > 0
        assert row["matmul_peak_gflops"] == report["matmul_peak_gflops"] > 0
        assert row["fraction_of_peak"] == pytest.approx(row["gflops"] / report["matmul_peak_gflops"])
        assert (row["cpu"], row["simd"]) == (machine["cpu"], machine["simd"])
    out = capsys.readouterr().out
    assert machine["cpu"] in out and f"({machine['simd']})" in out and "peak" in out
    assert sum(shipped in line for line in out.splitlines()) == 2  # one table row per engine


def test_bench_engines_names_the_flag_at_fault(capsys):
    from nsynth_live.cli import main

    assert main(["bench", "engines", "--json", "x.json", "--configs", "nope"]) == 2
    assert "--configs 'nope': expected some of" in capsys.readouterr().err


def test_near_tie_check_rejects_a_real_difference():
    """The margin check itself: a difference where the threshold is far from the boundary fails."""
    logits = np.zeros((1, 1, 256), np.float32)  # uniform: boundaries at j/256
    noise = np.array([[0.5 + 0.5 / 256]])  # halfway inside class 128
    got, expected = np.array([[128]]), np.array([[129]])
    with pytest.raises(AssertionError, match="margin"):
        first_difference_is_a_near_tie(got, expected, logits, noise, "fabricated")
    first_difference_is_a_near_tie(got, expected, logits, np.array([[129 / 256 - 1e-7]]), "a real near-tie")


def test_auto_picks_fused_for_small_models_on_a_cpu(case):
    _, export_dir, _, _ = case
    try:
        import nsynth_live.host.engines.fused_engine  # noqa: F401
        expected = "fused"
    except ImportError:
        expected = "ort"
    engine = open_engine(export_dir, "auto", max_voices=1, threads=1)
    assert engine.name == expected
    engine.close()
