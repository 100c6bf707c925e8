"""A PNG (or any Pillow format) image that kedro-viz shows as a preview."""

from __future__ import annotations

import base64

from fsspec import AbstractFileSystem
from kedro_datasets._typing import ImagePreview
from kedro_datasets.pillow import ImageDataset


def image_preview(fs: AbstractFileSystem, path: str) -> ImagePreview:
    """The image file at ``path``, base64-encoded as kedro-viz expects.

    kedro-viz takes the preview kind from the return annotation, so it must stay
    ``ImagePreview``.
    """
    with fs.open(path, "rb") as file:
        return ImagePreview(base64.b64encode(file.read()).decode("ascii"))


class PreviewImageDataset(ImageDataset):
    """``pillow.ImageDataset`` with a kedro-viz preview of the saved image."""

    def preview(self) -> ImagePreview:
        return image_preview(self._fs, self._get_load_path())
