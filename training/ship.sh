#!/usr/bin/env bash
# Ship a training run as the default model and bank (issue 9):
#   bash training/ship.sh [RUN] [DEST]        default: training/live-sine -> presets/default
# 1. export the run's EMA weights to DEST/model (ONNX + model.json, atomically)
# 2. encode the preset bank from the dataset's notes (training/make_bank.py) into DEST/bank
# 3. measure pitch accuracy over MIDI 36-84 with every preset (DEST/pitch_accuracy.json)
# 4. write DEST/HOW_IT_WAS_MADE.md: data, commands, steps, training hours, the figures
set -euo pipefail
cd "$(dirname "$0")/.."
RUN="${1:-training/live-sine}"
DEST="${2:-presets/default}"
PY=.venv/bin/python
NL=.venv/bin/nsynth-live
mkdir -p "$DEST"
$NL export --checkpoint "$RUN" --out "$DEST/model" --force
$PY training/make_bank.py --model "$DEST/model" --out "$DEST/bank"
$PY bench/pitch_accuracy.py --model "$DEST/model" --bank "$DEST/bank" --pitches 36-84 --seconds 2 \
    --json "$DEST/pitch_accuracy.json" | tail -1
$PY - "$RUN" "$DEST" <<'EOF'
import json, sys
from pathlib import Path

run, dest = Path(sys.argv[1]), Path(sys.argv[2])
recs = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines() if line.strip()]
steps = [r for r in recs if "loss_bits" in r]
settings = json.loads((run / "settings.json").read_text())
model = json.loads((dest / "model" / "model.json").read_text())
# Training time from the logged rates: each record covers log_every steps at its steps/s.
hours, prev = 0.0, 0
for r in steps:
    if r["steps_per_s"] > 0:
        hours += (r["step"] - prev) / r["steps_per_s"] / 3600
    prev = r["step"]
valid = [r for r in recs if "valid_bits" in r]
retuned = [r for r in recs if "retuned" in r]
pitch = json.loads((dest / "pitch_accuracy.json").read_text())
bank = json.loads((dest / "bank" / "bank.json").read_text())
size = sum(f.stat().st_size for f in dest.rglob("*") if f.is_file()) / 1e6
lines = [
    "# How the shipped default was made",
    "",
    f"- **Model:** config `{model['config']['name']}` ({'the paper' + chr(39) + 's one-hot pitch plus a sinusoidal excitation' if model['config'].get('excitation_harmonics') else 'the paper' + chr(39) + 's one-hot pitch'}), "
    f"EMA weights of `{run}` at step {model['source']['step']}.",
    f"- **Data:** `{settings['data']}`, built by `training/run.sh` with the project's soundfont builder from "
    "FluidR3_GM (MIT licence, Debian package `fluid-soundfont-gm`): 40 General MIDI programs, MIDI 24-96, "
    "velocity 100, 4 s notes held 3 s at 16 kHz, split by instrument.",
    f"- **Training:** `bash training/run.sh {model['config']['name']} 2` on a 2-core CPU (bf16 autocast), batch "
    f"{settings['batch_size']} x {settings['crop']} samples, peak lr {settings['lr']}, resumed across sessions; "
    f"about {hours:.1f} hours of training time over {steps[-1]['step'] if steps else 0} steps.",
]
for r in retuned:
    lines.append(f"- From step {r['step']}: " + ", ".join(f"`{k}` {a} -> {b}" for k, (a, b) in r["retuned"].items()) + ".")
if valid:
    lines.append(f"- **Validation NLL** (held-out instruments, EMA): {valid[-1]['valid_bits']:.3f} bits/sample at step {valid[-1]['step']}.")
lines += [
    f"- **Bank:** {len(bank['presets'])} presets encoded by this model from C4 notes (C3 for basses) with "
    "`training/make_bank.py`; corners " + ", ".join(bank.get("corners") or []) + ".",
    f"- **Pitch accuracy** (`bench/pitch_accuracy.py`, every preset x MIDI 36-84, 2 s notes, temperature "
    f"{pitch['settings']['temperature']}): **{100 * pitch['in_tune']:.1f}%** of {len(pitch['notes'])} notes within 50 cents.",
    f"- **Size:** {size:.1f} MB.",
    "",
    "Rebuild: `bash training/ship.sh " + f"{run} {dest}`.",
]
(dest / "HOW_IT_WAS_MADE.md").write_text("\n".join(lines) + "\n")
print(f"{dest}: shipped; {100 * pitch['in_tune']:.1f}% in tune, {size:.1f} MB")
EOF
