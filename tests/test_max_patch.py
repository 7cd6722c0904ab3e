"""The Max example patch (presets/patches/nsynth-live.maxpat), checked without Max.

There is no Max on Linux, so this reads the patcher JSON: every box is a standard Max object with
its real inlet and outlet counts, every patch cord joins existing boxes and outlets, one
[udpsend 127.0.0.1 9000] sends everything, and a small model of the objects used (message,
prepend, pak, scale, pictslider, flonum, udpsend) plays every message box, the XY pad's corners and
the number boxes into OSC messages that the host's own parser accepts, per the address table of docs/design.md
and the host's two extensions to it (temperature and pitch lock).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pythonosc.osc_packet import OscPacket

from nsynth_live.host import events as ev
from nsynth_live.host.osc_server import build_message, parse_message

PATCH = Path(__file__).resolve().parents[1] / "presets" / "patches" / "nsynth-live.maxpat"
RECOMMENDED_T = json.loads((PATCH.parents[1] / "default" / "model" / "model.json").read_text())["decoding"]["temperature"]

# the OSC table of docs/design.md: address -> (argument count, event). /nsynth/status is left out of the Max
# patch: the host replies to the sending port, and udpsend cannot receive.
BASE = {
    "/nsynth/note": (2, (ev.NoteOn, ev.NoteOff)),
    "/nsynth/note_off": (1, ev.NoteOff),
    "/nsynth/preset": (1, ev.SelectPreset),
    "/nsynth/mix": (3, ev.Mix),
    "/nsynth/corners": (4, ev.Corners),
    "/nsynth/xy": (2, ev.XY),
    "/nsynth/gain": (1, ev.Gain),
    "/nsynth/panic": (0, ev.Panic),
}
# nsynth-live's extensions beyond the base table of docs/design.md (host/osc_server.py): the decoding settings, live.
EXTENSIONS = {
    "/nsynth/temperature": (1, ev.Temperature),
    "/nsynth/excitation_gain": (1, ev.ExcitationGain),
}
ADDRESSES = {**BASE, **EXTENSIONS}

# UI boxes (maxclass -> inlets, outlets) and objects in newobj boxes (name -> inlets, outlets;
# None: one inlet per argument), as Max 8 creates them.
UI_CLASSES = {"comment": (1, 0), "message": (2, 1), "flonum": (1, 2), "number": (1, 2), "pictslider": (2, 2)}
OBJECTS = {"udpsend": (1, 0), "prepend": (1, 1), "scale": (6, 1), "pak": (None, 1)}


def load() -> dict:
    return json.loads(PATCH.read_text())["patcher"]


def atom(s: str):
    """A Max atom from patcher text: int, float ("0." is a float) or symbol."""
    try:
        return int(s)
    except ValueError:
        pass
    try:
        return float(s)
    except ValueError:
        return s


class Patch:
    def __init__(self, patcher: dict):
        self.boxes = {b["box"]["id"]: b["box"] for b in patcher["boxes"]}
        assert len(self.boxes) == len(patcher["boxes"]), "box ids are unique"
        self.lines = [(l["patchline"]["source"], l["patchline"]["destination"]) for l in patcher["lines"]]

    def name(self, box: dict) -> str:
        return box["text"].split()[0] if box["maxclass"] == "newobj" else box["maxclass"]

    def args(self, box: dict) -> list:
        return [atom(a) for a in box["text"].split()[1:]]

    def ids(self, name: str) -> list[str]:
        return [i for i, b in self.boxes.items() if self.name(b) == name]


class MaxModel:
    """Enough of Max's message passing for the objects this patch uses."""

    def __init__(self, patch: Patch):
        self.p = patch
        self.sent: list[list] = []
        self.state: dict[str, list] = {i: list(patch.args(b)) for i, b in patch.boxes.items()
                                       if patch.name(b) == "pak"}

    def output(self, box_id: str, outlet: int, msg: list) -> None:
        # Max fires cords from the rightmost destination first; order does not matter here.
        for (src, o), (dst, inlet) in self.p.lines:
            if src == box_id and o == outlet:
                self.receive(dst, inlet, list(msg))

    def receive(self, box_id: str, inlet: int, msg: list) -> None:
        box = self.p.boxes[box_id]
        name = self.p.name(box)
        if name == "udpsend":
            self.sent.append(msg)
        elif name == "prepend":
            self.output(box_id, 0, self.p.args(box) + msg)
        elif name == "scale":
            assert inlet == 0 and len(msg) == 1
            lo, hi, out_lo, out_hi = self.p.args(box)[:4]
            self.output(box_id, 0, [out_lo + (msg[0] - lo) * (out_hi - out_lo) / (hi - lo)])
        elif name == "pak":
            if inlet == 0 and len(msg) > 1:
                self.state[box_id][: len(msg)] = msg
            else:
                assert len(msg) == 1
                self.state[box_id][inlet] = type(self.state[box_id][inlet])(msg[0])
            self.output(box_id, 0, list(self.state[box_id]))
        elif name == "flonum":
            self.output(box_id, 0, [float(msg[0])])
        else:
            raise AssertionError(f"no model of {name} ({box_id}) receiving {msg}")

    def click(self, box_id: str) -> None:
        box = self.p.boxes[box_id]
        assert box["maxclass"] == "message"
        self.output(box_id, 0, [atom(a) for a in box["text"].split()])

    def drag(self, box_id: str, fx: float, fy: float) -> None:
        """Drag the pictslider knob to fx across, fy up (0..1 each)."""
        box = self.p.boxes[box_id]
        missing = {"leftvalue", "rightvalue", "bottomvalue", "topvalue"} - box.keys()
        assert not missing, f"the pad sets its ranges, not relying on Max's defaults: {sorted(missing)}"
        h = round(box["leftvalue"] + fx * (box["rightvalue"] - box["leftvalue"]))
        v = round(box["bottomvalue"] + fy * (box["topvalue"] - box["bottomvalue"]))
        self.output(box_id, 1, [v])  # right to left
        self.output(box_id, 0, [h])

    def type_number(self, box_id: str, value: float) -> None:
        box = self.p.boxes[box_id]
        assert box["minimum"] <= value <= box["maximum"]
        self.output(box_id, 0, [float(value)])

    def take(self) -> list[list]:
        sent, self.sent = self.sent, []
        return sent


