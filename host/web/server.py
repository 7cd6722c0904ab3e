"""The web page's server: aiohttp in its own thread and event loop, never on the audio path.

Pages send the OSC address space as JSON (:mod:`.protocol`); accepted messages become the host's
own events on the player's queue, as OSC and MIDI messages do, so a pad moved in a browser morphs
sounding notes exactly as ``/nsynth/xy`` does. The control state is the synth's: the server reads
it (:meth:`Synth.controls`) a few dozen times a second and pushes every change, and the status a
few times a second, to every connected page, so pages (and Max, Pd, a MIDI controller) see each
other's moves.

Bad messages (oversized, not JSON, unknown addresses, wrong or out-of-range arguments, binary
frames) are counted in :attr:`WebServer.counters` and ignored. A frame beyond ``MAX_FRAME`` is
counted too and closes that page's connection (no page sends one). A page that goes away with keys
held releases them.
"""

from __future__ import annotations

import asyncio
import os
import threading
from importlib import resources
from typing import Any, Protocol, Sequence

from aiohttp import WSMsgType, web

from nsynth_live.errors import UserError
from nsynth_live.host import events as ev
from nsynth_live.host.osc_server import BadMessage
from nsynth_live.host.web import access
from nsynth_live.host.web.protocol import dumps, parse_text

MAX_FRAME = 65536  # bytes: aiohttp refuses (and closes on) longer frames
STATE_S = 0.04  # how often the control state is compared with what the pages were last sent
STATUS_S = 0.25  # how often the status is pushed
SEND_TIMEOUT_S = 1.0  # a page that does not take a message in this long misses it
FILES = {"/": ("index.html", "text/html"), "/app.js": ("app.js", "text/javascript"),
         "/style.css": ("style.css", "text/css")}
# The browser itself refuses anything beyond the host: no other origin, no inline script.
CSP = ("default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; connect-src 'self'; "
       "frame-ancestors 'none'; base-uri 'none'; form-action 'none'")


class _Counted(Protocol):
    counters: ev.InputCounters


