"""Cached generation: the streamed step equals the teacher-forced forward; seeded sampling."""

import argparse
import dataclasses
import json
import math

import numpy as np
import pytest
import torch

from nsynth_live import mulaw, sampling
from nsynth_live.cli import bench
from nsynth_live.configs import ModelConfig, get_config
from nsynth_live.decoder import Decoder
from nsynth_live.generate import (
    RingCache,
    generate,
    generate_classes,
    generate_naive,
    sample_classes,
    step_logits,
)

F64 = torch.float64


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Streaming is thousands of tiny ops: one thread is as fast, and a busy second core
    cannot stall every op at a thread barrier."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def random_case(cfg: ModelConfig, batch: int, n: int, dtype: torch.dtype, seed: int = 0):
    """Random decoder, input (network scaling), embedding frames covering n samples, pitches."""
    torch.manual_seed(seed)
    decoder = Decoder(cfg).to(dtype)
    x = mulaw.to_input(torch.randint(0, 256, (batch, n))).to(dtype)
    embedding = torch.randn(batch, cfg.bottleneck, math.ceil(n / cfg.hop), dtype=dtype)
    pitch = torch.randint(0, 128, (batch,)) if cfg.pitch_conditioning else None
    return decoder, x, embedding, pitch


def tiny(**changes) -> ModelConfig:
    return dataclasses.replace(get_config("tiny"), **changes)


# ----------------------------------------------------------------------------- step == forward


@pytest.mark.parametrize(
    "cfg, batch, n, dtype, rtol",
    [
        # float64: equal up to rounding. Lengths cross frame boundaries (hop 512), pass the
        # receptive field and wrap every ring.
        (tiny(decoder_kernel=3), 3, 1300, F64, 1e-9),
        (tiny(pitch_conditioning=False), 2, 1100, F64, 1e-9),
        (get_config("live"), 2, 2100, F64, 1e-9),
        (get_config("live"), 2, 1100, torch.float32, 1e-4),
        # The paper config streams ~16 ms per step here: 600 samples cross one frame boundary.
        (get_config("paper"), 1, 600, torch.float32, 1e-4),
    ],
    ids=["tiny-k3-f64", "tiny-no-pitch-f64", "live-f64", "live-f32", "paper-f32"],
)
def test_streamed_steps_equal_the_teacher_forced_forward(cfg, batch, n, dtype, rtol):
    decoder, x, embedding, pitch = random_case(cfg, batch, n, dtype)
    with torch.no_grad():
        expected = decoder(x, embedding, pitch)
    got = step_logits(decoder, x, embedding, pitch)
    assert got.shape == expected.shape == (batch, 256, n)
    scale = expected.abs().max()
    torch.testing.assert_close(got, expected, rtol=rtol, atol=rtol * scale)


def test_paper_step_is_exact_in_float64():
    # A short float64 run of the real paper weights (k=3, R=512): the fused matrices are the convs.
    decoder, x, embedding, pitch = random_case(get_config("paper"), 1, 48, F64, seed=1)
    with torch.no_grad():
        expected = decoder(x, embedding, pitch)
    got = step_logits(decoder, x, embedding, pitch)
    torch.testing.assert_close(got, expected, rtol=1e-9, atol=1e-9 * expected.abs().max())


def test_ring_cache_returns_each_layers_past_columns():
    cfg = get_config("paper")  # k=3: two taps per layer, rings of 2 .. 1024 samples
    k, n_layers, r = cfg.decoder_kernel, cfg.decoder_layers, cfg.residual
    cache = RingCache(cfg, batch=1, dtype=F64)
    assert not cache.hist.any() and not cache.x_hist.any()  # silence before t = 0
    dilations = torch.tensor(cfg.decoder_dilations)
    lags = dilations[:, None] * torch.arange(k - 1, 0, -1)  # oldest first
    for t in range(2100):  # past two periods of the largest ring
        taps = cache.taps().reshape(n_layers, k - 1, r)
        expected = (t - lags + 1).clamp(min=0).to(F64)  # column written at time s holds s + 1
        assert torch.equal(taps[:, :, 0], expected) and torch.equal(taps[:, :, -1], expected)
        columns = torch.full((1, n_layers, r), t + 1.0, dtype=F64)
        cache.push(torch.tensor([float(t)], dtype=F64), columns)
        assert cache.x_hist[0].tolist() == [float(max(s, 0)) for s in range(t - k + 1, t + 1)]  # x[s < 0] = 0


# ----------------------------------------------------------------------------- sampling


def test_every_draw_is_the_sampler_on_the_teacher_forced_logits():
    cfg = get_config("live")
    decoder, _, embedding, pitch = random_case(cfg, 2, 700, F64, seed=2)
    classes = generate_classes(decoder, embedding, pitch, 700, seed=11)
    with torch.no_grad():
        logits = decoder(mulaw.to_input(classes).to(F64), embedding, pitch)
    noise = sampling.voice_noise(11, 2, 700)
    expected = np.stack(
        [sampling.sample_classes(logits[:, :, t].numpy(), noise[:, t]) for t in range(700)], axis=1
    )
    assert np.array_equal(classes.numpy(), expected)


