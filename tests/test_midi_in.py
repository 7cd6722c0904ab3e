"""MIDI input through real JACK MIDI ports (the JACK dummy server that scripts/test.sh starts)."""

from __future__ import annotations

import json
import queue
import time
from pathlib import Path

import mido
import pytest

from nsynth_live.host import events as ev
from nsynth_live.host.midi_in import MidiInput, backend, list_ports, parse_midi
from nsynth_live.errors import UserError


def test_message_mapping():
    M = mido.Message
    assert parse_midi(M("note_on", note=60, velocity=100)) == ev.NoteOn(60, 100)
    assert parse_midi(M("note_on", note=60, velocity=0)) == ev.NoteOff(60)
    assert parse_midi(M("note_off", note=61, velocity=40)) == ev.NoteOff(61)
    assert parse_midi(M("control_change", control=64, value=127)) == ev.Sustain(True)
    assert parse_midi(M("control_change", control=64, value=0)) == ev.Sustain(False)
    assert parse_midi(M("control_change", control=1, value=127)) == ev.XY(1.0, None)
    assert parse_midi(M("control_change", control=2, value=0)) == ev.XY(None, 0.0)
    assert parse_midi(M("control_change", control=123, value=0)) == ev.AllNotesOff()
    assert parse_midi(M("control_change", control=120, value=0)) == ev.Panic()
    assert parse_midi(M("program_change", program=5)) == ev.SelectPreset(5)
    assert parse_midi(M("clock")) is None and parse_midi(M("control_change", control=7, value=3)) is None
    # The decoding knobs: pitch lock linear over 0..8, temperature exponential over 0.02..2.
    assert parse_midi(M("control_change", control=71, value=0)) == ev.ExcitationGain(0.0)
    assert parse_midi(M("control_change", control=71, value=127)) == ev.ExcitationGain(8.0)
    assert parse_midi(M("control_change", control=71, value=56)).gain == pytest.approx(3.53, abs=0.01)
    temps = [parse_midi(M("control_change", control=74, value=v)).temperature for v in (0, 64, 127)]
    assert temps == pytest.approx([0.02, 0.02 * 100 ** (64 / 127), 2.0])
    # The shipped model's recommended temperature lies inside the knob's range, near its low end.
    model = Path(__file__).resolve().parents[1] / "presets" / "default" / "model" / "model.json"
    assert temps[0] <= json.loads(model.read_text())["decoding"]["temperature"] < temps[1]


def test_unknown_api_is_one_clear_error():
    with pytest.raises(UserError, match="MIDI API 'coreaudio'"):
        backend("coreaudio")


def test_events_arrive_from_a_jack_midi_port(jack_server):
    out = backend("jack").open_output("nsynth-test-keyboard", virtual=True)
    try:
        deadline = time.time() + 5
        while not any("nsynth-test-keyboard" in n for n in list_ports("jack")[0]) and time.time() < deadline:
            time.sleep(0.05)
        q: "queue.Queue[ev.Event]" = queue.Queue()
        midi = MidiInput(q, port="nsynth-test-keyboard", api="jack")
        try:
            time.sleep(0.2)  # let JACK connect the ports
            for m in [mido.Message("note_on", note=64, velocity=90), mido.Message("control_change", control=64, value=127),
                      mido.Message("note_on", note=64, velocity=0), mido.Message("program_change", program=2)]:
                out.send(m)
            got = []
            deadline = time.time() + 5
            while len(got) < 4 and time.time() < deadline:
                try:
                    got.append(q.get(timeout=0.1))
                except queue.Empty:
                    pass
            assert got == [ev.NoteOn(64, 90), ev.Sustain(True), ev.NoteOff(64), ev.SelectPreset(2)]
            assert midi.counters.accepted == 4
        finally:
            midi.close()
        with pytest.raises(UserError, match="matches none of the input ports"):
            MidiInput(q, port="no-such-keyboard", api="jack")
    finally:
        out.close()
