"""The maths inside the models: soft-argmax, SimDR's split and expectation, RepVGG folding,
cosine-normalised layers, channel shuffle, and the size of the ShuffleNetV2 backbones."""
from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest
import torch
from torch import nn

from edgepose.models import create_model
from edgepose.models.backbones import EfficientRep, RepVGGBlock, ShuffleNetV2
from edgepose.models.heads import SimDRHead
from edgepose.models.layers import channel_shuffle
from edgepose.models.ops import CosineLinear, Expectation1d, SoftArgmax2d, cell_centres


def _randomise_bn(module: nn.Module, seed: int = 0) -> None:
    """Non-trivial BN statistics and affine parameters, so folding them is actually tested."""
    g = torch.Generator().manual_seed(seed)
    for m in module.modules():
        if isinstance(m, nn.BatchNorm2d):
            n = m.num_features
            with torch.no_grad():
                m.running_mean.copy_(torch.randn(n, generator=g) * 0.5)
                m.running_var.copy_(torch.rand(n, generator=g) * 2 + 0.2)
                m.weight.copy_(torch.rand(n, generator=g) + 0.5)
                m.bias.copy_(torch.randn(n, generator=g) * 0.3)


# --- soft-argmax ------------------------------------------------------------------------
@pytest.mark.parametrize("h,w,row,col", [(8, 8, 2, 5), (32, 32, 0, 31), (10, 20, 9, 0), (64, 48, 33, 17)])
def test_soft_argmax_of_a_sharp_peak_is_the_peak_cell_centre(h, w, row, col):
    logits = torch.full((1, 1, h, w), -1e4)
    logits[0, 0, row, col] = 1e4
    coords, peak = SoftArgmax2d(1, h, w)(logits)
    assert coords[0, 0].tolist() == pytest.approx([(col + 0.5) / w, (row + 0.5) / h], abs=1e-6)
    assert peak.item() == pytest.approx(1.0)
    # The convention: pixel = normalised * input size lands in the centre of the peak's cell.
    stride_x, stride_y = 256 / w, 256 / h
    assert coords[0, 0, 0].item() * 256 == pytest.approx((col + 0.5) * stride_x, abs=1e-3)
    assert coords[0, 0, 1].item() * 256 == pytest.approx((row + 0.5) * stride_y, abs=1e-3)


def test_soft_argmax_is_the_expectation_of_the_softmax():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(2, 3, 6, 7, generator=g) * 3
    coords, peak = SoftArgmax2d(3, 6, 7)(logits)
    p = torch.softmax(logits.flatten(2), -1).reshape(2, 3, 6, 7).double()
    ys, xs = torch.meshgrid((torch.arange(6) + 0.5) / 6, (torch.arange(7) + 0.5) / 7, indexing="ij")
    expect = torch.stack(((p * xs).sum((2, 3)), (p * ys).sum((2, 3))), -1)
    assert torch.allclose(coords.double(), expect, atol=1e-6)
    assert torch.allclose(peak.double(), p.flatten(2).amax(-1), atol=1e-7)


def test_uniform_maps_decode_to_the_centre():
    coords, peak = SoftArgmax2d(2, 8, 8)(torch.zeros(1, 2, 8, 8))
    assert torch.allclose(coords, torch.full_like(coords, 0.5))
    assert torch.allclose(peak, torch.full_like(peak, 1 / 64))


def test_cell_centres():
    assert cell_centres(4).tolist() == [0.125, 0.375, 0.625, 0.875]


# --- SimDR ------------------------------------------------------------------------------
def test_simdr_split_and_expectation():
    """x logits are the first L_x outputs of the shared linear layer, y the rest; each decodes by
    softmax + expectation over its own bins."""
    torch.manual_seed(0)
    k, lx, ly = 3, 12, 20
    head = SimDRHead(8, k, (2, 2), bins=(lx, ly), deconv_channels=(16,), final="deconv").eval()
    x = torch.randn(2, 8, 2, 2)
    with torch.no_grad():
        lx_logits, ly_logits = head.logits(x)
        out = head(x)
        maps = head.trunk(x).reshape(2, k, -1)
        both = head.cls(maps)
    assert lx_logits.shape == (2, k, lx) and ly_logits.shape == (2, k, ly)
    assert torch.equal(lx_logits, both[..., :lx]) and torch.equal(ly_logits, both[..., lx:])
    ex = (torch.softmax(lx_logits, -1) * (torch.arange(lx) + 0.5) / lx).sum(-1)
    ey = (torch.softmax(ly_logits, -1) * (torch.arange(ly) + 0.5) / ly).sum(-1)
    assert torch.allclose(out["coords"], torch.stack((ex, ey), -1), atol=1e-6)
    peak = torch.minimum(torch.softmax(lx_logits, -1).amax(-1), torch.softmax(ly_logits, -1).amax(-1))
    assert torch.allclose(out["scores"], peak)


