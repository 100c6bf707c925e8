"""Device and precision choice, shared by training, inference and evaluation.

Mixed precision the nanoGPT way: bf16 where the hardware has it, else fp16 with a
GradScaler on CUDA, else fp32.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path

import torch

PRECISIONS = ("auto", "fp32", "bf16", "fp16")
CPUINFO = Path("/proc/cpuinfo")
NATIVE_BF16_FLAGS = ("avx512_bf16", "amx_bf16")  # as torch and Linux both name them


def resolve_device(requested: str) -> torch.device:
    """``auto`` is the GPU when there is one, else the CPU; anything else as torch reads it."""
    if requested == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(requested)


def autotune_convolutions(device: torch.device) -> None:
    """On CUDA, let cuDNN time its convolution algorithms per input shape and keep the fastest.

    Training and evaluation batches have one fixed size, so the search (a few steps) pays
    off for the rest of the run. The flag is process-wide and stays set, which suits any
    later model call of fixed size too (inference resizes to the model's size). The CPU
    has nothing to tune.
    """
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True


def cpu_has_native_bf16() -> bool:
    """AMX or AVX512-BF16: without them bf16 on the CPU is emulated and slower than fp32.

    Asked of torch where it can tell (the public ``torch.cpu.get_capabilities``, newer
    than our oldest torch; before it, two private helpers), else of the Linux CPU flags.
    """
    get_capabilities = getattr(torch.cpu, "get_capabilities", None)
    if get_capabilities is not None:
        capabilities = get_capabilities()
        return any(bool(capabilities.get(flag, False)) for flag in NATIVE_BF16_FLAGS)
    avx512_bf16 = getattr(torch.cpu, "_is_avx512_bf16_supported", None)
    amx_tile = getattr(torch.cpu, "_is_amx_tile_supported", None)
    if avx512_bf16 is not None and amx_tile is not None:
        return avx512_bf16() or amx_tile()
    return cpu_flags_have_native_bf16(CPUINFO)


def cpu_flags_have_native_bf16(cpuinfo: Path) -> bool:
    """Whether the ``flags`` of a Linux ``/proc/cpuinfo`` name AVX512-BF16 or AMX-BF16."""
    try:
        text = cpuinfo.read_text()
    except OSError:  # not Linux
        return False
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "flags":
            return any(flag in value.split() for flag in NATIVE_BF16_FLAGS)
    return False


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
