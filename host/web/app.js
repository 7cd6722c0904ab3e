// nsynth-live's browser pad. Every control goes to the host as an OSC address with its arguments,
// written as JSON (["/nsynth/xy", x, y]); the host pushes its state back to every open page, so
// what this page shows is the host's state, whoever moved it.
"use strict";

const LOW = 60;                       // the on-screen keyboard: C4 ..
const KEYS = 25;                      // .. C6, two octaves
const VELOCITY = 100;
const COMPUTER_KEYS = "awsedftgyhujkolp;'"; // C D-flat D ... from the computer keyboard's octave
const BLACK = new Set([1, 3, 6, 8, 10]);
const token = new URLSearchParams(location.search).get("token");

const $ = (id) => document.getElementById(id);
let ws = null;
let presets = [];
let state = null;                     // the host's control state (last pushed)
let computerOctave = 0;               // z / x shift the computer keys by octaves
const outbox = new Map();             // address -> args, sent once per animation frame (coalesced)
let flushQueued = false;

// ------------------------------------------------------------------ connection

function connect() {
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  ws = new WebSocket(`${scheme}://${location.host}/ws` + (token ? `?token=${encodeURIComponent(token)}` : ""));
  ws.onopen = () => { $("conn").textContent = "connected"; $("conn").className = "on"; };
  ws.onclose = () => {
    $("conn").textContent = "disconnected"; $("conn").className = "off";
    setTimeout(connect, 1000);
  };
  ws.onmessage = (e) => {
    const m = JSON.parse(e.data);
    if (m.type === "hello") { setPresets(m.presets); setState(m.state); setStatus(m.status); }
    else if (m.type === "state") setState(m);
    else if (m.type === "status") setStatus(m);
  };
}

function send(address, ...args) {
  if (ws && ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify([address, ...args]));
}

// Continuous controls (pad, sliders) send their latest value once per frame, not per pointer event.
function sendLatest(address, ...args) {
  outbox.set(address, args);
  if (!flushQueued) {
    flushQueued = true;
    requestAnimationFrame(() => {
      flushQueued = false;
      for (const [a, v] of outbox) send(a, ...v);
      outbox.clear();
    });
  }
}

// ------------------------------------------------------------------ state from the host

function setPresets(names) {
  presets = names;
  const list = $("presets");
  list.replaceChildren();
  for (const name of names) {
    const li = document.createElement("li");
    const b = document.createElement("button");
    b.type = "button"; b.textContent = name; b.dataset.preset = name;
    b.addEventListener("click", () => send("/nsynth/preset", name));
    li.append(b); list.append(li);
  }
  for (const sel of document.querySelectorAll("#corner-pick select")) {
    sel.replaceChildren(...names.map((n) => new Option(n, n)));
  }
}

function cornerNames() {
  if (state && state.corners) return state.corners;
  return [0, 1, 2, 3].map((i) => presets[i % Math.max(presets.length, 1)] || "");
}

function setState(s) {
  state = s;
  const names = cornerNames();
  names.forEach((name, i) => {
    $(`corner-name-${i}`).textContent = name;
    const sel = $(`corner-${i}`);
    if (document.activeElement !== sel) sel.value = name;
  });
  if (!dragging) placePuck(s.xy[0], s.xy[1]);
  $("pad").dataset.x = s.xy[0]; $("pad").dataset.y = s.xy[1];
  $("pad").classList.toggle("active", s.mode === "xy");
  for (const b of document.querySelectorAll("#presets button")) {
    b.classList.toggle("current", s.mode === "preset" && s.selection[0] === b.dataset.preset);
  }
  for (const id of ["gain", "temperature", "excitation_gain"]) {
    const el = $(id);
    if (!sliding.has(id)) el.value = s[id];
    $(`${id}-v`).textContent = Number(s[id]).toFixed(id === "excitation_gain" ? 1 : 2);
  }
}

function setStatus(st) {
  $("st-voices").textContent = st.voices;
  $("st-xruns").textContent = st.xruns;
  $("st-rtf").textContent = Number(st.rtf).toFixed(2) + "x";
  $("st-rejected").textContent = st.rejected;
}

// ------------------------------------------------------------------ XY pad

const pad = $("pad");
let dragging = null;                  // the pointer id moving the puck

function placePuck(x, y) {
  $("puck").style.left = `${x * 100}%`;
  $("puck").style.top = `${(1 - y) * 100}%`;
}

function padMove(e) {
  const r = pad.getBoundingClientRect();
  const x = Math.min(Math.max((e.clientX - r.left) / r.width, 0), 1);
  const y = Math.min(Math.max(1 - (e.clientY - r.top) / r.height, 0), 1); // y grows upwards
  placePuck(x, y);
  sendLatest("/nsynth/xy", x, y);
}

pad.addEventListener("pointerdown", (e) => {
  e.preventDefault();
  if (!state || !state.corners) {     // a bank without corners: the page's choice sets them first
    send("/nsynth/corners", ...cornerNames());
  }
  dragging = e.pointerId;
  pad.setPointerCapture(e.pointerId);
  padMove(e);
});
pad.addEventListener("pointermove", (e) => { if (e.pointerId === dragging) padMove(e); });
for (const type of ["pointerup", "pointercancel", "lostpointercapture"]) {
  pad.addEventListener(type, (e) => { if (e.pointerId === dragging) dragging = null; });
}

