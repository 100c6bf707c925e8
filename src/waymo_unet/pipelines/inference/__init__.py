"""Segment new camera images with the trained model: label PNGs and overlays."""

from waymo_unet.pipelines.inference.pipeline import create_pipeline

__all__ = ["create_pipeline"]
