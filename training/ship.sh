#!/usr/bin/env bash
# Ship a training run as the default model and bank (issue 9):
#   [TEMPERATURE=T] [EXCITATION_GAIN=G] bash training/ship.sh [RUN] [DEST]
#   default: training/live-hn-res -> presets/default, recommending temperature 0.3, excitation gain 1
#   (a residual-form model plays at pitch lock 1: docs/evaluation.md)
# 1. export the run's EMA weights to DEST/model (ONNX + model.json, atomically), recommending the
#    decoding settings T and G (model.json 'decoding': every command uses them unless told otherwise)
# 2. encode the preset bank from the dataset's notes (training/make_bank.py) into DEST/bank, and
#    calibrate the export's output level with it (model.json 'level': every render's one gain)
# 3. measure pitch accuracy and timbre spread over MIDI 36-84 with every preset, with the
#    recommended settings (DEST/pitch_accuracy.json) and with the neutral ones, T = 1 and G = 1
#    (DEST/pitch_accuracy_neutral.json)
# 4. judge timbre (bench timbre: identity of every preset x MIDI 36-84, 2 s notes, and 10 blends)
#    into DEST/timbre.json, its confusion matrix into docs/timbre_default.png
# 5. write DEST/HOW_IT_WAS_MADE.md: data, commands, steps, training hours, the figures
set -euo pipefail
cd "$(dirname "$0")/.."
RUN="${1:-training/live-hn-res}"
DEST="${2:-presets/default}"
TEMPERATURE="${TEMPERATURE:-0.3}"
EXCITATION_GAIN="${EXCITATION_GAIN:-1}"
PY=.venv/bin/python
NL=.venv/bin/nsynth-live
mkdir -p "$DEST"
$NL export --checkpoint "$RUN" --out "$DEST/model" --force --temperature "$TEMPERATURE" --excitation-gain "$EXCITATION_GAIN"
DATA=$($PY -c 'import json,sys; print(json.load(open(sys.argv[1]))["data"])' "$RUN/settings.json")
$PY training/make_bank.py --model "$DEST/model" --out "$DEST/bank" --data "$DATA"
$NL calibrate-level --model "$DEST/model" --bank "$DEST/bank"
$PY bench/pitch_accuracy.py --model "$DEST/model" --bank "$DEST/bank" --pitches 36-84 --seconds 2 \
    --reference-data "$DATA" --json "$DEST/pitch_accuracy.json" | tail -3
$PY bench/pitch_accuracy.py --model "$DEST/model" --bank "$DEST/bank" --pitches 36-84 --seconds 2 \
    --temperature 1 --excitation-gain 1 --json "$DEST/pitch_accuracy_neutral.json" | tail -3
$NL bench timbre --model "$DEST/model" --bank "$DEST/bank" --data "$DATA" --json "$DEST/timbre.json" \
    --png docs/timbre_default.png | grep -E "identity|in tune|blends rising"
$PY - "$RUN" "$DEST" <<'EOF'
import json, math, sys
from pathlib import Path

run, dest = Path(sys.argv[1]), Path(sys.argv[2])
settings = json.loads((run / "settings.json").read_text())
model = json.loads((dest / "model" / "model.json").read_text())
# The run may have trained on since the export: count only what the shipped weights saw.
recs = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines() if line.strip()]
recs = [r for r in recs if r.get("step", 0) <= model["source"]["step"]]
steps = [r for r in recs if "loss_bits" in r]
# Training time from the logged rates: each record covers log_every steps at its steps/s.
hours, prev = 0.0, 0
for r in steps:
    if r["steps_per_s"] > 0:
        hours += (r["step"] - prev) / r["steps_per_s"] / 3600
    prev = r["step"]
valid = [r for r in recs if "valid_bits" in r]
pitch = json.loads((dest / "pitch_accuracy.json").read_text())
timbre = json.loads((dest / "timbre.json").read_text()) if (dest / "timbre.json").exists() else None
neutral = json.loads((dest / "pitch_accuracy_neutral.json").read_text())
dec = model["decoding"]
bank = json.loads((dest / "bank" / "bank.json").read_text())
size = sum(f.stat().st_size for f in dest.rglob("*") if f.is_file()) / 1e6
cfg = model["config"]
if cfg.get("source_harmonics"):
    kind = (f"the paper's one-hot pitch plus a learned harmonic source: {cfg['source_harmonics']} harmonics whose "
            "per-frame amplitudes come from the embedding and pitch (`source.onnx`), synthesised by the host")
elif cfg.get("excitation_harmonics"):
    kind = "the paper's one-hot pitch plus a sinusoidal excitation"
else:
    kind = "the paper's one-hot pitch"
build_file = Path(settings["data"]) / "build.json"
build = json.loads(build_file.read_text()) if build_file.exists() else {}
fonts = build.get("soundfonts") or []
counts = {}
for split in ("train", "valid", "test"):
    ex = Path(settings["data"]) / f"nsynth-{split}" / "examples.json"
    counts[split] = len(json.loads(ex.read_text())) if ex.exists() else 0
