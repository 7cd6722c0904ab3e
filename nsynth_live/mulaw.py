"""8-bit mu-law companding exactly as the NSynth reference (mu = 255, 256 classes).

The reference quantises ``q = floor(128 * sign(x) * ln(1 + mu|x|) / ln(1 + mu))`` in
``[-128, 127]`` and feeds the network ``q / 128`` in ``[-1, 1)``; the softmax target is the class
``q + 128`` in ``[0, 255]``. Silence (x = 0) is class 128. Decoding takes the centre of each
class's interval, except class 128, which decodes to exactly 0.

Every function accepts numpy arrays or torch tensors and returns the same kind, so the torch-free
host shares this module with training.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

MU = 255
N_CLASSES = MU + 1
ZERO_CLASS = N_CLASSES // 2  # class of silence: 128


def _is_torch(x: Any) -> bool:
    return type(x).__module__.startswith("torch")


def encode(audio: Any, mu: int = MU) -> Any:
    """Audio to mu-law classes.

    Args:
        audio: float waveform in [-1, 1], any shape (values outside are clipped).
        mu: companding constant (255 for 8 bits).

    Returns:
        int64 classes in [0, mu], same shape.
    """
    if _is_torch(audio):
        import torch

        x = audio.clamp(-1.0, 1.0).to(torch.float64)
        y = torch.sign(x) * torch.log1p(mu * x.abs()) / math.log1p(mu)
        q = torch.floor(y * (mu + 1) / 2).clamp(-(mu + 1) // 2, (mu + 1) // 2 - 1)
        return q.to(torch.int64) + (mu + 1) // 2
    x = np.clip(np.asarray(audio, dtype=np.float64), -1.0, 1.0)
    y = np.sign(x) * np.log1p(mu * np.abs(x)) / math.log1p(mu)
    # x = 1.0 would give floor(128) = 128; the reference's int8 cast wraps it, we clamp it.
    q = np.clip(np.floor(y * (mu + 1) / 2), -(mu + 1) // 2, (mu + 1) // 2 - 1)
    return q.astype(np.int64) + (mu + 1) // 2


def decode(classes: Any, mu: int = MU) -> Any:
    """Mu-law classes to audio (float32).

    Args:
        classes: integer classes in [0, mu], any shape.
        mu: companding constant.

    Returns:
        float32 waveform in [-1, 1], same shape; class ``(mu + 1) // 2`` decodes to 0.
    """
    half = (mu + 1) // 2
    if _is_torch(classes):
        import torch

        q = classes.to(torch.float64) - half
        y = (q + 0.5) * 2.0 / (mu + 1)
        out = torch.sign(y) / mu * ((1.0 + mu) ** y.abs() - 1.0)
        return torch.where(q == 0, torch.zeros_like(out), out).to(torch.float32)
    q = np.asarray(classes, dtype=np.float64) - half
    y = (q + 0.5) * 2.0 / (mu + 1)
    out = np.sign(y) / mu * ((1.0 + mu) ** np.abs(y) - 1.0)
    return np.where(q == 0, 0.0, out).astype(np.float32)


def to_input(classes: Any, mu: int = MU) -> Any:
    """Classes to the network's input scaling: ``(class - 128) / 128`` in [-1, 1) (float32)."""
    half = (mu + 1) // 2
    if _is_torch(classes):
        import torch

        return (classes.to(torch.float32) - half) / half
    return ((np.asarray(classes, dtype=np.float32) - half) / half).astype(np.float32)