for (const sel of document.querySelectorAll("#corner-pick select")) {
  sel.addEventListener("change", () => {
    const names = cornerNames().slice();
    names[Number(sel.dataset.corner)] = sel.value;
    send("/nsynth/corners", ...names);
  });
}

// ------------------------------------------------------------------ sliders

const sliding = new Set();            // sliders under a finger: the host's echo does not move them
for (const id of ["gain", "temperature", "excitation_gain"]) {
  const el = $(id);
  const address = `/nsynth/${id}`;
  el.addEventListener("pointerdown", () => sliding.add(id));
  el.addEventListener("pointerup", () => sliding.delete(id));
  el.addEventListener("change", () => { sliding.delete(id); sendLatest(address, Number(el.value)); });
  el.addEventListener("input", () => sendLatest(address, Number(el.value)));
}
$("panic").addEventListener("click", () => send("/nsynth/panic"));

// ------------------------------------------------------------------ keyboard

const keyEls = new Map();             // pitch -> element
const sounding = new Map();           // pitch -> how many pointers/keys hold it

function noteOn(pitch) {
  const n = sounding.get(pitch) || 0;
  sounding.set(pitch, n + 1);
  if (n === 0) { send("/nsynth/note", pitch, VELOCITY); keyEls.get(pitch)?.classList.add("down"); }
}

function noteOff(pitch) {
  const n = sounding.get(pitch) || 0;
  if (n <= 0) return;
  if (n === 1) {
    sounding.delete(pitch);
    send("/nsynth/note_off", pitch);
    keyEls.get(pitch)?.classList.remove("down");
  } else sounding.set(pitch, n - 1);
}

function buildKeyboard() {
  const kb = $("keyboard");
  const whites = [];
  for (let i = 0; i < KEYS; i++) if (!BLACK.has(i % 12)) whites.push(LOW + i);
  const w = 100 / whites.length;
  let white = 0;
  for (let i = 0; i < KEYS; i++) {
    const pitch = LOW + i;
    const el = document.createElement("div");
    el.className = "key " + (BLACK.has(i % 12) ? "black" : "white");
    el.dataset.pitch = pitch;
    if (i % 12 === 0) el.textContent = `C${pitch / 12 - 1}`;
    if (BLACK.has(i % 12)) {
      el.style.left = `${white * w - w * 0.32}%`;
      el.style.width = `${w * 0.64}%`;
    } else white++;
    kb.append(el);
    keyEls.set(pitch, el);
  }
  const pointers = new Map();         // pointer id -> pitch it holds (a finger may slide across keys)
  const keyAt = (e) => {
    const el = document.elementFromPoint(e.clientX, e.clientY);
    return el && el.dataset && el.dataset.pitch ? Number(el.dataset.pitch) : null;
  };
  kb.addEventListener("pointerdown", (e) => {
    e.preventDefault();
    kb.setPointerCapture(e.pointerId);
    const p = keyAt(e);
    if (p === null) return;
    pointers.set(e.pointerId, p);
    noteOn(p);
  });
  kb.addEventListener("pointermove", (e) => {
    if (!pointers.has(e.pointerId)) return;
    const p = keyAt(e);
    const was = pointers.get(e.pointerId);
    if (p !== null && p !== was) { noteOff(was); pointers.set(e.pointerId, p); noteOn(p); }
  });
  const up = (e) => {
    if (!pointers.has(e.pointerId)) return;
    noteOff(pointers.get(e.pointerId));
    pointers.delete(e.pointerId);
  };
  for (const type of ["pointerup", "pointercancel", "lostpointercapture"]) kb.addEventListener(type, up);
}

const computerHeld = new Map();       // key -> pitch it started (an octave change keeps it)

function typing(e) {
  const t = e.target;
  return t && (t.tagName === "SELECT" || (t.tagName === "INPUT" && t.type !== "range"));
}

function showOctave() { $("octave").textContent = (computerOctave >= 0 ? "+" : "") + computerOctave; }

document.addEventListener("keydown", (e) => {
  if (e.repeat || e.ctrlKey || e.metaKey || e.altKey || typing(e)) return;
  const k = e.key.toLowerCase();
  if (k === "z" || k === "x") {
    computerOctave = Math.min(Math.max(computerOctave + (k === "x" ? 1 : -1), -4), 4);
    showOctave();
    return;
  }
  const i = COMPUTER_KEYS.indexOf(k);
  if (i < 0 || computerHeld.has(k)) return;
  const pitch = LOW + 12 * computerOctave + i;
  if (pitch < 0 || pitch > 127) return;
  e.preventDefault();
  computerHeld.set(k, pitch);
  noteOn(pitch);
});
document.addEventListener("keyup", (e) => {
  const k = e.key.toLowerCase();
  if (!computerHeld.has(k)) return;
  noteOff(computerHeld.get(k));
  computerHeld.delete(k);
});
window.addEventListener("blur", () => {   // a key released in another window never comes back
  for (const p of computerHeld.values()) noteOff(p);
  computerHeld.clear();
});

buildKeyboard();
showOctave();
connect();
