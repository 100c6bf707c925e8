"""The classes present in the ingested labels: names, counts, training indices, weights."""

from waymo_unet.pipelines.label_catalog.pipeline import create_pipeline

__all__ = ["create_pipeline"]
