#!/usr/bin/env bash
# The main job on a fresh machine: set up, then run the most complete pipeline available.
# Until the shipped default model lands (issue 9) that is: build a small dataset from the
# installed GM soundfont, train the `tiny` config briefly, evaluate held-out reconstructions
# (table + rainbowgrams) and draw the training curve. Everything goes to ./demo-out/.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
OUT="${1:-demo-out}"
SF2=/usr/share/sounds/sf2/TimGM6mb.sf2
NL=.venv/bin/nsynth-live
rm -rf "$OUT"
mkdir -p "$OUT"
echo "== 1/5 dataset: 6 GM programs x MIDI 48-72 from $(basename $SF2)"
$NL dataset build --soundfont "$SF2" --out "$OUT/data" --programs 0,24,40,56,73,11 \
    --pitches 48-72 --velocities 100 --splits 0.67,0.0,0.33 --no-progress
$NL dataset info "$OUT/data" | head -12
echo "== 2/5 train: tiny config, 200 steps"
$NL train --config tiny --data "$OUT/data" --out "$OUT/run" --steps 200 --batch-size 4 \
    --crop 2048 --lr 3e-3 --checkpoint-every 100 --valid-every 100 --log-every 20 --no-progress
echo "== 3/5 evaluate: 2 held-out notes, 1 s each"
$NL evaluate --model "$OUT/run" --data "$OUT/data" --out "$OUT/eval" --limit 2 --seconds 1 --plots 2 --no-progress
echo "== 4/5 training curve"
$NL curve "$OUT/run" --out "$OUT/curve.png"
echo "== 5/5 a MIDI phrase through the live host's voices (presets/example: an early checkpoint)"
$NL render-midi presets/example/phrase.mid --model presets/example/model --bank presets/example/bank \
    --preset flute --out "$OUT/phrase.wav"
echo
echo "done. Look at:"
echo "  $OUT/data/                 NSynth-layout dataset (examples.json + audio/*.wav per split)"
echo "  $OUT/run/metrics.jsonl     training metrics; $OUT/curve.png the curve"
echo "  $OUT/eval/results.json     NLL / f0 / spectral distance vs a noise baseline"
echo "  $OUT/eval/*.png            rainbowgrams: original | reconstruction | baseline"
echo "  $OUT/eval/audio/*.wav      originals and reconstructions"
echo "  $OUT/phrase.wav            a MIDI phrase rendered with the example model and bank"
