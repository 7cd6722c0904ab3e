"""A lock-free single-producer, single-consumer ring of float32 audio samples.

The generator thread writes finished audio; the sounddevice callback reads it. Each side only
ever advances its own counter (plain Python ints, whose assignment is atomic under the GIL), so
neither blocks the other and the callback never waits on the generator. Counters grow without
bound; positions are taken modulo the capacity.
"""

from __future__ import annotations

import numpy as np


class AudioRing:
    """Preallocated ring of ``capacity`` samples (mono).

    Args:
        capacity: samples it can hold.
    """

    def __init__(self, capacity: int):
        if capacity < 1:
            raise ValueError("capacity must be positive")
        self.capacity = int(capacity)
        self._buf = np.zeros(self.capacity, np.float32)
        self._written = 0  # advanced by the producer only
        self._read = 0  # advanced by the consumer only
        self.xruns = 0  # callbacks that found fewer samples than they needed (consumer side)
        self.underrun_samples = 0

    @property
    def fill(self) -> int:
        """Samples written and not yet read."""
        return self._written - self._read

    @property
    def space(self) -> int:
        return self.capacity - self.fill

    def write(self, x: np.ndarray) -> int:
        """Append as much of ``x`` (float32 [n]) as fits; returns how many samples were taken."""
        n = min(len(x), self.space)
        if n <= 0:
            return 0
        start = self._written % self.capacity
        first = min(n, self.capacity - start)
        self._buf[start : start + first] = x[:first]
        if n > first:
            self._buf[: n - first] = x[first:n]
        self._written += n  # publish after the data is in place
        return n

    def read_into(self, out: np.ndarray) -> int:
        """Fill ``out`` (float32 [n]) with the oldest samples; zeros where there are none.

        Counts an xrun when it comes up short. Never allocates, never blocks.

        Returns:
            samples actually read.
        """
        want = out.shape[0]
        n = min(want, self.fill)
        start = self._read % self.capacity
        first = min(n, self.capacity - start)
        out[:first] = self._buf[start : start + first]
        if n > first:
            out[first:n] = self._buf[: n - first]
        if n < want:
            out[n:] = 0.0
            self.xruns += 1
            self.underrun_samples += want - n
        self._read += n
        return n
