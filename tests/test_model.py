"""The WaveNet autoencoder: configs, sizes, causality, receptive field, pitch, loss."""

import dataclasses
import math

import pytest
import torch

from nsynth_live import configs
from nsynth_live.autoencoder import WaveNetAutoencoder
from nsynth_live.configs import ModelConfig, get_config, receptive_field
from nsynth_live.decoder import Conditioner, Decoder, DecoderStep, decoder_step
from nsynth_live.encoder import Encoder

F64 = torch.float64


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """On a 2-core machine shared with other work, a second thread mostly waits at barriers."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def paper() -> WaveNetAutoencoder:
    torch.manual_seed(0)
    return WaveNetAutoencoder(get_config("paper")).eval()


def network_input(batch: int, n: int, dtype=torch.float32) -> torch.Tensor:
    """Random mu-law samples in network scaling."""
    return ((torch.randint(0, 256, (batch, n)) - 128) / 128).to(dtype)


def expected_params(c: ModelConfig) -> int:
    """Weights + biases of every conv, counted from the architecture description."""
    w, ke = c.encoder_width, c.encoder_kernel
    encoder = (
        (ke * 1 * w + w)  # start conv, 1 -> W
        + c.encoder_layers * ((ke * w * w + w) + (w * w + w))  # dilated conv, 1x1 residual
        + (w * c.bottleneck + c.bottleneck)
    )
    r, s, k, n = c.residual, c.skip, c.decoder_kernel, c.decoder_layers
    cond = c.bottleneck + (128 if c.pitch_conditioning else 0)
    decoder = (
        (k * 1 * r + r)  # start conv
        + (r * s + s)  # skip start
        + n * ((k * r * 2 * r + 2 * r) + (cond * 2 * r + 2 * r) + (r * s + s))  # dilated, cond, skip
        + (n - 1) * (r * r + r)  # 1x1 residual: the last layer's would feed nothing
        + (s * s + s)  # out1
        + (cond * s + s)  # out1's conditioning
        + (s * 256 + 256)  # logits
        + 2 * c.excitation_harmonics * (n * 2 * r + s)  # excitation projection (no bias), if any
    )
    return encoder + decoder


# ----------------------------------------------------------------------------- configs


def test_paper_is_the_reference_h512_bo16():
    c = get_config("paper")
    assert (c.encoder_layers, c.encoder_width, c.encoder_kernel, c.bottleneck, c.hop) == (30, 128, 3, 16, 512)
    assert (c.decoder_layers, c.residual, c.skip, c.decoder_kernel) == (30, 512, 256, 3)
    assert c.decoder_dilations == tuple(2 ** (i % 10) for i in range(30)) == c.encoder_dilations
    assert c.pitch_conditioning and c.cond_width == 30 * 1024 + 256


def test_named_configs_differ_only_in_widths_layers_and_filters():
    shape_keys = {"name", "encoder_layers", "encoder_width", "encoder_kernel",
                  "decoder_layers", "residual", "skip", "decoder_kernel"}
    paper_family = ["paper", "live", "tiny"]
    rest = [{k: v for k, v in get_config(n).to_dict().items() if k not in shape_keys} for n in paper_family]
    assert all(r == rest[0] for r in rest) and rest[0]["excitation_harmonics"] == 0
    live = get_config("live")
    assert (live.decoder_layers, live.residual, live.skip, live.decoder_kernel) == (20, 32, 64, 2)
    # The excitation option sits beside `live`, never replacing the paper's conditioning.
    sine = get_config("live-sine").to_dict()
    assert {k: v for k, v in sine.items() if k not in ("name", "excitation_harmonics")} == {
        k: v for k, v in live.to_dict().items() if k not in ("name", "excitation_harmonics")}
    assert sine["excitation_harmonics"] > 0 and sine["pitch_conditioning"]


def test_config_round_trip():
    for name in configs.CONFIG_NAMES:
        c = get_config(name)
        assert ModelConfig.from_dict(c.to_dict()) == c


@pytest.mark.parametrize(
    "change, message",
    [
        ({"residual": 0}, "residual must be a positive integer"),
        ({"hop": 512.0}, "hop must be a positive integer"),
        ({"skip": True}, "skip must be a positive integer"),
        ({"decoder_kernel": 1}, "decoder_kernel must be at least 2"),
        ({"pitch_conditioning": 1}, "pitch_conditioning must be true or false"),
        ({"name": ""}, "name"),
        ({"extra": 1}, "unknown keys"),
    ],
)
def test_config_rejects_bad_values(change, message):
    with pytest.raises(ValueError, match=message):
        ModelConfig.from_dict({**get_config("tiny").to_dict(), **change})


def test_config_rejects_missing_keys_and_unknown_names():
    data = get_config("tiny").to_dict()
    del data["hop"]
    with pytest.raises(ValueError, match="missing keys.*hop"):
        ModelConfig.from_dict(data)
    with pytest.raises(ValueError, match="unknown model config 'huge'"):
        get_config("huge")


def test_receptive_fields():
    assert receptive_field(get_config("paper")) == 6141
    assert receptive_field(get_config("live")) == 2048
    assert receptive_field(get_config("tiny")) == 17
    # Cached past layer inputs per voice: the receptive field less the shift and start conv.
    assert configs.history_length(get_config("paper")) == 6141 - 1 - 2


def test_flops_per_sample_of_paper():
    # The hand count for L=30, R=512, S=256, k=3 (118.492 MFLOP per sample) less the
    # last layer's residual, which this model does not compute.
    assert configs.flops_per_sample(get_config("paper")) == 118_492_160 - 2 * 512 * 512


@pytest.mark.parametrize("name", ["tiny", "live", "paper", "live-no-pitch"])
def test_parameter_counts(name, paper):
    if name == "paper":
        cfg, model = paper.cfg, paper
    else:
        cfg = get_config(name.removesuffix("-no-pitch"))
        if name.endswith("-no-pitch"):
            cfg = dataclasses.replace(cfg, pitch_conditioning=False)
        model = WaveNetAutoencoder(cfg)
    count = sum(p.numel() for p in model.parameters())
    assert count == expected_params(cfg) == configs.param_count(cfg)
    assert sum(p.numel() for p in model.decoder.parameters()) == configs.decoder_param_count(cfg)
    if name == "paper":
        assert count == 65_506_320


# ----------------------------------------------------------------------------- causality


@pytest.mark.parametrize(
    "cfg",
    [
        get_config("tiny"),
        get_config("live"),
        # The receptive field depends on depth, filter length and dilations only: paper's
        # structure at narrow widths keeps the float64 backward pass over 6,149 samples cheap.
        dataclasses.replace(get_config("paper"), residual=4, skip=4),
    ],
    ids=["tiny", "live", "paper-structure"],
)
def test_logit_depends_on_exactly_the_receptive_field(cfg):
    """d logit[t] / d x[s] is nonzero exactly for t - RF <= s <= t - 1."""
    torch.manual_seed(1)
    decoder = Decoder(cfg).to(F64)
    rf = receptive_field(cfg)
    n = rf + 8
    t = n - 1
    x = network_input(1, n, F64).requires_grad_(True)
    embedding = torch.randn(1, cfg.bottleneck, math.ceil(n / cfg.hop), dtype=F64)
    logits = decoder(x, embedding, torch.tensor([60]))
    (grad,) = torch.autograd.grad(logits[0, :, t] @ torch.randn(256, dtype=F64), x)
    depends = grad[0].nonzero().flatten().tolist()
    assert depends == list(range(t - rf, t))


@pytest.mark.parametrize("name, dtype", [("live", F64), ("paper", torch.float32)])
def test_decoder_is_causal(name, dtype, paper):
    torch.manual_seed(2)
    decoder = paper.decoder if name == "paper" else Decoder(get_config(name)).to(dtype)
    n, t0 = 192, 100
    x = network_input(2, n, dtype)
    embedding = torch.randn(2, 16, 1, dtype=dtype)
    pitch = torch.tensor([40, 90])
    with torch.no_grad():
        before = decoder(x, embedding, pitch)
        x[:, t0] += 0.5
        after = decoder(x, embedding, pitch)
    change = (after - before).abs().amax(dim=(0, 1))
    assert change[: t0 + 1].max() <= 1e-6 * before.abs().max()  # x[t0] is only seen after t0
    assert (change[t0 + 1 : t0 + 4] > 1e-4 * before.abs().max()).all()


@pytest.mark.parametrize("name", ["live", "paper"])
def test_encoder_is_not_causal(name, paper):
    torch.manual_seed(3)
    encoder = paper.encoder if name == "paper" else Encoder(get_config(name))
    hop = encoder.hop
    x = network_input(1, 3 * hop)
    with torch.no_grad():
        before = encoder(x)
        x[:, hop + 5] += 0.5  # a sample of frame 1
        after = encoder(x)
    assert before.shape == (1, 16, 3)
    assert (after[0, :, 0] - before[0, :, 0]).abs().max() > 1e-5  # frame 0 sees later samples


def test_encoder_needs_whole_frames():
    encoder = Encoder(get_config("tiny"))
    with pytest.raises(ValueError, match="multiple of the hop 512"):
        encoder(network_input(1, 1000))


# ----------------------------------------------------------------------------- forward and loss


def test_paper_forward_is_finite_and_starts_near_uniform(paper):
    torch.manual_seed(4)
    audio = torch.randn(2, 512).clamp(-1, 1) * 0.3
    pitch = torch.tensor([48, 72])
    with torch.no_grad():
        embedding = paper.encode(audio)
        logits = paper(audio, pitch)
        nats, bits = paper.loss(audio, pitch)
    assert embedding.shape == (2, 16, 1) and torch.isfinite(embedding).all()
    assert logits.shape == (2, 256, 512) and torch.isfinite(logits).all()
    assert 1e-3 < logits.std() < 10  # 30 random residual layers neither vanish nor explode
    assert 7.5 < bits < 8.5 and math.isclose(float(nats), float(bits) * math.log(2), rel_tol=1e-6)


def test_gradients_reach_every_weight():
    # Every parameter must get a gradient: DistributedDataParallel refuses unused ones.
    torch.manual_seed(5)
    model = WaveNetAutoencoder(get_config("live"))
    nats, _ = model.loss(torch.rand(2, 1024) * 2 - 1, torch.tensor([30, 100]))
    nats.backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all() and p.grad.abs().max() > 0, name


def test_decode_logits_under_the_own_embedding_is_the_forward():
    torch.manual_seed(6)
    model = WaveNetAutoencoder(get_config("tiny"))
    audio = torch.rand(1, 1024) * 2 - 1
    pitch = torch.tensor([64])
    with torch.no_grad():
        assert torch.equal(model.decode_logits(audio, model.encode(audio), pitch), model(audio, pitch))


def test_pitch_is_used():
    torch.manual_seed(7)
    model = WaveNetAutoencoder(get_config("tiny"))
    audio = torch.rand(1, 512) * 2 - 1
    with torch.no_grad():
        assert not torch.allclose(model(audio, torch.tensor([60])), model(audio, torch.tensor([61])))


@pytest.mark.parametrize(
    "pitch, message",
    [
        (torch.tensor([128]), r"MIDI notes 0\.\.127, got 128"),
        (torch.tensor([-1]), r"MIDI notes 0\.\.127, got -1"),
        (torch.tensor([60.0]), "integer tensor"),
        (torch.tensor([60, 61]), r"shape \[1\]"),
        (None, "pitch-conditioned"),
    ],
)
def test_bad_pitches_are_refused(pitch, message):
    model = WaveNetAutoencoder(get_config("tiny"))
    with pytest.raises(ValueError, match=message):
        model(torch.zeros(1, 512), pitch)


def test_a_model_without_pitch_conditioning():
    model = WaveNetAutoencoder(dataclasses.replace(get_config("tiny"), pitch_conditioning=False))
    assert model(torch.zeros(1, 512)).shape == (1, 256, 512)
    with pytest.raises(ValueError, match="no pitch conditioning"):
        model(torch.zeros(1, 512), torch.tensor([60]))


def test_embedding_must_cover_the_input():
    decoder = Decoder(get_config("tiny"))
    with pytest.raises(ValueError, match="1 embedding frames of 512 samples do not cover samples 0..599"):
        decoder(torch.zeros(1, 600), torch.zeros(1, 16, 1), torch.tensor([60]))


# ----------------------------------------------------------------------------- export modules


def test_export_modules_compute_the_step_functions():
    torch.manual_seed(8)
    cfg = get_config("tiny")
    decoder = Decoder(cfg)
    k, n_layers, r = cfg.decoder_kernel, cfg.decoder_layers, cfg.residual
    embedding, pitch = torch.randn(2, 16, 3), torch.tensor([10, 120])
    cond = Conditioner(decoder)(embedding, pitch)
    assert cond.shape == (2, 3, cfg.cond_width)
    assert torch.equal(cond, decoder.condition(embedding, pitch))
    x_hist, taps = torch.randn(2, k), torch.randn(2, n_layers, (k - 1) * r)
    logits, columns = DecoderStep(decoder)(x_hist, taps, cond[:, 1])
    assert logits.shape == (2, 256) and columns.shape == (2, n_layers, r)
    ref = decoder_step(decoder.step_weights(), x_hist, taps, cond[:, 1])
    assert torch.equal(logits, ref[0]) and torch.equal(columns, ref[1])
    # The weights are buffers: they follow .to() and appear in the state dict.
    assert DecoderStep(decoder).to(F64).layers[0].gate_w.dtype == F64
    assert set(Conditioner(decoder).state_dict()) == {"embed_w", "pitch_w", "bias"}
