"""The fused engine's native C kernel (host/engines/fused_native.c) against the numba kernel and
the PyTorch model, on every instruction set this CPU runs (the AVX2 build is forced on an
AVX-512 machine), one or two worker threads, with and without an excitation.

References: the numba kernel (host/engines/fused_kernels.py, itself checked against PyTorch in
test_engine_fused.py) and the teacher-forced parallel forward of nsynth_live.decoder.Decoder.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from nsynth_live import mulaw
from nsynth_live.configs import get_config, receptive_field
from nsynth_live.host.engines import fused_native
from nsynth_live.host.engines.fused_engine import FusedEngine

from nsynth_live.host.engines import fused_kernels as K
from test_engine_fused import gate_error, gate_inputs, random_case, step_weight_dict, stream

ISAS = fused_native.supported_isas()


def excited(name: str, harmonics: int = 1, **changes):
    return dataclasses.replace(get_config(name), excitation_harmonics=harmonics, **changes)


def weights_with_excitation(decoder) -> dict[str, np.ndarray]:
    """The step weights with the excitation's projection exc_w [E, C] where the model has one."""
    return decoder.step_weights().arrays()


def run_both(cfg, batch, n, sizes, isa, threads, feed=None, seed=0):
    """Classes and logits of the native (isa) and numba kernels over the same random inputs."""
    decoder, _, _, cond = random_case(cfg, batch, n, seed=seed)
    w = weights_with_excitation(decoder)
    rng = np.random.default_rng(seed)
    noise = rng.random((batch, n))
    exc = (rng.standard_normal((batch, n, cfg.excitation_channels)).astype(np.float32)
           if cfg.excitation_channels else None)
    got = []
    for kernel in ("native", "numba"):
        engine = FusedEngine(cfg, w, max_voices=batch + 2, threads=threads, kernel=kernel, isa=isa)
        assert engine.kernel == ("numba" if kernel == "numba" else f"native-{isa}")
        got.append(stream(engine, np.arange(2, batch + 2), cond, noise, sizes, feed=feed, exc=exc))
        engine.close()
    return got


@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("cfg", [get_config("live"), excited("live", 4), excited("tiny", 1, decoder_kernel=4, residual=12, skip=20)],
                         ids=["live", "live-exc4", "tiny-exc1-k4-unpadded"])
def test_native_kernel_renders_the_numba_kernels_stream(cfg, threads, isa):
    batch, n = 11, 700  # 11 voices: a full chunk of 8 and a partial one (or shares of 6 and 5)
    (ours, our_logits), (ref, ref_logits) = run_both(cfg, batch, n, [256, 3, 441], isa, threads)
    assert len(np.unique(ref)) > 20  # really sampled
    # Measured here: bit for bit on AVX-512 and AVX2, ~4e-7 of the largest logit on the baseline build.
    np.testing.assert_allclose(our_logits, ref_logits, rtol=0, atol=2e-6 * np.abs(ref_logits).max())
    if isa != "generic":  # the same FMAs in the same order: the same classes
        assert np.array_equal(ours, ref)
    else:  # no FMA in the baseline build: one rounding more per product, near-ties may differ
        assert np.mean(ours == ref) > 0.5


@pytest.mark.parametrize("isa", ISAS)
def test_native_streamed_logits_equal_the_teacher_forced_forward_with_excitation(isa):
    cfg, batch = excited("live", 4), 3
    n = receptive_field(cfg) + 300  # every ring wraps
    decoder, embedding, pitch, cond = random_case(cfg, batch, n)
    classes = torch.randint(0, 256, (batch, n), generator=torch.Generator().manual_seed(1))
    exc = torch.randn(batch, cfg.excitation_channels, n)
    with torch.no_grad():
        expected = decoder(mulaw.to_input(classes).float(), embedding, pitch, exc=exc).numpy().transpose(0, 2, 1)
    w = weights_with_excitation(decoder)
    engine = FusedEngine(cfg, w, max_voices=batch, threads=2, kernel="native", isa=isa)
    _, got = stream(engine, np.arange(batch), cond, np.full((batch, n), 0.5), [256, 100, 7], feed=classes.numpy(),
                    exc=exc.numpy().transpose(0, 2, 1).copy())
    engine.close()
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4 * np.abs(expected).max())


@pytest.mark.parametrize("isa", ISAS)
def test_native_gate_is_the_numba_gate_and_accurate(isa):
    """The C gate sigmoid(a) * tanh(b) (one division, both exps with arguments <= 0; see
    fused_native_body.h) against float64 and against the numba kernel's gate_f32."""
    a, b = gate_inputs()
    got = fused_native.gate(a, b, isa)
    ref = np.empty_like(a)
    K.gate_array(a, b, ref)
    # Measured: 2.4e-7 absolute and 5.2 float32 ulps at most on every build.
    abs_err, ulps = gate_error(a, b, got)
    assert abs_err < 4e-7 and ulps <= 8, (abs_err, ulps)
    if isa != "generic":  # the same operations, each FMA fused in both: the same bits
        assert np.array_equal(got.view(np.int32), ref.view(np.int32))
    else:  # no FMA in the baseline build: a rounding more here and there
        assert np.max(np.abs(got - ref)) < 4e-7
    assert np.array_equal(fused_native.gate(a[:13], b[:13], isa), got[:13])  # a partial vector


def test_auto_picks_the_best_build_and_a_missing_one_is_refused(monkeypatch):
    assert fused_native.choose_isa() == ISAS[-1]
    monkeypatch.setenv("NSYNTH_FUSED_ISA", "avx2")
    if "avx2" in ISAS:
        assert fused_native.choose_isa() == "avx2"
    with pytest.raises(ValueError, match="isa must be"):
        fused_native.choose_isa("sse9")
    missing = [i for i in fused_native.ISAS if i not in ISAS]
    for name in missing:
        with pytest.raises(ValueError, match="does not run"):
            fused_native.choose_isa(name)


def test_without_a_compiler_the_engine_falls_back_to_numba(tmp_path, monkeypatch, capsys):
    cfg = get_config("tiny")
    decoder, *_ = random_case(cfg, 1, 10)
    monkeypatch.setattr(fused_native, "_LOADED", None)
    monkeypatch.setenv("NSYNTH_LIVE_CACHE", str(tmp_path))  # nothing built there
    monkeypatch.setenv("CC", str(tmp_path / "no-such-cc"))
    engine = FusedEngine(cfg, step_weight_dict(decoder), max_voices=1, threads=1)
    assert engine.kernel == "numba"
    assert "numba kernel (native kernel unavailable" in capsys.readouterr().err
    engine.close()
    with pytest.raises(ValueError, match="native kernel is unavailable"):
        FusedEngine(cfg, step_weight_dict(decoder), max_voices=1, threads=1, kernel="native")
    assert not list(tmp_path.iterdir())  # nothing half-written


def test_a_fresh_cache_builds_the_kernel_once(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(fused_native, "_LOADED", None)
    monkeypatch.setenv("NSYNTH_LIVE_CACHE", str(tmp_path))
    lib = fused_native.load()
    assert lib.path.parent == tmp_path and lib.path.exists()
    assert "compiling its native kernel" in capsys.readouterr().err
    assert [p.name for p in tmp_path.iterdir()] == [lib.path.name]  # no temporary left
    monkeypatch.setattr(fused_native, "_LOADED", None)
    assert fused_native.load().path == lib.path
    assert capsys.readouterr().err == ""  # reused, not rebuilt
