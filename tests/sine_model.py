"""A hand-set model that plays a clean sine at the note's pitch (test fixture).

Its weights are set, not trained: every layer is silent, and out1 and the logits turn the
sinusoidal excitation (``excitation_harmonics >= 1``) into a distribution sharply peaked at the
mu-law class of ``amplitude * sin(2 pi f0 t)``. Exported like any model, it runs through the real
exporter, engines, voices and audio path, so end-to-end tests can check pitch, onsets and
releases independently of how far training has got.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import torch

from nsynth_live import mulaw
from nsynth_live.autoencoder import WaveNetAutoencoder
from nsynth_live.configs import get_config

SINE_CONFIG = dataclasses.replace(get_config("tiny"), name="tiny-sine", excitation_harmonics=1)


def sine_model(amplitude: float = 0.5, sharpness: float = 2e5) -> WaveNetAutoencoder:
    cfg = SINE_CONFIG
    model = WaveNetAutoencoder(cfg).eval()
    dec = model.decoder
    with torch.no_grad():
        for p in dec.parameters():
            p.zero_()
        s = cfg.skip
        offset = 10.0  # keeps out1's channel 0 positive, so its relu passes the sine through
        dec.excitation.weight[-s, 0, 0] = 1.0  # sin(2 pi f0 t) into out1's channel 0
        dec.cond_out1.bias[0] = offset
        q = torch.from_numpy(mulaw.decode(np.arange(256)).astype(np.float32))
        # logit_j = -a (q_j - A sin)^2 + const = 2 a A q_j sin - a q_j^2: linear in the sine.
        w = 2 * sharpness * amplitude * q
        dec.logits.weight[:, 0, 0] = w
        dec.logits.bias[:] = -sharpness * q**2 - w * offset
    return model
