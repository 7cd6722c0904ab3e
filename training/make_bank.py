"""Build a preset bank from the training dataset's notes with an export's encoder (issue 9).

    python training/make_bank.py --model EXPORT --out BANK [--data data/fluidr3] [--soundfont FILE]

One preset per chosen General MIDI program, encoded from its C4 note (C3 for basses) at
velocity 100: 20 presets across the NSynth families, corners piano / flute / strings / saw lead.
Held-out (valid/test) instruments are included on purpose: a bank is also a test of how the
model encodes sounds it never trained on. On a multi-soundfont dataset (data/multi) ``--soundfont``
picks whose bank-0 programs (default FluidR3_GM.sf2); each preset's provenance then names the
soundfont file, bank, program, pitch and velocity of its source note.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from nsynth_live.host.bank import load_bank, save_bank  # noqa: E402
from nsynth_live.host.encode import encode_files  # noqa: E402
from nsynth_live.gm import program_name  # noqa: E402
from nsynth_live.nsynth import load_examples  # noqa: E402

PROGRAMS = [0, 4, 6, 11, 12, 16, 19, 24, 26, 29, 32, 33, 40, 42, 48, 52, 56, 61, 65, 71, 73, 75, 80, 81]
CORNERS = [0, 73, 48, 81]  # (0,0) piano, (1,0) flute, (0,1) strings, (1,1) saw lead


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", required=True, help="export directory")
    ap.add_argument("--out", required=True, help="bank folder (replaced)")
    ap.add_argument("--data", default="data/fluidr3", help="dataset root built by training/run.sh")
    ap.add_argument("--soundfont", default="FluidR3_GM.sf2",
                    help="the soundfont whose bank-0 programs become presets (datasets of several soundfonts)")
    args = ap.parse_args()
    notes = {}
    for split in ("train", "valid", "test"):
        split_dir = Path(args.data) / f"nsynth-{split}"
        for n in load_examples(split_dir):
            prog = n.extra.get("program")
            want = 48 if n.instrument_family_str == "bass" else 60
            ours = n.extra.get("soundfont", args.soundfont) == args.soundfont and n.extra.get("bank", 0) == 0
            if ours and prog in PROGRAMS and n.pitch == want and n.velocity == 100:
                notes[prog] = (n, split_dir / "audio" / f"{n.note_str}.wav", split)
    out = Path(args.out)
    if out.exists():
        shutil.rmtree(out)
    for prog in PROGRAMS:
        if prog not in notes:
            print(f"program {prog} ({program_name(prog)}): no note in {args.data}, skipped")
            continue
        n, wav, split = notes[prog]
        name = program_name(prog).lower().replace(" ", "-").replace("(", "").replace(")", "")
        where = {"soundfont": n.extra.get("soundfont", args.soundfont), "bank": n.extra.get("bank", 0),
                 "program": prog, "pitch": n.pitch, "velocity": n.velocity, "split": split}
        encode_files([wav], args.model, out, name=name, pitch=n.pitch,
                     tags=[n.instrument_family_str, n.instrument_source_str, f"gm{prog}", f"{split}-split"],
                     bank_name="nsynth-live default", provenance=where)
    bank = load_bank(out)
    by_prog = {p.tags[2]: p.name for p in bank.presets}
    bank.corners = [by_prog[f"gm{c}"] for c in CORNERS]
    save_bank(bank)
    print(f"{out}: {len(bank.presets)} presets, corners {bank.corners}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
