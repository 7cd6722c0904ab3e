"""The fused engine (host/engines/fused_engine.py): compiled numba code, checked against the PyTorch model.

Every test runs the real compiled kernels. The references: the teacher-forced parallel forward
(logits), nsynth_live.generate.generate_classes (sampled classes with the same noise), the single
step decoder_step (per-sample conditioning), and nsynth_live.sampling.sample_classes.
"""

from __future__ import annotations

import dataclasses
import math
import subprocess
import sys

import numpy as np
import pytest
import torch

from nsynth_live.host.engines import fused_kernels as K
from nsynth_live.host.engines.fused_engine import FusedEngine
from nsynth_live import mulaw, sampling
from nsynth_live.configs import ModelConfig, get_config, receptive_field
from nsynth_live.decoder import Decoder, decoder_step
from nsynth_live.generate import RingCache, generate_classes


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def tiny(**changes) -> ModelConfig:
    return dataclasses.replace(get_config("tiny"), **changes)


def step_weight_dict(decoder: Decoder) -> dict[str, np.ndarray]:
    """The decoder's StepWeights as the plain numpy dict the engine takes (ONNX initializer names)."""
    return decoder.step_weights().arrays()


def random_case(cfg: ModelConfig, batch: int, n: int, seed: int = 0):
    """A random float32 decoder, its conditioning frames [B, F, C] covering n samples, pitches."""
    torch.manual_seed(seed)
    decoder = Decoder(cfg).float().eval()
    embedding = torch.randn(batch, cfg.bottleneck, math.ceil(n / cfg.hop))
    pitch = torch.randint(0, 128, (batch,)) if cfg.pitch_conditioning else None
    cond = decoder.condition(embedding, pitch).numpy()
    return decoder, embedding, pitch, cond


def stream(engine: FusedEngine, slots, cond: np.ndarray, noise: np.ndarray, sizes, start: int = 0,
           feed: np.ndarray | None = None, temperature: float = 1.0, exc: np.ndarray | None = None):
    """Run per-frame conditioning through the engine in blocks of the given sizes (cycled).

    Sample t (absolute, from ``start``) uses frame t // hop; each block gets its frame's row and
    the next frame's row with the block-relative switch, as the realtime host passes them.

    exc (optional): float32 [V, N, E], each sample's excitation (configs with one).

    Returns:
        (classes int64 [V, N], logits float32 [V, N, 256]) for N = noise.shape[1].
    """
    hop = engine.cfg.hop
    nv, total = noise.shape
    classes = np.empty((nv, total), np.int64)
    logits = np.empty((nv, total, 256), np.float32)
    padded = np.concatenate([cond, cond[:, -1:]], 1)
    t0, i = 0, 0
    while t0 < total:
        n = min(sizes[i % len(sizes)], total - t0)
        i += 1
        t = start + t0
        f = t // hop
        assert n <= hop
        switch = np.full(nv, (f + 1) * hop - t, np.int64)
        lo = np.empty((nv, n, 256), np.float32)
        classes[:, t0 : t0 + n] = engine.generate(
            slots, padded[:, f : f + 2], switch, noise[:, t0 : t0 + n], temperature, logits_out=lo,
            feed=None if feed is None else feed[:, t0 : t0 + n],
            exc=None if exc is None else np.ascontiguousarray(exc[:, t0 : t0 + n]))
        logits[:, t0 : t0 + n] = lo
        t0 += n
    return classes, logits


# ----------------------------------------------------------------------------- logits == forward


@pytest.mark.parametrize(
    "cfg, batch, n, sizes",
    [
        (tiny(), 3, 1300, [256, 100, 7, 512]),
        (tiny(decoder_kernel=3, pitch_conditioning=False), 2, 1100, [300, 1, 211]),
        # Rings of 3 d samples: not powers of two (the kernel's general modulo path).
        (tiny(decoder_kernel=4), 2, 700, [256, 5, 300]),
        # Past the receptive field (2048) so every ring wraps; 5 frame boundaries.
        (get_config("live"), 2, 2600, [256, 512, 33, 490]),
    ],
    ids=["tiny", "tiny-k3-no-pitch", "tiny-k4", "live"],
)
def test_streamed_logits_equal_the_teacher_forced_forward(cfg, batch, n, sizes):
    assert cfg.name != "live" or n > receptive_field(cfg)
    decoder, embedding, pitch, cond = random_case(cfg, batch, n)
    classes = torch.randint(0, 256, (batch, n), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected = decoder(mulaw.to_input(classes).float(), embedding, pitch).numpy().transpose(0, 2, 1)
    engine = FusedEngine(cfg, step_weight_dict(decoder), max_voices=batch + 1, threads=2)
    slots = np.arange(1, batch + 1)  # not starting at slot 0
    _, got = stream(engine, slots, cond, np.full((batch, n), 0.5), sizes, feed=classes.numpy())
    scale = np.abs(expected).max()
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4 * scale)
    engine.close()


