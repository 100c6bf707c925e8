"""predict_waymo_ids: logits upsampled to each image's size, then mapped to Waymo ids."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F  # noqa: N812

from tests.evaluation.models import ROAD, SKY, HalvesModel
from waymo_unet.models.prediction import (
    MIN_SETTLED_SHARE,
    _agrees_with_neighbours,
    _argmax_at_boundaries,
    predict_waymo_ids,
    upsampled_argmax,
)


class FixedLogits(HalvesModel):
    """Returns the same logits for every image."""

    def __init__(self, logits: torch.Tensor, classes: tuple[int, ...]) -> None:
        size = tuple(logits.shape[-2:])
        super().__init__(classes[0], classes[1], image_size=size, classes=classes)
        self.logits = logits

    def predict_logits(self, images: torch.Tensor) -> torch.Tensor:
        return self.logits.expand(len(images), *self.logits.shape)


def test_the_logits_are_resized_not_the_labels():
    # Two model pixels: CAR (with BUS close behind) and TRUCK (BUS close behind). Resizing
    # the labels could only give CAR | TRUCK; between them the upsampled BUS score wins.
    car, truck, bus = 2, 3, 4
    logits = torch.tensor([[[1.0, 0.0]], [[0.0, 1.0]], [[0.9, 0.9]]])  # (classes, 1, 2)
    model = FixedLogits(logits, classes=(car, truck, bus))
    (label,) = predict_waymo_ids(model, torch.zeros(1, 1, 2, 3, dtype=torch.uint8), [(1, 8)])
    assert label.tolist() == [[car, car, bus, bus, bus, bus, truck, truck]]


def test_each_image_gets_its_own_size_in_waymo_ids():
    model = HalvesModel()
    images = torch.zeros(2, *model.image_size, 3, dtype=torch.uint8)
    front, side = predict_waymo_ids(model, images, [(32, 48), (22, 48)])
    assert front.dtype == torch.uint8
    assert front.shape == (32, 48)
    assert side.shape == (22, 48)
    assert set(torch.unique(front).tolist()) == {SKY, ROAD}
    assert (front[:16] == SKY).all()
    assert (front[16:] == ROAD).all()
    assert (side[:11] == SKY).all()
    assert (side[11:] == ROAD).all()


def test_the_model_size_is_kept_without_resampling():
    model = HalvesModel()
    images = torch.zeros(1, *model.image_size, 3, dtype=torch.uint8)
    (label,) = predict_waymo_ids(model, images, [model.image_size])
    expected = model.waymo_ids[model.predict_indices(images)[0].numpy()]
    np.testing.assert_array_equal(label.numpy(), expected)


def test_one_size_per_image_is_required():
    model = HalvesModel()
    images = torch.zeros(2, *model.image_size, 3, dtype=torch.uint8)
    with pytest.raises(ValueError, match="1 output sizes for 2 images"):
        predict_waymo_ids(model, images, [(32, 48)])


def smooth_logits(classes: int, height: int, width: int, seed: int = 0) -> torch.Tensor:
    """Scores that vary smoothly, as a trained model's do: large regions, few borders."""
    generator = torch.Generator().manual_seed(seed)
    coarse = torch.randn(1, classes, 4, 6, generator=generator) * 3
    return F.interpolate(coarse, size=(height, width), mode="bicubic")[0]


@pytest.mark.parametrize(
    ("model_size", "label_size"),
    [((24, 36), (40, 60)), ((16, 24), (32, 48)), ((24, 36), (13, 17)), ((12, 9), (30, 64))],
)
def test_interpolating_only_at_borders_equals_upsampling_everything(model_size, label_size):
    logits = smooth_logits(4, *model_size)
    upsampled = F.interpolate(logits[None], size=label_size, mode="bilinear", align_corners=False)
    coarse = logits.argmax(dim=0)
    agrees = _agrees_with_neighbours(coarse)
    assert 0.2 < agrees.float().mean() < 1  # borders and regions both exercised
    result = _argmax_at_boundaries(logits, coarse, agrees, label_size)
    torch.testing.assert_close(result, upsampled[0].argmax(dim=0), rtol=0, atol=0)


def test_noisy_scores_are_upsampled_whole():
    logits = torch.randn(6, 12, 18, generator=torch.Generator().manual_seed(1))
    upsampled = F.interpolate(logits[None], size=(30, 40), mode="bilinear", align_corners=False)
    assert _agrees_with_neighbours(logits.argmax(dim=0)).float().mean() < MIN_SETTLED_SHARE
    assert torch.equal(upsampled_argmax(logits, (30, 40)), upsampled[0].argmax(dim=0))


def test_half_precision_scores_are_compared_in_float32():
    logits = smooth_logits(5, 12, 18).to(torch.bfloat16)
    expected = F.interpolate(logits[None].float(), size=(24, 36), mode="bilinear")[0]
    assert torch.equal(upsampled_argmax(logits, (24, 36)), expected.argmax(dim=0))
