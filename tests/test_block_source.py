"""The block source (host/engines/block_source.py): the native kernel against the numpy
reference, and both against the whole-note definition training uses."""

from __future__ import annotations

import numpy as np
import pytest

from nsynth_live.excitation import free_phase, unit_source, upsample_frames
from nsynth_live.host.engines.block_source import frame_span, glide, rows_source
from nsynth_live.host.engines.fused_native import NativeUnavailable, load
from nsynth_live.residual import in_phase


def _native_or_skip() -> None:
    try:
        load()
    except NativeUnavailable as err:
        pytest.skip(f"no native kernel here: {err}")


def _notes(seed: int = 0, voices: int = 5, frames: int = 7, k: int = 48) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    amps = (rng.random((voices, frames, k)) * rng.random((voices, 1, k)) ** 3).astype(np.float32)
    amps[0, 2:4] = 0.0  # a silent stretch: the norm's floor, no NaN
    return amps, rng.integers(30, 90, voices)


@pytest.mark.parametrize("start,n", [(0, 256), (300, 256), (1000, 37), (3000, 256), (0, 1)])
def test_frame_span_source_is_the_whole_notes_source(start, n):
    amps, pitch = _notes()
    hop = 512
    rows, ia, ib, w = frame_span(amps, n, hop, start)
    phase = free_phase(pitch, n, start)
    unit, level = rows_source(rows, ia, ib, w, phase, 1.5, with_level=True, kernel="numpy")
    # The definition: every frame upsampled over the whole note, then the block's samples.
    whole = upsample_frames(amps.transpose(0, 2, 1), start + n, hop)[..., start:]
    ref_unit, ref_sums = unit_source(np.ascontiguousarray(whole), phase)
    np.testing.assert_array_equal(unit, (ref_unit * np.float32(1.5)).transpose(0, 2, 1))
    np.testing.assert_array_equal(level, in_phase(ref_sums))
    assert np.isfinite(unit).all()


@pytest.mark.parametrize("gain", [1.0, 0.7])
@pytest.mark.parametrize("layout", ["frames", "glide"])
def test_native_kernel_equals_the_numpy_reference(layout, gain):
    _native_or_skip()
    amps, pitch = _notes(seed=1, voices=8)
    n = 253  # not a multiple of the kernel's lanes
    if layout == "frames":
        rows, ia, ib, w = frame_span(amps, n, 512, 700)
    else:
        rows = amps[:, :4]
        ia, ib, w = glide(np.arange(8) * 60, np.array([0, 40, 100, 252, 253, 300, 7, 128]), n, 512)
    phase = free_phase(pitch, n, np.arange(8) * 1000)
    got_unit, got_level = rows_source(rows, ia, ib, w, phase, gain, with_level=True, kernel="native")
    ref_unit, ref_level = rows_source(rows, ia, ib, w, phase, gain, with_level=True, kernel="numpy")
    # The same operations in the same order; only the float64 sine and cosine come from different
    # libraries (libm, numpy), within an ulp of each other.
    np.testing.assert_allclose(got_unit, ref_unit, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(got_level, ref_level, rtol=1e-6, atol=1e-7)
    assert rows_source(rows, ia, ib, w, phase, gain, kernel="native")[1] is None


def test_rows_source_refuses_indices_outside_its_rows():
    amps, pitch = _notes(voices=2)
    rows, ia, ib, w = frame_span(amps, 16, 512, 0)
    with pytest.raises(ValueError, match="row indices"):
        rows_source(rows, ia, ib + rows.shape[1], w, free_phase(pitch, 16, 0))
    with pytest.raises(ValueError, match="kernel"):
        rows_source(rows, ia, ib, w, free_phase(pitch, 16, 0), kernel="fortran")


def test_without_a_kernel_the_numpy_reference_plays_and_the_build_is_not_retried(monkeypatch):
    import nsynth_live.host.engines.block_source as bs
    import nsynth_live.host.engines.fused_native as fn

    tries = []

    def no_compiler():
        tries.append(1)
        raise fn.NativeUnavailable("no C compiler found")

    monkeypatch.setattr(fn, "load", no_compiler)
    monkeypatch.setattr(bs, "_native_lib", None)
    monkeypatch.setattr(bs, "_native_failed", None)
    amps, pitch = _notes(voices=3)
    rows, ia, ib, w = frame_span(amps, 64, 512, 100)
    phase = free_phase(pitch, 64, 100)
    ref = rows_source(rows, ia, ib, w, phase, kernel="numpy")[0]
    for _ in range(3):
        np.testing.assert_array_equal(rows_source(rows, ia, ib, w, phase)[0], ref)
    assert len(tries) == 1
    with pytest.raises(NativeUnavailable, match="no C compiler"):
        rows_source(rows, ia, ib, w, phase, kernel="native")
