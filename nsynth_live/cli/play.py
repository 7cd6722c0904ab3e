"""``nsynth-live play`` and ``nsynth-live devices``: the realtime host (no torch)."""

from __future__ import annotations

import argparse

from nsynth_live.cli.common import add_player_args


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "play",
        help="play live from a MIDI keyboard and OSC (Max/Pd)",
        description="Stream the model through an audio device: notes from MIDI and OSC, presets and "
        "their blends chosen by program change, CC1/CC2 (XY pad) or /nsynth/... messages. Ctrl-C stops.",
    )
    add_player_args(p)
    p.add_argument("--device", help="audio output device, a name substring or index (default: the system's)")
    p.add_argument("--midi-in", metavar="NAME", help="MIDI input port (a unique part of its name; default: the first)")
    p.add_argument("--no-midi", action="store_true", help="no MIDI input")
    p.add_argument("--midi-api", default="auto", choices=["auto", "alsa", "jack"], help="rtmidi API (default auto)")
    p.add_argument("--osc-host", default="127.0.0.1", help="OSC listen address (default 127.0.0.1: this machine only)")
    p.add_argument("--osc-port", type=int, default=9000, help="OSC UDP port (default 9000; 0 disables OSC)")
    p.add_argument("--voices", type=int, default=8, help="most notes at once (default 8)")
    p.add_argument("--block", type=int, default=256, help="samples per render block at 16 kHz (default 256 = 16 ms)")
    p.add_argument("--quiet", action="store_true", help="no status line")
    p.set_defaults(func=_play)

    d = sub.add_parser("devices", help="list audio outputs and MIDI inputs",
                       description="List the audio devices sounddevice sees and the MIDI ports of each rtmidi API.")
    d.set_defaults(func=_devices)


def _play(args: argparse.Namespace) -> int:
    from nsynth_live.host.play import PlaySettings, play

    device = int(args.device) if args.device is not None and args.device.isdigit() else args.device
    return play(PlaySettings(
        model=args.model, bank=args.bank, engine=args.engine, threads=args.threads, seed=args.seed,
        temperature=args.temperature, excitation_gain=args.excitation_gain, device=device,
        midi=not args.no_midi, midi_in=args.midi_in, midi_api=args.midi_api, osc_host=args.osc_host,
        osc_port=args.osc_port, voices=args.voices, block=args.block, status_line=not args.quiet,
    ))


def _devices(args: argparse.Namespace) -> int:  # noqa: ARG001 - argparse API
    import sounddevice as sd

    from nsynth_live.host.midi_in import list_ports

    print("audio outputs:")
    try:
        devices = sd.query_devices()
        default_out = sd.default.device[1]
        for i, dev in enumerate(devices):
            if dev["max_output_channels"] > 0:
                mark = "*" if i == default_out else " "
                print(f" {mark}{i:3d}  {dev['name']}  ({dev['max_output_channels']} ch, {dev['default_samplerate']:.0f} Hz)")
    except sd.PortAudioError as err:
        print(f"  (none: {err})")
    for api in ("alsa", "jack"):
        ins, outs = list_ports(api)
        print(f"MIDI inputs ({api}): {', '.join(ins) if ins else '(none)'}")
    return 0
