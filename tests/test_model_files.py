"""Loading an export refuses every broken or inconsistent directory with one line naming the file;
the host never imports torch."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap

import onnx
import pytest
from onnx import helper, numpy_helper

from nsynth_live.exporters.export import export_random
from nsynth_live.model_format import EXPORTER_VERSION, MODEL_JSON, PROP_PREFIX
from nsynth_live.host.model_files import load_export
from nsynth_live.errors import UserError


@pytest.fixture(scope="module")
def good(tmp_path_factory):
    return export_random("tiny", tmp_path_factory.mktemp("good") / "export", seed=0)


@pytest.fixture(scope="module")
def other(tmp_path_factory):
    """Same config, other weights."""
    return export_random("tiny", tmp_path_factory.mktemp("other") / "export", seed=1)


@pytest.fixture
def broken(tmp_path, good):
    out = tmp_path / "export"
    shutil.copytree(good, out)
    return out


def refused(path, *needles: str) -> str:
    with pytest.raises(UserError) as info:
        load_export(path)
    message = str(info.value)
    assert "\n" not in message, message
    for needle in needles:
        assert needle in message, message
    return message


def rewrite(path, change) -> None:
    model = onnx.load(str(path))
    change(model)
    onnx.save(model, str(path))


def set_prop(model, key: str, value) -> None:
    props = {p.key: p.value for p in model.metadata_props}
    props[PROP_PREFIX + key] = json.dumps(value)
    del model.metadata_props[:]
    helper.set_model_props(model, props)


def test_a_good_export_loads(good):
    info = load_export(good)
    assert info.config.name == "tiny"
    assert info.decoder_step.name == "decoder_step.onnx" and info.weights_sha256 == info.metadata["weights_sha256"]


@pytest.mark.parametrize("name", ["encoder.onnx", "conditioner.onnx", "decoder_step.onnx", MODEL_JSON])
def test_missing_file(broken, name):
    (broken / name).unlink()
    refused(broken, name, "missing")


def test_missing_directory(tmp_path):
    refused(tmp_path / "nope", "nope")


@pytest.mark.parametrize("name", ["encoder.onnx", "decoder_step.onnx"])
def test_corrupt_onnx(broken, name):
    data = (broken / name).read_bytes()
    (broken / name).write_bytes(data[: len(data) // 2])
    refused(broken, name)
    (broken / name).write_bytes(b"\x00garbage" * 100)
    refused(broken, name)


def test_model_json_not_json(broken):
    (broken / MODEL_JSON).write_text('{"format": "nsynth-live-onnx",')
    refused(broken, MODEL_JSON, "not valid JSON")


def test_model_json_other_version(broken):
    meta = json.loads((broken / MODEL_JSON).read_text())
    meta["exporter_version"] = EXPORTER_VERSION + 1
    (broken / MODEL_JSON).write_text(json.dumps(meta))
    refused(broken, MODEL_JSON, "exporter version")


def test_file_of_another_version(broken):
    rewrite(broken / "conditioner.onnx", lambda m: set_prop(m, "exporter_version", EXPORTER_VERSION + 1))
    refused(broken, "conditioner.onnx", "exporter version")


def test_file_without_metadata(broken):
    rewrite(broken / "encoder.onnx", lambda m: m.metadata_props.__delitem__(slice(None)))
    refused(broken, "encoder.onnx", "no nsynth-live metadata")


def test_file_from_another_export(broken, other):
    shutil.copy(other / "conditioner.onnx", broken / "conditioner.onnx")
    refused(broken, "conditioner.onnx", "disagrees with model.json", "initializers_sha256.conditioner")


def test_config_disagrees(broken):
    meta = json.loads((broken / MODEL_JSON).read_text())
    meta["config"]["skip"] = 16
    (broken / MODEL_JSON).write_text(json.dumps(meta))
    refused(broken, "encoder.onnx", "'config.skip'", "disagrees")


def test_weights_changed_after_export(broken):
    def scale(model):
        init = next(t for t in model.graph.initializer if t.name == "layers.1.gate_w")
        init.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(init) * 2, init.name))

    rewrite(broken / "decoder_step.onnx", scale)
    refused(broken, "decoder_step.onnx", "weights hash")


def test_role_swapped(broken):
    rewrite(broken / "encoder.onnx", lambda m: set_prop(m, "role", "decoder_step"))
    # set_prop prefixes; the role lives under nsynth_live.role, which this sets.
    refused(broken, "encoder.onnx", "decoder_step")


def test_host_never_imports_torch(good):
    """Host modules import, load, render, encode and condition with torch blocked."""
    code = textwrap.dedent(f"""
        import sys
        sys.modules["torch"] = None  # any `import torch` now raises ImportError
        import numpy as np
        import nsynth_live.host.model_files, nsynth_live.host.engines, nsynth_live.host.engines.ort_engine, nsynth_live.model_format
        from nsynth_live.host.engines import open_engine
        try:
            import nsynth_live.host.engines.fused_engine
        except ImportError as err:
            assert "torch" not in str(err), err
        engine = open_engine({str(good)!r}, "ort", max_voices=2, threads=1)
        slot = engine.add_voice()
        cond = engine.condition(np.zeros((1, 16, 2), np.float32), [60])
        out = engine.render([slot], cond[:, :2], [3], np.full((1, 5), 0.5))
        assert out.shape == (1, 5)
        assert engine.encode(np.zeros((1, 512), np.float32)).shape == (1, 16, 1)
        assert "torch" not in [m.split(".")[0] for m in sys.modules if sys.modules[m] is not None]
        print("ok")
    """)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr


def test_graph_signature_disagrees_with_metadata(broken):
    def rename(model):
        model.graph.output[1].type.tensor_type.shape.dim[2].dim_value = 99

    rewrite(broken / "decoder_step.onnx", rename)
    refused(broken, "decoder_step.onnx", "graph outputs[1].shape[2] is 99")


def test_decoding_settings_are_read_and_checked(broken):
    from nsynth_live.sampling import Decoding

    assert load_export(broken).decoding == Decoding()  # export_random recommends the neutral settings
    meta = json.loads((broken / MODEL_JSON).read_text())
    meta["decoding"] = {"temperature": 0.0, "excitation_gain": 1.0}
    (broken / MODEL_JSON).write_text(json.dumps(meta))
    refused(broken, MODEL_JSON, "bad decoding settings", "temperature", "0.0")
    meta["decoding"] = {"temperature": 0.7, "gain": 2}
    (broken / MODEL_JSON).write_text(json.dumps(meta))
    refused(broken, MODEL_JSON, "unknown key", "'gain'")
    # A recommendation in model.json only (not in the graphs) is a mismatch, like any other key.
    meta["decoding"] = {"temperature": 0.7, "excitation_gain": 2.0}
    (broken / MODEL_JSON).write_text(json.dumps(meta))
    refused(broken, "disagrees with model.json", "decoding.excitation_gain")


def test_an_export_without_decoding_settings_decodes_with_the_neutral_ones(broken):
    from nsynth_live.model_format import FILES
    from nsynth_live.sampling import Decoding

    meta = json.loads((broken / MODEL_JSON).read_text())
    del meta["decoding"]
    (broken / MODEL_JSON).write_text(json.dumps(meta))
    for name in FILES.values():
        def drop(model):
            props = {p.key: p.value for p in model.metadata_props if p.key != PROP_PREFIX + "decoding"}
            del model.metadata_props[:]
            helper.set_model_props(model, props)
        rewrite(broken / name, drop)
    assert load_export(broken).decoding == Decoding(1.0, 1.0)
