"""``render-midi``: a MIDI file through the live host's voice code (:class:`host.synth.Synth`) to WAV.

Every note of every track, in time order with tempo changes applied (mido does the tick-to-second
arithmetic), becomes the same events the live host gets from a keyboard: notes, the sustain
pedal, CC1/CC2 on the XY pad, program changes selecting presets. Blocks end exactly at event
times, so every event lands on its sample; rendering runs as fast as the engine allows.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from nsynth_live.host import events as ev
from nsynth_live.host.bank import Bank, Preset
from nsynth_live.host.midi_in import parse_midi
from nsynth_live.host.synth import Synth
from nsynth_live import SAMPLE_RATE, wav
from nsynth_live.errors import UserError


@dataclass
class TimedEvent:
    sample: int
    event: ev.Event


def read_midi(path: str | Path) -> list[TimedEvent]:
    """The host events of a MIDI file with their sample times at 16 kHz (all tracks merged)."""
    import mido

    path = Path(path)
    try:
        mid = mido.MidiFile(str(path))
    except (OSError, EOFError, ValueError, KeyError, IndexError) as err:
        raise UserError(f"{path}: not a readable MIDI file ({type(err).__name__}: {err})") from None
    out: list[TimedEvent] = []
    t = 0.0
    for msg in mid:  # merged tracks, .time in seconds with tempo changes applied
        t += msg.time
        if msg.is_meta:
            continue
        event = parse_midi(msg)
        if event is not None:
            out.append(TimedEvent(int(round(t * SAMPLE_RATE)), event))
    if not any(isinstance(e.event, ev.NoteOn) for e in out):
        raise UserError(f"{path}: no notes to render")
    return out


def presets_played(timeline: list[TimedEvent], bank: Bank, start: str | int | None = 0) -> list[Preset] | None:
    """The presets a timeline plays, for its level (:mod:`nsynth_live.level`).

    Args:
        start: the preset selected before the first event (name or index); None: a blend (XY pad).

    Returns:
        the start preset and every preset a program change selects, or None when anything else
        may sound (blends by the XY pad or a mix), or a program change names no preset.
    """
    if start is None:
        return None
    keys: list[str | int] = [start]
    for item in timeline:
        e = item.event
        if isinstance(e, ev.SelectPreset):
            keys.append(e.preset)
        elif isinstance(e, (ev.XY, ev.Mix, ev.Corners)):
            return None
    try:
        return list({id(p): p for p in (bank.get(k) for k in keys)}.values())
    except UserError:  # a program change past the bank: the host counts and ignores it
        return None


def render_events(synth: Synth, timeline: list[TimedEvent], tail_seconds: float = 8.0, progress: bool = False) -> np.ndarray:
    """Render a timeline: float32 [samples] at 16 kHz, until the last voice has released
    (or ``tail_seconds`` after the last event)."""
    hop = synth.hop
    chunks: list[np.ndarray] = []
    now = 0
    for item in timeline:
        while now < item.sample:
            n = min(hop, item.sample - now)
            chunks.append(synth.render(n))
            now += n
        synth.apply(item.event)
    end = now + int(tail_seconds * SAMPLE_RATE)
    while synth.active and now < end:
        n = min(hop, end - now)
        chunks.append(synth.render(n))
        now += n
    return np.concatenate(chunks) if chunks else np.zeros(0, np.float32)


def write_wav(path: str | Path, audio: np.ndarray, rate: int = SAMPLE_RATE) -> Path:
    """16 kHz float audio [n] to a 16-bit WAV at ``rate`` (resampled with soxr when not 16 kHz),
    written atomically by the project's WAV writer."""
    if rate != SAMPLE_RATE:
        import soxr

        audio = soxr.resample(audio, SAMPLE_RATE, rate, quality="HQ").astype(np.float32)
    return wav.write_wav(path, audio, rate)
