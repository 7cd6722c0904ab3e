"""Fit a learned-source run's source network to measured harmonic amplitudes, then hand it back.

    python training/fit_source.py --run training/live-hn --data data/multi --out RUN_COPY
        [--notes 3000] [--steps 3000] [--threads 2]

Why: in a ``live-hn`` run the source network learns only from the spectral loss (and, with
``--harmonic-weight``, a log-amplitude loss) one crop batch per step, beside a WaveNet that
dominates the step's cost, so after 4k steps its source alone was further from the notes'
harmonic profiles (15 dB) than the mean profile is (13 dB) and named 9% of notes. The network is a
per-frame MLP over (embedding, pitch): fitted on its own, from embeddings the run's encoder gives
and amplitudes measured in the notes (:func:`nsynth_live.excitation.measured_amplitudes`, centred
windows at frame starts, as ``--harmonic-weight`` measures them), it takes seconds per thousand
steps. The run's encoder and decoder are untouched; the fitted weights replace the source
network's in the run's weights and in its EMA, and training resumes from the copy.

Data: ``--notes`` notes drawn (seed 0) from the training split, MIDI 24-96, their first 2 s;
the validation split's notes (held-out instruments) give the reported validation loss.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from nsynth_live import checkpoint as ckpt_io  # noqa: E402
from nsynth_live.autoencoder import WaveNetAutoencoder  # noqa: E402
from nsynth_live.configs import ModelConfig  # noqa: E402
from nsynth_live.decoder import conditioning_input  # noqa: E402
from nsynth_live.excitation import audible, measured_amplitudes  # noqa: E402
from nsynth_live.losses import log_amplitude_l1  # noqa: E402
from nsynth_live.nsynth import load_examples, read_note  # noqa: E402

FRAMES = 62  # 62 frames of 512 samples: the first ~2 s of each note, the part bench timbre judges


def pick(split: Path, count: int, seed: int) -> list:
    notes = load_examples(split, pitches=(24, 96))
    rng = np.random.default_rng(seed)
    idx = rng.choice(len(notes), size=min(count, len(notes)), replace=False)
    return [notes[i] for i in sorted(idx)]


@torch.no_grad()
def measure(model: WaveNetAutoencoder, split: Path, notes: list, batch: int = 16) -> tuple[torch.Tensor, ...]:
    """(conditioning input [N, C, F], pitch [N], measured amplitudes [N, K, F], audible [N, K, 1])."""
    cfg = model.cfg
    n = FRAMES * cfg.hop
    conds, amps, pitches = [], [], []
    for i in range(0, len(notes), batch):
        chunk = notes[i : i + batch]
        audio = torch.from_numpy(np.stack([read_note(split, x, 0, n) for x in chunk]))
        pitch = torch.tensor([x.pitch for x in chunk])
        emb = model.encode(audio)  # [B, 16, F]
        conds.append(conditioning_input(emb, pitch, True))
        amps.append(measured_amplitudes(audio, pitch, cfg.source_harmonics, cfg.hop)[:, :, :FRAMES])
        pitches.append(pitch)
    pitch = torch.cat(pitches)
    return torch.cat(conds), pitch, torch.cat(amps), audible(pitch, cfg.source_harmonics)[:, :, None].float()


def loss_of(net: torch.nn.Module, cond: torch.Tensor, pitch: torch.Tensor, target: torch.Tensor,
            live: torch.Tensor) -> torch.Tensor:
    return log_amplitude_l1(net(cond, pitch), target, live)  # the harmonic loss's distance and floor


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--run", required=True, help="a learned-source training run")
    ap.add_argument("--data", required=True, help="its dataset root (nsynth-train, nsynth-valid)")
    ap.add_argument("--out", required=True, help="where the run is copied with the fitted source network")
    ap.add_argument("--notes", type=int, default=3000)
    ap.add_argument("--steps", type=int, default=3000)
    ap.add_argument("--batch", type=int, default=64, help="notes per step (all their frames)")
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    run, out, data = Path(args.run), Path(args.out), Path(args.data)
    if out.resolve() == run.resolve() or run.resolve().is_relative_to(out.resolve()):
        sys.exit(f"fit_source.py: --out {out} must not be the run itself or hold it (resume from the copy once it is judged)")
    if out.exists() and any(out.iterdir()) and not (out / "checkpoint.pt").is_file():
        sys.exit(f"fit_source.py: --out {out} exists and is not a run folder: refusing to replace it")
    ckpt = ckpt_io.load_checkpoint(run)
    cfg = ModelConfig.from_dict(ckpt["config"])
    if not cfg.source_harmonics:
        sys.exit(f"fit_source.py: {run} (config {cfg.name}) has no learned source")
    model = WaveNetAutoencoder(cfg)
    model.load_state_dict(ckpt["model"])
    model.eval()
    t0 = time.perf_counter()
    train = measure(model, data / "nsynth-train", pick(data / "nsynth-train", args.notes, args.seed))
    valid = measure(model, data / "nsynth-valid", pick(data / "nsynth-valid", max(args.notes // 8, 64), args.seed))
    print(f"measured {len(train[1])} training and {len(valid[1])} validation notes in {time.perf_counter() - t0:.0f} s")
    net = model.decoder.source_net
    net.train()
    opt = torch.optim.Adam(net.parameters(), lr=args.lr)
    rng = np.random.default_rng(args.seed)
    with torch.no_grad():
        first = last = float(loss_of(net, *valid))
    print(f"step 0: validation loss {first:.4f}")
    for step in range(1, args.steps + 1):
        idx = torch.from_numpy(rng.choice(len(train[1]), size=min(args.batch, len(train[1])), replace=False))
        loss = loss_of(net, *(t[idx] for t in train))
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step % 500 == 0 or step == args.steps:
            with torch.no_grad():
                last = float(loss_of(net, *valid))
            print(f"step {step}: training loss {float(loss):.4f}, validation loss {last:.4f}")
    fitted = {f"decoder.source_net.{k}": v.detach().clone() for k, v in net.state_dict().items()}
    for k, v in fitted.items():
        ckpt["model"][k] = v.clone()
        ckpt["ema"]["shadow"][k] = v.clone()
    if out.exists():
        shutil.rmtree(out)
    shutil.copytree(run, out)
    ckpt_io.atomic_save(ckpt, out / "checkpoint.pt")
    with open(out / "metrics.jsonl", "a") as f:  # the run's history says what was done to it (ship.sh reports it)
        f.write(json.dumps({"step": int(ckpt.get("step", 0)), "source_refit": {
            "by": f"training/fit_source.py --notes {args.notes} --steps {args.steps}", "encoder_step": int(ckpt.get("step", 0)),
            "valid_log_amplitude_l1": [round(first, 4), round(last, 4)]}}) + "\n")
    print(f"wrote {out} (step {ckpt.get('step')}, source network fitted for {args.steps} steps)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