def host_accepts(msg: list) -> ev.Event | None:
    """Encode as udpsend does (ints 'i', floats 'f', symbols 's') and parse as the host does."""
    address, *args = msg
    assert isinstance(address, str) and address in ADDRESSES, msg
    assert len(args) == ADDRESSES[address][0], msg
    data = build_message(address, *args)
    (m,) = [p.message for p in OscPacket(data).messages]
    event = parse_message(m.address, list(m.params))
    assert isinstance(event, ADDRESSES[address][1]), (msg, event)
    return event


@pytest.fixture(scope="module")
def patch() -> Patch:
    return Patch(load())


def test_is_a_max_patcher():
    patcher = load()
    assert patcher["classnamespace"] == "box"
    assert patcher["appversion"]["major"] >= 7
    assert isinstance(patcher["boxes"], list) and isinstance(patcher["lines"], list)


def test_every_box_is_a_standard_object_with_its_real_inlets_and_outlets(patch):
    for i, box in patch.boxes.items():
        assert {"id", "maxclass", "numinlets", "numoutlets", "patching_rect"} <= box.keys(), i
        if box["maxclass"] == "newobj":
            name = patch.name(box)
            assert name in OBJECTS, f"{i}: {name} is not one of {sorted(OBJECTS)}"
            nin, nout = OBJECTS[name]
            nin = len(patch.args(box)) if nin is None else nin
        else:
            assert box["maxclass"] in UI_CLASSES, f"{i}: {box['maxclass']} is not one of {sorted(UI_CLASSES)}"
            nin, nout = UI_CLASSES[box["maxclass"]]
        assert (box["numinlets"], box["numoutlets"]) == (nin, nout), (i, box)
        assert len(box.get("outlettype", [""] * nout)) == nout, i
        if box["maxclass"] in ("message", "comment"):
            assert box.get("text"), i
        if box["maxclass"] == "message":
            assert not set(box["text"]) & set(",;$"), f"{i}: plain messages only: {box['text']!r}"


def test_every_cord_joins_existing_outlets_and_inlets(patch):
    assert len(set(map(repr, patch.lines))) == len(patch.lines), "no duplicate cords"
    for (src, outlet), (dst, inlet) in patch.lines:
        assert src in patch.boxes and dst in patch.boxes, (src, dst)
        assert 0 <= outlet < patch.boxes[src]["numoutlets"], (src, outlet)
        assert 0 <= inlet < patch.boxes[dst]["numinlets"], (dst, inlet)