@pytest.mark.parametrize("bins,index", [(512, 0), (512, 300), (640, 639)])
def test_expectation_1d_of_one_hot_is_the_bin_centre(bins, index):
    logits = torch.full((1, 1, bins), -1e4)
    logits[..., index] = 1e4
    pos, peak = Expectation1d(bins)(logits)
    assert pos.item() == pytest.approx((index + 0.5) / bins, abs=1e-6)
    assert peak.item() == pytest.approx(1.0)


def test_simdr_bins_cover_the_input_at_split_ratio_2():
    model = create_model("simdr_320", deploy=True)
    assert model.head.bins == (640, 640)
    assert create_model("simdr", deploy=True).head.bins == (512, 512)


# --- cosine-normalised classifier -----------------------------------------------------------
def test_cosine_linear_is_scale_invariant_and_bounded_by_beta():
    torch.manual_seed(0)
    layer = CosineLinear(64, 10, beta=15.0)
    x = torch.randn(4, 3, 64)
    y = layer(x)
    for scale in (1e-3, 0.5, 7.0, 1e4):
        assert torch.allclose(layer(x * scale), y, atol=1e-4)
    assert y.abs().max() <= 15.0 + 1e-4
    # A row parallel to the input gives exactly beta.
    with torch.no_grad():
        layer.weight[0] = x[0, 0] * 3
    assert layer(x[:1, :1])[0, 0, 0].item() == pytest.approx(15.0, rel=1e-5)


def test_normalised_simdr_head_is_invariant_to_the_map_scale():
    """Cosine classifiers: scaling the final 1x1 conv (the maps) does not move the keypoints."""
    torch.manual_seed(0)
    model = create_model("simdr_320", deploy=True)
    x = torch.randn(1, 3, 320, 320)
    with torch.no_grad():
        ref = model(x)["coords"]
        model.head.trunk.final.weight.mul_(5.0)
        model.head.trunk.final.bias.mul_(5.0)
        assert torch.allclose(model(x)["coords"], ref, atol=1e-5)


# --- RepVGG re-parameterisation --------------------------------------------------------------
@pytest.mark.parametrize("cin,cout,stride", [(8, 8, 1), (8, 16, 1), (8, 16, 2), (3, 16, 2)])
def test_repvgg_block_folds_into_one_conv(cin, cout, stride):
    torch.manual_seed(0)
    block = RepVGGBlock(cin, cout, stride)
    _randomise_bn(block)
    block.eval()
    x = torch.randn(2, cin, 13, 11)
    with torch.no_grad():
        ref = block(x)
        block.switch_to_deploy()
        got = block(x)
    assert block.deployed and block.rbr_identity is None
    assert not [m for m in block.modules() if isinstance(m, nn.BatchNorm2d)]
    assert torch.allclose(got, ref, atol=1e-5), (got - ref).abs().max()
    assert (cin == cout and stride == 1) == (ref.shape == x.shape)


def test_efficientrep_deploy_is_plain_convs_with_the_same_output():
    torch.manual_seed(0)
    net = EfficientRep("n", out_features=("erblock3", "erblock5"))
    _randomise_bn(net)
    net.eval()
    x = torch.randn(1, 3, 128, 96)
    with torch.no_grad():
        ref = net(x)
        net.switch_to_deploy()
        got = net(x)
    for name in ref:
        rel = (got[name] - ref[name]).abs().max() / ref[name].abs().max()
        assert rel < 1e-5, (name, rel)
    convs = [m for m in net.modules() if isinstance(m, nn.Conv2d)]
    assert all(m.kernel_size == (3, 3) for m in convs if m.bias is not None)
    assert got["erblock5"].shape == (1, 256, 4, 3) and got["erblock3"].shape == (1, 64, 16, 12)


def test_efficientrep_n_channels_and_depths():
    net = EfficientRep("n")
    assert net.channels == {"erblock2": 32, "erblock3": 64, "erblock4": 128, "erblock5": 256}
    repvgg_per_block = [sum(isinstance(m, RepVGGBlock) for m in b.modules()) for b in net.blocks]
    assert repvgg_per_block == [1 + 2, 1 + 4, 1 + 6, 1 + 2]  # the s2 block + RepBlock(n)


