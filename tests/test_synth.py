"""The live voices (host/synth.py): conditioning cache, noise in chunks, the engine's fast path.

Speed is measured by bench/bench_host.py; these tests pin down that the shortcuts taken for it
change no sample: the cache's rows are the conditioner's own, chunked noise is the voice's
stream, and the unchecked engine call computes what the checked one does.
"""

from __future__ import annotations

import numpy as np
import pytest

from nsynth_live.host import events as ev
from nsynth_live.host.bank import Bank, Preset
from nsynth_live.host.engines import open_engine
from nsynth_live.host.synth import COND_PITCHES, COND_WINDOW, CondCache, Synth
from nsynth_live.host.trajectory import bilinear, default_regions


@pytest.fixture(scope="module")
def export(tmp_path_factory):
    from nsynth_live.exporters.export import export_random

    return export_random("tiny", tmp_path_factory.mktemp("synth") / "model", seed=0)


@pytest.fixture()
def engine(export):
    engine = open_engine(export, "fused", max_voices=6, threads=2)
    yield engine
    engine.close()


def bank(frames: int = 40) -> Bank:
    rng = np.random.default_rng(1)
    presets = [Preset(f"p{i}", (e := rng.standard_normal((frames, 16)).astype(np.float32)), 60,
                      regions=default_regions(e, 512)) for i in range(4)]
    return Bank(None, "test", 512, 16000, 16, frames, presets, corners=[p.name for p in presets])


def direct(engine, trajectory: np.ndarray, pitch: int, frame: int) -> np.ndarray:
    """One conditioning row straight from the engine: float32 [C]."""
    return engine.condition(trajectory[frame][None, :, None], np.array([pitch]))[0, 0]


