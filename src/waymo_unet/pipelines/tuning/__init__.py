"""Hyper-parameter search: an Optuna study of short training runs on a subset."""

from waymo_unet.pipelines.tuning.pipeline import create_pipeline

__all__ = ["create_pipeline"]
