"""Latent interpolation and the attack / sustain / release cursor."""

import numpy as np
import pytest

from nsynth_live.host.trajectory import Cursor, bilinear, default_regions, mix

rng = np.random.default_rng(0)
A, B, C, D = (rng.standard_normal((125, 16)).astype(np.float32) for _ in range(4))


def test_mix_endpoints_exact_midpoint_mean_shape_kept():
    assert np.array_equal(mix(A, B, 0.0), A) and np.array_equal(mix(A, B, 1.0), B)
    np.testing.assert_allclose(mix(A, B, 0.5), (A + B) / 2, rtol=0, atol=1e-6)
    assert mix(A, B, 0.3).shape == (125, 16) and mix(A, B, 0.3).dtype == np.float32
    assert np.array_equal(mix(A, B, -2), A)  # clipped
    with pytest.raises(ValueError):
        mix(A, B[:10], 0.5)


def test_bilinear_corners_exact_centre_mean_edges_linear():
    corners = (A, B, C, D)
    for (x, y), want in zip([(0, 0), (1, 0), (0, 1), (1, 1)], corners):
        assert np.array_equal(bilinear(corners, x, y), want)
    np.testing.assert_allclose(bilinear(corners, 0.5, 0.5), (A + B + C + D) / 4, atol=1e-6)
    np.testing.assert_allclose(bilinear(corners, 0.25, 0.0), mix(A, B, 0.25), atol=1e-6)
    np.testing.assert_allclose(bilinear(corners, 0.0, 0.7), mix(A, C, 0.7), atol=1e-6)


def test_regions_follow_the_nsynth_protocol_and_find_the_stable_part():
    emb = rng.standard_normal((125, 16)).astype(np.float32)
    emb[40:56] = emb[40]  # a perfectly stable stretch of 16 frames (0.5 s)
    r = default_regions(emb, hop=512)
    assert r["release_start"] == 93  # note-off at 3 s = frame 93.75
    assert (r["sustain_start"], r["sustain_end"]) == (40, 56)


def test_cursor_holds_the_sustain_while_the_key_is_down_then_releases():
    regions = {"sustain_start": 10, "sustain_end": 14, "release_start": 93}
    cur = Cursor(regions, 125)
    played = [cur.next_frame() for _ in range(40)]
    assert played[:11] == list(range(11))
    assert set(played[10:]) == {10, 11, 12, 13}  # held: ping-pong inside the sustain
    assert all(abs(a - b) == 1 for a, b in zip(played[10:], played[11:]))  # never jumps
    cur.release()
    rel = []
    while not cur.finished:
        rel.append(cur.next_frame())
    assert rel == list(range(93, 125))


def test_release_during_the_attack_goes_straight_to_release():
    cur = Cursor({"sustain_start": 10, "sustain_end": 14, "release_start": 93}, 125)
    assert [cur.next_frame() for _ in range(3)] == [0, 1, 2]
    cur.release()
    assert cur.next_frame() == 93
