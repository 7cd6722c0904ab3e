"""Control events: what MIDI and OSC threads put on the host's queue (plain frozen dataclasses).

Inputs parse and validate their messages into these; the generator thread applies them between
audio blocks. Nothing here touches audio or the engine.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Union

PresetKey = Union[str, int]  # a preset's name or 0-based index


@dataclass(frozen=True)
class NoteOn:
    pitch: int  # MIDI 0..127
    velocity: int  # 1..127 (velocity 0 arrives as NoteOff)


@dataclass(frozen=True)
class NoteOff:
    pitch: int


@dataclass(frozen=True)
class Sustain:
    on: bool  # the sustain pedal (MIDI CC64 >= 64)


@dataclass(frozen=True)
class SelectPreset:
    preset: PresetKey


@dataclass(frozen=True)
class Mix:
    a: PresetKey
    b: PresetKey
    t: float  # 0..1


@dataclass(frozen=True)
class Corners:
    presets: tuple[PresetKey, PresetKey, PresetKey, PresetKey]  # (0,0), (1,0), (0,1), (1,1)


@dataclass(frozen=True)
class XY:
    x: float | None  # 0..1; None leaves that axis where it is (MIDI CC1 moves x alone)
    y: float | None


@dataclass(frozen=True)
class Gain:
    gain: float  # 0..2


@dataclass(frozen=True)
class Temperature:
    """Sampling temperature of every voice from the next block on (> 0; the host clamps to 2)."""

    temperature: float


@dataclass(frozen=True)
class ExcitationGain:
    """Gain on the sinusoidal excitation ("pitch lock") from the next block on (0..8)."""

    gain: float


@dataclass(frozen=True)
class Panic:
    """All notes off now (no release tails)."""


@dataclass(frozen=True)
class AllNotesOff:
    """Every held note released (MIDI CC123): voices go to their release."""


Event = Union[NoteOn, NoteOff, Sustain, SelectPreset, Mix, Corners, XY, Gain, Temperature, ExcitationGain, Panic,
              AllNotesOff]


@dataclass
class InputCounters:
    """Messages an input accepted and rejected (malformed, unknown, wrong types, out of range).

    Incremented by the input thread, read by status reports; a lock keeps the pair consistent.
    """

    accepted: int = 0
    rejected: int = 0
    last_error: str = ""
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def accept(self) -> None:
        with self._lock:
            self.accepted += 1

    def reject(self, why: str) -> None:
        with self._lock:
            self.rejected += 1
            self.last_error = why[:200]
