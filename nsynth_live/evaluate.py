"""Held-out reconstruction figures: NLL, pitch accuracy, spectral distance, rainbowgrams.

Each held-out note is encoded, then decoded sample by sample from its embedding (pitch
conditioning from the dataset's metadata, starting from silence), and compared with the
original. Beside the model stands a trivial baseline — mu-law white noise shaped by the original
note's loudness envelope — so every figure has a floor to beat.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from nsynth_live import SAMPLE_RATE, mulaw
from nsynth_live.atomic import atomic_write_text
from nsynth_live.errors import UserError
from nsynth_live.pitch import cents_off, note_f0
from nsynth_live.sampling import Decoding
from nsynth_live.spectral import multires_spectral_distance, plot_rainbowgrams
from nsynth_live.wav import write_wav

LN2 = math.log(2.0)
IN_TUNE_CENTS = 50.0


@dataclass
class NoteResult:
    note_str: str
    pitch: int
    nll_bits: float
    recon_cents: float | None  # None: no pitch found in the reconstruction
    baseline_cents: float | None
    recon_spectral: float
    baseline_spectral: float


class TorchBackend:
    """A training run's EMA weights in PyTorch."""

    def __init__(self, model: torch.nn.Module):
        self.model = model
        self.cfg = model.cfg
        self.decoding = Decoding()  # a training run recommends nothing: temperature 1, gain 1

    @torch.no_grad()
    def nll_and_embedding(self, audio: np.ndarray, pitch: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        x = torch.from_numpy(audio)
        p = None if pitch is None else torch.from_numpy(pitch)
        if self.cfg.source_residual:
            # As training measures it: the residual of the source on the note's locked phase (on
            # the free-running one it would carry the source's phase error as well).
            from nsynth_live.excitation import locked_phase

            logits, src, _ = self.model(x, p, phase=locked_phase(x, p), return_excitation=True)
            target = self.model.decoder_target(x, src)
        else:
            logits, target = self.model(x, p), x
        nll = torch.nn.functional.cross_entropy(logits, mulaw.encode(target), reduction="none").mean(-1) / LN2
        return nll.numpy(), self.model.encode(x).numpy()

    @torch.no_grad()
    def generate(self, emb: np.ndarray, pitch: np.ndarray | None, n: int, seed: int, decoding: Decoding,
                 voices: list[int]) -> np.ndarray:
        from nsynth_live.generate import generate

        p = None if pitch is None else torch.from_numpy(pitch)
        return generate(self.model, torch.from_numpy(emb), p, n, seed=seed, temperature=decoding.temperature,
                        voices=voices, excitation_gain=decoding.excitation_gain).numpy()


class RunFusedBackend(TorchBackend):
    """A training run's EMA weights streamed by the fused CPU engine (tens of times faster than
    PyTorch's step loop), for judging candidates that are not exported (or cannot be yet).

    PyTorch computes what is per frame or per note (the conditioning rows and, for a learned
    source, the whole excitation); the engine runs the per-sample network from the same fused
    matrices the export would carry (:meth:`nsynth_live.decoder.Decoder.step_weights`).
    """

    def __init__(self, model: torch.nn.Module, max_voices: int = 16, threads: int = 2):
        from nsynth_live.host.engines.fused_engine import FusedEngine

        super().__init__(model)
        weights = model.decoder.step_weights().arrays()
        self.fused = FusedEngine(self.cfg, weights, max_voices=max_voices, threads=threads)

    def render(self, slots, cond, switch, noise, temperature=1.0, logits_out=None, exc=None):
        """The engine interface :func:`~nsynth_live.host.engines.render_frames` drives."""
        temp = np.full(len(slots), float(temperature))
        return self.fused.generate(np.asarray(slots), cond, switch, noise, temp, logits_out=logits_out, exc=exc)

    @torch.no_grad()
    def generate(self, emb: np.ndarray, pitch: np.ndarray | None, n: int, seed: int, decoding: Decoding,
                 voices: list[int], source_frames: np.ndarray | None = None,
                 harmonics: np.ndarray | None = None, noise: np.ndarray | None = None) -> np.ndarray:
        """As :meth:`TorchBackend.generate`; ``source_frames`` [B, K, F]: harmonic amplitudes
        replacing the source network's (a learned source only; :mod:`nsynth_live.source_diagnosis`);
        ``harmonics`` [B, F, K']: the notes' measured harmonics, played at their pitch in its place
        (:func:`nsynth_live.harmonics.at_pitch`); ``noise`` [B, F, BANDS]: their measured noise
        bands, added to a residual-form model's notes (:func:`added_noise`)."""
        from nsynth_live import sampling
        from nsynth_live.host.engines import render_frames

        if harmonics is not None and self.cfg.source_harmonics:
            from nsynth_live.harmonics import at_pitch

            source_frames = at_pitch(harmonics, pitch, self.cfg.source_harmonics).transpose(0, 2, 1)

        decoder = self.model.decoder
        e = torch.from_numpy(emb)
        p = None if pitch is None else torch.from_numpy(np.asarray(pitch, np.int64))
        cond = decoder.condition(e, p).float().numpy()
        exc = raw = None
        if self.cfg.source_harmonics:
            frames = None if source_frames is None else torch.from_numpy(np.asarray(source_frames, np.float32))
            unit, raw = decoder.source(e, p, n, frames=frames, raw=True)  # [B, 2, n] each
            exc = np.ascontiguousarray((unit * float(decoding.excitation_gain)).float().numpy().transpose(0, 2, 1))
        slots = list(range(cond.shape[0]))
        self.fused.reset(np.asarray(slots))  # every note starts from silence
        classes = render_frames(self, slots, cond, n, sampling.NoiseStream(seed, voices), decoding.temperature,
                                pitch=pitch, excitation_gain=decoding.excitation_gain, excitation=exc)
        if self.cfg.source_residual:
            from nsynth_live.residual import add_source, in_phase

            source = in_phase(raw).float().numpy()
            if noise is not None:
                source = source + added_noise(noise, n, self.cfg.hop, seed, voices)
            return add_source(mulaw.decode(classes), source)
        return mulaw.decode(classes)


class EngineBackend:
    """An ONNX export through a host engine (no torch needed): the NLL is the engine's
    teacher-forced logits, the reconstruction its generation with the same noise rule."""

    def __init__(self, export: Path, kind: str = "auto", max_voices: int = 8):
        from nsynth_live.host.engines import open_engine

        self.engine = open_engine(export, kind, max_voices=max_voices)
        self.cfg = self.engine.cfg
        self.decoding = self.engine.decoding

    def nll_and_embedding(self, audio: np.ndarray, pitch: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        """Teacher-forced NLL [B] (bits/sample) of ``audio`` [B, T] and its embedding, block by
        block: each block's logits are reduced at once, never kept for the whole note."""
        from nsynth_live.host.engines import voice_excitation

        eng, hop = self.engine, self.cfg.hop
        emb = eng.encode(audio)
        cond = eng.condition(emb, pitch)
        amps = eng.source_amplitudes(emb, pitch) if self.cfg.source_harmonics else None
        heard = None
        if self.cfg.source_residual:
            heard, target = self._residual(audio, pitch, amps)
            classes = mulaw.encode(target)
        else:
            classes = mulaw.encode(audio)
        b, n = classes.shape
        padded = np.concatenate([cond, cond[:, -1:]], 1)
        nats = np.zeros(b)
        slots = [eng.add_voice() for _ in range(b)]
        try:
            for t0 in range(0, n, hop):
                k = min(hop, n - t0)
                f = t0 // hop
                if heard is not None:
                    exc = np.ascontiguousarray(heard[:, t0 : t0 + k])
                else:
                    exc = voice_excitation(self.cfg, pitch, t0, k, amplitudes=amps) if self.cfg.excitation_channels else None
                logits = np.empty((b, k, 256), np.float32)
                eng.render(slots, padded[:, f : f + 2], np.full(b, hop), np.full((b, k), 0.5), logits_out=logits,
                           feed=classes[:, t0 : t0 + k], exc=exc)
                z = logits.astype(np.float64)
                m = z.max(-1, keepdims=True)
                logz = m[..., 0] + np.log(np.exp(z - m).sum(-1))
                picked = np.take_along_axis(z, classes[:, t0 : t0 + k, None], -1)[..., 0]
                nats += (logz - picked).sum(-1)
        finally:
            for slot in slots:
                eng.remove_voice(slot)
        return nats / n / LN2, emb

    def _residual(self, audio: np.ndarray, pitch: np.ndarray, amps: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """A residual-form export's teacher-forced inputs, as training and :class:`TorchBackend`
        measure them: the learned source on the note's locked phase (the free-running one would
        leave the source's phase error in the residual), heard at unit level [B, T, 2], and the
        note less its in-phase sum [B, T]."""
        from nsynth_live.excitation import locked_phase, upsample_frames
        from nsynth_live.host.engines import source_excitation
        from nsynth_live.residual import residual

        phase = locked_phase(torch.from_numpy(np.asarray(audio, np.float32)), torch.from_numpy(np.asarray(pitch))).numpy()
        up = upsample_frames(np.asarray(amps, np.float32).transpose(0, 2, 1), audio.shape[-1], self.cfg.hop)
        heard, level = source_excitation(up, pitch, 0, with_level=True, phase=phase)
        return heard, residual(np.asarray(audio, np.float32), level)

    def generate(self, emb, pitch, n, seed, decoding, voices, harmonics=None, noise=None):
        """Notes [B, n] from embeddings [B, C, F]; ``harmonics`` [B, F, K']: their measured
        harmonics, played in a learned source's place (:func:`nsynth_live.harmonics.at_pitch`);
        ``noise`` [B, F, BANDS]: their measured noise, added to a residual-form model's notes."""
        from nsynth_live.host.engines import note_audio, render_frames
        from nsynth_live import sampling

        eng = self.engine
        cond = eng.condition(emb, pitch)
        amps = None
        if self.cfg.source_harmonics and harmonics is not None:
            from nsynth_live.harmonics import at_pitch

            amps = at_pitch(harmonics[:, : cond.shape[1]], pitch, self.cfg.source_harmonics)
        elif self.cfg.source_harmonics:
            amps = eng.source_amplitudes(emb, pitch)
        slots = [eng.add_voice() for _ in range(cond.shape[0])]
        try:
            classes = render_frames(eng, slots, cond, n, sampling.NoiseStream(seed, voices), decoding.temperature,
                                    pitch=pitch, excitation_gain=decoding.excitation_gain, amplitudes=amps)
        finally:
            for slot in slots:
                eng.remove_voice(slot)
        added = added_noise(noise, n, self.cfg.hop, seed, voices) if noise is not None else None
        return note_audio(self.cfg, classes, amps, pitch, added)


def added_noise(noise: np.ndarray, n: int, hop: int, seed: int, voices: list[int]) -> np.ndarray:
    """Notes' measured noise [B, n] from their bands [B, F, BANDS] (one row per frame from
    note-on), each from its noise voice id's generator (:func:`nsynth_live.noise.note_rng`)."""
    from nsynth_live.noise import note_noise, note_rng

    return np.stack([note_noise(z, n, hop, note_rng(seed, v)) for z, v in zip(noise, voices)])


def load_model(path: str | Path) -> torch.nn.Module:
    """The EMA weights of a training run (a run folder or checkpoint file), in eval mode; its
    ``checkpoint_step`` attribute is the step they were saved at."""
    from nsynth_live.autoencoder import WaveNetAutoencoder
    from nsynth_live.checkpoint import load_checkpoint
    from nsynth_live.configs import ModelConfig

    path = Path(path)
    ckpt = load_checkpoint(path)
    model = WaveNetAutoencoder(ModelConfig.from_dict(ckpt["config"]))
    model.load_state_dict(ckpt["ema"]["shadow"])
    model.checkpoint_step = int(ckpt.get("step", 0))  # which weights a report judged (a live run moves on)
    return model.eval()


def loudness_envelope_noise(audio: np.ndarray, seed: int, frame: int = 256) -> np.ndarray:
    """The trivial baseline: uniformly random mu-law classes, scaled to ``audio``'s RMS envelope.

    Args:
        audio: [T] the original note.
        seed: noise seed.
        frame: envelope resolution in samples.

    Returns:
        [T] float32.
    """
    rng = np.random.default_rng(seed)
    noise = mulaw.decode(rng.integers(0, 256, len(audio)))
    n = len(audio) // frame * frame
    rms = np.sqrt(np.mean(audio[:n].reshape(-1, frame) ** 2, axis=1) + 1e-12)
    env = np.interp(np.arange(len(audio)), np.arange(len(rms)) * frame + frame / 2, rms)
    noise_rms = np.sqrt(np.mean(noise**2))
    return (noise * env / noise_rms).astype(np.float32)


def _cents(audio: np.ndarray, pitch: int) -> float | None:
    """Cents off ``pitch`` over the held part: NSynth's 0.25..2.75 s, shrunk for short clips."""
    dur = len(audio) / SAMPLE_RATE
    f0 = note_f0(audio, SAMPLE_RATE, start_s=min(0.25, 0.1 * dur), end_s=min(2.75, 0.9 * dur))
    return None if f0 is None else float(cents_off(f0, pitch))


def _in_tune(c: float | None) -> bool:
    return c is not None and abs(c) <= IN_TUNE_CENTS


@torch.no_grad()
def evaluate(
    model_path: str | Path,
    data: str | Path,
    out: str | Path,
    split: str = "test",
    limit: int | None = 16,
    seconds: float = 4.0,
    batch: int = 8,
    seed: int = 0,
    temperature: float | None = None,
    plots: int = 4,
    progress: bool = True,
    excitation_gain: float | None = None,
) -> dict[str, Any]:
    """Reconstruct held-out notes and write ``results.json``, WAVs and rainbowgram PNGs to ``out``.

    Args:
        model_path: training run folder or checkpoint file (EMA weights, PyTorch), or an export
            directory (ONNX, through the host's engine).
        data: dataset root (or split folder).
        out: output folder.
        split: which split to reconstruct (held-out: test or valid).
        limit: at most this many notes, spread evenly over the split (None: all).
        seconds: length of each reconstruction, from the note's start.
        batch: notes generated together.
        seed: sampling and baseline noise seed.
        temperature: sampling temperature; None: the export's recommended one (1 for a run).
        plots: rainbowgram PNGs for this many notes.
        progress: a progress bar.
        excitation_gain: factor on the excitation in generation (models with one); None: the
            export's recommended one (1 for a run). The NLL is the model's own (gain 1).

    Returns:
        the summary dict also written as ``results.json``.
    """
    from tqdm import tqdm

    from nsynth_live.nsynth import load_examples, read_note, resolve_split

    if (Path(model_path) / "model.json").is_file():
        backend: Any = EngineBackend(Path(model_path), max_voices=batch)
    else:
        backend = TorchBackend(load_model(model_path))
    cfg = backend.cfg
    try:
        decoding = backend.decoding.override(temperature, excitation_gain)
    except ValueError as err:
        raise UserError(f"evaluate: {err}") from None
    split_dir = resolve_split(data, split)
    notes = load_examples(split_dir)
    if not notes:
        raise UserError(f"{split_dir}: no notes to evaluate")
    if limit is not None and limit < len(notes):
        notes = [notes[int(i)] for i in np.linspace(0, len(notes) - 1, limit).round()]
    n_samples = int(round(seconds * SAMPLE_RATE))
    n_samples = max(cfg.hop, n_samples // cfg.hop * cfg.hop)
    out = Path(out)
    (out / "audio").mkdir(parents=True, exist_ok=True)

    results: list[NoteResult] = []
    bar = tqdm(total=len(notes), unit="note", disable=not progress)
    for start in range(0, len(notes), batch):
        chunk = notes[start : start + batch]
        audio = np.stack([read_note(split_dir, n) for n in chunk])  # [B, 64000]
        pitch = np.array([n.pitch for n in chunk], np.int64) if cfg.pitch_conditioning else None
        nll, emb = backend.nll_and_embedding(audio, pitch)
        recon = backend.generate(emb, pitch, n_samples, seed, decoding, list(range(start, start + len(chunk))))
        for b, info in enumerate(chunk):
            orig = audio[b, :n_samples]
            base = loudness_envelope_noise(orig, seed=seed + start + b)
            results.append(NoteResult(
                note_str=info.note_str, pitch=info.pitch, nll_bits=float(nll[b]),
                recon_cents=_cents(recon[b], info.pitch), baseline_cents=_cents(base, info.pitch),
                recon_spectral=multires_spectral_distance(orig, recon[b]),
                baseline_spectral=multires_spectral_distance(orig, base),
            ))
            i = start + b
            write_wav(out / "audio" / f"{info.note_str}.original.wav", orig)
            write_wav(out / "audio" / f"{info.note_str}.reconstruction.wav", recon[b])
            if i < plots:
                plot_rainbowgrams(
                    [(f"{info.note_str} original", orig), ("reconstruction", recon[b]),
                     ("baseline: shaped mu-law noise", base)],
                    str(out / f"rainbowgram_{i:02d}_{info.note_str}.png"),
                )
        bar.update(len(chunk))
    bar.close()

    summary = summarise(results)
    summary.update({"model_path": str(model_path), "config": cfg.name, "split": split, "seconds": n_samples / SAMPLE_RATE,
                    "seed": seed, "temperature": decoding.temperature, "excitation_gain": decoding.excitation_gain,
                    "notes": [asdict(r) for r in results]})
    atomic_write_text(out / "results.json", json.dumps(summary, indent=2) + "\n")
    return summary


def summarise(results: list[NoteResult]) -> dict[str, Any]:
    """Model and baseline figures side by side (means over notes)."""
    n = len(results)
    return {
        "n_notes": n,
        "model": {
            "nll_bits": float(np.mean([r.nll_bits for r in results])),
            "in_tune": sum(_in_tune(r.recon_cents) for r in results) / n,
            "spectral_distance": float(np.mean([r.recon_spectral for r in results])),
        },
        "baseline": {
            "nll_bits": 8.0,  # uniform over 256 classes
            "in_tune": sum(_in_tune(r.baseline_cents) for r in results) / n,
            "spectral_distance": float(np.mean([r.baseline_spectral for r in results])),
        },
    }


def format_table(summary: dict[str, Any]) -> str:
    m, b = summary["model"], summary["baseline"]
    rows = [
        ("", "model", "baseline"),
        ("NLL (bits/sample)", f"{m['nll_bits']:.3f}", f"{b['nll_bits']:.3f}"),
        (f"f0 within {IN_TUNE_CENTS:.0f} cents", f"{m['in_tune']:.0%}", f"{b['in_tune']:.0%}"),
        ("spectral distance", f"{m['spectral_distance']:.3f}", f"{b['spectral_distance']:.3f}"),
    ]
    w = [max(len(r[i]) for r in rows) for i in range(3)]
    lines = [f"{r[0]:<{w[0]}}  {r[1]:>{w[1]}}  {r[2]:>{w[2]}}" for r in rows]
    return "\n".join([f"{summary['n_notes']} notes of the {summary.get('split', '?')} split"] + lines)
