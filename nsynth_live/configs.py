"""Model configurations as data, and the sizes derived from them.

A :class:`ModelConfig` fixes every shape of the WaveNet autoencoder. The named configs differ
only in widths, layer counts and filter lengths:

- ``paper``: the NSynth reference h512_bo16 (Engel et al. 2017), plus one-hot pitch conditioning.
- ``live``: the largest decoder that streams voices in real time on a 2-core laptop CPU
  (L=20, R=32, k=2 measured ~3x real time per core on the fused engine: docs/benchmarks.md).
- ``tiny``: for tests.

This module is torch-free: the host reads configs from ``model.json`` with it.
"""

from __future__ import annotations

from dataclasses import MISSING, asdict, dataclass, fields
from typing import Any

N_CLASSES = 256
"""Softmax classes of the decoder (8-bit mu-law)."""

N_PITCHES = 128
"""Width of the one-hot MIDI pitch appended to the embedding when pitch conditioning is on."""


@dataclass(frozen=True)
class ModelConfig:
    """Every shape of the WaveNet autoencoder.

    Layer ``i`` of the encoder and of the decoder has dilation ``2 ** (i % dilation_cycle)``.

    Attributes:
        name: config name (recorded in checkpoints and exports).
        encoder_layers: residual layers of the non-causal encoder.
        encoder_width: channels of the encoder's residual stream.
        encoder_kernel: filter length of the encoder's start and dilated convs.
        bottleneck: embedding channels (16 in the paper).
        hop: samples per embedding frame (average-pool size; 512 in the paper).
        decoder_layers: residual layers L of the causal decoder.
        residual: decoder residual width R (each dilated conv outputs 2R: gate and filter).
        skip: decoder skip width S (also the width of the output stack).
        decoder_kernel: filter length k of the decoder's start and dilated convs.
        pitch_conditioning: append a one-hot MIDI pitch (128) to the embedding before every
            conditioning projection (paper, Fig. 1).
        dilation_cycle: dilations restart at 1 every this many layers (10 in the paper).
        excitation_harmonics: H > 0 also conditions every layer, per sample, on the sine and
            cosine of the pitch's first H harmonics (:mod:`nsynth_live.excitation`); 0 in the
            paper. Needs pitch conditioning (the f0 comes from the pitch).
        source_harmonics: K > 0 replaces that fixed sine with a learned harmonic source: a small
            frame-rate network (:class:`nsynth_live.decoder.SourceNet`) turns the embedding and
            pitch into the amplitudes of harmonics 1..K (DDSP's harmonic synthesiser, trained with
            a multi-resolution spectral loss), and every layer is conditioned, per sample, on the
            sum of those harmonics and its quadrature (2 channels). The timbre then lives in the
            source the decoder shapes, and a gain on it ("pitch lock") no longer flattens every
            preset into the same sine. Needs pitch conditioning; excludes excitation_harmonics.
        source_hidden: width of the source network's two hidden layers.
        source_residual: LPCNet's residual form for a learned source: the decoder models what
            the source misses, ``r = x - s`` with ``s`` the source at the audio's own level (its
            input is the mu-law past of ``r``, its softmax target ``r``'s class), and a note is
            ``s + r`` (:mod:`nsynth_live.residual`). The source is then the floor of the sound, not
            a hint the decoder may ignore (measured: a decoder hearing a source that alone names 51%
            of notes named 14-18%). Needs ``source_harmonics``.
    """

    name: str
    encoder_layers: int
    encoder_width: int
    encoder_kernel: int
    bottleneck: int
    hop: int
    decoder_layers: int
    residual: int
    skip: int
    decoder_kernel: int
    pitch_conditioning: bool
    dilation_cycle: int = 10
    excitation_harmonics: int = 0
    source_harmonics: int = 0
    source_hidden: int = 128
    source_residual: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ValueError(f"config name must be a non-empty string, got {self.name!r}")
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "name":
                continue
            if f.name in ("excitation_harmonics", "source_harmonics"):
                if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                    raise ValueError(f"config {self.name!r}: {f.name} must be an integer >= 0, got {value!r}")
                continue
            if f.name in ("pitch_conditioning", "source_residual"):
                if not isinstance(value, bool):
                    raise ValueError(f"config {self.name!r}: {f.name} must be true or false, got {value!r}")
                continue
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"config {self.name!r}: {f.name} must be a positive integer, got {value!r}")
        if (self.excitation_harmonics or self.source_harmonics) and not self.pitch_conditioning:
            raise ValueError(f"config {self.name!r}: an excitation needs pitch conditioning (its f0 is the pitch)")
        if self.excitation_harmonics and self.source_harmonics:
            raise ValueError(f"config {self.name!r}: excitation_harmonics and source_harmonics exclude each other")
        if self.source_residual and not self.source_harmonics:
            raise ValueError(f"config {self.name!r}: source_residual needs a learned source (source_harmonics)")
        if self.decoder_kernel < 2:
            # A causal filter of length 1 would see no past sample: no taps, no receptive field.
            raise ValueError(f"config {self.name!r}: decoder_kernel must be at least 2, got {self.decoder_kernel}")

    @property
    def encoder_dilations(self) -> tuple[int, ...]:
        return tuple(2 ** (i % self.dilation_cycle) for i in range(self.encoder_layers))

    @property
    def decoder_dilations(self) -> tuple[int, ...]:
        return tuple(2 ** (i % self.dilation_cycle) for i in range(self.decoder_layers))

    @property
    def cond_channels(self) -> int:
        """Channels fed to the conditioning projections: embedding (+ one-hot pitch)."""
        return self.bottleneck + (N_PITCHES if self.pitch_conditioning else 0)

    @property
    def excitation_channels(self) -> int:
        """Per-sample excitation channels: sine and cosine of each harmonic, or the learned
        source and its quadrature (2), or 0 without."""
        return 2 if self.source_harmonics else 2 * self.excitation_harmonics

    @property
    def source_outputs(self) -> int:
        """Outputs of the source network per frame: an overall level, then K harmonic weights."""
        return 1 + self.source_harmonics if self.source_harmonics else 0

    @property
    def cond_width(self) -> int:
        """Width of one frame of conditioning: every layer's 2R bias, then out1's S."""
        return self.decoder_layers * 2 * self.residual + self.skip

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelConfig:
        """Inverse of :meth:`to_dict`; unknown or missing keys are an error naming them."""
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ValueError(f"model config: unknown keys {unknown}")
        required = {f.name for f in fields(cls) if f.default is MISSING}
        missing = sorted(required - set(data))
        if missing:
            raise ValueError(f"model config: missing keys {missing}")
        return cls(**data)