# ----------------------------------------------------------------------------- generation


def first_difference_is_a_near_tie(decoder, embedding, pitch, ours: np.ndarray, ref: np.ndarray,
                                   noise: np.ndarray, our_logits: np.ndarray) -> None:
    """Where the streams differ, the first difference is a float near-tie: with the same history,
    both logits agree to 1e-4 and the sampling threshold lies within 1e-4 (of the total mass) of
    the boundary between the two drawn classes."""
    for b in range(ours.shape[0]):
        diff = np.flatnonzero(ours[b] != ref[b])
        if diff.size == 0:
            continue
        t = int(diff[0])
        x = mulaw.to_input(torch.from_numpy(ref[b : b + 1, : t + 1])).float()
        with torch.no_grad():
            logits = decoder(x, embedding[b : b + 1], None if pitch is None else pitch[b : b + 1])[0, :, t].numpy()
        np.testing.assert_allclose(our_logits[b, t], logits, rtol=1e-4, atol=1e-4 * np.abs(logits).max())
        z = logits.astype(np.float64) - logits.max()
        cdf = np.cumsum(np.exp(z))
        boundary = cdf[min(ours[b, t], ref[b, t])]
        margin = abs(noise[b, t] * cdf[-1] - boundary) / cdf[-1]
        assert margin < 1e-4, f"voice {b} sample {t}: classes {ours[b, t]} vs {ref[b, t]}, margin {margin}"


def test_generation_equals_the_pytorch_reference():
    cfg, batch, n, seed = get_config("live"), 2, 2000, 7
    decoder, embedding, pitch, cond = random_case(cfg, batch, n, seed=3)
    expected = generate_classes(decoder, embedding, pitch, n, seed=seed).numpy()
    engine = FusedEngine(cfg, step_weight_dict(decoder), max_voices=2, threads=2)
    noise = sampling.NoiseStream(seed, range(batch)).draw(n)
    got, logits = stream(engine, [0, 1], cond, noise, [256])
    engine.close()
    assert len(np.unique(got)) > 20  # really sampled, not stuck on one class
    first_difference_is_a_near_tie(decoder, embedding, pitch, got, expected, noise, logits)
    # In practice no near-tie occurs in 4,000 draws: the streams are identical.
    assert np.array_equal(got, expected)


def test_temperature_and_per_voice_temperatures():
    cfg, n = tiny(), 600
    decoder, embedding, pitch, cond = random_case(cfg, 2, n, seed=4)
    engine = FusedEngine(cfg, step_weight_dict(decoder), max_voices=2, threads=1)
    noise = sampling.voice_noise(3, 2, n)
    for temperature in (0.7, 1.6):
        expected = generate_classes(decoder, embedding, pitch, n, seed=3, temperature=temperature).numpy()
        engine.reset()
        got, _ = stream(engine, [0, 1], cond, noise, [512], temperature=temperature)
        assert np.array_equal(got, expected)
    # One temperature per voice: voice 1 at 1.6 equals voice 1 rendered at 1.6 above.
    engine.reset()
    mixed = engine.generate([0, 1], np.stack([cond[:, 0], cond[:, 1]], 1), [512, 512], noise, [0.7, 1.6])
    assert np.array_equal(mixed[1], got[1])
    engine.close()


# ----------------------------------------------------------------------------- voices and blocks


def test_batch_equals_voices_run_alone_bit_for_bit():
    cfg, n, nv = get_config("live"), 700, 5
    decoder, _, _, cond = random_case(cfg, nv, n, seed=5)
    weights = step_weight_dict(decoder)
    noise = sampling.voice_noise(1, nv, n)
    batch = FusedEngine(cfg, weights, max_voices=nv, threads=2)
    together, logits = stream(batch, np.arange(nv), cond, noise, [256])
    alone_engine = FusedEngine(cfg, weights, max_voices=2, threads=1)
    for v in range(nv):
        alone_engine.reset()
        alone, alone_logits = stream(alone_engine, [1], cond[v : v + 1], noise[v : v + 1], [256])
        assert np.array_equal(alone[0], together[v])
        assert np.array_equal(alone_logits[0], logits[v])  # same arithmetic whatever the batch
    batch.close()
    alone_engine.close()


