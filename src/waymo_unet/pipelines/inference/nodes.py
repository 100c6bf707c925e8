"""Inference node: stream batches of predictions out as label PNGs and overlays."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

from PIL import Image

from waymo_unet.inference.predict import segment_images
from waymo_unet.inference.sources import CameraImageSource
from waymo_unet.models.bundle import Segmenter
from waymo_unet.reporting.overlays import overlay

logger = logging.getLogger(__name__)


def segment_camera_images(
    model: Segmenter, images: CameraImageSource, params: dict[str, Any]
) -> Iterator[tuple[dict[str, Image.Image], dict[str, Image.Image]]]:
    """Per batch, the label images (Waymo ids, 8-bit grey) and overlays, by image name.

    A generator: Kedro saves each batch's partitions as they come, so memory holds one
    batch whatever the number of images.
    """
    count = 0
    for predictions in segment_images(
        model, images.iter_images(), params["batch_size"], params["device"], params["precision"]
    ):
        labels = {p.name: Image.fromarray(p.waymo_ids, mode="L") for p in predictions}
        overlays = {
            p.name: Image.fromarray(overlay(p.image, p.waymo_ids, params["overlay_alpha"]))
            for p in predictions
        }
        count += len(predictions)
        yield labels, overlays
    logger.info("Segmented %d image(s) from %s", count, images.root)
