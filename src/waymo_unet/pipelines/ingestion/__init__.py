"""Waymo v2 parquet to decoded, resized, joined image/label shards."""

from waymo_unet.pipelines.ingestion.pipeline import create_pipeline

__all__ = ["create_pipeline"]
