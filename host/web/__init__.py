"""The browser XY pad: ``nsynth-live play --web`` serves a page (index.html, app.js, style.css, shipped
as package data) from the running host and talks to it over one websocket.

Modules: :mod:`.protocol` (the messages: the OSC address space as JSON), :mod:`.access` (who may
connect), :mod:`.server` (the aiohttp server, in its own thread and event loop).
"""
