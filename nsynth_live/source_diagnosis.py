"""Where a learned-source run loses timbre: measured amplitudes, its source alone, a right source decoded.

``bench timbre --run RUN --diagnose`` judges five more renders of the same notes with the same
classifier (:func:`nsynth_live.timbre.evaluate_timbre`, no blends):

- **measured amplitudes alone**: a harmonic synthesis of the amplitudes measured in each note's
  own source note (centred windows at frame starts,
  :func:`nsynth_live.excitation.measured_amplitudes`), no network at all: the reference for what
  a harmonic source of this many harmonics, measured this way, carries to this classifier.
- **source alone, own-note embedding**: the source network's synthesis from the embedding of the
  very note being judged (a reconstruction), not the preset's: what the network carries when the
  embedding comes from the same pitch.
- **source alone**: the source network's synthesis from the preset's embedding (one note, e.g.
  C4, played at every pitch, as the host plays it). Below the row above by what the network
  fails to carry across pitch.
- **preset's note measured, at every pitch**: the amplitudes measured in the preset's *own*
  source note (one pitch, e.g. C4), harmonic by harmonic as a sampler transposes (harmonic k stays
  harmonic k; those at or above Nyquist fall silent), synthesised at each judged pitch, no
  network: what any source can carry that plays one measured note at every pitch. Between the
  first row and this one lies what one note per preset costs; between this one and the source
  network's, what the network fails to carry of its own preset's note.
- **measured source through the decoder**: the decoder, as at generation, hearing a source whose
  amplitudes are measured from each preset's own source note at that pitch instead of the
  network's. Its identity is what the decoder lets through of a source that is right.

Measured on ``live-hn`` at step 3.8k (24 FluidR3 presets, MIDI 36-84 step 6): the source alone
named 9% of notes, a synthesis from the measured amplitudes alone 58% (ceiling 67%), the decoder
fed those measured amplitudes 12%: the decoder then ignored its source's spectrum, which is what
``train --source-forcing`` addresses. (That 58% synthesis took its amplitudes from STFT peaks; the
measured-amplitudes render here, from 4-period centred windows, names 50.9% of the same notes.)
At step 6.6k (session 6): the source from each note's own embedding 13.4%, from the preset's
10.6%: the source network, not the pitch transfer, is what loses most of it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch

from nsynth_live import SAMPLE_RATE, timbre
from nsynth_live.excitation import measured_amplitudes
from nsynth_live.sampling import Decoding
from nsynth_live.residual import in_phase


def measured_frames(audio: np.ndarray, pitch: np.ndarray, harmonics: int, hop: int, frames: int) -> np.ndarray:
    """Harmonic amplitudes of notes at frame starts (centred windows of whole periods).

    Args:
        audio: float32 [B, T]; pitch: [B] MIDI notes; harmonics: K; hop: samples per frame.
        frames: F frames from the note's start (the note's last measured frame is held past its end).

    Returns:
        float32 [B, K, F], zero at and above Nyquist.
    """
    with torch.no_grad():
        amps = measured_amplitudes(torch.from_numpy(np.asarray(audio, np.float32)),
                                   torch.from_numpy(np.asarray(pitch, np.int64)), harmonics, hop).numpy()
    if amps.shape[-1] < frames:
        amps = np.concatenate([amps, np.repeat(amps[..., -1:], frames - amps.shape[-1], -1)], -1)
    return np.ascontiguousarray(amps[..., :frames])


def _synthesis(model: Any, emb: np.ndarray, pitch: np.ndarray, n: int, frames: np.ndarray | None = None) -> np.ndarray:
    """The learned source's harmonic sum at its own level, [B, n]: from the source network's
    amplitudes for ``emb`` [B, C, F], or from ``frames`` [B, K, F] when given."""
    with torch.no_grad():
        _, raw = model.decoder.source(torch.from_numpy(emb), torch.from_numpy(pitch), n, raw=True,
                                      frames=None if frames is None else torch.from_numpy(frames))
    return in_phase(raw).float().numpy()  # the channel a residual-form note adds (same spectrum as the other)


def source_alone(model: Any, own: Sequence[np.ndarray] | None = None) -> timbre.Render:
    """A :data:`~nsynth_live.timbre.Render` of the source network's synthesis alone (its own level).

    Args:
        model: a learned-source autoencoder.
        own: each job's own embedding [bottleneck, F'] (``voices`` index it), used instead of the
            preset's; None: the preset's. (Own embeddings cover the whole 4 s source note, more
            than the rendered frames.)
    """

    def render(emb: np.ndarray, pitch: np.ndarray, n: int, voices: list[int]) -> np.ndarray:
        if own is not None:
            emb = np.stack([own[v][:, : emb.shape[-1]] for v in voices]).astype(np.float32)
        return _synthesis(model, emb, pitch, n)

    return render


def measured_alone(model: Any, notes: Sequence[np.ndarray]) -> timbre.Render:
    """A :data:`~nsynth_live.timbre.Render` of the amplitudes measured in each job's source note,
    synthesised as the learned source is (:meth:`nsynth_live.decoder.Decoder.source`, at their own
    level): no network involved.

    Args:
        model: a learned-source autoencoder (its config's harmonics and hop; the synthesis).
        notes: the source note of each job, as for :func:`measured_through_decoder`.
    """
    cfg = model.cfg

    def render(emb: np.ndarray, pitch: np.ndarray, n: int, voices: list[int]) -> np.ndarray:
        audio = np.stack([notes[v] for v in voices])
        return _synthesis(model, emb, pitch, n, measured_frames(audio, pitch, cfg.source_harmonics, cfg.hop, emb.shape[-1]))

    return render


def transposed_frames(amplitudes: np.ndarray, pitch: int, frames: int) -> np.ndarray:
    """One note's measured amplitudes played at another pitch as a sampler transposes them.

    Args:
        amplitudes: float32 [K, F'] measured at the note's own pitch (:func:`measured_frames`).
        pitch: the MIDI pitch to play; frames: F (the note's last frame is held past its end).

    Returns:
        float32 [K, F]: harmonic k keeps its amplitude; those at or above Nyquist at ``pitch`` are 0.
    """
    from nsynth_live.harmonics import at_pitch, fit_frames

    # The engines' transposition of a preset's measured harmonics, in this module's [K, F] layout.
    return at_pitch(fit_frames(amplitudes.T[None], frames), np.array([pitch]), amplitudes.shape[0])[0].T.copy()


def preset_note_alone(model: Any, preset_notes: Sequence[tuple[np.ndarray, int]]) -> timbre.Render:
    """A :data:`~nsynth_live.timbre.Render` of each job's preset's own source note, measured at its
    pitch and synthesised at the job's (:func:`transposed_frames`), as the learned source is.

    Args:
        model: a learned-source autoencoder (its harmonics, hop and synthesis).
        preset_notes: per job (``voices`` index them), the preset's source note [T] and its pitch.
    """
    cfg = model.cfg
    measured: dict[int, np.ndarray] = {}

    def render(emb: np.ndarray, pitch: np.ndarray, n: int, voices: list[int]) -> np.ndarray:
        rows = []
        for v, q in zip(voices, pitch):
            audio, p0 = preset_notes[v]
            key = id(audio)  # jobs of one preset share its note: measure it once
            if key not in measured:
                measured[key] = measured_frames(audio[None], np.array([p0]), cfg.source_harmonics, cfg.hop,
                                                -(-len(audio) // cfg.hop))[0]
            rows.append(transposed_frames(measured[key], int(q), emb.shape[-1]))
        return _synthesis(model, emb, pitch, n, np.stack(rows))

    return render


def measured_through_decoder(backend: Any, notes: Sequence[np.ndarray], decoding: Decoding, seed: int,
                             levels: list[float] | None = None) -> timbre.Render:
    """A :data:`~nsynth_live.timbre.Render` of the run's decoder hearing measured sources.

    Args:
        backend: :class:`nsynth_live.evaluate.RunFusedBackend` of a learned-source run.
        notes: the source note of each job, in :func:`nsynth_live.timbre.source_keys` order (job i
            is rendered with noise voice id i, so ``voices`` index this list).
        decoding: temperature and excitation gain; seed: noise seed.
        levels: for a residual-form run, a list each rendered note appends its sampled residual's
            RMS over its source's to (from 0.25 s on, as the features): well below 1 when the
            decoder adds to its source, above 1 when it drowns it (:mod:`nsynth_live.residual`).
    """
    cfg = backend.cfg

    def render(emb: np.ndarray, pitch: np.ndarray, n: int, voices: list[int]) -> np.ndarray:
        audio = np.stack([notes[v] for v in voices])
        frames = measured_frames(audio, pitch, cfg.source_harmonics, cfg.hop, emb.shape[-1])
        out = backend.generate(emb, pitch, n, seed, decoding, voices, source_frames=frames)
        if levels is not None:
            with torch.no_grad():
                _, raw = backend.model.decoder.source(torch.from_numpy(emb), torch.from_numpy(np.asarray(pitch)), n,
                                                      raw=True, frames=torch.from_numpy(frames))
            src = in_phase(raw).float().numpy()
            seg = slice(int(0.25 * SAMPLE_RATE), n)
            for o, s in zip(out, src):
                rms = float(np.sqrt(np.mean(s[seg] ** 2)))
                if rms > 1e-4:  # a source with nothing audible says nothing about the residual
                    levels.append(float(np.sqrt(np.mean((o[seg] - s[seg]) ** 2))) / rms)
        return out

    return render


def diagnose(model: Any, backend: Any, bank: Any, data: Path, pitches: Sequence[int], seconds: float,
             presets: Sequence[str] | None, decoding: Decoding, seed: int, batch: int,
             log: Callable[[str], None] = lambda s: None) -> dict[str, dict[str, Any]]:
    """The five diagnostic renders judged like the model's own (identity, in tune, distance to source).

    Returns:
        {"measured_amplitudes_alone": {...}, "source_alone_own_note_embedding": {...},
        "preset_note_measured_alone": {...}, "source_alone": {...},
        "measured_source_through_decoder": {...}} with the keys identity,
        identity_train, identity_held_out, in_tune, timbre_error_db; for a residual-form run the
        last also has ``residual_to_source`` (see :func:`measured_through_decoder`).
    """
    import soundfile as sf

    chosen = list(bank.presets) if presets is None else [bank.get(n) for n in presets]
    src = timbre.load_source_notes(data, chosen, pitches)
    keys = timbre.source_keys(src, [p.name for p in chosen])
    notes = [src[k] for k in keys]
    index = timbre.note_index(data)
    own_note = {p.name: (sf.read(index[Path(str(p.provenance.get("source", ""))).name], dtype="float32")[0],
                         int(p.source_pitch)) for p in chosen}
    with torch.no_grad():
        own = [model.encode(torch.from_numpy(np.asarray(a, np.float32)[None]))[0].numpy() for a in notes]
    keep = ("identity", "identity_train", "identity_held_out", "in_tune", "timbre_error_db")
    levels: list[float] | None = [] if model.cfg.source_residual else None
    out = {}
    for name, render in (("measured_amplitudes_alone", measured_alone(model, notes)),
                         ("source_alone_own_note_embedding", source_alone(model, own)),
                         ("preset_note_measured_alone", preset_note_alone(model, [own_note[k[0]] for k in keys])),
                         ("source_alone", source_alone(model)),
                         ("measured_source_through_decoder",
                          measured_through_decoder(backend, notes, decoding, seed, levels))):
        log(f"diagnosis: {name.replace('_', ' ')}")
        r = timbre.evaluate_timbre(render, model.cfg.hop, bank, data, pitches, seconds, presets, pairs=0, batch=batch)
        out[name] = {k: r[k] for k in keep}
    if levels:
        out["measured_source_through_decoder"]["residual_to_source"] = float(np.median(levels))
    return out


def format_diagnosis(d: dict[str, dict[str, Any]]) -> str:
    """One table row per diagnostic render: identity (training / held-out), in tune, distance to the source."""
    lines = ["diagnosis                                identity (train / held-out)   in tune   to source"]
    for name, r in d.items():
        def pct(x: float | None) -> str:
            return "  -  " if x is None else f"{100 * x:4.1f}%"
        lines.append(f"  {name.replace('_', ' '):38s} {pct(r['identity'])} ({pct(r['identity_train'])} / "
                     f"{pct(r['identity_held_out'])})   {pct(r['in_tune'])}   {r['timbre_error_db']:.1f} dB")
    for r in d.values():
        if "residual_to_source" in r:
            lines.append(f"  the sampled residual's RMS over the measured source's (median): {r['residual_to_source']:.2f}"
                         " (residual form; well below 1 when the decoder adds to its source)")
    return "\n".join(lines)
