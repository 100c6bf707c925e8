"""The deployable model: a ``torch.export`` program plus a manifest of what it expects.

The program needs torch alone (no project code) to run: ``torch.export.load(path)
.module()``. The manifest says the input size and normalisation, maps its output
channels to Waymo ids, names and colours, and carries a digest of the weights, which
tells two exports of the same weights apart from a retrained model.
"""

from __future__ import annotations

import copy
import hashlib
import json
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import fsspec
import numpy as np
import torch
from torch.export.passes import move_to_device_pass

from waymo_unet.data.palette import hex_colour
from waymo_unet.models.bundle import SegmentationModel
from waymo_unet.models.preprocessing import to_model_input

MAX_BATCH = 1024
WEIGHTS_DIGEST_LENGTH = 16
PROGRAM_FILE, MANIFEST_FILE = "model.pt2", "manifest.json"  # a deployed model's folder


def export_program(model: SegmentationModel) -> torch.export.ExportedProgram:
    """Export for float32 (N, 3, H, W) input at the model's image size, any batch size."""
    network = model.network.cpu().eval()
    example = torch.zeros(2, model.config.in_channels, *model.image_size)
    batch = torch.export.Dim("batch", min=1, max=MAX_BATCH)
    return torch.export.export(network, (example,), dynamic_shapes=({0: batch},))


def moved_program(
    program: torch.export.ExportedProgram, device: torch.device | str
) -> torch.export.ExportedProgram:
    """A copy of ``program`` on ``device``; ``program`` itself is left as it was.

    ``move_to_device_pass`` also rewrites devices burnt into the graph, which
    ``Module.to`` misses, but it edits the program it is given, hence the copy.
    """
    with warnings.catch_warnings():
        # torch 2.13 deprecates building a LeafSpec, which copying the call graph does.
        warnings.filterwarnings(
            "ignore", r"`isinstance\(treespec, LeafSpec\)` is deprecated", FutureWarning
        )
        copied = copy.deepcopy(program)
    return move_to_device_pass(copied, device)


def weights_digest(module: torch.nn.Module) -> str:
    """Short hex SHA-256 of ``module``'s state dict: names, dtypes, shapes and bytes.

    Entries go in name order, so the digest depends on the weights alone, not on the
    order the layers were built in or on which device they sit.
    """
    digest = hashlib.sha256()
    for name, tensor in sorted(module.state_dict().items()):
        digest.update(f"{name}|{tensor.dtype}|{tuple(tensor.shape)}|".encode())
        digest.update(_tensor_bytes(tensor))
    return digest.hexdigest()[:WEIGHTS_DIGEST_LENGTH]


def _tensor_bytes(tensor: torch.Tensor) -> bytes:
    # Viewing as bytes works for every dtype, bfloat16 too, which numpy has no type for.
    flat = tensor.detach().cpu().contiguous().reshape(-1)
    return flat.view(torch.uint8).numpy().tobytes()


def deployment_manifest(model: SegmentationModel) -> dict[str, Any]:
    """Everything a user of the exported program needs to feed it and read its output."""
    height, width = model.image_size
    return {
        "format": "torch.export",
        "torch_version": torch.__version__,
        "input": {
            "shape": ["batch", model.config.in_channels, height, width],
            "dtype": "float32",
            "layout": "NCHW, RGB",
            "normalisation": "(pixel - mean) / std, pixel in 0..255",
            "mean": list(model.mean),
            "std": list(model.std),
            "resize": "resize images to height x width first; resize labels back (nearest)",
        },
        "output": {
            "shape": ["batch", model.config.num_classes, height, width],
            "meaning": "logits; argmax over dim 1 gives the index of `classes`",
        },
        "classes": [
            {"index": c["index"], "id": c["id"], "name": c["name"], "colour": hex_colour(c["id"])}
            for c in model.classes
        ],
        "unet_config": model.config.to_dict(),
        "weights_digest": weights_digest(model.network),
    }


@dataclass
class DeployedModel:
    """An exported program with its manifest; segments like ``SegmentationModel``.

    It runs a copy of ``program``, so moving it never changes what gets saved.
    """

    program: torch.export.ExportedProgram
    manifest: dict[str, Any]

    def __post_init__(self) -> None:
        self.to("cpu")

    @property
    def image_size(self) -> tuple[int, int]:
        return tuple(self.manifest["input"]["shape"][2:])

    @property
    def waymo_ids(self) -> np.ndarray:
        return np.array([c["id"] for c in self.manifest["classes"]], dtype=np.uint8)

    @property
    def module(self) -> torch.nn.Module:
        """The module that runs, on the model's device: a copy of ``program``'s."""
        return self._module

    def to(self, device: torch.device | str) -> DeployedModel:
        """Run on ``device`` from now on; ``program`` keeps its own device and dtypes."""
        if isinstance(device, torch.dtype):
            raise TypeError(
                f"cannot cast a deployed model to {device}: it was exported for float32 input;"
                " export it again for another dtype"
            )
        self._device = torch.device(device)
        self._module = moved_program(self.program, self._device).module()
        return self

    @torch.inference_mode()
    def predict_logits(self, images: torch.Tensor) -> torch.Tensor:
        """Logits (N, classes, H, W) for uint8 RGB images (N, H, W, 3) at ``image_size``."""
        normalisation = self.manifest["input"]
        inputs = to_model_input(
            images.to(self._device), tuple(normalisation["mean"]), tuple(normalisation["std"])
        )
        return self._module(inputs)

    def predict_indices(self, images: torch.Tensor) -> torch.Tensor:
        """Training indices (N, H, W) for uint8 RGB images (N, H, W, 3) at ``image_size``."""
        return self.predict_logits(images).argmax(dim=1)


def save_deployed_folder(
    model: DeployedModel, folder: str | Path, fs: fsspec.AbstractFileSystem | None = None
) -> None:
    """Write ``model`` as ``folder/model.pt2`` and ``folder/manifest.json`` (local by default)."""
    fs, root = fs or fsspec.filesystem("file"), str(folder).rstrip("/")
    fs.makedirs(root, exist_ok=True)
    with fs.open(f"{root}/{PROGRAM_FILE}", "wb") as file:
        torch.export.save(model.program, file)
    with fs.open(f"{root}/{MANIFEST_FILE}", "w") as file:
        json.dump(model.manifest, file, indent=1)


def load_deployed_folder(
    folder: str | Path, fs: fsspec.AbstractFileSystem | None = None
) -> DeployedModel:
    """The ``DeployedModel`` that ``save_deployed_folder`` wrote to ``folder``."""
    fs, root = fs or fsspec.filesystem("file"), str(folder).rstrip("/")
    with fs.open(f"{root}/{MANIFEST_FILE}", "r") as file:
        manifest = json.load(file)
    with fs.open(f"{root}/{PROGRAM_FILE}", "rb") as file:
        program = torch.export.load(file)
    return DeployedModel(program, manifest)
