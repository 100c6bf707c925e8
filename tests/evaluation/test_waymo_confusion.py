"""Waymo's coverage-weighted confusion matrices, counted on tiny images and random batches."""

from __future__ import annotations

import pytest
import torch

from waymo_unet.evaluation.waymo_confusion import (
    MISS_COLUMN,
    NUM_WAYMO_IDS,
    WaymoConfusion,
    image_matrices,
)

# Waymo ids used below.
CAR, TRUCK = 2, 3


def ids(rows: list[list[int]]) -> torch.Tensor:
    return torch.tensor(rows, dtype=torch.int64)


def coverage(rows: list[list[int]]) -> torch.Tensor:
    return torch.tensor(rows, dtype=torch.uint8)


def accumulate(gt, pred, cov=None, camera=1, segment="s") -> WaymoConfusion:
    confusion = WaymoConfusion()
    confusion.update(gt, pred, cameras=[camera], segments=[segment], coverage=cov)
    return confusion


def random_batch(generator: torch.Generator, n: int = 4, h: int = 3, w: int = 5):
    gt = torch.randint(0, NUM_WAYMO_IDS, (n, h, w), generator=generator)
    pred = torch.randint(-1, NUM_WAYMO_IDS + 2, (n, h, w), generator=generator)
    cov = torch.randint(1, 3, (n, h, w), generator=generator).to(torch.uint8)
    return gt, pred, cov


def test_camera_and_segment_matrices_add_up_to_the_overall_one() -> None:
    gt, pred, cov = random_batch(torch.Generator().manual_seed(0), n=3)
    confusion = WaymoConfusion()
    confusion.update(gt, pred, cameras=[1, 2, 1], segments=["a", "a", "b"], coverage=cov)

    for groups, keys in ((confusion.by_camera, {1, 2}), (confusion.by_segment, {"a", "b"})):
        assert set(groups) == keys
        assert torch.equal(sum(w for w, _ in groups.values()), confusion.weighted)
        assert torch.equal(sum(c for _, c in groups.values()), confusion.counts)
    # a group holds its own images only: camera 2 is image 1, segment "b" image 2
    single = image_matrices(gt[1], pred[1], cov[1])
    assert torch.equal(confusion.by_camera[2][0], single.weighted[0])
    assert torch.equal(confusion.by_segment["b"][1], image_matrices(gt[2], pred[2]).counts[0])
    assert not torch.equal(confusion.by_camera[2][0], confusion.weighted)


def test_image_without_coverage_counts_as_one_and_is_counted() -> None:
    gt = ids([[CAR, TRUCK]])
    pred = ids([[CAR, CAR]])
    confusion = WaymoConfusion()
    confusion.update(gt, pred, cameras=[1], segments=["s"])
    # no coverage: each pixel weighs 1, so the weighted matrix equals the counts
    assert torch.equal(confusion.weighted, confusion.counts.to(torch.float64))
    assert confusion.weighted[TRUCK, CAR].item() == 1.0
    confusion.update(gt, pred, cameras=[1], segments=["s"], coverage=coverage([[2, 2]]))
    # 1 + 1/2 in both cells now; two images, one of them without coverage
    assert confusion.weighted[TRUCK, CAR].item() == 1.5
    assert confusion.weighted[CAR, CAR].item() == 1.5
    assert (confusion.images, confusion.images_without_coverage) == (2, 1)


def test_batched_accumulation_equals_per_image_accumulation() -> None:
    gt, pred, cov = random_batch(torch.Generator().manual_seed(1), n=4)
    cameras, segments = [1, 3, 1, 5], ["a", "b", "b", "a"]
    batched, single = WaymoConfusion(), WaymoConfusion()
    batched.update(gt, pred, cameras=cameras, segments=segments, coverage=cov)
    for i in range(4):
        single.update(gt[i], pred[i], cameras=[cameras[i]], segments=[segments[i]], coverage=cov[i])

    assert torch.equal(batched.weighted, single.weighted)
    assert torch.equal(batched.counts, single.counts)
    for mine, theirs in (
        (batched.by_camera, single.by_camera),
        (batched.by_segment, single.by_segment),
    ):
        assert mine.keys() == theirs.keys()
        for key, (weighted, counts) in mine.items():
            assert torch.equal(weighted, theirs[key][0])
            assert torch.equal(counts, theirs[key][1])
    assert (batched.images, batched.undefined_pixels) == (4, single.undefined_pixels)
    # and merging two halves gives the same again
    half = WaymoConfusion()
    half.update(gt[:2], pred[:2], cameras=cameras[:2], segments=segments[:2], coverage=cov[:2])
    rest = WaymoConfusion()
    rest.update(gt[2:], pred[2:], cameras=cameras[2:], segments=segments[2:], coverage=cov[2:])
    merged = half.merge(rest)
    assert torch.equal(merged.weighted, batched.weighted)
    assert torch.equal(merged.by_segment["a"][1], batched.by_segment["a"][1])


def test_ground_truth_outside_waymo_ids_is_left_out_and_counted() -> None:
    # 2**32 + 2 would read as CAR if cast to int32 before the range test
    confusion = accumulate(ids([[CAR, 40, 2**32 + 2]]), ids([[CAR, CAR, 2**32 + 2]]))
    assert confusion.counts.sum().item() == 1
    assert confusion.invalid_pixels == 2
    # a prediction of 2**32 + 2 on a car pixel is a miss, not a hit
    wrapped = accumulate(ids([[CAR]]), ids([[2**32 + 2]]))
    assert wrapped.counts[CAR, MISS_COLUMN].item() == 1


def test_inputs_are_checked() -> None:
    confusion = WaymoConfusion()
    with pytest.raises(ValueError, match="differ in shape"):
        confusion.update(ids([[1, 2]]), ids([[1]]), cameras=[1], segments=["s"])
    with pytest.raises(ValueError, match="2 cameras keys for 1 images"):
        confusion.update(ids([[1, 2]]), ids([[1, 2]]), cameras=[1, 2], segments=["s"])
    with pytest.raises(TypeError, match="one key per image"):
        confusion.update(ids([[1, 2]]), ids([[1, 2]]), cameras=[1], segments="s")
    with pytest.raises(TypeError, match="integer class ids"):
        image_matrices(ids([[1, 2]]), torch.zeros(1, 2))
    assert confusion.images == 0


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_update_does_not_synchronise_and_matches_cpu() -> None:
    gt, pred, cov = random_batch(torch.Generator().manual_seed(2), n=3, h=16, w=24)
    device = torch.device("cuda")
    on_gpu = WaymoConfusion(device)
    gt_d, pred_d, cov_d = gt.to(device), pred.to(device), cov.to(device)
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        on_gpu.update(gt_d, pred_d, cameras=[1, 2, 3], segments=["a", "a", "b"], coverage=cov_d)
        on_gpu.update(gt_d, pred_d, cameras=[1, 2, 3], segments=["a", "a", "b"])
    finally:
        torch.cuda.set_sync_debug_mode("default")
    on_cpu = WaymoConfusion()
    on_cpu.update(gt, pred, cameras=[1, 2, 3], segments=["a", "a", "b"], coverage=cov)
    on_cpu.update(gt, pred, cameras=[1, 2, 3], segments=["a", "a", "b"])
    assert torch.equal(on_gpu.weighted.cpu(), on_cpu.weighted)
    assert torch.equal(on_gpu.counts.cpu(), on_cpu.counts)
