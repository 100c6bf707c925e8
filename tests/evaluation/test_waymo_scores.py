"""Waymo's scores, checked against hand-computed values on tiny images."""

from __future__ import annotations

import math

import pytest
import torch

from tests.evaluation.test_waymo_confusion import accumulate, coverage, ids
from waymo_unet.evaluation.waymo_confusion import MISS_COLUMN
from waymo_unet.evaluation.waymo_scores import (
    EVALUATED_CLASSES,
    untrained_classes,
    waymo_scores,
)

# Waymo ids used below.
CAR, TRUCK, BUS = 2, 3, 4


def test_coverage_two_halves_a_pixel_and_moves_iou() -> None:
    gt = ids([[CAR, CAR], [TRUCK, TRUCK]])
    pred = ids([[CAR, TRUCK], [TRUCK, TRUCK]])
    cov = coverage([[1, 2], [1, 1]])  # the missed car pixel is seen by two cameras
    confusion = accumulate(gt, pred, cov)
    weighted, plain = waymo_scores(confusion.weighted), waymo_scores(confusion.counts)

    assert confusion.weighted[CAR, TRUCK].item() == 0.5  # 1 / 2
    # weighted: car tp 1, fn 0.5 -> 1 / 1.5 = 2/3; truck tp 2, fp 0.5 -> 2 / 2.5 = 0.8
    assert weighted.per_class_iou[CAR] == pytest.approx(2 / 3)
    assert weighted.per_class_iou[TRUCK] == pytest.approx(0.8)
    assert weighted.mean_iou == pytest.approx((2 / 3 + 0.8) / 2)  # = 11/15
    assert weighted.pixel_accuracy == pytest.approx(3 / 3.5)  # diagonal 3 of weight 3.5
    assert weighted.pixels == 3.5
    # plain: car 1 / (1 + 1) = 1/2; truck 2 / (2 + 1) = 2/3; mean 7/12
    assert plain.per_class_iou[CAR] == pytest.approx(1 / 2)
    assert plain.mean_iou == pytest.approx(7 / 12)
    assert plain.pixel_accuracy == pytest.approx(3 / 4)
    # so the halved weight moves the mean by 11/15 - 7/12 = 44/60 - 35/60 = 3/20
    assert weighted.mean_iou - plain.mean_iou == pytest.approx(3 / 20)
    assert confusion.images_without_coverage == 0


def test_undefined_ground_truth_is_left_out() -> None:
    gt = ids([[0, 0], [CAR, CAR]])
    pred = ids([[CAR, TRUCK], [CAR, CAR]])  # predictions on UNDEFINED must not count
    confusion = accumulate(gt, pred)
    scores = waymo_scores(confusion.weighted)

    # counted: 2 car pixels, both right -> car IoU 2 / 2 = 1; truck's union is empty
    assert confusion.counts.sum().item() == 2
    assert confusion.undefined_pixels == 2
    assert scores.per_class_iou[CAR] == 1.0  # would be 2 / 3 if (0, 0) counted as fp
    assert math.isnan(scores.per_class_iou[TRUCK])
    assert scores.averaged_classes == (CAR,)
    assert scores.mean_iou == 1.0


def test_undefined_or_unknown_prediction_on_a_labelled_pixel_is_a_miss() -> None:
    gt = ids([[CAR, CAR], [CAR, CAR]])
    pred = ids([[CAR, CAR], [CAR, 0]])
    scores = waymo_scores(accumulate(gt, pred).counts)
    # car: tp 3, fn 1 -> 3 / 4; UNDEFINED's column is not a class averaged
    assert scores.per_class_iou[CAR] == pytest.approx(3 / 4)
    assert scores.mean_iou == pytest.approx(3 / 4)
    assert scores.averaged_classes == (CAR,)
    assert scores.predicted_pixels[MISS_COLUMN] == 1
    assert math.isnan(scores.per_class_iou[0])

    # ids outside 0..28 (29, 255, -1) are misses too, recorded in UNDEFINED's column
    outside = waymo_scores(accumulate(gt, ids([[CAR, 29], [255, -1]])).counts)
    assert outside.per_class_iou[CAR] == pytest.approx(1 / 4)  # tp 1, fn 3
    assert outside.ground_truth_pixels[CAR] == 4  # the row keeps the class's whole weight
    assert outside.predicted_pixels[MISS_COLUMN] == 3
    assert outside.pixel_accuracy == pytest.approx(1 / 4)


def test_classes_absent_from_both_sides_are_not_averaged() -> None:
    scores = waymo_scores(accumulate(ids([[CAR, TRUCK]]), ids([[CAR, CAR]])).weighted)
    # car: tp 1, fp 1 -> 1/2; truck: tp 0, fn 1 -> 0; mean (1/2 + 0) / 2 = 1/4
    # (averaging all 28 classes would give 0.5 / 28)
    assert scores.averaged_classes == (CAR, TRUCK)
    assert scores.mean_iou == pytest.approx(1 / 4)
    assert all(math.isnan(scores.per_class_iou[c]) for c in EVALUATED_CLASSES if c > TRUCK)


def test_class_never_trained_scores_zero_and_is_listed() -> None:
    trained = {0, CAR, TRUCK}  # BUS was never trained, so the model cannot predict it
    gt = ids([[CAR, BUS]])
    pred = ids([[CAR, CAR]])
    scores = waymo_scores(accumulate(gt, pred).weighted)
    # car: tp 1, fp 1 -> 1/2; bus: tp 0, fn 1 -> 0; mean 1/4. TRUCK is trained but absent.
    assert scores.per_class_iou[BUS] == 0.0
    assert scores.mean_iou == pytest.approx(1 / 4)
    assert untrained_classes(scores, trained) == (BUS,)
    assert untrained_classes(scores, {*trained, BUS}) == ()
    with pytest.raises(ValueError, match="not Waymo"):
        untrained_classes(scores, {CAR, 29})


def test_matrix_shape_is_checked() -> None:
    with pytest.raises(ValueError, match="29x29"):
        waymo_scores(torch.zeros(3, 3))
