"""Benchmark the soundfont dataset builder: notes per second with 1 and more workers.

Renders a fixed set of notes (default: 4 programs x 50 pitches x 5 velocities = 1000 notes) from
each soundfont found, into a fresh temporary folder per run, and reports wall-clock throughput
including everything a user waits for (soundfont hashing and loading, worker start-up, wav
writes with fsync, examples.json: "notes/s"), and the rendering phase alone (worker start-up
included: "render notes/s"). The builder starts one worker process per 500 notes at most (a
worker costs a few hundred ms to start), so ``--velocities 100`` (200 notes) renders in-process
whatever ``--workers`` says; the "used" column shows what ran. "cpu ms/note" is CPU time
(process and workers), which, unlike wall-clock rates, does not depend on what else runs on a
shared machine. Each configuration runs ``--repeat`` times and the best is kept.

    python bench/bench_dataset.py [--workers 1,2] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

from nsynth_live.int_list import parse_int_list
from nsynth_live.soundfont import build_dataset

SOUNDFONTS = ("/usr/share/sounds/sf2/TimGM6mb.sf2", "/usr/share/sounds/sf2/FluidR3_GM.sf2")
PROGRAMS = (0, 24, 40, 73)  # piano, nylon guitar, violin, flute
PITCHES = range(36, 86)  # 50 pitches, C2..C#6
VELOCITIES = (25, 50, 75, 100, 127)


def run_once(soundfont: str, workers: int, programs, pitches, velocities) -> dict:
    tmp = Path(tempfile.mkdtemp(prefix="bench_dataset_"))
    try:
        cpu0 = _cpu_seconds()
        t0 = time.perf_counter()
        report = build_dataset(
            soundfont,
            tmp / "out",
            programs=programs,
            pitches=pitches,
            velocities=velocities,
            workers=workers,
            progress=False,
        )
        wall = time.perf_counter() - t0
        cpu = _cpu_seconds() - cpu0
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return {
        "used": report.workers,
        "notes": report.rendered,
        "silent": len(report.silent),
        "clipped": len(report.clipped),
        "max_peak": round(report.max_peak, 4),
        "seconds": round(wall, 3),
        "render_seconds": round(report.render_seconds, 3),
        "notes_per_s": round(report.rendered / wall, 1),
        "render_notes_per_s": round(report.rendered / report.render_seconds, 1),
        "cpu_ms_per_note": round(1000 * cpu / max(report.rendered, 1), 2),
    }


def _cpu_seconds() -> float:
    """User + system CPU time of this process and its finished children (the pool workers).

    Wall-clock rates depend on what else runs on a shared machine; CPU time per note does
    not, and 1000 / cpu_ms_per_note is what one free core sustains."""
    me = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--soundfont", action="append", help="SF2 file (repeatable); "
                        "default: TimGM6mb and FluidR3_GM from /usr/share/sounds/sf2 if present")
    parser.add_argument("--workers", default="1,2", help="comma-separated worker counts")
    parser.add_argument("--programs", default=",".join(map(str, PROGRAMS)), help="GM programs")
    parser.add_argument("--pitches", default=f"{PITCHES.start}-{PITCHES.stop - 1}",
                        help="pitch range lo-hi")
    parser.add_argument("--velocities", default=",".join(map(str, VELOCITIES)),
                        help="comma-separated velocities")
    parser.add_argument("--repeat", type=int, default=2, help="runs per configuration (best kept)")
    parser.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    args = parser.parse_args(argv)

    fonts = args.soundfont or [p for p in SOUNDFONTS if os.path.exists(p)]
    if not fonts:
        print("no soundfont found; pass --soundfont", file=sys.stderr)
        return 2
    programs = parse_int_list(args.programs, "--programs", 0, 127)
    pitches = parse_int_list(args.pitches, "--pitches", 0, 127)
    velocities = parse_int_list(args.velocities, "--velocities", 1, 127)
    worker_counts = parse_int_list(args.workers, "--workers", 1)

    rows = []
    for sf in fonts:
        for workers in worker_counts:
            runs = [
                run_once(sf, workers, programs, pitches, velocities) for _ in range(args.repeat)
            ]
            best = max(runs, key=lambda r: r["notes_per_s"])
            rows.append({"soundfont": Path(sf).name, "workers": workers, **best})


    header = ("soundfont", "workers", "used", "notes", "silent", "clipped", "max peak", "total s",
              "notes/s", "render s", "render notes/s", "cpu ms/note")
    table = [
        (r["soundfont"], r["workers"], r["used"], r["notes"], r["silent"], r["clipped"], r["max_peak"],
         r["seconds"], r["notes_per_s"], r["render_seconds"], r["render_notes_per_s"],
         r["cpu_ms_per_note"])
        for r in rows
    ]  # fmt: skip
    widths = [max(len(str(h)), *(len(str(t[i])) for t in table)) for i, h in enumerate(header)]
    print("  ".join(f"{h:>{w}}" for h, w in zip(header, widths)))
    for t in table:
        print("  ".join(f"{str(c):>{w}}" for c, w in zip(t, widths)))

    if args.json:
        meta = {
            "cpu_count": os.cpu_count(),
            "load_average": os.getloadavg(),
            "machine": platform.machine(),
            "python": platform.python_version(),
            "programs": programs,
            "pitches": [pitches[0], pitches[-1]],
            "velocities": velocities,
            "repeat": args.repeat,
        }
        Path(args.json).write_text(json.dumps({"meta": meta, "results": rows}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
