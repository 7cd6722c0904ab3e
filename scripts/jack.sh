#!/usr/bin/env bash
# Start (or reuse) a JACK server on the dummy driver: a paced 16 kHz audio device and MIDI ports
# for machines without sound hardware (CI). Prints the PID it started, or nothing if one runs.
#   scripts/jack.sh start   -> starts jackd in the background, waits until it accepts clients
#   scripts/jack.sh stop PID
set -euo pipefail
case "${1:-start}" in
start)
    # jack_wait -c exits 0 either way; it prints "running" or "not running".
    if [ "$(jack_wait -c 2>/dev/null)" = "running" ]; then exit 0; fi
    jackd --no-realtime -d dummy -r 16000 -p 256 >"${TMPDIR:-/tmp}/nsynth-jackd.log" 2>&1 &
    pid=$!
    for _ in $(seq 100); do
        [ "$(jack_wait -c 2>/dev/null)" = "running" ] && break
        sleep 0.1
    done
    if [ "$(jack_wait -c 2>/dev/null)" != "running" ]; then
        echo "jack.sh: jackd did not start; see ${TMPDIR:-/tmp}/nsynth-jackd.log" >&2
        kill "$pid" 2>/dev/null || true
        exit 1
    fi
    echo "$pid"
    ;;
stop)
    [ -n "${2:-}" ] && kill "$2" 2>/dev/null && wait "$2" 2>/dev/null || true
    ;;
esac
