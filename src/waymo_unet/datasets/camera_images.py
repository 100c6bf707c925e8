"""Camera images to segment, handed to the inference node as a streaming source."""

from __future__ import annotations

from waymo_unet.datasets.stores import LocationDataset
from waymo_unet.inference.sources import CameraImageSource


class CameraImagesDataset(LocationDataset):
    """A camera_image parquet file or folder, or a JPEG folder; loads a ``CameraImageSource``.

    Images are read as inference consumes them, a row group or a file at a time.
    """

    store_type = CameraImageSource