_CONFIGS: dict[str, dict[str, Any]] = {
    "paper": dict(
        encoder_layers=30, encoder_width=128, encoder_kernel=3, bottleneck=16, hop=512,
        decoder_layers=30, residual=512, skip=256, decoder_kernel=3, pitch_conditioning=True,
    ),
    "live": dict(
        encoder_layers=10, encoder_width=32, encoder_kernel=3, bottleneck=16, hop=512,
        decoder_layers=20, residual=32, skip=64, decoder_kernel=2, pitch_conditioning=True,
    ),
    # `live` plus a sinusoidal excitation (issue 9's option; the paper's one-hot pitch stays).
    "live-sine": dict(
        encoder_layers=10, encoder_width=32, encoder_kernel=3, bottleneck=16, hop=512,
        decoder_layers=20, residual=32, skip=64, decoder_kernel=2, pitch_conditioning=True,
        excitation_harmonics=4,
    ),
    # `live` with a learned harmonic source in place of the fixed sine (issue 14's candidate).
    "live-hn": dict(
        encoder_layers=10, encoder_width=32, encoder_kernel=3, bottleneck=16, hop=512,
        decoder_layers=20, residual=32, skip=64, decoder_kernel=2, pitch_conditioning=True,
        source_harmonics=48,
    ),
    # live-hn in LPCNet's residual form: the decoder samples x - s, a note is s + r (issue 14's
    # candidate after session 6's diagnosis; same weights' shapes, so --init-from live-hn carries all).
    "live-hn-res": dict(
        encoder_layers=10, encoder_width=32, encoder_kernel=3, bottleneck=16, hop=512,
        decoder_layers=20, residual=32, skip=64, decoder_kernel=2, pitch_conditioning=True,
        source_harmonics=48, source_residual=True,
    ),
    "tiny": dict(
        encoder_layers=2, encoder_width=8, encoder_kernel=3, bottleneck=16, hop=512,
        decoder_layers=4, residual=8, skip=8, decoder_kernel=2, pitch_conditioning=True,
    ),
    "tiny-hn": dict(
        encoder_layers=2, encoder_width=8, encoder_kernel=3, bottleneck=16, hop=512,
        decoder_layers=4, residual=8, skip=8, decoder_kernel=2, pitch_conditioning=True,
        source_harmonics=8, source_hidden=16,
    ),
    "tiny-hn-res": dict(
        encoder_layers=2, encoder_width=8, encoder_kernel=3, bottleneck=16, hop=512,
        decoder_layers=4, residual=8, skip=8, decoder_kernel=2, pitch_conditioning=True,
        source_harmonics=8, source_hidden=16, source_residual=True,
    ),
}

