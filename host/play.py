"""``nsynth-live play``: wire engine, bank, synth, player, OSC and MIDI; show a status line."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
import time

from nsynth_live.errors import UserError


def play(args: argparse.Namespace) -> int:
    """Run until Ctrl-C or SIGTERM. Returns the exit status."""
    from nsynth_live.host.bank import load_bank
    from nsynth_live.host.defaults import bank_or_default, model_or_default
    from nsynth_live.host.engines import open_engine
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
    stop = threading.Event()

    def on_signal(signum, frame):  # noqa: ARG001 - signal API
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
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
        while not stop.wait(0.25):
            player.check()
            if not args.quiet:
                _status_line(player, osc, midi)
    finally:
        if not args.quiet:
            sys.stdout.write("\n")
        player.stop()
        if osc:
            osc.stop()
        if midi:
            midi.close()
        engine.close()
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