def test_voices_added_and_removed_mid_stream_leave_the_others_alone():
    """Voice A plays throughout (slot 2); B joins slot 0 at block 2 and leaves after block 5; C
    joins slot 3 at block 4, and slot 0 is reused by D at block 7. Every voice's stream equals
    the same inputs replayed alone on a fresh engine: no voice disturbs another, and a reset
    slot starts from silence whatever played in it before."""
    cfg, n, block = tiny(), 1536, 128
    decoder, _, _, cond = random_case(cfg, 4, n, seed=6)
    weights = step_weight_dict(decoder)
    noise = sampling.voice_noise(2, 4, n)
    engine = FusedEngine(cfg, weights, max_voices=4, threads=2)
    schedule = {"A": (2, 0, 12), "B": (0, 2, 6), "C": (3, 4, 12), "D": (0, 7, 12)}  # slot, first, end block
    inputs = {name: [] for name in schedule}
    outputs = {name: [] for name in schedule}
    for i, t0 in enumerate(range(0, n, block)):
        playing = [(name, slot) for name, (slot, first, end) in schedule.items() if first <= i < end]
        for name, slot in playing:
            if schedule[name][1] == i:
                engine.reset([slot])
        f = t0 // cfg.hop
        rows = [list(schedule).index(name) for name, _ in playing]
        c = np.stack([cond[rows, f], cond[rows, min(f + 1, cond.shape[1] - 1)]], 1)
        switch = np.full(len(rows), (f + 1) * cfg.hop - t0)
        u = noise[rows, t0 : t0 + block]
        lo = np.empty((len(rows), block, 256), np.float32)
        engine.generate([slot for _, slot in playing], c, switch, u, logits_out=lo)
        for j, (name, _) in enumerate(playing):
            inputs[name].append((c[j : j + 1], switch[j : j + 1], u[j : j + 1]))
            outputs[name].append(lo[j])  # the logits: far more sensitive to state than the draws
    engine.close()
    alone = FusedEngine(cfg, weights, max_voices=1, threads=1)
    for name in schedule:
        alone.reset()
        replay = []
        for c, sw, u in inputs[name]:
            lo = np.empty((1, u.shape[1], 256), np.float32)
            alone.generate([0], c, sw, u, logits_out=lo)
            replay.append(lo[0])
        assert np.array_equal(np.concatenate(replay), np.concatenate(outputs[name])), name
    alone.close()


def test_block_sizes_do_not_change_the_stream():
    cfg, n = get_config("live"), 1500
    decoder, _, _, cond = random_case(cfg, 2, n, seed=7)
    weights = step_weight_dict(decoder)
    noise = sampling.voice_noise(4, 2, n)
    engine = FusedEngine(cfg, weights, max_voices=2, threads=2)
    results = []
    for sizes in ([512], [1], [3, 256, 17], [255, 1, 64]):
        engine.reset()
        sizes = sizes if sizes != [1] else [1] * 40 + [512]  # 40 single steps, then big blocks
        results.append(stream(engine, [0, 1], cond, noise, sizes))
    for classes, logits in results[1:]:
        assert np.array_equal(classes, results[0][0])
        assert np.array_equal(logits, results[0][1])
    engine.close()


def test_conditioning_row_switch_inside_a_block():
    """Row 0 before ``switch``, row 1 from it on, at any block-relative position: compared with
    the PyTorch single step fed the same per-sample conditioning."""
    cfg, n = tiny(), 60
    decoder, _, _, _ = random_case(cfg, 2, n, seed=8)
    rng = np.random.default_rng(0)
    rows = rng.standard_normal((2, 2, cfg.cond_width)).astype(np.float32)
    switch = np.array([17, 0])  # voice 0 switches mid-block, voice 1 uses row 1 throughout
    classes = rng.integers(0, 256, (2, n))
    w = decoder.step_weights()
    cache = RingCache(cfg, 2)
    expected = []
    for t in range(n):
        c = torch.from_numpy(np.stack([rows[v, int(t >= switch[v])] for v in range(2)]))
        with torch.no_grad():
            logits, columns = decoder_step(w, cache.x_hist, cache.taps(), c)
        cache.push(mulaw.to_input(torch.from_numpy(classes[:, t])).float(), columns)
        expected.append(logits.numpy())
    expected = np.stack(expected, 1)
    engine = FusedEngine(cfg, step_weight_dict(decoder), max_voices=2, threads=2)
    got = np.empty((2, n, 256), np.float32)
    engine.generate([0, 1], rows, switch, np.full((2, n), 0.5), logits_out=got, feed=classes)
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4 * np.abs(expected).max())
    engine.close()


