"""Training loop for the WaveNet autoencoder: laptop CPU to multi-node torchrun.

One process per device (``distributed.init``). Every step draws a global batch of
``batch_size * world`` random crops; rank r trains on its slice, DDP averages the gradients, and
rank 0 alone writes metrics and checkpoints. Everything that decides a step — the epoch's
permutation, each crop's offset, the optimizer, the EMA, the learning-rate schedule — is either
saved in the checkpoint or a pure function of (seed, epoch, index), so ``--resume`` continues the
very run that was interrupted.
"""

from __future__ import annotations

import json
import math
import signal
import sys
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Iterator, Mapping

import numpy as np
import torch
import torch.nn.functional as F

from nsynth_live import checkpoint as ckpt_io
from nsynth_live import distributed, mulaw
from nsynth_live.configs import ModelConfig, get_config
from nsynth_live.ema import EMA
from nsynth_live.atomic import atomic_write_text
from nsynth_live.errors import UserError
from nsynth_live.losses import harmonic_loss, multires_stft_loss
from nsynth_live.schedule import lr_at, paper_schedule

LN2 = math.log(2.0)


@dataclass
class TrainSettings:
    """Everything a run needs besides the model config; saved in each checkpoint."""

    config: str = "live"
    data: str = ""
    out: str = ""
    steps: int = 200_000
    batch_size: int = 8
    crop: int = 6144
    lr: float = 2e-4
    schedule_steps: int | None = None  # the length the paper schedule is stretched to (default: steps)
    clip: float = 1.0
    ema_decay: float = 0.9999
    seed: int = 0
    precision: str = "auto"  # auto (bf16 where native, fp16 on old GPUs, else fp32) | fp32 | bf16 | fp16
    compile: bool = False
    checkpoint_every: int = 500
    valid_every: int = 500
    valid_notes: int = 64
    log_every: int = 10
    workers: int = 0
    threads: int | None = None
    device: str = "auto"
    families: list[str] | None = None
    sources: list[str] | None = None
    pitches: list[int] | None = None  # [lo, hi] inclusive
    velocities: list[int] | None = None
    progress: bool = True
    # Gaussian noise on the decoder's past samples (network input in [-1, 1]), std drawn per
    # crop uniformly in [0, input_noise]. Teacher forcing feeds the decoder the true past, so it
    # learns to lean on it and ignore pitch; at generation its own samples are off by about a
    # class spread (~0.05), which a model trained on clean input has never seen. 0: off (paper).
    input_noise: float = 0.0
    # Configs with an excitation: train on locked_excitation (its phase follows the crop's own
    # fundamental, from past samples only) instead of the free-running sine, which has no fixed
    # phase relation to the waveform and was learnt to be ignored. Generation is unchanged.
    excitation_lock: bool = False
    # Configs with a learned source (``source_harmonics``): weight of its multi-resolution
    # spectral loss (nsynth_live.losses) beside the decoder's cross-entropy in nats.
    source_weight: float = 1.0
    # Configs with a learned source: the share of crops whose decoder hears the source measured
    # from the crop's own past (excitation.measured_source: every harmonic's amplitude and phase)
    # instead of the source network's. The network's source is poor early on, so a decoder
    # hearing only it learns to use its phase and ignore its spectrum (measured: a perfect source
    # through such a decoder named 12% of notes, the source alone 58%); hearing a faithful one it
    # learns to follow it, and at generation it follows the network's. In the residual form
    # (``source_residual``) those crops also model the audio less that measured source. 0: off.
    source_forcing: float = 0.0
    # Configs with a learned source: weight of the L1 distance between the log amplitudes of the
    # source network's harmonics and the ones measured in the crop (centred windows at frame
    # starts), a direct target beside the spectral loss. 0: off.
    harmonic_weight: float = 0.0
    # A new run may start from another run's weights (its EMA): every parameter of the same name
    # and shape is copied; an excitation projection from 2H sine/cosine channels to the learned
    # source's 2 takes the fundamental's sine and cosine columns. Nothing else carries over.
    init_from: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "TrainSettings":
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})


