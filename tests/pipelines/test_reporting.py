"""The reporting pipeline on a temporary catalog: every chart, the overlays and the page."""

from __future__ import annotations

import html
import io
import re

import numpy as np
import pandas as pd
import pytest
from kedro.io import DataCatalog, MemoryDataset
from kedro.runner import SequentialRunner
from kedro_datasets.pillow import ImageDataset
from kedro_datasets.text import TextDataset
from PIL import Image

from tests.tiny_shards import LABEL_CATALOG
from waymo_unet.datasets import AltairChartDataset
from waymo_unet.models.bundle import SegmentationModel
from waymo_unet.models.unet import UNetConfig, build_unet
from waymo_unet.pipelines import reporting

CHARTS = [
    "reporting_tuning_chart",
    "reporting_training_chart",
    "reporting_class_iou_chart",
    "reporting_class_distribution_chart",
    "reporting_evaluation_confusion_chart",
    "reporting_evaluation_class_iou_chart",
    "reporting_evaluation_camera_chart",
]
EVALUATION_TITLES = (
    "Waymo evaluation",
    "Waymo evaluation: confusion matrix",
    "Waymo evaluation: IoU per class",
    "Waymo evaluation: mIoU per camera",
    "Waymo evaluation: lowest weighted IoU",
)


def _evaluation_metrics(miou: float, images_without_coverage: int) -> dict:
    """The evaluation pipeline's headline numbers, as its JSON holds them."""
    return {
        "split": "validation",
        "waymo_weighted_miou": miou,
        "miou": miou - 0.01,
        "weighted_pixel_accuracy": 0.7,
        "pixel_accuracy": 0.69,
        "images": 4,
        "segments": 1,
        "quarantined_rows": 0,
        "images_without_coverage": images_without_coverage,
        "averaged_classes": ["CAR", "ROAD", "SKY"],
        "untrained_classes": ["SKY"],
    }


def _evaluation_inputs() -> dict[str, MemoryDataset]:
    """A few rows of each evaluation table, enough for every chart and the page."""
    confusion = pd.DataFrame(
        {
            "ground_truth_id": [2, 2, 20, 20, 0],
            "ground_truth": ["CAR", "CAR", "ROAD", "ROAD", "UNDEFINED"],
            "predicted_id": [2, 20, 20, 0, 20],
            "predicted": ["CAR", "ROAD", "ROAD", "UNDEFINED", "ROAD"],
            "weighted": [3.0, 1.0, 9.5, 0.5, 0.0],
            "pixels": [4, 1, 10, 1, 0],
        }
    )
    class_iou = pd.DataFrame(
        {
            "class_id": [2, 20, 25, 3],
            "name": ["CAR", "ROAD", "SKY", "TRUCK"],
            "trained": [True, True, False, True],
            "weighted_iou": [0.5, 0.9, 0.0, np.nan],
            "iou": [0.45, 0.88, 0.0, np.nan],
        }
    )
    cameras = pd.DataFrame(
        {
            "camera": [1, 2],
            "camera_name": ["FRONT", "FRONT_LEFT"],
            "images": [2, 2],
            "pixels": [768, 768],
            "weighted_miou": [0.5, 0.4],
            "miou": [0.45, 0.41],
            "weighted_pixel_accuracy": [0.7, 0.6],
        }
    )
    gallery = Image.new("RGB", (3 * 24, 2 * 16), (40, 80, 120))
    return {
        "model_output_evaluation_metrics": MemoryDataset(_evaluation_metrics(0.4321, 0)),
        "model_output_evaluation_metrics_at_training_size": MemoryDataset(
            _evaluation_metrics(0.5678, 4)
        ),
        "model_output_evaluation_confusion": MemoryDataset(confusion),
        "model_output_evaluation_class_iou": MemoryDataset(class_iou),
        "model_output_evaluation_camera_iou": MemoryDataset(cameras),
        "reporting_evaluation_gallery": MemoryDataset(gallery, copy_mode="assign"),
    }


