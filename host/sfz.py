"""SFZ instruments for rendered note banks: one ``.sfz`` per sound, keys and velocity layers.

SFZ is a plain-text sampler format (``<header>`` lines and ``opcode=value`` pairs) that most DAW
samplers read. An instrument here is one ``<group>`` with one ``<region>`` per rendered
(pitch, velocity) file:

- keys: every MIDI key 0..127 maps to the nearest rendered pitch (``lokey``/``hikey``, ties to the
  lower one), which the sampler transposes from ``pitch_keycenter``; keys outside the rendered
  range stretch the outermost notes;
- velocities: the rendered velocities split 1..127 NSynth-style, each file serving the
  velocities up to its own (25, 50, 75, 100, 127 -> 1-25, 26-50, 51-75, 76-100, 101-127);
  ``amp_veltrack=0`` because the files already carry their level;
- note-off: a short ``ampeg_release`` fade, so a note lasts as long as the key (at most the
  file's length), as on the live host.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from nsynth_live.atomic import atomic_write_bytes

RELEASE_SECONDS = 0.25
"""Fade after key-up: long enough not to click, short enough to stop with the key."""


def key_ranges(pitches: Sequence[int]) -> list[tuple[int, int]]:
    """Contiguous key ranges covering 0..127, each key assigned to its nearest pitch.

    Args:
        pitches: rendered MIDI pitches, distinct, ascending.

    Returns:
        (lokey, hikey) per pitch, in order; the first starts at 0, the last ends at 127 and
        each range starts right after the previous one.
    """
    _check_ascending(pitches, 0, 127, "pitches")
    ranges = []
    for k, p in enumerate(pitches):
        lo = 0 if k == 0 else (pitches[k - 1] + p) // 2 + 1  # a key half-way goes to the lower pitch
        hi = 127 if k == len(pitches) - 1 else (p + pitches[k + 1]) // 2
        ranges.append((lo, hi))
    return ranges


def velocity_ranges(velocities: Sequence[int]) -> list[tuple[int, int]]:
    """Velocity layers partitioning 1..127: each rendered velocity serves those up to it.

    Args:
        velocities: rendered velocities 1..127, distinct, ascending.

    Returns:
        (lovel, hivel) per velocity, in order; the last layer ends at 127.
    """
    _check_ascending(velocities, 1, 127, "velocities")
    return [(1 if k == 0 else velocities[k - 1] + 1, 127 if k == len(velocities) - 1 else v)
            for k, v in enumerate(velocities)]


def _check_ascending(values: Sequence[int], lo: int, hi: int, what: str) -> None:
    if not values or any(not lo <= v <= hi for v in values) or any(a >= b for a, b in zip(values, values[1:])):
        raise ValueError(f"{what} must be distinct, ascending and within {lo}..{hi}, got {list(values)}")


def instrument(name: str, pitches: Sequence[int], velocities: Sequence[int],
               sample: Callable[[int, int], str], comments: Sequence[str] = ()) -> str:
    """The text of one ``.sfz`` instrument.

    Args:
        name: the sound's name (a comment line).
        pitches: rendered pitches, ascending.
        velocities: rendered velocities, ascending.
        sample: (pitch, velocity) -> the file's path relative to the ``.sfz`` (forward slashes).
        comments: extra ``//`` lines at the top (provenance).

    Returns:
        SFZ text, ending with a newline.
    """
    lines = [f"// {name}", *(f"// {c}" for c in comments), "",
             "<control>", "", "<group>", "amp_veltrack=0", f"ampeg_release={RELEASE_SECONDS}", ""]
    for (lokey, hikey), p in zip(key_ranges(pitches), pitches):
        for (lovel, hivel), v in zip(velocity_ranges(velocities), velocities):
            lines.append(f"<region> sample={sample(p, v)} pitch_keycenter={p} lokey={lokey} hikey={hikey} "
                         f"lovel={lovel} hivel={hivel}")
    return "\n".join(lines) + "\n"


def write_instrument(path: Path, text: str) -> bool:
    """Write an ``.sfz`` atomically unless it already holds ``text``.

    Returns:
        whether the file was written.
    """
    data = text.encode()
    if path.is_file() and path.read_bytes() == data:
        return False
    atomic_write_bytes(path, data)
    return True
