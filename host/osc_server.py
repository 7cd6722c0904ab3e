"""OSC input for Max, Pd and anything else: the ``/nsynth/...`` address space over UDP.

| address | arguments | event |
| --- | --- | --- |
| /nsynth/note | pitch, velocity | NoteOn (velocity 0: NoteOff) |
| /nsynth/note_off | pitch | NoteOff |
| /nsynth/preset | name or index | SelectPreset |
| /nsynth/mix | a, b, t | Mix |
| /nsynth/corners | n0, n1, n2, n3 | Corners |
| /nsynth/xy | x, y | XY |
| /nsynth/gain | g | Gain |
| /nsynth/panic | — | Panic |
| /nsynth/status | — | reply ``/nsynth/status`` to the sender |
| /nsynth/temperature | t (> 0, clipped to 2) | Temperature (extension) |
| /nsynth/excitation_gain | g (0..8) | ExcitationGain ("pitch lock"; extension) |

Numbers may arrive as ints or floats (Pd and Max send floats): integers are rounded. A packet
that does not parse, an unknown address, a wrong argument count or type, a NaN or infinity, and
an out-of-range pitch or velocity are counted as rejected and otherwise ignored; the server
never stops for bad input. Continuous values (t, x, y, gains, temperature) are clipped to their range.

The server runs its own receive loop on a plain UDP socket (python-osc parses and builds the
packets) so that every failure is caught and counted, and status replies leave from the port
the client sent to.
"""

from __future__ import annotations

import math
import queue
import socket
import threading
from typing import Any, Callable

from pythonosc.osc_message_builder import OscMessageBuilder
from pythonosc.osc_packet import OscPacket

from nsynth_live.host import events as ev

PREFIX = "/nsynth"
MAX_PACKET = 65536
MAX_TEMPERATURE = 2.0  # above it every model is noise
MAX_EXCITATION_GAIN = 8.0  # above it every preset is the same plain tone


class BadMessage(ValueError):
    """A message the host rejects (counted, never raised out of the server)."""


def _number(v: Any, what: str) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise BadMessage(f"{what} must be a number, got {type(v).__name__}")
    f = float(v)
    if not math.isfinite(f):
        raise BadMessage(f"{what} must be finite, got {v!r}")
    return f


def _int(v: Any, what: str, lo: int, hi: int) -> int:
    f = _number(v, what)
    if not lo - 0.5 <= f < hi + 0.5:
        raise BadMessage(f"{what} {v!r} is outside {lo}..{hi}")
    return int(round(f))


def _unit(v: Any, what: str, hi: float = 1.0) -> float:
    return min(max(_number(v, what), 0.0), hi)


def _preset(v: Any, what: str) -> ev.PresetKey:
    if isinstance(v, str):
        if not v:
            raise BadMessage(f"{what}: empty preset name")
        return v
    return _int(v, what, 0, 1_000_000)


def _args(args: list[Any], n: int, address: str) -> list[Any]:
    if len(args) != n:
        raise BadMessage(f"{address} takes {n} argument(s), got {len(args)}")
    return args