def test_one_udpsend_to_the_host_default_port(patch):
    (udp,) = patch.ids("udpsend")
    assert patch.args(patch.boxes[udp]) == ["127.0.0.1", 9000]


def test_every_control_reaches_udpsend(patch):
    (udp,) = patch.ids("udpsend")
    reaches = {udp}
    changed = True
    while changed:
        changed = False
        for (src, _), (dst, _) in patch.lines:
            if dst in reaches and src not in reaches:
                reaches.add(src)
                changed = True
    orphans = [i for i, b in patch.boxes.items() if b["maxclass"] != "comment" and i not in reaches]
    assert orphans == []


def test_message_boxes_send_design_messages(patch):
    model = MaxModel(patch)
    seen = {}
    for i in patch.ids("message"):
        model.click(i)
        sent = model.take()
        assert len(sent) == 1, (i, sent)
        host_accepts(sent[0])
        seen.setdefault(sent[0][0], []).append(sent[0][1:])
    # Every note switched on can be switched off from the patch.
    for pitch, velocity in seen["/nsynth/note"]:
        assert velocity == 0 or [pitch, 0] in seen["/nsynth/note"], pitch
    assert set(seen) == (set(BASE) - {"/nsynth/xy"}) | set(EXTENSIONS)  # the XY pad sends /nsynth/xy


def test_extension_boxes_send_the_recommended_settings(patch):
    """One click sets the shipped model's recommended temperature (model.json's), another the
    neutral settings (1: the model's own distribution, the excitation as trained), and one a
    sine-excitation model's steadier pitch lock (3.5)."""
    model = MaxModel(patch)
    events = []
    for i in patch.ids("message"):
        model.click(i)
        (msg,) = model.take()
        if msg[0] in EXTENSIONS:
            e = host_accepts(msg)
            value = e.temperature if isinstance(e, ev.Temperature) else e.gain
            events.append((type(e).__name__, round(value, 6)))
    assert sorted(events) == [("ExcitationGain", 1.0), ("ExcitationGain", 3.5),
                              ("Temperature", RECOMMENDED_T), ("Temperature", 1.0)]


@pytest.mark.parametrize("fx, fy", [(0, 0), (1, 0), (0, 1), (1, 1), (0.25, 0.75)])
def test_xy_pad_sends_xy_with_y_up(patch, fx, fy):
    """The corners (docs/design.md) are (0,0), (1,0), (0,1), (1,1): bottom-left is (0, 0), top-right (1, 1)."""
    model = MaxModel(patch)
    (pad,) = patch.ids("pictslider")
    model.drag(pad, fx, fy)
    sent = model.take()
    assert sent and all(m[0] == "/nsynth/xy" for m in sent)
    event = host_accepts(sent[-1])
    assert (event.x, event.y) == (pytest.approx(fx), pytest.approx(fy))


# Address -> (its number box's range, all of which the host takes as it is), a value to type, the
# event's field.
NUMBER_BOXES = {
    "/nsynth/gain": ((0, 2), 1.5, "gain"),
    "/nsynth/temperature": ((0.02, 2), 0.5, "temperature"),  # > 0: the host rejects 0
    "/nsynth/excitation_gain": ((0, 8), 3.5, "gain"),
}


def number_box_addresses(patch) -> dict[str, list[str]]:
    """Address -> the number boxes that send it (typing each box's minimum)."""
    model = MaxModel(patch)
    found: dict[str, list[str]] = {}
    for i in patch.ids("flonum"):
        model.type_number(i, patch.boxes[i]["minimum"])
        for m in model.take():
            found.setdefault(m[0], []).append(i)
    return found


def test_one_number_box_per_continuous_setting(patch):
    found = number_box_addresses(patch)
    assert {a: len(b) for a, b in found.items()} == {a: 1 for a in NUMBER_BOXES}


@pytest.mark.parametrize("address", sorted(NUMBER_BOXES))
def test_number_box_sends_its_setting(patch, address):
    (lo, hi), value, field = NUMBER_BOXES[address]
    model = MaxModel(patch)
    (box,) = number_box_addresses(patch)[address]
    assert (patch.boxes[box]["minimum"], patch.boxes[box]["maximum"]) == (lo, hi)
    for v in (lo, value, hi):  # every value the box can give is one the host takes as it is
        model.type_number(box, v)
        (msg,) = model.take()
        assert msg == [address, float(v)]
        assert getattr(host_accepts(msg), field) == pytest.approx(v)
