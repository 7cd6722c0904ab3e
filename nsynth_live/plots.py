"""Figures: the training curve from a run's metrics.jsonl."""

from __future__ import annotations

import json
from pathlib import Path

from nsynth_live.atomic import atomic_open


def read_metrics(path: str | Path) -> list[dict]:
    """Records of a metrics.jsonl file (a torn last line, from a killed run, is skipped)."""
    out = []
    for line in Path(path).read_text().splitlines():
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return out


def plot_training_curve(metrics: str | Path, png: str | Path) -> Path:
    """Train and validation loss (bits/sample) against step, written atomically as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    recs = read_metrics(metrics)
    train = [(r["step"], r["loss_bits"]) for r in recs if "loss_bits" in r]
    valid = [(r["step"], r["valid_bits"]) for r in recs if "valid_bits" in r]
    fig, ax = plt.subplots(figsize=(7, 4), dpi=100)
    if train:
        ax.plot(*zip(*train), lw=1, label="train")
    if valid:
        ax.plot(*zip(*valid), "o-", ms=3, label="valid (EMA)")
    ax.set_xlabel("step")
    ax.set_ylabel("cross-entropy (bits / sample)")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    png = Path(png)
    try:
        with atomic_open(png) as f:
            fig.savefig(f, format="png")
    finally:
        plt.close(fig)
    return png
