"""The trainer: overfitting, exact resume, DDP sync, crash-safe checkpoints."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from nsynth_live import checkpoint as ckpt_io
from nsynth_live.train import ResumableSampler, TrainSettings, Trainer, _advance, train

VENV_BIN = Path(sys.executable).parent


def settings(data: Path, out: Path, **kw) -> TrainSettings:
    base = dict(
        config="tiny", data=str(data), out=str(out), steps=6, batch_size=2, crop=1024, lr=1e-3,
        checkpoint_every=1000, valid_every=1000, log_every=1, progress=False, threads=1,
    )
    base.update(kw)
    return TrainSettings(**base)


def losses(run: Path) -> list[tuple[int, float]]:
    recs = [json.loads(l) for l in (run / "metrics.jsonl").read_text().splitlines()]
    return [(r["step"], r["loss_bits"]) for r in recs if "loss_bits" in r]


# ------------------------------------------------------------------ sampler


def test_sampler_covers_epoch_and_shards_ranks():
    n, bs, world = 23, 2, 3
    per_rank = []
    for rank in range(world):
        s = ResumableSampler(n, bs, seed=5, rank=rank, world=world)
        it = iter(s)
        per_rank.append([next(it) for _ in range(2 * (n // (bs * world)) * bs)])
    epoch0 = [k for keys in per_rank for k in keys if k[0] == 0]
    idx = [i for _, i in epoch0]
    assert len(idx) == len(set(idx)) == (n // (bs * world)) * bs * world  # disjoint, tail dropped
    assert {k[0] for keys in per_rank for k in keys} == {0, 1}


def test_sampler_resume_continues_the_same_stream():
    s = ResumableSampler(17, 3, seed=1)
    it = iter(s)
    straight = [next(it) for _ in range(40)]
    state = {"epoch": 0, "position": 0}
    for _ in range(4):  # 4 batches consumed
        state = _advance(state, s)
    r = ResumableSampler(17, 3, seed=1)
    r.load_state_dict(state)
    it2 = iter(r)
    assert [next(it2) for _ in range(28)] == straight[12:40]


# ------------------------------------------------------------------ training


@pytest.mark.slow
def test_tiny_overfits_a_handful_of_notes(nsynth_tiny, tmp_path):
    out = tmp_path / "run"
    # Four notes, crops repeat often: the model must memorise them.
    s = settings(nsynth_tiny, out, steps=400, schedule_steps=100_000, batch_size=4, crop=2048,
                 lr=3e-3, pitches=[60, 61], log_every=10, valid_every=400)
    train(s)
    ls = [l for _, l in losses(out)]
    assert ls[0] > 7.5  # an untrained softmax over 256 classes: ~8 bits
    assert np.mean(ls[-3:]) < 0.6 * ls[0], ls
    recs = [json.loads(l) for l in (out / "metrics.jsonl").read_text().splitlines()]
    assert any("valid_bits" in r for r in recs)
    assert (out / "curve.png").stat().st_size > 1000


@pytest.mark.parametrize("extra", [{}, {"input_noise": 0.2}, {"config": "live-sine", "excitation_lock": True}],
                         ids=["plain", "input-noise", "locked-excitation"])
def test_resume_equals_straight_run(nsynth_tiny, tmp_path, extra):
    n = 4
    straight = tmp_path / "straight"
    train(settings(nsynth_tiny, straight, steps=2 * n, schedule_steps=2 * n, **extra))
    split = tmp_path / "split"
    train(settings(nsynth_tiny, split, steps=n, schedule_steps=2 * n, **extra))
    mid = ckpt_io.load_checkpoint(split)
    assert mid["step"] == n
    train(settings(nsynth_tiny, split, steps=2 * n, **extra), resume=True)

    a, b = ckpt_io.load_checkpoint(straight), ckpt_io.load_checkpoint(split)
    assert a["step"] == b["step"] == 2 * n
    for k in a["model"]:
        torch.testing.assert_close(a["model"][k], b["model"][k], rtol=1e-6, atol=1e-7)
        torch.testing.assert_close(a["ema"]["shadow"][k], b["ema"]["shadow"][k], rtol=1e-6, atol=1e-7)
    assert a["data"] == b["data"]
    la, lb = losses(straight), losses(split)
    assert [s for s, _ in la] == [s for s, _ in lb] == list(range(1, 2 * n + 1))
    np.testing.assert_allclose([l for _, l in la], [l for _, l in lb], rtol=1e-6)
    # The optimizer really was restored: a fresh Adam would take different steps.
    sa, sb = a["optimizer"]["state"], b["optimizer"]["state"]
    for k in sa:
        torch.testing.assert_close(sa[k]["exp_avg_sq"], sb[k]["exp_avg_sq"], rtol=1e-6, atol=1e-12)


def test_refuses_to_overwrite_a_run(nsynth_tiny, tmp_path):
    from nsynth_live.errors import UserError

    out = tmp_path / "run"
    train(settings(nsynth_tiny, out, steps=1))
    with pytest.raises(UserError, match="already holds a checkpoint"):
        Trainer(settings(nsynth_tiny, out, steps=2))


@pytest.mark.slow
def test_two_ranks_under_torchrun_stay_in_sync(nsynth_tiny, tmp_path):
    import socket

    out = tmp_path / "ddp"
    with socket.socket() as sock:  # a free port for the rendezvous
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    cmd = [
        str(VENV_BIN / "torchrun"), "--nproc_per_node", "2", "--master_port", str(port), "--no-python",
        str(VENV_BIN / "nsynth-live"), "train", "--config", "tiny", "--data", str(nsynth_tiny),
        "--out", str(out), "--steps", "6", "--batch-size", "2", "--crop", "1024", "--lr", "1e-3",
        "--checkpoint-every", "3", "--log-every", "1", "--threads", "1", "--no-progress",
    ]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-12000:]
    recs = [json.loads(l) for l in (out / "metrics.jsonl").read_text().splitlines()]
    checks = [r for r in recs if "rank_fingerprints" in r]
    assert [r["step"] for r in checks] == [3, 6]
    for r in checks:
        assert len(r["rank_fingerprints"]) == 2 and r["ranks_in_sync"], r
    # Rank 0 alone wrote: one record per logged step, not two.
    assert [r["step"] for r in recs if "loss_bits" in r] == [1, 2, 3, 4, 5, 6]
    # Parameters moved (the fingerprint after 6 steps differs from after 3).
    assert checks[0]["rank_fingerprints"][0] != checks[1]["rank_fingerprints"][0]


# ------------------------------------------------------------------ crash safety

_SLOW_SAVE = """
import sys, torch
from nsynth_live.checkpoint import atomic_save
big = {"format": "nsynth-live-checkpoint", "version": 1, "step": 2,
       "w": torch.ones(int(sys.argv[2]), dtype=torch.float32)}
