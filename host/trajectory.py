"""Embedding trajectories: latent interpolation and the attack / sustain / release regions.

A preset is a trajectory of embedding frames [frames, channels] encoded from a 4 s NSynth-style
note (key held 3 s). Blending happens in latent space, frame by frame. A voice plays the frames
in order through the attack, holds the sustain region while its key is down (ping-pong, so the
conditioning never jumps), and on note-off moves to the release frames: notes last as long as
the key, not a fixed four seconds.
"""

from __future__ import annotations

import copy

import math

import numpy as np

NOTE_OFF_SECONDS = 3.0  # NSynth notes are held for 3 s
MIN_ATTACK_SECONDS = 0.1
SUSTAIN_SECONDS = 0.5


def mix(a: np.ndarray, b: np.ndarray, t: float) -> np.ndarray:
    """Linear blend of two trajectories, frame by frame.

    Args:
        a: [frames, C] at t = 0.
        b: [frames, C] at t = 1.
        t: position, clipped to [0, 1].

    Returns:
        float32 [frames, C]; exactly ``a`` at 0 and ``b`` at 1.
    """
    if a.shape != b.shape:
        raise ValueError(f"cannot blend trajectories of shapes {a.shape} and {b.shape}")
    t = float(np.clip(t, 0.0, 1.0))
    return ((1.0 - t) * a + t * b).astype(np.float32)


def bilinear(corners: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray], x: float, y: float) -> np.ndarray:
    """Bilinear blend of four corner trajectories (an XY pad, as on NSynth Super).

    Args:
        corners: [frames, C] each at (x, y) = (0, 0), (1, 0), (0, 1), (1, 1) — the order of
            ``/nsynth/corners n0 n1 n2 n3``.
        x, y: pad position, each clipped to [0, 1].

    Returns:
        float32 [frames, C]; exactly the corner's trajectory at a corner.
    """
    c00, c10, c01, c11 = corners
    if not c00.shape == c10.shape == c01.shape == c11.shape:
        raise ValueError("corner trajectories must have the same shape")
    x = float(np.clip(x, 0.0, 1.0))
    y = float(np.clip(y, 0.0, 1.0))
    out = (1 - x) * (1 - y) * c00 + x * (1 - y) * c10 + (1 - x) * y * c01 + x * y * c11
    return out.astype(np.float32)


def mix_optional(a: np.ndarray | None, b: np.ndarray | None, t: float) -> np.ndarray | None:
    """:func:`mix` of two optional per-frame arrays (a preset's harmonics): None unless both are given."""
    return None if a is None or b is None else mix(a, b, t)


def bilinear_optional(corners: tuple[np.ndarray | None, ...], x: float, y: float) -> np.ndarray | None:
    """:func:`bilinear` of four optional per-frame arrays: None unless all four are given."""
    if any(c is None for c in corners):
        return None
    return bilinear(corners, x, y)  # type: ignore[arg-type]


def mix_presets(a, b, t: float) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
    """:func:`mix` of two presets' timbres (``host.bank.Preset``): their embeddings, and their
    measured harmonics and noise where both carry them.

    Returns:
        (embedding [frames, C], harmonics [frames, K] or None, noise [frames, BANDS] or None).
    """
    return (mix(a.embedding, b.embedding, t), mix_optional(a.harmonics, b.harmonics, t),
            mix_optional(a.noise, b.noise, t))


def bilinear_presets(corners, x: float, y: float) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
    """:func:`bilinear` of four corner presets' timbres (the order of :func:`bilinear`): their
    embeddings, and their measured harmonics and noise where all four carry them.

    Returns:
        as :func:`mix_presets`.
    """
    return (bilinear(tuple(c.embedding for c in corners), x, y),
            bilinear_optional(tuple(c.harmonics for c in corners), x, y),
            bilinear_optional(tuple(c.noise for c in corners), x, y))


def default_regions(embedding: np.ndarray, hop: int, sample_rate: int = 16000,
                    note_off_s: float = NOTE_OFF_SECONDS) -> dict[str, int]:
    """Sustain and release regions of a trajectory, from the NSynth protocol and its frames.

    The release starts at the note-off frame (3 s). The sustain region is the ~0.5 s window,
    after a minimal attack and before the release, where the embedding changes least: the part
    of the note that can be held indefinitely without audible stepping.

    Args:
        embedding: [frames, C].
        hop: samples per frame.
        sample_rate: audio rate.
        note_off_s: when the source note's key was released.

    Returns:
        {"sustain_start", "sustain_end", "release_start"} frame indices with
        0 <= sustain_start < sustain_end <= release_start <= frames.
    """
    frames = embedding.shape[0]
    if frames < 2:
        raise ValueError("a trajectory needs at least 2 frames")
    rate = sample_rate / hop
    release = min(frames, max(2, int(math.floor(note_off_s * rate))))
    width = max(2, min(int(round(SUSTAIN_SECONDS * rate)), release))
    first = min(int(math.ceil(MIN_ATTACK_SECONDS * rate)), release - width)
    change = np.linalg.norm(np.diff(embedding.astype(np.float64), axis=0), axis=1)  # [frames-1]
    best, best_cost = first, math.inf
    for s in range(first, release - width + 1):
        cost = float(change[s : s + width - 1].mean()) if width > 1 else 0.0
        if cost < best_cost - 1e-12:
            best, best_cost = s, cost
    return {"sustain_start": best, "sustain_end": best + width, "release_start": release}


class Cursor:
    """Which frame a voice plays next: attack, then sustain ping-pong while held, then release.

    Call :meth:`next_frame` once per ``hop`` samples. After :meth:`release`, the cursor jumps to
    the release region (or continues in it) and :attr:`finished` becomes true after the last
    frame.

    Args:
        regions: {"sustain_start", "sustain_end", "release_start"}.
        frames: trajectory length.
    """

    def __init__(self, regions: dict[str, int], frames: int):
        self.s0, self.s1, self.r0 = regions["sustain_start"], regions["sustain_end"], regions["release_start"]
        self.frames = frames
        self.pos = 0
        self.step = 1
        self.held = True
        self.finished = False

    def release(self) -> None:
        """Key up: move to the release region at the next frame."""
        if self.held:  # a held cursor is always before the release region
            self.held = False
            self.pos = self.r0 - 1

    def peek(self) -> int:
        """The frame :meth:`next_frame` would return now, without advancing (a learned source's
        amplitudes glide towards it over the frame being played)."""
        ahead = copy.copy(self)
        return ahead.next_frame()

    def next_frame(self) -> int:
        """The frame to play now; advances the cursor."""
        if self.held:
            frame = self.pos
            if self.pos < self.s0:
                self.pos += 1
            elif self.s1 - self.s0 > 1:
                nxt = self.pos + self.step
                if not self.s0 <= nxt < self.s1:
                    self.step = -self.step
                    nxt = self.pos + self.step
                self.pos = nxt
            return frame
        self.pos = min(self.pos + 1, self.frames - 1)
        if self.pos >= self.frames - 1:
            self.finished = True
        return self.pos
