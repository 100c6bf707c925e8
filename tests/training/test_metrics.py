"""Confusion-matrix metrics against small matrices worked out by hand."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.nn.functional as F  # noqa: N812

from waymo_unet.training.metrics import (
    ConfusionMatrix,
    SegmentationMetrics,
    majority_class_metrics,
    metrics_from_matrix,
)

NAN = math.nan

# Three classes, one ignored pixel (255). Non-ignored (target, prediction) pairs:
# (0,0) (0,1) (1,1) (2,2) / (1,0) (2,2) (2,1); the (255, 2) pixel is skipped.
TARGETS = torch.tensor([[[0, 0, 1, 2], [1, 255, 2, 2]]], dtype=torch.uint8)
PREDICTIONS = torch.tensor([[[0, 1, 1, 2], [0, 2, 2, 1]]])
# rows = target, cols = prediction. Row sums 2, 2, 3; column sums 2, 3, 2; trace 4 of 7.
EXPECTED_MATRIX = torch.tensor([[1, 1, 0], [1, 1, 0], [0, 1, 2]], dtype=torch.int64)
# IoU = TP / (row + col - TP): 1/(2+2-1), 1/(2+3-1), 2/(3+2-2).
EXPECTED_IOU = [1 / 3, 1 / 4, 2 / 3]
EXPECTED_MEAN_IOU = 5 / 12  # (4/12 + 3/12 + 8/12) / 3
EXPECTED_RECALL = [1 / 2, 1 / 2, 2 / 3]


def example_matrix() -> ConfusionMatrix:
    confusion = ConfusionMatrix(num_classes=3, ignore_index=255)
    confusion.update(PREDICTIONS, TARGETS)
    return confusion


def assert_metrics(
    metrics: SegmentationMetrics,
    *,
    pixel_accuracy: float,
    mean_iou: float,
    per_class_iou: list[float],
    per_class_accuracy: list[float],
    pixels: int,
) -> None:
    assert metrics.pixel_accuracy == pytest.approx(pixel_accuracy, nan_ok=True)
    assert metrics.mean_iou == pytest.approx(mean_iou, nan_ok=True)
    assert metrics.per_class_iou == pytest.approx(per_class_iou, nan_ok=True)
    assert metrics.per_class_accuracy == pytest.approx(per_class_accuracy, nan_ok=True)
    assert metrics.pixels == pixels


def test_matrix_counts_pairs_and_skips_the_ignore_index() -> None:
    matrix = example_matrix().matrix
    assert matrix.dtype == torch.int64
    assert torch.equal(matrix, EXPECTED_MATRIX)


def test_matches_the_bincount_definition() -> None:
    generator = torch.Generator().manual_seed(0)
    targets = torch.randint(0, 5, (3, 7, 9), generator=generator)
    targets[targets == 4] = 255  # class 4 stands for "ignored" here
    predictions = torch.randint(0, 4, (3, 7, 9), generator=generator)
    keep = targets != 255
    expected = torch.bincount(4 * targets[keep] + predictions[keep], minlength=16).reshape(4, 4)
    confusion = ConfusionMatrix(num_classes=4)
    confusion.update(predictions, targets)
    assert torch.equal(confusion.matrix, expected)


def test_metric_values_by_hand() -> None:
    assert_metrics(
        example_matrix().compute(),
        pixel_accuracy=4 / 7,
        mean_iou=EXPECTED_MEAN_IOU,
        per_class_iou=EXPECTED_IOU,
        per_class_accuracy=EXPECTED_RECALL,
        pixels=7,
    )


def test_logits_are_reduced_by_argmax_over_dim_1() -> None:
    noise = torch.rand(1, 3, 2, 4, generator=torch.Generator().manual_seed(1))
    logits = 5.0 * F.one_hot(PREDICTIONS, 3).permute(0, 3, 1, 2) + noise
    confusion = ConfusionMatrix(num_classes=3)
    confusion.update(logits, TARGETS)
    assert torch.equal(confusion.matrix, EXPECTED_MATRIX)


def test_logits_with_the_wrong_number_of_channels_raise() -> None:
    with pytest.raises(ValueError, match="channels"):
        ConfusionMatrix(num_classes=4).update(torch.zeros(1, 3, 2, 4), TARGETS)


def test_several_updates_equal_one_update_over_the_concatenation() -> None:
    generator = torch.Generator().manual_seed(2)
    targets = torch.randint(0, 4, (6, 5, 5), generator=generator)
    targets[targets == 3] = 255
    predictions = torch.randint(0, 3, (6, 5, 5), generator=generator)
    in_batches = ConfusionMatrix(num_classes=3)
    for batch_predictions, batch_targets in zip(
        predictions.split(2), targets.split(2), strict=True
    ):
        in_batches.update(batch_predictions, batch_targets)
    at_once = ConfusionMatrix(num_classes=3)
    at_once.update(predictions, targets)
    assert torch.equal(in_batches.matrix, at_once.matrix)
    assert in_batches.compute() == at_once.compute()


def test_hand_example_split_in_two_updates() -> None:
    confusion = ConfusionMatrix(num_classes=3)
    confusion.update(PREDICTIONS[:, :1], TARGETS[:, :1])
    confusion.update(PREDICTIONS[:, 1:], TARGETS[:, 1:])
    assert torch.equal(confusion.matrix, EXPECTED_MATRIX)


def test_class_absent_from_targets_and_predictions_is_nan_and_left_out_of_the_mean() -> None:
    confusion = ConfusionMatrix(num_classes=3)
    confusion.update(torch.tensor([[[0, 1, 0]]]), torch.tensor([[[0, 1, 1]]]))
    # [[1, 0, 0], [1, 1, 0], [0, 0, 0]]: IoU 1/(1+2-1), 1/(2+1-1), class 2 absent.
    assert torch.equal(confusion.matrix, torch.tensor([[1, 0, 0], [1, 1, 0], [0, 0, 0]]))
    assert_metrics(
        confusion.compute(),
        pixel_accuracy=2 / 3,
        mean_iou=1 / 2,
        per_class_iou=[1 / 2, 1 / 2, NAN],
        per_class_accuracy=[1, 1 / 2, NAN],
        pixels=3,
    )


def test_class_predicted_but_never_a_target_scores_zero_iou_and_counts_in_the_mean() -> None:
    confusion = ConfusionMatrix(num_classes=2)
    confusion.update(torch.tensor([[[0, 1]]]), torch.tensor([[[0, 0]]]))
    # [[1, 1], [0, 0]]: IoU 1/(2+1-1) and 0/(0+1-0); recall of class 1 undefined.
    assert_metrics(
        confusion.compute(),
        pixel_accuracy=1 / 2,
        mean_iou=1 / 4,
        per_class_iou=[1 / 2, 0],
        per_class_accuracy=[1 / 2, NAN],
        pixels=2,
    )


@pytest.mark.parametrize(
    ("predictions", "targets"),
    [
        pytest.param([[[0, 1]]], [[[0, 3]]], id="target-equal-to-num-classes"),
        pytest.param([[[0, 1]]], [[[0, 254]]], id="target-near-ignore-index"),
        pytest.param([[[0, 1]]], [[[0, -1]]], id="negative-target"),
        pytest.param([[[0, 3]]], [[[0, 1]]], id="prediction-out-of-range"),
    ],
)
def test_invalid_labels_raise_and_leave_the_counts_alone(predictions: list, targets: list) -> None:
    confusion = example_matrix()
    with pytest.raises(ValueError, match="outside"):
        confusion.update(torch.tensor(predictions), torch.tensor(targets))
    assert torch.equal(confusion.matrix, EXPECTED_MATRIX)


def test_prediction_at_an_ignored_pixel_is_not_checked() -> None:
    confusion = ConfusionMatrix(num_classes=3)
    confusion.update(torch.tensor([[[0, 99]]]), torch.tensor([[[0, 255]]]))
    assert confusion.compute().pixels == 1


def test_off_cpu_invalid_labels_raise_at_compute(monkeypatch: pytest.MonkeyPatch) -> None:
    """Off CPU, ``update`` does not read back; the error surfaces on the next read."""
    monkeypatch.setattr(ConfusionMatrix, "_validates_eagerly", lambda self: False)
    confusion = ConfusionMatrix(num_classes=3)
    confusion.update(torch.tensor([[[0, 1]]]), torch.tensor([[[0, 7]]]))
    with pytest.raises(ValueError, match="1 pixels"):
        confusion.compute()
    with pytest.raises(ValueError, match="outside"):
        _ = confusion.matrix
    confusion.reset()
    confusion.update(PREDICTIONS, TARGETS)
    assert torch.equal(confusion.matrix, EXPECTED_MATRIX)


def test_float_targets_and_mismatched_shapes_are_rejected() -> None:
    confusion = ConfusionMatrix(num_classes=3)
    with pytest.raises(TypeError, match="targets"):
        confusion.update(PREDICTIONS, TARGETS.float())
    with pytest.raises(TypeError, match="predictions"):
        confusion.update(PREDICTIONS.float(), TARGETS)
    with pytest.raises(ValueError, match="shape"):
        confusion.update(PREDICTIONS[:, :, :3], TARGETS)


def test_reset_clears_the_counts() -> None:
    confusion = example_matrix()
    confusion.reset()
    assert torch.equal(confusion.matrix, torch.zeros(3, 3, dtype=torch.int64))
    confusion.update(PREDICTIONS, TARGETS)
    assert torch.equal(confusion.matrix, EXPECTED_MATRIX)


def test_no_pixels_give_nan_scores() -> None:
    confusion = ConfusionMatrix(num_classes=2)
    confusion.update(torch.tensor([[[0, 1]]]), torch.tensor([[[255, 255]]]))
    assert_metrics(
        confusion.compute(),
        pixel_accuracy=NAN,
        mean_iou=NAN,
        per_class_iou=[NAN, NAN],
        per_class_accuracy=[NAN, NAN],
        pixels=0,
    )


def test_merge_and_iadd_add_the_counts() -> None:
    first = ConfusionMatrix(num_classes=3)
    first.update(PREDICTIONS[:, :1], TARGETS[:, :1])
    second = ConfusionMatrix(num_classes=3)
    second.update(PREDICTIONS[:, 1:], TARGETS[:, 1:])
    assert first.merge(second) is first
    assert torch.equal(first.matrix, EXPECTED_MATRIX)
    first += second
    assert torch.equal(first.matrix, EXPECTED_MATRIX + second.matrix)
    assert torch.equal(second.matrix, torch.tensor([[0, 0, 0], [1, 0, 0], [0, 1, 1]]))


def test_merge_refuses_a_different_layout() -> None:
    with pytest.raises(ValueError, match="merge"):
        ConfusionMatrix(num_classes=3).merge(ConfusionMatrix(num_classes=4))
    with pytest.raises(ValueError, match="merge"):
        ConfusionMatrix(num_classes=3).merge(ConfusionMatrix(num_classes=3, ignore_index=0))


def test_all_reduce_is_a_no_op_without_a_process_group() -> None:
    assert not (dist.is_available() and dist.is_initialized())
    confusion = example_matrix()
    confusion.all_reduce()
    assert torch.equal(confusion.matrix, EXPECTED_MATRIX)


@pytest.mark.skipif(not (dist.is_available() and dist.is_gloo_available()), reason="needs gloo")
def test_all_reduce_in_a_single_rank_gloo_group_keeps_the_counts(tmp_path: Path) -> None:
    confusion = example_matrix()
    dist.init_process_group(
        "gloo", init_method=f"file://{tmp_path / 'store'}", rank=0, world_size=1
    )
    try:
        confusion.all_reduce()
    finally:
        dist.destroy_process_group()
    assert torch.equal(confusion.matrix, EXPECTED_MATRIX)


def test_majority_class_baseline_by_hand() -> None:
    # Row sums 2, 2, 3: always predicting class 2 is right on 3 of 7 pixels, its IoU is
    # 3 / (3 + 7 - 3), the other two classes score 0.
    baseline = majority_class_metrics(EXPECTED_MATRIX)
    assert_metrics(
        baseline,
        pixel_accuracy=3 / 7,
        mean_iou=1 / 7,
        per_class_iou=[0, 0, 3 / 7],
        per_class_accuracy=[0, 0, 1],
        pixels=7,
    )
    assert example_matrix().compute().mean_iou > baseline.mean_iou


def test_majority_baseline_ties_go_to_the_lower_class_and_absent_classes_are_nan() -> None:
    baseline = majority_class_metrics(torch.tensor([[0, 2, 0], [2, 0, 0], [0, 0, 0]]))
    assert_metrics(
        baseline,
        pixel_accuracy=1 / 2,
        mean_iou=1 / 4,
        per_class_iou=[1 / 2, 0, NAN],
        per_class_accuracy=[1, 0, NAN],
        pixels=4,
    )


def test_metrics_from_matrix_rejects_a_non_square_matrix() -> None:
    with pytest.raises(ValueError, match="square"):
        metrics_from_matrix(torch.zeros(2, 3))


def test_to_dict_is_flat_plain_floats() -> None:
    metrics = example_matrix().compute()
    flat = metrics.to_dict(["car", "road", "sky"])
    assert all(type(value) is float for value in flat.values())
    assert flat["pixel_accuracy"] == pytest.approx(4 / 7)
    assert flat["mean_iou"] == pytest.approx(EXPECTED_MEAN_IOU)
    assert flat["pixels"] == 7.0
    assert flat["iou/road"] == pytest.approx(1 / 4)
    assert flat["accuracy/sky"] == pytest.approx(2 / 3)
    assert set(metrics.to_dict()) == {
        "pixel_accuracy",
        "mean_iou",
        "pixels",
        *(f"{kind}/{c}" for kind in ("iou", "accuracy") for c in range(3)),
    }
    with pytest.raises(ValueError, match="class names"):
        metrics.to_dict(["car"])


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_update_does_not_synchronise() -> None:
    device = torch.device("cuda")
    confusion = ConfusionMatrix(num_classes=3, device=device)
    logits = torch.randn(2, 3, 2, 4, device=device)
    targets = TARGETS.to(device).expand(2, -1, -1)
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        confusion.update(logits, targets)
        confusion.update(torch.full_like(targets, 7), targets)  # invalid: deferred
    finally:
        torch.cuda.set_sync_debug_mode("default")
    with pytest.raises(ValueError, match="outside"):
        confusion.compute()
