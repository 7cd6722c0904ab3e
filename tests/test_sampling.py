"""The shared sampling rule and its noise: numpy reference, torch twin, statistics."""

import math
import subprocess
import sys

import numpy as np
import pytest
import torch

from nsynth_live import sampling
from nsynth_live.generate import sample_classes as sample_classes_torch


def spec_sample(logits_row: np.ndarray, u: float, temperature: float) -> int:
    """The rule of nsynth_live.sampling written out one scalar at a time."""
    z = [np.float32(v) / np.float32(temperature) for v in logits_row]
    top = max(z)
    p = [np.float32(math.exp(float(np.float32(v - top)))) for v in z]
    acc, cdf = 0.0, []
    for v in p:
        acc += float(v)
        cdf.append(np.float32(acc))
    threshold = np.float32(u) * cdf[-1]
    return sum(c < threshold for c in cdf)


def random_logits(rng: np.random.Generator, batch: int, scale: float) -> np.ndarray:
    return (rng.standard_normal((batch, 256)) * scale).astype(np.float32)


def test_module_does_not_import_torch():
    code = "import sys, nsynth_live.sampling; sys.exit('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


def test_noise_is_default_rng_of_seed_and_voice():
    noise = sampling.voice_noise(7, 3, 50)
    assert noise.shape == (3, 50) and noise.dtype == np.float64
    for b in range(3):
        assert np.array_equal(noise[b], np.random.default_rng([7, b]).random(50))
    assert not np.array_equal(noise, sampling.voice_noise(8, 3, 50))


def test_noise_blocks_and_other_voices_do_not_change_a_voice():
    stream = sampling.NoiseStream(5, [4, 9])
    blocks = np.concatenate([stream.draw(1), stream.draw(63), stream.draw(100)], axis=1)
    assert np.array_equal(blocks, sampling.NoiseStream(5, [4, 9]).draw(164))
    assert np.array_equal(blocks[1], sampling.NoiseStream(5, [9]).draw(164)[0])


@pytest.mark.parametrize("seed", [-1, 1.5, True, "3"])
def test_noise_rejects_bad_seeds(seed):
    with pytest.raises(ValueError, match="seed"):
        sampling.NoiseStream(seed, [0])


@pytest.mark.parametrize("temperature", [1.0, 0.5, 2.0])
def test_numpy_matches_the_rule_written_out(temperature):
    rng = np.random.default_rng(0)
    logits = random_logits(rng, 40, 3.0)
    u = rng.random(40)
    u[:2] = [1e-12, np.nextafter(1.0, 0.0)]  # the ends; float32 of the second is 1
    got = sampling.sample_classes(logits, u, temperature)
    assert got.dtype == np.int64
    assert got.tolist() == [spec_sample(row, x, temperature) for row, x in zip(logits, u)]


@pytest.mark.parametrize("scale", [0.1, 3.0, 30.0])
@pytest.mark.parametrize("temperature", [1.0, 0.37, 1e-3])
def test_torch_equals_numpy(scale, temperature):
    rng = np.random.default_rng(int(scale * 100) + int(temperature * 1000))
    logits = random_logits(rng, 2000, scale)
    logits[0] = 0.0  # all tied
    logits[1, 17] = logits[1, 200] = logits[1].max() + 1  # tied maximum
    u = rng.random(2000)
    u[:3] = [0.0, 0.5, np.nextafter(1.0, 0.0)]
    expected = sampling.sample_classes(logits, u, temperature)
    got = sample_classes_torch(torch.from_numpy(logits), torch.from_numpy(u), temperature)
    assert np.array_equal(got.numpy(), expected)


def test_frequencies_follow_the_softmax():
    rng = np.random.default_rng(1)
    logits = random_logits(rng, 1, 2.0)[0]
    n = 256 * 100
    u = (np.arange(n) + 0.5) / n  # stratified: the counts are the CDF's quantiles
    classes = sampling.sample_classes(np.broadcast_to(logits, (n, 256)), u)
    freq = np.bincount(classes, minlength=256) / n
    p = np.exp(logits - logits.max())
    np.testing.assert_allclose(freq, p / p.sum(), atol=2 / n)


def test_temperature_limits():
    rng = np.random.default_rng(2)
    logits = random_logits(rng, 500, 1.0)
    u = rng.random(500)
    assert np.array_equal(sampling.sample_classes(logits, u, 1e-4), logits.argmax(-1))
    # Very hot: close to uniform, so the class is about u * 256.
    hot = sampling.sample_classes(logits, u, 1e4)
    assert np.abs(hot - u * 256).max() < 2


def test_classes_without_mass_are_never_drawn_even_at_the_ends_of_u():
    logits = np.full((3, 256), -1e4, dtype=np.float32)  # exp underflows to 0 ...
    logits[:, 10] = logits[:, 250] = 0.0  # ... outside classes 10 and 250
    u = np.array([1e-12, 0.75, np.nextafter(1.0, 0.0)])  # the last one rounds to 1 in float32
    assert np.float32(u[2]) == 1.0
    assert sampling.sample_classes(logits, u).tolist() == [10, 250, 250]


@pytest.mark.parametrize("temperature", [0.0, -1.0, float("nan"), float("inf")])
def test_bad_temperature(temperature):
    with pytest.raises(ValueError, match="temperature"):
        sampling.sample_classes(np.zeros((1, 256), np.float32), np.zeros(1), temperature)


def test_shape_mismatch():
    with pytest.raises(ValueError, match="logits"):
        sampling.sample_classes(np.zeros((2, 256), np.float32), np.zeros(3))
