"""The optional sinusoidal excitation: its signal, and streamed == teacher-forced with it."""

import numpy as np
import pytest
import torch

from nsynth_live.autoencoder import WaveNetAutoencoder
from nsynth_live.configs import ModelConfig, get_config
from nsynth_live.excitation import excitation, locked_excitation, midi_to_hz
from nsynth_live.generate import generate_classes, step_logits


def test_signal_frequency_phase_and_nyquist():
    e = excitation(np.array([69, 120]), 16000, harmonics=4)
    assert e.shape == (2, 8, 16000) and e.dtype == np.float32
    assert np.allclose(e[:, :4, 0], 0.0) and np.allclose(e[0, 4:, 0], 1.0)  # phase 0 at the note start
    for h in range(1, 5):
        peak = np.argmax(np.abs(np.fft.rfft(e[0, h - 1])))
        assert peak == 440 * h  # 1 Hz bins
    # MIDI 120 = 8372 Hz: every harmonic is at or above Nyquist, so all are silent.
    assert not e[1].any()


def test_blocks_continue_the_same_signal_and_torch_matches_numpy():
    whole = excitation(np.array([30, 77]), 3000, 3)
    part = excitation(np.array([30, 77]), 1000, 3, start=np.array([2000, 2000]))
    np.testing.assert_allclose(part, whole[:, :, 2000:], atol=1e-6)
    t = excitation(torch.tensor([30, 77]), 3000, 3)
    np.testing.assert_allclose(t.numpy(), whole, atol=1e-6)


def test_locked_excitation_follows_the_notes_own_phase_from_its_past_only():
    n, pitch = 8000, torch.tensor([57, 57, 64])
    f0 = midi_to_hz(pitch)
    t = torch.arange(n, dtype=torch.float64)
    theta = torch.tensor([0.0, 2.0, -1.0], dtype=torch.float64)
    audio = (0.3 * torch.cos(2 * torch.pi * f0[:, None] * t / 16000 + theta[:, None])).float()
    e = locked_excitation(audio, pitch, 2)
    assert e.shape == (3, 4, n) and e.dtype == torch.float32
    # Past the averaging window the fundamental's cos channel *is* the note's waveform, whatever
    # its phase: the relation a decoder can learn once, for every crop.
    np.testing.assert_allclose(0.3 * e[:, 2, 2000:].numpy(), audio[:, 2000:].numpy(), atol=2e-3)
    np.testing.assert_allclose(e[:, 3, 2000:].numpy(), torch.cos(2 * torch.angle(
        torch.exp(1j * (2 * torch.pi * f0[:, None] * t[2000:] / 16000 + theta[:, None])))).numpy(), atol=2e-2)
    # Causal: changing sample 5000 changes nothing up to and including sample 5000.
    bumped = audio.clone()
    bumped[:, 5000] += 0.5
    e2 = locked_excitation(bumped, pitch, 2)
    assert torch.equal(e2[..., :5001], e[..., :5001]) and not torch.equal(e2[..., 5001:], e[..., 5001:])
    # Silence reads as phase 0: the free-running excitation from the crop's first sample.
    quiet = locked_excitation(torch.zeros(3, 1000), pitch, 2)
    np.testing.assert_allclose(quiet.numpy(), excitation(pitch.numpy(), 1000, 2), atol=1e-5)


def test_the_decoder_takes_a_given_excitation_in_place_of_the_free_one():
    torch.manual_seed(3)
    m = WaveNetAutoencoder(get_config("live-sine")).eval()
    audio = 0.2 * torch.sin(torch.arange(2048.0) * 0.07).repeat(2, 1)
    pitch = torch.tensor([50, 62])
    free = excitation(pitch, 2048, 4)
    with torch.no_grad():
        torch.testing.assert_close(m(audio, pitch, None, free), m(audio, pitch), rtol=0, atol=0)
        assert not torch.equal(m(audio, pitch, None, locked_excitation(audio, pitch, 4)), m(audio, pitch))


def test_excitation_needs_pitch_conditioning():
    with pytest.raises(ValueError, match="excitation needs pitch conditioning"):
        ModelConfig.from_dict({**get_config("tiny").to_dict(), "pitch_conditioning": False, "excitation_harmonics": 2})


def test_streamed_steps_equal_teacher_forced_with_excitation():
    torch.manual_seed(1)
    m = WaveNetAutoencoder(get_config("live-sine")).double().eval()
    x = ((torch.randint(0, 256, (2, 1300)) - 128) / 128).double()
    emb = torch.randn(2, 16, 3, dtype=torch.float64)
    pitch = torch.tensor([36, 84])
    with torch.no_grad():
        ref = m.decoder(x, emb, pitch)
        got = step_logits(m, x, emb, pitch)
    torch.testing.assert_close(got, ref, rtol=1e-9, atol=1e-9)


