"""Validation of the per-frame graphs' inputs (embedding + pitch, raw audio)."""

from __future__ import annotations

from typing import Any

import numpy as np

from nsynth_live.configs import N_PITCHES, ModelConfig


def check_embedding(cfg: ModelConfig, embedding: Any, pitch: Any) -> tuple[np.ndarray, np.ndarray | None]:
    """Validate conditioner inputs -> (float32 [B, bottleneck, F], int64 [B] or None)."""
    emb = np.ascontiguousarray(embedding, dtype=np.float32)
    if emb.ndim != 3 or emb.shape[1] != cfg.bottleneck or emb.shape[2] == 0:
        raise ValueError(f"embedding must be [B, {cfg.bottleneck}, frames], got shape {emb.shape}")
    if not np.all(np.isfinite(emb)):
        raise ValueError("embedding holds NaN or inf")
    if not cfg.pitch_conditioning:
        if pitch is not None:
            raise ValueError("this model has no pitch conditioning: pass pitch=None")
        return emb, None
    if pitch is None:
        raise ValueError(f"this model is pitch-conditioned: pass pitch as [B] MIDI notes 0..{N_PITCHES - 1}")
    p = np.asarray(pitch)
    if p.dtype.kind not in "iu":
        raise ValueError(f"pitch must be integer MIDI notes, got dtype {p.dtype}")
    p = p.astype(np.int64).reshape(-1)
    if p.shape != (emb.shape[0],):
        raise ValueError(f"pitch must have shape [{emb.shape[0]}], got {np.shape(pitch)}")
    if p.size and (p.min() < 0 or p.max() >= N_PITCHES):
        raise ValueError(f"pitch must be MIDI notes 0..{N_PITCHES - 1}, got {p.tolist()}")
    return emb, p


def check_audio(cfg: ModelConfig, audio: Any) -> np.ndarray:
    """Validate encoder input -> float32 [B, T]."""
    a = np.ascontiguousarray(audio, dtype=np.float32)
    if a.ndim != 2:
        raise ValueError(f"audio must be [B, T], got shape {a.shape}")
    if a.shape[1] == 0 or a.shape[1] % cfg.hop:
        raise ValueError(f"audio length {a.shape[1]} is not a positive multiple of the hop {cfg.hop}")
    if not np.all(np.isfinite(a)):
        raise ValueError("audio holds NaN or inf")
    return a