print("writing", flush=True)
atomic_save(big, sys.argv[1])
"""


def test_sigkill_while_writing_leaves_previous_checkpoint(tmp_path):
    path = tmp_path / "checkpoint.pt"
    ckpt_io.atomic_save({"format": ckpt_io.FORMAT, "version": ckpt_io.VERSION, "step": 1}, path)
    # A 1.6 GB tensor takes long enough to write that SIGKILL lands mid-write.
    proc = subprocess.Popen([sys.executable, "-c", _SLOW_SAVE, str(path), str(400_000_000)],
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "writing"
    deadline = time.time() + 60
    while time.time() < deadline:
        tmps = list(tmp_path.glob(".checkpoint.pt.*.tmp"))
        if tmps and tmps[0].stat().st_size > 1_000_000:
            break
        time.sleep(0.005)
    else:
        pytest.fail("the writer never started its temporary file")
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert ckpt_io.load_checkpoint(path)["step"] == 1
    # The torn temporary file is never mistaken for a checkpoint.
    assert list(tmp_path.glob("checkpoint.pt")) == [path]


@pytest.mark.slow
def test_trainer_killed_repeatedly_always_leaves_a_loadable_checkpoint(nsynth_tiny, tmp_path):
    out = tmp_path / "run"
    cmd = [str(VENV_BIN / "nsynth-live"), "train", "--config", "tiny", "--data", str(nsynth_tiny),
           "--out", str(out), "--steps", "100000", "--batch-size", "1", "--crop", "512",
           "--checkpoint-every", "1", "--valid-every", "100000", "--threads", "1", "--no-progress"]
    rng = np.random.default_rng(0)
    steps = []
    for attempt in range(4):
        proc = subprocess.Popen(cmd + (["--resume"] if attempt else []), stderr=subprocess.PIPE)
        deadline = time.time() + 120
        while not (out / "checkpoint.pt").exists() and time.time() < deadline and proc.poll() is None:
            time.sleep(0.05)
        assert proc.poll() is None, proc.stderr.read()
        time.sleep(0.5 + rng.uniform(0, 1.0))
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        steps.append(ckpt_io.load_checkpoint(out)["step"])
    assert all(s >= 1 for s in steps) and steps == sorted(steps)


def test_sigterm_writes_a_final_checkpoint(nsynth_tiny, tmp_path):
    out = tmp_path / "run"
    cmd = [str(VENV_BIN / "nsynth-live"), "train", "--config", "tiny", "--data", str(nsynth_tiny),
           "--out", str(out), "--steps", "100000", "--batch-size", "1", "--crop", "512",
           "--checkpoint-every", "100000", "--valid-every", "100000", "--log-every", "1",
           "--threads", "1", "--no-progress"]
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        m = out / "metrics.jsonl"
        if m.exists() and len(m.read_text().splitlines()) >= 3:
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=60) == 0, proc.stderr.read()
    ck = ckpt_io.load_checkpoint(out)
    assert ck["step"] >= 3
    assert ck["step"] == max(s for s, _ in losses(out))


def test_resume_refuses_to_change_the_runs_math_but_may_extend_it(nsynth_tiny, tmp_path):
    out = tmp_path / "run"
    train(settings(nsynth_tiny, out, steps=2))
    base = [str(VENV_BIN / "nsynth-live"), "train", "--out", str(out), "--resume", "--no-progress"]
    res = subprocess.run(base + ["--lr", "0.5"], capture_output=True, text=True, timeout=120)
    assert res.returncode == 2 and "--lr cannot change on --resume" in res.stderr
    assert res.stderr.count("\n") == 1
    # --data and the rest come from the run; --steps extends it.
    res = subprocess.run(base + ["--steps", "3", "--threads", "1"], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert ckpt_io.load_checkpoint(out)["step"] == 3
    # A plain resume of a run at its --steps (saved by the resume above) says so instead of returning at once.
    before = (out / "checkpoint.pt").read_bytes()
    res = subprocess.run(base + ["--threads", "1"], capture_output=True, text=True, timeout=120)
    assert res.returncode == 2 and "at step 3, at or past its --steps 3" in res.stderr, res.stderr
    assert res.stderr.count("\n") == 1 and (out / "checkpoint.pt").read_bytes() == before


def test_input_noise_reaches_the_decoders_past_only(nsynth_tiny, tmp_path):
    """The noise is drawn per step, changes the losses, and is fed to the decoder alone."""
    from nsynth_live import mulaw
    from nsynth_live.autoencoder import WaveNetAutoencoder
    from nsynth_live.configs import get_config

    clean, noisy = tmp_path / "clean", tmp_path / "noisy"
    train(settings(nsynth_tiny, clean, steps=3))
    train(settings(nsynth_tiny, noisy, steps=3, input_noise=0.5))
    lc, ln = losses(clean), losses(noisy)
    assert all(a != b for (_, a), (_, b) in zip(lc, ln))

    torch.manual_seed(0)
    model = WaveNetAutoencoder(get_config("tiny")).eval()
    audio = 0.3 * torch.sin(torch.arange(2048.0) * 0.05).repeat(2, 1)
    pitch = torch.tensor([60, 64])
    noise = 0.1 * torch.randn(2, 2048)
    x = mulaw.to_input(mulaw.encode(audio))
    with torch.no_grad():
        want = model.decoder(x + noise, model.encoder(x), pitch)
        torch.testing.assert_close(model(audio, pitch, noise), want, rtol=0, atol=0)
        assert not torch.equal(model(audio, pitch), want)


def test_input_noise_may_be_retuned_on_resume_and_is_recorded(nsynth_tiny, tmp_path):
    out = tmp_path / "run"
    train(settings(nsynth_tiny, out, steps=2))
    cmd = [str(VENV_BIN / "nsynth-live"), "train", "--out", str(out), "--resume", "--no-progress",
           "--steps", "3", "--threads", "1", "--input-noise", "0.1"]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    ck = ckpt_io.load_checkpoint(out)
    assert ck["step"] == 3 and ck["settings"]["input_noise"] == 0.1
    recs = [json.loads(l) for l in (out / "metrics.jsonl").read_text().splitlines()]
    assert {"step": 2, "retuned": {"input_noise": [0.0, 0.1]}} in recs
    res = subprocess.run(cmd[:-1] + ["1.5"], capture_output=True, text=True, timeout=120)
    assert res.returncode == 2 and "--input-noise 1.5: must be within 0..1" in res.stderr
    res = subprocess.run(cmd[:-2] + ["--excitation-lock"], capture_output=True, text=True, timeout=120)
    assert res.returncode == 2 and "--excitation-lock: config 'tiny' has no excitation" in res.stderr


def test_locked_excitation_is_what_the_decoder_trains_on(nsynth_tiny, tmp_path):
    free, locked = tmp_path / "free", tmp_path / "locked"
    train(settings(nsynth_tiny, free, steps=2, config="live-sine"))
    train(settings(nsynth_tiny, locked, steps=2, config="live-sine", excitation_lock=True))
    (_, a), (_, b) = losses(free)[0], losses(locked)[0]
    assert a != b  # same weights, data and noise: only the excitation differs


def test_bad_settings_are_one_clear_error(nsynth_tiny, tmp_path):
    from nsynth_live.errors import UserError

    with pytest.raises(UserError, match="--crop 1000: must be a positive multiple of the hop"):
        Trainer(settings(nsynth_tiny, tmp_path / "r", crop=1000))
    with pytest.raises(UserError, match="unknown model config 'huge'"):
        Trainer(settings(nsynth_tiny, tmp_path / "r", config="huge"))


def test_the_schedule_may_be_shortened_on_resume_and_the_lr_follows(nsynth_tiny, tmp_path):
    out = tmp_path / "run"
    train(settings(nsynth_tiny, out, steps=2, lr=1e-3, schedule_steps=200_000))
    cmd = [str(VENV_BIN / "nsynth-live"), "train", "--out", str(out), "--resume", "--no-progress",
           "--steps", "4", "--threads", "1", "--log-every", "1", "--schedule-steps", "4"]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    recs = [json.loads(l) for l in (out / "metrics.jsonl").read_text().splitlines()]
    assert {"step": 2, "retuned": {"schedule_steps": [200_000, 4]}} in recs
    lrs = {r["step"]: r["lr"] for r in recs if "lr" in r}
    # Record n logs the lr of step index n - 1. Before the resume, the 200k schedule's peak; after,
    # the paper's shape squeezed into 4 steps at 5x its lr: 6e-5 x 5 from index 2 (120k/200k of
    # the way, rounded), 4e-5 x 5 from index 3 (150k/200k).
    assert lrs[1] == lrs[2] == 1e-3
    assert lrs[3] == pytest.approx(3e-4) and lrs[4] == pytest.approx(2e-4)
    res = subprocess.run(cmd[:-1] + ["0"], capture_output=True, text=True, timeout=120)
    assert res.returncode == 2 and "--schedule-steps must be at least 1" in res.stderr