def test_registry_model_deploys_with_the_same_output():
    """create_model(..., deploy=True) folds every RepVGG block; outputs are unchanged."""
    torch.manual_seed(0)
    model = create_model("efficientrep_n_320").eval()
    _randomise_bn(model.backbone, seed=1)
    x = torch.randn(2, 3, 320, 320)
    with torch.no_grad():
        ref = model(x)
        model.switch_to_deploy()
        got = model(x)
    assert not [m for m in model.modules() if isinstance(m, RepVGGBlock) and not m.deployed]
    for k in ref:
        assert torch.allclose(got[k], ref[k], atol=1e-5), k


# --- ShuffleNetV2 -------------------------------------------------------------------------
def _params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


@pytest.mark.parametrize("width,features_params", [
    # torchvision's shufflenet_v2_x*_* totals minus their 1000-class FC (in*1000 + 1000):
    ("x0.5", 1_366_792 - 1_025_000),
    ("x1.0", 2_278_604 - 1_025_000),
    ("x1.5", 3_503_624 - 1_025_000),
    ("x2.0", 7_393_996 - 2_049_000),
])
def test_shufflenetv2_parameter_counts(width, features_params):
    assert _params(ShuffleNetV2(width, out_features=("conv5",))) == features_params


def test_shufflenetv2_maps_and_strides():
    net = ShuffleNetV2("x1.0", out_features=("stage2", "stage3", "stage4", "conv5")).eval()
    with torch.no_grad():
        out = net(torch.randn(1, 3, 256, 192))
    assert {k: tuple(v.shape) for k, v in out.items()} == {
        "stage2": (1, 116, 32, 24), "stage3": (1, 232, 16, 12), "stage4": (1, 464, 8, 6), "conv5": (1, 1024, 8, 6)}
    # Stage 4 only: conv5 is not built.
    assert ShuffleNetV2("x1.0", out_features=("stage4",)).conv5 is None


def test_shufflenetv2_fixed_input_size_gives_the_same_result():
    torch.manual_seed(0)
    free = ShuffleNetV2("x0.5").eval()
    fixed = ShuffleNetV2("x0.5", input_size=(96, 64)).eval()
    fixed.load_state_dict(free.state_dict())
    x = torch.randn(2, 3, 64, 96)
    with torch.no_grad():
        assert torch.equal(free(x)["conv5"], fixed(x)["conv5"])
        with pytest.raises(RuntimeError):
            fixed(torch.randn(1, 3, 96, 96))  # not the size it was built for


# --- channel shuffle ----------------------------------------------------------------------
@pytest.mark.parametrize("groups,channels", [(2, 8), (2, 116), (4, 12), (3, 9)])
def test_channel_shuffle_permutation(groups, channels):
    x = torch.arange(channels, dtype=torch.float32).reshape(1, channels, 1, 1).expand(2, channels, 3, 4)
    out = channel_shuffle(x, groups, channels=channels)
    per = channels // groups
    expect = [j * per + i for i in range(per) for j in range(groups)]  # group j's channel i -> i*g + j
    assert out[0, :, 0, 0].tolist() == expect
    assert torch.equal(out, channel_shuffle(x, groups, channels=channels, size=(3, 4)))


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # the legacy exporter's notice
@pytest.mark.parametrize("size", [None, (5, 6)])
def test_channel_shuffle_onnx_runs_at_any_batch(tmp_path, size):
    class Shuffle(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 8, 1)

        def forward(self, x):
            return channel_shuffle(self.conv(x), 2, channels=8, size=size)

    model = Shuffle().eval()
    path = tmp_path / "shuffle.onnx"
    torch.onnx.export(model, (torch.randn(1, 3, 5, 6),), str(path), dynamo=False, opset_version=17,
                      input_names=["input"], output_names=["out"],
                      dynamic_axes={"input": {0: "batch"}, "out": {0: "batch"}})
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    for batch in (1, 4):
        x = np.random.default_rng(batch).standard_normal((batch, 3, 5, 6)).astype(np.float32)
        got = sess.run(None, {"input": x})[0]
        with torch.no_grad():
            ref = model(torch.from_numpy(x)).numpy()
        assert got.shape == (batch, 8, 5, 6)
        np.testing.assert_allclose(got, ref, atol=1e-5)
