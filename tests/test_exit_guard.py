"""SIGTERM and Ctrl-C end a process within a second even when its main thread never returns to
Python's signal handling (the guard's own thread exits it), with the status the guard was given."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import pytest

# The main thread blocks in os.read of a pipe nobody writes: Python runs the handler on EINTR,
# then retries the read (PEP 475), so without the guard's thread the process would never end.
SCRIPT = """
import os, sys, threading
from nsynth_live.host.exit_guard import ExitGuard
stop = threading.Event()
guard = ExitGuard(stop, code=int(sys.argv[1])).install()
r, w = os.pipe()
print("ready", flush=True)
os.read(r, 1)
print("returned", flush=True)
"""


@pytest.mark.parametrize("sig, code", [(signal.SIGTERM, 0), (signal.SIGINT, 3)])
def test_a_signal_ends_a_blocked_process_within_a_second(sig, code):
    proc = subprocess.Popen([sys.executable, "-c", SCRIPT, str(code)], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "ready"
        time.sleep(0.1)
        sent = time.monotonic()
        proc.send_signal(sig)
        rc = proc.wait(timeout=5)
        took = time.monotonic() - sent
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert rc == code and took < 1.0, (rc, took)
    assert "returned" not in proc.stdout.read()  # it did not get out of the read: the guard ended it
