"""render-bank: batched = one-by-one, crash + resume, SFZ validity, shards + merge, bad input,
grid corners, and notes that sound like the live host's (real exports and engines, no mocks)."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from nsynth_live.host import render_bank as rb
from nsynth_live.host.bank import Bank, Preset, load_bank, save_bank
from nsynth_live.host.engines import open_engine, render_frames
from nsynth_live.host.model_files import load_export
from nsynth_live.host.render_output import note_file
from nsynth_live.host.trajectory import bilinear, default_regions
from nsynth_live.cli import main
from nsynth_live.sampling import NoiseStream

sys.path.insert(0, str(Path(__file__).parent))
from sine_model import sine_model  # noqa: E402

NSYNTH_LIVE = str(Path(sys.executable).parent / "nsynth-live")
FRAMES = 12  # short trajectories: 0.5 s notes reach their release and end within the note
SHORT = {"sustain_start": 2, "sustain_end": 5, "release_start": 8}


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """A random-weight tiny export; a bank of 5 presets with corners, one without corners."""
    from nsynth_live.exporters.export import export_random

    root = tmp_path_factory.mktemp("render_bank")
    export = export_random("tiny", root / "model", seed=0)
    rng = np.random.default_rng(0)
    presets = []
    for i in range(5):
        e = rng.standard_normal((FRAMES, 16)).astype(np.float32)
        # Mixed regions: some notes end (release over, fade-out) before the note's end, some not.
        presets.append(Preset(f"p {i}", e, 60, regions=SHORT if i % 2 else default_regions(e, 512)))
    save_bank(Bank(root / "bank", "test", 512, 16000, 16, FRAMES, presets, corners=[p.name for p in presets[:4]]))
    save_bank(Bank(root / "plain", "plain", 512, 16000, 16, FRAMES, presets[:2]))
    return export, root / "bank", root


def job(bank_dir: Path, out: Path, presets=None, grid=None, pitches=(48, 60), velocities=(64, 127), **kw) -> rb.Job:
    bank = load_bank(bank_dir)
    sounds, selection = rb.select_sounds(bank, 512, ",".join(presets) if presets else None, grid)
    return rb.Job(out, sounds, list(pitches), list(velocities), selection=selection,
                  **{"seconds": 0.5, "seed": 3, **kw})


def run_job(export: Path, j: rb.Job, engine: str = "fused") -> rb.RenderReport:
    info = load_export(export)
    with open_engine(info, engine, max_voices=j.batch, threads=1) as eng:
        return rb.render_bank(j, eng, info)


def wavs(out: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted((out / "samples").glob("*.wav"))}


def cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([NSYNTH_LIVE, "render-bank", *args], capture_output=True, text=True, timeout=600,
                          env={**os.environ, **(env or {})})


# ----------------------------------------------------------------------------- 1. batching


@pytest.mark.parametrize("engine", ["fused", "ort"])
def test_a_batch_renders_the_same_files_as_one_note_at_a_time(setup, tmp_path, engine):
    export, bank, _ = setup
    together = run_job(export, job(bank, tmp_path / "batch", presets=["p 0", "p 1", "p 2"], batch=6), engine)
    alone = run_job(export, job(bank, tmp_path / "alone", presets=["p 0", "p 1", "p 2"], batch=1), engine)
    assert together.rendered == alone.rendered == 6
    a, b = wavs(tmp_path / "batch"), wavs(tmp_path / "alone")
    assert len(a) == 12 and a.keys() == b.keys()
    for name in a:
        assert a[name] == b[name], f"{name} differs between batch 6 and batch 1 ({engine})"
    info = sf.info(str(tmp_path / "batch" / "samples" / "p_0-048-127.wav"))
    assert (info.samplerate, info.channels, info.subtype, info.frames) == (16000, 1, "PCM_16", 8000)


def test_windowed_conditioning_equals_render_frames(setup):
    """stream_classes (conditioning a window of frames at a time) == nsynth_live.host.engines.render_frames."""
    export, _, _ = setup
    rng = np.random.default_rng(1)
    emb = rng.standard_normal((3, 16, 20)).astype(np.float32)  # more frames than one window
    pitch = np.array([40, 60, 80])
    n = 19 * 512 + 100
    with open_engine(export, "ort", max_voices=3, threads=1) as eng:
        slots = [eng.add_voice() for _ in range(3)]
        ours = rb.stream_classes(eng, slots, emb, pitch, n, NoiseStream(5, [7, 8, 9]), 1.0)
        for s in slots:
            eng.remove_voice(s)
        slots = [eng.add_voice() for _ in range(3)]
        ref = render_frames(eng, slots, eng.condition(emb, pitch), n, NoiseStream(5, [7, 8, 9]), 1.0, pitch=pitch)
    np.testing.assert_array_equal(ours, ref)


def test_a_note_is_what_the_live_host_plays_for_a_held_key(setup, tmp_path):
    """Same frames (attack, sustain held, release at key-up), conditioning, noise, level and
    fade-out as host.synth.Synth playing the note alone (its output is tanh of the voice)."""
    from nsynth_live.host import events as ev
    from nsynth_live.host.synth import Synth

    export, _, _ = setup
    e = np.random.default_rng(4).standard_normal((FRAMES, 16)).astype(np.float32)
    save_bank(Bank(tmp_path / "solo", "solo", 512, 16000, 16, FRAMES, [Preset("solo", e, 60, regions=SHORT)]))
    bank = load_bank(tmp_path / "solo")
    n, hold = rb.note_lengths(0.5)
    assert (n, hold) == (8000, 4000) and rb.note_lengths(4.0) == (64000, 48000) and rb.note_lengths(3)[1] == 32000
    frames, end = rb.note_frames(SHORT, FRAMES, 512, n, hold)
    # Attack 0-1, sustain ping-pong 2..4 while held; key up at 4000 -> release 8..11 from frame 8
    # (the first to start after it); the release frames are over at frame 11: fade-out, silence.
    assert frames.tolist() == [0, 1, 2, 3, 4, 3, 2, 3, 8, 9, 10, 11, 11, 11, 11, 11] and end == 11 * 512
    velocity, seed = 90, 11
    with open_engine(export, "fused", max_voices=2, threads=1) as eng:
        # The synth's first note draws noise id 1: a sound id of 0 at MIDI pitch 1 has note id 1 too.
        item = rb.Item(rb.preset_sounds(bank)[0], 1)
        assert item.note_id == 1
        ours = rb.render_notes(eng, [item], n, hold, seed, 1.0)[0]
        synth = Synth(eng, bank, voices=1, seed=seed)
        synth.apply(ev.NoteOn(1, velocity), strict=True)
        out, now = [], 0
        while now < n:  # blocks end at frame boundaries and at the key-up
            stop = min((now // 512 + 1) * 512, hold if now < hold else n, n)
            out.append(synth.render(stop - now))
            now = stop
            if now == hold:
                synth.apply(ev.NoteOff(1), strict=True)
        host = np.concatenate(out)
    assert not synth.active  # the host freed the voice after its fade-out, as the note ends here
    np.testing.assert_allclose(host, np.tanh(ours * np.float32(velocity / 127)), rtol=0, atol=2e-7)
    assert np.all(ours[end + 64 :] == 0) and np.any(ours[end - 64 : end] != 0)


def test_notes_play_at_their_pitch_and_velocity_layers_scale_the_level(tmp_path):
    """Through the hand-set sine model: each file is a sine at its MIDI pitch; velocity v's file
    is the full-level render scaled by v / 127."""
    from nsynth_live.exporters.export import export_model

    export = export_model(sine_model(amplitude=0.5), tmp_path / "sine")
    e = np.zeros((125, 16), np.float32)
    save_bank(Bank(tmp_path / "b", "b", 512, 16000, 16, 125, [Preset("sine", e, 60, regions=default_regions(e, 512))]))
    j = job(tmp_path / "b", tmp_path / "out", pitches=[57, 69, 76], velocities=[32, 127], seconds=1.0)
    run_job(export, j)
    for pitch in (57, 69, 76):
        loud, _ = sf.read(str(tmp_path / "out" / "samples" / f"sine-{pitch:03d}-127.wav"), dtype="float64")
        soft, _ = sf.read(str(tmp_path / "out" / "samples" / f"sine-{pitch:03d}-032.wav"), dtype="float64")
        seg = loud[2000:10000] * np.hanning(8000)
        spec = np.abs(np.fft.rfft(seg, 8 * len(seg)))
        f0 = np.argmax(spec) * 16000 / (8 * len(seg))
        expected = 440 * 2 ** ((pitch - 69) / 12)
        assert abs(f0 / expected - 1) < 0.005, f"pitch {pitch}: {f0:.1f} Hz, expected {expected:.1f}"
        assert np.sqrt(np.mean(loud[2000:10000] ** 2)) == pytest.approx(0.5 / np.sqrt(2), rel=0.03)
        np.testing.assert_allclose(soft, loud * 32 / 127, atol=1.5 / 32768)


# ----------------------------------------------------------------------------- 2. crash + resume


def wav_names(out: Path) -> list[str]:
    return [p.name for p in (out / "samples").glob("*.wav")] if (out / "samples").is_dir() else []


def stats(out: Path) -> dict[str, tuple[int, int]]:
    return {p.name: (p.stat().st_ino, p.stat().st_mtime_ns) for p in (out / "samples").glob("*.wav")}


def bank_args(setup, out: Path, *extra: str) -> list[str]:
    export, bank, _ = setup
    return ["--model", str(export), "--bank", str(bank), "--presets", "p 0,p 1,p 2", "--pitches", "48,60",
            "--velocities", "64,127", "--seconds", "0.25", "--seed", "3", "--engine", "ort", "--out", str(out), *extra]


@pytest.fixture(scope="module")
def uninterrupted(setup, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("whole") / "out"
    res = cli(*bank_args(setup, out, "--batch", "6"))
    assert res.returncode == 0, res.stderr
    return out


def check_resumed(setup, out: Path, uninterrupted: Path) -> None:
    """No partial or temp file of ours; a rerun keeps finished files and completes the set."""
    for p in (out / "samples").glob("*.wav"):  # whatever exists is complete
        assert sf.info(str(p)).frames == 4000
    before = stats(out)
    res = cli(*bank_args(setup, out, "--batch", "2"))
    assert res.returncode == 0, res.stderr
    after = stats(out)
    assert all(after[name] == st for name, st in before.items()), "a finished file was rewritten"
    assert wavs(out) == wavs(uninterrupted)
    assert not [p for p in (out / "samples").iterdir() if p.name.startswith(".") and "other" not in p.name]
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["complete"] and len(manifest["files"]) == 12
    assert json.loads((uninterrupted / "manifest.json").read_text())["files"] == manifest["files"]


KILLED_AFTER_TWO_CHUNKS = """
import os, signal, sys
from nsynth_live.host import render_bank as rb
from nsynth_live.cli import main

