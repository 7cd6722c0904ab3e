"""``nsynth-live play``: wire engine, bank, synth, player, OSC and MIDI; show a status line."""

from __future__ import annotations

import os
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from nsynth_live.errors import BadValue, UserError
from nsynth_live.host.device_watch import DEVICE_LOST_EXIT, call_with_timeout, wait_for_device
from nsynth_live.host.exit_guard import RESTARTS_ENV, ExitGuard, leave, restart


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
        web_port: serve the browser XY pad on this port (0: any free one); None: no web pad.
        web_host: the web pad's listen address (beyond loopback it needs the printed token).
        reconnect: when the audio device is lost, wait for it and start again instead of exiting
            with ``DEVICE_LOST_EXIT``.
        level: the loudest preset's peak in dBFS after the one output gain (``nsynth_live.level``);
            None: the model's recommended level; ``"off"``: the model's own level.
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
    web_port: int | None = None
    web_host: str = "127.0.0.1"
    reconnect: bool = False
    level: float | str | None = None


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
    """Run until Ctrl-C or SIGTERM (exit status 0) or until the audio device is lost (exit status
    ``DEVICE_LOST_EXIT``; with ``s.reconnect``, a restart once the device is back).

    Args:
        s: what to open and listen to.

    Returns:
        the exit status (after a loss the process is ended here, see ``exit_guard.leave``).

    Raises:
        BadValue: a setting out of range (before anything opens).
        UserError: a model, bank, audio device or port that cannot be opened.
    """
    from nsynth_live.host.bank import load_bank
    from nsynth_live.host.defaults import bank_or_default, model_or_default
    from nsynth_live.host.engines import open_engine
    from nsynth_live.host.player import Player
    from nsynth_live.host.synth import Synth
    from nsynth_live.host.model_files import load_export
    from nsynth_live.level import output_gain, sound_key

    check_settings(s)
    bank = load_bank(bank_or_default(s.bank))
    info = load_export(model_or_default(s.model))
    # Any preset may be selected live: the level of the bank's loudest.
    off = s.level == "off"
    try:
        level = output_gain(info.level, None if off else s.level, off=off,
                            sounds=[sound_key(p.name, p.embedding) for p in bank.presets],
                            where=f"--level: export {info.root}")
    except ValueError as err:
        raise UserError(str(err)) from None
    # Two spare slots let stolen voices fade out while their replacements start.
    engine = open_engine(info, s.engine, max_voices=s.voices + 2, threads=s.threads)
    synth = Synth(engine, bank, voices=s.voices, seed=s.seed, temperature=s.temperature,
                  excitation_gain=s.excitation_gain, output_gain=level.gain)
    player = Player(synth, device=s.device, block=s.block)

    osc = midi = web = None
    stop = threading.Event()  # Ctrl-C or SIGTERM
    wake = threading.Event()  # ... or the device lost: the main loop looks at once
    guard = ExitGuard(stop, wake).install()
    player.on_lost = lambda reason: wake.set()
    code = 0
    closed = False
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
        if s.web_port is not None:
            from nsynth_live.host.web.server import WebServer

            web = WebServer(player, host=s.web_host, port=s.web_port, inputs=[i for i in (osc, midi) if i]).start()
        player.start()
        where = [f"audio: {player.device_name} @ {player.rate} Hz", f"engine: {engine.name}"]
        if osc:
            where.append(f"OSC: {osc.host}:{osc.port}")
        where.append(f"MIDI: {midi.name}" if midi else "MIDI: none")
        if web:
            where.append(f"web: {web.url}")
        print("nsynth-live playing  |  " + "  |  ".join(where), flush=True)
        if web and web.token and (qr := web.qr()):
            print(qr, flush=True)
        if os.environ.get(RESTARTS_ENV):
            print(f"nsynth-live play: audio device {player.device_name!r} reopened "
                  f"(reconnect {os.environ[RESTARTS_ENV]})", file=sys.stderr, flush=True)
        while not stop.is_set():
            wake.wait(0.25)
            wake.clear()
            if stop.is_set():
                break
            player.check()
            if player.lost is not None:
                guard.code = 0 if s.reconnect else DEVICE_LOST_EXIT
                code = _device_lost(player, s.reconnect, not s.status_line, stop)
                break
            if s.status_line:
                _status_line(player, osc, midi, web)
    finally:
        guard.code = max(code, 0)
        if s.status_line:
            sys.stdout.write("\n")
        if web:
            web.stop()
        closed = player.stop()
        if osc:
            osc.stop()
        if midi:  # a JACK MIDI port whose server died may block in close: not for long
            call_with_timeout(midi.close, 0.5)
        engine.close()
    if not closed:  # a lost or hung stream: the interpreter's exit would block on it
        if code == _RESTART:
            restart()
        leave(code)
    guard.uninstall()
    return code


_RESTART = -1  # internal: the device is back, run again


def _device_lost(player, reconnect: bool, quiet: bool, stop: threading.Event) -> int:
    """Say the device is gone (status line and one stderr line), then wait for it (``reconnect``)
    or not. Returns ``DEVICE_LOST_EXIT``, ``_RESTART`` (it is back) or 0 (stopped by a signal)."""
    now = time.time()
    when = time.strftime("%H:%M:%S", time.gmtime(now)) + f".{int(now * 1000) % 1000:03d} UTC"
    then = "waiting for it to return (--reconnect)" if reconnect else f"exiting (status {DEVICE_LOST_EXIT})"
    if not quiet:
        sys.stdout.write(f"\rAUDIO LOST: {player.device_name!r}: {player.lost}  " + " " * 40 + "\n")
        sys.stdout.flush()
    print(f"nsynth-live play: audio device {player.device_name!r} lost at {when}: {player.lost}; {then}",
          file=sys.stderr, flush=True)
    if not reconnect:
        return DEVICE_LOST_EXIT
    if wait_for_device(player.device, stop):
        print(f"nsynth-live play: audio device {player.device_name!r} is back "
              f"({player.ignored} events ignored meanwhile); restarting", file=sys.stderr, flush=True)
        return _RESTART
    return 0


def _status_line(player, osc, midi, web=None) -> None:
    st = player.status()
    rejected = st.rejected + sum(i.counters.rejected for i in (osc, midi, web) if i)
    synth = player.synth
    # The decoding knobs (CC71/CC74, /nsynth/excitation_gain, /nsynth/temperature) show as they move.
    line = (f"\rvoices {st.voices:2d}  xruns {st.xruns:4d}  stolen {st.stolen:3d}  "
            f"rtf {st.realtime_factor:5.2f}x  rejected {rejected:5d}  "
            f"T {synth.temperature:4.2f}  lock {synth.excitation_gain:3.1f}  ")
    sys.stdout.write(line)
    sys.stdout.flush()
