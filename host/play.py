"""``nsynth-live play``: wire engine, bank, synth, player, OSC and MIDI; show a status line."""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time

from nsynth_live.errors import UserError
from nsynth_live.host.device_watch import DEVICE_LOST_EXIT, call_with_timeout, wait_for_device
from nsynth_live.host.exit_guard import RESTARTS_ENV, ExitGuard, leave, restart


def play(args: argparse.Namespace) -> int:
    """Run until Ctrl-C or SIGTERM (exit status 0) or until the audio device is lost (exit status
    ``DEVICE_LOST_EXIT``; with ``args.reconnect``, a restart once the device is back). Returns
    the exit status, or ends the process itself after a loss (see ``exit_guard.leave``)."""
    from nsynth_live.host.bank import load_bank
    from nsynth_live.host.defaults import bank_or_default, model_or_default
    from nsynth_live.host.engine import open_engine
    from nsynth_live.host.player import Player
    from nsynth_live.host.synth import Synth
    from nsynth_live.cli.common import check_decoding

    if args.voices < 1:
        raise UserError(f"--voices {args.voices}: must be at least 1")
    check_decoding(args)
    bank = load_bank(bank_or_default(args.bank))
    # Two spare slots let stolen voices fade out while their replacements start.
    engine = open_engine(model_or_default(args.model), args.engine, max_voices=args.voices + 2, threads=args.threads)
    synth = Synth(engine, bank, voices=args.voices, seed=args.seed, temperature=args.temperature,
                  excitation_gain=args.excitation_gain)
    player = Player(synth, device=_device(args.device), block=args.block)

    osc = midi = None
    stop = threading.Event()  # Ctrl-C or SIGTERM
    wake = threading.Event()  # ... or the device lost: the main loop looks at once
    guard = ExitGuard(stop, wake).install()
    player.on_lost = lambda reason: wake.set()
    code = 0
    closed = False
    try:
        if args.osc_port:
            from nsynth_live.host.osc_server import OscServer

            def status() -> tuple[int, int, str, float]:
                st = player.status()
                return st.voices, st.xruns, st.engine, st.realtime_factor

            osc = OscServer(player.events, status, host=args.osc_host, port=args.osc_port).start()
        if not args.no_midi:
            from nsynth_live.host.midi_in import MidiInput, list_ports

            if args.midi_in or list_ports(args.midi_api)[0]:
                midi = MidiInput(player.events, port=args.midi_in, api=args.midi_api)
        player.start()
        where = [f"audio: {player.device_name} @ {player.rate} Hz", f"engine: {engine.name}"]
        if osc:
            where.append(f"OSC: {osc.host}:{osc.port}")
        where.append(f"MIDI: {midi.name}" if midi else "MIDI: none")
        print("nsynth-live playing  |  " + "  |  ".join(where), flush=True)
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
                guard.code = 0 if args.reconnect else DEVICE_LOST_EXIT
                code = _device_lost(player, args.reconnect, args.quiet, stop)
                break
            if not args.quiet:
                _status_line(player, osc, midi)
    finally:
        guard.code = max(code, 0)
        if not args.quiet:
            sys.stdout.write("\n")
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


def _device(text: str | None):
    if text is None:
        return None
    return int(text) if text.isdigit() else text


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
