"""The optional sinusoidal excitation: its signal, and streamed == teacher-forced with it."""

import numpy as np
import pytest
import torch

from nsynth_live.autoencoder import WaveNetAutoencoder
from nsynth_live.configs import ModelConfig, get_config
from nsynth_live.excitation import excitation
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
