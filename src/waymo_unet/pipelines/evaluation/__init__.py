"""Score the deployed model with Waymo's own metric, at the labels' size."""

from waymo_unet.pipelines.evaluation.pipeline import create_pipeline

__all__ = ["create_pipeline"]
