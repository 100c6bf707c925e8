import base64
import io

import numpy as np
from PIL import Image

from waymo_unet.datasets import PreviewImageDataset


def test_the_preview_is_the_saved_png_in_base64(tmp_path):
    pixels = np.arange(4 * 6 * 3, dtype=np.uint8).reshape(4, 6, 3)
    dataset = PreviewImageDataset(filepath=str(tmp_path / "overlay.png"))
    dataset.save(Image.fromarray(pixels))
    preview = dataset.preview()
    shown = Image.open(io.BytesIO(base64.b64decode(preview)))
    assert shown.format == "PNG"
    assert (np.asarray(shown) == pixels).all()
    assert (np.asarray(dataset.load()) == pixels).all()
