"""The learned harmonic source (configs with ``source_harmonics``): its controls, its signal,
streamed == teacher-forced with it, its spectral loss, and training with it."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from nsynth_live import checkpoint as ckpt_io
from nsynth_live.autoencoder import WaveNetAutoencoder
from nsynth_live.configs import ModelConfig, get_config, param_count
from nsynth_live.decoder import SourceNet, conditioning_input
from nsynth_live.excitation import (audible, free_phase, harmonic_baseband, harmonic_source, measured_amplitudes,
                                    measured_source, midi_to_hz, upsample_frames)
from nsynth_live.generate import generate_classes, step_logits
from nsynth_live.losses import harmonic_loss, multires_stft_loss
from nsynth_live.train import train


def test_source_controls_are_a_level_spread_over_the_harmonics_below_nyquist():
    cfg = get_config("live-hn")
    net = SourceNet(cfg)
    pitch = torch.tensor([36, 84, 100])
    c = conditioning_input(torch.randn(3, 16, 5), pitch, True)
    amps = net(c, pitch)
    assert amps.shape == (3, cfg.source_harmonics, 5) and amps.dtype == torch.float32
    assert (amps >= 0).all()
    level = 2.0 * torch.sigmoid(net.net(c)[:, :1]) ** np.log(10.0) + 1e-7
    torch.testing.assert_close(amps.sum(1, keepdim=True), level, rtol=1e-5, atol=1e-6)
    k = torch.arange(1, cfg.source_harmonics + 1)
    for b, q in enumerate(pitch):
        above = k * midi_to_hz(q) >= 8000
        assert above.any() == (q > 50)
        assert (amps[b, above] == 0).all() and (amps[b, ~above] > 0).all()


def test_harmonic_source_is_the_sum_of_its_harmonics_in_numpy_and_torch():
    pitch = np.array([57, 69])
    phase = free_phase(pitch, 800, start=np.array([0, 400]))
    amps = np.random.default_rng(0).random((2, 3, 800)).astype(np.float32)
    got = harmonic_source(amps, phase)
    ref = np.stack([sum(amps[:, k] * f((k + 1) * phase) for k in range(3)) for f in (np.sin, np.cos)], 1)
    np.testing.assert_allclose(got, ref, atol=2e-5)
    t = harmonic_source(torch.from_numpy(amps), free_phase(torch.from_numpy(pitch), 800, torch.tensor([0, 400])))
    np.testing.assert_allclose(t.numpy(), got, atol=2e-5)
    # 440 Hz: sample 400 is 11 whole periods from the note start, so the phase is back at 0.
    np.testing.assert_allclose(phase[1, :5], free_phase(pitch[1:], 5)[0], atol=1e-9)


def test_upsampling_is_linear_between_frame_starts_and_blocks_continue_it():
    frames = np.array([[[0.0, 1.0, 3.0]]], np.float32)  # [1, 1, 3]
    whole = upsample_frames(frames, 12, hop=4)
    np.testing.assert_allclose(whole[0, 0], [0, .25, .5, .75, 1, 1.5, 2, 2.5, 3, 3, 3, 3])
    np.testing.assert_allclose(upsample_frames(frames, 5, hop=4, start=3), whole[..., 3:8])
    t = upsample_frames(torch.from_numpy(frames), 12, hop=4)
    np.testing.assert_allclose(t.numpy(), whole)


def test_streamed_steps_equal_teacher_forced_with_the_learned_source():
    torch.manual_seed(2)
    m = WaveNetAutoencoder(get_config("tiny-hn")).double().eval()
    x = ((torch.randint(0, 256, (2, 1300)) - 128) / 128).double()
    emb = torch.randn(2, 16, 3, dtype=torch.float64)
    pitch = torch.tensor([40, 76])
    with torch.no_grad():
        ref = m.decoder(x, emb, pitch)
        got = step_logits(m, x, emb, pitch)
    torch.testing.assert_close(got, ref, rtol=1e-9, atol=1e-9)


def test_the_embedding_reaches_the_logits_through_the_source():
    torch.manual_seed(3)
    m = WaveNetAutoencoder(get_config("tiny-hn")).eval()
    with torch.no_grad():  # make the source the decoder's only way to hear the embedding
        for layer in m.decoder.layers:
            layer.cond.weight.zero_()
        m.decoder.cond_out1.weight.zero_()
        m.decoder.excitation.weight.mul_(50)
    emb = torch.randn(1, 16, 2)
    pitch = torch.tensor([60])
    a = generate_classes(m, emb, pitch, 600, seed=0)
    b = generate_classes(m, -emb, pitch, 600, seed=0)
    assert (a != b).any()
    assert param_count(m.cfg) == sum(p.numel() for p in m.parameters())


def _stft_ref(x: np.ndarray, n: int) -> np.ndarray:
    hop = n // 4
    frames = 1 + (x.shape[-1] - n) // hop
    idx = np.arange(n)[None, :] + hop * np.arange(frames)[:, None]
    return np.abs(np.fft.rfft(x[..., idx] * np.hanning(n + 1)[:-1], axis=-1))


def test_spectral_loss_matches_a_numpy_reference_and_trains_a_level():
    rng = np.random.default_rng(4)
    a, b = rng.standard_normal((2, 2, 4096)) * 0.1
    ref = sum(np.mean(np.abs(_stft_ref(a, n) - _stft_ref(b, n)))
              + np.mean(np.abs(np.log(_stft_ref(a, n) + 1e-5) - np.log(_stft_ref(b, n) + 1e-5)))
              for n in (2048, 1024, 512, 256, 128))
    got = multires_stft_loss(torch.from_numpy(a).float(), torch.from_numpy(b).float())
    assert abs(float(got) - ref) < 1e-3 * ref
    assert float(multires_stft_loss(torch.from_numpy(a).float(), torch.from_numpy(a).float())) == 0.0
    gain = torch.tensor(0.2, requires_grad=True)  # the loss pulls a wrong level towards the target's
    target = torch.from_numpy(a).float()
    opt = torch.optim.Adam([gain], lr=0.05)
    for _ in range(60):
        opt.zero_grad()
        multires_stft_loss(gain * target, target).backward()
        opt.step()
    assert abs(float(gain.detach()) - 1.0) < 0.1
    with pytest.raises(ValueError, match="two \\[B, T\\] tensors"):
        multires_stft_loss(torch.zeros(2, 10), torch.zeros(2, 11))


def test_configs_reject_a_source_without_pitch_or_beside_the_sine():
    base = get_config("tiny-hn").to_dict()
    with pytest.raises(ValueError, match="needs pitch conditioning"):
        ModelConfig.from_dict({**base, "pitch_conditioning": False})
    with pytest.raises(ValueError, match="exclude each other"):
        ModelConfig.from_dict({**base, "excitation_harmonics": 2})
    old = {k: v for k, v in get_config("live-sine").to_dict().items() if not k.startswith("source_")}
    assert ModelConfig.from_dict(old) == get_config("live-sine")  # configs saved before the source load


def _settings(data, out, **kw):
    s = dict(config="tiny-hn", data=str(data), out=str(out), steps=4, batch_size=2, crop=1024, lr=1e-3,
             checkpoint_every=100, valid_every=100, valid_notes=2, log_every=1, threads=1, progress=False,
             excitation_lock=True)
    s.update(kw)
    return s


def test_training_logs_the_source_loss_and_resumes_exactly(nsynth_tiny, tmp_path):
    straight, split = tmp_path / "straight", tmp_path / "split"
    train(_settings(nsynth_tiny, straight, steps=6, schedule_steps=6))
    train(_settings(nsynth_tiny, split, steps=3, schedule_steps=6))
    train(_settings(nsynth_tiny, split, steps=6), resume=True)
    a, b = ckpt_io.load_checkpoint(straight), ckpt_io.load_checkpoint(split)
    for k in a["model"]:
        torch.testing.assert_close(a["model"][k], b["model"][k], rtol=1e-6, atol=1e-7)
    recs = [json.loads(x) for x in (straight / "metrics.jsonl").read_text().splitlines()]
    spectral = [r["source_loss"] for r in recs if "source_loss" in r]
    assert len(spectral) == 6 and all(np.isfinite(spectral)) and min(spectral) > 0


def test_the_spectral_loss_is_what_teaches_the_source(nsynth_tiny, tmp_path):
    on, off = tmp_path / "on", tmp_path / "off"
    train(_settings(nsynth_tiny, on, steps=2))
    train(_settings(nsynth_tiny, off, steps=2, source_weight=0.0))
    a, b = ckpt_io.load_checkpoint(on)["model"], ckpt_io.load_checkpoint(off)["model"]
    key = "decoder.source_net.net.4.weight"
    assert not torch.equal(a[key], b[key])


def test_a_run_may_start_from_a_sine_runs_weights(nsynth_tiny, tmp_path):
    sine = tmp_path / "sine"
    train(dict(_settings(nsynth_tiny, sine, steps=1), config="tiny", excitation_lock=False))
    hn = tmp_path / "hn"
    train(_settings(nsynth_tiny, hn, steps=1, lr=1e-12, init_from=str(sine)))
    a, b = ckpt_io.load_checkpoint(sine)["ema"]["shadow"], ckpt_io.load_checkpoint(hn)["model"]
    shared = [k for k in a if k in b and a[k].shape == b[k].shape]
    assert len(shared) == len(a)  # tiny and tiny-hn differ by the source only
    for k in shared:
        torch.testing.assert_close(b[k], a[k], rtol=1e-4, atol=1e-6)
    res = pytest.raises(Exception, train, _settings(nsynth_tiny, tmp_path / "bad", init_from=str(tmp_path / "none")))
    assert "--init-from" in str(res.value)


def test_the_decoder_hears_the_source_at_unit_level_and_the_loss_at_its_own():
    torch.manual_seed(5)
    m = WaveNetAutoencoder(get_config("tiny-hn")).eval()
    emb, pitch = torch.randn(2, 16, 3), torch.tensor([45, 64])
    with torch.no_grad():
        unit, sums = m.decoder.source(emb, pitch, 1500, raw=True)
        amps = upsample_frames(m.decoder.source_net(conditioning_input(emb, pitch, True), pitch), 1500, 512)
    norm = torch.sqrt((amps**2).sum(1, keepdim=True))
    torch.testing.assert_close(unit * norm, sums, rtol=1e-4, atol=1e-6)
    # sin and cos of each harmonic are orthogonal over whole periods: the pair's power is 1
    # whatever the level; a louder embedding changes the raw source only.
    power = (unit**2).sum(1).mean(-1)
    assert torch.allclose(power, torch.ones(2), atol=0.05)
    with torch.no_grad():
        logits, raw, frames = m(torch.zeros(2, 1024), pitch, return_excitation=True)
    assert raw.shape == (2, 2, 1024) and logits.shape == (2, 256, 1024) and frames.shape == (2, 8, 2)


def _two_harmonics(n: int = 8000) -> tuple[torch.Tensor, torch.Tensor, float]:
    pitch = torch.tensor([57])
    f0 = float(midi_to_hz(pitch)[0])
    t = torch.arange(n, dtype=torch.float64)
    x = 0.5 * torch.cos(2 * np.pi * f0 * t / 16000 + 0.3) + 0.2 * torch.cos(2 * np.pi * 2 * f0 * t / 16000 - 1.0)
    return x[None], pitch, f0


def test_the_measured_source_recovers_each_harmonics_amplitude_and_phase_from_the_past_only():
    x, pitch, _ = _two_harmonics()
    c, _ = harmonic_baseband(x, pitch, 4)
    np.testing.assert_allclose((2 * c[0, :, 4000].abs()).numpy(), [0.5, 0.2, 0, 0], atol=2e-3)
    np.testing.assert_allclose(torch.angle(c[0, :2, 4000]).numpy(), [0.3, -1.0], atol=5e-3)
    src = measured_source(x.float(), pitch, 4)
    unit = (x / np.sqrt(0.5**2 + 0.2**2)).float()
    torch.testing.assert_close(src[0, 1, 500:], unit[0, 500:], rtol=0, atol=5e-3)  # cos: the waveform itself
    later = x.clone()
    later[:, 3000:] = 0.0  # the source at t never depends on sample t or after
    torch.testing.assert_close(measured_source(later.float(), pitch, 4)[..., :3001], src[..., :3001])


def test_the_harmonic_loss_is_zero_at_the_measured_amplitudes_and_grows_away_from_them():
    x, pitch, _ = _two_harmonics(2048)
    cfg = get_config("tiny-hn")
    c, _ = harmonic_baseband(x, pitch, cfg.source_harmonics, centered=True)
    measured = (2 * c[:, :, :: cfg.hop].abs()).float()
    assert float(harmonic_loss(measured, x, pitch, cfg)) < 1e-6
    assert float(harmonic_loss(measured * 2, x, pitch, cfg)) > 0.1


def test_measured_amplitudes_are_the_centred_sliding_window_at_frame_starts():
    # The frame-start computation against its definition: harmonic_baseband's centred window
    # over every sample, sliced at the frame starts (windows clipped at both ends included).
    torch.manual_seed(0)
    # 21: the widest window, clamped at 2048 samples; 120: no harmonic below Nyquist (all zero).
    pitch = torch.tensor([21, 24, 40, 60, 90, 110, 120])
    for n, hop in ((6144, 512), (5000, 512), (700, 128)):
        x = torch.randn(len(pitch), n)
        c, _ = harmonic_baseband(x, pitch, 48, centered=True)
        ref = (2 * c[:, :, ::hop].abs() * audible(pitch, 48)[:, :, None]).float()
        got = measured_amplitudes(x, pitch, 48, hop)
        assert got.shape == ref.shape == (len(pitch), 48, -(-n // hop))
        torch.testing.assert_close(got, ref, rtol=1e-5, atol=1e-6)
        assert not got[-1].any() and got[0].any()


def test_source_forcing_is_what_the_decoder_hears_and_resumes_exactly(nsynth_tiny, tmp_path):
    on, off = tmp_path / "on", tmp_path / "off"
    train(_settings(nsynth_tiny, on, steps=2, source_forcing=1.0, harmonic_weight=1.0))
    train(_settings(nsynth_tiny, off, steps=2))
    a, b = ckpt_io.load_checkpoint(on)["model"], ckpt_io.load_checkpoint(off)["model"]
    assert not torch.equal(a["decoder.excitation.weight"], b["decoder.excitation.weight"])
    straight, split = tmp_path / "straight", tmp_path / "split"
    kw = dict(source_forcing=0.5, harmonic_weight=0.5)
    train(_settings(nsynth_tiny, straight, steps=4, schedule_steps=4, **kw))
    train(_settings(nsynth_tiny, split, steps=2, schedule_steps=4, **kw))
    train(_settings(nsynth_tiny, split, steps=4), resume=True)
    a, b = ckpt_io.load_checkpoint(straight)["model"], ckpt_io.load_checkpoint(split)["model"]
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=1e-6, atol=1e-7)
    with pytest.raises(Exception, match="source-forcing"):
        train(_settings(nsynth_tiny, tmp_path / "bad", source_forcing=1.5))


def test_fit_source_refits_only_the_source_network_towards_measured_amplitudes(nsynth_tiny, tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    run, out = tmp_path / "run", tmp_path / "fitted"
    train(_settings(nsynth_tiny, run, steps=1))
    script = Path(__file__).resolve().parent.parent / "training" / "fit_source.py"
    res = subprocess.run([sys.executable, str(script), "--run", str(run), "--data", str(nsynth_tiny), "--out", str(out),
                          "--notes", "8", "--steps", "200", "--batch", "8", "--threads", "1"],
                         capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr
    losses = [float(line.rsplit(" ", 1)[1]) for line in res.stdout.splitlines() if "validation loss" in line]
    assert losses[-1] < losses[0]
    a, b = ckpt_io.load_checkpoint(run), ckpt_io.load_checkpoint(out)
    for k in a["model"]:
        same = torch.equal(a["model"][k], b["model"][k])
        assert same != k.startswith("decoder.source_net."), k
        torch.testing.assert_close(b["ema"]["shadow"][k], b["model"][k] if not same else a["ema"]["shadow"][k])
    refit = json.loads((out / "metrics.jsonl").read_text().splitlines()[-1])["source_refit"]
    assert refit["valid_log_amplitude_l1"][1] < refit["valid_log_amplitude_l1"][0]
    for bad in (run, tmp_path, tmp_path / "elsewhere"):  # the run itself, a folder holding it, a non-run folder
        (tmp_path / "elsewhere").mkdir(exist_ok=True)
        (tmp_path / "elsewhere" / "keep.txt").write_text("mine")
        again = subprocess.run([sys.executable, str(script), "--run", str(run), "--data", str(nsynth_tiny), "--out", str(bad)],
                               capture_output=True, text=True, timeout=120)
        assert again.returncode != 0 and f"--out {bad}" in again.stderr, again.stderr
    assert (run / "checkpoint.pt").is_file() and (tmp_path / "elsewhere" / "keep.txt").read_text() == "mine"
