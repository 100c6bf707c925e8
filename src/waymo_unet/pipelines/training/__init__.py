"""The final U-Net, trained on the ingested shards with the label catalogue's classes."""

from waymo_unet.pipelines.training.pipeline import create_pipeline

__all__ = ["create_pipeline"]
