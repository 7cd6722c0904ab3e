"""mu-law companding against the NSynth reference's definition."""

import math

import numpy as np
import pytest
import torch

from nsynth_live import mulaw


def reference_mu_law(x: np.ndarray, mu: int = 255) -> np.ndarray:
    """The reference's quantiser, written out: floor(128 * F(x)) in [-128, 127] (int8 range)."""
    out = np.sign(x) * np.log(1 + mu * np.abs(x)) / np.log(1 + mu)
    return np.floor(out * 128)


def test_zero_is_class_128_and_decodes_to_zero():
    assert mulaw.encode(np.zeros(3)).tolist() == [128, 128, 128]
    assert mulaw.decode(np.array([128]))[0] == 0.0
    assert mulaw.ZERO_CLASS == 128 and mulaw.N_CLASSES == 256


def test_matches_reference_quantiser():
    x = np.linspace(-0.999, 0.999, 20001)
    expected = reference_mu_law(x) + 128
    assert np.array_equal(mulaw.encode(x), expected.astype(np.int64))


def test_range_and_clipping():
    c = mulaw.encode(np.array([-5.0, -1.0, 1.0, 5.0]))
    assert c.tolist() == [0, 0, 255, 255]
    assert mulaw.encode(np.random.default_rng(0).uniform(-1, 1, 1000)).min() >= 0


def test_decode_inverts_encode_for_every_class():
    classes = np.arange(256)
    audio = mulaw.decode(classes)
    assert audio.dtype == np.float32
    assert np.all(np.diff(audio) > 0), "decoding must be strictly increasing"
    assert np.array_equal(mulaw.encode(audio), classes)
    assert -1.0 <= audio.min() and audio.max() <= 1.0


def test_quantisation_error_is_small_near_zero_and_bounded():
    x = np.random.default_rng(1).uniform(-1, 1, 10000)
    err = np.abs(mulaw.decode(mulaw.encode(x)) - x)
    # Interval width of mu-law at |x| is ~ (1 + mu|x|) * ln(1+mu) / (128 mu).
    bound = (1 + 255 * np.abs(x)) * math.log(256) / (128 * 255)
    assert np.all(err <= bound + 1e-6)


def test_input_scaling_is_reference():
    classes = np.array([0, 128, 255])
    assert mulaw.to_input(classes).tolist() == [-1.0, 0.0, 127 / 128]


@pytest.mark.parametrize("fn", ["encode", "decode", "to_input"])
def test_torch_and_numpy_agree(fn):
    rng = np.random.default_rng(2)
    arg = rng.uniform(-1, 1, 4096) if fn == "encode" else rng.integers(0, 256, 4096)
    a = getattr(mulaw, fn)(arg)
    b = getattr(mulaw, fn)(torch.from_numpy(arg))
    assert isinstance(b, torch.Tensor)
    assert np.array_equal(a, b.numpy())