class WebServer:
    """Serves the page and its websocket for a running :class:`~nsynth_live.host.player.Player`.

    Args:
        player: the host (its event queue, synth and status).
        host: listen address (127.0.0.1: this machine only; any other address requires a token).
        port: TCP port (0: any free port, see :attr:`port`).
        inputs: the host's other inputs (OSC, MIDI), whose rejected messages the status adds up.
        token: the token for a non-loopback address (None: a new random one).
    """

    def __init__(self, player: Any, host: str = "127.0.0.1", port: int = 8000, inputs: Sequence[_Counted] = (),
                 token: str | None = None):
        self.player = player
        self.events = player.events
        self.synth = player.synth
        self.host = host
        self.port = port
        self.inputs = list(inputs)
        self.token = None if access.is_loopback(host) else (token or access.new_token())
        self.counters = ev.InputCounters()
        self._clients: set[web.WebSocketResponse] = set()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="nsynth-web", daemon=True)
        self._runner: web.AppRunner | None = None
        self._pusher: asyncio.Task | None = None
        page = resources.files("nsynth_live.host.web")
        self._files = {path: (page.joinpath(name).read_bytes(), ctype) for path, (name, ctype) in FILES.items()}

    # ------------------------------------------------------------------ lifecycle (caller's thread)

    def start(self) -> "WebServer":
        """Listen (raises UserError when the address cannot be had) and serve in the background."""
        self._thread.start()
        try:
            asyncio.run_coroutine_threadsafe(self._serve(), self._loop).result(timeout=15)
        except OSError as err:
            self.stop()
            why = os.strerror(err.errno) if err.errno else str(err)  # aiohttp's own text repeats the address
            raise UserError(f"web: cannot listen on {self.host}:{self.port} ({why})") from None
        return self

    def stop(self) -> None:
        if self._thread.is_alive():
            try:
                asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop).result(timeout=5)
            except Exception:  # shutting down anyway: a page that will not close is dropped
                pass
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=5)
        if not self._loop.is_running():
            self._loop.close()

    @property
    def url(self) -> str:
        """The page's address to open (with the token where one is needed)."""
        shown = access.lan_address() if self.host in ("0.0.0.0", "") else self.host
        if ":" in shown:
            shown = f"[{shown}]"
        return f"http://{shown}:{self.port}/" + (f"?token={self.token}" if self.token else "")

    def qr(self) -> str | None:
        """The URL as a QR code for a terminal (None without the optional segno package)."""
        try:
            import io

            import segno
        except ImportError:
            return None
        out = io.StringIO()
        segno.make(self.url, error="m").terminal(out=out, compact=True)
        return out.getvalue()

    def status(self) -> dict[str, Any]:
        """The host's status as the page shows it; ``rejected`` adds up every input's bad messages."""
        st = self.player.status()
        rejected = st.rejected + self.counters.rejected + sum(i.counters.rejected for i in self.inputs)
        return {"voices": st.voices, "xruns": st.xruns, "rtf": round(st.realtime_factor, 3), "engine": st.engine,
                "stolen": st.stolen, "rejected": rejected, "web_rejected": self.counters.rejected,
                "web_accepted": self.counters.accepted, "pages": len(self._clients)}

    # ------------------------------------------------------------------ event loop

    async def _serve(self) -> None:
        app = web.Application(middlewares=[self._guard], client_max_size=4096)
        app.router.add_get("/ws", self._websocket)
        for path in self._files:
            app.router.add_get(path, self._file)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        await web.TCPSite(self._runner, self.host, self.port).start()
        self.port = self._runner.addresses[0][1]
        self._pusher = asyncio.ensure_future(self._push())

    async def _shutdown(self) -> None:
        if self._pusher:
            self._pusher.cancel()
        for ws in list(self._clients):
            await ws.close(code=1001, message=b"host stopping")
        if self._runner:
            await self._runner.cleanup()

    @web.middleware
    async def _guard(self, request: web.Request, handler: Any) -> web.StreamResponse:
        if self.token is not None:
            given = request.query.get("token") or request.cookies.get(access.COOKIE)
            if not access.token_ok(self.token, given):
                raise web.HTTPForbidden(text="forbidden: open the URL with the token that nsynth-live play printed\n")
        elif not access.names_this_machine(request.host):
            raise web.HTTPForbidden(text="forbidden: this host serves its own machine only (see --web-host)\n")
        if request.path == "/ws" and not access.same_origin(request.headers.get("Origin"), request.host):
            raise web.HTTPForbidden(text="forbidden: websocket from another origin\n")
        response = await handler(request)
        if self.token is not None and request.query.get("token"):
            # The page's own requests (style.css, app.js) then carry the token without it in their URLs.
            response.set_cookie(access.COOKIE, self.token, httponly=True, samesite="Strict", path="/")
        return response

    async def _file(self, request: web.Request) -> web.Response:
        body, ctype = self._files[request.path]
        return web.Response(body=body, content_type=ctype, charset="utf-8",
                            headers={"Content-Security-Policy": CSP, "Cache-Control": "no-store",
                                     "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer"})

    async def _websocket(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(max_msg_size=MAX_FRAME, compress=False, heartbeat=20.0)
        await ws.prepare(request)
        held: set[int] = set()  # this page's keys down, released if it goes away
        self._clients.add(ws)
        try:
            presets = [p.name for p in self.synth.bank.presets]
            await ws.send_str(dumps("hello", presets=presets, state=self.synth.controls(), status=self.status()))
            async for msg in ws:
                if msg.type == WSMsgType.TEXT:
                    if self._handle(msg.data, held):
                        await ws.send_str(dumps("status", **self.status()))
                elif msg.type == WSMsgType.BINARY:
                    self.counters.reject("binary websocket frame")
                elif msg.type == WSMsgType.ERROR:  # e.g. a frame over MAX_FRAME: aiohttp closes
                    self.counters.reject(f"websocket error: {ws.exception()}")
        finally:
            self._clients.discard(ws)
            for pitch in held:
                self.events.put(ev.NoteOff(pitch))
        return ws

    def _handle(self, text: str, held: set[int]) -> bool:
        """Act on one message; returns whether the page asked for the status."""
        try:
            event = parse_text(text)
        except BadMessage as err:
            self.counters.reject(str(err))
            return False
        self.counters.accept()
        if event is None:
            return True
        if isinstance(event, ev.NoteOn):
            held.add(event.pitch)
        elif isinstance(event, ev.NoteOff):
            held.discard(event.pitch)
        self.events.put(event)
        return False

    async def _push(self) -> None:
        last: dict | None = None
        ticks_per_status = max(1, round(STATUS_S / STATE_S))
        tick = 0
        while True:
            await asyncio.sleep(STATE_S)
            tick += 1
            if not self._clients:
                last = None
                continue
            state = self.synth.controls()
            if state != last:
                last = state
                await self._broadcast(dumps("state", **state))
            if tick % ticks_per_status == 0:
                await self._broadcast(dumps("status", **self.status()))

    async def _broadcast(self, text: str) -> None:
        clients = [ws for ws in self._clients if not ws.closed]
        # A page that went away (an exception here) is removed by its own handler.
        await asyncio.gather(*(asyncio.wait_for(ws.send_str(text), SEND_TIMEOUT_S) for ws in clients),
                             return_exceptions=True)
