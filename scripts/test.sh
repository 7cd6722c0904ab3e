#!/usr/bin/env bash
# Set up the machine, start a JACK dummy server for the audio/MIDI tests, run the whole
# test suite. Extra arguments go to pytest (e.g. scripts/test.sh -k mulaw).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
jack_pid="$(bash scripts/jack.sh start)"
trap 'bash scripts/jack.sh stop "$jack_pid"' EXIT
# Tests that need JACK fail (rather than skip) when it is required and missing.
export NSYNTH_REQUIRE_JACK=1
# Likewise the Pd example patch's tests need Pure Data (setup.sh installs puredata-core).
export NSYNTH_REQUIRE_PD=1
.venv/bin/python -m pytest "$@"
