"""The one sampling rule of every generator and engine, and its noise (numpy only, no torch).

Inverse-CDF sampling of a 256-way softmax with a temperature, as a function of (logits, u):

1. ``z = float32(logits) / float32(temperature)``; ``z -= max(z)``
2. ``p = float32(exp(float64(z)))`` (unnormalised; exp in float64 and rounded, so that libraries
   whose float32 ``exp`` differ by an ulp still agree)
3. ``cdf[j] = float32(p[0] + ... + p[j])``, summed left to right in float64
4. ``class = #{j : cdf[j] < float32(u) * cdf[255]}``: the first class whose cdf reaches the
   threshold, so class j is drawn for thresholds in (cdf[j-1], cdf[j]] and a class without mass
   never is, even where float32(u) rounds up to 1 (the count is then the last class with mass;
   counting ``<=`` would return 256 there, once in ~2**25 samples)

Every step is exactly rounded IEEE arithmetic, so numpy, torch and a compiled engine agree bit for
bit on the same float32 logits; engines whose logits differ in the last bits disagree only where
the threshold falls within that difference of a class boundary (a near-tie).

The noise ``u`` for voice ``b`` is the float64 stream of ``np.random.default_rng([seed, b])``, one
number per sample, so a voice's samples do not depend on which other voices share its batch, and
drawing the stream in blocks gives the same numbers as drawing it at once.

:class:`Decoding` holds the settings a generator applies on top of the model: the temperature
and, for models with an excitation, its gain. An export may recommend them (``model.json``'s
``decoding``); every command takes them from there unless told otherwise.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np


def check_temperature(temperature: float) -> None:
    """Raise ValueError unless the temperature is a finite number > 0."""
    ok = isinstance(temperature, numbers.Real) and not isinstance(temperature, bool)
    if not (ok and math.isfinite(temperature) and temperature > 0):
        raise ValueError(f"temperature must be a finite number > 0, got {temperature!r}")


def check_excitation_gain(gain: float) -> None:
    """Raise ValueError unless the excitation gain is a finite number >= 0."""
    ok = isinstance(gain, numbers.Real) and not isinstance(gain, bool)
    if not (ok and math.isfinite(gain) and gain >= 0):
        raise ValueError(f"excitation gain must be a finite number >= 0, got {gain!r}")


@dataclass(frozen=True)
class Decoding:
    """How a model's output distribution becomes samples.

    Attributes:
        temperature: softmax temperature > 0. Below 1 the draw favours the likeliest classes:
            less of the hiss a small model's broad distributions give, at some loss of detail.
        excitation_gain: factor >= 0 on the sinusoidal excitation (models with one): the
            decoder was trained with gain 1; above 1 it follows the requested f0 more firmly
            (a steadier pitch) and its timbre moves towards the excitation's plain harmonics.
            0 removes the excitation. Models without one ignore it.
    """

    temperature: float = 1.0
    excitation_gain: float = 1.0

    def __post_init__(self) -> None:
        check_temperature(self.temperature)
        check_excitation_gain(self.excitation_gain)

    def to_dict(self) -> dict[str, float]:
        return {k: float(v) for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, data: Any) -> "Decoding":
        """Parse ``model.json``'s ``decoding`` object (missing keys take the defaults).

        Raises:
            ValueError: not an object, an unknown key, or a bad value (named).
        """
        if not isinstance(data, Mapping):
            raise ValueError(f"decoding must be an object, got {type(data).__name__}")
        unknown = sorted(set(data) - {"temperature", "excitation_gain"})
        if unknown:
            raise ValueError(f"decoding has unknown key(s) {', '.join(map(repr, unknown))}")
        return cls(**data)

    def override(self, temperature: float | None = None, excitation_gain: float | None = None) -> "Decoding":
        """These settings with the given ones (not None) replacing them."""
        return Decoding(self.temperature if temperature is None else temperature,
                        self.excitation_gain if excitation_gain is None else excitation_gain)


class NoiseStream:
    """Per-voice uniform noise in [0, 1), drawn block by block.

    Args:
        seed: non-negative integer seed of the whole render.
        voices: voice ids (non-negative integers); voice ``b`` uses ``default_rng([seed, b])``.
    """

    def __init__(self, seed: int, voices: Sequence[int]):
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
            raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
        self._rngs = [np.random.default_rng([int(seed), int(v)]) for v in voices]

    def draw(self, n: int) -> np.ndarray:
        """The next ``n`` numbers of every voice: float64 [voices, n]."""
        out = np.empty((len(self._rngs), n), dtype=np.float64)
        for row, rng in zip(out, self._rngs):
            rng.random(out=row)
        return out


def voice_noise(seed: int, n_voices: int, n_samples: int) -> np.ndarray:
    """The first ``n_samples`` numbers of voices 0 .. n_voices - 1: float64 [n_voices, n_samples]."""
    return NoiseStream(seed, range(n_voices)).draw(n_samples)


def sample_classes(logits: np.ndarray, u: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """Draw one class per row by the inverse CDF (the rule in the module docstring).

    Args:
        logits: [B, 256] (used as float32).
        u: [B] uniform numbers in [0, 1) (float64, from :class:`NoiseStream`).
        temperature: > 0; towards 0 the draw approaches the argmax.

    Returns:
        int64 classes [B] in 0..255.
    """
    check_temperature(temperature)
    logits = np.asarray(logits, dtype=np.float32)
    u = np.asarray(u, dtype=np.float64)
    if logits.ndim != 2 or u.shape != logits.shape[:1]:
        raise ValueError(f"expected logits [B, C] and u [B], got {logits.shape} and {u.shape}")
    z = logits / np.float32(temperature)
    z = z - z.max(axis=-1, keepdims=True)
    p = np.exp(z.astype(np.float64)).astype(np.float32)
    cdf = np.cumsum(p, axis=-1, dtype=np.float64).astype(np.float32)
    threshold = u.astype(np.float32) * cdf[:, -1]
    return (cdf < threshold[:, None]).sum(axis=-1).astype(np.int64)


def tie_margin(logits: np.ndarray, u: float, temperature: float, a: int, b: int) -> float:
    """How near the draw of ``u`` came to the cdf boundary between classes ``a`` and ``b``: the
    distance between the threshold and that boundary, relative to the total mass (the rule in
    the module docstring). Two engines whose logits differ by float rounding can only draw
    different classes where this is tiny (a near-tie).

    Args:
        logits: [256] one step's logits.
        u: that step's uniform number.
        temperature: > 0, as drawn.
        a, b: the two classes drawn.
    """
    z = np.asarray(logits, np.float32) / np.float32(temperature)
    z = z - z.max()
    cdf = np.cumsum(np.exp(z.astype(np.float64)).astype(np.float32), dtype=np.float64).astype(np.float32)
    threshold = np.float32(u) * cdf[-1]
    return abs(float(cdf[min(a, b)]) - float(threshold)) / float(cdf[-1])


def compare_streams(got: np.ndarray, expected: np.ndarray, logits: np.ndarray, noise: np.ndarray,
                    temperature: float = 1.0, tolerance: float = 1e-4) -> dict[str, Any]:
    """Whether two engines rendered the same classes for the same noise, up to float near-ties.

    Per voice, only the first difference counts: after it the voice follows another history, so
    later samples may differ for no fault of either engine. A first difference is a near-tie when
    :func:`tie_margin` is below ``tolerance``; any other is a real difference.

    Args:
        got, expected: int [V, T] classes of the two engines.
        logits: float32 [V, T, 256] of either engine (they agree to rounding up to a difference).
        noise: float64 [V, T], the draws both used.
        temperature: as drawn.
        tolerance: the largest margin a near-tie may have.

    Returns:
        {"voices", "samples", "identical_voices", "near_ties", "real_differences",
        "first_differences": [{"voice", "sample", "got", "expected", "margin", "near_tie"}],
        "equal": no real difference}.
    """
    got, expected = np.asarray(got), np.asarray(expected)
    if got.shape != expected.shape or got.ndim != 2 or logits.shape[:2] != got.shape or noise.shape != got.shape:
        raise ValueError(f"shapes do not match: got {got.shape}, expected {expected.shape}, "
                         f"logits {logits.shape}, noise {noise.shape}")
    firsts = []
    for v in range(got.shape[0]):
        where = np.flatnonzero(got[v] != expected[v])
        if not where.size:
            continue
        t = int(where[0])
        margin = tie_margin(logits[v, t], float(noise[v, t]), temperature, int(got[v, t]), int(expected[v, t]))
        firsts.append({"voice": v, "sample": t, "got": int(got[v, t]), "expected": int(expected[v, t]),
                       "margin": margin, "near_tie": margin < tolerance})
    near = sum(f["near_tie"] for f in firsts)
    return {"voices": int(got.shape[0]), "samples": int(got.shape[1]), "identical_voices": int(got.shape[0]) - len(firsts),
            "near_ties": near, "real_differences": len(firsts) - near, "first_differences": firsts,
            "equal": len(firsts) == near}
