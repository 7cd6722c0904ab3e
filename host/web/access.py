"""Who may use the web page: this machine only by default; with a token when bound beyond it.

- Bound to a loopback address (the default, 127.0.0.1), no token is needed, but a request must
  name this machine in its Host header (so a web site that points its own name at 127.0.0.1,
  "DNS rebinding", is refused).
- Bound to any other address (``--web-host 0.0.0.0`` for a phone on the LAN), every request must
  carry the token printed at start: in the URL (``?token=...``) or in the cookie the page sets
  when opened with it.
- A websocket opened by a browser must come from the page's own origin (browsers always send
  Origin; another site's script in the same browser cannot reach the host).
"""

from __future__ import annotations

import hmac
import ipaddress
import secrets
import socket

from yarl import URL

COOKIE = "nsynth_token"
LOCAL_NAMES = {"localhost", "127.0.0.1", "::1"}


def is_loopback(host: str) -> bool:
    """Whether a listen address reaches this machine only."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a host name: it may resolve beyond this machine


def new_token() -> str:
    return secrets.token_urlsafe(16)


def token_ok(expected: str, given: str | None) -> bool:
    """Constant-time comparison of a request's token with the host's."""
    return given is not None and hmac.compare_digest(given.encode(), expected.encode())


def names_this_machine(host_header: str | None) -> bool:
    """Whether a Host header (``127.0.0.1:8000``, ``[::1]:8000``, ``localhost``) names a loopback host."""
    if not host_header:
        return False
    host = URL(f"http://{host_header}").host or ""
    return host.strip("[]").lower() in LOCAL_NAMES


def same_origin(origin: str | None, host_header: str | None) -> bool:
    """Whether a websocket's Origin is the page's own (no Origin: not a browser, allowed)."""
    if origin is None:
        return True
    if not host_header:
        return False
    try:
        o = URL(origin)
        h = URL(f"{o.scheme}://{host_header}")
        return o.scheme in ("http", "https") and o.host == h.host and o.port == h.port
    except ValueError:
        return False


def lan_address() -> str:
    """This machine's address on its default route (what a phone on the LAN types); 127.0.0.1
    when there is none. No packet is sent: connecting a UDP socket only picks the route."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.connect(("10.254.254.254", 9))
        return s.getsockname()[0]
    except OSError:
        return "127.0.0.1"
    finally:
        s.close()
