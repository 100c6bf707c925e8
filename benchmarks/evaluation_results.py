"""The evaluation section's results: each path's rates and scores, and how the paths agree.

Torch-free: ``benchmarks.evaluation`` measures, this holds what it found and the notes
printed under its table.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class PathResult:
    """One way of evaluating: images scored, rates of every run, scores of the last."""

    method: str
    precision: str
    batch: int
    images: int
    images_per_s: float  # the median run's (the lower middle one of an even count)
    rates: tuple[float, ...]  # every run's, in the order run
    weighted_miou: float
    miou: float


@dataclass(frozen=True)
class Agreement:
    """How the notebook's matrices compare with the project's at the same precision.

    ``ground_truth_equal``: every class's weighted and plain ground-truth pixels (row
    sums) are the same. ``differing_pixel_share``: half the L1 distance between the plain
    matrices over the pixels, a lower bound on the share of pixels predicted differently.
    """

    same_images: bool
    ground_truth_equal: bool
    differing_pixel_share: float
    miou_difference: float  # project minus notebook
    weighted_miou_difference: float


@dataclass(frozen=True)
class EvaluationBenchmark:
    """The section's results, as ``__main__`` prints them and writes them to JSON.

    ``paths`` holds the notebook first, then the project in fp32 (the notebook's
    precision: ``speedup`` and ``agreement`` compare these two), then the project at the
    pipeline's ``precision: auto`` where that is not fp32.
    """

    model_size: tuple[int, int]
    label_sizes: tuple[tuple[int, int], ...]
    unet: dict[str, Any]
    device: str
    segments: int
    cameras: tuple[int, ...]
    repeats: int
    export_seconds: float
    paths: tuple[PathResult, ...]
    speedup: float  # the project's fp32 images/s over the notebook's (median runs)
    agreement: Agreement
    naive_stage_ms: dict[str, float]  # the median notebook run, per image
    project_upsample_ms: float  # what predict_waymo_ids adds per image of label_sizes[0]

    @property
    def naive(self) -> PathResult:
        return self.paths[0]

    @property
    def project(self) -> PathResult:
        return self.paths[1]

    def rows(self) -> list[dict[str, Any]]:
        """The table: one row per path."""
        return [
            {
                "method": result.method,
                "precision": result.precision,
                "batch": result.batch,
                "images": result.images,
                "images_per_s": result.images_per_s,
                "range": f"{min(result.rates):.2f}-{max(result.rates):.2f}",
                "speedup": result.images_per_s / self.naive.images_per_s,
                "weighted_miou": result.weighted_miou,
                "miou": result.miou,
            }
            for result in self.paths
        ]

    def title(self) -> str:
        height, width = self.model_size
        labels = " and ".join(f"{w}x{h}" for h, w in self.label_sizes)
        return (
            f"Evaluation: images/s scored at the labels' size ({labels}), model at {height}x{width}"
        )

    def notes(self) -> list[str]:
        agreement = self.agreement
        stages = ", ".join(f"{k} {v:.0f}" for k, v in self.naive_stage_ms.items())
        verdict = "equal" if agreement.ground_truth_equal else "NOT EQUAL"
        return [
            f"the same {self.project.images} labelled images ({self.segments} segment(s), "
            f"cameras {', '.join(map(str, self.cameras))}) and "
            f"the same deployed model (untrained U-Net base {self.unet['base_channels']}, "
            f"depth {self.unet['depth']}; exported in {self.export_seconds:.1f} s) on "
            f"{self.device}; the last row, if any, is the pipeline's precision: auto",
            f"each path ran {self.repeats} time(s), alternating, after a warm-up model call; "
            "images/s from the median run, range over all; wall-clock from the listed "
            "files to the matrices",
            f"notebook, ms per image (median run): {stages}; it reads whole files, "
            "whichever frames and cameras are scored",
            f"project: predict_waymo_ids' upsampling of the logits to "
            f"{self.label_sizes[0][1]}x{self.label_sizes[0][0]} and their argmax add "
            f"{self.project_upsample_ms:.0f} ms per image to the model call (fp32, one "
            "image; an untrained model's noisy classes are its slowest case)",
            f"ground-truth pixels per class (weighted and plain): {verdict}; fp32 rows: "
            f"predicted classes differ on at least {100 * agreement.differing_pixel_share:.2f}%"
            f" of pixels, mIoU by {agreement.miou_difference:+.2g} (weighted "
            f"{agreement.weighted_miou_difference:+.2g}), project minus notebook, from the "
            "image's shrinking: DCT-scaled decode + cv2 against PIL's full decode + BILINEAR",
        ]
