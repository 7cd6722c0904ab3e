"""The causal WaveNet decoder: a teacher-forced parallel forward and a single-step form.

Two ways to run the same weights:

- :meth:`Decoder.forward` is the reference's parallel network: convs over the whole sequence,
  used for training and as the ground truth every streamed step is checked against.
- :func:`decoder_step` computes the logits of one new sample from the gathered ring-buffer taps.
  It is a pure function of fused weight matrices (:class:`StepWeights`, built once by
  :meth:`Decoder.step_weights`), so the ONNX export (:class:`DecoderStep`) and the host's compiled
  engine read exactly the same matrices. The per-frame conditioning of every layer is computed
  once per frame by :func:`condition` (exported as :class:`Conditioner`).

Step contract (``decoder_step.onnx``), with L layers, residual width R, skip width S, filter k,
and h_i the input of layer i (the residual stream; h_0 is the start conv's output):

- ``x_hist [B, k]``: the last k input samples in network scaling, oldest first. After the
  one-sample shift right these are the start conv's taps for sample t: x[t-k], ..., x[t-1].
- ``taps [B, L, (k-1)*R]``: per layer, h_i at t-(k-1)d_i, ..., t-d_i, oldest first, concatenated.
- ``cond [B, L*2R + S]``: the current frame's row of :func:`condition`.
- returns ``logits [B, 256]`` for sample t and ``columns [B, L, R]``: h_i[t], to be written into
  the rings. Before t = 0 every ring and ``x_hist`` hold zeros, as the causal zero padding of the
  parallel forward does.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from nsynth_live.configs import N_CLASSES, N_PITCHES, ModelConfig
from nsynth_live.excitation import audible, excitation, free_phase, unit_source, upsample_frames

SOURCE_MASK = -1e30
"""The logit of a harmonic at or above Nyquist (its weight is zeroed after the softmax as well)."""


def check_pitch(pitch: torch.Tensor | None, batch: int, pitch_conditioning: bool) -> None:
    """Raise ValueError unless ``pitch`` fits the model: [B] integer MIDI notes 0..127, or None.

    Args:
        pitch: [B] integer tensor, or None.
        batch: B.
        pitch_conditioning: whether the model takes a pitch.
    """
    if not pitch_conditioning:
        if pitch is not None:
            raise ValueError("this model has no pitch conditioning: pass pitch=None")
        return
    if pitch is None:
        raise ValueError(f"this model is pitch-conditioned: pass pitch as [B] MIDI notes 0..{N_PITCHES - 1}")
    if pitch.dtype.is_floating_point or pitch.dtype.is_complex or pitch.dtype == torch.bool:
        raise ValueError(f"pitch must be an integer tensor of MIDI notes, got dtype {pitch.dtype}")
    if tuple(pitch.shape) != (batch,):
        raise ValueError(f"pitch must have shape [{batch}] (one per batch item), got {tuple(pitch.shape)}")
    bad = (pitch < 0) | (pitch >= N_PITCHES)
    # A data-dependent check would break torch.compile's graph; compiled training has
    # already validated its dataset's pitches.
    if not torch.compiler.is_compiling() and bool(bad.any()):
        raise ValueError(f"pitch must be MIDI notes 0..{N_PITCHES - 1}, got {int(pitch[bad][0])}")


def conditioning_input(embedding: torch.Tensor, pitch: torch.Tensor | None, pitch_conditioning: bool) -> torch.Tensor:
    """Embedding frames with the one-hot pitch appended, as every conditioning projection sees them.

    Args:
        embedding: [B, bottleneck, F].
        pitch: [B] MIDI notes, or None for a model without pitch conditioning.
        pitch_conditioning: whether the model takes a pitch.

    Returns:
        [B, bottleneck (+ 128), F].
    """
    check_pitch(pitch, embedding.shape[0], pitch_conditioning)
    if pitch is None:
        return embedding
    one_hot = F.one_hot(pitch.long(), N_PITCHES).to(embedding.dtype)
    return torch.cat([embedding, one_hot.unsqueeze(-1).expand(-1, -1, embedding.shape[-1])], 1)


def add_held(y: torch.Tensor, frames: torch.Tensor, frame: torch.Tensor | None, hop: int) -> torch.Tensor:
    """``y`` plus per-frame values held for ``hop`` samples each (nearest-neighbour upsampling).

    Args:
        y: [B, C, T].
        frames: [B, C, F] values per frame.
        frame: [T] frame index of each sample, or None when sample j uses frame j // hop and
            T is a multiple of hop: then the add broadcasts over a [B, C, T // hop, hop] view
            (no [B, C, T] copy forward, a cheap sum backward).
    """
    if frame is not None:
        return y + frames.index_select(-1, frame)
    b, c, n = y.shape
    f = n // hop
    return (y.reshape(b, c, f, hop) + frames[:, :, :f, None]).reshape(b, c, n)


class DecoderLayer(nn.Module):
    """One gated residual layer: causal dilated conv + conditioning -> gate -> residual and skip.

    Args:
        residual: residual width R (the dilated conv outputs 2R: sigmoid half, then tanh half).
        skip: skip width S.
        kernel: filter length k.
        dilation: dilation d.
        cond_channels: conditioning input channels (embedding + one-hot pitch).
        last: the last layer has no 1x1 residual: its output would feed nothing. (The reference
            builds one anyway; left in, it gets no gradient, which DistributedDataParallel
            rejects.)
    """

    def __init__(self, residual: int, skip: int, kernel: int, dilation: int, cond_channels: int, last: bool = False):
        super().__init__()
        self.pad = (kernel - 1) * dilation  # left only: causal
        self.dilated = nn.Conv1d(residual, 2 * residual, kernel, dilation=dilation)
        self.cond = nn.Conv1d(cond_channels, 2 * residual, 1)
        self.res = None if last else nn.Conv1d(residual, residual, 1)
        self.skip = nn.Conv1d(residual, skip, 1)

    def forward(
        self, h: torch.Tensor, skip: torch.Tensor, cond: torch.Tensor, frame: torch.Tensor | None, hop: int,
        extra: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Args: h [B, R, T], skip [B, S, T], cond [B, 2R, F] this layer's projected conditioning
        per frame, frame [T] the frame of each sample (None: sample j uses frame j // hop),
        extra [B, 2R, T] per-sample conditioning (the projected excitation) or None.

        Returns:
            (h + residual [B, R, T] (h itself for the last layer), skip + this layer's skip [B, S, T]).
        """
        # The dilated conv as one 1x1 conv over the k shifted copies of h stacked on channels:
        # the same sum as Conv1d(dilation=d), about twice as fast on CPUs for small widths.
        k = self.dilated.kernel_size[0]
        d = self.dilated.dilation[0]
        n = h.shape[-1]
        padded = F.pad(h, (self.pad, 0))
        taps = torch.cat([padded[:, :, j * d : j * d + n] for j in range(k)], 1)  # oldest first
        w = self.dilated.weight.permute(0, 2, 1).reshape(self.dilated.out_channels, -1, 1)
        pre = F.conv1d(taps, w, self.dilated.bias)
        if extra is not None:
            pre = pre + extra
        gate, filt = add_held(pre, cond, frame, hop).chunk(2, 1)
        z = torch.sigmoid(gate) * torch.tanh(filt)
        return (h if self.res is None else h + self.res(z)), skip + self.skip(z)


@dataclass(frozen=True)
class LayerWeights:
    """One layer's fused step weights (matrices are [in, out]).

    Attributes:
        gate_w: [k*R, 2R]: the dilated conv; rows are the taps oldest first then h_i[t] (R rows
            each), columns the sigmoid half then the tanh half. Its bias is in the conditioning.
        out_w: [R, R + S]: the 1x1 residual and 1x1 skip side by side; [R, S] (skip only) for
            the last layer, which has no residual.
        out_b: [R + S], or [S] for the last layer.
    """

    gate_w: torch.Tensor
    out_w: torch.Tensor
    out_b: torch.Tensor


@dataclass(frozen=True)
class StepWeights:
    """The decoder's weights fused for single-step generation (matrices are [in, out]).

    Every layer has its own tensors, so an exported graph holds one initializer per matrix and
    never slices a stacked one at run time. The dilated convs' biases and out1's bias live in the
    conditioning (:class:`CondWeights`), which is added anyway.

    Attributes:
        start_w: [k, R + S]: the start conv's taps (oldest first) composed with the 1x1 skip
            start, so one product gives h_0[t] and the first skip term.
        start_b: [R + S].
        layers: L :class:`LayerWeights`.
        out1_w: [S, S].
        logits_w: [S, 256].
        logits_b: [256].
        exc_w: [E, L*2R + S]: the excitation's projection onto every layer's conditioning and
            out1's (configs with an excitation or a learned source), else None.
    """

    start_w: torch.Tensor
    start_b: torch.Tensor
    layers: tuple[LayerWeights, ...]
    out1_w: torch.Tensor
    logits_w: torch.Tensor
    logits_b: torch.Tensor
    exc_w: torch.Tensor | None = None

    def arrays(self) -> dict[str, np.ndarray]:
        """float32 numpy copies named as ``decoder_step.onnx``'s initializers (``layers.3.gate_w``,
        ``exc_w`` where there is one): what the fused engine takes, without an export."""
        w = {"start_w": self.start_w, "start_b": self.start_b, "out1_w": self.out1_w,
             "logits_w": self.logits_w, "logits_b": self.logits_b}
        for i, layer in enumerate(self.layers):
            w[f"layers.{i}.gate_w"], w[f"layers.{i}.out_w"], w[f"layers.{i}.out_b"] = layer.gate_w, layer.out_w, layer.out_b
        if self.exc_w is not None:
            w["exc_w"] = self.exc_w
        return {k: v.detach().float().cpu().numpy().copy() for k, v in w.items()}


@dataclass(frozen=True)
class CondWeights:
    """Every conditioning projection stacked into one matrix (rows: layer 0's 2R, ..., out1's S).

    Attributes:
        embed_w: [bottleneck, L*2R + S].
        pitch_w: [128, L*2R + S] (the one-hot pitch's rows), or None without pitch conditioning.
        bias: [L*2R + S]: projection biases plus the dilated convs' and out1's biases.
    """

    embed_w: torch.Tensor
    pitch_w: torch.Tensor | None
    bias: torch.Tensor


def decoder_step(
    w: StepWeights, x_hist: torch.Tensor, taps: torch.Tensor, cond: torch.Tensor,
    exc: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Logits of one new sample from cached state (the module docstring has the contract).

    Args:
        w: fused weights from :meth:`Decoder.step_weights`.
        x_hist: [B, k] last k input samples (network scaling), oldest first.
        taps: [B, L, (k-1)*R] past layer inputs, oldest first per layer.
        cond: [B, L*2R + S] this frame's conditioning.
        exc: [B, 2H] this sample's excitation (configs with ``excitation_harmonics`` only).

    Returns:
        (logits [B, 256], columns [B, L, R]: each layer's input at this sample).
    """
    if w.exc_w is not None:
        if exc is None:
            raise ValueError("this model takes an excitation per sample")
        cond = torch.addmm(cond, exc, w.exc_w)
    n_layers, s = len(w.layers), w.out1_w.shape[0]
    r = w.start_w.shape[1] - s
    h, skip = torch.addmm(w.start_b, x_hist, w.start_w).split([r, s], 1)
    columns = []
    for i, layer in enumerate(w.layers):
        columns.append(h)
        # All k taps in one product: [h_i[t-(k-1)d], ..., h_i[t-d], h_i[t]] @ gate_w.
        d = torch.addmm(cond[:, 2 * r * i : 2 * r * (i + 1)], torch.cat([taps[:, i], h], 1), layer.gate_w)
        gate, filt = d.chunk(2, 1)
        z = torch.sigmoid(gate) * torch.tanh(filt)
        out = torch.addmm(layer.out_b, z, layer.out_w)
        if i + 1 < n_layers:
            res, out = out.split([r, s], 1)
            h = h + res
        skip = skip + out
    out = F.relu(torch.addmm(cond[:, 2 * r * n_layers :], F.relu(skip), w.out1_w))
    return torch.addmm(w.logits_b, out, w.logits_w), torch.stack(columns, 1)


def condition(w: CondWeights, embedding: torch.Tensor, pitch: torch.Tensor | None) -> torch.Tensor:
    """Every layer's conditioning for every frame (no value checks: see :meth:`Decoder.condition`).

    Args:
        w: stacked projections from :meth:`Decoder.cond_weights`.
        embedding: [B, bottleneck, F].
        pitch: [B] MIDI notes, or None without pitch conditioning.

    Returns:
        [B, F, L*2R + S]: per frame, layer 0's 2R (sigmoid half, tanh half), ..., then out1's S.
    """
    out = torch.matmul(embedding.transpose(1, 2), w.embed_w) + w.bias
    if w.pitch_w is not None:
        # A one-hot row times the pitch rows is just the pitch's row.
        out = out + w.pitch_w[pitch].unsqueeze(1)
    return out


class SourceNet(nn.Module):
    """The learned harmonic source's controls: per frame, the amplitude of harmonics 1..K.

    A frame-rate MLP (three 1x1 convs) over the conditioning input (embedding + one-hot pitch),
    with DDSP's parametrisation: an overall amplitude through a scaled sigmoid, times a softmax
    distribution over the harmonics below Nyquist (those at or above get exactly 0).

    Args:
        cfg: a config with ``source_harmonics`` K > 0.
    """

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        h = cfg.source_hidden
        self.net = nn.Sequential(
            nn.Conv1d(cfg.cond_channels, h, 1), nn.ReLU(), nn.Conv1d(h, h, 1), nn.ReLU(),
            nn.Conv1d(h, cfg.source_outputs, 1),
        )

    def forward(self, c: torch.Tensor, pitch: torch.Tensor, sample_rate: int = 16000) -> torch.Tensor:
        """[B, cond_channels, F] conditioning input, [B] pitch -> amplitudes [B, K, F] (float32, or
        float64 for float64 weights)."""
        out = self.net(c.to(self.net[0].weight.dtype))
        out = out.to(torch.promote_types(out.dtype, torch.float32))  # bf16 autocast: level and softmax in fp32
        # DDSP's exp_sigmoid: 2 * sigmoid(x) ** ln(10) + 1e-7, a level from ~0 to 2 with a
        # gradient that does not vanish at either end as quickly as a plain sigmoid's.
        level = 2.0 * torch.sigmoid(out[:, :1]) ** math.log(10.0) + 1e-7
        live = audible(pitch.to(c.device), self.cfg.source_harmonics, sample_rate)[:, :, None]  # [B, K, 1]
        # A finite mask and a zeroing product rather than -inf: a pitch with no harmonic below
        # Nyquist (MIDI >= 120) gets a silent source, not the NaN of a softmax over nothing.
        logits = out[:, 1:].masked_fill(~live, SOURCE_MASK)
        return level * torch.softmax(logits, 1) * live.to(out.dtype)


class Decoder(nn.Module):
    """Causal WaveNet conditioned on embedding frames (+ pitch), 256-way output per sample.

    Args:
        cfg: model config.
    """

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        r, s, k = cfg.residual, cfg.skip, cfg.decoder_kernel
        self.start = nn.Conv1d(1, r, k)
        self.skip_start = nn.Conv1d(r, s, 1)
        n = cfg.decoder_layers
        self.layers = nn.ModuleList(
            DecoderLayer(r, s, k, d, cfg.cond_channels, last=i == n - 1) for i, d in enumerate(cfg.decoder_dilations)
        )
        self.out1 = nn.Conv1d(s, s, 1)
        self.cond_out1 = nn.Conv1d(cfg.cond_channels, s, 1)
        self.logits = nn.Conv1d(s, N_CLASSES, 1)
        # Optional per-sample excitation (not in the paper): one projection to every layer's 2R
        # and out1's S, stacked like the conditioning rows.
        e = cfg.excitation_channels
        self.excitation = nn.Conv1d(e, cfg.cond_width, 1, bias=False) if e else None
        # Configs with a learned source: its frame-rate controls (the excitation is then their
        # harmonic synthesis, :meth:`source`).
        self.source_net = SourceNet(cfg) if cfg.source_harmonics else None

    def source(self, embedding: torch.Tensor, pitch: torch.Tensor, n: int, offset: int = 0,
               phase: torch.Tensor | None = None, raw: bool = False,
               frames: torch.Tensor | None = None) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """The learned harmonic source of configs with ``source_harmonics`` (the excitation).

        The decoder hears it at unit level: the harmonic sum divided, sample by sample, by the
        norm of its amplitudes, so its RMS is a unit sine's whatever the note's loudness (the
        loudness is the embedding's to carry) and a source of the fundamental alone *is*
        ``live-sine``'s first harmonic, from which a run may start (``--init-from``). Timbre is
        the shape of the spectrum, which the normalisation keeps. The spectral loss needs the
        source at the audio's own level: ``raw`` returns that too.

        Args:
            embedding: [B, bottleneck, F]; pitch: [B] MIDI notes.
            n: samples, from sample ``offset`` of the note.
            phase: [B, n] fundamental phase (training: :func:`~nsynth_live.excitation.locked_phase`);
                None: the free-running ``2 pi f0 t`` from the note's start.
            raw: also return the un-normalised harmonic sum and quadrature.
            frames: [B, K, F] the source network's amplitudes when already computed.

        Returns:
            [B, 2, n] (float32, float64 for float64 weights): the normalised harmonic sum and its
            quadrature (and, with ``raw``, the same at the amplitudes' own level).
        """
        if frames is None:
            frames = self.source_net(conditioning_input(embedding, pitch, True), pitch)
        amps = upsample_frames(frames, n, self.cfg.hop, offset)  # [B, K, n]
        if phase is None:
            phase = free_phase(pitch, n, offset)
        unit, sums = unit_source(amps, phase)
        return (unit, sums) if raw else unit

    def forward(
        self,
        x: torch.Tensor,
        embedding: torch.Tensor,
        pitch: torch.Tensor | None = None,
        offset: int = 0,
        exc: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Teacher-forced logits: the logit at t predicts x[t] from x[t - receptive_field : t].

        Args:
            x: [B, T] input in network scaling (not yet shifted: the shift happens here).
            embedding: [B, bottleneck, F] frames; sample j of ``x`` uses frame
                ``(offset + j) // hop``, so F * hop >= offset + T.
            pitch: [B] MIDI notes, or None for a model without pitch conditioning.
            offset: absolute position of ``x[:, 0]`` (for windows cut from a longer sequence;
                the causal padding still starts at ``x[:, 0]``).
            exc: optional [B, E, T] excitation replacing the free-running one computed from
                ``pitch`` (training with :func:`nsynth_live.excitation.locked_excitation`, or a
                learned source from :meth:`source` with a locked phase).

        Returns:
            logits [B, 256, T].
        """
        if x.dim() != 2:
            raise ValueError(f"decoder input must be [B, T], got shape {tuple(x.shape)}")
        self._check_embedding(embedding)
        n = x.shape[-1]
        c = conditioning_input(embedding, pitch, self.cfg.pitch_conditioning)
        if offset < 0 or embedding.shape[-1] * self.cfg.hop < offset + n:
            raise ValueError(
                f"{embedding.shape[-1]} embedding frames of {self.cfg.hop} samples do not cover "
                f"samples {offset}..{offset + n - 1}"
            )
        # Nearest-neighbour upsampling: each frame is held for `hop` samples. The frames are
        # projected first and added with broadcasting (add_held), never materialised per sample.
        hop = self.cfg.hop
        frame = None
        if offset or n % hop:
            frame = torch.div(torch.arange(offset, offset + n, device=x.device), hop, rounding_mode="floor")

        shifted = F.pad(x, (1, 0))[:, :-1].unsqueeze(1)  # the logit at t must not see x[t]
        h = self.start(F.pad(shifted, (self.cfg.decoder_kernel - 1, 0)))
        skip = self.skip_start(h)
        if self.excitation is None:
            exc = None
        elif exc is None and self.source_net is not None:
            exc = self.source(embedding, pitch, n, offset).to(h.dtype)
        elif exc is None:
            exc = excitation(pitch, n, self.cfg.excitation_harmonics, start=offset).to(h.dtype)
        else:
            exc = exc.to(h.dtype)
        w_exc = None if exc is None else self.excitation.weight
        two_r = 2 * self.cfg.residual
        for i, layer in enumerate(self.layers):
            # Each layer projects the excitation itself: a stacked [B, L*2R+S, T] would be huge.
            extra = None if exc is None else F.conv1d(exc, w_exc[i * two_r : (i + 1) * two_r])
            h, skip = layer(h, skip, layer.cond(c), frame, hop, extra)
        out = self.out1(F.relu(skip))
        if exc is not None:
            out = out + F.conv1d(exc, w_exc[len(self.layers) * two_r :])
        out = F.relu(add_held(out, self.cond_out1(c), frame, hop))
        return self.logits(out)

    def _check_embedding(self, embedding: torch.Tensor) -> None:
        if embedding.dim() != 3 or embedding.shape[1] != self.cfg.bottleneck:
            raise ValueError(
                f"embedding must be [B, {self.cfg.bottleneck}, frames], got shape {tuple(embedding.shape)}"
            )

    @torch.no_grad()
    def step_weights(self) -> StepWeights:
        """The fused matrices of :func:`decoder_step`, from the current parameters (detached)."""

        def mat(conv: nn.Conv1d) -> torch.Tensor:  # 1x1 conv weight [out, in, 1] -> [in, out]
            return conv.weight[:, :, 0].t()

        def layer_weights(layer: DecoderLayer) -> LayerWeights:
            outs = [layer.skip] if layer.res is None else [layer.res, layer.skip]
            return LayerWeights(
                # [2R, R, k] -> [k, R, 2R] -> [k*R, 2R]: row j*R + c is tap j, channel c.
                gate_w=layer.dilated.weight.permute(2, 1, 0).reshape(-1, layer.dilated.out_channels).contiguous(),
                out_w=torch.cat([mat(c) for c in outs], 1).contiguous(),
                out_b=torch.cat([c.bias for c in outs]),
            )

        start_w = self.start.weight[:, 0, :].t()  # [k, R], tap 0 is the oldest sample
        skip_w = mat(self.skip_start)
        return StepWeights(
            start_w=torch.cat([start_w, start_w @ skip_w], 1).contiguous(),
            start_b=torch.cat([self.start.bias, self.start.bias @ skip_w + self.skip_start.bias]),
            layers=tuple(layer_weights(l) for l in self.layers),
            out1_w=mat(self.out1).contiguous(),
            logits_w=mat(self.logits).contiguous(),
            logits_b=self.logits.bias.clone(),
            exc_w=None if self.excitation is None else mat(self.excitation).contiguous(),
        )

    @torch.no_grad()
    def cond_weights(self) -> CondWeights:
        """The stacked conditioning projections of :func:`condition` (detached)."""
        w = torch.cat([l.cond.weight[:, :, 0] for l in self.layers] + [self.cond_out1.weight[:, :, 0]]).t()
        bias = torch.cat(
            [l.cond.bias + l.dilated.bias for l in self.layers] + [self.cond_out1.bias + self.out1.bias]
        )
        b = self.cfg.bottleneck
        return CondWeights(
            embed_w=w[:b].contiguous(),
            pitch_w=w[b:].contiguous() if self.cfg.pitch_conditioning else None,
            bias=bias,
        )

    @torch.no_grad()
    def condition(self, embedding: torch.Tensor, pitch: torch.Tensor | None = None) -> torch.Tensor:
        """Validated :func:`condition`: [B, bottleneck, F] (+ pitch [B]) -> [B, F, L*2R + S]."""
        self._check_embedding(embedding)
        check_pitch(pitch, embedding.shape[0], self.cfg.pitch_conditioning)
        return condition(self.cond_weights(), embedding, pitch)


def _buffers(module: nn.Module, weights: object) -> None:
    """Register a weights dataclass's tensors as buffers (so .to(), state_dict and export see them)."""
    for f in fields(weights):
        value = getattr(weights, f.name)
        if f.name == "layers":
            module.layers = nn.ModuleList()
            for layer in value:
                module.layers.append(nn.Module())
                _buffers(module.layers[-1], layer)
        else:
            module.register_buffer(f.name, value)


class DecoderStep(nn.Module):
    """:func:`decoder_step` as a module over a snapshot of a decoder's fused weights (for export).

    Buffers are named like the :class:`StepWeights` fields (``layers.3.gate_w``, ...).

    Args:
        decoder: the decoder whose current weights are fused (later training does not reach here).
    """

    def __init__(self, decoder: Decoder):
        super().__init__()
        _buffers(self, decoder.step_weights())

    def weights(self) -> StepWeights:
        layers = tuple(LayerWeights(l.gate_w, l.out_w, l.out_b) for l in self.layers)
        return StepWeights(self.start_w, self.start_b, layers, self.out1_w, self.logits_w, self.logits_b, self.exc_w)

    def forward(
        self, x_hist: torch.Tensor, taps: torch.Tensor, cond: torch.Tensor, exc: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """[B, k], [B, L, (k-1)R], [B, L*2R+S] (+ [B, 2H]) -> (logits [B, 256], columns [B, L, R])."""
        return decoder_step(self.weights(), x_hist, taps, cond, exc)


class Conditioner(nn.Module):
    """:func:`condition` as a module over a snapshot of a decoder's projections (for export).

    Pitch values are not checked here (data-dependent checks do not export): callers validate.

    Args:
        decoder: the decoder whose current conditioning weights are stacked.
    """

    def __init__(self, decoder: Decoder):
        super().__init__()
        _buffers(self, decoder.cond_weights())

    def forward(self, embedding: torch.Tensor, pitch: torch.Tensor | None = None) -> torch.Tensor:
        """[B, bottleneck, F] (+ pitch [B]) -> [B, F, L*2R + S]."""
        return condition(CondWeights(self.embed_w, self.pitch_w, self.bias), embedding, pitch)
