"""Charts of tuning and training, per-class results, overlays and one report page."""

from waymo_unet.pipelines.reporting.pipeline import create_pipeline

__all__ = ["create_pipeline"]
