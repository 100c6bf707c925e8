"""An Altair chart saved as its Vega-Lite spec, an offline interactive page and a PNG."""

from __future__ import annotations

import json
import posixpath
from pathlib import PurePosixPath
from typing import Any

import fsspec
from kedro.io import AbstractDataset
from kedro_datasets._typing import ImagePreview

from waymo_unet.datasets.preview_image import image_preview
from waymo_unet.reporting.chart_render import chart_html, spec_png_bytes
from waymo_unet.reporting.chart_style import AnyChart

FORMATS = ("vl.json", "html", "png")


class AltairChartDataset(AbstractDataset[AnyChart, dict[str, Any]]):
    """Saves ``<filepath>.vl.json``, ``<filepath>.html`` (Vega inlined) and ``<filepath>.png``.

    ``filepath`` is the stem shared by the three files. Loading returns the Vega-Lite
    spec, which renders again with vl-convert or any Vega viewer. Wrapped in kedro-mlflow's
    ``MlflowArtifactDataset``, the PNG is the file logged: it reads ``_filepath``.
    """

    def __init__(
        self,
        filepath: str,
        scale_factor: float = 2.0,
        credentials: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        self._stem_path = filepath
        self._scale_factor = scale_factor
        self._fs, self._stem = fsspec.core.url_to_fs(filepath, **(credentials or {}))
        self._filepath = PurePosixPath(self._file("png"))
        self.metadata = metadata

    def _file(self, kind: str) -> str:
        return f"{self._stem}.{kind}"

    def load(self) -> dict[str, Any]:
        with self._fs.open(self._file("vl.json"), "r") as file:
            return json.load(file)

    def save(self, data: AnyChart) -> None:
        spec = data.to_dict()
        # The stem is a path as its filesystem names it ('/'-separated, no protocol).
        self._fs.makedirs(posixpath.dirname(self._stem), exist_ok=True)
        contents = {
            "vl.json": json.dumps(spec, indent=1).encode(),
            "html": chart_html(data).encode(),
            "png": spec_png_bytes(spec, self._scale_factor),
        }
        for kind, content in contents.items():
            with self._fs.open(self._file(kind), "wb") as file:
                file.write(content)

    def preview(self) -> ImagePreview:
        """The PNG, for kedro-viz."""
        return image_preview(self._fs, self._file("png"))

    def _exists(self) -> bool:
        return self._fs.exists(self._file("vl.json"))

    def _describe(self) -> dict[str, Any]:
        return {"filepath": self._stem_path, "formats": FORMATS}
