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


def log_amplitude_l1(pred: torch.Tensor, target: torch.Tensor, live: torch.Tensor, floor: float = 1e-3) -> torch.Tensor:
    """Mean L1 between log amplitudes over the harmonics below Nyquist (``floor`` keeps
    near-silent harmonics from dominating).

    Args:
        pred, target: [B, K, F] harmonic amplitudes per frame.
        live: [B, K, 1] 1 for harmonics below Nyquist, else 0.

    Returns:
        scalar tensor.
    """
    d = (torch.log(pred + floor) - torch.log(target + floor)).abs() * live
    return d.sum() / torch.clamp(live.sum() * pred.shape[-1], min=1.0)


def harmonic_loss(frames: torch.Tensor, audio: torch.Tensor, pitch: torch.Tensor, cfg: Any,
                  floor: float = 1e-3) -> torch.Tensor:
    """Distance of a learned source's per-frame harmonic amplitudes from the audio's own:
    :func:`log_amplitude_l1` against :func:`nsynth_live.excitation.measured_amplitudes`.

    Args:
        frames: [B, K, F] the source network's amplitudes (F = T // hop).
        audio: [B, T] the crops; pitch: [B] their MIDI notes.
        cfg: the model config (hop, source_harmonics).

    Returns:
        scalar tensor.
    """
    from nsynth_live.excitation import audible, measured_amplitudes

    k = cfg.source_harmonics
    with torch.no_grad():
        measured = measured_amplitudes(audio, pitch, k, cfg.hop).to(frames.dtype)[:, :, : frames.shape[-1]]
        live = audible(pitch.to(audio.device), k)[:, :, None].to(frames.dtype)
    return log_amplitude_l1(frames, measured, live, floor)