data_line = (f"- **Data:** `{settings['data']}`, built by `training/run.sh` with the project's soundfont builder from "
             + ", ".join(f"{f['name']} ({f['instruments']} instruments)" for f in fonts)
             + f": banks {build.get('banks', 0)}, programs {build.get('programs', '?')}, MIDI "
             f"{min(build.get('pitches', [0]))}-{max(build.get('pitches', [0]))}, velocities "
             f"{','.join(map(str, build.get('velocities', [])))}, {build.get('note_s', 4):g} s notes held "
             f"{build.get('note_off_s', 3):g} s at 16 kHz, split by instrument per soundfont; "
             f"{counts['train']:,} / {counts['valid']:,} / {counts['test']:,} notes (train / valid / test)."
             if fonts else f"- **Data:** `{settings['data']}`.")
lines = [
    "# How the shipped default was made",
    "",
    f"- **Model:** config `{cfg['name']}` ({kind}), EMA weights of `{run}` at step {model['source']['step']}"
    + (f", started from `{settings['init_from']}`'s weights (`--init-from`)" if settings.get("init_from") else "") + ".",
    data_line,
    f"- **Training:** `bash training/run.sh {model['config']['name']} 2` on a 2-core CPU (bf16 autocast), batch "
    f"{settings['batch_size']} x {settings['crop']} samples, peak lr {settings['lr']}, resumed across sessions; "
    f"about {hours:.1f} hours of training time over {steps[-1]['step'] if steps else 0} steps.",
]
for r in recs:  # every recorded intervention, in order: retuned settings, source refits, EMA restarts
    if "retuned" in r:
        lines.append(f"- From step {r['step']}: " + ", ".join(f"`{k}` {a} -> {b}" for k, (a, b) in r["retuned"].items()) + ".")
    elif "source_refit" in r:
        lines.append(f"- At step {r['step']}: the source network refitted by `{r['source_refit']['by']}`.")
    elif "ema_reset" in r:
        lines.append(f"- At step {r['step']}: {r['ema_reset']}.")
if valid:
    lines.append(f"- **Validation NLL** (held-out instruments, EMA): {valid[-1]['valid_bits']:.3f} bits/sample at step {valid[-1]['step']}.")
lines += [
    f"- **Bank:** {len(bank['presets'])} presets encoded by this model from C4 notes (C3 for basses) of the "
    "training data with `training/make_bank.py` (held-out instruments included); corners "
    + ", ".join(bank.get("corners") or []) + "."
    + (" Each preset carries its source note's measured harmonics (`harmonics_file`), which the model plays "
       "in its source network's place (docs/design.md)." if all("harmonics_file" in p for p in bank["presets"]) else "")
    + (" Each also carries the noise between its note's harmonics, measured in 64 bands (`noise_file`), which "
       "a residual-form model adds to its notes." if all("noise_file" in p for p in bank["presets"]) else "")
    + " Each preset's provenance names its source note's soundfont file, bank, program, pitch and velocity.",
    f"- **Decoding** (recommended in `model.json`, used by every command unless `--temperature` / "
    f"`--excitation-gain` say otherwise): temperature {dec['temperature']:g}, excitation gain {dec['excitation_gain']:g}.",
] + ([
    f"- **Level** (`model.json` 'level', `nsynth-live calibrate-level`): the loudest preset note peaks at "
    f"{20 * math.log10(model['level']['reference_peak']):.1f} dBFS at gain 1 ({model['level']['calibration']['loudest']}); "
    f"every render applies one gain that brings the loudest of the presets it plays to {model['level']['target_dbfs']:g} dBFS.",
] if model.get("level") else []) + [
    f"- **Pitch accuracy** (`bench/pitch_accuracy.py`, every preset x MIDI 36-84, 2 s notes): "
    f"**{100 * pitch['in_tune']:.1f}%** of {len(pitch['notes'])} notes within 50 cents with the recommended decoding; "
    f"{100 * neutral['in_tune']:.1f}% with temperature 1 and excitation gain 1.",
    f"- **Timbre spread** (mean distance between the presets' harmonic profiles at the same pitch): "
    f"{pitch['timbre_spread_db']:.1f} dB with the recommended decoding, {neutral['timbre_spread_db']:.1f} dB with "
    f"the neutral one, {pitch['reference_spread_db']:.1f} dB for the source instruments' own notes.",
] + ([
    f"- **Timbre** (`nsynth-live bench timbre`, {timbre['notes']} notes: every preset x MIDI "
    f"{timbre['pitches'][0]}-{timbre['pitches'][-1]}, {timbre['seconds']:g} s): the classifier trained on the "
    f"presets' source instruments names the right one for **{100 * timbre['identity']:.1f}%** of the rendered notes "
    f"(ceiling {100 * timbre['ceiling']:.1f}%, chance {100 * timbre['chance']:.1f}%): "
    f"{100 * timbre['identity_train']:.1f}% for presets of training instruments (ceiling "
    f"{100 * timbre['ceiling_train']:.1f}%), {100 * timbre['identity_held_out']:.1f}% for held-out ones (ceiling "
    f"{100 * timbre['ceiling_held_out']:.1f}%); {timbre['blends_monotonic']} of {len(timbre['blends'])} blends rise "
    "monotonically from one preset to the other.",
] if timbre else []) + [
    f"- **Size:** {size:.1f} MB.",
    "",
    f"Rebuild: `TEMPERATURE={dec['temperature']:g} EXCITATION_GAIN={dec['excitation_gain']:g} bash training/ship.sh {run} {dest}`.",
]
(dest / "HOW_IT_WAS_MADE.md").write_text("\n".join(lines) + "\n")
print(f"{dest}: shipped; {100 * pitch['in_tune']:.1f}% in tune ({100 * neutral['in_tune']:.1f}% at T=1, gain 1), {size:.1f} MB")
EOF
