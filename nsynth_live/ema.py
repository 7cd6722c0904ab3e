"""Exponential moving average of model weights (the reference exports the averaged weights)."""

from __future__ import annotations

import torch
from torch import nn


class EMA:
    """Keeps ``shadow = d * shadow + (1 - d) * param`` for every float parameter and buffer.

    With the reference's d = 0.9999 the average needs ~10k steps to forget its initial value, so
    early on the effective decay is ``min(d, (1 + n) / (10 + n))`` (n = updates so far): short
    runs export sensible weights, long runs get exactly the reference average.

    Args:
        model: the module whose weights are averaged (unwrapped, not the DDP wrapper).
        decay: the long-run decay d.
    """

    def __init__(self, model: nn.Module, decay: float = 0.9999):
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"EMA decay must be in [0, 1), got {decay}")
        self.decay = decay
        self.updates = 0
        self.shadow = {k: v.detach().clone() for k, v in model.state_dict().items()}

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        d = min(self.decay, (1.0 + self.updates) / (10.0 + self.updates))
        for k, v in model.state_dict().items():
            s = self.shadow[k]
            if s.dtype.is_floating_point:
                s.mul_(d).add_(v.detach(), alpha=1.0 - d)
            else:
                s.copy_(v)
        self.updates += 1

    def state_dict(self) -> dict:
        return {"decay": self.decay, "updates": self.updates, "shadow": self.shadow}

    def load_state_dict(self, state: dict) -> None:
        self.decay = float(state["decay"])
        self.updates = int(state["updates"])
        for k, v in state["shadow"].items():
            self.shadow[k].copy_(v)
