"""The live host end to end on the JACK dummy device: OSC and MIDI in, audio captured out.

`nsynth-live play` runs as its own process on JACK; a separate JACK client records its output
port; notes arrive over real UDP (OSC) and a real JACK MIDI port. The model is the hand-set sine
model (tests/sine_model.py): a clean sine at the note's pitch, so pitch and release are checked
through the whole real path, whatever the state of training.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from pythonosc.osc_message import OscMessage

from nsynth_live.host.bank import Bank, Preset, save_bank
from nsynth_live.host.osc_server import build_message
from nsynth_live.host.trajectory import default_regions
from nsynth_live.pitch import cents_off, note_f0

sys.path.insert(0, str(Path(__file__).parent))
from jack_capture import JackCapture  # noqa: E402
from sine_model import sine_model  # noqa: E402

VENV_BIN = Path(sys.executable).parent
RELEASE_S = (125 - 93) * 512 / 16000  # release frames of a 4 s trajectory


@pytest.fixture(scope="module")
def sine_setup(tmp_path_factory):
    from nsynth_live.exporters.export import export_model

    root = tmp_path_factory.mktemp("e2e")
    export = export_model(sine_model(), root / "model")
    rng = np.random.default_rng(0)
    presets = []
    for i in range(2):
        emb = rng.standard_normal((125, 16)).astype(np.float32)
        presets.append(Preset(f"p{i}", emb, 60, regions=default_regions(emb, 512)))
    save_bank(Bank(root / "bank", "e2e", 512, 16000, 16, 125, presets, corners=["p0", "p1", "p0", "p1"]))
    return export, root / "bank"


def free_port() -> int:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Host:
    def __init__(self, export, bank, extra=()):
        self.port = free_port()
        self.proc = subprocess.Popen(
            [str(VENV_BIN / "nsynth-live"), "play", "--model", str(export), "--bank", str(bank),
             "--engine", "fused", "--osc-port", str(self.port), "--quiet", "--block", "128", *extra],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline()
        assert "nsynth-live playing" in line, self.proc.stderr.read()
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.settimeout(3)

    def send(self, address, *args):
        self.sock.sendto(build_message(address, *args), ("127.0.0.1", self.port))

    def status(self):
        self.send("/nsynth/status")
        return list(OscMessage(self.sock.recvfrom(65536)[0]).params)

    def close(self):
        self.proc.terminate()
        rc = self.proc.wait(timeout=10)
        self.sock.close()
        return rc


def assert_note_then_release(cap, start_note, note_off):
    """Audio between note-on and note-off is a tone at MIDI 60; it is silent a release later."""
    held = cap.since(start_note)[: note_off - start_note]
    assert np.abs(held).max() > 0.05, "the note never sounded"
    f0 = note_f0(held[len(held) // 4 :], cap.rate, 0.0, len(held) / cap.rate)
    assert f0 is not None and abs(cents_off(f0, 60)) < 50, f0
    after = cap.since(note_off)
    tail = after[int((RELEASE_S + 0.3) * cap.rate) :]
    assert len(tail) > 0.1 * cap.rate and np.abs(tail).max() < 1e-3, "still sounding after the release"


@pytest.mark.jack
def test_osc_note_plays_in_tune_and_releases(jack_server, sine_setup):
    host = Host(*sine_setup, extra=["--no-midi"])
    cap = JackCapture("PortAudio:out_0")
    try:
        a = cap.mark()
        host.send("/nsynth/note", 60.0, 100.0)  # Pd-style floats
        cap.wait(1.0)
        b = cap.mark()
        host.send("/nsynth/note", 60, 0)
        cap.wait(RELEASE_S + 0.8)
        assert_note_then_release(cap, a, b)
    finally:
        cap.close()
        assert host.close() == 0


@pytest.mark.jack
def test_midi_note_plays_in_tune_and_releases(jack_server, sine_setup):
    import mido

    from nsynth_live.host.midi_in import backend

    out = backend("jack").open_output("nsynth-e2e-keyboard", virtual=True)
    host = Host(*sine_setup, extra=["--midi-api", "jack", "--midi-in", "nsynth-e2e-keyboard"])
    cap = JackCapture("PortAudio:out_0")
    try:
        time.sleep(0.3)
        a = cap.mark()
        out.send(mido.Message("note_on", note=60, velocity=100))
        cap.wait(1.0)
        b = cap.mark()
        out.send(mido.Message("note_off", note=60))
        cap.wait(RELEASE_S + 0.8)
        assert_note_then_release(cap, a, b)
    finally:
        cap.close()
        out.close()
        assert host.close() == 0


@pytest.mark.jack
def test_ten_thousand_bad_packets_do_not_disturb_a_playing_note(jack_server, sine_setup):
    host = Host(*sine_setup, extra=["--no-midi"])
    cap = JackCapture("PortAudio:out_0")
    rng = np.random.default_rng(1)
    bad = []
    for i in range(10_000):
        kind = i % 5
        if kind == 0:
            bad.append(rng.integers(0, 256, int(rng.integers(1, 120)), dtype=np.uint8).tobytes())
        elif kind == 1:
            bad.append(build_message("/nsynth/note", "sixty", 100))
        elif kind == 2:
            bad.append(build_message("/nsynth/note", float("nan"), 100))
        elif kind == 3:
            bad.append(build_message("/nsynth/note", 1e30, 1e30))
        else:
            bad.append(build_message(f"/nsynth/unknown{i}", 1))
    try:
        host.send("/nsynth/note", 60, 100)
        cap.wait(0.5)
        a = cap.mark()
        for i, pkt in enumerate(bad):
            host.sock.sendto(pkt, ("127.0.0.1", host.port))
            if i % 200 == 199:
                time.sleep(0.005)
        cap.wait(0.5)
        during = cap.since(a)
        assert host.proc.poll() is None
        # Still sounding, still in tune, all the way through the flood.
        frames = during[: len(during) // 1024 * 1024].reshape(-1, 1024)
        assert np.abs(frames).max(axis=1).min() > 0.05
        f0 = note_f0(during, cap.rate, 0.0, len(during) / cap.rate)
        assert f0 is not None and abs(cents_off(f0, 60)) < 50
        deadline = time.time() + 10
        while True:
            voices, xruns, engine, rtf, rejected = host.status()
            if rejected >= 10_000 or time.time() > deadline:
                break
            time.sleep(0.2)
        assert voices == 1 and engine == "fused"
        assert rejected >= 9_900  # UDP on loopback may drop a few of a burst; none may be accepted
    finally:
        cap.close()
        assert host.close() == 0


def test_play_errors_name_the_value_and_the_cli_the_flag(capsys):
    """The library names its parameter; the CLI maps it to the flag; nothing opens before."""
    from nsynth_live.cli import main
    from nsynth_live.errors import BadValue
    from nsynth_live.host.play import PlaySettings, check_settings

    with pytest.raises(BadValue, match="voices 0: must be at least 1") as err:
        check_settings(PlaySettings(voices=0))
    assert err.value.name == "voices"
    with pytest.raises(BadValue, match="excitation_gain -1"):
        check_settings(PlaySettings(excitation_gain=-1.0))
    assert main(["play", "--voices", "0", "--no-midi"]) == 2
    assert "play: error: --voices 0: must be at least 1" in capsys.readouterr().err
    assert main(["play", "--temperature", "0", "--no-midi"]) == 2
    assert "--temperature 0.0: temperature must be a finite number > 0" in capsys.readouterr().err


# ----------------------------------------------------------------------------- from a DAW, on JACK


class DawTrack:
    """What a DAW on JACK does with an instrument that runs as its own program: a MIDI track's
    output port feeds the instrument, and an audio track records the instrument's output port.

    One JACK client with a MIDI out port (notes written at exact frames from its process
    callback, as a sequencer does) and an audio in port (recorded frame by frame).
    """

    def __init__(self, server: str, seconds: float = 20.0):
        import jack

        self.client = jack.Client("daw", no_start_server=True, servername=server)
        self.rate = self.client.samplerate
        self.midi_out = self.client.midi_outports.register("track_midi_out")
        self.audio_in = self.client.inports.register("record_in")
        self.buf = np.zeros(int(seconds * self.rate), np.float32)
        self.n = 0
        self.pending: list[tuple[int, bytes]] = []  # (frame, MIDI bytes), in order
        self.sent: list[int] = []  # the frames the events went out at
        self.client.set_process_callback(self._process)
        self.client.activate()

    def _process(self, frames: int) -> None:
        self.midi_out.clear_buffer()
        while self.pending and self.pending[0][0] < self.n + frames:
            frame, data = self.pending.pop(0)
            offset = max(0, frame - self.n)
            self.midi_out.write_midi_event(offset, data)
            self.sent.append(self.n + offset)
        end = min(self.n + frames, len(self.buf))
        self.buf[self.n : end] = self.audio_in.get_array()[: end - self.n]
        self.n += frames

    def schedule(self, seconds_from_now: float, data: bytes) -> int:
        frame = self.n + int(seconds_from_now * self.rate)
        self.pending.append((frame, data))
        return frame

    def close(self) -> None:
        self.client.deactivate()
        self.client.close()


@pytest.fixture()
def own_jack_server():
    """A JACK dummy server of this test's own (the shared one may carry other hosts' ports)."""
    import os

    name = f"nsynth-daw-{os.getpid()}"
    env = {**os.environ, "JACK_DEFAULT_SERVER": name}
    proc = subprocess.Popen(["jackd", "-n", name, "--no-realtime", "-d", "dummy", "-r", "16000", "-p", "256"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    try:
        for _ in range(100):
            out = subprocess.run(["jack_wait", "-c"], capture_output=True, text=True, env=env).stdout
            if out.strip() == "running":
                break
            time.sleep(0.1)
        else:
            pytest.fail("jackd did not start")
        yield name, env
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.mark.jack
def test_a_daw_track_plays_the_host_over_jack_and_records_it(jack_server, own_jack_server, sine_setup):
    """README's Linux DAW route: a DAW's MIDI track port -> `play --midi-api jack --midi-in`, and
    the host's audio port -> the DAW's recording input, all JACK connections."""
    server, env = own_jack_server
    export, bank = sine_setup
    daw = DawTrack(server)
    proc = subprocess.Popen(
        [str(VENV_BIN / "nsynth-live"), "play", "--model", str(export), "--bank", str(bank), "--engine", "fused",
         "--osc-port", "0", "--quiet", "--block", "128", "--midi-api", "jack", "--midi-in", "daw:track_midi_out"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        line = proc.stdout.readline()
        assert "nsynth-live playing" in line and "MIDI: daw:track_midi_out" in line, proc.stderr.read()
        outputs = [p.name for p in daw.client.get_ports(is_audio=True, is_output=True) if p.name.startswith("PortAudio")]
        assert outputs, "the host has no audio output port on JACK"
        daw.client.connect(outputs[0], daw.audio_in)  # the DAW's audio track records the host
        on = daw.schedule(0.5, bytes([0x90, 60, 100]))
        off = daw.schedule(1.5, bytes([0x80, 60, 0]))
        time.sleep(1.5 + RELEASE_S + 1.0)
        assert daw.sent == [on, off]
        held = daw.buf[on:off]
        assert np.abs(held).max() > 0.05, "the note never sounded"
        f0 = note_f0(held[len(held) // 4 :], daw.rate, 0.0, len(held) / daw.rate)
        assert f0 is not None and abs(cents_off(f0, 60)) < 50, f0
        onset = on + int(np.flatnonzero(np.abs(daw.buf[on:off]) > 1e-3)[0])
        assert (onset - on) / daw.rate < 0.1  # heard within 100 ms of the DAW's note-on frame
        tail = daw.buf[off + int((RELEASE_S + 0.3) * daw.rate) : daw.n]
        assert len(tail) > 0.1 * daw.rate and np.abs(tail).max() < 1e-3, "still sounding after the release"
    finally:
        daw.close()
        proc.terminate()
        assert proc.wait(timeout=10) == 0, proc.stderr.read()
