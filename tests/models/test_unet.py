"""U-Net: shapes for any image size, config checks, memory formats, precision, training."""

from __future__ import annotations

import dataclasses
import json

import pytest
import torch
import torch.nn.functional as F  # noqa: N812 (the conventional alias)
from torch import nn

from waymo_unet.models import (
    DoubleConv,
    Down,
    OutConv,
    UNet,
    UNetConfig,
    Up,
    build_unet,
    count_parameters,
)


def tiny(**overrides: object) -> UNetConfig:
    """A U-Net config small enough for a 2-core CI machine."""
    settings: dict[str, object] = {"num_classes": 5, "base_channels": 4, "depth": 3}
    settings.update(overrides)
    return UNetConfig(**settings)  # type: ignore[arg-type]


def seeded_model(config: UNetConfig, seed: int = 0) -> UNet:
    torch.manual_seed(seed)
    return build_unet(config)


# --- shapes -----------------------------------------------------------------------------


@pytest.mark.parametrize("bilinear", [True, False])
@pytest.mark.parametrize(
    ("height", "width"), [(37, 53), (44, 96), (32, 32), (17, 8), (1, 1), (1, 30)]
)
def test_logits_match_input_size_for_any_size(bilinear: bool, height: int, width: int) -> None:
    model = seeded_model(tiny(bilinear=bilinear)).eval()
    with torch.inference_mode():
        logits = model(torch.randn(2, 3, height, width))
    assert logits.shape == (2, 5, height, width)


@pytest.mark.parametrize("num_classes", [1, 2, 12, 29])
@pytest.mark.parametrize("bilinear", [True, False])
def test_logits_have_one_channel_per_class(num_classes: int, bilinear: bool) -> None:
    model = seeded_model(tiny(num_classes=num_classes, depth=2, bilinear=bilinear)).eval()
    with torch.inference_mode():
        logits = model(torch.randn(1, 3, 21, 22))
    assert logits.shape == (1, num_classes, 21, 22)


def test_other_input_channel_counts_work() -> None:
    model = seeded_model(tiny(in_channels=1, depth=2)).eval()
    with torch.inference_mode():
        assert model(torch.randn(1, 1, 9, 10)).shape == (1, 5, 9, 10)


def test_odd_size_is_the_padded_run_cropped() -> None:
    """Internal zero padding to a multiple of 2**depth, then a crop, nothing else."""
    model = seeded_model(tiny()).eval()
    x = torch.randn(1, 3, 37, 53)
    with torch.inference_mode():
        direct = model(x)
        padded = model(F.pad(x, (0, 3, 0, 3)))[:, :, :37, :53]  # 40 x 56: multiples of 8
    torch.testing.assert_close(direct, padded)


@pytest.mark.parametrize("shape", [(3, 16, 16), (2, 2, 16, 16), (1, 3, 2, 16, 16)])
def test_wrong_input_shape_is_a_clear_error(shape: tuple[int, ...]) -> None:
    model = seeded_model(tiny(depth=2)).eval()
    with pytest.raises(ValueError, match=r"expected input \[N, 3, H, W\]"):
        model(torch.randn(*shape))


# --- blocks -----------------------------------------------------------------------------


def test_blocks_have_the_documented_shapes_and_no_conv_bias_before_batchnorm() -> None:
    x = torch.randn(2, 4, 8, 12)
    double = DoubleConv(4, 6, mid_channels=5)
    assert double(x).shape == (2, 6, 8, 12)
    convs = [m for m in double.modules() if isinstance(m, nn.Conv2d)]
    assert [(c.in_channels, c.out_channels) for c in convs] == [(4, 5), (5, 6)]
    assert all(c.bias is None for c in convs)
    assert Down(4, 8)(x).shape == (2, 8, 4, 6)
    skip = torch.randn(2, 4, 16, 24)
    assert Up(8, 3, bilinear=True)(x, skip).shape == (2, 3, 16, 24)  # 4 up + 4 skip = 8
    assert Up(8, 3, bilinear=False)(torch.randn(2, 8, 8, 12), skip).shape == (2, 3, 16, 24)
    out = OutConv(4, 7)
    assert out(x).shape == (2, 7, 8, 12)
    assert out.conv.bias is not None


