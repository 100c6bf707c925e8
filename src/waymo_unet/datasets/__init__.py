"""Kedro datasets for what kedro-datasets has no type for: Waymo parquet folders, stores,
models, and what kedro-mlflow does not record (tags, nested runs, the registered model)."""

from waymo_unet.datasets.altair_chart import AltairChartDataset
from waymo_unet.datasets.camera_images import CameraImagesDataset, LatestRunPartitionsDataset
from waymo_unet.datasets.deployed_model import (
    DeployedModelDataset,
    MlflowDeployedModelDataset,
    MlflowRegisteredModelDataset,
)
from waymo_unet.datasets.mlflow_runs import (
    MlflowEpochLoggerDataset,
    MlflowMetricSeriesDataset,
    MlflowNestedRunsDataset,
    MlflowParamsDataset,
    MlflowTagsDataset,
)
from waymo_unet.datasets.optional_json import OptionalJSONDataset
from waymo_unet.datasets.preview_image import PreviewImageDataset
from waymo_unet.datasets.segmentation_model import SegmentationModelDataset
from waymo_unet.datasets.stores import CheckpointStoreDataset, ShardStoreDataset, StudyStoreDataset
from waymo_unet.datasets.waymo_component import WaymoComponentDataset

__all__ = [
    "AltairChartDataset",
    "CameraImagesDataset",
    "CheckpointStoreDataset",
    "DeployedModelDataset",
    "LatestRunPartitionsDataset",
    "MlflowDeployedModelDataset",
    "MlflowEpochLoggerDataset",
    "MlflowMetricSeriesDataset",
    "MlflowNestedRunsDataset",
    "MlflowParamsDataset",
    "MlflowRegisteredModelDataset",
    "MlflowTagsDataset",
    "OptionalJSONDataset",
    "PreviewImageDataset",
    "SegmentationModelDataset",
    "ShardStoreDataset",
    "StudyStoreDataset",
    "WaymoComponentDataset",
]