real = rb.render_bank


def render_then_die(*args, **kwargs):
    # The library's own progress callback: a SIGKILL once two chunks' files are written.
    kwargs["after_chunk"] = lambda done: os.kill(os.getpid(), signal.SIGKILL) if done >= 2 else None
    return real(*args, **kwargs)


rb.render_bank = render_then_die
sys.exit(main(["render-bank", *sys.argv[1:]]))
"""


def test_a_run_killed_after_two_chunks_resumes_without_rewriting(setup, tmp_path, uninterrupted):
    """The CLI killed (SIGKILL, from its own after_chunk callback) right after its second chunk."""
    out = tmp_path / "out"
    res = subprocess.run([sys.executable, "-c", KILLED_AFTER_TWO_CHUNKS, *bank_args(setup, out, "--batch", "2")],
                         capture_output=True, text=True, timeout=600)
    assert res.returncode == -signal.SIGKILL, res.stderr
    assert len(stats(out)) == 8  # two chunks of two notes, two velocities each
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["complete"] is False  # written at the start, not yet completed
    # What a kill inside atomic_write_many leaves: a temp file next to its target. Ours go on the
    # rerun; one for a file this run does not make (a shard beside it) stays.
    (out / "samples" / ".p_2-060-127.wav.k1ll3d.tmp").write_bytes(b"RIFF partial")
    (out / "samples" / ".other-060-127.wav.sh4rd.tmp").write_bytes(b"RIFF partial")
    check_resumed(setup, out, uninterrupted)
    assert (out / "samples" / ".other-060-127.wav.sh4rd.tmp").exists()


def test_a_real_sigkill_mid_render_leaves_no_partial_file(setup, tmp_path, uninterrupted):
    out = tmp_path / "out"
    proc = subprocess.Popen([NSYNTH_LIVE, "render-bank", *bank_args(setup, out, "--batch", "1")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and proc.poll() is None and len(wav_names(out)) < 3:
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    assert proc.wait(timeout=60) == -signal.SIGKILL, "the render finished before it could be killed"
    assert 3 <= len(stats(out)) < 12
    check_resumed(setup, out, uninterrupted)


# ----------------------------------------------------------------------------- 3. SFZ


NOTE = {"c": 0, "d": 2, "e": 4, "f": 5, "g": 7, "a": 9, "b": 11}


def sfz_int(value: str, kind: str) -> int:
    """An SFZ integer or, for keys, a note name (c4 = 60, c#4 = 61, db4 = 61)."""
    if re.fullmatch(r"-?\d+", value):
        return int(value)
    m = re.fullmatch(r"([a-gA-G])([#b]?)(-?\d+)", value) if kind == "key" else None
    assert m, f"{value!r} is not an integer{' or note name' if kind == 'key' else ''}"
    return NOTE[m.group(1).lower()] + {"#": 1, "b": -1, "": 0}[m.group(2)] + 12 * (int(m.group(3)) + 1)


def parse_sfz(text: str) -> list[dict[str, str]]:
    """Regions of an SFZ file with inherited opcodes, from the format's rules (sfzformat.com):
    ``//`` line and ``/* */`` block comments; ``<header>`` starts a section; ``opcode=value``
    where a value runs to the next opcode or header on its line (sample names may hold spaces);
    <control>, <global>, <master>, <group> opcodes apply to the regions under them."""
    text = re.sub(r"/\*.*?\*/", " ", text, flags=re.S)
    token = re.compile(r"<([a-z]+)>|(?:(?<=\s)|^)([A-Za-z0-9_]+)=")
    levels = ["control", "global", "master", "group"]
    scope: dict[str, dict[str, str]] = {k: {} for k in levels}
    regions, current = [], None
    for line in text.splitlines():
        line = line.split("//", 1)[0]
        matches = list(token.finditer(line))
        assert not line[: matches[0].start() if matches else len(line)].strip(), f"stray text in {line!r}"
        for k, m in enumerate(matches):
            end = matches[k + 1].start() if k + 1 < len(matches) else len(line)
            if m.group(1):
                header = m.group(1)
                assert header in levels + ["region", "curve", "effect", "midi", "sample"], f"unknown <{header}>"
                assert not line[m.end() : end].strip(), f"stray text after <{header}>"
                if header in levels:
                    for lower in levels[levels.index(header) :]:  # a header resets itself and what is under it
                        scope[lower] = {}
                    current = scope[header]
                elif header == "region":
                    current = {}
                    regions.append((current, {k: dict(v) for k, v in scope.items()}))
                else:
                    current = {}
            else:
                value = line[m.end() : end].strip()
                assert current is not None and value, f"opcode {m.group(2)} outside a header or without value"
                current[m.group(2)] = value
    out = []
    for region, inherited in regions:
        merged: dict[str, str] = {}
        for level in levels:
            merged.update(inherited[level])
        merged.update(region)
        out.append(merged)
    return out


def check_sfz(path: Path, manifest: dict) -> int:
    """Every region plays an existing 16 kHz file; keys 0..127 x velocities 1..127 are covered
    exactly once, each key by its nearest rendered pitch and each velocity by the lowest rendered
    velocity at or above it. Returns the number of regions."""
    by_file = {f["file"]: f for f in manifest["files"]}
    pitches, vels = manifest["settings"]["pitches"], manifest["settings"]["velocities"]
    regions = parse_sfz(path.read_text())
    assert regions
    cover = np.zeros((128, 128), int)
    for r in regions:
        sample = (r.get("default_path", "") + r["sample"]).replace("\\", "/")
        assert (path.parent / sample).is_file(), f"{path.name}: {sample} missing"
        info = sf.info(str(path.parent / sample))
        assert (info.samplerate, info.channels) == (16000, 1)
        lokey, hikey = sfz_int(r.get("lokey", "0"), "key"), sfz_int(r.get("hikey", "127"), "key")
        lovel, hivel = sfz_int(r.get("lovel", "1"), "vel"), sfz_int(r.get("hivel", "127"), "vel")
        center = sfz_int(r.get("pitch_keycenter", "60"), "key")
        assert 0 <= lokey <= hikey <= 127 and 1 <= lovel <= hivel <= 127 and 0 <= center <= 127
        entry = by_file[sample]
        assert entry["pitch"] == center and entry["sound"] == manifest_sound(path, manifest)
        for key in range(lokey, hikey + 1):
            nearest = min(pitches, key=lambda p: (abs(p - key), p))
            assert center == nearest, f"key {key} plays pitch {center}, nearest rendered is {nearest}"
        for vel in range(lovel, hivel + 1):
            assert entry["velocity"] == min([v for v in vels if v >= vel] or [max(vels)])
        cover[lokey : hikey + 1, lovel : hivel + 1] += 1
    assert np.all(cover[:, 1:] == 1), "keys x velocities not covered exactly once"
    assert r.get("amp_veltrack") == "0"  # the files carry their level
    assert r.get("loop_mode") == "one_shot" or float(r.get("ampeg_release", "0")) > 0
    return len(regions)


def manifest_sound(path: Path, manifest: dict) -> str:
    return next(s["name"] for s in manifest["settings"]["sounds"] if s["file"] == path.stem)


def test_every_sfz_maps_all_keys_and_velocities_to_existing_files(setup, tmp_path):
    export, bank, _ = setup
    out = tmp_path / "out"
    run_job(export, job(bank, out, pitches=[21, 40, 41, 60, 64, 108], velocities=[25, 50, 75, 100, 127], seconds=0.05))
    manifest = json.loads((out / "manifest.json").read_text())
    sfzs = sorted(out.glob("*.sfz"))
    assert [p.stem for p in sfzs] == ["p_0", "p_1", "p_2", "p_3", "p_4"]
    for p in sfzs:
        assert check_sfz(p, manifest) == 30


def test_sfz_loads_in_sfzlint(setup, tmp_path):
    """A third-party SFZ parser and linter (opcodes and ranges from sfzformat.com, sample files
    checked), when installed: ``pip install sfzlint``."""
    pytest.importorskip("sfzlint")
    export, bank, _ = setup
    out = tmp_path / "out"
    run_job(export, job(bank, out, presets=["p 0"], seconds=0.05))
    (out / "broken.sfz").write_text((out / "p_0.sfz").read_text().replace("p_0-048-064", "gone", 1) + "lokey_x=1\n")

    def lint(path: Path) -> str:  # sfzlint exits 0 and prints one line per finding
        code = "import sys; from sfzlint.cli import sfzlint; sys.argv = ['sfzlint', sys.argv[1]]; sfzlint()"
        res = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, timeout=60)
        assert res.returncode == 0, res.stderr
        return res.stdout

    assert lint(out / "p_0.sfz").strip() == ""
    found = lint(out / "broken.sfz")
    assert "gone" in found and "lokey_x" in found  # the linter really reads samples and opcodes


