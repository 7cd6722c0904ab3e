"""The non-causal temporal encoder of the NSynth WaveNet autoencoder."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from nsynth_live.configs import ModelConfig


class EncoderLayer(nn.Module):
    """relu -> dilated non-causal conv -> relu -> 1x1 conv, added to the residual stream.

    Args:
        width: residual channels.
        kernel: filter length of the dilated conv.
        dilation: its dilation.
    """

    def __init__(self, width: int, kernel: int, dilation: int):
        super().__init__()
        self.dilated = nn.Conv1d(width, width, kernel, dilation=dilation, padding="same")
        self.res = nn.Conv1d(width, width, 1)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        """[B, W, T] -> [B, W, T]."""
        return h + self.res(F.relu(self.dilated(F.relu(h))))


class Encoder(nn.Module):
    """Audio to embedding frames: start conv, residual layers, 1x1 bottleneck, average pool.

    Every conv is "same"-padded with zeros, so frame f sees samples before and after its own
    ``hop`` samples (the encoder is non-causal).

    Args:
        cfg: model config (encoder_* fields, bottleneck, hop).
    """

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.hop = cfg.hop
        w = cfg.encoder_width
        self.start = nn.Conv1d(1, w, cfg.encoder_kernel, padding="same")
        self.layers = nn.ModuleList(EncoderLayer(w, cfg.encoder_kernel, d) for d in cfg.encoder_dilations)
        self.bottleneck = nn.Conv1d(w, cfg.bottleneck, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Encode network-scaled audio.

        Args:
            x: [B, T] mu-law input in network scaling ((class - 128) / 128); T must be a
                multiple of ``hop``.

        Returns:
            embedding [B, bottleneck, T // hop].
        """
        if x.dim() != 2:
            raise ValueError(f"encoder input must be [B, T], got shape {tuple(x.shape)}")
        if x.shape[-1] == 0 or x.shape[-1] % self.hop:
            raise ValueError(f"encoder input length {x.shape[-1]} is not a positive multiple of the hop {self.hop}")
        h = self.start(x.unsqueeze(1))
        for layer in self.layers:
            h = layer(h)
        return F.avg_pool1d(self.bottleneck(h), self.hop)
