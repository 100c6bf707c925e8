import itertools
import math
import warnings

import pytest
import torch
import torch.nn.functional as F  # noqa: N812

from waymo_unet import devices
from waymo_unet.devices import Precision, choose_precision, cpu_has_native_bf16
from waymo_unet.models.unet import UNetConfig, build_unet
from waymo_unet.training.data import AugmentConfig
from waymo_unet.training.loop import (
    BatchSettings,
    ModelWithLoss,
    Optimisation,
    make_optimizer,
    train_one_epoch,
    warmup_cosine,
)
from waymo_unet.training.loss import SegmentationLoss, soft_dice

CPU = torch.device("cpu")


def test_cross_entropy_skips_ignored_pixels_and_applies_weights():
    logits = torch.randn(2, 3, 4, 5)
    target = torch.randint(0, 3, (2, 4, 5))
    target[0, 0] = 255
    weights = torch.tensor([1.0, 2.0, 0.5])
    loss = SegmentationLoss(weights, ignore_index=255)(logits, target)
    keep = target != 255
    per_pixel = F.cross_entropy(logits, target.clamp(max=2), reduction="none")[keep]
    pixel_weights = weights[target[keep]]
    torch.testing.assert_close(loss, (per_pixel * pixel_weights).sum() / pixel_weights.sum())


def test_dice_is_one_for_a_perfect_prediction_and_ignores_ignored_pixels():
    target = torch.randint(0, 3, (2, 4, 5))
    logits = F.one_hot(target, 3).permute(0, 3, 1, 2).float() * 100
    target_with_ignored = target.clone()
    target_with_ignored[:, 0] = 255
    assert soft_dice(logits, target_with_ignored, 255).item() == pytest.approx(1.0, abs=1e-4)
    loss = SegmentationLoss(dice_weight=1.0)(logits, target)
    assert loss.item() == pytest.approx(0.0, abs=1e-3)


def test_dice_averages_the_classes_present_only():
    logits = torch.randn(2, 4, 3, 5, requires_grad=True)
    target = torch.randint(0, 2, (2, 3, 5))  # classes 2 and 3 absent
    probabilities = logits.softmax(dim=1)
    one_hot = F.one_hot(target, 4).permute(0, 3, 1, 2)
    per_class = (2 * (probabilities * one_hot).sum((0, 2, 3)) + 1) / (
        probabilities.sum((0, 2, 3)) + one_hot.sum((0, 2, 3)) + 1
    )
    torch.testing.assert_close(soft_dice(logits, target, 255), per_class[:2].mean())


def test_dice_of_an_all_ignored_batch_is_one_with_finite_gradients():
    logits = torch.randn(1, 3, 2, 2, requires_grad=True)
    dice = soft_dice(logits, torch.full((1, 2, 2), 255), 255)
    assert dice.item() == 1.0
    dice.backward()
    assert torch.isfinite(logits.grad).all()


def test_warmup_then_cosine_schedule():
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    scheduler = warmup_cosine(optimizer, total_steps=10, warmup_steps=2, min_ratio=0.1)
    rates = []
    for _ in range(10):
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    assert rates[0] == pytest.approx(0.5)
    assert rates[1] == pytest.approx(1.0)
    assert all(a >= b for a, b in itertools.pairwise(rates[1:]))
    assert rates[-1] == pytest.approx(0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * 7 / 8)))


def test_weight_decay_applies_to_conv_weights_only():
    model = build_unet(UNetConfig(num_classes=3, base_channels=4, depth=2))
    decayed, plain = make_optimizer(model, 1e-3, 0.1, CPU).param_groups
    assert decayed["weight_decay"] == 0.1
    assert plain["weight_decay"] == 0.0
    assert all(p.ndim == 4 for p in decayed["params"])
    assert all(p.ndim == 1 for p in plain["params"])


@pytest.mark.parametrize(
    ("requested", "expected"),
    [("fp32", None), ("bf16", torch.bfloat16)],
)
def test_explicit_precision_on_cpu(requested, expected):
    precision = choose_precision(requested, CPU)
    assert precision.dtype == expected
    assert not precision.needs_grad_scaler


def test_auto_precision_on_cpu_follows_the_hardware():
    expected = torch.bfloat16 if cpu_has_native_bf16() else None
    assert choose_precision("auto", CPU).dtype == expected


@pytest.mark.parametrize(("native", "expected"), [(True, torch.bfloat16), (False, None)])
def test_auto_precision_on_cpu_takes_either_path(monkeypatch, native, expected):
    # CI machines of one kind differ: this one takes one path, the next run the other.
    monkeypatch.setattr(devices, "cpu_has_native_bf16", lambda: native)
    assert choose_precision("auto", CPU).dtype == expected