def parse_message(address: str, args: list[Any]) -> ev.Event | None:
    """One OSC message -> an event (None for /nsynth/status, which the server answers itself).

    Raises:
        BadMessage: unknown address, wrong arguments.
    """
    if address == f"{PREFIX}/note":
        pitch, vel = _args(args, 2, address)
        p, v = _int(pitch, "pitch", 0, 127), _int(vel, "velocity", 0, 127)
        return ev.NoteOff(p) if v == 0 else ev.NoteOn(p, v)
    if address == f"{PREFIX}/note_off":
        return ev.NoteOff(_int(_args(args, 1, address)[0], "pitch", 0, 127))
    if address == f"{PREFIX}/preset":
        return ev.SelectPreset(_preset(_args(args, 1, address)[0], "preset"))
    if address == f"{PREFIX}/mix":
        a, b, t = _args(args, 3, address)
        return ev.Mix(_preset(a, "a"), _preset(b, "b"), _unit(t, "t"))
    if address == f"{PREFIX}/corners":
        c = _args(args, 4, address)
        return ev.Corners(tuple(_preset(x, f"corner {i}") for i, x in enumerate(c)))  # type: ignore[arg-type]
    if address == f"{PREFIX}/xy":
        x, y = _args(args, 2, address)
        return ev.XY(_unit(x, "x"), _unit(y, "y"))
    if address == f"{PREFIX}/gain":
        return ev.Gain(_unit(_args(args, 1, address)[0], "gain", 2.0))
    # Extensions beyond the base table of docs/design.md: the decoding settings, live (README: Decoding).
    if address == f"{PREFIX}/temperature":
        t = _number(_args(args, 1, address)[0], "temperature")
        if t <= 0:
            raise BadMessage(f"temperature must be > 0, got {t:g}")
        return ev.Temperature(min(t, MAX_TEMPERATURE))
    if address == f"{PREFIX}/excitation_gain":
        return ev.ExcitationGain(_unit(_args(args, 1, address)[0], "excitation gain", MAX_EXCITATION_GAIN))
    if address == f"{PREFIX}/panic":
        _args(args, 0, address)
        return ev.Panic()
    if address == f"{PREFIX}/status":
        _args(args, 0, address)
        return None
    raise BadMessage(f"unknown address {address!r}")


def build_message(address: str, *args: Any) -> bytes:
    """An OSC message datagram (for replies, clients and tests)."""
    b = OscMessageBuilder(address)
    for a in args:
        b.add_arg(a)
    return b.build().dgram


class OscServer:
    """Receives ``/nsynth`` messages on a UDP port and puts events on a queue.

    Args:
        events: where parsed events go.
        status: returns the values of a status reply: (active voices, xruns, engine name,
            real-time factor); the rejected count is appended by the server.
        host: address to listen on (127.0.0.1: this machine only).
        port: UDP port (0: any free port, see :attr:`port`).
    """

    def __init__(self, events: "queue.Queue[ev.Event]", status: Callable[[], tuple[int, int, str, float]],
                 host: str = "127.0.0.1", port: int = 9000):
        self.events = events
        self.status = status
        self.counters = ev.InputCounters()
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        # Room for bursts (a patcher sweeping a slider) while the loop is busy.
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        try:
            self.sock.bind((host, port))
        except OSError as err:
            self.sock.close()
            from nsynth_live.errors import UserError

            raise UserError(f"OSC: cannot listen on {host}:{port} ({err.strerror or err})") from None
        self.sock.settimeout(0.2)  # lets stop() end the loop promptly
        self.host, self.port = self.sock.getsockname()[:2]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="nsynth-osc", daemon=True)

    def start(self) -> "OscServer":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        self.sock.close()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                data, sender = self.sock.recvfrom(MAX_PACKET)
            except socket.timeout:
                continue
            except OSError:
                if self._stop.is_set():
                    return
                continue
            self.handle(data, sender)

    def handle(self, data: bytes, sender: Any) -> None:
        """Parse one datagram (a message or a bundle) and act on each message in it."""
        try:
            messages = [m.message for m in OscPacket(data).messages]
        except Exception as err:  # random bytes can trip any parser error: count, never raise
            self.counters.reject(f"malformed packet from {sender}: {type(err).__name__}")
            return
        for msg in messages:
            try:
                event = parse_message(msg.address, list(msg.params))
            except BadMessage as err:
                self.counters.reject(str(err))
                continue
            except Exception as err:
                self.counters.reject(f"{msg.address}: {type(err).__name__}")
                continue
            self.counters.accept()
            if event is None:
                self._reply_status(sender)
            else:
                self.events.put(event)

    def _reply_status(self, sender: Any) -> None:
        try:
            voices, xruns, engine, rtf = self.status()
            self.sock.sendto(build_message(f"{PREFIX}/status", int(voices), int(xruns), str(engine), float(rtf),
                                           int(self.counters.rejected)), sender)
        except OSError:
            pass  # the sender went away: nothing to report to