# ----------------------------------------------------------------------------- numerics


def test_sampling_rule_is_bit_exact():
    rng = np.random.default_rng(0)
    logits = (rng.standard_normal((4000, 256)) * rng.uniform(0.1, 30, (4000, 1))).astype(np.float32)
    u = rng.random(4000)
    u[:10] = np.nextafter(1.0, 0.0)  # float32(u) rounds to 1.0: the last class with mass
    u[10:20] = 0.0
    logits[20:30, :200] = -1e4  # classes without mass are never drawn
    for temperature in (1.0, 0.05, 2.5):
        got = np.empty(4000, np.int64)
        K.sample_rows(logits, u, np.full(4000, temperature, np.float32), got)
        assert np.array_equal(got, sampling.sample_classes(logits, u, temperature))


def test_float64_exp_rounds_like_numpy():
    z = -np.concatenate([np.random.default_rng(1).random(1_000_000) * 110, np.linspace(0, 110, 100_001),
                         [0.0, 5e-324, 103.9, 104.0, 200.0, 1e5]])
    got = np.empty_like(z)
    K.exp64_array(z, got)
    assert np.array_equal(got.astype(np.float32), np.exp(z).astype(np.float32))
    assert np.max(np.abs(got[z > -700] / np.exp(z[z > -700]) - 1)) < 5e-16


def gate_inputs() -> tuple[np.ndarray, np.ndarray]:
    """Gate arguments (a, b) for sigmoid(a) * tanh(b): sweeps of each, random pairs, and the edges
    (zeros, tiny, past the exp clamp at -87, infinities)."""
    rng = np.random.default_rng(2)
    sweep = np.linspace(-30, 30, 200_001)
    edges = [0.0, -0.0, 1e-30, -1e-30, 0.625, -0.625, 43.4, -43.6, 87.0, -87.0, 88.0, -88.0, 100.0, -100.0, 1e4,
             -1e4, np.inf, -np.inf]
    a = np.concatenate([sweep, rng.standard_normal(200_000) * 3, np.repeat(edges, len(edges)), rng.standard_normal(200_001) * 3])
    b = np.concatenate([rng.standard_normal(200_001) * 3, rng.standard_normal(200_000) * 3, np.tile(edges, len(edges)), sweep])
    return a.astype(np.float32), b.astype(np.float32)


def gate_error(a: np.ndarray, b: np.ndarray, got: np.ndarray) -> tuple[float, float]:
    """Max abs error of a gate against float64, and max error in float32 ulps of the exact value
    (outside underflow: |exact| >= 1e-37)."""
    with np.errstate(over="ignore"):
        ref = 1 / (1 + np.exp(-a.astype(np.float64))) * np.tanh(b.astype(np.float64))
    err = np.abs(got.astype(np.float64) - ref)
    ulp = np.spacing(np.abs(ref).astype(np.float32)).astype(np.float64)
    normal = np.abs(ref) >= 1e-37
    return float(err.max()), float(np.max(err[normal] / ulp[normal]))


def test_gate_is_accurate_to_float32_rounding():
    a, b = gate_inputs()
    got = np.empty_like(a)
    K.gate_array(a, b, got)
    # Measured: 2.4e-7 absolute, 5.2 ulps at most (each of sigmoid and tanh alone, libm's and
    # PyTorch's, is within 1-2 ulps; their float32 product adds one rounding more).
    abs_err, ulps = gate_error(a, b, got)
    assert abs_err < 4e-7 and ulps <= 8, (abs_err, ulps)


# ----------------------------------------------------------------------------- engine contract


def test_host_engine_does_not_import_torch():
    code = ("import sys; import nsynth_live.host.engines.fused_engine, nsynth_live.host.engines.fused_kernels; "
            "assert 'torch' not in sys.modules, 'torch imported'")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_construction_precompiles_every_kernel_path():
    cfg = tiny()
    decoder, _, _, cond = random_case(cfg, 3, 100)
    engine = FusedEngine(cfg, step_weight_dict(decoder), max_voices=3, threads=2)
    before = len(K.run_block.signatures)
    engine.generate([2, 0, 1], cond[:, [0, 0]], [5, 5, 5], np.full((3, 100), 0.3), [0.5, 1.0, 2.0],
                    logits_out=np.empty((3, 100, 256), np.float32), feed=np.zeros((3, 100), np.int64))
    engine.generate([1], cond[:1, [0, 0]], [0], np.full((1, 7), 0.3))
    assert len(K.run_block.signatures) == before  # nothing compiled after the constructor
    engine.close()


