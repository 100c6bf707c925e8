"""Batched segmentation of JPEG images of any size, with mixed precision on CUDA.

Each image is decoded once at full size, resized to the size the model was trained at
(where it is most accurate) and segmented in a batch; ``predict_waymo_ids`` resizes the
logits back to the image's own size, so every label PNG matches its image and holds
what the evaluation pipeline scores.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from itertools import islice

import numpy as np
import torch

from waymo_unet.data.decode import DecodeError, decode_camera_image, jpeg_size
from waymo_unet.devices import choose_precision, resolve_device
from waymo_unet.inference.sources import NothingToSegmentError
from waymo_unet.models.bundle import Segmenter
from waymo_unet.models.prediction import predict_waymo_ids
from waymo_unet.models.preprocessing import resized_images

logger = logging.getLogger(__name__)

MAX_NAMES_LOGGED = 20  # in the closing summary; each skip is logged with its reason anyway


@dataclass
class Prediction:
    name: str
    image: np.ndarray  # RGB uint8 (H, W, 3), the image's own size
    waymo_ids: np.ndarray  # uint8 (H, W), Waymo semantic ids


def segment_images(
    model: Segmenter,
    images: Iterable[tuple[str, bytes]],
    batch_size: int = 8,
    device: str = "auto",
    precision: str = "auto",
) -> Iterator[list[Prediction]]:
    """Yield the predictions of each batch of ``(name, jpeg_bytes)``.

    Images that do not decode are skipped and counted in a warning; if none decodes,
    ``NothingToSegmentError`` names them, rather than an empty result.
    """
    target = resolve_device(device)
    autocast = choose_precision(precision, target)
    model.to(target)
    done, start = 0, time.perf_counter()
    skipped: list[str] = []
    decoded = _decodable(images, skipped)
    while batch := list(islice(decoded, batch_size)):
        names = [name for name, _ in batch]
        full = [image for _, image in batch]
        small = resized_images(full, model.image_size)
        with autocast.autocast():
            ids = predict_waymo_ids(
                model, torch.from_numpy(small).to(target), [image.shape[:2] for image in full]
            )
        yield [
            Prediction(name, image, label.cpu().numpy())
            for name, image, label in zip(names, full, ids, strict=True)
        ]
        done += len(batch)
        logger.info(
            "segmented %d image(s), %.1f images/s", done, done / (time.perf_counter() - start)
        )
    if skipped and not done:
        raise NothingToSegmentError(
            f"none of the {len(skipped)} image(s) could be decoded ({name_some(skipped)})"
        )
    if skipped:
        logger.warning(
            "Skipped %d of %d image(s) that could not be decoded (reasons above): %s",
            len(skipped),
            len(skipped) + done,
            name_some(skipped),
        )


def name_some(names: list[str], limit: int = MAX_NAMES_LOGGED) -> str:
    """The first ``limit`` names, then how many more there are."""
    shown = ", ".join(names[:limit])
    return shown if len(names) <= limit else f"{shown} and {len(names) - limit} more"


def _decodable(
    images: Iterable[tuple[str, bytes]], skipped: list[str]
) -> Iterator[tuple[str, np.ndarray]]:
    """Full-size RGB images; one that cannot be decoded is logged, added to ``skipped``
    by name, and left out."""
    for name, jpeg in images:
        try:
            yield name, decode_camera_image(jpeg, *jpeg_size(jpeg))
        except DecodeError as error:
            logger.warning("Skipping %s: %s", name, error)
            skipped.append(name)
