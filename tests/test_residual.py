"""The residual form (``source_residual``): the decoder reads and predicts the note less its
source, training scores that residual, and every renderer (PyTorch, both engines, render-bank, the
live host) puts the note back together as source + residual, alike (real exports, real ONNX
Runtime sessions)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from nsynth_live import checkpoint as ckpt_io
from nsynth_live import mulaw, sampling
from nsynth_live.autoencoder import WaveNetAutoencoder
from nsynth_live.configs import ModelConfig, get_config
from nsynth_live.decoder import conditioning_input
from nsynth_live.excitation import free_phase, harmonic_source, measured_source, upsample_frames
from nsynth_live.exporters.export import export_model
from nsynth_live.generate import generate, generate_classes
from nsynth_live.host import render_bank as rb
from nsynth_live.host.bank import Bank, Preset, load_bank, save_bank
from nsynth_live.host.engines import note_audio, open_engine, render_frames
from nsynth_live.residual import IN_PHASE, add_source, in_phase, residual
from nsynth_live.train import train

FRAMES = 12


def _model(name: str = "tiny-hn-res", seed: int = 0) -> WaveNetAutoencoder:
    torch.manual_seed(seed)
    model = WaveNetAutoencoder(get_config(name)).eval()
    with torch.no_grad():  # a source loud enough to matter, heard by the decoder
        model.decoder.excitation.weight.mul_(20)
        model.decoder.source_net.net[4].bias[0] += 2.0  # the level logit: ~0.3 instead of ~0.01
    return model


@pytest.fixture(scope="module")
def model_and_export(tmp_path_factory):
    model = _model()
    return model, export_model(model, tmp_path_factory.mktemp("residual") / "model")


def test_residual_and_add_source_invert_each_other_within_full_scale():
    rng = np.random.default_rng(0)
    x = (rng.random((2, 50)) * 1.6 - 0.8).astype(np.float32)
    s = (rng.random((2, 50)) * 0.4 - 0.2).astype(np.float32)
    np.testing.assert_allclose(add_source(residual(x, s), s), x, rtol=0, atol=1e-6)
    xt, st = torch.from_numpy(x), torch.from_numpy(s)
    torch.testing.assert_close(add_source(residual(xt, st), st), xt)
    loud = np.array([[0.9, -0.9]], np.float32)
    assert np.array_equal(add_source(loud, np.array([[0.5, -0.5]], np.float32)), [[1.0, -1.0]])  # clipped
    assert np.array_equal(residual(loud, np.array([[-0.5, 0.5]], np.float32)), [[1.0, -1.0]])


def test_the_in_phase_channel_of_a_measured_source_cancels_the_note():
    """The residual is the note less the source's cosine sum: for a note of three harmonics at their
    own phases, far below the note; the sine sum (the quadrature) would leave more than the note."""
    t = np.arange(16000) / 16000.0
    f0 = 220.0
    note = sum(a * np.cos(2 * np.pi * k * f0 * t + phi) for k, a, phi in ((1, 0.3, 0.4), (2, 0.2, 2.0), (3, 0.1, -1.0)))
    x = torch.from_numpy(note[None].astype(np.float32))
    _, level = measured_source(x, torch.tensor([57]), 8, raw=True)  # MIDI 57: 220 Hz
    seg = slice(2000, 16000)
    rms = lambda a: float(np.sqrt(np.mean(np.asarray(a)[seg] ** 2)))  # noqa: E731
    assert rms(residual(x, in_phase(level))[0]) < 0.05 * rms(note)
    assert rms(residual(x, level[:, 1 - IN_PHASE])[0]) > rms(note)


def test_configs_take_the_residual_form_only_with_a_learned_source():
    base = get_config("tiny-hn-res").to_dict()
    assert base["source_residual"] is True
    with pytest.raises(ValueError, match="source_residual needs a learned source"):
        ModelConfig.from_dict({**base, "source_harmonics": 0})
    with pytest.raises(ValueError, match="true or false"):
        ModelConfig.from_dict({**base, "source_residual": 1})
    old = {k: v for k, v in get_config("live-hn").to_dict().items() if k != "source_residual"}
    assert ModelConfig.from_dict(old).source_residual is False  # exports written before it load as before


def test_the_decoder_reads_and_predicts_the_note_less_its_source():
    model = _model()
    plain = WaveNetAutoencoder(ModelConfig.from_dict({**model.cfg.to_dict(), "source_residual": False})).eval()
    plain.load_state_dict(model.state_dict())
    rng = np.random.default_rng(1)
    audio = torch.from_numpy((0.3 * rng.standard_normal((2, 1024))).astype(np.float32))
    pitch = torch.tensor([48, 67])
    with torch.no_grad():
        logits, src, _ = model(audio, pitch, return_excitation=True)
        emb = model.encode(audio)
        heard = model.decoder.source(emb, pitch, 1024)
        r = (audio - src[:, 1]).clamp(-1, 1)  # the cosine sum: the channel in phase with the note
        expected = model.decoder(mulaw.to_input(mulaw.encode(r)), emb, pitch, exc=heard)
        torch.testing.assert_close(logits, expected)
        torch.testing.assert_close(model.decoder_target(audio, src), r)
        assert float(src[:, 1].abs().max()) > 0.05  # the source is not negligible, so the forms differ
        assert not torch.allclose(plain(audio, pitch), logits)
        assert plain.decoder_target(audio, src) is audio


def test_forced_crops_hear_and_subtract_the_measured_source():
    model = _model()
    rng = np.random.default_rng(3)
    audio = torch.from_numpy((0.3 * rng.standard_normal((2, 1024))).astype(np.float32))
    pitch = torch.tensor([48, 67])
    unit, level = measured_source(audio, pitch, model.cfg.source_harmonics, raw=True)
    torch.testing.assert_close(unit, measured_source(audio, pitch, model.cfg.source_harmonics))
    mask = torch.tensor([True, False])
    forced = (mask, unit, level)
    with torch.no_grad():
        logits, src, _ = model(audio, pitch, forced=forced, return_excitation=True)
        target = model.decoder_target(audio, src, forced)
        torch.testing.assert_close(target[0], (audio[0] - level[0, 1]).clamp(-1, 1))  # the measured source's residual
        torch.testing.assert_close(target[1], (audio[1] - src[1, 1]).clamp(-1, 1))  # the learned one's
        emb = model.encode(audio)
        heard = torch.where(mask[:, None, None], unit, model.decoder.source(emb, pitch, 1024))
        expected = model.decoder(mulaw.to_input(mulaw.encode(target)), emb, pitch, exc=heard)
        torch.testing.assert_close(logits, expected)
    assert not torch.allclose(level[0, 1], src[0, 1], atol=1e-3)  # so the two residuals differ


def test_training_scores_the_residual(nsynth_tiny, tmp_path):
    s = dict(config="tiny-hn-res", data=str(nsynth_tiny), out=str(tmp_path / "run"), steps=2, batch_size=2,
             crop=1024, lr=1e-3, checkpoint_every=100, valid_every=2, valid_notes=2, log_every=1, threads=1,
             progress=False, excitation_lock=True, source_forcing=0.5)
    train(s)
    recs = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    steps = [r for r in recs if "loss_bits" in r]
    assert len(steps) == 2 and all(np.isfinite(r["loss_bits"]) for r in steps)
    valid = [r["valid_bits"] for r in recs if "valid_bits" in r]
    assert len(valid) == 1 and np.isfinite(valid[0])
    assert ckpt_io.load_checkpoint(tmp_path / "run")["config"]["source_residual"] is True


def test_a_training_step_scores_the_residual_of_the_source_its_crops_hear(nsynth_tiny, tmp_path):
    from nsynth_live.train import Trainer, nll_bits

    s = dict(config="tiny-hn-res", data=str(nsynth_tiny), out=str(tmp_path / "step"), steps=1, batch_size=2,
             crop=1024, lr=1e-12, checkpoint_every=100, valid_every=100, valid_notes=2, log_every=1, threads=1,
             progress=False, excitation_lock=True, source_forcing=0.5, input_noise=0.1)
    tr = Trainer(s)
    with torch.no_grad():  # logits far from uniform, so that what is scored matters
        for w in tr.model.decoder.parameters():
            w.mul_(2.0)
    batch = next(tr._batches())
    audio, pitch = batch["audio"], batch["pitch"]
    noise, forced = tr._input_noise(audio.shape), tr._forced_source(audio, pitch)  # pure functions of the step
    with torch.no_grad(), tr._autocast():  # the step's own precision
        logits, source, _ = tr._forward(tr.model, audio, pitch, noise, forced)
        residual_bits = float(nll_bits(logits, tr.model.decoder_target(audio, source, forced)))
        note_bits = float(nll_bits(logits, audio))
    got = tr.train_step(batch)
    assert abs(got - residual_bits) < 1e-4 * residual_bits
    assert abs(got - note_bits) > 0.05  # scoring the note itself would be another figure


def test_generate_plays_the_sampled_residual_over_the_source_at_its_level():
    model = _model()
    rng = np.random.default_rng(2)
    emb = torch.from_numpy(rng.standard_normal((2, 16, 3)).astype(np.float32))
    pitch = torch.tensor([50, 72])
    n = 1200
    audio = generate(model, emb, pitch, n, seed=3).numpy()
    sampled = mulaw.decode(generate_classes(model, emb, pitch, n, seed=3)).numpy()
    # The source rebuilt from the source network's amplitudes with the numpy synthesis.
    with torch.no_grad():
        amps = model.decoder.source_net(conditioning_input(emb, pitch, True), pitch).numpy()  # [B, K, F]
    src = harmonic_source(upsample_frames(amps, n, 512), free_phase(pitch.numpy(), n))[:, 1]  # the cosine sum
    np.testing.assert_allclose(audio, np.clip(sampled + src, -1, 1), rtol=0, atol=2e-6)
    assert np.abs(src).max() > 0.05


@pytest.mark.parametrize("kind", ["fused", "ort"])
def test_engines_render_the_notes_pytorch_renders(model_and_export, kind):
    model, export = model_and_export
    rng = np.random.default_rng(4)
    emb = rng.standard_normal((3, 16, 4)).astype(np.float32)
    pitch = np.array([40, 64, 88])
    n, seed = 1800, 5
    expected = generate(model, torch.from_numpy(emb), torch.from_numpy(pitch), n, seed=seed).numpy()
    with open_engine(export, kind, max_voices=3, threads=1) as eng:
        slots = [eng.add_voice() for _ in range(3)]
        amps = eng.source_amplitudes(emb, pitch)
        classes = render_frames(eng, slots, eng.condition(emb, pitch), n, sampling.NoiseStream(seed, range(3)), 1.0,
                                pitch=pitch, amplitudes=amps)
        got = note_audio(eng.cfg, classes, amps, pitch)
        with pytest.raises(ValueError, match="amplitudes"):
            note_audio(eng.cfg, classes, None, pitch)
    np.testing.assert_allclose(got, expected, rtol=0, atol=3e-6)
    assert np.abs(got - mulaw.decode(classes)).max() > 0.05  # the source is there


def test_the_live_host_plays_a_residual_model_as_render_bank_does(model_and_export, tmp_path):
    from nsynth_live.host import events as ev
    from nsynth_live.host.synth import Synth

    _, export = model_and_export
    e = np.random.default_rng(5).standard_normal((FRAMES, 16)).astype(np.float32)
    regions = {"sustain_start": 2, "sustain_end": 5, "release_start": 8}
    save_bank(Bank(tmp_path / "solo", "solo", 512, 16000, 16, FRAMES, [Preset("solo", e, 60, regions=regions)]))
    bank = load_bank(tmp_path / "solo")
    n, hold = rb.note_lengths(0.5)
    frames, _ = rb.note_frames(regions, FRAMES, 512, n, hold)
    same = (int(np.argmax(frames == regions["release_start"])) - 1) * 512  # before the key-up's frame
    with open_engine(export, "fused", max_voices=2, threads=1) as eng:
        ours = rb.render_notes(eng, [rb.Item(rb.preset_sounds(bank)[0], 1)], n, hold, 11, 1.0)[0]
        synth = Synth(eng, bank, voices=1, seed=11)
        synth.apply(ev.NoteOn(1, 127), strict=True)
        host = np.concatenate([synth.render(b) for b in [100, 412, 300, 212, 512] + [256] * ((hold - 1536) // 256 + 1)])
        # The same note's classes alone (pitch 1, note id 1: the synth's first note on key 1).
        slot = eng.add_voice()
        sampled = rb.stream_classes(eng, [slot], np.ascontiguousarray(bank.presets[0].embedding[frames].T[None]),
                                    np.array([1]), same, sampling.NoiseStream(11, [1]), 1.0, 1.0)
    np.testing.assert_allclose(host[:same], np.tanh(ours[:same]), rtol=0, atol=3e-7)
    assert np.abs(ours[:same] - mulaw.decode(sampled[0])).max() > 0.05  # render-bank adds the source too


def test_an_exports_teacher_forced_nll_is_the_runs(model_and_export):
    """evaluate scores a residual-form export as it scores the run: the residual of the learned
    source on the note's locked phase, through ONNX Runtime, equal to PyTorch's."""
    from nsynth_live.evaluate import EngineBackend, TorchBackend

    model, export = model_and_export
    rng = np.random.default_rng(7)
    t = np.arange(2048) / 16000.0
    audio = np.stack([0.3 * np.cos(2 * np.pi * 220 * t), 0.2 * np.cos(2 * np.pi * 330 * t + 1.0)]).astype(np.float32)
    audio += 0.01 * rng.standard_normal(audio.shape).astype(np.float32)
    pitch = np.array([57, 64])
    ref, _ = TorchBackend(model).nll_and_embedding(audio, pitch)
    got, _ = EngineBackend(export, "ort", max_voices=2).nll_and_embedding(audio, pitch)
    np.testing.assert_allclose(got, ref, rtol=1e-4)
    plain = WaveNetAutoencoder(ModelConfig.from_dict({**model.cfg.to_dict(), "source_residual": False})).eval()
    plain.load_state_dict(model.state_dict())
    assert np.abs(TorchBackend(plain).nll_and_embedding(audio, pitch)[0] - ref).max() > 0.05  # another target
