"""ONNX export: graphs equal the PyTorch functions, metadata, initializer names, atomic writes, the CLI."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys

import numpy as np
import onnx
import pytest
import torch

from nsynth_live.exporters.export import export_model
from nsynth_live.model_format import EXPORTER_VERSION, FILES, FORMAT, MODEL_JSON, from_props
from nsynth_live.host.engines.onnx_sessions import CPU, make_session
from nsynth_live.host.model_files import cond_weights_from_onnx, load_export, step_weight_names, step_weights_from_onnx
from nsynth_live.autoencoder import WaveNetAutoencoder
from nsynth_live.configs import get_config, receptive_field
from nsynth_live.decoder import decoder_step
from nsynth_live.errors import UserError


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def random_model(cfg, seed: int = 0) -> WaveNetAutoencoder:
    torch.manual_seed(seed)
    model = WaveNetAutoencoder(cfg).eval()
    # Non-zero biases everywhere (default inits are small but non-zero; make them matter).
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("bias"):
                p.add_(0.05 * torch.randn_like(p))
    return model


def close(got: np.ndarray, expected: np.ndarray, rtol: float = 1e-4) -> None:
    """Agreement to ``rtol`` relative to the largest magnitude (elementwise relative error is
    meaningless for values that cancel to ~0)."""
    assert got.shape == expected.shape
    scale = max(float(np.abs(expected).max()), 1e-6)
    np.testing.assert_allclose(got, expected, rtol=rtol, atol=rtol * scale)


CONFIGS = {
    "tiny": get_config("tiny"),
    "tiny-no-pitch-k3": dataclasses.replace(get_config("tiny"), pitch_conditioning=False, decoder_kernel=3),
    "tiny-1-layer-even-kernels": dataclasses.replace(get_config("tiny"), decoder_layers=1, encoder_kernel=2,
                                                     decoder_kernel=4),
    "live": get_config("live"),
    "paper": get_config("paper"),
}


@pytest.mark.parametrize("name", list(CONFIGS))
def test_onnx_graphs_equal_pytorch(tmp_path, name):
    cfg = CONFIGS[name]
    model = random_model(cfg)
    info = load_export(export_model(model, tmp_path / "export"))
    rng = np.random.default_rng(1)
    batch, frames = 3, 2

    # Encoder: raw audio in (mu-law inside the graph), embedding out.
    audio = np.clip(rng.standard_normal((batch, frames * cfg.hop)) * 0.3, -1, 1).astype(np.float32)
    audio[0, :10] = [-1.0, 1.0, 0.0, 0.5, -0.5, 1e-4, -1e-4, 0.999, -0.999, 0.25]
    got = make_session(info.encoder, [CPU], 1).run(None, {"audio": audio})[0]
    with torch.no_grad():
        expected = model.encode(torch.from_numpy(audio)).numpy()
    close(got, expected)

    # Conditioner.
    embedding = rng.standard_normal((batch, cfg.bottleneck, 5)).astype(np.float32)
    feeds = {"embedding": embedding}
    pitch = None
    if cfg.pitch_conditioning:
        pitch = np.array([0, 60, 127])
        feeds["pitch"] = pitch
    got = make_session(info.conditioner, [CPU], 1).run(None, feeds)[0]
    expected = model.decoder.condition(torch.from_numpy(embedding), None if pitch is None else torch.from_numpy(pitch))
    close(got, expected.numpy())

    # Decoder step.
    k, n, r = cfg.decoder_kernel, cfg.decoder_layers, cfg.residual
    x_hist = rng.uniform(-1, 1, (batch, k)).astype(np.float32)
    taps = rng.standard_normal((batch, n, (k - 1) * r)).astype(np.float32)
    cond = rng.standard_normal((batch, cfg.cond_width)).astype(np.float32)
    logits, columns = make_session(info.decoder_step, [CPU], 1).run(None, {"x_hist": x_hist, "taps": taps, "cond": cond})
    with torch.no_grad():
        ref_logits, ref_columns = decoder_step(model.decoder.step_weights(), *map(torch.from_numpy, (x_hist, taps, cond)))
    close(logits, ref_logits.numpy())
    close(columns, ref_columns.numpy())


def test_metadata_checker_and_small_step_graph(tmp_path):
    cfg = get_config("live")
    out = export_model(random_model(cfg), tmp_path / "export", source={"checkpoint": "x", "step": 7, "weights": "ema"})
    meta = json.loads((out / MODEL_JSON).read_text())
    assert meta["format"] == FORMAT and meta["exporter_version"] == EXPORTER_VERSION
    assert meta["config"] == cfg.to_dict() and meta["source"]["step"] == 7
    assert meta["sample_rate"] == 16000 and meta["hop"] == 512 and meta["mu"] == 255
    assert meta["dilations"] == list(cfg.decoder_dilations) and meta["kernel"] == 2
    assert meta["receptive_field"] == receptive_field(cfg)
    assert meta["history_per_layer"] == [d for d in cfg.decoder_dilations]
    assert meta["tensors"]["decoder_step"]["inputs"][1] == {"name": "taps", "shape": ["B", 20, 32], "dtype": "float32"}
    for role, name in FILES.items():
        model = onnx.load(str(out / name))
        onnx.checker.check_model(model, full_check=True)
        props, file_role = from_props({p.key: p.value for p in model.metadata_props})
        assert props == meta and file_role == role
    step = onnx.load(str(out / FILES["decoder_step"]))
    # One Gemm for all taps and one for residual+skip per layer: 9 nodes a layer plus a few.
    assert len(step.graph.node) <= 9 * cfg.decoder_layers + 12
    gemms = [n for n in step.graph.node if n.op_type in ("Gemm", "MatMul")]
    assert len(gemms) == 2 * cfg.decoder_layers + 3  # + start, out1, logits


@pytest.mark.parametrize("pitch", [True, False])
def test_initializers_are_the_step_weights_by_field_name(tmp_path, pitch):
    cfg = dataclasses.replace(get_config("tiny"), pitch_conditioning=pitch)
    model = random_model(cfg)
    info = load_export(export_model(model, tmp_path / "export"))
    weights = step_weights_from_onnx(info.decoder_step)
    assert list(weights) == step_weight_names(cfg.decoder_layers)
    ref = model.decoder.step_weights()
    np.testing.assert_array_equal(weights["start_w"], ref.start_w.numpy())
    np.testing.assert_array_equal(weights["logits_b"], ref.logits_b.numpy())
    for i, layer in enumerate(ref.layers):
        for field in ("gate_w", "out_w", "out_b"):
            np.testing.assert_array_equal(weights[f"layers.{i}.{field}"], getattr(layer, field).numpy())
    cond = cond_weights_from_onnx(info.conditioner)
    ref_c = model.decoder.cond_weights()
    assert sorted(cond) == sorted(["embed_w", "bias"] + (["pitch_w"] if pitch else []))
    np.testing.assert_array_equal(cond["embed_w"], ref_c.embed_w.numpy())
    np.testing.assert_array_equal(cond["bias"], ref_c.bias.numpy())
    if pitch:
        np.testing.assert_array_equal(cond["pitch_w"], ref_c.pitch_w.numpy())
    names = [i.name for i in onnx.load(str(info.conditioner)).graph.input]
    assert names == (["embedding", "pitch"] if pitch else ["embedding"])


def test_export_is_atomic_and_refuses_to_overwrite(tmp_path):
    model = random_model(get_config("tiny"))
    out = export_model(model, tmp_path / "export")
    before = (out / MODEL_JSON).read_text()
    with pytest.raises(UserError, match="not empty"):
        export_model(random_model(get_config("tiny"), seed=1), out)
    assert (out / MODEL_JSON).read_text() == before
    export_model(random_model(get_config("tiny"), seed=1), out, force=True)
    assert (out / MODEL_JSON).read_text() != before
    load_export(out)
    (tmp_path / "empty").mkdir()
    export_model(model, tmp_path / "empty")  # an empty directory is fine
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty", "export"]  # no temp dirs left


def fake_checkpoint(path, cfg, step: int) -> WaveNetAutoencoder:
    """A checkpoint in the format of Trainer.state(), EMA weights different from the raw ones."""
    from nsynth_live.checkpoint import FORMAT as CKPT_FORMAT, VERSION, atomic_save

    model = random_model(cfg)
    shadow = {k: v * 0.5 for k, v in model.state_dict().items()}
    atomic_save({"format": CKPT_FORMAT, "version": VERSION, "config": cfg.to_dict(), "settings": {}, "step": step,
                 "model": model.state_dict(), "ema": {"decay": 0.9999, "updates": step, "shadow": shadow},
                 "optimizer": {}, "scaler": {}, "data": {}, "rng": {}}, path / "checkpoint.pt")
    return model


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "nsynth_live", *args], capture_output=True, text=True, timeout=120)


def test_cli_export_of_a_checkpoint(tmp_path, capsys):
    cfg = get_config("tiny")
    run = tmp_path / "run"
    run.mkdir()
    model = fake_checkpoint(run, cfg, step=42)
    out = tmp_path / "export"
    done = run_cli("export", "--checkpoint", str(run), "--out", str(out))
    assert done.returncode == 0, done.stderr
    assert str(out) in done.stdout and "step 42" in done.stdout
    info = load_export(out)
    assert info.metadata["source"]["step"] == 42 and info.metadata["source"]["weights"] == "ema"
    # --weights ema exports the shadow (half the raw weights here).
    np.testing.assert_allclose(cond_weights_from_onnx(info.conditioner)["embed_w"],
                               0.5 * model.decoder.cond_weights().embed_w.numpy(), rtol=1e-6)

    # The refusals and --force in-process (each subprocess pays for importing torch again).
    from nsynth_live.cli import main

    def errors(*args: str) -> list[str]:
        assert main(list(args)) == 2
        return capsys.readouterr().err.strip().splitlines()

    again = errors("export", "--checkpoint", str(run), "--out", str(out), "--weights", "model")
    assert len(again) == 1 and "--force" in again[0] and str(out) in again[0]
    assert main(["export", "--checkpoint", str(run), "--out", str(out), "--weights", "model", "--force"]) == 0
    np.testing.assert_array_equal(cond_weights_from_onnx(out / "conditioner.onnx")["embed_w"],
                                  model.decoder.cond_weights().embed_w.numpy())
    missing = errors("export", "--checkpoint", str(tmp_path / "nowhere"), "--out", str(tmp_path / "x"))
    assert len(missing) == 1 and "nowhere" in missing[0]
    assert not (tmp_path / "x").exists()
