"""Mixed precision, the nanoGPT way: bf16 where the hardware has it, else fp16 + GradScaler."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import torch

PRECISIONS = ("auto", "fp32", "bf16", "fp16")


def cpu_has_native_bf16() -> bool:
    """AMX or AVX512-BF16: without them bf16 on the CPU is emulated and slower than fp32."""
    return torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported()


@dataclass(frozen=True)
class Precision:
    """The autocast dtype for a device (None: plain fp32)."""

    device_type: str
    dtype: torch.dtype | None = None

    @property
    def name(self) -> str:
        return {None: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}[self.dtype]

    @property
    def needs_grad_scaler(self) -> bool:
        """fp16 gradients underflow without loss scaling; bf16 has fp32's range."""
        return self.dtype == torch.float16

    def autocast(self) -> contextlib.AbstractContextManager:
        if self.dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device_type, dtype=self.dtype)

    def grad_scaler(self) -> torch.amp.GradScaler:
        """A scaler that is a no-op unless fp16 needs it."""
        return torch.amp.GradScaler(self.device_type, enabled=self.needs_grad_scaler)


def choose_precision(requested: str, device: torch.device) -> Precision:
    """Resolve ``auto``/``fp32``/``bf16``/``fp16`` for a device."""
    if requested not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {requested!r}")
    if requested == "fp32":
        return Precision(device.type)
    if requested == "bf16":
        return Precision(device.type, torch.bfloat16)
    if requested == "fp16":
        if device.type != "cuda":
            raise ValueError("fp16 mixed precision needs a CUDA device; use bf16 or fp32")
        return Precision(device.type, torch.float16)
    if device.type == "cuda":
        # Tensor cores do bf16 from compute capability 8 (Ampere) on. Before that it is
        # emulated, although torch.cuda.is_bf16_supported() says yes (T4, V100).
        major, _ = torch.cuda.get_device_capability(device)
        return Precision(device.type, torch.bfloat16 if major >= 8 else torch.float16)
    return Precision(device.type, torch.bfloat16 if cpu_has_native_bf16() else None)
