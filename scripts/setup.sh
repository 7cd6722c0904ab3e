#!/usr/bin/env bash
# Set up everything nsynth-live needs on a fresh Debian/Ubuntu machine, idempotently:
# system packages (PortAudio, JACK, FluidSynth, a small GM soundfont, Pure Data for the example
# patch's tests, Chromium for the browser pad's), a venv in .venv,
# torch pinned to the CPU wheel *before* the project (so pip never pulls a CUDA build),
# then the project itself with its training (torch, pyfluidsynth, matplotlib) and dev extras.
set -euo pipefail
cd "$(dirname "$0")/.."

# gcc + libc6-dev: the fused engine compiles its native kernel on first use (numba without them).
APT_PACKAGES=(libportaudio2 jackd2 libfluidsynth3 libsndfile1 timgm6mb-soundfont csound-soundfont puredata-core
              chromium chromium-driver gcc libc6-dev)
TORCH_PIN="${NSYNTH_TORCH_PIN:-torch==2.13.0}"

missing=()
for p in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
    echo "setup: installing system packages: ${missing[*]}"
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    export DEBIAN_FRONTEND=noninteractive
    # jackd2 asks whether to enable realtime priority; answer no without a prompt.
    echo "jackd2 jackd/tweak_rt_limits boolean false" | $SUDO debconf-set-selections
    $SUDO apt-get update -qq
    $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

PY="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
    echo "setup: creating .venv"
    "$PY" -m venv .venv
    .venv/bin/pip install -q --upgrade pip 2>&1 | grep -v '^WARNING: Location' || true
fi
if ! .venv/bin/python -c "import torch" 2>/dev/null; then
    echo "setup: installing $TORCH_PIN"
    .venv/bin/pip install -q "$TORCH_PIN" 2>&1 | grep -v '^WARNING: Location' || true
fi
echo "setup: installing nsynth-live (editable) with its train and dev extras"
.venv/bin/pip install -q -e '.[train,dev]' 2>&1 | grep -v -e '^WARNING: Location' -e '^ *$' || true
.venv/bin/python -c "import nsynth_live, torch, onnxruntime, fluidsynth, sounddevice, numba, matplotlib" \
    || { echo "setup: the environment is incomplete" >&2; exit 1; }
echo "setup: ready (.venv/bin/nsynth-live)"
