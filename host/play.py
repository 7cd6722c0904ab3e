"""``nsynth-live play``: wire engine, bank, synth, player, OSC and MIDI; show a status line."""

from __future__ import annotations

import signal
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

from nsynth_live.errors import BadValue


@dataclass(frozen=True)
class PlaySettings:
    """What ``play`` opens and listens to.

    Attributes:
        model: export directory; None: the shipped default.
        bank: preset bank directory; None: the shipped default.
        engine: ``auto``, ``ort`` or ``fused``.
        threads: engine threads; None: the engine's default.
        seed: noise seed.
        temperature: > 0; None: the model's recommended one.
        excitation_gain: >= 0; None: the model's recommended one.
        device: audio output, an index or a name substring; None: the system's default.
        midi: listen to MIDI at all.
        midi_in: MIDI input port (a unique part of its name); None: the first.
        midi_api: rtmidi API, ``auto``, ``alsa`` or ``jack``.
        osc_host: OSC listen address.
        osc_port: OSC UDP port; 0: no OSC.
        voices: most notes at once (>= 1).
        block: samples per render block at 16 kHz.
        status_line: redraw a status line on stdout four times a second.
    """

    model: str | Path | None = None
    bank: str | Path | None = None
    engine: str = "auto"
    threads: int | None = None
    seed: int = 0
    temperature: float | None = None
    excitation_gain: float | None = None
    device: int | str | None = None
    midi: bool = True
    midi_in: str | None = None
    midi_api: str = "auto"
    osc_host: str = "127.0.0.1"
    osc_port: int = 9000
    voices: int = 8
    block: int = 256
    status_line: bool = True


def check_settings(s: PlaySettings) -> None:
    """One clear error for a bad value before anything opens.

    Raises:
        BadValue: naming the setting and its value.
    """
    from nsynth_live.sampling import check_excitation_gain, check_temperature

    if isinstance(s.voices, bool) or not isinstance(s.voices, int) or s.voices < 1:
        raise BadValue("voices", s.voices, "must be at least 1")
    for name, value, check in (("temperature", s.temperature, check_temperature),
                               ("excitation_gain", s.excitation_gain, check_excitation_gain)):
        if value is not None:
            try:
                check(value)
            except ValueError as err:
                raise BadValue(name, value, str(err)) from None
    if not 0 <= s.osc_port <= 65535:
        raise BadValue("osc_port", s.osc_port, "must be a UDP port 1..65535, or 0 for no OSC")


def play(s: PlaySettings) -> int:
    """Run until Ctrl-C or SIGTERM.

    Args:
        s: what to open and listen to.

    Returns:
        the exit status.

    Raises:
        BadValue: a setting out of range (before anything opens).
        UserError: a model, bank, audio device or port that cannot be opened.
    """
    from nsynth_live.host.bank import load_bank
    from nsynth_live.host.defaults import bank_or_default, model_or_default
    from nsynth_live.host.engines import open_engine
    from nsynth_live.host.player import Player
    from nsynth_live.host.synth import Synth

    check_settings(s)
    bank = load_bank(bank_or_default(s.bank))
    # Two spare slots let stolen voices fade out while their replacements start.
    engine = open_engine(model_or_default(s.model), s.engine, max_voices=s.voices + 2, threads=s.threads)
    synth = Synth(engine, bank, voices=s.voices, seed=s.seed, temperature=s.temperature,
                  excitation_gain=s.excitation_gain)
    player = Player(synth, device=s.device, block=s.block)

    osc = midi = None
    stop = threading.Event()

    def on_signal(signum, frame):  # noqa: ARG001 - signal API
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    try:
        if s.osc_port:
            from nsynth_live.host.osc_server import OscServer

            def status() -> tuple[int, int, str, float]:
                st = player.status()
                return st.voices, st.xruns, st.engine, st.realtime_factor

            osc = OscServer(player.events, status, host=s.osc_host, port=s.osc_port).start()
        if s.midi:
            from nsynth_live.host.midi_in import MidiInput, list_ports

            if s.midi_in or list_ports(s.midi_api)[0]:
                midi = MidiInput(player.events, port=s.midi_in, api=s.midi_api)
        player.start()
        where = [f"audio: {player.device_name} @ {player.rate} Hz", f"engine: {engine.name}"]
        if osc:
            where.append(f"OSC: {osc.host}:{osc.port}")
        where.append(f"MIDI: {midi.name}" if midi else "MIDI: none")
        print("nsynth-live playing  |  " + "  |  ".join(where), flush=True)
        while not stop.wait(0.25):
            player.check()
            if s.status_line:
                _status_line(player, osc, midi)
    finally:
        if s.status_line:
            sys.stdout.write("\n")
        player.stop()
        if osc:
            osc.stop()
        if midi:
            midi.close()
        engine.close()
    return 0


def _status_line(player, osc, midi) -> None:
    st = player.status()
    rejected = st.rejected + (osc.counters.rejected if osc else 0) + (midi.counters.rejected if midi else 0)
    synth = player.synth
    # The decoding knobs (CC71/CC74, /nsynth/excitation_gain, /nsynth/temperature) show as they move.
    line = (f"\rvoices {st.voices:2d}  xruns {st.xruns:4d}  stolen {st.stolen:3d}  "
            f"rtf {st.realtime_factor:5.2f}x  rejected {rejected:5d}  "
            f"T {synth.temperature:4.2f}  lock {synth.excitation_gain:3.1f}  ")
    sys.stdout.write(line)
    sys.stdout.flush()
