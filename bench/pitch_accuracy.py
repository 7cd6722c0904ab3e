"""How often a model plays in tune: notes rendered from a bank's presets across a pitch range,
their f0 estimated, the share within 50 cents of the requested pitch (issue 9's acceptance).

    python bench/pitch_accuracy.py --model EXPORT --bank BANK [--pitches 36-84] [--step 1]
        [--presets all|a,b] [--seconds 2] [--engine auto] [--temperature T] [--excitation-gain G]
        [--reference-data DATASET] [--json FILE]

Each preset's trajectory is played at every pitch (the one-hot pitch and, for models with one,
the excitation take the requested pitch; the embedding is the preset's), for ``--seconds`` of
its held part, and judged on the part after the attack. Prints a table per preset and writes JSON.
Beside the in-tune share it reports the mean share of energy at the requested pitch's first 8
harmonics (:func:`nsynth_live.pitch.harmonic_fraction`), which tracks a model's progress from
noise towards tones before a stable f0 can be found.

Pitch can be bought with timbre (a high excitation gain pulls every preset towards the same plain
harmonics), so it also reports the timbre spread: the mean distance in dB between the presets'
harmonic profiles (:func:`nsynth_live.pitch.harmonic_profile`) at the same pitch, and with
``--reference-data`` the same figure for the presets' source instruments' own notes, and each
note's profile distance to its source instrument's note at the same pitch (timbre fidelity).
Temperature and excitation gain default to the export's recommended ones.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from nsynth_live.atomic import atomic_write_text  # noqa: E402
from nsynth_live.host.bank import load_bank  # noqa: E402
from nsynth_live.host.engines import note_audio, open_engine, render_frames  # noqa: E402
from nsynth_live import sampling  # noqa: E402
from nsynth_live.pitch import cents_off, harmonic_fraction, harmonic_profile, note_f0, spread_over_pitches  # noqa: E402
from nsynth_live.timbre import load_source_notes  # noqa: E402


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
    ap.add_argument("--temperature", type=float, default=None, help="default: the export's")
    ap.add_argument("--excitation-gain", type=float, default=None, help="default: the export's")
    ap.add_argument("--reference-data", default=None,
                    help="dataset holding the presets' source notes: their own timbre spread, for comparison")
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
        decoding = eng.decoding.override(args.temperature, args.excitation_gain)
        weights_sha256 = eng.info.weights_sha256  # ties the figures to the weights measured
        for i in range(0, len(jobs), args.batch):
            chunk = jobs[i : i + args.batch]
            slots = [eng.add_voice() for _ in chunk]
            emb = np.stack([p.embedding[:frames].T for p, _ in chunk])  # [B, 16, F]
            pitch = np.array([q for _, q in chunk])
            cond = eng.condition(emb, pitch)
            amps = eng.source_amplitudes(emb, pitch) if eng.cfg.source_harmonics else None
            noise = sampling.NoiseStream(args.seed, list(range(i, i + len(chunk))))
            classes = render_frames(eng, slots, cond, n, noise, decoding.temperature, pitch=pitch,
                                    excitation_gain=decoding.excitation_gain, amplitudes=amps)
            for s in slots:
                eng.remove_voice(s)
            audio = note_audio(eng.cfg, classes, amps, pitch)
            for (p, q), a in zip(chunk, audio):
                f0 = note_f0(a, 16000, start_s=0.25, end_s=args.seconds)
                c = None if f0 is None else float(cents_off(f0, q))
                hf = harmonic_fraction(a, 16000, q, start_s=0.25, end_s=args.seconds)
                prof = harmonic_profile(a, 16000, q, start_s=0.25, end_s=args.seconds)
                results.append({"preset": p.name, "pitch": q, "cents": c, "in_tune": c is not None and abs(c) <= 50,
                                "harmonic_fraction": hf, "profile_db": [round(float(x), 2) for x in prof]})
    took = time.perf_counter() - t0
    share = float(np.mean([r["in_tune"] for r in results]))
    harmonic = float(np.mean([r["harmonic_fraction"] for r in results]))
    spread = spread_over_pitches({(r["preset"], r["pitch"]): r["profile_db"] for r in results}, pitches)
    reference = error = None
    if args.reference_data:
        ref_profiles = _reference_profiles(Path(args.reference_data), presets, pitches, args.seconds)
        reference = spread_over_pitches(ref_profiles, pitches)
        # Fidelity, not just variety: how far each note's profile is from its source instrument's
        # own note at the same pitch.
        gaps = [np.sqrt(np.mean((np.array(r["profile_db"]) - np.array(ref_profiles[(r["preset"], r["pitch"])])) ** 2))
                for r in results if (r["preset"], r["pitch"]) in ref_profiles]
        error = float(np.mean(gaps)) if gaps else None
    print(f"{len(results)} notes ({len(presets)} presets x {len(pitches)} pitches, {args.seconds} s) in {took:.0f} s")
    for p in presets:
        rs = [r for r in results if r["preset"] == p.name]
        print(f"  {p.name:<32} {np.mean([r['in_tune'] for r in rs]):6.1%}   harmonic energy "
              f"{np.mean([r['harmonic_fraction'] for r in rs]):5.1%}")
    print(f"harmonic energy at the requested pitch (first 8 harmonics, mean): {harmonic:.1%}")
    ref = "" if reference is None else f" (the source instruments' own notes: {reference:.1f} dB)"
    if error is not None:
        ref += f"; distance to the source instrument's note at the same pitch: {error:.1f} dB"
    print(f"timbre spread between presets (harmonic profiles, mean pairwise distance): "
          f"{'n/a' if spread is None else f'{spread:.1f} dB'}{ref}")
    print(f"decoding: temperature {decoding.temperature:g}, excitation gain {decoding.excitation_gain:g}")
    print(f"in tune (within 50 cents): {share:.1%}")
    if args.json:
        atomic_write_text(args.json, json.dumps({
            "model": args.model, "weights_sha256": weights_sha256, "bank": args.bank, "in_tune": share,
            "harmonic_fraction": harmonic,
            "timbre_spread_db": spread, "reference_spread_db": reference, "timbre_error_db": error,
            "decoding": decoding.to_dict(),
            "notes": results, "settings": vars(args)}, indent=1) + "\n")
    return 0


def _reference_profiles(data: Path, presets: list, pitches: list[int], seconds: float) -> dict[tuple[str, int], list[float]]:
    """Harmonic profiles of each preset's source instrument at each pitch, from the dataset's own
    notes (:func:`nsynth_live.timbre.load_source_notes`; pitches it lacks are skipped)."""
    notes = load_source_notes(data, presets, pitches)
    return {k: list(harmonic_profile(a, 16000, k[1], start_s=0.25, end_s=seconds)) for k, a in notes.items()}


if __name__ == "__main__":
    sys.exit(main())
