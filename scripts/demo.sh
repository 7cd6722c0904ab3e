#!/usr/bin/env bash
# The main job on a fresh machine: set up, then play the shipped default model and bank offline.
#   bash scripts/demo.sh [OUT]          (default OUT: demo-out/)
# 1. a short MIDI phrase through the live host's voices -> OUT/phrase.wav
# 2. a small bank (2 presets x 2 octaves x 2 velocity layers) -> OUT/bank/*.wav + one .sfz per preset
# 3. held-out reconstructions by the shipped model against the evaluate command's noise baseline,
#    on notes of a soundfont it never trained on (TimGM6mb) -> OUT/eval/ (table, rainbowgrams)
# Set NSYNTH_SKIP_SETUP=1 to reuse an existing .venv.
set -euo pipefail
cd "$(dirname "$0")/.."
[ "${NSYNTH_SKIP_SETUP:-0}" = 1 ] || bash scripts/setup.sh
OUT="${1:-demo-out}"
NL=.venv/bin/nsynth-live
rm -rf "$OUT"
mkdir -p "$OUT"
echo "== 1/3 a MIDI phrase with the shipped default (presets/default)"
$NL render-midi presets/phrase.mid --preset flute --out "$OUT/phrase.wav"
echo "== 2/3 a small bank to WAV + SFZ"
$NL render-bank --presets acoustic-grand-piano,flute --pitches 48,52,55,60,64,67,72 --velocities 64,127 --seconds 2 \
    --no-progress --out "$OUT/bank"
echo "== 3/3 held-out reconstructions vs the noise baseline (TimGM6mb notes, never trained on)"
$NL dataset build --soundfont /usr/share/sounds/sf2/TimGM6mb.sf2 --out "$OUT/data" --programs 0,24,40,73 \
    --pitches 48-72 --velocities 100 --splits 0.5,0.0,0.5 --no-progress > /dev/null
$NL evaluate --model presets/default/model --data "$OUT/data" --out "$OUT/eval" --limit 4 --seconds 2 \
    --plots 2 --no-progress
echo
echo "done. Listen and look:"
echo "  $OUT/phrase.wav            a MIDI phrase played by the shipped model (flute preset)"
echo "  $OUT/bank/*.sfz            load one in any SFZ sampler (sforzando, Sitala, Decent Sampler...)"
echo "  $OUT/bank/samples/*.wav    its samples, named like NSynth notes (preset-pitch-velocity)"
echo "  $OUT/eval/results.json     NLL / f0 / spectral distance vs the noise baseline"
echo "  $OUT/eval/*.png            rainbowgrams: original | reconstruction | baseline"
