"""Short audio examples of a model for README's "how it sounds" (compressed, well under 1 MB).

    python scripts/sound_examples.py --data data/fluidr3 [--model EXPORT] [--bank BANK]
        [--preset flute] [--out docs]

Writes, through the real ``render-midi`` path (the shipped default unless --model/--bank):
- ``audio/<preset>_three_pitches.ogg``: the preset at C3, C4 and C5, 1.5 s each;
- ``audio/<preset>_source_three_pitches.ogg``: its source instrument's own notes at the same
  pitches, from the dataset (the sound the preset should have);
- ``audio/xy_sweep.ogg``: one held C4 while the XY pad (CC1, then CC2) travels from the first
  corner preset across to the last;
- ``rainbowgram_<preset>_source_vs_model.png``: source | model at C4.
OGG Vorbis through libsndfile (soundfile), 16 kHz mono.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

import mido
import numpy as np
import soundfile as sf

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from nsynth_live.host.bank import load_bank  # noqa: E402
from nsynth_live.host.defaults import bank_or_default  # noqa: E402
from nsynth_live.spectral import plot_rainbowgrams  # noqa: E402
from nsynth_live.timbre import load_source_notes  # noqa: E402

PITCHES = (48, 60, 72)
NOTE_S = 1.5
SR = 16000


def _midi(path: Path, notes: list[tuple[int, float, float]], ccs: list[tuple[float, int, int]] = ()) -> None:
    """A one-track MIDI file: notes (pitch, start s, length s) and CCs (time s, number, value)."""
    mid = mido.MidiFile(ticks_per_beat=480)
    track = mido.MidiTrack()
    mid.tracks.append(track)
    tick = lambda s: int(round(s * 960))  # 120 bpm: 960 ticks a second
    events = [(tick(t), mido.Message("note_on", note=p, velocity=100)) for p, t, _ in notes]
    events += [(tick(t + d), mido.Message("note_off", note=p, velocity=0)) for p, t, d in notes]
    events += [(tick(t), mido.Message("control_change", control=c, value=v)) for t, c, v in ccs]
    now = 0
    for at, msg in sorted(events, key=lambda e: e[0]):
        track.append(msg.copy(time=at - now))
        now = at
    mid.save(path)


def _render(mid: Path, wav: Path, args: argparse.Namespace, extra: list[str]) -> np.ndarray:
    cmd = [sys.executable, "-m", "nsynth_live", "render-midi", str(mid), "--out", str(wav)] + extra
    for flag in ("model", "bank"):
        if getattr(args, flag):
            cmd += [f"--{flag}", getattr(args, flag)]
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    return sf.read(wav, dtype="float32")[0]


def _ogg(path: Path, audio: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, np.clip(audio, -1, 1), SR, format="OGG", subtype="VORBIS")
    print(f"{path}: {path.stat().st_size / 1024:.0f} KiB")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", required=True, help="dataset holding the presets' source notes")
    ap.add_argument("--model", default=None)
    ap.add_argument("--bank", default=None)
    ap.add_argument("--preset", default="flute")
    ap.add_argument("--out", default="docs")
    args = ap.parse_args()
    out = Path(args.out)
    bank = load_bank(bank_or_default(args.bank))
    preset = bank.get(args.preset)
    with tempfile.TemporaryDirectory() as tmp:
        t = Path(tmp)
        _midi(t / "three.mid", [(p, i * NOTE_S, NOTE_S - 0.2) for i, p in enumerate(PITCHES)])
        model = _render(t / "three.mid", t / "three.wav", args, ["--preset", preset.name])
        corners = bank.corners or [p.name for p in bank.presets[:4]]
        sweep = [(i / 20, 1, int(round(127 * i / 40))) for i in range(41)]  # x: 0 -> 1 over 2 s
        sweep += [(2 + i / 20, 2, int(round(127 * i / 40))) for i in range(41)]  # then y: 0 -> 1
        _midi(t / "xy.mid", [(60, 0.0, 4.5)], [(0.0, 1, 0), (0.0, 2, 0)] + sweep)
        xy = _render(t / "xy.mid", t / "xy.wav", args, ["--xy", "0,0"])
    src = load_source_notes(Path(args.data), [preset], list(PITCHES))
    n = int(NOTE_S * SR)
    source = np.concatenate([src[(preset.name, p)][:n] for p in PITCHES])
    source = source * (np.abs(model).max() / max(np.abs(source).max(), 1e-9))  # at the model's level
    _ogg(out / "audio" / f"{preset.name}_three_pitches.ogg", model)
    _ogg(out / "audio" / f"{preset.name}_source_three_pitches.ogg", source)
    _ogg(out / "audio" / "xy_sweep.ogg", xy)
    print(f"XY sweep corners: {', '.join(corners)}")
    c4 = PITCHES.index(60)
    png = out / f"rainbowgram_{preset.name}_source_vs_model.png"
    plot_rainbowgrams([(f"source: {preset.name} C4", source[c4 * n : (c4 + 1) * n]),
                       (f"model: {preset.name} C4", model[c4 * n : (c4 + 1) * n])], str(png))
    print(png)
    return 0


if __name__ == "__main__":
    sys.exit(main())
