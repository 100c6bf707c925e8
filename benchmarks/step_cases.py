"""Which training-step cases a benchmark runs: precision, layout, compiling, loss, size.

Without a GPU, bf16 is emulated on CPUs without AVX512-BF16 or AMX, about 25x slower than
fp32: ``cases_for_this_machine`` skips or shrinks those cases.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import torch

from waymo_unet.devices import cpu_has_native_bf16


@dataclass(frozen=True)
class StepCase:
    precision: str
    channels_last: bool
    compile: bool = False
    height: int | None = None  # None: the benchmark's size
    width: int | None = None
    dice_weight: float = 0.0
    sync_batchnorm: bool = False  # under DDP on GPUs only, as in training

    @property
    def mixed(self) -> bool:
        return self.precision != "fp32"

    def label(self) -> str:
        layout = ", channels_last" if self.channels_last else ""
        mode = "compiled" if self.compile else "eager"
        sync = ", SyncBatchNorm" if self.sync_batchnorm else ""
        return f"{self.precision}{layout}, {mode}, dice {self.dice_weight:g}{sync}"


def default_cases(
    device: torch.device, with_compile: bool, with_mixed: bool = True
) -> list[StepCase]:
    """fp32 and mixed precision, each with and without channels_last (and fp16 on CUDA);
    a compiled case, channels_last, when asked."""
    mixed = "bf16" if device.type == "cpu" else "auto"
    cases = [StepCase("fp32", False), StepCase("fp32", True)]
    if with_mixed:
        cases += [StepCase(mixed, False), StepCase(mixed, True)]
        if device.type == "cuda":
            cases.append(StepCase("fp16", True))
    if with_compile:
        cases.append(StepCase(mixed if with_mixed else "fp32", True, compile=True))
    return cases


def grid_cases(
    precisions: Sequence[str], dice_weights: Sequence[float], with_compile: bool
) -> list[StepCase]:
    """Every precision and Dice weight as training runs them (channels_last when mixed):
    eager first, then compiled, so a spent time budget cuts the slow compiled cases."""
    modes = (False, True) if with_compile else (False,)
    return [
        StepCase(precision, precision != "fp32", compiled, dice_weight=weight)
        for compiled in modes
        for precision in precisions
        for weight in dice_weights
    ]


def cases_for_this_machine(
    device: torch.device,
    with_compile: bool,
    size: tuple[int, int],
    emulated_bf16: str,
    shrunk_size: tuple[int, int],
) -> tuple[list[StepCase], list[str]]:
    """The default cases as this machine can run them, and a note on any change.

    On a CPU that emulates bf16, ``emulated_bf16`` says what becomes of the mixed cases:
    ``"skip"`` leaves them out, ``"shrink"`` runs them at ``shrunk_size`` beside an fp32
    baseline of that size, ``"run"`` runs them as they are.
    """
    if device.type != "cpu" or cpu_has_native_bf16() or emulated_bf16 == "run":
        return default_cases(device, with_compile), []
    if emulated_bf16 == "skip":
        note = (
            "bf16 cases skipped: this CPU has no native bf16 (AVX512-BF16 / AMX) and "
            "emulates it about 25x slower than fp32"
        )
        return default_cases(device, with_compile, with_mixed=False), [note]
    cases = default_cases(device, with_compile)
    shrunk = [replace(c, height=shrunk_size[0], width=shrunk_size[1]) for c in cases]
    kept = [c for c in cases if not c.mixed]
    if shrunk_size != size:  # an fp32 baseline at the bf16 cases' size
        kept.append(StepCase("fp32", False, False, *shrunk_size))
    note = (
        f"bf16 cases at {shrunk_size[0]}x{shrunk_size[1]}: this CPU emulates bf16 "
        "(no AVX512-BF16 / AMX), about 25x slower than fp32"
    )
    return kept + [c for c in shrunk if c.mixed], [note]
