"""Encode audio notes into presets of a bank with ``encoder.onnx`` (no torch).

Any audio file libsndfile reads (WAV, FLAC, OGG, AIFF, MP3, ...) is mixed to mono, resampled to
16 kHz with soxr, trimmed or zero-padded to an NSynth note's 4 s, and encoded into a trajectory
of embedding frames. Its pitch (needed to play the preset at other pitches) is taken from
``--pitch`` or estimated from the held part of the note. For a model with a learned source the
preset also carries its note's measured harmonic envelope (:mod:`nsynth_live.harmonics`) and the
noise between its harmonics (:mod:`nsynth_live.noise`).
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from nsynth_live.host.bank import BANK_JSON, Bank, Preset, load_bank, save_bank
from nsynth_live.host.trajectory import default_regions
from nsynth_live import SAMPLE_RATE
from nsynth_live.errors import BadValue, UserError

NOTE_SECONDS = 4.0


def load_note(path: str | Path, seconds: float = NOTE_SECONDS) -> np.ndarray:
    """An audio file as an NSynth-style note.

    Args:
        path: any format libsndfile reads.
        seconds: output length (trimmed or zero-padded).

    Returns:
        float32 [seconds * 16000] mono at 16 kHz.

    Raises:
        UserError: unreadable, empty or silent file.
    """
    import soundfile as sf
    import soxr

    path = Path(path)
    try:
        audio, rate = sf.read(str(path), dtype="float32", always_2d=True)
    except (RuntimeError, sf.LibsndfileError, OSError) as err:
        raise UserError(f"{path}: cannot read audio ({err})") from None
    if audio.shape[0] == 0:
        raise UserError(f"{path}: no audio in the file")
    mono = audio.mean(axis=1)
    if rate != SAMPLE_RATE:
        mono = soxr.resample(mono, rate, SAMPLE_RATE, quality="HQ").astype(np.float32)
    n = int(round(seconds * SAMPLE_RATE))
    mono = np.pad(mono[:n], (0, max(0, n - len(mono))))
    if not np.isfinite(mono).all():
        raise UserError(f"{path}: audio holds NaN or infinite samples")
    peak = float(np.abs(mono).max())
    if peak < 1e-4:
        raise UserError(f"{path}: silent (peak {peak:.1e}); nothing to encode")
    if peak > 1.0:  # float files may exceed full scale; mu-law clips there
        mono = mono / peak
    return mono.astype(np.float32)


def estimate_pitch(audio: np.ndarray, path: str | Path) -> int:
    """MIDI pitch of a note's held part (0.25-2.75 s, or its middle when shorter)."""
    from nsynth_live.pitch import hz_to_midi, note_f0

    f0 = note_f0(audio, SAMPLE_RATE)
    if f0 is None:
        raise UserError(f"{path}: no stable pitch found; pass --pitch")
    return int(np.clip(round(float(hz_to_midi(f0))), 0, 127))


def measured_source(audio: np.ndarray, pitch: int, harmonics: int, hop: int,
                    frames: int) -> tuple[np.ndarray | None, np.ndarray | None]:
    """What a preset of a learned-source model (K harmonics) stores of its note [T]: the
    harmonic envelope [frames, K] (:func:`nsynth_live.harmonics.measure`) and the noise bands
    [frames, 64] (:func:`nsynth_live.noise.measure`); (None, None) for a model without one (K = 0)."""
    if not harmonics:
        return None, None
    from nsynth_live.harmonics import measure
    from nsynth_live.noise import measure as measure_noise

    return (measure(audio[None], np.array([pitch]), harmonics, hop, frames)[0],
            measure_noise(audio, pitch, hop, frames))


def encode_files(
    files: Sequence[str | Path],
    export_dir: str | Path,
    bank_dir: str | Path,
    name: str | None = None,
    pitch: int | None = None,
    tags: Sequence[str] = (),
    bank_name: str | None = None,
    replace: bool = False,
    provenance: Mapping[str, Any] | None = None,
) -> list[Preset]:
    """Encode notes and add them to a bank (created if missing). All or nothing.

    Args:
        files: audio files, one preset each.
        export_dir: an export directory (its ``encoder.onnx``).
        bank_dir: the bank folder.
        name: preset name (only with one file; default: each file's stem).
        pitch: source MIDI pitch of every file (default: estimated per file).
        tags: labels stored with each preset.
        bank_name: display name for a new bank (default: the folder name).
        replace: overwrite presets of the same name instead of refusing.
        provenance: more of where the notes came from, stored in each preset's provenance
            beside the source file and the model (e.g. a soundfont note's file, bank, program,
            pitch and velocity).

    Returns:
        the new presets.
    """
    from nsynth_live.host.engines.onnx_sessions import OrtFrontEnd
    from nsynth_live.host.model_files import load_export

    if not files:
        raise UserError("no audio files to encode")
    if name is not None and len(files) != 1:
        raise UserError("--name needs exactly one audio file")
    if pitch is not None and not 0 <= pitch <= 127:
        raise BadValue("pitch", pitch, "not a MIDI note 0..127")
    info = load_export(export_dir)
    cfg = info.config
    bank_dir = Path(bank_dir)
    if (bank_dir / BANK_JSON).exists():
        bank = load_bank(bank_dir)
        bank.check_model(cfg.hop, cfg.bottleneck)
    else:
        if bank_dir.exists() and any(bank_dir.iterdir()):
            raise UserError(f"{bank_dir}: exists and is not a preset bank")
        frames = int(round(NOTE_SECONDS * SAMPLE_RATE)) // cfg.hop
        bank = Bank(bank_dir, bank_name or bank_dir.name, cfg.hop, SAMPLE_RATE, cfg.bottleneck, frames, [])

    # Everything is read and encoded before the bank is touched.
    notes = [load_note(f, bank.frames * cfg.hop / SAMPLE_RATE) for f in files]
    front = OrtFrontEnd(info, threads=None, device="cpu")
    embeddings = front.encode(np.stack(notes))  # [B, bottleneck, frames]
    pitches = [int(pitch) if pitch is not None else estimate_pitch(audio, f) for f, audio in zip(files, notes)]
    new: list[Preset] = []
    for f, audio, emb, p0 in zip(files, notes, embeddings, pitches):
        traj = np.ascontiguousarray(emb.T, dtype=np.float32)  # [frames, bottleneck]
        harmonics, noise = measured_source(audio, p0, cfg.source_harmonics, cfg.hop, traj.shape[0])
        new.append(Preset(
            name=name or Path(f).stem,
            embedding=traj,
            harmonics=harmonics,
            noise=noise,
            source_pitch=p0,
            tags=list(tags),
            regions=default_regions(traj, cfg.hop, SAMPLE_RATE),
            provenance={
                "source": Path(f).name,
                "source_sha256": hashlib.sha256(Path(f).read_bytes()).hexdigest(),
                "model_sha256": info.weights_sha256,
                "model_config": cfg.name,
                **dict(provenance or {}),
            },
        ))
    names = [p.name for p in new]
    if len(set(names)) != len(names):
        raise UserError(f"two files would make presets of the same name: {sorted(names)}")
    existing = {p.name: i for i, p in enumerate(bank.presets)}
    for p in new:
        if p.name in existing:
            if not replace:
                raise UserError(f"bank {bank_dir}: already has a preset named {p.name!r} (use --replace or --name)")
            bank.presets[existing[p.name]] = p
        else:
            bank.presets.append(p)
    save_bank(bank)
    return new