# ----------------------------------------------------------------------------- data


class _EpochKeyed(torch.utils.data.Dataset):
    """Indexes a crop dataset by (epoch, index) so random crops are a pure function of the key,
    whichever worker process loads them."""

    def __init__(self, dataset: Any):
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, key: tuple[int, int]) -> dict[str, torch.Tensor]:
        epoch, index = key
        self.dataset.set_epoch(epoch)
        return self.dataset[index]


class ResumableSampler(torch.utils.data.Sampler):
    """Yields ``(epoch, index)`` keys of this rank's share of each global batch, forever.

    The epoch's order is ``default_rng([seed, epoch]).permutation(n)``; a global batch is
    ``world * batch_size`` consecutive entries (an incomplete tail is dropped), of which rank r
    takes the r-th ``batch_size``. ``epoch`` and ``position`` (global entries consumed) are the
    whole state.
    """

    def __init__(self, n: int, batch_size: int, seed: int, rank: int = 0, world: int = 1):
        if n < batch_size * world:
            raise UserError(
                f"the training split has {n} notes, fewer than one global batch "
                f"({batch_size} x {world} ranks)"
            )
        self.n, self.batch_size, self.seed, self.rank, self.world = n, batch_size, seed, rank, world
        self.epoch = 0
        self.position = 0

    def __len__(self) -> int:  # pragma: no cover - infinite sampler; len is per epoch
        return (self.n // (self.batch_size * self.world)) * self.batch_size

    def __iter__(self) -> Iterator[tuple[int, int]]:
        glob = self.batch_size * self.world
        while True:
            order = np.random.default_rng([self.seed, self.epoch]).permutation(self.n)
            while self.position + glob <= self.n:
                start = self.position + self.rank * self.batch_size
                batch = order[start : start + self.batch_size]
                self.position += glob
                for i in batch:
                    yield (self.epoch, int(i))
            self.epoch += 1
            self.position = 0

    def state_dict(self) -> dict[str, int]:
        return {"epoch": self.epoch, "position": self.position}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.epoch, self.position = int(state["epoch"]), int(state["position"])


def _filters(s: TrainSettings) -> dict[str, Any]:
    return {
        "families": s.families,
        "sources": s.sources,
        "pitches": tuple(s.pitches) if s.pitches else None,
        "velocities": s.velocities,
    }


def _open_split(s: TrainSettings, split: str, random_crop: bool) -> Any:
    from nsynth_live.nsynth import NSynthDataset

    return NSynthDataset(
        s.data, split=split, crop=s.crop, random_crop=random_crop, seed=s.seed, **_filters(s)
    )


# ----------------------------------------------------------------------------- loss


def nll_bits(logits: torch.Tensor, audio: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy in bits per sample.

    Args:
        logits: [B, 256, T] (any float dtype; computed in fp32).
        audio: [B, T] waveform whose mu-law classes are the targets.
    """
    return F.cross_entropy(logits.float(), mulaw.encode(audio)) / LN2


# ----------------------------------------------------------------------------- trainer


# Settings a resumed run may change: they alter speed, length or bookkeeping, not the run's math.
RESUME_OVERRIDABLE = frozenset({
    "steps", "data", "out", "threads", "workers", "progress", "compile", "precision", "device",
    "checkpoint_every", "valid_every", "log_every", "valid_notes",
})
# Settings a resumed run may retune part-way although they change its math (a long run switching
# a regulariser on, or annealing its learning rate sooner once the validation NLL plateaus); every
# change is recorded in metrics.jsonl at the step it took effect.
RESUME_TUNABLE = frozenset({"input_noise", "excitation_lock", "schedule_steps", "source_weight", "source_forcing",
                            "harmonic_weight"})


def _get(settings: TrainSettings | Mapping[str, Any], key: str, default: Any) -> Any:
    return getattr(settings, key, default) if isinstance(settings, TrainSettings) else settings.get(key, default)


def _resolve_settings(settings: TrainSettings | Mapping[str, Any], resume: bool) -> TrainSettings:
    """The run's settings: as given for a new run; for ``resume``, the checkpoint's, with the
    given values of :data:`RESUME_OVERRIDABLE` applied and any other change refused."""
    given = asdict(settings) if isinstance(settings, TrainSettings) else dict(settings)
    if not given.get("out"):
        raise UserError("--out RUN is required")
    if not resume:
        if not given.get("data"):
            raise UserError("--data DIR is required")
        return TrainSettings.from_dict(given)
    saved = TrainSettings.from_dict(ckpt_io.load_checkpoint(Path(given["out"]) / "checkpoint.pt")["settings"])
    if isinstance(settings, TrainSettings):  # a full settings object: only the overridable part counts
        given = {k: v for k, v in given.items() if k in RESUME_OVERRIDABLE | RESUME_TUNABLE}
    merged = asdict(saved)
    for key, value in given.items():
        if key in RESUME_TUNABLE:
            merged[key] = value
        elif key in RESUME_OVERRIDABLE:
            if value not in (None, "") or key == "threads":
                merged[key] = value
        elif value != merged.get(key):
            raise UserError(
                f"--{key.replace('_', '-')} cannot change on --resume (the run has {merged.get(key)!r}, "
                f"got {value!r}); start a new --out instead"
            )
    return TrainSettings.from_dict(merged)


class Trainer:
    """Owns the model, optimizer, EMA, data position and run folder of one training run.

    Args:
        settings: what to train and how.
        resume: continue from ``settings.out/checkpoint.pt`` (settings other than ``steps`` come
            from the checkpoint).
    """

    def __init__(self, settings: TrainSettings | Mapping[str, Any], resume: bool = False):
        self.dist = distributed.init(_get(settings, "device", "auto"))
        settings = _resolve_settings(settings, resume)
        self.out = Path(settings.out)
        ckpt = ckpt_io.load_checkpoint(self.out / "checkpoint.pt") if resume else None
        before = TrainSettings.from_dict(ckpt["settings"]) if ckpt is not None else settings
        self._retuned = {  # RESUME_TUNABLE settings this resume changes: {name: [old, new]}
            k: [getattr(before, k), getattr(settings, k)]
            for k in sorted(RESUME_TUNABLE)
            if getattr(before, k) != getattr(settings, k)
        }
        if not resume and (self.out / "checkpoint.pt").exists():
            raise UserError(f"{self.out}: already holds a checkpoint; pass --resume or another --out")
        self.s = settings
        if settings.threads:
            torch.set_num_threads(settings.threads)
        torch.manual_seed(settings.seed)

        try:
            self.cfg: ModelConfig = get_config(settings.config) if ckpt is None else ModelConfig.from_dict(ckpt["config"])
        except ValueError as err:
            raise UserError(str(err)) from None
        _check_settings(settings, self.cfg)
        if ckpt is not None and int(ckpt["step"]) >= settings.steps:  # the step _restore resumes from
            # A --steps given on an earlier resume is saved with the run; without this a later plain
            # resume would return at once, looking like a run that trains.
            raise UserError(f"{self.out}: the run is at step {int(ckpt['step'])}, at or past its --steps "
                            f"{settings.steps}: nothing to train; resume with a larger --steps")
        from nsynth_live.autoencoder import WaveNetAutoencoder

        self.model = WaveNetAutoencoder(self.cfg).to(self.dist.device)
        self.ema = EMA(self.model, settings.ema_decay)
        self.opt = torch.optim.Adam(self.model.parameters(), lr=settings.lr)
        self.schedule = paper_schedule(settings.schedule_steps or settings.steps, settings.lr)
        self.step = 0
        self.precision = self._pick_precision(settings.precision)
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.precision == "fp16")

        self.train_set = _EpochKeyed(_open_split(settings, "train", random_crop=True))
        self.sampler = ResumableSampler(
            len(self.train_set), settings.batch_size, settings.seed, self.dist.rank, self.dist.world
        )
        self.valid_set = self._open_valid()
        self.source_loss_sum = 0.0  # spectral loss of the learned source since the last record
        if ckpt is not None:
            self._restore(ckpt)
        elif settings.init_from:
            self._init_from(settings.init_from)

        net: torch.nn.Module = self.model
        if self.dist.enabled:
            net = torch.nn.parallel.DistributedDataParallel(
                self.model, device_ids=[self.dist.device] if self.dist.device.type == "cuda" else None
            )
        self.net = torch.compile(net) if settings.compile else net
        self._stop = False

    # -- setup helpers

    def _pick_precision(self, p: str) -> str:
        if p not in ("auto", "fp32", "bf16", "fp16"):
            raise UserError(f"precision {p!r}: expected auto, fp32, bf16 or fp16")
        if p == "auto":
            if self.dist.device.type == "cuda":
                return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
            # bf16 autocast was 1.38x fp32 for `live` on an AVX-512 BF16 CPU with the same loss
            # curve (bench/results/training_live.json); CPUs without native bf16 emulate it slowly.
            return "bf16" if cpu_has_bf16() else "fp32"
        if p == "fp16" and self.dist.device.type != "cuda":
            raise UserError("precision fp16 needs a GPU; use bf16 or fp32 on the CPU")
        return p

    def _open_valid(self) -> Any | None:
        try:
            ds = _open_split(self.s, "valid", random_crop=False)
        except UserError:
            return None
        return ds if len(ds) else None

    def _init_from(self, path: str) -> None:
        """Start a new run from another run's EMA weights (see ``TrainSettings.init_from``)."""
        try:
            other = ckpt_io.load_checkpoint(Path(path))
        except (UserError, OSError, ValueError, KeyError) as err:
            raise UserError(f"--init-from {path}: {err}") from None
        shadow = other["ema"]["shadow"]
        own = self.model.state_dict()
        copied = 0
        for name, value in shadow.items():
            if name in own and own[name].shape == value.shape:
                own[name] = value.clone()
                copied += 1
        key = "decoder.excitation.weight"
        h = other["config"].get("excitation_harmonics", 0)
        if key in own and key in shadow and h and own[key].shape[1] == 2 and shadow[key].shape[1] == 2 * h:
            own[key] = shadow[key][:, [0, h]].clone()  # the fundamental's sine and cosine
            copied += 1
        self.model.load_state_dict(own)
        self.ema = EMA(self.model, self.s.ema_decay)
        print(f"initialised {copied} of {len(own)} tensors from {path}", file=sys.stderr)

    def _restore(self, ckpt: dict[str, Any]) -> None:
        self.model.load_state_dict(ckpt["model"])
        self.ema.load_state_dict(ckpt["ema"])
        self.opt.load_state_dict(ckpt["optimizer"])
        if ckpt.get("scaler"):
            self.scaler.load_state_dict(ckpt["scaler"])
        self.sampler.load_state_dict(ckpt["data"])
        self.step = int(ckpt["step"])
        torch.set_rng_state(ckpt["rng"]["torch"])

    # -- checkpoints and metrics (rank 0)

    def state(self) -> dict[str, Any]:
        return {
            "format": ckpt_io.FORMAT,
            "version": ckpt_io.VERSION,
            "config": self.cfg.to_dict(),
            "settings": asdict(self.s),
            "step": self.step,
            "model": self.model.state_dict(),
            "ema": self.ema.state_dict(),
            "optimizer": self.opt.state_dict(),
            "scaler": self.scaler.state_dict() if self.scaler.is_enabled() else {},
            "data": self.sampler.state_dict(),
            "rng": {"torch": torch.get_rng_state()},
        }

    def save(self) -> None:
        if self.dist.is_main:
            ckpt_io.atomic_save(self.state(), self.out / "checkpoint.pt")
        distributed.barrier(self.dist)

    def _log(self, record: dict[str, Any]) -> None:
        if not self.dist.is_main:
            return
        with open(self.out / "metrics.jsonl", "a") as f:
            f.write(json.dumps(record) + "\n")
        if self._tb is not None:
            for k, v in record.items():
                if k != "step" and isinstance(v, (int, float)):
                    self._tb.add_scalar(k, v, record["step"])

    def _trim_metrics(self) -> None:
        """Drop records from after the checkpoint we resume from (they will be redone)."""
        path = self.out / "metrics.jsonl"
        if not self.dist.is_main or not path.exists():
            return
        kept = [ln for ln in path.read_text().splitlines() if ln.strip() and json.loads(ln).get("step", 0) <= self.step]
        atomic_write_text(path, "".join(ln + "\n" for ln in kept))

    # -- the loop

    def _batches(self) -> Iterator[dict[str, torch.Tensor]]:
        loader = torch.utils.data.DataLoader(
            self.train_set,
            batch_size=self.s.batch_size,
            sampler=self.sampler,
            num_workers=self.s.workers,
            # The sampler advances its position as keys are drawn; with workers prefetching ahead
            # the position would run past the step being trained, so resume state is taken from
            # the step counter instead (see _sampler_state_at).
        )
        return iter(loader)

    def _autocast(self):
        if self.precision == "fp32":
            return torch.autocast(self.dist.device.type, enabled=False)
        dtype = torch.bfloat16 if self.precision == "bf16" else torch.float16
        return torch.autocast(self.dist.device.type, dtype=dtype)

    def train_step(self, batch: dict[str, torch.Tensor]) -> float:
        """One optimizer step on this rank's batch; returns the batch loss in bits/sample."""
        audio = batch["audio"].to(self.dist.device, non_blocking=True)
        pitch = batch["pitch"].to(self.dist.device, non_blocking=True) if self.cfg.pitch_conditioning else None
        for g in self.opt.param_groups:
            g["lr"] = lr_at(self.schedule, self.step)
        self.opt.zero_grad(set_to_none=True)
        noise = self._input_noise(audio.shape)
        forced = self._forced_source(audio, pitch)
        with self._autocast():
            logits, source, frames = self._forward(self.net, audio, pitch, noise, forced)
        loss = nll_bits(logits, self.model.decoder_target(audio, source, forced))
        objective = loss * LN2  # optimise nats, as the reference does
        if self.cfg.source_harmonics:
            spectral = multires_stft_loss(source[:, 0].float(), audio.float())
            self.source_loss_sum += float(spectral.detach())
            objective = objective + self.s.source_weight * spectral
            if self.s.harmonic_weight:
                objective = objective + self.s.harmonic_weight * harmonic_loss(frames.float(), audio, pitch, self.cfg)
        self.scaler.scale(objective).backward()
        self.scaler.unscale_(self.opt)
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.s.clip)
        self.scaler.step(self.opt)
        self.scaler.update()
        self.ema.update(self.model)
        self.step += 1
        return float(loss.detach())

    def _forward(self, net: torch.nn.Module, audio: torch.Tensor, pitch: torch.Tensor | None,
                 noise: torch.Tensor | None, forced: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None,
                 ) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
        """Logits [B, 256, T] of the training objective, the learned source [B, 2, T] and its
        amplitudes per frame [B, K, F] (None for configs without one), with this run's excitation
        (locked or free-running; ``forced``: crops that hear a measured source, see
        :meth:`_forced_source`)."""
        exc = self._excitation(audio, pitch)
        if self.cfg.source_harmonics:  # exc is the source's locked phase (or None: free-running)
            return net(audio, pitch, noise, None, exc, True, forced)
        return net(audio, pitch, noise, exc), None, None

    @torch.no_grad()
    def _forced_source(self, audio: torch.Tensor, pitch: torch.Tensor | None
                       ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None:
        """(mask [B] bool, measured source [B, 2, T] at unit level, the same at its own level) of the
        crops that hear the source measured from their own past this step (``source_forcing``; in
        the residual form they also subtract it), or None. The mask is a pure function of (seed,
        step, rank), as the input noise, so a resumed run forces what an uninterrupted one would."""
        if not (self.cfg.source_harmonics and self.s.source_forcing):
            return None
        from nsynth_live.excitation import measured_source

        key = np.random.SeedSequence([self.s.seed, self.step, self.dist.rank, 1]).generate_state(1)[0]
        mask = torch.rand(audio.shape[0], generator=torch.Generator().manual_seed(int(key))) < self.s.source_forcing
        if not bool(mask.any()):
            return None
        mask = mask.to(audio.device)
        if bool(mask.all()):
            return (mask, *measured_source(audio, pitch, self.cfg.source_harmonics, raw=True))
        forced = torch.zeros(audio.shape[0], 2, audio.shape[1], device=audio.device)
        level = torch.zeros_like(forced)
        forced[mask], level[mask] = measured_source(audio[mask], pitch[mask], self.cfg.source_harmonics,
                                                    raw=True)  # forced crops only
        return mask, forced, level

    def _input_noise(self, shape: torch.Size) -> torch.Tensor | None:
        """This step's decoder-input noise [B, T] (None when off): a pure function of (seed,
        step, rank), so a resumed run draws what an uninterrupted one would."""
        if not self.s.input_noise:
            return None
        key = np.random.SeedSequence([self.s.seed, self.step, self.dist.rank]).generate_state(1)[0]
        g = torch.Generator().manual_seed(int(key))
        std = self.s.input_noise * torch.rand(shape[0], 1, generator=g)
        return (std * torch.randn(tuple(shape), generator=g)).to(self.dist.device)

    @torch.no_grad()
    def _excitation(self, audio: torch.Tensor, pitch: torch.Tensor | None) -> torch.Tensor | None:
        """The locked excitation [B, 2H, T] of these crops (for a learned source: its locked
        phase [B, T]), or None (free-running, or no excitation)."""
        if not self.s.excitation_lock:
            return None
        from nsynth_live.excitation import locked_excitation, locked_phase

        if self.cfg.source_harmonics:
            return locked_phase(audio, pitch)
        if not self.cfg.excitation_harmonics:
            return None
        return locked_excitation(audio, pitch, self.cfg.excitation_harmonics)

    @torch.no_grad()
    def validate(self) -> float | None:
        """Validation NLL (bits/sample) of the EMA weights on centred crops of the valid split."""
        if self.valid_set is None:
            return None
        n = min(self.s.valid_notes, len(self.valid_set))
        # Spread the fixed subset over the split so it covers instruments and pitches.
        idx = np.linspace(0, len(self.valid_set) - 1, n).round().astype(int)
        live = {k: v.clone() for k, v in self.model.state_dict().items()}
        self.model.load_state_dict(self.ema.shadow)
        self.model.eval()
        total, count = 0.0, 0
        try:
            for chunk in np.array_split(idx, max(1, math.ceil(n / self.s.batch_size))):
                items = [self.valid_set[int(i)] for i in chunk]
                audio = torch.stack([it["audio"] for it in items]).to(self.dist.device)
                pitch = torch.stack([it["pitch"] for it in items]).to(self.dist.device)
                pitch = pitch if self.cfg.pitch_conditioning else None
                with self._autocast():  # the training objective's excitation, without input noise
                    logits, source, _ = self._forward(self.model, audio, pitch, None)
                total += float(nll_bits(logits, self.model.decoder_target(audio, source))) * len(items)
                count += len(items)
        finally:
            self.model.load_state_dict(live)
            self.model.train()
        return total / count

    def _install_signal_handlers(self) -> None:
        def handler(signum, frame):  # noqa: ARG001 - signal API
            if self._stop:  # a second Ctrl-C: stop now, the last checkpoint stays
                raise KeyboardInterrupt
            self._stop = True

        signal.signal(signal.SIGINT, handler)
        signal.signal(signal.SIGTERM, handler)

    def fit(self) -> dict[str, Any]:
        """Train until ``settings.steps``; returns the last metrics."""
        s = self.s
        if self.dist.is_main:
            self.out.mkdir(parents=True, exist_ok=True)
            atomic_write_text(self.out / "settings.json", json.dumps(asdict(s), indent=2) + "\n")
            atomic_write_text(self.out / "config.json", json.dumps(self.cfg.to_dict(), indent=2) + "\n")
        self._trim_metrics()
        self._tb = _tensorboard(self.out) if self.dist.is_main else None
        if self._retuned and self.dist.is_main:
            self._log({"step": self.step, "retuned": self._retuned})
        self._install_signal_handlers()
        bar = _progress(s, self.step, enabled=s.progress and self.dist.is_main)
        self.model.train()
        last: dict[str, Any] = {}
        window_t, window_steps, window_loss = time.perf_counter(), 0, 0.0
        # The sampler's state at the step being trained is what a checkpoint must hold; with
        # prefetching workers the live sampler runs ahead, so track it per step instead.
        data_state = self.sampler.state_dict()
        it = self._batches()
        try:
            while self.step < s.steps:
                batch = next(it)
                data_state = _advance(data_state, self.sampler)
                loss = self.train_step(batch)
                window_loss += loss
                window_steps += 1
                if bar is not None:
                    bar.update(1)
                if self.step % s.log_every == 0 or self.step == s.steps:
                    dt = time.perf_counter() - window_t
                    sps = window_steps / dt if dt > 0 else 0.0
                    last = {
                        "step": self.step,
                        "loss_bits": window_loss / window_steps,
                        "lr": lr_at(self.schedule, self.step - 1),
                        "steps_per_s": sps,
                        "samples_per_s": sps * s.batch_size * s.crop * self.dist.world,
                        "time": time.time(),
                    }
                    if self.cfg.source_harmonics:
                        last["source_loss"] = self.source_loss_sum / window_steps
                        self.source_loss_sum = 0.0
                    self._log(last)
                    if bar is not None:
                        bar.set_postfix(loss=f"{last['loss_bits']:.3f}b", sps=f"{sps:.2f}")
                    window_t, window_steps, window_loss = time.perf_counter(), 0, 0.0
                if self.step % s.valid_every == 0 or self.step == s.steps:
                    v = self.validate()
                    if v is not None:
                        self._log({"step": self.step, "valid_bits": v})
                stop = distributed.broadcast_flag(self.dist, self._stop)
                if self.step % s.checkpoint_every == 0 or self.step == s.steps or stop:
                    self._checkpoint(data_state)
                if stop:
                    break
        finally:
            if bar is not None:
                bar.close()
            if self._tb is not None:
                self._tb.close()
        return last

    def _checkpoint(self, data_state: dict[str, int]) -> None:
        live = self.sampler.state_dict()
        self.sampler.load_state_dict(data_state)
        try:
            self.save()
        finally:
            self.sampler.load_state_dict(live)
        if self.dist.enabled:
            prints = distributed.gather_fingerprints(self.dist, self.model)
            self._log({"step": self.step, "rank_fingerprints": prints, "ranks_in_sync": len(set(prints)) == 1})
        if self.dist.is_main:
            try:
                from nsynth_live.plots import plot_training_curve

                plot_training_curve(self.out / "metrics.jsonl", self.out / "curve.png")
            except ImportError:
                pass

    def close(self, finished: bool = False) -> None:
        """Leave the process group. After a normal finish every rank waits for the others first:
        a rank tearing down the group while rank 0 still writes (and hosts the store) can abort.
        After an error nobody waits (the other ranks may never arrive)."""
        if finished:
            distributed.barrier(self.dist)
        distributed.shutdown(self.dist)


def cpu_has_bf16() -> bool:
    """Whether this CPU computes bf16 natively (AVX-512 BF16 / AMX), as oneDNN sees it."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def _check_settings(s: TrainSettings, cfg: ModelConfig) -> None:
    """Reject settings that cannot train, naming the flag."""
    for name in ("steps", "batch_size", "checkpoint_every", "valid_every", "log_every", "valid_notes"):
        if getattr(s, name) < 1:
            raise UserError(f"--{name.replace('_', '-')} must be at least 1, got {getattr(s, name)}")
    if s.crop < cfg.hop or s.crop % cfg.hop:
        raise UserError(f"--crop {s.crop}: must be a positive multiple of the hop ({cfg.hop} samples)")
    if s.schedule_steps is not None and s.schedule_steps < 1:
        raise UserError(f"--schedule-steps must be at least 1, got {s.schedule_steps}")
    if not (s.lr > 0 and math.isfinite(s.lr)):
        raise UserError(f"--lr {s.lr}: must be a positive number")
    if not 0.0 <= s.ema_decay < 1.0:
        raise UserError(f"--ema-decay {s.ema_decay}: must be in [0, 1)")
    if s.clip <= 0:
        raise UserError(f"--clip {s.clip}: must be positive")
    if not (0.0 <= s.input_noise <= 1.0):
        raise UserError(f"--input-noise {s.input_noise}: must be within 0..1")
    if s.excitation_lock and not (cfg.excitation_harmonics or cfg.source_harmonics):
        raise UserError(f"--excitation-lock: config {cfg.name!r} has no excitation (try live-sine or live-hn)")
    if not (s.source_weight >= 0 and math.isfinite(s.source_weight)):
        raise UserError(f"--source-weight {s.source_weight}: must be a number >= 0")
    if not 0.0 <= s.source_forcing <= 1.0:
        raise UserError(f"--source-forcing {s.source_forcing}: must be within 0..1")
    if not (s.harmonic_weight >= 0 and math.isfinite(s.harmonic_weight)):
        raise UserError(f"--harmonic-weight {s.harmonic_weight}: must be a number >= 0")
    if cfg.source_residual and not s.excitation_lock:
        # Without the lock the learned source's phase counts from the crop's start, unrelated to
        # the note: the residual would be louder than the note itself.
        raise UserError(f"config {cfg.name!r} is in the residual form: train it with --excitation-lock")
    if (s.source_forcing or s.harmonic_weight) and not cfg.source_harmonics:
        raise UserError(f"--source-forcing/--harmonic-weight: config {cfg.name!r} has no learned source (try live-hn)")


def _advance(state: dict[str, int], sampler: ResumableSampler) -> dict[str, int]:
    """The sampler state after one more global batch, starting from ``state``."""
    glob = sampler.batch_size * sampler.world
    epoch, pos = state["epoch"], state["position"] + glob
    if pos + glob > sampler.n:  # the next batch would not fit: the next epoch starts
        epoch, pos = epoch + 1, 0
    return {"epoch": epoch, "position": pos}


def _progress(s: TrainSettings, start: int, enabled: bool):
    if not enabled:
        return None
    from tqdm import tqdm

    return tqdm(total=s.steps, initial=start, unit="step", dynamic_ncols=True, mininterval=1.0)


def _tensorboard(out: Path):
    try:
        from torch.utils.tensorboard import SummaryWriter
    except Exception:  # tensorboard not installed: JSONL only
        return None
    return SummaryWriter(str(out / "tensorboard"))


def train(settings: TrainSettings | Mapping[str, Any], resume: bool = False) -> dict[str, Any]:
    """Run (or resume) training; returns the last logged metrics."""
    trainer = Trainer(settings, resume=resume)
    finished = False
    try:
        last = trainer.fit()
        finished = True
        return last
    finally:
        trainer.close(finished)
