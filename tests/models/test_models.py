"""Model registry and architectures: shapes, gradients, padding, weights, counts, errors.

Everything is randomly initialised (``encoder_weights=None``); nothing downloads: the download tests
replace the download functions with ones that fail, as they do without internet.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from terraseg import models
from terraseg.models.complexity import count_flops
from terraseg.errors import ModelError

torch.set_num_threads(1)

OWN = ["deeplabv3plus", "unet", "fcn32s", "fcn8s", "resunet34", "resuneta_d6", "resuneta_d7",
       "resuneta_d6_multitask"]
SMP_ARCHS = ["smp:Unet", "smp:UnetPlusPlus", "smp:FPN", "smp:PSPNet", "smp:DeepLabV3", "smp:DeepLabV3Plus",
             "smp:Linknet", "smp:MAnet", "smp:PAN", "smp:UPerNet", "smp:Segformer", "smp:DPT"]


def _loss(out, target: torch.Tensor) -> torch.Tensor:
    if isinstance(out, models.MultitaskOutput):
        k = out.segmentation.shape[1]
        onehot = F.one_hot(target, k).permute(0, 3, 1, 2).float()
        return (F.nll_loss(torch.log(out.segmentation.clamp_min(1e-7)), target)
                + F.nll_loss(torch.log(out.boundary.clamp_min(1e-7)), target)
                + F.mse_loss(out.distance, onehot) + F.mse_loss(out.color, torch.rand_like(out.color)))
    return F.cross_entropy(out, target)


def _check_forward_backward(model, bands: int, classes: int, h: int, w: int) -> None:
    torch.manual_seed(0)
    model.train()
    x = torch.randn(2, bands, h, w, requires_grad=True)
    out = model(x)
    probs = models.probabilities(out)
    assert probs.shape == (2, classes, h, w)
    assert torch.allclose(probs.sum(1), torch.ones(2, h, w), atol=1e-4)
    target = torch.randint(0, classes, (2, h, w))
    _loss(out, target).backward()
    assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    with_grad = [g for g in grads if g is not None]
    # (PSPNet uses only 3 of the encoder's 5 stages, so not every parameter takes part)
    assert len(with_grad) >= 0.5 * len(grads), f"only {len(with_grad)} of {len(grads)} parameters got gradients"
    assert all(torch.isfinite(g).all() for g in with_grad)


# Every registered architecture with 3 and with 4 bands. The paper-size configuration runs once (4
# bands); for the other band count the large ones (FCN's 134 M-parameter VGG-16, ResUNet-a d7 with
# 185 M) use their width options so the file stays fast on 2 shared cores.
SLIM = {"fcn32s": {"fc_channels": 256}, "fcn8s": {"fc_channels": 256}, "resuneta_d7": {"base_channels": 8},
        "resuneta_d6": {"base_channels": 16}, "resuneta_d6_multitask": {"base_channels": 16},
        "unet": {"base_channels": 16, "depth": 3}}
OWN_CASES = [(name, {}, 4) for name in OWN] + [(name, SLIM.get(name, {}), 3) for name in OWN]


@pytest.mark.parametrize("name,options,bands", OWN_CASES,
                         ids=[f"{c[0]}-{c[2]}bands{'-slim' if c[1] else ''}" for c in OWN_CASES])
def test_registered_forward_backward(name, options, bands):
    model = models.build(name, in_channels=bands, num_classes=5, **options)
    _check_forward_backward(model, bands, 5, 67, 61)


SMP_CASES = [
    ("smp:Unet", {"encoder_name": "resnet18"}),
    ("smp:FPN", {"encoder_name": "resnet18"}),
    ("smp:PSPNet", {"encoder_name": "resnet18"}),
    ("smp:Segformer", {"encoder_name": "mit_b0"}),
    ("smp:UnetPlusPlus", {"encoder_name": "resnet18"}),
    ("smp:DeepLabV3Plus", {"encoder_name": "resnet18", "encoder_output_stride": 8}),
    ("smp:Linknet", {"encoder_name": "tu-mobilenetv3_small_050"}),
    ("smp:PAN", {"encoder_name": "resnet18"}),
    ("smp:UPerNet", {"encoder_name": "resnet18"}),
]


@pytest.mark.parametrize("bands", [3, 4])
@pytest.mark.parametrize("name,options", SMP_CASES, ids=[c[0] for c in SMP_CASES])
def test_smp_forward_backward(name, options, bands):
    model = models.build(name, in_channels=bands, num_classes=4, **options)
    _check_forward_backward(model, bands, 4, 70, 67)


def test_deeplabv3plus_resnet101_os8_single_pass():
    model = models.build("deeplabv3plus", in_channels=4, num_classes=3, encoder_name="resnet101", output_stride=8)
    assert model.output_stride == 8
    _check_forward_backward(model, 4, 3, 64, 59)


@pytest.mark.parametrize("size", [(1, 1), (17, 95), (32, 32), (100, 33)])
def test_any_size_gives_same_size(size):
    model = models.build("resuneta_d6", in_channels=3, num_classes=3, base_channels=4).eval()
    with torch.no_grad():
        out = model(torch.randn(1, 3, *size))
    assert out.shape == (1, 3, *size)


def test_padding_is_invisible_on_stride_multiples():
    """On a stride multiple nothing is padded: the wrapper equals the bare network."""
    model = models.build("unet", in_channels=3, num_classes=4, base_channels=4, depth=3).eval()
    x = torch.randn(1, 3, 48, 40)
    with torch.no_grad():
        assert torch.equal(model(x), model.forward_padded(x))
        # and an odd size equals the bare network on the edge-padded input, cropped
        y = torch.randn(1, 3, 45, 37)
        padded = F.pad(y, (0, 3, 0, 3), mode="replicate")
        assert torch.allclose(model(y), model.forward_padded(padded)[..., :45, :37])


@pytest.mark.parametrize("mode", ["reflect", "constant"])
def test_pad_modes(mode):
    model = models.build("smp:FPN", in_channels=3, num_classes=2, encoder_name="resnet18", pad_mode=mode).eval()
    with torch.no_grad():
        assert model(torch.randn(1, 3, 50, 45)).shape == (1, 2, 50, 45)


@pytest.mark.parametrize("name,options", [("unet", {"base_channels": 4, "depth": 2}),
                                          ("resuneta_d6_multitask", {"base_channels": 4}),
                                          ("fcn8s", {"fc_channels": 32}),
                                          ("smp:Unet", {"encoder_name": "resnet18"})])
def test_state_dict_roundtrip_strict(tmp_path, name, options):
    """Rebuilding from name + options and loading strictly reproduces the outputs (bundle path)."""
    from safetensors.torch import load_file, save_file

    torch.manual_seed(1)
    model = models.build(name, in_channels=4, num_classes=3, **options).eval()
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(tmp_path / "m.safetensors"))
    torch.manual_seed(2)
    again = models.build(name, in_channels=4, num_classes=3, **options)
    again.load_state_dict(load_file(str(tmp_path / "m.safetensors")), strict=True)
    again.eval()
    x = torch.randn(1, 4, 37, 41)
    with torch.no_grad():
        assert torch.allclose(models.probabilities(model(x)), models.probabilities(again(x)), atol=1e-6)


def test_multitask_heads_shapes_and_ranges():
    model = models.build("resuneta_d6_multitask", in_channels=4, num_classes=6, base_channels=8).eval()
    with torch.no_grad():
        out = model(torch.randn(2, 4, 45, 70) * 3)
    assert isinstance(out, models.MultitaskOutput)
    assert out._fields == ("segmentation", "boundary", "distance", "color")
    assert out.segmentation.shape == out.boundary.shape == out.distance.shape == (2, 6, 45, 70)
    assert out.color.shape == (2, 3, 45, 70)
    for t in out:
        assert torch.isfinite(t).all()
    for probs in (out.segmentation, out.boundary):
        assert probs.min() >= 0 and probs.max() <= 1
        assert torch.allclose(probs.sum(1), torch.ones(2, 45, 70), atol=1e-5)
    for t in (out.distance, out.color):
        assert t.min() >= 0 and t.max() <= 1
    # distance is per class, not a distribution over classes
    assert not torch.allclose(out.distance.sum(1), torch.ones(2, 45, 70), atol=1e-2)
    assert models.probabilities(out) is out.segmentation


def test_multitask_sigmoid_boundary_option():
    model = models.build("resuneta_d6_multitask", 3, 4, base_channels=4, boundary_activation="sigmoid").eval()
    with torch.no_grad():
        out = model(torch.randn(1, 3, 40, 36))
    assert out.boundary.shape == (1, 4, 40, 36)
    assert out.boundary.min() >= 0 and out.boundary.max() <= 1
    assert not torch.allclose(out.boundary.sum(1), torch.ones(1, 40, 36), atol=1e-3)
    assert torch.allclose(out.segmentation.sum(1), torch.ones(1, 40, 36), atol=1e-5)
    with pytest.raises(ModelError, match="boundary_activation"):
        models.build("resuneta_d6_multitask", 3, 4, base_channels=4, boundary_activation="relu")


def test_probabilities_softmax():
    logits = torch.randn(2, 5, 7, 9)
    p = models.probabilities(logits)
    assert torch.allclose(p, torch.softmax(logits, 1))


def test_available_and_case_insensitive():
    names = models.available()
    for n in OWN + SMP_ARCHS:
        assert n in names
    a = models.build("UNet", in_channels=3, num_classes=2, base_channels=4, depth=2)
    b = models.build("smp:fpn", in_channels=3, num_classes=2, encoder_name="resnet18")
    c = models.build("SMP:DeepLabV3PLUS", in_channels=3, num_classes=2, encoder_name="resnet18")
    assert a.output_stride == 4 and b.model.__class__.__name__ == "FPN"
    assert c.model.__class__.__name__ == "DeepLabV3Plus"


@pytest.mark.parametrize("call,needle", [
    (lambda: models.build("segnet", 3, 2), "resuneta_d6_multitask"),
    (lambda: models.build("smp:SegNet", 3, 2), "smp:UnetPlusPlus"),
    (lambda: models.build("unet", 3, 2, widht=3), "base_channels"),
    (lambda: models.build("smp:Unet", 3, 2, encoder_name="resnet18", decoder_chanels=(8,)), "decoder_channels"),
    (lambda: models.build("smp:Unet", 3, 2, encoder_name="resnet-18"), "resnet18"),
    (lambda: models.build("smp:Unet", 3, 2, encoder_name="tu-no_such_net"), "no_such_net"),
    (lambda: models.build("deeplabv3plus", 3, 2, output_stride=12), "8 or 16"),
    (lambda: models.build("unet", 3, 2, encoder_weights="imagenet"), "from scratch"),
    (lambda: models.build("unet", 3, 2, pad_mode="circular"), "replicate"),
    (lambda: models.build("unet", 3, 2, base_channels="64"), "positive integer"),
    (lambda: models.build("resuneta_d6", 3, 2, base_channels=0), "positive integer"),
    (lambda: models.build("resunet34", 3, 2, encoder_weights="/nonexistent/w.pth"), "not found"),
])
def test_errors_name_what_exists(call, needle):
    with pytest.raises(ModelError) as info:
        call()
    assert needle in str(info.value)


def test_no_weights_options_are_harmless():
    model = models.build("unet", 3, 2, base_channels=4, depth=2, encoder_weights=None, pretrained=False)
    assert model.output_stride == 4


@pytest.mark.parametrize("bins", [1, 2, 3, 6])
def test_grid_pool_equals_adaptive_pooling_on_even_sizes(bins):
    from terraseg.models.base import grid_pool

    x = torch.randn(2, 3, 12, 18)
    assert torch.allclose(grid_pool(x, bins, "mean"), F.adaptive_avg_pool2d(x, bins), atol=1e-6)
    assert torch.equal(grid_pool(x, bins, "max"), F.adaptive_max_pool2d(x, bins))
    odd = grid_pool(torch.randn(1, 2, 7, 5), bins, "max")
    assert odd.shape == (1, 2, bins, bins)


def test_resuneta_psp_pooling_blocks():
    from terraseg.models.resuneta.blocks import block_max_pool

    x = torch.arange(64.0).reshape(1, 1, 8, 8)
    y = block_max_pool(x, 2)
    assert y.shape == x.shape
    assert y[0, 0, 0, 0] == 27 and y[0, 0, 0, 7] == 31 and y[0, 0, 7, 0] == 59 and y[0, 0, 7, 7] == 63
    assert torch.equal(block_max_pool(x, 1), torch.full_like(x, 63))
    assert block_max_pool(torch.randn(1, 2, 3, 5), 8).shape == (1, 2, 3, 5)


def test_smp_pyramid_pooling_is_export_friendly():
    """PSPNet/UPerNet adaptive pooling is swapped for grid pooling (same keys, same result on even maps)."""
    import segmentation_models_pytorch as smp

    from terraseg.models.base import GridAvgPool2d

    model = models.build("smp:PSPNet", 3, 4, encoder_name="resnet18").eval()
    pools = [m for m in model.modules() if isinstance(m, GridAvgPool2d)]
    assert sorted(p.output_size for p in pools) == [1, 2, 3, 6]
    torch.manual_seed(0)
    ref = smp.PSPNet("resnet18", encoder_weights=None, classes=4).eval()
    ref.load_state_dict({k[len("model."):]: v for k, v in model.state_dict().items()}, strict=True)
    x = torch.randn(1, 3, 384, 384)  # stride-8 map of 48 x 48: divisible by 1, 2, 3, 6
    with torch.no_grad():
        assert torch.allclose(model(x), ref(x), atol=1e-5)


# ----------------------------------------------------------------------------------------------- groups

@pytest.mark.parametrize("name,options", [("unet", {"base_channels": 4, "depth": 2}),
                                          ("resuneta_d6_multitask", {"base_channels": 4}),
                                          ("smp:Unet", {"encoder_name": "resnet18"}),
                                          ("deeplabv3plus", {"encoder_name": "resnet18"})])
def test_param_groups_partition(name, options):
    model = models.build(name, 3, 4, **options)
    enc, rest = models.param_groups(model)
    ids_e, ids_r = {id(p) for p in enc}, {id(p) for p in rest}
    assert enc and rest and not ids_e & ids_r
    assert ids_e | ids_r == {id(p) for p in model.parameters()}
    if name.startswith("smp") or name == "deeplabv3plus":
        assert ids_e == {id(p) for p in model.model.encoder.parameters()}
    # usable for a 10x head learning rate
    opt = torch.optim.SGD([{"params": enc, "lr": 0.01}, {"params": rest, "lr": 0.1}])
    assert [g["lr"] for g in opt.param_groups] == [0.01, 0.1]


def test_param_groups_fcn_encoder_is_vgg():
    model = models.build("fcn8s", 3, 4, fc_channels=64)
    enc, rest = models.param_groups(model)
    vgg = sum(p.numel() for p in enc)
    assert vgg == 14_714_688 + 64 * 512 * 49 + 64 + 64 * 64 + 64  # VGG-16 convs + fc6 + fc7
    assert sum(p.numel() for p in rest) < 10_000
    params, _ = count_flops("fcn32s", size=64)
    assert 134e6 < params < 135e6  # the paper's FCN-32s: VGG-16 with 4096-wide fc6/fc7


def test_param_groups_rejects_foreign_module():
    with pytest.raises(ModelError):
        models.param_groups(torch.nn.Linear(2, 2))


# ----------------------------------------------------------------------------------------------- counts

def test_flops_deeplabv3plus_r50_reference():
    params, flops = count_flops("smp:DeepLabV3Plus", size=512, num_classes=7, encoder_name="resnet50")
    assert abs(flops / 1e9 - 73.2) / 73.2 < 0.02
    same = count_flops("deeplabv3plus", size=512, num_classes=7)
    assert same == (params, flops)


def test_count_instance_matches_name_and_leaves_model_alone():
    model = models.build("unet", 4, 3, base_channels=8, depth=3)
    by_model = count_flops(model, size=64)
    by_name = count_flops("unet", size=64, in_channels=4, num_classes=3, base_channels=8, depth=3)
    assert by_model == by_name
    assert next(model.parameters()).device.type == "cpu"
    # hand count of the first 3x3 conv alone: 2 * 64*64 * 8 * 4 * 9 FLOPs; total is larger
    assert by_name[1] > 2 * 64 * 64 * 8 * 4 * 9
    assert by_name[0] == sum(p.numel() for p in model.parameters())


def test_count_scales_with_area():
    _, f256 = count_flops("resunet34", size=256)
    _, f512 = count_flops("resunet34", size=512)
    assert math.isclose(f512 / f256, 4.0, rel_tol=0.01)


# ----------------------------------------------------------------------------------------------- weights

def test_local_safetensors_encoder_weights(tmp_path):
    import segmentation_models_pytorch as smp
    from safetensors.torch import save_file

    torch.manual_seed(3)
    source = smp.Unet("resnet18", encoder_weights=None).encoder
    path = tmp_path / "resnet18.safetensors"
    save_file({k: v.contiguous() for k, v in source.state_dict().items()}, str(path))
    model = models.build("smp:Unet", 3, 2, encoder_name="resnet18", encoder_weights=str(path))
    for k, v in source.state_dict().items():
        assert torch.equal(model.model.encoder.state_dict()[k], v), k


def test_local_pth_weights_adapt_first_conv_to_4_bands(tmp_path):
    import segmentation_models_pytorch as smp

    torch.manual_seed(4)
    source = smp.Unet("resnet18", encoder_weights=None).encoder
    state = {f"model.encoder.{k}": v for k, v in source.state_dict().items()}  # a full-model checkpoint
    state["model.segmentation_head.0.weight"] = torch.zeros(2, 16, 3, 3)
    path = tmp_path / "ckpt.pth"
    torch.save({"state_dict": state}, path)
    model = models.build("smp:FPN", 4, 2, encoder_name="resnet18", pretrained=str(path))
    w_src = source.conv1.weight
    w = model.model.encoder.conv1.weight
    assert w.shape == (64, 4, 7, 7)
    assert torch.allclose(w[:, 3], w_src[:, 0] * 3 / 4) and torch.allclose(w[:, 1], w_src[:, 1] * 3 / 4)
    assert torch.equal(model.model.encoder.layer4[1].conv2.weight, source.layer4[1].conv2.weight)


def test_local_vgg_weights_for_fcn(tmp_path):
    """A torchvision-format VGG-16 checkpoint: convs copied, classifier Linear layers reshaped into
    fc6/fc7 (a narrow 64-wide classifier keeps the file small; the real one is 4096 wide)."""
    from torchvision.models.vgg import cfgs, make_layers

    torch.manual_seed(5)
    state = {f"features.{k}": v for k, v in make_layers(cfgs["D"]).state_dict().items()}
    state.update({"classifier.0.weight": torch.randn(64, 512 * 7 * 7), "classifier.0.bias": torch.randn(64),
                  "classifier.3.weight": torch.randn(64, 64), "classifier.3.bias": torch.randn(64),
                  "classifier.6.weight": torch.randn(1000, 64), "classifier.6.bias": torch.randn(1000)})
    path = tmp_path / "vgg16.pth"
    torch.save(state, path)
    model = models.build("fcn32s", 3, 4, pretrained=str(path), fc_channels=64)
    assert torch.equal(model.features[28].weight, state["features.28.weight"])
    assert torch.equal(model.fc6.weight.flatten(1), state["classifier.0.weight"])
    assert torch.equal(model.fc7.weight.flatten(1), state["classifier.3.weight"])


def test_wrong_local_weights_file(tmp_path):
    from safetensors.torch import save_file

    path = tmp_path / "other.safetensors"
    save_file({"foo.weight": torch.zeros(3, 3)}, str(path))
    with pytest.raises(ModelError, match="does not match the encoder"):
        models.build("resunet34", 3, 2, encoder_weights=str(path))
    bad = tmp_path / "garbage.pth"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(ModelError, match="cannot read weights"):
        models.build("resunet34", 3, 2, encoder_weights=str(bad))


def test_download_failure_says_how_to_use_a_local_file(monkeypatch):
    import segmentation_models_pytorch.encoders as enc

    def offline(*args, **kwargs):
        raise OSError("We couldn't connect to 'https://huggingface.co' to load the files (offline)")

    monkeypatch.setattr(enc, "hf_hub_download", offline)
    with pytest.raises(ModelError) as info:
        models.build("resunet34", 3, 2, encoder_weights="imagenet")
    msg = str(info.value)
    assert "could not download" in msg and "encoder_weights=/path/to/file.safetensors" in msg
    assert "\n" not in msg
    with pytest.raises(ModelError, match="encoder_weights=/path/to/file"):
        models.build("deeplabv3plus", 3, 2, pretrained=True)


def test_fcn_download_failure(monkeypatch):
    import torchvision.models._api as api

    def offline(*args, **kwargs):
        raise OSError("<urlopen error [Errno -3] Temporary failure in name resolution>")

    monkeypatch.setattr(api, "load_state_dict_from_url", offline)
    with pytest.raises(ModelError, match="encoder_weights=/path/to/file"):
        models.build("fcn8s", 3, 2, pretrained=True, fc_channels=64)
