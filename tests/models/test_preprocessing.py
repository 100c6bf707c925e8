import pytest
import torch

from waymo_unet.models.preprocessing import MEAN_RGB, STD_RGB, per_channel, to_model_input
from waymo_unet.training.data import to_device

CPU = torch.device("cpu")


def test_pixels_are_normalised_per_channel():
    images = torch.tensor(MEAN_RGB).round().to(torch.uint8).view(1, 1, 1, 3).expand(2, 4, 5, 3)
    normalised = to_model_input(images)
    assert normalised.shape == (2, 3, 4, 5)
    expected = (torch.tensor(MEAN_RGB).round() - torch.tensor(MEAN_RGB)) / torch.tensor(STD_RGB)
    torch.testing.assert_close(normalised[0, :, 0, 0], expected)
    white = to_model_input(torch.full((1, 2, 2, 3), 255, dtype=torch.uint8))
    torch.testing.assert_close(
        white[0, :, 0, 0], (255 - torch.tensor(MEAN_RGB)) / torch.tensor(STD_RGB)
    )


def test_channel_constants_are_made_once_per_device():
    assert per_channel(MEAN_RGB, CPU) is per_channel(MEAN_RGB, CPU)
    assert per_channel(MEAN_RGB, CPU).shape == (1, 3, 1, 1)


def test_constants_first_made_in_inference_mode_serve_training():
    per_channel.cache_clear()
    with torch.inference_mode():
        to_model_input(torch.zeros((1, 2, 2, 3), dtype=torch.uint8))
    images = torch.rand(1, 3, 2, 2, requires_grad=True)
    to_model_input(images).sum().backward()
    torch.testing.assert_close(images.grad[0, :, 0, 0], 1 / torch.tensor(STD_RGB))


@pytest.mark.parametrize("device", ["cpu", "meta"])
def test_small_tensors_reach_the_device(device):
    moved = to_device(torch.arange(6.0), torch.device(device))
    assert moved.device.type == device
    assert moved.shape == (6,)
