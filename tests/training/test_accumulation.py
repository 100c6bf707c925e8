"""Gradient accumulation: a step over a group of micro-batches is the step over them joined."""

import pytest
import torch
from torch import nn

from waymo_unet.devices import Precision
from waymo_unet.training.loop import BatchSettings, ModelWithLoss, Optimisation, train_one_epoch

CPU = torch.device("cpu")


def micro_batches(count: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Equal-size uint8 batches: with a mean loss, the mean of their means is the joint mean."""
    generator = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (count, 2, 4, 6, 3), dtype=torch.uint8, generator=generator)
    labels = torch.randint(0, 3, (count, 2, 4, 6), dtype=torch.uint8, generator=generator)
    return list(zip(images, labels, strict=True))


def joined(batches: list[tuple[torch.Tensor, torch.Tensor]], group: int):
    """The same items as one batch per group of ``group`` micro-batches (the last may be short)."""
    groups = [batches[start : start + group] for start in range(0, len(batches), group)]
    return [tuple(torch.cat(parts) for parts in zip(*chunk, strict=True)) for chunk in groups]


def train(batches, accumulation_steps: int) -> tuple[nn.Module, Optimisation]:
    """One epoch of plain SGD on a 1x1 convolution (no BatchNorm: no batch-size effects)."""
    torch.manual_seed(0)
    model = nn.Conv2d(3, 3, kernel_size=1)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
    precision = Precision("cpu")
    optimisation = Optimisation(
        optimizer,
        torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0),
        precision.grad_scaler(),
        accumulation_steps=accumulation_steps,
    )
    train_one_epoch(
        ModelWithLoss(model, nn.CrossEntropyLoss(), precision),
        batches,
        optimisation,
        BatchSettings(CPU, precision),
        torch.Generator(),
    )
    return model, optimisation


@pytest.mark.parametrize(
    ("count", "accumulation_steps"),
    [(5, 3), (6, 3), (2, 3), (3, 1)],
    ids=["groups of 3 and 2", "groups of 3", "one short group", "no accumulation"],
)
def test_accumulated_steps_equal_steps_over_the_joined_batches(count, accumulation_steps):
    batches = micro_batches(count)
    accumulated, accumulated_optimisation = train(batches, accumulation_steps)
    reference, reference_optimisation = train(joined(batches, accumulation_steps), 1)
    steps = -(-count // accumulation_steps)
    assert accumulated_optimisation.scheduler.last_epoch == steps
    assert reference_optimisation.scheduler.last_epoch == steps
    for got, expected in zip(accumulated.parameters(), reference.parameters(), strict=True):
        torch.testing.assert_close(got, expected)
