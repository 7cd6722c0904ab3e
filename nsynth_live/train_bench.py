"""Training throughput of one config under each CPU/GPU setting, and whether each keeps the
loss curve: fp32, bfloat16 autocast, torch.compile, and both.

Every setting starts from the same initial weights and trains on the same fixed batches (real
crops from a dataset, or synthetic harmonic notes), so the final losses are comparable.
"""

from __future__ import annotations

import copy
import math
import time
from typing import Any

import numpy as np
import torch

from nsynth_live.configs import get_config
from nsynth_live.train import LN2, nll_bits

SETTINGS = ("fp32", "bf16", "compile", "compile+bf16")


def synthetic_batches(n: int, batch: int, crop: int, seed: int = 0) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Harmonic notes at random MIDI pitches with decaying envelopes: ``[(audio [B, crop], pitch [B])]``."""
    rng = np.random.default_rng(seed)
    t = np.arange(crop) / 16000.0
    out = []
    for _ in range(n):
        pitch = rng.integers(36, 85, batch)
        f0 = 440.0 * 2.0 ** ((pitch[:, None] - 69) / 12.0)
        amps = rng.uniform(0.1, 1.0, (batch, 6, 1)) / np.arange(1, 7)[None, :, None]
        x = (amps * np.sin(2 * np.pi * f0[:, None, :] * np.arange(1, 7)[None, :, None] * t)).sum(1)
        x *= np.exp(-t * rng.uniform(0.2, 3.0, (batch, 1))) * 0.3
        out.append((torch.from_numpy(x.astype(np.float32)), torch.from_numpy(pitch)))
    return out


def dataset_batches(data: str, n: int, batch: int, crop: int, seed: int = 0) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """The first ``n`` batches of random crops of a dataset's train split."""
    from nsynth_live.nsynth import NSynthDataset

    ds = NSynthDataset(data, "train", crop=crop, random_crop=True, seed=seed)
    order = np.random.default_rng(seed).permutation(len(ds))
    out = []
    for i in range(n):
        items = [ds[int(order[(i * batch + j) % len(ds)])] for j in range(batch)]
        out.append((torch.stack([it["audio"] for it in items]), torch.stack([it["pitch"] for it in items])))
    return out


def measure(
    config: str,
    batches: list[tuple[torch.Tensor, torch.Tensor]],
    setting: str,
    lr: float = 1e-3,
    warmup: int = 3,
    seed: int = 0,
) -> dict[str, Any]:
    """Train a fresh model (seeded init) over ``batches`` under one setting.

    Returns:
        {"setting", "steps_per_s" (after warm-up, which includes compilation), "losses" [bits]}.
    """
    from nsynth_live.autoencoder import WaveNetAutoencoder

    if setting not in SETTINGS:
        raise ValueError(f"unknown setting {setting!r}")
    torch.manual_seed(seed)
    model = WaveNetAutoencoder(get_config(config))
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    net = torch.compile(model) if setting.startswith("compile") else model
    bf16 = setting.endswith("bf16")
    losses, times = [], []
    for audio, pitch in batches:
        start = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            logits = net(audio, pitch if model.cfg.pitch_conditioning else None)
        loss = nll_bits(logits, audio)
        (loss * LN2).backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        times.append(time.perf_counter() - start)
        losses.append(float(loss.detach()))
    timed = times[warmup:] or times
    return {"setting": setting, "steps_per_s": len(timed) / sum(timed), "losses": losses}


def tail_mean(losses: list[float], frac: float = 0.25) -> float:
    k = max(1, math.ceil(len(losses) * frac))
    return float(np.mean(losses[-k:]))
