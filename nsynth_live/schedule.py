"""The reference NSynth learning-rate schedule, scalable to shorter runs.

The reference trains with Adam at ``{0: 2e-4, 90k: 4e-4/3, 120k: 6e-5, 150k: 4e-5, 180k: 2e-5}``
(piecewise constant). A shorter run keeps the same shape: boundaries are scaled by
``total_steps / 200k`` and values by ``peak / 2e-4``.
"""

from __future__ import annotations

PAPER_BOUNDARIES = (0, 90_000, 120_000, 150_000, 180_000)
PAPER_VALUES = (2e-4, 4e-4 / 3, 6e-5, 4e-5, 2e-5)
PAPER_STEPS = 200_000


def paper_schedule(total_steps: int = PAPER_STEPS, peak: float = PAPER_VALUES[0]) -> list[tuple[int, float]]:
    """``[(first_step, lr), ...]`` of the reference schedule stretched to ``total_steps``."""
    if total_steps <= 0 or peak <= 0:
        raise ValueError("total_steps and peak must be positive")
    scale = total_steps / PAPER_STEPS
    gain = peak / PAPER_VALUES[0]
    return [(round(b * scale), v * gain) for b, v in zip(PAPER_BOUNDARIES, PAPER_VALUES)]


def lr_at(schedule: list[tuple[int, float]], step: int) -> float:
    """Learning rate in force at ``step`` (0-based) for a piecewise-constant schedule."""
    lr = schedule[0][1]
    for first, value in schedule:
        if step >= first:
            lr = value
    return lr
