"""MIDI input (keyboards, controllers) via mido on the rtmidi backend, ALSA or JACK.

| MIDI | event |
| --- | --- |
| note on (velocity > 0) | NoteOn |
| note off, note on with velocity 0 | NoteOff |
| CC64 sustain pedal | Sustain (pedal down at >= 64) |
| CC1 mod wheel, CC2 breath | XY: x and y of the pad |
| CC123 all notes off | AllNotesOff (voices release) |
| CC120 all sound off | Panic |
| CC71 (GM2 "harmonic content") | ExcitationGain: pitch lock, 0..8 linearly (64 = 4) |
| CC74 (GM2 "brightness") | Temperature: 0.02..2 exponentially (64 = 0.20) |
| program change | SelectPreset(program): the bank's preset index |

Other messages (clock, aftertouch, other CCs) are ignored; they are not errors.
"""

from __future__ import annotations

import queue
from typing import Any

from nsynth_live.host import events as ev
from nsynth_live.host.osc_server import MAX_EXCITATION_GAIN, MAX_TEMPERATURE
from nsynth_live.errors import UserError

APIS = {"alsa": "LINUX_ALSA", "jack": "UNIX_JACK", "auto": None}
MIN_TEMPERATURE = 0.02  # CC74 at 0: below the shipped default's recommended 0.03, so the knob reaches it


def backend(api: str = "auto") -> Any:
    """The mido rtmidi backend for ``api`` (auto: rtmidi's default, ALSA on Linux)."""
    import mido

    if api not in APIS:
        raise UserError(f"MIDI API {api!r}: expected one of {', '.join(APIS)}")
    return mido.Backend("mido.backends.rtmidi", api=APIS[api]) if APIS[api] else mido.Backend("mido.backends.rtmidi")


def list_ports(api: str = "auto") -> tuple[list[str], list[str]]:
    """(input port names, output port names); empty lists where the API has no MIDI system."""
    try:
        b = backend(api)
        return list(b.get_input_names()), list(b.get_output_names())
    except UserError:
        raise
    except Exception:  # no sequencer (e.g. ALSA without /dev/snd/seq) or no JACK server
        return [], []


def parse_midi(msg: Any) -> ev.Event | None:
    """One mido message -> an event, or None for messages the host does not use."""
    t = msg.type
    if t == "note_on":
        return ev.NoteOn(msg.note, msg.velocity) if msg.velocity > 0 else ev.NoteOff(msg.note)
    if t == "note_off":
        return ev.NoteOff(msg.note)
    if t == "program_change":
        return ev.SelectPreset(int(msg.program))
    if t == "control_change":
        c, v = msg.control, msg.value
        if c == 64:
            return ev.Sustain(v >= 64)
        if c == 1:
            return ev.XY(v / 127.0, None)
        if c == 2:
            return ev.XY(None, v / 127.0)
        if c == 123:
            return ev.AllNotesOff()
        if c == 120:
            return ev.Panic()
        if c == 71:
            return ev.ExcitationGain(MAX_EXCITATION_GAIN * v / 127.0)
        if c == 74:
            # Exponential: each step changes the temperature by the same ratio, and the knob's
            # centre lands near the shipped model's 0.3.
            return ev.Temperature(MIN_TEMPERATURE * (MAX_TEMPERATURE / MIN_TEMPERATURE) ** (v / 127.0))
    return None


class MidiInput:
    """Listens on one MIDI input port and puts events on a queue (from rtmidi's thread).

    Args:
        events: where events go.
        port: a port name, or a unique part of one (case-insensitive); None: the first port.
        api: ``auto``, ``alsa`` or ``jack``.
    """

    def __init__(self, events: "queue.Queue[ev.Event]", port: str | None = None, api: str = "auto"):
        self.events = events
        self.counters = ev.InputCounters()
        b = backend(api)
        try:
            names = list(b.get_input_names())
        except Exception as err:
            raise UserError(f"MIDI ({api}): no MIDI system to open ({err})") from None
        self.name = self._pick(names, port, api)
        try:
            self._port = b.open_input(self.name, callback=self._on_message)
        except Exception as err:
            raise UserError(f"MIDI ({api}): cannot open input {self.name!r} ({err})") from None

    @staticmethod
    def _pick(names: list[str], want: str | None, api: str) -> str:
        if not names:
            raise UserError(f"MIDI ({api}): no input ports; connect a keyboard or pass --no-midi")
        if want is None:
            return names[0]
        exact = [n for n in names if n == want]
        if exact:
            return exact[0]
        hits = [n for n in names if want.lower() in n.lower()]
        if len(hits) != 1:
            what = "matches several" if hits else "matches none"
            raise UserError(f"MIDI ({api}): --midi-in {want!r} {what} of the input ports: {', '.join(names)}")
        return hits[0]

    def _on_message(self, msg: Any) -> None:
        try:
            event = parse_midi(msg)
        except Exception as err:  # never raise into rtmidi's thread
            self.counters.reject(f"{msg!r}: {type(err).__name__}")
            return
        self.counters.accept()
        if event is not None:
            self.events.put(event)

    def close(self) -> None:
        self._port.close()
