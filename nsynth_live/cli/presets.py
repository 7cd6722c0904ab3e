"""``nsynth-live presets list|show``: look inside a preset bank (no torch)."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("presets", help="list a preset bank or show one preset",
                       description="Read a preset bank folder (bank.json + one .npy per preset), validate it "
                       "and print its presets.")
    group = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    ls = group.add_parser("list", help="every preset of a bank", description="Validate BANK and list its presets.")
    ls.add_argument("bank", metavar="BANK", help="bank folder")
    ls.set_defaults(func=_list)
    show = group.add_parser("show", help="one preset in detail",
                            description="Validate BANK and describe one preset (name or 0-based index).")
    show.add_argument("bank", metavar="BANK", help="bank folder")
    show.add_argument("preset", metavar="PRESET", help="preset name or 0-based index")
    show.set_defaults(func=_show)


def _list(args: argparse.Namespace) -> int:
    from nsynth_live.host.bank import load_bank

    bank = load_bank(args.bank)
    print(f"bank {bank.name!r}: {len(bank.presets)} presets, {bank.frames} frames x {bank.bottleneck} "
          f"(hop {bank.hop} at {bank.sample_rate} Hz)")
    corners = set(bank.corners or [])
    width = max(len(p.name) for p in bank.presets)
    for i, p in enumerate(bank.presets):
        mark = " [corner %d]" % bank.corners.index(p.name) if p.name in corners else ""
        print(f"{i:3d}  {p.name:<{width}}  pitch {p.source_pitch:3d}  {', '.join(p.tags)}{mark}")
    return 0


def _show(args: argparse.Namespace) -> int:
    import numpy as np

    from nsynth_live.host.bank import load_bank

    bank = load_bank(args.bank)
    p = bank.get(int(args.preset) if args.preset.lstrip("-").isdigit() else args.preset)
    r = p.regions
    sec = bank.hop / bank.sample_rate
    print(f"name           {p.name}")
    print(f"source pitch   {p.source_pitch}")
    print(f"tags           {', '.join(p.tags) or '-'}")
    print(f"frames         {p.frames} x {p.embedding.shape[1]} ({p.frames * sec:.2f} s)")
    print(f"attack         frames 0..{r['sustain_start'] - 1}")
    print(f"sustain        frames {r['sustain_start']}..{r['sustain_end'] - 1} "
          f"({r['sustain_start'] * sec:.2f}-{r['sustain_end'] * sec:.2f} s, held while the key is down)")
    print(f"release        frames {r['release_start']}..{p.frames - 1} (from {r['release_start'] * sec:.2f} s)")
    print(f"embedding      mean {np.mean(p.embedding):+.3f}, std {np.std(p.embedding):.3f}, "
          f"range [{p.embedding.min():+.3f}, {p.embedding.max():+.3f}]")
    for k, v in p.provenance.items():
        print(f"{k:<14} {v}")
    return 0