@pytest.fixture
def catalog(tiny_shards, tmp_path) -> DataCatalog:
    store, index = tiny_shards
    config = UNetConfig(num_classes=3, base_channels=4, depth=2)
    model = SegmentationModel(build_unet(config).eval(), config, LABEL_CATALOG["classes"], (16, 24))
    trials = pd.DataFrame(
        {
            "number": [0, 1, 2],
            "value": [0.9, 0.5, np.nan],
            "state": ["COMPLETE", "COMPLETE", "PRUNED"],
            "params_learning_rate": [1e-3, 3e-3, 1e-2],
        }
    )
    history = pd.DataFrame(
        {
            "epoch": [1, 2],
            "train_loss": [1.0, 0.5],
            "val_loss": [1.1, 0.6],
            "mean_iou": [0.3, 0.5],
            "pixel_accuracy": [0.6, 0.8],
            "lr": [1e-3, 1e-4],
        }
    )
    class_iou = pd.DataFrame(
        {"class_id": [2, 20, 25], "name": ["CAR", "ROAD", "SKY"], "iou": [0.4, 0.8, np.nan]}
    )
    table = pd.DataFrame(
        {
            "class_id": [2, 20, 25],
            "name": ["CAR", "ROAD", "SKY"],
            "unknown": [False] * 3,
            "pixels_training": [10, 50, 40],
            "pixels_validation": [5, 30, 20],
        }
    )
    datasets = {name: AltairChartDataset(str(tmp_path / name)) for name in CHARTS}
    return DataCatalog(
        datasets
        | {
            "model_output_tuning_trials": MemoryDataset(trials),
            "params:tuning": MemoryDataset({"search_space": {"learning_rate": {}}}),
            "model_output_training_history": MemoryDataset(history),
            "model_output_class_iou": MemoryDataset(class_iou),
            "model_input_label_catalog_table": MemoryDataset(table),
            "models_segmentation_model": MemoryDataset(model, copy_mode="assign"),
            "primary_shard_store": MemoryDataset(store, copy_mode="assign"),
            "primary_shard_index": MemoryDataset(index),
            "params:reporting": MemoryDataset({"split": "validation", "samples": 3, "scale": 2}),
            "model_output_training_metrics": MemoryDataset({"mean_iou": 0.5}),
            "model_input_tuned_hyperparameters": MemoryDataset({}),
            "reporting_ingestion_report": MemoryDataset(pd.DataFrame({"segment": ["a"]})),
            "reporting_validation_overlays": ImageDataset(filepath=str(tmp_path / "overlays.png")),
            "reporting_index_page": TextDataset(filepath=str(tmp_path / "index.html")),
        }
        | _evaluation_inputs()
    )


def test_every_chart_is_written_as_spec_page_and_picture(catalog, tmp_path):
    SequentialRunner().run(reporting.create_pipeline(), catalog)
    for name in CHARTS:
        spec = catalog.load(name)
        assert "vega-lite" in spec["$schema"]
        picture = Image.open(io.BytesIO((tmp_path / f"{name}.png").read_bytes()))
        assert picture.width > 300
        page = (tmp_path / f"{name}.html").read_text()
        assert "<script src=" not in page


def test_overlays_and_the_index_page(catalog, tmp_path):
    SequentialRunner().run(reporting.create_pipeline(), catalog)
    overlays = catalog.load("reporting_validation_overlays")
    assert overlays.width == 3 * 24 * 2
    page = catalog.load("reporting_index_page")
    for title in ("Training", "Per-class IoU", "Validation overlays", "Hyper-parameter search"):
        assert title in page
    assert page.count("data:image/png;base64,") == 9  # 7 charts, overlays, gallery
    assert "http" not in page.replace("http-equiv", "")


def test_the_index_page_leads_with_the_waymo_evaluation(catalog):
    SequentialRunner().run(reporting.create_pipeline(), catalog)
    page = catalog.load("reporting_index_page")
    headings = re.findall(r"<h2>(.*?)</h2>", page)
    assert headings[: len(EVALUATION_TITLES)] == [html.escape(t) for t in EVALUATION_TITLES]
    assert headings[len(EVALUATION_TITLES)] == "Training"
    # Both evaluations side by side in one table, with what the numbers mean.
    text = html.unescape(page)
    assert "at the labels' size" in text
    assert "at the training size" in text
    assert "0.4321" in text
    assert "0.5678" in text
    assert "1/num_cameras_covered" in text
    assert "UNDEFINED ground truth ignored" in text
    assert "image | ground truth | prediction" in text
