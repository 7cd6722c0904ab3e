"""Autoregressive generation in PyTorch: cached ring buffers (fast) and full recompute (naive).

This is the reference the host's engines are checked against: the same step contract
(:mod:`nsynth_live.decoder`), the same sampling rule and noise (:mod:`nsynth_live.sampling`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from nsynth_live import mulaw, sampling
from nsynth_live.autoencoder import WaveNetAutoencoder
from nsynth_live.configs import ModelConfig, history_length, receptive_field
from nsynth_live.decoder import Decoder, decoder_step
from nsynth_live.excitation import excitation
from nsynth_live.ring_layout import RingLayout


class RingCache:
    """Past layer inputs of a batch of voices, in one buffer of per-layer rings.

    Layer i keeps its last (k-1) * d_i inputs; all rings live side by side in ``hist``
    [B, sum_i (k-1) d_i, R] in the layout of :class:`nsynth_live.ring_layout.RingLayout`.
    Everything starts at zero, as the causal zero padding of the teacher-forced forward.

    Args:
        cfg: model config.
        batch: number of voices B.
        dtype: dtype of the cached values.
        device: where the cache lives.
    """

    def __init__(
        self, cfg: ModelConfig, batch: int, dtype: torch.dtype = torch.float32, device: torch.device | str | None = None
    ):
        k, r = cfg.decoder_kernel, cfg.residual
        layout = RingLayout(cfg)
        self.period = layout.period
        self._read = torch.from_numpy(layout.read).to(device)
        self._write = torch.from_numpy(layout.write).to(device)
        self.shape = (batch, cfg.decoder_layers, (k - 1) * r)
        self.hist = torch.zeros(batch, history_length(cfg), r, dtype=dtype, device=device)
        self.x_hist = torch.zeros(batch, k, dtype=dtype, device=device)
        self.t = 0

    def taps(self) -> torch.Tensor:
        """[B, L, (k-1)*R]: h_i at t-(k-1)d_i, ..., t-d_i per layer."""
        return self.hist[:, self._read[self.t % self.period]].reshape(self.shape)

    def push(self, x: torch.Tensor, columns: torch.Tensor) -> None:
        """Record sample t and move to t + 1.

        Args:
            x: [B] the input value of sample t (network scaling).
            columns: [B, L, R] every layer's input at t (from :func:`decoder_step`).
        """
        self.hist[:, self._write[self.t % self.period]] = columns
        self.x_hist = torch.cat([self.x_hist[:, 1:], x.to(self.x_hist.dtype)[:, None]], 1)
        self.t += 1


def sample_classes(logits: torch.Tensor, u: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
    """:func:`nsynth_live.sampling.sample_classes` in torch (same rule, same results).

    Args:
        logits: [B, 256].
        u: [B] uniform numbers in [0, 1) (float64).
        temperature: > 0.

    Returns:
        int64 classes [B].
    """
    sampling.check_temperature(temperature)
    z = logits.float() / torch.tensor(temperature, dtype=torch.float32, device=logits.device)
    z = z - z.amax(-1, keepdim=True)
    p = torch.exp(z.double()).float()
    cdf = torch.cumsum(p.double(), -1).float()  # summed in float64, as the rule says
    threshold = u.float() * cdf[:, -1]
    return (cdf < threshold[:, None]).sum(-1)


def _decoder(model: WaveNetAutoencoder | Decoder) -> Decoder:
    return model.decoder if isinstance(model, WaveNetAutoencoder) else model


def _check_length(cfg: ModelConfig, embedding: torch.Tensor, n_samples: int) -> None:
    if n_samples < 0 or embedding.shape[-1] * cfg.hop < n_samples:
        raise ValueError(
            f"{n_samples} samples need {math.ceil(n_samples / cfg.hop)} embedding frames of {cfg.hop}; "
            f"got {embedding.shape[-1]}"
        )


def _excitation(decoder: Decoder, embedding: torch.Tensor, pitch: torch.Tensor | None, n: int,
                dtype: torch.dtype, gain: float = 1.0) -> torch.Tensor | None:
    """[B, E, n] excitation from the note's start (the sine harmonics, or the learned source of
    the embedding), times ``gain``, or None for configs without one."""
    cfg = decoder.cfg
    if cfg.source_harmonics:
        e = decoder.source(embedding, pitch, n)
    elif not cfg.excitation_harmonics:
        return None
    else:
        e = excitation(pitch, n, cfg.excitation_harmonics)
    # float32 x float32(gain), as the host computes it: the same excitation bit for bit.
    return (e if gain == 1.0 else e * float(gain)).to(dtype)


def _noise(seed: int, voices: Sequence[int] | None, batch: int, n_samples: int, device: torch.device) -> torch.Tensor:
    if voices is None:
        voices = range(batch)
    if len(voices) != batch:
        raise ValueError(f"{len(voices)} voice ids for a batch of {batch}")
    return torch.from_numpy(sampling.NoiseStream(seed, voices).draw(n_samples)).to(device)


@torch.inference_mode()
def step_logits(
    model: WaveNetAutoencoder | Decoder, x: torch.Tensor, embedding: torch.Tensor, pitch: torch.Tensor | None = None
) -> torch.Tensor:
    """Logits of a given input computed step by step through the cache (no parallel forward).

    Equals ``decoder(x, embedding, pitch)`` up to rounding: the test of the cached path.

    Args:
        model: autoencoder or decoder.
        x: [B, T] input in network scaling.
        embedding: [B, bottleneck, F] with F * hop >= T.
        pitch: [B] MIDI notes (None without pitch conditioning).

    Returns:
        logits [B, 256, T].
    """
    decoder = _decoder(model)
    cfg = decoder.cfg
    _check_length(cfg, embedding, x.shape[-1])
    cond = decoder.condition(embedding, pitch)
    w = decoder.step_weights()
    exc = _excitation(decoder, embedding, pitch, x.shape[-1], x.dtype)
    cache = RingCache(cfg, x.shape[0], x.dtype, x.device)
    out = []
    for t in range(x.shape[-1]):
        e = None if exc is None else exc[:, :, t]
        logits, columns = decoder_step(w, cache.x_hist, cache.taps(), cond[:, t // cfg.hop], e)
        cache.push(x[:, t], columns)
        out.append(logits)
    return torch.stack(out, -1)


@torch.inference_mode()
def generate_classes(
    model: WaveNetAutoencoder | Decoder,
    embedding: torch.Tensor,
    pitch: torch.Tensor | None,
    n_samples: int,
    seed: int,
    temperature: float = 1.0,
    voices: Sequence[int] | None = None,
    excitation_gain: float = 1.0,
) -> torch.Tensor:
    """Sample mu-law classes one at a time from cached state, starting from silence (zero history).

    Args:
        model: autoencoder or decoder (its dtype and device are used).
        embedding: [B, bottleneck, F] frames, each held for ``hop`` samples; F * hop >= n_samples.
        pitch: [B] MIDI notes (None without pitch conditioning).
        n_samples: samples per voice.
        seed: noise seed; voice b draws from ``default_rng([seed, voices[b]])``.
        temperature: softmax temperature > 0.
        voices: noise id of each batch item (default 0 .. B-1), so a voice renders the same
            samples whatever else shares its batch.
        excitation_gain: factor on the excitation (models with one; see
            :class:`nsynth_live.sampling.Decoding`).

    Returns:
        int64 classes [B, n_samples].
    """
    decoder = _decoder(model)
    cfg = decoder.cfg
    sampling.check_temperature(temperature)
    sampling.check_excitation_gain(excitation_gain)
    _check_length(cfg, embedding, n_samples)
    weight = decoder.start.weight
    cond = decoder.condition(embedding.to(weight), pitch)
    w = decoder.step_weights()
    batch = embedding.shape[0]
    noise = _noise(seed, voices, batch, n_samples, weight.device)
    cache = RingCache(cfg, batch, weight.dtype, weight.device)
    out = torch.empty(batch, n_samples, dtype=torch.int64, device=weight.device)
    exc = _excitation(decoder, embedding, pitch, n_samples, weight.dtype, excitation_gain)
    for t in range(n_samples):
        e = None if exc is None else exc[:, :, t]
        logits, columns = decoder_step(w, cache.x_hist, cache.taps(), cond[:, t // cfg.hop], e)
        out[:, t] = sample_classes(logits, noise[:, t], temperature)
        cache.push(mulaw.to_input(out[:, t]), columns)
    return out


def generate(
    model: WaveNetAutoencoder | Decoder,
    embedding: torch.Tensor,
    pitch: torch.Tensor | None,
    n_samples: int,
    seed: int,
    temperature: float = 1.0,
    voices: Sequence[int] | None = None,
    excitation_gain: float = 1.0,
) -> torch.Tensor:
    """Audio from embedding frames: :func:`generate_classes`, mu-law decoded (for a residual-form
    config, plus its source: :func:`nsynth_live.residual.add_source`).

    Returns:
        float32 [B, n_samples] in [-1, 1].
    """
    audio = mulaw.decode(generate_classes(model, embedding, pitch, n_samples, seed, temperature, voices, excitation_gain))
    decoder = _decoder(model)
    if not decoder.cfg.source_residual:
        return audio
    from nsynth_live.residual import add_source, in_phase

    with torch.inference_mode():
        _, raw = decoder.source(embedding.to(decoder.start.weight), pitch, n_samples, raw=True)
    return add_source(audio.to(raw.device), in_phase(raw).float())


@torch.inference_mode()
def generate_naive(
    model: WaveNetAutoencoder | Decoder,
    embedding: torch.Tensor,
    pitch: torch.Tensor | None,
    n_samples: int,
    seed: int,
    temperature: float = 1.0,
    voices: Sequence[int] | None = None,
    history: torch.Tensor | None = None,
) -> torch.Tensor:
    """:func:`generate_classes` without a cache: the teacher-forced decoder reruns over the whole
    receptive field for every new sample. Same samples, thousands of times slower (the baseline
    of ``nsynth-live bench generation``).

    Args:
        model, embedding, pitch, seed, temperature, voices: as :func:`generate_classes`.
        n_samples: samples to generate per voice.
        history: int64 classes [B, H] that precede the generated samples (teacher-forced
            context; the noise still starts at the first generated sample), or None for silence.
            The embedding must cover H + n_samples.

    Returns:
        int64 classes [B, n_samples].
    """
    decoder = _decoder(model)
    cfg = decoder.cfg
    sampling.check_temperature(temperature)
    weight = decoder.start.weight
    batch = embedding.shape[0]
    start = 0 if history is None else history.shape[-1]
    _check_length(cfg, embedding, start + n_samples)
    embedding = embedding.to(weight)
    x = torch.zeros(batch, start + n_samples, dtype=weight.dtype, device=weight.device)
    if history is not None:
        x[:, :start] = mulaw.to_input(history)
    rf = receptive_field(cfg)
    noise = _noise(seed, voices, batch, n_samples, weight.device)
    out = torch.empty(batch, n_samples, dtype=torch.int64, device=weight.device)
    for t in range(start, start + n_samples):
        # x[t] itself is a placeholder: the logit at the window's last position cannot see it.
        lo = max(0, t - rf)
        logits = decoder(x[:, lo : t + 1], embedding, pitch, offset=lo)[:, :, -1]
        out[:, t - start] = sample_classes(logits, noise[:, t - start], temperature)
        x[:, t] = mulaw.to_input(out[:, t - start])
    return out