CONFIG_NAMES: tuple[str, ...] = tuple(_CONFIGS)


def get_config(name: str) -> ModelConfig:
    """The named config (one of :data:`CONFIG_NAMES`: ``paper``, ``live``, ``live-sine``, ``live-hn``,
    ``live-hn-res``, ``tiny``, ``tiny-hn``, ``tiny-hn-res``)."""
    if name not in _CONFIGS:
        raise ValueError(f"unknown model config {name!r}; expected one of {', '.join(CONFIG_NAMES)}")
    return ModelConfig(name=name, **_CONFIGS[name])


def receptive_field(cfg: ModelConfig) -> int:
    """Decoder receptive field in samples.

    The logit at sample t depends on the input samples t - receptive_field ... t - 1 and on no
    others: one for the shift right, k - 1 for the start conv, (k - 1) * d per dilated layer.
    6141 for ``paper``.
    """
    k = cfg.decoder_kernel
    return 1 + (k - 1) + sum((k - 1) * d for d in cfg.decoder_dilations)


def history_length(cfg: ModelConfig) -> int:
    """Past layer inputs one voice keeps for cached generation: sum of (k - 1) * d over layers."""
    return sum((cfg.decoder_kernel - 1) * d for d in cfg.decoder_dilations)


def encoder_param_count(cfg: ModelConfig) -> int:
    """Parameters of the encoder (weights and biases)."""
    w, k = cfg.encoder_width, cfg.encoder_kernel
    start = k * w + w
    layer = (k * w * w + w) + (w * w + w)  # dilated conv, 1x1 residual
    bottleneck = w * cfg.bottleneck + cfg.bottleneck
    return start + cfg.encoder_layers * layer + bottleneck


def decoder_param_count(cfg: ModelConfig) -> int:
    """Parameters of the decoder (weights and biases), conditioning projections included."""
    r, s, k, c = cfg.residual, cfg.skip, cfg.decoder_kernel, cfg.cond_channels
    start = k * r + r
    skip_start = r * s + s
    layer = (k * r * 2 * r + 2 * r) + (c * 2 * r + 2 * r) + (r * r + r) + (r * s + s)
    unused_residual = r * r + r  # the last layer has no 1x1 residual (its output feeds nothing)
    out = (s * s + s) + (c * s + s) + (s * N_CLASSES + N_CLASSES)  # out1, its conditioning, logits
    excitation = cfg.excitation_channels * cfg.cond_width  # one bias-free projection
    return start + skip_start + cfg.decoder_layers * layer - unused_residual + out + excitation + source_param_count(cfg)


def source_param_count(cfg: ModelConfig) -> int:
    """Parameters of the frame-rate source network (0 without a learned source)."""
    if not cfg.source_harmonics:
        return 0
    h = cfg.source_hidden
    return (cfg.cond_channels * h + h) + (h * h + h) + (h * cfg.source_outputs + cfg.source_outputs)


def param_count(cfg: ModelConfig) -> int:
    """Parameters of the whole autoencoder."""
    return encoder_param_count(cfg) + decoder_param_count(cfg)


def flops_per_sample(cfg: ModelConfig) -> int:
    """Nominal FLOPs (multiply-add = 2) of one cached decoder step for one voice.

    Counts the matrix products of the network as defined (start conv, skip start, every
    layer's k-tap conv and 1x1 residual + skip, out1, logits); elementwise work, sampling and
    the per-frame conditioning (amortised over ``hop`` samples) are left out.
    """
    r, s, k = cfg.residual, cfg.skip, cfg.decoder_kernel
    start = 2 * k * r + 2 * r * s
    layer = 2 * k * r * 2 * r + 2 * r * (r + s)
    out = 2 * s * s + 2 * s * N_CLASSES
    excitation = 2 * cfg.excitation_channels * cfg.cond_width
    return start + cfg.decoder_layers * layer - 2 * r * r + out + excitation  # last layer: no residual
