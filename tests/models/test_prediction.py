"""predict_waymo_ids: logits upsampled to each image's size, then mapped to Waymo ids."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tests.evaluation.models import ROAD, SKY, HalvesModel
from waymo_unet.models.prediction import predict_waymo_ids


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
