"""Waymo ids at any image's own size, from logits at the size the model was trained at.

Inference's label PNGs and the evaluation's predictions both come from
``predict_waymo_ids``, so the metric can be recomputed from the PNGs. The logits, not
the argmax, are resized: a class boundary then falls between the model's pixels where
the scores cross, instead of on the model's pixel grid as a nearest-neighbour resize of
the labels puts it, which costs IoU at the labels' size (4x the model's on a real run).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F  # noqa: N812
from torch import Tensor

from waymo_unet.models.bundle import Segmenter


@torch.inference_mode()
def predict_waymo_ids(
    model: Segmenter, images: Tensor, sizes: Sequence[tuple[int, int]]
) -> list[Tensor]:
    """Waymo ids (uint8, on the model's device) of each image, at its ``(height, width)``.

    ``images`` are uint8 RGB (N, h, w, 3) at ``model.image_size``; ``sizes`` holds one
    output size per image (1920x1280 and 1920x886 cameras may share a batch). Each image's
    logits are upsampled bilinearly in float32 on their own, so memory holds one image's
    full-size logits at a time; the caller chooses autocast for the model.
    """
    if len(sizes) != len(images):
        raise ValueError(f"{len(sizes)} output sizes for {len(images)} images")
    logits = model.predict_logits(images)
    lookup = torch.as_tensor(model.waymo_ids, device=logits.device)
    labels = []
    for one, size in zip(logits.split(1), sizes, strict=True):
        size = (int(size[0]), int(size[1]))
        if tuple(one.shape[-2:]) != size:
            one = F.interpolate(one.float(), size=size, mode="bilinear", align_corners=False)
        labels.append(lookup[one.argmax(dim=1)[0]])
    return labels
