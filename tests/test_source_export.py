"""A learned-source model through export and host: source.onnx equals SourceNet, the host's
excitation equals the decoder's source, the engines generate what PyTorch generates, and the live
host and render-bank play it alike (real exports, real ONNX Runtime sessions)."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch

from nsynth_live import sampling
from nsynth_live.autoencoder import WaveNetAutoencoder
from nsynth_live.configs import get_config
from nsynth_live.decoder import conditioning_input
from nsynth_live.errors import UserError
from nsynth_live.excitation import upsample_frames
from nsynth_live.exporters.export import export_model
from nsynth_live.generate import generate_classes
from nsynth_live.host import render_bank as rb
from nsynth_live.host.bank import Bank, Preset, load_bank, save_bank
from nsynth_live.host.engines import open_engine, render_frames, voice_excitation
from nsynth_live.host.engines.block_source import glide
from nsynth_live.host.model_files import load_export

FRAMES = 12
SHORT = {"sustain_start": 2, "sustain_end": 5, "release_start": 8}


@pytest.fixture(scope="module")
def model_and_export(tmp_path_factory):
    torch.manual_seed(0)
    model = WaveNetAutoencoder(get_config("tiny-hn")).eval()
    with torch.no_grad():  # a source the decoder really hears (random init barely does)
        model.decoder.excitation.weight.mul_(20)
    return model, export_model(model, tmp_path_factory.mktemp("source") / "model")


def _torch_amplitudes(model, emb, pitch):
    with torch.no_grad():
        c = conditioning_input(torch.from_numpy(emb), torch.from_numpy(pitch), True)
        return model.decoder.source_net(c, torch.from_numpy(pitch)).numpy().transpose(0, 2, 1)  # [B, F, K]


def test_source_graph_equals_the_source_net_and_silences_pitches_without_harmonics(model_and_export):
    model, export = model_and_export
    info = load_export(export)
    assert info.source is not None and info.source.name == "source.onnx"
    rng = np.random.default_rng(1)
    emb = rng.standard_normal((4, 16, 5)).astype(np.float32)
    pitch = np.array([21, 60, 100, 127])  # 127: even the fundamental is above Nyquist
    with open_engine(info, "ort", max_voices=1, threads=1) as eng:
        got = eng.source_amplitudes(emb, pitch)
    ref = _torch_amplitudes(model, emb, pitch)
    assert got.shape == (4, 5, 8)
    np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-6)
    assert np.all(np.isfinite(ref)) and np.all(got[3] == 0) and np.all(ref[3] == 0)
    assert np.all(got[1] > 0)  # MIDI 60: all 8 harmonics below 8 kHz


def test_a_source_export_without_its_source_graph_is_refused_naming_the_file(model_and_export, tmp_path):
    _, export = model_and_export
    broken = tmp_path / "broken"
    shutil.copytree(export, broken)
    (broken / "source.onnx").unlink()
    with pytest.raises(UserError, match="source.onnx"):
        load_export(broken)


def test_host_excitation_equals_the_decoders_source_in_any_blocks(model_and_export):
    model, export = model_and_export
    cfg = model.cfg
    rng = np.random.default_rng(2)
    emb = rng.standard_normal((2, 16, 4)).astype(np.float32)
    pitch = np.array([45, 81])
    n = 1900
    with torch.no_grad():
        ref = model.decoder.source(torch.from_numpy(emb), torch.from_numpy(pitch), n).numpy().transpose(0, 2, 1)
    with open_engine(export, "ort", max_voices=1, threads=1) as eng:
        amps = eng.source_amplitudes(emb, pitch)
    whole = voice_excitation(cfg, pitch, 0, n, amplitudes=amps)
    np.testing.assert_allclose(whole, ref, rtol=0, atol=2e-6)
    cuts = [0, 100, 612, 1024, 1300, n]
    blocks = np.concatenate([voice_excitation(cfg, pitch, a, b - a, amplitudes=amps) for a, b in zip(cuts, cuts[1:])], 1)
    np.testing.assert_array_equal(blocks, whole)
    np.testing.assert_allclose(voice_excitation(cfg, pitch, 0, n, 2.5, amps), 2.5 * whole, rtol=1e-6, atol=1e-7)
    with pytest.raises(ValueError, match="amplitudes"):
        voice_excitation(cfg, pitch, 0, n)


def test_block_rows_glide_as_the_whole_notes_upsampling():
    rng = np.random.default_rng(3)
    frames = rng.random((2, 4, 3)).astype(np.float32)  # [V, K, F]
    hop = 8
    whole = upsample_frames(frames, 3 * hop, hop)  # [V, K, n]
    # A block from sample 5 to 13: 3 samples of frame 0 (towards 1), then 5 of frame 1 (towards 2).
    rows = np.stack([frames[..., 0], frames[..., 1], frames[..., 1], frames[..., 2]], 1)  # [V, 4, K]
    ia, ib, w = glide(np.array([5, 5]), np.array([3, 3]), 8, hop)
    v = np.arange(2)[:, None]
    got = rows[v, ia] * (1 - w[..., None]) + rows[v, ib] * w[..., None]  # [V, n, K]
    np.testing.assert_allclose(got.transpose(0, 2, 1), whole[..., 5:13], rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("kind", ["fused", "ort"])
def test_engines_generate_what_pytorch_generates_with_a_learned_source(model_and_export, kind):
    model, export = model_and_export
    rng = np.random.default_rng(4)
    emb = rng.standard_normal((3, 16, 4)).astype(np.float32)
    pitch = np.array([40, 64, 88])
    n, seed = 1800, 5
    expected = generate_classes(model, torch.from_numpy(emb), torch.from_numpy(pitch), n, seed=seed).numpy()
    with open_engine(export, kind, max_voices=3, threads=1) as eng:
        slots = [eng.add_voice() for _ in range(3)]
        got = render_frames(eng, slots, eng.condition(emb, pitch), n, sampling.NoiseStream(seed, range(3)), 1.0,
                            pitch=pitch, amplitudes=eng.source_amplitudes(emb, pitch))
    assert len(np.unique(got)) > 10
    # Identical in practice (near-ties aside, which these 5,400 draws do not hit).
    np.testing.assert_array_equal(got, expected)
    without = generate_classes(model, torch.from_numpy(emb), torch.from_numpy(np.array([40, 64, 89])), n, seed=seed)
    assert (without.numpy()[2] != expected[2]).any()  # the pitch's source reaches the samples


def _render(synth, blocks: list[int], start: int, stop: int) -> list[np.ndarray]:
    """The synth's output from sample ``start`` to ``stop``: blocks of the given sizes (they
    straddle frame boundaries), then blocks of 256."""
    out, now = [], start
    for block in blocks:
        out.append(synth.render(block))
        now += block
    while now < stop:
        out.append(synth.render(min(256, stop - now)))
        now += out[-1].shape[0]
    return out


def test_the_live_host_plays_a_source_model_as_render_bank_does_until_the_key_up(model_and_export, tmp_path):
    """Synth and render-bank glide the source's amplitudes alike; at the key-up the live host
    cannot know the release frame in advance, so from that frame on the two may part."""
    from nsynth_live.host import events as ev
    from nsynth_live.host.synth import Synth

    _, export = model_and_export
    e = np.random.default_rng(5).standard_normal((FRAMES, 16)).astype(np.float32)
    save_bank(Bank(tmp_path / "solo", "solo", 512, 16000, 16, FRAMES, [Preset("solo", e, 60, regions=SHORT)]))
    bank = load_bank(tmp_path / "solo")
    n, hold = rb.note_lengths(0.5)
    frames, _ = rb.note_frames(SHORT, FRAMES, 512, n, hold)
    key_up_frame = int(np.argmax(frames == SHORT["release_start"])) - 1  # the frame the key goes up in
    with open_engine(export, "fused", max_voices=2, threads=1) as eng:
        item = rb.Item(rb.preset_sounds(bank)[0], 1)  # note id 1, the synth's first note
        ours = rb.render_notes(eng, [item], n, hold, 11, 1.0)[0]
        synth = Synth(eng, bank, voices=1, seed=11)
        synth.apply(ev.NoteOn(1, 127), strict=True)
        host = np.concatenate(_render(synth, [100, 412, 300, 212, 512, 256, 256], 0, hold))
    same = key_up_frame * 512
    assert np.any(ours[:same] != 0)
    np.testing.assert_allclose(host[:same], np.tanh(ours[:same]), rtol=0, atol=2e-7)


def test_two_source_voices_started_apart_each_play_their_own_note(model_and_export, tmp_path):
    """Polyphony with a learned source: voices crossing frames at different samples keep their own
    amplitude glides (the mix equals each note rendered alone, shifted to its note-on)."""
    from nsynth_live.host import events as ev
    from nsynth_live.host.synth import Synth

    _, export = model_and_export
    e = np.random.default_rng(6).standard_normal((FRAMES, 16)).astype(np.float32)
    save_bank(Bank(tmp_path / "duo", "duo", 512, 16000, 16, FRAMES, [Preset("duo", e, 60, regions=SHORT)]))
    bank = load_bank(tmp_path / "duo")
    n, late = 6000, 300
    with open_engine(export, "fused", max_voices=2, threads=1) as eng:
        sound = rb.preset_sounds(bank)[0]
        items = [rb.Item(sound, 1), rb.Item(sound, 2)]  # note ids 1 and 2: the synth's first two notes
        assert [it.note_id for it in items] == [1, 2]
        alone = rb.render_notes(eng, items, n, n, 13, 1.0)  # keys held to the end
        synth = Synth(eng, bank, voices=2, seed=13)
        synth.apply(ev.NoteOn(1, 127), strict=True)
        out = [synth.render(late)]
        synth.apply(ev.NoteOn(2, 127), strict=True)
        host = np.concatenate(out + _render(synth, [200, 512, 37, 475, 256], late, n))
    expected = alone[0].copy()
    expected[late:] += alone[1][: n - late]
    assert np.any(alone[1] != 0)
    # Up to the offline render's last frame start: there it holds the amplitudes (it conditions no
    # frame past the note's end), where the live host glides on towards the next frame.
    last = (n // 512) * 512
    np.testing.assert_allclose(host[:last], np.tanh(expected[:last]), rtol=0, atol=3e-7)
