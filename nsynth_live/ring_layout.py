"""The one layout of the decoder's per-voice rings of past layer inputs (numpy; no torch).

Layer i of a dilated causal conv with kernel k and dilation d_i reads its input at t - (k-1) d_i,
..., t - d_i: it keeps its last (k-1) d_i inputs. All layers' rings live side by side in one
buffer of ``length`` rows of R floats (layer i at rows ``offsets[i]`` ..), so gathering every
layer's taps and writing every layer's new column are one indexing operation each. The index
tables repeat with the period lcm((k-1) d_i).

The PyTorch reference (:class:`nsynth_live.generate.RingCache`), the host's numpy state
(:class:`nsynth_live.host.engines.ring_state.RingState`) and the fused engine all use this layout,
so their states compare row for row.
"""

from __future__ import annotations

import math
from functools import cached_property

import numpy as np

from nsynth_live.configs import ModelConfig


class RingLayout:
    """Where each layer's ring lives and which rows a step reads and writes.

    Args:
        cfg: model config (kernel, dilations).

    Attributes:
        sizes: int64 [L]: (k-1) d_i, the rows of layer i's ring.
        offsets: int64 [L]: first row of layer i's ring.
        lags: int64 [L, k-1]: (k-1) d_i, ..., d_i: the taps' distances into the past, oldest first.
        length: total rows (sum of ``sizes``).
        period: lcm of ``sizes``: the index tables repeat with it.
    """

    def __init__(self, cfg: ModelConfig):
        k = cfg.decoder_kernel
        self.sizes = np.array([(k - 1) * d for d in cfg.decoder_dilations], np.int64)
        self.offsets = np.cumsum(self.sizes) - self.sizes
        self.lags = np.array(cfg.decoder_dilations, np.int64)[:, None] * np.arange(k - 1, 0, -1)
        self.length = int(self.sizes.sum())
        self.period = math.lcm(*self.sizes.tolist())

    @cached_property
    def read(self) -> np.ndarray:
        """int64 [period, L*(k-1)]: at position t, the rows of every layer's taps, oldest first.

        The row of h_i[t - lag] is offset_i + (t - lag) mod size_i.
        """
        t = np.arange(self.period)[:, None, None]
        return (self.offsets[:, None] + (t - self.lags) % self.sizes[:, None]).reshape(self.period, -1)

    @cached_property
    def write(self) -> np.ndarray:
        """int64 [period, L]: at position t, the row each layer's new input h_i[t] goes to: the row
        of h_i[t - (k-1) d_i], which the step has just read as the oldest tap."""
        t = np.arange(self.period)[:, None]
        return self.offsets + t % self.sizes
