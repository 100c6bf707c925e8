"""Helpers every section times with: the median run, and waiting for the device.

Torch-free at import: the ingestion workers import what the ingestion section imports.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

Run = TypeVar("Run")


def median_run(runs: list[Run], rate: Callable[[Run], float]) -> Run:
    """The run whose rate is the median (the lower middle one for an even count).

    A shared VM's neighbours move single runs by a third: the median is what a table shows.
    """
    return sorted(runs, key=rate)[(len(runs) - 1) // 2]


def synchronise(device: Any) -> None:
    """Wait for the work queued on a CUDA ``device``, so a timer measures it; else nothing."""
    if device.type == "cuda":
        import torch

        torch.cuda.synchronize(device)


def ratio(numerator: float | None, denominator: float | None) -> float | None:
    """``numerator / denominator``, or None where either is missing or zero."""
    return numerator / denominator if numerator and denominator else None