def test_init_is_kaiming_with_unit_batchnorm() -> None:
    model = seeded_model(tiny(base_channels=8))
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            assert torch.all(module.weight == 1)
            assert torch.all(module.bias == 0)
        elif isinstance(module, nn.Conv2d) and module.bias is not None:
            assert torch.all(module.bias == 0)
    conv = model.inc.block[0]
    fan_out = conv.out_channels * conv.kernel_size[0] * conv.kernel_size[1]
    expected_std = (2.0 / fan_out) ** 0.5
    assert conv.weight.std().item() == pytest.approx(expected_std, rel=0.25)


# --- config -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"num_classes": 0}, "num_classes"),
        ({"num_classes": True}, "num_classes"),
        ({"num_classes": 2.0}, "num_classes"),
        ({"in_channels": 0}, "in_channels"),
        ({"base_channels": 0}, "base_channels"),
        ({"depth": 0}, "depth"),
        ({"depth": -1}, "depth"),
        ({"bilinear": 1}, "bilinear"),
        ({"dropout": -0.1}, "dropout"),
        ({"dropout": 1.0}, "dropout"),
        ({"dropout": float("nan")}, "dropout"),
        ({"dropout": "0.1"}, "dropout"),
    ],
)
def test_config_rejects_bad_values(overrides: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        tiny(**overrides)


def test_config_defaults_and_is_frozen() -> None:
    config = UNetConfig(num_classes=12)
    assert (config.in_channels, config.base_channels, config.depth) == (3, 16, 4)
    assert config.bilinear is True
    assert config.dropout == 0.0
    assert config.size_multiple == 16
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.depth = 3  # type: ignore[misc]


def test_config_round_trips_through_json() -> None:
    config = UNetConfig(
        num_classes=12, in_channels=4, base_channels=16, depth=3, bilinear=False, dropout=0.2
    )
    stored = json.loads(json.dumps(config.to_dict()))
    assert stored == {
        "num_classes": 12,
        "in_channels": 4,
        "base_channels": 16,
        "depth": 3,
        "bilinear": False,
        "dropout": 0.2,
    }
    assert UNetConfig.from_dict(stored) == config


def test_config_from_dict_fills_defaults_and_stores_dropout_as_float() -> None:
    config = UNetConfig.from_dict({"num_classes": 3, "dropout": 0})
    assert config == UNetConfig(num_classes=3)
    assert isinstance(config.to_dict()["dropout"], float)


def test_config_from_dict_rejects_unknown_and_missing_keys() -> None:
    """A checkpoint's config is named as such, not as a parameters file."""
    with pytest.raises(ValueError, match=r"unknown key unet_config\.n_classes=3.*model checkpoint"):
        UNetConfig.from_dict({"num_classes": 3, "n_classes": 3})
    with pytest.raises(ValueError, match=r"missing key unet_config\.num_classes \(see the"):
        UNetConfig.from_dict({"depth": 3})
    with pytest.raises(ValueError, match=r"unet_config\.depth must be an integer, got '3'"):
        UNetConfig.from_dict({"num_classes": 3, "depth": "3"})
    with pytest.raises(ValueError, match=r"^(?!.*parameters_training).*model checkpoint"):
        UNetConfig.from_dict({"num_classes": 3, "depth": 0})


def test_config_from_params_takes_the_class_count_from_the_catalogue() -> None:
    config = UNetConfig.from_params({"base_channels": 4, "depth": 2, "dropout": 0}, num_classes=5)
    assert config == UNetConfig(num_classes=5, base_channels=4, depth=2)


@pytest.mark.parametrize(
    ("params", "message"),
    [
        (
            {"depht": 2},
            r"unknown key training\.model\.depht=2; did you mean training\.model\.depth\?",
        ),
        ({"dropout": "abc"}, r"training\.model\.dropout must be a number, got 'abc'"),
        ({"bilinear": 1}, r"training\.model\.bilinear must be true or false, got 1"),
        ({"num_classes": 3}, r"training\.model\.num_classes=3 is not a setting"),
        ({"depth": 0}, r"training\.model .*depth must be an int >= 1, got 0"),
    ],
)
def test_config_from_params_names_a_bad_key_and_its_file(
    params: dict[str, object], message: str
) -> None:
    with pytest.raises(ValueError, match=message) as error:
        UNetConfig.from_params(params, num_classes=3)
    assert "conf/base/parameters_training.yml" in str(error.value)


def test_model_keeps_its_config() -> None:
    config = tiny()
    assert build_unet(config).config is config


# --- memory format and precision --------------------------------------------------------


@pytest.mark.parametrize("bilinear", [True, False])
def test_channels_last_gives_the_same_logits(bilinear: bool) -> None:
    model = seeded_model(tiny(bilinear=bilinear)).eval()
    x = torch.randn(2, 3, 37, 53)
    with torch.inference_mode():
        expected = model(x)
        model = model.to(memory_format=torch.channels_last)
        got = model(x.to(memory_format=torch.channels_last))
    assert got.shape == expected.shape
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("bilinear", [True, False])
def test_bf16_autocast_on_cpu_gives_finite_logits(bilinear: bool) -> None:
    model = seeded_model(tiny(bilinear=bilinear))
    x = torch.randn(2, 3, 37, 53)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        logits = model(x)
        loss = F.cross_entropy(logits, torch.randint(0, 5, (2, 37, 53)))
    loss.backward()
    assert logits.shape == (2, 5, 37, 53)
    assert logits.dtype == torch.bfloat16
    assert torch.isfinite(logits).all()
    assert torch.isfinite(model.inc.block[0].weight.grad).all()


# --- training behaviour -----------------------------------------------------------------


@pytest.mark.parametrize("bilinear", [True, False])
def test_gradients_reach_the_first_conv_and_every_parameter(bilinear: bool) -> None:
    model = seeded_model(tiny(bilinear=bilinear)).train()
    logits = model(torch.randn(2, 3, 20, 27))
    F.cross_entropy(logits, torch.randint(0, 5, (2, 20, 27))).backward()
    first_conv = model.inc.block[0]
    assert first_conv.weight.grad is not None
    assert first_conv.weight.grad.abs().sum() > 0
    assert all(p.grad is not None for p in model.parameters())


def test_eval_mode_is_deterministic() -> None:
    model = seeded_model(tiny(dropout=0.5)).eval()
    x = torch.randn(2, 3, 24, 31)
    with torch.inference_mode():
        torch.testing.assert_close(model(x), model(x), rtol=0, atol=0)


def test_dropout_is_only_active_in_train_mode() -> None:
    x = torch.randn(2, 3, 16, 16)
    model = seeded_model(tiny(dropout=0.5))
    assert any(isinstance(m, nn.Dropout2d) for m in model.modules())
    with torch.no_grad():
        model.train()
        assert not torch.equal(model(x), model(x))  # batch statistics alone are fixed
        model.eval()
        assert torch.equal(model(x), model(x))

    plain = seeded_model(tiny())
    assert not any(isinstance(m, nn.Dropout2d) for m in plain.modules())
    with torch.no_grad():
        plain.train()
        assert torch.equal(plain(x), plain(x))


# --- size -------------------------------------------------------------------------------


def parameters_of(**overrides: object) -> int:
    return count_parameters(build_unet(tiny(**overrides)))


def test_parameters_grow_with_width_and_depth() -> None:
    assert parameters_of(base_channels=4) < parameters_of(base_channels=8)
    assert parameters_of(depth=2) < parameters_of(depth=3) < parameters_of(depth=4)
    # Conv weights scale with width squared, BatchNorm and biases linearly.
    ratio = parameters_of(base_channels=16) / parameters_of(base_channels=8)
    assert 3.5 < ratio < 4.0
    # The bilinear variant halves the decoder and bottleneck widths.
    assert parameters_of(bilinear=True) < parameters_of(bilinear=False)


def test_parameter_count_matches_the_reference_unet() -> None:
    """Base 64, depth 4, 2 classes, transposed: milesial's Pytorch-UNet has 31,037,698."""
    model = build_unet(UNetConfig(num_classes=2, base_channels=64, depth=4, bilinear=False))
    assert count_parameters(model) == 31_037_698


def test_count_parameters_skips_frozen_ones() -> None:
    model = seeded_model(tiny(depth=2))
    total = count_parameters(model)
    model.inc.requires_grad_(False)
    frozen = sum(p.numel() for p in model.inc.parameters())
    assert count_parameters(model) == total - frozen
