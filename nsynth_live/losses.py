"""Training losses besides the decoder's cross-entropy (torch).

- :func:`multires_stft_loss`: DDSP's multi-scale spectral loss (Engel et al. 2020), which trains
  the learned harmonic source (configs with ``source_harmonics``) to match each crop's spectrum.
  The evaluation's :func:`nsynth_live.spectral.multires_spectral_distance` is its numpy yardstick.
"""

from __future__ import annotations

import torch

SOURCE_FFTS = (2048, 1024, 512, 256, 128)


def multires_stft_loss(pred: torch.Tensor, target: torch.Tensor, ffts: tuple[int, ...] = SOURCE_FFTS,
                       eps: float = 1e-5) -> torch.Tensor:
    """Sum over FFT sizes of mean |S - S'| + mean |log(S + eps) - log(S' + eps)| (Hann, hop n/4).

    Args:
        pred: [B, T] synthesised audio.
        target: [B, T] the audio it should sound like.
        ffts: frame sizes (those longer than T are skipped: a short crop has no such frame).
        eps: log floor.

    Returns:
        scalar float32 tensor.
    """
    if pred.shape != target.shape or pred.dim() != 2:
        raise ValueError(f"spectral loss needs two [B, T] tensors, got {tuple(pred.shape)} and {tuple(target.shape)}")
    total = pred.new_zeros((), dtype=torch.float32)
    for n in (n for n in ffts if n <= pred.shape[-1]):
        window = torch.hann_window(n, device=pred.device, dtype=torch.float32)
        spec = [torch.stft(x.float(), n, n // 4, window=window, center=False, return_complex=True).abs()
                for x in (pred, target)]
        total = total + (spec[0] - spec[1]).abs().mean()
        total = total + (torch.log(spec[0] + eps) - torch.log(spec[1] + eps)).abs().mean()
    return total
