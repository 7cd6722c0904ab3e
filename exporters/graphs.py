"""The three ONNX graphs, built node by node from the PyTorch model's weights.

Why not ``torch.onnx.export``: the step graph must stay small (ONNX Runtime costs ~0.3 us per
node and a step is a few hundred of them), its initializers must carry the
:class:`~nsynth_live.decoder.StepWeights` field names the fused engine reads, and exporting the
paper config through the dynamo exporter takes long on a small CPU. Writing the graphs directly
gives all three; the parity tests (tests/test_export.py) check every graph against the PyTorch
functions it mirrors (:func:`nsynth_live.decoder.decoder_step`, :func:`~nsynth_live.decoder.condition`,
:meth:`nsynth_live.autoencoder.WaveNetAutoencoder.encode`).

Each builder returns an ``onnx.GraphProto``; :mod:`exporters.export` wraps them into models.
Initializers that are not weights (shapes, split sizes, constants) are named ``const.*``.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from nsynth_live.configs import N_CLASSES, ModelConfig

F32 = TensorProto.FLOAT
F64 = TensorProto.DOUBLE
I64 = TensorProto.INT64


class GraphBuilder:
    """Collects nodes and initializers; every node output gets a fresh readable name."""

    def __init__(self) -> None:
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []
        self._names: set[str] = set()
        self._count = 0

    def weight(self, name: str, array: np.ndarray) -> str:
        """Add an initializer under exactly ``name`` (weights keep their field names)."""
        if name in self._names:
            raise ValueError(f"duplicate initializer {name!r}")
        self._names.add(name)
        self.initializers.append(numpy_helper.from_array(np.ascontiguousarray(array), name))
        return name

    def const(self, name: str, values: Any, dtype: Any = np.int64) -> str:
        return self.weight(f"const.{name}", np.asarray(values, dtype=dtype))

    def op(self, op_type: str, inputs: list[str], n_out: int = 1, name: str | None = None, **attrs: Any) -> Any:
        """Append a node; returns its output name (or a list of names when ``n_out`` > 1)."""
        self._count += 1
        base = name or f"{op_type.lower()}_{self._count}"
        outs = [base] if n_out == 1 else [f"{base}.{j}" for j in range(n_out)]
        self.nodes.append(helper.make_node(op_type, inputs, outs, name=f"n{self._count}_{op_type}", **attrs))
        return outs[0] if n_out == 1 else outs

    def graph(self, name: str, inputs: list[onnx.ValueInfoProto], outputs: list[onnx.ValueInfoProto]) -> onnx.GraphProto:
        return helper.make_graph(self.nodes, name, inputs, outputs, self.initializers)


def _np(t: Any) -> np.ndarray:
    """A torch tensor (or array) as float32 numpy, detached and contiguous."""
    if hasattr(t, "detach"):
        t = t.detach().cpu().float().numpy()
    return np.ascontiguousarray(t, dtype=np.float32)


def step_graph(cfg: ModelConfig, weights: Any) -> onnx.GraphProto:
    """``decoder_step.onnx``: one sample of every voice from the gathered ring taps.

    Inputs ``x_hist [B, k]``, ``taps [B, L, (k-1)R]``, ``cond [B, L*2R+S]`` (and ``excitation
    [B, 2H]`` for configs with one, added to cond through ``exc_w``); outputs
    ``logits [B, 256]``, ``columns [B, L, R]`` (the contract in nsynth_live/decoder.py).

    The residual stream and the skip sum travel together as one ``[B, R+S]`` tensor ``hs``: the
    start product yields both, and each layer's one residual+skip product adds to both with one
    Add. Per layer: Slice (h_i) -> Concat (taps, h_i) -> Gemm (all k taps, + conditioning) ->
    Split -> Sigmoid, Tanh -> Mul -> Gemm (residual + skip) -> Add: 9 nodes.

    Args:
        cfg: model config.
        weights: :class:`nsynth_live.decoder.StepWeights` (torch tensors or numpy arrays).
    """
    n, r, s, k = cfg.decoder_layers, cfg.residual, cfg.skip, cfg.decoder_kernel
    g = GraphBuilder()
    g.weight("start_w", _np(weights.start_w))
    g.weight("start_b", _np(weights.start_b))
    for i, layer in enumerate(weights.layers):
        g.weight(f"layers.{i}.gate_w", _np(layer.gate_w))
        g.weight(f"layers.{i}.out_w", _np(layer.out_w))
        g.weight(f"layers.{i}.out_b", _np(layer.out_b))
    g.weight("out1_w", _np(weights.out1_w))
    g.weight("logits_w", _np(weights.logits_w))
    g.weight("logits_b", _np(weights.logits_b))
    e = cfg.excitation_channels
    cond_in = "cond"
    if e:  # the excitation's share of this sample's conditioning: cond + excitation @ exc_w
        g.weight("exc_w", _np(weights.exc_w))
        cond_in = g.op("Gemm", ["excitation", "exc_w", "cond"], name="cond_t")

    zero, r_end, rs_end, axis1 = g.const("0", [0]), g.const("R", [r]), g.const("R_S", [r + s]), g.const("axis1", [1])
    hs = g.op("Gemm", ["x_hist", "start_w", "start_b"], name="hs_0")
    flat_taps = g.op("Reshape", ["taps", g.const("taps_flat_shape", [0, n * (k - 1) * r])], name="taps_flat")
    taps = [flat_taps]
    if n > 1:
        taps = g.op("Split", [flat_taps, g.const("taps_split", [(k - 1) * r] * n)], n_out=n, name="tap", axis=1)
    conds = g.op("Split", [cond_in, g.const("cond_split", [2 * r] * n + [s])], n_out=n + 1, name="cond_", axis=1)
    halves = g.const("gate_split", [r, r])
    columns = []
    skip = None
    for i in range(n):
        h = g.op("Slice", [hs, zero, r_end, axis1], name=f"h_{i}")
        columns.append(h)
        d = g.op("Gemm", [g.op("Concat", [taps[i], h], axis=1), f"layers.{i}.gate_w", conds[i]], name=f"dil_{i}")
        gate, filt = g.op("Split", [d, halves], n_out=2, name=f"gf_{i}", axis=1)
        z = g.op("Mul", [g.op("Sigmoid", [gate]), g.op("Tanh", [filt])], name=f"z_{i}")
        out = g.op("Gemm", [z, f"layers.{i}.out_w", f"layers.{i}.out_b"], name=f"out_{i}")
        if i + 1 < n:
            hs = g.op("Add", [hs, out], name=f"hs_{i + 1}")
        else:  # the last layer has no residual: only its skip is added
            skip = g.op("Add", [g.op("Slice", [hs, r_end, rs_end, axis1]), out], name="skip")
    out1 = g.op("Relu", [g.op("Gemm", [g.op("Relu", [skip]), "out1_w", conds[n]])], name="out1")
    g.op("Gemm", [out1, "logits_w", "logits_b"], name="logits")
    cols = g.op("Concat", columns, axis=1) if n > 1 else columns[0]
    g.op("Reshape", [cols, g.const("columns_shape", [0, n, r])], name="columns")
    inputs = [helper.make_tensor_value_info("x_hist", F32, ["B", k]),
              helper.make_tensor_value_info("taps", F32, ["B", n, (k - 1) * r]),
              helper.make_tensor_value_info("cond", F32, ["B", cfg.cond_width])]
    if e:
        inputs.append(helper.make_tensor_value_info("excitation", F32, ["B", e]))
    return g.graph(
        "nsynth_live_decoder_step",
        inputs,
        [helper.make_tensor_value_info("logits", F32, ["B", N_CLASSES]),
         helper.make_tensor_value_info("columns", F32, ["B", n, r])],
    )


def conditioner_graph(cfg: ModelConfig, weights: Any) -> onnx.GraphProto:
    """``conditioner.onnx``: ``embedding [B, bottleneck, F]`` (+ ``pitch [B]`` int64) ->
    ``cond [B, F, L*2R+S]``, as :func:`nsynth_live.decoder.condition` (pitch rows gathered, not
    multiplied by a one-hot).

    Args:
        cfg: model config.
        weights: :class:`nsynth_live.decoder.CondWeights`.
    """
    g = GraphBuilder()
    g.weight("embed_w", _np(weights.embed_w))
    g.weight("bias", _np(weights.bias))
    frames = g.op("Transpose", ["embedding"], perm=[0, 2, 1])
    out = g.op("Add", [g.op("MatMul", [frames, "embed_w"]), "bias"], name="projected")
    inputs = [helper.make_tensor_value_info("embedding", F32, ["B", cfg.bottleneck, "F"])]
    if cfg.pitch_conditioning:
        g.weight("pitch_w", _np(weights.pitch_w))
        rows = g.op("Gather", ["pitch_w", "pitch"], axis=0)
        out = g.op("Add", [out, g.op("Unsqueeze", [rows, g.const("axis1", [1])])])
        inputs.append(helper.make_tensor_value_info("pitch", I64, ["B"]))
    g.op("Identity", [out], name="cond")
    return g.graph(
        "nsynth_live_conditioner", inputs,
        [helper.make_tensor_value_info("cond", F32, ["B", "F", cfg.cond_width])],
    )


def source_graph(cfg: ModelConfig, source_net: Any) -> onnx.GraphProto:
    """``source.onnx`` (configs with ``source_harmonics`` K): ``embedding [B, bottleneck, F]`` +
    ``pitch [B]`` int64 -> ``amplitudes [B, F, K]``, as :class:`nsynth_live.decoder.SourceNet`:
    three per-frame products with ReLUs between (the first one's pitch rows gathered), DDSP's
    level ``2 sigmoid(x) ** ln 10 + 1e-7`` times a softmax over the harmonics below Nyquist (a
    per-pitch table masks the others' logits to :data:`~nsynth_live.decoder.SOURCE_MASK` and
    zeroes their weights after the softmax).

    Args:
        cfg: model config.
        source_net: the decoder's :class:`~nsynth_live.decoder.SourceNet` (float32, CPU).
    """
    from nsynth_live.decoder import SOURCE_MASK
    from nsynth_live.excitation import audible

    g = GraphBuilder()
    convs = [m for m in source_net.net if hasattr(m, "weight")]
    w0 = _np(convs[0].weight[:, :, 0].t())  # [bottleneck + 128, hidden]
    g.weight("source.0.embed_w", w0[: cfg.bottleneck])
    g.weight("source.0.pitch_w", w0[cfg.bottleneck :])
    g.weight("source.0.bias", _np(convs[0].bias))
    for i, conv in enumerate(convs[1:], 1):
        g.weight(f"source.{i}.weight", _np(conv.weight[:, :, 0].t()))
        g.weight(f"source.{i}.bias", _np(conv.bias))
    live = audible(np.arange(128), cfg.source_harmonics).astype(np.float32)  # [128, K]
    g.weight("source.live", live)
    g.weight("source.mask", np.where(live > 0, 0.0, SOURCE_MASK).astype(np.float32))
    axis1 = g.const("axis1", [1])
    frames = g.op("Transpose", ["embedding"], perm=[0, 2, 1])
    pitch_rows = g.op("Unsqueeze", [g.op("Gather", ["source.0.pitch_w", "pitch"], axis=0), axis1])
    h = g.op("Add", [g.op("Add", [g.op("MatMul", [frames, "source.0.embed_w"]), "source.0.bias"]), pitch_rows])
    for i in range(1, len(convs)):
        h = g.op("Add", [g.op("MatMul", [g.op("Relu", [h]), f"source.{i}.weight"]), f"source.{i}.bias"])
    last, two = g.const("axis2", [2]), g.const("big", [1 << 62])
    level_in = g.op("Slice", [h, g.const("0", [0]), axis1, last])
    logits = g.op("Slice", [h, axis1, two, last])
    level = g.op("Add", [g.op("Mul", [g.op("Pow", [g.op("Sigmoid", [level_in]), g.const("ln10", math.log(10.0), np.float32)]),
                                       g.const("two", 2.0, np.float32)]), g.const("floor", 1e-7, np.float32)], name="level")
    mask = g.op("Unsqueeze", [g.op("Gather", ["source.mask", "pitch"], axis=0), axis1])
    keep = g.op("Unsqueeze", [g.op("Gather", ["source.live", "pitch"], axis=0), axis1])
    weights = g.op("Softmax", [g.op("Add", [logits, mask])], axis=-1)
    g.op("Mul", [g.op("Mul", [level, weights]), keep], name="amplitudes")
    return g.graph(
        "nsynth_live_source",
        [helper.make_tensor_value_info("embedding", F32, ["B", cfg.bottleneck, "F"]),
         helper.make_tensor_value_info("pitch", I64, ["B"])],
        [helper.make_tensor_value_info("amplitudes", F32, ["B", "F", cfg.source_harmonics])],
    )


def _same_pads(kernel: int, dilation: int) -> list[int]:
    """torch's padding="same" for a 1-D conv: the extra sample of an odd total goes right."""
    total = (kernel - 1) * dilation
    return [total // 2, total - total // 2]


def encoder_graph(cfg: ModelConfig, state: dict[str, Any]) -> onnx.GraphProto:
    """``encoder.onnx``: raw ``audio [B, T]`` float32 in [-1, 1] -> ``embedding [B, bottleneck, T // hop]``.

    Mu-law quantisation and scaling happen in the graph, in float64 like
    :func:`nsynth_live.mulaw.encode`, so callers feed audio. T should be a positive multiple of
    ``hop`` (the average pool drops a partial last frame); the host checks it.

    Args:
        cfg: model config.
        state: the encoder's state dict (``start.weight``, ``layers.0.dilated.weight``, ...);
            initializers keep these names.
    """
    g = GraphBuilder()
    for name, value in state.items():
        g.weight(name, _np(value))
    mu, half = 255.0, 128.0

    def c64(name: str, value: float) -> str:
        return g.const(name, value, np.float64)

    x = g.op("Clip", [g.op("Cast", ["audio"], to=F64), c64("minus_one", -1.0), c64("one", 1.0)], name="clipped")
    magnitude = g.op("Log", [g.op("Add", [g.op("Mul", [g.op("Abs", [x]), c64("mu", mu)]), c64("one_", 1.0)])])
    y = g.op("Div", [g.op("Mul", [g.op("Sign", [x]), magnitude]), c64("log1p_mu", math.log1p(mu))], name="companded")
    q = g.op("Clip", [g.op("Floor", [g.op("Mul", [y, c64("half", half)])]), c64("q_min", -half), c64("q_max", half - 1)])
    net_in = g.op("Cast", [g.op("Div", [q, c64("half_", half)])], to=F32, name="network_input")
    h = g.op("Conv", [g.op("Unsqueeze", [net_in, g.const("axis1", [1])]), "start.weight", "start.bias"],
             kernel_shape=[cfg.encoder_kernel], pads=_same_pads(cfg.encoder_kernel, 1), name="enc_start")
    for i, d in enumerate(cfg.encoder_dilations):
        p = f"layers.{i}."
        c = g.op("Conv", [g.op("Relu", [h]), p + "dilated.weight", p + "dilated.bias"], kernel_shape=[cfg.encoder_kernel],
                 dilations=[d], pads=_same_pads(cfg.encoder_kernel, d))
        h = g.op("Add", [h, g.op("Conv", [g.op("Relu", [c]), p + "res.weight", p + "res.bias"], kernel_shape=[1])],
                 name=f"enc_h_{i + 1}")
    b = g.op("Conv", [h, "bottleneck.weight", "bottleneck.bias"], kernel_shape=[1], name="bottleneck")
    g.op("AveragePool", [b], kernel_shape=[cfg.hop], strides=[cfg.hop], name="embedding")
    return g.graph(
        "nsynth_live_encoder",
        [helper.make_tensor_value_info("audio", F32, ["B", "T"])],
        [helper.make_tensor_value_info("embedding", F32, ["B", cfg.bottleneck, "F"])],
    )


def tensor_specs(cfg: ModelConfig) -> dict[str, dict[str, list[dict[str, Any]]]]:
    """Names, shapes (symbolic dims as strings) and dtypes of every file's inputs and outputs."""

    def t(name: str, shape: list[Any], dtype: str = "float32") -> dict[str, Any]:
        return {"name": name, "shape": shape, "dtype": dtype}

    n, r, k = cfg.decoder_layers, cfg.residual, cfg.decoder_kernel
    cond_in = [t("embedding", ["B", cfg.bottleneck, "F"])]
    if cfg.pitch_conditioning:
        cond_in.append(t("pitch", ["B"], "int64"))
    specs = {
        "encoder": {"inputs": [t("audio", ["B", "T"])], "outputs": [t("embedding", ["B", cfg.bottleneck, "F"])]},
        "conditioner": {"inputs": cond_in, "outputs": [t("cond", ["B", "F", cfg.cond_width])]},
        "decoder_step": {
            "inputs": [t("x_hist", ["B", k]), t("taps", ["B", n, (k - 1) * r]), t("cond", ["B", cfg.cond_width])]
            + ([t("excitation", ["B", cfg.excitation_channels])] if cfg.excitation_channels else []),
            "outputs": [t("logits", ["B", N_CLASSES]), t("columns", ["B", n, r])],
        },
    }
    if cfg.source_harmonics:
        specs["source"] = {"inputs": cond_in, "outputs": [t("amplitudes", ["B", "F", cfg.source_harmonics])]}
    return specs