def test_cache_rows_equal_direct_conditioning(engine):
    traj = bank().presets[0].embedding
    cache = CondCache(engine, pitch_conditioning=True)
    cache.reset(traj)
    wanted = [(60, 0), (60, 1), (72, 39), (72, 20), (61, 5), (60, 0)]
    cache.ensure(wanted)
    assert cache.calls == 1  # every miss of a block in one engine call
    for pitch, frame in wanted:
        np.testing.assert_array_equal(cache.row(pitch, frame), direct(engine, traj, pitch, frame))
    # The window around a miss came along: no call for its neighbours.
    cache.ensure([(72, 20 + COND_WINDOW // 2 - 1), (72, 20 - COND_WINDOW // 2), (72, 39 - COND_WINDOW + 1)])
    assert cache.calls == 1
    np.testing.assert_array_equal(cache.row(72, 17), direct(engine, traj, 72, 17))
    # A new timbre forgets every row.
    other = bank().presets[1].embedding
    cache.reset(other)
    cache.ensure([(60, 0)])
    assert cache.calls == 2
    np.testing.assert_array_equal(cache.row(60, 0), direct(engine, other, 60, 0))


def test_cache_keeps_a_bounded_number_of_pitches(engine):
    traj = bank().presets[0].embedding
    cache = CondCache(engine, pitch_conditioning=True)
    cache.reset(traj)
    for p in range(COND_PITCHES + 10):
        cache.ensure([(p, 3)])
    assert len(cache._rows) == COND_PITCHES
    np.testing.assert_array_equal(cache.row(COND_PITCHES + 9, 3), direct(engine, traj, COND_PITCHES + 9, 3))


class DirectRows:
    """A stand-in for CondCache that asks the engine for every row, every time (the reference)."""

    def __init__(self, engine):
        self.engine, self.trajectory = engine, None

    def reset(self, trajectory, harmonics=None):
        self.trajectory = trajectory

    def ensure(self, wanted):
        pass

    def row(self, pitch, frame):
        return direct(self.engine, self.trajectory, pitch, frame)


def play_script(synth: Synth) -> np.ndarray:
    """Notes, a chord, XY moves, releases, a panic; blocks of uneven sizes that straddle frames."""
    script = {0: [ev.NoteOn(60, 100)], 3: [ev.NoteOn(64, 90), ev.NoteOn(67, 80)], 9: [ev.XY(0.2, 0.7)],
              14: [ev.NoteOff(60)], 17: [ev.XY(0.9, None), ev.NoteOn(72, 127)], 25: [ev.NoteOff(64)],
              30: [ev.SelectPreset("p2")], 33: [ev.NoteOn(48, 60)], 40: [ev.Panic()]}
    sizes = [256, 100, 512, 37, 300]
    out = []
    for b in range(48):
        for e in script.get(b, []):
            synth.apply(e, strict=True)
        out.append(synth.render(sizes[b % len(sizes)]))
    return np.concatenate(out)


def test_synth_with_the_cache_renders_what_direct_conditioning_renders(export):
    audio = []
    for use_cache in (True, False):
        engine = open_engine(export, "fused", max_voices=6, threads=2)
        synth = Synth(engine, bank(), seed=3)
        if not use_cache:
            synth._cond = DirectRows(engine)
            synth._set_timbre(synth.timbre)
        audio.append(play_script(synth))
        engine.close()
    assert np.abs(audio[0]).max() > 0
    np.testing.assert_array_equal(audio[0], audio[1])


def test_chunked_noise_is_the_voices_own_stream(engine):
    synth = Synth(engine, bank(), seed=5)
    synth.note_on(60, 100)
    slot = next(iter(synth.voices))
    got = []
    for n in [256, 512, 1, 4000, 300, 4096, 17] * 3:
        row = np.empty(n)
        synth._draw_noise(slot, row)
        got.append(row)
    got = np.concatenate(got)
    want = np.random.default_rng([5, 1]).random(got.size)  # note 1 of seed 5
    np.testing.assert_array_equal(got, want)


def test_fast_path_equals_the_checked_path(export):
    rng = np.random.default_rng(0)
    engines = [open_engine(export, "fused", max_voices=4, threads=2) for _ in range(2)]
    for e in engines:
        for _ in range(3):
            e.add_voice()
    cfg = engines[0].cfg
    slots = np.array([2, 0, 1], np.int64)
    for n in (256, 7, 512):
        cond = rng.standard_normal((3, 2, cfg.cond_width)).astype(np.float32)
        switch = np.array([n, 3, 0], np.int64)
        noise = rng.random((3, n))
        temp = np.array([1.0, 0.5, 2.0], np.float32)
        checked = engines[0].render(slots, cond, switch, noise, temp)
        fast = engines[1].render_fast(slots, cond, switch, noise, temp)
        np.testing.assert_array_equal(checked, fast)
    for slot in range(3):
        for a, b in zip(engines[0].state(slot), engines[1].state(slot)):
            np.testing.assert_array_equal(a, b)
    for e in engines:
        e.close()


def test_prepare_opens_the_conditioner_before_the_first_note(engine):
    synth = Synth(engine, bank())
    synth.prepare()
    calls = synth._cond.calls
    synth.note_on(60, 100)
    synth.render(256)
    assert synth._cond.calls == calls  # pitch 60 at frame 0 was made ready


def test_a_selected_preset_plays_its_stored_regions(engine):
    """Hand-edited regions in bank.json are what a selected preset holds and releases, as for the
    first preset and for render-bank; blends find theirs from their own frames."""
    b = bank()
    edited = {"sustain_start": 3, "sustain_end": 9, "release_start": 30}
    assert default_regions(b.presets[2].embedding, 512) != edited
    b.presets[2].regions = edited
    synth = Synth(engine, b)
    synth.apply(ev.SelectPreset(2), strict=True)
    assert synth._regions == edited
    synth.apply(ev.Mix(2, 3, 0.5), strict=True)
    assert synth._regions == default_regions(synth.timbre, 512)


def test_controls_report_what_the_events_set(engine):
    """The control state status pages show (``Synth.controls``) follows every kind of control event,
    corner names included, and a rejected event leaves it as it was."""
    synth = Synth(engine, bank(), temperature=0.5, excitation_gain=2.0)
    c = synth.controls()
    assert c["mode"] == "preset" and c["selection"] == ["p0"] and c["corners"] == ["p0", "p1", "p2", "p3"]
    assert (c["temperature"], c["excitation_gain"], c["gain"]) == (0.5, 2.0, 1.0)
    synth.apply(ev.Corners((3, "p2", 1, "p0")))
    synth.apply(ev.XY(0.25, None))
    synth.apply(ev.XY(None, 0.75))
    c = synth.controls()
    assert c["mode"] == "xy" and c["xy"] == [0.25, 0.75] and c["corners"] == ["p3", "p2", "p1", "p0"]
    np.testing.assert_array_equal(synth.timbre, bilinear(tuple(synth.bank.get(n).embedding for n in c["corners"]),
                                                         0.25, 0.75))
    synth.apply(ev.Corners(("p0", "p1", "p2", "nope")))  # rejected: nothing changes
    assert synth.controls()["corners"] == ["p3", "p2", "p1", "p0"] and synth.stats.rejected == 1
    synth.apply(ev.Mix("p1", 2, 0.3))
    assert synth.controls()["selection"] == ["p1", "p2", 0.3]
    synth.apply(ev.Gain(1.5))
    synth.apply(ev.Temperature(0.8))
    synth.apply(ev.ExcitationGain(4.0))
    synth.apply(ev.SelectPreset("p3"))
    c = synth.controls()
    assert c["mode"] == "preset" and c["selection"] == ["p3"]
    assert (c["gain"], c["temperature"], c["excitation_gain"]) == (1.5, 0.8, 4.0)
