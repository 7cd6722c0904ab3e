"""Just-in-time rendering (host/player.py's Pacer) and the ring it fills, on a simulated clock.

The simulation is the player's two loops reduced to their timing: a callback every device
period takes a period's samples from the ring; the generator asks the pacer when to start, and a
block of V voices takes ``cost(V)`` seconds to render. No sleeping, no threads: the properties are
exact (no xrun, the ring's fill at each callback, how late each block is rendered).
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from nsynth_live.host.player import Pacer
from nsynth_live.host.ring import AudioRing

RATE, PERIOD = 16000, 256
P = PERIOD / RATE  # 16 ms


class Sim:
    def __init__(self, pacer: Pacer, cost, voices: int = 1):
        self.pacer, self.cost, self.voices = pacer, cost, voices
        self.ring = AudioRing(8192)
        self.t = 0.0
        self.next_cb = P
        self.fills: list[tuple[float, int]] = []  # (callback time, fill it found)
        self.renders: list[tuple[float, float]] = []  # (start, end)
        self.out = np.zeros(PERIOD, np.float32)

    def _callback(self) -> None:
        self.fills.append((self.next_cb, self.ring.fill))
        self.ring.read_into(self.out)
        self.pacer.callback(self.next_cb, PERIOD)
        self.next_cb += P

    def run(self, seconds: float) -> None:
        end_at = self.t + seconds
        while self.t < end_at:
            start = self.pacer.start_at(self.t, self.ring.fill, self.voices)
            if start <= self.t:
                took = self.cost(self.voices)
                end = self.t + took
                while self.next_cb <= end:  # callbacks during the render find the ring as it was
                    self._callback()
                self.ring.write(np.zeros(self.pacer.block, np.float32))
                self.pacer.rendered(end, took, self.voices)
                self.renders.append((self.t, end))
                self.t = end
            elif self.next_cb <= start:  # the callback comes first and wakes the generator
                self.t = self.next_cb
                self._callback()
            else:
                self.t = start


def pacer(**kw) -> Pacer:
    return Pacer(RATE, PERIOD, lead=PERIOD, max_lead=16 * PERIOD, **kw)


def test_light_load_renders_just_in_time_and_keeps_the_ring_lean():
    pc = pacer(margin=0.002)
    sim = Sim(pc, cost=lambda v: 0.001 * v)
    sim.run(2.0)
    assert sim.ring.xruns == 0
    fills = [f for t, f in sim.fills if t > 0.5]  # after the per-voice estimate was measured
    # Exactly one period at each callback: enough, and nothing rendered ahead (no added latency).
    assert min(fills) >= PERIOD and max(fills) < PERIOD + PERIOD
    # Each block started no earlier than its callback's due time minus one render and the margin.
    cb_times = [t for t, _ in sim.fills]
    for start, end in sim.renders:
        if start < 0.5:
            continue
        due = min(t for t in cb_times if t >= end)
        assert due - start <= pc.estimate(1) + pc.margin + 1e-9, (start, due)


def test_heavy_load_keeps_one_block_more_and_absorbs_a_slow_block():
    rng = np.random.default_rng(0)

    def cost(v):  # 8 voices at ~11 ms a block, one block in 20 takes 20 ms (longer than a period)
        return 0.020 if rng.random() < 0.05 else 0.011 + 0.001 * rng.random()

    pc = pacer(margin=0.002)
    sim = Sim(pc, cost=cost, voices=8)
    sim.run(0.3)
    before = sim.ring.xruns  # the reserve builds up in the first blocks
    sim.run(5.0)
    assert sim.ring.xruns == before
    assert pc.reserve(8) >= 1
    assert min(f for t, f in sim.fills if t > 0.5) >= PERIOD


def test_the_same_load_without_the_reserve_would_xrun():
    # The reason for the reserve: the simulation above with it turned off.
    rng = np.random.default_rng(0)

    def cost(v):
        return 0.020 if rng.random() < 0.05 else 0.011 + 0.001 * rng.random()

    pc = pacer(margin=0.002)
    pc.HEAVY = (math.inf, math.inf)
    sim = Sim(pc, cost=cost, voices=8)
    sim.run(5.0)
    assert sim.ring.xruns > 0


def test_the_reserve_grows_with_the_load():
    pc = pacer(margin=0.002)
    pc.callback(0.0, PERIOD)
    pc.rendered(0.0, 0.0005, 1)  # 0.5 ms per voice
    # load (1.25 * 0.5 ms * voices + 2 ms) / 16 ms: 0.16, 0.52, 0.79, 1.7
    assert [pc.reserve(v) for v in (1, 10, 17, 40)] == [0, 1, 2, 2]
    assert pc.need(17) == 3 * PERIOD
    margin = pc.margin
    pc.xrun(1.0, 17)  # under heavy load an xrun buys a block, not margin
    assert pc.lead == 2 * PERIOD and pc.margin == margin


def test_a_callback_stamped_late_keeps_the_device_grid():
    pc = pacer()
    pc.callback(1.0, PERIOD)
    pc.callback(1.0 + P + 0.004, PERIOD)  # ran 4 ms late (GIL, scheduler)
    assert pc.last_callback == pytest.approx(1.0 + P + 0.01 * P)
    pc.callback(1.0 + 2 * P - 0.001, PERIOD)  # early ones are taken as they come
    assert pc.last_callback == pytest.approx(1.0 + 2 * P - 0.001)


def test_estimate_scales_with_voices_and_forgets_old_blocks():
    pc = pacer()
    slow = 1 + Pacer.SLOW
    assert pc.estimate(2) == pytest.approx(2 * Pacer.PRIOR_PER_VOICE * P * slow)  # before any block
    pc.rendered(1.0, 0.006, 2)  # 3 ms per voice
    pc.rendered(1.01, 0.004, 4)
    assert pc.estimate(4) == pytest.approx(0.012 * slow)
    pc.rendered(1.0 + Pacer.HISTORY_S + 0.5, 0.004, 4)  # the 3 ms/voice block is forgotten
    assert pc.estimate(4) == pytest.approx(0.004 * slow)
    pc.rendered(5.0, 0.0002, 0)
    assert pc.estimate(0) == pytest.approx(0.0002 * slow)


def test_too_late_for_the_next_callback():
    pc = pacer(margin=0.002)
    pc.rendered(0.0, 0.004, 1)  # 4 ms per voice (5 with SLOW)
    pc.callback(1.0, PERIOD)  # next callback due at 1.016
    assert not pc.too_late(1.001, 0, 1)  # 1 + 5 + 2 ms < 16 ms
    assert pc.too_late(1.001, 0, 4)  # 20 ms of rendering no longer fits
    assert not pc.too_late(1.001, PERIOD, 4)  # the next callback's samples are already there
    assert pc.too_late(1.012, 0, 1)


def test_xruns_loosen_the_margin_then_the_lead_and_relax_back():
    pc = pacer(margin=0.002)
    pc.callback(0.0, PERIOD)
    steps = int(round((P / 2 - 0.002) / Pacer.MARGIN_STEP))
    for i in range(steps):
        pc.xrun(float(i), 0)
    assert pc.margin == pytest.approx(P / 2, abs=1e-9) and pc.lead == PERIOD
    pc.xrun(100.0, 0)
    assert pc.lead == 2 * PERIOD
    now = 100.0
    for _ in range(steps + 1):
        now += Pacer.RELAX_S
        pc.relax(now)
    assert pc.lead == PERIOD and pc.margin == pytest.approx(0.002)