def test_the_excitation_reaches_the_logits_sample_by_sample():
    torch.manual_seed(2)
    m = WaveNetAutoencoder(get_config("live-sine")).eval()
    x = torch.zeros(1, 512)
    emb = torch.zeros(1, 16, 1)
    with torch.no_grad():
        logits = m.decoder(x, emb, torch.tensor([60]))
    # Constant input and conditioning: only the excitation varies within the frame.
    assert logits[0, :, 100:].std(dim=-1).mean() > 1e-4
    a = generate_classes(m, emb, torch.tensor([60]), 256, seed=0)
    b = generate_classes(m, emb, torch.tensor([60]), 256, seed=0)
    assert torch.equal(a, b)


def test_fused_engine_with_excitation_generates_the_reference_classes():
    import dataclasses

    from nsynth_live.host.engines.fused_engine import FusedEngine
    from nsynth_live import sampling

    cfg = dataclasses.replace(get_config("tiny"), name="tiny-exc", excitation_harmonics=2)
    torch.manual_seed(4)
    m = WaveNetAutoencoder(cfg).eval()
    w = m.decoder.step_weights().arrays()
    n, pitch = 1500, np.array([45, 81])
    emb = torch.randn(2, 16, 3)
    ref = generate_classes(m, emb, torch.from_numpy(pitch), n, seed=7).numpy()
    eng = FusedEngine(cfg, w, max_voices=2, threads=1)
    cond = m.decoder.condition(emb, torch.from_numpy(pitch)).numpy()
    noise = sampling.NoiseStream(7, [0, 1]).draw(n)
    exc = excitation(pitch, n, 2).transpose(0, 2, 1)  # [V, n, E]
    out = np.empty((2, n), np.int64)
    logits = np.empty((2, n, 256), np.float32)
    padded = np.concatenate([cond, cond[:, -1:]], 1)
    for t0 in range(0, n, 300):  # blocks that straddle frame boundaries
        k = min(300, n - t0)
        f = t0 // 512
        switch = np.full(2, 512 - t0 % 512)
        lo = np.empty((2, k, 256), np.float32)
        out[:, t0 : t0 + k] = eng.generate([0, 1], padded[:, f : f + 2], switch, noise[:, t0 : t0 + k],
                                           logits_out=lo, exc=np.ascontiguousarray(exc[:, t0 : t0 + k]))
        logits[:, t0 : t0 + k] = lo
    eng.close()
    # Identical, or (the engine adds the excitation in another order) the first difference is a
    # float near-tie.
    from test_engine_fused import first_difference_is_a_near_tie

    first_difference_is_a_near_tie(m.decoder, emb, torch.from_numpy(pitch), out, ref, noise, logits)


@pytest.mark.parametrize("kind", ["ort", "fused"])
def test_exported_model_with_excitation_plays_the_reference_on_both_engines(kind, tmp_path):
    import dataclasses

    from nsynth_live.exporters.export import export_model
    from nsynth_live.host.engines import open_engine, render_frames
    from nsynth_live import sampling

    cfg = dataclasses.replace(get_config("tiny"), name="tiny-exc", excitation_harmonics=3)
    torch.manual_seed(5)
    m = WaveNetAutoencoder(cfg).eval()
    export = export_model(m, tmp_path / "exp")
    n, pitch = 1200, np.array([50, 70])
    emb = torch.randn(2, 16, 3)
    ref = generate_classes(m, emb, torch.from_numpy(pitch), n, seed=3).numpy()
    with open_engine(export, kind, max_voices=2) as eng:
        slots = [eng.add_voice(), eng.add_voice()]
        cond = eng.condition(emb.numpy(), pitch)
        logits = np.empty((2, n, 256), np.float32)
        noise = sampling.NoiseStream(3, [0, 1]).draw(n)
        out = render_frames(eng, slots, cond, n, noise, block=200, logits_out=logits, pitch=pitch)
        with pytest.raises(ValueError, match="needs its excitation"):
            eng.render(slots, np.concatenate([cond[:, :1]] * 2, 1), [n, n], noise[:, :10])
    from test_engine_fused import first_difference_is_a_near_tie

    first_difference_is_a_near_tie(m.decoder, emb, torch.from_numpy(pitch), out, ref, noise, logits)
