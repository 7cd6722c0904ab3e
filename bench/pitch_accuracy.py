"""How often a model plays in tune: notes rendered from a bank's presets across a pitch range,
their f0 estimated, the share within 50 cents of the requested pitch (issue 9's acceptance).

    python bench/pitch_accuracy.py --model EXPORT --bank BANK [--pitches 36-84] [--step 1]
        [--presets all|a,b] [--seconds 2] [--engine auto] [--json FILE]

Each preset's trajectory is played at every pitch (the one-hot pitch and, for models with one,
the excitation take the requested pitch; the embedding is the preset's), for ``--seconds`` of
its held part, and judged on the part after the attack. Prints a table per preset and writes JSON.
Beside the in-tune share it reports the mean share of energy at the requested pitch's first 8
harmonics (:func:`nsynth_live.pitch.harmonic_fraction`), which tracks a model's progress from
noise towards tones before a stable f0 can be found.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from host.bank import load_bank  # noqa: E402
from host.engine import open_engine, render_frames  # noqa: E402
from nsynth_live import mulaw, sampling  # noqa: E402
from nsynth_live.pitch import cents_off, harmonic_fraction, note_f0  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", required=True)
    ap.add_argument("--bank", required=True)
    ap.add_argument("--pitches", default="36-84")
    ap.add_argument("--step", type=int, default=1)
    ap.add_argument("--presets", default="all")
    ap.add_argument("--seconds", type=float, default=2.0)
    ap.add_argument("--engine", default="auto")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--temperature", type=float, default=1.0)
    ap.add_argument("--json", default=None)
    args = ap.parse_args()

    lo, hi = (int(x) for x in args.pitches.split("-"))
    pitches = list(range(lo, hi + 1, args.step))
    bank = load_bank(args.bank)
    presets = bank.presets if args.presets == "all" else [bank.get(n) for n in args.presets.split(",")]
    n = int(args.seconds * 16000)
    jobs = [(p, q) for p in presets for q in pitches]
    results = []
    t0 = time.perf_counter()
    with open_engine(args.model, args.engine, max_voices=args.batch) as eng:
        frames = -(-n // eng.cfg.hop)
        for i in range(0, len(jobs), args.batch):
            chunk = jobs[i : i + args.batch]
            slots = [eng.add_voice() for _ in chunk]
            emb = np.stack([p.embedding[:frames].T for p, _ in chunk])  # [B, 16, F]
            pitch = np.array([q for _, q in chunk])
            cond = eng.condition(emb, pitch)
            noise = sampling.NoiseStream(args.seed, list(range(i, i + len(chunk))))
            classes = render_frames(eng, slots, cond, n, noise, args.temperature, pitch=pitch)
            for s in slots:
                eng.remove_voice(s)
            audio = mulaw.decode(classes)
            for (p, q), a in zip(chunk, audio):
                f0 = note_f0(a, 16000, start_s=0.25, end_s=args.seconds)
                c = None if f0 is None else float(cents_off(f0, q))
                hf = harmonic_fraction(a, 16000, q, start_s=0.25, end_s=args.seconds)
                results.append({"preset": p.name, "pitch": q, "cents": c, "in_tune": c is not None and abs(c) <= 50,
                                "harmonic_fraction": hf})
    took = time.perf_counter() - t0
    share = float(np.mean([r["in_tune"] for r in results]))
    harmonic = float(np.mean([r["harmonic_fraction"] for r in results]))
    print(f"{len(results)} notes ({len(presets)} presets x {len(pitches)} pitches, {args.seconds} s) in {took:.0f} s")
    for p in presets:
        rs = [r for r in results if r["preset"] == p.name]
        print(f"  {p.name:<32} {np.mean([r['in_tune'] for r in rs]):6.1%}   harmonic energy "
              f"{np.mean([r['harmonic_fraction'] for r in rs]):5.1%}")
    print(f"harmonic energy at the requested pitch (first 8 harmonics, mean): {harmonic:.1%}")
    print(f"in tune (within 50 cents): {share:.1%}")
    if args.json:
        Path(args.json).write_text(json.dumps({"model": args.model, "bank": args.bank, "in_tune": share, "harmonic_fraction": harmonic,
                                               "notes": results, "settings": vars(args)}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