def test_fast_path_compiles_nothing_after_construction():
    # The live synth calls generate_fast with its own writable buffers every block: a signature
    # the warm-up did not compile would cost a compile (or cache load) inside the first note.
    cfg = tiny()
    decoder, _, _, cond = random_case(cfg, 3, 100)
    engine = FusedEngine(cfg, step_weight_dict(decoder), max_voices=3, threads=2)
    before = len(K.run_block.signatures)
    engine.generate_fast(np.array([2, 0, 1]), np.ascontiguousarray(cond[:, [0, 0]]), np.array([5, 5, 5]),
                         np.full((3, 100), 0.3), np.ones(3, np.float32))
    assert len(K.run_block.signatures) == before
    engine.close()


def test_bad_arguments_are_refused_with_a_message():
    cfg = tiny()
    decoder, _, _, cond = random_case(cfg, 1, 10)
    weights = step_weight_dict(decoder)
    with pytest.raises(ValueError, match=r"weight 'layers.1.gate_w' has shape \(8, 16\)"):
        FusedEngine(cfg, {**weights, "layers.1.gate_w": np.zeros((8, 16), np.float32)}, warmup=False)
    with pytest.raises(ValueError, match="weight 'out1_w' missing"):
        FusedEngine(cfg, {k: v for k, v in weights.items() if k != "out1_w"}, warmup=False)
    engine = FusedEngine(cfg, weights, max_voices=2, threads=1)
    c = cond[:, [0, 0]]
    with pytest.raises(ValueError, match=r"slots must be in 0..1"):
        engine.generate([2], c, [0], np.zeros((1, 4)))
    with pytest.raises(ValueError, match="cond must be"):
        engine.generate([0], c[:, :1], [0], np.zeros((1, 4)))
    with pytest.raises(ValueError, match="temperature"):
        engine.generate([0], c, [0], np.zeros((1, 4)), 0.0)
    with pytest.raises(ValueError, match="appears twice"):
        engine.generate([0, 0], np.concatenate([c, c]), [0, 0], np.zeros((2, 4)))
    engine.close()


def test_weights_loaded_from_the_onnx_export_equal_the_pytorch_ones(tmp_path):
    from nsynth_live.exporters.export import export_random
    from nsynth_live.host.model_files import load_export, step_weights_from_onnx
    from nsynth_live.autoencoder import WaveNetAutoencoder

    cfg = tiny()
    out = export_random(cfg, tmp_path / "export", seed=3)
    torch.manual_seed(3)
    model = WaveNetAutoencoder(cfg).eval()
    expected = step_weight_dict(model.decoder)
    loaded = step_weights_from_onnx(load_export(out).decoder_step)
    assert sorted(loaded) == sorted(expected)
    for name in expected:
        assert np.array_equal(loaded[name], expected[name]), name
    # And the engine built from the export generates what one built from PyTorch's weights does.
    noise = sampling.voice_noise(0, 1, 300)
    _, _, _, cond = random_case(cfg, 1, 300)
    a = FusedEngine.from_export(out, max_voices=1, threads=1)
    b = FusedEngine(cfg, expected, max_voices=1, threads=1)
    assert np.array_equal(stream(a, [0], cond, noise, [256])[0], stream(b, [0], cond, noise, [256])[0])


def test_numba_prange_threads_give_the_same_stream():
    cfg, n, nv = tiny(), 700, 5
    decoder, _, _, cond = random_case(cfg, nv, n, seed=9)
    weights = step_weight_dict(decoder)
    noise = sampling.voice_noise(5, nv, n)
    results = []
    for parallel, threads in (("pool", 1), ("pool", 2), ("prange", 2)):
        engine = FusedEngine(cfg, weights, max_voices=nv, threads=threads, parallel=parallel)
        results.append(stream(engine, np.arange(nv), cond, noise, [256, 100]))
        engine.close()
    for classes, logits in results[1:]:
        assert np.array_equal(classes, results[0][0]) and np.array_equal(logits, results[0][1])
