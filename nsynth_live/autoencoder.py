"""The NSynth WaveNet autoencoder: mu-law input, non-causal encoder, conditioned causal decoder."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from nsynth_live import mulaw
from nsynth_live.configs import ModelConfig
from nsynth_live.decoder import Decoder, conditioning_input
from nsynth_live.encoder import Encoder


class WaveNetAutoencoder(nn.Module):
    """Encoder and decoder of one config, trained end to end on next-sample prediction.

    Args:
        cfg: model config.
    """

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        self.encoder = Encoder(cfg)
        self.decoder = Decoder(cfg)

    def _network_input(self, audio: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """[B, T] waveform -> (mu-law classes [B, T], network input [B, T] in the model's dtype)."""
        if audio.dim() != 2:
            raise ValueError(f"audio must be [B, T], got shape {tuple(audio.shape)}")
        classes = mulaw.encode(audio)
        return classes, mulaw.to_input(classes).to(self.decoder.start.weight.dtype)

    def encode(self, audio: torch.Tensor) -> torch.Tensor:
        """Embedding frames of a waveform.

        Args:
            audio: [B, T] float in [-1, 1]; T a positive multiple of ``cfg.hop``.

        Returns:
            [B, bottleneck, T // hop].
        """
        return self.encoder(self._network_input(audio)[1])

    def decode_logits(
        self, audio: torch.Tensor, embedding: torch.Tensor, pitch: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Teacher-forced decoder logits of ``audio`` under an embedding.

        Args:
            audio: [B, T] float in [-1, 1].
            embedding: [B, bottleneck, F] with F * hop >= T.
            pitch: [B] MIDI notes 0..127 (None without pitch conditioning).

        Returns:
            logits [B, 256, T]; the logit at t predicts the class of audio[:, t].
        """
        return self.decoder(self._network_input(audio)[1], embedding, pitch)

    def forward(
        self,
        audio: torch.Tensor,
        pitch: torch.Tensor | None = None,
        input_noise: torch.Tensor | None = None,
        excitation: torch.Tensor | None = None,
        phase: torch.Tensor | None = None,
        return_excitation: bool = False,
        forced: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None,
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor | None] | tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
        """Reconstruction logits: encode the audio, then decode it teacher-forced.

        Args:
            audio: [B, T] float in [-1, 1]; T a positive multiple of ``cfg.hop``.
            pitch: [B] MIDI notes 0..127 (None without pitch conditioning).
            input_noise: optional [B, T] added to the decoder's past samples only (the network
                input in [-1, 1], not the encoder's): a training regulariser (see
                ``TrainSettings.input_noise``).
            excitation: optional [B, 2H, T] replacing the free-running excitation (configs with
                ``excitation_harmonics``; see ``TrainSettings.excitation_lock``).
            phase: optional [B, T] fundamental phase of the learned source (configs with
                ``source_harmonics``; the locked phase in training), instead of the free-running one.
            return_excitation: also return the excitation ([B, E, T] float32, or None for configs
                without one); for a learned source, at the audio's own level (the decoder hears it
                normalised, :meth:`~nsynth_live.decoder.Decoder.source`): its spectral loss needs it.
                For a learned source the source network's amplitudes per frame [B, K, F] come third.
            forced: (mask [B] bool, source [B, 2, T], the source at its own level [B, 2, T]): crops
                whose decoder hears ``source`` (e.g. :func:`nsynth_live.excitation.measured_source`)
                instead of the learned one (training's ``source_forcing``), and in the residual form
                models the audio less that source; the learned one is still computed and returned.

        Returns:
            logits [B, 256, T] (and the excitation, with ``return_excitation``).
        """
        x = self._network_input(audio)[1]
        embedding = self.encoder(x)
        heard, frames = excitation, None
        if self.decoder.source_net is not None and excitation is None:
            frames = self.decoder.source_net(conditioning_input(embedding, pitch, True), pitch)
            heard, excitation = self.decoder.source(embedding, pitch, audio.shape[-1], 0, phase, raw=True, frames=frames)
            if forced is not None:
                heard = torch.where(forced[0][:, None, None], forced[1].to(heard.dtype), heard)
        if self.cfg.source_residual:  # the decoder's past is the residual's (nsynth_live.residual)
            x = self._network_input(self.decoder_target(audio, excitation, forced))[1]
        past = x if input_noise is None else x + input_noise.to(x.dtype)
        logits = self.decoder(past, embedding, pitch, exc=heard)
        if not return_excitation:
            return logits
        return (logits, excitation, frames) if self.decoder.source_net is not None else (logits, excitation)

    def decoder_target(self, audio: torch.Tensor, excitation: torch.Tensor | None,
                       forced: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor:
        """The waveform whose mu-law classes the decoder predicts: the audio itself, or for a
        residual-form config (``source_residual``) the audio less the source its decoder hears.

        Args:
            audio: [B, T]; excitation: [B, 2, T] the learned source at the audio's level
                (:meth:`forward`'s second output with ``return_excitation``), detached here; None
                without a source.
            forced: as :meth:`forward`'s: its crops subtract the forced source's level instead.

        Returns:
            [B, T].
        """
        if not self.cfg.source_residual:
            return audio
        from nsynth_live.residual import in_phase, residual

        if excitation is None:
            raise ValueError("a residual-form model's target needs its source (forward's return_excitation)")
        level = in_phase(excitation).detach()
        if forced is not None:
            level = torch.where(forced[0][:, None], in_phase(forced[2]).to(level.dtype), level)
        return residual(audio, level)

    def loss(self, audio: torch.Tensor, pitch: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean softmax cross-entropy of the reconstruction.

        Args:
            audio: [B, T] float in [-1, 1]; T a positive multiple of ``cfg.hop``.
            pitch: [B] MIDI notes 0..127 (None without pitch conditioning).

        Returns:
            (nats per sample, bits per sample), scalar tensors; the first is what to optimise.
        """
        if self.cfg.excitation_channels:
            raise ValueError(f"config {self.cfg.name!r} has an excitation: use forward(..., return_excitation=True) "
                             "and decoder_target")
        classes, x = self._network_input(audio)
        logits = self.decoder(x, self.encoder(x), pitch)
        nats = F.cross_entropy(logits.float(), classes)
        return nats, nats / math.log(2.0)
