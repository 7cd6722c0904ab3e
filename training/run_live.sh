#!/usr/bin/env bash
# The shipped default's training run (issue 9): the `live` config on FluidR3_GM, resumed across
# sessions. Builds the dataset first if missing (deterministic, ~15 s), then trains in the
# background-friendly way: checkpoints every 500 steps into training/live/, SIGTERM-safe.
#   bash training/run_live.sh [THREADS]
set -euo pipefail
cd "$(dirname "$0")/.."
THREADS="${1:-2}"
DATA=data/fluidr3
PROGRAMS=0,4,6,8,11,12,13,16,19,21,24,25,26,29,32,33,38,40,42,45,46,48,52,53,56,57,60,61,64,65,68,71,73,75,79,80,81,88,89,104
if [ ! -f "$DATA/nsynth-train/examples.json" ]; then
    .venv/bin/nsynth-live dataset build --soundfont /usr/share/sounds/sf2/FluidR3_GM.sf2 --out "$DATA" \
        --programs "$PROGRAMS" --pitches 24-96 --velocities 100 --seed 0 --no-progress
fi
RESUME=()
[ -f training/live/checkpoint.pt ] && RESUME=(--resume)
exec .venv/bin/nsynth-live train --config live --data "$DATA" --out training/live \
    --steps 200000 --schedule-steps 200000 --batch-size 8 --crop 6144 --lr 1e-3 \
    --checkpoint-every 500 --valid-every 1000 --valid-notes 64 --log-every 50 \
    --threads "$THREADS" --no-progress "${RESUME[@]}"