def test_seeds_voices_and_batches():
    decoder, _, embedding, pitch = random_case(tiny(), 3, 600, F64, seed=3)
    a = generate_classes(decoder, embedding, pitch, 600, seed=5)
    assert a.shape == (3, 600) and a.dtype == torch.int64
    assert torch.equal(a, generate_classes(decoder, embedding, pitch, 600, seed=5))
    assert (a != generate_classes(decoder, embedding, pitch, 600, seed=6)).float().mean() > 0.5
    for b in range(3):  # a voice renders the same alone as in a batch
        alone = generate_classes(decoder, embedding[b : b + 1], pitch[b : b + 1], 600, seed=5, voices=[b])
        assert torch.equal(alone[0], a[b])


def test_cold_generation_is_the_argmax():
    decoder, _, embedding, pitch = random_case(get_config("live"), 2, 300, F64, seed=4)
    classes = generate_classes(decoder, embedding, pitch, 300, seed=0, temperature=1e-4)
    with torch.no_grad():
        logits = decoder(mulaw.to_input(classes).to(F64), embedding, pitch)
    # Each draw is the argmax, or a runner-up within a few temperatures of it (a near-tie).
    gap = logits.amax(1) - logits.gather(1, classes[:, None]).squeeze(1)
    assert gap.max() < 20 * 1e-4
    assert (classes == logits.argmax(1)).float().mean() > 0.99


def test_naive_generation_equals_cached():
    decoder, _, embedding, pitch = random_case(tiny(decoder_kernel=3), 2, 600, F64, seed=5)
    cached = generate_classes(decoder, embedding, pitch, 600, seed=9, temperature=0.8)
    assert torch.equal(generate_naive(decoder, embedding, pitch, 600, seed=9, temperature=0.8), cached)


def test_naive_generation_after_a_history():
    decoder, _, embedding, pitch = random_case(tiny(), 2, 300, F64, seed=6)
    history = torch.randint(0, 256, (2, 200))
    out = generate_naive(decoder, embedding, pitch, 100, seed=2, history=history)
    with torch.no_grad():
        logits = decoder(mulaw.to_input(torch.cat([history, out], 1)).to(F64), embedding, pitch)
    noise = torch.from_numpy(sampling.voice_noise(2, 2, 100))
    expected = torch.stack([sample_classes(logits[:, :, 200 + t], noise[:, t]) for t in range(100)], 1)
    assert torch.equal(out, expected)


def test_generate_returns_decoded_audio():
    decoder, _, embedding, pitch = random_case(tiny(), 2, 100, torch.float32, seed=7)
    audio = generate(decoder, embedding, pitch, 100, seed=1)
    assert audio.shape == (2, 100) and audio.dtype == torch.float32
    assert torch.equal(audio, mulaw.decode(generate_classes(decoder, embedding, pitch, 100, seed=1)))


def test_generation_errors():
    decoder, _, embedding, pitch = random_case(tiny(), 1, 512, torch.float32)
    with pytest.raises(ValueError, match="513 samples need 2 embedding frames of 512; got 1"):
        generate_classes(decoder, embedding, pitch, 513, seed=0)
    with pytest.raises(ValueError, match="temperature"):
        generate_classes(decoder, embedding, pitch, 10, seed=0, temperature=0.0)
    with pytest.raises(ValueError, match="2 voice ids for a batch of 1"):
        generate_classes(decoder, embedding, pitch, 10, seed=0, voices=[0, 1])
    with pytest.raises(ValueError, match=r"MIDI notes 0\.\.127, got 200"):
        generate_classes(decoder, embedding, torch.tensor([200]), 10, seed=0)


# ----------------------------------------------------------------------------- benchmark


def test_bench_generation_writes_rows_and_ratios(tmp_path, capsys):
    parser = argparse.ArgumentParser()
    bench.register(parser.add_subparsers(dest="command"))
    out = tmp_path / "bench.json"
    args = parser.parse_args(
        ["bench", "generation", "--configs", "tiny", "--batches", "1,2", "--samples", "16",
         "--naive-samples", "2", "--repeats", "1", "--json", str(out)]
    )
    assert args.func(args) == 0
    report = json.loads(out.read_text())
    rows = {(r["method"], r["config"], r["batch"]): r["samples_per_s"] for r in report["rows"]}
    assert set(rows) == {(m, "tiny", b) for m in ("cached", "naive") for b in (1, 2)}
    assert all(v > 0 for v in rows.values())
    assert {(r["config"], r["batch"]) for r in report["ratios"]} == {("tiny", 1), ("tiny", 2)}
    assert "cached" in capsys.readouterr().out
