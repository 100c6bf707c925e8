import json
import tempfile
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F  # noqa: N812
from torch.profiler import ProfilerActivity, profile

from waymo_unet.training.loss import SegmentationLoss, _row_class_bins, _sum_per_class, soft_dice

IGNORE = 255


def one_hot_soft_dice(
    logits: torch.Tensor, target: torch.Tensor, ignore_index: int
) -> torch.Tensor:
    """The one-hot Dice that soft_dice replaced: the reference for its values and memory."""
    num_classes = logits.shape[1]
    valid = (target != ignore_index).unsqueeze(1)
    probabilities = logits.softmax(dim=1) * valid
    one_hot = F.one_hot(target.masked_fill(~valid[:, 0], 0), num_classes).permute(0, 3, 1, 2)
    one_hot = one_hot * valid
    dims = (0, 2, 3)
    intersection = (probabilities * one_hot).sum(dims)
    cardinality = probabilities.sum(dims) + one_hot.sum(dims)
    present = one_hot.sum(dims) > 0
    dice = (2 * intersection + 1.0) / (cardinality + 1.0)
    count = present.sum()
    mean_present = (dice * present).sum() / count.clamp(min=1)
    return torch.where(count > 0, mean_present, torch.ones_like(mean_present))


def _case(name: str) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(sum(map(ord, name)))
    logits = 3 * torch.randn(3, 6, 9, 11, generator=generator)
    target = torch.randint(0, 6, (3, 9, 11), generator=generator)
    if name == "ignored pixels":
        target[torch.rand(target.shape, generator=generator) < 0.3] = IGNORE
        target[1] = IGNORE
    elif name == "absent classes":
        target = target % 3  # classes 3 to 5 never appear
        target[0, :4] = IGNORE
    elif name == "one class":
        target.fill_(4)
    elif name == "all ignored":
        target.fill_(IGNORE)
    return logits, target


CASES = ["ignored pixels", "absent classes", "one class", "all ignored"]


@pytest.mark.parametrize("name", CASES)
def test_dice_and_its_gradient_equal_the_one_hot_reference(name):
    logits, target = _case(name)
    logits.requires_grad_()
    expected = one_hot_soft_dice(logits, target, IGNORE)
    (expected_gradient,) = torch.autograd.grad(expected, logits)
    dice = soft_dice(logits, target, IGNORE)
    (gradient,) = torch.autograd.grad(dice, logits)
    torch.testing.assert_close(dice, expected)
    torch.testing.assert_close(gradient, expected_gradient)
    assert gradient.abs().sum() > 0 or name == "all ignored"


def test_an_ignore_index_among_the_classes_is_left_out_too():
    logits, target = _case("absent classes")
    target = target.masked_fill(target == IGNORE, 2)
    logits.requires_grad_()
    dice = soft_dice(logits, target, 1)
    expected = one_hot_soft_dice(logits, target, 1)
    torch.testing.assert_close(dice, expected)
    torch.testing.assert_close(
        torch.autograd.grad(dice, logits)[0], torch.autograd.grad(expected, logits)[0]
    )


def test_the_hand_written_backward_passes_gradcheck():
    logits, target = _case("ignored pixels")
    logits = logits[:2, :4, :3, :5].double().requires_grad_()
    target = target[:2, :3, :5].masked_fill(target[:2, :3, :5] >= 4, IGNORE)
    assert torch.autograd.gradcheck(lambda x: soft_dice(x, target, IGNORE), (logits,))


def test_segmentation_loss_adds_the_weighted_dice_in_fp32():
    logits, target = _case("ignored pixels")
    weights = torch.linspace(0.5, 2.0, 6)
    loss = SegmentationLoss(weights, ignore_index=IGNORE, dice_weight=0.3)(logits.half(), target)
    logits = logits.half().float()
    expected = F.cross_entropy(logits, target, weight=weights, ignore_index=IGNORE) + 0.3 * (
        1 - one_hot_soft_dice(logits, target, IGNORE)
    )
    assert loss.dtype == torch.float32
    torch.testing.assert_close(loss, expected)


def test_dice_stays_in_fp32_under_autocast():
    logits, target = _case("ignored pixels")
    logits.requires_grad_()
    expected = one_hot_soft_dice(logits, target, IGNORE)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        dice = soft_dice(logits, target, IGNORE)
        (gradient,) = torch.autograd.grad(dice, logits)
    torch.testing.assert_close(dice, expected)
    torch.testing.assert_close(gradient, torch.autograd.grad(expected, logits)[0])


def test_per_class_counts_stay_exact_past_float32_integers():
    # 2**24 + 4096 pixels of one class: a single float32 bin would stop at 2**24.
    label = torch.zeros(1, 1, 4097, 4096, dtype=torch.long)
    counts = _sum_per_class(torch.ones(label.shape), _row_class_bins(label, 2), 2)
    assert counts.tolist() == [2**24 + 4096, 0]


def _peak_allocated_bytes(step: Callable[[], None]) -> int:
    """Peak of the CPU allocator's bytes in use while ``step`` runs, above where it started.

    Read from the profiler's memory events, through the public Chrome-trace export.
    """
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        step()
    with tempfile.TemporaryDirectory() as folder:
        trace = Path(folder) / "trace.json"
        prof.export_chrome_trace(str(trace))
        events = json.loads(trace.read_text())["traceEvents"]
    memory = sorted(
        (event for event in events if event.get("name") == "[memory]"), key=lambda e: e["ts"]
    )
    assert memory, "the profiler recorded no memory events"
    start = memory[0]["args"]["Total Allocated"] - memory[0]["args"]["Bytes"]
    return max(event["args"]["Total Allocated"] for event in memory) - start


def test_dice_allocates_far_less_than_the_one_hot_reference():
    logits = torch.randn(2, 28, 64, 96)
    target = torch.randint(0, 28, (2, 64, 96))
    target[0, :10] = IGNORE

    def forward_and_backward(dice: Callable[..., torch.Tensor]) -> int:
        def step() -> None:
            leaf = logits.detach().requires_grad_()
            torch.autograd.grad(dice(leaf, target, IGNORE), leaf)

        return _peak_allocated_bytes(step)

    reference = forward_and_backward(one_hot_soft_dice)
    peak = forward_and_backward(soft_dice)
    logits_bytes = logits.numel() * logits.element_size()
    assert reference > 5 * logits_bytes  # the profiler sees the one-hot tensors
    assert peak < reference / 3
    assert peak < 1.5 * logits_bytes  # the gradient itself, little more
