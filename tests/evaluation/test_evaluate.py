"""Waymo's metric on raw v2 files, end to end: reading, decoding, prediction, scores.

The files hold SKY above the middle row and ROAD below; ``HalvesModel`` predicts exactly
that (an oracle) or ROAD everywhere, so every expected score is worked out by hand.
"""

from __future__ import annotations

import math
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest

from tests.evaluation.models import ROAD, SKY, HalvesModel
from tests.waymo_files import SEGMENT, image_row, label_row, write_segment
from waymo_unet.data import waymo
from waymo_unet.datasets import WaymoComponentDataset
from waymo_unet.evaluation import tables
from waymo_unet.evaluation.evaluate import (
    EvaluationConfig,
    WaymoEvaluation,
    evaluate_raw_files,
)
from waymo_unet.evaluation.reading import plan_evaluation

FRONT, SIDE_LEFT = 1, 4
SIZES = {FRONT: (32, 48), SIDE_LEFT: (22, 48)}  # front and side cameras differ in height


def coverage_png(height: int, width: int, top: int = 2, bottom: int = 1) -> bytes:
    """num_cameras_covered: ``top`` above the middle row, ``bottom`` below."""
    covered = np.full((height, width), bottom, np.uint8)
    covered[: height // 2] = top
    ok, encoded = cv2.imencode(".png", covered)
    assert ok
    return encoded.tobytes()


def rows(frames: int, cameras=(FRONT, SIDE_LEFT), coverage: bool = True):
    images, labels = [], []
    for frame in range(frames):
        for camera in cameras:
            height, width = SIZES[camera]
            images.append(image_row(frame, camera, height, width))
            label = label_row(frame, camera, height, width)
            if coverage:
                label[waymo.NUM_CAMERAS_COVERED_COLUMN] = coverage_png(height, width)
            labels.append(label)
    return images, labels


def evaluate(root: Path, model: HalvesModel | None = None, **params) -> WaymoEvaluation:
    images = WaymoComponentDataset(str(root), waymo.CAMERA_IMAGE).load()
    labels = WaymoComponentDataset(str(root), waymo.CAMERA_SEGMENTATION).load()
    config = EvaluationConfig(batch_size=3, device="cpu", precision="fp32", **params)
    segments = plan_evaluation(images, labels, config.split, config.max_segments)
    return evaluate_raw_files(model or HalvesModel(), segments, config)


@pytest.fixture
def two_cameras(tmp_path: Path) -> Path:
    write_segment(tmp_path, *rows(frames=2), split="validation")
    return tmp_path


def test_a_perfect_model_scores_one_at_the_labels_size(two_cameras):
    model = HalvesModel()
    evaluation = evaluate(two_cameras, model)
    metrics = tables.evaluation_metrics(evaluation, model.waymo_ids, "validation")
    assert metrics["waymo_weighted_miou"] == metrics["miou"] == 1.0
    assert metrics["images"] == 4
    assert metrics["quarantined_rows"] == 0
    assert metrics["pixels"] == 2 * (32 * 48 + 22 * 48)  # every label pixel, full size
    assert metrics["averaged_classes"] == ["ROAD", "SKY"]
    # The model saw every image at its own size, never the label's.
    assert {shape[1:3] for shape in model.calls} == {model.image_size}


def test_coverage_two_halves_the_weight_of_the_misses(two_cameras):
    # ROAD everywhere: SKY (coverage 2, the top half) is all missed. Per image of h rows,
    # ROAD's IoU is (h/2) / (h/2 + h/2 * 1/2) = 2/3 weighted and 1/2 plain; SKY's is 0.
    model = HalvesModel(top=ROAD, bottom=ROAD)
    evaluation = evaluate(two_cameras, model)
    metrics = tables.evaluation_metrics(evaluation, model.waymo_ids, "validation")
    assert metrics["waymo_weighted_miou"] == pytest.approx((2 / 3 + 0) / 2)
    assert metrics["miou"] == pytest.approx((1 / 2 + 0) / 2)
    assert metrics["weighted_pixels"] == pytest.approx(0.75 * metrics["pixels"])
    assert evaluation.images["weighted_miou"].tolist() == pytest.approx([1 / 3] * 4)
    classes = tables.class_table(evaluation, model.waymo_ids).set_index("name")
    assert classes.loc["SKY", "iou"] == 0
    assert classes.loc["SKY", "predicted_pixels"] == 0
    assert classes.loc["ROAD", "weighted_iou"] == pytest.approx(2 / 3)
    assert math.isnan(classes.loc["CAR", "iou"])  # absent from both sides: not averaged


def test_camera_and_segment_tables_add_up_to_the_whole(two_cameras):
    evaluation = evaluate(two_cameras, HalvesModel(top=ROAD, bottom=ROAD))
    cameras = tables.camera_table(evaluation)
    segments = tables.segment_table(evaluation)
    total = int(evaluation.confusion.counts.sum())
    assert cameras["pixels"].sum() == segments["pixels"].sum() == total
    assert cameras["camera_name"].tolist() == ["FRONT", "SIDE_LEFT"]
    assert cameras["images"].tolist() == [2, 2]
    assert segments.loc[0, "images_scored"] == 4
    assert segments.loc[0, "status"] == "evaluated"
    cells = tables.confusion_table(evaluation)
    assert len(cells) == 29 * 29
    assert cells["pixels"].sum() == total
    road_row = cells[cells["ground_truth"] == "SKY"].set_index("predicted")
    assert road_row.loc["ROAD", "weighted"] == pytest.approx(0.5 * road_row.loc["ROAD", "pixels"])


def test_a_corrupt_label_is_quarantined_and_counted_not_dropped(tmp_path):
    images, labels = rows(frames=2)
    labels[1][waymo.PANOPTIC_LABEL_COLUMN] = b"\x89PNG broken"
    write_segment(tmp_path, images, labels, split="validation")
    evaluation = evaluate(tmp_path)
    assert len(evaluation.images) == 3
    quarantine = tables.quarantine_table(evaluation)
    assert len(quarantine) == 1
    assert quarantine.loc[0, "camera"] == SIDE_LEFT
    assert "panoptic label" in quarantine.loc[0, "reason"]
    assert quarantine.loc[0, "file"].endswith(f"camera_segmentation/{SEGMENT}.parquet")
    assert tables.evaluation_metrics(evaluation, [ROAD, SKY], "validation")["quarantined_rows"] == 1


def test_labels_without_coverage_count_one_and_are_counted(tmp_path):
    write_segment(tmp_path, *rows(frames=1, coverage=False), split="validation")
    evaluation = evaluate(tmp_path, HalvesModel(top=ROAD, bottom=ROAD))
    metrics = tables.evaluation_metrics(evaluation, [ROAD, SKY], "validation")
    assert metrics["images_without_coverage"] == 2
    assert metrics["waymo_weighted_miou"] == metrics["miou"] == pytest.approx(0.25)


def test_a_coverage_of_the_wrong_size_is_quarantined(tmp_path):
    images, labels = rows(frames=1)
    labels[0][waymo.NUM_CAMERAS_COVERED_COLUMN] = coverage_png(4, 4)
    write_segment(tmp_path, images, labels, split="validation")
    evaluation = evaluate(tmp_path)
    reasons = tables.quarantine_table(evaluation)["reason"].tolist()
    assert reasons == ["num_cameras_covered size 4x4 differs from the label's 48x32"]


def test_a_segment_without_labels_is_listed_with_its_reason(tmp_path):
    write_segment(tmp_path, *rows(frames=1), split="validation")
    write_segment(
        tmp_path, rows(frames=1)[0], None, split="validation", segment="2000000000000000002_1"
    )
    evaluation = evaluate(tmp_path)
    segments = tables.segment_table(evaluation).set_index("segment")
    assert segments.loc["2000000000000000002_1", "status"] == "no_label_file"
    assert segments.loc["2000000000000000002_1", "images_scored"] == 0
    assert pd.isna(segments.loc["2000000000000000002_1", "weighted_miou"])
    assert segments.loc[SEGMENT, "images_scored"] == 2


def test_max_segments_and_cameras_narrow_what_is_scored(tmp_path):
    for name in ("3000000000000000003_1", "4000000000000000004_1"):
        write_segment(tmp_path, *rows(frames=1), split="validation", segment=name)
    evaluation = evaluate(tmp_path, max_segments=1, cameras=(FRONT,))
    assert evaluation.images["segment"].unique().tolist() == ["3000000000000000003_1"]
    assert evaluation.images["camera"].tolist() == [FRONT]


def test_a_split_without_files_is_named(two_cameras):
    with pytest.raises(ValueError, match="split 'testing' has no camera_image files"):
        evaluate(two_cameras, split="testing")


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"batch_size": 0}, "batch_size must be >= 1"),
        ({"cameras": [7]}, r"unknown camera id\(s\) \[7\]"),
        ({"max_segment": 2}, "max_segment"),
    ],
)
def test_bad_parameters_are_named(params, message):
    with pytest.raises(ValueError, match=message):
        EvaluationConfig.from_params(params)