# ----------------------------------------------------------------------------- 4. shards


def test_shards_then_merge_equal_one_render_and_merge_refuses_mismatches(setup, tmp_path, uninterrupted):
    out = tmp_path / "out"
    first = cli(*bank_args(setup, out, "--shard", "0/2"))
    assert first.returncode == 0, first.stderr
    assert "render-bank-merge" in first.stdout and not list(out.glob("*.sfz"))  # SFZs wait for the merge
    # Merging before every shard is done: the missing notes are named, exit status 1.
    res = subprocess.run([NSYNTH_LIVE, "render-bank-merge", str(out)], capture_output=True, text=True, timeout=120)
    assert res.returncode == 1 and "3 notes missing" in res.stderr and "p 0 pitch 60" in res.stderr
    # The other shard with another seed is refused before it writes anything.
    res = cli(*bank_args(setup, out, "--shard", "1/2", "--seed", "4"))
    assert res.returncode == 2 and res.stderr.count("\n") == 1
    assert "manifest" in res.stderr and "settings.seed is 3 there but 4" in res.stderr
    assert not (out / "manifest-shard-1-of-2.json").exists()
    second = cli(*bank_args(setup, out, "--shard", "1/2"))
    assert second.returncode == 0, second.stderr
    res = subprocess.run([NSYNTH_LIVE, "render-bank-merge", str(out)], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    merged = json.loads((out / "manifest.json").read_text())
    whole = json.loads((uninterrupted / "manifest.json").read_text())
    key = lambda f: (f["file"], f["sound"], f["pitch"], f["velocity"])  # noqa: E731
    assert sorted(map(key, merged["files"])) == sorted(map(key, whole["files"]))
    assert merged["complete"] and merged["settings"] == whole["settings"] and merged["model"] == whole["model"]
    assert wavs(out) == wavs(uninterrupted)
    assert sorted(p.name for p in out.glob("*.sfz")) == sorted(p.name for p in uninterrupted.glob("*.sfz"))
    for p in out.glob("*.sfz"):
        assert p.read_text() == (uninterrupted / p.name).read_text()

    # A shard manifest from another model or with other settings is refused in one line.
    shard1 = out / "manifest-shard-1-of-2.json"
    for change, expected in [(("settings", "temperature", 0.5), "settings.temperature"),
                             (("model", "weights_sha256", "0" * 64), "model_sha256")]:
        data = json.loads(shard1.read_text())
        saved = shard1.read_text()
        data[change[0]][change[1]] = change[2]
        shard1.write_text(json.dumps(data))
        res = subprocess.run([NSYNTH_LIVE, "render-bank-merge", str(out)], capture_output=True, text=True, timeout=120)
        assert res.returncode == 2 and res.stderr.count("\n") == 1, res.stderr
        assert "manifest-shard-" in res.stderr and expected in res.stderr, res.stderr
        shard1.write_text(saved)


def test_shards_split_items_deterministically(setup):
    _, bank, _ = setup
    sounds = rb.preset_sounds(load_bank(bank))
    every = rb.items_of(sounds, [40, 50, 60])
    parts = [rb.items_of(sounds, [40, 50, 60], (i, 4)) for i in range(4)]
    pairs = lambda items: sorted((it.sound.name, it.pitch) for it in items)  # noqa: E731
    assert pairs(it for p in parts for it in p) == pairs(every)
    assert [it.pitch for it in parts[1]] == [every[k].pitch for k in range(1, 15, 4)]
    assert len({it.note_id for it in every}) == 15


# ----------------------------------------------------------------------------- 5. bad input


@pytest.mark.parametrize("args, named", [
    (["--presets", "p 0,nope"], "'nope'"),
    (["--presets", "p 0,p 0"], "'p 0'"),
    (["--grid", "2", "--bank", "PLAIN"], "no corner presets"),
    (["--grid", "1"], "--grid 1"),
    (["--grid", "65"], "--grid 65"),
    (["--pitches", "21-200"], "'21-200'"),
    (["--pitches", "60-50"], "'60-50'"),
    (["--pitches", "c4"], "'c4'"),
    (["--velocities", "0,64"], "'0,64'"),
    (["--velocities", "loud"], "'loud'"),
    (["--shard", "2/2"], "'2/2'"),
    (["--shard", "1of2"], "'1of2'"),
    (["--seconds", "0"], "--seconds 0"),
    (["--temperature", "-1"], "--temperature -1"),
    (["--excitation-gain", "-1"], "--excitation-gain -1"),
    (["--batch", "0"], "--batch 0"),
])
def test_bad_input_is_one_line_naming_the_value_and_writes_nothing(setup, tmp_path, capsys, args, named):
    export, bank, root = setup
    args = [str(root / "plain") if a == "PLAIN" else a for a in args]
    out = tmp_path / "out"
    base = ["render-bank", "--model", str(export), "--bank", str(bank), "--out", str(out), "--no-progress"]
    code = main(base + args)
    err = capsys.readouterr().err
    assert code != 0 and err.count("\n") == 1 and named in err, err
    assert err.startswith("nsynth-live render-bank: error:")
    assert not out.exists()


def test_an_unwritable_output_is_one_line(setup, tmp_path, capsys):
    export, bank, _ = setup
    (tmp_path / "file").write_text("not a folder")
    code = main(["render-bank", "--model", str(export), "--bank", str(bank), "--out", str(tmp_path / "file"),
                 "--presets", "p 0", "--pitches", "60", "--seconds", "0.05"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "file" in err and "cannot write" in err, err


def test_bad_input_through_the_command_line(setup, tmp_path):
    res = cli(*bank_args(setup, tmp_path / "out", "--pitches", "21-x"))
    assert res.returncode == 2 and res.stderr.count("\n") == 1 and "'21-x'" in res.stderr
    assert not (tmp_path / "out").exists()


def test_render_bank_defaults_to_the_shipped_model_and_bank(tmp_path, monkeypatch, capsys):
    import nsynth_live.host.defaults as defaults

    args = ["render-bank", "--presets", "0", "--pitches", "60", "--velocities", "100", "--seconds", "0.25",
            "--no-progress", "--out"]
    assert main(args + [str(tmp_path / "o")]) == 0
    manifest = json.loads((tmp_path / "o" / "manifest.json").read_text())
    shipped = json.loads((defaults.DEFAULT_MODEL / "model.json").read_text())
    assert manifest["model"]["weights_sha256"] == shipped["weights_sha256"]
    assert manifest["bank"]["path"] == str(defaults.DEFAULT_BANK.resolve())

    monkeypatch.setattr(defaults, "DEFAULT_MODEL", tmp_path / "nowhere")
    capsys.readouterr()
    assert main(args + [str(tmp_path / "o2")]) == 2
    assert "shipped default" in capsys.readouterr().err and not (tmp_path / "o2").exists()


# ----------------------------------------------------------------------------- 6. grid


def test_grid_corners_are_the_corner_presets(setup, tmp_path):
    export, bank, _ = setup
    b = load_bank(bank)
    grid = rb.grid_sounds(b, 3, 512)
    assert [s.file for s in grid][:4] == ["grid-0-0", "grid-0-1", "grid-0-2", "grid-1-0"]
    center = next(s for s in grid if s.grid[:2] == (1, 1))
    corners = tuple(b.get(n).embedding for n in b.corners)
    np.testing.assert_array_equal(center.embedding, bilinear(corners, 0.5, 0.5))
    assert center.regions == default_regions(center.embedding, 512) and center.sound_id >= rb.GRID_ID_BASE
    x_edge = next(s for s in grid if s.grid[:2] == (2, 1))  # x = 1, y = 0.5: between the right corners
    np.testing.assert_array_equal(x_edge.embedding, bilinear(corners, 1.0, 0.5))

    run_job(export, job(bank, tmp_path / "grid", grid=2))
    run_job(export, job(bank, tmp_path / "corners", presets=b.corners))
    g, c = wavs(tmp_path / "grid"), wavs(tmp_path / "corners")
    assert len(g) == len(c) == 16
    # (0,0) bottom-left, (1,0) bottom-right, (0,1) top-left, (1,1) top-right: bank.corners' order.
    for (i, j), name in zip([(0, 0), (1, 0), (0, 1), (1, 1)], b.corners):
        for p in (48, 60):
            for v in (64, 127):
                assert g[f"grid-{i}-{j}-{p:03d}-{v:03d}.wav"] == c[note_file(name.replace(" ", "_"), p, v)]
    manifest = json.loads((tmp_path / "grid" / "manifest.json").read_text())
    assert manifest["settings"]["selection"] == {"grid": 2, "corners": b.corners}
    for p in (tmp_path / "grid").glob("*.sfz"):
        check_sfz(p, manifest)


def test_a_rerun_of_a_finished_render_writes_no_wav(setup, tmp_path):
    export, bank, _ = setup
    out = tmp_path / "out"
    run_job(export, job(bank, out, presets=["p 1"]))
    before = stats(out)
    report = run_job(export, job(bank, out, presets=["p 1"], batch=3))
    assert report.rendered == 0 and report.skipped == 2 and stats(out) == before