@pytest.mark.parametrize(
    ("capability", "expected"),
    [
        ((7, 5), torch.float16),
        ((7, 0), torch.float16),
        ((8, 0), torch.bfloat16),
        ((9, 0), torch.bfloat16),
    ],
)
def test_auto_precision_on_cuda_is_bf16_from_ampere_on(monkeypatch, capability, expected):
    # T4 (7.5) and V100 (7.0) emulate bf16, although torch.cuda.is_bf16_supported() says yes.
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: capability)
    precision = choose_precision("auto", torch.device("cuda", 1))
    assert precision.dtype == expected
    assert precision.needs_grad_scaler == (expected == torch.float16)


def test_fp16_needs_cuda_and_unknown_names_fail():
    with pytest.raises(ValueError, match="needs a CUDA device"):
        choose_precision("fp16", CPU)
    with pytest.raises(ValueError, match="precision must be one of"):
        choose_precision("fp8", CPU)


def fixed_batch_loader():
    generator = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (4, 16, 24, 3), dtype=torch.uint8, generator=generator)
    labels = (images[..., 0] > 127).to(torch.uint8)  # learnable from the red channel
    return [(images, labels)]


@pytest.mark.parametrize("precision", [Precision("cpu"), Precision("cpu", torch.bfloat16)])
def test_one_optimisation_step_lowers_the_loss_on_a_fixed_batch(precision):
    torch.manual_seed(0)
    model = build_unet(UNetConfig(num_classes=2, base_channels=4, depth=2))
    optimizer = make_optimizer(model, 1e-2, 0.0, CPU)
    optimisation = Optimisation(
        optimizer, warmup_cosine(optimizer, 10, 1), precision.grad_scaler(), grad_clip=1.0
    )
    model_with_loss = ModelWithLoss(model, SegmentationLoss(), precision)
    settings = BatchSettings(CPU, precision)
    generator = torch.Generator()
    losses = [
        train_one_epoch(model_with_loss, fixed_batch_loader(), optimisation, settings, generator)
        for _ in range(3)
    ]
    assert all(math.isfinite(epoch["train_loss"]) for epoch in losses)
    assert losses[1]["train_loss"] < losses[0]["train_loss"]
    assert losses[2]["train_loss"] < losses[0]["train_loss"]


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("requested", ["auto", "fp16"])
def test_cuda_mixed_precision_step_lowers_the_loss(requested):
    device = torch.device("cuda")
    precision = choose_precision(requested, device)
    assert precision.dtype in (torch.bfloat16, torch.float16)
    torch.manual_seed(0)
    model = build_unet(UNetConfig(num_classes=2, base_channels=8, depth=3)).to(device)
    model = model.to(memory_format=torch.channels_last)
    optimizer = make_optimizer(model, 1e-2, 0.0, device)
    optimisation = Optimisation(
        optimizer, warmup_cosine(optimizer, 10, 1), precision.grad_scaler(), grad_clip=1.0
    )
    settings = BatchSettings(device, precision, channels_last=True)
    model_with_loss = ModelWithLoss(model, SegmentationLoss().to(device), precision)
    losses = [
        train_one_epoch(
            model_with_loss, fixed_batch_loader(), optimisation, settings, torch.Generator()
        )
        for _ in range(3)
    ]
    assert losses[2]["train_loss"] < losses[0]["train_loss"]


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_training_steps_do_not_synchronise_with_the_host():
    """An epoch synchronises a fixed number of times (reading its loss), not once per step."""
    device = torch.device("cuda")

    def synchronisations(batches: int) -> int:
        torch.manual_seed(0)
        precision = choose_precision("auto", device)
        model = build_unet(UNetConfig(num_classes=2, base_channels=8, depth=3)).to(device)
        optimizer = make_optimizer(model, 1e-2, 0.0, device)
        optimisation = Optimisation(
            optimizer, warmup_cosine(optimizer, 10, 1), precision.grad_scaler(), grad_clip=1.0
        )
        settings = BatchSettings(device, precision, channels_last=True, augment=AugmentConfig())
        loader = fixed_batch_loader() * batches
        model_with_loss = ModelWithLoss(
            model, SegmentationLoss(dice_weight=0.5).to(device), precision
        )
        torch.cuda.synchronize()
        torch.cuda.set_sync_debug_mode("warn")
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                train_one_epoch(model_with_loss, loader, optimisation, settings, torch.Generator())
        finally:
            torch.cuda.set_sync_debug_mode("default")
        return sum("synchroniz" in str(warning.message) for warning in caught)

    synchronisations(1)  # first calls make per-device constants, which may wait once
    assert synchronisations(2) == synchronisations(6)
