"""Inference node: stream batches of predictions out as label PNGs and overlays."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

from PIL import Image

from waymo_unet.inference.predict import segment_images
from waymo_unet.inference.sources import CameraImageSource, NothingToSegmentError
from waymo_unet.models.bundle import Segmenter
from waymo_unet.reporting.overlays import overlay

logger = logging.getLogger(__name__)

WHAT_TO_SEGMENT = (
    "point inference_camera_images at a folder of JPEGs or camera_image parquet files "
    "in conf/local/catalog.yml"
)


def segment_camera_images(
    model: Segmenter, images: CameraImageSource, params: dict[str, Any]
) -> Iterator[tuple[dict[str, Image.Image], dict[str, Image.Image]]]:
    """Per batch, the label images (Waymo ids, 8-bit grey) and overlays, by image name.

    A generator: Kedro saves each batch's partitions as they come, so memory holds one
    batch whatever the number of images. Nothing to segment is one error line saying
    where the images were looked for and what to change, not an empty output.
    """
    count = 0
    batches = segment_images(
        model, images.iter_images(), params["batch_size"], params["device"], params["precision"]
    )
    try:
        for predictions in batches:
            labels = {p.name: Image.fromarray(p.waymo_ids, mode="L") for p in predictions}
            overlays = {
                p.name: Image.fromarray(overlay(p.image, p.waymo_ids, params["overlay_alpha"]))
                for p in predictions
            }
            count += len(predictions)
            yield labels, overlays
    except NothingToSegmentError as error:
        raise NothingToSegmentError(f"{images.root}: {error}; {WHAT_TO_SEGMENT}") from None
    logger.info("Segmented %d image(s) from %s", count, images.root)
