"""OSC input over real UDP sockets: the /nsynth address space, bad input counted and ignored."""

from __future__ import annotations

import queue
import socket
import struct
import time

import numpy as np
import pytest
from pythonosc.osc_bundle_builder import IMMEDIATELY, OscBundleBuilder
from pythonosc.osc_message import OscMessage

from nsynth_live.host import events as ev
from nsynth_live.host.osc_server import OscServer, build_message


@pytest.fixture
def server():
    q: "queue.Queue[ev.Event]" = queue.Queue()
    srv = OscServer(q, status=lambda: (3, 1, "fused", 2.5), port=0).start()
    client = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    client.settimeout(2.0)
    yield srv, q, client
    client.close()
    srv.stop()


def send(client, srv, address, *args):
    client.sendto(build_message(address, *args), (srv.host, srv.port))


def drain(q, n, timeout=2.0):
    out, deadline = [], time.time() + timeout
    while len(out) < n and time.time() < deadline:
        try:
            out.append(q.get(timeout=0.05))
        except queue.Empty:
            pass
    return out


def test_every_address_becomes_its_event(server):
    srv, q, c = server
    send(c, srv, "/nsynth/note", 60, 100)
    send(c, srv, "/nsynth/note", 60.0, 0.0)  # Pd sends floats; velocity 0 is note off
    send(c, srv, "/nsynth/note_off", 61.4)
    send(c, srv, "/nsynth/preset", "flute")
    send(c, srv, "/nsynth/preset", 3.0)
    send(c, srv, "/nsynth/mix", "a", 2, 0.25)
    send(c, srv, "/nsynth/corners", "a", "b", 2, 3)
    send(c, srv, "/nsynth/xy", 1.5, -0.2)  # clipped to the pad
    send(c, srv, "/nsynth/gain", 0.5)
    send(c, srv, "/nsynth/panic")
    got = drain(q, 10)
    assert got == [
        ev.NoteOn(60, 100), ev.NoteOff(60), ev.NoteOff(61), ev.SelectPreset("flute"), ev.SelectPreset(3),
        ev.Mix("a", 2, 0.25), ev.Corners(("a", "b", 2, 3)), ev.XY(1.0, 0.0), ev.Gain(0.5), ev.Panic(),
    ]
    assert srv.counters.rejected == 0 and srv.counters.accepted == 10


def test_the_decoding_extensions_become_their_events_clipped(server):
    srv, q, c = server
    send(c, srv, "/nsynth/temperature", 0.375)  # exact in float32, as OSC sends it
    send(c, srv, "/nsynth/temperature", 9)  # clipped to 2
    send(c, srv, "/nsynth/excitation_gain", 3.5)
    send(c, srv, "/nsynth/excitation_gain", 12.0)  # clipped to 8
    send(c, srv, "/nsynth/excitation_gain", -1.0)  # clipped to 0: no excitation
    assert drain(q, 5) == [ev.Temperature(0.375), ev.Temperature(2.0), ev.ExcitationGain(3.5), ev.ExcitationGain(8.0),
                           ev.ExcitationGain(0.0)]
    assert srv.counters.rejected == 0


def test_bundles_are_unpacked(server):
    srv, q, c = server
    b = OscBundleBuilder(IMMEDIATELY)
    b.add_content(OscMessage(build_message("/nsynth/note", 64, 90)))
    b.add_content(OscMessage(build_message("/nsynth/xy", 0.5, 0.5)))
    c.sendto(b.build().dgram, (srv.host, srv.port))
    assert drain(q, 2) == [ev.NoteOn(64, 90), ev.XY(0.5, 0.5)]


@pytest.mark.parametrize("address,args", [
    ("/nsynth/note", (128, 100)),  # pitch out of range
    ("/nsynth/note", (60,)),  # missing velocity
    ("/nsynth/note", ("sixty", 100)),  # wrong type
    ("/nsynth/note", (float("nan"), 100)),
    ("/nsynth/note", (60, float("inf"))),
    ("/nsynth/note", (1e30, 100)),  # huge
    ("/nsynth/note", (2147483647, 100)),
    ("/nsynth/gain", (float("nan"),)),
    ("/nsynth/xy", (0.5,)),
    ("/nsynth/unknown", (1,)),
    ("/other/note", (60, 100)),
    ("/nsynth/panic", (1,)),
    ("/nsynth/temperature", (0,)),  # no temperature is 0
    ("/nsynth/temperature", (-0.5,)),
    ("/nsynth/temperature", ("hot",)),
    ("/nsynth/excitation_gain", (float("nan"),)),
    ("/nsynth/excitation_gain", ()),
])
def test_bad_messages_are_counted_and_ignored(server, address, args):
    srv, q, c = server
    send(c, srv, address, *args)
    send(c, srv, "/nsynth/note", 60, 100)  # the server keeps going
    assert drain(q, 1) == [ev.NoteOn(60, 100)]
    assert q.empty()
    assert srv.counters.rejected == 1 and srv.counters.accepted == 1


def test_random_bytes_never_stop_the_server(server):
    srv, q, c = server
    rng = np.random.default_rng(0)
    n = 500
    for i in range(n):
        size = int(rng.integers(0, 200))
        data = rng.integers(0, 256, size, dtype=np.uint8).tobytes()
        if i % 3 == 0:  # a valid-looking address with garbage after it
            data = b"/nsynth/note\x00\x00\x00\x00,ii\x00" + data[:3]
        c.sendto(data, (srv.host, srv.port))
        if i % 50 == 49:
            time.sleep(0.01)  # UDP drops what a full socket buffer cannot hold; pace the burst
    send(c, srv, "/nsynth/note", 72, 80)
    got = drain(q, 1, timeout=5)
    assert got == [ev.NoteOn(72, 80)]
    deadline = time.time() + 5
    while srv.counters.rejected + srv.counters.accepted < n + 1 and time.time() < deadline:
        time.sleep(0.01)
    assert srv.counters.rejected + srv.counters.accepted == n + 1
    assert srv.counters.rejected >= n - 5  # a random datagram is almost never a valid message


def test_status_replies_to_the_sender(server):
    srv, q, c = server
    send(c, srv, "/nsynth/bogus")
    send(c, srv, "/nsynth/status")
    data, _ = c.recvfrom(65536)
    msg = OscMessage(data)
    assert msg.address == "/nsynth/status"
    assert list(msg.params) == [3, 1, "fused", pytest.approx(2.5), 1]


def test_a_busy_port_is_one_clear_error(server):
    from nsynth_live.errors import UserError

    srv, _, _ = server
    with pytest.raises(UserError, match=f"OSC: cannot listen on 127.0.0.1:{srv.port}"):
        OscServer(queue.Queue(), status=lambda: (0, 0, "", 0.0), port=srv.port)
