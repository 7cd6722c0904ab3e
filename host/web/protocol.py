"""The websocket messages: the host's OSC address space, written as JSON arrays.

A page sends ``["/nsynth/xy", 0.25, 0.75]`` where Max sends ``/nsynth/xy 0.25 0.75``: the address,
then its arguments. Each message is parsed by the OSC server's own parser
(:func:`nsynth_live.host.osc_server.parse_message`), so the web page, OSC and MIDI share one set of
events and one rule for what is valid; the page adds no address of its own.

The host sends JSON objects with a ``type``: ``hello`` (the bank's presets, the control state, the
status), ``state`` (the control state, whenever it changed, whoever changed it) and ``status``
(voices, xruns, real-time factor, rejected messages; a few times a second).
"""

from __future__ import annotations

import json
from typing import Any

from nsynth_live.host import events as ev
from nsynth_live.host.osc_server import PREFIX, BadMessage, parse_message

MAX_MESSAGE = 1024  # characters: the longest real message (four corner names) is far shorter


def parse_text(text: str) -> ev.Event | None:
    """One websocket text message -> an event (None for ``["/nsynth/status"]``, answered by the server).

    Args:
        text: the message, e.g. ``'["/nsynth/note", 60, 100]'``.

    Raises:
        BadMessage: oversized, not JSON, not ``[address, args...]``, or an address or arguments
            the OSC parser rejects.
    """
    if len(text) > MAX_MESSAGE:
        raise BadMessage(f"message of {len(text)} characters (at most {MAX_MESSAGE})")
    try:
        data: Any = json.loads(text)
    except (ValueError, RecursionError) as err:
        raise BadMessage(f"not JSON: {type(err).__name__}") from None
    if not isinstance(data, list) or not data or not isinstance(data[0], str):
        raise BadMessage("a message is a JSON array: [address, arguments...]")
    address, args = data[0], data[1:]
    if not address.startswith(PREFIX + "/"):
        raise BadMessage(f"unknown address {address[:64]!r}")
    try:
        return parse_message(address, args)
    except BadMessage:
        raise
    except Exception as err:  # e.g. an integer too large for a float: still just a bad message
        raise BadMessage(f"{address[:64]}: {type(err).__name__}") from None


def dumps(kind: str, **fields: Any) -> str:
    """A host -> page message: ``{"type": kind, ...fields}`` as compact JSON."""
    return json.dumps({"type": kind, **fields}, separators=(",", ":"))
